//! To Do tasks, inbox rules and mailbox settings: their saved Graph JSON sent back.
//!
//! A task goes to the list of the same name (created if missing); one there with the same
//! content is the task restored already, one with the same title and creation time is in
//! the way (the collision policy decides). A rule is in the way when one of the same
//! display name exists. Settings are written back unless identical (`skip` leaves them
//! only then): there is one set per mailbox, nothing to keep beside it.

use crate::Collision;
use crate::names::decode_component;
use crate::report::Done;
use crate::run::{Ctx, ItemResult, why};
use cairn_catalog::ItemRow;
use futures::StreamExt;
use http::Method;
use serde_json::{Map, Value, json};
use sha2::Digest;

/// What a person writes in a task (the fingerprint and the body sent back).
const TASK_FIELDS: &[&str] = &[
    "title",
    "body",
    "importance",
    "status",
    "categories",
    "dueDateTime",
    "isReminderOn",
    "reminderDateTime",
    "completedDateTime",
    "recurrence",
];
const RULE_FIELDS: &[&str] = &[
    "displayName",
    "sequence",
    "isEnabled",
    "conditions",
    "actions",
    "exceptions",
];
const SETTINGS_FIELDS: &[&str] = &[
    "automaticRepliesSetting",
    "timeZone",
    "workingHours",
    "language",
    "dateFormat",
    "timeFormat",
];

/// `todo/<list>/<id hash>.json` → the list's name.
pub(crate) fn task_list_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("todo/")?;
    let (name, file) = rest.split_once('/')?;
    (!file.is_empty()).then(|| decode_component(name))
}

fn pick(doc: &Value, fields: &[&str]) -> Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| {
            doc.get(*f)
                .filter(|v| !v.is_null())
                .map(|v| (f.to_string(), v.clone()))
        })
        .collect()
}

fn fingerprint(doc: &Value, fields: &[&str]) -> String {
    let m: std::collections::BTreeMap<String, Value> = pick(doc, fields).into_iter().collect();
    hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(&m).unwrap_or_default(),
    ))
}

fn saved(row: &ItemRow) -> Result<Value, String> {
    row.sidecar
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| "the saved document is missing or not JSON".to_string())
}

async fn all(ctx: &Ctx, path: &str, what: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    let mut s = Box::pin(ctx.graph.items(path));
    while let Some(v) = s.next().await {
        out.push(v.map_err(|e| why(&format!("listing {what}"), e))?);
    }
    Ok(out)
}

/// The id of the task list of that name, created if missing.
async fn task_list(ctx: &Ctx, name: &str) -> Result<String, String> {
    let key = format!("todo\0{name}");
    let mut dirs = ctx.dirs.lock().await;
    if let Some(id) = dirs.get(&key) {
        return Ok(id.clone());
    }
    let lists = all(ctx, &format!("{}/todo/lists", ctx.base), "task lists").await?;
    let id = match lists
        .iter()
        .find(|l| l["displayName"].as_str() == Some(name))
    {
        Some(l) => l["id"].as_str().unwrap_or_default().to_string(),
        None => {
            let v = ctx
                .graph
                .send_json(
                    Method::POST,
                    &format!("{}/todo/lists", ctx.base),
                    json!({ "displayName": name }),
                )
                .await
                .map_err(|e| why("creating the task list", e))?;
            v["id"].as_str().unwrap_or_default().to_string()
        }
    };
    dirs.insert(key, id.clone());
    Ok(id)
}

pub(crate) async fn restore_task(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let doc = saved(row)?;
    let name = task_list_of(&row.path).ok_or("not a task path")?;
    let name = match &ctx.dest.root {
        Some(root) => format!("{root} {name}"),
        None => name,
    };
    let list = task_list(ctx, &name).await?;
    let tasks = format!("{}/todo/lists/{list}/tasks", ctx.base);
    let held = all(ctx, &tasks, "the list's tasks").await?;
    let fp = fingerprint(&doc, TASK_FIELDS);
    let where_ = format!("task list {name}");
    if held.iter().any(|t| fingerprint(t, TASK_FIELDS) == fp) {
        return Ok((
            Done::Skipped,
            format!("already in {where_} (same content)"),
            0,
        ));
    }
    let body = Value::Object(pick(&doc, TASK_FIELDS));
    let size = serde_json::to_vec(&body)
        .map(|b| b.len() as u64)
        .unwrap_or(0);
    let in_way = held
        .iter()
        .find(|t| t["title"] == doc["title"] && t["createdDateTime"] == doc["createdDateTime"]);
    if let Some(t) = in_way {
        match ctx.dest.collision {
            Collision::Skip => return ctx.collision_skip("the task"),
            Collision::Overwrite => {
                let id = t["id"].as_str().unwrap_or_default();
                ctx.graph
                    .send_json(Method::PATCH, &format!("{tasks}/{id}"), body)
                    .await
                    .map_err(|e| why("overwriting the task", e))?;
                return Ok((Done::Overwritten, where_, size));
            }
            Collision::KeepBoth => {
                ctx.graph
                    .send_json(Method::POST, &tasks, body)
                    .await
                    .map_err(|e| why("creating the task", e))?;
                return Ok((Done::KeptBoth, where_, size));
            }
        }
    }
    ctx.graph
        .send_json(Method::POST, &tasks, body)
        .await
        .map_err(|e| why("creating the task", e))?;
    Ok((Done::Created, where_, size))
}

pub(crate) async fn restore_rule(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    if ctx.dest.root.is_some() {
        return Ok((
            Done::Skipped,
            "inbox rules are restored to a mailbox's inbox, not into a folder".into(),
            0,
        ));
    }
    let doc = saved(row)?;
    let rules = format!("{}/mailFolders/inbox/messageRules", ctx.base);
    let held = all(ctx, &rules, "inbox rules").await?;
    let fp = fingerprint(&doc, RULE_FIELDS);
    if held.iter().any(|r| fingerprint(r, RULE_FIELDS) == fp) {
        return Ok((
            Done::Skipped,
            "already in the inbox rules (same content)".into(),
            0,
        ));
    }
    let mut body = Value::Object(pick(&doc, RULE_FIELDS));
    let size = serde_json::to_vec(&body)
        .map(|b| b.len() as u64)
        .unwrap_or(0);
    if let Some(r) = held.iter().find(|r| r["displayName"] == doc["displayName"]) {
        match ctx.dest.collision {
            Collision::Skip => return ctx.collision_skip("a rule of that name"),
            Collision::Overwrite => {
                let id = r["id"].as_str().unwrap_or_default();
                ctx.graph
                    .send_json(Method::PATCH, &format!("{rules}/{id}"), body)
                    .await
                    .map_err(|e| why("overwriting the rule", e))?;
                return Ok((Done::Overwritten, "inbox rules".into(), size));
            }
            Collision::KeepBoth => {
                let name = doc["displayName"].as_str().unwrap_or_default();
                body["displayName"] = json!(format!("{name} ({})", ctx.dest.label));
                ctx.graph
                    .send_json(Method::POST, &rules, body)
                    .await
                    .map_err(|e| why("creating the rule", e))?;
                return Ok((Done::KeptBoth, "inbox rules".into(), size));
            }
        }
    }
    ctx.graph
        .send_json(Method::POST, &rules, body)
        .await
        .map_err(|e| why("creating the rule", e))?;
    Ok((Done::Created, "inbox rules".into(), size))
}

pub(crate) async fn restore_settings(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    if ctx.dest.root.is_some() {
        return Ok((
            Done::Skipped,
            "mailbox settings are restored to a mailbox, not into a folder".into(),
            0,
        ));
    }
    let doc = saved(row)?;
    let path = format!("{}/mailboxSettings", ctx.base);
    let now = ctx
        .graph
        .get(&path)
        .await
        .map_err(|e| why("reading the mailbox settings", e))?;
    if fingerprint(&now, SETTINGS_FIELDS) == fingerprint(&doc, SETTINGS_FIELDS) {
        return Ok((Done::Skipped, "already as saved (same settings)".into(), 0));
    }
    let body = Value::Object(pick(&doc, SETTINGS_FIELDS));
    let size = serde_json::to_vec(&body)
        .map(|b| b.len() as u64)
        .unwrap_or(0);
    ctx.graph
        .send_json(Method::PATCH, &path, body)
        .await
        .map_err(|e| why("writing the mailbox settings", e))?;
    Ok((Done::Overwritten, "mailbox settings".into(), size))
}
