//! OneDrive: a drive's files as one restore point. Graph gives every file's size and time in
//! the drive delta, so the repository decides from them alone whether a file changed; only
//! new and changed files are downloaded.

use crate::sort_key;
use cairn_graph::{DeltaEvent, GraphClient};
use cairn_repo::{Entry, Repo, SnapshotInfo, SnapshotMeta};
use futures::StreamExt;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct DriveBackup {
    pub snapshot: SnapshotInfo,
    pub files: u64,
    /// Files whose content was downloaded (the rest came from the previous restore point).
    pub downloaded: u64,
    /// Files left out, with the reason.
    pub skipped: Vec<(String, String)>,
}

struct FileMeta {
    key: Vec<u8>,
    path: String,
    size: u64,
    mtime: chrono::DateTime<chrono::Utc>,
    content_path: String,
    url: Option<String>,
}

fn parse_time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// Backs up the OneDrive of `user` (id or UPN) into `repo` as one restore point labelled
/// with the user, under `onedrive/`. Runs on the async runtime; the archive itself runs on a
/// blocking thread.
pub async fn backup_onedrive(
    graph: Arc<GraphClient>,
    repo: Arc<Repo>,
    tenant: &str,
    user: &str,
) -> anyhow::Result<DriveBackup> {
    let start = format!(
        "/users/{user}/drive/root/delta?$select=id,name,size,file,folder,root,deleted,parentReference,lastModifiedDateTime,@microsoft.graph.downloadUrl"
    );
    // Metadata only (no content) of the drive's current files.
    let mut files: Vec<FileMeta> = Vec::new();
    let mut events = Box::pin(graph.delta(&start, None));
    while let Some(ev) = events.next().await {
        match ev? {
            DeltaEvent::Upsert(it) if it.get("file").is_some() => {
                let parent = it["parentReference"]["path"]
                    .as_str()
                    .unwrap_or("/drive/root:");
                let rel = parent
                    .split_once("root:")
                    .map(|x| x.1)
                    .unwrap_or("")
                    .trim_start_matches('/');
                let rel = percent_encoding::percent_decode_str(rel).decode_utf8_lossy();
                let name = it["name"].as_str().unwrap_or_default();
                let path = if rel.is_empty() {
                    format!("onedrive/{name}")
                } else {
                    format!("onedrive/{rel}/{name}")
                };
                let drive = it["parentReference"]["driveId"]
                    .as_str()
                    .unwrap_or_default();
                let id = it["id"].as_str().unwrap_or_default();
                files.push(FileMeta {
                    key: sort_key(&path),
                    path,
                    size: it["size"].as_u64().unwrap_or(0),
                    mtime: parse_time(&it["lastModifiedDateTime"]),
                    content_path: format!("/drives/{drive}/items/{id}/content"),
                    url: it["@microsoft.graph.downloadUrl"]
                        .as_str()
                        .map(str::to_string),
                });
            }
            DeltaEvent::Resync { .. } => {
                anyhow::bail!("the drive of {user} asked for a resync during a full enumeration")
            }
            _ => {}
        }
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    files.dedup_by(|a, b| a.key == b.key);
    let count = files.len() as u64;
    let downloaded = Arc::new(AtomicU64::new(0));
    let handle = tokio::runtime::Handle::current();
    let epoch = chrono::DateTime::<chrono::Utc>::default();
    // Directories first where they sort, then files; both from the sorted list.
    let mut entries: Vec<Entry> = vec![Entry::dir("onedrive", epoch)];
    let mut dirs = BTreeSet::new();
    for f in files {
        let mut prefix = String::from("onedrive");
        let parts: Vec<&str> = f.path.split('/').collect();
        for part in &parts[1..parts.len() - 1] {
            prefix.push('/');
            prefix.push_str(part);
            if dirs.insert(prefix.clone()) {
                entries.push(Entry::dir(prefix.clone(), epoch));
            }
        }
        let (graph, handle, downloaded) = (graph.clone(), handle.clone(), downloaded.clone());
        let (content_path, url) = (f.content_path, f.url);
        entries.push(Entry::file(f.path, f.size, f.mtime, move || {
            downloaded.fetch_add(1, Ordering::Relaxed);
            // Runs on an archiver thread, outside the runtime: the download runs as a task
            // and hands its chunks over through a small bounded channel.
            let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<bytes::Bytes>>(4);
            handle.spawn(async move {
                let mut s = Box::pin(graph.download_from(&content_path, url));
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
            }) as cairn_repo::ItemReader)
        }));
    }
    // A directory entry must precede its children and follow its elder siblings: sort the
    // whole list once more by key (directories were interleaved by first use).
    entries.sort_by_key(|e| sort_key(&e.path));
    let meta = SnapshotMeta {
        hostname: tenant.to_string(),
        label: user.to_string(),
        paths: vec!["/onedrive".into()],
        tags: vec!["service=onedrive".into()],
        time: None,
        description: None,
    };
    let report =
        tokio::task::spawn_blocking(move || repo.archive(&meta, entries.into_iter())).await??;
    Ok(DriveBackup {
        snapshot: report.snapshot,
        files: count,
        downloaded: downloaded.load(Ordering::Relaxed),
        skipped: report.skipped,
    })
}

/// A blocking reader over chunks sent by an async download.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
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
