//! OneDrive, document libraries and SharePoint lists.
//!
//! Files: `onedrive/<path>` for a user's drive, `libraries/<library>/<path>` for sites and
//! groups. The drive delta gives every file's size and time, so nothing is fetched while
//! staging: the archive downloads a file only when the repository finds it new or changed.
//! List items: `lists/<list>/<item id>.json`, Graph JSON with their fields.

use crate::engine::{Run, component, time_of};
use crate::scope::{Job, Source, changed, drop_vanished, named, sync, sync_named};
use cairn_catalog::ItemRow;
use futures::StreamExt;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::OnceLock;

const DRIVE_SELECT: &str = "id,name,size,file,folder,root,deleted,parentReference,\
     lastModifiedDateTime,eTag,cTag,shared,@microsoft.graph.downloadUrl";

/// A drive item: a file (content downloaded by the archive when new or changed) or a folder
/// (kept so that empty folders are restored, and so that a renamed or moved folder is seen:
/// the delta reports only the folder, `repath` then asks for a fresh enumeration that gives
/// its children their new paths).
fn plan_file<'a>(
    run: &'a Run<'a>,
    scope: &OnceLock<String>,
    prefix: &str,
    it: Value,
    repath: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<Option<Job<'a>>> {
    // The drive, when it was enumerated without asking for it first: every item names it.
    let scope = match scope.get() {
        Some(s) => s.as_str(),
        None => {
            let Some(drive) = it["parentReference"]["driveId"].as_str() else {
                anyhow::bail!("Graph gave a drive item without its drive id");
            };
            scope.get_or_init(|| format!("drive:{drive}")).as_str()
        }
    };
    let folder = it.get("folder").is_some();
    if it.get("root").is_some() || (!folder && it.get("file").is_none()) {
        return Ok(None);
    }
    let cat = run.catalog();
    let id = it["id"].as_str().unwrap_or_default().to_string();
    let parent = it["parentReference"]["path"].as_str().unwrap_or("");
    let rel = parent
        .split_once("root:")
        .map(|x| x.1)
        .unwrap_or("")
        .trim_start_matches('/');
    let rel = percent_encoding::percent_decode_str(rel).decode_utf8_lossy();
    let mut path = prefix.to_string();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        path.push('/');
        path.push_str(&component(part));
    }
    let name = it["name"].as_str().unwrap_or_default();
    path.push('/');
    path.push_str(&component(name));
    // Shared on its own (the root of a permission hierarchy, as `Prefer:
    // hierarchicalsharing` reports it): its permissions are read and kept. The others
    // inherit theirs from a folder above, whose permissions are kept instead.
    let shared = it.get("shared").is_some();
    let change = if folder {
        // A folder changes for the repository only when its path (or whether it is shared
        // on its own) does.
        if shared {
            format!("{path}\u{1}shared")
        } else {
            path.clone()
        }
    } else {
        it["eTag"]
            .as_str()
            .or(it["cTag"].as_str())
            .or(it["lastModifiedDateTime"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    // Its sharing changed (delta says so; its eTag need not change): staged again, so that
    // its permissions are read again, or dropped when it is no longer shared on its own.
    let found = if it.get("@microsoft.graph.sharedChanged").is_some() {
        cat.lookup(run.res, &id)?
    } else {
        match changed(run, &id, &change, &path)? {
            Some(found) => found,
            None => return Ok(None),
        }
    };
    if folder
        && found
            .current
            .as_ref()
            .or(found.staged.as_ref().map(|s| &s.0))
            .is_some_and(|c| c.path != path)
    {
        repath.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let mut row = ItemRow {
        item: id,
        scope: scope.into(),
        kind: if folder { "folder" } else { "file" }.into(),
        path,
        size: if folder {
            0
        } else {
            it["size"].as_u64().unwrap_or(0)
        },
        mtime: time_of(&it["lastModifiedDateTime"]).unwrap_or_default(),
        change,
        subject: None,
        sender: None,
        recipients: None,
        date: time_of(&it["lastModifiedDateTime"]),
        name: Some(name.to_string()),
        hash: it["file"]["hashes"]["quickXorHash"]
            .as_str()
            .map(str::to_string),
        sidecar: None,
        // The pre-authenticated URL delta gave: the archive downloads from it without asking
        // Graph for one (it is valid for a while; an expired one is replaced by a fresh one).
        spool: it["@microsoft.graph.downloadUrl"]
            .as_str()
            .filter(|_| !folder)
            .map(str::to_string),
    };
    cat.stage_put(run.res, &row)?;
    let versions = run.engine.opts.file_versions && !folder;
    if !shared && !versions {
        return Ok(None);
    }
    // Its own permissions and, when asked, a file's earlier versions are recorded beside
    // it (`~permissions/…`, `~folder-permissions/…`, `~versions/…` in the restore point).
    let drive = scope.trim_start_matches("drive:").to_string();
    Ok(Some(Box::pin(async move {
        let object = format!("{} {}", row.kind, row.path);
        let fail =
            |what: &str, e: cairn_graph::GraphError| (object.clone(), format!("{what}: {e}"));
        let base = format!("/drives/{drive}/items/{}", row.item);
        let mut meta = serde_json::json!({});
        if shared {
            let perms = run
                .graph()
                .get(&format!("{base}/permissions"))
                .await
                .map_err(|e| fail("reading its permissions", e))?;
            meta["permissions"] = perms["value"].clone();
        }
        if versions {
            let list = run
                .graph()
                .get(&format!("{base}/versions"))
                .await
                .map_err(|e| fail("listing its versions", e))?;
            // The first is the current content, already the file itself.
            let earlier: Vec<Value> = list["value"]
                .as_array()
                .map(|v| v.iter().skip(1).cloned().collect())
                .unwrap_or_default();
            meta["versions"] = Value::Array(earlier);
        }
        row.sidecar = Some(meta.to_string());
        run.catalog()
            .stage_put(run.res, &row)
            .map_err(|e| (object, e.to_string()))
    })))
}

/// One drive into `prefix`: `start` is its delta query, `scope` its collection in the
/// catalog (`drive:<id>`), unset when the drive id is to be learnt from its items.
async fn stage_drive(
    run: &Run<'_>,
    scope: &OnceLock<String>,
    start: String,
    prefix: &str,
) -> anyhow::Result<String> {
    let repath = std::sync::atomic::AtomicBool::new(false);
    sync_named(run, scope, Source::Delta(start.clone()), |it| {
        plan_file(run, scope, prefix, it, &repath)
    })
    .await?;
    let Some(name) = scope.get() else {
        anyhow::bail!("the drive's delta gave no item, not even its root");
    };
    if repath.load(std::sync::atomic::Ordering::Relaxed) {
        // A folder was renamed or moved: enumerate afresh so its children follow.
        tracing::info!(resource = %run.target.name, scope = name, "a folder moved: enumerating the drive afresh");
        run.catalog().stage_token(run.res, name, None)?;
        let again = std::sync::atomic::AtomicBool::new(false);
        sync_named(run, scope, Source::Delta(start), |it| {
            plan_file(run, scope, prefix, it, &again)
        })
        .await?;
    }
    Ok(name.clone())
}

fn drive_delta(drive: &str) -> String {
    format!("{drive}/root/delta?$select={DRIVE_SELECT}")
}

pub(crate) async fn stage_onedrive(run: &Run<'_>) -> anyhow::Result<()> {
    // The drive an earlier run followed goes on as that collection (from its delta link, or
    // enumerated afresh and reconciled); a first run enumerates the user's drive without
    // asking which it is (a request, and a resource unit, per user): its items name it.
    let known: Vec<String> = run
        .catalog()
        .scopes(run.res)?
        .into_iter()
        .filter(|s| s.starts_with("drive:"))
        .collect();
    let scope = match known.as_slice() {
        [] => OnceLock::new(),
        [one] => OnceLock::from(one.clone()),
        _ => {
            // Several drives held: which is the user's now is asked.
            let d = run
                .graph()
                .get(&format!("{}/drive?$select=id", run.base))
                .await?;
            OnceLock::from(format!("drive:{}", d["id"].as_str().unwrap_or_default()))
        }
    };
    let start = match scope.get() {
        Some(s) => drive_delta(&format!("/drives/{}", s.trim_start_matches("drive:"))),
        None => drive_delta(&format!("{}/drive", run.base)),
    };
    let staged = match stage_drive(run, &scope, start, "onedrive").await {
        Err(e) if scope.get().is_some() && crate::engine::is_missing(&e) => {
            // The drive held is gone: the user's, whichever it is now.
            let start = drive_delta(&format!("{}/drive", run.base));
            stage_drive(run, &OnceLock::new(), start, "onedrive").await?
        }
        r => r?,
    };
    drop_vanished(run, "drive:", &HashSet::from([staged]))
}

/// Every document library of a site or group.
pub(crate) async fn stage_libraries(run: &Run<'_>) -> anyhow::Result<()> {
    let drives = named(
        run,
        &format!("{}/drives?$select=id,name", run.base),
        "name",
        "Documents",
    )
    .await?;
    let mut listed = HashSet::new();
    for (id, name) in drives {
        listed.insert(format!("drive:{id}"));
        let start = drive_delta(&format!("/drives/{id}"));
        let scope = OnceLock::from(format!("drive:{id}"));
        if let Err(e) = stage_drive(run, &scope, start, &format!("libraries/{name}")).await {
            run.skip(format!("library {name}"), format!("{e:#}"));
        }
    }
    drop_vanished(run, "drive:", &listed)
}

/// Every list of a site that is not a document library.
pub(crate) async fn stage_lists(run: &Run<'_>) -> anyhow::Result<()> {
    let mut lists = Vec::new();
    let mut s = Box::pin(
        run.graph()
            .items(&format!("{}/lists?$select=id,displayName,list", run.base)),
    );
    while let Some(l) = s.next().await {
        let l = l?;
        if l["list"]["template"] == "documentLibrary" {
            continue;
        }
        lists.push((
            l["id"].as_str().unwrap_or_default().to_string(),
            component(l["displayName"].as_str().unwrap_or("List")),
        ));
    }
    drop(s);
    let mut listed = HashSet::new();
    for (id, name) in lists {
        let scope = format!("list:{id}");
        listed.insert(scope.clone());
        let start = format!("{}/lists/{id}/items/delta?expand=fields", run.base);
        let dir = format!("lists/{name}");
        let r = sync(run, &scope, Source::Delta(start), |mut v| {
            let cat = run.catalog();
            let Some(item) = v["id"].as_str().map(str::to_string) else {
                return Ok(None);
            };
            let change = v["eTag"]
                .as_str()
                .or(v["lastModifiedDateTime"].as_str())
                .unwrap_or_default()
                .to_string();
            let path = format!("{dir}/{}.json", component(&item));
            if changed(run, &item, &change, &path)?.is_none() {
                return Ok(None);
            }
            if let Some(o) = v.as_object_mut() {
                o.remove("@odata.context");
            }
            let doc = serde_json::to_string_pretty(&v)?;
            cat.stage_put(
                run.res,
                &ItemRow {
                    item,
                    scope: scope.clone(),
                    kind: "listItem".into(),
                    path,
                    size: doc.len() as u64,
                    mtime: time_of(&v["lastModifiedDateTime"]).unwrap_or_default(),
                    change,
                    name: v["fields"]["Title"].as_str().map(str::to_string),
                    date: time_of(&v["createdDateTime"]),
                    sidecar: Some(doc),
                    ..ItemRow::default()
                },
            )?;
            Ok(None)
        })
        .await;
        if let Err(e) = r {
            run.skip(format!("list {name}"), format!("{e:#}"));
        }
    }
    drop_vanished(run, "list:", &listed)
}
