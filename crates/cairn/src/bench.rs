//! `cairn bench …`: throughput measurements against the simulator, printed as tables with
//! ratios to the simulator's throttle-bound ideal and to a baseline run in the same process.

use crate::sim::runtime;
use anyhow::Context;
use cairn_graph::{Credential, DeltaEvent, GraphClient, GraphConfig, Limits};
use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use clap::{Args, Subcommand};
use futures::{StreamExt, TryStreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod backup;
mod restore;
mod workers;

/// Starts `cairn sim serve` with these tenant flags, on a free port, accepting `secret`:
/// (child, its Graph URL, tenant id, client id). The child is killed when dropped.
fn start_sim(
    exe: &std::path::Path,
    tenant: &[String],
    secret: &str,
) -> anyhow::Result<(std::process::Child, String, String, String)> {
    use std::io::BufRead;
    let mut sim = std::process::Command::new(exe)
        .args(["sim", "serve", "--listen", "127.0.0.1:0"])
        .args(tenant)
        .env("CAIRN_SIM_CLIENT_SECRET", secret)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting `cairn sim serve`")?;
    let stdout = sim.stdout.take().context("the simulator's stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let (mut url, mut tenant, mut client) = (None, None, None);
    for line in lines.by_ref() {
        let line = line?;
        let field = |name: &str| {
            line.trim_start()
                .strip_prefix(name)
                .map(|r| r.split_whitespace().next().unwrap_or("").to_string())
        };
        url = url.or(field("graph url"));
        tenant = tenant.or(field("tenant id"));
        client = client.or(field("client id"));
        if url.is_some() && tenant.is_some() && client.is_some() {
            break;
        }
    }
    // The rest of the banner written to a closed pipe would end the simulator.
    std::thread::spawn(move || lines.for_each(drop));
    match (url, tenant, client) {
        (Some(u), Some(t), Some(c)) => Ok((sim, u, t, c)),
        _ => {
            let _ = sim.kill();
            let _ = sim.wait();
            anyhow::bail!("the simulator ended before printing its banner")
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Fetch every message (MIME) and file of a simulated tenant through cairn-graph.
    Graph(GraphBench),
    /// Archive many mail-sized items into a fresh repository, against `restic backup` of the
    /// same items written as files.
    Repo(RepoBench),
    /// Back up a simulated tenant with the engine into a fresh repository and catalog (full,
    /// then incremental), with peak memory and the ratio to the throttle-bound ideal.
    Backup(backup::BackupBench),
    /// Back up a simulated tenant, then restore every mailbox and drive at once into a
    /// folder beside the originals, against the simulator's write limits.
    Restore(restore::RestoreBench),
    /// Back up one simulated tenant with 1, 2, 4… `cairn worker` processes (PostgreSQL
    /// catalog, NATS JetStream queue, one repository), side by side.
    Workers(workers::WorkersBench),
}

#[derive(Args, Clone)]
struct RepoBench {
    #[arg(long, default_value_t = 20_000)]
    items: u32,
    /// Median item size, bytes.
    #[arg(long, default_value_t = 8_000)]
    size: usize,
    /// Skip the restic baseline.
    #[arg(long)]
    no_baseline: bool,
}

#[derive(Args, Clone)]
struct GraphBench {
    #[arg(long, default_value_t = 20)]
    users: u32,
    #[arg(long, default_value_t = 100)]
    mail_per_mailbox: u32,
    #[arg(long, default_value_t = 20)]
    files_per_drive: u32,
    /// Latency the simulator adds to each response (makes per-mailbox concurrency matter).
    #[arg(long, default_value_t = 300)]
    latency_ms: u64,
    /// Largest generated item, bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    max_item_size: u64,
    /// Skip the baseline run (a client without proactive pacing).
    #[arg(long)]
    no_baseline: bool,
}

struct Run {
    items: u64,
    bytes: u64,
    secs: f64,
    requests: u64,
    throttled: u64,
    ideal: f64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Repo(b) => repo_bench(&b),
        BenchCommand::Backup(b) => backup::run(&b),
        BenchCommand::Restore(b) => restore::run(&b),
        BenchCommand::Workers(b) => workers::run(&b),
        BenchCommand::Graph(b) => runtime()?.block_on(async move {
            let cairn = graph_run(&b, Limits::default()).await?;
            let mut rows = vec![("cairn-graph (paced)", cairn)];
            if !b.no_baseline {
                // The baseline: the same client without proactive pacing, as a naive client
                // that only reacts to 429s.
                let naive = Limits {
                    mailbox_concurrency: 64,
                    mailbox_requests_per_10min: 1_000_000,
                    files_ru_per_min: 1_000_000,
                    global_concurrency: 256,
                    shared_files: None,
                };
                rows.push(("baseline (unpaced)", graph_run(&b, naive).await?));
            }
            outln!(
                "\n{} users × {} messages + {} files per drive, latency {} ms, Microsoft throttling\n",
                b.users, b.mail_per_mailbox, b.files_per_drive, b.latency_ms
            );
            outln!(
                "| {:<20} | {:>7} | {:>8} | {:>7} | {:>8} | {:>6} | {:>10} | {:>8} |",
                "client", "items", "items/s", "MB/s", "req/s", "429s", "ideal it/s", "vs ideal"
            );
            outln!("|{:-<22}|{:->9}|{:->10}|{:->9}|{:->10}|{:->8}|{:->12}|{:->10}|", "", "", "", "", "", "", "", "");
            for (name, r) in &rows {
                let ips = r.items as f64 / r.secs;
                outln!(
                    "| {:<20} | {:>7} | {:>8.1} | {:>7.2} | {:>8.1} | {:>6} | {:>10.1} | {:>7.0}% |",
                    name,
                    r.items,
                    ips,
                    r.bytes as f64 / r.secs / 1e6,
                    r.requests as f64 / r.secs,
                    r.throttled,
                    r.ideal,
                    100.0 * ips / r.ideal.max(1e-9)
                );
            }
            Ok(())
        }),
    }
}

async fn graph_run(b: &GraphBench, limits: Limits) -> anyhow::Result<Run> {
    let spec = TenantSpec {
        users: b.users,
        mail_per_mailbox: b.mail_per_mailbox,
        files_per_drive: b.files_per_drive,
        max_item_size: b.max_item_size,
        groups: 0,
        sites: 0,
        ..TenantSpec::default()
    };
    let mut cfg = SimConfig::new(spec);
    cfg.throttle = ThrottleMode::Microsoft;
    cfg.latency = Duration::from_millis(b.latency_ms);
    let server = SimServer::start(cfg, "127.0.0.1:0".parse()?).await?;
    let c = &server.sim.cfg;
    let mut gc = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Secret(c.client_secret.clone().into()),
    );
    gc.graph_url = server.url();
    gc.login_url = server.url();
    gc.limits = limits;
    let g = Arc::new(GraphClient::new(gc)?);
    let users: Vec<serde_json::Value> = g
        .items("/users?$select=id,mail&$top=999")
        .try_collect()
        .await?;
    let items = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mail = futures::stream::iter(users.iter().filter(|u| !u["mail"].is_null()).cloned())
        .map(|u| {
            let (g, items, bytes) = (g.clone(), items.clone(), bytes.clone());
            async move { fetch_mailbox(&g, u["id"].as_str().unwrap_or(""), &items, &bytes).await }
        })
        .buffer_unordered(256)
        .try_collect::<Vec<()>>();
    let files = futures::stream::iter(users.iter().cloned())
        .map(|u| {
            let (g, items, bytes) = (g.clone(), items.clone(), bytes.clone());
            async move { fetch_drive(&g, u["id"].as_str().unwrap_or(""), &items, &bytes).await }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>();
    let (m, f) = tokio::join!(mail, files);
    m?;
    f?;
    let secs = start.elapsed().as_secs_f64();
    let stats: serde_json::Value = reqwest::get(format!("{}/_sim/stats", server.url()))
        .await?
        .json()
        .await?;
    server.stop().await;
    Ok(Run {
        items: items.load(Ordering::Relaxed),
        bytes: bytes.load(Ordering::Relaxed),
        secs,
        requests: stats["requests_total"].as_u64().unwrap_or(0),
        throttled: stats["throttled_total"].as_u64().unwrap_or(0),
        ideal: stats["ideal_items_per_sec"].as_f64().unwrap_or(0.0),
    })
}

async fn fetch_mailbox(
    g: &Arc<GraphClient>,
    user: &str,
    items: &AtomicU64,
    bytes: &AtomicU64,
) -> anyhow::Result<()> {
    let mut folders: Vec<serde_json::Value> = g
        .items(&format!("/users/{user}/mailFolders/delta"))
        .try_collect()
        .await?;
    folders.push(
        g.get(&format!(
            "/users/{user}/mailFolders/recoverableitemsdeletions"
        ))
        .await?,
    );
    let starts: Vec<String> = folders
        .iter()
        .filter(|f| f["@odata.type"] != "#microsoft.graph.mailSearchFolder")
        .map(|f| {
            format!(
                "/users/{user}/mailFolders/{}/messages/delta?$select=id&$top=1000",
                f["id"].as_str().unwrap_or("")
            )
        })
        .collect();
    // Folder deltas run in their own task and feed a bounded channel, so that they make
    // progress while content fetches fill the mailbox's slots (a future that is not polled
    // would hold a slot and idle). The pacer keeps the mailbox at its limit.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<String, cairn_graph::GraphError>>(1024);
    let lister = {
        let g = g.clone();
        tokio::spawn(async move {
            let mut deltas = futures::stream::iter(starts)
                .map(|start| {
                    let g = g.clone();
                    async move {
                        g.delta(&start, None)
                            .try_filter_map(|e| async move {
                                Ok(match e {
                                    DeltaEvent::Upsert(m) => m["id"].as_str().map(str::to_string),
                                    _ => None,
                                })
                            })
                            .try_collect::<Vec<String>>()
                            .await
                    }
                })
                .buffer_unordered(2);
            while let Some(r) = deltas.next().await {
                match r {
                    Ok(ids) => {
                        for id in ids {
                            if tx.send(Ok(id)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        })
    };
    let ids = async_stream_ids(&mut rx);
    ids.map_ok(|id| async move {
        g.get_bytes(&format!("/users/{user}/messages/{id}/$value"))
            .await
    })
    .try_buffer_unordered(4)
    .try_for_each(|b| {
        items.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
        async { Ok(()) }
    })
    .await?;
    lister.await?;
    Ok(())
}

fn async_stream_ids(
    rx: &mut tokio::sync::mpsc::Receiver<Result<String, cairn_graph::GraphError>>,
) -> impl futures::Stream<Item = Result<String, cairn_graph::GraphError>> + '_ {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn fetch_drive(
    g: &GraphClient,
    user: &str,
    items: &AtomicU64,
    bytes: &AtomicU64,
) -> anyhow::Result<()> {
    let start = format!(
        "/users/{user}/drive/root/delta?$select=id,name,size,file,folder,parentReference,@microsoft.graph.downloadUrl"
    );
    let mut events = Box::pin(g.delta(&start, None));
    let mut files = Vec::new();
    while let Some(e) = events.next().await {
        match e {
            Ok(DeltaEvent::Upsert(it)) if it.get("file").is_some() => files.push((
                it["parentReference"]["driveId"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                it["id"].as_str().unwrap_or("").to_string(),
                it["@microsoft.graph.downloadUrl"]
                    .as_str()
                    .map(str::to_string),
            )),
            Ok(_) => {}
            // Users without a OneDrive.
            Err(e) if e.status() == Some(404) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    futures::stream::iter(files)
        .map(|(drive, id, url)| async move {
            let mut s =
                Box::pin(g.download_from(&format!("/drives/{drive}/items/{id}/content"), url));
            while let Some(chunk) = s.next().await {
                bytes.fetch_add(chunk?.len() as u64, Ordering::Relaxed);
            }
            items.fetch_add(1, Ordering::Relaxed);
            Ok::<_, cairn_graph::GraphError>(())
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

const TEXT: &[u8] = b"abcdefghij klmnopqrst uvwxyz,.\n";

fn item(i: u32, median: usize) -> Vec<u8> {
    let size = median / 2 + (i as usize * 7919) % median;
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Text-like: compressible, as mail is.
            TEXT[(x >> 59) as usize % TEXT.len()]
        })
        .collect()
}

/// Seconds of CPU from the fields of a `/proc/PID/stat` file (after the command name): 11
/// utime, 12 stime of the process; 13 cutime, 14 cstime of its waited-for children.
fn proc_cpu(stat_file: &str, fields_wanted: &[usize]) -> f64 {
    let stat = std::fs::read_to_string(stat_file).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    fields_wanted
        .iter()
        .filter_map(|i| fields.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum::<f64>()
        / 100.0
}

fn cpu_secs() -> f64 {
    proc_cpu("/proc/self/stat", &[11, 12])
}

fn repo_bench(b: &RepoBench) -> anyhow::Result<()> {
    use cairn_repo::{Entry, Repo, RepoOptions, SnapshotMeta};
    let root = std::env::temp_dir().join(format!("cairn-bench-repo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let per_folder = 1000;
    let mut rows = Vec::new();
    // Cairn: entries streamed from memory, 1,000 per month folder.
    let repo = Repo::init(RepoOptions::new(
        root.join("cairn").to_str().unwrap_or(""),
        "bench",
    )?)?;
    let (n, median) = (b.items, b.size);
    let entries = (0..n).flat_map(move |i| {
        let folder = format!("mail/Inbox/{:04}", i / per_folder);
        let mut v = Vec::new();
        if i == 0 {
            v.push(Entry::dir("mail", t0));
            v.push(Entry::dir("mail/Inbox", t0));
        }
        if i % per_folder == 0 {
            v.push(Entry::dir(folder.clone(), t0));
        }
        let data = item(i, median);
        v.push(Entry::file(
            format!("{folder}/{i:07}.eml"),
            data.len() as u64,
            t0,
            move || Ok(Box::new(std::io::Cursor::new(data))),
        ));
        v
    });
    let bytes: u64 = (0..n).map(|i| item(i, median).len() as u64).sum();
    let (c0, w0) = (cpu_secs(), Instant::now());
    let meta = SnapshotMeta {
        hostname: "bench".into(),
        label: "mailbox".into(),
        paths: vec!["/mail".into()],
        ..Default::default()
    };
    let r = repo.archive(&meta, entries)?;
    anyhow::ensure!(
        r.skipped.is_empty(),
        "items were skipped: {:?}",
        &r.skipped[..r.skipped.len().min(3)]
    );
    rows.push((
        "cairn-repo (rustic_core)",
        w0.elapsed().as_secs_f64(),
        cpu_secs() - c0,
    ));
    if !b.no_baseline {
        // restic: the same items as files on disk.
        let src = root.join("files");
        for i in 0..n {
            let dir = src.join(format!("mail/Inbox/{:04}", i / per_folder));
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(format!("{i:07}.eml")), item(i, median))?;
        }
        let repo_dir = root.join("restic");
        let run = |args: &[&str]| -> anyhow::Result<std::process::Output> {
            std::process::Command::new("restic")
                .args(["-r", repo_dir.to_str().unwrap_or("")])
                .args(args)
                .env("RESTIC_PASSWORD", "bench")
                .current_dir(&src)
                .output()
                .context("running restic (apt-get install restic)")
        };
        run(&["init"])?;
        let (w0, rusage0) = (Instant::now(), children_cpu());
        let out = run(&["backup", "mail", "--quiet"])?;
        anyhow::ensure!(
            out.status.success(),
            "restic backup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows.push((
            "restic backup (files)",
            w0.elapsed().as_secs_f64(),
            children_cpu() - rusage0,
        ));
    }
    outln!(
        "\n{n} items, {:.1} MB, median {} bytes, into a fresh local repository\n",
        bytes as f64 / 1e6,
        median
    );
    outln!(
        "| {:<26} | {:>8} | {:>9} | {:>8} | {:>11} |",
        "writer",
        "wall s",
        "items/s",
        "CPU s",
        "vs restic"
    );
    outln!(
        "|{:-<28}|{:->10}|{:->11}|{:->10}|{:->13}|",
        "",
        "",
        "",
        "",
        ""
    );
    let base = rows.iter().find(|r| r.0.starts_with("restic")).map(|r| r.1);
    for (name, wall, cpu) in &rows {
        let ratio = base
            .map(|b| format!("{:.2}×", wall / b))
            .unwrap_or_else(|| "-".into());
        outln!(
            "| {:<26} | {:>8.2} | {:>9.0} | {:>8.2} | {:>11} |",
            name,
            wall,
            n as f64 / wall,
            cpu,
            ratio
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

fn children_cpu() -> f64 {
    proc_cpu("/proc/self/stat", &[13, 14])
}
