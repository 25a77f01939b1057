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

pub mod ics;
pub mod mbox;
pub mod names;
pub mod pst;
pub mod teams;
mod text;
pub mod vcf;

use std::io;

/// Why an export stopped. Item-level problems do not stop an export: they are collected in
/// the [`ExportReport`].
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The destination refused the bytes (disk full, closed pipe...).
    #[error(
        "writing the {format} export failed\nhint: check that the destination is writable and has free space"
    )]
    Write {
        format: &'static str,
        #[source]
        source: io::Error,
    },
}

impl FormatError {
    pub(crate) fn write(format: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::Write { format, source }
    }
}

/// What an export of many items did: how many it wrote, and which it skipped or degraded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Items written to the output.
    pub written: usize,
    /// Items left out or written incompletely, in input order.
    pub problems: Vec<ItemProblem>,
}

/// One item an export could not write as it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemProblem {
    /// Position of the item in the input, from 0.
    pub index: usize,
    /// The item's Graph id, when it has one.
    pub id: Option<String>,
    /// `true` if the item is missing from the output, `false` if it was written without
    /// the part named in `reason`.
    pub skipped: bool,
    pub reason: String,
}

impl ExportReport {
    pub(crate) fn skip(&mut self, index: usize, item: &serde_json::Value, reason: String) {
        self.problems.push(ItemProblem {
            index,
            id: item_id(item),
            skipped: true,
            reason,
        });
    }

    pub(crate) fn degrade(&mut self, index: usize, item: &serde_json::Value, reason: String) {
        self.problems.push(ItemProblem {
            index,
            id: item_id(item),
            skipped: false,
            reason,
        });
    }
}

fn item_id(item: &serde_json::Value) -> Option<String> {
    item.get("id").and_then(|v| v.as_str()).map(str::to_string)
}
