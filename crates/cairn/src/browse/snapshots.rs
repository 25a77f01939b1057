//! `cairn snapshots` from the catalog as a table: restore points per resource, numbered as
//! `ls`, `find` and `export` name them, with what each holds (`cairn_app::browse`).

use super::short;
use cairn_app::browse::SnapshotRow as Row;
use std::collections::HashSet;

/// The table `cairn snapshots` prints. Tenant and resource columns are as wide as their
/// longest value (site URLs run long), so the columns after them stay aligned.
pub fn print(rows: &[Row]) -> anyhow::Result<()> {
    let width = |head: &str, f: &dyn Fn(&Row) -> usize| {
        rows.iter().map(f).max().unwrap_or(0).max(head.len())
    };
    let tw = width("TENANT", &|r| r.tenant.chars().count());
    let rw = width("RESOURCE", &|r| r.resource.chars().count());
    outln!(
        "{:<tw$} {:<rw$} {:>5} {:<10} {:<20} {:>8} {:>10}  CONTENT",
        "TENANT",
        "RESOURCE",
        "POINT",
        "ID",
        "TIME",
        "ITEMS",
        "SIZE"
    );
    for r in rows {
        let content = r
            .kinds
            .iter()
            .map(|(k, n)| format!("{n} {}", plural(k, *n)))
            .collect::<Vec<_>>()
            .join(", ");
        outln!(
            "{:<tw$} {:<rw$} {:>5} {:<10} {:<20} {:>8} {:>10}  {content}{}",
            r.tenant,
            r.resource,
            r.point,
            short(&r.snapshot),
            r.time.format("%Y-%m-%d %H:%M:%S"),
            r.items,
            super::human_size(r.size),
            match (r.in_repository, r.suspect) {
                (false, _) => "  (forgotten: no longer in the repository)".to_string(),
                (true, true) => format!(
                    "  SUSPECT: {}",
                    r.findings
                        .iter()
                        .map(|f| f.signal.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (true, false) => String::new(),
            }
        );
    }
    let resources: HashSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.tenant.as_str(), r.resource.as_str()))
        .collect();
    outln!(
        "{} restore points of {} resources",
        rows.len(),
        resources.len()
    );
    Ok(())
}

fn plural(kind: &str, n: u64) -> String {
    let word = match kind {
        "message" => "message",
        "event" => "event",
        "contact" => "contact",
        "file" => "file",
        "listItem" => "list item",
        other => other,
    };
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}
