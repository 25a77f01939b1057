//! `cairn snapshots` from the catalog: restore points per resource, numbered as `ls`, `find`
//! and `export` name them, with what each holds.

use super::short;
use cairn_catalog::{Catalog, Point, Resource};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};

/// Which restore points to show.
pub struct Filter<'a> {
    pub tenant: Option<&'a str>,
    pub resource: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One restore point of one resource.
#[derive(serde::Serialize)]
pub struct Row {
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
}

/// The restore points the filter selects, oldest first per resource. `in_repo` is the set
/// of snapshot ids the repository holds, when it was read.
pub fn rows(
    cat: &dyn Catalog,
    filter: &Filter<'_>,
    in_repo: Option<&HashSet<String>>,
) -> anyhow::Result<Vec<Row>> {
    let resources: Vec<Resource> = cat
        .resources()?
        .into_iter()
        .filter(|r| filter.tenant.is_none_or(|t| r.tenant == t))
        .filter(|r| {
            filter
                .resource
                .is_none_or(|n| r.name.eq_ignore_ascii_case(n))
        })
        .collect();
    let mut out = Vec::new();
    for r in &resources {
        for p in cat.points(r.id)? {
            if filter.since.is_some_and(|t| p.time < t) || filter.until.is_some_and(|t| p.time > t)
            {
                continue;
            }
            out.push(row(cat, r, &p, in_repo)?);
        }
    }
    Ok(out)
}

/// Counts what a point holds: one walk of its catalog rows, no repository read.
fn row(
    cat: &dyn Catalog,
    r: &Resource,
    p: &Point,
    in_repo: Option<&HashSet<String>>,
) -> anyhow::Result<Row> {
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let (mut items, mut size) = (0u64, 0u64);
    cat.for_each_at(r.id, p.seq, "", &mut |row| {
        if row.kind == super::ls::FOLDER {
            return true;
        }
        items += 1;
        size += row.size;
        match kinds.get_mut(&row.kind) {
            Some(n) => *n += 1,
            None => {
                kinds.insert(row.kind, 1);
            }
        }
        true
    })?;
    Ok(Row {
        tenant: r.tenant.clone(),
        resource: r.name.clone(),
        point: p.seq,
        snapshot: p.snapshot.clone(),
        time: p.time,
        items,
        size,
        kinds,
        in_repository: in_repo.is_none_or(|s| s.contains(&p.snapshot)),
    })
}

/// The table `cairn snapshots` prints. Tenant and resource columns are as wide as their
/// longest value (site URLs run long), so the columns after them stay aligned.
pub fn print(rows: &[Row]) -> anyhow::Result<()> {
    let width = |head: &str, f: &dyn Fn(&Row) -> usize| {
        rows.iter().map(f).max().unwrap_or(0).max(head.len())
    };
    let tw = width("TENANT", &|r| r.tenant.chars().count());
    let rw = width("RESOURCE", &|r| r.resource.chars().count());
    outln!(
        "{:<tw$} {:<rw$} {:>5} {:<10} {:<20} {:>8} {:>10}  CONTENT",
        "TENANT",
        "RESOURCE",
        "POINT",
        "ID",
        "TIME",
        "ITEMS",
        "SIZE"
    );
    for r in rows {
        let content = r
            .kinds
            .iter()
            .map(|(k, n)| format!("{n} {}", plural(k, *n)))
            .collect::<Vec<_>>()
            .join(", ");
        outln!(
            "{:<tw$} {:<rw$} {:>5} {:<10} {:<20} {:>8} {:>10}  {content}{}",
            r.tenant,
            r.resource,
            r.point,
            short(&r.snapshot),
            r.time.format("%Y-%m-%d %H:%M:%S"),
            r.items,
            super::human_size(r.size),
            if r.in_repository {
                ""
            } else {
                "  (forgotten: no longer in the repository)"
            }
        );
    }
    let resources: HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tenant.as_str(), r.resource.as_str()))
        .collect();
    outln!(
        "{} restore points of {} resources",
        rows.len(),
        resources.len()
    );
    Ok(())
}

fn plural(kind: &str, n: u64) -> String {
    let word = match kind {
        "message" => "message",
        "event" => "event",
        "contact" => "contact",
        "file" => "file",
        "listItem" => "list item",
        other => other,
    };
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
