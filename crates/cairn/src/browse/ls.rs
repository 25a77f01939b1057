//! `cairn ls RESOURCE[@POINT] [PATH]`: what a restore point holds under a path, from the
//! catalog alone.
//!
//! The folders below the path come first, with how many items and bytes they hold, then the
//! items directly in it. Two walks of the catalog rows under the path (folders, then items)
//! keep memory flat whatever the folder's size.

use super::{clean_path, human_size, is_under, select, short};
use crate::config::{Config, UserError};
use crate::repo_cmd::RepoArgs;
use cairn_catalog::{Catalog, ItemRow};
use clap::Args;
use serde_json::json;
use std::collections::BTreeMap;
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
    #[arg(long, env = crate::env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Machine-readable output: one JSON object.
    #[arg(long)]
    json: bool,
}

/// The kind of the rows that record a folder itself (drive folders, so that empty ones
/// are kept): shown as directories, never as items.
pub const FOLDER: &str = "folder";

#[derive(Default)]
struct Folder {
    items: u64,
    size: u64,
}

pub fn run(a: LsArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let cat = super::catalog(&cfg, &a.repo)?;
    let sel = select(&cat, &a.target, a.tenant.as_deref())?;
    let (res, seq) = (sel.resource.id, sel.point.seq);
    let dir = clean_path(&a.path);
    let prefix = dir.clone();
    let depth = if dir.is_empty() {
        0
    } else {
        dir.split('/').count()
    };

    // Folders (or, recursively, nothing to gather) below the path.
    let mut folders: BTreeMap<String, Folder> = BTreeMap::new();
    let mut direct = 0u64;
    let mut exact: Option<ItemRow> = None;
    let mut is_folder = false;
    cat.for_each_at(res, seq, &prefix, &mut |row| {
        let folder_row = row.kind == FOLDER;
        if row.path == dir {
            // The path names a folder the backup recorded (a drive folder), or one item.
            if folder_row {
                is_folder = true;
            } else {
                exact = Some(row);
            }
        } else if is_under(&row.path, &dir) {
            let rest: Vec<&str> = row.path.split('/').skip(depth).collect();
            if !a.recursive && (rest.len() > 1 || folder_row) {
                let f = folders.entry(rest[0].to_string()).or_default();
                if !folder_row {
                    f.items += 1;
                    f.size += row.size;
                }
            } else {
                direct += 1;
            }
        }
        true
    })?;
    if exact.is_none() && !is_folder && folders.is_empty() && direct == 0 && !dir.is_empty() {
        return Err(UserError::new(format!(
            "{} has nothing under {dir} in restore point {}",
            sel.resource.name, seq
        ))
        .hint(format!(
            "`cairn ls {}@{seq}` shows the top folders (mail, calendar, contacts, onedrive, libraries, lists)",
            sel.resource.name
        ))
        .into());
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let point = json!({"seq": seq, "snapshot": sel.point.snapshot, "time": sel.point.time});
    if a.json {
        write!(
            out,
            "{{\"tenant\":{},\"resource\":{},\"point\":{point},\"path\":{},\"folders\":[",
            json!(sel.resource.tenant),
            json!(sel.resource.name),
            json!(dir)
        )?;
        for (i, (name, f)) in folders.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let v =
                json!({"name": name, "path": join(&dir, name), "items": f.items, "size": f.size});
            write!(out, "{sep}{v}")?;
        }
        write!(out, "],\"items\":[")?;
    } else {
        writeln!(
            out,
            "{} (tenant {}) restore point {} ({} {}) {}",
            sel.resource.name,
            sel.resource.tenant,
            seq,
            short(&sel.point.snapshot),
            sel.point.time.format("%Y-%m-%d %H:%M:%S"),
            if dir.is_empty() { "/" } else { &dir }
        )?;
        for (name, f) in &folders {
            writeln!(
                out,
                "{:>10}  {:<16}  {name}/  ({} items)",
                human_size(f.size),
                "",
                f.items
            )?;
        }
    }
    let mut first = true;
    let mut failed: Option<std::io::Error> = None;
    let mut emit = |row: ItemRow| -> bool {
        let r = if a.json {
            let sep = if first { "" } else { "," };
            write!(out, "{sep}{}", item_json(&row))
        } else {
            let shown = if a.recursive {
                row.path
                    .strip_prefix(&dir)
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
    };
    if let Some(row) = exact {
        emit(row);
    } else if direct > 0 {
        cat.for_each_at(res, seq, &prefix, &mut |row| {
            if !is_under(&row.path, &dir) || row.path == dir {
                return true;
            }
            if !a.recursive && (row.kind == FOLDER || row.path.split('/').skip(depth).count() > 1) {
                return true;
            }
            emit(row)
        })?;
    }
    if let Some(e) = failed {
        // A closed pipe (`| head`) is not an error of ours.
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(());
        }
        return Err(e.into());
    }
    if a.json {
        writeln!(out, "]}}")?;
    }
    out.flush()?;
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
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
