//! `cairn export`: a restore point's items as files other programs open, without Graph
//! (`cairn_app::export`), with progress lines on stderr and the report on stdout.

use super::human_size;
use crate::repo_cmd::RepoArgs;
use cairn_app::export::{ExportProgress, ExportRequest, Format};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The resource, optionally with a restore point (`@3`, `@1a2b3c4d`, `@2026-03-01`).
    #[arg(value_name = "RESOURCE[@POINT]")]
    target: String,
    /// Folders or items of the restore point to export (`mail/Inbox`, `onedrive/Documents`);
    /// default: everything of the format's kind.
    paths: Vec<String>,
    /// eml: each message as an .eml file (its original bytes), in its folder tree; mbox: one
    /// mboxrd file per mail folder; ics: one iCalendar file per calendar; vcf: one vCard 3.0
    /// file per contact folder; files: OneDrive and library files (and list items as JSON)
    /// as a directory tree; pst: one Outlook PST file of mail, calendars and contacts in
    /// their folders; html: Teams channels (`teams/<channel>` of a team) and chats
    /// (`chats/<chat>` of a user) as self-contained HTML transcripts; json: the same as
    /// JSON documents, replies nested under their thread's first post.
    #[arg(long, value_parser = Format::NAMES)]
    format: String,
    /// Directory to write to: created, and it must be empty. With --zip, the archive's
    /// path if it ends in `.zip`, else the directory to write the archive into; with
    /// --format pst, the file's path if it ends in `.pst`, else the directory to write it
    /// into (an existing file is never overwritten); with --format html or json, the
    /// transcript's path if it ends in `.html`/`.json` (one channel or chat), else the
    /// directory to write one transcript per channel and chat into.
    #[arg(long, short = 'o', value_name = "DIR|FILE")]
    output: PathBuf,
    /// Write one zip archive instead of a tree (eml, ics and files).
    #[arg(long)]
    zip: bool,
    /// The tenant, when several have a resource of that name.
    #[arg(long, env = cairn_config::env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// No progress lines on stderr.
    #[arg(long)]
    no_progress: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(a: ExportArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = Arc::new(crate::config::workspace(config, &a.repo, None)?);
    let req = ExportRequest {
        target: a.target.clone(),
        tenant: a.tenant.clone(),
        paths: a.paths.clone(),
        format: Format::parse(&a.format)
            .ok_or_else(|| anyhow::anyhow!("unknown format {}", a.format))?,
        output: a.output.clone(),
        zip: a.zip,
    };
    let lines = Arc::new(Lines {
        on: !a.no_progress,
        last: Mutex::new((Instant::now(), 0, 0)),
    });
    let report =
        crate::sim::runtime()?.block_on(cairn_app::export::export(ws, req, lines.clone()))?;
    lines.done();
    if report.written == 0 && report.skipped.is_empty() {
        eprintln!(
            "note: nothing of that kind under {} in restore point {}; `cairn ls {}@{}` shows what it holds",
            if report.paths == [""] {
                "/".to_string()
            } else {
                report.paths.join(", ")
            },
            report.point,
            report.resource,
            report.point
        );
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!(
            "exported {} items ({}) of {} restore point {} to {}",
            report.written,
            human_size(report.bytes),
            report.resource,
            report.point,
            report.output.display()
        );
        for f in &report.files {
            outln!("  {}  {} items", f.path, f.items);
        }
        if !report.skipped.is_empty() {
            outln!("skipped {}:", report.skipped.len());
            for s in &report.skipped {
                outln!(
                    "  {}: {}",
                    s.path.as_deref().or(s.item.as_deref()).unwrap_or("?"),
                    s.reason
                );
            }
        }
    }
    Ok(())
}

/// Progress lines on stderr, at most one every two seconds.
struct Lines {
    on: bool,
    /// When the last line was written, and the totals so far.
    last: Mutex<(Instant, u64, u64)>,
}

impl ExportProgress for Lines {
    fn exported(&self, items: u64, bytes: u64) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.1 = items;
        last.2 = bytes;
        if self.on && last.0.elapsed() >= Duration::from_secs(2) {
            last.0 = Instant::now();
            eprintln!("exported {items} items ({})…", human_size(bytes));
        }
    }
}

impl Lines {
    fn done(&self) {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if self.on {
            eprintln!("exported {} items ({})", last.1, human_size(last.2));
        }
    }
}
