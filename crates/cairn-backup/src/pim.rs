//! Calendars and contacts, kept as Graph JSON exactly as Graph gave it (restore and the ICS
//! and vCard exports read it back).
//!
//! Layout: `calendar/<calendar>/<id hash>.json`, `contacts/<folder>/<id hash>.json`.
//! Contacts come from per-folder delta queries. Events have no delta query outside a time
//! window of the primary calendar (`calendarView/delta`), so each calendar is listed whole
//! and reconciled: about one request per calendar per hundred events.

use crate::engine::{Run, short_id, time_of};
use crate::scope::{Job, Source, changed, drop_vanished, named, sync};
use cairn_catalog::ItemRow;
use serde_json::Value;
use std::collections::HashSet;

/// A JSON item staged with its document as content.
pub(crate) fn stage_json(
    run: &Run<'_>,
    scope: &str,
    kind: &str,
    dir: &str,
    mut v: Value,
) -> anyhow::Result<Option<Job<'static>>> {
    let cat = run.catalog();
    let Some(id) = v["id"].as_str().map(str::to_string) else {
        run.skip(format!("a {kind} in {dir}"), "Graph gave no id");
        return Ok(None);
    };
    let change = v["changeKey"]
        .as_str()
        .or(v["@odata.etag"].as_str())
        .or(v["lastModifiedDateTime"].as_str())
        .unwrap_or_default()
        .to_string();
    let path = format!("{dir}/{}.json", short_id(&id));
    if changed(run, &id, &change, &path)?.is_none() {
        return Ok(None);
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("@odata.context");
    }
    let doc = serde_json::to_string_pretty(&v)?;
    let crate::rebuild::JsonFields {
        subject,
        sender,
        date,
        name,
    } = crate::rebuild::json_fields(kind, &v);
    let row = ItemRow {
        item: id,
        scope: scope.into(),
        kind: kind.into(),
        path,
        size: doc.len() as u64,
        mtime: time_of(&v["lastModifiedDateTime"]).unwrap_or_default(),
        change,
        subject,
        sender,
        recipients: None,
        date,
        name,
        hash: None,
        sidecar: Some(doc),
        spool: None,
    };
    cat.stage_put(run.res, &row)?;
    Ok(None)
}

/// A user's calendars.
pub(crate) fn calendars_url(base: &str) -> String {
    format!("{base}/calendars?$select=id,name")
}

/// A calendar's events, listed whole each run.
pub(crate) fn events_url(base: &str, calendar: &str) -> String {
    format!("{base}/calendars/{calendar}/events")
}

pub(crate) async fn stage_calendars(run: &Run<'_>) -> anyhow::Result<()> {
    let calendars = named(run, &calendars_url(&run.base), "name", "Calendar").await?;
    let mut listed = HashSet::new();
    for (id, name) in calendars {
        let scope = format!("calendar:{id}");
        listed.insert(scope.clone());
        let dir = format!("calendar/{name}");
        let path = events_url(&run.base, &id);
        let r = sync(run, &scope, Source::Listing(path), |v| {
            stage_json(run, &scope, "event", &dir, v)
        })
        .await;
        if let Err(e) = r {
            run.skip(format!("calendar {name}"), format!("{e:#}"));
        }
    }
    drop_vanished(run, "calendar:", &listed)
}

pub(crate) async fn stage_contacts(run: &Run<'_>) -> anyhow::Result<()> {
    let folders = crate::mail::folder_tree(run, "contactFolders").await?;
    let mut listed = HashSet::new();
    for crate::mail::Folder { id, path: name, .. } in folders {
        let scope = format!("contacts:{id}");
        listed.insert(scope.clone());
        let dir = format!("contacts/{name}");
        let start = format!("{}/contactFolders/{id}/contacts/delta", run.base);
        let r = sync(run, &scope, Source::Delta(start), |v| {
            stage_json(run, &scope, "contact", &dir, v)
        })
        .await;
        if let Err(e) = r {
            run.skip(format!("contact folder {name}"), format!("{e:#}"));
        }
    }
    drop_vanished(run, "contacts:", &listed)
}
