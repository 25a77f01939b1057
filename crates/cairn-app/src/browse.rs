//! Browsing what was backed up without Graph and without the repository's data: restore
//! points per resource, what a point holds under a path, and a search across points. Every
//! name goes through the catalog's one resolver (`cairn_catalog::select`), so a resource
//! is always a resource of one tenant.

use crate::Workspace;
use crate::error::UserError;
use cairn_catalog::{Catalog, Hit, ItemRow, Point, Query, Resource, Selected, select};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The kind of the rows that record a folder itself (drive folders, so that empty ones
/// are kept): shown as directories, never as items.
pub const FOLDER: &str = "folder";

/// A path as the catalog spells paths: `/`-separated, without leading, trailing or
/// doubled slashes.
pub fn clean_path(p: &str) -> String {
    p.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `path` is `dir` or lies below it (`dir` empty: everything).
pub fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || (path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/')
}

/// Which restore points to show.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct SnapshotFilter {
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl SnapshotFilter {
    fn takes(&self, tenant: &str, resource: &str, time: DateTime<Utc>) -> bool {
        self.tenant.as_ref().is_none_or(|t| t == tenant)
            && self
                .resource
                .as_ref()
                .is_none_or(|r| r.eq_ignore_ascii_case(resource))
            && self.since.is_none_or(|t| time >= t)
            && self.until.is_none_or(|t| time <= t)
    }
}

/// One restore point of one resource, as the catalog numbers and counts it.
#[derive(Debug, serde::Serialize)]
pub struct SnapshotRow {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub snapshot: String,
    pub time: DateTime<Utc>,
    pub items: u64,
    pub size: u64,
    /// Items by kind: message, event, contact, file, listItem.
    pub kinds: BTreeMap<String, u64>,
    /// False when the repository no longer has the snapshot (forgotten since).
    pub in_repository: bool,
    /// Ransomware or mass-change detection found signs in it (see `findings`).
    pub suspect: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<cairn_backup::Finding>,
    /// A legal hold in force keeps it (the hold's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// Restore points listed from the catalog.
#[derive(Debug, serde::Serialize)]
pub struct Snapshots {
    pub rows: Vec<SnapshotRow>,
    /// Snapshots of the repository the filter takes that this machine's catalog does not
    /// know (written by another machine, or before a catalog rebuild).
    pub not_in_catalog: usize,
}

/// The restore points the filter selects from the catalog, oldest first per resource,
/// checked against the repository's list of snapshots when `in_repo` is given.
pub fn snapshots(
    cat: &dyn Catalog,
    filter: &SnapshotFilter,
    in_repo: Option<&[cairn_repo::SnapshotInfo]>,
) -> anyhow::Result<Snapshots> {
    let ids: Option<HashSet<&str>> = in_repo.map(|s| s.iter().map(|s| s.id.as_str()).collect());
    let mut rows = Vec::new();
    let suspects = crate::detect::suspects(cat)?;
    let held = crate::holds::held_in(cat)?;
    for r in cat.resources()? {
        for p in cat.points(r.id)? {
            if filter.takes(&r.tenant, &r.name, p.time) {
                let mut row = row(cat, &r, &p, ids.as_ref())?;
                row.held_by = held
                    .keeping(&r.tenant, &r.name, &p.snapshot)
                    .map(str::to_string);
                if let Some(s) = suspects.get(&p.snapshot) {
                    row.suspect = true;
                    row.findings = s.findings.clone();
                }
                rows.push(row);
            }
        }
    }
    let known: HashSet<&str> = rows.iter().map(|r| r.snapshot.as_str()).collect();
    let not_in_catalog = in_repo
        .unwrap_or_default()
        .iter()
        .filter(|s| !known.contains(s.id.as_str()) && !cairn_repo::is_record(s))
        .filter(|s| filter.takes(&s.hostname, &s.label, s.time))
        .count();
    Ok(Snapshots {
        rows,
        not_in_catalog,
    })
}

/// Counts what a point holds: one walk of its catalog rows, no repository read.
fn row(
    cat: &dyn Catalog,
    r: &Resource,
    p: &Point,
    in_repo: Option<&HashSet<&str>>,
) -> anyhow::Result<SnapshotRow> {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let (mut items, mut size) = (0u64, 0u64);
    cat.for_each_at(r.id, p.seq, "", &mut |row| {
        if row.kind == FOLDER {
            return true;
        }
        items += 1;
        size += row.size;
        *kinds.entry(row.kind).or_default() += 1;
        true
    })?;
    Ok(SnapshotRow {
        tenant: r.tenant.clone(),
        resource: r.name.clone(),
        point: p.seq,
        snapshot: p.snapshot.clone(),
        time: p.time,
        items,
        size,
        kinds,
        in_repository: in_repo.is_none_or(|s| s.contains(p.snapshot.as_str())),
        suspect: false,
        findings: Vec::new(),
        held_by: None,
    })
}

/// The repository's snapshots the filter takes, as they are (no catalog).
pub fn repo_snapshots(
    all: Vec<cairn_repo::SnapshotInfo>,
    filter: &SnapshotFilter,
) -> Vec<cairn_repo::SnapshotInfo> {
    all.into_iter()
        .filter(|s| !cairn_repo::is_record(s))
        .filter(|s| filter.takes(&s.hostname, &s.label, s.time))
        .collect()
}

/// A folder below the listed path, with what it holds (recursively).
#[derive(Debug, Default, serde::Serialize)]
pub struct FolderSummary {
    pub name: String,
    pub path: String,
    pub items: u64,
    pub size: u64,
}

/// What a restore point holds under a path: its folders (counted), and its items, read
/// from the catalog on demand ([`Listing::for_each_item`]) so that a mailbox is never
/// held in memory.
#[derive(Debug)]
pub struct Listing {
    pub selected: Selected,
    /// The path listed, cleaned (`""`: the root).
    pub dir: String,
    pub recursive: bool,
    pub folders: Vec<FolderSummary>,
    /// The path names one item.
    exact: Option<ItemRow>,
    /// Items directly under the path (all below it when recursive).
    direct: u64,
}

/// Lists `path` of a restore point: an error with a hint when it holds nothing there.
pub fn list(
    cat: &dyn Catalog,
    selected: Selected,
    path: &str,
    recursive: bool,
) -> anyhow::Result<Listing> {
    let (res, seq) = (selected.resource.id, selected.point.seq);
    let dir = clean_path(path);
    let depth = dir.split('/').filter(|c| !c.is_empty()).count();
    let mut folders: BTreeMap<String, FolderSummary> = BTreeMap::new();
    let mut direct = 0u64;
    let mut exact: Option<ItemRow> = None;
    let mut is_folder = false;
    cat.for_each_at(res, seq, &dir, &mut |row| {
        let folder_row = row.kind == FOLDER;
        if row.path == dir {
            // The path names a folder the backup recorded (a drive folder), or one item.
            if folder_row {
                is_folder = true;
            } else {
                exact = Some(row);
            }
        } else if is_under(&row.path, &dir) {
            let rest: Vec<&str> = row.path.split('/').skip(depth).collect();
            if !recursive && (rest.len() > 1 || folder_row) {
                let f = folders.entry(rest[0].to_string()).or_default();
                if !folder_row {
                    f.items += 1;
                    f.size += row.size;
                }
            } else {
                direct += 1;
            }
        }
        true
    })?;
    if exact.is_none() && !is_folder && folders.is_empty() && direct == 0 && !dir.is_empty() {
        return Err(UserError::new(format!(
            "{} has nothing under {dir} in restore point {seq}",
            selected.resource.name
        ))
        .hint(format!(
            "`cairn ls {}@{seq}` shows the top folders (mail, calendar, contacts, onedrive, libraries, lists)",
            selected.resource.name
        ))
        .into());
    }
    let folders = folders
        .into_iter()
        .map(|(name, f)| FolderSummary {
            path: if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            },
            name,
            ..f
        })
        .collect();
    Ok(Listing {
        selected,
        dir,
        recursive,
        folders,
        exact,
        direct,
    })
}

impl Listing {
    /// The items listed, in repository order; `f` returning false stops the walk.
    pub fn for_each_item(
        &self,
        cat: &dyn Catalog,
        f: &mut dyn FnMut(ItemRow) -> bool,
    ) -> anyhow::Result<()> {
        if let Some(row) = &self.exact {
            f(row.clone());
            return Ok(());
        }
        if self.direct == 0 {
            return Ok(());
        }
        let dir = &self.dir;
        let depth = dir.split('/').filter(|c| !c.is_empty()).count();
        let (res, seq) = (self.selected.resource.id, self.selected.point.seq);
        cat.for_each_at(res, seq, dir, &mut |row| {
            if !is_under(&row.path, dir) || row.path == *dir {
                return true;
            }
            if !self.recursive
                && (row.kind == FOLDER || row.path.split('/').skip(depth).count() > 1)
            {
                return true;
            }
            f(row)
        })?;
        Ok(())
    }
}

/// A search across restore points.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct FindRequest {
    /// Text in the subject or name (case-insensitive).
    pub text: Option<String>,
    /// Only these resources (names, resolved in `tenant`).
    pub resources: Vec<String>,
    pub tenant: Option<String>,
    /// Sender address (or part of it).
    pub from: Option<String>,
    /// Recipient address (or part of it).
    pub to: Option<String>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub kind: Option<String>,
    pub limit: u64,
}

/// One version found, with the last point holding it (the resource's latest when it is
/// still current).
#[derive(Debug)]
pub struct Found {
    pub hit: Hit,
    pub last_seq: i64,
}

/// What a search found: at most `limit` hits, and whether there were more.
#[derive(Debug)]
pub struct FindResult {
    pub found: Vec<Found>,
    pub more: bool,
}

pub fn find(cat: &dyn Catalog, req: &FindRequest) -> anyhow::Result<FindResult> {
    let mut resources = Vec::new();
    for r in &req.resources {
        resources.push(select::resolve_resource(cat, req.tenant.as_deref(), r)?.id);
    }
    // The catalog matches one address against sender or recipients; the side asked for
    // is checked here.
    let post_filter = req.from.is_some() || req.to.is_some();
    let q = Query {
        tenant: req.tenant.clone(),
        resources,
        text: req.text.clone().filter(|t| !t.is_empty()),
        person: req.from.clone().or(req.to.clone()),
        after: req.after,
        before: req.before,
        min_size: req.min_size,
        max_size: req.max_size,
        kind: req.kind.clone(),
        limit: (!post_filter).then_some(req.limit + 1),
    };
    let contains = |field: &Option<String>, needle: &Option<String>| match needle {
        None => true,
        Some(n) => field
            .as_deref()
            .is_some_and(|f| f.to_lowercase().contains(&n.to_lowercase())),
    };
    let mut hits: Vec<Hit> = cat
        .find(&q)?
        .into_iter()
        .filter(|h| contains(&h.row.sender, &req.from) && contains(&h.row.recipients, &req.to))
        .collect();
    let more = hits.len() as u64 > req.limit;
    hits.truncate(req.limit as usize);
    let mut latest: HashMap<i64, i64> = HashMap::new();
    let mut found = Vec::with_capacity(hits.len());
    for hit in hits {
        let last_seq = match &hit.last {
            Some(p) => p.seq,
            None => match latest.get(&hit.resource.id) {
                Some(s) => *s,
                None => {
                    let s = cat
                        .points(hit.resource.id)?
                        .last()
                        .map(|p| p.seq)
                        .unwrap_or(hit.first.seq);
                    latest.insert(hit.resource.id, s);
                    s
                }
            },
        };
        found.push(Found { hit, last_seq });
    }
    Ok(FindResult { found, more })
}

/// `RESOURCE[@POINT]` of `tenant` in the workspace's catalog.
pub fn select_in(ws: &Workspace, spec: &str, tenant: Option<&str>) -> anyhow::Result<Selected> {
    Ok(select::select(&*ws.catalog()?, tenant, spec)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_by_component() {
        assert!(is_under("mail/Inbox/x.eml", "mail/Inbox"));
        assert!(is_under("mail/Inbox", "mail/Inbox"));
        assert!(!is_under("mail/Inbox2/x.eml", "mail/Inbox"));
        assert!(is_under("anything", ""));
        assert_eq!(clean_path("/mail//Inbox/./"), "mail/Inbox");
    }
}
