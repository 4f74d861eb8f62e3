//! The JSON API under `/api/v1` (described by `openapi.json`, served at
//! `/api/v1/openapi.json`). Errors are `{"error": "…"}` with 400 (bad
//! input), 401 (no session), 403 (role or CSRF), 404, 409, 429 or 503.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use echo_audit::{CallDetail, CallId, CallPage, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{self, AccountError, Role, Staff};
use super::settings::{ChangeError, Entry, Row};
use super::{legs, CallQuery, Console};
use crate::config::{RouteEntry, TrunkEntry};

/// The OpenAPI 3.1 description of `/api/v1`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// An API error: a status and a message for a person.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl ApiError {
    fn bad(message: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "console api: store");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the database is unavailable".into(),
        )
    }
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        let status = match &e {
            ChangeError::Invalid(_) => StatusCode::BAD_REQUEST,
            ChangeError::NotFound => StatusCode::NOT_FOUND,
            ChangeError::Exists(_) => StatusCode::CONFLICT,
            ChangeError::Store(_) | ChangeError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let status = match &e {
            AccountError::BadName | AccountError::ShortPassword => StatusCode::BAD_REQUEST,
            AccountError::Exists(_) | AccountError::LastAdmin => StatusCode::CONFLICT,
            AccountError::Unknown(_) => StatusCode::NOT_FOUND,
            AccountError::Store(_) | AccountError::Hash(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, e.to_string())
    }
}

type ApiResult<T = Response> = Result<T, ApiError>;

/// 401 for a request without a live session.
pub fn unauthenticated(no_accounts: bool) -> Response {
    let message = if no_accounts {
        "no accounts yet: create the first admin with `echo-gateway users add NAME --role admin`"
    } else {
        "sign in first: POST /api/v1/session"
    };
    ApiError(StatusCode::UNAUTHORIZED, message.into()).into_response()
}

/// 503 when the store cannot be read.
pub fn store_unavailable() -> Response {
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "the database is unavailable".into(),
    )
    .into_response()
}

fn require_admin(staff: &Staff) -> ApiResult<()> {
    if staff.is_admin() {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "this needs the admin role".into(),
        ))
    }
}

/// Changes need the session's CSRF token in `X-CSRF-Token`.
fn require_csrf(staff: &Staff, headers: &HeaderMap) -> ApiResult<()> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if staff.csrf_ok(sent) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "missing or wrong X-CSRF-Token (GET /api/v1/session gives it)".into(),
        ))
    }
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(v)| v)
        .map_err(|e| ApiError::bad(e.body_text()))
}

/// The API's routes.
pub(super) fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route(
            "/api/v1/session",
            get(whoami).post(sign_in).delete(sign_out),
        )
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/{id}", get(get_call))
        .route("/api/v1/calls/{id}/export", get(export_call))
        .route("/api/v1/turns.csv", get(turns_csv))
        .route(
            "/api/v1/routes",
            get(list::<RouteEntry>).post(create::<RouteEntry>),
        )
        .route(
            "/api/v1/routes/{key}",
            get(get_one::<RouteEntry>)
                .put(update::<RouteEntry>)
                .delete(delete::<RouteEntry>),
        )
        .route(
            "/api/v1/trunks",
            get(list::<TrunkEntry>).post(create::<TrunkEntry>),
        )
        .route(
            "/api/v1/trunks/{key}",
            get(get_one::<TrunkEntry>)
                .put(update::<TrunkEntry>)
                .delete(delete::<TrunkEntry>),
        )
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::put(update_user).delete(delete_user),
        )
        .route("/api/v1/access", get(access_log))
        .route("/api/v1/health", get(health))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

// ---------------------------------------------------------------- session

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

fn session_json(staff: &Staff) -> Value {
    json!({ "user": staff.name, "role": staff.role, "csrf": staff.csrf })
}

async fn whoami(staff: Staff) -> Json<Value> {
    Json(session_json(&staff))
}

/// Signs in (shared with the page): `Ok((token, staff))`, or the error to
/// show. Counts failures against the rate limit and logs both outcomes.
pub(super) async fn sign_in_checked(
    console: &Console,
    username: &str,
    password: &str,
    source: std::net::IpAddr,
) -> Result<(String, Staff), ApiError> {
    let keys = auth::login_keys(source, username);
    if let Err(wait) = console.login_allowed(&keys) {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed sign-ins; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    match auth::sign_in(&*console.store, username, password, source).await? {
        Some((token, staff)) => {
            console.login_succeeded(&keys[1]);
            console.log(
                &staff.name,
                "session.sign_in",
                &staff.name,
                source,
                json!({}),
            );
            Ok((token, staff))
        }
        None => {
            console.login_failed(&keys);
            // Whoever typed it is not known: the name tried is the target.
            console.log(
                "anonymous",
                "session.sign_in_failed",
                username,
                source,
                json!({}),
            );
            Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "wrong username or password".into(),
            ))
        }
    }
}

async fn sign_in(
    State(console): State<Arc<Console>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    body: Result<Json<Credentials>, JsonRejection>,
) -> ApiResult {
    let creds = json_body(body)?;
    let source = peer.ip().to_canonical();
    let (token, staff) =
        sign_in_checked(&console, &creds.username, &creds.password, source).await?;
    let cookie = auth::set_cookie(auth::SESSION_COOKIE, &token, Some(auth::SESSION_LIFETIME));
    Ok(([(header::SET_COOKIE, cookie)], Json(session_json(&staff))).into_response())
}

async fn sign_out(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
) -> ApiResult {
    require_csrf(&staff, &headers)?;
    auth::sign_out(&*console.store, &staff).await?;
    console.log(
        &staff.name,
        "session.sign_out",
        &staff.name,
        staff.source,
        json!({}),
    );
    Ok((
        [(header::SET_COOKIE, auth::clear_cookie(auth::SESSION_COOKIE))],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

// ------------------------------------------------------------------ calls

/// A page of calls with the numbers masked (the call itself shows them).
pub(super) async fn calls_page(console: &Console, query: &CallQuery) -> ApiResult<CallPage> {
    let filter = query.filter().map_err(ApiError::bad)?;
    let mut page = console.store.list_calls(&filter).await?;
    for summary in &mut page.calls {
        summary.call.caller.0 = super::mask_number(summary.call.caller.expose());
        summary.call.called.0 = super::mask_number(summary.call.called.expose());
    }
    Ok(page)
}

async fn list_calls(
    State(console): State<Arc<Console>>,
    _staff: Staff,
    query: Result<Query<CallQuery>, QueryRejection>,
) -> ApiResult<Json<CallPage>> {
    let Query(query) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    Ok(Json(calls_page(&console, &query).await?))
}

/// One call and its chain's status; the view is logged.
pub(super) async fn call_detail(
    console: &Console,
    staff: &Staff,
    id: &str,
    action: &str,
) -> ApiResult<(CallDetail, Value)> {
    let id = CallId(id.to_owned());
    let Some(detail) = console.store.get_call(&id).await? else {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such call".into()));
    };
    let report = echo_audit::verify_call(&*console.store, &id).await?;
    let chain = match report.first() {
        None => json!({ "verified": true, "records": report.records }),
        Some(f) => json!({
            "verified": false,
            "records": report.records,
            "broken_at": f.chain_seq,
            "finding": f.to_string(),
        }),
    };
    console.log(&staff.name, action, id.as_str(), staff.source, json!({}));
    Ok((detail, chain))
}

async fn get_call(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (detail, chain) = call_detail(&console, &staff, &id, "call.view").await?;
    let mut value = detail.to_json();
    value["chain"] = chain;
    Ok(Json(value))
}

async fn export_call(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult {
    let (detail, chain) = call_detail(&console, &staff, &id, "call.export").await?;
    let mut value = detail.to_json();
    value["chain"] = chain;
    let body = serde_json::to_string_pretty(&value).unwrap_or_default();
    let file = format!("attachment; filename=\"call-{}.json\"", safe_name(&id));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&file).unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

fn safe_name(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The CSV header of the turns export.
pub const TURNS_CSV_HEADER: &str = "call_id,call_started_utc,route,outcome,turn,speaker,endpointing_ms,recognition_ms,dialogue_ms,synthesis_ms,send_ms,total_ms,corrections,barge_in";

async fn turns_csv(
    State(console): State<Arc<Console>>,
    staff: Staff,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> ApiResult {
    let Query(range) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let bound = |v: &Option<String>, end: bool, name: &str| {
        v.as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| super::parse_time(s, end).map_err(|e| ApiError::bad(format!("{name}: {e}"))))
            .transpose()
    };
    let from = bound(&range.from, false, "from")?;
    let to = bound(&range.to, true, "to")?;
    let rows = console.store.list_turns(from, to, 0).await?;
    let mut out = String::from(TURNS_CSV_HEADER);
    out.push('\n');
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    for row in &rows {
        let t = &row.turn;
        let (l, total) = legs(&t.timings);
        let corrections = t.corrections.expose().as_array().map_or(0, Vec::len);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            csv(row.call_id.as_str()),
            super::format_time(row.call_started_unix_us),
            csv(&row.route),
            row.outcome.map(|o| o.as_str()).unwrap_or(""),
            t.seq,
            t.speaker.as_str(),
            ms(l[0]),
            ms(l[1]),
            ms(l[2]),
            ms(l[3]),
            ms(l[4]),
            ms(total),
            corrections,
            t.barge_in_us.is_some(),
        ));
    }
    console.log(
        &staff.name,
        "turns.export",
        &format!(
            "{}..{}",
            range.from.as_deref().unwrap_or(""),
            range.to.as_deref().unwrap_or("")
        ),
        staff.source,
        json!({ "rows": rows.len() }),
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"echo-turns.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

/// A CSV field, quoted when it needs to be.
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

// ------------------------------------------------------- trunks and routes

fn row_json<E: Entry>(row: &Row<E>) -> Value {
    json!({
        "entry": row.entry.redacted(),
        "source": row.source,
        "active": row.active(),
        "changed_by": row.changed_by,
        "changed_unix_us": row.changed_unix_us,
    })
}

async fn list<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    let rows = console.settings.rows::<E>(&*console.store).await?;
    Ok(Json(Value::Array(rows.iter().map(row_json).collect())))
}

async fn get_one<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    Path(key): Path<String>,
) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    let rows = console.settings.rows::<E>(&*console.store).await?;
    rows.iter()
        .find(|r| r.entry.key() == key)
        .map(|r| Json(row_json(r)))
        .ok_or(ApiError(
            StatusCode::NOT_FOUND,
            format!("no {} {key:?}", E::KIND),
        ))
}

/// Saves an entry (shared with the pages) and logs the change.
pub(super) async fn save_entry<E: Entry>(
    console: &Console,
    staff: &Staff,
    old_key: Option<&str>,
    entry: E,
) -> ApiResult<()> {
    let key = entry.key().to_owned();
    let before = console
        .settings
        .save(&*console.store, &staff.name, old_key, entry.clone())
        .await?;
    let action = format!(
        "{}.{}",
        E::KIND,
        if before.is_some() { "update" } else { "create" }
    );
    console.log(
        &staff.name,
        &action,
        &key,
        staff.source,
        json!({ "before": before.map(|b| b.redacted()), "after": entry.redacted() }),
    );
    Ok(())
}

/// Deletes an entry (shared with the pages) and logs it.
pub(super) async fn delete_entry<E: Entry>(
    console: &Console,
    staff: &Staff,
    key: &str,
) -> ApiResult<()> {
    let before: E = console
        .settings
        .delete(&*console.store, &staff.name, key)
        .await?;
    console.log(
        &staff.name,
        &format!("{}.delete", E::KIND),
        key,
        staff.source,
        json!({ "before": before.redacted() }),
    );
    Ok(())
}

async fn create<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    body: Result<Json<E>, JsonRejection>,
) -> ApiResult {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    let entry = json_body(body)?;
    save_entry(&console, &staff, None, entry.clone()).await?;
    Ok((StatusCode::CREATED, Json(entry.redacted())).into_response())
}

async fn update<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Result<Json<E>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    let entry = json_body(body)?;
    save_entry(&console, &staff, Some(&key), entry.clone()).await?;
    Ok(Json(entry.redacted()))
}

async fn delete<E: Entry>(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    delete_entry::<E>(&console, &staff, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    role: Role,
    #[serde(default)]
    password: Option<String>,
}

async fn list_users(State(console): State<Arc<Console>>, staff: Staff) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    Ok(Json(
        serde_json::to_value(auth::accounts(&*console.store).await?).unwrap_or_default(),
    ))
}

/// A change to an account, made and logged the same way by the API and the
/// pages.
pub(super) enum AccountChange<'a> {
    /// `user.create`
    Create {
        /// Its password.
        password: &'a str,
        /// Its role.
        role: Role,
    },
    /// `user.update`: a new role and, if given, a new password.
    Update {
        /// The new role.
        role: Role,
        /// The new password.
        password: Option<&'a str>,
    },
    /// `user.delete`
    Delete,
}

/// Makes an account change and writes it to the access log.
pub(super) async fn change_account(
    console: &Console,
    staff: &Staff,
    name: &str,
    change: AccountChange<'_>,
) -> ApiResult<()> {
    let store = &*console.store;
    let (action, detail) = match change {
        AccountChange::Create { password, role } => {
            auth::create_account(store, name, password, role, false).await?;
            ("user.create", json!({ "role": role }))
        }
        AccountChange::Update { role, password } => {
            auth::update_account(store, name, role, password).await?;
            (
                "user.update",
                json!({ "role": role, "password_changed": password.is_some() }),
            )
        }
        AccountChange::Delete => {
            auth::delete_account(store, name).await?;
            ("user.delete", json!({}))
        }
    };
    console.log(&staff.name, action, name, staff.source, detail);
    Ok(())
}

async fn create_user(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    body: Result<Json<NewUser>, JsonRejection>,
) -> ApiResult {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    let user = json_body(body)?;
    let change = AccountChange::Create {
        password: &user.password,
        role: user.role,
    };
    change_account(&console, &staff, &user.name, change).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": user.name, "role": user.role })),
    )
        .into_response())
}

async fn update_user(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Result<Json<UserChange>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    let change = json_body(body)?;
    let update = AccountChange::Update {
        role: change.role,
        password: change.password.as_deref(),
    };
    change_account(&console, &staff, &name, update).await?;
    Ok(Json(json!({ "name": name, "role": change.role })))
}

async fn delete_user(
    State(console): State<Arc<Console>>,
    staff: Staff,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&staff)?;
    require_csrf(&staff, &headers)?;
    change_account(&console, &staff, &name, AccountChange::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --------------------------------------------------------- access, health

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    limit: Option<u32>,
    offset: Option<u64>,
}

async fn access_log(
    State(console): State<Arc<Console>>,
    staff: Staff,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    require_admin(&staff)?;
    let Query(page) = query.map_err(|e| ApiError::bad(e.body_text()))?;
    let limit = page.limit.unwrap_or(100).clamp(1, 1000);
    let records = console
        .store
        .list_access(limit, page.offset.unwrap_or(0))
        .await?;
    Ok(Json(serde_json::to_value(records).unwrap_or_default()))
}

async fn health(State(console): State<Arc<Console>>, _staff: Staff) -> Json<super::health::Health> {
    Json(super::health::Health::from_metrics(
        &console.metrics_text(),
        &console.rates,
        std::time::Instant::now(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv("plain"), "plain");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn the_openapi_document_names_every_route() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        for path in [
            "/api/v1/session",
            "/api/v1/calls",
            "/api/v1/calls/{id}",
            "/api/v1/calls/{id}/export",
            "/api/v1/turns.csv",
            "/api/v1/routes",
            "/api/v1/routes/{key}",
            "/api/v1/trunks",
            "/api/v1/trunks/{key}",
            "/api/v1/users",
            "/api/v1/users/{name}",
            "/api/v1/access",
            "/api/v1/health",
        ] {
            assert!(doc["paths"][path].is_object(), "openapi.json lacks {path}");
        }
    }
}
