//! `cairn-restore`: items of a restore point back into Microsoft 365, through Graph.
//!
//! A restore reads what a restore point holds from the catalog (in repository order, one
//! row at a time through a bounded channel), reads content from the repository when Graph
//! needs it (a message's MIME, a file), and recreates each item at the target: the
//! original mailbox and drive, a folder beside the originals, or another user. Whether the
//! other end is Microsoft or the simulator is only a matter of the `GraphClient`'s URL.
//!
//! Restores are idempotent: before creating an item the target is searched for it (mail by
//! `internetMessageId`, files by path, events, contacts and list items by their original
//! id and by a fingerprint of their content), so a rerun skips what is already there. What
//! happens when a *different* item is in the way is the caller's collision policy.
//! Teams messages go back through Graph's migration mode, one conversation at a time
//! (`teams`). docs/restore.md describes the behaviour and the assumptions made about Graph.

mod archive;
mod error;
mod extras;
mod files;
mod mail;
mod names;
mod pim;
mod report;
mod run;
mod select;
mod teams;

pub use error::RestoreError;
pub use report::{Done, Outcome, Planned, Progress, RestoreReport, Silent};
pub use run::{RestoreOptions, Restorer};
pub use select::{Collision, PointSel, RestoreTarget, Selection};
