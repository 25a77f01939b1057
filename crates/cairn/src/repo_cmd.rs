//! Repository commands: `init`, `snapshots`, `check`, `forget`, `prune`, `copy`.

use anyhow::{Context, bail};
use cairn_repo::{ForgetRule, LegalHold, Repo, RepoOptions};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

/// Where the repository is and how to unlock it.
#[derive(Args, Clone, Debug)]
pub struct RepoArgs {
    /// Repository: a local path, or s3:https://host/bucket[/prefix].
    #[arg(long = "repo", short = 'r', env = "CAIRN_REPOSITORY")]
    pub repository: String,
    /// File holding the repository password (or CAIRN_PASSWORD; else a prompt).
    #[arg(long, env = "CAIRN_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
}

impl RepoArgs {
    fn password(&self) -> anyhow::Result<String> {
        if let Some(f) = &self.password_file {
            let p = std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?;
            return Ok(p.trim_end_matches(['\n', '\r']).to_string());
        }
        if let Ok(p) = std::env::var("CAIRN_PASSWORD") {
            return Ok(p);
        }
        if std::io::stdin().is_terminal() {
            return Ok(rpassword::prompt_password("repository password: ")?);
        }
        bail!("no repository password\nhint: set CAIRN_PASSWORD_FILE or CAIRN_PASSWORD")
    }

    pub fn options(&self) -> anyhow::Result<RepoOptions> {
        Ok(RepoOptions::new(&self.repository, &self.password()?)?)
    }

    pub fn open(&self) -> anyhow::Result<Repo> {
        Ok(Repo::open(self.options()?)?)
    }
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this resource (user, group or site).
    #[arg(long)]
    resource: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Read and verify all data, not only the structure.
    #[arg(long)]
    read_data: bool,
    /// Read a subset of the data: 10%, 1/5, 2GiB.
    #[arg(long)]
    read_data_subset: Option<String>,
}

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[arg(long)]
    keep_last: Option<u32>,
    #[arg(long)]
    keep_daily: Option<u32>,
    #[arg(long)]
    keep_weekly: Option<u32>,
    #[arg(long)]
    keep_monthly: Option<u32>,
    #[arg(long)]
    keep_yearly: Option<u32>,
    /// Keep everything within this many days of a resource's newest restore point.
    #[arg(long)]
    keep_within_days: Option<u32>,
    /// A resource (or restore point id) under legal hold: never forgotten. Repeatable.
    #[arg(long = "hold")]
    holds: Vec<String>,
    /// Show what would be forgotten.
    #[arg(long)]
    dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    prune: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Args)]
pub struct CopyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The second repository (its password from CAIRN_PASSWORD2 or the same one).
    #[arg(long)]
    to: String,
}

pub fn init(a: InitArgs) -> anyhow::Result<()> {
    let opts = a.repo.options()?;
    Repo::init(opts)?;
    println!("created repository at {}", a.repo.repository);
    eprintln!("keep the password safe: without it the backups cannot be read");
    Ok(())
}

pub fn snapshots(a: SnapshotsArgs) -> anyhow::Result<()> {
    let repo = a.repo.open()?;
    let snaps: Vec<_> = repo
        .snapshots()?
        .into_iter()
        .filter(|s| a.resource.as_ref().is_none_or(|r| &s.label == r))
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&snaps)?);
        return Ok(());
    }
    println!(
        "{:<10} {:<20} {:<12} {:<32} {:>8}",
        "ID", "TIME", "TENANT", "RESOURCE", "ITEMS"
    );
    for s in &snaps {
        println!(
            "{:<10} {:<20} {:<12} {:<32} {:>8}",
            &s.id[..8.min(s.id.len())],
            s.time.format("%Y-%m-%d %H:%M:%S"),
            s.hostname,
            s.label,
            s.files_new + s.files_changed + s.files_unmodified
        );
    }
    println!("{} restore points", snaps.len());
    Ok(())
}

pub fn check(a: CheckArgs) -> anyhow::Result<()> {
    let repo = a.repo.open()?;
    let subset = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => Some(s.as_str()),
        (None, true) => Some("all"),
        (None, false) => None,
    };
    let report = repo.check(subset)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    if !report.is_ok() {
        bail!(
            "the repository has {} errors\nhint: `cairn repair index` rebuilds a lost or damaged index; `cairn repair snapshots` rewrites restore points around missing data (or restore from a copy made with `cairn copy`)",
            report.errors.len()
        );
    }
    println!("no errors were found");
    Ok(())
}

pub fn forget(a: ForgetArgs) -> anyhow::Result<()> {
    let rule = ForgetRule {
        keep_last: a.keep_last,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within: a.keep_within_days.map(|d| chrono::Duration::days(d as i64)),
    };
    let holds: Vec<LegalHold> = a
        .holds
        .iter()
        .map(|h| {
            if h.contains('@') || h.contains(',') || h.len() > 40 {
                LegalHold::Resource(h.clone())
            } else {
                LegalHold::Snapshot(h.clone())
            }
        })
        .collect();
    let repo = a.repo.open()?;
    let report = repo.forget(&rule, &holds, a.dry_run)?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for s in &report.removed {
        println!(
            "{verb} {} {} {}",
            &s.id[..8],
            s.time.format("%Y-%m-%d %H:%M"),
            s.label
        );
    }
    for s in &report.held {
        println!(
            "held   {} {} {} (legal hold)",
            &s.id[..8],
            s.time.format("%Y-%m-%d %H:%M"),
            s.label
        );
    }
    println!(
        "{} kept, {} {verb}, {} held",
        report.kept.len(),
        report.removed.len(),
        report.held.len()
    );
    if a.prune && !a.dry_run {
        let n = repo.prune()?;
        println!("pruned: {n} packs deleted");
    }
    Ok(())
}

pub fn prune(a: PruneArgs) -> anyhow::Result<()> {
    let n = a.repo.open()?.prune()?;
    println!("pruned: {n} packs deleted");
    Ok(())
}

pub fn copy(a: CopyArgs) -> anyhow::Result<()> {
    let src = a.repo.open()?;
    let mut opts = a.repo.options()?;
    if let Ok(p) = std::env::var("CAIRN_PASSWORD2") {
        opts.password = p;
    }
    opts.location = cairn_repo::Location::parse(&a.to)?;
    let dst = Repo::open(opts).with_context(|| format!("opening the copy at {}", a.to))?;
    let n = src.copy_to(&dst)?;
    println!("copied {n} restore points to {}", a.to);
    Ok(())
}

#[derive(Args)]
pub struct RepairArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// What to repair: `index` (rebuild it from the packs) or `snapshots` (rewrite restore
    /// points that refer to missing data, without the damaged items).
    #[arg(value_parser = ["index", "snapshots"])]
    what: String,
    /// Show what would be done.
    #[arg(long)]
    dry_run: bool,
}

pub fn repair(a: RepairArgs) -> anyhow::Result<()> {
    let repo = a.repo.open()?;
    match a.what.as_str() {
        "index" => repo.repair_index(a.dry_run)?,
        _ => repo.repair_snapshots(a.dry_run)?,
    }
    println!(
        "repair {} done{}",
        a.what,
        if a.dry_run { " (dry run)" } else { "" }
    );
    Ok(())
}
