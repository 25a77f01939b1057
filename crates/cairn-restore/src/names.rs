//! Names between the repository and Graph: path components as the backup escaped them,
//! OData string literals, URL path segments.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// The name a repository path component stands for, as it can be created again: an item
/// that had no name (Graph allows it for some folders) is given one.
pub(crate) fn decode_component(c: &str) -> String {
    let name = cairn_catalog::component::decode(c);
    if name.is_empty() {
        "(no name)".into()
    } else {
        name
    }
}

/// Characters escaped in a URL path segment (OneDrive path addressing).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'+')
    .add(b'&')
    .add(b'\'')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

pub(crate) fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// `a/b/c` (decoded names) as an escaped URL path.
pub(crate) fn url_path(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| segment(p))
        .collect::<Vec<_>>()
        .join("/")
}

/// An OData string literal (`'it''s'`), URL-encoded for a query string.
pub(crate) fn odata_string(s: &str) -> String {
    let lit = format!("'{}'", s.replace('\'', "''"));
    utf8_percent_encode(&lit, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The keep-both name of a file: `report (restored 2026-01-31).pdf`.
pub(crate) fn keep_both_name(name: &str, label: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({label}).{ext}"),
        _ => format!("{name} ({label})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_decode() {
        assert_eq!(decode_component("a%2Fb"), "a/b");
        assert_eq!(decode_component("100%25"), "100%");
        assert_eq!(decode_component("%2E%2E"), "..");
        assert_eq!(decode_component("%00"), "(no name)");
        assert_eq!(decode_component("tab%09here"), "tab\there");
        assert_eq!(decode_component("Résumé 🎉 #1"), "Résumé 🎉 #1");
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(odata_string("it's"), "%27it%27%27s%27");
        assert_eq!(segment("a b#c.txt"), "a%20b%23c.txt");
        assert_eq!(
            keep_both_name("report.pdf", "restored 1"),
            "report (restored 1).pdf"
        );
        assert_eq!(keep_both_name(".env", "x"), ".env (x)");
    }
}
