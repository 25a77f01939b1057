//! `cairn find`: items across every restore point, from the catalog alone. A hit is one
//! version of an item with the points it is valid in, so a message deleted last year is
//! found with the last point that still held it.

use super::{human_size, start_time};
use crate::config::Config;
use crate::repo_cmd::RepoArgs;
use cairn_catalog::{Catalog, Hit, Query};
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

#[derive(Args)]
pub struct FindArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Text in the subject or name (case-insensitive); omit to search by the filters alone.
    query: Option<String>,
    /// Only this resource. Repeatable.
    #[arg(long = "resource", value_name = "NAME")]
    resources: Vec<String>,
    /// Only the resources of this tenant.
    #[arg(long, env = crate::env::CAIRN_TENANT, value_name = "NAME")]
    tenant: Option<String>,
    /// Sender address (or part of it).
    #[arg(long, value_name = "ADDR")]
    from: Option<String>,
    /// Recipient address (or part of it).
    #[arg(long, value_name = "ADDR")]
    to: Option<String>,
    /// Received (mail) or starting (events) on or after this date.
    #[arg(long, value_name = "DATE", value_parser = start_time)]
    after: Option<DateTime<Utc>>,
    /// Received or starting before this date (a date alone: its start).
    #[arg(long, value_name = "DATE", value_parser = start_time)]
    before: Option<DateTime<Utc>>,
    /// At least this many bytes.
    #[arg(long, value_name = "N")]
    min_size: Option<u64>,
    /// At most this many bytes.
    #[arg(long, value_name = "N")]
    max_size: Option<u64>,
    #[arg(long, value_parser = ["message", "event", "contact", "file", "listItem"])]
    kind: Option<String>,
    /// Show at most this many hits.
    #[arg(long, default_value_t = 1000)]
    limit: u64,
    /// Machine-readable output: one JSON object per hit, one per line.
    #[arg(long)]
    json: bool,
}

pub fn run(a: FindArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let cat = super::catalog(&cfg, &a.repo)?;
    let mut resources = Vec::new();
    for r in &a.resources {
        resources.push(super::resolve_resource(&cat, r, a.tenant.as_deref())?.id);
    }
    // The catalog matches one address against sender or recipients; the CLI narrows that
    // to the side asked for.
    let post_filter = a.from.is_some() || a.to.is_some();
    let q = Query {
        tenant: a.tenant.clone(),
        resources,
        text: a.query.clone().filter(|t| !t.is_empty()),
        person: a.from.clone().or(a.to.clone()),
        after: a.after,
        before: a.before,
        min_size: a.min_size,
        max_size: a.max_size,
        kind: a.kind.clone(),
        limit: (!post_filter).then_some(a.limit + 1),
    };
    let contains = |field: &Option<String>, needle: &Option<String>| match needle {
        None => true,
        Some(n) => field
            .as_deref()
            .is_some_and(|f| f.to_lowercase().contains(&n.to_lowercase())),
    };
    let hits: Vec<Hit> = cat
        .find(&q)?
        .into_iter()
        .filter(|h| contains(&h.row.sender, &a.from) && contains(&h.row.recipients, &a.to))
        .collect();
    let more = hits.len() as u64 > a.limit;
    // The latest point of each resource: a version still current is valid up to it.
    let mut latest: HashMap<i64, i64> = HashMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for h in hits.iter().take(a.limit as usize) {
        let last_seq = match &h.last {
            Some(p) => p.seq,
            None => match latest.get(&h.resource.id) {
                Some(s) => *s,
                None => {
                    let s = cat
                        .points(h.resource.id)?
                        .last()
                        .map(|p| p.seq)
                        .unwrap_or(h.first.seq);
                    latest.insert(h.resource.id, s);
                    s
                }
            },
        };
        let r = if a.json {
            let mut v = super::ls::item_json(&h.row);
            v["tenant"] = json!(h.resource.tenant);
            v["resource"] = json!(h.resource.name);
            v["first"] =
                json!({"seq": h.first.seq, "snapshot": h.first.snapshot, "time": h.first.time});
            v["last"] = match &h.last {
                Some(p) => json!({"seq": p.seq, "snapshot": p.snapshot, "time": p.time}),
                None => json!({"seq": last_seq}),
            };
            v["current"] = json!(h.last.is_none());
            writeln!(out, "{v}")
        } else {
            let points = if h.first.seq == last_seq {
                format!("point {}", h.first.seq)
            } else {
                format!("points {}..{}", h.first.seq, last_seq)
            };
            let state = if h.last.is_none() {
                ""
            } else {
                " (not in later points)"
            };
            writeln!(
                out,
                "{}  {}  {}  {}  {}  [{points}{state}]",
                h.resource.tenant,
                h.resource.name,
                h.row.path,
                super::ls::title(&h.row),
                human_size(h.row.size),
            )
        };
        if let Err(e) = r {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    out.flush()?;
    drop(out);
    if more {
        eprintln!(
            "note: more than {} hits; narrow the search or raise --limit",
            a.limit
        );
    } else if hits.is_empty() {
        eprintln!("nothing found");
    }
    Ok(())
}
