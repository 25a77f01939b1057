//! kill -9 in the middle of a backup, then a rerun: nothing lost, little fetched twice.

use super::*;
use cairn_graph::RetryPolicy;
use cairn_testkit::SimApp;
use std::process::Command;
use std::time::Duration;

const CHILD: &str = "CAIRN_BACKUP_KILL_CHILD";

/// The child: backs up the user of the parent's simulator into the parent's workspace
/// until it is killed.
async fn child(dir: &str) {
    let var = |k: &str| std::env::var(k).unwrap();
    let app = SimApp {
        url: var("CAIRN_BACKUP_KILL_SIM"),
        tenant_id: var("CAIRN_BACKUP_KILL_TENANT"),
        client_id: var("CAIRN_BACKUP_KILL_CLIENT"),
        client_secret: var("CAIRN_BACKUP_KILL_SECRET"),
    };
    let setup = Workspace::open(std::path::Path::new(dir));
    let mut opts = BackupOptions::new(setup.spool_dir());
    opts.per_resource = 1;
    let engine = Arc::new(Engine::new(
        app.graph(RetryPolicy::default()),
        setup.repo.clone(),
        setup.catalog.clone(),
        "contoso",
        opts,
        Arc::new(Silent),
    ));
    let users = engine.users(&[]).await.unwrap();
    engine.run(users[..1].to_vec()).await;
}

/// Messages held in a spool directory.
fn spooled(spool: &std::path::Path) -> usize {
    std::fs::read_dir(spool)
        .map(|d| {
            d.flatten()
                .map(|s| std::fs::read_dir(s.path()).map(|x| x.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backup_then_rerun_loses_nothing_and_refetches_little() {
    if let Ok(dir) = std::env::var(CHILD) {
        child(&dir).await;
        return;
    }
    let mut s = spec(77, 1);
    s.mail_per_mailbox = 300;
    let sim = SimTenant::start_with(s, |c| {
        // Slow enough to be caught half-way.
        c.latency = Duration::from_millis(15);
    })
    .await;
    let setup = Workspace::new();
    let spool = setup.spool_dir();
    let app = sim.app();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resume::kill_9_mid_backup_then_rerun_loses_nothing_and_refetches_little",
            "--nocapture",
        ])
        .env(CHILD, setup.path())
        .env("CAIRN_BACKUP_KILL_SIM", &app.url)
        .env("CAIRN_BACKUP_KILL_SECRET", &app.client_secret)
        .env("CAIRN_BACKUP_KILL_TENANT", &app.tenant_id)
        .env("CAIRN_BACKUP_KILL_CLIENT", &app.client_id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) && spooled(&spool) < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let held = spooled(&spool);
    assert!(
        held >= 60,
        "the child had spooled {held} messages when it was killed"
    );
    assert!(
        setup.repo.snapshots().unwrap().is_empty(),
        "killed before its restore point"
    );

    let before = sim.stats().await;
    let engine = backup_engine(&setup, sim.graph());
    let user = users(&engine).await[0].clone();
    let report = engine.run(vec![user.clone()]).await;
    report_ok(&report);
    let after = sim.stats().await;
    let label = "GET /users/{id}/messages/{id}/$value";
    let refetched = endpoint(&after, label) - endpoint(&before, label);
    let total = manifest(&sim, &user.id)
        .await
        .values()
        .filter(|v| v.0 == "message")
        .count() as u64;
    assert!(
        refetched + held as u64 <= total + 5,
        "{refetched} messages fetched after the kill, {held} were spooled, {total} in all"
    );
    assert_eq!(
        restore_point(&setup, &user.name, 1),
        manifest(&sim, &user.id).await
    );
    let repo = setup.repo.clone();
    assert!(
        tokio::task::spawn_blocking(move || repo.check(None))
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
}
