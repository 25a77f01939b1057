//! `cairn-catalog`: what every restore point holds, without reading the repository.
//!
//! The repository stores content; the catalog remembers, per protected resource, every
//! version of every item and the restore points it is valid in (an interval of point
//! numbers, not a row per point), with the fields browsing and search need. It also carries
//! the state of incremental backups: Graph's delta links per collection, and the changes a
//! run has *staged* but not yet committed.
//!
//! A run stages changes as it learns them (`stage_put`, `stage_remove`, `stage_token`); the
//! next restore point is the committed state with the staged changes applied
//! (`for_each_next`); only after the repository saved that restore point does `commit` turn
//! the staged changes into versions and delta links. An interrupted run leaves its staged
//! changes in place, so the next run resumes from them instead of asking Graph again.
//!
//! The [`Catalog`] trait is the seam between the stores: [`SqliteCatalog`] is the embedded
//! one, [`PgCatalog`] the one several workers share for scale-out; [`open_url`] picks one.

pub mod component;
mod postgres;
pub mod select;
mod sqlite;

pub use postgres::PgCatalog;
pub use select::{PointSel, SelectError, Selected};
pub use sqlite::SqliteCatalog;

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Opens the catalog `url_or_path` names: a `postgres://` (or `postgresql://`) URL opens a
/// [`PgCatalog`] (see [`PgCatalog::open`] for the URL), anything else is the path of an
/// SQLite file.
pub fn open_url(url_or_path: &str) -> Result<Arc<dyn Catalog>> {
    if postgres::is_url(url_or_path) {
        Ok(Arc::new(PgCatalog::open(url_or_path)?))
    } else {
        Ok(Arc::new(SqliteCatalog::open(std::path::Path::new(
            url_or_path,
        ))?))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog {path}: {detail}")]
    Store { path: String, detail: String },
    /// A PostgreSQL catalog (`url` has its password redacted) could not be opened or
    /// answered with an error.
    #[error("catalog {url}: {detail}")]
    Postgres { url: String, detail: String },
    #[error("catalog: no resource with id {0}")]
    NoResource(i64),
}

impl CatalogError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CatalogError::Store { .. } => Some(
                "the catalog can be rebuilt from the repository: `cairn catalog rebuild --force` moves the file aside and recreates it",
            ),
            CatalogError::Postgres { .. } => Some(
                "check that PostgreSQL answers at this URL and that its user may create the schema (postgres://user@host:port/db?schema=NAME); the catalog can be rebuilt from the repository",
            ),
            CatalogError::NoResource(_) => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, CatalogError>;

/// What kind of thing a protected resource is. Stored with the resource when the backup
/// registers it, never guessed from its name (except once, for catalogs written before
/// kinds were stored: see `sqlite`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    User,
    Group,
    Site,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "user",
            ResourceKind::Group => "group",
            ResourceKind::Site => "site",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceKind> {
        match s {
            "user" => Some(ResourceKind::User),
            "group" => Some(ResourceKind::Group),
            "site" => Some(ResourceKind::Site),
            _ => None,
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protected resource (user, group, site) of a tenant. Its identity is the tenant and
/// the name together: two tenants may well both have a `group:sales`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resource {
    #[serde(skip)]
    pub id: i64,
    /// The tenant as Cairn knows it: its name in the configuration (or its directory id).
    pub tenant: String,
    pub kind: ResourceKind,
    /// User principal name, group id or site URL: what the user calls it.
    pub name: String,
}

/// One version of one item, as the repository holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemRow {
    /// Graph's id (immutable ids for Outlook items).
    pub item: String,
    /// The collection it was enumerated in (`mail:<folder id>`, `drive:<drive id>`, …).
    pub scope: String,
    /// `message`, `event`, `contact`, `file`, `listItem`.
    pub kind: String,
    /// Path of its content in the restore point (`mail/Inbox/2026-11/….eml`).
    pub path: String,
    pub size: u64,
    pub mtime: DateTime<Utc>,
    /// Graph's version marker (`changeKey`, `cTag`, `eTag`): equal means unchanged.
    pub change: String,
    pub subject: Option<String>,
    pub sender: Option<String>,
    pub recipients: Option<String>,
    /// Received/sent time of mail, start of events.
    pub date: Option<DateTime<Utc>>,
    /// File or display name.
    pub name: Option<String>,
    /// Content hash as Graph gives it (quickXorHash) or as computed.
    pub hash: Option<String>,
    /// Small JSON stored beside the content (`<path>.meta.json`): properties MIME lacks.
    pub sidecar: Option<String>,
    /// Staged rows only: where the run found the content: the spool file it wrote (mail),
    /// or the short-lived pre-authenticated download URL the drive delta gave (files). Never
    /// committed.
    pub spool: Option<String>,
}

/// What the catalog knows about one item: its committed version, and a staged change.
#[derive(Clone, Debug, Default)]
pub struct Lookup {
    pub current: Option<ItemRow>,
    /// A staged version; `removed` when the staged change is a removal (the row then holds
    /// what was staged before, if anything).
    pub staged: Option<(ItemRow, bool)>,
}

/// A restore point of a resource.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Point {
    /// 1, 2, 3… per resource.
    pub seq: i64,
    /// The repository's snapshot id.
    pub snapshot: String,
    pub time: DateTime<Utc>,
}

/// What a commit turned into versions (items; drive folders are containers, not counted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    pub seq: i64,
    pub added: u64,
    pub changed: u64,
    pub removed: u64,
}

/// A search across restore points.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Restrict to the resources of this tenant.
    pub tenant: Option<String>,
    /// Restrict to these resources (catalog ids, see [`select`]); empty = all.
    pub resources: Vec<i64>,
    /// Substring of the subject or name (case-insensitive).
    pub text: Option<String>,
    /// Substring of the sender or recipients (case-insensitive).
    pub person: Option<String>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub kind: Option<String>,
    pub limit: Option<u64>,
}

/// A version found by a search, with the restore points it is valid in.
#[derive(Clone, Debug)]
pub struct Hit {
    pub resource: Resource,
    pub row: ItemRow,
    pub first: Point,
    /// The last point holding this version (`None`: still current).
    pub last: Option<Point>,
}

/// The catalog's operations. Implementations are safe to share between the tasks of a run.
pub trait Catalog: Send + Sync {
    /// The resource `name` of `tenant`, registered as a `kind` on first use. (A resource
    /// registered before kinds were stored takes the kind given here.)
    fn resource(&self, tenant: &str, kind: ResourceKind, name: &str) -> Result<Resource>;
    /// Every resource, ordered by tenant and name.
    fn resources(&self) -> Result<Vec<Resource>>;

    /// The committed and staged state of one item.
    fn lookup(&self, res: i64, item: &str) -> Result<Lookup>;
    /// Stages a new or changed version (replaces any staged change of the item).
    fn stage_put(&self, res: i64, row: &ItemRow) -> Result<()>;
    /// Stages the removal of `item` if it lives in `scope` (a message that moved to another
    /// folder is reported removed by its old folder: that must not remove it). Returns
    /// whether anything was staged.
    fn stage_remove(&self, res: i64, scope: &str, item: &str) -> Result<bool>;
    /// The item at `path` is left out of the next restore point (the repository could not
    /// read it): staged as removed. Returns its scope.
    fn drop_from_next(&self, res: i64, path: &str) -> Result<Option<String>>;
    /// Drops a staged change: the committed version stands.
    fn unstage(&self, res: i64, item: &str) -> Result<()>;
    /// Drops every staged change of the resource (a rebuild abandoning a restore point it
    /// could not read). Returns how many there were.
    fn unstage_all(&self, res: i64) -> Result<u64>;
    /// A resync of `scope` begins: everything in it is staged for removal, to be taken back
    /// by the items the fresh enumeration sees again. Returns the number of items.
    fn stage_resync(&self, res: i64, scope: &str) -> Result<u64>;
    /// Ids of the items in `scope` of the next restore point (committed, not staged for
    /// removal, and staged ones).
    fn items_in_scope(&self, res: i64, scope: &str, f: &mut dyn FnMut(String)) -> Result<()>;
    /// The scopes that hold committed or staged items, or a delta link.
    fn scopes(&self, res: i64) -> Result<Vec<String>>;

    /// The delta link to continue from: the staged one if the run staged one, else the
    /// committed one.
    fn token(&self, res: i64, scope: &str) -> Result<Option<String>>;
    /// Stages a delta link (`None`: forget the link, the next run enumerates afresh).
    fn stage_token(&self, res: i64, scope: &str, link: Option<&str>) -> Result<()>;

    /// Every item of the next restore point (committed state with staged changes), in
    /// repository order (see `sort_key`). `f` returning false stops the walk.
    fn for_each_next(&self, res: i64, f: &mut dyn FnMut(ItemRow) -> bool) -> Result<()>;
    /// Number of staged changes.
    fn staged(&self, res: i64) -> Result<u64>;
    /// The repository saved the next restore point as `snapshot`: staged changes become
    /// versions, staged delta links become the committed ones.
    fn commit(&self, res: i64, snapshot: &str, time: DateTime<Utc>) -> Result<CommitReport>;

    fn points(&self, res: i64) -> Result<Vec<Point>>;
    /// The repository removed these snapshots (`forget`): their restore points leave the
    /// catalog, and versions valid in no remaining point go with them. Returns the number
    /// of points removed.
    fn forget_snapshots(&self, snapshots: &[String]) -> Result<u64>;
    /// The repository rewrote snapshot `old` as `new` (a repair): the restore points it
    /// held now read from `new`. Returns the number of points moved.
    fn replace_snapshot(&self, old: &str, new: &str) -> Result<u64>;
    /// Every version of these items leaves the catalog (their data was removed from every
    /// restore point: erasure, item-level retention). Returns the versions removed.
    fn remove_versions(&self, res: i64, items: &[String]) -> Result<u64>;
    /// Stores a small JSON document (`kind`: `hold`, `findings`…) under `id`, replacing one
    /// of the same kind and id.
    fn put_doc(&self, kind: &str, id: &str, json: &str) -> Result<()>;
    /// The documents of `kind`: (id, json), ordered by id.
    fn docs(&self, kind: &str) -> Result<Vec<(String, String)>>;
    /// Removes a document; returns whether there was one.
    fn delete_doc(&self, kind: &str, id: &str) -> Result<bool>;
    /// Items of a restore point whose path starts with `prefix`, in repository order.
    fn for_each_at(
        &self,
        res: i64,
        seq: i64,
        prefix: &str,
        f: &mut dyn FnMut(ItemRow) -> bool,
    ) -> Result<()>;
    fn find(&self, q: &Query) -> Result<Vec<Hit>>;
    /// The snapshots of every restore point holding a version that matches `q` (its
    /// `limit` aside): what a legal hold on a search keeps.
    fn snapshots_matching(&self, q: &Query) -> Result<Vec<String>>;
    /// What changed from restore point `from` to `to` (later): per item, the version
    /// `from` held and the one `to` holds (`None`: absent there), ordered by item id.
    /// Unchanged items are not visited; `f` returning false stops the walk.
    fn changes(
        &self,
        res: i64,
        from: i64,
        to: i64,
        f: &mut dyn FnMut(Change) -> bool,
    ) -> Result<()>;
    /// Every version of every item of a resource, ordered by item then by the first point
    /// holding it: (version, first point, last point or `None` while current). `f`
    /// returning false stops the walk.
    fn for_each_version(
        &self,
        res: i64,
        f: &mut dyn FnMut(ItemRow, i64, Option<i64>) -> bool,
    ) -> Result<()>;
    /// The items of a restore point, counted by kind.
    fn count_at(&self, res: i64, seq: i64) -> Result<std::collections::BTreeMap<String, u64>>;
}

/// One item's change between two restore points: added (`old` none), removed (`new`
/// none), or changed, moved or renamed (both).
#[derive(Clone, Debug)]
pub struct Change {
    pub old: Option<ItemRow>,
    pub new: Option<ItemRow>,
}

/// The order the repository needs: component-wise, as `Path` compares. Replacing `/` by
/// `\0` makes a byte-wise comparison agree with it (`a/b` before `a.txt`).
pub fn sort_key(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|b| if b == b'/' { 0 } else { b })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_key_orders_like_paths() {
        let mut v = vec!["a.txt", "a/b", "a", "a b/c", "a/b/c", "ab"];
        v.sort_by_key(|p| sort_key(p));
        let mut w = v.clone();
        w.sort_by(|x, y| std::path::Path::new(x).cmp(std::path::Path::new(y)));
        assert_eq!(v, w);
    }
}
