//! `cairn bench workers`: the same simulated tenant backed up by 1, 2, 4… `cairn worker`
//! processes sharing a PostgreSQL catalog, a NATS JetStream queue and one repository, side by
//! side in one run. Each configuration gets a fresh simulator, repository, catalog schema
//! and queue; the run is started by `cairn backup` with `nats` set, as `cairn serve` starts
//! it, and timed from the first task queued to the last result gathered.

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

#[derive(Args, Clone)]
pub struct WorkersBench {
    #[arg(long, default_value_t = 24)]
    users: u32,
    #[arg(long, default_value_t = 100)]
    mail_per_mailbox: u32,
    #[arg(long, default_value_t = 10)]
    files_per_drive: u32,
    /// Latency the simulator adds to each response.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// Worker processes per configuration (comma-separated): a row each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    workers: Vec<u32>,
    /// Resources each worker works on at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// PostgreSQL server for the catalogs (a schema per configuration, dropped after).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// NATS JetStream server (a queue per configuration).
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
}

const SECRET: &str = "cairn-bench-secret";

/// Kills the children when dropped, whatever happened.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Row {
    workers: u32,
    resources: usize,
    items: u64,
    seconds: f64,
    requests: u64,
    throttled: u64,
    bound: f64,
    peak_mailbox: u64,
    peak_ru: u64,
    ru_budget: u64,
}

pub fn run(b: &WorkersBench) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for &n in &b.workers {
        eprintln!(
            "bench workers: {n} worker(s), {} users × {} messages + {} files, {} ms",
            b.users, b.mail_per_mailbox, b.files_per_drive, b.latency_ms
        );
        rows.push(configuration(b, n.max(1))?);
    }
    outln!(
        "\n{} users × {} messages + {} files per drive, latency {} ms, Microsoft's throttling, {} resources per worker\n",
        b.users,
        b.mail_per_mailbox,
        b.files_per_drive,
        b.latency_ms,
        b.parallel
    );
    outln!(
        "| workers | resources | items read | seconds | items/s | vs 1 worker | vs the simulator's bound | requests | 429s | peak requests on a mailbox | peak RU in a minute (budget) |"
    );
    outln!("|---|---|---|---|---|---|---|---|---|---|---|");
    let base = rows.first().map(|r| r.items as f64 / r.seconds.max(1e-9));
    for r in &rows {
        let rate = r.items as f64 / r.seconds.max(1e-9);
        outln!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.2}× | {:.0} % | {} | {} | {} | {} ({}) |",
            r.workers,
            r.resources,
            r.items,
            r.seconds,
            rate,
            base.map(|b| rate / b).unwrap_or(1.0),
            100.0 * rate / r.bound.max(1e-9),
            r.requests,
            r.throttled,
            r.peak_mailbox,
            r.peak_ru,
            r.ru_budget
        );
    }
    Ok(())
}

fn configuration(b: &WorkersBench, workers: u32) -> anyhow::Result<Row> {
    let exe = std::env::current_exe().context("finding the cairn executable")?;
    let root = std::env::temp_dir().join(format!(
        "cairn-bench-workers-{}-{workers}",
        std::process::id()
    ));
    std::fs::create_dir_all(&root)?;
    let dir = Removed(root);
    let (sim, url, tenant, client) = super::start_sim(
        &exe,
        &[
            "--users".into(),
            b.users.to_string(),
            "--groups".into(),
            "0".into(),
            "--sites".into(),
            "0".into(),
            "--mail-per-mailbox".into(),
            b.mail_per_mailbox.to_string(),
            "--files-per-drive".into(),
            b.files_per_drive.to_string(),
            "--latency-ms".into(),
            b.latency_ms.to_string(),
        ],
        SECRET,
    )?;
    let mut children = Children(vec![sim]);
    let tag = format!("bench{}w{workers}", std::process::id());
    let write = |name: &str, text: &str| -> anyhow::Result<std::path::PathBuf> {
        let p = dir.0.as_path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let secret = write("secret", SECRET)?;
    let password = write("password", "bench")?;
    let catalog = format!("{}?schema={tag}", b.postgres);
    let config = write(
        "config.toml",
        &format!(
            "repository = {repo:?}\npassword-file = {password:?}\ncatalog = {catalog:?}\nnats = {nats:?}\n\n[tenants.sim]\ntenant-id = {tenant:?}\nclient-id = {client:?}\nclient-secret-file = {secret:?}\ngraph-url = {url:?}\nlogin-url = {url:?}\n",
            repo = dir.0.as_path().join("repo"),
            nats = format!("{}?queue={tag}", b.nats),
        ),
    )?;
    let cairn = |args: &[&str], cache: &str| {
        let mut c = Command::new(&exe);
        c.arg("--config")
            .arg(&config)
            .args(args)
            .env(
                cairn_config::env::CAIRN_CACHE_DIR,
                dir.0.as_path().join(cache),
            )
            .env(
                cairn_config::env::CAIRN_LOG,
                std::env::var(cairn_config::env::CAIRN_LOG).unwrap_or_else(|_| "error".into()),
            )
            .stdin(Stdio::null());
        c
    };
    let init = cairn(&["init"], "starter").output()?;
    anyhow::ensure!(
        init.status.success(),
        "cairn init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    for i in 0..workers {
        children.0.push(
            cairn(
                &["worker", "--parallel", &b.parallel.to_string()],
                &format!("worker{i}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `cairn worker`")?,
        );
    }
    let start = Instant::now();
    let out = cairn(
        &[
            "backup", "--users", "all", "--groups", "none", "--sites", "none", "--json",
        ],
        "starter",
    )
    .output()
    .context("running `cairn backup`")?;
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "cairn backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).context("the backup's report")?;
    let resources = report["resources"].as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = resources.iter().filter(|r| !r["error"].is_null()).collect();
    anyhow::ensure!(failed.is_empty(), "resources failed: {failed:?}");
    let stats: Value = crate::sim::runtime()?.block_on(async {
        anyhow::Ok(
            reqwest::get(format!("{url}/_sim/stats"))
                .await?
                .json()
                .await?,
        )
    })?;
    drop(children);
    drop_schema(&b.postgres, &tag);
    Ok(Row {
        workers,
        resources: resources.len(),
        // Messages and files read from Graph: what the simulator's bound counts (restore
        // points also hold sidecars, folders and settings).
        items: resources.iter().filter_map(|r| r["fetched"].as_u64()).sum(),
        seconds,
        requests: report["requests"].as_u64().unwrap_or(0),
        throttled: report["throttled"].as_u64().unwrap_or(0),
        bound: stats["complete_items_per_sec"].as_f64().unwrap_or(0.0),
        peak_mailbox: stats["peaks"]["mailbox_concurrency"].as_u64().unwrap_or(0),
        peak_ru: stats["peaks"]["files_ru_per_min"].as_u64().unwrap_or(0),
        ru_budget: stats["limits"]["files_ru_per_min"].as_u64().unwrap_or(0),
    })
}

/// Best effort: the catalog schema of a configuration goes (with `psql`, when installed).
fn drop_schema(server: &str, schema: &str) {
    let _ = Command::new("psql")
        .args([
            server,
            "-qc",
            &format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A directory removed when dropped.
struct Removed(std::path::PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
