//! Microsoft To Do, inbox rules and mailbox settings of a user, kept as Graph JSON.
//!
//! Layout: `todo/<list name>/<task id hash>.json` (per-list tasks delta, scope
//! `todo:<list id>`), `rules/<rule id hash>.json` (listed whole each run, scope `rules`),
//! `settings/mailboxSettings.json` (one item, scope `settings`).

use crate::engine::{Run, time_of};
use crate::pim::stage_json;
use crate::scope::changed;
use crate::scope::{Source, drop_vanished, named, sync};
use cairn_catalog::ItemRow;
use serde_json::Value;
use std::collections::HashSet;

pub(crate) async fn stage(run: &Run<'_>) -> anyhow::Result<()> {
    // The settings first: a user without a mailbox answers 404 here and is skipped.
    let [settings_url, rules, lists] = polls(&run.base);
    let mut settings = run.get(&settings_url).await?;
    if let Some(o) = settings.as_object_mut() {
        o.remove("archiveFolder");
        o.remove("@odata.context");
    }
    stage_settings(run, settings)?;

    if let Err(e) = sync(run, "rules", Source::Listing(rules), |v| {
        stage_json(run, "rules", "messageRule", "rules", versioned(v))
    })
    .await
    {
        run.skip("inbox rules", format!("{e:#}"));
    }

    let lists = named(run, &lists, "displayName", "Tasks").await?;
    let mut listed = HashSet::new();
    for (id, name) in lists {
        let scope = format!("todo:{id}");
        listed.insert(scope.clone());
        let dir = format!("todo/{name}");
        let start = format!("{}/todo/lists/{id}/tasks/delta", run.base);
        let r = sync(run, &scope, Source::Delta(start), |v| {
            stage_json(run, &scope, "todoTask", &dir, v)
        })
        .await;
        if let Err(e) = r {
            run.skip(format!("task list {name}"), format!("{e:#}"));
        }
    }
    // Placeholders of a rebuilt catalog give way to the real items.
    drop_vanished(run, "rules:", &HashSet::new())?;
    drop_vanished(run, "settings:", &HashSet::new())?;
    drop_vanished(run, "todo:", &listed)
}

/// What every run reads: the mailbox settings, the inbox rules, the task lists.
pub(crate) fn polls(base: &str) -> [String; 3] {
    [
        format!("{base}/mailboxSettings"),
        format!("{base}/mailFolders/inbox/messageRules"),
        format!("{base}/todo/lists"),
    ]
}

/// A hash of the content as the version marker of what Graph gives none for.
fn content_hash(v: &Value) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(serde_json::to_vec(v).unwrap_or_default())[..8])
}

/// A rule carries no change key: its content's hash stands for one.
fn versioned(mut v: Value) -> Value {
    if v.get("changeKey").is_none() {
        let h = content_hash(&v);
        v["changeKey"] = h.into();
    }
    v
}

/// The settings as one item, `settings/mailboxSettings.json`, id `mailboxSettings`.
fn stage_settings(run: &Run<'_>, v: Value) -> anyhow::Result<()> {
    let id = "mailboxSettings";
    let path = "settings/mailboxSettings.json";
    let change = content_hash(&v);
    if changed(run, id, &change, path)?.is_none() {
        return Ok(());
    }
    let doc = serde_json::to_string_pretty(&v)?;
    let row = ItemRow {
        item: id.into(),
        scope: "settings".into(),
        kind: "mailboxSettings".into(),
        path: path.into(),
        size: doc.len() as u64,
        mtime: time_of(&v["lastModifiedDateTime"]).unwrap_or_default(),
        change,
        subject: Some("Mailbox settings".into()),
        sender: None,
        recipients: None,
        date: None,
        name: None,
        hash: None,
        sidecar: Some(doc),
        spool: None,
    };
    run.catalog().stage_put(run.res, &row)?;
    Ok(())
}
