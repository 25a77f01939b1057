//! Names as path components of a restore point, and back.
//!
//! A mail folder, a file or a list may be called anything Graph allows, `/`, `%`, control
//! characters, `..` and the empty name included; in a restore point each name is one path
//! component. The backup writes components with [`encode`]; restore, export and the
//! catalog rebuild read names back with [`decode`]. One module, so the two cannot drift.
//!
//! Escapes are percent-encoded UTF-8 bytes: `/` is `%2F`, `%` is `%25`, a control
//! character its bytes (`%0A`, `%C2%85`); the empty name is `%00`, `.` is `%2E` and `..` is
//! `%2E%2E`. Everything else stays as it is, so paths read naturally in `restic ls`.
//! (A name that is exactly one NUL character would also encode as `%00`; Graph allows no
//! such name.)

/// `name` as one path component.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '%' => out.push_str("%25"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    match out.as_str() {
        "" => "%00".into(),
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => out,
    }
}

/// The name a path component written by [`encode`] stands for (the empty name for `%00`).
/// A component that is not valid after decoding (a damaged or foreign repository) decodes
/// lossily rather than failing.
pub fn decode(component: &str) -> String {
    if component == "%00" {
        return String::new();
    }
    percent_encoding::percent_decode_str(component)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_what_paths_cannot_hold() {
        assert_eq!(encode("a/b"), "a%2Fb");
        assert_eq!(encode("100%"), "100%25");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(encode(""), "%00");
        assert_eq!(encode("tab\there"), "tab%09here");
        assert_eq!(encode("Résumé 🎉 #1"), "Résumé 🎉 #1");
        assert_eq!(decode("%2E%2E"), "..");
        assert_eq!(decode("%00"), "");
        assert_eq!(decode("a%2Fb"), "a/b");
    }

    proptest! {
        #[test]
        fn every_name_comes_back(name in any::<String>().prop_filter("a lone NUL", |s| s != "\0")) {
            let c = encode(&name);
            prop_assert!(!c.contains('/'), "{c:?}");
            prop_assert!(c != "." && c != ".." && !c.is_empty(), "{c:?}");
            prop_assert!(!c.chars().any(char::is_control), "{c:?}");
            prop_assert_eq!(decode(&c), name);
        }
    }
}
