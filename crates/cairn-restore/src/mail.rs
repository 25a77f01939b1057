//! Mail: a message is recreated from its MIME in a folder of the same path (created when
//! missing), then its read state, flag, categories and importance are set from the
//! sidecar. A message already in the target folder (same `internetMessageId`) is not
//! created again.
//!
//! Graph creates a message from MIME as a draft. Setting `PR_MESSAGE_FLAGS` (0x0E07)
//! without the unsent bit, and `PR_MESSAGE_DELIVERY_TIME` (0x0E06) to the received time, as
//! extended properties is how backup tools make it a received message again
//! (docs/restore.md says what is and is not verified).

use crate::names::{decode_component, odata_string};
use crate::report::Done;
use crate::run::{Ctx, ItemResult, why};
use base64::Engine as _;
use cairn_catalog::ItemRow;
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};

/// The folder path of a message (`mail/<folder path>/<YYYY-MM>/<file>.eml`), names decoded.
pub(crate) fn folder_of(path: &str) -> Option<Vec<String>> {
    folder_under("mail/", path)
}

/// The folder path of an item at `<top>/<folder path>/<YYYY-MM>/<file>`, names decoded.
pub(crate) fn folder_under(top: &str, path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix(top)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 3 {
        return None;
    }
    Some(
        parts[..parts.len() - 2]
            .iter()
            .map(|c| decode_component(c))
            .collect(),
    )
}

/// The id of a folder named `name` under `parent` (`None`: the top of the hierarchy),
/// created if missing. `hierarchy`: `mailFolders` or `contactFolders`.
pub(crate) async fn find_or_create_folder(
    ctx: &Ctx,
    hierarchy: &str,
    parent: Option<&str>,
    name: &str,
) -> Result<String, String> {
    let base = &ctx.base;
    let hidden = if hierarchy == "mailFolders" {
        "?includeHiddenFolders=true"
    } else {
        ""
    };
    let list = match parent {
        None => format!("{base}/{hierarchy}{hidden}"),
        Some(p) => format!("{base}/{hierarchy}/{p}/childFolders{hidden}"),
    };
    let find = || async {
        let mut s = Box::pin(ctx.graph.items(&list));
        while let Some(f) = s.next().await {
            let f = f.map_err(|e| why(&format!("listing folders to find {name}"), e))?;
            if f["displayName"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
                && let Some(id) = f["id"].as_str()
            {
                return Ok::<_, String>(Some(id.to_string()));
            }
        }
        Ok(None)
    };
    if let Some(id) = find().await? {
        return Ok(id);
    }
    let create = match parent {
        None => format!("{base}/{hierarchy}"),
        Some(p) => format!("{base}/{hierarchy}/{p}/childFolders"),
    };
    match ctx
        .graph
        .send_json(Method::POST, &create, json!({ "displayName": name }))
        .await
    {
        Ok(v) => v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("creating folder {name}: Graph gave no id")),
        // Created meanwhile (or hidden from the listing): look again.
        Err(e) if e.status() == Some(409) => find()
            .await?
            .ok_or_else(|| format!("creating folder {name}: {e}")),
        Err(e) => Err(why(&format!("creating folder {name}"), e)),
    }
}

/// The id of the target folder for a message of folder `parts`.
pub(crate) async fn folder_id(ctx: &Ctx, parts: &[String]) -> Result<String, String> {
    // Recoverable Items lies outside the folder tree; it is reached by its well-known name.
    if ctx.dest.root.is_none() && parts.first().is_some_and(|p| p == "Recoverable Items") {
        return Ok("recoverableitemsdeletions".into());
    }
    let mut full: Vec<String> = ctx.dest.root.iter().cloned().collect();
    full.extend(parts.iter().cloned());
    let mut dirs = ctx.dirs.lock().await;
    // Messages of the mailbox's root (the backup names it by its display name, "Top of
    // Information Store") go back into the root, not into a new folder of that name.
    if ctx.dest.root.is_none() && parts.len() == 1 {
        let (name, id) = ctx
            .mail_root
            .get_or_try_init(|| async {
                let root = ctx
                    .graph
                    .get(&format!(
                        "{}/mailFolders/msgfolderroot?$select=id,displayName",
                        ctx.base
                    ))
                    .await
                    .map_err(|e| why("reading the mailbox's root folder", e))?;
                let s = |k: &str| root[k].as_str().unwrap_or_default().to_string();
                Ok::<_, String>((s("displayName"), s("id")))
            })
            .await?;
        if !id.is_empty() && name.eq_ignore_ascii_case(&parts[0]) {
            return Ok(id.clone());
        }
    }
    let mut parent: Option<String> = None;
    for i in 0..full.len() {
        let key = format!("mail\0{}", full[..=i].join("\0"));
        if let Some(id) = dirs.get(&key) {
            parent = Some(id.clone());
            continue;
        }
        let id = find_or_create_folder(ctx, "mailFolders", parent.as_deref(), &full[i]).await?;
        dirs.insert(key, id.clone());
        parent = Some(id);
    }
    parent.ok_or_else(|| "a message without a folder".to_string())
}

/// Read state, flag, categories, importance from the sidecar.
fn properties(meta: &Value) -> serde_json::Map<String, Value> {
    let mut p = serde_json::Map::new();
    for k in ["isRead", "categories", "importance"] {
        if let Some(v) = meta.get(k).filter(|v| !v.is_null()) {
            p.insert(k.into(), v.clone());
        }
    }
    if let Some(f) = meta.get("flag").and_then(Value::as_object) {
        let flag: serde_json::Map<String, Value> = f
            .iter()
            .filter(|(k, v)| !k.starts_with('@') && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        p.insert("flag".into(), Value::Object(flag));
    }
    p
}

pub(crate) async fn restore(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let meta: Value = row
        .sidecar
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let parts = folder_of(&row.path).ok_or("not a message path")?;
    let where_ = format!("mail folder {}", {
        let mut all: Vec<String> = ctx.dest.root.iter().cloned().collect();
        all.extend(parts.iter().cloned());
        all.join("/")
    });
    let fid = folder_id(ctx, &parts).await?;
    let base = &ctx.base;
    if let Some(imid) = meta["internetMessageId"].as_str().filter(|s| !s.is_empty()) {
        let q = format!(
            "{base}/mailFolders/{fid}/messages?$filter=internetMessageId%20eq%20{}&$select=id&$top=1",
            odata_string(imid)
        );
        // Pages of a filtered listing may be empty yet carry a next link: follow them.
        let found = Box::pin(ctx.graph.items(&q))
            .next()
            .await
            .transpose()
            .map_err(|e| why("looking for the message at the target", e))?;
        if let Some(id) = found.as_ref().and_then(|m| m["id"].as_str()) {
            // A message's content never changes: the same internetMessageId is the same
            // message, so keep-both has nothing to keep beside it.
            if ctx.dest.collision == crate::Collision::Overwrite {
                ctx.graph
                    .send_json(
                        Method::PATCH,
                        &format!("{base}/messages/{id}"),
                        Value::Object(properties(&meta)),
                    )
                    .await
                    .map_err(|e| why("setting read state and flags", e))?;
                return Ok((
                    Done::Overwritten,
                    format!("{where_}: read state, flag and categories set again"),
                    0,
                ));
            }
            return Ok((
                Done::Skipped,
                format!("already in {where_} (same internetMessageId)"),
                0,
            ));
        }
    }
    let mime = ctx.read(&row.path).await?;
    if mime.is_empty() {
        return Err("the message's MIME is empty".into());
    }
    let body = base64::engine::general_purpose::STANDARD.encode(&mime);
    let created = ctx
        .send_raw(
            Method::POST,
            &format!("{base}/mailFolders/{fid}/messages"),
            "text/plain",
            bytes::Bytes::from(body),
        )
        .await
        .map_err(|e| why("creating the message from its MIME", e))?;
    let id = created["id"]
        .as_str()
        .ok_or("creating the message: Graph gave no id")?;
    let mut props = properties(&meta);
    if meta["isDraft"] != json!(true) {
        // Not a draft: no MSGFLAG_UNSENT (8); MSGFLAG_READ (1) as it was read.
        let read = meta["isRead"] == json!(true);
        let mut ext = vec![json!({"id": "Integer 0x0E07", "value": if read { "1" } else { "0" }})];
        if let Some(t) = meta["receivedDateTime"].as_str() {
            ext.push(json!({"id": "SystemTime 0x0E06", "value": t}));
        }
        props.insert("singleValueExtendedProperties".into(), Value::Array(ext));
    }
    ctx.graph
        .send_json(
            Method::PATCH,
            &format!("{base}/messages/{id}"),
            Value::Object(props),
        )
        .await
        .map_err(|e| {
            why(
                "the message was created, but setting its read state and flags failed (a rerun with --collision overwrite sets them)",
                e,
            )
        })?;
    Ok((Done::Created, where_, mime.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_message_paths() {
        assert_eq!(
            folder_of("mail/Inbox/Sub%2FX/2026-01/20260101T000000Z-abc.eml"),
            Some(vec!["Inbox".to_string(), "Sub/X".to_string()])
        );
        assert_eq!(folder_of("mail/x.eml"), None);
        assert_eq!(folder_of("onedrive/a/b/c"), None);
    }

    #[test]
    fn sidecar_properties_exclude_the_rest() {
        let p = properties(&json!({
            "isRead": false, "categories": ["Red"], "importance": "high",
            "flag": {"flagStatus": "flagged", "@odata.type": "x", "dueDateTime": null},
            "subject": "s", "id": "AAMk"
        }));
        assert_eq!(
            Value::Object(p),
            json!({"isRead": false, "categories": ["Red"], "importance": "high",
                   "flag": {"flagStatus": "flagged"}})
        );
    }
}
