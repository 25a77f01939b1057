//! Repository maintenance — forget, prune, check, copy, repair — each keeping this
//! machine's catalog in step with the repository: a restore point the repository no
//! longer has leaves the catalog too, and one a repair rewrote is read from its new
//! snapshot.

use crate::Workspace;
use cairn_catalog::{Catalog, select};
use cairn_repo::{CheckReport, ForgetReport, ForgetRule, LegalHold, Repo};
use std::sync::Arc;

/// A retention rule to apply, legal holds to respect.
#[derive(Clone, Debug, Default)]
pub struct ForgetRequest {
    /// GFS counts; `only_tenant`/`only_resource` narrow it to a tenant or a resource
    /// (a resource is resolved through the catalog when this machine has one).
    pub rule: ForgetRule,
    /// Resources (user principal names, group:…, site URLs) or snapshot id prefixes under
    /// legal hold: never forgotten.
    pub holds: Vec<String>,
    pub dry_run: bool,
    /// Prune afterwards.
    pub prune: bool,
}

/// What a forget did.
#[derive(Debug)]
pub struct ForgetOutcome {
    pub report: ForgetReport,
    /// Restore points the rule would have removed, each with the legal hold that kept it.
    pub spared: Vec<(cairn_repo::SnapshotInfo, String)>,
    /// Restore points removed from this machine's catalog.
    pub catalog_points: u64,
    /// Packs deleted by the prune, when asked for.
    pub pruned: Option<u64>,
}

/// A legal hold as typed: a resource name (it has an `@`, a `,` or is long) or a snapshot
/// id prefix.
pub fn legal_hold(h: &str) -> LegalHold {
    if h.contains('@') || h.contains(',') || h.contains(':') || h.len() > 40 {
        LegalHold::Resource(h.to_string())
    } else {
        LegalHold::Snapshot(h.to_string())
    }
}

/// Applies the rule; the catalog forgets what the repository removed.
pub async fn forget(ws: Arc<Workspace>, mut req: ForgetRequest) -> anyhow::Result<ForgetOutcome> {
    tokio::task::spawn_blocking(move || {
        ws.ensure_writer()?;
        // A resource is named as everywhere else: through the catalog's resolver, which
        // knows its tenant (and refuses a name several tenants have).
        if let Some(name) = req.rule.only_resource.clone()
            && let Some(cat) = ws.existing_catalog()?
        {
            let r = select::resolve_resource(&*cat, req.rule.only_tenant.as_deref(), &name)?;
            req.rule.only_tenant = Some(r.tenant);
            req.rule.only_resource = Some(r.name);
        }
        // The legal holds on record, and any given with the request.
        let on_record = crate::holds::held(&ws)?;
        let mut holds: Vec<LegalHold> = req.holds.iter().map(|h| legal_hold(h)).collect();
        holds.extend(on_record.as_legal_holds());
        let repo = ws.repo()?;
        let report = repo.forget(&req.rule, &holds, req.dry_run)?;
        let spared = report
            .held
            .iter()
            .map(|s| {
                let by = on_record
                    .keeping(&s.hostname, &s.label, &s.id)
                    .map(str::to_string)
                    .unwrap_or_else(|| "a hold given with the request".into());
                (s.clone(), by)
            })
            .collect();
        let mut catalog_points = 0;
        if !req.dry_run
            && !report.removed.is_empty()
            && let Some(cat) = ws.existing_catalog()?
        {
            let ids: Vec<String> = report.removed.iter().map(|s| s.id.clone()).collect();
            catalog_points = cat.forget_snapshots(&ids)?;
        }
        let pruned = match req.prune && !req.dry_run {
            true => Some(repo.prune()?),
            false => None,
        };
        Ok(ForgetOutcome {
            report,
            spared,
            catalog_points,
            pruned,
        })
    })
    .await?
}

/// Removes data no restore point needs. Returns the packs deleted, and the pending
/// erasures this prune could complete (their data is no longer under retention).
pub async fn prune(ws: Arc<Workspace>) -> anyhow::Result<(u64, Vec<String>)> {
    tokio::task::spawn_blocking(move || {
        ws.ensure_writer()?;
        let packs = ws.repo()?.prune()?;
        let completed = crate::erase::complete_pending(&ws)?;
        Ok((packs, completed))
    })
    .await?
}

/// Verifies the repository's structure, and with `read_data` (`all`, `10%`, `1/5`,
/// `2GiB`) its content.
pub async fn check(ws: Arc<Workspace>, read_data: Option<String>) -> anyhow::Result<CheckReport> {
    tokio::task::spawn_blocking(move || Ok(ws.repo()?.check(read_data.as_deref())?)).await?
}

/// Copies the restore points `to` lacks (3-2-1), unlocked with `password` (else the first
/// repository's). Returns how many were copied.
pub async fn copy(
    ws: Arc<Workspace>,
    to: String,
    password: Option<String>,
) -> anyhow::Result<usize> {
    tokio::task::spawn_blocking(move || {
        let mut opts = ws.repo_options()?;
        let src = ws.repo()?;
        if let Some(p) = password {
            opts.password = p;
        }
        opts.location = cairn_repo::Location::parse(&to)?;
        let dst = Repo::open(opts)
            .map_err(|e| anyhow::Error::from(e).context(format!("opening the copy at {to}")))?;
        Ok(src.copy_to(&dst)?)
    })
    .await?
}

/// What to repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Rebuild the index from the packs.
    Index,
    /// Rewrite restore points that refer to missing data, without the damaged items.
    Snapshots,
}

/// What a repair did to this machine's catalog.
#[derive(Debug, Default, serde::Serialize)]
pub struct RepairOutcome {
    /// Restore points that now read from their rewritten snapshot.
    pub rewritten: u64,
    /// Restore points whose snapshot is gone with no rewritten one to take its place.
    pub forgotten: u64,
}

/// Repairs the repository; after `Snapshots`, the catalog's points follow the rewritten
/// snapshots (same tenant, resource and time), and points of snapshots that are gone
/// leave the catalog.
pub async fn repair(
    ws: Arc<Workspace>,
    what: Repair,
    dry_run: bool,
) -> anyhow::Result<RepairOutcome> {
    tokio::task::spawn_blocking(move || {
        ws.ensure_writer()?;
        let repo = ws.repo()?;
        if what == Repair::Index {
            repo.repair_index(dry_run)?;
            return Ok(RepairOutcome::default());
        }
        let before = repo.snapshots()?;
        repo.repair_snapshots(dry_run)?;
        let mut out = RepairOutcome::default();
        let Some(cat) = ws.existing_catalog()?.filter(|_| !dry_run) else {
            return Ok(out);
        };
        let after = repo.snapshots()?;
        let mut gone = Vec::new();
        for old in before
            .iter()
            .filter(|b| !after.iter().any(|a| a.id == b.id))
        {
            let new = after.iter().find(|a| {
                a.hostname == old.hostname
                    && a.label == old.label
                    && a.time == old.time
                    && !before.iter().any(|b| b.id == a.id)
            });
            match new {
                Some(n) => out.rewritten += cat.replace_snapshot(&old.id, &n.id)?,
                None => gone.push(old.id.clone()),
            }
        }
        out.forgotten = cat.forget_snapshots(&gone)?;
        Ok(out)
    })
    .await?
}

/// A rebuilt catalog: what the rebuild found, and where the previous catalog was moved.
#[derive(Debug)]
pub struct Rebuilt {
    pub report: cairn_backup::RebuildReport,
    pub moved_aside: Option<std::path::PathBuf>,
    /// Legal holds taken back from the repository's record.
    pub holds: usize,
}

/// Recreates this machine's catalog from the repository (of `tenant` only, if given).
/// A catalog that holds resources is refused unless `force`, which moves it aside first.
/// Holds the backup lock: no backup of the repository runs meanwhile on this machine.
/// Blocking.
pub fn rebuild_catalog(
    ws: &Workspace,
    tenant: Option<&str>,
    force: bool,
    progress: &dyn cairn_backup::RebuildProgress,
) -> anyhow::Result<Rebuilt> {
    ws.ensure_writer()?;
    let local = ws.local();
    let _lock = local.lock_for_backup()?;
    let repo = ws.repo()?;
    if ws.settings().catalog.is_some() {
        // A shared catalog is not moved aside: it is rebuilt only into an empty schema.
        let catalog = ws.catalog_for_backup()?;
        let held = catalog.resources()?.len();
        if held > 0 {
            return Err(crate::UserError::new(format!(
                "the shared catalog already holds {held} resources"
            ))
            .hint("rebuild into a new schema (`?schema=NAME` in the catalog URL), or drop this one first")
            .into());
        }
        let report = cairn_backup::rebuild(&repo, &*catalog, tenant, progress)?;
        let holds = crate::holds::import(&repo, &*catalog)?;
        crate::detect::import(&repo, &*catalog)?;
        return Ok(Rebuilt {
            report,
            moved_aside: None,
            holds,
        });
    }
    let mut moved_aside = None;
    if local.catalog.exists() {
        let held = local.open_catalog()?.resources()?.len();
        if held > 0 {
            if !force {
                return Err(crate::UserError::new(format!(
                    "the catalog {} already holds {held} resources",
                    local.catalog.display()
                ))
                .hint("give --force to move it aside and rebuild it from the repository")
                .into());
            }
            moved_aside = Some(move_aside(&local.catalog)?);
        }
    }
    let catalog = local.open_catalog()?;
    let report = cairn_backup::rebuild(&repo, &catalog, tenant, progress)?;
    // What the repository records beside the backups comes back too.
    let holds = crate::holds::import(&repo, &catalog)?;
    crate::detect::import(&repo, &catalog)?;
    Ok(Rebuilt {
        report,
        moved_aside,
        holds,
    })
}

/// Moves the catalog (and SQLite's write-ahead log beside it) to `<name>.<time>.old`.
fn move_aside(catalog: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    use std::path::PathBuf;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = PathBuf::from(format!("{}.{stamp}.old", catalog.display()));
    for suffix in ["-wal", "-shm", ""] {
        let from = PathBuf::from(format!("{}{suffix}", catalog.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", aside.display()));
            std::fs::rename(&from, &to).map_err(|e| {
                anyhow::anyhow!(
                    "moving {} aside to {}: {e}\nhint: is a backup running with this catalog?",
                    from.display(),
                    to.display()
                )
            })?;
        }
    }
    Ok(aside)
}

/// The repository's keys (blocking).
pub fn keys(ws: &Workspace) -> anyhow::Result<Vec<cairn_repo::KeyInfo>> {
    Ok(ws.repo()?.keys()?)
}

/// Adds a key opening the repository with `password` (blocking). Returns its id.
pub fn add_key(ws: &Workspace, password: &str, label: Option<String>) -> anyhow::Result<String> {
    ws.ensure_writer()?;
    check_new_password(password)?;
    Ok(ws.repo()?.add_key(password, None, label)?)
}

/// Removes a key by id prefix (blocking); not the one the workspace's password opens.
pub fn remove_key(ws: &Workspace, prefix: &str) -> anyhow::Result<String> {
    ws.ensure_writer()?;
    Ok(ws.repo()?.remove_key(prefix)?)
}

/// Changes the password: a key for `new` is added, then the key the current password
/// opens is removed (blocking). Returns (new key id, removed key id).
pub fn change_password(ws: &Workspace, new: &str) -> anyhow::Result<(String, String)> {
    ws.ensure_writer()?;
    check_new_password(new)?;
    let repo = ws.repo()?;
    let old = repo
        .keys()?
        .into_iter()
        .find(|k| k.current)
        .map(|k| k.id)
        .ok_or_else(|| anyhow::anyhow!("the key of the current password was not found"))?;
    let added = repo.add_key(new, None, None)?;
    // Opened with the new password, the old key is no longer the current one.
    let mut opts = ws.repo_options()?;
    opts.password = new.to_string();
    let reopened = cairn_repo::Repo::open(opts)?;
    reopened.remove_key(&old)?;
    Ok((added, old))
}

fn check_new_password(p: &str) -> anyhow::Result<()> {
    if p.is_empty() {
        return Err(crate::UserError::new("the new password is empty")
            .hint("put it in the file given to --new-password-file (a trailing line end is not part of it)")
            .into());
    }
    Ok(())
}

/// A restore drill: which restore points to test, and how much of each.
#[derive(Clone, Debug)]
pub struct DrillRequest {
    pub tenant: Option<String>,
    pub resource: Option<String>,
    /// Only these resources (names as the catalog knows them, any case); empty: every
    /// resource `tenant` and `resource` let through.
    pub resources: Vec<String>,
    /// Share of the items of each latest restore point read back, in percent (0 < p ≤ 100).
    pub sample_percent: f64,
}

/// An item a drill could not read back as it was backed up.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DrillFailure {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub path: String,
    pub reason: String,
}

/// What a drill found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DrillReport {
    /// Restore points tested (the latest of each resource).
    pub points: u64,
    /// Items read back in full.
    pub checked: u64,
    pub bytes: u64,
    pub failed: Vec<DrillFailure>,
}

/// Reads a random sample of the items of each resource's latest restore point back from
/// the repository, in full, and compares each with what the catalog recorded: its size, and
/// for files Graph's quickXorHash. The repository's authenticated encryption already fails
/// a read of damaged data; the comparison catches the rest. Blocking.
pub fn drill(ws: &Workspace, req: &DrillRequest) -> anyhow::Result<DrillReport> {
    use base64::Engine as _;
    use rand::Rng as _;
    if !(req.sample_percent > 0.0 && req.sample_percent <= 100.0) {
        return Err(crate::UserError::new(format!(
            "a sample of {}% is not a share of the items",
            req.sample_percent
        ))
        .hint("give --sample between 0% and 100%, e.g. 5%")
        .into());
    }
    let cat = ws.catalog()?;
    let repo = ws.repo()?;
    let mut report = DrillReport::default();
    let mut rng = rand::rng();
    let only: std::collections::HashSet<String> =
        req.resources.iter().map(|r| r.to_lowercase()).collect();
    for res in cat.resources()? {
        if req.tenant.as_ref().is_some_and(|t| *t != res.tenant)
            || req
                .resource
                .as_ref()
                .is_some_and(|r| !r.eq_ignore_ascii_case(&res.name))
            || (!only.is_empty() && !only.contains(&res.name.to_lowercase()))
        {
            continue;
        }
        let Some(point) = cat.points(res.id)?.into_iter().max_by_key(|p| p.seq) else {
            continue;
        };
        report.points += 1;
        // The sample only is held: a share of one restore point's rows.
        let mut sample = Vec::new();
        cat.for_each_at(res.id, point.seq, "", &mut |row| {
            if row.kind != crate::browse::FOLDER && rng.random_bool(req.sample_percent / 100.0) {
                sample.push(row);
            }
            true
        })?;
        let fail = |path: &str, reason: String| DrillFailure {
            tenant: res.tenant.clone(),
            resource: res.name.clone(),
            point: point.seq,
            path: path.to_string(),
            reason,
        };
        let reader = match repo.open_snapshot(&point.snapshot) {
            Ok(r) => r,
            Err(e) => {
                report
                    .failed
                    .push(fail("", format!("the restore point cannot be opened: {e}")));
                continue;
            }
        };
        for row in sample {
            let mut sink = Hashing {
                qx: quickxorhash::QuickXorHash::new(),
                n: 0,
            };
            if let Err(e) = reader.read(&row.path, &mut sink) {
                report.failed.push(fail(&row.path, e.to_string()));
                continue;
            }
            report.checked += 1;
            report.bytes += sink.n;
            if sink.n != row.size {
                report.failed.push(fail(
                    &row.path,
                    format!("{} bytes read back, {} backed up", sink.n, row.size),
                ));
                continue;
            }
            if row.kind == "file"
                && let Some(expected) = &row.hash
            {
                let got = base64::engine::general_purpose::STANDARD.encode(sink.qx.finalize());
                if &got != expected {
                    report.failed.push(fail(
                        &row.path,
                        format!("content differs from what Graph reported (quickXorHash {got}, expected {expected})"),
                    ));
                }
            }
        }
    }
    Ok(report)
}

/// Counts and hashes what a read writes.
struct Hashing {
    qx: quickxorhash::QuickXorHash,
    n: u64,
}

impl std::io::Write for Hashing {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.qx.update(buf);
        self.n += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
