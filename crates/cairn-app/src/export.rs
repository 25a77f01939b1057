//! `cairn export`: a restore point's items as files other programs open, without Graph.
//!
//! Which items and in what order come from the catalog (one walk, on a thread of its own,
//! through a bounded channel); their content is read from the repository one item at a
//! time, so memory stays flat whatever the mailbox size. Mail is written as EML (the
//! original bytes) or mboxrd (one file per folder), calendars as one `.ics` each, contact
//! folders as one `.vcf` each, files as a tree or a zip, Teams channels and chats as HTML or
//! JSON transcripts (`teams_export`). Every name is made safe and joined
//! under the output directory (`names::safe_join`): nothing a tenant named can escape it.
//!
//! An item that cannot be read or converted is left out, listed with its reason, and the
//! export goes on; a destination that refuses bytes (disk full) stops it.

use crate::browse::{FOLDER, clean_path, is_under};
use crate::{UserError, Workspace};
use cairn_catalog::{Catalog, ItemRow, select};
use cairn_formats::names::{eml_name, safe_component};
use cairn_repo::SnapshotReader;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Each message as an .eml file (its original bytes), in its folder tree.
    Eml,
    /// One mboxrd file per mail folder.
    Mbox,
    /// One iCalendar file per calendar.
    Ics,
    /// One vCard 3.0 file per contact folder.
    Vcf,
    /// OneDrive and library files (and list items as JSON) as a directory tree.
    Files,
    /// One Outlook PST file of the mailbox: mail, calendars and contacts in their folders.
    Pst,
    /// Teams channels and chats as self-contained HTML transcripts.
    Html,
    /// Teams channels and chats as JSON documents (threads with their replies).
    Json,
}

impl Format {
    /// Every format, by the name `parse` takes.
    pub const NAMES: [&'static str; 8] =
        ["eml", "mbox", "ics", "vcf", "files", "pst", "html", "json"];

    pub fn name(self) -> &'static str {
        match self {
            Format::Eml => "eml",
            Format::Mbox => "mbox",
            Format::Ics => "ics",
            Format::Vcf => "vcf",
            Format::Files => "files",
            Format::Pst => "pst",
            Format::Html => "html",
            Format::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "eml" => Some(Format::Eml),
            "mbox" => Some(Format::Mbox),
            "ics" => Some(Format::Ics),
            "vcf" => Some(Format::Vcf),
            "files" => Some(Format::Files),
            "pst" => Some(Format::Pst),
            "html" => Some(Format::Html),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub(crate) fn kinds(self) -> &'static [&'static str] {
        match self {
            Format::Eml | Format::Mbox => &["message", "archiveItem"],
            Format::Ics => &["event"],
            Format::Vcf => &["contact"],
            Format::Files => &["file", "listItem", FOLDER],
            Format::Pst => &["message", "archiveItem", "event", "contact"],
            Format::Html | Format::Json => crate::teams_export::KINDS,
        }
    }

    /// Formats that add to a folder's file whenever its items come by: a directory only.
    fn appends(self) -> bool {
        matches!(self, Format::Mbox | Format::Vcf)
    }
}

/// What to export, and where to.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ExportRequest {
    /// `RESOURCE[@POINT]`.
    pub target: String,
    /// The tenant, when several have a resource of that name.
    pub tenant: Option<String>,
    /// Folders or items of the restore point (`mail/Inbox`); empty: everything of the
    /// format's kind.
    pub paths: Vec<String>,
    pub format: Format,
    /// Directory to write to: created, and it must be empty. With `zip`, the archive's
    /// path if it ends in `.zip`, else the directory to write the archive into.
    pub output: PathBuf,
    /// One zip archive instead of a tree (eml, ics and files).
    pub zip: bool,
}

/// How an export tells how far it got: items written and bytes read so far, after each
/// item (or each folder file).
pub trait ExportProgress: Send + Sync {
    fn exported(&self, items: u64, bytes: u64);
}

/// No progress reported.
pub struct NoProgress;

impl ExportProgress for NoProgress {
    fn exported(&self, _items: u64, _bytes: u64) {}
}

/// What an export did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub snapshot: String,
    pub format: Option<Format>,
    /// The directory, or the zip archive, written.
    pub output: PathBuf,
    /// Items written.
    pub written: u64,
    /// Bytes of content read from the repository.
    pub bytes: u64,
    /// The paths of the restore point exported (`""`: all of it).
    pub paths: Vec<String>,
    /// Files written that each hold many items (mbox, ics, vcf), relative to `output`.
    pub files: Vec<OutputFile>,
    pub skipped: Vec<Skipped>,
}

#[derive(Debug, serde::Serialize)]
pub struct OutputFile {
    pub path: String,
    pub items: u64,
}

#[derive(Debug, serde::Serialize)]
pub struct Skipped {
    /// Path in the restore point, when known.
    pub path: Option<String>,
    /// Graph id.
    pub item: Option<String>,
    pub reason: String,
}

impl Report {
    pub(crate) fn skip(&mut self, row: &ItemRow, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::warn!(path = %row.path, "skipped: {reason}");
        self.skipped.push(Skipped {
            path: Some(row.path.clone()),
            item: Some(row.item.clone()),
            reason,
        });
    }

    fn problems(&mut self, what: &str, r: cairn_formats::ExportReport) {
        for p in r.problems {
            let reason = if p.skipped {
                p.reason
            } else {
                format!("written without {}", p.reason)
            };
            tracing::warn!(item = ?p.id, "{what}: {reason}");
            self.skipped.push(Skipped {
                path: None,
                item: p.id,
                reason: format!("{what}: {reason}"),
            });
        }
    }
}

/// Exports a restore point (blocking: it reads the repository; see [`export`] for async
/// callers). An item that cannot be read or converted is skipped and listed in the report;
/// a destination that refuses bytes stops the export.
pub fn export_blocking(
    ws: &Workspace,
    req: &ExportRequest,
    progress: &dyn ExportProgress,
) -> anyhow::Result<Report> {
    if req.format == Format::Pst {
        return crate::pst::export(ws, req, progress);
    }
    if matches!(req.format, Format::Html | Format::Json) {
        return crate::teams_export::export(ws, req, progress);
    }
    if req.zip && req.format.appends() {
        return Err(UserError::new(format!(
            "--zip does not go with --format {}",
            req.format.name()
        ))
        .hint("mbox and vcf write one file per folder: export to a directory, or use --format eml")
        .into());
    }
    let cat = ws.catalog()?;
    let sel = select::select(&*cat, req.tenant.as_deref(), &req.target)?;
    let paths = prefixes(&req.paths);
    let dest = Dest::create(req, &sel.resource.name, sel.point.seq)?;
    let repo = ws.repo()?;
    let reader = repo.open_snapshot(&sel.point.snapshot)?;
    let mut report = Report {
        tenant: sel.resource.tenant.clone(),
        resource: sel.resource.name.clone(),
        point: sel.point.seq,
        snapshot: sel.point.snapshot.clone(),
        format: Some(req.format),
        output: dest.shown(),
        paths: paths.clone(),
        ..Report::default()
    };
    let mut progress = Progress {
        sink: progress,
        items: 0,
        bytes: 0,
    };
    let mut ex = Exporter {
        reader: &reader,
        dest,
        report: &mut report,
        progress: &mut progress,
        opened: HashMap::new(),
    };
    with_rows(
        &*cat,
        sel.resource.id,
        sel.point.seq,
        &paths,
        req.format.kinds(),
        |rows| ex.export(req.format, rows),
    )??;
    ex.dest.finish()?;
    Ok(report)
}

/// [`export_blocking`] on a blocking thread.
pub async fn export(
    ws: Arc<Workspace>,
    req: ExportRequest,
    progress: Arc<dyn ExportProgress>,
) -> anyhow::Result<Report> {
    tokio::task::spawn_blocking(move || export_blocking(&ws, &req, &*progress)).await?
}

/// The paths asked for, cleaned, without those that lie under another one.
pub(crate) fn prefixes(given: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = given.iter().map(|p| clean_path(p)).collect();
    if paths.is_empty() || paths.iter().any(String::is_empty) {
        return vec![String::new()];
    }
    paths.sort();
    paths.dedup();
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        if !out.iter().any(|o| is_under(&p, o)) {
            out.push(p);
        }
    }
    out
}

/// Hands the catalog rows of the point under `paths` with one of `kinds` to `f`, in
/// repository order. The walk runs on a thread and waits while `f` is behind.
pub(crate) fn with_rows<R>(
    cat: &dyn Catalog,
    res: i64,
    seq: i64,
    paths: &[String],
    kinds: &[&str],
    f: impl FnOnce(&mut dyn Iterator<Item = ItemRow>) -> R,
) -> anyhow::Result<R> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ItemRow>(256);
        let walker = s.spawn(move || -> cairn_catalog::Result<()> {
            for p in paths {
                let mut open = true;
                cat.for_each_at(res, seq, p, &mut |row| {
                    if !is_under(&row.path, p) || !kinds.contains(&row.kind.as_str()) {
                        return true;
                    }
                    open = tx.send(row).is_ok();
                    open
                })?;
                if !open {
                    break;
                }
            }
            Ok(())
        });
        let mut rows = rx.into_iter();
        let r = f(&mut rows);
        // The walker stops at its next send.
        drop(rows);
        walker
            .join()
            .map_err(|_| anyhow::anyhow!("the catalog walk panicked"))??;
        Ok(r)
    })
}

/// The one file an export writes (a zip archive, a PST): `output` itself when it ends in
/// `.ext`, else `<resource>-point<seq>.ext` in that directory. Never overwrites.
pub(crate) fn output_file(
    output: &Path,
    ext: &str,
    resource: &str,
    seq: i64,
) -> anyhow::Result<(PathBuf, File)> {
    let path = if output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    {
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        output.to_path_buf()
    } else {
        std::fs::create_dir_all(output)?;
        output.join(safe_component(&format!("{resource}-point{seq}.{ext}")))
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            UserError::new(format!("cannot create {}: {e}", path.display()))
                .hint("give a path that does not exist yet")
        })?;
    Ok((path, file))
}

/// Where the export goes: a directory, or one zip archive.
enum Dest {
    Dir(PathBuf),
    Zip {
        path: PathBuf,
        /// `None` once finished.
        zip: Option<Box<zip::ZipWriter<BufWriter<File>>>>,
    },
}

impl Dest {
    fn create(a: &ExportRequest, resource: &str, seq: i64) -> anyhow::Result<Dest> {
        if a.zip {
            let (path, file) = output_file(&a.output, "zip", resource, seq)?;
            return Ok(Dest::Zip {
                path,
                zip: Some(Box::new(zip::ZipWriter::new(BufWriter::new(file)))),
            });
        }
        let dir = &a.output;
        if dir.exists()
            && std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(UserError::new(format!(
                "the output directory {} is not empty",
                dir.display()
            ))
            .hint("export into a new or empty directory, so nothing is overwritten or mixed")
            .into());
        }
        std::fs::create_dir_all(dir)?;
        Ok(Dest::Dir(dir.clone()))
    }

    /// An empty folder (or one that files will fill).
    fn dir(&mut self, rel: &[String]) -> Result<(), String> {
        match self {
            Dest::Dir(root) => {
                let mut p = root.clone();
                p.extend(rel);
                std::fs::create_dir_all(p).map_err(|e| e.to_string())
            }
            Dest::Zip { zip: Some(zip), .. } => {
                let opts = zip::write::SimpleFileOptions::default();
                match zip.add_directory(rel.join("/"), opts) {
                    Ok(()) => Ok(()),
                    Err(zip::result::ZipError::InvalidArchive(m)) if m.contains("Duplicate") => {
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Dest::Zip { zip: None, .. } => Err("the zip archive is already finished".into()),
        }
    }

    fn shown(&self) -> PathBuf {
        match self {
            Dest::Dir(p) | Dest::Zip { path: p, .. } => p.clone(),
        }
    }

    /// Writes one file at `rel` (safe components) with what `fill` writes. A name already
    /// taken gets ` (2)`, ` (3)`… before its extension. Returns the name used and the bytes
    /// written, or `Item` when `fill` failed (nothing is left behind) and `Output` when
    /// the destination failed.
    fn put(
        &mut self,
        rel: &[String],
        mtime: chrono::DateTime<chrono::Utc>,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<(), String>,
    ) -> Result<u64, Fail> {
        match self {
            Dest::Dir(root) => {
                let mut dir = root.clone();
                for c in &rel[..rel.len() - 1] {
                    dir.push(c);
                }
                std::fs::create_dir_all(&dir).map_err(Fail::output)?;
                let (path, file) = create_unique(&dir, &rel[rel.len() - 1])?;
                let failed = Arc::new(AtomicBool::new(false));
                let mut w = Watched::new(BufWriter::new(file), failed.clone());
                let r = fill(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string()));
                let n = w.written;
                match r {
                    Ok(()) => {
                        if let Ok(f) = w.inner.into_inner() {
                            let _ = f.set_modified(mtime.into());
                        }
                        Ok(n)
                    }
                    Err(reason) => {
                        drop(w);
                        let _ = std::fs::remove_file(&path);
                        Err(Fail::from(failed.load(Ordering::Relaxed), reason))
                    }
                }
            }
            Dest::Zip { zip, .. } => {
                let Some(zip) = zip.as_mut() else {
                    return Err(Fail::Output("the zip archive is already finished".into()));
                };
                let joined = rel.join("/");
                let mut name = joined.clone();
                let mut n = 1;
                let failed = Arc::new(AtomicBool::new(false));
                let opts = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(true)
                    .last_modified_time(zip_time(mtime));
                loop {
                    match zip.start_file(name.as_str(), opts) {
                        Ok(()) => break,
                        Err(zip::result::ZipError::InvalidArchive(m))
                            if m.contains("Duplicate") && n < 1000 =>
                        {
                            n += 1;
                            name = numbered(&joined, n);
                        }
                        Err(e) => return Err(Fail::Output(e.to_string())),
                    }
                }
                let mut w = Watched::new(zip.as_mut(), failed.clone());
                let r = fill(&mut w);
                let written = w.written;
                match r {
                    Ok(()) => Ok(written),
                    Err(reason) => {
                        zip.abort_file().map_err(|e| Fail::Output(e.to_string()))?;
                        Err(Fail::from(failed.load(Ordering::Relaxed), reason))
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Dest::Zip { zip, path } = self
            && let Some(z) = zip.take()
        {
            z.finish()
                .map_err(|e| anyhow::anyhow!("finishing {}: {e}", path.display()))?
                .flush()?;
        }
        Ok(())
    }
}

fn zip_time(t: chrono::DateTime<chrono::Utc>) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    zip::DateTime::from_date_and_time(
        t.year().clamp(1980, 2107) as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .unwrap_or_default()
}

/// `name (n).ext`.
fn numbered(name: &str, n: u32) -> String {
    let (dir, file) = match name.rsplit_once('/') {
        Some((d, f)) => (format!("{d}/"), f),
        None => (String::new(), name),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i..]),
        _ => (file, ""),
    };
    safe_join_name(&dir, &format!("{stem} ({n}){ext}"))
}

fn safe_join_name(dir: &str, file: &str) -> String {
    format!("{dir}{}", safe_component(file))
}

/// Creates `dir/name`, or `dir/name (2)`… when taken, never following an existing file.
fn create_unique(dir: &Path, name: &str) -> Result<(PathBuf, File), Fail> {
    for n in 1..1000 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            numbered(name, n)
        };
        let path = dir.join(&candidate);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Fail::output(e)),
        }
    }
    Err(Fail::Item(format!(
        "1000 items are named {name} in one folder"
    )))
}

/// Why one item was not written.
#[derive(Debug)]
enum Fail {
    /// This item could not be read or converted: skip it.
    Item(String),
    /// The destination refused bytes: stop.
    Output(String),
}

impl Fail {
    fn output(e: io::Error) -> Fail {
        Fail::Output(e.to_string())
    }

    fn from(output_failed: bool, reason: String) -> Fail {
        if output_failed {
            Fail::Output(reason)
        } else {
            Fail::Item(reason)
        }
    }
}

/// A writer that remembers whether the destination failed, and counts bytes.
struct Watched<W: Write> {
    inner: W,
    failed: Arc<AtomicBool>,
    written: u64,
}

impl<W: Write> Watched<W> {
    fn new(inner: W, failed: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            failed,
            written: 0,
        }
    }
}

impl<W: Write> Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.written += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| {
            self.failed.store(true, Ordering::Relaxed);
        })
    }
}

/// Counts what was exported and hands the totals to the caller's progress.
struct Progress<'a> {
    sink: &'a dyn ExportProgress,
    items: u64,
    bytes: u64,
}

impl Progress<'_> {
    fn item(&mut self, bytes: u64) {
        self.items(1, bytes);
    }

    fn items(&mut self, n: u64, bytes: u64) {
        self.items += n;
        self.bytes += bytes;
        self.sink.exported(self.items, self.bytes);
    }
}

/// A path component of the repository as a name on disk: the backup's escapes (`%2F`)
/// undone, then made safe for every file system.
fn display_component(c: &str) -> String {
    safe_component(&cairn_catalog::component::decode(c))
}

/// The folder an item lives in, as safe components: `mail/<folder…>/<YYYY-MM>/<file>`
/// gives `<folder…>`; `calendar/<cal>/<file>` and `contacts/<folder…>/<file>` their folder.
pub(crate) fn folder_of(row: &ItemRow) -> Vec<String> {
    let parts: Vec<&str> = row.path.split('/').collect();
    let end = if is_mail(row) && parts.len() >= 4 {
        parts.len() - 2
    } else {
        parts.len().saturating_sub(1)
    };
    let start = 1.min(end);
    // The in-place archive's folders under a folder of their own, beside the mailbox's.
    let archive = (row.kind == "archiveItem").then(|| ARCHIVE_FOLDER.to_string());
    archive
        .into_iter()
        .chain(parts[start..end].iter().map(|c| display_component(c)))
        .collect()
}

/// Where an export puts the in-place archive's folders.
pub(crate) const ARCHIVE_FOLDER: &str = "In-Place Archive";

/// Mail: a message (its MIME) or an archive item (its full-fidelity stream).
fn is_mail(row: &ItemRow) -> bool {
    matches!(row.kind.as_str(), "message" | "archiveItem")
}

/// An item's content as MIME: a message's own bytes, an archive item's stream turned into
/// a message (`cairn_fxics::to_mime`, which says what that keeps and loses).
pub(crate) fn mime_of(reader: &SnapshotReader, row: &ItemRow) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(row.size as usize);
    reader
        .read(&row.path, &mut buf)
        .map_err(|e| format!("reading it from the repository: {e}"))?;
    if row.kind != "archiveItem" {
        return Ok(buf);
    }
    cairn_fxics::parse_message(&buf)
        .map(|item| cairn_fxics::to_mime(&item))
        .map_err(|e| format!("its full-fidelity stream could not be read: {e}"))
}

/// The raw folder key of a row: the rows of one output file share it.
fn folder_key(row: &ItemRow) -> String {
    let parts: Vec<&str> = row.path.split('/').collect();
    let end = if is_mail(row) && parts.len() >= 4 {
        parts.len() - 2
    } else {
        parts.len().saturating_sub(1)
    };
    parts[..end].join("/")
}

/// The container file of a folder: `Inbox/Sub` → `Inbox/Sub.mbox`.
fn container(folder: &[String], ext: &str) -> Vec<String> {
    let mut rel = folder.to_vec();
    match rel.last_mut() {
        Some(last) => *last = safe_component(&format!("{last}.{ext}")),
        None => rel.push(format!("items.{ext}")),
    }
    rel
}

struct Exporter<'a, 'p> {
    reader: &'a SnapshotReader,
    dest: Dest,
    report: &'a mut Report,
    progress: &'a mut Progress<'p>,
    /// Folder files already started (mbox, vcf): later runs of the folder append.
    opened: HashMap<String, (PathBuf, usize)>,
}

impl Exporter<'_, '_> {
    fn export(
        &mut self,
        format: Format,
        rows: &mut dyn Iterator<Item = ItemRow>,
    ) -> anyhow::Result<()> {
        match format {
            Format::Eml | Format::Files => {
                for row in rows {
                    self.one_file(format, &row)?;
                }
                Ok(())
            }
            Format::Mbox => self.mbox(rows),
            Format::Ics | Format::Vcf => self.json_groups(format, rows),
            Format::Pst => anyhow::bail!("a PST is written by crate::pst"),
            Format::Html | Format::Json => {
                anyhow::bail!("transcripts are written by crate::teams_export")
            }
        }
    }

    /// One item, one file: its bytes as the repository holds them.
    fn one_file(&mut self, format: Format, row: &ItemRow) -> anyhow::Result<()> {
        if row.kind == FOLDER {
            // Recorded so that empty folders come back.
            let rel: Vec<String> = row.path.split('/').map(display_component).collect();
            return self.dest.dir(&rel).map_err(|e| {
                anyhow::anyhow!("creating the folder {} of the export: {e}", rel.join("/"))
            });
        }
        let rel: Vec<String> = if format == Format::Eml {
            let mut rel = folder_of(row);
            rel.push(eml_name(
                row.date.unwrap_or(row.mtime),
                row.subject.as_deref().unwrap_or(""),
                &row.item,
            ));
            rel
        } else {
            row.path.split('/').map(display_component).collect()
        };
        let reader = self.reader;
        let r = self
            .dest
            .put(&rel, row.date.unwrap_or(row.mtime), &mut |w| {
                if row.kind == "archiveItem" {
                    let mime = mime_of(reader, row)?;
                    return w.write_all(&mime).map_err(|e| e.to_string());
                }
                reader
                    .read(&row.path, &mut &mut *w)
                    .map_err(|e| e.to_string())
            });
        self.done(row, r)
    }

    fn done(&mut self, row: &ItemRow, r: Result<u64, Fail>) -> anyhow::Result<()> {
        match r {
            Ok(n) => {
                self.report.written += 1;
                self.report.bytes += n;
                self.progress.item(n);
                Ok(())
            }
            Err(Fail::Item(reason)) => {
                self.report.skip(row, reason);
                Ok(())
            }
            Err(Fail::Output(reason)) => Err(anyhow::anyhow!(
                "writing the export of {} failed: {reason}\nhint: check that {} is writable and has free space",
                row.path,
                self.report.output.display()
            )),
        }
    }

    /// Opens the folder file `rel` for appending, creating it the first time.
    fn open_folder_file(&mut self, key: &str, rel: &[String]) -> anyhow::Result<File> {
        let Dest::Dir(root) = &self.dest else {
            anyhow::bail!("folder files are written to a directory");
        };
        if let Some((path, _)) = self.opened.get(key) {
            return Ok(OpenOptions::new().append(true).open(path)?);
        }
        let mut dir = root.clone();
        for c in &rel[..rel.len() - 1] {
            dir.push(c);
        }
        std::fs::create_dir_all(&dir)?;
        let (path, file) = match create_unique(&dir, &rel[rel.len() - 1]) {
            Ok(x) => x,
            Err(Fail::Item(m) | Fail::Output(m)) => anyhow::bail!("{m}"),
        };
        let shown = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        self.report.files.push(OutputFile {
            path: shown,
            items: 0,
        });
        self.opened
            .insert(key.to_string(), (path, self.report.files.len() - 1));
        Ok(file)
    }

    fn count_in(&mut self, key: &str, n: u64) {
        if let Some((_, i)) = self.opened.get(key) {
            self.report.files[*i].items += n;
        }
    }

    /// Mail folders as mboxrd: the messages of a folder appended as they come.
    fn mbox(&mut self, rows: &mut dyn Iterator<Item = ItemRow>) -> anyhow::Result<()> {
        let mut current: Option<(
            String,
            cairn_formats::mbox::MboxWriter<Watched<File>>,
            Arc<AtomicBool>,
        )> = None;
        for row in rows {
            let key = folder_key(&row);
            if current.as_ref().is_none_or(|(k, _, _)| *k != key) {
                if let Some((k, w, _)) = current.take() {
                    w.finish()
                        .map_err(|e| anyhow::anyhow!("writing the mbox of {k}: {e}"))?;
                }
                let rel = container(&folder_of(&row), "mbox");
                let file = self.open_folder_file(&key, &rel)?;
                let failed = Arc::new(AtomicBool::new(false));
                let w = cairn_formats::mbox::MboxWriter::new(Watched::new(file, failed.clone()));
                current = Some((key.clone(), w, failed));
            }
            let Some((_, mbox, failed)) = current.as_mut() else {
                continue;
            };
            let r = if row.kind == "archiveItem" {
                match mime_of(self.reader, &row) {
                    Ok(mime) => mbox
                        .append(&mime[..], row.sender.as_deref(), row.date)
                        .map_err(|e| Fail::Output(e.to_string())),
                    Err(reason) => Err(Fail::Item(reason)),
                }
            } else {
                append_message(self.reader, &row, mbox, failed)
            };
            if r.is_ok() {
                self.count_in(&key, 1);
            }
            let r = r.map(|()| row.size);
            self.done(&row, r)?;
        }
        if let Some((k, w, _)) = current.take() {
            w.finish()
                .map_err(|e| anyhow::anyhow!("writing the mbox of {k}: {e}"))?;
        }
        Ok(())
    }

    /// Calendars (one .ics each) and contact folders (one .vcf each): the Graph JSON of a
    /// folder's items read one at a time into the format's writer.
    fn json_groups(
        &mut self,
        format: Format,
        rows: &mut dyn Iterator<Item = ItemRow>,
    ) -> anyhow::Result<()> {
        let mut rows = rows.peekable();
        let ext = if format == Format::Ics { "ics" } else { "vcf" };
        while let Some(first) = rows.peek() {
            let key = folder_key(first);
            let rel = container(&folder_of(first), ext);
            let mtime = first.mtime;
            let reader = self.reader;
            let mut skipped: Vec<(ItemRow, String)> = Vec::new();
            let mut bytes = 0u64;
            let mut read = 0u64;
            let mut items = std::iter::from_fn(|| {
                loop {
                    let row = rows.next_if(|r| folder_key(r) == key)?;
                    let mut buf = Vec::with_capacity(row.size as usize);
                    let parsed = reader
                        .read(&row.path, &mut buf)
                        .map_err(|e| e.to_string())
                        .and_then(|()| {
                            serde_json::from_slice::<serde_json::Value>(&buf)
                                .map_err(|e| format!("not Graph JSON: {e}"))
                        });
                    match parsed {
                        Ok(v) => {
                            bytes += buf.len() as u64;
                            read += 1;
                            return Some(v);
                        }
                        Err(reason) => skipped.push((row, reason)),
                    }
                }
            });
            let (written, problems) = match format {
                Format::Ics => {
                    let mut out: Option<cairn_formats::ExportReport> = None;
                    let r = self.dest.put(&rel, mtime, &mut |w| {
                        let rep = cairn_formats::ics::write_calendar(&mut items, w)
                            .map_err(|e| e.to_string())?;
                        out = Some(rep);
                        Ok(())
                    });
                    if let Err(Fail::Output(m) | Fail::Item(m)) = r {
                        anyhow::bail!("writing {}: {m}", rel.join("/"));
                    }
                    // Whatever the writer did not pull is still in `rows`: drain the folder.
                    for _ in items.by_ref() {}
                    let rep = out.unwrap_or_default();
                    self.report.files.push(OutputFile {
                        path: rel.join("/"),
                        items: rep.written as u64,
                    });
                    (rep.written as u64, rep)
                }
                _ => {
                    let file = self.open_folder_file(&key, &rel)?;
                    let rep = cairn_formats::vcf::write_vcards(&mut items, file)?;
                    for _ in items.by_ref() {}
                    self.count_in(&key, rep.written as u64);
                    (rep.written as u64, rep)
                }
            };
            self.report.written += written;
            self.report.bytes += bytes;
            self.progress.items(read, bytes);
            for (row, reason) in skipped {
                self.report.skip(&row, reason);
            }
            self.report.problems(&rel.join("/"), problems);
        }
        Ok(())
    }
}

/// Streams one message from the repository into the mbox through a pipe: the repository
/// writes on a thread, the mbox writer reads, and only a pipe's buffer is in memory.
fn append_message(
    reader: &SnapshotReader,
    row: &ItemRow,
    mbox: &mut cairn_formats::mbox::MboxWriter<Watched<File>>,
    output_failed: &AtomicBool,
) -> Result<(), Fail> {
    let (pr, mut pw) = io::pipe().map_err(Fail::output)?;
    std::thread::scope(|s| {
        let path = row.path.as_str();
        let feeder = s.spawn(move || {
            let r = reader.read(path, &mut pw);
            drop(pw);
            r
        });
        let appended = mbox.append(
            BufReader::with_capacity(64 * 1024, pr),
            row.sender.as_deref(),
            row.date,
        );
        let fed = feeder
            .join()
            .unwrap_or_else(|_| Err(cairn_repo::RepoError::SnapshotNotFound(path.into())));
        match (appended, fed) {
            (Ok(()), Ok(())) => Ok(()),
            _ if output_failed.load(Ordering::Relaxed) => {
                Err(Fail::Output("the mbox file refused the bytes".into()))
            }
            (_, Err(e)) => Err(Fail::Item(format!(
                "reading it failed ({e}); the part read is in the mbox"
            ))),
            (Err(e), Ok(())) => Err(Fail::Output(e.to_string())),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, path: &str) -> ItemRow {
        ItemRow {
            kind: kind.into(),
            path: path.into(),
            ..ItemRow::default()
        }
    }

    #[test]
    fn folders_and_containers() {
        let m = row(
            "message",
            "mail/Inbox/Q1%2FQ2/2026-03/20260301T101500Z-abc.eml",
        );
        assert_eq!(folder_of(&m), ["Inbox", "Q1_Q2"]);
        assert_eq!(folder_key(&m), "mail/Inbox/Q1%2FQ2");
        assert_eq!(container(&folder_of(&m), "mbox"), ["Inbox", "Q1_Q2.mbox"]);
        let e = row("event", "calendar/Calendar/abc.json");
        assert_eq!(container(&folder_of(&e), "ics"), ["Calendar.ics"]);
    }

    #[test]
    fn nothing_escapes() {
        for p in [
            "onedrive/../../x",
            "onedrive/%2E%2E/%2E%2E/x",
            "/etc/passwd",
            "a/./../b",
        ] {
            let rel: Vec<String> = p.split('/').map(display_component).collect();
            let root = Path::new("/out");
            let mut path = root.to_path_buf();
            for c in &rel {
                assert!(
                    !c.is_empty() && c != "." && c != ".." && !c.contains('/'),
                    "{p}: {c}"
                );
                path.push(c);
            }
            assert!(path.starts_with(root));
            assert!(
                path.components()
                    .all(|c| !matches!(c, std::path::Component::ParentDir))
            );
        }
        assert_eq!(prefixes(&["mail/Inbox/".into(), "mail".into()]), ["mail"]);
        assert_eq!(prefixes(&[]), [""]);
        assert_eq!(numbered("a/b.eml", 2), "a/b (2).eml");
    }
}
