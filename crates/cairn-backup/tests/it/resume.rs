//! kill -9 in the middle of a backup, then a rerun: nothing lost, little fetched twice.

use super::*;
use std::process::Command;

const CHILD: &str = "CAIRN_BACKUP_KILL_CHILD";

/// The child: backs up the user of the parent's simulator into the parent's directory
/// until it is killed.
async fn child(dir: &str) {
    let url = std::env::var("CAIRN_BACKUP_KILL_SIM").unwrap();
    let secret = std::env::var("CAIRN_BACKUP_KILL_SECRET").unwrap();
    let tenant = std::env::var("CAIRN_BACKUP_KILL_TENANT").unwrap();
    let client = std::env::var("CAIRN_BACKUP_KILL_CLIENT").unwrap();
    let mut cfg = GraphConfig::new(&tenant, &client, Credential::Secret(secret.into()));
    cfg.graph_url = url.clone();
    cfg.login_url = url;
    let g = Arc::new(GraphClient::new(cfg).unwrap());
    let dir = std::path::Path::new(dir);
    let repo = Arc::new(
        Repo::open(RepoOptions::new(dir.join("repo").to_str().unwrap(), "pw").unwrap()).unwrap(),
    );
    let catalog = Arc::new(SqliteCatalog::open(&dir.join("catalog.db")).unwrap());
    let mut opts = BackupOptions::new(dir.join("spool"));
    opts.per_resource = 1;
    let engine = Arc::new(Engine::new(
        g,
        repo,
        catalog,
        "contoso",
        opts,
        Arc::new(Silent),
    ));
    let users = engine.users(&[]).await.unwrap();
    engine.run(users[..1].to_vec()).await;
}

fn spooled(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("spool"))
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
    let mut cfg = SimConfig::new(s);
    cfg.throttle = ThrottleMode::Off;
    // Slow enough to be caught half-way.
    cfg.latency = Duration::from_millis(15);
    let sim = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let setup = Setup::new();
    let dir = setup.dir.path().to_path_buf();
    let c = &sim.sim.cfg;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "resume::kill_9_mid_backup_then_rerun_loses_nothing_and_refetches_little",
            "--nocapture",
        ])
        .env(CHILD, &dir)
        .env("CAIRN_BACKUP_KILL_SIM", sim.url())
        .env("CAIRN_BACKUP_KILL_SECRET", &c.client_secret)
        .env("CAIRN_BACKUP_KILL_TENANT", &c.tenant_id)
        .env("CAIRN_BACKUP_KILL_CLIENT", &c.client_id)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(60) && spooled(&dir) < 60 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let held = spooled(&dir);
    assert!(
        held >= 60,
        "the child had spooled {held} messages when it was killed"
    );
    assert!(
        setup.repo.snapshots().unwrap().is_empty(),
        "killed before its restore point"
    );

    let before = stats(&sim).await;
    let engine = setup.engine(graph(&sim));
    let user = users(&engine).await[0].clone();
    let report = engine.run(vec![user.clone()]).await;
    report_ok(&report);
    let after = stats(&sim).await;
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
