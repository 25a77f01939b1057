//! In-place archive mailboxes, through Graph's mailbox import/export API (beta for
//! archives): every item kept full fidelity, as the opaque FastTransfer stream
//! `exportItems` gives, byte for byte, in the user's own restore point.
//!
//! Layout: `archive/<folder path>/<YYYY-MM>/<created>-<id hash>.fts`. The archive belongs
//! to the person as their mailbox does: one restore point holds both, so retention, holds,
//! erasure and the portal's self-service scope treat them alike
//! (`docs/decisions/0010-archive-mailboxes.md`).
//!
//! Archive items have no MIME (`$value`): the catalog's subject, sender, recipients and
//! date are read out of the stream (`cairn-fxics`), so they are found by `find` and
//! exported as EML, MBOX or PST like mail. An auto-expanded archive keeps some folders in
//! auxiliary mailboxes: each folder is read at the mailbox Graph names for it
//! (`parentMailboxUrl`, or where a 308 leads), and an export answered with
//! `ErrorArchiveFolderMovedPermanently` is asked again where its message says.
//!
//! With `BackupOptions::full_fidelity`, the primary mailbox's items are copied the same way
//! beside their MIME: `fidelity/<folder path>/…/*.fts`, kind `messageStream`, catalog id
//! `fx:<item id>` (the message's own row has the id itself).

use crate::engine::{Run, short_id};
use crate::scope::{changed, drop_vanished};
use base64::Engine as _;
use cairn_catalog::ItemRow;
use cairn_graph::{DeltaEvent, same_origin};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Items per `exportItems` request: Graph's maximum.
pub(crate) const EXPORT_BATCH: usize = 20;

/// Which mailbox of the user, and where its items go.
#[derive(Clone, Copy)]
pub(crate) struct Copy {
    /// The first component of their paths in the restore point.
    pub top: &'static str,
    /// Their catalog kind.
    pub kind: &'static str,
    /// Before the item id in the catalog (the primary mailbox's messages have rows of
    /// their own under the bare id).
    pub id_prefix: &'static str,
}

/// The in-place archive.
pub(crate) const ARCHIVE: Copy = Copy {
    top: "archive",
    kind: "archiveItem",
    id_prefix: "",
};

/// Full-fidelity copies of the primary mailbox's items.
pub(crate) const PRIMARY: Copy = Copy {
    top: "fidelity",
    kind: "messageStream",
    id_prefix: "fx:",
};

/// Stages the changes of the user's in-place archive, if they have one.
pub(crate) async fn stage(run: &Run<'_>) -> anyhow::Result<()> {
    let graph = run.graph();
    let user = run.base.trim_start_matches('/');
    let settings = graph
        .get(&graph.beta_url(&format!("{user}/settings/exchange")))
        .await?;
    let Some(mbx) = settings["inPlaceArchiveMailboxId"].as_str() else {
        // No archive: nothing held of one is kept either.
        return drop_vanished(run, "archive:", &HashSet::new());
    };
    let mailbox = graph.beta_url(&format!("admin/exchange/mailboxes/{mbx}"));
    stage_mailbox(run, ARCHIVE, &mailbox).await
}

/// Stages full-fidelity copies of the primary mailbox's items.
pub(crate) async fn stage_primary(run: &Run<'_>) -> anyhow::Result<()> {
    let graph = run.graph();
    let settings = graph
        .get(&format!("{}/settings/exchange", run.base))
        .await?;
    let Some(mbx) = settings["primaryMailboxId"].as_str() else {
        return drop_vanished(run, "fidelity:", &HashSet::new());
    };
    let mailbox = graph.url(&format!("admin/exchange/mailboxes/{mbx}"));
    stage_mailbox(run, PRIMARY, &mailbox).await
}

async fn stage_mailbox(run: &Run<'_>, copy: Copy, mailbox: &str) -> anyhow::Result<()> {
    let folders = crate::mail::folder_tree_at(
        run,
        &format!("{mailbox}/folders/delta?$select=id,displayName,parentFolderId,parentMailboxUrl"),
    )
    .await
    .map_err(|e| {
        if crate::engine::is_forbidden(&e) {
            e.context("reading the mailbox's folders through the mailbox import/export API\nhint: the backup app needs MailboxFolder.Read.All, MailboxItem.Read.All and MailboxItem.Export.All (docs/entra-app.md)")
        } else {
            e
        }
    })?;
    let listed: HashSet<String> = folders
        .iter()
        .map(|f| format!("{}:{}", copy.top, f.id))
        .collect();
    for f in folders {
        let home = match f.home.as_deref() {
            Some(h) if same_origin(h, mailbox) => h.trim_end_matches('/').to_string(),
            _ => mailbox.to_string(),
        };
        if let Err(e) = folder(run, copy, &home, &f.id, &f.path).await {
            // One folder's failure leaves its previous state in the restore point.
            run.skip(format!("{} folder {}", copy.top, f.path), format!("{e:#}"));
        }
    }
    drop_vanished(run, &format!("{}:", copy.top), &listed)
}

/// One archive folder brought up to date from its item delta.
async fn folder(
    run: &Run<'_>,
    copy: Copy,
    mailbox: &str,
    id: &str,
    path: &str,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    let scope = format!("{}:{id}", copy.top);
    let link = cat.token(run.res, &scope)?;
    // Where a 308 leads (an auxiliary mailbox Graph did not name in the listing).
    let mailbox = if link.is_none() {
        let (_, at) = run
            .graph()
            .get_following(&format!("{mailbox}/folders/{id}?$select=id"))
            .await?;
        at.split("/folders/").next().unwrap_or(mailbox).to_string()
    } else {
        mailbox.to_string()
    };
    let held = link.is_none() && {
        let mut any = false;
        cat.items_in_scope(run.res, &scope, &mut |_| any = true)?;
        any
    };
    let mut seen: Option<HashSet<String>> = held.then(HashSet::new);
    let start = format!("{mailbox}/folders/{id}/items/delta");
    let mut batch: Vec<ItemRow> = Vec::new();
    let mut failed = false;
    let mut complete = None;
    let mut count = 0;
    {
        let mut events = Box::pin(run.graph().delta(&start, link.as_deref()));
        while let Some(ev) = events.next().await {
            match ev? {
                DeltaEvent::Upsert(item) => {
                    count += 1;
                    if let (Some(seen), Some(i)) = (seen.as_mut(), item["id"].as_str()) {
                        seen.insert(format!("{}{i}", copy.id_prefix));
                    }
                    if let Some(row) = plan(run, copy, &scope, path, &item)? {
                        batch.push(row);
                        if batch.len() == EXPORT_BATCH {
                            failed |=
                                !export(run, copy, &mailbox, std::mem::take(&mut batch)).await;
                        }
                    }
                }
                DeltaEvent::Removed { id } => {
                    cat.stage_remove(run.res, &scope, &format!("{}{id}", copy.id_prefix))?;
                }
                DeltaEvent::Complete { delta_link } => complete = Some(delta_link),
                DeltaEvent::Resync { .. } => {
                    cat.stage_token(run.res, &scope, None)?;
                    anyhow::bail!(
                        "the delta of this archive folder expired\nhint: the next run reads the folder whole"
                    );
                }
            }
        }
    }
    if !batch.is_empty() {
        failed |= !export(run, copy, &mailbox, batch).await;
    }
    run.enumerated(count);
    if let Some(seen) = seen.filter(|_| !failed) {
        let mut gone = Vec::new();
        cat.items_in_scope(run.res, &scope, &mut |i| {
            if !seen.contains(&i) {
                gone.push(i);
            }
        })?;
        for i in gone {
            cat.stage_remove(run.res, &scope, &i)?;
        }
    }
    // An item that could not be exported keeps the old link: the next run sees it again.
    if !failed && let Some(l) = complete {
        cat.stage_token(run.res, &scope, Some(&l))?;
    }
    Ok(())
}

/// The row of an item that needs exporting, or `None` when the catalog holds it as it is.
fn plan(
    run: &Run<'_>,
    copy: Copy,
    scope: &str,
    folder: &str,
    m: &Value,
) -> anyhow::Result<Option<ItemRow>> {
    let Some(id) = m["id"].as_str().map(|i| format!("{}{i}", copy.id_prefix)) else {
        run.skip(
            format!("an item in archive folder {folder}"),
            "Graph gave no id",
        );
        return Ok(None);
    };
    let change = m["changeKey"]
        .as_str()
        .or(m["lastModifiedDateTime"].as_str())
        .unwrap_or_default()
        .to_string();
    let modified = crate::engine::time_of(&m["lastModifiedDateTime"]).unwrap_or_default();
    let created = crate::engine::time_of(&m["createdDateTime"]).unwrap_or(modified);
    let path = format!(
        "{}/{folder}/{}/{}-{}.fts",
        copy.top,
        created.format("%Y-%m"),
        created.format("%Y%m%dT%H%M%SZ"),
        short_id(&id)
    );
    if changed(run, &id, &change, &path)?.is_none() {
        return Ok(None);
    }
    let sidecar = json!({
        "id": id,
        "type": m["type"],
        "categories": m["categories"],
        "folder": folder,
        "createdDateTime": m["createdDateTime"],
        "lastModifiedDateTime": m["lastModifiedDateTime"],
    });
    Ok(Some(ItemRow {
        item: id,
        scope: scope.to_string(),
        kind: copy.kind.into(),
        path,
        size: 0,
        mtime: modified,
        change,
        subject: None,
        sender: None,
        recipients: None,
        date: Some(created),
        name: None,
        hash: None,
        sidecar: Some(sidecar.to_string()),
        spool: None,
    }))
}

/// Exports a batch (at most 20 items of one mailbox) and stages each item with its stream
/// spooled; `false` when an item could not be exported (it is named in the report).
async fn export(run: &Run<'_>, copy: Copy, mailbox: &str, rows: Vec<ItemRow>) -> bool {
    let mut ok = true;
    let mut moved: Vec<(String, ItemRow)> = Vec::new();
    let answers = match exported(run, copy, &format!("{mailbox}/exportItems"), &rows).await {
        Ok(a) => a,
        Err(e) => {
            for r in &rows {
                run.skip(format!("item {}", r.path), format!("{e:#}"));
            }
            return false;
        }
    };
    let mut rows: std::collections::HashMap<String, ItemRow> =
        rows.into_iter().map(|r| (r.item.clone(), r)).collect();
    let key = |a: &Value| format!("{}{}", copy.id_prefix, a["itemId"].as_str().unwrap_or(""));
    for a in answers {
        let Some(row) = rows.remove(&key(&a)) else {
            continue;
        };
        let error = if a["error"].is_object() {
            &a["error"]
        } else {
            &a["Error"]
        };
        if error["code"].as_str() == Some("ErrorArchiveFolderMovedPermanently")
            && let Some(url) = error["message"]
                .as_str()
                .filter(|u| same_origin(u, mailbox))
        {
            moved.push((url.to_string(), row));
            continue;
        }
        ok &= stage_one(run, row, &a, error);
    }
    for row in rows.into_values() {
        run.skip(
            format!("item {}", row.path),
            "exportItems did not answer for it",
        );
        ok = false;
    }
    // Items whose folder moved to an auxiliary mailbox: asked again there, one URL at a time.
    while let Some((url, _)) = moved.first().cloned() {
        let (here, rest): (Vec<_>, Vec<_>) = moved.into_iter().partition(|(u, _)| *u == url);
        moved = rest;
        let rows: Vec<ItemRow> = here.into_iter().map(|(_, r)| r).collect();
        match exported(run, copy, &url, &rows).await {
            Ok(answers) => {
                let mut by_id: std::collections::HashMap<String, ItemRow> =
                    rows.into_iter().map(|r| (r.item.clone(), r)).collect();
                for a in answers {
                    if let Some(row) = by_id.remove(&key(&a)) {
                        let error = if a["error"].is_object() {
                            &a["error"]
                        } else {
                            &a["Error"]
                        };
                        ok &= stage_one(run, row, &a, error);
                    }
                }
                ok &= by_id.is_empty();
            }
            Err(e) => {
                for r in &rows {
                    run.skip(format!("item {}", r.path), format!("{e:#}"));
                }
                ok = false;
            }
        }
    }
    ok
}

async fn exported(
    run: &Run<'_>,
    copy: Copy,
    url: &str,
    rows: &[ItemRow],
) -> anyhow::Result<Vec<Value>> {
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r.item.strip_prefix(copy.id_prefix).unwrap_or(&r.item))
        .collect();
    let v = run
        .graph()
        .send_json(http::Method::POST, url, json!({ "itemIds": ids }))
        .await?;
    Ok(v["value"].as_array().cloned().unwrap_or_default())
}

/// Spools one exported item's stream and stages its row, with what the stream says of it.
fn stage_one(run: &Run<'_>, mut row: ItemRow, answer: &Value, error: &Value) -> bool {
    let object = format!("item {}", row.path);
    if error.is_object() {
        run.skip(
            object,
            format!(
                "{}: {}",
                error["code"].as_str().unwrap_or("error"),
                error["message"].as_str().unwrap_or_default()
            ),
        );
        return false;
    }
    let Some(data) = answer["data"]
        .as_str()
        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
    else {
        run.skip(object, "exportItems gave no readable data");
        return false;
    };
    describe(&mut row, &data);
    let dest = run.spool.path_for(&row.item, &row.change);
    if let Err(e) = write_spool(&dest, &data) {
        run.skip(object, format!("spooling it: {e}"));
        return false;
    }
    run.fetched(data.len() as u64);
    row.size = data.len() as u64;
    row.spool = Some(dest.to_string_lossy().into_owned());
    match run.catalog().stage_put(run.res, &row) {
        Ok(()) => true,
        Err(e) => {
            run.skip(object, e.to_string());
            false
        }
    }
}

/// Writes a spool file whole (a temporary name, renamed when complete).
pub(crate) fn write_spool(dest: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = dest.with_extension("part");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, dest)
}

/// What a stream says of its item, for search and exports: subject, sender, recipients and
/// date. A stream Cairn cannot read is kept all the same (it is restored as it is).
pub(crate) fn describe(row: &mut ItemRow, data: &[u8]) {
    match cairn_fxics::parse_message(data) {
        Ok(item) => {
            row.subject = item.subject();
            row.sender = item.from().and_then(|a| a.email.or(a.name));
            let to: Vec<String> = item
                .recipients()
                .into_iter()
                .filter_map(|r| r.mailbox.email.or(r.mailbox.name))
                .collect();
            row.recipients = (!to.is_empty()).then(|| to.join(", "));
            if let Some(t) = item.message_delivery_time().or(item.client_submit_time()) {
                row.date = Some(t);
            }
        }
        Err(e) => {
            tracing::warn!(path = %row.path, "the stream of an archive item could not be read: {e}")
        }
    }
}
