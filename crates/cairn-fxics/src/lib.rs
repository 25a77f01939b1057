//! Reader for full-fidelity Exchange items as Microsoft Graph's mailbox export API hands them
//! out, written from the open specifications [MS-OXCFXICS] (FastTransfer stream syntax,
//! section 2.2.4), [MS-OXCDATA] (property types, section 2.11.1) and [MS-OXPROPS] (property
//! identifiers and names).
//!
//! `POST /admin/exchange/mailboxes/{id}/exportItems` returns, per item, a base64 `data` field.
//! Decoded, it is a FastTransfer stream. This crate turns those bytes into an [`Item`]: the
//! message's properties, its recipients and its attachments (with embedded messages,
//! recursively), each property kept with its tag, its name when it is a named property, and
//! its typed [`Value`]. On top of that sit typed accessors by MS-OXPROPS name
//! ([`Item::subject`], [`Item::recipients`], [`Item::categories`]...) and [`to_mime`], an
//! RFC 5322 rendering for EML/MBOX export and for search when no MIME copy exists.
//!
//! # Framing assumption
//!
//! The `data` of one exported item is taken to be the FastTransfer stream that a
//! `RopFastTransferSourceCopyTo` on a Message object produces, i.e. the `messageContent`
//! production of MS-OXCFXICS section 2.2.4.3:
//!
//! ```text
//! messageContent   = propList messageChildren
//! messageChildren  = *recipient *attachment            (each list optionally preceded by
//!                                                        a MetaTagFXDelProp meta-property)
//! recipient        = StartRecip propList EndToRecip
//! attachment       = NewAttach propList [embeddedMessage] EndAttach
//! embeddedMessage  = StartEmbed messageContent EndEmbed
//! ```
//!
//! The parser is lenient where leniency costs nothing:
//!
//! * a stream wrapped in `StartMessage`/`EndMessage` (or `StartFAIMsg`/`EndMessage`), i.e. the
//!   `message` production, is accepted as well;
//! * meta-properties (`MetaTagFXDelProp`, `MetaTagEcWarning`, `MetaTagNewFXFolder`,
//!   `MetaTagDnPrefix`, `MetaTagIdsetGiven`, the ICS state properties...) are parsed and
//!   dropped; [`lex`] still shows them;
//! * markers that have no place in a message (`IncrSyncChg`, `IncrSyncMessage`,
//!   `FXErrorInfo`...) are skipped;
//! * properties may come after recipients or attachments;
//! * unknown property *identifiers* are kept as they are.
//!
//! What is not tolerated, because the rest of the stream cannot be read past it: an unknown
//! property *type*, truncated data, and markers that break the nesting (an `EndEmbed` with no
//! `StartEmbed`, an attachment that never ends...). Those are [`Error`]s naming the byte offset
//! and, where there is one, the property tag. No input makes the parser panic, and nesting is
//! bounded ([`MAX_DEPTH`]), so hostile input cannot exhaust the stack.
//!
//! # Serialization details relied upon
//!
//! * All integers are little-endian. A property tag is 4 bytes, type in the low 16 bits.
//! * Fixed-size values: Int16 2, Int32 4, Float 4, Double 8, Currency 8, FloatingTime 8,
//!   ErrorCode 4, **Boolean 2** (a FastTransfer stream writes PtypBoolean as a 16-bit value,
//!   as the Open Specifications team's worked example of a FastTransfer stream shows), Int64 8,
//!   Time 8 (FILETIME), Guid 16.
//! * Variable-size values (String, String8, ServerId, Restriction, RuleAction, Binary, Object,
//!   code page strings) are a 4-byte byte count then the bytes; strings include their
//!   terminating NUL, which is removed here.
//! * Multi-valued values are a 4-byte count, then the fixed-size values, or for variable-size
//!   element types, each value as a 4-byte byte count then the bytes.
//! * A property identifier of 0x8000 or more is followed, before the value, by the named
//!   property's identity: the property set GUID, then `0x00` and a 4-byte dispid, or `0x01`
//!   and a NUL-terminated UTF-16LE name.
//! * A property type with bit 0x8000 set is a string in the code page given by the low 15 bits
//!   (MS-OXCFXICS 2.2.4.1.1.1: 0x84B0 is Unicode, code page 1200).
//! * `MetaTagIdsetGiven` (0x40170003) is typed PtypInteger32 but its data is PtypBinary
//!   (MS-OXCFXICS 3.2.5.2.1); it is read as such.
//!
//! [MS-OXCFXICS]: https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxcfxics/
//! [MS-OXCDATA]: https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxcdata/
//! [MS-OXPROPS]: https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-oxprops/

mod item;
mod mime;
mod parse;
pub mod tags;
mod text;
mod value;

pub use item::{
    AttachMethod, AttachmentItem, Importance, Item, Mailbox, Properties, Recipient, RecipientKind,
};
pub use mime::{KEEPS_AND_LOSES, to_mime};
pub use parse::{Element, MAX_DEPTH, Marker, lex, parse_message};
pub use value::{Guid, NameKind, NamedProperty, Property, Value};

use std::fmt;

/// Why a stream could not be read. Every variant names the byte offset (from the start of
/// the stream) where reading failed and, when a property was being read, its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The stream ends inside an element: `needed` more bytes were wanted at `offset`, only
    /// `available` were left.
    Truncated {
        offset: usize,
        tag: Option<u32>,
        needed: usize,
        available: usize,
    },
    /// A property type that no specification lists (the rest of the stream cannot be read:
    /// the size of the value is unknown).
    UnknownType { offset: usize, tag: u32 },
    /// A value that is there but cannot be what its type says (a named property's kind byte
    /// other than 0 or 1, for instance).
    Malformed {
        offset: usize,
        tag: u32,
        reason: &'static str,
    },
    /// A marker where the grammar does not allow it (an `EndEmbed` outside an embedded
    /// message, a second `StartEmbed` in one attachment...).
    UnexpectedMarker {
        offset: usize,
        tag: u32,
        expected: &'static str,
    },
    /// An element opened at `offset` whose closing marker never comes.
    Unterminated {
        offset: usize,
        expected: &'static str,
    },
    /// Embedded messages nested deeper than [`MAX_DEPTH`].
    TooDeep { offset: usize },
}

impl Error {
    /// The byte offset the error is about.
    pub fn offset(&self) -> usize {
        match self {
            Error::Truncated { offset, .. }
            | Error::UnknownType { offset, .. }
            | Error::Malformed { offset, .. }
            | Error::UnexpectedMarker { offset, .. }
            | Error::Unterminated { offset, .. }
            | Error::TooDeep { offset } => *offset,
        }
    }

    /// The property tag (or marker) the error is about, when there is one.
    pub fn tag(&self) -> Option<u32> {
        match self {
            Error::Truncated { tag, .. } => *tag,
            Error::UnknownType { tag, .. }
            | Error::Malformed { tag, .. }
            | Error::UnexpectedMarker { tag, .. } => Some(*tag),
            Error::Unterminated { .. } | Error::TooDeep { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated {
                offset,
                tag,
                needed,
                available,
            } => {
                write!(f, "truncated FastTransfer stream at byte offset {offset}")?;
                if let Some(tag) = tag {
                    write!(f, " (reading property 0x{tag:08X})")?;
                }
                write!(f, ": {needed} bytes needed, {available} left")
            }
            Error::UnknownType { offset, tag } => write!(
                f,
                "unknown property type 0x{:04X} in tag 0x{tag:08X} at byte offset {offset}",
                tag & 0xFFFF
            ),
            Error::Malformed {
                offset,
                tag,
                reason,
            } => write!(
                f,
                "malformed property 0x{tag:08X} at byte offset {offset}: {reason}"
            ),
            Error::UnexpectedMarker {
                offset,
                tag,
                expected,
            } => {
                let name = Marker::from_tag(*tag).map_or("marker", Marker::name);
                write!(
                    f,
                    "unexpected {name} (0x{tag:08X}) at byte offset {offset}; expected {expected}"
                )
            }
            Error::Unterminated { offset, expected } => write!(
                f,
                "element opened at byte offset {offset} is never closed: the stream ends before {expected}"
            ),
            Error::TooDeep { offset } => write!(
                f,
                "embedded messages nested deeper than {MAX_DEPTH} at byte offset {offset}"
            ),
        }
    }
}

impl std::error::Error for Error {}
