use cairn_formats::names::{MAX_NAME_BYTES, safe_component, safe_join};
use proptest::prelude::*;
use std::path::{Component, Path};

/// Names made mostly of what breaks file systems, plus anything at all.
fn nasty_name() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(
            prop_oneof![
                Just("/".to_string()),
                Just("\\".to_string()),
                Just("..".to_string()),
                Just(".".to_string()),
                Just(" ".to_string()),
                Just(":*?\"<>|".to_string()),
                Just("\u{0}\u{1f}\u{7f}\u{85}".to_string()),
                Just("CON".to_string()),
                Just("com1".to_string()),
                Just("LPT9".to_string()),
                Just("nul".to_string()),
                Just(".txt".to_string()),
                Just("é".to_string()),
                Just("会議".to_string()),
                Just("📊".to_string()),
                "[a-z]{1,40}",
                ".{0,8}",
            ],
            0..80,
        )
        .prop_map(|parts| parts.concat()),
        any::<String>(),
    ]
}

fn is_device_name(s: &str) -> bool {
    let stem = s.split('.').next().unwrap().trim_end().to_ascii_uppercase();
    ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn safe_component_is_safe_and_idempotent(name in nasty_name()) {
        let s = safe_component(&name);
        prop_assert!(!s.is_empty());
        prop_assert!(s.len() <= MAX_NAME_BYTES);
        prop_assert!(s != "." && s != "..");
        prop_assert!(!s.ends_with('.') && !s.ends_with(' '));
        prop_assert!(!s.chars().any(|c| "/\\:*?\"<>|".contains(c) || c.is_control()), "{s:?}");
        prop_assert!(!is_device_name(&s), "{s:?}");
        prop_assert_eq!(safe_component(&s), s.clone());
        // A name that is already fine is kept as it is.
        if name == s {
            prop_assert_eq!(safe_component(&name), name);
        }
    }

    #[test]
    fn safe_join_stays_below_root(parts in proptest::collection::vec(nasty_name(), 0..6)) {
        let rel = parts.join("/");
        let root = Path::new("/srv/export");
        let joined = safe_join(root, &rel);
        prop_assert!(joined.starts_with(root));
        let below = joined.strip_prefix(root).unwrap();
        for c in below.components() {
            match c {
                Component::Normal(n) => {
                    let n = n.to_str().unwrap();
                    prop_assert_eq!(safe_component(n), n);
                }
                other => prop_assert!(false, "{other:?} in {joined:?}"),
            }
        }
        // Every non-empty '/'-separated part is one component, no more.
        let parts = rel.split('/').filter(|p| !p.is_empty()).count();
        prop_assert_eq!(below.components().count(), parts);
    }
}

#[test]
fn safe_join_keeps_ordinary_paths() {
    let root = Path::new("export");
    assert_eq!(
        safe_join(root, "Inbox/Réunions 2026/notes.txt"),
        Path::new("export/Inbox/Réunions 2026/notes.txt")
    );
}
