//! `snapshots`, `ls`, `find` and `export` as the command line shows them: the work is
//! `cairn_app::browse` and `cairn_app::export`; here are the tables, `--json` and the
//! progress lines.

pub mod export;
pub mod find;
pub mod ls;
pub mod snapshots;

use cairn_catalog::select::{self, Bound};
use chrono::{DateTime, Utc};

/// A clap value parser for dates that stand for the start of their day.
pub fn start_time(s: &str) -> Result<DateTime<Utc>, String> {
    date(s, Bound::Start)
}

/// A clap value parser for dates that stand for the end of their day.
pub fn end_time(s: &str) -> Result<DateTime<Utc>, String> {
    date(s, Bound::End)
}

fn date(s: &str, bound: Bound) -> Result<DateTime<Utc>, String> {
    select::parse_time(s, bound).map_err(|e| match e.hint() {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    })
}

/// The first characters of a snapshot id, as restic shows them.
pub fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

/// `1.2 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
