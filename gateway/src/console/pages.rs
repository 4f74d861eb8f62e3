//! The console's HTML pages, rendered on the server with maud: no script,
//! no build step, nothing fetched from elsewhere. Every form carries the
//! session's CSRF token; the sign-in form a double-submit cookie.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use echo_audit::{CallDetail, CallSummary, Event, Turn};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use serde_json::Value;

use super::api::{self, ApiError};
use super::auth::{self, Role, Staff};
use super::health::{Health, LEGS};
use super::settings::{Entry, Row, Source};
use super::{format_time, legs, CallQuery, Console, OUTCOMES};
use crate::config::{RouteEntry, TrunkEntry};

const CSS: &str = include_str!("console.css");

pub(super) fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/calls") }))
        .route("/console.css", get(css))
        .route("/favicon.svg", get(favicon))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/calls", get(calls))
        .route("/calls/{id}", get(call))
        .route("/health", get(health))
        .route("/admin/routes", get(routes_page))
        .route("/admin/routes/new", get(route_new))
        .route("/admin/routes/edit", get(route_edit))
        .route("/admin/routes/save", post(route_save))
        .route("/admin/routes/delete", post(entry_delete::<RouteEntry>))
        .route("/admin/routes/restore", post(entry_restore::<RouteEntry>))
        .route("/admin/trunks", get(trunks_page))
        .route("/admin/trunks/new", get(trunk_new))
        .route("/admin/trunks/edit", get(trunk_edit))
        .route("/admin/trunks/save", post(trunk_save))
        .route("/admin/trunks/delete", post(entry_delete::<TrunkEntry>))
        .route("/admin/trunks/restore", post(entry_restore::<TrunkEntry>))
        .route("/admin/users", get(users_page).post(user_create))
        .route("/admin/users/update", post(user_update))
        .route("/admin/users/delete", post(user_delete))
        .route("/admin/access", get(access_page))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// A speech bubble in the header's colour.
const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path fill="#10243a" d="M2 2h12a1 1 0 0 1 1 1v7a1 1 0 0 1-1 1H7l-4 3v-3H2a1 1 0 0 1-1-1V3a1 1 0 0 1 1-1z"/></svg>"##;

// ------------------------------------------------------------------ frame

/// A whole page: header with navigation, the title, an optional message.
fn page(title: &str, staff: Option<&Staff>, current: &str, notice: Notice, body: Markup) -> Markup {
    let nav: &[(&str, &str, bool)] = &[
        ("/calls", "Calls", false),
        ("/health", "Health", false),
        ("/admin/routes", "Routes", true),
        ("/admin/trunks", "Trunks", true),
        ("/admin/users", "Users", true),
        ("/admin/access", "Access log", true),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Echo console" }
                link rel="stylesheet" href="/console.css";
                link rel="icon" href="/favicon.svg" type="image/svg+xml";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Echo console" }
                    @if let Some(staff) = staff {
                        nav aria-label="Main" {
                            ul {
                                @for (href, label, admin_only) in nav {
                                    @if !admin_only || staff.is_admin() {
                                        li {
                                            @if current.starts_with(href) {
                                                a href=(href) aria-current="page" { (label) }
                                            } @else {
                                                a href=(href) { (label) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(staff.csrf);
                            span { (staff.name) " · " (staff.role.as_str()) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    @match notice {
                        Notice::None => {},
                        Notice::Status(text) => p.status role="status" { (text) },
                        Notice::Error(text) => p.error role="alert" { (text) },
                    }
                    (body)
                }
            }
        }
    }
}

/// A message at the top of a page.
enum Notice {
    None,
    Status(String),
    Error(String),
}

/// What pages may load: their own stylesheet and forms, nothing else, and
/// no framing (clickjacking).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        markup.into_string(),
    )
        .into_response()
}

fn error_page(staff: Option<&Staff>, status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    html_response(
        status,
        page(
            title,
            staff,
            "",
            Notice::Error(message.to_owned()),
            html! {
                p { a href="/calls" { "Back to calls" } }
            },
        ),
    )
}

fn from_api(staff: &Staff, e: ApiError) -> Response {
    error_page(Some(staff), e.0, &e.1)
}

/// What a page says to someone who is not signed in.
pub fn unauthenticated(no_accounts: bool, source: IpAddr) -> Response {
    if no_accounts {
        setup_page(source)
    } else {
        Redirect::to("/login").into_response()
    }
}

/// 503 page.
pub fn store_unavailable() -> Response {
    error_page(None, StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable. Calls are still answered and recorded to the spool; try again in a moment.")
}

/// With no account yet, only loopback visitors learn how to make one.
fn setup_page(source: IpAddr) -> Response {
    if !source.is_loopback() {
        return (
            StatusCode::FORBIDDEN,
            "The console has no accounts yet and answers only on loopback until one exists.\n",
        )
            .into_response();
    }
    html_response(
        StatusCode::UNAUTHORIZED,
        page(
            "Create the first account",
            None,
            "",
            Notice::None,
            html! {
                p { "No staff account exists yet. On the gateway's machine, create the first admin:" }
                pre { code { "echo-gateway users add NAME --role admin --config THE-GATEWAY'S-CONFIG.toml" } }
                p { "In a checkout run with " code { "./x serve" } ", that is " code { "./x users add NAME --role admin" } ". It asks for the password twice (or reads one line from standard input with " code { "--password-stdin" } "). Then " a href="/login" { "sign in" } "." }
            },
        ),
    )
}

/// The 403 page for a viewer on an admin page, or `None` for an admin.
fn refuse_non_admin(staff: &Staff) -> Option<Response> {
    if staff.is_admin() {
        None
    } else {
        Some(error_page(
            Some(staff),
            StatusCode::FORBIDDEN,
            "This page needs the admin role. Ask an admin if you need it.",
        ))
    }
}

/// The 403 page for a form without the session's CSRF token.
fn refuse_bad_csrf(staff: &Staff, submitted: &str) -> Option<Response> {
    if staff.csrf_ok(submitted) {
        None
    } else {
        Some(error_page(
            Some(staff),
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from the console. Go back, reload the page and try again.",
        ))
    }
}

// --------------------------------------------------------------- sign-in

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

fn login_form(status: StatusCode, notice: Notice, username: &str) -> Response {
    let token = auth::random_token();
    let markup = page(
        "Sign in",
        None,
        "",
        notice,
        html! {
            form #login method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                p {
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                }
                p {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Sign in" } }
            }
        },
    );
    let mut response = html_response(status, markup);
    if let Ok(v) = auth::set_cookie(
        auth::LOGIN_CSRF_COOKIE,
        &token,
        Some(std::time::Duration::from_secs(3600)),
    )
    .parse()
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn login_page(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
) -> Response {
    match console.has_accounts().await {
        Ok(false) => setup_page(peer.ip().to_canonical()),
        Ok(true) => login_form(StatusCode::OK, Notice::None, ""),
        Err(_) => store_unavailable(),
    }
}

async fn login(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookie = auth::cookie(&headers, auth::LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie.is_empty() || !auth::constant_time_eq(cookie.as_bytes(), form.csrf.as_bytes()) {
        return login_form(
            StatusCode::FORBIDDEN,
            Notice::Error("The sign-in form expired. Please try again.".into()),
            &form.username,
        );
    }
    let source = peer.ip().to_canonical();
    match api::sign_in_checked(&console, &form.username, &form.password, source).await {
        Ok((token, _staff)) => {
            let mut response = Redirect::to("/calls").into_response();
            let h = response.headers_mut();
            for c in [
                auth::set_cookie(auth::SESSION_COOKIE, &token, Some(auth::SESSION_LIFETIME)),
                auth::clear_cookie(auth::LOGIN_CSRF_COOKIE),
            ] {
                if let Ok(v) = c.parse() {
                    h.append(header::SET_COOKIE, v);
                }
            }
            response
        }
        Err(e) => login_form(e.0, Notice::Error(e.1), &form.username),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(r) = refuse_bad_csrf(&staff, &form.csrf) {
        return r;
    }
    let _ = auth::sign_out(&*console.store, &staff).await;
    console.log(
        &staff.name,
        "session.sign_out",
        &staff.name,
        staff.source,
        serde_json::json!({}),
    );
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = auth::clear_cookie(auth::SESSION_COOKIE).parse() {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ------------------------------------------------------------------ calls

fn text_input(name: &str, label: &str, value: &Option<String>, kind: &str) -> Markup {
    html! {
        p.field {
            label for=(name) { (label) }
            input id=(name) type=(kind) name=(name) value=(value.as_deref().unwrap_or(""));
        }
    }
}

fn slot_summary(end: Option<&echo_audit::CallEnd>) -> Markup {
    let slots = end
        .and_then(|e| e.final_slots.expose().as_object().cloned())
        .unwrap_or_default();
    html! {
        @if slots.is_empty() { span.muted { "none" } }
        @else {
            ul.slots {
                @for (k, v) in &slots {
                    li { span.key { (k) } " " (value_text(v)) }
                }
            }
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn duration(summary: &CallSummary) -> String {
    match &summary.end {
        Some(end) => {
            let secs = (end.ended_unix_us - summary.call.started_unix_us).max(0) / 1_000_000;
            format!("{}:{:02}", secs / 60, secs % 60)
        }
        None => "in progress".into(),
    }
}

fn query_string(q: &CallQuery, offset: Option<u64>) -> String {
    // Blank fields are left out, so the pager's links stay short.
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    let q = CallQuery {
        from: blank(&q.from),
        to: blank(&q.to),
        number: blank(&q.number),
        outcome: blank(&q.outcome),
        provider: blank(&q.provider),
        medication: blank(&q.medication),
        slot: blank(&q.slot),
        route: blank(&q.route),
        q: blank(&q.q),
        limit: q.limit,
        offset,
    };
    serde_urlencoded::to_string(&q).unwrap_or_default()
}

/// `name=value&…`, escaped.
fn encode(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Back to a list page after a change, which it then announces.
fn done_redirect(base: &str, done: &str, key: &str) -> Response {
    Redirect::to(&format!(
        "{base}?{}",
        encode(&[("done", done), ("key", key)])
    ))
    .into_response()
}

async fn calls(
    State(console): State<Arc<Console>>,
    staff: Staff,
    query: Result<Query<CallQuery>, QueryRejection>,
) -> Response {
    let (query, mut notice) = match query {
        Ok(Query(q)) => (q, Notice::None),
        Err(e) => (CallQuery::default(), Notice::Error(e.body_text())),
    };
    let page_result = api::calls_page(&console, &query).await;
    let (calls, next) = match page_result {
        Ok(p) => (p.calls, p.next_offset),
        Err(e) => {
            if e.0 == StatusCode::SERVICE_UNAVAILABLE {
                return from_api(&staff, e);
            }
            notice = Notice::Error(e.1);
            (Vec::new(), None)
        }
    };
    let status = if matches!(notice, Notice::Error(_)) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let offset = query.offset.unwrap_or(0);
    let limit = u64::from(query.filter().map(|f| f.effective_limit()).unwrap_or(50));
    let range = [("from", &query.from), ("to", &query.to)];
    let range: Vec<(&str, &str)> = range
        .iter()
        .filter_map(|(k, v)| Some((*k, v.as_deref()?)))
        .collect();
    let csv = encode(&range);
    let body = html! {
        form #filters method="get" action="/calls" {
            fieldset {
                legend { "Find calls" }
                div.fields {
                    (text_input("from", "From (date)", &query.from, "date"))
                    (text_input("to", "To (date)", &query.to, "date"))
                    (text_input("number", "Number", &query.number, "search"))
                    p.field {
                        label for="outcome" { "Outcome" }
                        select #outcome name="outcome" {
                            option value="" { "any" }
                            @for o in OUTCOMES {
                                option value=(o) selected[query.outcome.as_deref() == Some(o)] { (o.replace('_', " ")) }
                            }
                        }
                    }
                    (text_input("provider", "Provider", &query.provider, "search"))
                    (text_input("medication", "Medication", &query.medication, "search"))
                    (text_input("q", "Search", &query.q, "search"))
                }
                p { button type="submit" { "Filter" } " " a href="/calls" { "Clear" } }
            }
        }
        p.actions {
            a #export-csv href={ "/api/v1/turns.csv?" (csv) } download { "Export turns (CSV)" }
            span.muted { " — every turn of the calls started in the dates above, with its latency legs" }
        }
        @if calls.is_empty() {
            p { "No calls match." }
        } @else {
            div.scroll {
                table #calls {
                    caption.visually-hidden { "Calls, newest first" }
                    thead { tr {
                        th scope="col" { "Started" }
                        th scope="col" { "Caller" }
                        th scope="col" { "Route" }
                        th scope="col" { "Outcome" }
                        th scope="col" { "Duration" }
                        th scope="col" { "Slots filled" }
                    } }
                    tbody {
                        @for c in &calls {
                            tr.call {
                                td { a.call-link href={ "/calls/" (c.call.call_id.as_str()) } { (format_time(c.call.started_unix_us)) } }
                                td { (c.call.caller.expose()) }
                                td { code { (c.call.route) } }
                                td { @match &c.end { Some(e) => span class={ "outcome outcome-" (e.outcome.as_str()) } { (e.outcome.as_str().replace('_', " ")) }, None => span.muted { "—" } } }
                                td { (duration(c)) }
                                td { (slot_summary(c.end.as_ref())) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a href={ "/calls?" (query_string(&query, Some(offset.saturating_sub(limit)))) } { "← Newer" }
            }
            @if let Some(next) = next {
                a href={ "/calls?" (query_string(&query, Some(next))) } { "Older →" }
            }
        }
    };
    html_response(status, page("Calls", Some(&staff), "/calls", notice, body))
}

async fn call(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let (detail, chain) = match api::call_detail(&console, &staff, &id, "call.view").await {
        Ok(v) => v,
        Err(e) => return from_api(&staff, e),
    };
    let title = format!("Call of {}", format_time(detail.call.started_unix_us));
    html_response(
        StatusCode::OK,
        page(
            &title,
            Some(&staff),
            "/calls",
            Notice::None,
            call_body(&detail, &chain),
        ),
    )
}

fn call_body(d: &CallDetail, chain: &Value) -> Markup {
    let c = &d.call;
    let verified = chain["verified"].as_bool().unwrap_or(false);
    html! {
        section aria-labelledby="summary-h" {
            h2 #summary-h { "Summary" }
            dl.summary {
                dt { "Caller" } dd { (c.caller.expose()) }
                dt { "Called" } dd { (c.called.expose()) }
                dt { "Route" } dd { code { (c.route) } " → " (c.app) }
                dt { "Trunk" } dd { (c.trunk) }
                dt { "Codec" } dd { (c.codec) }
                dt { "Started" } dd { (format_time(c.started_unix_us)) }
                @if let Some(end) = &d.end {
                    dt { "Ended" } dd { (format_time(end.ended_unix_us)) " (hung up by " (end.hangup_by.as_str()) ")" }
                    dt { "Outcome" } dd { span class={ "outcome outcome-" (end.outcome.as_str()) } { (end.outcome.as_str().replace('_', " ")) } }
                    @if let Some(t) = &end.transfer_target { dt { "Transferred to" } dd { (t.expose()) } }
                    dt { "Final slots" } dd { (slot_summary(Some(end))) }
                } @else {
                    dt { "Ended" } dd { "in progress" }
                }
            }
            section #chain-status aria-labelledby="chain-h" {
                h2 #chain-h { "Audit chain" }
                @if verified {
                    p.ok { "✓ verified: " (chain["records"]) " records, none altered, inserted or removed." }
                } @else {
                    p.error role="alert" { "✗ broken at record " (chain["broken_at"]) ": " (chain["finding"].as_str().unwrap_or("")) }
                }
            }
            p.actions { a #export-json href={ "/api/v1/calls/" (c.call_id.as_str()) "/export" } download { "Export JSON" } }
        }
        (latency_figure(&d.turns))
        section aria-labelledby="timeline-h" {
            h2 #timeline-h { "Conversation" }
            ol #timeline {
                @for item in timeline(d) {
                    @match item {
                        Item::Turn(t) => (turn_item(t)),
                        Item::Event(e) => (event_item(e)),
                    }
                }
            }
        }
    }
}

enum Item<'a> {
    Turn(&'a Turn),
    Event(&'a Event),
}

fn timeline(d: &CallDetail) -> Vec<Item<'_>> {
    let mut items: Vec<(i64, usize, Item<'_>)> = Vec::new();
    for t in &d.turns {
        let at = t
            .timings
            .speech_start_us
            .or(t.timings.endpoint_us)
            .or(t.timings.first_reply_packet_us)
            .unwrap_or(0);
        items.push((at, 0, Item::Turn(t)));
    }
    for e in &d.events {
        items.push((e.at_us, 1, Item::Event(e)));
    }
    items.sort_by_key(|(at, order, _)| (*at, *order));
    items.into_iter().map(|(_, _, i)| i).collect()
}

fn seconds(us: Option<i64>) -> String {
    us.map(|us| format!("{:.1} s", us as f64 / 1e6))
        .unwrap_or_default()
}

fn turn_item(t: &Turn) -> Markup {
    let raw = t.raw_text.expose();
    let corrected = t.corrected_text.expose();
    let corrections = t
        .corrections
        .expose()
        .as_array()
        .cloned()
        .unwrap_or_default();
    let terms: Vec<String> = corrections
        .iter()
        .filter_map(|c| c.get("to").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let (_, total) = legs(&t.timings);
    let slots = t.slots.expose().as_object().cloned().unwrap_or_default();
    html! {
        li.turn {
            p.meta {
                span { "Turn " (t.seq + 1) } " · " span { (seconds(t.timings.speech_start_us.or(t.timings.first_reply_packet_us))) }
                @if let Some(total) = total { " · " span { "reply after " (format!("{total:.0}")) " ms" } }
            }
            @if !raw.is_empty() {
                p.said {
                    span.who { "Caller (as recognised)" }
                    q { (raw) }
                    @if let Some(c) = t.raw_confidence { span.muted { " confidence " (format!("{c:.2}")) } }
                }
            }
            @if corrected != raw && !corrected.is_empty() {
                p.corrected {
                    span.who { "Corrected" }
                    q { (highlight(corrected, &terms)) }
                }
                @if !corrections.is_empty() {
                    ul.corrections {
                        @for c in &corrections {
                            li { "“" (c.get("from").and_then(Value::as_str).unwrap_or("")) "” → " mark { (c.get("to").and_then(Value::as_str).unwrap_or("")) } }
                        }
                    }
                }
            }
            @if let Some(reply) = &t.reply_text {
                p.reply { span.who { "Bot" } q { (reply.expose()) } }
            }
            @if let Some(b) = t.barge_in_us {
                p.badge { "Caller interrupted the reply at " (seconds(Some(b))) }
            }
            @if !slots.is_empty() {
                details {
                    summary { "Slots after this turn" }
                    dl.slots { @for (k, v) in &slots { dt { (k) } dd { (value_text(v)) } } }
                }
            }
        }
    }
}

/// The text with each corrected term marked.
fn highlight(text: &str, terms: &[String]) -> Markup {
    let lower = text.to_lowercase();
    let mut marks: Vec<(usize, usize)> = Vec::new();
    for term in terms.iter().filter(|t| !t.is_empty()) {
        let needle = term.to_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&needle) {
            let start = from + i;
            let end = start + needle.len();
            if text.is_char_boundary(start)
                && text.is_char_boundary(end)
                && !marks.iter().any(|(s, e)| start < *e && *s < end)
            {
                marks.push((start, end));
            }
            from = end;
        }
    }
    marks.sort();
    let mut at = 0;
    html! {
        @for (s, e) in &marks {
            (text[at..*s].to_owned())
            mark { (text[*s..*e].to_owned()) }
            ({ at = *e; "" })
        }
        (text[at..].to_owned())
    }
}

fn event_item(e: &Event) -> Markup {
    let detail = e.detail.expose();
    let text = match e.kind.as_str() {
        "dtmf" => format!(
            "Caller pressed {}",
            detail.get("digit").map(value_text).unwrap_or_default()
        ),
        "barge_in" => "Caller spoke over the bot".to_owned(),
        "transfer" => format!(
            "Transfer to {}",
            detail
                .get("target")
                .map(value_text)
                .unwrap_or_else(|| detail.to_string())
        ),
        "answered" => "Call answered".to_owned(),
        "media_timeout" => "The caller's audio stopped".to_owned(),
        "error" => format!(
            "Error: {}",
            detail
                .get("message")
                .map(value_text)
                .unwrap_or_else(|| detail.to_string())
        ),
        other => other.to_owned(),
    };
    html! {
        li.event class={ "event-" (e.kind.as_str()) } {
            p.meta { span { (e.kind.as_str().replace('_', " ")) } " · " (seconds(Some(e.at_us))) }
            p { (text) }
        }
    }
}

/// Room right of the longest bar for its total ("1234 ms").
const TOTAL_LABEL_W: f64 = 64.0;

/// The latency of each caller turn as a horizontal stacked bar, with the
/// same numbers in a table for screen readers and copying.
fn latency_figure(turns: &[Turn]) -> Markup {
    let rows: Vec<(i64, [Option<f64>; 5], Option<f64>)> = turns
        .iter()
        .map(|t| {
            let (l, total) = legs(&t.timings);
            (t.seq, l, total)
        })
        .filter(|(_, l, _)| l.iter().any(Option::is_some))
        .collect();
    let max = rows
        .iter()
        .map(|(_, l, _)| l.iter().flatten().sum::<f64>())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (label_w, bar_w, row_h) = (70.0, 520.0, 26.0);
    let height = row_h * rows.len() as f64 + 24.0;
    html! {
        section aria-labelledby="latency-h" {
            h2 #latency-h { "Latency per turn" }
            @if rows.is_empty() {
                p.muted { "No timed turns (the echo app, or the call ended before a reply)." }
            } @else {
                figure #latency {
                    svg #latency-chart role="img" aria-labelledby="latency-caption" viewBox={ "0 0 " (label_w + bar_w + TOTAL_LABEL_W) " " (height) } width="100%" preserveAspectRatio="xMinYMin meet" {
                        @for (i, (seq, l, _)) in rows.iter().enumerate() {
                            @let y = i as f64 * row_h;
                            text x="0" y=(y + 17.0) class="axis" { "Turn " (seq + 1) }
                            @let mut x = label_w;
                            @for (j, leg) in LEGS.iter().enumerate() {
                                @if let Some(ms) = l[j] {
                                    @let w = ms / max * bar_w;
                                    rect class={ "leg leg-" (leg) } x=(format!("{x:.1}")) y=(y + 4.0) width=(format!("{:.1}", w.max(0.5))) height=(row_h - 8.0) {
                                        title { (leg) " " (format!("{ms:.0}")) " ms" }
                                    }
                                    ({ x += w; "" })
                                }
                            }
                            text x=(format!("{:.1}", x + 4.0)) y=(y + 17.0) class="axis" { (format!("{:.0}", l.iter().flatten().sum::<f64>())) " ms" }
                        }
                        text x=(label_w) y=(height - 4.0) class="axis" { "0" }
                        text x=(label_w + bar_w) y=(height - 4.0) class="axis" text-anchor="end" { (format!("{max:.0}")) " ms" }
                    }
                    figcaption #latency-caption {
                        "From the end of the caller's speech to the first packet of the reply, by leg: "
                        @for leg in LEGS { span class={ "key-swatch leg-" (leg) } aria-hidden="true" {} " " (leg) " " }
                    }
                }
                details {
                    summary { "Latency as a table" }
                    div.scroll { table #latency-table {
                        thead { tr { th scope="col" { "Turn" } @for leg in LEGS { th scope="col" { (leg) " (ms)" } } th scope="col" { "total (ms)" } } }
                        tbody { @for (seq, l, total) in &rows { tr {
                            th scope="row" { (seq + 1) }
                            @for v in l { td { (v.map(|v| format!("{v:.0}")).unwrap_or_default()) } }
                            td { (total.map(|v| format!("{v:.0}")).unwrap_or_default()) }
                        } } }
                    } }
                }
            }
        }
    }
}

// ----------------------------------------------------------------- health

async fn health(State(console): State<Arc<Console>>, staff: Staff) -> Response {
    let h = Health::from_metrics(
        &console.metrics_text(),
        &console.rates,
        std::time::Instant::now(),
    );
    let ms = |v: Option<f64>| {
        v.map(|v| format!("{v:.0} ms"))
            .unwrap_or_else(|| "—".into())
    };
    let body = html! {
        p { "The same numbers " a href="/metrics" { "/metrics" } " exports, since the gateway started. " a href="/health" { "Refresh" } }
        div.cards {
            div.card { h2 { "Live calls" } p.big { (h.live_calls) } }
            div.card { h2 { "Calls per minute" } p.big { (h.calls_per_minute) } p.muted { "calls ended in the last minute; " (h.calls_total) " since start" } }
            div.card { h2 { "Turn latency" } p.big { (ms(h.turn_latency_ms.p50)) } p.muted { "p90 " (ms(h.turn_latency_ms.p90)) " · p99 " (ms(h.turn_latency_ms.p99)) " · " (h.turn_latency_ms.count) " turns" } }
            div.card { h2 { "Recogniser queue" } p.big { (h.recogniser_queue_depth) } p.muted { "mean wait " (ms(h.inference_wait_mean_ms)) } }
            div.card { h2 { "Jitter-buffer loss" } p.big { (h.jitter_loss_ratio.map(|r| format!("{:.2} %", r * 100.0)).unwrap_or_else(|| "—".into())) } p.muted { (h.jitter_late_packets) " late packets" } }
            div.card {
                h2 { "Database and spool" }
                @if h.database_up { p.big.ok { "up" } } @else { p.big.error { "down" } }
                p.muted { (h.spooled_records) " spooled · " (h.replayed_records) " replayed · " (h.lost_records) " lost" }
            }
        }
        h2 { "Median latency by leg" }
        table #legs { thead { tr { th scope="col" { "Leg" } th scope="col" { "p50" } } } tbody {
            @for (leg, v) in &h.leg_p50_ms { tr { th scope="row" { (leg) } td { (ms(*v)) } } }
        } }
        h2 { "SIP responses sent" }
        @if h.sip_responses.is_empty() { p.muted { "none yet" } } @else {
            table #sip { thead { tr { th scope="col" { "Code" } th scope="col" { "Count" } } } tbody {
                @for (code, n) in &h.sip_responses { tr { th scope="row" { (code) } td { (n) } } }
            } }
        }
    };
    html_response(
        StatusCode::OK,
        page("Health", Some(&staff), "/health", Notice::None, body),
    )
}

// ------------------------------------------------------ trunks and routes

#[derive(Deserialize, Default)]
struct KeyQuery {
    #[serde(default)]
    key: String,
    #[serde(default)]
    done: String,
}

fn done_notice(q: &KeyQuery, what: &str) -> Notice {
    match q.done.as_str() {
        "saved" => Notice::Status(format!("{what} {:?} saved and in effect.", q.key)),
        "deleted" => Notice::Status(format!("{what} {:?} deleted.", q.key)),
        "restored" => Notice::Status(format!("{what} {:?} is back to the file's version.", q.key)),
        _ => Notice::None,
    }
}

fn source_cell<E>(row: &Row<E>) -> Markup {
    html! {
        span class={ "source source-" (format!("{:?}", row.source).to_lowercase()) } { (row.source.label()) }
        @if let (Some(by), Some(at)) = (&row.changed_by, row.changed_unix_us) {
            br; span.muted { "by " (by) ", " (format_time(at)) }
        }
    }
}

fn row_actions<E: Entry>(staff: &Staff, base: &str, row: &Row<E>) -> Markup {
    let key = row.entry.key();
    html! {
        div.row-actions {
            @if row.active() {
                a href={ (base) "/edit?" (encode(&[("key", key)])) } { "Edit" span.visually-hidden { " " (key) } }
                form method="post" action={ (base) "/delete" } {
                    input type="hidden" name="csrf" value=(staff.csrf);
                    input type="hidden" name="key" value=(key);
                    button.danger type="submit" { "Delete" span.visually-hidden { " " (key) } }
                }
            }
            @if matches!(row.source, Source::Override | Source::Deleted) {
                form method="post" action={ (base) "/restore" } {
                    input type="hidden" name="csrf" value=(staff.csrf);
                    input type="hidden" name="key" value=(key);
                    button type="submit" { "Restore file version" }
                }
            }
        }
    }
}

const COEXIST: &str = "The configuration file is read at start-up. Changes made here are stored in the database, take effect at once for new calls (calls in progress keep their route), override the file's entry with the same key, and survive restarts.";

async fn routes_page(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    let rows = match console.settings.rows::<RouteEntry>(&*console.store).await {
        Ok(r) => r,
        Err(e) => return from_api(&staff, e.into()),
    };
    let body = html! {
        p { (COEXIST) }
        p.actions { a #new-route.button href="/admin/routes/new" { "Add route" } }
        @if rows.iter().all(|r| !r.active()) {
            p.muted { "No routes are configured, so every number reaches the clinic bot (built in), and " code { "echo" } " reaches the echo test." }
        }
        div.scroll { table #routes {
            caption.visually-hidden { "Routes" }
            thead { tr { th scope="col" { "Match" } th scope="col" { "App" } th scope="col" { "Answer delay" } th scope="col" { "Staff transfer" } th scope="col" { "Source" } th scope="col" { "Actions" } } }
            tbody { @for row in &rows {
                tr.route.inactive[!row.active()] {
                    td { code { (row.entry.pattern) } }
                    td { (row.entry.app) }
                    td { (row.entry.answer_delay_ms) " ms" }
                    td { (row.entry.staff_uri.as_deref().unwrap_or("—")) @if let Some(n) = &row.entry.staff_number { br; span.muted { "says " (n) } } }
                    td { (source_cell(row)) }
                    td { (row_actions(&staff, "/admin/routes", row)) }
                }
            } }
        } }
    };
    html_response(
        StatusCode::OK,
        page(
            "Routes",
            Some(&staff),
            "/admin/routes",
            done_notice(&q, "Route"),
            body,
        ),
    )
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct RouteForm {
    csrf: String,
    original: String,
    #[serde(rename = "match")]
    pattern: String,
    app: String,
    answer_delay_ms: String,
    jitter_min_ms: String,
    jitter_max_ms: String,
    min_speech_ms: String,
    silence_ms: String,
    max_utterance_ms: String,
    vad_threshold: String,
    barge_in_min_ms: String,
    pause_ms: String,
    staff_uri: String,
    staff_number: String,
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{field}: {text:?} is not a number"))
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

impl RouteForm {
    fn from_entry(e: &RouteEntry) -> Self {
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        RouteForm {
            csrf: String::new(),
            original: e.pattern.clone(),
            pattern: e.pattern.clone(),
            app: e.app.clone(),
            answer_delay_ms: e.answer_delay_ms.to_string(),
            jitter_min_ms: n(e.jitter_min_ms),
            jitter_max_ms: n(e.jitter_max_ms),
            min_speech_ms: n(e.min_speech_ms),
            silence_ms: n(e.silence_ms),
            max_utterance_ms: n(e.max_utterance_ms),
            vad_threshold: e.vad_threshold.map(|v| v.to_string()).unwrap_or_default(),
            barge_in_min_ms: n(e.barge_in_min_ms),
            pause_ms: n(e.pause_ms),
            staff_uri: e.staff_uri.clone().unwrap_or_default(),
            staff_number: e.staff_number.clone().unwrap_or_default(),
        }
    }

    fn entry(&self) -> Result<RouteEntry, String> {
        if self.pattern.trim().is_empty() {
            return Err("match: must not be empty (a number, a prefix ending in *, or *)".into());
        }
        Ok(RouteEntry {
            pattern: self.pattern.trim().to_owned(),
            app: self.app.trim().to_owned(),
            answer_delay_ms: number("answer_delay_ms", &self.answer_delay_ms)?.unwrap_or(0),
            jitter_min_ms: number("jitter_min_ms", &self.jitter_min_ms)?,
            jitter_max_ms: number("jitter_max_ms", &self.jitter_max_ms)?,
            min_speech_ms: number("min_speech_ms", &self.min_speech_ms)?,
            silence_ms: number("silence_ms", &self.silence_ms)?,
            max_utterance_ms: number("max_utterance_ms", &self.max_utterance_ms)?,
            vad_threshold: number("vad_threshold", &self.vad_threshold)?,
            barge_in_min_ms: number("barge_in_min_ms", &self.barge_in_min_ms)?,
            pause_ms: number("pause_ms", &self.pause_ms)?,
            staff_uri: optional(&self.staff_uri),
            staff_number: optional(&self.staff_number),
        })
    }
}

fn field(name: &str, label: &str, value: &str, hint: &str, kind: &str) -> Markup {
    let hint_id = format!("{name}-hint");
    html! {
        p.field {
            label for=(name) { (label) }
            input id=(name) name=(name) type=(kind) value=(value) aria-describedby=(hint_id);
            span.hint id=(hint_id) { (hint) }
        }
    }
}

fn route_form_page(
    staff: &Staff,
    form: &RouteForm,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let editing = !form.original.is_empty();
    let title = if editing {
        format!("Edit route {}", form.original)
    } else {
        "Add route".into()
    };
    let body = html! {
        form #route-form method="post" action="/admin/routes/save" {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="original" value=(form.original);
            fieldset {
                legend { "Which calls, and who answers" }
                (field("match", "Match", &form.pattern, "The dialled user part: 4242 (exact), 42* (prefix) or * (anything else).", "text"))
                p.field {
                    label for="app" { "App" }
                    select #app name="app" {
                        @for (value, text) in [("clinic", "clinic: the voice bot"), ("echo", "echo: plays the caller back (line test)")] {
                            option value=(value) selected[form.app == value] { (text) }
                        }
                    }
                }
                (field("answer_delay_ms", "Answer delay (ms)", &form.answer_delay_ms, "How long to ring before answering; 0 to 60000.", "text"))
            }
            fieldset {
                legend { "Transfer to staff" }
                (field("staff_uri", "Staff SIP URI", &form.staff_uri, "Where \"talk to a person\" is transferred (REFER), e.g. sip:frontdesk@pbx.example.org.", "text"))
                (field("staff_number", "Staff number to say", &form.staff_number, "Said to the caller when the transfer cannot be made.", "text"))
            }
            details open[[&form.jitter_min_ms, &form.jitter_max_ms, &form.min_speech_ms, &form.silence_ms, &form.max_utterance_ms, &form.vad_threshold, &form.barge_in_min_ms, &form.pause_ms].iter().any(|v| !v.is_empty())] {
                summary { "Media and endpointing (blank = default)" }
                (field("jitter_min_ms", "Jitter buffer min (ms)", &form.jitter_min_ms, "", "text"))
                (field("jitter_max_ms", "Jitter buffer max (ms)", &form.jitter_max_ms, "", "text"))
                (field("min_speech_ms", "Shortest speech (ms)", &form.min_speech_ms, "Speech shorter than this is ignored.", "text"))
                (field("silence_ms", "End-of-turn silence (ms)", &form.silence_ms, "Silence that ends the caller's turn.", "text"))
                (field("max_utterance_ms", "Longest utterance (ms)", &form.max_utterance_ms, "", "text"))
                (field("vad_threshold", "VAD threshold", &form.vad_threshold, "0 to 1.", "text"))
                (field("barge_in_min_ms", "Barge-in after (ms)", &form.barge_in_min_ms, "Speech over the bot this long interrupts it.", "text"))
                (field("pause_ms", "Speculative pause (ms)", &form.pause_ms, "Silence after which recognition starts early.", "text"))
            }
            p { button type="submit" { "Save route" } " " a href="/admin/routes" { "Cancel" } }
        }
    };
    html_response(
        status,
        page(&title, Some(staff), "/admin/routes", notice, body),
    )
}

async fn route_new(staff: Staff) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    let form = RouteForm {
        app: "clinic".into(),
        answer_delay_ms: "0".into(),
        ..RouteForm::default()
    };
    route_form_page(&staff, &form, StatusCode::OK, Notice::None)
}

async fn route_edit(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    match console.settings.rows::<RouteEntry>(&*console.store).await {
        Ok(rows) => match rows.iter().find(|r| r.active() && r.entry.pattern == q.key) {
            Some(row) => route_form_page(
                &staff,
                &RouteForm::from_entry(&row.entry),
                StatusCode::OK,
                Notice::None,
            ),
            None => error_page(Some(&staff), StatusCode::NOT_FOUND, "No such route."),
        },
        Err(e) => from_api(&staff, e.into()),
    }
}

async fn route_save(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<RouteForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    let entry = match form.entry() {
        Ok(e) => e,
        Err(message) => {
            return route_form_page(
                &staff,
                &form,
                StatusCode::BAD_REQUEST,
                Notice::Error(message),
            )
        }
    };
    let key = entry.pattern.clone();
    let original = optional(&form.original);
    match api::save_entry(&console, &staff, original.as_deref(), entry).await {
        Ok(()) => done_redirect("/admin/routes", "saved", &key),
        Err(e) if e.0 == StatusCode::SERVICE_UNAVAILABLE => from_api(&staff, e),
        Err(e) => route_form_page(&staff, &form, e.0, Notice::Error(e.1)),
    }
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

fn base_of<E: Entry>() -> &'static str {
    if E::KIND == "trunk" {
        "/admin/trunks"
    } else {
        "/admin/routes"
    }
}

async fn entry_delete<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<KeyForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    match api::delete_entry::<E>(&console, &staff, &form.key).await {
        Ok(()) => done_redirect(base_of::<E>(), "deleted", &form.key),
        Err(e) => from_api(&staff, e),
    }
}

async fn entry_restore<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<KeyForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    match console
        .settings
        .restore::<E>(&*console.store, &form.key)
        .await
    {
        Ok(_) => {
            console.log(
                &staff.name,
                &format!("{}.restore", E::KIND),
                &form.key,
                staff.source,
                serde_json::json!({}),
            );
            done_redirect(base_of::<E>(), "restored", &form.key)
        }
        Err(e) => from_api(&staff, e.into()),
    }
}

async fn trunks_page(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    let rows = match console.settings.rows::<TrunkEntry>(&*console.store).await {
        Ok(r) => r,
        Err(e) => return from_api(&staff, e.into()),
    };
    let body = html! {
        p { (COEXIST) }
        p.actions { a #new-trunk.button href="/admin/trunks/new" { "Add trunk" } }
        @if rows.iter().all(|r| !r.active()) {
            p.muted { "No trunks are configured, so only this machine (127.0.0.0/8, ::1) may send calls." }
        }
        div.scroll { table #trunks {
            caption.visually-hidden { "Trunks" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Allowed networks" } th scope="col" { "Digest auth" } th scope="col" { "Limits" } th scope="col" { "Source" } th scope="col" { "Actions" } } }
            tbody { @for row in &rows {
                tr.trunk.inactive[!row.active()] {
                    td { (row.entry.name) }
                    td { @for net in &row.entry.allow { code { (net) } " " } }
                    td { @match &row.entry.username { Some(u) => { "user " code { (u) } }, None => "none" } }
                    td {
                        (row.entry.max_calls.map(|n| format!("{n} calls")).unwrap_or_else(|| "no call limit".into()))
                        br;
                        (row.entry.max_cps.map(|n| format!("{n} per second")).unwrap_or_else(|| "no rate limit".into()))
                    }
                    td { (source_cell(row)) }
                    td { (row_actions(&staff, "/admin/trunks", row)) }
                }
            } }
        } }
    };
    html_response(
        StatusCode::OK,
        page(
            "Trunks",
            Some(&staff),
            "/admin/trunks",
            done_notice(&q, "Trunk"),
            body,
        ),
    )
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct TrunkForm {
    csrf: String,
    original: String,
    name: String,
    allow: String,
    username: String,
    password: String,
    max_calls: String,
    max_cps: String,
}

impl TrunkForm {
    fn from_entry(e: &TrunkEntry) -> Self {
        TrunkForm {
            csrf: String::new(),
            original: e.name.clone(),
            name: e.name.clone(),
            allow: e.allow.join("\n"),
            username: e.username.clone().unwrap_or_default(),
            password: String::new(),
            max_calls: e.max_calls.map(|n| n.to_string()).unwrap_or_default(),
            max_cps: e.max_cps.map(|n| n.to_string()).unwrap_or_default(),
        }
    }

    /// The entry; an empty password keeps `old`'s when the username stays.
    fn entry(&self, old: Option<&TrunkEntry>) -> Result<TrunkEntry, String> {
        let username = optional(&self.username);
        let password = optional(&self.password).or_else(|| {
            old.filter(|o| o.username == username)
                .and_then(|o| o.password.clone())
        });
        Ok(TrunkEntry {
            name: self.name.trim().to_owned(),
            allow: self
                .allow
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            username,
            password,
            max_calls: number("max_calls", &self.max_calls)?,
            max_cps: number("max_cps", &self.max_cps)?,
        })
    }
}

fn trunk_form_page(
    staff: &Staff,
    form: &TrunkForm,
    has_password: bool,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let editing = !form.original.is_empty();
    let title = if editing {
        format!("Edit trunk {}", form.original)
    } else {
        "Add trunk".into()
    };
    let body = html! {
        form #trunk-form method="post" action="/admin/trunks/save" {
            input type="hidden" name="csrf" value=(staff.csrf);
            input type="hidden" name="original" value=(form.original);
            fieldset {
                legend { "The carrier or PBX" }
                (field("name", "Name", &form.name, "Letters, digits, '-', '_' and '.'; used in logs and metrics.", "text"))
                p.field {
                    label for="allow" { "Allowed networks" }
                    textarea #allow name="allow" rows="3" aria-describedby="allow-hint" { (form.allow) }
                    span.hint #allow-hint { "One CIDR per line, e.g. 203.0.113.0/24. Calls from elsewhere get 403." }
                }
            }
            fieldset {
                legend { "Digest authentication (optional)" }
                (field("username", "Username", &form.username, "", "text"))
                (field("password", "Password", "", if has_password { "Leave blank to keep the current password." } else { "" }, "password"))
            }
            fieldset {
                legend { "Limits (optional)" }
                (field("max_calls", "Most calls at once", &form.max_calls, "Over it: 486 Busy Here.", "text"))
                (field("max_cps", "Most new calls per second", &form.max_cps, "Over it: 503 with Retry-After.", "text"))
            }
            p { button type="submit" { "Save trunk" } " " a href="/admin/trunks" { "Cancel" } }
        }
    };
    html_response(
        status,
        page(&title, Some(staff), "/admin/trunks", notice, body),
    )
}

async fn trunk_new(staff: Staff) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    trunk_form_page(
        &staff,
        &TrunkForm::default(),
        false,
        StatusCode::OK,
        Notice::None,
    )
}

async fn trunk_edit(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<KeyQuery>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    match console.settings.rows::<TrunkEntry>(&*console.store).await {
        Ok(rows) => match rows.iter().find(|r| r.active() && r.entry.name == q.key) {
            Some(row) => trunk_form_page(
                &staff,
                &TrunkForm::from_entry(&row.entry),
                row.entry.password.is_some(),
                StatusCode::OK,
                Notice::None,
            ),
            None => error_page(Some(&staff), StatusCode::NOT_FOUND, "No such trunk."),
        },
        Err(e) => from_api(&staff, e.into()),
    }
}

async fn trunk_save(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<TrunkForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    let old = match console.settings.rows::<TrunkEntry>(&*console.store).await {
        Ok(rows) => rows
            .into_iter()
            .find(|r| r.active() && r.entry.name == form.original)
            .map(|r| r.entry),
        Err(e) => return from_api(&staff, e.into()),
    };
    let has_password = old.as_ref().is_some_and(|o| o.password.is_some());
    let entry = match form.entry(old.as_ref()) {
        Ok(e) => e,
        Err(message) => {
            return trunk_form_page(
                &staff,
                &form,
                has_password,
                StatusCode::BAD_REQUEST,
                Notice::Error(message),
            )
        }
    };
    let key = entry.name.clone();
    let original = optional(&form.original);
    match api::save_entry(&console, &staff, original.as_deref(), entry).await {
        Ok(()) => done_redirect("/admin/trunks", "saved", &key),
        Err(e) if e.0 == StatusCode::SERVICE_UNAVAILABLE => from_api(&staff, e),
        Err(e) => trunk_form_page(&staff, &form, has_password, e.0, Notice::Error(e.1)),
    }
}

// ------------------------------------------------------------------ users

async fn users_page(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<KeyQuery>,
) -> Response {
    users_view(
        &console,
        &staff,
        StatusCode::OK,
        match q.done.as_str() {
            "created" => Notice::Status(format!("Account {:?} created.", q.key)),
            "updated" => Notice::Status(format!("Account {:?} updated.", q.key)),
            "deleted" => Notice::Status(format!("Account {:?} deleted.", q.key)),
            _ => Notice::None,
        },
    )
    .await
}

async fn users_view(
    console: &Console,
    staff: &Staff,
    status: StatusCode,
    notice: Notice,
) -> Response {
    if let Some(r) = refuse_non_admin(staff) {
        return r;
    }
    let accounts = match auth::accounts(&*console.store).await {
        Ok(a) => a,
        Err(e) => return from_api(staff, e.into()),
    };
    let role_select = |id: &str, current: Role| {
        html! {
            select id=(id) name="role" {
                @for r in [Role::Viewer, Role::Admin] { option value=(r.as_str()) selected[r == current] { (r.as_str()) } }
            }
        }
    };
    let body = html! {
        div.scroll { table #users {
            caption.visually-hidden { "Accounts" }
            thead { tr { th scope="col" { "Name" } th scope="col" { "Role" } th scope="col" { "Created" } th scope="col" { "Change" } } }
            tbody { @for a in &accounts { tr {
                td { (a.name) }
                td { (a.role.as_str()) }
                td { (format_time(a.created_unix_us)) }
                td {
                    form.inline method="post" action="/admin/users/update" {
                        input type="hidden" name="csrf" value=(staff.csrf);
                        input type="hidden" name="name" value=(a.name);
                        label for={ "role-" (a.name) } { "Role" } (role_select(&format!("role-{}", a.name), a.role))
                        label for={ "pw-" (a.name) } { "New password" }
                        input id={ "pw-" (a.name) } type="password" name="password" autocomplete="new-password" placeholder="unchanged";
                        button type="submit" { "Update" span.visually-hidden { " " (a.name) } }
                    }
                    form.inline method="post" action="/admin/users/delete" {
                        input type="hidden" name="csrf" value=(staff.csrf);
                        input type="hidden" name="name" value=(a.name);
                        button.danger type="submit" { "Delete" span.visually-hidden { " " (a.name) } }
                    }
                }
            } } }
        } }
        h2 { "Add an account" }
        form #user-form method="post" action="/admin/users" {
            input type="hidden" name="csrf" value=(staff.csrf);
            (field("new-name", "Username", "", "Letters, digits, '.', '-', '_', '@'.", "text"))
            (field("new-password", "Password", "", "At least 8 characters.", "password"))
            p.field { label for="new-role" { "Role" } (role_select("new-role", Role::Viewer)) }
            p { button type="submit" { "Add account" } }
        }
    };
    html_response(
        status,
        page("Users", Some(staff), "/admin/users", notice, body),
    )
}

#[derive(Deserialize)]
struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(rename = "new-name", default)]
    name: String,
    #[serde(rename = "new-password", default)]
    password: String,
    #[serde(default)]
    role: String,
}

/// The users page after an account change: the list with a notice, or the
/// page again with the error.
async fn account_changed(
    console: &Console,
    staff: &Staff,
    name: &str,
    change: Result<api::AccountChange<'_>, String>,
    done: &str,
) -> Response {
    let result = match change {
        Ok(change) => api::change_account(console, staff, name, change).await,
        Err(message) => Err(ApiError(StatusCode::BAD_REQUEST, message)),
    };
    match result {
        Ok(()) => done_redirect("/admin/users", done, name),
        Err(e) => users_view(console, staff, e.0, Notice::Error(e.1)).await,
    }
}

async fn user_create(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<NewUserForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    let change = form
        .role
        .parse::<Role>()
        .map(|role| api::AccountChange::Create {
            password: &form.password,
            role,
        });
    account_changed(&console, &staff, form.name.trim(), change, "created").await
}

#[derive(Deserialize)]
struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn user_update(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<UserForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    let password = optional(&form.password);
    let change = form
        .role
        .parse::<Role>()
        .map(|role| api::AccountChange::Update {
            role,
            password: password.as_deref(),
        });
    account_changed(&console, &staff, &form.name, change, "updated").await
}

async fn user_delete(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Form(form): Form<UserForm>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff).or_else(|| refuse_bad_csrf(&staff, &form.csrf)) {
        return r;
    }
    account_changed(
        &console,
        &staff,
        &form.name,
        Ok(api::AccountChange::Delete),
        "deleted",
    )
    .await
}

// ------------------------------------------------------------- access log

#[derive(Deserialize, Default)]
#[serde(default)]
struct OffsetQuery {
    offset: u64,
}

async fn access_page(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Query(q): Query<OffsetQuery>,
) -> Response {
    if let Some(r) = refuse_non_admin(&staff) {
        return r;
    }
    const PAGE: u32 = 100;
    let records = match console.store.list_access(PAGE, q.offset).await {
        Ok(r) => r,
        Err(e) => return from_api(&staff, e.into()),
    };
    let body = html! {
        p { "Every sign-in, transcript view, export and configuration change, newest first. These records are hash-chained with the calls: " code { "echo-gateway audit verify" } " checks them." }
        div.scroll { table #access {
            thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "On" } th scope="col" { "From" } th scope="col" { "Details" } } }
            tbody { @for r in &records { tr {
                td { (format_time(r.at_unix_us)) }
                td { (r.actor) }
                td { code { (r.action) } }
                td { @if r.action.starts_with("call.") { a href={ "/calls/" (r.target) } { (r.target) } } @else { (r.target) } }
                td { (r.source) }
                td { @if r.detail.as_object().is_some_and(|o| !o.is_empty()) { code.detail { (r.detail.to_string()) } } }
            } } }
        } }
        nav.pager aria-label="Pages" {
            @if q.offset > 0 { a href={ "/admin/access?offset=" (q.offset.saturating_sub(u64::from(PAGE))) } { "← Newer" } }
            @if records.len() == PAGE as usize { a href={ "/admin/access?offset=" (q.offset + u64::from(PAGE)) } { "Older →" } }
        }
    };
    html_response(
        StatusCode::OK,
        page(
            "Access log",
            Some(&staff),
            "/admin/access",
            Notice::None,
            body,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_accounts_only_loopback_learns_how_to_make_one() {
        let far = setup_page("192.0.2.1".parse().unwrap());
        assert_eq!(far.status(), StatusCode::FORBIDDEN);
        let near = setup_page("127.0.0.1".parse().unwrap());
        assert_eq!(near.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn corrected_terms_are_marked_once_each() {
        let html =
            highlight("refill of metformin and Metformin", &["metformin".into()]).into_string();
        assert_eq!(
            html,
            "refill of <mark>metformin</mark> and <mark>Metformin</mark>"
        );
        let none = highlight("a < b", &[]).into_string();
        assert_eq!(none, "a &lt; b");
    }

    #[test]
    fn query_strings_are_percent_encoded() {
        let q = CallQuery {
            medication: Some("met form in".into()),
            q: Some("a&b".into()),
            ..CallQuery::default()
        };
        let text = query_string(&q, Some(50));
        assert!(text.contains("medication=met+form+in"), "{text}");
        assert!(
            text.contains("q=a%26b") && text.contains("offset=50"),
            "{text}"
        );
        assert!(!text.contains("from="), "blank fields are left out: {text}");
        let back: CallQuery = serde_urlencoded::from_str(&text).unwrap();
        assert_eq!((back.medication, back.q), (q.medication, q.q));
    }
}
