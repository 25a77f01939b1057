//! What a restore tells its caller: an outcome per item as it happens (`Progress`), and a
//! report at the end.

use serde::Serialize;

/// What happened to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Done {
    /// Created at the target.
    Created,
    /// A different item was in the way and was replaced.
    Overwritten,
    /// A different item was in the way; the restored one was put beside it.
    KeptBoth,
    /// Left alone (already there, or in the way under `--collision skip`).
    Skipped,
    Failed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The item's path in the restore point.
    pub path: String,
    /// `message`, `event`, `contact`, `file`, `listItem`.
    pub kind: String,
    pub done: Done,
    /// Why it was skipped or failed; where it went otherwise.
    pub detail: String,
    /// Bytes sent to Graph for it.
    pub bytes: u64,
}

/// An item a restore would restore (`--dry-run`): nothing is asked of Graph, so whether
/// it already exists at the target is not known yet.
#[derive(Clone, Debug, Serialize)]
pub struct Planned {
    pub path: String,
    pub kind: String,
    pub size: u64,
    /// Where it would go (`mail folder Restored 2026-01-31/Inbox`, `OneDrive /Docs/a.txt`).
    pub destination: String,
}

/// Progress of a restore; calls come from many tasks at once. Libraries never print: the
/// CLI renders this on stderr, a server would export it as metrics.
pub trait Progress: Send + Sync {
    /// The restore point is known and the walk begins.
    fn started(&self, _resource: &str, _seq: i64) {}
    /// One item is done (restored, skipped or failed).
    fn item(&self, _outcome: &Outcome) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// At most this many skipped or failed items are listed in a report (all are counted, and
/// all are reported through `Progress::item`): memory stays flat on a rerun of a huge
/// mailbox where everything is skipped.
pub const MAX_LISTED: usize = 1000;

/// The result of a restore.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub resource: String,
    /// Restore point number and snapshot id.
    pub point: i64,
    pub snapshot: String,
    /// Where to (`original`, `folder:…`, `user:…`).
    pub target: String,
    /// Items created, overwritten or kept beside an existing one.
    pub restored: u64,
    pub overwritten: u64,
    pub kept_both: u64,
    pub restored_bytes: u64,
    pub skipped_total: u64,
    pub failed_total: u64,
    /// Skipped items with the reason (the first `MAX_LISTED`).
    pub skipped: Vec<Outcome>,
    /// Failed items with the reason (the first `MAX_LISTED`).
    pub failed: Vec<Outcome>,
    /// What the restore did differently from what was asked, and why (a Teams channel
    /// restored into a new channel because beta calls are not allowed…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Graph requests sent.
    pub requests: u64,
    pub seconds: f64,
}

impl RestoreReport {
    pub(crate) fn record(&mut self, o: Outcome) {
        match o.done {
            Done::Created | Done::Overwritten | Done::KeptBoth => {
                self.restored += 1;
                self.restored_bytes += o.bytes;
                match o.done {
                    Done::Overwritten => self.overwritten += 1,
                    Done::KeptBoth => self.kept_both += 1,
                    _ => {}
                }
            }
            Done::Skipped => {
                self.skipped_total += 1;
                if self.skipped.len() < MAX_LISTED {
                    self.skipped.push(o);
                }
            }
            Done::Failed => {
                self.failed_total += 1;
                if self.failed.len() < MAX_LISTED {
                    self.failed.push(o);
                }
            }
        }
    }

    /// Whether every selected item is at the target now.
    pub fn ok(&self) -> bool {
        self.failed_total == 0
    }
}
