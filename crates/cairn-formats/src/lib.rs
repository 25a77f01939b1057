//! Backed-up Microsoft 365 items in the formats other programs read: mail folders as mboxrd,
//! calendars as iCalendar (RFC 5545), contacts as vCard 3.0, and file names any file system
//! accepts.
//!
//! A backup is only as useful as the ways out of it. Restoring into a tenant needs Graph, but
//! a customer leaving Microsoft 365, an auditor or a court wants files that Thunderbird,
//! Apple Calendar or a spreadsheet open without Cairn. This crate is that way out, and it is
//! deliberately offline: pure functions and writers over bytes and Graph's JSON, with no
//! knowledge of Graph's transport or of the repository, so it can be tested (and fuzzed)
//! without a tenant and reused by the CLI, the server and the restore engine alike.
//!
//! Writers stream: an mbox is written line by line from a reader, calendars and address books
//! from an iterator of items, so memory stays flat whatever the folder size. Bad items are
//! normal input: an item that cannot be exported is left out and listed in the
//! [`ExportReport`] with the reason, and the rest of the export goes on.

pub mod mbox;
pub mod names;
