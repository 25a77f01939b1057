//! What to restore (a resource, a restore point, path prefixes), where to, and what to do
//! when something is already there.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

/// Which restore point of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointSel {
    Latest,
    /// The point's number (1, 2, 3… per resource).
    Seq(i64),
    /// A prefix of the repository's snapshot id.
    Snapshot(String),
    /// The latest point taken at or before this time.
    At(DateTime<Utc>),
}

impl PointSel {
    /// `latest`, a point number, a time (`2026-01-31`, `2026-01-31T12:00`, RFC 3339) or a
    /// snapshot id prefix (at least 4 hex digits). `None` if it is none of those.
    pub fn parse(s: &str) -> Option<PointSel> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("latest") {
            return Some(PointSel::Latest);
        }
        if !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().ok().map(PointSel::Seq);
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(PointSel::At(t.with_timezone(&Utc)));
        }
        for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
                return Some(PointSel::At(t.and_utc()));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            // A day means its end: the last point taken that day or before.
            return d.and_hms_opt(23, 59, 59).map(|t| PointSel::At(t.and_utc()));
        }
        if s.len() >= 4 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(PointSel::Snapshot(s.to_ascii_lowercase()));
        }
        None
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

/// `RESOURCE[@POINT]`: user principal names hold an `@` themselves, so only a suffix that
/// reads as a restore point is taken as one.
pub fn split_resource(s: &str) -> (String, PointSel) {
    if let Some((name, point)) = s.rsplit_once('@')
        && !name.is_empty()
        && let Some(p) = PointSel::parse(point)
    {
        return (name.to_string(), p);
    }
    (s.to_string(), PointSel::Latest)
}

/// Where restored items go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "name")]
pub enum RestoreTarget {
    /// Where they came from: same mailbox, folders, drive paths.
    Original,
    /// Under a folder of this name in the original mailbox and drive, same structure
    /// below it. `None`: `Restored <date of the restore point>`.
    Folder(Option<String>),
    /// Another user's mailbox and OneDrive, same folder structure.
    User(String),
}

impl RestoreTarget {
    /// `original`, `folder`, `folder:NAME`, `user:UPN`.
    pub fn parse(s: &str) -> Option<RestoreTarget> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("original") {
            return Some(RestoreTarget::Original);
        }
        if s.eq_ignore_ascii_case("folder") {
            return Some(RestoreTarget::Folder(None));
        }
        let (k, v) = s.split_once(':')?;
        let v = v.trim();
        match k.to_ascii_lowercase().as_str() {
            "folder" if v.is_empty() => Some(RestoreTarget::Folder(None)),
            "folder" if !v.contains('/') => Some(RestoreTarget::Folder(Some(v.to_string()))),
            "user" if !v.is_empty() => Some(RestoreTarget::User(v.to_string())),
            _ => None,
        }
    }
}

/// What to do when the target already holds a different item of the same identity (same
/// path, same original item). An identical copy is always skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Collision {
    /// Leave it, report the item skipped.
    #[default]
    Skip,
    /// Replace it with the restored version.
    Overwrite,
    /// Restore beside it under another name.
    KeepBoth,
}

impl Collision {
    pub fn parse(s: &str) -> Option<Collision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "skip" => Some(Collision::Skip),
            "overwrite" | "replace" => Some(Collision::Overwrite),
            "keep-both" | "keepboth" | "rename" => Some(Collision::KeepBoth),
            _ => None,
        }
    }
}

/// A resource's restore point and the paths of it to restore.
#[derive(Clone, Debug)]
pub struct Selection {
    /// As the catalog names it: user principal name, `group:<name>`, site URL.
    pub resource: String,
    pub point: PointSel,
    /// Path prefixes in the restore point (`mail/Inbox`, `onedrive/`, one item's path);
    /// empty: everything.
    pub paths: Vec<String>,
}

impl Selection {
    pub fn new(resource: &str) -> Self {
        Self {
            resource: resource.to_string(),
            point: PointSel::Latest,
            paths: Vec::new(),
        }
    }
}

/// Whether `path` is selected by `prefix` (whole components: `mail/Inbox` selects
/// `mail/Inbox/…` but not `mail/Inbox2/…`).
pub(crate) fn selected(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_start_matches('/');
    if p.is_empty() || p.ends_with('/') {
        return path.starts_with(p);
    }
    path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
}

/// The prefixes to walk: duplicates and prefixes inside another dropped, so no item is
/// visited twice.
pub(crate) fn prefixes(paths: &[String]) -> Vec<String> {
    let mut v: Vec<String> = paths
        .iter()
        .map(|p| {
            let p = p.trim().trim_start_matches('/');
            // A sidecar stands for its message.
            match p.strip_suffix(".meta.json") {
                Some(stem) => format!("{stem}.eml"),
                None => p.to_string(),
            }
        })
        .collect();
    if v.is_empty() || v.iter().any(|p| p.is_empty()) {
        return vec![String::new()];
    }
    v.sort();
    v.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in v {
        if !out.iter().any(|o| selected(o, &p)) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_parse() {
        assert_eq!(PointSel::parse("3"), Some(PointSel::Seq(3)));
        assert_eq!(PointSel::parse("latest"), Some(PointSel::Latest));
        assert_eq!(
            PointSel::parse("a1b2c3d4"),
            Some(PointSel::Snapshot("a1b2c3d4".into()))
        );
        assert!(matches!(
            PointSel::parse("2026-01-31"),
            Some(PointSel::At(t)) if t.to_rfc3339() == "2026-01-31T23:59:59+00:00"
        ));
        assert!(matches!(
            PointSel::parse("2026-01-31T10:00:00Z"),
            Some(PointSel::At(_))
        ));
        assert_eq!(PointSel::parse("contoso.com"), None);
    }

    #[test]
    fn resource_and_point_split_at_a_point_only() {
        assert_eq!(
            split_resource("ann@contoso.com"),
            ("ann@contoso.com".into(), PointSel::Latest)
        );
        assert_eq!(
            split_resource("ann@contoso.com@2"),
            ("ann@contoso.com".into(), PointSel::Seq(2))
        );
        assert_eq!(
            split_resource("group:sales@latest"),
            ("group:sales".into(), PointSel::Latest)
        );
    }

    #[test]
    fn targets_and_collisions_parse() {
        assert_eq!(
            RestoreTarget::parse("original"),
            Some(RestoreTarget::Original)
        );
        assert_eq!(
            RestoreTarget::parse("folder"),
            Some(RestoreTarget::Folder(None))
        );
        assert_eq!(
            RestoreTarget::parse("folder:Old mail"),
            Some(RestoreTarget::Folder(Some("Old mail".into())))
        );
        assert_eq!(
            RestoreTarget::parse("user:bob@contoso.com"),
            Some(RestoreTarget::User("bob@contoso.com".into()))
        );
        assert_eq!(RestoreTarget::parse("user:"), None);
        assert_eq!(RestoreTarget::parse("folder:a/b"), None);
        assert_eq!(Collision::parse("keep-both"), Some(Collision::KeepBoth));
        assert_eq!(Collision::parse("nope"), None);
    }

    #[test]
    fn prefixes_select_whole_components() {
        assert!(selected("mail/Inbox", "mail/Inbox/2026-01/x.eml"));
        assert!(!selected("mail/Inbox", "mail/Inbox2/2026-01/x.eml"));
        assert!(selected("mail/", "mail/Inbox/x.eml"));
        assert!(selected("", "anything"));
        assert_eq!(
            prefixes(&["mail/Inbox".into(), "mail".into(), "onedrive/a".into()]),
            vec!["mail".to_string(), "onedrive/a".to_string()]
        );
        assert_eq!(prefixes(&[]), vec![String::new()]);
        assert_eq!(
            prefixes(&["mail/I/2026-01/x.meta.json".into()]),
            vec!["mail/I/2026-01/x.eml".to_string()]
        );
    }
}
