//! A Microsoft 365 group's mailbox: its conversations, as Graph exposes them (threads and
//! their posts), each post kept as Graph JSON exactly as Graph gave it.
//!
//! Layout: `conversations/<thread topic>/<post id hash>.json`. Threads have no delta query:
//! they are listed whole each run (one request per page of threads), and only a thread whose
//! `lastDeliveredDateTime` moved since the last run has its posts listed and reconciled. That
//! time is kept as the thread's link in the catalog, committed with the restore point like a
//! delta link.

use crate::engine::{Run, component};
use crate::scope::{Source, drop_vanished, sync};
use futures::StreamExt;
use std::collections::HashSet;

pub(crate) async fn stage(run: &Run<'_>) -> anyhow::Result<()> {
    let cat = run.catalog();
    let mut listed = HashSet::new();
    let mut threads = Box::pin(run.graph().items(&format!(
        "{}/threads?$select=id,topic,lastDeliveredDateTime",
        run.base
    )));
    while let Some(t) = threads.next().await {
        let t = t?;
        let Some(id) = t["id"].as_str() else {
            run.skip("a conversation thread", "Graph gave no id");
            continue;
        };
        let scope = format!("conversations:{id}");
        listed.insert(scope.clone());
        let delivered = t["lastDeliveredDateTime"].as_str().unwrap_or_default();
        if !delivered.is_empty() && cat.token(run.res, &scope)?.as_deref() == Some(delivered) {
            continue;
        }
        let topic = t["topic"].as_str().unwrap_or("(no topic)");
        let dir = format!("conversations/{}", component(topic));
        let posts = format!("{}/threads/{id}/posts", run.base);
        let r = sync(run, &scope, Source::Listing(posts), |v| {
            crate::pim::stage_json(run, &scope, "post", &dir, v)
        })
        .await;
        match r {
            Ok(()) if !delivered.is_empty() => cat.stage_token(run.res, &scope, Some(delivered))?,
            Ok(()) => {}
            Err(e) => run.skip(format!("conversation {topic}"), format!("{e:#}")),
        }
    }
    drop(threads);
    drop_vanished(run, "conversations:", &listed)
}
