//! Writes Outlook Personal Folders files (`.pst`, Unicode format) from the
//! open specification [MS-PST].
//!
//! Items are fed one at a time; each item's blocks go to the output as soon
//! as it arrives. Only small index entries (B-tree entries and one
//! contents-table row per item) stay in memory until [`PstWriter::finish`]
//! writes the folder tables, the two B-trees, the allocation maps and the
//! header. See `docs/decisions/0009-pst-writer.md`.
//!
//! [MS-PST]: https://learn.microsoft.com/en-us/openspecs/office_file_formats/ms-pst/

mod crc;
mod ltp;
mod messaging;
mod ndb;

pub use messaging::{
    Appointment, Attachment, Contact, FolderId, FolderKind, Message, PstWriter, Recipient,
    RecipientKind, Stats,
};

/// Errors from writing a PST.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error writing the PST: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown folder {0:#x}")]
    UnknownFolder(u32),
    #[error("item too large for the PST format: {0}")]
    TooLarge(&'static str),
    #[error("internal PST writer error: {0}")]
    Internal(String),
}

#[cfg(test)]
mod tests;
