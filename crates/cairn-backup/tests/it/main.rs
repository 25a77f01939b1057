//! The backup engine against the simulator: restore points equal the simulator's manifest,
//! and an incremental downloads only what changed.

use cairn_backup::backup_onedrive;
use cairn_graph::{Credential, GraphClient, GraphConfig, RetryPolicy};
use cairn_repo::{Repo, RepoOptions};
use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

fn graph(s: &SimServer) -> Arc<GraphClient> {
    let c = &s.sim.cfg;
    let mut cfg = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Secret(c.client_secret.clone().into()),
    );
    cfg.graph_url = s.url();
    cfg.login_url = s.url();
    cfg.retry = RetryPolicy {
        max_attempts: 30,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(300),
    };
    Arc::new(GraphClient::new(cfg).unwrap())
}

/// repository path → sha256 of the user's OneDrive files, per the simulator.
async fn manifest(s: &SimServer, user: &str) -> BTreeMap<String, String> {
    let m: Vec<serde_json::Value> =
        reqwest::get(format!("{}/_sim/manifest?resource={user}", s.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    m.into_iter()
        .filter(|e| e["kind"] == "file")
        .map(|e| {
            let p = e["path"]
                .as_str()
                .unwrap()
                .strip_prefix("OneDrive/")
                .unwrap()
                .to_string();
            (
                format!("onedrive/{p}"),
                e["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn restored(repo: &Repo, snap: &str, want: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    want.keys()
        .map(|p| {
            let mut out = Vec::new();
            repo.read(snap, p, &mut out)
                .unwrap_or_else(|e| panic!("{p}: {e}"));
            (p.clone(), hex::encode(sha2::Sha256::digest(&out)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onedrive_restore_points_equal_the_manifest_and_incrementals_download_only_changes() {
    let mut cfg = SimConfig::new(TenantSpec {
        seed: 41,
        users: 2,
        groups: 0,
        sites: 0,
        files_per_drive: 25,
        max_item_size: 2 * 1024 * 1024,
        ..TenantSpec::default()
    });
    cfg.throttle = ThrottleMode::Off;
    cfg.fault_rate = 0.05;
    let sim = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let g = graph(&sim);
    let user = g.get("/users?$select=id").await.unwrap()["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = std::env::temp_dir().join(format!("cairn-backup-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let repo =
        Arc::new(Repo::init(RepoOptions::new(dir.to_str().unwrap(), "pw").unwrap()).unwrap());

    let first = backup_onedrive(g.clone(), repo.clone(), "contoso", &user)
        .await
        .unwrap();
    assert!(first.skipped.is_empty(), "{:?}", first.skipped);
    assert_eq!(first.downloaded, first.files);
    let want = manifest(&sim, &user).await;
    assert_eq!(want.len() as u64, first.files);
    assert_eq!(
        restored(&repo, &first.snapshot.id, &want),
        want,
        "restore point 1 equals the drive"
    );

    let changed: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/_sim/mutate", sim.url()))
        .json(&serde_json::json!({"seed": 3, "count": 6, "resource": user, "kinds": ["file"], "ops": ["create", "modify"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = changed["applied"].as_array().unwrap().len() as u64;
    let second = backup_onedrive(g.clone(), repo.clone(), "contoso", &user)
        .await
        .unwrap();
    assert!(second.skipped.is_empty(), "{:?}", second.skipped);
    assert!(
        second.downloaded <= n && second.downloaded > 0,
        "downloaded {} for {n} changes",
        second.downloaded
    );
    assert_eq!(
        second.snapshot.parent.as_deref(),
        Some(first.snapshot.id.as_str())
    );
    let want2 = manifest(&sim, &user).await;
    assert_eq!(
        restored(&repo, &second.snapshot.id, &want2),
        want2,
        "restore point 2 equals the changed drive"
    );
    // The first restore point still holds the drive as it was.
    assert_eq!(restored(&repo, &first.snapshot.id, &want), want);
    let repo2 = repo.clone();
    assert!(
        tokio::task::spawn_blocking(move || repo2.check(Some("all")))
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
}
