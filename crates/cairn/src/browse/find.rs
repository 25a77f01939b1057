//! `cairn find`: items across every restore point, from the catalog alone. A hit is one
//! version of an item with the points it is valid in, so a message deleted last year is
//! found with the last point that still held it.

use super::{human_size, start_time};
use crate::repo_cmd::RepoArgs;
use cairn_app::browse::FindRequest;
use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
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
    #[arg(long, env = cairn_config::env::CAIRN_TENANT, value_name = "NAME")]
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
    let ws = crate::config::workspace(config, &a.repo, None)?;
    let cat = ws.catalog()?;
    let result = cairn_app::browse::find(
        &*cat,
        &FindRequest {
            text: a.query.clone(),
            resources: a.resources.clone(),
            tenant: a.tenant.clone(),
            from: a.from.clone(),
            to: a.to.clone(),
            after: a.after,
            before: a.before,
            min_size: a.min_size,
            max_size: a.max_size,
            kind: a.kind.clone(),
            limit: a.limit,
        },
    )?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for found in &result.found {
        let (h, last_seq) = (&found.hit, found.last_seq);
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
        r?;
    }
    out.flush()?;
    drop(out);
    if result.more {
        eprintln!(
            "note: more than {} hits; narrow the search or raise --limit",
            a.limit
        );
    } else if result.found.is_empty() {
        eprintln!("nothing found");
    }
    Ok(())
}
