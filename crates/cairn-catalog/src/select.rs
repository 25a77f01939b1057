//! The one resolver from what a person types to a resource and one of its restore points.
//!
//! Every command that names a restore point (`ls`, `find`, `export`, `restore`, `forget`,
//! the server's API) goes through here, so that a name means the same everywhere. The
//! tenant is part of a resource's identity: two tenants backed up into one catalog may both
//! have a `group:sales`, and a name that matches resources of several tenants is refused
//! with the candidates, never settled by whichever sorts first.

use crate::{Catalog, CatalogError, Point, Resource};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// Which restore point of a resource.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointSel {
    Latest,
    /// The point's number (1, 2, 3… per resource).
    Seq(i64),
    /// A prefix of the repository's snapshot id (at least 4 hex digits).
    Snapshot(String),
    /// The latest point taken at or before this time.
    At(DateTime<Utc>),
}

impl PointSel {
    /// `latest`, a point number, a snapshot id prefix (at least 4 hex digits), or a time
    /// (`2026-01-31` meaning the end of that day, `2026-01-31T12:00` in UTC, RFC 3339).
    pub fn parse(s: &str) -> Result<PointSel, SelectError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("latest") {
            return Ok(PointSel::Latest);
        }
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // A leading zero is no point number: it can only be the start of a snapshot id.
        if digits
            && s.len() <= 6
            && !(s.len() >= 4 && s.starts_with('0'))
            && let Ok(n) = s.parse()
        {
            return Ok(PointSel::Seq(n));
        }
        if let Ok(t) = parse_time(s, Bound::End) {
            return Ok(PointSel::At(t));
        }
        if s.len() >= 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(PointSel::Snapshot(s.to_ascii_lowercase()));
        }
        Err(SelectError::BadPoint { text: s.into() })
    }
}

impl std::fmt::Display for PointSel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PointSel::Latest => f.write_str("latest"),
            PointSel::Seq(n) => write!(f, "{n}"),
            PointSel::Snapshot(s) => f.write_str(s),
            PointSel::At(t) => write!(f, "at or before {}", t.to_rfc3339()),
        }
    }
}

/// A resource and one of its restore points.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Selected {
    pub resource: Resource,
    pub point: Point,
}

/// Why a selection names nothing, or more than one thing. All but `Catalog` are the
/// user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no resource named {name}{}", in_tenant(tenant.as_deref()))]
    UnknownResource {
        name: String,
        tenant: Option<String>,
        /// Some resources the catalog (or that tenant) does know, and how many in all.
        known: Vec<Resource>,
        total: usize,
        /// Other tenants that do have a resource of that name.
        elsewhere: Vec<String>,
    },
    #[error("{name} is a resource of {} tenants: {}", candidates.len(), describe(candidates))]
    Ambiguous {
        name: String,
        candidates: Vec<Resource>,
    },
    #[error("{} has no restore point in the catalog", label(resource))]
    NoPoints { resource: Resource },
    #[error("{} has no restore point {point}", label(resource))]
    UnknownPoint {
        resource: Resource,
        point: String,
        /// The latest points (newest first) and how many there are.
        latest: Vec<Point>,
        total: usize,
    },
    #[error(
        "{} has several restore points whose snapshot id starts with {prefix}",
        label(resource)
    )]
    AmbiguousSnapshot { resource: Resource, prefix: String },
    #[error("{text:?} is not a restore point")]
    BadPoint { text: String },
    #[error("{text:?} is not a date")]
    BadTime { text: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn in_tenant(t: Option<&str>) -> String {
    t.map(|t| format!(" in tenant {t}")).unwrap_or_default()
}

/// `group:sales (tenant zeta)`.
fn label(r: &Resource) -> String {
    format!("{} (tenant {})", r.name, r.tenant)
}

fn describe(rs: &[Resource]) -> String {
    rs.iter()
        .map(|r| format!("{} {} in tenant {}", r.kind, r.name, r.tenant))
        .collect::<Vec<_>>()
        .join("; ")
}

impl SelectError {
    /// The user's to fix (a name or point that does not exist, or is ambiguous), not an
    /// outage or a bug.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, SelectError::Catalog(_))
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            SelectError::UnknownResource {
                tenant,
                known,
                total,
                elsewhere,
                ..
            } => {
                if !elsewhere.is_empty() {
                    let flags: Vec<String> =
                        elsewhere.iter().map(|t| format!("--tenant {t}")).collect();
                    format!(
                        "a resource of that name is backed up in another tenant: {}",
                        flags.join(" or ")
                    )
                } else if known.is_empty() {
                    match tenant {
                        Some(t) => format!(
                            "the catalog holds no resource of tenant {t} yet: run `cairn backup --tenant {t}` first"
                        ),
                        None => "the catalog holds no resource yet: run `cairn backup` first"
                            .into(),
                    }
                } else {
                    let mut names: Vec<String> = known
                        .iter()
                        .map(|r| format!("{} ({})", r.name, r.tenant))
                        .collect();
                    if *total > known.len() {
                        names.push(format!(
                            "and {} more (`cairn snapshots`)",
                            total - known.len()
                        ));
                    }
                    format!(
                        "resources are named as backed up (user principal name, group:<name>, site URL); the catalog has {}",
                        names.join(", ")
                    )
                }
            }
            SelectError::Ambiguous { candidates, .. } => {
                let flags: Vec<String> = candidates
                    .iter()
                    .map(|r| format!("--tenant {}", r.tenant))
                    .collect();
                format!("choose the tenant with {}", flags.join(" or "))
            }
            SelectError::NoPoints { .. } => {
                "its first backup has not completed: run `cairn backup` again".into()
            }
            SelectError::UnknownPoint {
                resource,
                latest,
                total,
                ..
            } => {
                let shown: Vec<String> = latest
                    .iter()
                    .map(|p| {
                        format!(
                            "{} ({} {})",
                            p.seq,
                            &p.snapshot[..8.min(p.snapshot.len())],
                            p.time.format("%Y-%m-%d %H:%M")
                        )
                    })
                    .collect();
                format!(
                    "give a point number, a snapshot id or a date such as {}@2026-01-31; it has {total} restore points, the latest: {}",
                    resource.name,
                    shown.join(", ")
                )
            }
            SelectError::AmbiguousSnapshot { .. } => {
                "give more characters of the snapshot id (`cairn snapshots` lists them)".into()
            }
            SelectError::BadPoint { .. } => {
                "a restore point is `latest`, its number, a snapshot id prefix (4+ hex digits) or a date (2026-03-01, 2026-03-01T10:15, RFC 3339)".into()
            }
            SelectError::BadTime { .. } => {
                "write dates as 2026-03-01, 2026-03-01T10:15 (UTC) or RFC 3339 (2026-03-01T10:15:00+01:00)".into()
            }
            SelectError::Catalog(c) => return c.hint().map(str::to_string),
        })
    }
}

/// The resource called `name` (case-insensitively), in `tenant` if given. Without a tenant,
/// a name held by several tenants is [`SelectError::Ambiguous`].
pub fn resolve_resource(
    cat: &dyn Catalog,
    tenant: Option<&str>,
    name: &str,
) -> Result<Resource, SelectError> {
    let all = cat.resources()?;
    let named = |r: &&Resource| r.name.eq_ignore_ascii_case(name);
    let found: Vec<&Resource> = all
        .iter()
        .filter(named)
        .filter(|r| tenant.is_none_or(|t| r.tenant == t))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            const SHOWN: usize = 20;
            let mine: Vec<&Resource> = all
                .iter()
                .filter(|r| tenant.is_none_or(|t| r.tenant == t))
                .collect();
            let mut elsewhere: Vec<String> =
                all.iter().filter(named).map(|r| r.tenant.clone()).collect();
            elsewhere.dedup();
            Err(SelectError::UnknownResource {
                name: name.into(),
                tenant: tenant.map(str::to_string),
                known: mine.iter().take(SHOWN).map(|r| (*r).clone()).collect(),
                total: mine.len(),
                elsewhere,
            })
        }
        many => Err(SelectError::Ambiguous {
            name: name.into(),
            candidates: many.iter().map(|r| (*r).clone()).collect(),
        }),
    }
}

/// Resolves `RESOURCE[@POINT]` (the latest point by default). User principal names hold an
/// `@` themselves, so the whole text is tried as a resource name first, then the part
/// before the last `@` with the rest as the point.
pub fn select(
    cat: &dyn Catalog,
    tenant: Option<&str>,
    spec: &str,
) -> Result<Selected, SelectError> {
    let (resource, point) = match resolve_resource(cat, tenant, spec) {
        Ok(r) => (r, PointSel::Latest),
        Err(whole @ SelectError::UnknownResource { .. }) => match spec.rsplit_once('@') {
            Some((name, point)) if !name.is_empty() => match PointSel::parse(point) {
                Ok(p) => (resolve_resource(cat, tenant, name)?, p),
                Err(_) => return Err(whole),
            },
            _ => return Err(whole),
        },
        Err(e) => return Err(e),
    };
    select_point(cat, resource, &point)
}

/// A restore point of `resource`.
pub fn select_point(
    cat: &dyn Catalog,
    resource: Resource,
    sel: &PointSel,
) -> Result<Selected, SelectError> {
    let points = cat.points(resource.id)?;
    if points.is_empty() {
        return Err(SelectError::NoPoints { resource });
    }
    match find_point(&points, sel) {
        Ok(Some(point)) => Ok(Selected { resource, point }),
        Ok(None) => {
            let mut latest = points.clone();
            latest.sort_by_key(|p| std::cmp::Reverse(p.seq));
            latest.truncate(10);
            Err(SelectError::UnknownPoint {
                point: sel.to_string(),
                total: points.len(),
                latest,
                resource,
            })
        }
        Err(prefix) => Err(SelectError::AmbiguousSnapshot { resource, prefix }),
    }
}

/// The point `sel` names among `points`; `Err(prefix)` when a snapshot id prefix matches
/// several different snapshots. (Several points may share one snapshot when nothing
/// changed between them; any of them reads the same, the latest is taken.)
pub fn find_point(points: &[Point], sel: &PointSel) -> Result<Option<Point>, String> {
    let by_prefix = |prefix: &str| -> Result<Option<Point>, String> {
        let matching: Vec<&Point> = points
            .iter()
            .filter(|p| p.snapshot.starts_with(prefix))
            .collect();
        let first = matching.first().map(|p| p.snapshot.as_str());
        if matching.iter().any(|p| Some(p.snapshot.as_str()) != first) {
            return Err(prefix.to_string());
        }
        Ok(matching.into_iter().max_by_key(|p| p.seq).cloned())
    };
    match sel {
        PointSel::Latest => Ok(points.iter().max_by_key(|p| p.seq).cloned()),
        PointSel::Seq(n) => match points.iter().find(|p| p.seq == *n) {
            Some(p) => Ok(Some(p.clone())),
            // Four digits or more may as well be the start of a snapshot id.
            None if *n >= 1000 => by_prefix(&n.to_string()),
            None => Ok(None),
        },
        PointSel::Snapshot(prefix) => by_prefix(prefix),
        PointSel::At(t) => Ok(points
            .iter()
            .filter(|p| p.time <= *t)
            .max_by_key(|p| p.seq)
            .cloned()),
    }
}

/// Which end of a day a date without a time stands for.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    Start,
    End,
}

/// `2026-03-01`, `2026-03-01T10:15[:00]`, `2026-03-01 10:15[:00]` (UTC) or RFC 3339. A date
/// alone is the start or the end of that day, as `bound` says.
pub fn parse_time(s: &str, bound: Bound) -> Result<DateTime<Utc>, SelectError> {
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
    Err(SelectError::BadTime { text: s.into() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ResourceKind, SqliteCatalog};

    fn points() -> Vec<Point> {
        (1..=3)
            .map(|seq| Point {
                seq,
                snapshot: format!("{seq}abc{seq}def00"),
                time: Utc.with_ymd_and_hms(2026, 3, seq as u32, 12, 0, 0).unwrap(),
            })
            .collect()
    }

    fn find(p: &[Point], s: &str) -> Option<i64> {
        find_point(p, &PointSel::parse(s).unwrap())
            .unwrap()
            .map(|p| p.seq)
    }

    #[test]
    fn points_by_number_snapshot_and_date() {
        let p = points();
        assert_eq!(find(&p, "2"), Some(2));
        assert_eq!(find(&p, "latest"), Some(3));
        assert_eq!(find(&p, "3abc3d"), Some(3));
        assert_eq!(find(&p, "2026-03-02"), Some(2), "end of day");
        assert_eq!(find(&p, "2026-03-02T11:00"), Some(1));
        assert_eq!(find(&p, "2026-03-02T12:00:00Z"), Some(2));
        assert_eq!(find(&p, "2026-02-28"), None);
        assert_eq!(find(&p, "9"), None);
        assert_eq!(find(&p, "ffff"), None);
        assert!(PointSel::parse("yesterday").is_err());
    }

    #[test]
    fn points_parse() {
        assert_eq!(PointSel::parse("3").unwrap(), PointSel::Seq(3));
        assert_eq!(PointSel::parse("latest").unwrap(), PointSel::Latest);
        assert_eq!(
            PointSel::parse("a1b2c3d4").unwrap(),
            PointSel::Snapshot("a1b2c3d4".into())
        );
        assert!(matches!(
            PointSel::parse("2026-01-31").unwrap(),
            PointSel::At(t) if t.to_rfc3339() == "2026-01-31T23:59:59.999999+00:00"
        ));
        assert!(matches!(
            PointSel::parse("2026-01-31T10:00:00Z").unwrap(),
            PointSel::At(_)
        ));
        assert!(PointSel::parse("contoso.com").is_err());
    }

    #[test]
    fn a_number_without_such_point_may_be_a_snapshot_id() {
        let mut p = points();
        p[1].snapshot = "1234beef".into();
        assert_eq!(find(&p, "1234"), Some(2));
        p[1].snapshot = "0123beef".into();
        assert_eq!(find(&p, "0123"), Some(2), "a leading zero is a snapshot id");
    }

    #[test]
    fn a_prefix_of_two_snapshots_is_ambiguous() {
        let mut p = points();
        p[0].snapshot = "abcd0001".into();
        p[1].snapshot = "abcd0002".into();
        assert_eq!(
            find_point(&p, &PointSel::Snapshot("abcd".into())),
            Err("abcd".to_string())
        );
        // Points sharing one snapshot are not ambiguous: the latest stands for them.
        p[1].snapshot = "abcd0001".into();
        assert_eq!(find(&p, "abcd"), Some(2));
    }

    #[test]
    fn a_name_in_two_tenants_needs_the_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let a = c
            .resource("sim", ResourceKind::Group, "group:sales")
            .unwrap();
        let b = c
            .resource("zeta", ResourceKind::Group, "group:sales")
            .unwrap();
        c.resource("zeta", ResourceKind::User, "ann@zeta.example")
            .unwrap();
        let e = resolve_resource(&c, None, "group:sales").unwrap_err();
        assert!(matches!(e, SelectError::Ambiguous { .. }), "{e}");
        let text = format!("{e} / {}", e.hint().unwrap());
        assert!(text.contains("sim") && text.contains("zeta"), "{text}");
        assert!(text.contains("--tenant sim"), "{text}");
        assert_eq!(resolve_resource(&c, Some("sim"), "GROUP:Sales").unwrap(), a);
        assert_eq!(
            resolve_resource(&c, Some("zeta"), "group:sales").unwrap(),
            b
        );
        // A name only another tenant has: the error says where it is.
        let e = resolve_resource(&c, Some("sim"), "ann@zeta.example").unwrap_err();
        assert!(
            e.hint().unwrap().contains("--tenant zeta"),
            "{:?}",
            e.hint()
        );
        assert!(e.is_user_error());
    }

    #[test]
    fn select_splits_the_point_from_a_user_principal_name() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open(&dir.path().join("c.db")).unwrap();
        let r = c
            .resource("t", ResourceKind::User, "ann@x.example")
            .unwrap();
        let e = select(&c, None, "ann@x.example").unwrap_err();
        assert!(matches!(e, SelectError::NoPoints { .. }), "{e}");
        for seq in 1..=2 {
            let t = Utc.with_ymd_and_hms(2026, 3, seq, 12, 0, 0).unwrap();
            c.commit(r.id, &format!("{seq:0>8}"), t).unwrap();
        }
        assert_eq!(select(&c, None, "ann@x.example").unwrap().point.seq, 2);
        assert_eq!(select(&c, None, "ann@x.example@1").unwrap().point.seq, 1);
        assert_eq!(
            select(&c, None, "ann@x.example@2026-03-01")
                .unwrap()
                .point
                .seq,
            1
        );
        let e = select(&c, None, "ann@x.example@7").unwrap_err();
        assert!(matches!(e, SelectError::UnknownPoint { .. }), "{e}");
        assert!(
            e.hint().unwrap().contains("2 restore points"),
            "{:?}",
            e.hint()
        );
        let e = select(&c, None, "bob@x.example@1").unwrap_err();
        assert!(e.to_string().contains("bob@x.example"), "{e}");
    }
}
