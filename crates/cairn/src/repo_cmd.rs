//! Repository commands: `init`, `snapshots`, `check`, `forget`, `prune`, `copy`, `repair`
//! (the work is `cairn_app::maintenance`; forget and repair keep the catalog in step).

use crate::config;
use anyhow::{Context, bail};
use cairn_app::browse::{self, SnapshotFilter};
use cairn_app::maintenance::{self, ForgetRequest, Repair};
use cairn_config::env;
use cairn_repo::{ForgetRule, Repo};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the repository is and how to unlock it; both fall back to the configuration file.
#[derive(Args, Clone, Debug, Default)]
pub struct RepoArgs {
    /// Repository: a local path, or s3:https://host/bucket[/prefix] (or CAIRN_REPOSITORY)
    /// [default: `repository` of the configuration file].
    #[arg(long = "repo", short = 'r')]
    pub repository: Option<String>,
    /// File holding the repository password (or CAIRN_PASSWORD_FILE, or CAIRN_PASSWORD;
    /// else `password-file` of the configuration file; else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// A shared catalog instead of this machine's: `postgres://user@host:port/db?schema=NAME`
    /// (or CAIRN_CATALOG; else `catalog` of the configuration file).
    #[arg(long)]
    pub catalog: Option<String>,
    /// Hand backups to `cairn worker`s as per-resource tasks through this NATS JetStream
    /// server: `nats://host:4222[?queue=NAME]` (or CAIRN_NATS; else `nats` of the
    /// configuration file).
    #[arg(long)]
    pub nats: Option<String>,
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
    /// Item-level retention: remove every item older than this (7y, 18m, 90d) from every
    /// restore point, whatever the restore-point rules keep.
    #[arg(long, value_name = "SPAN")]
    keep_items: Option<String>,
    /// The date of an item --keep-items counts from: modified (received for mail) or
    /// deleted (in Microsoft 365; items still there never expire).
    #[arg(long, default_value = "modified", requires = "keep_items")]
    items_from: String,
    /// Show what would be forgotten.
    #[arg(long)]
    dry_run: bool,
    /// Prune afterwards.
    #[arg(long)]
    prune: bool,
}

#[derive(Args)]
pub struct OnlyInBackupArgs {
    #[command(flatten)]
    repo: RepoArgs,
    #[arg(long, env = env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    #[arg(long, value_name = "NAME")]
    resource: Vec<String>,
    /// The item rule in force, to say until when it keeps each item.
    #[arg(long, value_name = "SPAN")]
    keep_items: Option<String>,
    #[arg(long, default_value = "modified", requires = "keep_items")]
    items_from: String,
    #[arg(long)]
    json: bool,
}

fn item_rule(
    keep: Option<&str>,
    from: &str,
) -> anyhow::Result<Option<cairn_app::retention::ItemRule>> {
    use cairn_app::retention as r;
    Ok(match keep {
        None => None,
        Some(k) => Some(r::ItemRule {
            keep: r::parse_span(k)?,
            from: r::From::parse(from)?,
            text: format!("{k} from {from}"),
        }),
    })
}

/// `cairn only-in-backup`: items deleted in Microsoft 365 that the backup still has.
pub fn only_in_backup(a: OnlyInBackupArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = config::workspace(config, &a.repo, None)?;
    let rule = item_rule(a.keep_items.as_deref(), &a.items_from)?;
    let scope = cairn_app::retention::Scope {
        tenant: a.tenant.clone(),
        resources: a.resource.clone(),
    };
    let items =
        cairn_app::retention::only_in_backup(&ws, &scope, rule.as_ref(), chrono::Utc::now())?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    for i in &items {
        outln!(
            "{} {:<30} {:<8} deleted {} ({} days ago)  {}  kept by {}",
            i.tenant,
            i.resource,
            i.kind,
            i.deleted.format("%Y-%m-%d"),
            i.age_days,
            i.path,
            i.kept_by
        );
    }
    outln!("{} items exist only in the backup", items.len());
    Ok(())
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
    let ws = config::workspace(config, &a.repo, None)?;
    let cfg = ws.config();
    let location = ws.repository().to_string();
    Repo::init(ws.repo_options()?)?;
    outln!("created repository at {location}");
    eprintln!("keep the password safe: without it the backups cannot be read");
    if !a.no_config && cfg.file().repository.is_none() {
        let recorded = config::absolute_location(&location)?;
        let password_file = match (&a.repo.password_file, &cfg.file().password_file) {
            (Some(f), None) => Some(config::path_value(f)?),
            _ => None,
        };
        config::edit_file(cfg.path(), cfg.env(), |doc| {
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
    let ws = config::workspace(config, &a.repo, None)?;
    let all = ws.repo()?.snapshots()?;
    let filter = SnapshotFilter {
        tenant: a.tenant.clone(),
        resource: a.resource.clone(),
        since: a.since,
        until: a.until,
    };
    let catalog = match a.no_catalog {
        true => None,
        false => ws.existing_catalog()?,
    };
    if let Some(cat) = catalog.filter(|c| c.resources().is_ok_and(|r| !r.is_empty())) {
        let listed = browse::snapshots(&*cat, &filter, Some(&all))?;
        if a.json {
            outln!("{}", serde_json::to_string_pretty(&listed.rows)?);
            return Ok(());
        }
        crate::browse::snapshots::print(&listed.rows)?;
        if listed.not_in_catalog > 0 {
            eprintln!(
                "note: {} snapshots of the repository are not in this machine's catalog; `cairn snapshots --no-catalog` lists them all",
                listed.not_in_catalog
            );
        }
        return Ok(());
    }
    let snaps = browse::repo_snapshots(all, &filter);
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

pub fn check(a: CheckArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(config::workspace(config, &a.repo, None)?);
    let subset = match (&a.read_data_subset, a.read_data) {
        (Some(s), _) => Some(s.clone()),
        (None, true) => Some("all".to_string()),
        (None, false) => None,
    };
    let report = crate::sim::runtime()?.block_on(maintenance::check(ws, subset))?;
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
    let ws = Arc::new(config::workspace(config, &a.repo, None)?);
    let req = ForgetRequest {
        rule: ForgetRule {
            keep_last: a.keep_last,
            keep_daily: a.keep_daily,
            keep_weekly: a.keep_weekly,
            keep_monthly: a.keep_monthly,
            keep_yearly: a.keep_yearly,
            keep_within: a.keep_within_days.map(|d| chrono::Duration::days(d as i64)),
            only_tenant: a.tenant.clone(),
            only_resource: a.resource.clone(),
        },
        holds: a.holds.clone(),
        dry_run: a.dry_run,
        prune: a.prune,
    };
    let rule = item_rule(a.keep_items.as_deref(), &a.items_from)?;
    let snapshot_rules = a.keep_last.is_some()
        || a.keep_daily.is_some()
        || a.keep_weekly.is_some()
        || a.keep_monthly.is_some()
        || a.keep_yearly.is_some()
        || a.keep_within_days.is_some();
    if let Some(rule) = &rule {
        let scope = cairn_app::retention::Scope {
            tenant: a.tenant.clone(),
            resources: a.resource.iter().cloned().collect(),
        };
        let r = cairn_app::retention::apply(&ws, rule, &scope, a.dry_run, chrono::Utc::now())?;
        let verb = if a.dry_run { "would remove" } else { "removed" };
        for e in &r.removed {
            outln!(
                "{verb} item {} of {} (dated {}, in {} restore points)",
                e.path,
                e.resource,
                e.date.format("%Y-%m-%d"),
                e.points.len()
            );
        }
        for e in &r.spared {
            outln!(
                "held   item {} of {} (spared by legal hold {})",
                e.path,
                e.resource,
                e.held_by.as_deref().unwrap_or("?")
            );
        }
        outln!(
            "item rule {}: {} items {verb}, {} held, {} restore points rewritten",
            rule.text,
            r.removed.len(),
            r.spared.len(),
            r.rewritten
        );
        if !snapshot_rules {
            return Ok(());
        }
    }
    let out = crate::sim::runtime()?.block_on(maintenance::forget(ws, req))?;
    let report = &out.report;
    let verb = if a.dry_run { "would remove" } else { "removed" };
    for s in &report.removed {
        outln!(
            "{verb} {} {} {}",
            &s.id[..8],
            s.time.format("%Y-%m-%d %H:%M"),
            s.label
        );
    }
    for (s, hold) in &out.spared {
        outln!(
            "held   {} {} {} (spared by legal hold {hold})",
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
    if let Some(n) = out.pruned {
        outln!("pruned: {n} packs deleted");
    }
    Ok(())
}

pub fn prune(a: PruneArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(config::workspace(config, &a.repo, None)?);
    let (n, completed) = crate::sim::runtime()?.block_on(maintenance::prune(ws))?;
    outln!("pruned: {n} packs deleted");
    for id in completed {
        outln!("erasure {id} completed: its data was under retention until now");
    }
    Ok(())
}

pub fn copy(a: CopyArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(config::workspace(config, &a.repo, None)?);
    let password2 = ws.config().env().get(env::CAIRN_PASSWORD2);
    let n = crate::sim::runtime()?.block_on(maintenance::copy(ws, a.to.clone(), password2))?;
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
    let ws = Arc::new(config::workspace(config, &a.repo, None)?);
    let what = match a.what.as_str() {
        "index" => Repair::Index,
        _ => Repair::Snapshots,
    };
    let out = crate::sim::runtime()?.block_on(maintenance::repair(ws, what, a.dry_run))?;
    outln!(
        "repair {} done{}",
        a.what,
        if a.dry_run { " (dry run)" } else { "" }
    );
    if out.rewritten > 0 || out.forgotten > 0 {
        outln!(
            "catalog: {} restore points now read from their repaired snapshot, {} forgotten",
            out.rewritten,
            out.forgotten
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this tenant's restore points.
    #[arg(long, env = env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Only this resource's.
    #[arg(long)]
    resource: Option<String>,
    /// Share of the items of each latest restore point read back: 5%, 100%.
    #[arg(long, default_value = "5%")]
    sample: String,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

/// `cairn verify`: a restore drill.
pub fn verify(a: VerifyArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = config::workspace(config, &a.repo, None)?;
    let sample_percent: f64 = a.sample.trim().trim_end_matches('%').parse().map_err(|_| {
        cairn_app::UserError::new(format!("--sample {:?} is not a share", a.sample))
            .hint("write it as 5% or 100%")
    })?;
    let report = cairn_app::maintenance::drill(
        &ws,
        &cairn_app::maintenance::DrillRequest {
            tenant: a.tenant.clone(),
            resource: a.resource.clone(),
            resources: Vec::new(),
            sample_percent,
        },
    )?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.failed {
            outln!(
                "FAILED {} (tenant {}) point {} {}: {}",
                f.resource,
                f.tenant,
                f.point,
                f.path,
                f.reason
            );
        }
        outln!(
            "{} items of {} restore points read back ({}), {} failed",
            report.checked,
            report.points,
            crate::browse::human_size(report.bytes),
            report.failed.len()
        );
    }
    if !report.failed.is_empty() {
        bail!(
            "{} items could not be read back as they were backed up\nhint: `cairn check --read-data` examines the whole repository; `cairn repair index` and `cairn repair snapshots` mend what can be mended, a copy (`cairn copy`) restores the rest",
            report.failed.len()
        );
    }
    Ok(())
}
