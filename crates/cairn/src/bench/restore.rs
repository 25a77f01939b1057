//! `cairn bench restore`: mailboxes and drives of a simulated tenant are backed up (not
//! measured), then restored all at once into a folder beside the originals (measured), and
//! the rate is set against the simulator's write limits.
//!
//! A restored message costs several requests (a lookup of an existing copy, the creation
//! from MIME, a PATCH of its flags); a file one or two. What bounds a restore is therefore
//! the per-mailbox request budget (Exchange: 4 concurrent requests and 10,000 per 10 minutes
//! per mailbox) and, for files, the tenant's SharePoint resource units: the table gives the
//! requests each item took and the share of the mailbox budget the restore used.

use crate::sim::runtime;
use cairn_backup::{BackupOptions, Engine, Silent};
use cairn_repo::{Repo, RepoOptions};
use cairn_restore::{Collision, RestoreOptions, RestoreTarget, Restorer, Selection};
use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use clap::Args;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct RestoreBench {
    /// Users whose mailbox and OneDrive are restored, all at once.
    #[arg(long, default_value_t = 10)]
    users: u32,
    #[arg(long, default_value_t = 40)]
    mail_per_mailbox: u32,
    #[arg(long, default_value_t = 10)]
    files_per_drive: u32,
    /// Largest generated message or file, bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    max_item_size: u64,
    /// Latency the simulator adds to each response.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Items restored at once per resource.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Simulate without throttling (the rate is then bound by latency alone).
    #[arg(long)]
    no_throttle: bool,
}

pub fn run(b: &RestoreBench) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let spec = TenantSpec {
            users: b.users,
            groups: 0,
            sites: 0,
            mail_per_mailbox: b.mail_per_mailbox,
            events_per_mailbox: 0,
            contacts_per_mailbox: 0,
            files_per_drive: b.files_per_drive,
            max_item_size: b.max_item_size,
            ..TenantSpec::default()
        };
        let mut cfg = SimConfig::new(spec);
        cfg.latency = Duration::from_millis(b.latency_ms);
        if b.no_throttle {
            cfg.throttle = ThrottleMode::Off;
        }
        let server = SimServer::start(cfg, "127.0.0.1:0".parse()?).await?;
        let graph = Arc::new(crate::sim::client_for(&server, None)?);
        let dir = std::env::temp_dir().join(format!("cairn-bench-restore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo_path = dir.join("repo");
        let repo = Arc::new(
            tokio::task::spawn_blocking(move || {
                Repo::init(RepoOptions::new(repo_path.to_str().unwrap_or("repo"), "bench")?)
            })
            .await??,
        );
        let catalog = Arc::new(cairn_catalog::SqliteCatalog::open(
            &dir.join("catalog.db"),
        )?);
        let engine = Arc::new(Engine::new(
            graph.clone(),
            repo.clone(),
            catalog.clone(),
            "bench",
            BackupOptions {
                services: vec![cairn_backup::Service::Mail, cairn_backup::Service::OneDrive],
                ..BackupOptions::new(dir.join("spool"))
            },
            Arc::new(Silent),
        ));
        let users = engine.users(&[]).await?;
        eprintln!("backing up {} users (not measured)…", users.len());
        let backup = engine.run(users.clone()).await;
        let mailboxes = backup
            .resources
            .iter()
            .filter(|r| r.snapshot.is_some())
            .count();

        let stats0 = stats(&server).await?;
        let requests0 = graph.requests();
        let start = Instant::now();
        let restores = users.iter().map(|u| {
            let restorer = Restorer::new("bench", graph.clone(), repo.clone(), catalog.clone());
            let sel = Selection::new(&u.name);
            let opts = RestoreOptions {
                target: RestoreTarget::Folder(None),
                collision: Collision::Skip,
                concurrency: b.concurrency,
            };
            async move { restorer.run(&sel, &opts).await }
        });
        let reports = futures::future::join_all(restores).await;
        let secs = start.elapsed().as_secs_f64();
        let stats1 = stats(&server).await?;
        let (mut items, mut bytes, mut failed) = (0u64, 0u64, 0u64);
        for r in reports.iter().flatten() {
            items += r.restored;
            bytes += r.restored_bytes;
            failed += r.failed_total;
        }
        let errors = reports.iter().filter(|r| r.is_err()).count();
        let requests = graph.requests() - requests0;
        let throttled = stats1["throttled_total"].as_u64().unwrap_or(0)
            - stats0["throttled_total"].as_u64().unwrap_or(0);
        // Exchange's per-mailbox budget: the sustained requests per second it allows.
        let limits = server.sim.throttle.limits();
        let per_mailbox_limit = if b.no_throttle {
            f64::INFINITY
        } else {
            (limits.mailbox_requests_per_10min as f64 / 600.0)
                .min(limits.mailbox_concurrency as f64 / (b.latency_ms.max(1) as f64 / 1000.0))
        };
        let per_mailbox = requests as f64 / secs / mailboxes.max(1) as f64;
        outln!(
            "| users | items | MB | seconds | items/s | MB/s | requests/item | 429s | req/s per mailbox | limit | share of limit |"
        );
        outln!("|---|---|---|---|---|---|---|---|---|---|---|");
        outln!(
            "| {} | {items} | {:.1} | {secs:.1} | {:.1} | {:.2} | {:.2} | {throttled} | {per_mailbox:.1} | {} | {} |",
            users.len(),
            bytes as f64 / 1e6,
            items as f64 / secs,
            bytes as f64 / 1e6 / secs,
            requests as f64 / items.max(1) as f64,
            if per_mailbox_limit.is_finite() {
                format!("{per_mailbox_limit:.1}")
            } else {
                "none".into()
            },
            if per_mailbox_limit.is_finite() {
                format!("{:.0} %", 100.0 * per_mailbox / per_mailbox_limit)
            } else {
                "-".into()
            },
        );
        if failed > 0 || errors > 0 {
            eprintln!("warning: {failed} items failed, {errors} restores did not run");
        }
        server.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
}

async fn stats(server: &SimServer) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::get(format!("{}/_sim/stats", server.url()))
        .await?
        .json()
        .await?)
}
