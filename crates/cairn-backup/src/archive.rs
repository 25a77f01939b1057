//! Writes a resource's next restore point from the catalog's sorted view, then commits.
//!
//! The catalog walk runs on a thread of its own and hands rows to the archiver through a
//! bounded channel: memory holds a few hundred rows whatever the resource's size. Content
//! comes from the spool, from the row itself (JSON items, sidecars) or from Graph (files,
//! and messages the repository does not hold under that path yet).

use crate::engine::Run;
use cairn_catalog::{Catalog, ItemRow};
use cairn_graph::GraphClient;
use cairn_repo::{Entry, ItemReader, SnapshotMeta};
use futures::StreamExt;
use std::io::Read;
use std::sync::Arc;

pub(crate) struct Done {
    pub snapshot: String,
    pub items: u64,
    pub stored: u64,
    pub commit: cairn_catalog::CommitReport,
    pub skipped: Vec<(String, String)>,
}

/// Where an entry's content comes from when the repository opens it.
#[derive(Clone)]
enum Content {
    Spool(String),
    Inline(Arc<[u8]>),
    /// A message's MIME (or an inline image of a Teams message), asked of Graph.
    Mime(String),
    /// A file's content: `/drives/{id}/items/{id}/content`, and the pre-authenticated URL
    /// the drive delta gave for it, if any (saves asking for one).
    File(String, Option<String>),
}

fn opener(
    c: Content,
    graph: Arc<GraphClient>,
    handle: tokio::runtime::Handle,
) -> impl FnOnce() -> std::io::Result<ItemReader> + Send + 'static {
    move || -> std::io::Result<ItemReader> {
        match c {
            Content::Spool(p) => Ok(Box::new(std::fs::File::open(p)?)),
            Content::Inline(b) => Ok(Box::new(std::io::Cursor::new(b))),
            Content::Mime(path) => {
                let b = handle
                    .block_on(graph.get_bytes(&path))
                    .map_err(std::io::Error::other)?;
                Ok(Box::new(std::io::Cursor::new(b)))
            }
            Content::File(path, url) => {
                // The download runs as a task and hands its chunks over through a small
                // bounded channel.
                let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(4);
                handle.spawn(async move {
                    let mut s = Box::pin(graph.download_from(&path, url));
                    while let Some(chunk) = s.next().await {
                        let failed = chunk.is_err();
                        if tx.send(chunk.map_err(std::io::Error::other)).is_err() || failed {
                            return;
                        }
                    }
                });
                Ok(Box::new(ChannelReader {
                    rx,
                    current: bytes::Bytes::new(),
                }))
            }
        }
    }
}

/// The walks over the catalog, in the order their paths sort: the items themselves, then
/// the permissions of folders shared on their own (`~folder-permissions/<path, one name>`),
/// then those of files (`~permissions/<path>`), then files' earlier versions
/// (`~versions/<path>/<version>`). `~` sorts after every top-level name.
#[derive(Clone, Copy, PartialEq)]
enum Pass {
    Items,
    FolderPermissions,
    Permissions,
    Versions,
}

/// Where a folder's own permissions are kept: its whole path as one name (`/` escaped),
/// so that they sit in one flat directory beside the tree instead of inside it.
pub(crate) fn folder_permissions_path(folder: &str) -> String {
    format!(
        "~folder-permissions/{}.json",
        crate::engine::component(folder)
    )
}

/// Turns sorted rows into entries: directories where a path enters a new one, the content
/// file, and a message's sidecar.
struct Entries {
    rows: std::sync::mpsc::IntoIter<(Pass, ItemRow)>,
    pending: std::collections::VecDeque<Entry>,
    dirs: Vec<String>,
    base: String,
    graph: Arc<GraphClient>,
    handle: tokio::runtime::Handle,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl Entries {
    /// Emits the directories of `path` not emitted yet (all its components when `is_dir`).
    fn enter(&mut self, path: &str, is_dir: bool) {
        let epoch = chrono::DateTime::<chrono::Utc>::default();
        let parts: Vec<&str> = path.split('/').collect();
        let dirs_end = if is_dir { parts.len() } else { parts.len() - 1 };
        let mut depth = 0;
        while depth < self.dirs.len()
            && depth < dirs_end
            && self.dirs[depth] == parts[..=depth].join("/")
        {
            depth += 1;
        }
        self.dirs.truncate(depth);
        for i in depth..dirs_end {
            let d = parts[..=i].join("/");
            self.pending.push_back(Entry::dir(d.clone(), epoch));
            self.dirs.push(d);
        }
    }

    /// An item's entry. Its version marker (what makes the repository read it again even
    /// when size and time are the parent's): the content itself when it is at hand (JSON
    /// items, sidecars, permissions), else `marker` (a file's content hash). A message's
    /// MIME has none: it does not change, and reading it again would fetch it again.
    fn file(
        &mut self,
        path: String,
        size: u64,
        mtime: chrono::DateTime<chrono::Utc>,
        c: Content,
        marker: Option<&str>,
    ) {
        self.enter(&path, false);
        let own = match &c {
            Content::Inline(b) => Some(b.clone()),
            _ => None,
        };
        let open = opener(c, self.graph.clone(), self.handle.clone());
        let mut entry = Entry::file(path, size, mtime, open);
        if let Some(m) = own.as_deref().or(marker.map(str::as_bytes)) {
            entry = entry.versioned(m);
        }
        self.pending.push_back(entry);
    }

    fn push(&mut self, pass: Pass, row: ItemRow) {
        match pass {
            Pass::Items => self.push_row(row),
            Pass::FolderPermissions | Pass::Permissions | Pass::Versions => {
                let Some(meta) = row
                    .sidecar
                    .as_deref()
                    .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                else {
                    return;
                };
                if pass != Pass::Versions {
                    let Some(perms) = meta.get("permissions") else {
                        return;
                    };
                    let doc = serde_json::to_string_pretty(perms).unwrap_or_default();
                    let bytes: Arc<[u8]> = Arc::from(doc.into_bytes());
                    let path = match pass {
                        Pass::FolderPermissions => folder_permissions_path(&row.path),
                        _ => format!("~permissions/{}", row.path),
                    };
                    self.file(
                        path,
                        bytes.len() as u64,
                        row.mtime,
                        Content::Inline(bytes),
                        None,
                    );
                    return;
                }
                let mut versions: Vec<&serde_json::Value> = meta["versions"]
                    .as_array()
                    .map(|v| v.iter().collect())
                    .unwrap_or_default();
                versions.sort_by_key(|v| crate::sort_key(v["id"].as_str().unwrap_or("")));
                let drive = row.scope.trim_start_matches("drive:");
                for v in versions {
                    let vid = v["id"].as_str().unwrap_or_default();
                    self.file(
                        format!("~versions/{}/{}", row.path, crate::engine::component(vid)),
                        v["size"].as_u64().unwrap_or(0),
                        crate::engine::time_of(&v["lastModifiedDateTime"]).unwrap_or_default(),
                        Content::File(
                            format!("/drives/{drive}/items/{}/versions/{vid}/content", row.item),
                            None,
                        ),
                        None,
                    );
                }
            }
        }
    }

    fn push_row(&mut self, row: ItemRow) {
        // A folder is a directory (entered like a file's parents, so an empty one is kept).
        if row.kind == "folder" {
            self.enter(&row.path, true);
            return;
        }
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let content = match (row.kind.as_str(), &row.spool, &row.sidecar) {
            ("file", url, _) => Content::File(
                format!(
                    "/drives/{}/items/{}/content",
                    row.scope.trim_start_matches("drive:"),
                    row.item
                ),
                url.clone(),
            ),
            (_, Some(p), _) if crate::spool::Spool::complete(p) == Some(row.size) => {
                Content::Spool(p.clone())
            }
            // Not spooled, or spooled where this process cannot read it (by a worker that
            // stopped, on another machine): read from Graph.
            ("message", _, _) => {
                Content::Mime(format!("{}/messages/{}/$value", self.base, row.item))
            }
            // An inline image of a Teams message, moved with its renamed channel or chat:
            // read from where Graph serves it, should the repository not hold it there.
            ("hostedContent", _, meta) => Content::Mime(
                meta.as_deref()
                    .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                    .and_then(|m| m["source"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            ),
            // A full-fidelity stream has no other source: an unreadable spool fails the
            // item, which is reported and read again by the next run.
            (_, Some(p), _) => Content::Spool(p.clone()),
            (_, None, Some(doc)) => Content::Inline(Arc::from(doc.as_bytes())),
            (_, None, None) => Content::Inline(Arc::from(&b""[..])),
        };
        let marker = row
            .hash
            .as_deref()
            .filter(|_| matches!(row.kind.as_str(), "file" | "hostedContent"));
        self.file(row.path.clone(), row.size, row.mtime, content, marker);
        if matches!(
            row.kind.as_str(),
            "message" | "archiveItem" | "messageStream"
        ) && let Some(meta) = row.sidecar
            && let Some(stem) = row
                .path
                .strip_suffix(".eml")
                .or_else(|| row.path.strip_suffix(".fts"))
        {
            // Its time is the message's last change, so that a flag change that keeps the
            // sidecar's size is still seen as a change.
            let modified = serde_json::from_str::<serde_json::Value>(&meta)
                .ok()
                .and_then(|v| crate::engine::time_of(&v["lastModifiedDateTime"]))
                .unwrap_or(row.mtime);
            let bytes: Arc<[u8]> = Arc::from(meta.into_bytes());
            self.file(
                format!("{stem}.meta.json"),
                bytes.len() as u64,
                modified,
                Content::Inline(bytes),
                None,
            );
        }
    }
}

impl Iterator for Entries {
    type Item = Entry;
    fn next(&mut self) -> Option<Entry> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(e);
            }
            let (pass, row) = self.rows.next()?;
            self.push(pass, row);
        }
    }
}

/// Archives the next restore point of `run`'s resource and commits it to the catalog.
pub(crate) async fn write(run: &Run<'_>) -> anyhow::Result<Done> {
    let engine = run.engine;
    let catalog: Arc<dyn Catalog> = engine.catalog.clone();
    let res = run.res;
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Pass, ItemRow)>(256);
    let walker = std::thread::spawn(move || -> cairn_catalog::Result<()> {
        // Shared folders are few: gathered on the way, then given in the order of their flat
        // names.
        let mut folders = Vec::new();
        catalog.for_each_next(res, &mut |row| {
            if row.kind == "folder" && row.sidecar.is_some() {
                folders.push((folder_permissions_path(&row.path), row.clone()));
            }
            tx.send((Pass::Items, row)).is_ok()
        })?;
        folders.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, row) in folders {
            if tx.send((Pass::FolderPermissions, row)).is_err() {
                return Ok(());
            }
        }
        for pass in [Pass::Permissions, Pass::Versions] {
            catalog.for_each_next(res, &mut |row| {
                row.kind != "file" || row.sidecar.is_none() || tx.send((pass, row)).is_ok()
            })?;
        }
        Ok(())
    });
    let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let entries = Entries {
        rows: rx.into_iter(),
        pending: Default::default(),
        dirs: Vec::new(),
        base: run.base.clone(),
        graph: engine.graph.clone(),
        handle: tokio::runtime::Handle::current(),
        count: count.clone(),
    };
    let meta = SnapshotMeta {
        hostname: engine.tenant.clone(),
        label: run.target.name.clone(),
        paths: vec![format!(
            "/{}",
            format!("{:?}", run.target.kind).to_lowercase()
        )],
        tags: vec![format!("kind={:?}", run.target.kind).to_lowercase()],
        time: None,
        description: None,
        // The resource's last restore point, as the catalog knows it: the repository need
        // not search every snapshot for it.
        parent: run
            .catalog()
            .points(res)?
            .last()
            .map(|p| p.snapshot.clone()),
    };
    let repo = engine.repo.clone();
    let report = tokio::task::spawn_blocking(move || repo.archive(&meta, entries)).await??;
    walker
        .join()
        .map_err(|_| anyhow::anyhow!("the catalog walk panicked"))??;
    // What the repository could not take is not in this restore point: the catalog says
    // so, and the item's collection is enumerated afresh next time to fetch it again.
    for (path, why) in &report.skipped {
        let content = match path.strip_suffix(".meta.json") {
            Some(stem) => format!("{stem}.eml"),
            None => path.clone(),
        };
        if let Some(scope) = engine.catalog.drop_from_next(res, &content)? {
            engine.catalog.stage_token(res, &scope, None)?;
        }
        tracing::debug!(path, why, "left out of the restore point");
    }
    let commit = engine
        .catalog
        .commit(res, &report.snapshot.id, report.snapshot.time)?;
    Ok(Done {
        snapshot: report.snapshot.id,
        items: count.load(std::sync::atomic::Ordering::Relaxed),
        stored: report.snapshot.data_added,
        commit,
        skipped: report.skipped,
    })
}

/// A blocking reader over chunks sent by an async download.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(chunk) => self.current = chunk?,
                // The download ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
