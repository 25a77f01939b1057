//! Teams channels and chats as a transcript a person reads (one self-contained HTML page)
//! or a program reads (one JSON document).
//!
//! A backup keeps each message as the Graph JSON it was served as; a transcript puts them
//! back into conversations: threads in time order, replies under their root, who wrote
//! what and when (in UTC, so two readers in different zones quote the same time), the
//! reactions, the inline images and the files that were shared. The page must open on an
//! air-gapped laptop years later and be safe to open: message bodies are Graph's HTML, so
//! they go through an allow-list sanitiser (`ammonia`) that keeps formatting and drops
//! scripts, styles, event handlers and remote references; inline images are embedded as
//! `data:` URIs from the backed-up bytes; everything else that is text is escaped.
//!
//! The writer streams: the caller hands it one thread at a time (its root, its replies and
//! their images), and nothing of a thread is kept once it is written.

use crate::{ExportReport, FormatError};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Which transcript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TranscriptFormat {
    Html,
    Json,
}

/// What the transcript is of: a team's channel or a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationKind {
    Channel,
    Chat,
}

impl ConversationKind {
    fn key(self) -> &'static str {
        match self {
            ConversationKind::Channel => "channel",
            ConversationKind::Chat => "chat",
        }
    }
}

/// An inline image of a message, as backed up.
#[derive(Clone, Debug)]
pub struct HostedImage {
    /// Graph's hosted content id (the `{h}` of `…/hostedContents/{h}/$value`).
    pub id: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One message with its inline images.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// The chatMessage as Graph served it.
    pub json: Value,
    pub images: Vec<HostedImage>,
}

/// A root post and its replies (a chat message: a root without replies). `root` is `None`
/// when the root is not in the backup (only replies were selected or kept).
#[derive(Clone, Debug, Default)]
pub struct Thread {
    pub root: Option<Message>,
    pub replies: Vec<Message>,
}

/// Where a shared file was backed up, by its attachment (`contentUrl`, `name`): the path
/// in a restore point, when the caller knows one.
pub type FilePaths<'a> = dyn Fn(&Value) -> Option<String> + 'a;

/// Writes one transcript: [`TranscriptWriter::new`] (the header), [`thread`] for each
/// thread in time order, [`finish`] (the footer).
///
/// [`thread`]: TranscriptWriter::thread
/// [`finish`]: TranscriptWriter::finish
pub struct TranscriptWriter<'a, W: Write> {
    w: W,
    format: TranscriptFormat,
    kind: ConversationKind,
    files: Box<FilePaths<'a>>,
    threads: usize,
    messages: usize,
    report: ExportReport,
}

const FORMAT: &str = "Teams transcript";

impl<'a, W: Write> TranscriptWriter<'a, W> {
    /// Starts the transcript of the channel or chat `doc` (its Graph JSON as backed up;
    /// members and tabs inside are kept in the JSON form). `title` names it for people.
    pub fn new(
        mut w: W,
        format: TranscriptFormat,
        kind: ConversationKind,
        doc: &Value,
        title: &str,
        files: Box<FilePaths<'a>>,
    ) -> Result<Self, FormatError> {
        let r = match format {
            TranscriptFormat::Json => {
                let head = serde_json::to_string(doc).unwrap_or_else(|_| "{}".into());
                write!(w, "{{\"{}\":{head},\"messages\":[", kind.key())
            }
            TranscriptFormat::Html => html_head(&mut w, kind, doc, title),
        };
        r.map_err(FormatError::write(FORMAT))?;
        Ok(Self {
            w,
            format,
            kind,
            files,
            threads: 0,
            messages: 0,
            report: ExportReport::default(),
        })
    }

    /// Writes one thread: its root, then its replies oldest first.
    pub fn thread(&mut self, mut t: Thread) -> Result<(), FormatError> {
        t.replies.sort_by_key(|m| created(&m.json));
        let r = match self.format {
            TranscriptFormat::Json => self.json_thread(&t),
            TranscriptFormat::Html => self.html_thread(&t),
        };
        r.map_err(FormatError::write(FORMAT))?;
        self.threads += 1;
        Ok(())
    }

    /// Ends the document; the writer and what was written.
    pub fn finish(mut self) -> Result<(W, ExportReport), FormatError> {
        let r = match self.format {
            TranscriptFormat::Json => self.w.write_all(b"]}\n"),
            TranscriptFormat::Html => write!(
                self.w,
                "</main>\n<footer><p>{} threads, {} messages.</p></footer>\n</body>\n</html>\n",
                self.threads, self.messages
            ),
        };
        r.and_then(|()| self.w.flush())
            .map_err(FormatError::write(FORMAT))?;
        self.report.written = self.messages;
        Ok((self.w, self.report))
    }

    fn json_thread(&mut self, t: &Thread) -> std::io::Result<()> {
        let mut root = match &t.root {
            Some(m) => json_message(m),
            // The thread's replies still need a place: a stand-in root that says so.
            None => {
                let mut m = Map::new();
                m.insert(
                    "id".into(),
                    t.replies
                        .first()
                        .and_then(|r| r.json.get("replyToId").cloned())
                        .unwrap_or(Value::Null),
                );
                m.insert("missingFromBackup".into(), Value::Bool(true));
                m
            }
        };
        if self.kind == ConversationKind::Channel {
            root.insert(
                "replies".into(),
                Value::Array(
                    t.replies
                        .iter()
                        .map(|r| Value::Object(json_message(r)))
                        .collect(),
                ),
            );
        }
        if self.threads > 0 {
            self.w.write_all(b",")?;
        }
        self.w.write_all(b"\n")?;
        serde_json::to_writer(&mut self.w, &Value::Object(root))?;
        self.messages += usize::from(t.root.is_some()) + t.replies.len();
        Ok(())
    }

    fn html_thread(&mut self, t: &Thread) -> std::io::Result<()> {
        let id = t
            .root
            .as_ref()
            .and_then(|m| m.json["id"].as_str())
            .or_else(|| t.replies.first().and_then(|r| r.json["replyToId"].as_str()))
            .unwrap_or("");
        writeln!(
            self.w,
            "<article class=\"thread\" data-thread-id=\"{}\">",
            esc(id)
        )?;
        match &t.root {
            Some(m) => self.html_message(m, "message root")?,
            None => writeln!(
                self.w,
                "<section class=\"message root missing\"><p class=\"note\">The first post of this thread is not in the backup.</p></section>"
            )?,
        }
        if !t.replies.is_empty() {
            writeln!(self.w, "<div class=\"replies\">")?;
            for r in &t.replies {
                self.html_message(r, "message reply")?;
            }
            writeln!(self.w, "</div>")?;
        }
        writeln!(self.w, "</article>")
    }

    fn html_message(&mut self, m: &Message, class: &str) -> std::io::Result<()> {
        let j = &m.json;
        let id = j["id"].as_str().unwrap_or("");
        let deleted = j["deletedDateTime"].as_str().filter(|s| !s.is_empty());
        let system = j["messageType"].as_str() == Some("systemEventMessage");
        let mut classes = class.to_string();
        if deleted.is_some() {
            classes.push_str(" deleted");
        }
        if system {
            classes.push_str(" system");
        }
        let (author, author_id) = author(j);
        let when = created(j);
        writeln!(
            self.w,
            "<section class=\"{classes}\" id=\"m-{}\" data-message-id=\"{}\">",
            esc(id),
            esc(id)
        )?;
        write!(
            self.w,
            "<div class=\"head\"><span class=\"author\" data-user-id=\"{}\">{}</span> <time datetime=\"{}\">{}</time>",
            esc(&author_id),
            esc(&author),
            esc(&iso(when)),
            esc(&shown(when))
        )?;
        if let Some(e) = j["lastEditedDateTime"].as_str().and_then(parse_time) {
            write!(
                self.w,
                " <span class=\"edited\">(edited <time datetime=\"{}\">{}</time>)</span>",
                esc(&iso(Some(e))),
                esc(&shown(Some(e)))
            )?;
        }
        if let Some(imp) = j["importance"].as_str().filter(|i| *i != "normal") {
            write!(self.w, " <span class=\"importance\">{}</span>", esc(imp))?;
        }
        writeln!(self.w, "</div>")?;
        if let Some(d) = deleted {
            let d = parse_time(d);
            writeln!(
                self.w,
                "<p class=\"note\">Deleted <time datetime=\"{}\">{}</time>; its content as backed up:</p>",
                esc(&iso(d)),
                esc(&shown(d))
            )?;
        }
        if let Some(s) = j["subject"].as_str().filter(|s| !s.is_empty()) {
            writeln!(self.w, "<h3 class=\"subject\">{}</h3>", esc(s))?;
        }
        let content = j["body"]["content"].as_str().unwrap_or("");
        let body = if j["body"]["contentType"].as_str() == Some("text") {
            format!("<p>{}</p>", esc(content).replace('\n', "<br>"))
        } else {
            let (clean, missing) = sanitize(content, &m.images);
            for h in missing {
                self.report.degrade(
                    self.messages,
                    j,
                    format!("inline image {h} (not in the backup)"),
                );
            }
            clean
        };
        writeln!(self.w, "<div class=\"body\">{body}</div>")?;
        self.html_attachments(j)?;
        self.html_reactions(j)?;
        writeln!(self.w, "</section>")?;
        self.messages += 1;
        Ok(())
    }

    fn html_attachments(&mut self, j: &Value) -> std::io::Result<()> {
        let Some(atts) = j["attachments"].as_array().filter(|a| !a.is_empty()) else {
            return Ok(());
        };
        writeln!(self.w, "<ul class=\"attachments\">")?;
        for a in atts {
            let ct = a["contentType"].as_str().unwrap_or("");
            let name = a["name"].as_str().filter(|n| !n.is_empty());
            if ct == "reference" {
                let url = a["contentUrl"].as_str().unwrap_or("");
                let name = name.unwrap_or(url);
                let link = if safe_url(url) {
                    format!(
                        "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                        esc(url),
                        esc(name)
                    )
                } else {
                    esc(name)
                };
                let backed = match (self.files)(a) {
                    Some(p) => format!(
                        " <span class=\"backed-up\">backed up as <code>{}</code></span>",
                        esc(&p)
                    ),
                    None => String::new(),
                };
                writeln!(
                    self.w,
                    "<li class=\"file\" data-attachment-id=\"{}\">{link}{backed}</li>",
                    esc(a["id"].as_str().unwrap_or(""))
                )?;
            } else {
                // Cards and the like: what they are, and their text when they have some.
                let what = kind_of_attachment(ct);
                let text = a["content"]
                    .as_str()
                    .map(|c| format!(": <code>{}</code>", esc(&truncate(c, 2000))))
                    .unwrap_or_default();
                writeln!(
                    self.w,
                    "<li class=\"card\" data-attachment-id=\"{}\">{}{text}</li>",
                    esc(a["id"].as_str().unwrap_or("")),
                    esc(&what)
                )?;
            }
        }
        writeln!(self.w, "</ul>")
    }

    fn html_reactions(&mut self, j: &Value) -> std::io::Result<()> {
        let Some(rs) = j["reactions"].as_array().filter(|a| !a.is_empty()) else {
            return Ok(());
        };
        // One line per reaction type, in the order first given, with who gave it.
        let mut order: Vec<String> = Vec::new();
        let mut who: HashMap<String, Vec<String>> = HashMap::new();
        for r in rs {
            let t = r["displayName"]
                .as_str()
                .or(r["reactionType"].as_str())
                .unwrap_or("reaction")
                .to_string();
            let name = r["user"]["user"]["displayName"]
                .as_str()
                .or(r["user"]["user"]["id"].as_str())
                .unwrap_or("someone")
                .to_string();
            if !who.contains_key(&t) {
                order.push(t.clone());
            }
            who.entry(t).or_default().push(name);
        }
        write!(self.w, "<ul class=\"reactions\">")?;
        for t in order {
            let names = &who[&t];
            write!(
                self.w,
                "<li><span class=\"reaction\">{}</span> {} ({})</li>",
                esc(&t),
                names.len(),
                esc(&names.join(", "))
            )?;
        }
        writeln!(self.w, "</ul>")
    }
}

/// The message as the JSON transcript holds it: as backed up, without OData annotations,
/// its inline images inside (`hostedContents` with the bytes in base64).
fn json_message(m: &Message) -> Map<String, Value> {
    let mut o: Map<String, Value> = match &m.json {
        Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !k.starts_with("@odata.") && !k.contains("@odata.") && *k != "replies")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    };
    if !m.images.is_empty() {
        o.insert(
            "hostedContents".into(),
            Value::Array(
                m.images
                    .iter()
                    .map(|h| {
                        serde_json::json!({
                            "id": h.id,
                            "contentType": h.content_type,
                            "contentBytes": base64::engine::general_purpose::STANDARD.encode(&h.bytes),
                        })
                    })
                    .collect(),
            ),
        );
    }
    o
}

fn html_head<W: Write>(
    w: &mut W,
    kind: ConversationKind,
    doc: &Value,
    title: &str,
) -> std::io::Result<()> {
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n\
<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    )?;
    let mut facts: Vec<(String, String)> = Vec::new();
    let mut fact = |k: &str, v: Option<&str>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            facts.push((k.to_string(), v.to_string()));
        }
    };
    match kind {
        ConversationKind::Channel => {
            fact("Channel", doc["displayName"].as_str());
            fact("Description", doc["description"].as_str());
            fact("Membership", doc["membershipType"].as_str());
        }
        ConversationKind::Chat => {
            fact("Topic", doc["topic"].as_str());
            fact("Chat type", doc["chatType"].as_str());
        }
    }
    let created_at = doc["createdDateTime"].as_str().and_then(parse_time);
    let created_text = created_at.map(|t| shown(Some(t)));
    fact("Created", created_text.as_deref());
    fact("Id", doc["id"].as_str());
    let members: Vec<String> = doc["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["displayName"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let members = members.join(", ");
    fact("Members", Some(&members));
    writeln!(w, "<dl class=\"facts\">")?;
    for (k, v) in facts {
        writeln!(w, "<dt>{}</dt><dd>{}</dd>", esc(&k), esc(&v))?;
    }
    writeln!(
        w,
        "</dl>\n<p class=\"note\">Times are UTC. Exported by Cairn from a backup.</p>\n</header>\n<main>"
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#222}\
header{border-bottom:1px solid #ccc;margin-bottom:1rem}dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}\
dt{font-weight:600}dd{margin:0}.thread{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem}\
.message{padding:.4rem .6rem}.replies{margin-left:2.5rem;border-left:3px solid #e3e3e3}\
.head{font-size:.9rem;color:#555}.author{font-weight:600;color:#222}.deleted{background:#fff4f4}\
.system{color:#666;font-style:italic}.note{color:#a33;font-size:.85rem}.body img{max-width:100%}\
.reactions,.attachments{list-style:none;padding:0;margin:.3rem 0;font-size:.85rem}\
.reactions li{display:inline-block;margin-right:.8rem}.card{color:#666}";

/// Graph's HTML body made safe: formatting kept; scripts, styles, event handlers, forms,
/// frames and remote references dropped; `…/hostedContents/{h}/$value` images replaced by
/// the backed-up bytes as `data:` URIs. Also the hosted ids the body names but `images`
/// lacks.
pub fn sanitize(html: &str, images: &[HostedImage]) -> (String, Vec<String>) {
    // The filter must own what it reads (ammonia keeps it for the builder's lifetime).
    let by_id: Arc<HashMap<String, Option<String>>> = Arc::new(
        images
            .iter()
            .map(|h| {
                let uri = raster(&h.content_type).then(|| {
                    format!(
                        "data:{};base64,{}",
                        h.content_type.to_ascii_lowercase(),
                        base64::engine::general_purpose::STANDARD.encode(&h.bytes)
                    )
                });
                (h.id.clone(), uri)
            })
            .collect(),
    );
    let missing = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = missing.clone();
    let schemes: HashSet<&str> = ["http", "https", "mailto", "data"].into_iter().collect();
    let clean = ammonia::Builder::default()
        .url_schemes(schemes)
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(move |element, attribute, value| {
            let lower = value.trim_start().to_ascii_lowercase();
            match (element, attribute) {
                ("img", "src") => {
                    if let Some(h) = hosted_id(value) {
                        match by_id.get(&h) {
                            Some(Some(uri)) => Some(uri.clone().into()),
                            _ => {
                                if let Ok(mut m) = seen.lock() {
                                    m.push(h);
                                }
                                None
                            }
                        }
                    } else {
                        let embedded = ["png", "jpeg", "jpg", "gif", "webp"]
                            .iter()
                            .any(|t| lower.starts_with(&format!("data:image/{t};")));
                        // Remote images would tell their host the transcript was opened.
                        embedded.then(|| value.into())
                    }
                }
                (_, _) if lower.starts_with("data:") => None,
                _ => Some(value.into()),
            }
        })
        .clean(html)
        .to_string();
    let missing = missing.lock().map(|m| m.clone()).unwrap_or_default();
    (clean, missing)
}

/// The hosted content id of an inline image's URL (`…/hostedContents/{h}/$value`).
pub fn hosted_id(url: &str) -> Option<String> {
    let i = url.find("/hostedContents/")?;
    let rest = &url[i + "/hostedContents/".len()..];
    let id = rest.split(['/', '?', '#']).next()?;
    (!id.is_empty()).then(|| percent_decode(id))
}

/// `%XX` sequences decoded (hosted-content ids, SharePoint file URLs); others kept.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn raster(ct: &str) -> bool {
    matches!(
        ct.to_ascii_lowercase().as_str(),
        "image/png" | "image/jpeg" | "image/jpg" | "image/gif" | "image/webp"
    )
}

fn safe_url(u: &str) -> bool {
    let l = u.trim_start().to_ascii_lowercase();
    l.starts_with("https://") || l.starts_with("http://")
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls other than whitespace are not allowed in HTML text.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What an attachment that is not a file is, in words.
pub fn kind_of_attachment(ct: &str) -> String {
    match ct {
        "application/vnd.microsoft.card.announcement" => "announcement".into(),
        "application/vnd.microsoft.card.codesnippet" => "code snippet".into(),
        "application/vnd.microsoft.card.sticker" => "sticker".into(),
        "messageReference" => "quoted message".into(),
        c if c.starts_with("application/vnd.microsoft.card.") => {
            format!("{} card", &c["application/vnd.microsoft.card.".len()..])
        }
        c => format!("attachment ({c})"),
    }
}

/// The author's display name and id: a user, an application or the system.
fn author(j: &Value) -> (String, String) {
    let from = &j["from"];
    for k in ["user", "application", "device"] {
        if from[k].is_object() {
            let name = from[k]["displayName"]
                .as_str()
                .or(from[k]["id"].as_str())
                .unwrap_or("unknown")
                .to_string();
            return (name, from[k]["id"].as_str().unwrap_or("").to_string());
        }
    }
    ("System".into(), String::new())
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn created(j: &Value) -> Option<DateTime<Utc>> {
    j["createdDateTime"].as_str().and_then(parse_time)
}

fn iso(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn shown(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "(time unknown)".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(id: &str, reply_to: Option<&str>, at: &str, body: &str) -> Value {
        json!({
            "id": id, "replyToId": reply_to, "messageType": "message",
            "createdDateTime": at, "deletedDateTime": null, "subject": null,
            "from": {"user": {"id": "u-1", "displayName": "Ann <Admin> & Co", "userIdentityType": "aadUser"}},
            "body": {"contentType": "html", "content": body},
            "attachments": [], "reactions": [], "mentions": [],
        })
    }

    fn write(format: TranscriptFormat, threads: Vec<Thread>) -> (String, ExportReport) {
        let doc = json!({"id": "19:abc@thread.tacv2", "displayName": "General <b>", "description": "d\"q"});
        let mut w = TranscriptWriter::new(
            Vec::new(),
            format,
            ConversationKind::Channel,
            &doc,
            "General <b>",
            Box::new(|a: &Value| a["name"].as_str().map(|n| format!("library/Documents/{n}"))),
        )
        .unwrap();
        for t in threads {
            w.thread(t).unwrap();
        }
        let (out, rep) = w.finish().unwrap();
        (String::from_utf8(out).unwrap(), rep)
    }

    #[test]
    fn bodies_are_sanitised_and_images_embedded() {
        let png = vec![0x89, b'P', b'N', b'G'];
        let body = r#"<p onclick="x()">Hi <b>there</b><script>alert(1)</script><style>p{}</style>
<img src="https://graph.microsoft.com/v1.0/teams/t/channels/c/messages/1/hostedContents/aWQ9eA==/$value">
<img src="https://evil.example/track.png"><a href="javascript:alert(1)">j</a><a href="https://ok.example">ok</a></p>"#;
        let images = vec![HostedImage {
            id: "aWQ9eA==".into(),
            content_type: "image/png".into(),
            bytes: png.clone(),
        }];
        let (clean, missing) = sanitize(body, &images);
        assert!(missing.is_empty());
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("style")
        );
        assert!(!clean.contains("evil.example") && !clean.contains("javascript"));
        assert!(clean.contains("<b>there</b>"));
        assert!(clean.contains("https://ok.example"));
        let data = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&png)
        );
        assert!(clean.contains(&data), "{clean}");
        let (_, missing) = sanitize(body, &[]);
        assert_eq!(missing, ["aWQ9eA=="]);
    }

    #[test]
    fn html_threads_hold_every_message_escaped_and_replies_indented() {
        let mut deleted = msg("3", Some("1"), "2025-01-01T10:05:00Z", "<p>gone</p>");
        deleted["deletedDateTime"] = json!("2025-01-02T00:00:00Z");
        let mut root = msg(
            "1",
            None,
            "2025-01-01T10:00:00Z",
            "<p>root &amp; <i>x</i></p>",
        );
        root["reactions"] = json!([
            {"reactionType": "like", "user": {"user": {"id": "u-2", "displayName": "Bob"}}},
            {"reactionType": "like", "user": {"user": {"id": "u-3", "displayName": "Eve"}}},
        ]);
        root["attachments"] = json!([
            {"id": "a1", "contentType": "reference", "contentUrl": "https://x.sharepoint.com/a.docx", "name": "a <1>.docx"},
            {"id": "a2", "contentType": "application/vnd.microsoft.card.sticker", "content": "{}"},
        ]);
        let t = Thread {
            root: Some(Message {
                json: root,
                images: vec![],
            }),
            // Out of order on purpose: written oldest first.
            replies: vec![
                Message {
                    json: deleted,
                    images: vec![],
                },
                Message {
                    json: msg("2", Some("1"), "2025-01-01T10:01:00Z", "<p>r</p>"),
                    images: vec![],
                },
            ],
        };
        let (html, rep) = write(TranscriptFormat::Html, vec![t]);
        assert_eq!(rep.written, 3);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<title>General &lt;b&gt;</title>"));
        assert!(html.contains("d&quot;q"));
        assert!(html.contains("Ann &lt;Admin&gt; &amp; Co"));
        assert!(html.contains("data-message-id=\"1\""));
        let (two, three) = (
            html.find("data-message-id=\"2\"").unwrap(),
            html.find("data-message-id=\"3\"").unwrap(),
        );
        assert!(two < three, "replies oldest first");
        assert!(html.find("class=\"replies\"").unwrap() < two);
        assert!(html.contains("2025-01-01 10:00:00 UTC"));
        assert!(html.contains("message reply deleted"));
        assert!(html.contains("like</span> 2 (Bob, Eve)"));
        assert!(html.contains("a &lt;1&gt;.docx"));
        assert!(html.contains("library/Documents/a &lt;1&gt;.docx"));
        assert!(html.contains("sticker"));
    }

    #[test]
    fn json_nests_replies_and_embeds_images() {
        let mut root = msg("1", None, "2025-01-01T10:00:00Z", "<p>a</p>");
        root["@odata.etag"] = json!("x");
        let t = Thread {
            root: Some(Message {
                json: root,
                images: vec![HostedImage {
                    id: "h".into(),
                    content_type: "image/png".into(),
                    bytes: vec![1, 2],
                }],
            }),
            replies: vec![Message {
                json: msg("2", Some("1"), "2025-01-01T10:01:00Z", "b"),
                images: vec![],
            }],
        };
        let orphan = Thread {
            root: None,
            replies: vec![Message {
                json: msg("5", Some("4"), "2025-01-01T11:00:00Z", "c"),
                images: vec![],
            }],
        };
        let (out, rep) = write(TranscriptFormat::Json, vec![t, orphan]);
        assert_eq!(rep.written, 3);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["channel"]["id"], "19:abc@thread.tacv2");
        let ms = v["messages"].as_array().unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0]["replies"][0]["id"], "2");
        assert!(ms[0].get("@odata.etag").is_none());
        assert_eq!(ms[0]["hostedContents"][0]["contentBytes"], "AQI=");
        assert_eq!(ms[1]["id"], "4");
        assert_eq!(ms[1]["missingFromBackup"], true);
        assert_eq!(ms[1]["replies"][0]["id"], "5");
    }

    #[test]
    fn hosted_ids_are_read_from_urls() {
        assert_eq!(
            hosted_id(
                "https://graph.microsoft.com/v1.0/chats/c/messages/1/hostedContents/abc%3D/$value"
            )
            .as_deref(),
            Some("abc=")
        );
        assert_eq!(
            hosted_id("../hostedContents/1/$value").as_deref(),
            Some("1")
        );
        assert_eq!(hosted_id("https://x/y.png"), None);
    }
}
