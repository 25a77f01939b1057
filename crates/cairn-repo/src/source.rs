//! Backing up items that are not files on a disk: a stream of entries (directories and
//! items with their size and time), each item's content opened only if the archiver needs it.
//! Unchanged items are taken from the parent snapshot without being opened, so an
//! incremental backup never downloads them.

use rustic_core::jiff::Timestamp;
use rustic_core::repofile::{Metadata, Node, NodeType};
use rustic_core::{
    ErrorKind, ReadSource, ReadSourceEntry, ReadSourceOpen, RusticError, RusticResult,
};
use std::ffi::OsStr;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub type ItemReader = Box<dyn Read + Send>;
type Opener = Box<dyn FnOnce() -> std::io::Result<ItemReader> + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
}

/// One entry of a snapshot's tree. Entries must come depth-first, sorted by name within each
/// directory (as `Path` compares), a directory before its children.
pub struct Entry {
    /// `/`-separated path relative to the snapshot root.
    pub path: String,
    pub kind: EntryKind,
    /// Exact size of the content, known before it is read.
    pub size: u64,
    /// Modification time: with the size, what decides whether the item changed.
    pub mtime: chrono::DateTime<chrono::Utc>,
    /// Opens the content (files only); called at most once, on a worker thread.
    pub open: Option<Opener>,
    /// A marker of the item's version (a content hash, or the content itself when small),
    /// kept as the node's ctime: an item whose marker differs from the parent snapshot's is
    /// read again even when its size and time are the same (a JSON item edited twice in one
    /// second). Set with [`Entry::versioned`].
    version: Option<Timestamp>,
}

impl Entry {
    pub fn dir(path: impl Into<String>, mtime: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            path: path.into(),
            kind: EntryKind::Dir,
            size: 0,
            mtime,
            open: None,
            version: None,
        }
    }

    pub fn file(
        path: impl Into<String>,
        size: u64,
        mtime: chrono::DateTime<chrono::Utc>,
        open: impl FnOnce() -> std::io::Result<ItemReader> + Send + 'static,
    ) -> Self {
        Self {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mtime,
            open: Some(Box::new(open)),
            version: None,
        }
    }

    /// The same entry with a version marker (see [`Entry::version`]).
    pub fn versioned(mut self, marker: &[u8]) -> Self {
        self.version = Some(version_time(marker));
        self
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("size", &self.size)
            .finish()
    }
}

/// What went wrong with single items during an archive: the snapshot is written without them.
#[derive(Default, Debug)]
pub(crate) struct Tally {
    pub skipped: Mutex<Vec<(String, String)>>,
    pub opened: AtomicU64,
}

impl Tally {
    fn skip(&self, path: &str, why: String) {
        tracing::warn!(path, "skipped: {why}");
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((path.to_string(), why));
    }
}

pub(crate) struct Source {
    entries: Mutex<Option<Box<dyn Iterator<Item = Entry> + Send>>>,
    pub tally: Arc<Tally>,
}

impl Source {
    pub fn new(entries: impl Iterator<Item = Entry> + Send + 'static) -> Self {
        Self {
            entries: Mutex::new(Some(Box::new(entries))),
            tally: Arc::new(Tally::default()),
        }
    }
}

pub(crate) struct LazyOpen {
    open: Opener,
    path: String,
    size: u64,
    tally: Arc<Tally>,
}

impl ReadSourceOpen for LazyOpen {
    type Reader = CheckedReader;
    fn open(self) -> RusticResult<Self::Reader> {
        self.tally.opened.fetch_add(1, Ordering::Relaxed);
        match (self.open)() {
            Ok(inner) => Ok(CheckedReader {
                inner,
                path: self.path,
                expected: self.size,
                read: 0,
                tally: self.tally,
            }),
            Err(e) => {
                self.tally.skip(&self.path, format!("could not open: {e}"));
                Err(RusticError::with_source(
                    ErrorKind::InputOutput,
                    "opening an item failed",
                    e,
                ))
            }
        }
    }
}

/// Checks that an item delivers exactly the size it announced; records read failures.
pub(crate) struct CheckedReader {
    inner: ItemReader,
    path: String,
    expected: u64,
    read: u64,
    tally: Arc<Tally>,
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if self.read != self.expected => {
                let why = format!("announced {} bytes, delivered {}", self.expected, self.read);
                self.tally.skip(&self.path, why.clone());
                Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, why))
            }
            Ok(n) => {
                self.read += n as u64;
                if self.read > self.expected {
                    let why = format!("announced {} bytes, delivered more", self.expected);
                    self.tally.skip(&self.path, why.clone());
                    return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
                }
                Ok(n)
            }
            Err(e) => {
                self.tally.skip(&self.path, format!("read failed: {e}"));
                Err(e)
            }
        }
    }
}

pub(crate) struct SourceIter {
    inner: Box<dyn Iterator<Item = Entry> + Send>,
    prev: Option<PathBuf>,
    tally: Arc<Tally>,
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> Option<Timestamp> {
    Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).ok()
}

impl Iterator for SourceIter {
    type Item = RusticResult<ReadSourceEntry<LazyOpen>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let e = self.inner.next()?;
            let path = PathBuf::from(&e.path);
            // The archiver relies on this order (parent matching, tree layout): refuse an
            // entry out of order rather than write a tree that restores wrongly.
            if self
                .prev
                .as_ref()
                .is_some_and(|p| p.as_path() >= path.as_path())
            {
                self.tally
                    .skip(&e.path, "entry out of order or duplicated".into());
                continue;
            }
            let Some(name) = path.file_name().map(OsStr::to_os_string) else {
                self.tally.skip(&e.path, "entry without a name".into());
                continue;
            };
            self.prev = Some(path.clone());
            let (node_type, mode) = match e.kind {
                // Go FileMode bits, as restic writes them.
                EntryKind::Dir => (NodeType::Dir, (1u32 << 31) | 0o755),
                EntryKind::File => (NodeType::File, 0o644),
            };
            let meta = Metadata {
                size: e.size,
                mtime: timestamp(e.mtime),
                ctime: e.version,
                mode: Some(mode),
                ..Default::default()
            };
            let node = Node::new_node(&name, node_type, meta);
            let open = e.open.map(|open| LazyOpen {
                open,
                path: e.path.clone(),
                size: e.size,
                tally: self.tally.clone(),
            });
            return Some(Ok(ReadSourceEntry { path, node, open }));
        }
    }
}

impl ReadSource for Source {
    type Open = LazyOpen;
    type Iter = SourceIter;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let inner = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| Box::new(std::iter::empty()));
        SourceIter {
            inner,
            prev: None,
            tally: self.tally.clone(),
        }
    }
}

/// A version marker as a time (what a node can carry that rustic_core compares with the
/// parent's): its SHA-256, as seconds in 1970–2038.
fn version_time(marker: &[u8]) -> Timestamp {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(marker);
    let h = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
    Timestamp::from_second((h % (1 << 31)) as i64).unwrap_or_default()
}
