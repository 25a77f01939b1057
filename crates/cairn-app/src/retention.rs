//! Item-level retention, beside the restore-point rules: every item is kept for a span from
//! its own date — when it was received or last modified, or when it was deleted in
//! Microsoft 365 — whatever restore points come and go, and removed after, by rewriting the
//! restore points that hold it and purging. Legal holds spare what they cover.
//!
//! Also the report of what exists only in the backup (deleted in Microsoft 365), with its
//! age and the rule that keeps it.

use crate::holds;
use crate::{UserError, Workspace};
use cairn_catalog::{Catalog, ItemRow, Point, Resource};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Which date of an item its retention counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    /// Received (mail), start (events), else last modified.
    Modified,
    /// Deleted in Microsoft 365 (first seen missing); items still there never expire.
    Deleted,
}

impl From {
    pub fn parse(s: &str) -> Result<From, UserError> {
        match cairn_config::ItemsFrom::parse(s) {
            Some(f) => Ok(f.into()),
            None => Err(
                UserError::new(format!("--items-from {}: not a date of items", s.trim()))
                    .hint("give modified (received for mail) or deleted"),
            ),
        }
    }
}

impl std::convert::From<cairn_config::ItemsFrom> for From {
    fn from(f: cairn_config::ItemsFrom) -> From {
        match f {
            cairn_config::ItemsFrom::Modified => From::Modified,
            cairn_config::ItemsFrom::Deleted => From::Deleted,
        }
    }
}

/// Parses `7y`, `18m` (months), `90d`, `2w` (`cairn_config::span_days`, the one reader of
/// spans).
pub fn parse_span(s: &str) -> Result<chrono::Duration, UserError> {
    cairn_config::span_days(s)
        .map(chrono::Duration::days)
        .ok_or_else(|| {
            UserError::new(format!("{s}: not a retention span"))
                .hint("give a number and a unit: 7y, 18m (months), 90d, 2w")
        })
}

/// The rule.
#[derive(Clone, Debug)]
pub struct ItemRule {
    pub keep: chrono::Duration,
    pub from: From,
    /// As typed, for reports (`7y from deleted`).
    pub text: String,
}

/// Where to apply it.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub tenant: Option<String>,
    /// Resource names; empty: all.
    pub resources: Vec<String>,
}

impl Scope {
    fn takes(&self, r: &Resource) -> bool {
        self.tenant.as_ref().is_none_or(|t| *t == r.tenant)
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&r.name)))
    }
}

/// An item the rule removes (or, held, would).
#[derive(Clone, Debug, Serialize)]
pub struct Expired {
    pub tenant: String,
    pub resource: String,
    pub item: String,
    pub path: String,
    /// The date the rule counted from.
    pub date: DateTime<Utc>,
    /// Restore points holding it.
    pub points: Vec<i64>,
    /// The legal hold sparing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// What item-level retention did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RetentionReport {
    pub removed: Vec<Expired>,
    pub spared: Vec<Expired>,
    /// Restore points rewritten without the expired items.
    pub rewritten: u64,
    /// Originals the storage keeps under retention (deleted by a later forget/prune).
    pub kept_by_storage: Vec<String>,
}

/// One item, as its versions describe it.
struct Item {
    newest: ItemRow,
    /// (version row, first, last) of every version.
    versions: Vec<(ItemRow, i64, Option<i64>)>,
}

/// The date the rule counts from, if the item has one under it.
fn date_of(item: &Item, from: From, points: &[Point]) -> Option<DateTime<Utc>> {
    let (row, _, last) = item.versions.last()?;
    match from {
        From::Modified => Some(row.date.unwrap_or(row.mtime)),
        From::Deleted => {
            let last = (*last)?;
            points.iter().find(|p| p.seq > last).map(|p| p.time)
        }
    }
}

/// Walks the items of `res`, one at a time, in item order.
fn for_each_item(
    cat: &dyn Catalog,
    res: i64,
    f: &mut dyn FnMut(Item) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut current: Option<Item> = None;
    let mut failed = None;
    cat.for_each_version(res, &mut |row, first, last| {
        if row.kind == crate::browse::FOLDER {
            return true;
        }
        match &mut current {
            Some(it) if it.newest.item == row.item => {
                it.newest = row.clone();
                it.versions.push((row, first, last));
            }
            _ => {
                if let Some(done) = current.take()
                    && let Err(e) = f(done)
                {
                    failed = Some(e);
                    return false;
                }
                current = Some(Item {
                    newest: row.clone(),
                    versions: vec![(row, first, last)],
                });
            }
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(done) = current {
        f(done)?;
    }
    Ok(())
}

/// Applies the rule (with `dry_run`, says what it would remove). Blocking.
pub fn apply(
    ws: &Workspace,
    rule: &ItemRule,
    scope: &Scope,
    dry_run: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<RetentionReport> {
    if !dry_run {
        ws.ensure_writer()?;
    }
    let cat = ws.catalog()?;
    let held = holds::held(ws)?;
    let mut report = RetentionReport::default();
    let repo = if dry_run { None } else { Some(ws.repo()?) };
    for res in cat.resources()?.into_iter().filter(|r| scope.takes(r)) {
        let points = cat.points(res.id)?;
        let snapshot_of: BTreeMap<i64, &str> = points
            .iter()
            .map(|p| (p.seq, p.snapshot.as_str()))
            .collect();
        // Expired items of this resource: their paths per restore point.
        let mut paths: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut ids: Vec<String> = Vec::new();
        for_each_item(&*cat, res.id, &mut |item| {
            let Some(date) = date_of(&item, rule.from, &points) else {
                return Ok(());
            };
            if date + rule.keep > now {
                return Ok(());
            }
            let mut in_points = BTreeSet::new();
            let mut item_paths: Vec<(String, String)> = Vec::new();
            for (row, first, last) in &item.versions {
                let last = last.unwrap_or(i64::MAX);
                for (seq, snap) in snapshot_of.range(*first..=last) {
                    in_points.insert(*seq);
                    for p in crate::erase::paths_of(row) {
                        item_paths.push((snap.to_string(), p));
                    }
                }
            }
            let held_by = in_points.iter().find_map(|seq| {
                held.keeping(&res.tenant, &res.name, snapshot_of[seq])
                    .map(str::to_string)
            });
            let e = Expired {
                tenant: res.tenant.clone(),
                resource: res.name.clone(),
                item: item.newest.item.clone(),
                path: item.newest.path.clone(),
                date,
                points: in_points.into_iter().collect(),
                held_by: held_by.clone(),
            };
            if held_by.is_some() {
                report.spared.push(e);
                return Ok(());
            }
            for (snap, p) in item_paths {
                paths.entry(snap).or_default().insert(p);
            }
            ids.push(item.newest.item.clone());
            report.removed.push(e);
            Ok(())
        })?;
        let Some(repo) = &repo else { continue };
        if ids.is_empty() {
            continue;
        }
        let snaps: Vec<String> = paths.keys().cloned().collect();
        let all: Vec<String> = paths
            .values()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for (_, new, kept) in
            crate::erase::cut_out(repo, &*cat, res.id, &snaps, &all, &ids, "retention")?
        {
            report.rewritten += 1;
            if kept.is_some() {
                report.kept_by_storage.push(new);
            }
        }
    }
    if let Some(repo) = &repo
        && report.rewritten > 0
    {
        match repo.purge() {
            Ok(_) | Err(cairn_repo::RepoError::Deferred(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// An item that exists only in the backup: deleted in Microsoft 365.
#[derive(Clone, Debug, Serialize)]
pub struct OnlyInBackup {
    pub tenant: String,
    pub resource: String,
    pub item: String,
    pub kind: String,
    pub path: String,
    /// When a backup first found it gone.
    pub deleted: DateTime<Utc>,
    pub age_days: i64,
    /// The last restore point holding it.
    pub last_point: i64,
    /// What keeps it: the item rule (and until when), a legal hold, or the restore points.
    pub kept_by: String,
}

/// What exists only in the backup, oldest deletion first per resource. Blocking.
pub fn only_in_backup(
    ws: &Workspace,
    scope: &Scope,
    rule: Option<&ItemRule>,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<OnlyInBackup>> {
    let cat = ws.catalog()?;
    let held = holds::held(ws)?;
    let mut out = Vec::new();
    for res in cat.resources()?.into_iter().filter(|r| scope.takes(r)) {
        let points = cat.points(res.id)?;
        let mut found = Vec::new();
        for_each_item(&*cat, res.id, &mut |item| {
            let Some(deleted) = date_of(&item, From::Deleted, &points) else {
                return Ok(());
            };
            let last = item.versions.last().and_then(|v| v.2).unwrap_or_default();
            let last_snapshot = points
                .iter()
                .find(|p| p.seq == last)
                .map(|p| p.snapshot.as_str())
                .unwrap_or("");
            let kept_by = if let Some(h) = held.keeping(&res.tenant, &res.name, last_snapshot) {
                format!("legal hold {h}")
            } else if let Some(r) = rule {
                let from = date_of(&item, r.from, &points).unwrap_or(deleted);
                format!(
                    "item rule {} (until {})",
                    r.text,
                    (from + r.keep).format("%Y-%m-%d")
                )
            } else {
                format!(
                    "restore point {last} and earlier (the restore-point rules decide when it goes)"
                )
            };
            found.push(OnlyInBackup {
                tenant: res.tenant.clone(),
                resource: res.name.clone(),
                item: item.newest.item.clone(),
                kind: item.newest.kind.clone(),
                path: item.newest.path.clone(),
                deleted,
                age_days: (now - deleted).num_days(),
                last_point: last,
                kept_by,
            });
            Ok(())
        })?;
        found.sort_by_key(|f| f.deleted);
        out.extend(found);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_years_months_weeks_days() {
        assert_eq!(parse_span("90d").unwrap().num_days(), 90);
        assert_eq!(parse_span("2w").unwrap().num_days(), 14);
        assert_eq!(parse_span("1y").unwrap().num_days(), 365);
        assert_eq!(parse_span("7y").unwrap().num_days(), 7 * 365 + 1);
        assert!(parse_span("7").is_err());
        assert!(parse_span("0d").is_err());
        assert!(parse_span("xd").is_err());
    }
}
