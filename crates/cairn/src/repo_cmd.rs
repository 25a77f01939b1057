//! Repository commands: `init`, `snapshots`, `check`, `forget`, `prune`, `copy`.

use crate::config::{self, Config};
use crate::env;
use anyhow::{Context, bail};
use cairn_repo::{ForgetRule, LegalHold, Repo, RepoOptions};
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the repository is and how to unlock it; both fall back to the configuration file.
#[derive(Args, Clone, Debug, Default)]
pub struct RepoArgs {
    /// Repository: a local path, or s3:https://host/bucket[/prefix] [default: `repository`
    /// of the configuration file].
    #[arg(long = "repo", short = 'r', env = env::CAIRN_REPOSITORY)]
    pub repository: Option<String>,
    /// File holding the repository password (or CAIRN_PASSWORD; else `password-file` of the
    /// configuration file; else a prompt).
    #[arg(long, env = env::CAIRN_PASSWORD_FILE)]
    pub password_file: Option<PathBuf>,
}

impl RepoArgs {
    /// Location and password, from these flags over the configuration file.
    pub fn options(&self, cfg: &Config) -> anyhow::Result<RepoOptions> {
        cfg.repo_options(self)
    }

    pub fn open(&self, cfg: &Config) -> anyhow::Result<Repo> {
        Ok(Repo::open(self.options(cfg)?)?)
    }
}

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Do not record the repository in the configuration file.
    #[arg(long)]
    no_config: bool,
}

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this resource (user, group or site).
    #[arg(long)]
    resource: Option<String>,
    /// Only the resources of this tenant (its name in the configuration).
    #[arg(long, env = env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Only restore points taken on or after this date (2026-03-01, 2026-03-01T10:15, RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = crate::browse::start_time)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only restore points taken on or before this date (a date alone: its end).
    #[arg(long, value_name = "DATE", value_parser = crate::browse::end_time)]
    until: Option<chrono::DateTime<chrono::Utc>>,
    /// List the repository's snapshots as they are, without the local catalog's point
    /// numbers and item counts.
    #[arg(long)]
    no_catalog: bool,
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
    /// Apply the rule to this tenant's restore points only (its name in the configuration).
    #[arg(long, env = env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Apply the rule to this resource's restore points only.
    #[arg(long, value_name = "NAME")]
    resource: Option<String>,
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

pub fn init(a: InitArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let location = cfg.repository(&a.repo)?;
    Repo::init(a.repo.options(&cfg)?)?;
    outln!("created repository at {location}");
    eprintln!("keep the password safe: without it the backups cannot be read");
    if !a.no_config && cfg.file().repository.is_none() {
        let recorded = config::absolute_location(&location)?;
        let password_file = match (&a.repo.password_file, &cfg.file().password_file) {
            (Some(f), None) => Some(config::path_value(f)?),
            _ => None,
        };
        config::edit_file(cfg.path(), |doc| {
            doc["repository"] = toml_edit::value(&recorded);
            if let Some(f) = &password_file {
                doc["password-file"] = toml_edit::value(f);
            }
            Ok(())
        })
        .with_context(|| {
            format!(
                "the repository was created, but recording it in {} failed",
                cfg.path().display()
            )
        })?;
        let what = if password_file.is_some() {
            "repository and password file"
        } else {
            "repository"
        };
        outln!(
            "recorded the {what} in {}: later commands need no --repo",
            cfg.path().display()
        );
    }
    Ok(())
}

pub fn snapshots(a: SnapshotsArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let repo = a.repo.open(&cfg)?;
    let all = repo.snapshots()?;
    use cairn_catalog::Catalog as _;
    let catalog = match a.no_catalog {
        true => None,
        false => crate::browse::existing_catalog(&cfg, &a.repo)?,
    };
    if let Some(cat) = catalog.filter(|c| c.resources().is_ok_and(|r| !r.is_empty())) {
        return snapshots_from_catalog(&a, &cat, &all);
    }
    let snaps: Vec<_> = all
        .into_iter()
        .filter(|s| a.resource.as_ref().is_none_or(|r| &s.label == r))
        .filter(|s| a.tenant.as_ref().is_none_or(|t| &s.hostname == t))
        .filter(|s| a.since.is_none_or(|t| s.time >= t) && a.until.is_none_or(|t| s.time <= t))
        .collect();
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&snaps)?);
        return Ok(());
    }
    outln!(
        "{:<10} {:<20} {:<12} {:<32} {:>8}",
        "ID",
        "TIME",
        "TENANT",
        "RESOURCE",
        "ITEMS"
    );
    for s in &snaps {
        outln!(
            "{:<10} {:<20} {:<12} {:<32} {:>8}",
            &s.id[..8.min(s.id.len())],
            s.time.format("%Y-%m-%d %H:%M:%S"),
            s.hostname,
            s.label,
            s.files_new + s.files_changed + s.files_unmodified
        );
    }
    outln!("{} restore points", snaps.len());
    Ok(())
}

/// Restore points per resource, numbered and counted by the local catalog.
fn snapshots_from_catalog(
    a: &SnapshotsArgs,
    cat: &cairn_catalog::SqliteCatalog,
    in_repo: &[cairn_repo::SnapshotInfo],
) -> anyhow::Result<()> {
    use crate::browse::snapshots as view;
    let ids: std::collections::HashSet<String> = in_repo.iter().map(|s| s.id.clone()).collect();
    let filter = view::Filter {
        tenant: a.tenant.as_deref(),
        resource: a.resource.as_deref(),
        since: a.since,
        until: a.until,
    };
    let rows = view::rows(cat, &filter, Some(&ids))?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    view::print(&rows)?;
    let known: std::collections::HashSet<&str> = rows.iter().map(|r| r.snapshot.as_str()).collect();
    let others = in_repo
        .iter()
        .filter(|s| !known.contains(s.id.as_str()))
        .filter(|s| a.resource.as_ref().is_none_or(|r| &s.label == r))
        .filter(|s| a.tenant.as_ref().is_none_or(|t| &s.hostname == t))
        .filter(|s| a.since.is_none_or(|t| s.time >= t) && a.until.is_none_or(|t| s.time <= t))
        .count();
    if others > 0 {
        eprintln!(
            "note: {others} snapshots of the repository are not in this machine's catalog; `cairn snapshots --no-catalog` lists them all"
        );
    }
    Ok(())
}

pub fn check(a: CheckArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let repo = a.repo.open(&cfg)?;
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
    outln!("no errors were found");
    Ok(())
}

pub fn forget(a: ForgetArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let mut rule = ForgetRule {
        keep_last: a.keep_last,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
        keep_yearly: a.keep_yearly,
        keep_within: a.keep_within_days.map(|d| chrono::Duration::days(d as i64)),
        only_tenant: a.tenant.clone(),
        only_resource: a.resource.clone(),
    };
    // A resource is named as everywhere else: through the catalog's resolver, which knows
    // its tenant (and refuses a name several tenants have).
    if let Some(name) = &a.resource
        && let Some(cat) = crate::browse::existing_catalog(&cfg, &a.repo)?
    {
        let r = crate::browse::resolve_resource(&cat, name, a.tenant.as_deref())?;
        rule.only_tenant = Some(r.tenant);
        rule.only_resource = Some(r.name);
    }
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
    let repo = a.repo.open(&cfg)?;
    let report = repo.forget(&rule, &holds, a.dry_run)?;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    if !a.dry_run && !report.removed.is_empty() {
        // The catalog of this machine forgets them too (browse, find and restore read it).
        let local = crate::local::LocalState::new(&cfg.cache_dir(None)?, &cfg.repository(&a.repo)?);
        if local.catalog.exists() {
            let ids: Vec<String> = report.removed.iter().map(|s| s.id.clone()).collect();
            cairn_catalog::Catalog::forget_snapshots(&local.open_catalog()?, &ids)?;
        }
    }
    for s in &report.removed {
        outln!(
            "{verb} {} {} {}",
            &s.id[..8],
            s.time.format("%Y-%m-%d %H:%M"),
            s.label
        );
    }
    for s in &report.held {
        outln!(
            "held   {} {} {} (legal hold)",
            &s.id[..8],
            s.time.format("%Y-%m-%d %H:%M"),
            s.label
        );
    }
    outln!(
        "{} kept, {} {verb}, {} held",
        report.kept.len(),
        report.removed.len(),
        report.held.len()
    );
    if a.prune && !a.dry_run {
        let n = repo.prune()?;
        outln!("pruned: {n} packs deleted");
    }
    Ok(())
}

pub fn prune(a: PruneArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let n = a.repo.open(&cfg)?.prune()?;
    outln!("pruned: {n} packs deleted");
    Ok(())
}

pub fn copy(a: CopyArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    // One password read (or prompt) for both.
    let mut opts = a.repo.options(&cfg)?;
    let src = Repo::open(opts.clone())?;
    if let Some(p) = env::var(env::CAIRN_PASSWORD2) {
        opts.password = p;
    }
    opts.location = cairn_repo::Location::parse(&a.to)?;
    let dst = Repo::open(opts).with_context(|| format!("opening the copy at {}", a.to))?;
    let n = src.copy_to(&dst)?;
    outln!("copied {n} restore points to {}", a.to);
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

pub fn repair(a: RepairArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let repo = a.repo.open(&cfg)?;
    match a.what.as_str() {
        "index" => repo.repair_index(a.dry_run)?,
        _ => repo.repair_snapshots(a.dry_run)?,
    }
    outln!(
        "repair {} done{}",
        a.what,
        if a.dry_run { " (dry run)" } else { "" }
    );
    Ok(())
}
