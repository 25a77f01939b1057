//! `cairn ls RESOURCE[@POINT] [PATH]`: what a restore point holds under a path, from the
//! catalog alone.
//!
//! The folders below the path come first, with how many items and bytes they hold, then the
//! items directly in it. Two walks of the catalog rows under the path (folders, then items)
//! keep memory flat whatever the folder's size.

use super::{human_size, short};
use crate::repo_cmd::RepoArgs;
use cairn_app::browse;
use cairn_catalog::ItemRow;
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::Path;

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The resource (user principal name, group or site), optionally with a restore point:
    /// `@3` (number), `@1a2b3c4d` (snapshot id) or `@2026-03-01` (the latest at or before).
    #[arg(value_name = "RESOURCE[@POINT]")]
    target: String,
    /// A folder of the restore point (`mail/Inbox`, `onedrive/Documents`); default: its root.
    #[arg(default_value = "")]
    path: String,
    /// Every item below the path, with its path, instead of folders and items.
    #[arg(long, short = 'R')]
    recursive: bool,
    /// The tenant, when several have a resource of that name.
    #[arg(long, env = cairn_config::env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Machine-readable output: one JSON object.
    #[arg(long)]
    json: bool,
}

pub use cairn_app::browse::FOLDER;

pub fn run(a: LsArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, None)?;
    let cat = ws.catalog()?;
    let sel = cairn_app::browse::select_in(&ws, &a.target, a.tenant.as_deref())?;
    let listing = browse::list(&*cat, sel, &a.path, a.recursive)?;
    let (sel, dir) = (&listing.selected, listing.dir.as_str());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let point =
        json!({"seq": sel.point.seq, "snapshot": sel.point.snapshot, "time": sel.point.time});
    if a.json {
        write!(
            out,
            "{{\"tenant\":{},\"resource\":{},\"point\":{point},\"path\":{},\"folders\":[",
            json!(sel.resource.tenant),
            json!(sel.resource.name),
            json!(dir)
        )?;
        for (i, f) in listing.folders.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let v = json!({"name": f.name, "path": f.path, "items": f.items, "size": f.size});
            write!(out, "{sep}{v}")?;
        }
        write!(out, "],\"items\":[")?;
    } else {
        writeln!(
            out,
            "{} (tenant {}) restore point {} ({} {}) {}",
            sel.resource.name,
            sel.resource.tenant,
            sel.point.seq,
            short(&sel.point.snapshot),
            sel.point.time.format("%Y-%m-%d %H:%M:%S"),
            if dir.is_empty() { "/" } else { dir }
        )?;
        for f in &listing.folders {
            writeln!(
                out,
                "{:>10}  {:<16}  {}/  ({} items)",
                human_size(f.size),
                "",
                f.name,
                f.items
            )?;
        }
    }
    let mut first = true;
    let mut failed: Option<std::io::Error> = None;
    listing.for_each_item(&*cat, &mut |row: ItemRow| {
        let r = if a.json {
            let sep = if first { "" } else { "," };
            write!(out, "{sep}{}", item_json(&row))
        } else {
            let shown = if a.recursive {
                row.path
                    .strip_prefix(dir)
                    .unwrap_or(&row.path)
                    .trim_start_matches('/')
            } else {
                row.path.rsplit('/').next().unwrap_or(&row.path)
            };
            let when = row.date.unwrap_or(row.mtime).format("%Y-%m-%d %H:%M");
            if row.kind == FOLDER {
                writeln!(out, "{:>10}  {when:<16}  {shown}/", "")
            } else {
                let t = title(&row);
                let name = row.path.rsplit('/').next().unwrap_or("");
                let t = if t == name { "" } else { t.as_str() };
                writeln!(
                    out,
                    "{:>10}  {when:<16}  {shown}  {t}",
                    human_size(row.size)
                )
            }
        };
        first = false;
        match r {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if a.json {
        writeln!(out, "]}}")?;
    }
    out.flush()?;
    Ok(())
}

/// What a person recognises an item by: a message's subject, a file's or contact's name.
pub fn title(row: &ItemRow) -> String {
    let t = match row.kind.as_str() {
        "message" | "event" => row.subject.as_deref().or(row.name.as_deref()),
        _ => row.name.as_deref().or(row.subject.as_deref()),
    };
    match t {
        Some(t) if !t.trim().is_empty() => t.split_whitespace().collect::<Vec<_>>().join(" "),
        _ if row.kind == "message" => "(no subject)".into(),
        _ => String::new(),
    }
}

/// An item as `ls --json` and `find --json` show it.
pub fn item_json(row: &ItemRow) -> serde_json::Value {
    json!({
        "path": row.path,
        "name": row.path.rsplit('/').next(),
        "kind": row.kind,
        "id": row.item,
        "size": row.size,
        "mtime": row.mtime,
        "date": row.date,
        "subject": row.subject,
        "from": row.sender,
        "to": row.recipients,
        "display_name": row.name,
    })
}
