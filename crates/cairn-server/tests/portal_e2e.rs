//! The restore portal end to end in headless Chromium, with a person signing in through the
//! simulator's Entra ID sign-in page (crates/cairn/tests/browser/selfservice.mjs): a
//! mailbox user backed up by a job loses a message, signs in as a self-service user, finds
//! it, previews it and restores it where it was (the simulator holds the same MIME again);
//! they cannot reach another user's mailbox (403, and `access.denied` in the audit log);
//! a hostile message previews without anything of it running. Screenshots of the pages are
//! taken on the way (`CAIRN_PORTAL_SCREENSHOTS=1` writes them to docs/portal/).
//!
//! Needs node, Chromium and `npm install` in crates/cairn/tests/browser (.ci/run does
//! both); elsewhere it says so and passes, in CI it fails.

mod common;

use base64::Engine as _;
use cairn_server::auth::{self, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HOSTILE_SUBJECT: &str = "<script>alert('subject')</script> Invoice \"Q4\"";
const ATTACHMENT: &str = "<img src=x onerror=alert(1)>.pdf";

fn hostile(to: &str) -> String {
    [
        "From: \"Mallory <b>\" <mallory@evil.example>",
        &format!("To: {to}"),
        &format!("Subject: {HOSTILE_SUBJECT}"),
        "Date: Tue, 3 Nov 2026 10:00:00 +0000",
        "Message-ID: <hostile-e2e@evil.example>",
        "MIME-Version: 1.0",
        "Content-Type: multipart/mixed; boundary=\"outer\"",
        "",
        "--outer",
        "Content-Type: text/html; charset=utf-8",
        "",
        "<html><head><script>window.__pwned='head';alert('head')</script></head>",
        "<body onload=\"window.__pwned='load'\"><p>Please pay</p>",
        "<img src=\"x\" onerror=\"window.__pwned='img';alert('img')\">",
        "<img src=\"https://evil.example/track.gif\" onerror=\"window.__pwned='img2'\">",
        "<a id=\"js\" href=\"javascript:window.__pwned='link'\">pay here</a>",
        "<svg onload=\"window.__pwned='svg'\"></svg>",
        "<div onclick=\"window.__pwned='div'\">x</div>",
        "<iframe src=\"javascript:parent.__pwned='frame'\"></iframe>",
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

fn configure(dir: &Path, sim: &cairn_testkit::SimTenant, public: &str) -> PathBuf {
    let c = sim.config();
    let secret = dir.join("tenant-secret");
    std::fs::write(&secret, &c.client_secret).unwrap();
    let portal = dir.join("portal-secret");
    std::fs::write(&portal, format!("{}\n", c.client_secret)).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[server]
public-url = "{public}"
[tenants.contoso]
tenant-id = "{tenant}"
client-id = "{client}"
client-secret-file = "{secret}"
graph-url = "{url}"
login-url = "{url}"
portal-client-id = "{client}"
portal-client-secret-file = "{portal}"
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
            portal = portal.display(),
            url = sim.url(),
        ),
    )
    .unwrap();
    config
}

async fn json(req: reqwest::RequestBuilder) -> Value {
    let r = req.send().await.unwrap();
    let (status, url) = (r.status(), r.url().clone());
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_and_restores_their_own_mail_only() {
    let Some((dir, chromium)) = common::browser() else {
        return;
    };
    let sim = cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 21,
        users: 3,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 6,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 8 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await;
    let http = reqwest::Client::new();
    let token = sim.token().await;

    // Who signs in: a user with a password (a mailbox user); someone else to be refused.
    let passwords = json(http.get(format!("{}/_sim/passwords", sim.url()))).await;
    let passwords = passwords.as_array().expect("a list of passwords").clone();
    assert!(passwords.len() >= 2, "{passwords:?}");
    let upn = passwords[0]["user"].as_str().unwrap().to_string();
    let password = passwords[0]["password"].as_str().unwrap().to_string();
    let other = passwords[1]["user"].as_str().unwrap().to_string();

    // The hostile message, put into their Inbox as a restore would put it there.
    let r = http
        .post(format!(
            "{}/v1.0/users/{upn}/mailFolders/inbox/messages",
            sim.url()
        ))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(base64::engine::general_purpose::STANDARD.encode(hostile(&upn)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);

    // The server, listening before it is configured: its public URL is its address.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public = format!("http://{addr}");
    let tmp = tempfile::tempdir().unwrap();
    let state = common::state(&configure(tmp.path(), &sim, &public));
    let admin = auth::create(&state.store, "ann", Role::Admin, &Default::default(), None).unwrap();
    let app = cairn_server::app(state.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });

    // The backup.
    let job = state.job("nightly").unwrap().unwrap();
    let id = cairn_server::start(&state, job, "api").unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let run = json(
            http.get(format!("{public}/api/v1/runs/{id}"))
                .bearer_auth(&admin),
        )
        .await;
        if run["status"] != "running" && !state.running.is_running("nightly") {
            assert_eq!(run["status"], "succeeded", "{run}");
            break;
        }
        assert!(Instant::now() < deadline, "the backup did not end: {run}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A message of their Inbox is deleted: its subject and its MIME's sha256 kept.
    let inbox = json(
        http.get(format!(
            "{}/v1.0/users/{upn}/mailFolders/inbox/messages?$select=id,subject",
            sim.url()
        ))
        .bearer_auth(&token),
    )
    .await;
    let gone = inbox["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            // The first ordinary subject, whatever its script (a Cyrillic one is found as
            // any other).
            let s = m["subject"].as_str().unwrap_or("");
            s.chars().count() > 8 && !s.contains('<') && !s.contains('"')
        })
        .unwrap_or_else(|| panic!("an ordinary message in the Inbox: {inbox}"))
        .clone();
    let (gone_id, subject) = (
        gone["id"].as_str().unwrap().to_string(),
        gone["subject"].as_str().unwrap().to_string(),
    );
    let before = sim.manifest(&upn).await;
    let sha = before
        .iter()
        // Graph's id carries a version suffix the manifest's does not.
        .find(|e| e.id == gone_id || gone_id.starts_with(&format!("{}-", e.id)))
        .unwrap_or_else(|| panic!("{gone_id} in the manifest: {before:?}"))
        .sha256
        .clone();
    let r = http
        .delete(format!("{}/v1.0/users/{upn}/messages/{gone_id}", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    assert!(
        !sim.manifest(&upn).await.iter().any(|e| e.sha256 == sha),
        "the message is gone"
    );

    // The browser: sign in, find, preview, restore; the other mailbox refused.
    let shots = tmp.path().join("shots");
    std::fs::create_dir_all(&shots).unwrap();
    let text = common::node(
        &dir,
        "selfservice.mjs",
        &chromium,
        &[
            ("CAIRN_URL", format!("{public}/").to_string()),
            ("CAIRN_SIM", sim.url().to_string()),
            ("CAIRN_TENANT", "contoso".to_string()),
            ("CAIRN_UPN", upn.to_string()),
            ("CAIRN_PASSWORD", password.to_string()),
            ("CAIRN_OTHER", other.to_string()),
            ("CAIRN_SUBJECT", subject.to_string()),
            ("CAIRN_HOSTILE_SUBJECT", HOSTILE_SUBJECT.to_string()),
            ("CAIRN_ATTACHMENT", ATTACHMENT.to_string()),
            ("CAIRN_SHOTS", shots.display().to_string()),
        ],
        240,
    )
    .await;
    assert!(text.contains("ok: signed in, restored, refused"), "{text}");

    // The message is back, byte for byte.
    let after = sim.manifest(&upn).await;
    assert!(
        after.iter().any(|e| e.sha256 == sha && e.kind == "message"),
        "the restored message ({sha}) in {after:?}"
    );

    // The refusal is in the audit log, naming the person.
    let log = json(
        http.get(format!("{public}/api/v1/audit?limit=10000"))
            .bearer_auth(&admin),
    )
    .await;
    let denied: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let s = r.to_string();
            s.contains("access.denied") && s.to_lowercase().contains(&upn.to_lowercase())
        })
        .collect();
    assert!(
        denied.iter().any(|r| r.to_string().contains(&other)),
        "an access.denied entry for {upn} reaching {other}: {log}"
    );
    server.abort();

    // The screenshots, for docs/portal.md.
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/portal");
    for name in ["signin", "search", "preview", "restored"] {
        let png = shots.join(format!("{name}.png"));
        let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
        assert!(bytes.starts_with(b"\x89PNG"), "{name}.png is a PNG");
        if std::env::var_os("CAIRN_PORTAL_SCREENSHOTS").is_some() {
            std::fs::write(docs.join(format!("{name}.png")), bytes).unwrap();
        }
    }
}
