//! In-place archive items: their full-fidelity stream, exactly as backed up, posted back
//! through an import session of Graph's mailbox import API (one request per item, every
//! MAPI property kept).
//!
//! Where: to the original place or `user:UPN`, into the archive folder of the same path
//! (found by walking the archive's folders; each folder answers at the mailbox holding it,
//! an auxiliary one for an auto-expanded archive); with `folder:NAME`, into that folder of
//! the primary mailbox, the archive's folder path below it. Collisions: the item is looked
//! for at the target under its id; `skip` leaves one that is there, `overwrite` replaces it
//! (`Mode: update`), `keep-both` imports beside it.

use crate::mail::find_or_create_folder;
use crate::report::Done;
use crate::run::{Ctx, ItemResult, why};
use base64::Engine as _;
use cairn_catalog::ItemRow;
use futures::StreamExt;
use serde_json::json;

/// The archive folder path of an item (`archive/<folder path>/<YYYY-MM>/<file>.fts`).
pub(crate) fn folder_of(path: &str) -> Option<Vec<String>> {
    crate::mail::folder_under("archive/", path)
}

pub(crate) async fn restore(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    if row.kind == "messageStream" {
        return restore_primary(ctx, row).await;
    }
    let parts = folder_of(&row.path).ok_or("not an archive item path")?;
    let (mailbox, folder, where_) = match &ctx.dest.root {
        // A folder of the primary mailbox: the Outlook API's folder ids are the mailbox
        // API's.
        Some(root) => {
            let mut parent: Option<String> = None;
            let mut full = vec![root.clone(), "In-Place Archive".to_string()];
            full.extend(parts.iter().cloned());
            for name in &full {
                parent =
                    Some(find_or_create_folder(ctx, "mailFolders", parent.as_deref(), name).await?);
            }
            let mbx = mailbox_ids(ctx).await?.0;
            (
                ctx.graph
                    .beta_url(&format!("admin/exchange/mailboxes/{mbx}")),
                parent.unwrap_or_default(),
                format!("mail folder {}", full.join("/")),
            )
        }
        None => {
            let mbx = mailbox_ids(ctx)
                .await?
                .1
                .ok_or("the target has no in-place archive mailbox")?;
            let archive = ctx
                .graph
                .beta_url(&format!("admin/exchange/mailboxes/{mbx}"));
            let (home, fid) = archive_folder(ctx, &archive, &parts).await?;
            (home, fid, format!("archive folder {}", parts.join("/")))
        }
    };
    import(ctx, row, &row.item, &mailbox, &folder, where_).await
}

/// A full-fidelity copy of a primary-mailbox item (`fidelity/<folder path>/…`): into the
/// mail folder of the same path (found or created as for a message), through an import
/// session of the target's primary mailbox.
async fn restore_primary(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let parts =
        crate::mail::folder_under("fidelity/", &row.path).ok_or("not a full-fidelity path")?;
    let folder = crate::mail::folder_id(ctx, &parts).await?;
    let mbx = mailbox_ids(ctx).await?.0;
    let mailbox = ctx.graph.url(&format!("admin/exchange/mailboxes/{mbx}"));
    let mut full: Vec<String> = ctx.dest.root.iter().cloned().collect();
    full.extend(parts);
    let id = row.item.strip_prefix("fx:").unwrap_or(&row.item);
    import(
        ctx,
        row,
        id,
        &mailbox,
        &folder,
        format!("mail folder {}", full.join("/")),
    )
    .await
}

/// Posts the item's stream into `folder` of `mailbox`, minding the collision policy.
async fn import(
    ctx: &Ctx,
    row: &ItemRow,
    id: &str,
    mailbox: &str,
    folder: &str,
    where_: String,
) -> ItemResult {
    let stream = ctx.read(&row.path).await?;
    if stream.is_empty() {
        return Err("the item's stream is empty".into());
    }
    // What the target holds under the item's id.
    let existing = match ctx
        .graph
        .get(&format!(
            "{mailbox}/folders/{folder}/items/{id}?$select=id,changeKey"
        ))
        .await
    {
        Ok(v) => v["changeKey"].as_str().map(str::to_string),
        Err(e) if e.status() == Some(404) => None,
        Err(e) => return Err(why("looking for the item at the target", e)),
    };
    let data = base64::engine::general_purpose::STANDARD.encode(&stream);
    let (body, done) = match (existing, ctx.dest.collision) {
        (Some(_), crate::Collision::Skip) => {
            return Ok((Done::Skipped, format!("already in {where_}"), 0));
        }
        (Some(key), crate::Collision::Overwrite) => (
            json!({"FolderId": folder, "Mode": "update", "ItemId": id, "ChangeKey": key, "Data": data}),
            Done::Overwritten,
        ),
        _ => (
            json!({"FolderId": folder, "Mode": "create", "Data": data}),
            Done::Created,
        ),
    };
    match ctx.graph.import_item(mailbox, body.clone()).await {
        Ok(_) => Ok((done, where_, stream.len() as u64)),
        // The session's mailbox is not the folder's (an auxiliary archive): Exchange names
        // the one it expects.
        Err(e) if e.status() == Some(409) => {
            let expected =
                expected_mailbox(&e.to_string()).ok_or_else(|| why("importing the item", e))?;
            let other = ctx
                .graph
                .beta_url(&format!("admin/exchange/mailboxes/{expected}"));
            ctx.graph
                .import_item(&other, body)
                .await
                .map_err(|e| why("importing the item", e))?;
            Ok((done, where_, stream.len() as u64))
        }
        Err(e) => Err(why("importing the item", e)),
    }
}

/// The target user's primary and in-place archive mailbox ids (read once per run).
async fn mailbox_ids(ctx: &Ctx) -> Result<(String, Option<String>), String> {
    let v = ctx
        .mailboxes
        .get_or_try_init(|| async {
            let user = ctx.base.trim_start_matches('/');
            ctx.graph
                .get(&ctx.graph.beta_url(&format!("{user}/settings/exchange")))
                .await
                .map_err(|e| why("reading the target's mailbox ids", e))
        })
        .await?;
    let primary = v["primaryMailboxId"]
        .as_str()
        .ok_or("the target has no mailbox")?
        .to_string();
    Ok((
        primary,
        v["inPlaceArchiveMailboxId"].as_str().map(str::to_string),
    ))
}

/// The folder of the archive at `parts`: the URL of the mailbox holding it and its id.
/// Archive folders are not created (Graph does not offer it): a missing one is an error.
async fn archive_folder(
    ctx: &Ctx,
    archive: &str,
    parts: &[String],
) -> Result<(String, String), String> {
    let key = format!("archive\n{}", parts.join("\n"));
    let mut dirs = ctx.dirs.lock().await;
    if let Some(v) = dirs.get(&key)
        && let Some((home, id)) = v.split_once('\n')
    {
        return Ok((home.to_string(), id.to_string()));
    }
    let mut list = format!("{archive}/folders");
    let mut found: Option<(String, String)> = None;
    for (depth, name) in parts.iter().enumerate() {
        let mut hit = None;
        let mut s = Box::pin(ctx.graph.items(&list));
        while let Some(f) = s.next().await {
            let f = f.map_err(|e| why(&format!("listing archive folders to find {name}"), e))?;
            if f["displayName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
            {
                hit = Some(f);
                break;
            }
        }
        drop(s);
        let f = hit.ok_or_else(|| {
            format!(
                "the archive has no folder {}\nhint: restore it with --target folder:NAME (into the primary mailbox)",
                parts[..=depth].join("/")
            )
        })?;
        let id = f["id"].as_str().unwrap_or_default().to_string();
        let home = f["parentMailboxUrl"]
            .as_str()
            .map(|h| h.trim_end_matches('/').to_string())
            .unwrap_or_else(|| archive.to_string());
        list = format!("{home}/folders/{id}/childFolders");
        found = Some((home, id));
    }
    let (home, id) = found.ok_or("an archive item outside any folder")?;
    // Where the folder really answers (a 308 to an auxiliary mailbox the listing did not
    // name).
    let (_, at) = ctx
        .graph
        .get_following(&format!("{home}/folders/{id}?$select=id"))
        .await
        .map_err(|e| why("reading the archive folder", e))?;
    let home = at.split("/folders/").next().unwrap_or(&home).to_string();
    dirs.insert(key, format!("{home}\n{id}"));
    Ok((home, id))
}

/// The mailbox a 409 of an import says it expects: `… expected in mailbox MBX:….`
fn expected_mailbox(message: &str) -> Option<String> {
    let at = message.find("MBX:")?;
    let id: String = message[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();
    Some(id.trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_archive_paths() {
        assert_eq!(
            folder_of("archive/Projects/Old/2019-03/20190301T000000Z-abc.fts"),
            Some(vec!["Projects".to_string(), "Old".to_string()])
        );
        assert_eq!(folder_of("archive/x.fts"), None);
        assert_eq!(folder_of("mail/Inbox/2019-03/x.eml"), None);
    }

    #[test]
    fn the_mailbox_a_conflict_expects() {
        assert_eq!(
            expected_mailbox(
                "Invalid import session. The target session is expected in mailbox MBX:1a2b3c4d@5e6f7a8b."
            ),
            Some("MBX:1a2b3c4d@5e6f7a8b".to_string())
        );
        assert_eq!(expected_mailbox("nothing here"), None);
    }
}
