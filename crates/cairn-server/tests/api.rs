//! The API without a socket (`app(state)` and `oneshot`): every action tried with every
//! role, allowed or refused as docs/server.md's table says; the error shape; the OpenAPI
//! document.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_server::auth::{self, Role};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Fixture {
    _dir: tempfile::TempDir,
    state: Arc<cairn_server::State>,
    tokens: Vec<(Role, String)>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[tenants.contoso]
tenant-id = "t"
client-id = "c"
client-secret-file = "{}"
graph-url = "http://127.0.0.1:9"
login-url = "http://127.0.0.1:9"
[jobs.nightly]
tenant = "contoso"
schedule = "30 2 * * *"
keep-daily = 7
"#,
            secret.display()
        ),
    )
    .unwrap();
    let state = common::state(&config);
    let tokens = Role::ALL
        .iter()
        .map(|r| {
            let t =
                auth::create(&state.store, r.as_str(), *r, &auth::Scope::default(), None).unwrap();
            (*r, t)
        })
        .collect();
    Fixture {
        _dir: dir,
        state,
        tokens,
    }
}

async fn call(
    state: &Arc<cairn_server::State>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, v)
}

use Role::{Admin as A, Auditor as U, BackupOperator as B, RestoreOperator as R};

/// docs/server.md, "Roles": which roles may call what.
fn table() -> Vec<(&'static str, String, Option<Value>, Vec<Role>)> {
    let job = |n: &str| json!({"name": n, "spec": {"tenant": "contoso", "every": "1d"}});
    vec![
        ("GET", "/api/v1/tenants".into(), None, vec![A, B, R, U]),
        ("GET", "/api/v1/jobs".into(), None, vec![A, B, R, U]),
        ("GET", "/api/v1/jobs/nightly".into(), None, vec![A, B, R, U]),
        (
            "GET",
            "/api/v1/jobs/nightly/runs".into(),
            None,
            vec![A, B, R, U],
        ),
        ("GET", "/api/v1/runs/1".into(), None, vec![A, B, R, U]),
        (
            "GET",
            "/api/v1/restore-points".into(),
            None,
            vec![A, B, R, U],
        ),
        ("GET", "/api/v1/approvals".into(), None, vec![A, B, R, U]),
        ("GET", "/api/v1/metrics".into(), None, vec![A, B, R, U]),
        ("POST", "/api/v1/jobs".into(), Some(job("new")), vec![A, B]),
        (
            "PUT",
            "/api/v1/jobs/api-job".into(),
            Some(json!({"tenant": "contoso", "every": "12h"})),
            vec![A, B],
        ),
        ("POST", "/api/v1/jobs/api-job/run".into(), None, vec![A, B]),
        ("DELETE", "/api/v1/jobs/gone".into(), None, vec![A, B]),
        (
            "GET",
            "/api/v1/ls?target=nobody%40x".into(),
            None,
            vec![A, R, U],
        ),
        ("GET", "/api/v1/find?q=x".into(), None, vec![A, R, U]),
        ("GET", "/api/v1/audit".into(), None, vec![A, U]),
        ("GET", "/api/v1/tokens".into(), None, vec![A]),
        (
            "POST",
            "/api/v1/tokens".into(),
            Some(json!({"name": "more", "role": "auditor"})),
            vec![A],
        ),
        ("DELETE", "/api/v1/tokens/nobody".into(), None, vec![A]),
        (
            "POST",
            "/api/v1/forget".into(),
            Some(json!({"keep-last": 3})),
            vec![A],
        ),
        ("POST", "/api/v1/prune".into(), None, vec![A]),
        ("GET", "/api/v1/erasures".into(), None, vec![A, U]),
        (
            "POST",
            "/api/v1/erasures".into(),
            Some(json!({"subject": "nobody@x", "match": ["owner"], "dry_run": true})),
            vec![A],
        ),
        (
            "POST",
            "/api/v1/approvals/999/approve".into(),
            None,
            vec![A],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_with_every_role() {
    let f = fixture();
    for (role, token) in &f.tokens {
        // Fresh objects for the calls that consume them.
        for name in ["api-job", "gone"] {
            let (s, b) = call(
                &f.state,
                "POST",
                "/api/v1/jobs",
                Some(&f.tokens[0].1),
                Some(json!({"name": name, "spec": {"tenant": "contoso", "every": "1d"}})),
            )
            .await;
            assert!(
                s == StatusCode::CREATED || s == StatusCode::CONFLICT,
                "{s} {b}"
            );
        }
        let _ = call(
            &f.state,
            "DELETE",
            "/api/v1/jobs/new",
            Some(&f.tokens[0].1),
            None,
        )
        .await;
        let _ = call(
            &f.state,
            "DELETE",
            "/api/v1/tokens/more",
            Some(&f.tokens[0].1),
            None,
        )
        .await;
        for (method, path, body, allowed) in table() {
            let (status, v) = call(&f.state, method, &path, Some(token), body).await;
            let may = allowed.contains(role);
            if may {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{} {method} {path}: {status} {v}",
                    role.as_str()
                );
                assert!(
                    !status.is_server_error(),
                    "{} {method} {path}: {status} {v}",
                    role.as_str()
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{} {method} {path}: {v}",
                    role.as_str()
                );
                assert_eq!(v["error"]["code"], "forbidden", "{v}");
                assert!(v["error"]["hint"].is_string(), "{v}");
            }
        }
    }
    // Without a token: 401 everywhere but the documents and the probes.
    for (method, path, body, _) in table() {
        let (status, v) = call(&f.state, method, &path, None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "unauthorized");
    }
    for path in ["/healthz", "/api/v1/openapi.json"] {
        let (status, _) = call(&f.state, "GET", path, None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_retention_is_a_request_and_operators_cannot_file_it() {
    let f = fixture();
    let admin = &f.tokens[0].1;
    let operator = &f.tokens[1].1;
    let (s, _) = call(
        &f.state,
        "POST",
        "/api/v1/jobs",
        Some(operator),
        Some(
            json!({"name": "kept", "spec": {"tenant": "contoso", "every": "1d", "keep-daily": 30}}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let shorter = json!({"tenant": "contoso", "every": "1d", "keep-daily": 3});
    let (s, v) = call(
        &f.state,
        "PUT",
        "/api/v1/jobs/kept",
        Some(operator),
        Some(shorter.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(
        &f.state,
        "PUT",
        "/api/v1/jobs/kept",
        Some(admin),
        Some(shorter),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let (_, job) = call(&f.state, "GET", "/api/v1/jobs/kept", Some(admin), None).await;
    assert_eq!(
        job["spec"]["keep-daily"], 30,
        "unchanged until approved: {job}"
    );
    // A longer one is not.
    let (s, v) = call(
        &f.state,
        "PUT",
        "/api/v1/jobs/kept",
        Some(operator),
        Some(json!({"tenant": "contoso", "every": "1d", "keep-daily": 60})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A job of the configuration file is changed there.
    let (s, v) = call(
        &f.state,
        "PUT",
        "/api/v1/jobs/nightly",
        Some(admin),
        Some(json!({"tenant": "contoso", "every": "1d"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("configuration file"),
        "{v}"
    );
    assert!(v["error"]["hint"].is_string(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_with_a_hint() {
    let f = fixture();
    let admin = &f.tokens[0].1;
    for (body, needle) in [
        (
            json!({"name": "x", "spec": {"tenant": "contoso", "schedule": "every day"}}),
            "cron",
        ),
        (
            json!({"name": "x", "spec": {"tenant": "nope", "every": "1d"}}),
            "tenant",
        ),
        (
            json!({"name": "x", "spec": {"tenant": "contoso", "every": "1d", "services": ["fax"]}}),
            "fax",
        ),
        (
            json!({"name": "../x", "spec": {"tenant": "contoso", "every": "1d"}}),
            "job name",
        ),
        (
            json!({"name": "x", "spec": {"tenant": "contoso", "every": "1d", "verify": "150%"}}),
            "job x: verify = \\\"150%\\\" is not a share",
        ),
        (
            json!({"name": "x", "spec": {"tenant": "contoso", "every": "1d", "verify-schedule": "7d"}}),
            "no verify",
        ),
        (
            json!({"name": "x", "spec": {"tenant": "contoso", "every": "1d", "verify": "5%", "verify-schedule": "sometimes"}}),
            "verify-schedule",
        ),
    ] {
        let (s, v) = call(&f.state, "POST", "/api/v1/jobs", Some(admin), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        let text = v["error"].to_string();
        assert!(text.contains(needle), "{text}");
        assert!(v["error"]["hint"].is_string(), "{v}");
    }
    let (s, v) = call(&f.state, "GET", "/api/v1/jobs/missing", Some(admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = call(&f.state, "GET", "/api/v1/nowhere", Some(admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_route() {
    let f = fixture();
    let (s, doc) = call(&f.state, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for p in [
        "/api/v1/jobs",
        "/api/v1/jobs/{name}/run",
        "/api/v1/jobs/{name}/runs",
        "/api/v1/runs/{id}",
        "/api/v1/restore-points",
        "/api/v1/forget",
        "/api/v1/approvals/{id}/approve",
        "/api/v1/tokens",
        "/api/v1/erasures",
        "/api/v1/holds/{id}",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    // A run says whether it was a backup or a restore drill, and what the drill found.
    for s in [
        "Kind",
        "DrillSummary",
        "DrillFailure",
        "EraseBody",
        "ErasureView",
        "PointView",
    ] {
        assert!(doc["components"]["schemas"][s].is_object(), "{s} missing");
    }
}
