//! One collection (a mail folder, a drive, a list, a calendar) brought up to date in the
//! catalog: from its delta link when it has one, else by enumerating it whole and
//! reconciling (what the enumeration did not see again is removed).

use crate::engine::Run;
use cairn_graph::DeltaEvent;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

/// Work the planner hands back: fetch content, then stage. Its error names the item.
pub(crate) type Job<'a> = Pin<Box<dyn Future<Output = Result<(), (String, String)>> + Send + 'a>>;

pub(crate) enum Source {
    /// A delta query: `start` for a fresh round.
    Delta(String),
    /// A plain listing, enumerated whole each run (collections without delta).
    Listing(String),
}

/// Brings `scope` up to date. `plan` sees each current item: it stages it at once and
/// returns `None`, or returns a job (at most `per_resource` run at once).
pub(crate) async fn sync<'a>(
    run: &'a Run<'a>,
    scope: &str,
    source: Source,
    plan: impl FnMut(Value) -> anyhow::Result<Option<Job<'a>>>,
) -> anyhow::Result<()> {
    let name = OnceLock::new();
    let _ = name.set(scope.to_string());
    sync_named(run, &name, source, plan).await
}

/// `sync` for a collection whose id Graph gives only with its items (a user's drive,
/// enumerated as `/users/{id}/drive/root/delta` without asking for the drive first): `plan`
/// sets `scope` from the first item, before it stages anything. Unset, the collection is
/// new to the catalog (no link, nothing held).
pub(crate) async fn sync_named<'a>(
    run: &'a Run<'a>,
    scope: &OnceLock<String>,
    source: Source,
    mut plan: impl FnMut(Value) -> anyhow::Result<Option<Job<'a>>>,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    let named = || scope.get().map(String::as_str);
    let limit = run.engine.opts.per_resource.max(1);
    let (mut start, listing) = match source {
        Source::Delta(s) => (s, false),
        Source::Listing(s) => (s, true),
    };
    let mut link = match named() {
        Some(scope) if !listing => cat.token(run.res, scope)?,
        _ => None,
    };
    // A fresh enumeration of a collection we hold items of must reconcile (a first one has
    // nothing to reconcile, and keeps no set of ids).
    let held = link.is_none()
        && match named() {
            Some(scope) => {
                let mut any = false;
                cat.items_in_scope(run.res, scope, &mut |_| any = true)?;
                any
            }
            None => false,
        };
    let mut seen: Option<HashSet<String>> = (listing || held).then(HashSet::new);
    loop {
        let mut failed = false;
        let mut inflight: FuturesUnordered<Job<'a>> = FuturesUnordered::new();
        let mut restart = None;
        let mut complete = None;
        let mut count = 0u64;
        {
            let events: Pin<Box<dyn futures::Stream<Item = _> + Send + '_>> = if listing {
                Box::pin(run.items(&start).map(|r| r.map(DeltaEvent::Upsert)))
            } else {
                Box::pin(run.delta(&start, link.as_deref()))
            };
            let mut events = events;
            loop {
                if inflight.len() >= limit {
                    if let Some(Err((object, reason))) = inflight.next().await {
                        run.skip(object, reason);
                        failed = true;
                    }
                    continue;
                }
                // The jobs under way go on while the next page is read: a job holding one of
                // the mailbox's concurrent requests must not wait, unpolled, for a page that
                // waits for one (with three folders at once that starves the mailbox).
                let ev = tokio::select! {
                    done = inflight.next(), if !inflight.is_empty() => {
                        if let Some(Err((object, reason))) = done {
                            run.skip(object, reason);
                            failed = true;
                        }
                        continue;
                    }
                    ev = events.next() => ev,
                };
                let Some(ev) = ev else {
                    break;
                };
                match ev? {
                    DeltaEvent::Upsert(item) => {
                        count += 1;
                        if let (Some(seen), Some(id)) = (seen.as_mut(), item["id"].as_str()) {
                            seen.insert(id.to_string());
                        }
                        if let Some(job) = plan(item)? {
                            inflight.push(job);
                        }
                    }
                    DeltaEvent::Removed { id } => {
                        if let Some(scope) = named() {
                            cat.stage_remove(run.res, scope, &id)?;
                        }
                    }
                    DeltaEvent::Complete { delta_link } => complete = Some(delta_link),
                    DeltaEvent::Resync { restart: r } => {
                        restart = Some(r);
                        break;
                    }
                }
            }
        }
        while let Some(done) = inflight.next().await {
            if let Err((object, reason)) = done {
                run.skip(object, reason);
                failed = true;
            }
        }
        run.enumerated(count);
        if let Some(r) = restart {
            tracing::info!(resource = %run.target.name, scope = named().unwrap_or_default(), "delta token expired: enumerating afresh");
            if let Some(scope) = named() {
                cat.stage_token(run.res, scope, None)?;
            }
            start = r;
            link = None;
            seen = Some(HashSet::new());
            continue;
        }
        let Some(scope) = named() else {
            // Not a single item: nothing to keep, not even a link.
            return Ok(());
        };
        if let Some(seen) = seen.filter(|_| !failed) {
            let mut gone = Vec::new();
            cat.items_in_scope(run.res, scope, &mut |id| {
                if !seen.contains(&id) {
                    gone.push(id);
                }
            })?;
            for id in gone {
                cat.stage_remove(run.res, scope, &id)?;
            }
        }
        // An item that could not be fetched keeps the old link: the next run sees it again.
        if !failed && let Some(l) = complete {
            cat.stage_token(run.res, scope, Some(&l))?;
        }
        return Ok(());
    }
}

/// The scopes of a service the catalog holds that Graph no longer lists (a deleted folder,
/// drive or list): their items are removed from the next restore point.
pub(crate) fn drop_vanished(
    run: &Run<'_>,
    prefix: &str,
    listed: &HashSet<String>,
) -> anyhow::Result<()> {
    let cat = run.catalog();
    for scope in cat.scopes(run.res)? {
        if scope.starts_with(prefix) && !listed.contains(&scope) {
            let mut gone = Vec::new();
            cat.items_in_scope(run.res, &scope, &mut |id| gone.push(id))?;
            for id in gone {
                cat.stage_remove(run.res, &scope, &id)?;
            }
            cat.stage_token(run.res, &scope, None)?;
        }
    }
    Ok(())
}

/// The collections under `path` (drives, calendars…) as (id, name made a safe component).
pub(crate) async fn named(
    run: &Run<'_>,
    path: &str,
    name_field: &str,
    default: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut s = Box::pin(run.items(path));
    while let Some(c) = s.next().await {
        let c = c?;
        out.push((
            c["id"].as_str().unwrap_or_default().to_string(),
            crate::engine::component(c[name_field].as_str().unwrap_or(default)),
        ));
    }
    Ok(out)
}

/// What the catalog holds of an item, unless Graph reports it exactly as committed (same
/// version marker, same path): then any staged change of it is dropped (a resync's staged
/// removal, say) and `None` says there is nothing to do.
pub(crate) fn changed(
    run: &Run<'_>,
    item: &str,
    change: &str,
    path: &str,
) -> anyhow::Result<Option<cairn_catalog::Lookup>> {
    let cat = run.catalog();
    let found = cat.lookup(run.res, item)?;
    if let Some(c) = &found.current
        && c.change == change
        && c.path == path
    {
        cat.unstage(run.res, item)?;
        return Ok(None);
    }
    Ok(Some(found))
}
