//! `cairn worker`: backs up the resources `cairn serve` (or `cairn backup --nats`) hands to
//! workers through NATS JetStream, into the shared repository and catalog.

use crate::repo_cmd::RepoArgs;
use cairn_app::worker::{WorkerOptions, WorkerProgress};
use cairn_backup::ResourceReport;
use cairn_dist::Task;
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// This worker's local state (spool, lock); several workers on one machine need one each
    /// [default: the configuration's cache-dir].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Resources worked on at once. A worker takes as many tasks as this from the queue,
    /// so with several workers keep it below the tenant's resources divided by the workers.
    #[arg(long, default_value_t = WorkerOptions::default().parallel)]
    parallel: usize,
    /// Restore points written at once.
    #[arg(long, default_value_t = WorkerOptions::default().archives)]
    archives: usize,
    /// Stop after the queue has been empty this many seconds (default: run until SIGTERM
    /// or Ctrl-C, which finish the tasks in hand first).
    #[arg(long, value_name = "SECONDS")]
    exit_when_idle: Option<u64>,
}

/// Lines on stderr: one per task taken and done.
struct Lines;

impl WorkerProgress for Lines {
    fn ready(&self, queue: &str, worker: &str) {
        eprintln!("cairn worker {worker}: taking tasks from {queue}");
    }

    fn took(&self, task: &Task, delivered: i64) {
        let again = if delivered > 1 {
            format!(" (delivery {delivered}: taken over)")
        } else {
            String::new()
        };
        eprintln!(
            "started {} {} of run {}{again}",
            task.kind, task.name, task.run
        );
    }

    fn done(&self, task: &Task, r: &ResourceReport) {
        match &r.error {
            None => eprintln!(
                "done {} {}: {} items, {} added, {} changed, {} removed, {} fetched",
                task.kind, task.name, r.items, r.added, r.changed, r.removed, r.fetched
            ),
            Some(e) => eprintln!("failed {} {}: {e}", task.kind, task.name),
        }
    }
}

pub fn run(a: WorkerArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(crate::config::workspace(
        config,
        &a.repo,
        a.cache_dir.as_deref(),
    )?);
    let Some(nats) = ws.settings().nats.clone() else {
        return Err(cairn_app::UserError::new("a worker takes its tasks from NATS, and none is configured")
            .hint("give --nats nats://host:4222 (or CAIRN_NATS, or nats = … in the configuration file), the server `cairn serve` hands backups to")
            .into());
    };
    let opts = WorkerOptions {
        parallel: a.parallel.max(1),
        archives: a.archives.max(1),
        idle_exit: a.exit_when_idle.map(Duration::from_secs),
    };
    let rt = crate::sim::runtime()?;
    rt.block_on(cairn_app::worker::work(
        ws,
        &nats,
        opts,
        Arc::new(Lines),
        crate::serve_cmd::stop_signal(),
    ))?;
    eprintln!("cairn worker: stopped");
    Ok(())
}
