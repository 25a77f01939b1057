//! The portal's operator dashboard in headless Chromium
//! (crates/cairn/tests/browser/dashboard.mjs): an admin (an API token) sees the job, never
//! run, starts it with "Run now", and its run appears with its status; the server holds
//! that run, started through the API.
//!
//! Needs node, Chromium and `npm install` in crates/cairn/tests/browser (.ci/run does
//! both); elsewhere it says so and passes, in CI it fails.

mod common;

use cairn_server::auth::{self, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_dashboard_an_admin_runs_a_job_and_sees_its_run() {
    let Some((dir, chromium)) = common::browser() else {
        return;
    };
    let sim = cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 5,
        users: 2,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 3,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 4 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let state = common::state(&configure(tmp.path(), &sim));
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

    let out = tokio::process::Command::new("node")
        .arg(dir.join("dashboard.mjs"))
        .env("CAIRN_URL", format!("{public}/"))
        .env("CAIRN_TOKEN", &admin)
        .env("CAIRN_JOB", "nightly")
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(240), out)
        .await
        .expect("the browser test ends")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: the dashboard runs a job"), "{text}");

    // The run the button started, in the server's history.
    let r = reqwest::Client::new()
        .get(format!("{public}/api/v1/jobs/nightly/runs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let runs: Value = r.json().await.unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["trigger"], "api", "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    server.abort();
}
