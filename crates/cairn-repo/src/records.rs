//! Records: small documents Cairn keeps in the repository beside the backups — legal holds,
//! erasure records — so that they live as long as the data they speak of and a catalog
//! rebuilt from the repository finds them again.
//!
//! A record is a snapshot of its own (restic's format has no other place for a document):
//! host [`RECORD_HOST`], label `record:<kind>`, tag [`RECORD_TAG`], one file
//! `records/<kind>/<name>`. Retention rules never touch them ([`Repo::forget`] leaves them
//! out), and the `restic` tool shows them as ordinary snapshots.

use crate::repo::{Repo, RepoError, SnapshotInfo, SnapshotMeta};
use crate::source::Entry;

/// The snapshot host of records.
pub const RECORD_HOST: &str = "cairn";
/// The tag every record carries: retention leaves such snapshots alone.
pub const RECORD_TAG: &str = "cairn-record";

/// A record read back.
#[derive(Clone, Debug)]
pub struct Record {
    pub snapshot: SnapshotInfo,
    pub name: String,
    pub content: Vec<u8>,
}

/// Is this snapshot a record rather than a restore point?
pub fn is_record(s: &SnapshotInfo) -> bool {
    s.tags.iter().any(|t| t == RECORD_TAG)
}

fn label(kind: &str) -> String {
    format!("record:{kind}")
}

impl Repo {
    /// Writes a record of `kind` named `name` (a file name: no `/`). Returns its snapshot.
    pub fn put_record(
        &self,
        kind: &str,
        name: &str,
        content: Vec<u8>,
    ) -> Result<SnapshotInfo, RepoError> {
        if name.contains('/') || kind.contains('/') || name.is_empty() {
            return Err(RepoError::Config(format!(
                "a record name is a file name: {kind}/{name}"
            )));
        }
        let now = chrono::Utc::now();
        let root = format!("records/{kind}");
        let size = content.len() as u64;
        let entries = vec![
            Entry::dir("records", now),
            Entry::dir(root.clone(), now),
            Entry::file(format!("{root}/{name}"), size, now, move || {
                Ok(Box::new(std::io::Cursor::new(content)) as crate::ItemReader)
            }),
        ];
        let meta = SnapshotMeta {
            hostname: RECORD_HOST.into(),
            label: label(kind),
            paths: vec![format!("/{root}")],
            tags: vec![RECORD_TAG.into(), kind.to_string()],
            time: Some(now),
            description: Some(format!("Cairn record: {kind}/{name}")),
            parent: Some(String::new()),
        };
        let report = self.archive(&meta, entries.into_iter())?;
        if let Some((path, why)) = report.skipped.first() {
            return Err(RepoError::Storage {
                what: format!("writing the record {path}"),
                detail: why.clone(),
            });
        }
        Ok(report.snapshot)
    }

    /// The snapshots of the records of `kind`, oldest first (contents not read).
    pub fn record_snapshots(&self, kind: &str) -> Result<Vec<SnapshotInfo>, RepoError> {
        let label = label(kind);
        Ok(self
            .snapshots()?
            .into_iter()
            .filter(|s| is_record(s) && s.hostname == RECORD_HOST && s.label == label)
            .collect())
    }

    /// Every record of `kind`, oldest first.
    pub fn records(&self, kind: &str) -> Result<Vec<Record>, RepoError> {
        let mut out = Vec::new();
        for s in self.record_snapshots(kind)? {
            out.extend(self.read_record(&s)?);
        }
        Ok(out)
    }

    /// The newest record of `kind`, if any.
    pub fn latest_record(&self, kind: &str) -> Result<Option<Record>, RepoError> {
        match self.record_snapshots(kind)?.pop() {
            Some(s) => Ok(self.read_record(&s)?.pop()),
            None => Ok(None),
        }
    }

    fn read_record(&self, s: &SnapshotInfo) -> Result<Vec<Record>, RepoError> {
        let reader = self.open_snapshot(&s.id)?;
        let mut out = Vec::new();
        for (path, is_dir, _) in self.list(&s.id, "")? {
            if is_dir {
                continue;
            }
            let mut content = Vec::new();
            reader.read(&path, &mut content)?;
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            out.push(Record {
                snapshot: s.clone(),
                name,
                content,
            });
        }
        Ok(out)
    }

    /// Deletes the given record snapshots (superseded ones). Storage that keeps them under
    /// retention refuses; that is no error — the newest record is what counts.
    pub fn drop_records(&self, ids: &[String]) -> Result<usize, RepoError> {
        let repo = self.raw()?;
        let mut n = 0;
        for id in ids {
            let Ok(s) = repo.get_snapshot_from_str(id, |_| true) else {
                continue;
            };
            match repo.delete_snapshots(&[s.id]) {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::info!(record = %id, "a superseded record stays: {}", e.display_log())
                }
            }
        }
        Ok(n)
    }

    /// A signature of `message` with the repository's master key (HMAC-SHA256 under a key
    /// derived from it), hex: only who holds a password of this repository can make one,
    /// and anyone who holds one can check it ([`Repo::verify_signature`]).
    pub fn sign(&self, message: &[u8]) -> Result<String, RepoError> {
        use hmac::Mac as _;
        let mut mac = self.signer()?;
        mac.update(message);
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Whether `signature` is this repository's signature of `message`.
    pub fn verify_signature(&self, message: &[u8], signature: &str) -> Result<bool, RepoError> {
        use hmac::Mac as _;
        let Ok(sig) = hex::decode(signature) else {
            return Ok(false);
        };
        let mut mac = self.signer()?;
        mac.update(message);
        Ok(mac.verify_slice(&sig).is_ok())
    }

    fn signer(&self) -> Result<hmac::Hmac<sha2::Sha256>, RepoError> {
        use hmac::Mac as _;
        use sha2::Digest as _;
        let key = self.raw()?.key();
        let mut d = sha2::Sha256::new();
        d.update(b"cairn record signature v1\0");
        d.update(&key.encrypt);
        d.update(&key.mac.k);
        d.update(&key.mac.r);
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&d.finalize())
            .map_err(|e| RepoError::Config(format!("signing key: {e}")))
    }

    /// Deletes whole snapshots (an erased person's own restore points). Per id: `None` when
    /// deleted, else why the storage kept it (Object Lock retention) — not an error: the
    /// caller records it and tries again later.
    pub fn delete_snapshots(&self, ids: &[String]) -> Result<Vec<Option<String>>, RepoError> {
        let repo = self.raw()?;
        let mut out = Vec::new();
        for id in ids {
            let s = repo
                .get_snapshot_from_str(id, |_| true)
                .map_err(|_| RepoError::SnapshotNotFound(id.clone()))?;
            out.push(match repo.delete_snapshots(&[s.id]) {
                Ok(()) => None,
                Err(e) => Some(e.display_log()),
            });
        }
        Ok(out)
    }
}
