//! An RFC 5322 / MIME rendering of an [`Item`], for EML and MBOX export and for search when
//! the backup holds no MIME copy of the message.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::item::{AttachMethod, AttachmentItem, Item, Mailbox, Properties, RecipientKind};

/// What [`to_mime`] keeps from the full-fidelity stream and what it loses. The
/// FastTransfer stream stays the backup's copy of record; the MIME rendering is a view.
///
/// Kept:
/// * the original Internet headers (PidTagTransportMessageHeaders) when the stream has them,
///   all of them (Received, Return-Path, List-*, X-*...), except the MIME structure headers
///   (Content-*, MIME-Version), which describe a body this rendering rebuilds, and the
///   DKIM-Signature / ARC-* headers, which could not verify over the rebuilt body;
/// * otherwise headers made from the properties: From (PidTagSentRepresenting*, else
///   PidTagSender*), Sender when it differs, To / Cc / Bcc from the recipient table, Subject
///   (RFC 2047 encoded when not ASCII), Date (PidTagClientSubmitTime, else
///   PidTagMessageDeliveryTime, else PidTagCreationTime), Message-ID, In-Reply-To,
///   References, Importance (when not normal), and the categories (PidNameKeywords) as a
///   Keywords header; a header missing from the original is added from the properties too;
/// * PidTagBody as text/plain and PidTagHtml / PidTagBodyHtml as text/html, together as
///   multipart/alternative when both exist;
/// * attachments with their data (PidTagAttachDataBinary, or PidTagAttachDataObject bytes),
///   file name, MIME type and Content-ID; those with a Content-ID are marked inline;
/// * embedded messages (afEmbeddedMessage) as message/rfc822 parts rendered the same way,
///   recursively.
///
/// Lost:
/// * every MAPI-only property: read state and other PidTagMessageFlags bits, follow-up flags
///   (PidTagFlagStatus and the PidLid flag properties), reminders, sensitivity, conversation
///   index, entry/search/source keys, retention tags, and all named properties other than
///   the categories (appointment, task and contact properties included: an appointment
///   becomes a plain message, not an iCalendar object);
/// * exact property types and code pages (everything becomes UTF-8);
/// * RTF bodies: PidTagRtfCompressed is not decompressed. When it is the only body, it is
///   attached as is, as `body.rtf.lzfu` (application/octet-stream, compressed RTF per
///   MS-OXRTFCP), so nothing is lost outright; when a text or HTML body exists it is left
///   out;
/// * attachments without data (by reference, by web reference) and the attachment
///   properties other than the ones above (rendering position, attachment flags,
///   hidden flag, creation times);
/// * recipients' MAPI details (entry ids, address types, legacy DN addresses: a recipient
///   without an SMTP address is kept by name only, as an empty group `"Name":;`).
pub const KEEPS_AND_LOSES: &str = "Keeps: original Internet headers (PidTagTransportMessageHeaders) \
minus Content-*/MIME-Version/DKIM/ARC, else From/Sender/To/Cc/Bcc/Subject/Date/Message-ID/\
In-Reply-To/References/Importance/Keywords(categories) from properties; text and HTML bodies; \
attachments with data, name, type, Content-ID; embedded messages as message/rfc822. \
Loses: MAPI-only properties (flags, follow-up, reminders, sensitivity, keys), named properties \
other than categories (appointment/task/contact data), code pages, RTF bodies (compressed RTF \
is attached as body.rtf.lzfu only when it is the only body), attachments without data, \
recipient MAPI details (non-SMTP recipients kept by name only).";

/// Renders `item` as an RFC 5322 message with MIME body (CRLF line ends). See
/// [`KEEPS_AND_LOSES`] for what survives. Never fails: missing properties give missing
/// headers or an empty text body.
pub fn to_mime(item: &Item) -> Vec<u8> {
    let mut counter = 0;
    render(item, 0, &mut counter)
}

fn render(item: &Item, depth: usize, counter: &mut usize) -> Vec<u8> {
    let mut out = String::new();
    let original = item
        .transport_message_headers()
        .map(|h| parse_headers(&h))
        .unwrap_or_default();
    let has = |name: &str| original.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    for (name, raw) in &original {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("content-")
            || lower == "mime-version"
            || lower == "dkim-signature"
            || lower.starts_with("arc-")
        {
            continue;
        }
        out.push_str(raw);
        out.push_str("\r\n");
    }

    let from = item.from();
    if !has("From")
        && let Some(m) = &from
    {
        header(&mut out, "From", &address(m));
    }
    if !has("Sender")
        && let (Some(s), Some(f)) = (item.sender(), &from)
        && s.email.is_some()
        && s.email != f.email
    {
        header(&mut out, "Sender", &address(&s));
    }
    let recipients = item.recipients();
    for (name, kind) in [
        ("To", RecipientKind::To),
        ("Cc", RecipientKind::Cc),
        ("Bcc", RecipientKind::Bcc),
    ] {
        if has(name) {
            continue;
        }
        let list: Vec<String> = recipients
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| address(&r.mailbox))
            .collect();
        if !list.is_empty() {
            header(&mut out, name, &list.join(",\r\n "));
        }
    }
    if !has("Subject")
        && let Some(s) = item.subject()
    {
        header(&mut out, "Subject", &encode_unstructured(&s));
    }
    if !has("Date") {
        let date = item
            .client_submit_time()
            .or_else(|| item.message_delivery_time())
            .or_else(|| item.creation_time());
        // RFC 5322 years have four digits; a FILETIME can say anything (chrono's
        // `to_rfc2822` panics outside 0..=9999): such a date is left out.
        if let Some(d) = date.filter(|d| (1..=9999).contains(&chrono::Datelike::year(d))) {
            header(&mut out, "Date", &d.to_rfc2822());
        }
    }
    for (name, value) in [
        ("Message-ID", item.internet_message_id()),
        ("In-Reply-To", item.in_reply_to()),
        ("References", item.references()),
    ] {
        if let (false, Some(v)) = (has(name), value) {
            header(&mut out, name, &sanitize(&v));
        }
    }
    if !has("Importance") {
        match item.importance() {
            Some(crate::Importance::High) => header(&mut out, "Importance", "high"),
            Some(crate::Importance::Low) => header(&mut out, "Importance", "low"),
            _ => {}
        }
    }
    let categories = item.categories();
    if !categories.is_empty() && !has("Keywords") {
        let words: Vec<String> = categories.iter().map(|c| encode_phrase(c)).collect();
        header(&mut out, "Keywords", &words.join(", "));
    }
    header(&mut out, "MIME-Version", "1.0");

    // Body parts.
    let text = item.body();
    let html = item.html();
    let mut body = match (text, html) {
        (Some(t), Some(h)) => {
            let parts = vec![text_part("text/plain", &t), text_part("text/html", &h)];
            multipart("alternative", parts, depth, counter)
        }
        (None, Some(h)) => text_part("text/html", &h),
        (Some(t), None) => text_part("text/plain", &t),
        (None, None) => text_part("text/plain", ""),
    };

    let mut attachments: Vec<Vec<u8>> = Vec::new();
    if item.body().is_none()
        && item.html().is_none()
        && let Some(rtf) = item.rtf_compressed()
    {
        attachments.push(binary_part(
            "application/octet-stream",
            Some("body.rtf.lzfu"),
            None,
            rtf,
        ));
    }
    for att in &item.attachments {
        if let Some(p) = attachment_part(att, depth, counter) {
            attachments.push(p);
        }
    }
    if !attachments.is_empty() {
        let mut parts = vec![body];
        parts.extend(attachments);
        body = multipart("mixed", parts, depth, counter);
    }

    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

fn attachment_part(att: &AttachmentItem, depth: usize, counter: &mut usize) -> Option<Vec<u8>> {
    if let Some(embedded) = &att.embedded {
        let inner = render(embedded, depth + 1, counter);
        let name = att.filename().or_else(|| embedded.subject()).map(|s| {
            if s.to_ascii_lowercase().ends_with(".eml") {
                s
            } else {
                format!("{s}.eml")
            }
        });
        let cte = if inner.is_ascii() { "7bit" } else { "8bit" };
        let mut head = String::from("Content-Type: message/rfc822\r\n");
        head.push_str(&format!("Content-Transfer-Encoding: {cte}\r\n"));
        head.push_str(&disposition("attachment", name.as_deref()));
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&inner);
        return Some(bytes);
    }
    if matches!(
        att.attach_method(),
        Some(
            AttachMethod::ByReference
                | AttachMethod::ByReferenceOnly
                | AttachMethod::ByWebReference
        )
    ) && att.data().is_none()
    {
        return None;
    }
    let data = att.data()?;
    let mime = att
        .mime_type()
        .filter(|m| is_mime_type(m))
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    Some(binary_part(
        &mime,
        att.filename().as_deref(),
        att.content_id().as_deref(),
        data,
    ))
}

fn is_mime_type(m: &str) -> bool {
    let mut it = m.splitn(2, '/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        })
    };
    ok(it.next()) && ok(it.next())
}

fn binary_part(mime: &str, filename: Option<&str>, cid: Option<&str>, data: &[u8]) -> Vec<u8> {
    let mut head = String::new();
    head.push_str(&format!("Content-Type: {mime}"));
    if let Some(f) = filename {
        head.push_str(&format!(";\r\n {}", param("name", f)));
    }
    head.push_str("\r\nContent-Transfer-Encoding: base64\r\n");
    let cid = cid.map(sanitize).filter(|c| !c.is_empty());
    if let Some(c) = &cid {
        let c = c.trim_start_matches('<').trim_end_matches('>');
        head.push_str(&format!("Content-ID: <{c}>\r\n"));
    }
    head.push_str(&disposition(
        if cid.is_some() {
            "inline"
        } else {
            "attachment"
        },
        filename,
    ));
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(base64_lines(data).as_bytes());
    bytes
}

fn disposition(kind: &str, filename: Option<&str>) -> String {
    match filename {
        Some(f) => format!(
            "Content-Disposition: {kind};\r\n {}\r\n",
            param("filename", f)
        ),
        None => format!("Content-Disposition: {kind}\r\n"),
    }
}

/// A MIME parameter: quoted when ASCII, RFC 2231 `name*=utf-8''...` otherwise.
fn param(name: &str, value: &str) -> String {
    let value = sanitize(value);
    if value.is_ascii() {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("{name}=\"{escaped}\"")
    } else {
        let mut enc = String::new();
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                enc.push(char::from(b));
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        format!("{name}*=utf-8''{enc}")
    }
}

fn text_part(mime: &str, text: &str) -> Vec<u8> {
    let text = normalize_newlines(text);
    let plain = text.is_ascii()
        && text.lines().all(|l| l.len() <= 900)
        && !text.contains("=_cairn_")
        && !text.lines().any(|l| l.starts_with("--"));
    let mut s = format!("Content-Type: {mime}; charset=utf-8\r\n");
    if plain {
        s.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        s.push_str(&text);
        if !text.ends_with("\r\n") {
            s.push_str("\r\n");
        }
    } else {
        s.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        s.push_str(&base64_lines(text.as_bytes()));
    }
    s.into_bytes()
}

fn multipart(sub: &str, parts: Vec<Vec<u8>>, depth: usize, counter: &mut usize) -> Vec<u8> {
    *counter += 1;
    let boundary = format!("=_cairn_{depth}_{counter}");
    let mut out =
        format!("Content-Type: multipart/{sub};\r\n boundary=\"{boundary}\"\r\n\r\n").into_bytes();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(&p);
        if !p.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn base64_lines(data: &[u8]) -> String {
    let enc = B64.encode(data);
    let mut s = String::with_capacity(enc.len() + enc.len() / 76 * 2 + 2);
    for chunk in enc.as_bytes().chunks(76) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push_str("\r\n");
    }
    s
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

/// Removes CR, LF and other control characters that would break a header.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// RFC 2047 encoded words (UTF-8, B encoding), at most 45 bytes of text each so that every
/// word stays within 75 characters, folded onto continuation lines.
fn encoded_words(s: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in s.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", B64.encode(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// An unstructured header value (Subject): as is when printable ASCII, else encoded words.
fn encode_unstructured(s: &str) -> String {
    let s = sanitize(s);
    if s.is_ascii() && s.len() <= 900 && !s.contains("=?") {
        s
    } else {
        encoded_words(&s)
    }
}

/// A display name: an atom sequence, a quoted string, or encoded words.
fn encode_phrase(s: &str) -> String {
    let s = sanitize(s);
    if !s.is_ascii() || s.contains("=?") {
        return encoded_words(&s);
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn address(m: &Mailbox) -> String {
    let email = m.email.as_deref().map(sanitize).filter(|e| !e.is_empty());
    match (&m.name, email) {
        (Some(n), Some(e)) if !n.is_empty() && *n != e => format!("{} <{e}>", encode_phrase(n)),
        (_, Some(e)) => format!("<{e}>"),
        (Some(n), None) => format!("{}:;", encode_phrase(n)),
        (None, None) => "undisclosed-recipients:;".to_owned(),
    }
}

/// Header fields of a header block: (name, raw field with its folding, CRLF line ends).
fn parse_headers(block: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            // The end of the header block.
            if !fields.is_empty() {
                break;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, raw)) = fields.last_mut() {
                raw.push_str("\r\n");
                raw.push_str(line);
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, _))
                if !name.is_empty()
                    && name.bytes().all(|b| (33..=126).contains(&b) && b != b':') =>
            {
                fields.push((name.to_owned(), line.to_owned()));
            }
            // Not a header field (an mbox "From " line, garbage): dropped.
            _ => {}
        }
    }
    fields
}
