//! `cairn export --format html|json` of Teams: a team's channels (`teams/<channel>`) and a
//! person's chats (`chats/<label>`) as transcripts (`cairn_formats::teams`).
//!
//! The backup keeps one file per message, grouped by thread on disk
//! (`teams/<channel>/<month>/<thread>/<message>.json`, hosted images beside their message),
//! so the catalog's walk hands the rows over thread by thread, oldest thread first. One
//! thread is read from the repository, written and dropped before the next: memory holds
//! one thread whatever the channel's size. The channel's or chat's own document heads the
//! transcript.

use crate::UserError;
use crate::Workspace;
use crate::browse::is_under;
use crate::export::{
    ExportProgress, ExportRequest, Format, OutputFile, Report, output_file, prefixes, with_rows,
};
use cairn_catalog::component::decode;
use cairn_catalog::{ItemRow, select};
use cairn_formats::names::safe_component;
use cairn_formats::teams::{
    ConversationKind, HostedImage, Message, Thread, TranscriptFormat, TranscriptWriter,
    percent_decode,
};
use cairn_repo::SnapshotReader;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The kinds a transcript is made of (the channel's and chat's documents are read by path).
pub(crate) const KINDS: &[&str] = &["chatMessage", "hostedContent"];

/// Writes the transcripts; see the module's documentation.
pub(crate) fn export(
    ws: &Workspace,
    req: &ExportRequest,
    progress: &dyn ExportProgress,
) -> anyhow::Result<Report> {
    let (format, ext) = match req.format {
        Format::Html => (TranscriptFormat::Html, "html"),
        _ => (TranscriptFormat::Json, "json"),
    };
    if req.zip {
        return Err(
            UserError::new(format!("--zip does not go with --format {ext}"))
                .hint("a transcript is one file per channel or chat already")
                .into(),
        );
    }
    let mut paths = prefixes(&req.paths);
    if paths == [""] {
        paths = vec!["teams".into(), "chats".into()];
    }
    if let Some(p) = paths
        .iter()
        .find(|p| !is_under(p, "teams") && !is_under(p, "chats"))
    {
        return Err(UserError::new(format!(
            "{p} holds no Teams messages: --format {ext} exports teams/<channel> of a team and chats/<chat> of a user"
        ))
        .hint("`cairn ls RESOURCE teams/` and `cairn ls USER chats/` list them")
        .into());
    }
    let cat = ws.catalog()?;
    let sel = select::select(&*cat, req.tenant.as_deref(), &req.target)?;
    let repo = ws.repo()?;
    let reader = repo.open_snapshot(&sel.point.snapshot)?;
    // One file when the output names one; a directory of one file per conversation else.
    let single = req
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext));
    if !single {
        std::fs::create_dir_all(&req.output)?;
    }
    let mut report = Report {
        tenant: sel.resource.tenant.clone(),
        resource: sel.resource.name.clone(),
        point: sel.point.seq,
        snapshot: sel.point.snapshot.clone(),
        format: Some(req.format),
        output: req.output.clone(),
        paths: paths.clone(),
        ..Report::default()
    };
    let mut out = Out {
        reader: &reader,
        format,
        ext,
        output: &req.output,
        single,
        resource: sel.resource.name.clone(),
        seq: sel.point.seq,
        current: None,
        report: &mut report,
        progress,
        items: 0,
        bytes: 0,
    };
    let written = with_rows(
        &*cat,
        sel.resource.id,
        sel.point.seq,
        &paths,
        KINDS,
        |rows| -> anyhow::Result<()> {
            let mut group: Vec<ItemRow> = Vec::new();
            let mut key = String::new();
            for row in rows {
                let Some(k) = thread_key(&row.path) else {
                    out.report.skip(&row, "not a Teams message path");
                    continue;
                };
                if k != key && !group.is_empty() {
                    out.thread(std::mem::take(&mut group))?;
                }
                key = k;
                group.push(row);
            }
            if !group.is_empty() {
                out.thread(group)?;
            }
            out.close()
        },
    )?;
    written?;
    Ok(report)
}

/// The conversation of a path: `teams/<channel>` or `chats/<label>`.
fn conversation_of(path: &str) -> Option<String> {
    let mut it = path.splitn(3, '/');
    let (top, name) = (it.next()?, it.next()?);
    matches!(top, "teams" | "chats").then(|| format!("{top}/{name}"))
}

/// The rows of one thread share this: a channel's thread directory
/// (`teams/<c>/<month>/<thread>`), a chat message's file stem (`chats/<c>/<month>/<stem>`).
fn thread_key(path: &str) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    match *parts.first()? {
        "teams" if parts.len() >= 5 => Some(parts[..4].join("/")),
        "chats" if parts.len() >= 4 => {
            let stem = parts[3].split('.').next().unwrap_or(parts[3]);
            Some(format!("{}/{stem}", parts[..3].join("/")))
        }
        _ => None,
    }
}

/// A content type for a hosted content's file extension (the backup names files by type).
fn content_type(path: &str) -> String {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "bmp" => "image/bmp",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
    .to_string()
}

/// Where a file shared in a message would be in a backup, from its SharePoint address:
/// `onedrive/<path>` (the sender's OneDrive) or `libraries/<library>/<path>` (the team's
/// site). Best effort: an address of another form names no path.
pub(crate) fn backed_up_path(attachment: &Value) -> Option<String> {
    let url = attachment["contentUrl"].as_str()?;
    let rest = url.split_once("://")?.1;
    let (host, path) = rest.split_once('/')?;
    let path = percent_decode(path.split(['?', '#']).next().unwrap_or(path));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let encode = |s: &[&str]| {
        s.iter()
            .map(|c| cairn_catalog::component::encode(c))
            .collect::<Vec<_>>()
            .join("/")
    };
    if host.contains("-my.") {
        // personal/<user>/Documents/<path>
        if segs.len() > 3 && segs[0] == "personal" {
            return Some(format!("onedrive/{}", encode(&segs[3..])));
        }
        return None;
    }
    // sites/<site>/<library>/<path>; "Shared Documents" is the library "Documents".
    if segs.len() > 3 && matches!(segs[0], "sites" | "teams") {
        let lib = if segs[2] == "Shared Documents" {
            "Documents"
        } else {
            segs[2]
        };
        return Some(format!(
            "libraries/{}/{}",
            cairn_catalog::component::encode(lib),
            encode(&segs[3..])
        ));
    }
    None
}

type Writer = TranscriptWriter<'static, BufWriter<File>>;

struct Out<'a> {
    reader: &'a SnapshotReader,
    format: TranscriptFormat,
    ext: &'static str,
    output: &'a Path,
    single: bool,
    resource: String,
    seq: i64,
    /// The conversation being written: its key, its file, the writer.
    current: Option<(String, PathBuf, Writer)>,
    report: &'a mut Report,
    progress: &'a dyn ExportProgress,
    items: u64,
    bytes: u64,
}

impl Out<'_> {
    /// Reads one thread's rows and writes it into its conversation's transcript.
    fn thread(&mut self, rows: Vec<ItemRow>) -> anyhow::Result<()> {
        let conv = conversation_of(&rows[0].path).unwrap_or_default();
        if self.current.as_ref().is_none_or(|(k, _, _)| *k != conv) {
            self.close()?;
            self.open(&conv)?;
        }
        let mut messages: Vec<Value> = Vec::new();
        let mut images: HashMap<String, Vec<HostedImage>> = HashMap::new();
        for row in &rows {
            let mut buf = Vec::with_capacity(row.size as usize);
            if let Err(e) = self.reader.read(&row.path, &mut buf) {
                self.report
                    .skip(row, format!("reading it from the repository: {e}"));
                continue;
            }
            self.bytes += buf.len() as u64;
            match row.kind.as_str() {
                "hostedContent" => {
                    // Item id: <conversation id>/<message id>/<hosted id>.
                    let mut it = row.item.splitn(3, '/');
                    let (_, m, h) = (it.next(), it.next(), it.next());
                    let (Some(m), Some(h)) = (m, h) else {
                        self.report
                            .skip(row, "a hosted content without its message");
                        continue;
                    };
                    images.entry(m.to_string()).or_default().push(HostedImage {
                        id: h.to_string(),
                        content_type: content_type(&row.path),
                        bytes: buf,
                    });
                }
                _ => match serde_json::from_slice::<Value>(&buf) {
                    Ok(v) => messages.push(v),
                    Err(e) => self.report.skip(row, format!("not Graph JSON: {e}")),
                },
            }
        }
        let mut with_images = |json: Value| Message {
            images: json["id"]
                .as_str()
                .and_then(|id| images.remove(id))
                .unwrap_or_default(),
            json,
        };
        let chat = conv.starts_with("chats/");
        let n = messages.len() as u64;
        let mut threads: Vec<Thread> = Vec::new();
        if chat {
            // A chat has no threads: each message stands alone.
            for m in messages {
                threads.push(Thread {
                    root: Some(with_images(m)),
                    replies: Vec::new(),
                });
            }
        } else {
            let (roots, replies): (Vec<Value>, Vec<Value>) = messages
                .into_iter()
                .partition(|m| m["replyToId"].as_str().is_none_or(str::is_empty));
            let mut roots = roots.into_iter();
            threads.push(Thread {
                root: roots.next().map(&mut with_images),
                replies: replies.into_iter().map(&mut with_images).collect(),
            });
            // Two roots in one thread directory would be a damaged backup: keep both.
            threads.extend(roots.map(|r| Thread {
                root: Some(with_images(r)),
                replies: Vec::new(),
            }));
        }
        let Some((_, path, w)) = self.current.as_mut() else {
            anyhow::bail!("no transcript open");
        };
        for t in threads {
            w.thread(t)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        }
        self.items += n;
        self.progress.exported(self.items, self.bytes);
        Ok(())
    }

    fn open(&mut self, conv: &str) -> anyhow::Result<()> {
        let chat = conv.starts_with("chats/");
        let (kind, doc_name) = if chat {
            (ConversationKind::Chat, "chat.json")
        } else {
            (ConversationKind::Channel, "channel.json")
        };
        let label = decode(conv.split_once('/').map(|x| x.1).unwrap_or(conv));
        let mut buf = Vec::new();
        let doc: Value = match self.reader.read(&format!("{conv}/{doc_name}"), &mut buf) {
            Ok(()) => serde_json::from_slice(&buf).unwrap_or_else(|_| json!({})),
            Err(_) => json!({}),
        };
        let doc = if doc.is_object() && !doc.as_object().is_some_and(|o| o.is_empty()) {
            doc
        } else if chat {
            json!({ "topic": label })
        } else {
            json!({ "displayName": label })
        };
        let title = if chat {
            format!("Chat: {label}")
        } else {
            format!("{} — {label}", self.resource.trim_start_matches("group:"))
        };
        let (path, file) =
            if self.single {
                if !self.report.files.is_empty() {
                    anyhow::bail!(UserError::new(format!(
                    "{} names one file, and the paths hold several channels or chats",
                    self.output.display()
                ))
                .hint("give one teams/<channel> or chats/<chat> path, or a directory as --output"));
                }
                output_file(self.output, self.ext, &self.resource, self.seq)?
            } else {
                let name = safe_component(&format!("{label}.{}", self.ext));
                let dir = self.output.join(if chat { "chats" } else { "teams" });
                std::fs::create_dir_all(&dir)?;
                let path = dir.join(&name);
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| {
                        UserError::new(format!("cannot create {}: {e}", path.display()))
                            .hint("export into a new or empty directory")
                    })?;
                (path, file)
            };
        let w = TranscriptWriter::new(
            BufWriter::new(file),
            self.format,
            kind,
            &doc,
            &title,
            Box::new(backed_up_path),
        )
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", path.display()))?;
        let shown = if self.single {
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        } else {
            path.strip_prefix(self.output)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned()
        };
        if self.single {
            self.report.output = path.clone();
        }
        self.report.files.push(OutputFile {
            path: shown,
            items: 0,
        });
        self.current = Some((conv.to_string(), path, w));
        Ok(())
    }

    /// Finishes the transcript being written.
    fn close(&mut self) -> anyhow::Result<()> {
        let Some((_, path, w)) = self.current.take() else {
            return Ok(());
        };
        let (_, rep) = w
            .finish()
            .map_err(|e| anyhow::anyhow!("finishing {}: {e}", path.display()))?;
        if let Some(f) = self.report.files.last_mut() {
            f.items = rep.written as u64;
        }
        self.report.written += rep.written as u64;
        self.report.bytes = self.bytes;
        for p in rep.problems {
            let reason = if p.skipped {
                p.reason
            } else {
                format!("written without {}", p.reason)
            };
            self.report.skipped.push(crate::export::Skipped {
                path: Some(path.display().to_string()),
                item: p.id,
                reason,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_group_by_thread() {
        let t = "teams/General/2025-01/20250101T100000-ab12/20250101T100500-cd34.json";
        assert_eq!(
            thread_key(t).as_deref(),
            Some("teams/General/2025-01/20250101T100000-ab12")
        );
        assert_eq!(conversation_of(t).as_deref(), Some("teams/General"));
        let c = "chats/Ann, Bob/2025-01/20250101T100000-ab12.ff00.png";
        assert_eq!(
            thread_key(c).as_deref(),
            Some("chats/Ann, Bob/2025-01/20250101T100000-ab12")
        );
        assert_eq!(thread_key("teams/General/channel.json"), None);
        assert_eq!(content_type("x.JPG"), "image/jpeg");
    }

    #[test]
    fn shared_files_are_named_by_their_backed_up_path() {
        let a = json!({"contentUrl": "https://contoso.sharepoint.com/sites/Eng/Shared%20Documents/General/a%20b.docx"});
        assert_eq!(
            backed_up_path(&a).as_deref(),
            Some("libraries/Documents/General/a b.docx")
        );
        let o = json!({"contentUrl": "https://contoso-my.sharepoint.com/personal/ann_contoso_com/Documents/x/y.pdf"});
        assert_eq!(backed_up_path(&o).as_deref(), Some("onedrive/x/y.pdf"));
        assert_eq!(
            backed_up_path(&json!({"contentUrl": "https://x.example/"})),
            None
        );
    }
}
