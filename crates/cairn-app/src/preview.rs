//! A look at one backed-up item before restoring it, safe to show in a browser.
//!
//! Mail is the most hostile input Cairn keeps: anyone could send it, and its HTML was
//! written to run in a mail client's sandbox, not in the portal of the backup tool. So a
//! preview never hands HTML on as it was: the MIME is parsed by a maintained parser
//! (`mail-parser`), the HTML body goes through an allow-list sanitiser (`ammonia`) that
//! drops scripts, event handlers, forms, frames, styles and every URL scheme but the
//! harmless ones, and remote images are blocked (their `src` removed and counted), so
//! opening a preview tells no sender that it was read. Headers, names and text are data
//! (JSON strings) the page sets as text; attachments are listed, and their bytes are only
//! ever offered as downloads. Events and contacts become a card of their key fields (event
//! bodies sanitised like mail); files get the content type the browser may preview.

use crate::Workspace;
use crate::error::UserError;
use cairn_catalog::{ItemRow, Selected, select};
use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Items larger than this are not read for a preview (download or export them).
pub const MAX_PREVIEW_BYTES: u64 = 32 * 1024 * 1024;

/// One item of one restore point, found in the catalog.
#[derive(Clone, Debug)]
pub struct Located {
    pub selected: Selected,
    pub row: ItemRow,
}

/// Finds `path` (an item, as `ls` lists it) in `RESOURCE[@POINT]` of `tenant`: `None` when
/// the restore point holds no item there. A resource or point that does not exist is the
/// catalog's [`cairn_catalog::SelectError`].
pub fn locate(
    ws: &Workspace,
    tenant: Option<&str>,
    target: &str,
    path: &str,
) -> anyhow::Result<Option<Located>> {
    let cat = ws.catalog()?;
    let selected = select::select(&*cat, tenant, target)?;
    let path = crate::browse::clean_path(path);
    if path.is_empty() {
        return Ok(None);
    }
    let mut found = None;
    cat.for_each_at(
        selected.resource.id,
        selected.point.seq,
        &path,
        &mut |row| {
            if row.path == path && row.kind != crate::browse::FOLDER {
                found = Some(row);
                return false;
            }
            true
        },
    )?;
    Ok(found.map(|row| Located { selected, row }))
}

/// The headers a message preview shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Headers {
    pub subject: Option<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// RFC 3339.
    pub date: Option<String>,
}

/// An attachment as listed (its bytes: [`attachment`]).
#[derive(Clone, Debug, Serialize)]
pub struct AttachmentInfo {
    /// Position among the message's attachments, from 0.
    pub index: usize,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// One labelled field of an event's or a contact's card.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// What the portal shows of an item.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Preview {
    /// `message`, `event`, `contact`, `file`, `listItem`, `chatMessage`.
    pub kind: String,
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub path: String,
    pub size: u64,
    pub headers: Headers,
    /// The HTML body, sanitised: no script, event handler, form, frame, style or remote
    /// image. For an `<iframe sandbox srcdoc>`.
    pub html: Option<String>,
    /// The plain text body (data: set it as text).
    pub text: Option<String>,
    pub attachments: Vec<AttachmentInfo>,
    /// Remote images removed from the HTML.
    pub remote_images_blocked: usize,
    /// Key fields of an event or a contact.
    pub card: Vec<Field>,
    /// Files: the type of their content, and whether a browser may show it inline (text,
    /// images, PDF).
    pub content_type: Option<String>,
    pub previewable: bool,
}

/// The bytes of an item or attachment to download, with a name and a type.
#[derive(Clone, Debug)]
pub struct Download {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Reads an item's content, refusing what is too large to preview.
fn read(ws: &Workspace, at: &Located) -> anyhow::Result<Vec<u8>> {
    if at.row.size > MAX_PREVIEW_BYTES {
        return Err(UserError::new(format!(
            "{} is {} bytes: too large to preview (at most {MAX_PREVIEW_BYTES})",
            at.row.path, at.row.size
        ))
        .hint("export or restore it instead")
        .into());
    }
    let mut buf = Vec::with_capacity(at.row.size as usize);
    ws.repo()?
        .read(&at.selected.point.snapshot, &at.row.path, &mut buf)?;
    Ok(buf)
}

/// The preview of an item (blocking: it reads the repository).
pub fn preview(ws: &Workspace, at: &Located) -> anyhow::Result<Preview> {
    let mut p = Preview {
        kind: at.row.kind.clone(),
        tenant: at.selected.resource.tenant.clone(),
        resource: at.selected.resource.name.clone(),
        point: at.selected.point.seq,
        path: at.row.path.clone(),
        size: at.row.size,
        ..Preview::default()
    };
    match at.row.kind.as_str() {
        "message" => message(&read(ws, at)?, &mut p),
        "chatMessage" => {
            let v: Value = serde_json::from_slice(&read(ws, at)?).map_err(|e| {
                UserError::new(format!("{} is not readable JSON: {e}", at.row.path))
            })?;
            chat_message(&v, &mut p);
        }
        "event" | "contact" => {
            let v: Value = serde_json::from_slice(&read(ws, at)?).map_err(|e| {
                UserError::new(format!("{} is not readable JSON: {e}", at.row.path))
            })?;
            if at.row.kind == "event" {
                event(&v, &mut p);
            } else {
                contact(&v, &mut p);
            }
        }
        _ => {
            let name = at.row.name.clone().unwrap_or_else(|| last(&at.row.path));
            let t = content_type_of(&name);
            p.previewable = previewable(t);
            p.content_type = Some(t.to_string());
            p.headers.subject = Some(name);
        }
    }
    Ok(p)
}

/// Fills the preview of a Teams channel or chat message from its Graph JSON: author and
/// time as a message's headers, the body sanitised as mail's (its inline images, hosted by
/// Graph, count as remote and are left out), file references as links in the card.
pub fn chat_message(v: &Value, p: &mut Preview) {
    let text = |x: &Value| x.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    p.headers = Headers {
        subject: text(&v["subject"]).or_else(|| text(&v["summary"])),
        from: text(&v["from"]["user"]["displayName"])
            .or_else(|| text(&v["from"]["application"]["displayName"]))
            .into_iter()
            .collect(),
        to: Vec::new(),
        cc: Vec::new(),
        date: text(&v["createdDateTime"]),
    };
    let body = v["body"]["content"].as_str().unwrap_or_default();
    if v["body"]["contentType"] == "html" {
        let (clean, blocked) = sanitize(body);
        p.html = Some(clean);
        p.remote_images_blocked = blocked;
    } else {
        p.text = Some(body.to_string());
    }
    if let Some(deleted) = text(&v["deletedDateTime"]) {
        p.card.push(Field {
            label: "Deleted".into(),
            value: deleted,
        });
    }
    for a in v["attachments"].as_array().into_iter().flatten() {
        let name = text(&a["name"]).unwrap_or_else(|| "attachment".into());
        let value =
            text(&a["contentUrl"]).unwrap_or_else(|| text(&a["contentType"]).unwrap_or_default());
        p.card.push(Field { label: name, value });
    }
}

/// Fills the preview of a message from its MIME.
pub fn message(mime: &[u8], p: &mut Preview) {
    let Some(m) = MessageParser::default().parse(mime) else {
        p.text = Some(String::from_utf8_lossy(mime).into_owned());
        return;
    };
    let addrs = |a: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        a.map(|a| {
            a.iter()
                .map(|x| match (x.name(), x.address()) {
                    (Some(n), Some(e)) => format!("{n} <{e}>"),
                    (None, Some(e)) => e.to_string(),
                    (Some(n), None) => n.to_string(),
                    (None, None) => String::new(),
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
    };
    p.headers = Headers {
        subject: m.subject().map(str::to_string),
        from: addrs(m.from()),
        to: addrs(m.to()),
        cc: addrs(m.cc()),
        date: m.date().map(|d| d.to_rfc3339()),
    };
    // A real HTML part, not the parser's rendering of a text one.
    let html = m.html_bodies().find(|part| part.is_text_html());
    if let Some(part) = html {
        let raw = part
            .text_contents()
            .map(Cow::Borrowed)
            .unwrap_or_else(|| Cow::Owned(String::from_utf8_lossy(part.contents()).into_owned()));
        let (clean, blocked) = sanitize(&raw);
        p.html = Some(clean);
        p.remote_images_blocked = blocked;
    }
    p.text = m.body_text(0).map(|t| t.into_owned());
    p.attachments = m
        .attachments()
        .enumerate()
        .map(|(index, a)| AttachmentInfo {
            index,
            name: attachment_name(a, index),
            content_type: part_type(a),
            size: a.contents().len() as u64,
        })
        .collect();
}

fn attachment_name(a: &mail_parser::MessagePart<'_>, index: usize) -> String {
    a.attachment_name()
        .map(str::to_string)
        .or_else(|| {
            a.message()
                .and_then(|m| m.subject())
                .map(|s| format!("{s}.eml"))
        })
        .unwrap_or_else(|| format!("attachment-{}", index + 1))
}

fn part_type(a: &mail_parser::MessagePart<'_>) -> String {
    match a.content_type() {
        Some(ct) => match ct.subtype() {
            Some(s) => format!("{}/{}", ct.ctype(), s).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None if a.is_message() => "message/rfc822".into(),
        None => "application/octet-stream".into(),
    }
}

/// Attachment `index` of the message at `at` (blocking).
pub fn attachment(ws: &Workspace, at: &Located, index: usize) -> anyhow::Result<Option<Download>> {
    if at.row.kind != "message" {
        return Ok(None);
    }
    let mime = read(ws, at)?;
    Ok(attachment_of(&mime, index))
}

/// Attachment `index` of a message's MIME.
pub fn attachment_of(mime: &[u8], index: usize) -> Option<Download> {
    let m = MessageParser::default().parse(mime)?;
    let a = m.attachments().nth(index)?;
    Some(Download {
        name: attachment_name(a, index),
        content_type: part_type(a),
        bytes: a.contents().to_vec(),
    })
}

/// A file's content to download or preview (blocking).
pub fn content(ws: &Workspace, at: &Located) -> anyhow::Result<Download> {
    let name = at.row.name.clone().unwrap_or_else(|| last(&at.row.path));
    let content_type = match at.row.kind.as_str() {
        "message" => "message/rfc822",
        "event" | "contact" | "listItem" | "chatMessage" => "application/json",
        _ => content_type_of(&name),
    }
    .to_string();
    Ok(Download {
        bytes: read(ws, at)?,
        name,
        content_type,
    })
}

fn last(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// The content type of a file by its name's extension (what a browser may be told).
pub fn content_type_of(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "md" | "csv" => "text/plain",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "zip" => "application/zip",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

/// Types a browser shows inline without running anything of the file's (no HTML, no SVG).
pub fn previewable(content_type: &str) -> bool {
    matches!(
        content_type,
        "text/plain" | "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "application/pdf"
    )
}

/// HTML made safe to show: allowed tags and attributes only (no script, style, form,
/// frame, event handler), links only to http(s) and mailto, images only from `data:image/…`
/// (remote ones have their `src` removed: the count is returned).
pub fn sanitize(html: &str) -> (String, usize) {
    let blocked = Arc::new(AtomicUsize::new(0));
    let seen = blocked.clone();
    let schemes: HashSet<&str> = ["http", "https", "mailto", "data", "cid"].into();
    let clean = ammonia::Builder::default()
        .url_schemes(schemes)
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(move |element, attribute, value| {
            let v = value.trim_start().to_ascii_lowercase();
            match (element, attribute) {
                ("img", "src") => {
                    let raster = ["png", "jpeg", "jpg", "gif", "webp"]
                        .iter()
                        .any(|t| v.starts_with(&format!("data:image/{t};")));
                    if raster {
                        Some(value.into())
                    } else {
                        if v.starts_with("http:") || v.starts_with("https:") || v.starts_with("//")
                        {
                            seen.fetch_add(1, Ordering::Relaxed);
                        }
                        None
                    }
                }
                // Only images may carry data:, and only images may name inline parts.
                (_, _) if v.starts_with("data:") || v.starts_with("cid:") => None,
                _ => Some(value.into()),
            }
        })
        .clean(html)
        .to_string();
    (clean, blocked.load(Ordering::Relaxed))
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn push(card: &mut Vec<Field>, label: &str, value: Option<String>) {
    if let Some(value) = value {
        card.push(Field {
            label: label.into(),
            value,
        });
    }
}

fn email(v: &Value) -> Option<String> {
    let e = &v["emailAddress"];
    match (text(&e["name"]), text(&e["address"])) {
        (Some(n), Some(a)) if n != a => Some(format!("{n} <{a}>")),
        (_, Some(a)) => Some(a),
        (Some(n), None) => Some(n),
        _ => None,
    }
}

fn when(v: &Value) -> Option<String> {
    let t = text(&v["dateTime"])?;
    Some(match text(&v["timeZone"]) {
        Some(z) => format!("{t} ({z})"),
        None => t,
    })
}

/// An event's card (Graph JSON), its body sanitised as mail's.
pub fn event(v: &Value, p: &mut Preview) {
    p.headers.subject = text(&v["subject"]);
    p.headers.date = text(&v["start"]["dateTime"]);
    p.headers.from = email(&v["organizer"]).into_iter().collect();
    p.headers.to = v["attendees"]
        .as_array()
        .map(|a| a.iter().filter_map(email).collect())
        .unwrap_or_default();
    let c = &mut p.card;
    push(c, "Subject", text(&v["subject"]));
    push(c, "Starts", when(&v["start"]));
    push(c, "Ends", when(&v["end"]));
    if v["isAllDay"].as_bool() == Some(true) {
        push(c, "All day", Some("yes".into()));
    }
    push(c, "Location", text(&v["location"]["displayName"]));
    push(c, "Organizer", email(&v["organizer"]));
    if !p.headers.to.is_empty() {
        push(c, "Attendees", Some(p.headers.to.join(", ")));
    }
    if v["recurrence"].is_object() {
        push(
            c,
            "Repeats",
            text(&v["recurrence"]["pattern"]["type"]).or(Some("yes".into())),
        );
    }
    push(c, "Online meeting", text(&v["onlineMeeting"]["joinUrl"]));
    body_of(&v["body"], p);
}

/// A contact's card (Graph JSON).
pub fn contact(v: &Value, p: &mut Preview) {
    p.headers.subject = text(&v["displayName"]);
    let c = &mut p.card;
    push(c, "Name", text(&v["displayName"]));
    let list = |x: &Value, f: &dyn Fn(&Value) -> Option<String>| -> Option<String> {
        let all: Vec<String> = x.as_array()?.iter().filter_map(f).collect();
        (!all.is_empty()).then(|| all.join(", "))
    };
    push(
        c,
        "E-mail",
        list(&v["emailAddresses"], &|e| text(&e["address"])),
    );
    push(c, "Mobile", text(&v["mobilePhone"]));
    push(c, "Business phone", list(&v["businessPhones"], &text));
    push(c, "Home phone", list(&v["homePhones"], &text));
    push(c, "Company", text(&v["companyName"]));
    push(c, "Job title", text(&v["jobTitle"]));
    push(c, "Department", text(&v["department"]));
    for (label, key) in [
        ("Business address", "businessAddress"),
        ("Home address", "homeAddress"),
    ] {
        let a = &v[key];
        let parts: Vec<String> = ["street", "postalCode", "city", "state", "countryOrRegion"]
            .iter()
            .filter_map(|k| text(&a[k]))
            .collect();
        push(c, label, (!parts.is_empty()).then(|| parts.join(", ")));
    }
    push(c, "Birthday", text(&v["birthday"]));
    push(c, "Notes", text(&v["personalNotes"]));
}

/// A Graph `itemBody` (`contentType` html or text) into the preview.
fn body_of(body: &Value, p: &mut Preview) {
    let Some(content) = text(&body["content"]) else {
        return;
    };
    if body["contentType"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("html"))
    {
        let (clean, blocked) = sanitize(&content);
        p.html = Some(clean);
        p.remote_images_blocked = blocked;
    } else {
        p.text = Some(content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = concat!(
        "From: \"Eve <script>\" <eve@example.com>\r\n",
        "To: ann@contoso.com\r\n",
        "Cc: Bob <bob@contoso.com>\r\n",
        "Subject: <script>alert(1)</script> invoice\r\n",
        "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n",
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n",
        "\r\n",
        "--b1\r\n",
        "Content-Type: multipart/alternative; boundary=\"b2\"\r\n",
        "\r\n",
        "--b2\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n",
        "\r\n",
        "Plain <b>text</b>\r\n",
        "--b2\r\n",
        "Content-Type: text/html; charset=utf-8\r\n",
        "\r\n",
        "<html><head><style>body{background:url(https://t.example/s.png)}</style>",
        "<script>alert(2)</script></head><body onload=\"alert(3)\">",
        "<p style=\"background:url(https://t.example/p.png)\">Hello</p>",
        "<img src=\"https://tracker.example/pixel.gif\" onerror=\"alert(4)\">",
        "<img src=\"data:image/png;base64,iVBORw0KGgo=\" alt=\"inline\">",
        "<img src=\"data:image/svg+xml;base64,PHN2Zz4=\">",
        "<a href=\"javascript:alert(5)\">click</a>",
        "<a href=\"data:text/html,<script>alert(6)</script>\">data</a>",
        "<a href=\"https://contoso.com/\">ok</a>",
        "<form action=\"https://evil.example/\"><input name=x></form>",
        "<iframe src=\"https://evil.example/\"></iframe>",
        "<svg><script>alert(7)</script></svg>",
        "</body></html>\r\n",
        "--b2--\r\n",
        "--b1\r\n",
        "Content-Type: application/pdf; name=\"<img src=x onerror=alert(8)>.pdf\"\r\n",
        "Content-Disposition: attachment; filename=\"<img src=x onerror=alert(8)>.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n",
        "\r\n",
        "JVBERi0xLjQK\r\n",
        "--b1--\r\n",
    );

    #[test]
    fn hostile_html_is_made_harmless() {
        let mut p = Preview::default();
        message(HOSTILE.as_bytes(), &mut p);
        let html = p.html.expect("an HTML body");
        let lower = html.to_ascii_lowercase();
        for bad in [
            "<script",
            "onload",
            "onerror",
            "javascript:",
            "<style",
            "style=",
            "<form",
            "<iframe",
            "tracker.example",
            "t.example",
            "data:text",
            "svg+xml",
            "alert",
        ] {
            assert!(!lower.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("Hello"), "{html}");
        assert!(html.contains("data:image/png;base64"), "{html}");
        assert!(html.contains("https://contoso.com/"), "{html}");
        assert_eq!(p.remote_images_blocked, 1);
        assert_eq!(
            p.headers.subject.as_deref(),
            Some("<script>alert(1)</script> invoice")
        );
        assert_eq!(p.headers.to, ["ann@contoso.com"]);
        assert_eq!(p.headers.cc, ["Bob <bob@contoso.com>"]);
        assert!(p.headers.date.unwrap().starts_with("2026-11-03T10:00:00"));
        assert_eq!(p.text.as_deref().map(str::trim), Some("Plain <b>text</b>"));
        assert_eq!(p.attachments.len(), 1);
        let a = &p.attachments[0];
        assert_eq!(a.name, "<img src=x onerror=alert(8)>.pdf");
        assert_eq!(a.content_type, "application/pdf");
        let d = attachment_of(HOSTILE.as_bytes(), 0).unwrap();
        assert!(d.bytes.starts_with(b"%PDF-1.4"));
        assert!(attachment_of(HOSTILE.as_bytes(), 1).is_none());
    }

    #[test]
    fn a_text_message_has_no_html() {
        let mut p = Preview::default();
        message(b"Subject: hi\r\n\r\n<b>not html</b>\r\n", &mut p);
        assert!(p.html.is_none());
        assert_eq!(p.text.as_deref().map(str::trim), Some("<b>not html</b>"));
    }

    #[test]
    fn events_and_contacts_are_cards() {
        let mut p = Preview::default();
        event(
            &serde_json::json!({
                "subject": "Review",
                "start": {"dateTime": "2026-11-03T10:00:00", "timeZone": "UTC"},
                "end": {"dateTime": "2026-11-03T11:00:00", "timeZone": "UTC"},
                "location": {"displayName": "Room 1"},
                "organizer": {"emailAddress": {"name": "Ann", "address": "ann@x"}},
                "body": {"contentType": "html", "content": "<p onclick=\"x()\">Agenda</p><script>x()</script>"}
            }),
            &mut p,
        );
        assert!(
            p.card
                .iter()
                .any(|f| f.label == "Location" && f.value == "Room 1")
        );
        assert_eq!(p.html.as_deref(), Some("<p>Agenda</p>"));
        let mut c = Preview::default();
        contact(
            &serde_json::json!({"displayName": "Bob", "emailAddresses": [{"address": "bob@x"}], "mobilePhone": "+1"}),
            &mut c,
        );
        assert_eq!(c.card.len(), 3);
        assert!(previewable(content_type_of("a.PDF")) && !previewable(content_type_of("a.svg")));
    }

    #[test]
    fn a_teams_message_previews_with_its_author_time_and_a_harmless_body() {
        let v = serde_json::json!({
            "id": "1700000000000",
            "subject": null,
            "summary": null,
            "createdDateTime": "2026-03-01T10:00:00.000Z",
            "from": {"user": {"id": "u1", "displayName": "Ann <Admin>"}},
            "body": {"contentType": "html", "content": "<p onclick=\"x()\">Hello <b>team</b></p><script>alert(1)</script><img src=\"https://graph.microsoft.com/v1.0/teams/t/channels/c/messages/m/hostedContents/h/$value\">"},
            "attachments": [{"id": "a", "contentType": "reference", "contentUrl": "https://contoso.sharepoint.com/sites/x/Shared%20Documents/plan.docx", "name": "plan.docx"}],
        });
        let mut p = Preview::default();
        chat_message(&v, &mut p);
        assert_eq!(p.headers.from, vec!["Ann <Admin>".to_string()]);
        assert_eq!(p.headers.date.as_deref(), Some("2026-03-01T10:00:00.000Z"));
        let html = p.html.unwrap();
        assert!(html.contains("<b>team</b>"), "{html}");
        assert!(
            !html.contains("script") && !html.contains("onclick"),
            "{html}"
        );
        assert!(!html.contains("graph.microsoft.com"), "{html}");
        assert_eq!(p.remote_images_blocked, 1);
        assert_eq!(p.card[0].label, "plan.docx");
        assert!(p.card[0].value.ends_with("plan.docx"));
    }
}
