//! Rendering of message plans as RFC 5322 / MIME bytes.
//!
//! Graph serves a message twice: as JSON and as MIME (`/messages/{id}/$value`). Both views are
//! derived from the same [`MessagePlan`], and the MIME has to be byte-for-byte reproducible so
//! that a backup taken twice, or a restore compared with its source, can be checked exactly.
//! Nothing here reads a clock or a random generator: every byte is a function of the plan.
//!
//! Boundaries all contain `=_`, which can never occur in the content: quoted-printable writes
//! `=` only as `=XX` or a soft line break, base64 has no `_`, and the only other content, the
//! nested message of an item attachment, is generated here with every `=` encoded away.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};

use crate::plan::{Addr, AttKind, AttPlan, Malformed, MessagePlan};
use crate::seeded::{blob_range, hash, mix, pick};

/// Folding column for header lines (RFC 5322 section 2.1.1 "SHOULD").
const FOLD: usize = 78;
/// Longest RFC 2047 encoded word.
const MAX_ENCODED_WORD: usize = 75;
/// `=?UTF-8?B?` plus `?=`.
const ENCODED_WORD_OVERHEAD: usize = 12;
/// Bytes per base64 line: 57 bytes make 76 characters.
const BASE64_LINE_BYTES: usize = 57;
/// Longest quoted-printable line, soft line break included (RFC 2045 section 6.7).
const QP_LINE: usize = 76;

// Tags of the hash paths, so that no two derived values share one.
const TAG_BOUNDARY: u64 = 0xB0;
const TAG_RECEIVED: u64 = 0xB1;
const TAG_LANGUAGE: u64 = 0xB2;
const TAG_NESTED: u64 = 0xB3;

/// The decoded bytes of a file attachment: `att.size` bytes, deterministic from `att.seed`.
pub fn attachment_bytes(att: &AttPlan) -> Vec<u8> {
    attachment_range(att, 0, att.size)
}

/// Bytes `[from, to)` of [`attachment_bytes`], without generating the rest (for `Range`
/// requests on large attachments).
///
/// The file starts with the magic number of its content type, so that tools sniffing the
/// bytes see what the name promises; the remainder is the seeded blob at the same offsets.
pub fn attachment_range(att: &AttPlan, from: u64, to: u64) -> Vec<u8> {
    let to = to.min(att.size);
    if from >= to {
        return Vec::new();
    }
    let magic = magic(&att.content_type);
    let magic_len = (magic.len() as u64).min(att.size);
    let mut out = Vec::with_capacity((to - from) as usize);
    if from < magic_len {
        out.extend_from_slice(&magic[from as usize..to.min(magic_len) as usize]);
    }
    let rest_from = from.max(magic_len);
    if rest_from < to {
        out.extend_from_slice(&blob_range(att.seed, att.size, rest_from, to));
    }
    out
}

/// The first bytes of a file of the given content type, or nothing when we do not know it.
fn magic(content_type: &str) -> &'static [u8] {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    match essence.as_str() {
        "image/png" => b"\x89PNG\r\n\x1a\n",
        "image/jpeg" | "image/jpg" | "image/pjpeg" => b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01",
        "image/gif" => b"GIF89a",
        "application/pdf" => b"%PDF-1.7\n",
        "text/calendar" => b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Cairn//Simulator//EN\r\n",
        "application/zip" | "application/x-zip-compressed" => b"PK\x03\x04",
        t if t.starts_with("application/vnd.openxmlformats-officedocument.") => b"PK\x03\x04",
        _ => b"",
    }
}

/// The complete RFC 5322 message of a plan, CRLF line endings, identical for identical plans.
pub fn render(plan: &MessagePlan) -> Vec<u8> {
    let tree = Node::of(plan);
    let mut out = Vec::with_capacity(estimate(plan));
    write_message_headers(&mut out, plan);
    write_headers(&mut out, plan, &tree);
    out.extend_from_slice(b"MIME-Version: 1.0\r\n\r\n");
    let close = plan.malformed != Malformed::UnterminatedMultipart;
    write_body(&mut out, plan, &tree, close);
    out
}

/// A generous guess of the rendered size, so that the output is allocated once.
fn estimate(plan: &MessagePlan) -> usize {
    // Quoted-printable of mostly-ASCII text grows little; HTML adds tags.
    let text = plan.body_text.len() * 5 / 4 + 256;
    let body = if plan.html { text * 2 + 512 } else { text };
    let attachments: usize = plan
        .attachments
        .iter()
        .map(|att| match att.kind {
            // Base64 is 4/3, plus a CRLF per 76 characters, plus the part headers.
            AttKind::File => (att.size as usize).div_ceil(BASE64_LINE_BYTES) * 78 + 768,
            AttKind::Item => 2048,
            AttKind::Reference => 0,
        })
        .sum();
    4096 + body + attachments
}

/// The MIME structure of a message.
enum Node<'a> {
    /// The body text as `text/plain`.
    Text,
    /// The body text as `text/html`, with `cid:` references to the inline images.
    Html(Vec<&'a AttPlan>),
    /// A file attachment, `inline` or `attachment` disposition.
    File(&'a AttPlan),
    /// An item attachment: a nested `message/rfc822`.
    Item(&'a AttPlan),
    Multi {
        subtype: &'static str,
        boundary: String,
        children: Vec<Node<'a>>,
    },
}

impl<'a> Node<'a> {
    fn of(plan: &'a MessagePlan) -> Node<'a> {
        let related: Vec<&AttPlan> = if plan.html {
            plan.attachments
                .iter()
                .filter(|att| att.kind == AttKind::File && att.inline && att.content_id.is_some())
                .collect()
        } else {
            Vec::new()
        };
        let mixed: Vec<&AttPlan> = plan
            .attachments
            .iter()
            .filter(|att| att.kind != AttKind::Reference)
            .filter(|att| !related.iter().any(|r| std::ptr::eq(*r, *att)))
            .collect();
        let unterminated = plan.malformed == Malformed::UnterminatedMultipart;

        // Boundaries are numbered from the outside in.
        let mut count = 0;
        let mut next_boundary = || {
            count += 1;
            boundary(plan.seed, count - 1)
        };
        let mixed_boundary =
            (!mixed.is_empty() || (unterminated && !plan.html)).then(&mut next_boundary);
        let alternative_boundary = plan.html.then(&mut next_boundary);
        let related_boundary = (!related.is_empty()).then(&mut next_boundary);

        let mut body = Node::Text;
        if let Some(alternative) = alternative_boundary {
            let html = match related_boundary {
                Some(boundary) => {
                    let mut children = vec![Node::Html(related.clone())];
                    children.extend(related.iter().map(|att| Node::File(att)));
                    Node::Multi {
                        subtype: "related",
                        boundary,
                        children,
                    }
                }
                None => Node::Html(Vec::new()),
            };
            body = Node::Multi {
                subtype: "alternative",
                boundary: alternative,
                children: vec![Node::Text, html],
            };
        }
        match mixed_boundary {
            Some(boundary) => {
                let mut children = vec![body];
                children.extend(mixed.into_iter().map(|att| match att.kind {
                    AttKind::Item => Node::Item(att),
                    _ => Node::File(att),
                }));
                Node::Multi {
                    subtype: "mixed",
                    boundary,
                    children,
                }
            }
            None => body,
        }
    }
}

/// The `n`th boundary of a message. All have the same length, so none is a prefix of another.
fn boundary(seed: u64, n: u64) -> String {
    format!("_{n:03}_{:016X}_=_cairn", hash(seed, &[TAG_BOUNDARY, n]))
}

/// One header field being written, folded at whitespace to stay within 78 columns.
struct Header<'o> {
    out: &'o mut Vec<u8>,
    col: usize,
    /// Whether a word is on the current line already (never fold before the first one).
    words_on_line: bool,
}

impl<'o> Header<'o> {
    fn start(out: &'o mut Vec<u8>, name: &str) -> Header<'o> {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        Header {
            out,
            col: name.len() + 1,
            words_on_line: false,
        }
    }

    /// A word after one space, on a new line when it would not fit on this one.
    fn word(&mut self, word: &[u8]) {
        if self.words_on_line && self.col + 1 + word.len() > FOLD {
            self.fold();
        }
        self.out.push(b' ');
        self.col += 1;
        self.glue(word);
    }

    /// Bytes right after the previous ones, no space and no fold.
    fn glue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        self.col += bytes.len();
        self.words_on_line = true;
    }

    /// A line break; the next word's space starts the continuation line.
    fn fold(&mut self) {
        self.out.extend_from_slice(b"\r\n");
        self.col = 0;
        self.words_on_line = false;
    }

    /// Text of which every space may become a fold: folding keeps the space, so unfolding
    /// gives the text back exactly, runs of spaces included.
    fn words(&mut self, text: &[u8]) {
        let mut pending_spaces = 0;
        let mut first = true;
        let mut word = Vec::new();
        for piece in text.split(|&b| b == b' ') {
            if first {
                first = false;
                if !piece.is_empty() {
                    self.word(piece);
                }
                continue;
            }
            if piece.is_empty() {
                pending_spaces += 1;
                continue;
            }
            word.clear();
            word.resize(pending_spaces, b' ');
            word.extend_from_slice(piece);
            pending_spaces = 0;
            self.word(&word);
        }
        if pending_spaces > 0 {
            self.glue(&vec![b' '; pending_spaces]);
        }
    }

    /// Text as RFC 2047 `B` encoded words, each at most 75 characters and cut between
    /// characters, sized to fill the current line.
    fn encoded_words(&mut self, text: &str) {
        let mut rest = text;
        let mut word = Vec::with_capacity(MAX_ENCODED_WORD);
        while !rest.is_empty() {
            let mut room = FOLD.saturating_sub(self.col + 1);
            // Below 24 columns a word cannot hold a 4-byte character: start a new line.
            if room < 24 && self.words_on_line {
                self.fold();
                room = FOLD - 1;
            }
            let max_bytes = (room
                .min(MAX_ENCODED_WORD)
                .saturating_sub(ENCODED_WORD_OVERHEAD))
                / 4
                * 3;
            let mut cut = 0;
            for (i, c) in rest.char_indices() {
                let end = i + c.len_utf8();
                if end > max_bytes && cut > 0 {
                    break;
                }
                cut = end;
            }
            let (chunk, tail) = rest.split_at(cut);
            rest = tail;
            word.clear();
            word.extend_from_slice(b"=?UTF-8?B?");
            push_base64(&mut word, chunk.as_bytes());
            word.extend_from_slice(b"?=");
            self.word(&word);
        }
    }

    /// Unstructured text (`Subject`): as is when plain ASCII, else encoded words.
    fn text(&mut self, text: &str) {
        if needs_encoding(text) {
            self.encoded_words(text);
        } else {
            self.words(text.as_bytes());
        }
    }

    /// A display name: atoms, a quoted string, or encoded words.
    fn phrase(&mut self, name: &str) {
        if needs_encoding(name) {
            self.encoded_words(name);
        } else if name.bytes().any(|b| b"()<>[]:;@\\,.\"".contains(&b)) {
            let mut quoted = Vec::with_capacity(name.len() + 4);
            quoted.push(b'"');
            for b in name.bytes() {
                if b == b'"' || b == b'\\' {
                    quoted.push(b'\\');
                }
                quoted.push(b);
            }
            quoted.push(b'"');
            self.word(&quoted);
        } else {
            self.words(name.as_bytes());
        }
    }

    fn address(&mut self, addr: &Addr) {
        if addr.name.trim().is_empty() {
            self.word(addr.email.as_bytes());
        } else {
            self.phrase(&addr.name);
            self.word(format!("<{}>", addr.email).as_bytes());
        }
    }

    fn addresses(&mut self, addrs: &[Addr]) {
        for (i, addr) in addrs.iter().enumerate() {
            if i > 0 {
                self.glue(b",");
            }
            self.address(addr);
        }
    }

    /// `; name=value` where the value is known to be a token or already quoted.
    fn raw_param(&mut self, name: &str, value: &str) {
        self.glue(b";");
        self.word(format!("{name}={value}").as_bytes());
    }

    /// `; name="value"`, or RFC 2231 `name*=UTF-8''...` (split in `name*N*` continuations
    /// when long) for values that cannot be quoted.
    fn param(&mut self, name: &str, value: &str) {
        const SEGMENT: usize = 60;
        let quotable = value
            .bytes()
            .all(|b| (0x20..0x7F).contains(&b) && !b"\"\\=".contains(&b));
        self.glue(b";");
        if quotable && value.len() <= SEGMENT {
            self.word(format!("{name}=\"{value}\"").as_bytes());
            return;
        }
        // Segments cut between characters, so each one decodes on its own.
        let mut segments: Vec<String> = vec![String::new()];
        let mut utf8 = [0u8; 4];
        for c in value.chars() {
            let piece = if quotable {
                c.encode_utf8(&mut utf8).to_owned()
            } else {
                percent_encode(c.encode_utf8(&mut utf8).as_bytes())
            };
            let last = segments.last_mut().expect("one segment at least");
            if !last.is_empty() && last.len() + piece.len() > SEGMENT {
                segments.push(piece);
            } else {
                last.push_str(&piece);
            }
        }
        let single = segments.len() == 1;
        for (i, segment) in segments.iter().enumerate() {
            if i > 0 {
                self.glue(b";");
            }
            let word = match (quotable, single, i) {
                (true, _, _) => format!("{name}*{i}=\"{segment}\""),
                (false, true, _) => format!("{name}*=UTF-8''{segment}"),
                (false, false, 0) => format!("{name}*0*=UTF-8''{segment}"),
                (false, false, _) => format!("{name}*{i}*={segment}"),
            };
            self.word(word.as_bytes());
        }
    }

    fn end(self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Whether text must become encoded words: non-ASCII, control characters, anything that could
/// read as an encoded word or a boundary, or a word too long to fold.
fn needs_encoding(text: &str) -> bool {
    text.bytes()
        .any(|b| !(0x20..0x7F).contains(&b) || b == b'=')
        || text.split(' ').any(|w| w.len() > MAX_ENCODED_WORD)
}

/// RFC 2231 percent-encoding: everything but `attribute-char`.
fn percent_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xF) as usize] as char);
        }
    }
    out
}

fn simple(out: &mut Vec<u8>, name: &str, value: &str) {
    let mut h = Header::start(out, name);
    h.word(value.as_bytes());
    h.end();
}

fn date(out: &mut Vec<u8>, name: &str, at: DateTime<Utc>) {
    let mut h = Header::start(out, name);
    h.word(at.to_rfc2822().as_bytes());
    h.end();
}

fn write_message_headers(out: &mut Vec<u8>, plan: &MessagePlan) {
    write_received(out, plan);

    let mut h = Header::start(out, "From");
    h.address(&plan.from);
    h.end();
    if !plan.to.is_empty() {
        let mut h = Header::start(out, "To");
        h.addresses(&plan.to);
        h.end();
    }
    if !plan.cc.is_empty() {
        let mut h = Header::start(out, "Cc");
        h.addresses(&plan.cc);
        h.end();
    }

    let mut h = Header::start(out, "Subject");
    if plan.malformed == Malformed::RawEightBitHeader {
        // What old clients did: the subject in their own charset, unlabelled.
        let latin1: Vec<u8> = plan
            .subject
            .chars()
            .map(|c| match c {
                '\r' | '\n' | '\0' => b' ',
                c if (c as u32) <= 0xFF => c as u32 as u8,
                _ => b'?',
            })
            .collect();
        h.words(&latin1);
    } else {
        h.text(&plan.subject);
    }
    h.end();
    let mut h = Header::start(out, "Thread-Topic");
    h.text(thread_topic(&plan.subject));
    h.end();

    if plan.malformed != Malformed::MissingDate {
        date(out, "Date", plan.sent);
    }
    simple(out, "Message-ID", &plan.message_id);
    if let Some(parent) = &plan.in_reply_to {
        simple(out, "In-Reply-To", parent);
    }
    if !plan.references.is_empty() {
        let mut h = Header::start(out, "References");
        for id in &plan.references {
            h.word(id.as_bytes());
        }
        h.end();
    }
    if plan.importance != "normal" {
        simple(out, "Importance", plan.importance);
        let priority = match plan.importance {
            "high" => "1",
            "low" => "5",
            _ => "3",
        };
        simple(out, "X-Priority", priority);
    }
    const LANGUAGES: &[&str] = &[
        "en-US", "en-US", "en-US", "en-GB", "de-DE", "fr-FR", "ja-JP",
    ];
    simple(
        out,
        "Content-Language",
        pick(hash(plan.seed, &[TAG_LANGUAGE]), LANGUAGES),
    );
    if plan
        .attachments
        .iter()
        .any(|a| a.kind != AttKind::Reference)
    {
        simple(out, "X-MS-Has-Attach", "yes");
    }
}

/// Two Exchange Online hops: the submitting mailbox server, then the receiving one.
fn write_received(out: &mut Vec<u8>, plan: &MessagePlan) {
    const PREFIXES: &[&str] = &["DB9PR", "AM0PR", "VI1PR", "PAXPR", "AS8PR", "DU0PR"];
    let h = hash(plan.seed, &[TAG_RECEIVED]);
    let host = |n: u64| {
        let x = hash(h, &[n]);
        let region = x % 10;
        format!(
            "{}{region:02}MB{:04}.eurprd{region:02}.prod.outlook.com",
            pick(x >> 8, PREFIXES),
            (x >> 20) % 10_000
        )
    };
    let ip = |n: u64| {
        let x = hash(h, &[n, 1]);
        format!(
            "2603:10a6:{:x}:{:x}::{:x}",
            (x >> 48) & 0xff,
            (x >> 32) & 0xffff,
            x & 0xfff
        )
    };
    let build = format!("15.20.{}.{:03}", 7000 + h % 900, (h >> 16) % 40);
    let hop_delay = TimeDelta::seconds(1 + (h >> 32) as i64 % 5);
    let submitted = (plan.received - hop_delay).max(plan.sent.min(plan.received));

    let mut r = Header::start(out, "Received");
    r.words(format!("from {} ({}) by {} ({})", host(1), ip(1), host(2), ip(2)).as_bytes());
    r.words(b"with Microsoft SMTP Server (version=TLS1_2,");
    r.words(b"cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id");
    r.word(format!("{build};").as_bytes());
    r.word(plan.received.to_rfc2822().as_bytes());
    r.end();
    let mut r = Header::start(out, "Received");
    r.words(
        format!(
            "from {} ({}) by {} ({}) with mapi id",
            host(0),
            ip(0),
            host(1),
            ip(1)
        )
        .as_bytes(),
    );
    r.word(format!("{build};").as_bytes());
    r.word(submitted.to_rfc2822().as_bytes());
    r.end();
}

/// The subject without its reply and forward prefixes, as Outlook puts in `Thread-Topic`.
fn thread_topic(subject: &str) -> &str {
    const PREFIXES: &[&str] = &["re:", "fw:", "fwd:", "aw:", "wg:", "tr:", "sv:"];
    let mut topic = subject.trim_start();
    'strip: loop {
        for prefix in PREFIXES {
            if let Some(head) = topic.get(..prefix.len())
                && head.eq_ignore_ascii_case(prefix)
            {
                topic = topic[prefix.len()..].trim_start();
                continue 'strip;
            }
        }
        return topic;
    }
}

/// The content headers of a node (not the blank line after them).
fn write_headers(out: &mut Vec<u8>, plan: &MessagePlan, node: &Node<'_>) {
    match node {
        Node::Text => {
            let charset = if plan.malformed == Malformed::BadCharset {
                "\"x-unknown-42\""
            } else {
                "\"utf-8\""
            };
            let mut h = Header::start(out, "Content-Type");
            h.word(b"text/plain");
            h.raw_param("charset", charset);
            h.end();
            simple(out, "Content-Transfer-Encoding", "quoted-printable");
        }
        Node::Html(_) => {
            let mut h = Header::start(out, "Content-Type");
            h.word(b"text/html");
            h.raw_param("charset", "\"utf-8\"");
            h.end();
            simple(out, "Content-Transfer-Encoding", "quoted-printable");
        }
        Node::File(att) => {
            let mut h = Header::start(out, "Content-Type");
            h.word(att.content_type.as_bytes());
            h.param("name", &att.name);
            h.end();
            let mut h = Header::start(out, "Content-Description");
            h.text(&att.name);
            h.end();
            write_disposition(out, plan, att);
            if let Some(cid) = &att.content_id {
                simple(out, "Content-ID", &format!("<{cid}>"));
            }
            simple(out, "Content-Transfer-Encoding", "base64");
        }
        Node::Item(att) => {
            simple(out, "Content-Type", "message/rfc822");
            write_disposition(out, plan, att);
        }
        Node::Multi {
            subtype, boundary, ..
        } => {
            let mut h = Header::start(out, "Content-Type");
            h.word(format!("multipart/{subtype}").as_bytes());
            h.raw_param("boundary", &format!("\"{boundary}\""));
            if *subtype == "related" {
                h.raw_param("type", "\"text/html\"");
            }
            h.end();
        }
    }
}

fn write_disposition(out: &mut Vec<u8>, plan: &MessagePlan, att: &AttPlan) {
    let disposition: &[u8] = if att.inline && att.kind == AttKind::File {
        b"inline"
    } else {
        b"attachment"
    };
    let mut h = Header::start(out, "Content-Disposition");
    h.word(disposition);
    h.param("filename", &att.name);
    if att.kind == AttKind::File {
        h.raw_param("size", &att.size.to_string());
    }
    let stamp = format!("\"{}\"", plan.sent.to_rfc2822());
    h.raw_param("creation-date", &stamp);
    h.raw_param("modification-date", &stamp);
    h.end();
}

/// The body of a node, ending with CRLF (which belongs to the next boundary delimiter).
fn write_body(out: &mut Vec<u8>, plan: &MessagePlan, node: &Node<'_>, close: bool) {
    match node {
        Node::Text => write_quoted_printable(out, plan.body_text.as_bytes()),
        Node::Html(inline) => write_quoted_printable(out, html(&plan.body_text, inline).as_bytes()),
        Node::File(att) => write_base64(out, &attachment_bytes(att)),
        Node::Item(att) => write_nested_message(out, plan, att),
        Node::Multi {
            boundary, children, ..
        } => {
            for child in children {
                out.extend_from_slice(b"--");
                out.extend_from_slice(boundary.as_bytes());
                out.extend_from_slice(b"\r\n");
                write_headers(out, plan, child);
                out.extend_from_slice(b"\r\n");
                write_body(out, plan, child, true);
            }
            if close {
                out.extend_from_slice(b"--");
                out.extend_from_slice(boundary.as_bytes());
                out.extend_from_slice(b"--\r\n");
            }
        }
    }
}

/// The body as HTML: one `<p>` per paragraph, then the inline images.
fn html(text: &str, inline: &[&AttPlan]) -> String {
    let mut html = String::with_capacity(text.len() + 256);
    html.push_str(
        "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n\
         </head>\n<body>\n",
    );
    let text = text.replace("\r\n", "\n");
    for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        html.push_str("<p>");
        for (i, line) in paragraph.trim_matches('\n').split('\n').enumerate() {
            if i > 0 {
                html.push_str("<br>\n");
            }
            escape_html(&mut html, line);
        }
        html.push_str("</p>\n");
    }
    for att in inline {
        if let Some(cid) = &att.content_id {
            html.push_str("<p><img src=\"cid:");
            escape_html(&mut html, cid);
            html.push_str("\" alt=\"");
            escape_html(&mut html, &att.name);
            html.push_str("\"></p>\n");
        }
    }
    html.push_str("</body>\n</html>\n");
    html
}

fn escape_html(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// Quoted-printable (RFC 2045 section 6.7) with CRLF hard line breaks for the text's own line
/// breaks, lines of at most 76 characters, and a CRLF after the last line.
fn write_quoted_printable(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            // Whitespace at the end of a line would be stripped in transit: encode it.
            let literal =
                (b == b' ' || b == b'\t') && !last || (b'!'..=b'~').contains(&b) && b != b'=';
            let width = if literal { 1 } else { 3 };
            // Keep a column for the `=` of a soft break unless this ends the line.
            let limit = if last { QP_LINE } else { QP_LINE - 1 };
            if col + width > limit {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]]);
            }
            col += width;
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Base64 in lines of 76 characters, each ending with CRLF; one empty line for no bytes, so
/// that a boundary never directly follows the blank line after the part headers.
fn write_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.is_empty() {
        out.extend_from_slice(b"\r\n");
        return;
    }
    out.reserve(bytes.len().div_ceil(BASE64_LINE_BYTES) * 78);
    for line in bytes.chunks(BASE64_LINE_BYTES) {
        push_base64(out, line);
        out.extend_from_slice(b"\r\n");
    }
}

fn push_base64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    out.resize(
        start + base64::encoded_len(bytes.len(), true).unwrap_or(0),
        0,
    );
    let written = BASE64
        .encode_slice(bytes, &mut out[start..])
        .expect("buffer sized by encoded_len");
    out.truncate(start + written);
}

/// The message inside an item attachment: a short plain-text message whose subject is the
/// attachment's name, sent by someone of the sender's organisation some days earlier.
fn write_nested_message(out: &mut Vec<u8>, plan: &MessagePlan, att: &AttPlan) {
    const NAMES: &[&str] = &[
        "Adele Vance",
        "Alex Wilber",
        "Diego Siciliani",
        "Grady Archie",
        "Isaiah Langer",
        "Johanna Lorenz",
        "Lee Gu",
        "Lidia Holloway",
        "Megan Bowen",
        "Nestor Wilke",
    ];
    const WORDS: &[&str] = &[
        "please", "find", "the", "updated", "figures", "for", "next", "quarter", "attached",
        "below", "let", "me", "know", "if", "anything", "is", "missing", "thanks", "meeting",
        "agenda", "budget", "review", "draft", "contract", "by", "Friday", "team",
    ];
    let h = hash(att.seed, &[TAG_NESTED]);
    let domain = plan
        .from
        .email
        .rsplit_once('@')
        .map_or("contoso.com", |(_, d)| d);
    let person = |x: u64| {
        let name = pick(x, NAMES);
        let email = format!("{}@{domain}", name.to_ascii_lowercase().replace(' ', "."));
        Addr {
            name: name.to_owned(),
            email,
        }
    };
    let from = person(h);
    let to = person(mix(h));
    let sent = plan.sent - TimeDelta::seconds(3600 + (mix(h ^ 1) % (30 * 86_400)) as i64);

    let mut header = Header::start(out, "From");
    header.address(&from);
    header.end();
    let mut header = Header::start(out, "To");
    header.address(&to);
    header.end();
    let mut header = Header::start(out, "Subject");
    header.text(&att.name);
    header.end();
    date(out, "Date", sent);
    simple(
        out,
        "Message-ID",
        &format!("<{h:016x}.{:08x}@{domain}>", mix(h) as u32),
    );
    simple(out, "MIME-Version", "1.0");
    simple(out, "Content-Type", "text/plain; charset=\"us-ascii\"");
    simple(out, "Content-Transfer-Encoding", "7bit");
    out.extend_from_slice(b"\r\n");

    let mut x = mix(h ^ 2);
    let greeting = from.name.split(' ').next().unwrap_or("all");
    out.extend_from_slice(
        format!("Hi {},\r\n\r\n", to.name.split(' ').next().unwrap_or("all")).as_bytes(),
    );
    for _ in 0..2 + x % 3 {
        x = mix(x);
        let mut line = String::new();
        for i in 0..6 + x % 6 {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(pick(mix(x ^ i), WORDS));
        }
        line.push_str(".\r\n");
        out.extend_from_slice(line.as_bytes());
    }
    out.extend_from_slice(format!("\r\n{greeting}\r\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use mail_parser::{HeaderName, MessageParser, MimeHeaders};

    fn att(name: &str, content_type: &str, size: u64, seed: u64, kind: AttKind) -> AttPlan {
        AttPlan {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size,
            inline: false,
            content_id: None,
            seed,
            kind,
        }
    }

    fn addr(name: &str, email: &str) -> Addr {
        Addr {
            name: name.to_owned(),
            email: email.to_owned(),
        }
    }

    fn plain_plan() -> MessagePlan {
        MessagePlan {
            message_id: "<plain.1@contoso.com>".to_owned(),
            in_reply_to: None,
            references: Vec::new(),
            subject: "Quarterly numbers".to_owned(),
            from: addr("Megan Bowen", "megan.bowen@contoso.com"),
            to: vec![addr("", "alex.wilber@contoso.com")],
            cc: Vec::new(),
            sent: Utc.with_ymd_and_hms(2024, 3, 5, 9, 30, 0).unwrap(),
            received: Utc.with_ymd_and_hms(2024, 3, 5, 9, 30, 4).unwrap(),
            body_text: "Hello Alex,\n\nthe numbers are in.   Trailing space \nBye".to_owned(),
            html: false,
            attachments: Vec::new(),
            malformed: Malformed::None,
            importance: "normal",
            seed: 11,
        }
    }

    fn rich_plan() -> MessagePlan {
        let mut logo = att("logo.png", "image/png", 3000, 21, AttKind::File);
        logo.inline = true;
        logo.content_id = Some("image001.png@01DA6F1E.5C3B2A10".to_owned());
        let long_line = "Réunion « budget » — données 東京 = 100% <ok> & more ".repeat(12);
        MessagePlan {
            message_id: "<rich.2@contoso.com>".to_owned(),
            in_reply_to: Some("<parent.1@contoso.com>".to_owned()),
            references: (0..8)
                .map(|i| format!("<ref.{i}.abcdefgh@contoso.com>"))
                .collect(),
            subject: "Re: Réunion budget 2024 — données du trimestre pour l'équipe de Zürich et \
                      東京, version finale 🎉"
                .to_owned(),
            from: addr("Zoë Çelik", "zoe.celik@contoso.com"),
            to: vec![
                addr("Smith, John", "john.smith@contoso.com"),
                addr("Adele Vance", "adele.vance@contoso.com"),
            ],
            cc: vec![addr("Jürgen Groß", "juergen.gross@contoso.com")],
            sent: Utc.with_ymd_and_hms(2024, 3, 5, 9, 30, 0).unwrap(),
            received: Utc.with_ymd_and_hms(2024, 3, 5, 9, 30, 4).unwrap(),
            body_text: format!("Bonjour,\n\n{long_line}\nligne deux\n\nÀ bientôt"),
            html: true,
            attachments: vec![
                logo,
                att(
                    "Rapport financier 2024 — données consolidées (version définitive) été.pdf",
                    "application/pdf",
                    100_000,
                    22,
                    AttKind::File,
                ),
                att(
                    "budget.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    5,
                    23,
                    AttKind::File,
                ),
                att(
                    "Re: Planning été",
                    "message/rfc822",
                    4000,
                    24,
                    AttKind::Item,
                ),
                att(
                    "Shared deck",
                    "application/octet-stream",
                    9,
                    25,
                    AttKind::Reference,
                ),
                att("photo.jpg", "image/jpeg", 0, 26, AttKind::File),
            ],
            malformed: Malformed::None,
            importance: "high",
            seed: 12,
        }
    }

    fn with(malformed: Malformed, mut plan: MessagePlan) -> MessagePlan {
        plan.malformed = malformed;
        plan
    }

    /// The top-level header section (up to the first blank line).
    fn header_section(bytes: &[u8]) -> &[u8] {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a blank line");
        &bytes[..end + 2]
    }

    fn header_lines(bytes: &[u8]) -> Vec<&[u8]> {
        header_section(bytes)
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn assert_lines_ok(bytes: &[u8]) {
        assert!(bytes.ends_with(b"\r\n"), "ends with CRLF");
        for (i, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
            assert!(line.ends_with(b"\r\n"), "line {i} ends with CRLF: {line:?}");
            assert!(
                !line[..line.len() - 2].contains(&b'\r'),
                "bare CR on line {i}"
            );
            assert!(
                line.len() - 2 <= 998,
                "line {i} is {} bytes",
                line.len() - 2
            );
        }
    }

    fn all_plans() -> Vec<MessagePlan> {
        let mut plans = vec![plain_plan(), rich_plan()];
        for malformed in [
            Malformed::MissingDate,
            Malformed::UnterminatedMultipart,
            Malformed::RawEightBitHeader,
            Malformed::BadCharset,
        ] {
            plans.push(with(malformed, plain_plan()));
            plans.push(with(malformed, rich_plan()));
        }
        plans
    }

    #[test]
    fn attachment_bytes_have_size_magic_and_are_stable() {
        let pdf = att("a.pdf", "application/pdf", 70_000, 5, AttKind::File);
        let bytes = attachment_bytes(&pdf);
        assert_eq!(bytes.len(), 70_000);
        assert!(bytes.starts_with(b"%PDF-1.7\n"));
        assert_eq!(bytes, attachment_bytes(&pdf));
        assert_eq!(&bytes[9..], &blob_range(5, 70_000, 9, 70_000)[..]);
        assert_eq!(attachment_range(&pdf, 3, 66_000), &bytes[3..66_000]);

        let cases: [(&str, &[u8]); 6] = [
            ("image/png", b"\x89PNG\r\n\x1a\n"),
            ("IMAGE/JPEG", b"\xFF\xD8\xFF"),
            ("application/zip", b"PK\x03\x04"),
            (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                b"PK\x03\x04",
            ),
            ("text/calendar; method=REQUEST", b"BEGIN:VCALENDAR"),
            ("application/octet-stream", b""),
        ];
        for (content_type, magic) in cases {
            let bytes = attachment_bytes(&att("x", content_type, 1000, 6, AttKind::File));
            assert_eq!(bytes.len(), 1000);
            assert!(bytes.starts_with(magic), "{content_type}");
        }
        let tiny = attachment_bytes(&att("x.png", "image/png", 3, 6, AttKind::File));
        assert_eq!(tiny, b"\x89PN");
        assert!(attachment_bytes(&att("x.png", "image/png", 0, 6, AttKind::File)).is_empty());
        assert_ne!(
            attachment_bytes(&att("x", "application/pdf", 500, 1, AttKind::File)),
            attachment_bytes(&att("x", "application/pdf", 500, 2, AttKind::File))
        );
    }

    #[test]
    fn rendering_is_deterministic_and_line_safe() {
        for plan in all_plans() {
            let bytes = render(&plan);
            assert_eq!(bytes, render(&plan), "{:?}", plan.malformed);
            assert_lines_ok(&bytes);
            // Header lines are folded at 78 columns.
            for line in header_lines(&bytes) {
                assert!(!line.trim_ascii().is_empty(), "whitespace-only header line");
                assert!(
                    line.len() - 1 <= FOLD,
                    "header line too long: {}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        let mut other = rich_plan();
        other.seed = 13;
        assert_ne!(render(&other), render(&rich_plan()));
    }

    #[test]
    fn rich_message_parses_with_everything_intact() {
        let plan = rich_plan();
        let bytes = render(&plan);
        let message = MessageParser::default().parse(&bytes).expect("parses");

        assert_eq!(message.subject(), Some(plan.subject.as_str()));
        let from = message.from().and_then(|f| f.first()).expect("a sender");
        assert_eq!(from.address(), Some("zoe.celik@contoso.com"));
        assert_eq!(from.name(), Some("Zoë Çelik"));
        let to: Vec<_> = message.to().expect("to").iter().collect();
        assert_eq!(to[0].name(), Some("Smith, John"));
        assert_eq!(to.len(), 2);
        assert_eq!(
            message.cc().and_then(|c| c.first()).and_then(|a| a.name()),
            Some("Jürgen Groß")
        );
        assert_eq!(message.message_id(), Some("rich.2@contoso.com"));
        assert_eq!(
            message.date().map(|d| d.to_timestamp()),
            Some(plan.sent.timestamp())
        );
        assert_eq!(
            message.references().as_text_list().map(|l| l.len()),
            Some(8)
        );
        let message_with_topic = MessageParser::default()
            .header_text(HeaderName::Other("Thread-Topic".into()))
            .parse(&bytes)
            .expect("parses");
        let topic = message_with_topic
            .header("Thread-Topic")
            .and_then(|h| h.as_text());
        assert!(
            topic.is_some_and(|t| t.starts_with("Réunion budget")),
            "{topic:?}"
        );

        // Text and HTML bodies.
        let text = message.body_text(0).expect("text body");
        assert_eq!(text, plan.body_text.replace('\n', "\r\n"));
        let html = message.body_html(0).expect("html body");
        assert!(html.contains("<p>Bonjour,</p>"), "{html}");
        assert!(html.contains("&lt;ok&gt; &amp; more"));
        assert!(html.contains("cid:image001.png@01DA6F1E.5C3B2A10"));

        // Everything but the reference attachment, in plan order.
        let expected: Vec<&AttPlan> = plan
            .attachments
            .iter()
            .filter(|a| a.kind != AttKind::Reference)
            .collect();
        let parts: Vec<_> = message.attachments().collect();
        assert_eq!(message.attachment_count(), expected.len());
        assert_eq!(parts.len(), expected.len());
        for (part, att) in parts.iter().zip(&expected) {
            assert_eq!(part.attachment_name(), Some(att.name.as_str()));
            match att.kind {
                AttKind::File => assert_eq!(part.contents(), attachment_bytes(att), "{}", att.name),
                AttKind::Item => {
                    let nested = part.message().expect("a nested message");
                    assert_eq!(nested.subject(), Some(att.name.as_str()));
                    assert!(nested.body_text(0).is_some_and(|t| t.starts_with("Hi ")));
                    assert!(nested.from().and_then(|f| f.first()).is_some());
                }
                AttKind::Reference => unreachable!(),
            }
        }
        let logo = parts[0];
        assert_eq!(logo.content_id(), Some("image001.png@01DA6F1E.5C3B2A10"));
        assert_eq!(
            logo.content_disposition().map(|d| d.ctype()),
            Some("inline")
        );
        assert!(contains(&bytes, b"filename*0*=UTF-8''Rapport%20financier"));

        let header = header_section(&bytes);
        assert!(contains(header, b"Importance: high\r\n"));
        assert!(contains(header, b"X-Priority: 1\r\n"));
        assert!(contains(header, b"In-Reply-To: <parent.1@contoso.com>\r\n"));
        assert!(contains(header, b"Subject: =?UTF-8?B?"));
        assert_eq!(header.windows(10).filter(|w| w == b"Received: ").count(), 2);
        assert!(contains(header, b"Content-Type: multipart/mixed;"));
    }

    #[test]
    fn encoded_words_are_short() {
        let bytes = render(&rich_plan());
        for line in header_lines(&bytes) {
            let line = String::from_utf8_lossy(line);
            for word in line.split([' ', '\r']).filter(|w| w.starts_with("=?")) {
                assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
            }
        }
    }

    #[test]
    fn boundaries_are_distinct_and_absent_from_content() {
        let plan = rich_plan();
        let bytes = render(&plan);
        for n in 0..3 {
            let b = boundary(plan.seed, n);
            let delimiter = format!("\r\n--{b}\r\n");
            let occurrences = bytes
                .windows(delimiter.len())
                .filter(|w| *w == delimiter.as_bytes())
                .count();
            let bare = bytes
                .windows(b.len())
                .filter(|w| *w == b.as_bytes())
                .count();
            // The header naming it, one delimiter per child, and the close.
            assert!(occurrences >= 1, "boundary {n} used");
            assert_eq!(
                bare,
                occurrences + 2,
                "boundary {n} appears only as a delimiter"
            );
        }
    }

    #[test]
    fn plain_message_is_single_part() {
        let plan = plain_plan();
        let bytes = render(&plan);
        let message = MessageParser::default().parse(&bytes).expect("parses");
        assert_eq!(message.subject(), Some("Quarterly numbers"));
        assert_eq!(
            message
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("megan.bowen@contoso.com")
        );
        assert_eq!(message.attachment_count(), 0);
        assert_eq!(
            message.body_text(0).as_deref(),
            // A single part has no boundary to take the last CRLF.
            Some((plan.body_text.replace('\n', "\r\n") + "\r\n").as_str())
        );
        let header = header_section(&bytes);
        assert!(contains(
            header,
            b"Content-Type: text/plain; charset=\"utf-8\"\r\n"
        ));
        assert!(!contains(header, b"Importance:"));
        assert!(!contains(&bytes, b"multipart"));
        // The trailing space is encoded, not left to be stripped.
        assert!(contains(&bytes, b"Trailing space=20\r\n"));
    }

    #[test]
    fn missing_date_has_no_date_header() {
        for plan in [plain_plan(), rich_plan()] {
            let bytes = render(&with(Malformed::MissingDate, plan));
            assert!(!header_lines(&bytes).iter().any(|l| l.starts_with(b"Date:")));
            let message = MessageParser::default().parse(&bytes).expect("parses");
            assert!(message.date().is_none());
            assert!(message.subject().is_some());
        }
    }

    #[test]
    fn unterminated_multipart_lacks_its_closing_boundary() {
        let rich = with(Malformed::UnterminatedMultipart, rich_plan());
        let bytes = render(&rich);
        let outer = boundary(rich.seed, 0);
        assert!(contains(&bytes, format!("--{outer}\r\n").as_bytes()));
        assert!(!contains(&bytes, format!("--{outer}--").as_bytes()));
        // Inner multiparts are still closed.
        assert!(contains(
            &bytes,
            format!("--{}--\r\n", boundary(rich.seed, 1)).as_bytes()
        ));
        let message = MessageParser::default()
            .parse(&bytes)
            .expect("still parses");
        assert!(message.attachment_count() > 0);

        let plain = with(Malformed::UnterminatedMultipart, plain_plan());
        let bytes = render(&plain);
        let outer = boundary(plain.seed, 0);
        assert!(contains(
            header_section(&bytes),
            b"Content-Type: multipart/mixed;"
        ));
        assert!(contains(&bytes, format!("--{outer}\r\n").as_bytes()));
        assert!(!contains(&bytes, format!("--{outer}--").as_bytes()));
        let message = MessageParser::default()
            .parse(&bytes)
            .expect("still parses");
        // With no closing boundary the last part is undecodable: parsers keep its raw bytes.
        assert!(
            message
                .parts
                .iter()
                .any(|part| contains(part.contents(), b"Hello Alex"))
        );
    }

    #[test]
    fn raw_eight_bit_subject_is_latin1() {
        let plan = with(Malformed::RawEightBitHeader, rich_plan());
        let bytes = render(&plan);
        let subject = header_lines(&bytes)
            .into_iter()
            .find(|l| l.starts_with(b"Subject:"))
            .expect("a subject");
        assert!(!contains(subject, b"=?"));
        assert!(contains(subject, b"R\xE9union budget"));
        // Characters beyond Latin-1 are lost.
        assert!(contains(
            header_section(&bytes),
            b"et ??, version finale ?\r\nThread-Topic:"
        ));
        assert!(MessageParser::default().parse(&bytes).is_some());
    }

    #[test]
    fn bad_charset_labels_the_text_part() {
        for plan in [plain_plan(), rich_plan()] {
            let bytes = render(&with(Malformed::BadCharset, plan));
            assert!(contains(
                &bytes,
                b"Content-Type: text/plain; charset=\"x-unknown-42\"\r\n"
            ));
            let message = MessageParser::default().parse(&bytes).expect("parses");
            assert!(message.body_text(0).is_some());
        }
    }

    #[test]
    fn quoted_printable_round_trips() {
        let text = "a = b\tc \nlong ".to_owned() + &"é".repeat(100) + "\n\nend.  ";
        let mut out = Vec::new();
        write_quoted_printable(&mut out, text.as_bytes());
        assert_lines_ok(&out);
        for line in out.split_inclusive(|&b| b == b'\n') {
            assert!(line.len() - 2 <= QP_LINE);
        }
        let decoded = mail_parser::decoders::quoted_printable::quoted_printable_decode(&out);
        assert_eq!(
            decoded.map(|d| String::from_utf8(d).unwrap()),
            Some(text.replace('\n', "\r\n") + "\r\n")
        );
    }

    #[test]
    fn html_without_inline_images_and_odd_names() {
        let mut plan = plain_plan();
        plan.html = true;
        let long_name = "Very long ASCII attachment name that needs RFC 2231 continuations \
                         to stay folded (final).ics";
        let mut loose = att("scan.png", "image/png", 700, 32, AttKind::File);
        // Inline but without a Content-ID: nothing can reference it, it goes with the files.
        loose.inline = true;
        plan.attachments = vec![
            att(long_name, "text/calendar", 2000, 31, AttKind::File),
            loose,
            att("a=b \"quoted\".txt", "text/plain", 10, 33, AttKind::File),
        ];
        let bytes = render(&plan);
        assert_lines_ok(&bytes);
        let message = MessageParser::default().parse(&bytes).expect("parses");
        assert!(
            message
                .body_html(0)
                .is_some_and(|h| h.contains("<p>Hello Alex,</p>"))
        );
        assert!(!contains(&bytes, b"multipart/related"));
        let parts: Vec<_> = message.attachments().collect();
        assert_eq!(parts.len(), 3);
        for (part, att) in parts.iter().zip(&plan.attachments) {
            assert_eq!(part.attachment_name(), Some(att.name.as_str()));
            let expected = attachment_bytes(att);
            if part.is_text() {
                // Text parts come back decoded as text.
                assert_eq!(
                    part.text_contents(),
                    Some(&*String::from_utf8_lossy(&expected))
                );
            } else {
                assert_eq!(part.contents(), expected);
            }
        }
        assert!(parts[0].contents().starts_with(b"BEGIN:VCALENDAR"));
        assert_eq!(
            parts[1].content_disposition().map(|d| d.ctype()),
            Some("inline")
        );
    }

    #[test]
    fn thread_topic_drops_prefixes() {
        assert_eq!(thread_topic("RE: Fw: re:Budget"), "Budget");
        assert_eq!(thread_topic("Budget: Re: x"), "Budget: Re: x");
        assert_eq!(thread_topic("Ré"), "Ré");
    }
}
