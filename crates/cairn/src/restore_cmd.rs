//! `cairn restore`: items of a restore point back into Microsoft 365, to where they were,
//! to a folder beside them, or to another user; progress on stderr, the report on stdout.

use crate::config::UserError;
use crate::graph::TenantFlags;
use crate::repo_cmd::RepoArgs;
use cairn_app::restore::RestoreRequest;
use cairn_restore::{Collision, Done, Outcome, Progress, RestoreReport, RestoreTarget};
use clap::Args;
use futures::StreamExt;
use indicatif::ProgressBar;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Args)]
pub struct RestoreArgs {
    /// The resource as backed up (user principal name, group:<name>, site URL), optionally
    /// with a restore point: `@N` (number), `@<snapshot id prefix>`, `@<time>` (the latest
    /// point at or before it, e.g. @2026-01-31 or @2026-01-31T12:00); default the latest.
    #[arg(value_name = "RESOURCE[@POINT]")]
    resource: String,
    /// Paths in the restore point to restore (`mail/Inbox`, `onedrive/Docs/a.txt`,
    /// `calendar/`, `teams/General`, `chats/<chat>`); default everything.
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
    /// Where to: `original`, `folder:NAME` (a folder in the original mailbox and drive;
    /// `folder` alone: `Restored <date of the point>`; for Teams channels a new channel
    /// NAME made in migration mode), `user:UPN` (another user).
    #[arg(long, default_value = "original")]
    target: String,
    /// When a different item is in the way: skip, overwrite, keep-both.
    #[arg(long, default_value = "skip")]
    collision: String,
    /// List what would be restored, and where, without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// Items restored at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[command(flatten)]
    repo: RepoArgs,
    #[command(flatten)]
    tenant: TenantFlags,
    /// Local state (catalog) [default: the configuration's cache-dir].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Print the report (or the plan) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    no_progress: bool,
}

pub fn run(a: RestoreArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let target = RestoreTarget::parse(&a.target).ok_or_else(|| {
        anyhow::Error::from(
            UserError::new(format!("unknown target '{}'", a.target))
                .hint("targets are original, folder, folder:NAME and user:UPN"),
        )
    })?;
    let collision = Collision::parse(&a.collision).ok_or_else(|| {
        anyhow::Error::from(
            UserError::new(format!("unknown collision policy '{}'", a.collision))
                .hint("policies are skip, overwrite and keep-both"),
        )
    })?;
    let ws = crate::config::workspace(config, &a.repo, a.cache_dir.as_deref())?;
    let show_bar = !a.no_progress && std::io::stderr().is_terminal();
    let bars = Arc::new(Bars::new(show_bar));
    let req = RestoreRequest {
        target_spec: a.resource.clone(),
        paths: a.paths.clone(),
        target,
        collision,
        concurrency: a.concurrency,
    };
    let rt = crate::sim::runtime()?;
    let prepared = rt.block_on(cairn_app::restore::prepare_async(
        Arc::new(ws),
        a.tenant.overrides(),
        req,
        bars.clone(),
    ))?;

    if a.dry_run {
        let mut plan = prepared.plan()?;
        let mut out = std::io::stdout().lock();
        let mut n = 0u64;
        let mut bytes = 0u64;
        rt.block_on(async {
            while let Some(p) = plan.next().await {
                let p = p?;
                n += 1;
                bytes += p.size;
                if a.json {
                    writeln!(out, "{}", serde_json::to_string(&p)?)?;
                } else {
                    writeln!(
                        out,
                        "{:<9} {:>10}  {}  ->  {}",
                        p.kind, p.size, p.path, p.destination
                    )?;
                }
            }
            anyhow::Ok(())
        })?;
        if !a.json {
            writeln!(
                out,
                "{n} items, {:.1} MB would be restored (--collision {}: items already at the target are checked when restoring)",
                bytes as f64 / 1e6,
                a.collision
            )?;
        }
        return Ok(());
    }

    let report = rt.block_on(async {
        bars.begin();
        let r = prepared.run().await;
        bars.end();
        r
    })?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report)?;
    }
    match report.failed_total {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} items could not be restored (see above); running the same restore again retries them and skips what is there"
        ),
    }
}

fn print_report(r: &RestoreReport) -> anyhow::Result<()> {
    for o in &r.failed {
        outln!("failed   {}: {}", o.path, o.detail);
    }
    for o in &r.skipped {
        outln!("skipped  {}: {}", o.path, o.detail);
    }
    for n in &r.notes {
        outln!("note     {n}");
    }
    if r.skipped_total > r.skipped.len() as u64 {
        outln!(
            "… and {} more skipped",
            r.skipped_total - r.skipped.len() as u64
        );
    }
    outln!(
        "{} restore point {} ({}) to {}: {} restored ({} overwritten, {} kept beside), {} skipped, {} failed; {:.1} MB sent in {:.1} s, {} requests",
        r.resource,
        r.point,
        &r.snapshot[..8.min(r.snapshot.len())],
        r.target,
        r.restored,
        r.overwritten,
        r.kept_both,
        r.skipped_total,
        r.failed_total,
        r.restored_bytes as f64 / 1e6,
        r.seconds,
        r.requests
    );
    Ok(())
}

/// A spinner with counters on a terminal; failures logged as they happen.
struct Bars {
    bar: ProgressBar,
    restored: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
}

impl Bars {
    fn new(terminal: bool) -> Self {
        let bar = crate::progress::bar(terminal, None, "{spinner} [{elapsed_precise}] {msg}");
        Self {
            bar,
            restored: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn begin(&self) {
        self.bar
            .enable_steady_tick(std::time::Duration::from_millis(200));
    }

    fn end(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bars {
    fn started(&self, resource: &str, seq: i64) {
        tracing::info!("restoring {resource} from restore point {seq}");
    }

    fn item(&self, o: &Outcome) {
        match o.done {
            Done::Skipped => self.skipped.fetch_add(1, Ordering::Relaxed),
            Done::Failed => {
                self.bar
                    .suspend(|| tracing::warn!("{}: {}", o.path, o.detail));
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
            _ => {
                self.bytes.fetch_add(o.bytes, Ordering::Relaxed);
                self.restored.fetch_add(1, Ordering::Relaxed)
            }
        };
        let secs = self.bar.elapsed().as_secs_f64().max(0.001);
        let bytes = self.bytes.load(Ordering::Relaxed);
        self.bar.set_message(format!(
            "{} restored, {} skipped, {} failed, {:.1} MB ({:.1} MB/s)",
            self.restored.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            bytes as f64 / 1e6,
            bytes as f64 / 1e6 / secs
        ));
    }
}
