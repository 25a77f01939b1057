//! A user's regular polls, answered by a few `$batch`es before its services are staged.
//!
//! When little changed, most of an incremental run is polls: each collection's saved delta
//! link, each calendar's listing, and the listings every run reads (folder hierarchies,
//! settings, rules, task lists), one round trip each. Here they are sent as `$batch`es of
//! parts that run one after another (`dependsOn`), at most as many batches at once as the
//! mailbox allows concurrent requests, so Microsoft's per-mailbox limits hold: each part
//! counts as a request, and a batch occupies one concurrent request of the mailbox.
//!
//! An answer is kept for the code that would have asked for it, which reads it exactly as if
//! it had just come (a delta page with changes or a next link is followed as usual). What a
//! batch did not answer with 200, or answered with a large page, is asked for directly, as
//! without batching: the kept answers are small, so a user's poll costs little memory.

use crate::engine::Run;
use cairn_graph::GraphError;
use cairn_graph::transport::Resource;
use futures::{Stream, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Items a kept page may hold: a larger page is dropped and requested again when read, so
/// that what waits in memory stays small whatever changed.
const KEEP_ITEMS: usize = 50;

/// Parts of one `$batch` (Graph's limit).
const BATCH_PARTS: usize = 20;

/// Answers waiting for the request they stand for, each taken once.
#[derive(Default)]
pub(crate) struct Prefetched {
    pages: Mutex<HashMap<String, Value>>,
}

impl Prefetched {
    fn take(&self, url: &str) -> Option<Value> {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(url)
    }

    fn put(&self, url: String, v: Value) {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url, v);
    }

    pub fn len(&self) -> usize {
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Run<'_> {
    /// `GET`, answered from the batched polls when they hold it.
    pub async fn get(&self, path: &str) -> Result<Value, GraphError> {
        match self.prefetched.take(path) {
            Some(v) => Ok(v),
            None => self.graph().get(path).await,
        }
    }

    /// Every item of a collection, its first page from the batched polls when they hold it.
    pub fn items<'s>(&'s self, path: &str) -> impl Stream<Item = Result<Value, GraphError>> + 's {
        let first = self.prefetched.take(path);
        self.graph().items_from(path, first)
    }

    /// A delta round, its first answer from the batched polls when they hold it.
    pub fn delta<'s>(
        &'s self,
        start: &str,
        link: Option<&str>,
    ) -> impl Stream<Item = Result<cairn_graph::DeltaEvent, GraphError>> + 's {
        let first = self.prefetched.take(link.unwrap_or(start));
        self.graph().delta_from(start, link, first)
    }
}

/// Whether an answer is worth keeping: a success, and small.
fn keep(status: u16, body: &Value) -> bool {
    status == 200
        && body.is_object()
        && body
            .get("value")
            .is_none_or(|v| v.as_array().is_some_and(|a| a.len() <= KEEP_ITEMS))
}

/// Sends `urls` (as the staging code will ask for them) in `$batch`es and keeps their
/// answers in `run`. A failure only means they are asked for again directly.
pub(crate) async fn prefetch(run: &Run<'_>, urls: Vec<String>) {
    let graph = run.graph();
    // Parts are grouped by whose limits they count against: a batch is paced as its parts'.
    let mut groups: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for url in urls {
        let Some(rel) = graph.relative(&url) else {
            continue;
        };
        let key = match graph.resource_for(&http::Method::GET, &graph.url(&rel)) {
            Resource::Mailbox(m) => m.to_ascii_lowercase(),
            Resource::Files { .. } => "\u{0}files".into(),
            Resource::Tenant => "\u{0}tenant".into(),
        };
        groups.entry(key).or_default().push((url, rel));
    }
    let lanes = graph.pacer().limits().mailbox_concurrency.max(1) as usize;
    let mut batches = Vec::new();
    for (_, parts) in groups {
        // A lone request gains nothing from a batch.
        if parts.len() < 2 {
            continue;
        }
        let per = parts.len().div_ceil(lanes).clamp(2, BATCH_PARTS);
        let mut parts = parts.into_iter().peekable();
        while parts.peek().is_some() {
            batches.push(parts.by_ref().take(per).collect::<Vec<_>>());
        }
    }
    futures::stream::iter(batches)
        .map(|parts| async move {
            let rels: Vec<String> = parts.iter().map(|(_, r)| r.clone()).collect();
            match graph.batch_get_in_order(&rels).await {
                Ok(answers) => {
                    for ((url, _), (status, body)) in parts.into_iter().zip(answers) {
                        if keep(status, &body) {
                            run.prefetched.put(url, body);
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(resource = %run.target.name, "a batch of polls failed: {e}");
                }
            }
        })
        .buffer_unordered(lanes)
        .collect::<()>()
        .await;
}

/// What a user's run asks for whatever changed: the saved delta links of the collections
/// it follows, its calendars' listings, and the listings each wanted service starts from.
pub(crate) fn user_polls(run: &Run<'_>) -> anyhow::Result<Vec<String>> {
    use crate::engine::Service;
    let cat = run.catalog();
    let base = &run.base;
    let mut urls = Vec::new();
    let mut drives = Vec::new();
    for scope in cat.scopes(run.res)? {
        let Some((kind, id)) = scope.split_once(':') else {
            continue;
        };
        let wanted = match kind {
            "mail" | "todo" => run.wants(Service::Mail),
            "contacts" => run.wants(Service::Contacts),
            "calendar" => run.wants(Service::Calendar),
            "drive" => run.wants(Service::OneDrive),
            _ => false,
        };
        if !wanted {
            continue;
        }
        if kind == "calendar" {
            urls.push(crate::pim::events_url(base, id));
            continue;
        }
        let Some(link) = cat.token(run.res, &scope)? else {
            continue;
        };
        if kind == "drive" {
            drives.push(link);
        } else {
            urls.push(link);
        }
    }
    // The drive's link is read only when the user has one drive held.
    if let [one] = drives.as_slice() {
        urls.push(one.clone());
    }
    if run.wants(Service::Mail) {
        urls.extend(crate::mail::polls(base));
        urls.extend(crate::mailbox_extras::polls(base));
    }
    if run.wants(Service::Calendar) {
        urls.push(crate::pim::calendars_url(base));
    }
    if run.wants(Service::Contacts) {
        urls.push(crate::mail::hierarchy_delta(base, "contactFolders"));
    }
    Ok(urls)
}
