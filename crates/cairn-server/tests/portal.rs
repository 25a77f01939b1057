//! The portal's pages over HTTP: served without a token, with the right types, and written
//! for the strict Content Security Policy (no inline script, style or event handler).

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

fn state(dir: &std::path::Path) -> Arc<cairn_server::State> {
    let secret = dir.join("secret");
    std::fs::write(&secret, "s").unwrap();
    let config = dir.join("config.toml");
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
"#,
            secret.display()
        ),
    )
    .unwrap();
    common::state(&config)
}

async fn get(state: &Arc<cairn_server::State>, path: &str) -> (StatusCode, HeaderMap, String) {
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_served_with_their_types_and_fit_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());

    let (status, headers, html) = get(&state, "/").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let lower = html.to_ascii_lowercase();
    // Every script is a file of this origin; no inline script, style or handler.
    let mut scripts = 0;
    for (i, _) in lower.match_indices("<script") {
        scripts += 1;
        let tag = &lower[i..i + lower[i..].find('>').unwrap()];
        assert!(tag.contains("src=\"/assets/"), "inline script: {tag}");
        assert!(
            lower[i..].contains("></script>"),
            "a script with a body: {tag}"
        );
    }
    assert_eq!(scripts, 1);
    assert!(!lower.contains("<style") && !lower.contains(" style="));
    assert!(!lower.contains("javascript:"));
    for (i, _) in lower.match_indices(" on") {
        let rest = &lower[i + 3..];
        let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        assert!(
            !rest[word.len()..].starts_with('='),
            "an event handler attribute near {}",
            &lower[i..i + 20]
        );
    }
    assert!(lower.contains("href=\"/assets/app.css\""));
    assert!(lower.contains("href=\"/login\""), "the way to sign in");
    assert!(lower.contains("<meta name=\"viewport\""));

    let (status, headers, js) = get(&state, "/assets/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(js.contains("/api/v1/me") && js.contains("X-CSRF-Token"));
    assert!(!js.contains("innerHTML"), "data is set as text");

    let (status, headers, css) = get(&state, "/assets/app.css").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/css; charset=utf-8");
    assert!(css.contains("@media"), "a layout for phones");

    let (status, _, body) = get(&state, "/assets/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = get(&state, "/assets/nothing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path());
    for path in [
        "/api/v1/preview?target=a%40x&path=mail%2Fx.eml",
        "/api/v1/preview/attachment?target=a%40x&path=mail%2Fx.eml&index=0",
        "/api/v1/preview/file?target=a%40x&path=x",
    ] {
        let (status, _, body) = get(&state, path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
}
