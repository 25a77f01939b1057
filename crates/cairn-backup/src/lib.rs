//! `cairn-backup`: the backup engine, turning Microsoft 365 resources into restore points.
//!
//! A run backs up each protected resource (a user: mail, calendars, contacts, OneDrive; a
//! site: document libraries and lists; a group: its drive, conversations and Teams channels)
//! into one restore point. Graph's
//! delta queries say what changed since the last run; the changes are *staged* in the
//! catalog (content of new mail spooled to disk), the restore point is archived from the
//! catalog's sorted view, and only then are the changes and delta links committed. The
//! layout and its reasons: docs/decisions/0004-backup-engine-layout.md.

mod archive;
mod conversations;
mod engine;
mod error;
mod files;
mod inplace;
mod mail;
mod mailbox_extras;
mod pim;
mod poll;
mod rebuild;
mod report;
mod scope;
mod spool;
mod teams;

pub use cairn_catalog::sort_key;
pub use engine::{BackupOptions, Directory, Engine, Service, Target, TargetKind};
pub use error::{BackupError, is_transient};
pub use rebuild::{REBUILT_ID, RebuildProgress, RebuildReport, RebuiltResource, rebuild};
pub use report::{Finding, JobReport, Progress, ResourceReport, Silent, Skipped};
