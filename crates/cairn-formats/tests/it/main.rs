//! Exports read back by parsers that are not ours: the `ical` crate for iCalendar and vCard,
//! Python's `mailbox` module for mbox. Inputs are the simulator's generated items (the same
//! JSON and MIME a backup of the simulator holds) plus fixtures for what the simulator does
//! not generate (every recurrence pattern, Windows zones, odd characters).

mod ics;
mod mbox;
mod names;
mod vcf;

use cairn_sim::TenantSpec;
use cairn_sim::tenant::Tenant;
use serde_json::Value;

/// A small generated tenant; everything in it is a pure function of the seed.
pub fn tenant() -> Tenant {
    Tenant::new(TenantSpec {
        seed: 7,
        users: 4,
        events_per_mailbox: 40,
        contacts_per_mailbox: 24,
        max_item_size: 512 * 1024,
        ..TenantSpec::default()
    })
}

pub fn fixture(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Reverses iCalendar/vCard TEXT escaping (the `ical` crate leaves values as written).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') | Some('N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Physical lines end in CRLF and hold at most 75 octets; the output is UTF-8.
pub fn assert_content_lines(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("UTF-8 output");
    assert!(text.ends_with("\r\n"));
    for line in text[..text.len() - 2].split("\r\n") {
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "bare line break in {line:?}"
        );
        assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
    }
}
