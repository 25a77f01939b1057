//! What to restore (a resource, a restore point, path prefixes), where to, and what to do
//! when something is already there.

use serde::Serialize;

pub use cairn_catalog::PointSel;

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
