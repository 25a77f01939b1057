//! Plans of generated messages: everything MIME rendering and the Graph JSON of a message
//! need, decided once from the seed so both views of a message agree.

use chrono::{DateTime, Utc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub name: String,
    pub email: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttKind {
    /// `#microsoft.graph.fileAttachment`: a MIME part with the file's bytes.
    File,
    /// `#microsoft.graph.itemAttachment`: an attached message (`message/rfc822` part).
    Item,
    /// `#microsoft.graph.referenceAttachment`: a cloud link; Graph-only, not in the MIME.
    Reference,
}

#[derive(Clone, Debug)]
pub struct AttPlan {
    pub name: String,
    pub content_type: String,
    /// Size of the decoded attachment bytes.
    pub size: u64,
    pub inline: bool,
    /// Content-ID (without angle brackets) for inline parts.
    pub content_id: Option<String>,
    /// Seed of the attachment's bytes (see `mime::attachment_bytes`).
    pub seed: u64,
    pub kind: AttKind,
}

/// The ways real mailboxes hold messages that do not follow the RFCs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    None,
    /// No `Date:` header.
    MissingDate,
    /// A multipart body whose closing boundary never comes.
    UnterminatedMultipart,
    /// Raw 8-bit (Latin-1) bytes in the Subject header, not RFC 2047 encoded.
    RawEightBitHeader,
    /// A charset label nobody knows (`charset="x-unknown-42"`).
    BadCharset,
}

#[derive(Clone, Debug)]
pub struct MessagePlan {
    /// `Message-ID` with angle brackets.
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub subject: String,
    pub from: Addr,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    pub sent: DateTime<Utc>,
    pub received: DateTime<Utc>,
    /// Plain text of the body; rendered as text/plain, and as HTML too when `html`.
    pub body_text: String,
    pub html: bool,
    pub attachments: Vec<AttPlan>,
    pub malformed: Malformed,
    pub importance: &'static str,
    /// Seed for any filler the renderer needs (deterministic output).
    pub seed: u64,
}
