//! Microsoft's Graph SDK for Python (`msgraph-sdk`), unmodified, against the simulator:
//! `tests/sdk/run.py` lists, pages, reads deltas, downloads, batches and meets errors the
//! way generated Graph clients do (OData function calls such as `delta()`, advanced
//! queries, typed `ODataError`s), so the simulator is proven to serve any Graph client, not
//! only Cairn's own.

use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Requests per mailbox per 10 minutes: enough for the script's mail checks on one
/// mailbox, few enough that it exhausts another's quickly to meet a 429.
const MAILBOX_BUDGET: u32 = 60;

#[tokio::test(flavor = "multi_thread")]
async fn microsofts_python_sdk_runs_against_the_simulator() {
    let have_sdk = std::process::Command::new("python3")
        // msgraph-core's batch support imports `deprecated` without declaring it
        // (msgraph-sdk-python-core#1030).
        .args(["-c", "import msgraph, deprecated"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        have_sdk,
        "Microsoft's Graph SDK for Python is needed: python3 -m pip install msgraph-sdk deprecated"
    );
    let spec = TenantSpec {
        seed: 11,
        users: 6,
        groups: 2,
        sites: 2,
        mail_per_mailbox: 30,
        events_per_mailbox: 4,
        contacts_per_mailbox: 4,
        files_per_drive: 12,
        items_per_list: 4,
        max_item_size: 256 * 1024,
        ..TenantSpec::default()
    };
    let mut cfg = SimConfig::new(spec.clone());
    cfg.throttle = ThrottleMode::Microsoft;
    cfg.limits.mailbox_requests_per_10min = MAILBOX_BUDGET;
    let server = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts");
    let sim = &server.sim.cfg;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/run.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .args([
            &server.url(),
            &sim.tenant_id,
            &sim.client_id,
            &sim.client_secret,
        ])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the SDK run ends within two minutes")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the SDK run failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let line = |check: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("ok: {check}")))
            .unwrap_or_else(|| panic!("no '{check}' check in:\n{stdout}"))
            .to_string()
    };
    assert_eq!(line("users "), format!("ok: users {}", spec.users));
    assert_eq!(line("groups"), format!("ok: groups {}", spec.groups));
    for check in [
        "users-count",
        "mail-folders",
        "message-delta",
        "mime",
        "message-search",
        "event-contact",
        "drive-delta",
        "sites-lists",
    ] {
        line(check);
    }
    assert_eq!(
        line("batch"),
        "ok: batch drive=200 inbox=200 missing=404 site=200 user=200"
    );
    assert!(line("teams").starts_with("ok: teams channels="));
    assert!(line("chats").starts_with("ok: chats chats="));
    assert_eq!(line("error-404"), "ok: error-404 ErrorItemNotFound");
    assert!(line("error-429").starts_with("ok: error-429 ApplicationThrottled"));
    assert_eq!(lines.last().copied(), Some("done"), "{stdout}");
    server.stop().await;
}
