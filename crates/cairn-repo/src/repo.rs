//! The repository: create or open, archive a resource as one snapshot, list and read
//! snapshots, check, forget (GFS with legal holds), rewrite without given items (erasure),
//! prune and purge, copy.

use crate::location::RepoOptions;
use crate::shared::Shared;
use crate::source::{Entry, Source};
use rustic_backend::BackendOptions;
use rustic_core::jiff::{Timestamp, Zoned, tz::TimeZone};
use rustic_core::repofile::{SnapshotFile, SnapshotId};
use rustic_core::{
    BackupOptions, CheckOptions, ConfigOptions, Credentials, Excludes, ForgetGroups, Grouped,
    IndexedIdsStatus, KeepOptions, KeyOptions, LimitOption, LsOptions, ParentOptions, PruneOptions,
    Repository, RepositoryBackends, RepositoryOptions, RewriteOptions, RewriteTreesOptions,
    SnapshotGroupCriterion, StringList, TreeId,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}")]
    Config(String),
    #[error("wrong password for the repository at {0}")]
    WrongPassword(String),
    #[error("no repository at {0}")]
    NotInitialised(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    #[error("{what}: {detail}")]
    Storage { what: String, detail: String },
    /// Deletions the storage refused because of retention: nothing was lost, space is
    /// reclaimed once retention ends.
    #[error("some data is under retention and was not deleted yet: {0}")]
    Deferred(String),
}

impl RepoError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RepoError::WrongPassword(_) => Some(
                "check CAIRN_PASSWORD or CAIRN_PASSWORD_FILE; without the password the backups cannot be read",
            ),
            RepoError::NotInitialised(_) => Some("create it with `cairn init`, or check --repo"),
            RepoError::AlreadyExists(_) => Some("open it instead, or choose another --repo"),
            RepoError::Deferred(_) => {
                Some("expected with S3 Object Lock: run prune again after the retention period")
            }
            _ => None,
        }
    }

    /// Mistakes the user can fix (exit 2), as opposed to outages and bugs.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            RepoError::Config(_)
                | RepoError::WrongPassword(_)
                | RepoError::NotInitialised(_)
                | RepoError::AlreadyExists(_)
                | RepoError::SnapshotNotFound(_)
        )
    }
}

fn storage(what: &str, e: impl std::fmt::Display) -> RepoError {
    RepoError::Storage {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

// rustic_core hands its errors over boxed.
#[allow(clippy::boxed_local)]
fn rustic(what: &str, e: Box<rustic_core::RusticError>) -> RepoError {
    RepoError::Storage {
        what: what.to_string(),
        detail: e.display_log(),
    }
}

/// What identifies a snapshot: one per protected resource per run.
#[derive(Clone, Debug, Default)]
pub struct SnapshotMeta {
    /// The tenant (restic's "host").
    pub hostname: String,
    /// The protected resource (a user, group or site).
    pub label: String,
    /// The root path of the snapshot tree (restic's "paths"), e.g. `/mail`.
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub time: Option<chrono::DateTime<chrono::Utc>>,
    pub description: Option<String>,
    /// The id (or a unique prefix) of the snapshot the caller knows to be this one's parent,
    /// usually the previous restore point of the same resource from its catalog. Given, the
    /// repository reads that one snapshot instead of every snapshot of the repository to
    /// find the latest of the resource. If it does not exist any more (forgotten) or belongs
    /// to another resource, the repository falls back to that search: an item is never
    /// taken from a wrong or missing parent, at worst it is read again.
    pub parent: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SnapshotInfo {
    pub id: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub hostname: String,
    pub label: String,
    pub paths: Vec<String>,
    pub tags: Vec<String>,
    pub parent: Option<String>,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub data_added: u64,
}

fn info(s: &SnapshotFile) -> SnapshotInfo {
    let ts = s.time.timestamp();
    let summary = s.summary.as_ref();
    SnapshotInfo {
        id: s.id.to_string(),
        time: chrono::DateTime::from_timestamp(ts.as_second(), ts.subsec_nanosecond() as u32)
            .unwrap_or_default(),
        hostname: s.hostname.clone(),
        label: s.label.clone(),
        paths: s.paths.iter().cloned().collect(),
        tags: s.tags.iter().cloned().collect(),
        parent: s.parent.map(|p| p.to_string()),
        files_new: summary.map(|x| x.files_new).unwrap_or(0),
        files_changed: summary.map(|x| x.files_changed).unwrap_or(0),
        files_unmodified: summary.map(|x| x.files_unmodified).unwrap_or(0),
        data_added: summary.map(|x| x.data_added).unwrap_or(0),
    }
}

/// The outcome of an archive run.
#[derive(Debug)]
pub struct ArchiveReport {
    pub snapshot: SnapshotInfo,
    /// Items left out of the snapshot, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Items whose content was read (the rest came from the parent snapshot).
    pub opened: u64,
}

#[derive(Debug)]
pub struct CheckReport {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A key of the repository (its secret part is never shown).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub id: String,
    /// The key the given password unlocks.
    pub current: bool,
    pub hostname: Option<String>,
    pub username: Option<String>,
    pub created: Option<String>,
}

/// Grandfather-father-son retention, per resource.
#[derive(Clone, Debug, Default)]
pub struct ForgetRule {
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    /// Keep everything newer than this (relative to the newest snapshot of the resource).
    pub keep_within: Option<chrono::Duration>,
    /// Apply the rule to this tenant's restore points only (snapshot hostname); the others
    /// are neither kept nor removed, and not reported.
    pub only_tenant: Option<String>,
    /// Apply the rule to this resource's restore points only (snapshot label).
    pub only_resource: Option<String>,
}

/// What a legal hold covers: a whole resource or one restore point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegalHold {
    Resource(String),
    Snapshot(String),
}

#[derive(Debug, Default)]
pub struct ForgetReport {
    pub kept: Vec<SnapshotInfo>,
    pub removed: Vec<SnapshotInfo>,
    /// Snapshots the rule would remove but a legal hold keeps.
    pub held: Vec<SnapshotInfo>,
    /// Snapshots the storage refused to delete (Object Lock retention): deferred until
    /// their retention ends; forget them again then.
    pub deferred: Vec<(SnapshotInfo, String)>,
}

/// What [`Repo::rewrite_without`] did to one restore point.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RewriteOutcome {
    /// The restore point as it was.
    pub original: SnapshotInfo,
    /// The restore point written without the items: `None` when none of them was in the
    /// original (nothing was written) and on a dry run.
    pub snapshot: Option<SnapshotInfo>,
    /// Entries removed (on a dry run: that would be), a directory counting itself and
    /// everything under it.
    pub removed: u64,
    /// The paths asked for that were in the original, as given.
    pub found: Vec<String>,
    /// Why the original is still in the repository although the new one replaces it: the
    /// storage refused the deletion (Object Lock retention) or it failed. The new restore
    /// point stays; the original, still holding the removed items, is to be deleted later.
    pub original_kept: Option<String>,
}

/// A path of a snapshot's tree (as [`Repo::list`] gives it, with or without a leading `/`)
/// as an exclude for rustic_core's rewrite: matched literally, anchored at the root of the
/// tree (rustic_core matches paths relative to it: `mail/Inbox/a.eml`), `!` making the
/// override an exclusion. `None` for the root and for paths no entry can have.
fn literal_exclude(path: &str) -> Option<(Vec<&str>, String)> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|c| *c == "." || *c == "..") {
        return None;
    }
    let mut glob = String::from("!");
    for part in &parts {
        glob.push('/');
        for c in part.chars() {
            // Glob syntax, comment and negation markers, and spaces (trailing ones are trimmed
            // from an unescaped gitignore line).
            if matches!(
                c,
                '\\' | '*' | '?' | '[' | ']' | '{' | '}' | '!' | '#' | ' '
            ) {
                glob.push('\\');
            }
            glob.push(c);
        }
    }
    Some((parts, glob))
}

/// The number of entries of tree `tree` at `targets` (paths of components relative to it),
/// each with everything under it, counted once (if `count`); the indexes of the targets
/// found are added to `found`. Only the trees along the targets are read, each once.
fn present<S: rustic_core::IndexedTree>(
    repo: &Repository<S>,
    tree: TreeId,
    targets: &[(usize, &[&str])],
    found: &mut Vec<usize>,
    count: bool,
) -> rustic_core::RusticResult<u64> {
    let mut by_name: BTreeMap<&str, Vec<(usize, &[&str])>> = BTreeMap::new();
    for (i, parts) in targets {
        if let Some((first, rest)) = parts.split_first() {
            by_name.entry(first).or_default().push((*i, rest));
        }
    }
    let mut n = 0;
    for node in repo.get_tree(&tree)?.nodes {
        let name = node.name();
        let Some(mine) = name.to_str().and_then(|s| by_name.get(s)) else {
            continue;
        };
        let (here, deeper): (Vec<_>, Vec<_>) = mine.iter().partition(|(_, rest)| rest.is_empty());
        found.extend(here.iter().map(|(i, _)| *i));
        if count && !here.is_empty() {
            n += 1;
            if node.is_dir() {
                for entry in repo.ls(&node, &LsOptions::default())? {
                    entry?;
                    n += 1;
                }
            }
        }
        if !deeper.is_empty()
            && let Some(sub) = node.subtree
        {
            // Under a target: found too, already counted.
            n += present(repo, sub, &deeper, found, count && here.is_empty())?;
        }
    }
    Ok(n)
}

/// Did the storage refuse a deletion because the object is locked (retention, legal hold)?
fn is_locked(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    [
        "accessdenied",
        "access denied",
        "permissiondenied",
        "permission denied",
        "403",
        "objectlock",
        "retention",
    ]
    .iter()
    .any(|k| d.contains(k))
}

/// How long archives keep using one loaded index before the next one reloads it. A loaded
/// index knows nothing written after it was read, so archives written since are not
/// deduplicated against; reloading now and then bounds that loss over a long run.
const INDEX_MAX_AGE: Duration = Duration::from_secs(60);

/// The repository with the index archives need: all tree blobs and the ids of data blobs.
type Indexed = Repository<IndexedIdsStatus>;

pub struct Repo {
    opts: RepoOptions,
    backends: RepositoryBackends,
    repo_opts: RepositoryOptions,
    /// The password until the repository was opened once, then the master key it unlocked:
    /// deriving the key (scrypt) costs tens of megabytes and a noticeable CPU time, and an
    /// engine opens the repository for every restore point it writes.
    creds: std::sync::Mutex<Credentials>,
    /// The index shared by concurrent archives (see [`Repo::archive`]).
    index: Shared<Indexed>,
}

// Archives run concurrently on one `Repo` from many threads, sharing one indexed repository.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Indexed>();
    send_sync::<Repo>();
};

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo").field("opts", &self.opts).finish()
    }
}

type Open = Repository<rustic_core::OpenStatus>;

impl Repo {
    fn new(opts: RepoOptions) -> Result<Self, RepoError> {
        let (repository, options) = opts.backend();
        let backends = BackendOptions::default()
            .repository(repository.as_str())
            .options(options)
            .to_backends()
            .map_err(|e| rustic("setting up the storage backend", e))?;
        let mut repo_opts = RepositoryOptions::default();
        repo_opts = match &opts.cache_dir {
            Some(d) => repo_opts.cache_dir(d.clone()),
            None => repo_opts.no_cache(true),
        };
        let creds = Credentials::password(&opts.password);
        Ok(Self {
            opts,
            backends,
            repo_opts,
            creds: std::sync::Mutex::new(creds),
            index: Shared::new(INDEX_MAX_AGE),
        })
    }

    fn name(&self) -> String {
        self.opts.location.to_string()
    }

    /// Creates a new repository (restic format v2: zstd, content-defined chunking).
    pub fn init(opts: RepoOptions) -> Result<Self, RepoError> {
        let me = Self::new(opts)?;
        let r = Repository::new(&me.repo_opts, &me.backends)
            .map_err(|e| rustic("opening the storage", e))?;
        if r.config_id()
            .map_err(|e| rustic("reading the storage", e))?
            .is_some()
        {
            return Err(RepoError::AlreadyExists(me.name()));
        }
        let creds = me.creds.lock().unwrap_or_else(|e| e.into_inner()).clone();
        r.init(&creds, &KeyOptions::default(), &ConfigOptions::default())
            .map_err(|e| rustic("creating the repository", e))?;
        Ok(me)
    }

    /// Opens an existing repository, checking the password.
    pub fn open(opts: RepoOptions) -> Result<Self, RepoError> {
        let me = Self::new(opts)?;
        me.raw()?;
        Ok(me)
    }

    pub(crate) fn raw(&self) -> Result<Open, RepoError> {
        let r = Repository::new(&self.repo_opts, &self.backends)
            .map_err(|e| rustic("opening the storage", e))?;
        if r.config_id()
            .map_err(|e| rustic("reading the storage", e))?
            .is_none()
        {
            return Err(RepoError::NotInitialised(self.name()));
        }
        let creds = self.creds.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let open = r.open(&creds).map_err(|e| {
            if e.is_incorrect_password() {
                RepoError::WrongPassword(self.name())
            } else {
                rustic("opening the repository", e)
            }
        })?;
        if matches!(creds, Credentials::Password(_)) {
            *self.creds.lock().unwrap_or_else(|e| e.into_inner()) =
                Credentials::Masterkey(open.key());
        }
        Ok(open)
    }

    /// The repository opened with its password (not the master key the first open keeps):
    /// key management needs to know which key the password unlocks.
    fn open_with_password(&self) -> Result<Open, RepoError> {
        let r = Repository::new(&self.repo_opts, &self.backends)
            .map_err(|e| rustic("opening the storage", e))?;
        r.open(&Credentials::password(&self.opts.password))
            .map_err(|e| {
                if e.is_incorrect_password() {
                    RepoError::WrongPassword(self.name())
                } else {
                    rustic("opening the repository", e)
                }
            })
    }

    /// The repository's keys: each one a password that opens it (as restic's `key list`).
    pub fn keys(&self) -> Result<Vec<KeyInfo>, RepoError> {
        let repo = self.open_with_password()?;
        let current = repo.key_id().map(|k| k.into_inner().to_hex().to_string());
        let ids: Vec<rustic_core::repofile::KeyId> = repo
            .list()
            .map_err(|e| rustic("listing keys", e))?
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        // Key files are not encrypted: read from the storage as they are.
        let storage = self.backends.repository();
        for key in ids {
            let id = key.into_inner().to_hex().to_string();
            let file = storage
                .read_full(rustic_core::FileType::Key, &key.into_inner())
                .map_err(|e| rustic("reading a key", e))?;
            let meta: serde_json::Value = serde_json::from_slice(&file).unwrap_or_default();
            let text = |k: &str| meta[k].as_str().map(str::to_string);
            out.push(KeyInfo {
                current: current.as_deref() == Some(id.as_str()),
                hostname: text("hostname"),
                username: text("username"),
                created: text("created"),
                id,
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Adds a key: `password` opens the repository too from now on. Returns its id.
    pub fn add_key(
        &self,
        password: &str,
        hostname: Option<String>,
        username: Option<String>,
    ) -> Result<String, RepoError> {
        let repo = self.open_with_password()?;
        let opts = KeyOptions::default()
            .hostname(hostname)
            .username(username)
            .with_created(true);
        let id = repo
            .add_key(password, &opts)
            .map_err(|e| rustic("adding a key", e))?;
        Ok(id.into_inner().to_hex().to_string())
    }

    /// Removes the key whose id starts with `prefix`: its password no longer opens the
    /// repository. The key this repository was opened with, and the last key, stay.
    pub fn remove_key(&self, prefix: &str) -> Result<String, RepoError> {
        let keys = self.keys()?;
        let matching: Vec<&KeyInfo> = keys.iter().filter(|k| k.id.starts_with(prefix)).collect();
        let key = match matching.as_slice() {
            [one] => *one,
            [] => {
                return Err(RepoError::Config(format!(
                    "no key {prefix} (`cairn key list` shows them)"
                )));
            }
            _ => {
                return Err(RepoError::Config(format!(
                    "several keys start with {prefix}: give more of the id"
                )));
            }
        };
        if key.current {
            return Err(RepoError::Config(format!(
                "key {} is the one this password opens: open the repository with another key's password to remove it",
                &key.id[..8]
            )));
        }
        if keys.len() == 1 {
            return Err(RepoError::Config(
                "the repository's last key cannot be removed".into(),
            ));
        }
        let repo = self.open_with_password()?;
        let id: rustic_core::repofile::KeyId = key
            .id
            .parse()
            .map_err(|_| RepoError::Config(format!("{} is not a key id", key.id)))?;
        repo.delete_key(&id)
            .map_err(|e| rustic("removing a key", e))?;
        Ok(key.id.clone())
    }

    /// Archives one snapshot from a stream of entries.
    ///
    /// The parent is `meta.parent` when it still exists and is a snapshot of the same
    /// resource, else the latest snapshot with the same hostname, label and paths (found by
    /// reading every snapshot file: give `meta.parent` to spare that). Items whose size and
    /// time match the parent are not opened.
    ///
    /// Concurrent archives share one index, loaded once and reused: reading it for every
    /// archive made a run cost O(N²) in the number of resources and held one copy per
    /// archive in memory. A loaded index misses what was written after it was read, which
    /// is safe (a blob it does not know is written again; the format allows duplicates and
    /// prune removes them) but costs deduplication, so it is reloaded when older than a
    /// minute and after [`refresh_index`](Self::refresh_index). It is also reloaded when it
    /// lacks the parent's tree, so items are never re-read because the parent is too new.
    pub fn archive(
        &self,
        meta: &SnapshotMeta,
        entries: impl Iterator<Item = Entry> + Send + 'static,
    ) -> Result<ArchiveReport, RepoError> {
        if meta.paths.is_empty() {
            return Err(RepoError::Config(
                "a snapshot needs at least one path".into(),
            ));
        }
        let (mut repo, seq) = self.indexed(0)?;
        let parent = self.parent(&repo, meta);
        if let Some(p) = &parent
            && repo.get_tree(&p.tree).is_err()
        {
            // The parent was written after this index was read. A newer index serves, one
            // another archive may be loading already for the same reason; if that one still
            // lacks the parent, one read from now on.
            tracing::debug!(parent = %p.id, "reloading the index for the parent's blobs");
            let now = self.index.mark();
            let newer;
            (repo, newer) = self.indexed(seq + 1)?;
            if newer < now && repo.get_tree(&p.tree).is_err() {
                (repo, _) = self.indexed(now)?;
            }
        }
        let parent_opts = match &parent {
            Some(p) => ParentOptions::default().parents(vec![p.id.to_string()]),
            // None found: spare rustic_core the same search.
            None => ParentOptions::default().force(true),
        };
        let opts = BackupOptions::default().parent_opts(parent_opts);
        let mut snap = SnapshotFile {
            hostname: meta.hostname.clone(),
            label: meta.label.clone(),
            description: meta.description.clone(),
            ..SnapshotFile::default()
        };
        if let Some(t) = meta.time {
            let ts = Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
                .map_err(|e| storage("snapshot time", e))?;
            snap.time = Zoned::new(ts, TimeZone::UTC);
        }
        for t in &meta.tags {
            snap.tags.add(t.clone());
        }
        let source = Source::new(entries);
        let tally = source.tally.clone();
        let paths: Vec<PathBuf> = meta.paths.iter().map(PathBuf::from).collect();
        let saved = repo
            .archive(&opts, &source, snap, &paths)
            .map_err(|e| rustic(&format!("archiving {}", meta.label), e))?;
        let skipped = std::mem::take(&mut *tally.skipped.lock().unwrap_or_else(|e| e.into_inner()));
        Ok(ArchiveReport {
            snapshot: info(&saved),
            skipped,
            opened: tally.opened.load(Ordering::Relaxed),
        })
    }

    /// Forgets the index archives share: the next archive reads it afresh, so it knows
    /// everything written until now, by this process or another. Call it at the start of a
    /// backup run; archives also reload it when it is older than a minute.
    pub fn refresh_index(&self) {
        self.index.invalidate();
    }

    /// The shared index and the number of its load, numbered `after` or higher (0: any
    /// loaded since the last refresh).
    fn indexed(&self, after: u64) -> Result<(Arc<Indexed>, u64), RepoError> {
        self.index.get(after, || {
            self.raw()?
                .to_indexed_ids()
                .map_err(|e| rustic("reading the index", e))
        })
    }

    /// The snapshot the one described by `meta` follows: `meta.parent` if it exists and is
    /// of the same resource, else the latest of the resource. Errors mean no parent (every
    /// item is read), never a failed archive, as in rustic_core.
    fn parent(&self, repo: &Indexed, meta: &SnapshotMeta) -> Option<SnapshotFile> {
        let paths: BTreeSet<&str> = meta.paths.iter().map(String::as_str).collect();
        let same = |s: &SnapshotFile| {
            s.hostname == meta.hostname
                && s.label == meta.label
                && s.paths.iter().map(String::as_str).collect::<BTreeSet<_>>() == paths
        };
        if let Some(id) = meta.parent.as_deref().filter(|id| !id.is_empty()) {
            match repo.get_snapshot_from_str(id, |_| true) {
                Ok(s) if same(&s) => return Some(s),
                Ok(s) => tracing::warn!(
                    resource = %meta.label,
                    parent = %id,
                    "the given parent is a snapshot of {}, not of this resource; searching for the latest",
                    s.label
                ),
                Err(e) => tracing::info!(
                    resource = %meta.label,
                    parent = %id,
                    "the given parent is not in the repository ({}); searching for the latest",
                    e.display_log()
                ),
            }
        }
        repo.get_snapshot_from_str("latest", same).ok()
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, RepoError> {
        let repo = self.raw()?;
        let mut all = repo
            .get_all_snapshots()
            .map_err(|e| rustic("listing snapshots", e))?;
        all.sort();
        Ok(all.iter().map(info).collect())
    }

    /// The entries under `path` in a snapshot ("" = everything): (path, is_dir, size).
    pub fn list(&self, snapshot: &str, path: &str) -> Result<Vec<(String, bool, u64)>, RepoError> {
        let (repo, node) = self.node(snapshot, path)?;
        let mut out = Vec::new();
        for item in repo
            .ls(&node, &LsOptions::default())
            .map_err(|e| rustic("listing", e))?
        {
            let (p, n) = item.map_err(|e| rustic("listing", e))?;
            out.push((p.to_string_lossy().into_owned(), n.is_dir(), n.meta.size));
        }
        Ok(out)
    }

    /// Writes the content of one item of a snapshot to `w`.
    pub fn read(
        &self,
        snapshot: &str,
        path: &str,
        w: &mut impl std::io::Write,
    ) -> Result<(), RepoError> {
        let (repo, node) = self.node(snapshot, path)?;
        repo.dump(&node, w)
            .map_err(|e| rustic(&format!("reading {path}"), e))
    }

    /// A restore point opened for many reads: the index is loaded once.
    pub fn open_snapshot(&self, snapshot: &str) -> Result<SnapshotReader, RepoError> {
        let repo = self
            .raw()?
            .to_indexed()
            .map_err(|e| rustic("reading the index", e))?;
        let snap = self.find(&repo, snapshot)?;
        Ok(SnapshotReader {
            repo,
            snap,
            id: snapshot.to_string(),
        })
    }

    /// The fully indexed repository and the node at `path` of `snapshot`.
    fn node(
        &self,
        snapshot: &str,
        path: &str,
    ) -> Result<
        (
            Repository<rustic_core::IndexedFullStatus>,
            rustic_core::repofile::Node,
        ),
        RepoError,
    > {
        let repo = self
            .raw()?
            .to_indexed()
            .map_err(|e| rustic("reading the index", e))?;
        let snap = self.find(&repo, snapshot)?;
        let node = repo
            .node_from_snapshot_and_path(&snap, path)
            .map_err(|e| rustic(&format!("{snapshot}:{path}"), e))?;
        Ok((repo, node))
    }

    fn find<S: rustic_core::Open>(
        &self,
        repo: &Repository<S>,
        id: &str,
    ) -> Result<SnapshotFile, RepoError> {
        repo.get_snapshot_from_str(id, |_| true)
            .map_err(|_| RepoError::SnapshotNotFound(id.to_string()))
    }

    /// Verifies structure, and with `read_data` ("all", "10%", "1/5", "2GiB") content too.
    pub fn check(&self, read_data: Option<&str>) -> Result<CheckReport, RepoError> {
        let repo = self.raw()?;
        let mut opts = CheckOptions::default();
        if let Some(subset) = read_data {
            let subset: rustic_core::ReadSubsetOption = subset.parse().map_err(|_| {
                RepoError::Config(format!("--read-data-subset {subset}: use 10%, 1/5 or all"))
            })?;
            opts = opts.read_data(true).read_data_subset(subset);
        }
        let results = repo
            .check(opts)
            .map_err(|e| rustic("checking the repository", e))?;
        let mut report = CheckReport {
            errors: vec![],
            warnings: vec![],
        };
        for (level, e) in &results.0 {
            let text = e.to_string();
            if format!("{level:?}").contains("Error") {
                report.errors.push(text);
            } else {
                report.warnings.push(text);
            }
        }
        Ok(report)
    }

    /// Applies a retention rule per resource (hostname + label + paths), sparing legal holds.
    pub fn forget(
        &self,
        rule: &ForgetRule,
        holds: &[LegalHold],
        dry_run: bool,
    ) -> Result<ForgetReport, RepoError> {
        let mut keep = KeepOptions::default();
        let n = |x: Option<u32>| x.map(|v| v as i32);
        if let Some(v) = n(rule.keep_last) {
            keep = keep.keep_last(v);
        }
        if let Some(v) = n(rule.keep_daily) {
            keep = keep.keep_daily(v);
        }
        if let Some(v) = n(rule.keep_weekly) {
            keep = keep.keep_weekly(v);
        }
        if let Some(v) = n(rule.keep_monthly) {
            keep = keep.keep_monthly(v);
        }
        if let Some(v) = n(rule.keep_yearly) {
            keep = keep.keep_yearly(v);
        }
        if let Some(d) = rule.keep_within {
            let span = rustic_core::jiff::Span::new()
                .try_seconds(d.num_seconds())
                .map_err(|e| RepoError::Config(format!("--keep-within: {e}")))?;
            keep = keep.keep_within(span);
        }
        let repo = self.raw()?;
        let snaps: Vec<_> = repo
            .get_all_snapshots()
            .map_err(|e| rustic("listing snapshots", e))?
            .into_iter()
            // Records (legal holds, erasure records) are not restore points: no rule applies.
            .filter(|s| !s.tags.iter().any(|t| t == crate::records::RECORD_TAG))
            .filter(|s| rule.only_tenant.as_ref().is_none_or(|t| s.hostname == *t))
            .filter(|s| rule.only_resource.as_ref().is_none_or(|r| s.label == *r))
            .collect();
        let grouped = Grouped::from_items(snaps, SnapshotGroupCriterion::default());
        let groups =
            ForgetGroups::from_grouped_snapshots_with_retention(grouped, &keep, &Zoned::now())
                .map_err(|e| RepoError::Config(format!("retention rule: {}", e.display_log())))?;
        let mut report = ForgetReport::default();
        let mut delete = Vec::new();
        for g in groups.0 {
            for fs in g.items {
                let si = info(&fs.snapshot);
                let held = holds.iter().any(|h| match h {
                    LegalHold::Resource(r) => *r == si.label,
                    LegalHold::Snapshot(id) => si.id.starts_with(id.as_str()),
                });
                if fs.keep {
                    report.kept.push(si);
                } else if held {
                    report.held.push(si);
                } else {
                    delete.push(fs.snapshot.id);
                    report.removed.push(si);
                }
            }
        }
        if !dry_run && !delete.is_empty() {
            // One by one: with Object Lock some may be refused; those are deferred, the rest go.
            let removed = std::mem::take(&mut report.removed);
            for (id, si) in delete.into_iter().zip(removed) {
                match repo.delete_snapshots(&[id]) {
                    Ok(()) => report.removed.push(si),
                    Err(e) if is_locked(&e.display_log()) => {
                        report
                            .deferred
                            .push((si, "the storage keeps it under retention".into()));
                    }
                    Err(e) => return Err(rustic("deleting snapshots", e)),
                }
            }
        }
        Ok(report)
    }

    /// Removes data no snapshot needs any more. Returns the number of packs deleted.
    pub fn prune(&self) -> Result<u64, RepoError> {
        self.prune_with(PruneOptions::default(), |s| s.packs_to_delete.remove)
    }

    /// A prune that leaves no unused data behind, whatever it costs to repack: after an
    /// erasure ([`rewrite_without`](Self::rewrite_without)), so the erased items' content does
    /// not stay as the slack [`prune`](Self::prune) tolerates (up to 5% of the repository
    /// unused, at most 10% of it repacked per run). Returns the number of packs deleted or
    /// rewritten.
    pub fn purge(&self) -> Result<u64, RepoError> {
        let opts = PruneOptions::default()
            .max_unused(LimitOption::Percentage(0))
            .max_repack(LimitOption::Unlimited);
        self.prune_with(opts, |s| s.packs_to_delete.remove + s.packs.repack)
    }

    fn prune_with(
        &self,
        opts: PruneOptions,
        packs: impl Fn(&rustic_core::PruneStats) -> u64,
    ) -> Result<u64, RepoError> {
        let repo = self.raw()?;
        let opts = opts
            .instant_delete(true)
            .keep_delete(rustic_core::jiff::Span::new());
        let plan = repo
            .prune_plan(&opts)
            .map_err(|e| rustic("planning prune", e))?;
        let n = packs(&plan.stats);
        let result = repo.prune(&opts, plan);
        // The shared index may name blobs in packs that are gone now: deduplicating against
        // them would make snapshots refer to missing data.
        self.refresh_index();
        match result {
            Ok(()) => Ok(n),
            // Deletions come last, after the new index is written: packs the storage keeps
            // under retention are unreferenced garbage until it lets them go.
            Err(e) if is_locked(&e.display_log()) => Err(RepoError::Deferred(e.display_log())),
            Err(e) => Err(rustic("pruning", e)),
        }
    }

    /// Rewrites snapshot `snapshot` without the items at `remove` (paths as [`list`](Self::list)
    /// gives them, e.g. `/mail/Inbox/abc.eml`, with or without the leading `/`, matched
    /// literally; a directory removes everything under it): for an erasure (GDPR) or a
    /// retention of single items. The new snapshot keeps the hostname, label, paths, time,
    /// parent and tags, gains the tag `tag` (e.g. `erased`, `retention`) and names the
    /// original in restic's `original` field; the original is deleted once the new one is
    /// saved. The data only the removed items used stays in the repository until the next
    /// [`purge`](Self::purge) ([`prune`](Self::prune) may keep it as tolerated slack).
    ///
    /// When none of the paths is in the snapshot nothing is written (`snapshot` is `None`,
    /// `removed` 0). A dry run counts what would be removed and writes nothing. With Object
    /// Lock storage the deletion of the original may be refused: the outcome says so in
    /// `original_kept` and the new snapshot stays.
    pub fn rewrite_without(
        &self,
        snapshot: &str,
        remove: &[String],
        tag: &str,
        dry_run: bool,
    ) -> Result<RewriteOutcome, RepoError> {
        let mut outcomes = self.rewrite_many(&[snapshot.to_string()], remove, tag, dry_run)?;
        Ok(outcomes.remove(0))
    }

    /// [`rewrite_without`](Self::rewrite_without) for several snapshots at once (an item
    /// erased from every restore point of a resource): the index is read once and trees the
    /// snapshots share are rewritten once. One outcome per snapshot, in the order given (a
    /// snapshot named twice once). A snapshot that does not exist fails the call before
    /// anything is written.
    pub fn rewrite_many(
        &self,
        snapshots: &[String],
        remove: &[String],
        tag: &str,
        dry_run: bool,
    ) -> Result<Vec<RewriteOutcome>, RepoError> {
        if tag.is_empty() || tag.contains(',') {
            return Err(RepoError::Config(format!(
                "tag {tag:?}: a rewritten snapshot needs a tag without commas"
            )));
        }
        // Paths as components, each with its index in `remove` and its exclude.
        let mut targets: Vec<(usize, Vec<&str>, String)> = Vec::new();
        for (i, path) in remove.iter().enumerate() {
            if path.split('/').all(str::is_empty) {
                return Err(RepoError::Config(
                    "removing the root would empty the snapshot: forget it instead".into(),
                ));
            }
            if let Some((parts, glob)) = literal_exclude(path) {
                targets.push((i, parts, glob));
            }
        }

        let repo = self
            .raw()?
            .to_indexed()
            .map_err(|e| rustic("reading the index", e))?;
        let mut snaps: Vec<SnapshotFile> = Vec::new();
        for id in snapshots {
            let s = self.find(&repo, id)?;
            if !snaps.iter().any(|x| x.id == s.id) {
                snaps.push(s);
            }
        }
        let wanted: Vec<(usize, &[&str])> =
            targets.iter().map(|(i, p, _)| (*i, p.as_slice())).collect();
        let mut outcomes = Vec::with_capacity(snaps.len());
        for s in &snaps {
            let mut found = Vec::new();
            let removed = present(&repo, s.tree, &wanted, &mut found, true)
                .map_err(|e| rustic(&format!("reading snapshot {}", s.id), e))?;
            found.sort_unstable();
            outcomes.push(RewriteOutcome {
                original: info(s),
                snapshot: None,
                removed,
                found: found.into_iter().map(|i| remove[i].clone()).collect(),
                original_kept: None,
            });
        }
        // Only snapshots holding an item are handed over: rustic_core also rewrites a
        // snapshot whose stored summary differs from the one it computes.
        let ids: Vec<SnapshotId> = snaps.iter().map(|s| s.id).collect();
        let todo: Vec<SnapshotFile> = snaps
            .into_iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.removed > 0)
            .map(|(s, _)| s)
            .collect();
        if dry_run || todo.is_empty() {
            return Ok(outcomes);
        }

        let before: BTreeSet<SnapshotId> = repo
            .list::<SnapshotId>()
            .map_err(|e| rustic("listing snapshots", e))?
            .collect();
        let mut tags = StringList::default();
        tags.add(tag.to_string());
        // The originals are deleted here, one by one, only after the new ones are saved: a
        // refused deletion is reported, not an error.
        let opts = RewriteOptions::default()
            .forget(false)
            .tags_rewritten(tags)
            .dry_run(false);
        let globs: Vec<String> = targets.iter().map(|(_, _, g)| g.clone()).collect();
        let tree_opts = RewriteTreesOptions::default().excludes(Excludes::default().globs(globs));
        let result = repo.rewrite_snapshots_and_trees(todo, &opts, &tree_opts);
        // New trees are in the repository (even if saving a snapshot failed): archives
        // deduplicate against an index that knows them.
        self.refresh_index();
        // The snapshots as saved, with the ids of their originals.
        let rewritten = result.map_err(|e| rustic("rewriting snapshots", e))?;
        // An index that knows the new trees; loaded after the refresh, the next archive
        // uses it too.
        let (fresh, _) = self.indexed(0)?;

        // A saved snapshot's id is the hash of its encrypted file: found among the new ones.
        let new_ids: Vec<String> = repo
            .list::<SnapshotId>()
            .map_err(|e| rustic("listing snapshots", e))?
            .filter(|id| !before.contains(id))
            .map(|id| id.into_inner().to_hex().to_string())
            .collect();
        let mut saved = repo
            .get_snapshots(&new_ids)
            .map_err(|e| rustic("reading the rewritten snapshots", e))?;
        for r in rewritten {
            let o = ids
                .iter()
                .position(|id| *id == r.id)
                .map(|at| &mut outcomes[at])
                .ok_or_else(|| {
                    storage("rewriting snapshots", format!("{} was not asked for", r.id))
                })?;
            let at = saved
                .iter()
                .position(|s| {
                    s.tree == r.tree
                        && s.time.timestamp() == r.time.timestamp()
                        && s.hostname == r.hostname
                        && s.label == r.label
                        && s.original == r.original
                })
                .ok_or_else(|| {
                    storage(
                        &format!("rewriting snapshot {}", r.id),
                        "the new snapshot was saved but is not in the repository; the original is kept",
                    )
                })?;
            let new = saved.swap_remove(at);
            // Whatever the excludes missed would still be there: an erasure is never
            // reported done when it is not.
            let left = present(&*fresh, r.tree, &wanted, &mut Vec::new(), true)
                .map_err(|e| rustic(&format!("reading the rewritten snapshot of {}", r.id), e))?;
            if left > 0 {
                // The incomplete copy goes; the original stays as it was.
                let _ = repo.delete_snapshots(&[new.id]);
                return Err(storage(
                    &format!("rewriting snapshot {}", r.id),
                    format!(
                        "{left} of the entries to remove would still be in the new snapshot; the original is kept"
                    ),
                ));
            }
            o.snapshot = Some(info(&new));
            o.original_kept = match repo.delete_snapshots(&[r.id]) {
                Ok(()) => None,
                Err(e) if is_locked(&e.display_log()) => Some(
                    "the storage keeps it under retention: it still holds the removed items; \
                     delete it when its retention ends"
                        .into(),
                ),
                Err(e) => {
                    let detail = e.display_log();
                    tracing::warn!(snapshot = %r.id, "deleting the rewritten original failed: {detail}");
                    Some(format!(
                        "deleting it failed ({detail}): it still holds the removed items; delete it again"
                    ))
                }
            };
        }
        if let Some(o) = outcomes
            .iter()
            .find(|o| o.removed > 0 && o.snapshot.is_none())
        {
            return Err(storage(
                &format!("rewriting snapshot {}", o.original.id),
                "rustic_core left it unchanged although it holds items to remove",
            ));
        }
        Ok(outcomes)
    }

    /// Rebuilds the index from the packs (after a lost or damaged index file).
    pub fn repair_index(&self, dry_run: bool) -> Result<(), RepoError> {
        let repo = self.raw()?;
        let opts = rustic_core::RepairIndexOptions::default().read_all(true);
        let result = repo.repair_index(&opts, dry_run);
        // The shared index may name blobs the repair found missing.
        self.refresh_index();
        result.map_err(|e| rustic("repairing the index", e))
    }

    /// Rewrites snapshots whose trees refer to missing data, leaving the damaged items out
    /// (the originals are removed; repaired ones are tagged `repaired`).
    pub fn repair_snapshots(&self, dry_run: bool) -> Result<(), RepoError> {
        let repo = self
            .raw()?
            .to_indexed()
            .map_err(|e| rustic("reading the index", e))?;
        let snaps = repo
            .get_all_snapshots()
            .map_err(|e| rustic("listing snapshots", e))?;
        repo.repair_snapshots(
            &rustic_core::RepairSnapshotsOptions::default(),
            snaps,
            dry_run,
        )
        .map_err(|e| rustic("repairing snapshots", e))
    }

    /// Copies snapshots this repository has and `dest` lacks (a backup copy, 3-2-1).
    /// Returns how many were copied.
    pub fn copy_to(&self, dest: &Repo) -> Result<usize, RepoError> {
        let src = self
            .raw()?
            .to_indexed()
            .map_err(|e| rustic("reading the source index", e))?;
        let dst = dest
            .raw()?
            .to_indexed_ids()
            .map_err(|e| rustic("reading the destination index", e))?;
        let snaps = src
            .get_all_snapshots()
            .map_err(|e| rustic("listing snapshots", e))?;
        let todo: Vec<SnapshotFile> = dst
            .relevant_copy_snapshots(|_| true, &snaps)
            .map_err(|e| rustic("comparing snapshots", e))?
            .into_iter()
            .filter(|c| c.relevant)
            .map(|c| c.sn)
            .collect();
        src.copy(&dst, todo.iter())
            .map_err(|e| rustic("copying", e))?;
        Ok(todo.len())
    }
}

/// One restore point, ready for many reads (restore, export, verification).
pub struct SnapshotReader {
    repo: Repository<rustic_core::IndexedFullStatus>,
    snap: SnapshotFile,
    id: String,
}

impl SnapshotReader {
    /// Writes the content of the item at `path` to `w`.
    pub fn read(&self, path: &str, w: &mut impl std::io::Write) -> Result<(), RepoError> {
        let node = self
            .repo
            .node_from_snapshot_and_path(&self.snap, path)
            .map_err(|e| rustic(&format!("{}:{path}", self.id), e))?;
        self.repo
            .dump(&node, w)
            .map_err(|e| rustic(&format!("reading {path}"), e))
    }

    /// Size of the item at `path`.
    pub fn size(&self, path: &str) -> Result<u64, RepoError> {
        let node = self
            .repo
            .node_from_snapshot_and_path(&self.snap, path)
            .map_err(|e| rustic(&format!("{}:{path}", self.id), e))?;
        Ok(node.meta.size)
    }
}

/// One entry of a restore point's tree, as [`SnapshotReader::walk`] streams it.
#[derive(Clone, Debug)]
pub struct WalkEntry {
    /// `/`-separated path relative to the snapshot root.
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    /// The time the backup gave the entry (`None` if the tree has none).
    pub mtime: Option<chrono::DateTime<chrono::Utc>>,
    node: rustic_core::repofile::Node,
}

impl SnapshotReader {
    /// The restore point's id (as given to `open_snapshot`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Another restore point of the same repository, reusing the index already loaded (a
    /// walk over many restore points reads the index once).
    pub fn at(self, snapshot: &str) -> Result<SnapshotReader, RepoError> {
        let snap = self
            .repo
            .get_snapshot_from_str(snapshot, |_| true)
            .map_err(|_| RepoError::SnapshotNotFound(snapshot.to_string()))?;
        Ok(SnapshotReader {
            repo: self.repo,
            snap,
            id: snapshot.to_string(),
        })
    }

    /// Every entry of the restore point, depth-first in the repository's order (a
    /// directory before its children, names compared byte-wise, as `Path` orders), handed to
    /// `f` until it returns false. Streams: one tree per directory level is held at a time.
    pub fn walk(&self, f: &mut dyn FnMut(WalkEntry) -> bool) -> Result<(), RepoError> {
        let root = self
            .repo
            .node_from_snapshot_and_path(&self.snap, "")
            .map_err(|e| rustic(&format!("{}: its root", self.id), e))?;
        let opts = LsOptions::default();
        let nodes = self
            .repo
            .ls(&root, &opts)
            .map_err(|e| rustic(&format!("listing {}", self.id), e))?;
        for item in nodes {
            let (p, node) = item.map_err(|e| rustic(&format!("listing {}", self.id), e))?;
            let mtime = node.meta.mtime.and_then(|t| {
                chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond() as u32)
            });
            let entry = WalkEntry {
                path: p.to_string_lossy().into_owned(),
                is_dir: node.is_dir(),
                size: node.meta.size,
                mtime,
                node,
            };
            if !f(entry) {
                break;
            }
        }
        Ok(())
    }

    /// Writes the content of an entry found by [`walk`](Self::walk) to `w` (no lookup by
    /// path).
    pub fn read_entry(&self, e: &WalkEntry, w: &mut impl std::io::Write) -> Result<(), RepoError> {
        self.repo
            .dump(&e.node, w)
            .map_err(|err| rustic(&format!("reading {}:{}", self.id, e.path), err))
    }

    /// The first `max` bytes of an entry's content (a message's header, say), reading only
    /// the chunks that hold them.
    pub fn read_head(&self, e: &WalkEntry, max: usize) -> Result<Vec<u8>, RepoError> {
        let what = || format!("reading {}:{}", self.id, e.path);
        let file = self
            .repo
            .open_file(&e.node)
            .map_err(|err| rustic(&what(), err))?;
        let bytes = self
            .repo
            .read_file_at(&file, 0, max.min(e.size as usize))
            .map_err(|err| rustic(&what(), err))?;
        Ok(bytes.to_vec())
    }
}
