//! Events, contacts and list items: their saved Graph JSON posted back without the
//! properties Graph sets itself.
//!
//! Graph has no property a client may set that survives as a restore marker on all three
//! and can be filtered on, so an item is recognised at the target by a fingerprint of its
//! content (the fields a person sees; an event's body is left out because Exchange
//! rewrites HTML), computed over what the target collection holds (listed once per run).
//! An identical item there means the item is restored already. Restoring to the original
//! place also finds an item by its original id: changed since the restore point, it is the
//! collision policy's.

use crate::Collision;
use crate::mail::find_or_create_folder;
use crate::names::decode_component;
use crate::report::Done;
use crate::run::{Ctx, ItemResult, why};
use cairn_catalog::ItemRow;
use futures::StreamExt;
use http::Method;
use serde_json::{Map, Value, json};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};

/// Properties Graph sets itself (or that belong to the old item): never sent back.
const READ_ONLY: &[&str] = &[
    "id",
    "changeKey",
    "createdDateTime",
    "lastModifiedDateTime",
    "iCalUId",
    "uid",
    "webLink",
    "type",
    "seriesMasterId",
    "occurrenceId",
    "isOrganizer",
    "organizer",
    "responseStatus",
    "hasAttachments",
    "parentFolderId",
    "calendar",
    "instances",
    "attachments",
    "extensions",
    "singleValueExtendedProperties",
    "multiValueExtendedProperties",
    "onlineMeeting",
    "onlineMeetingUrl",
    "isDraft",
    "cancelledOccurrences",
    "exceptionOccurrences",
    "originalStart",
    "photo",
];

/// Fields of an event that identify its content (the body aside).
const EVENT_FIELDS: &[&str] = &[
    "subject",
    "start",
    "end",
    "isAllDay",
    "location",
    "attendees",
    "recurrence",
    "showAs",
    "sensitivity",
    "importance",
    "categories",
    "isReminderOn",
    "reminderMinutesBeforeStart",
];

const CONTACT_FIELDS: &[&str] = &[
    "givenName",
    "surname",
    "displayName",
    "emailAddresses",
    "businessPhones",
    "mobilePhone",
    "companyName",
    "jobTitle",
    "department",
    "personalNotes",
    "categories",
    "imAddresses",
    "businessAddress",
    "homeAddress",
    "birthday",
];

/// List columns SharePoint maintains itself.
const LIST_SYSTEM: &[&str] = &[
    "id",
    "Created",
    "Modified",
    "AuthorLookupId",
    "EditorLookupId",
    "AppAuthorLookupId",
    "AppEditorLookupId",
    "Attachments",
    "Edit",
    "LinkTitleNoMenu",
    "LinkTitle",
    "ItemChildCount",
    "FolderChildCount",
    "ContentType",
    "DocIcon",
];

/// `calendar/<calendar>/<id hash>.json` → the calendar's name.
pub(crate) fn calendar_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("calendar/")?;
    let (name, file) = rest.split_once('/')?;
    (!file.is_empty()).then(|| decode_component(name))
}

/// `contacts/<folder path>/<id hash>.json` → the folder path.
pub(crate) fn contact_folder_of(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix("contacts/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    (parts.len() >= 2).then(|| {
        parts[..parts.len() - 1]
            .iter()
            .map(|c| decode_component(c))
            .collect()
    })
}

/// `lists/<list>/<item id>.json` → the list's name.
pub(crate) fn list_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("lists/")?;
    let (name, file) = rest.split_once('/')?;
    (!file.is_empty()).then(|| decode_component(name))
}

/// The saved document without what Graph sets itself.
fn writable(doc: &Value) -> Value {
    let mut out = Map::new();
    if let Some(o) = doc.as_object() {
        for (k, v) in o {
            if !READ_ONLY.contains(&k.as_str()) && !k.contains("@odata") && !k.starts_with('@') {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// Values that mean "nothing" compare equal to a missing field.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

/// A stable form of a value: objects sorted, empty members dropped, strings trimmed.
fn normal(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, v)| !is_empty(v) && !k.contains("@odata"))
                .map(|(k, v)| (k.clone(), normal(v)))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normal).collect()),
        Value::String(s) => Value::String(s.trim().to_string()),
        v => v.clone(),
    }
}

fn fingerprint_of(doc: &Value, fields: &[&str]) -> String {
    let mut m = BTreeMap::new();
    for f in fields {
        if let Some(v) = doc.get(*f).filter(|v| !is_empty(v)) {
            m.insert(*f, normal(v));
        }
    }
    hex::encode(sha2::Sha256::digest(
        serde_json::to_vec(&m).unwrap_or_default(),
    ))
}

fn list_fields(item: &Value) -> Value {
    let mut out = Map::new();
    if let Some(f) = item["fields"].as_object() {
        for (k, v) in f {
            if !LIST_SYSTEM.contains(&k.as_str()) && !k.starts_with('_') && !k.contains("@odata") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// How one kind of item lives in a target collection.
struct Coll {
    /// Listing of the collection (to fingerprint what it holds) and where items are created.
    list: String,
    create: String,
    /// Path of an item by id (`…/events/{id}`), for the original-id lookup and overwrite.
    item: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// Suffix of the overwrite `PATCH` (`/fields` for list items).
    patch_suffix: &'static str,
    fingerprint: fn(&Value) -> String,
    /// The body of a create from the saved document.
    body: fn(&Value) -> Value,
    /// The body of an overwrite.
    patch_body: fn(&Value) -> Value,
    what: &'static str,
}

fn event_fp(v: &Value) -> String {
    fingerprint_of(v, EVENT_FIELDS)
}
fn contact_fp(v: &Value) -> String {
    fingerprint_of(v, CONTACT_FIELDS)
}
fn list_fp(v: &Value) -> String {
    let f = list_fields(v);
    let keys: Vec<&str> = f
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    fingerprint_of(&f, &keys)
}
fn list_body(v: &Value) -> Value {
    json!({ "fields": list_fields(v) })
}

/// The events collection of the calendar of that name, or of the default calendar.
async fn calendar(ctx: &Ctx, name: &str) -> Result<String, String> {
    let key = format!("calendar\0{name}");
    let mut dirs = ctx.dirs.lock().await;
    if let Some(p) = dirs.get(&key) {
        return Ok(p.clone());
    }
    let mut found = None;
    let mut s = Box::pin(
        ctx.graph
            .items(&format!("{}/calendars?$select=id,name", ctx.base)),
    );
    while let Some(c) = s.next().await {
        let c = c.map_err(|e| why("listing calendars", e))?;
        if c["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
        {
            found = c["id"].as_str().map(str::to_string);
            break;
        }
    }
    drop(s);
    let path = match found {
        Some(id) => format!("{}/calendars/{id}/events", ctx.base),
        // Calendars are not created by a restore: the default calendar takes the events.
        None => format!("{}/calendar/events", ctx.base),
    };
    dirs.insert(key, path.clone());
    Ok(path)
}

/// The contacts collection of a contact folder path (created as needed).
async fn contact_folder(ctx: &Ctx, parts: &[String]) -> Result<String, String> {
    let mut full: Vec<String> = ctx.dest.root.iter().cloned().collect();
    full.extend(parts.iter().cloned());
    let mut dirs = ctx.dirs.lock().await;
    let mut parent: Option<String> = None;
    for i in 0..full.len() {
        let key = format!("contacts\0{}", full[..=i].join("\0"));
        if let Some(id) = dirs.get(&key) {
            parent = Some(id.clone());
            continue;
        }
        let id = find_or_create_folder(ctx, "contactFolders", parent.as_deref(), &full[i]).await?;
        dirs.insert(key, id.clone());
        parent = Some(id);
    }
    match parent {
        Some(id) => Ok(format!("{}/contactFolders/{id}/contacts", ctx.base)),
        None => Ok(format!("{}/contacts", ctx.base)),
    }
}

async fn list_id(ctx: &Ctx, name: &str) -> Result<String, String> {
    let key = format!("list\0{name}");
    let mut dirs = ctx.dirs.lock().await;
    if let Some(p) = dirs.get(&key) {
        return Ok(p.clone());
    }
    let mut s = Box::pin(
        ctx.graph
            .items(&format!("{}/lists?$select=id,displayName", ctx.base)),
    );
    while let Some(l) = s.next().await {
        let l = l.map_err(|e| why("listing the site's lists", e))?;
        if l["displayName"].as_str() == Some(name)
            && let Some(id) = l["id"].as_str()
        {
            dirs.insert(key, id.to_string());
            return Ok(id.to_string());
        }
    }
    Err(format!(
        "the site has no list named {name} (lists are not created by a restore)"
    ))
}

/// Fingerprints of what a target collection holds, listed on first use.
async fn holds(ctx: &Ctx, coll: &Coll, fp: &str) -> Result<bool, String> {
    let mut index = ctx.index.lock().await;
    if !index.contains_key(&coll.list) {
        let mut seen = HashMap::new();
        let mut s = Box::pin(ctx.graph.items(&coll.list));
        while let Some(v) = s.next().await {
            let v = v.map_err(|e| why(&format!("listing the target's {}s", coll.what), e))?;
            if let Some(id) = v["id"].as_str() {
                seen.insert((coll.fingerprint)(&v), id.to_string());
            }
        }
        index.insert(coll.list.clone(), seen);
    }
    Ok(index.get(&coll.list).is_some_and(|m| m.contains_key(fp)))
}

async fn remember(ctx: &Ctx, coll: &Coll, fp: String, id: &str) {
    if let Some(m) = ctx.index.lock().await.get_mut(&coll.list) {
        m.insert(fp, id.to_string());
    }
}

async fn restore_in(ctx: &Ctx, row: &ItemRow, coll: Coll, where_: String) -> ItemResult {
    let doc: Value = row
        .sidecar
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or("the saved document is missing or not JSON")?;
    let fp = (coll.fingerprint)(&doc);
    if holds(ctx, &coll, &fp).await? {
        return Ok((
            Done::Skipped,
            format!("already in {where_} (same content)"),
            0,
        ));
    }
    let body = (coll.body)(&doc);
    let size = serde_json::to_vec(&body)
        .map(|b| b.len() as u64)
        .unwrap_or(0);
    // The original, changed since the restore point?
    if ctx.dest.original
        && ctx
            .get_opt(&format!("{}?$select=id", (coll.item)(&row.item)))
            .await
            .map_err(|e| why(&format!("looking up the original {}", coll.what), e))?
            .is_some()
    {
        match ctx.dest.collision {
            Collision::Skip => return ctx.collision_skip(&format!("the {}", coll.what)),
            Collision::Overwrite => {
                ctx.graph
                    .send_json(
                        Method::PATCH,
                        &format!("{}{}", (coll.item)(&row.item), coll.patch_suffix),
                        (coll.patch_body)(&doc),
                    )
                    .await
                    .map_err(|e| why(&format!("overwriting the {}", coll.what), e))?;
                remember(ctx, &coll, fp, &row.item).await;
                return Ok((Done::Overwritten, where_, size));
            }
            Collision::KeepBoth => {
                let v = ctx
                    .graph
                    .send_json(Method::POST, &coll.create, body)
                    .await
                    .map_err(|e| why(&format!("creating the {}", coll.what), e))?;
                remember(ctx, &coll, fp, v["id"].as_str().unwrap_or_default()).await;
                return Ok((Done::KeptBoth, where_, size));
            }
        }
    }
    let v = ctx
        .graph
        .send_json(Method::POST, &coll.create, body)
        .await
        .map_err(|e| why(&format!("creating the {}", coll.what), e))?;
    remember(ctx, &coll, fp, v["id"].as_str().unwrap_or_default()).await;
    Ok((Done::Created, where_, size))
}

/// An event or a contact.
pub(crate) async fn restore(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let base = ctx.base.clone();
    if row.kind == "event" {
        let name = calendar_of(&row.path).ok_or("not an event path")?;
        let events = calendar(ctx, &name).await?;
        let coll = Coll {
            list: format!("{events}?$top=100"),
            create: events,
            item: Box::new(move |id| format!("{base}/events/{id}")),
            patch_suffix: "",
            fingerprint: event_fp,
            body: writable,
            patch_body: writable,
            what: "event",
        };
        restore_in(ctx, row, coll, format!("calendar {name}")).await
    } else {
        let parts = contact_folder_of(&row.path).ok_or("not a contact path")?;
        let contacts = contact_folder(ctx, &parts).await?;
        let mut shown: Vec<String> = ctx.dest.root.iter().cloned().collect();
        shown.extend(parts);
        let coll = Coll {
            list: format!("{contacts}?$top=100"),
            create: contacts,
            item: Box::new(move |id| format!("{base}/contacts/{id}")),
            patch_suffix: "",
            fingerprint: contact_fp,
            body: writable,
            patch_body: writable,
            what: "contact",
        };
        restore_in(
            ctx,
            row,
            coll,
            format!("contact folder {}", shown.join("/")),
        )
        .await
    }
}

pub(crate) async fn restore_list_item(ctx: &Ctx, row: &ItemRow) -> ItemResult {
    let name = list_of(&row.path).ok_or("not a list item path")?;
    let lid = list_id(ctx, &name).await?;
    let items = format!("{}/lists/{lid}/items", ctx.base);
    let items2 = items.clone();
    let coll = Coll {
        list: format!("{items}?expand=fields&$top=100"),
        create: items,
        item: Box::new(move |id| format!("{items2}/{id}")),
        patch_suffix: "/fields",
        fingerprint: list_fp,
        body: list_body,
        // The overwrite goes to `…/fields`, whose body is the fields themselves.
        patch_body: list_fields,
        what: "list item",
    };
    restore_in(ctx, row, coll, format!("list {name}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            calendar_of("calendar/Calendar/ab12.json"),
            Some("Calendar".into())
        );
        assert_eq!(
            contact_folder_of("contacts/Contacts/Friends/ab.json"),
            Some(vec!["Contacts".into(), "Friends".into()])
        );
        assert_eq!(list_of("lists/Tasks/7.json"), Some("Tasks".into()));
        assert_eq!(list_of("lists/Tasks"), None);
    }

    #[test]
    fn writable_drops_what_graph_sets() {
        let w = writable(&json!({
            "id": "x", "changeKey": "c", "@odata.etag": "e", "subject": "s",
            "calendar@odata.navigationLink": "l", "start": {"dateTime": "d"}
        }));
        assert_eq!(w, json!({"subject": "s", "start": {"dateTime": "d"}}));
    }

    #[test]
    fn fingerprints_ignore_noise_not_content() {
        let a = json!({"subject": "A", "start": {"dateTime": "1", "timeZone": "UTC"},
                       "categories": [], "id": "1", "body": {"content": "<p>x</p>"}});
        let b = json!({"subject": "A ", "start": {"timeZone": "UTC", "dateTime": "1"},
                       "id": "2", "body": {"content": "<html>x</html>"}, "location": null});
        assert_eq!(event_fp(&a), event_fp(&b));
        let c = json!({"subject": "Changed 5", "start": {"dateTime": "1", "timeZone": "UTC"}});
        assert_ne!(event_fp(&a), event_fp(&c));
    }
}
