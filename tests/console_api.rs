//! The console's JSON API against a running gateway: sign-in, roles, CSRF,
//! bad input, every endpoint, live route changes that real SIP calls (sipp)
//! follow without a restart, and the access log that records it all.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("ops-admin", "correct horse battery");
const VIEWER: (&str, &str) = ("front-desk", "viewer password 1");

/// Every endpoint, for the "no session" sweep.
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/api/v1/session"),
    ("DELETE", "/api/v1/session"),
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/calls/some-id"),
    ("GET", "/api/v1/calls/some-id/export"),
    ("GET", "/api/v1/turns.csv"),
    ("GET", "/api/v1/routes"),
    ("POST", "/api/v1/routes"),
    ("GET", "/api/v1/routes/ring*"),
    ("PUT", "/api/v1/routes/ring*"),
    ("DELETE", "/api/v1/routes/ring*"),
    ("GET", "/api/v1/trunks"),
    ("POST", "/api/v1/trunks"),
    ("GET", "/api/v1/trunks/open"),
    ("PUT", "/api/v1/trunks/open"),
    ("DELETE", "/api/v1/trunks/open"),
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("PUT", "/api/v1/users/x"),
    ("DELETE", "/api/v1/users/x"),
    ("GET", "/api/v1/access"),
    ("GET", "/api/v1/health"),
];

fn anonymous(gw: &Gateway, method: &str, path: &str) -> HttpResponse {
    http_request(
        gw.http,
        method,
        path,
        &[("Content-Type", "application/json")],
        Some("{}"),
    )
    .unwrap()
}

fn sipp_call(gw: &Gateway, user: &str, hold_ms: u32) -> SippRun {
    gw.sipp()
        .timeout(Duration::from_secs(30))
        .args(["-s", user, "-m", "1", "-d", &hold_ms.to_string()])
        .run("-sn:uac")
}

fn error_of(r: &HttpResponse) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn the_console_api_signs_in_checks_roles_and_changes_routes_live() {
    assert!(
        have_sipp(),
        "sipp not found: install Debian's sip-tester (./x does)"
    );
    let gw = Gateway::start();

    // No account yet: the API says how to make one; pages on loopback too.
    let r = anonymous(&gw, "GET", "/api/v1/calls");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(error_of(&r).contains("users add"), "{}", r.body);
    let r = http_request(gw.http, "GET", "/calls", &[], None).unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("echo-gateway users add"), "{}", r.body);
    // Metrics and health checks stay open (Prometheus, load balancers).
    assert_eq!(gw.http_get("/metrics").0, 200);
    let r = anonymous(&gw, "GET", "/api/v1/openapi.json");
    assert_eq!(r.status, 200);
    assert!(r.json()["paths"]["/api/v1/calls"].is_object());

    gw.add_user(ADMIN.0, "admin", ADMIN.1);
    gw.add_user(VIEWER.0, "viewer", VIEWER.1);

    // No session → 401 everywhere; pages redirect to the sign-in page.
    for (method, path) in ENDPOINTS {
        let r = anonymous(&gw, method, path);
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert!(
            error_of(&r).contains("sign in"),
            "{method} {path}: {}",
            r.body
        );
    }
    let r = http_request(gw.http, "GET", "/calls", &[], None).unwrap();
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/login")),
        "{}",
        r.body
    );

    // Bad sign-ins.
    let r = anonymous(&gw, "POST", "/api/v1/session");
    assert_eq!(r.status, 400, "missing fields: {}", r.body);
    let r = http_request(
        gw.http,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        Some(&json!({ "username": ADMIN.0, "password": "wrong" }).to_string()),
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(error_of(&r), "wrong username or password");

    let admin = gw.sign_in(ADMIN.0, ADMIN.1);
    let viewer = gw.sign_in(VIEWER.0, VIEWER.1);
    assert!(admin.cookie.starts_with("echo_session="));
    let me = gw.api(&viewer, "GET", "/api/v1/session", None).json();
    assert_eq!(
        (me["user"].as_str(), me["role"].as_str()),
        (Some(VIEWER.0), Some("viewer"))
    );

    // The viewer reads calls and health, and nothing an admin manages.
    assert_eq!(gw.api(&viewer, "GET", "/api/v1/calls", None).status, 200);
    assert_eq!(gw.api(&viewer, "GET", "/api/v1/health", None).status, 200);
    for (method, path) in [
        ("GET", "/api/v1/routes"),
        ("POST", "/api/v1/routes"),
        ("DELETE", "/api/v1/routes/ring*"),
        ("GET", "/api/v1/trunks"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/access"),
    ] {
        let r = gw.api(
            &viewer,
            method,
            path,
            Some(&json!({ "match": "9", "app": "echo" })),
        );
        assert_eq!(r.status, 403, "viewer {method} {path}: {}", r.body);
        assert!(error_of(&r).contains("admin role"), "{}", r.body);
    }
    let page = http_request(
        gw.http,
        "GET",
        "/admin/routes",
        &[("Cookie", &viewer.cookie)],
        None,
    )
    .unwrap();
    assert_eq!(page.status, 403);
    assert!(page.body.contains("needs the admin role"), "{}", page.body);

    // A change without the CSRF header is refused, by API and by form.
    let no_csrf = Session {
        csrf: "forged".into(),
        ..admin.clone()
    };
    let r = gw.api(
        &no_csrf,
        "POST",
        "/api/v1/routes",
        Some(&json!({ "match": "4242", "app": "echo" })),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(error_of(&r).contains("X-CSRF-Token"), "{}", r.body);
    let r = http_request(
        gw.http,
        "POST",
        "/admin/routes/save",
        &[
            ("Cookie", &admin.cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some("match=4242&app=echo&csrf=forged"),
    )
    .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);

    // Before the route exists, 4242 gets 404 (routes are configured, none match).
    assert!(
        !sipp_call(&gw, "4242", 100).success(),
        "4242 should not be routed yet"
    );

    // Bad routes are refused with messages a person understands.
    for (body, expect) in [
        (json!({ "match": "4242", "app": "voicemail" }), "app"),
        (json!({ "match": "42*2", "app": "echo" }), "match"),
        (
            json!({ "match": "4242", "app": "echo", "answer_delay_ms": 70000 }),
            "answer_delay_ms",
        ),
        (
            json!({ "match": "4242", "app": "echo", "staff_uri": "frontdesk" }),
            "staff_uri",
        ),
        (
            json!({ "match": "4242", "app": "echo", "colour": "red" }),
            "colour",
        ),
        (json!({ "match": "ring*", "app": "echo" }), "already exists"),
    ] {
        let r = gw.api(&admin, "POST", "/api/v1/routes", Some(&body));
        assert!(
            matches!(r.status, 400 | 409),
            "{body}: {} {}",
            r.status,
            r.body
        );
        assert!(error_of(&r).contains(expect), "{body}: {}", r.body);
    }

    // A call in progress is not dropped by a route change.
    let held = {
        let gw_sip = gw.sip;
        std::thread::spawn(move || {
            Sipp::new(gw_sip)
                .timeout(Duration::from_secs(30))
                .args(["-s", "echo", "-m", "1", "-d", "3000"])
                .run("-sn:uac")
        })
    };
    gw.wait_metric("echo_active_calls", &[], Duration::from_secs(10), |v| {
        v >= 1.0
    });

    let r = gw.api(
        &admin,
        "POST",
        "/api/v1/routes",
        Some(&json!({ "match": "4242", "app": "echo" })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let routes = gw.api(&admin, "GET", "/api/v1/routes", None).json();
    let row = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entry"]["match"] == "4242")
        .expect("4242 listed")
        .clone();
    assert_eq!(row["source"], "console");
    assert_eq!(row["changed_by"], ADMIN.0);

    // The new route answers at once, no restart.
    assert_sipp_ok(&sipp_call(&gw, "4242", 100));
    assert_sipp_ok(&held.join().unwrap());

    // Edit, then delete: 4242 is refused again.
    let r = gw.api(
        &admin,
        "PUT",
        "/api/v1/routes/4242",
        Some(&json!({ "match": "4242", "app": "echo", "answer_delay_ms": 100 })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        gw.api(&admin, "GET", "/api/v1/routes/4242", None).json()["entry"]["answer_delay_ms"],
        100
    );
    assert_eq!(
        gw.api(
            &admin,
            "PUT",
            "/api/v1/routes/nothing",
            Some(&json!({ "match": "nothing", "app": "echo" }))
        )
        .status,
        404
    );
    assert_eq!(
        gw.api(&admin, "DELETE", "/api/v1/routes/4242", None).status,
        204
    );
    assert_eq!(
        gw.api(&admin, "DELETE", "/api/v1/routes/4242", None).status,
        404
    );
    assert!(
        !sipp_call(&gw, "4242", 100).success(),
        "4242 should be gone"
    );

    // A file route overridden, then deleted: shown as such, file untouched.
    let r = gw.api(
        &admin,
        "PUT",
        "/api/v1/routes/ring*",
        Some(&json!({ "match": "ring*", "app": "echo", "answer_delay_ms": 1000 })),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ring = gw.api(&admin, "GET", "/api/v1/routes/ring*", None).json();
    assert_eq!(ring["source"], "override", "{ring}");
    assert_eq!(
        gw.api(&admin, "DELETE", "/api/v1/routes/ring*", None)
            .status,
        204
    );
    let ring = gw.api(&admin, "GET", "/api/v1/routes/ring*", None).json();
    assert_eq!(
        (ring["source"].as_str(), ring["active"].as_bool()),
        (Some("deleted"), Some(false)),
        "{ring}"
    );
    assert!(std::fs::read_to_string(&gw.config_path)
        .unwrap()
        .contains("ring*"));

    // Trunks: created with a password that is never shown; bad CIDRs refused.
    let trunk = json!({ "name": "carrier", "allow": ["192.0.2.0/24"], "username": "u1", "password": "pa55word", "max_calls": 10 });
    let r = gw.api(&admin, "POST", "/api/v1/trunks", Some(&trunk));
    assert_eq!(r.status, 201, "{}", r.body);
    let listed = gw.api(&admin, "GET", "/api/v1/trunks", None);
    assert!(
        !listed.body.contains("pa55word") && listed.body.contains("***"),
        "{}",
        listed.body
    );
    let r = gw.api(
        &admin,
        "POST",
        "/api/v1/trunks",
        Some(&json!({ "name": "typo", "allow": ["192.0.2.1/24"] })),
    );
    assert_eq!(r.status, 400);
    assert!(error_of(&r).contains("host bits set"), "{}", r.body);
    let r = gw.api(
        &admin,
        "POST",
        "/api/v1/trunks",
        Some(&json!({ "name": "twin", "allow": ["192.0.2.0/24"] })),
    );
    assert_eq!(r.status, 400);
    assert!(
        error_of(&r).contains("already allowed for trunk \"carrier\""),
        "{}",
        r.body
    );
    assert_eq!(
        gw.api(&admin, "DELETE", "/api/v1/trunks/carrier", None)
            .status,
        204
    );
    // The open trunk still admits loopback calls.
    assert_sipp_ok(&sipp_call(&gw, "echo", 100));

    // Accounts: create, change, delete; the last admin stays.
    let r = gw.api(
        &admin,
        "POST",
        "/api/v1/users",
        Some(&json!({ "name": "temp", "password": "short", "role": "viewer" })),
    );
    assert_eq!(r.status, 400);
    assert!(error_of(&r).contains("at least 8"), "{}", r.body);
    let r = gw.api(
        &admin,
        "POST",
        "/api/v1/users",
        Some(&json!({ "name": "temp", "password": "long enough", "role": "viewer" })),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        gw.api(
            &admin,
            "POST",
            "/api/v1/users",
            Some(&json!({ "name": "temp", "password": "long enough", "role": "viewer" }))
        )
        .status,
        409
    );
    assert_eq!(
        gw.api(
            &admin,
            "PUT",
            "/api/v1/users/temp",
            Some(&json!({ "role": "admin" }))
        )
        .status,
        200
    );
    assert_eq!(
        gw.api(
            &admin,
            "PUT",
            "/api/v1/users/temp",
            Some(&json!({ "role": "root" }))
        )
        .status,
        400
    );
    assert_eq!(
        gw.api(&admin, "DELETE", "/api/v1/users/temp", None).status,
        204
    );
    let r = gw.api(
        &admin,
        "DELETE",
        &format!("/api/v1/users/{}", ADMIN.0),
        None,
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(error_of(&r).contains("last admin"), "{}", r.body);
    let users = gw.api(&admin, "GET", "/api/v1/users", None);
    assert!(
        !users.body.contains("argon2"),
        "hashes must not be listed: {}",
        users.body
    );

    // Calls: the 4242 call is listed under its route, numbers masked;
    // filters are checked; one call opens, exports; turns export as CSV.
    let calls = gw
        .api(&viewer, "GET", "/api/v1/calls?route=4242", None)
        .json();
    let list = calls["calls"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{calls}");
    assert!(
        list[0]["call"]["caller"].as_str().unwrap().starts_with('•')
            || list[0]["call"]["caller"].as_str().unwrap().len() <= 4,
        "{calls}"
    );
    let id = list[0]["call"]["call_id"].as_str().unwrap().to_owned();
    for bad in [
        "outcome=won",
        "from=yesterday",
        "limit=many",
        "slot=novalue",
    ] {
        let r = gw.api(&viewer, "GET", &format!("/api/v1/calls?{bad}"), None);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(!error_of(&r).is_empty());
    }
    let detail = gw
        .api(&viewer, "GET", &format!("/api/v1/calls/{id}"), None)
        .json();
    assert_eq!(detail["call"]["route"], "4242");
    assert!(
        detail["call"]["caller"].as_str().unwrap().contains("sip"),
        "opened: full number"
    );
    assert_eq!(detail["chain"]["verified"], true, "{detail}");
    assert_eq!(
        gw.api(&viewer, "GET", "/api/v1/calls/no-such-call", None)
            .status,
        404
    );
    let export = gw.api(&viewer, "GET", &format!("/api/v1/calls/{id}/export"), None);
    assert_eq!(export.status, 200);
    assert!(export
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    assert_eq!(export.json()["call"]["call_id"], id.as_str());
    let csv = gw.api(&viewer, "GET", "/api/v1/turns.csv?from=2000-01-01", None);
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(
        csv.body
            .starts_with("call_id,call_started_utc,route,outcome,turn,speaker,endpointing_ms"),
        "{}",
        csv.body
    );
    assert_eq!(
        gw.api(&viewer, "GET", "/api/v1/turns.csv?to=soon", None)
            .status,
        400
    );

    // Health: the same numbers as /metrics.
    let health = gw.api(&viewer, "GET", "/api/v1/health", None).json();
    assert_eq!(health["live_calls"], 0.0, "{health}");
    assert!(health["calls_total"].as_f64().unwrap() >= 3.0, "{health}");

    // The access log has who did what, from where.
    let access = gw
        .api(&admin, "GET", "/api/v1/access?limit=200", None)
        .json();
    let actions: Vec<(String, String, String)> = access
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["actor"].as_str().unwrap_or("").to_owned(),
                a["action"].as_str().unwrap_or("").to_owned(),
                a["source"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (actor, action) in [
        ("cli", "user.create"),
        (ADMIN.0, "session.sign_in"),
        ("anonymous", "session.sign_in_failed"),
        (ADMIN.0, "route.create"),
        (ADMIN.0, "route.update"),
        (ADMIN.0, "route.delete"),
        (ADMIN.0, "trunk.create"),
        (ADMIN.0, "user.delete"),
        (VIEWER.0, "call.view"),
        (VIEWER.0, "call.export"),
        (VIEWER.0, "turns.export"),
    ] {
        assert!(
            actions.iter().any(|(a, x, _)| a == actor && x == action),
            "no {actor} {action} in {actions:?}"
        );
    }
    assert!(actions
        .iter()
        .filter(|(_, x, _)| x == "route.create")
        .all(|(_, _, s)| s == "127.0.0.1"));
    let trunk_change = access
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "trunk.create")
        .unwrap();
    assert!(
        !trunk_change.to_string().contains("pa55word"),
        "{trunk_change}"
    );

    // Sign out ends the session.
    assert_eq!(
        gw.api(&viewer, "DELETE", "/api/v1/session", None).status,
        204
    );
    assert_eq!(gw.api(&viewer, "GET", "/api/v1/calls", None).status, 401);

    // Five wrong passwords from one address, then 429 even for the right one.
    for _ in 0..5 {
        let r = http_request(
            gw.http,
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            Some(&json!({ "username": VIEWER.0, "password": "guess" }).to_string()),
        )
        .unwrap();
        assert!(matches!(r.status, 401 | 429), "{}", r.body);
    }
    let r = http_request(
        gw.http,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        Some(&json!({ "username": VIEWER.0, "password": VIEWER.1 }).to_string()),
    )
    .unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(error_of(&r).contains("try again"), "{}", r.body);
}

#[test]
fn console_route_edits_survive_a_restart_and_override_the_file() {
    assert!(
        have_sipp(),
        "sipp not found: install Debian's sip-tester (./x does)"
    );
    let dir = TempDir::new("console-db");
    let url = format!("sqlite://{}/echo.db", dir.path().display());
    let config = GatewayConfig {
        database_url: Some(url.clone()),
        ..GatewayConfig::default()
    };
    {
        let gw = Gateway::start_with(config.clone());
        gw.add_user(ADMIN.0, "admin", ADMIN.1);
        let admin = gw.sign_in(ADMIN.0, ADMIN.1);
        let r = gw.api(
            &admin,
            "POST",
            "/api/v1/routes",
            Some(&json!({ "match": "7000", "app": "echo" })),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let gw = Gateway::start_with(config);
    assert_sipp_ok(&sipp_call(&gw, "7000", 100));
    let (code, body) = gw.api_get("/api/v1/routes/7000");
    assert_eq!(code, 200, "{body}");
    let row: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(row["source"], "console");
}
