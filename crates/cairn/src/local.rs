//! Where a repository's local state lives on this machine: its catalog (what every
//! restore point holds) and its spool (content between fetch and archive), under the cache
//! directory, one set per repository location.

use sha2::Digest;
use std::path::{Path, PathBuf};

pub struct LocalState {
    /// The SQLite catalog file.
    pub catalog: PathBuf,
    /// The spool directory of backups.
    pub spool: PathBuf,
}

impl LocalState {
    pub fn new(cache_dir: &Path, repository: &str) -> Self {
        let key = hex::encode(&sha2::Sha256::digest(repository.as_bytes())[..8]);
        let dir = cache_dir.join("repositories").join(key);
        Self {
            catalog: dir.join("catalog.db"),
            spool: dir.join("spool"),
        }
    }

    /// Opens (creating) the catalog.
    pub fn open_catalog(&self) -> anyhow::Result<cairn_catalog::SqliteCatalog> {
        Ok(cairn_catalog::SqliteCatalog::open(&self.catalog)?)
    }
}
