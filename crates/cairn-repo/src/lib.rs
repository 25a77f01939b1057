//! `cairn-repo`: where backups live — a restic-format repository (encrypted, deduplicated,
//! compressed) through `rustic_core`, on a local directory or S3-compatible storage.
//!
//! The format is restic's, so a customer can list and restore their backups with the
//! `restic` command line tool, without Cairn. rustic_core is synchronous and blocking (and its
//! S3 backend runs its own async runtime): call this crate from a blocking thread
//! (`tokio::task::spawn_blocking`), never from inside an async task.

mod location;
mod records;
mod repo;
mod shared;
mod source;

pub use location::{Location, RepoOptions};
pub use records::{RECORD_HOST, RECORD_TAG, Record, is_record};
pub use repo::{
    CheckReport, ForgetReport, ForgetRule, KeyInfo, LegalHold, Repo, RepoError, RewriteOutcome,
    SnapshotInfo, SnapshotMeta, SnapshotReader, WalkEntry,
};
pub use source::{Entry, EntryKind, ItemReader};
