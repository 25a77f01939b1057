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

    /// Holds this repository's backups on this machine to one at a time (two runs would
    /// stage the same resources): the lock goes when the returned file is dropped, or when
    /// the process dies, however it dies.
    pub fn lock_for_backup(&self) -> anyhow::Result<std::fs::File> {
        self.private_dir()?;
        let path = self.catalog.with_extension("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => Err(crate::error::UserError::new(
                "another `cairn backup` of this repository is running on this machine",
            )
            .hint(format!(
                "wait for it to finish (its lock is {})",
                path.display()
            ))
            .into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Marks this repository's local state as owned by a running `cairn serve` listening
    /// at `address`, for as long as the returned file is held (or the process lives).
    pub fn lock_for_serving(&self, address: &str) -> anyhow::Result<std::fs::File> {
        self.private_dir()?;
        let path = self.catalog.with_extension("serve");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        match f.try_lock() {
            Ok(()) => {
                use std::io::Write;
                f.set_len(0)?;
                f.write_all(address.as_bytes())?;
                f.flush()?;
                Ok(f)
            }
            Err(std::fs::TryLockError::WouldBlock) => Err(self.served_elsewhere(&path).into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// An error when a `cairn serve` owns this repository's catalog: it is then its only
    /// writer, and changes go through its API.
    pub fn ensure_not_served(&self) -> anyhow::Result<()> {
        let path = self.catalog.with_extension("serve");
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
        else {
            return Ok(());
        };
        match f.try_lock() {
            Ok(()) => Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => Err(self.served_elsewhere(&path).into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    fn served_elsewhere(&self, path: &Path) -> crate::error::UserError {
        let address = std::fs::read_to_string(path).unwrap_or_default();
        crate::error::UserError::new(format!(
            "`cairn serve` at {} owns this repository's catalog: it is its only writer while it runs",
            if address.is_empty() { "?" } else { address.trim() }
        ))
        .hint(format!(
            "use its API (http://{}/api/v1), or stop the server first",
            address.trim()
        ))
    }

    /// Opens (creating) the catalog.
    pub fn open_catalog(&self) -> anyhow::Result<cairn_catalog::SqliteCatalog> {
        self.private_dir()?;
        Ok(cairn_catalog::SqliteCatalog::open(&self.catalog)?)
    }

    /// The state's directory, readable by its owner only: the spool holds messages in
    /// plaintext and the catalog what they are about (and, while a run stages, the
    /// short-lived download URLs of files).
    fn private_dir(&self) -> anyhow::Result<()> {
        let Some(dir) = self.catalog.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_backup_of_the_same_repository_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let a = LocalState::new(dir.path(), "/srv/cairn");
        let first = a.lock_for_backup().unwrap();
        let e = a.lock_for_backup().unwrap_err();
        assert!(e.to_string().contains("another `cairn backup`"), "{e}");
        // Another repository is not held up.
        LocalState::new(dir.path(), "/srv/other")
            .lock_for_backup()
            .unwrap();
        drop(first);
        a.lock_for_backup().unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_local_state_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = LocalState::new(dir.path(), "/srv/cairn");
        let parent = state.catalog.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&parent).unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        state.open_catalog().unwrap();
        let mode = std::fs::metadata(&parent).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
}
