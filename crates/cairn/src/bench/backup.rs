//! `cairn bench backup`: a full backup of a simulated tenant through the backup engine into a
//! fresh local repository and catalog, then an incremental run with nothing changed, measured
//! against the simulator's throttle-bound ideal.
//!
//! Peak memory is the point of this benchmark as much as speed, and it must be the backup's
//! alone. Each measured configuration therefore runs in two processes of its own: the
//! simulator (`cairn sim serve`) and the backup (this command with the hidden `--worker`
//! flag), both children of the command the user typed, which only starts them and prints the
//! table. The worker reads its own `VmHWM` from `/proc/self/status` after the full run, and
//! resets it through `/proc/self/clear_refs` before the incremental one. A fresh worker per
//! configuration means a row never inherits the heap of the row before it, so rows of 10×
//! more items per mailbox can be compared; an in-process simulator would have counted its
//! own buffers as the backup's.

use anyhow::Context;
use cairn_backup::{BackupOptions, Engine, JobReport, Progress, ResourceReport};
use cairn_graph::{Credential, GraphClient, GraphConfig};
use cairn_repo::{Repo, RepoOptions};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Args, Clone)]
pub struct BackupBench {
    /// Users of the simulated tenant (licensed ones have a mailbox and a OneDrive).
    #[arg(long, default_value_t = 100)]
    users: u32,
    /// Messages per mailbox. Several values (comma-separated) give a row each, with the same
    /// users: peak memory should stay flat as mailboxes grow.
    #[arg(long, value_delimiter = ',', default_value = "20")]
    mail_per_mailbox: Vec<u32>,
    #[arg(long, default_value_t = 5)]
    files_per_drive: u32,
    /// Microsoft 365 groups of the simulated tenant (every other one a team, whose channels
    /// are backed up with it); users' chats are backed up whatever this is.
    #[arg(long, default_value_t = 0)]
    groups: u32,
    #[arg(long, default_value_t = 0)]
    events_per_mailbox: u32,
    #[arg(long, default_value_t = 0)]
    contacts_per_mailbox: u32,
    /// Largest generated message or file, bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    max_item_size: u64,
    /// The simulator's throttling: Microsoft's published limits, or none.
    #[arg(long, value_enum, default_value = "microsoft")]
    throttle: Throttle,
    /// Latency the simulator adds to each response.
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// Resources backed up at once (the engine's `parallel`).
    #[arg(long, default_value_t = BackupOptions::new(".".into()).parallel)]
    parallel: usize,
    /// Restore points written at once (the engine's `archives`).
    #[arg(long, default_value_t = BackupOptions::new(".".into()).archives)]
    archives: usize,
    /// Concurrent content fetches per resource (the engine's `per_resource`).
    #[arg(long, default_value_t = BackupOptions::new(".".into()).per_resource)]
    per_resource: usize,
    /// Also take full-fidelity copies of the mailboxes' items (the mailbox export API).
    #[arg(long)]
    full_fidelity: bool,
    /// Services backed up (comma-separated, as `cairn backup --services`); all by default.
    #[arg(long, value_delimiter = ',')]
    services: Vec<String>,
    /// Skip the incremental run.
    #[arg(long)]
    no_incremental: bool,
    /// Internal: the backup process of one configuration, against the simulator at this URL.
    #[arg(long, hide = true, requires_all = ["tenant_id", "client_id", "sim_pid"])]
    worker: Option<String>,
    #[arg(long, hide = true)]
    tenant_id: Option<String>,
    #[arg(long, hide = true)]
    client_id: Option<String>,
    #[arg(long, hide = true)]
    sim_pid: Option<u32>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Throttle {
    Microsoft,
    Off,
}

/// The simulator's client secret for the run (a benchmark tenant; it only guards loopback).
const SECRET: &str = "cairn-bench-secret";

/// One measured run, as the worker reports it to the command that prints the table.
#[derive(Serialize, Deserialize, Default)]
struct Phase {
    name: String,
    resources: u64,
    failed: u64,
    items: u64,
    fetched: u64,
    bytes: u64,
    secs: f64,
    requests: u64,
    throttled: u64,
    peak_rss_kb: u64,
    ideal: f64,
    /// The simulator's rate of a complete backup (`complete_items_per_sec`).
    complete: f64,
    /// Sums over resources: seconds from start to archiving (enumeration and fetch), and
    /// from archiving to the end (archive, file downloads, commit).
    stage_secs: f64,
    archive_secs: f64,
    cpu_backup: f64,
    cpu_sim: f64,
    /// Mail requests and items of the run: MIME copies (folder deltas and `$value`) and
    /// full-fidelity copies (the mailbox import/export API: item deltas and `exportItems`).
    mime: (u64, u64),
    full_fidelity: (u64, u64),
    /// Teams requests and messages of the run (channel and chat messages; their inline
    /// images are counted in the requests).
    #[serde(default)]
    teams: (u64, u64),
}

pub fn run(b: &BackupBench) -> anyhow::Result<()> {
    if let Some(url) = &b.worker {
        return worker(b, url);
    }
    let mut rows = Vec::new();
    for &mail in &b.mail_per_mailbox {
        eprintln!(
            "bench backup: {} users × {mail} messages + {} files per drive",
            b.users, b.files_per_drive
        );
        rows.push((mail, configuration(b, mail)?));
    }
    print_tables(b, &rows)?;
    Ok(())
}

/// Kills a child when dropped, whatever happened.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the simulator and a worker for one number of messages per mailbox.
fn configuration(b: &BackupBench, mail: u32) -> anyhow::Result<Vec<Phase>> {
    let exe = std::env::current_exe().context("finding the cairn executable")?;
    let flags: Vec<String> = [
        ("--groups", b.groups.to_string()),
        ("--sites", "0".into()),
        ("--users", b.users.to_string()),
        ("--mail-per-mailbox", mail.to_string()),
        ("--files-per-drive", b.files_per_drive.to_string()),
        ("--events-per-mailbox", b.events_per_mailbox.to_string()),
        ("--contacts-per-mailbox", b.contacts_per_mailbox.to_string()),
        ("--max-item-size", b.max_item_size.to_string()),
        ("--latency-ms", b.latency_ms.to_string()),
        (
            "--throttle",
            match b.throttle {
                Throttle::Microsoft => "microsoft",
                Throttle::Off => "off",
            }
            .into(),
        ),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect();
    let (sim, url, tenant, client) = super::start_sim(&exe, &flags, SECRET)?;
    let sim = Killed(sim);
    let mut cmd = Command::new(&exe);
    cmd.args(["bench", "backup", "--worker", &url])
        .args(["--tenant-id", &tenant, "--client-id", &client])
        .args(["--sim-pid", &sim.0.id().to_string()])
        .args(["--parallel", &b.parallel.to_string()])
        .args(["--archives", &b.archives.to_string()])
        .args(["--per-resource", &b.per_resource.to_string()])
        .env(cairn_config::env::CAIRN_CLIENT_SECRET, SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if b.no_incremental {
        cmd.arg("--no-incremental");
    }
    if b.full_fidelity {
        cmd.arg("--full-fidelity");
    }
    if !b.services.is_empty() {
        cmd.args(["--services", &b.services.join(",")]);
    }
    if std::env::var_os(cairn_config::env::CAIRN_LOG).is_none() {
        // Resources without a OneDrive (shared mailboxes) are expected: no warning per one.
        cmd.env(cairn_config::env::CAIRN_LOG, "error");
    }
    let out = cmd.output().context("running the backup worker")?;
    anyhow::ensure!(
        out.status.success(),
        "the backup worker failed ({})",
        out.status
    );
    drop(sim);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).context("reading the worker's report"))
        .collect()
}

/// Sums, over resources, the time spent before and after the engine starts archiving.
#[derive(Default)]
struct Phases {
    started: Mutex<HashMap<String, (Instant, Option<Instant>)>>,
    stage: Mutex<f64>,
    archive: Mutex<f64>,
}

impl Phases {
    fn take(&self) -> (f64, f64) {
        let s = std::mem::take(&mut *self.stage.lock().unwrap_or_else(|e| e.into_inner()));
        let a = std::mem::take(&mut *self.archive.lock().unwrap_or_else(|e| e.into_inner()));
        (s, a)
    }
}

impl Progress for Phases {
    fn started(&self, resource: &str) {
        let mut m = self.started.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(resource.to_string(), (Instant::now(), None));
    }

    fn archiving(&self, resource: &str) {
        let mut m = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((start, archiving)) = m.get_mut(resource) {
            let now = Instant::now();
            *archiving = Some(now);
            *self.stage.lock().unwrap_or_else(|e| e.into_inner()) += (now - *start).as_secs_f64();
        }
    }

    fn finished(&self, report: &ResourceReport) {
        let mut m = self.started.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((start, archiving)) = m.remove(&report.resource) {
            let now = Instant::now();
            match archiving {
                Some(a) => {
                    *self.archive.lock().unwrap_or_else(|e| e.into_inner()) +=
                        (now - a).as_secs_f64()
                }
                None => {
                    *self.stage.lock().unwrap_or_else(|e| e.into_inner()) +=
                        (now - start).as_secs_f64()
                }
            }
        }
    }
}

/// The backup of one configuration: a full run, then an incremental one; a JSON line each.
fn worker(b: &BackupBench, url: &str) -> anyhow::Result<()> {
    let (Some(tenant), Some(client), Some(sim_pid)) = (&b.tenant_id, &b.client_id, b.sim_pid)
    else {
        anyhow::bail!("--worker needs --tenant-id, --client-id and --sim-pid");
    };
    let secret = std::env::var(cairn_config::env::CAIRN_CLIENT_SECRET).unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("cairn-bench-backup-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = crate::sim::runtime()?.block_on(async {
        let mut gc = GraphConfig::new(tenant, client, Credential::Secret(secret.into()));
        gc.graph_url = url.to_string();
        gc.login_url = url.to_string();
        gc.limits.global_concurrency = cairn_config::GLOBAL_CONCURRENCY;
        let graph = Arc::new(GraphClient::new(gc)?);
        let path = dir.join("repo").to_string_lossy().into_owned();
        let repo = Arc::new(
            tokio::task::spawn_blocking(move || Repo::init(RepoOptions::new(&path, "bench")?))
                .await??,
        );
        let catalog = Arc::new(cairn_catalog::SqliteCatalog::open(&dir.join("catalog.db"))?);
        let mut opts = BackupOptions::new(dir.join("spool"));
        opts.parallel = b.parallel;
        opts.archives = b.archives;
        opts.per_resource = b.per_resource;
        opts.full_fidelity = b.full_fidelity;
        if !b.services.is_empty() {
            opts.services = b
                .services
                .iter()
                .map(|s| {
                    cairn_backup::Service::parse(s)
                        .ok_or_else(|| anyhow::anyhow!("unknown service {s}"))
                })
                .collect::<anyhow::Result<_>>()?;
        }
        let phases = Arc::new(Phases::default());
        let engine = Arc::new(Engine::new(
            graph,
            repo,
            catalog.clone(),
            "bench",
            opts,
            phases.clone(),
        ));
        let mut targets = engine.users(&[]).await?;
        targets.extend(engine.groups(&[]).await?);
        let names: &[&str] = if b.no_incremental {
            &["full"]
        } else {
            &["full", "incremental"]
        };
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                // The incremental run's peak, not the full one's (Linux ≥ 4.0).
                let _ = std::fs::write("/proc/self/clear_refs", "5");
            }
            let stats0 = sim_stats(url).await?;
            let (cpu0, sim0) = (cpu_of("self"), cpu_of(&sim_pid.to_string()));
            let report = engine.run(targets.clone()).await;
            let stats1 = sim_stats(url).await?;
            let (stage_secs, archive_secs) = phases.take();
            let mut phase = measure(name, &report, &stats0, &stats1, stage_secs, archive_secs)
                .with_cpu(cpu_of("self") - cpu0, cpu_of(&sim_pid.to_string()) - sim0);
            mail_cost(&mut phase, &*catalog, &stats0, &stats1)?;
            if let Some(r) = report.resources.iter().find(|r| !r.ok()) {
                eprintln!(
                    "bench backup: {} of {} resources failed, e.g. {}: {}",
                    report.failed(),
                    report.resources.len(),
                    r.resource,
                    r.error.as_deref().unwrap_or("")
                );
            }
            outln!("{}", serde_json::to_string(&phase)?);
        }
        anyhow::Ok(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

impl Phase {
    fn with_cpu(mut self, backup: f64, sim: f64) -> Self {
        self.cpu_backup = backup;
        self.cpu_sim = sim;
        self
    }
}

fn measure(
    name: &str,
    report: &JobReport,
    stats0: &serde_json::Value,
    stats1: &serde_json::Value,
    stage_secs: f64,
    archive_secs: f64,
) -> Phase {
    let delta = |k: &str| stats1[k].as_u64().unwrap_or(0) - stats0[k].as_u64().unwrap_or(0);
    Phase {
        name: name.to_string(),
        resources: report.resources.len() as u64,
        failed: report.failed() as u64,
        items: report.resources.iter().map(|r| r.items).sum(),
        fetched: report.resources.iter().map(|r| r.fetched).sum(),
        bytes: delta("bytes_served"),
        secs: report.seconds,
        requests: delta("requests_total"),
        throttled: delta("throttled_total"),
        peak_rss_kb: peak_rss_kb(),
        ideal: stats1["ideal_items_per_sec"].as_f64().unwrap_or(0.0),
        complete: stats1["complete_items_per_sec"].as_f64().unwrap_or(0.0),
        stage_secs,
        archive_secs,
        ..Phase::default()
    }
}

/// Requests per mail item of each copy, from the simulator's per-endpoint counts and the
/// items the run's restore points hold (their latest point: a full run's whole mailbox).
fn mail_cost(
    p: &mut Phase,
    catalog: &dyn cairn_catalog::Catalog,
    stats0: &serde_json::Value,
    stats1: &serde_json::Value,
) -> anyhow::Result<()> {
    let requests = |of: &dyn Fn(&str) -> bool| -> u64 {
        stats1["by_endpoint"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| of(k))
                    .map(|(k, v)| {
                        v.as_u64().unwrap_or(0) - stats0["by_endpoint"][k].as_u64().unwrap_or(0)
                    })
                    .sum()
            })
            .unwrap_or(0)
    };
    let is_teams = |k: &str| k.contains("/teams/") || k.contains("/chats");
    let mime =
        requests(&|k| !is_teams(k) && (k.contains("/mailFolders") || k.contains("/messages/")));
    let full = requests(&|k| k.contains("/admin/exchange/") || k.contains("/settings/exchange"));
    let teams = requests(&is_teams);
    let (mut messages, mut archived, mut chat_messages) = (0, 0, 0);
    // Full-fidelity copies: the archive's items and, with --full-fidelity, the mailbox's.
    for r in catalog.resources()? {
        if let Some(last) = catalog.points(r.id)?.last() {
            let n = catalog.count_at(r.id, last.seq)?;
            messages += n.get("message").copied().unwrap_or(0);
            archived += n.get("archiveItem").copied().unwrap_or(0)
                + n.get("messageStream").copied().unwrap_or(0);
            chat_messages += n.get("chatMessage").copied().unwrap_or(0);
        }
    }
    p.mime = (mime, messages);
    p.full_fidelity = (full, archived);
    p.teams = (teams, chat_messages);
    Ok(())
}

async fn sim_stats(url: &str) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::get(format!("{url}/_sim/stats"))
        .await?
        .json()
        .await?)
}

/// `VmHWM` of this process, KB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) of a process, `self` or a pid.
fn cpu_of(pid: &str) -> f64 {
    super::proc_cpu(&format!("/proc/{pid}/stat"), &[11, 12])
}

fn print_tables(b: &BackupBench, rows: &[(u32, Vec<Phase>)]) -> anyhow::Result<()> {
    outln!(
        "\n{} users, {} files per drive, latency {} ms, throttling {}, parallel {}, archives {}, per resource {}, services {}\n",
        b.users,
        b.files_per_drive,
        b.latency_ms,
        match b.throttle {
            Throttle::Microsoft => "as Microsoft",
            Throttle::Off => "off",
        },
        b.parallel,
        b.archives,
        b.per_resource,
        if b.services.is_empty() {
            "all".to_string()
        } else {
            b.services.join(",")
        }
    );
    outln!(
        "| {:<11} | {:>5} | {:>5} | {:>7} | {:>7} | {:>7} | {:>8} | {:>6} | {:>8} | {:>7} | {:>5} | {:>8} | {:>8} | {:>11} |",
        "run",
        "users",
        "mail",
        "items",
        "MB",
        "secs",
        "items/s",
        "MB/s",
        "requests",
        "req/res",
        "429s",
        "peak RSS",
        "vs ideal",
        "vs complete"
    );
    outln!(
        "|{:-<13}|{:->7}|{:->7}|{:->9}|{:->9}|{:->9}|{:->10}|{:->8}|{:->10}|{:->9}|{:->7}|{:->10}|{:->10}|{:->13}|",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        ""
    );
    for (mail, phases) in rows {
        for p in phases {
            let ips = p.items as f64 / p.secs.max(1e-9);
            let ratio = |of: f64| {
                if p.name == "full" && of > 0.0 {
                    format!("{:.0}%", 100.0 * ips / of)
                } else {
                    "-".into()
                }
            };
            outln!(
                "| {:<11} | {:>5} | {:>5} | {:>7} | {:>7.1} | {:>7.1} | {:>8.1} | {:>6.2} | {:>8} | {:>7.1} | {:>5} | {:>5} MB | {:>8} | {:>11} |",
                p.name,
                b.users,
                mail,
                p.items,
                p.bytes as f64 / 1e6,
                p.secs,
                ips,
                p.bytes as f64 / 1e6 / p.secs.max(1e-9),
                p.requests,
                p.requests as f64 / p.resources.max(1) as f64,
                p.throttled,
                p.peak_rss_kb / 1024,
                ratio(p.ideal),
                ratio(p.complete)
            );
        }
    }
    outln!(
        "\nMail requests per item (MIME copies of the mailbox's messages, `$value` one request each; full-fidelity copies of the archive's items and, with --full-fidelity, of the mailbox's, `exportItems` 20 per request; folder and delta pages included):\n"
    );
    outln!(
        "| {:<11} | {:<36} | {:>8} | {:>9} | {:>13} |",
        "run",
        "copy",
        "items",
        "requests",
        "requests/item"
    );
    outln!(
        "|{:-<13}|{:-<38}|{:->10}|{:->11}|{:->15}|",
        "",
        "",
        "",
        "",
        ""
    );
    for (_, phases) in rows {
        for p in phases {
            for (copy, (requests, items)) in [
                ("MIME (messages, $value)", p.mime),
                ("full fidelity (exportItems)", p.full_fidelity),
                ("Teams (channel and chat messages)", p.teams),
            ] {
                let per = if items > 0 {
                    format!("{:.3}", requests as f64 / items as f64)
                } else {
                    "-".into()
                };
                outln!(
                    "| {:<11} | {:<36} | {:>8} | {:>9} | {:>13} |",
                    p.name,
                    copy,
                    items,
                    requests,
                    per
                );
            }
        }
    }
    outln!(
        "\nTeams (channel messages by delta with their replies, chats by getAllMessages; inline images fetched one request each; messages per second over the whole run):\n"
    );
    outln!(
        "| {:<11} | {:>9} | {:>9} | {:>10} | {:>16} |",
        "run",
        "messages",
        "requests",
        "msgs/s",
        "requests/message"
    );
    outln!(
        "|{:-<13}|{:->11}|{:->11}|{:->12}|{:->18}|",
        "",
        "",
        "",
        "",
        ""
    );
    for (_, phases) in rows {
        for p in phases {
            let (requests, messages) = p.teams;
            let per = if messages > 0 {
                format!("{:.3}", requests as f64 / messages as f64)
            } else {
                "-".into()
            };
            outln!(
                "| {:<11} | {:>9} | {:>9} | {:>10.1} | {:>16} |",
                p.name,
                messages,
                requests,
                messages as f64 / p.secs.max(1e-9),
                per
            );
        }
    }
    outln!("\nWhere the time went (resource-seconds summed over resources; CPU seconds):\n");
    outln!(
        "| {:<11} | {:>5} | {:>10} | {:>8} | {:>9} | {:>10} | {:>10} | {:>10} | {:>7} | {:>6} |",
        "run",
        "mail",
        "ideal it/s",
        "complete",
        "stage s",
        "archive s",
        "backup CPU",
        "sim CPU",
        "fetched",
        "failed"
    );
    outln!(
        "|{:-<13}|{:->7}|{:->12}|{:->10}|{:->11}|{:->12}|{:->12}|{:->12}|{:->9}|{:->8}|",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        ""
    );
    for (mail, phases) in rows {
        for p in phases {
            outln!(
                "| {:<11} | {:>5} | {:>10.1} | {:>8.1} | {:>9.1} | {:>10.1} | {:>10.1} | {:>10.1} | {:>7} | {:>6} |",
                p.name,
                mail,
                p.ideal,
                p.complete,
                p.stage_secs,
                p.archive_secs,
                p.cpu_backup,
                p.cpu_sim,
                p.fetched,
                p.failed
            );
        }
    }
    Ok(())
}
