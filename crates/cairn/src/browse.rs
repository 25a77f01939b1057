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
use cairn_catalog::select::{self, Bound};
use cairn_catalog::{Catalog, Resource, SelectError, Selected, SqliteCatalog};
use chrono::{DateTime, Utc};

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

/// A selection error as the CLI reports it: the user's mistakes exit with 2 and a hint.
pub fn user_facing(e: SelectError) -> anyhow::Error {
    if e.is_user_error() {
        let mut u = UserError::new(e.to_string());
        if let Some(h) = e.hint() {
            u = u.hint(h);
        }
        return u.into();
    }
    e.into()
}

/// The resource called `name`, in `tenant` if given (the catalog's one resolver).
pub fn resolve_resource(
    cat: &dyn Catalog,
    name: &str,
    tenant: Option<&str>,
) -> anyhow::Result<Resource> {
    select::resolve_resource(cat, tenant, name).map_err(user_facing)
}

/// Resolves `RESOURCE[@POINT]` (the catalog's one resolver).
pub fn select(cat: &dyn Catalog, spec: &str, tenant: Option<&str>) -> anyhow::Result<Selected> {
    select::select(cat, tenant, spec).map_err(user_facing)
}

/// A clap value parser for dates that stand for the start of their day.
pub fn start_time(s: &str) -> Result<DateTime<Utc>, String> {
    date(s, Bound::Start)
}

/// A clap value parser for dates that stand for the end of their day.
pub fn end_time(s: &str) -> Result<DateTime<Utc>, String> {
    date(s, Bound::End)
}

fn date(s: &str, bound: Bound) -> Result<DateTime<Utc>, String> {
    select::parse_time(s, bound).map_err(|e| match e.hint() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    })
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

    #[test]
    fn paths_are_compared_by_component() {
        assert!(is_under("mail/Inbox/x.eml", "mail/Inbox"));
        assert!(is_under("mail/Inbox", "mail/Inbox"));
        assert!(!is_under("mail/Inbox2/x.eml", "mail/Inbox"));
        assert!(is_under("anything", ""));
        assert_eq!(clean_path("/mail//Inbox/./"), "mail/Inbox");
    }
}
