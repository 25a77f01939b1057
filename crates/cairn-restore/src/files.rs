//! Files: uploaded to the same path in the target drive (folders created as needed),
//! small ones in one request, larger ones through an upload session streamed from the
//! repository. A file at that path with the same content is left alone; a different one
//! is the collision policy's (`replace`, or a keep-both name beside it).

use crate::names::{decode_component, keep_both_name, segment, url_path};
use crate::report::Done;
use crate::run::{Ctx, ItemResult, why};
use crate::{Collision, RestoreError};
use bytes::Bytes;
use cairn_catalog::ItemRow;
use cairn_graph::GraphError;
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};
use std::io::Write;

/// Files up to this size go in one request; Graph documents simple upload up to 250 MB
/// (older pages: 4 MB), sessions are the safe path above a few MB.
const SIMPLE_MAX: u64 = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Drive {
    /// The user's OneDrive (`onedrive/<path>`).
    OneDrive,
    /// A document library of a site or group (`libraries/<library>/<path>`).
    Library(String),
}

/// The drive and path (decoded names) of a file path in the restore point.
pub(crate) fn file_of(path: &str) -> Option<(Drive, Vec<String>)> {
    let decode = |s: &str| -> Vec<String> {
        s.split('/')
            .filter(|p| !p.is_empty())
            .map(decode_component)
            .collect()
    };
    if let Some(rest) = path.strip_prefix("onedrive/") {
        let parts = decode(rest);
        return (!parts.is_empty()).then_some((Drive::OneDrive, parts));
    }
    let rest = path.strip_prefix("libraries/")?;
    let (lib, rest) = rest.split_once('/')?;
    let parts = decode(rest);
    (!parts.is_empty()).then(|| (Drive::Library(decode_component(lib)), parts))
}

/// The target drive's id.
async fn drive_id(ctx: &Ctx, drive: &Drive) -> Result<String, String> {
    let key = match drive {
        Drive::OneDrive => "drive\0".to_string(),
        Drive::Library(l) => format!("drive\0{l}"),
    };
    let mut dirs = ctx.dirs.lock().await;
    if let Some(id) = dirs.get(&key) {
        return Ok(id.clone());
    }
    let id = match drive {
        Drive::OneDrive => {
            let v = ctx
                .graph
                .get(&format!("{}/drive?$select=id", ctx.base))
                .await
                .map_err(|e| why("finding the target's OneDrive", e))?;
            v["id"].as_str().unwrap_or_default().to_string()
        }
        Drive::Library(name) => {
            let mut s = Box::pin(
                ctx.graph
                    .items(&format!("{}/drives?$select=id,name", ctx.base)),
            );
            let mut found = None;
            while let Some(d) = s.next().await {
                let d = d.map_err(|e| why("listing the document libraries", e))?;
                if d["name"].as_str().is_some_and(|n| n == name) {
                    found = d["id"].as_str().map(str::to_string);
                    break;
                }
            }
            found.ok_or_else(|| {
                format!("the target has no document library named {name} (libraries are not created by a restore)")
            })?
        }
    };
    if id.is_empty() {
        return Err("Graph gave no drive id".into());
    }
    dirs.insert(key, id.clone());
    Ok(id)
}

/// The item path of the folder `parts` (created as needed): `/drives/{d}/root` or
/// `/drives/{d}/items/{id}`.
async fn folder(ctx: &Ctx, drive: &str, parts: &[String]) -> Result<String, String> {
    let mut dirs = ctx.dirs.lock().await;
    let mut parent = format!("/drives/{drive}/root");
    for i in 0..parts.len() {
        let key = format!("file\0{drive}\0{}", parts[..=i].join("\0"));
        if let Some(p) = dirs.get(&key) {
            parent = p.clone();
            continue;
        }
        let at = format!(
            "/drives/{drive}/root:/{}?$select=id,folder",
            url_path(&parts[..=i])
        );
        let found = ctx
            .get_opt(&at)
            .await
            .map_err(|e| why(&format!("looking up folder {}", parts[..=i].join("/")), e))?;
        let id = match found {
            Some(v) if v.get("folder").is_some() => v["id"].as_str().unwrap_or_default().into(),
            Some(_) => {
                return Err(format!(
                    "a file named {} is where a folder should be",
                    parts[..=i].join("/")
                ));
            }
            None => {
                let r = ctx
                    .graph
                    .send_json(
                        Method::POST,
                        &format!("{parent}/children"),
                        json!({"name": parts[i], "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}),
                    )
                    .await;
                match r {
                    Ok(v) => v["id"].as_str().unwrap_or_default().to_string(),
                    Err(e) if e.status() == Some(409) => ctx
                        .get_opt(&at)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|v| v["id"].as_str().map(str::to_string))
                        .ok_or_else(|| why("creating a folder", e))?,
                    Err(e) => return Err(why(&format!("creating folder {}", parts[i]), e)),
                }
            }
        };
        if id.is_empty() {
            return Err("Graph gave no folder id".into());
        }
        parent = format!("/drives/{drive}/items/{id}");
        dirs.insert(key, parent.clone());
    }
    Ok(parent)
}

/// Whether the driveItem `v` holds what `row` held.
fn same_content(v: &Value, row: &ItemRow) -> bool {
    if v.get("file").is_none() {
        return false;
    }
    let size = v["size"].as_u64();
    match (
        v["file"]["hashes"]["quickXorHash"].as_str(),
        row.hash.as_deref(),
    ) {
        (Some(a), Some(b)) => a == b && size == Some(row.size),
        // Hashes can be missing until Graph has processed a file: size only.
        _ => size == Some(row.size),
    }
}

/// A blocking writer feeding an async upload through a small bounded channel.
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, GraphError>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the upload stopped"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Uploads the row's content as `name` into `parent`; `conflict`: fail|replace|rename.
async fn upload(
    ctx: &Ctx,
    parent: &str,
    name: &str,
    conflict: &str,
    row: &ItemRow,
) -> Result<u64, String> {
    if row.size <= SIMPLE_MAX {
        let data = ctx.read(&row.path).await?;
        let n = data.len() as u64;
        ctx.send_raw(
            Method::PUT,
            &format!(
                "{parent}:/{}:/content?@microsoft.graph.conflictBehavior={conflict}",
                segment(name)
            ),
            "application/octet-stream",
            Bytes::from(data),
        )
        .await
        .map_err(|e| why("uploading", e))?;
        return Ok(n);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, GraphError>>(8);
    let reader = ctx.reader.clone();
    let path = row.path.clone();
    let feeder = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter(tx.clone());
        if let Err(e) = reader.read(&path, &mut w) {
            let _ = tx.blocking_send(Err(GraphError::Decode {
                path: path.clone(),
                detail: format!("reading the repository: {}", RestoreError::from(e)),
            }));
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let r = ctx
        .graph
        .upload_session(parent, name, row.size, conflict, stream)
        .await;
    let _ = feeder.await;
    r.map_err(|e| why("uploading (upload session)", e))?;
    Ok(row.size)
}

pub(crate) async fn restore(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let (drive, parts) = file_of(&row.path).ok_or("not a file path")?;
    let mut full: Vec<String> = ctx.dest.root.iter().cloned().collect();
    full.extend(parts);
    let name = full.pop().ok_or("a file without a name")?;
    let d = drive_id(ctx, &drive).await?;
    let shown = |n: &str| {
        let mut p = full.clone();
        p.push(n.to_string());
        match &drive {
            Drive::OneDrive => format!("OneDrive /{}", p.join("/")),
            Drive::Library(l) => format!("library {l} /{}", p.join("/")),
        }
    };
    let lookup = |n: &str| {
        let mut p = full.clone();
        p.push(n.to_string());
        format!(
            "/drives/{d}/root:/{}?$select=id,size,file,folder",
            url_path(&p)
        )
    };
    let existing = ctx
        .get_opt(&lookup(&name))
        .await
        .map_err(|e| why("looking for the file at the target", e))?;
    match existing {
        None => {
            let parent = folder(ctx, &d, &full).await?;
            let n = upload(ctx, &parent, &name, "fail", row).await?;
            Ok((Done::Created, shown(&name), n))
        }
        Some(v) if same_content(&v, row) => Ok((
            Done::Skipped,
            format!("already at {} with the same content", shown(&name)),
            0,
        )),
        Some(v) if v.get("folder").is_some() => Err(format!(
            "a folder is where the file should be: {}",
            shown(&name)
        )),
        Some(_) => match ctx.dest.collision {
            Collision::Skip => ctx.collision_skip(&shown(&name)),
            Collision::Overwrite => {
                let parent = folder(ctx, &d, &full).await?;
                let n = upload(ctx, &parent, &name, "replace", row).await?;
                Ok((Done::Overwritten, shown(&name), n))
            }
            Collision::KeepBoth => {
                // A name of its own, the same on every rerun, so a rerun finds the copy.
                let alt = keep_both_name(&name, &ctx.dest.label);
                match ctx
                    .get_opt(&lookup(&alt))
                    .await
                    .map_err(|e| why("looking for a kept copy", e))?
                {
                    Some(v) if same_content(&v, row) => Ok((
                        Done::Skipped,
                        format!("already kept at {} with the same content", shown(&alt)),
                        0,
                    )),
                    found => {
                        let conflict = if found.is_some() { "rename" } else { "fail" };
                        let parent = folder(ctx, &d, &full).await?;
                        let n = upload(ctx, &parent, &alt, conflict, row).await?;
                        Ok((Done::KeptBoth, shown(&alt), n))
                    }
                }
            }
        },
    }
}

/// A drive folder (empty ones too): created if missing.
pub(crate) async fn restore_folder(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let (drive, parts) = file_of(&row.path).ok_or("not a folder path")?;
    let mut full: Vec<String> = ctx.dest.root.iter().cloned().collect();
    full.extend(parts);
    let d = drive_id(ctx, &drive).await?;
    let shown = match &drive {
        Drive::OneDrive => format!("OneDrive /{}", full.join("/")),
        Drive::Library(l) => format!("library {l} /{}", full.join("/")),
    };
    let found = ctx
        .get_opt(&format!(
            "/drives/{d}/root:/{}?$select=id,folder",
            url_path(&full)
        ))
        .await
        .map_err(|e| why("looking for the folder at the target", e))?;
    match found {
        Some(v) if v.get("folder").is_some() => {
            Ok((Done::Skipped, format!("already at {shown}"), 0))
        }
        Some(_) => Err(format!("a file is where the folder should be: {shown}")),
        None => {
            folder(ctx, &d, &full).await?;
            Ok((Done::Created, shown, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths() {
        assert_eq!(
            file_of("onedrive/Docs/a%2Fb.txt"),
            Some((Drive::OneDrive, vec!["Docs".into(), "a/b.txt".into()]))
        );
        assert_eq!(
            file_of("libraries/Shared Documents/x.docx"),
            Some((
                Drive::Library("Shared Documents".into()),
                vec!["x.docx".into()]
            ))
        );
        assert_eq!(file_of("mail/Inbox/x.eml"), None);
        assert_eq!(file_of("libraries/only"), None);
    }
}
