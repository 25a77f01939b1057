//! `cairn backup`: a tenant's users, groups and sites into the repository, one restore
//! point per resource, with progress on a terminal and a report at the end.

use crate::graph::TenantFlags;
use crate::repo_cmd::RepoArgs;
use cairn_app::backup::{BackupProgress, BackupRequest, Scope};
use cairn_backup::{JobReport, Progress, ResourceReport};
use clap::Args;
use indicatif::ProgressBar;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    tenant: TenantFlags,
    /// Users: `all`, `none`, or user principal names (comma-separated).
    #[arg(long, default_value = "all")]
    users: String,
    /// Microsoft 365 groups: `all`, `none`, or names (comma-separated).
    #[arg(long, default_value = "all")]
    groups: String,
    /// Sites: `all`, `none`, or site URLs (comma-separated); subsites are included.
    #[arg(long, default_value = "all")]
    sites: String,
    /// Services: mail, calendar, contacts, onedrive, sharepoint, teams (comma-separated).
    #[arg(long, value_delimiter = ',')]
    services: Option<Vec<String>>,
    /// Resources to leave out: user principal names, group names or site URLs; `*` matches
    /// any run of characters (`--exclude '*@contractors.example'`).
    #[arg(long, value_delimiter = ',')]
    exclude: Vec<String>,
    /// Resources backed up at once.
    #[arg(long, default_value_t = cairn_backup::BackupOptions::new(".".into()).parallel)]
    parallel: usize,
    /// Restore points written to the repository at once (each holds packers in memory).
    #[arg(long, default_value_t = cairn_backup::BackupOptions::new(".".into()).archives)]
    archives: usize,
    /// Also keep the earlier versions of OneDrive and SharePoint files.
    #[arg(long)]
    file_versions: bool,
    /// Also keep each mailbox item's full-fidelity stream (Graph's mailbox export API, 20
    /// items per request) beside its MIME; restores then bring back every MAPI property.
    #[arg(long)]
    full_fidelity: bool,
    /// Local state (catalog, spool) [default: the configuration's cache-dir].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

pub fn run(a: BackupArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(crate::config::workspace(
        config,
        &a.repo,
        a.cache_dir.as_deref(),
    )?);
    tracing::debug!(config = %ws.config().path().display(), repository = %ws.repository(), "settings");
    let req = BackupRequest {
        users: Scope::parse(&a.users),
        groups: Scope::parse(&a.groups),
        sites: Scope::parse(&a.sites),
        services: a.services.clone(),
        exclude: a.exclude.clone(),
        parallel: a.parallel,
        archives: a.archives,
        file_versions: a.file_versions,
        full_fidelity: a.full_fidelity,
    };
    let show_bar = !a.no_progress && std::io::stderr().is_terminal();
    let progress = Arc::new(Bars::new(show_bar));
    let tenant = a.tenant.overrides();
    let report =
        crate::sim::runtime()?.block_on(cairn_app::backup::backup(ws, &tenant, &req, progress))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report)?;
    }
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} resources have no restore point from this run (see above); the next run retries them",
            report.resources.len()
        ),
    }
}

/// The job report as a table.
pub fn print_report(r: &JobReport) -> anyhow::Result<()> {
    outln!(
        "{:<44} {:>9} {:>7} {:>7} {:>7} {:>8} {:>10}  restore point",
        "resource",
        "items",
        "new",
        "changed",
        "removed",
        "fetched",
        "MB"
    );
    for res in &r.resources {
        let point = match &res.snapshot {
            Some(s) => s[..8.min(s.len())].to_string(),
            None => match &res.error {
                Some(e) => format!("none: {e}"),
                None => "none: nothing to back up".to_string(),
            },
        };
        outln!(
            "{:<44} {:>9} {:>7} {:>7} {:>7} {:>8} {:>10.1}  {point}",
            res.resource,
            res.items,
            res.added,
            res.changed,
            res.removed,
            res.fetched,
            res.fetched_bytes as f64 / 1e6,
        );
        for s in &res.skipped {
            outln!("    skipped {}: {}", s.object, s.reason);
        }
        for f in &res.findings {
            outln!("    SUSPECT {}: {}", f.signal, f.summary);
            for e in &f.examples {
                outln!("      e.g. {e}");
            }
        }
    }
    let suspect = r
        .resources
        .iter()
        .filter(|x| !x.findings.is_empty())
        .count();
    if suspect > 0 {
        eprintln!(
            "warning: {suspect} restore points are suspect (signs of ransomware or mass change, see above); the last clean restore point of each is under an automatic legal hold (`cairn hold list`)"
        );
    }
    let items: u64 = r.resources.iter().map(|x| x.items).sum();
    let bytes: u64 = r.resources.iter().map(|x| x.fetched_bytes).sum();
    outln!(
        "{} resources, {} items, {:.1} MB fetched in {:.1} s ({:.1} MB/s); {} requests, {} throttled",
        r.resources.len(),
        items,
        bytes as f64 / 1e6,
        r.seconds,
        bytes as f64 / 1e6 / r.seconds.max(0.001),
        r.requests,
        r.throttled
    );
    Ok(())
}

/// Progress: a bar of resources with a line of counters on a terminal; a log line per
/// resource otherwise.
struct Bars {
    bar: ProgressBar,
    terminal: bool,
    items: AtomicU64,
    fetched: AtomicU64,
    bytes: AtomicU64,
    graph: std::sync::Mutex<Option<Arc<cairn_graph::GraphClient>>>,
}

impl Bars {
    fn new(terminal: bool) -> Self {
        let bar = crate::progress::bar(
            terminal,
            Some(0),
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} resources  {msg}  eta {eta}",
        );
        Self {
            bar,
            terminal,
            items: AtomicU64::new(0),
            fetched: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            graph: std::sync::Mutex::new(None),
        }
    }

    fn update(&self) {
        if !self.terminal {
            return;
        }
        let secs = self.bar.elapsed().as_secs_f64().max(0.001);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let throttled = self
            .graph
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|g| g.throttled())
            .unwrap_or(0);
        self.bar.set_message(format!(
            "{} items seen, {} fetched, {:.1} MB ({:.1} MB/s), {throttled} throttled",
            self.items.load(Ordering::Relaxed),
            self.fetched.load(Ordering::Relaxed),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        ));
    }
}

impl BackupProgress for Bars {
    fn planned(&self, total: u64, graph: &Arc<cairn_graph::GraphClient>) {
        self.bar.set_length(total);
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(200));
        *self.graph.lock().unwrap_or_else(|e| e.into_inner()) = Some(graph.clone());
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bars {
    fn enumerated(&self, _resource: &str, items: u64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.update();
    }

    fn fetched(&self, _resource: &str, items: u64, bytes: u64) {
        self.fetched.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.update();
    }

    fn finished(&self, r: &ResourceReport) {
        self.bar.inc(1);
        let line = match &r.error {
            None => format!(
                "{}: {} items, {} fetched, {} skipped ({:.1} s)",
                r.resource,
                r.items,
                r.fetched,
                r.skipped.len(),
                r.seconds
            ),
            Some(e) => format!("{}: FAILED: {e}", r.resource),
        };
        if self.terminal {
            self.bar.println(line);
        } else {
            tracing::info!("{line}");
        }
    }
}
