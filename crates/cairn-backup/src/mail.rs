//! Exchange mail: every folder (hidden ones, Archive, Recoverable Items), each message as
//! its MIME byte for byte plus a sidecar with what MIME does not carry (read state, flags,
//! categories, importance, folder).
//!
//! Layout: `mail/<folder path>/<YYYY-MM>/<received>-<id hash>.eml` and `….meta.json`. A
//! received message's MIME never changes, so its size is known from the previous version
//! and a flag change fetches nothing: only the sidecar is new.

use crate::engine::{Run, component, short_id, time_of};
use crate::scope::{Job, Source, changed, drop_vanished, sync};
use cairn_catalog::ItemRow;
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

const SELECT: &str = "id,subject,from,sender,toRecipients,ccRecipients,bccRecipients,receivedDateTime,sentDateTime,lastModifiedDateTime,isRead,isDraft,flag,categories,importance,internetMessageId,changeKey,parentFolderId,hasAttachments,conversationId";

/// Properties kept beside the MIME.
const SIDECAR: &[&str] = &[
    "id",
    "isRead",
    "isDraft",
    "flag",
    "categories",
    "importance",
    "receivedDateTime",
    "sentDateTime",
    "lastModifiedDateTime",
    "internetMessageId",
    "conversationId",
    "subject",
];

pub(crate) struct Folder {
    pub id: String,
    /// Display names from the root, `/`-joined (each made a safe component).
    pub path: String,
    /// The mailbox holding it, when Graph names one (`parentMailboxUrl` of the mailbox
    /// import/export API: an auto-expanded archive's auxiliary mailbox).
    pub home: Option<String>,
}

/// Every folder of a hierarchy (`mailFolders`, `contactFolders`), flat from its delta
/// query, with its path; search folders are left out (they hold no items of their own).
pub(crate) async fn folder_tree(run: &Run<'_>, hierarchy: &str) -> anyhow::Result<Vec<Folder>> {
    folder_tree_at(run, &hierarchy_delta(&run.base, hierarchy)).await
}

/// The delta query of a folder hierarchy (`mailFolders`, `contactFolders`), read whole.
pub(crate) fn hierarchy_delta(base: &str, hierarchy: &str) -> String {
    format!("{base}/{hierarchy}/delta?$select=id,displayName,parentFolderId")
}

/// A well-known mail folder by name, as the folder list reads it.
fn well_known(base: &str, name: &str) -> String {
    format!("{base}/mailFolders/{name}?$select=id,displayName")
}

/// What every run of a mailbox reads before its folders' messages.
pub(crate) fn polls(base: &str) -> [String; 3] {
    [
        hierarchy_delta(base, "mailFolders"),
        well_known(base, "msgfolderroot"),
        well_known(base, "recoverableitemsroot"),
    ]
}

/// [`folder_tree`] from a folder delta query's URL.
pub(crate) async fn folder_tree_at(run: &Run<'_>, delta: &str) -> anyhow::Result<Vec<Folder>> {
    let mut all: HashMap<String, (String, Option<String>)> = HashMap::new();
    let mut homes: HashMap<String, String> = HashMap::new();
    let mut search: HashSet<String> = HashSet::new();
    let mut s = Box::pin(run.delta(delta, None));
    while let Some(ev) = s.next().await {
        if let cairn_graph::DeltaEvent::Upsert(f) = ev? {
            let id = f["id"].as_str().unwrap_or_default().to_string();
            if f["@odata.type"]
                .as_str()
                .is_some_and(|t| t.contains("mailSearchFolder"))
            {
                search.insert(id.clone());
            }
            if let Some(home) = f["parentMailboxUrl"].as_str() {
                homes.insert(id.clone(), home.to_string());
            }
            all.insert(
                id,
                (
                    f["displayName"].as_str().unwrap_or("(no name)").to_string(),
                    f["parentFolderId"].as_str().map(str::to_string),
                ),
            );
        }
    }
    drop(s);
    let mut out: Vec<Folder> = Vec::new();
    for id in all.keys() {
        if search.contains(id) {
            continue;
        }
        let mut parts = Vec::new();
        let mut cur = Some(id.clone());
        let mut depth = 0;
        while let Some(c) = cur {
            let Some((name, parent)) = all.get(&c) else {
                break;
            };
            parts.push(component(name));
            cur = parent.clone();
            depth += 1;
            if depth > 64 {
                break;
            }
        }
        parts.reverse();
        out.push(Folder {
            id: id.clone(),
            path: parts.join("/"),
            home: homes.get(id).cloned(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// All message folders of the mailbox, with their paths.
/// The folders, and whether the list is complete (a folder outside the tree could not be
/// read: then no folder counts as deleted in this run).
async fn folders(run: &Run<'_>) -> anyhow::Result<(Vec<Folder>, bool)> {
    let mut complete = true;
    let mut out = folder_tree(run, "mailFolders").await?;
    // The root of the tree itself can hold messages too.
    match run.get(&well_known(&run.base, "msgfolderroot")).await {
        Ok(f) => out.push(Folder {
            home: None,
            id: f["id"].as_str().unwrap_or_default().to_string(),
            path: component(
                f["displayName"]
                    .as_str()
                    .unwrap_or("Top of Information Store"),
            ),
        }),
        Err(e) => {
            complete = false;
            run.skip("mail folder Top of Information Store", e.to_string())
        }
    }
    // Recoverable Items lies outside the folder tree: reached by its well-known name, with
    // its subfolders (Deletions, Purges, Versions…).
    if let Err(e) = recoverable_items(run, &mut out).await {
        complete = false;
        run.skip("mail folder Recoverable Items", format!("{e:#}"));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((out, complete))
}

async fn recoverable_items(run: &Run<'_>, out: &mut Vec<Folder>) -> anyhow::Result<()> {
    let root = run
        .get(&well_known(&run.base, "recoverableitemsroot"))
        .await?;
    let root_id = root["id"].as_str().unwrap_or_default().to_string();
    let root_path = component(root["displayName"].as_str().unwrap_or("Recoverable Items"));
    let mut kids = Box::pin(run.graph().items(&format!(
        "{}/mailFolders/{root_id}/childFolders?includeHiddenFolders=true&$select=id,displayName",
        run.base
    )));
    while let Some(f) = kids.next().await {
        let f = f?;
        out.push(Folder {
            home: None,
            id: f["id"].as_str().unwrap_or_default().to_string(),
            path: format!(
                "{root_path}/{}",
                component(f["displayName"].as_str().unwrap_or("(no name)"))
            ),
        });
    }
    out.push(Folder {
        home: None,
        id: root_id,
        path: root_path,
    });
    Ok(())
}

fn addresses(v: &Value) -> Option<String> {
    let list: Vec<String> = v
        .as_array()?
        .iter()
        .filter_map(|r| r["emailAddress"]["address"].as_str().map(str::to_string))
        .collect();
    (!list.is_empty()).then(|| list.join(", "))
}

/// Stages the changes of every mail folder.
pub(crate) async fn stage(run: &Run<'_>) -> anyhow::Result<()> {
    let (folders, complete) = folders(run).await?;
    let listed: HashSet<String> = folders.iter().map(|f| format!("mail:{}", f.id)).collect();
    // A few folders at once: an unchanged folder is one round trip, and the mailbox's
    // concurrency limit is enforced by the Graph client whatever is asked of it.
    futures::stream::iter(folders.into_iter().map(|f| (f.id, f.path)))
        .map(|(id, path)| async move {
            let scope = format!("mail:{id}");
            let start = format!(
                "{}/mailFolders/{id}/messages/delta?$select={SELECT}",
                run.base
            );
            let r = sync(run, &scope, Source::Delta(start), |m| {
                plan(run, &scope, &path, m)
            })
            .await;
            if let Err(e) = r {
                // One folder's failure leaves its previous state in the restore point.
                run.skip(format!("mail folder {path}"), format!("{e:#}"));
            }
        })
        .buffer_unordered(FOLDERS_AT_ONCE)
        .collect::<()>()
        .await;
    if !complete {
        return Ok(());
    }
    drop_vanished(run, "mail:", &listed)
}

/// Mail folders enumerated at once per mailbox.
const FOLDERS_AT_ONCE: usize = 3;

/// Decides what a message needs: nothing, a new sidecar only, or its MIME fetched.
fn plan<'a>(
    run: &'a Run<'a>,
    scope: &str,
    folder: &str,
    m: Value,
) -> anyhow::Result<Option<Job<'a>>> {
    let cat = run.catalog();
    let Some(id) = m["id"].as_str().map(str::to_string) else {
        run.skip(format!("a message in {folder}"), "Graph gave no id");
        return Ok(None);
    };
    let change = m["changeKey"]
        .as_str()
        .or(m["lastModifiedDateTime"].as_str())
        .unwrap_or_default()
        .to_string();
    let draft = m["isDraft"] == json!(true);
    let modified = time_of(&m["lastModifiedDateTime"]).unwrap_or_default();
    let received = time_of(&m["receivedDateTime"]).unwrap_or(modified);
    let path = format!(
        "mail/{folder}/{}/{}-{}.eml",
        received.format("%Y-%m"),
        received.format("%Y%m%dT%H%M%SZ"),
        short_id(&id)
    );
    let Some(found) = changed(run, &id, &change, &path)? else {
        return Ok(None);
    };
    // Staged complete by an interrupted run.
    if let Some((s, false)) = &found.staged
        && s.change == change
        && s.path == path
        && s.spool
            .as_deref()
            .is_none_or(|p| crate::spool::Spool::complete(p) == Some(s.size))
    {
        return Ok(None);
    }
    let mut meta = serde_json::Map::new();
    for k in SIDECAR {
        if let Some(v) = m.get(*k) {
            meta.insert((*k).into(), v.clone());
        }
    }
    meta.insert("folder".into(), json!(folder));
    meta.insert("from".into(), m["from"].clone());
    let from = m["from"]["emailAddress"]["address"]
        .as_str()
        .map(str::to_string);
    let recipients = [
        addresses(&m["toRecipients"]),
        addresses(&m["ccRecipients"]),
        addresses(&m["bccRecipients"]),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let mut row = ItemRow {
        item: id.clone(),
        scope: scope.to_string(),
        kind: "message".into(),
        path,
        size: 0,
        // The MIME of a received message does not change; a draft's does.
        mtime: if draft { modified } else { received },
        change: change.clone(),
        subject: m["subject"].as_str().map(str::to_string),
        sender: from,
        recipients: (!recipients.is_empty()).then_some(recipients),
        date: Some(received),
        name: None,
        hash: None,
        sidecar: Some(Value::Object(meta).to_string()),
        spool: None,
    };
    // Same content as a version we hold: its size is known, nothing to fetch.
    let known = found
        .current
        .as_ref()
        .filter(|c| !draft && c.mtime == row.mtime)
        .map(|c| c.size);
    if let Some(size) = known {
        row.size = size;
        cat.stage_put(run.res, &row)?;
        return Ok(None);
    }
    let dest = run.spool.path_for(&id, &change);
    if let Some(size) = crate::spool::Spool::complete(&dest.to_string_lossy()) {
        // Spooled by an interrupted run.
        row.size = size;
        row.spool = Some(dest.to_string_lossy().into_owned());
        cat.stage_put(run.res, &row)?;
        return Ok(None);
    }
    let url = format!("{}/messages/{}/$value", run.base, id);
    Ok(Some(Box::pin(async move {
        let object = format!("message {id} in {folder_of}", folder_of = row.path);
        let size = run
            .spool
            .fetch(run.graph(), &url, &dest)
            .await
            .map_err(|e| (object.clone(), format!("{e:#}")))?;
        run.fetched(size);
        row.size = size;
        row.spool = Some(dest.to_string_lossy().into_owned());
        run.catalog()
            .stage_put(run.res, &row)
            .map_err(|e| (object, e.to_string()))
    })))
}
