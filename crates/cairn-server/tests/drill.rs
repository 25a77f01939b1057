//! Restore drills of `cairn serve`, end to end against the simulator: a job with `verify`
//! backs up, then reads a sample of what it wrote back (a run of kind `drill` in the run
//! history, in the metrics and the audit log); after a pack of the repository is damaged,
//! the drill on its own schedule fails, names the items, and alerts by webhook.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cairn_server::auth::{self, Role};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// A tenant of one user with a few small messages.
async fn tenant() -> cairn_testkit::SimTenant {
    cairn_testkit::SimTenant::start(cairn_sim::TenantSpec {
        seed: 7,
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 12,
        events_per_mailbox: 0,
        contacts_per_mailbox: 0,
        files_per_drive: 0,
        items_per_list: 0,
        max_item_size: 16 * 1024,
        ..cairn_sim::TenantSpec::default()
    })
    .await
}

/// The configuration of a server backing up `sim` with job `nightly` (its mail, once a
/// day: only the test starts it), the job's `extra` keys and alerts to `hook`.
fn configure(dir: &Path, sim: &cairn_testkit::SimTenant, extra: &str, hook: &str) -> PathBuf {
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
{extra}
[jobs.nightly.alerts]
webhook-url = "{hook}"
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

/// `GET path` through the server's router, with `token`.
async fn get(state: &Arc<cairn_server::State>, path: &str, token: &str) -> Value {
    let req = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The job's runs once `n` of them are over (newest first), through the API.
async fn finished_runs(state: &Arc<cairn_server::State>, token: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let runs = get(state, "/api/v1/jobs/nightly/runs", token).await;
        let done: Vec<Value> = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] != "running")
            .cloned()
            .collect();
        if done.len() >= n && !state.running.is_running("nightly") {
            return done;
        }
        assert!(Instant::now() < deadline, "no {n} runs in time: {runs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The largest file under the repository's `data/`: the pack of the messages.
fn largest_pack(repo: &Path) -> PathBuf {
    let mut packs: Vec<(u64, PathBuf)> = Vec::new();
    let mut dirs = vec![repo.join("data")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                packs.push((std::fs::metadata(&p).unwrap().len(), p));
            }
        }
    }
    packs.sort();
    packs.pop().expect("a pack").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_with_verify_backs_up_then_reads_its_restore_points_back() {
    let sim = tenant().await;
    let (hook, got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(dir.path(), &sim, "verify = \"100%\"", &hook);
    let state = common::state(&config);
    let token = auth::create(
        &state.store,
        "ops",
        Role::Auditor,
        &Default::default(),
        None,
    )
    .unwrap();

    let job = state.job("nightly").unwrap().unwrap();
    let backup = cairn_server::start(&state, job, "api").unwrap().unwrap();
    let runs = finished_runs(&state, &token, 2).await;
    let (drill, run) = (&runs[0], &runs[1]);
    assert_eq!(run["id"], backup, "{runs:?}");
    assert_eq!(run["kind"], "backup", "{run}");
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(drill["kind"], "drill", "{drill}");
    assert_eq!(drill["trigger"], "after-backup", "{drill}");
    assert_eq!(drill["status"], "succeeded", "{drill}");
    assert!(drill["error"].is_null(), "{drill}");
    let d = &drill["drill"];
    assert_eq!(d["sample_percent"], 100.0, "{drill}");
    assert_eq!(d["points"], 1, "{drill}");
    assert_eq!(
        d["checked"], run["items"],
        "every item of the point: {drill} {run}"
    );
    assert!(d["checked"].as_u64().unwrap() > 0, "{drill}");
    assert!(d["bytes"].as_u64().unwrap() > 0, "{drill}");
    assert_eq!(d["failed"], 0, "{drill}");

    let detail = get(&state, &format!("/api/v1/runs/{}", drill["id"]), &token).await;
    assert_eq!(detail["kind"], "drill", "{detail}");
    assert!(detail.get("drill_failures").is_none(), "{detail}");
    let job = get(&state, "/api/v1/jobs/nightly", &token).await;
    assert_eq!(job["last_run"]["id"], backup, "{job}");
    assert_eq!(job["last_drill"]["id"], drill["id"], "{job}");
    assert_eq!(job["spec"]["verify"], "100%", "{job}");

    let metrics = get(&state, "/api/v1/metrics", &token).await;
    let metrics = metrics.as_str().unwrap();
    for line in [
        r#"cairn_drill_runs_total{job="nightly",status="succeeded"} 1"#,
        r#"cairn_drill_failed_items{job="nightly"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
    let mut audit = Vec::new();
    state
        .audit
        .since(chrono::DateTime::UNIX_EPOCH, &mut |r| {
            audit.push(r);
            true
        })
        .unwrap();
    let entry = audit
        .iter()
        .find(|r| r.entry.action == "drill.run")
        .expect("the drill is in the audit log");
    assert!(entry.entry.target.contains("nightly"), "{entry:?}");
    assert!(entry.entry.outcome.starts_with("ok"), "{entry:?}");
    assert!(
        got.lock().unwrap().is_empty(),
        "no alert for a drill that passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_drill_over_a_damaged_pack_fails_and_alerts_naming_items() {
    let sim = tenant().await;
    let (hook, got) = common::receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = configure(
        dir.path(),
        &sim,
        "verify = \"100%\"\nverify-schedule = \"1s\"",
        &hook,
    );
    let state = common::state(&config);
    let token = auth::create(
        &state.store,
        "ops",
        Role::Auditor,
        &Default::default(),
        None,
    )
    .unwrap();

    // A backup; with a schedule of its own, no drill follows it.
    let job = state.job("nightly").unwrap().unwrap();
    cairn_server::start(&state, job, "api").unwrap().unwrap();
    let runs = finished_runs(&state, &token, 1).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:?}");
    let items = runs[0]["items"].as_u64().unwrap();
    let user = cairn_server::jobs::run(&state.store, runs[0]["id"].as_i64().unwrap())
        .unwrap()
        .unwrap()
        .results[0]
        .resource
        .clone();

    // A flipped byte in the middle of the largest pack.
    let pack = largest_pack(&dir.path().join("repo"));
    let mut bytes = std::fs::read(&pack).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&pack, bytes).unwrap();

    // The scheduler: the drill is due a second after it starts.
    let (stop, rx) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(cairn_server::schedule(state.clone(), rx));
    let deadline = Instant::now() + Duration::from_secs(120);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no alert in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    scheduler.await.unwrap();

    // (A second drill may have come due before the scheduler stopped: the first one is
    // looked at.)
    let runs = finished_runs(&state, &token, 2).await;
    let drills: Vec<&Value> = runs.iter().filter(|r| r["kind"] == "drill").collect();
    assert_eq!(drills.len(), runs.len() - 1, "{runs:?}");
    let drill = drills[drills.len() - 1];
    assert_eq!(drill["trigger"], "schedule", "{drill}");
    assert_eq!(drill["status"], "failed", "{drill}");
    let failed = drill["drill"]["failed"].as_u64().unwrap();
    assert!(
        failed > 0 && failed < items,
        "only what the pack held: {drill}"
    );
    assert!(
        drill["error"].as_str().unwrap().contains("hint:"),
        "{drill}"
    );

    let detail = get(&state, &format!("/api/v1/runs/{}", drill["id"]), &token).await;
    let failures = detail["drill_failures"].as_array().unwrap();
    assert_eq!(failures.len() as u64, failed, "{detail}");
    for f in failures {
        assert_eq!(f["resource"], user.as_str(), "{f}");
        assert_eq!(f["tenant"], "contoso", "{f}");
        assert!(!f["path"].as_str().unwrap().is_empty(), "{f}");
        assert!(!f["reason"].as_str().unwrap().is_empty(), "{f}");
    }

    let hooks = got.lock().unwrap().clone();
    assert_eq!(hooks.len(), drills.len(), "one alert per drill");
    let (headers, body) = &hooks[0];
    assert_eq!(headers["x-cairn-event"], "drill-failed");
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["kind"], "drill-failed", "{v}");
    assert_eq!(v["job"], "nightly", "{v}");
    assert_eq!(v["run"], drill["id"], "{v}");
    assert!(v["summary"].as_str().unwrap().contains("nightly"), "{v}");
    let first = failures[0]["path"].as_str().unwrap();
    let details = v["details"].to_string();
    assert!(
        details.contains(&user) && details.contains(first),
        "{details}"
    );

    let metrics = get(&state, "/api/v1/metrics", &token).await;
    let metrics = metrics.as_str().unwrap();
    let line = format!(r#"cairn_drill_failed_items{{job="nightly"}} {failed}"#);
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in\n{metrics}"
    );
    let line = format!(
        r#"cairn_drill_runs_total{{job="nightly",status="failed"}} {}"#,
        drills.len()
    );
    assert!(
        metrics.lines().any(|l| l == line),
        "{line} not in\n{metrics}"
    );
}

#[test]
fn a_bad_drill_option_is_refused_at_start_naming_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("tenant-secret");
    std::fs::write(&secret, "s").unwrap();
    let config = dir.path().join("config.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                "repository = \"repo\"\ncache-dir = \"cache\"\n[tenants.contoso]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret-file = \"{}\"\n[jobs.nightly]\ntenant = \"contoso\"\nevery = \"1d\"\n{extra}\n",
                secret.display()
            ),
        )
        .unwrap();
    };
    let env = || cairn_config::Environment::from_pairs([("CAIRN_PASSWORD", "pw")]);
    // A share that is not one: the configuration does not load.
    write("verify = \"5\"");
    let e = cairn_config::Config::load(Some(&config), env()).unwrap_err();
    assert!(e.to_string().contains("job nightly"), "{e}");
    assert!(e.hint().unwrap().contains("5%"), "{e}");
    // A drill schedule that is neither cron nor an interval: the server does not start.
    write("verify = \"5%\"\nverify-schedule = \"weekly\"");
    let cfg = cairn_config::Config::load(Some(&config), env()).unwrap();
    let ws = cairn_app::Workspace::new(cfg, &Default::default())
        .unwrap()
        .serving();
    let e = cairn_server::State::new(Arc::new(ws)).err().unwrap();
    let c = cairn_app::classify(&e);
    assert_eq!(c.class, cairn_app::Class::User, "{e:#}");
    assert!(
        c.message.contains("job nightly") && c.message.contains("weekly"),
        "{e:#}"
    );
    assert!(c.hint.unwrap().contains("7d"), "{e:#}");
}
