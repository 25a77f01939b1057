//! `cairn export --format pst`: a restore point's mail, calendars and contacts as one
//! Outlook PST file, in their folders.
//!
//! Items come from the catalog's walk (a bounded channel, as for the other formats) and are
//! read from the repository one at a time; the writer (`cairn-pst`) puts each item's blocks
//! into the file as it arrives, so memory does not grow with the mailbox's content. An
//! item that cannot be read or converted is left out and listed in the report.

use crate::UserError;
use crate::Workspace;
use crate::export::{
    ExportProgress, ExportRequest, Format, OutputFile, Report, folder_of, output_file, prefixes,
    with_rows,
};
use cairn_catalog::{ItemRow, select};
use cairn_pst::{FolderId, FolderKind, PstWriter};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;

/// Writes the PST; see the module's documentation.
pub(crate) fn export(
    ws: &Workspace,
    req: &ExportRequest,
    progress: &dyn ExportProgress,
) -> anyhow::Result<Report> {
    if req.zip {
        return Err(UserError::new("--zip does not go with --format pst")
            .hint("a PST is one file already")
            .into());
    }
    let cat = ws.catalog()?;
    let sel = select::select(&*cat, req.tenant.as_deref(), &req.target)?;
    let paths = prefixes(&req.paths);
    let (path, file) = output_file(&req.output, "pst", &sel.resource.name, sel.point.seq)?;
    let repo = ws.repo()?;
    let reader = repo.open_snapshot(&sel.point.snapshot)?;
    let mut report = Report {
        tenant: sel.resource.tenant.clone(),
        resource: sel.resource.name.clone(),
        point: sel.point.seq,
        snapshot: sel.point.snapshot.clone(),
        format: Some(Format::Pst),
        output: path.clone(),
        paths: paths.clone(),
        ..Report::default()
    };
    let name = format!("{} (restore point {})", sel.resource.name, sel.point.seq);
    let mut out = Out {
        pst: PstWriter::new(BufWriter::new(file), &name)
            .map_err(|e| anyhow::anyhow!("starting the PST {}: {e}", path.display()))?,
        folders: HashMap::new(),
        items: 0,
        bytes: 0,
    };
    let written = with_rows(
        &*cat,
        sel.resource.id,
        sel.point.seq,
        &paths,
        Format::Pst.kinds(),
        |rows| -> anyhow::Result<()> {
            for row in rows {
                let mut content = Vec::with_capacity(row.size as usize);
                if let Err(e) = reader.read(&row.path, &mut content) {
                    report.skip(&row, format!("reading it from the repository: {e}"));
                    continue;
                }
                match out.add(&row, &content) {
                    Ok(true) => {
                        out.items += 1;
                        out.bytes += content.len() as u64;
                        progress.exported(out.items, out.bytes);
                    }
                    Ok(false) => {
                        report.skip(&row, "not a message, event or contact Cairn can read")
                    }
                    Err(cairn_pst::Error::Io(e)) => {
                        return Err(anyhow::anyhow!(
                            "writing the PST {} failed: {e}\nhint: check that it is writable and has free space",
                            path.display()
                        ));
                    }
                    Err(e) => report.skip(&row, format!("writing it into the PST: {e}")),
                }
            }
            Ok(())
        },
    )?;
    written?;
    let (items, bytes) = (out.items, out.bytes);
    out.pst
        .finish()
        .map_err(|e| anyhow::anyhow!("finishing the PST {}: {e}", path.display()))?;
    report.written = items;
    report.bytes = bytes;
    report.files.push(OutputFile {
        path: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        items,
    });
    Ok(report)
}

struct Out {
    pst: PstWriter<BufWriter<File>>,
    /// Folders made so far, by the item kind's top folder and the folder's path.
    folders: HashMap<(FolderKind, Vec<String>), FolderId>,
    items: u64,
    bytes: u64,
}

impl Out {
    /// Adds one item; `Ok(false)` when its content is not what its kind says.
    fn add(&mut self, row: &ItemRow, content: &[u8]) -> Result<bool, cairn_pst::Error> {
        let kind = match row.kind.as_str() {
            "message" | "archiveItem" => FolderKind::Mail,
            "event" => FolderKind::Calendar,
            "contact" => FolderKind::Contacts,
            _ => return Ok(false),
        };
        let folder = self.folder(kind, &folder_of(row))?;
        match kind {
            FolderKind::Mail => {
                let read = row
                    .sidecar
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                    .and_then(|v| v["isRead"].as_bool())
                    .unwrap_or(true);
                let converted;
                let content = if row.kind == "archiveItem" {
                    let Ok(item) = cairn_fxics::parse_message(content) else {
                        return Ok(false);
                    };
                    converted = cairn_fxics::to_mime(&item);
                    &converted[..]
                } else {
                    content
                };
                let Some(m) = cairn_formats::pst::message(content, read) else {
                    return Ok(false);
                };
                self.pst.add_message(folder, &m)?;
            }
            FolderKind::Calendar => {
                let Some(a) = serde_json::from_slice(content)
                    .ok()
                    .and_then(|v| cairn_formats::pst::appointment(&v))
                else {
                    return Ok(false);
                };
                self.pst.add_appointment(folder, &a)?;
            }
            FolderKind::Contacts => {
                let Ok(v) = serde_json::from_slice(content) else {
                    return Ok(false);
                };
                self.pst
                    .add_contact(folder, &cairn_formats::pst::contact(&v))?;
            }
        }
        Ok(true)
    }

    /// The PST folder of `path` (made with its parents the first time).
    fn folder(&mut self, kind: FolderKind, path: &[String]) -> Result<FolderId, cairn_pst::Error> {
        let mut parent = self.pst.root();
        for depth in 1..=path.len() {
            let key = (kind, path[..depth].to_vec());
            parent = match self.folders.get(&key) {
                Some(id) => *id,
                None => {
                    let id = self.pst.add_folder(parent, &path[depth - 1], kind)?;
                    self.folders.insert(key, id);
                    id
                }
            };
        }
        Ok(parent)
    }
}
