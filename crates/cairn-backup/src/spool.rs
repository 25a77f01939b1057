//! Content fetched before the archive needs it (a message's size is known only from its
//! MIME), kept on disk per resource until its restore point is committed. A run that was
//! interrupted finds its spooled content again and does not fetch it twice.

use cairn_graph::GraphClient;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

#[derive(Clone, Debug)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    pub fn new(root: &Path, resource: i64) -> Self {
        Self {
            dir: root.join(resource.to_string()),
        }
    }

    /// Where an item's content goes: named by a hash of its id and version.
    pub fn path_for(&self, item: &str, change: &str) -> PathBuf {
        let mut h = Sha256::new();
        h.update(item.as_bytes());
        h.update([0]);
        h.update(change.as_bytes());
        self.dir.join(hex::encode(&h.finalize()[..16]))
    }

    /// The size of a spooled file, if it is complete (written under a temporary name and
    /// renamed when done).
    pub fn complete(path: &str) -> Option<u64> {
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    /// Streams `path` from Graph into the spool; returns the file and its size.
    pub async fn fetch(&self, graph: &GraphClient, path: &str, dest: &Path) -> anyhow::Result<u64> {
        tokio::fs::create_dir_all(&self.dir).await?;
        let tmp = dest.with_extension("part");
        // One message is at most Exchange's message size limit (150 MB): it is read whole,
        // so that a transfer cut short is retried whole by the transport.
        let bytes = graph.get_bytes(path).await?;
        let size = bytes.len() as u64;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(&bytes).await?;
        f.flush().await?;
        drop(f);
        tokio::fs::rename(&tmp, dest).await?;
        Ok(size)
    }

    /// Removes everything spooled for the resource (after a commit).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
