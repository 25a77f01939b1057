//! The portal's operator pages in headless Chromium:
//! - the dashboard (crates/cairn/tests/browser/dashboard.mjs): an admin (an API token) sees
//!   the job, never run, starts it with "Run now", and its run appears with its status; the
//!   server holds that run, started through the API;
//! - a restore operator (crates/cairn/tests/browser/operator.mjs) restores one user's
//!   OneDrive folder into a third user's OneDrive; the simulator then holds the folder's
//!   files there, hash for hash.
//!
//! Needs node, Chromium and `npm install` in crates/cairn/tests/browser (.ci/run does
//! both); elsewhere it says so and passes, in CI it fails.

mod common;

use cairn_server::auth::{self, Role};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn configure(dir: &Path, sim: &cairn_testkit::SimTenant, service: &str) -> PathBuf {
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
services = ["{service}"]
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
    let state = common::state(&configure(tmp.path(), &sim, "mail"));
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

    let text = common::node(
        &dir,
        "dashboard.mjs",
        &chromium,
        &[
            ("CAIRN_URL", format!("{public}/").to_string()),
            ("CAIRN_TOKEN", admin.to_string()),
            ("CAIRN_JOB", "nightly".to_string()),
        ],
        240,
    )
    .await;
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

/// Serves the portal of `state` on a random port: its address and the server's task.
async fn serve(
    state: std::sync::Arc<cairn_server::State>,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let app = cairn_server::app(state);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (public, server)
}

async fn json(req: reqwest::RequestBuilder) -> Value {
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_an_operator_restores_a_users_onedrive_folder_to_a_third_user() {
    let Some((dir, chromium)) = common::browser() else {
        return;
    };
    let sim = cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 8,
        users: 3,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 0,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 24,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let state = common::state(&configure(tmp.path(), &sim, "onedrive"));
    let operator = auth::create(
        &state.store,
        "rita",
        Role::RestoreOperator,
        &Default::default(),
        None,
    )
    .unwrap();
    let (public, server) = serve(state.clone()).await;
    let http = reqwest::Client::new();

    // The backup of every OneDrive.
    let job = state.job("nightly").unwrap().unwrap();
    let id = cairn_server::start(&state, job, "api").unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let run = json(
            http.get(format!("{public}/api/v1/runs/{id}"))
                .bearer_auth(&operator),
        )
        .await;
        if run["status"] != "running" && !state.running.is_running("nightly") {
            assert_eq!(run["status"], "succeeded", "{run}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the backup did not end: {run}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The first user's folder with the most files, and what it holds in the simulator.
    let users: Vec<String> = json(
        http.get(format!(
            "{}/v1.0/users?$select=userPrincipalName",
            sim.url()
        ))
        .bearer_auth(sim.token().await),
    )
    .await["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
        .collect();
    let (from, to) = (&users[0], &users[2]);
    let listing = json(
        http.get(format!("{public}/api/v1/ls"))
            .query(&[("target", format!("{from}@1")), ("path", "onedrive".into())])
            .bearer_auth(&operator),
    )
    .await;
    // The manifest names a file by its drive and path: `OneDrive/FOLDER/…`.
    fn files(m: &[cairn_testkit::ManifestEntry], folder: &str) -> Vec<(String, String)> {
        let mut v: Vec<_> = m
            .iter()
            .filter(|e| e.kind == "file")
            .filter_map(|e| {
                let p = e.path.strip_prefix(&format!("OneDrive/{folder}/"))?;
                Some((p.to_string(), e.sha256.clone()))
            })
            .collect();
        v.sort();
        v
    }
    // A folder of the first user's OneDrive (the fullest) that the third user lacks.
    let mut folders: Vec<(u64, String)> = listing["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["items"].as_u64().unwrap(),
                f["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    folders.sort_by(|a, b| b.cmp(a));
    let theirs = sim.manifest(to).await;
    let name = folders
        .into_iter()
        .map(|(_, n)| n)
        .find(|n| files(&theirs, n).is_empty())
        .unwrap_or_else(|| panic!("a folder of {from}'s that {to} lacks: {listing}"));
    let source = files(&sim.manifest(from).await, &name);
    assert!(!source.is_empty(), "{from}'s folder {name} holds files");

    let text = common::node(
        &dir,
        "operator.mjs",
        &chromium,
        &[
            ("CAIRN_URL", format!("{public}/").to_string()),
            ("CAIRN_TOKEN", operator.to_string()),
            ("CAIRN_FROM", from.to_string()),
            ("CAIRN_FOLDER", name.to_string()),
            ("CAIRN_TO", to.to_string()),
        ],
        240,
    )
    .await;
    assert!(text.contains("ok: an operator restored a folder"), "{text}");

    // The third user's OneDrive holds the folder, file for file, hash for hash; the first
    // user's is as it was.
    assert_eq!(files(&sim.manifest(to).await, &name), source);
    assert_eq!(files(&sim.manifest(from).await, &name), source);
    server.abort();
}
