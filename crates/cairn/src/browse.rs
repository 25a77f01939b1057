//! Browsing what was backed up without Graph: `snapshots` per resource, `ls`, `find` and
//! `export`.
//!
//! Everything but the content of an export comes from the local catalog, so listing a
//! restore point or searching ten years of them reads no pack of the repository (and needs
//! no password). A command names a restore point as `RESOURCE[@POINT]`; this module turns
//! that into the catalog's resource and point, with errors that list what exists.

pub mod export;
pub mod find;
pub mod ls;
pub mod snapshots;

use crate::config::{Config, UserError};
use crate::local::LocalState;
use crate::repo_cmd::RepoArgs;
use cairn_catalog::{Catalog, Point, Resource, SqliteCatalog};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The catalog of the repository `args` name, if this machine has one. Opening never
/// creates it: a missing catalog is reported, not replaced by an empty one.
pub fn existing_catalog(cfg: &Config, args: &RepoArgs) -> anyhow::Result<Option<SqliteCatalog>> {
    let repository = cfg.repository(args)?;
    let state = LocalState::new(&cfg.cache_dir(None)?, &repository);
    if !state.catalog.exists() {
        return Ok(None);
    }
    Ok(Some(state.open_catalog()?))
}

/// Like [`existing_catalog`], an error with a hint when there is none.
pub fn catalog(cfg: &Config, args: &RepoArgs) -> anyhow::Result<SqliteCatalog> {
    match existing_catalog(cfg, args)? {
        Some(c) => Ok(c),
        None => {
            let repository = cfg.repository(args)?;
            let state = LocalState::new(&cfg.cache_dir(None)?, &repository);
            Err(UserError::new(format!(
                "no catalog of the repository {repository} on this machine (looked for {})",
                state.catalog.display()
            ))
            .hint(format!(
                "the catalog is written by `cairn backup`; run a backup first, or point {} at the cache directory of the machine that ran the backups",
                crate::env::CAIRN_CACHE_DIR
            ))
            .into())
        }
    }
}

/// The resource called `name`, in `tenant` if given.
pub fn resolve_resource(
    cat: &dyn Catalog,
    name: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Resource> {
    let all = cat.resources()?;
    let found: Vec<&Resource> = all
        .iter()
        .filter(|r| r.name.eq_ignore_ascii_case(name) && tenant.is_none_or(|t| r.tenant == t))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(unknown_resource(name, &all).into()),
        many => Err(
            UserError::new(format!("{name} is a resource of {} tenants", many.len()))
                .hint(format!(
                    "choose one with --tenant: {}",
                    many.iter()
                        .map(|r| r.tenant.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into(),
        ),
    }
}

fn unknown_resource(name: &str, all: &[Resource]) -> UserError {
    let hint = if all.is_empty() {
        "the catalog holds no resource yet: run `cairn backup` first".to_string()
    } else {
        const SHOWN: usize = 20;
        let mut names: Vec<String> = all
            .iter()
            .take(SHOWN)
            .map(|r| format!("{} ({})", r.name, r.tenant))
            .collect();
        if all.len() > SHOWN {
            names.push(format!(
                "and {} more (`cairn snapshots`)",
                all.len() - SHOWN
            ));
        }
        format!("resources with restore points: {}", names.join(", "))
    };
    UserError::new(format!("no resource named {name} in the catalog")).hint(hint)
}

/// `RESOURCE[@POINT]`: a resource and one of its restore points (the latest by default).
pub struct Selected {
    pub resource: Resource,
    pub point: Point,
}

/// Resolves `RESOURCE[@POINT]`. User principal names hold an `@` themselves, so the whole
/// text is tried as a resource name first, then the part before the last `@`.
pub fn select(cat: &dyn Catalog, spec: &str, tenant: Option<&str>) -> anyhow::Result<Selected> {
    let (resource, point) = match resolve_resource(cat, spec, tenant) {
        Ok(r) => (r, None),
        Err(whole) => match spec.rsplit_once('@') {
            Some((name, point)) if !name.is_empty() && !point.contains('.') => {
                match resolve_resource(cat, name, tenant) {
                    Ok(r) => (r, Some(point)),
                    Err(_) => return Err(whole),
                }
            }
            _ => return Err(whole),
        },
    };
    let points = cat.points(resource.id)?;
    let Some(latest) = points.last().cloned() else {
        return Err(UserError::new(format!(
            "{} has no restore point in the catalog",
            resource.name
        ))
        .hint("its first backup has not completed: run `cairn backup` again")
        .into());
    };
    let point = match point {
        None => latest,
        Some(p) => find_point(&points, p).ok_or_else(|| unknown_point(&resource, p, &points))?,
    };
    Ok(Selected { resource, point })
}

/// A point by number, snapshot id prefix, or date/time (the latest point at or before it).
pub fn find_point(points: &[Point], spec: &str) -> Option<Point> {
    let spec = spec.trim();
    if let Ok(seq) = spec.parse::<i64>()
        && let Some(p) = points.iter().find(|p| p.seq == seq)
    {
        return Some(p.clone());
    }
    if spec.len() >= 4 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
        let spec = spec.to_ascii_lowercase();
        let matching: Vec<&Point> = points
            .iter()
            .filter(|p| p.snapshot.starts_with(&spec))
            .collect();
        // Several points may share a snapshot (nothing changed); any of them reads the same.
        if let Some(p) = matching.last() {
            return Some((*p).clone());
        }
    }
    let at = parse_time(spec, Bound::End).ok()?;
    points.iter().rev().find(|p| p.time <= at).cloned()
}

fn unknown_point(res: &Resource, spec: &str, points: &[Point]) -> anyhow::Error {
    const SHOWN: usize = 10;
    let shown: Vec<String> = points
        .iter()
        .rev()
        .take(SHOWN)
        .map(|p| {
            format!(
                "{} ({} {})",
                p.seq,
                short(&p.snapshot),
                p.time.format("%Y-%m-%d %H:%M")
            )
        })
        .collect();
    UserError::new(format!("{} has no restore point {spec}", res.name))
        .hint(format!(
            "give a point number, a snapshot id or a date; {} has {} restore points, the latest: {}",
            res.name,
            points.len(),
            shown.join(", ")
        ))
        .into()
}

/// Which end of a day a date without a time stands for.
#[derive(Clone, Copy)]
pub enum Bound {
    Start,
    End,
}

/// `2026-03-01`, `2026-03-01T10:15[:00]`, `2026-03-01 10:15[:00]` (UTC) or RFC 3339. A date
/// alone is the start or the end of that day, as `bound` says.
pub fn parse_time(s: &str, bound: Bound) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), f) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let t = match bound {
            Bound::Start => d.and_time(NaiveTime::MIN),
            Bound::End => d.and_time(
                NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN),
            ),
        };
        return Ok(Utc.from_utc_datetime(&t));
    }
    Err(UserError::new(format!("{s:?} is not a date"))
        .hint("write dates as 2026-03-01, 2026-03-01T10:15 (UTC) or RFC 3339 (2026-03-01T10:15:00+01:00)")
        .into())
}

/// A clap value parser for dates that stand for the start of their day.
pub fn start_time(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, Bound::Start).map_err(|e| e.to_string())
}

/// A clap value parser for dates that stand for the end of their day.
pub fn end_time(s: &str) -> Result<DateTime<Utc>, String> {
    parse_time(s, Bound::End).map_err(|e| e.to_string())
}

/// The first characters of a snapshot id, as restic shows them.
pub fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// `1.2 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A path given on the command line, as the catalog spells paths: `/`-separated, without
/// leading, trailing or doubled slashes.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn points() -> Vec<Point> {
        (1..=3)
            .map(|seq| Point {
                seq,
                snapshot: format!("{seq}abc{seq}def00"),
                time: Utc.with_ymd_and_hms(2026, 3, seq as u32, 12, 0, 0).unwrap(),
            })
            .collect()
    }

    #[test]
    fn points_by_number_snapshot_and_date() {
        let p = points();
        assert_eq!(find_point(&p, "2").unwrap().seq, 2);
        assert_eq!(find_point(&p, "3abc3d").unwrap().seq, 3);
        assert_eq!(find_point(&p, "2026-03-02").unwrap().seq, 2, "end of day");
        assert_eq!(find_point(&p, "2026-03-02T11:00").unwrap().seq, 1);
        assert_eq!(find_point(&p, "2026-03-02T12:00:00Z").unwrap().seq, 2);
        assert!(find_point(&p, "2026-02-28").is_none());
        assert!(find_point(&p, "9").is_none());
        assert!(find_point(&p, "ffff").is_none());
    }

    #[test]
    fn paths_are_compared_by_component() {
        assert!(is_under("mail/Inbox/x.eml", "mail/Inbox"));
        assert!(is_under("mail/Inbox", "mail/Inbox"));
        assert!(!is_under("mail/Inbox2/x.eml", "mail/Inbox"));
        assert!(is_under("anything", ""));
        assert_eq!(clean_path("/mail//Inbox/./"), "mail/Inbox");
    }
}
