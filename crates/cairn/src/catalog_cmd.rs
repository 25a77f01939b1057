//! `cairn catalog rebuild`: the local catalog recreated from the repository, for when it is
//! lost (a new machine, a deleted cache) or damaged.

use crate::repo_cmd::RepoArgs;
use cairn_backup::{RebuildProgress, RebuildReport, RebuiltResource};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct CatalogArgs {
    #[command(subcommand)]
    command: CatalogCommand,
}

#[derive(Subcommand)]
enum CatalogCommand {
    /// Recreate the catalog (restore points, item versions) from the repository alone.
    Rebuild(RebuildArgs),
}

#[derive(Args)]
struct RebuildArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only the restore points of this tenant (as `cairn snapshots` shows it).
    #[arg(long)]
    tenant: Option<String>,
    /// Replace a catalog that is not empty: the old file is moved aside, not deleted.
    #[arg(long)]
    force: bool,
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

pub fn run(a: CatalogArgs, config: Option<&Path>) -> anyhow::Result<()> {
    match a.command {
        CatalogCommand::Rebuild(a) => rebuild(a, config),
    }
}

fn rebuild(a: RebuildArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, a.cache_dir.as_deref())?;
    let show_bar = !a.no_progress && std::io::stderr().is_terminal();
    let progress = Bar::new(show_bar);
    let rebuilt =
        cairn_app::maintenance::rebuild_catalog(&ws, a.tenant.as_deref(), a.force, &progress)?;
    progress.bar.finish_and_clear();
    if let Some(aside) = &rebuilt.moved_aside {
        eprintln!("the previous catalog is kept as {}", aside.display());
    }
    let report = rebuilt.report;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &ws.local().catalog)?;
        if rebuilt.holds > 0 {
            outln!(
                "{} legal holds taken back from the repository",
                rebuilt.holds
            );
        }
    }
    match report.failed() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} of {} resources could not be rebuilt (see above)",
            report.resources.len()
        ),
    }
}

fn print_report(r: &RebuildReport, catalog: &Path) -> anyhow::Result<()> {
    outln!(
        "{:<44} {:>7} {:>9} {:>9} {:>7}  tenant",
        "resource",
        "points",
        "items",
        "versions",
        "read"
    );
    for res in &r.resources {
        outln!(
            "{:<44} {:>7} {:>9} {:>9} {:>7}  {}",
            res.resource,
            res.points,
            res.items,
            res.versions,
            res.read,
            res.tenant
        );
        if let Some(e) = &res.error {
            outln!("    not rebuilt: {e}");
        }
        for s in &res.skipped {
            outln!("    skipped {}: {}", s.object, s.reason);
        }
    }
    for s in &r.ignored {
        outln!("ignored {}: {}", s.object, s.reason);
    }
    let points: u64 = r.resources.iter().map(|x| x.points).sum();
    let items: u64 = r.resources.iter().map(|x| x.items).sum();
    outln!(
        "{} resources, {points} restore points, {items} items in their latest points, rebuilt in {:.1} s into {}",
        r.resources.len(),
        r.seconds,
        catalog.display()
    );
    outln!(
        "the next backup enumerates every collection afresh (no delta links in the repository) and takes files and unchanged messages from the repository"
    );
    Ok(())
}

/// A bar of restore points on a terminal; a log line per resource otherwise.
struct Bar {
    bar: ProgressBar,
    terminal: bool,
}

impl Bar {
    fn new(terminal: bool) -> Self {
        let bar = crate::progress::bar(
            terminal,
            Some(0),
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} restore points  {msg}",
        );
        Self { bar, terminal }
    }
}

impl RebuildProgress for Bar {
    fn begin(&self, resources: u64, points: u64) {
        self.bar.set_length(points);
        if self.terminal {
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(200));
        } else {
            tracing::info!("rebuilding {points} restore points of {resources} resources");
        }
    }

    fn point(&self, resource: &str, seq: i64) {
        self.bar.inc(1);
        self.bar.set_message(format!("{resource} #{seq}"));
    }

    fn finished(&self, r: &RebuiltResource) {
        let line = match &r.error {
            None => format!(
                "{}: {} restore points, {} items, {} skipped",
                r.resource,
                r.points,
                r.items,
                r.skipped.len()
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
