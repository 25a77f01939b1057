//! File and folder names that every target file system accepts, from names a tenant chose.
//!
//! Mail subjects, folder names and OneDrive names may hold anything: `/`, `..`, `CON`,
//! emoji, 400 characters. An export written to NTFS, exFAT, APFS, ext4 or a ZIP must neither
//! fail on them nor, worse, write outside the directory it was given. The rules are the
//! strictest of those file systems (Windows'), applied everywhere, so that an export made on
//! Linux can be copied to a Windows share unchanged.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Longest name in UTF-8 bytes: ext4's and APFS's limit, and within NTFS's 255 UTF-16 units
/// (a character takes no more UTF-16 units than UTF-8 bytes).
pub const MAX_NAME_BYTES: usize = 255;

/// Longest suffix kept as an extension when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 32;

/// What replaces a character a file system refuses.
const REPLACEMENT: char = '_';

/// One path component that is safe on every file system: never empty, never `.` or `..`,
/// no separator, no character Windows refuses (`\ / : * ? " < > |`, control characters), no
/// trailing dot or space, no Windows device name (`CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`,
/// `LPT1`-`LPT9`, with any extension), at most [`MAX_NAME_BYTES`] bytes with the extension
/// kept. Applying it twice changes nothing.
pub fn safe_component(name: &str) -> String {
    let replaced: String = name
        .chars()
        .map(|c| if refused(c) { REPLACEMENT } else { c })
        .collect();
    let mut s = replaced.trim_end_matches(['.', ' ']).to_string();
    if s.is_empty() {
        s.push(REPLACEMENT);
    }
    if is_device_name(&s) {
        s.insert(0, REPLACEMENT);
    }
    shorten(s)
}

fn refused(c: char) -> bool {
    matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') || c.is_control()
}

/// Windows reserves these names whatever follows the first dot, and ignores trailing spaces
/// before it ("NUL .txt" is NUL); `COM¹`-`COM³` and `LPT¹`-`LPT³` count too.
fn is_device_name(s: &str) -> bool {
    let stem = s.split('.').next().unwrap_or(s).trim_end_matches(' ');
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let Some(rest) = upper
                .strip_prefix("COM")
                .or_else(|| upper.strip_prefix("LPT"))
            else {
                return false;
            };
            let mut chars = rest.chars();
            matches!(
                (chars.next(), chars.next()),
                (Some('1'..='9' | '¹' | '²' | '³'), None)
            )
        }
    }
}

/// Cuts `s` to [`MAX_NAME_BYTES`] at a character boundary, keeping a short extension.
fn shorten(s: String) -> String {
    if s.len() <= MAX_NAME_BYTES {
        return s;
    }
    let ext = match s.rfind('.') {
        Some(dot) if dot > 0 && s.len() - dot <= MAX_EXTENSION_BYTES => &s[dot..],
        _ => "",
    };
    let stem = &s[..s.len() - ext.len()];
    let mut cut = MAX_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = stem[..cut].trim_end_matches(['.', ' ']);
    let stem = if stem.is_empty() { "_" } else { stem };
    format!("{stem}{ext}")
}

/// `root` joined with the `/`-separated relative path `rel`, every component made safe
/// with [`safe_component`]. Empty components are dropped (`a//b` is `a/b`); a leading `/` does
/// not make the path absolute; `.` and `..` become `_`. The result is always `root` or a path
/// below it.
pub fn safe_join(root: &Path, rel: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in rel.split('/').filter(|c| !c.is_empty()) {
        p.push(safe_component(part));
    }
    p
}

/// The file name of an exported message: `2026-03-01 101500 Subject 1a2b3c4d.eml`, which
/// sorts by time received (UTC) and stays unique through a short hash of the Graph id when
/// two messages share time and subject. The subject is cut to 80 characters.
pub fn eml_name(received: DateTime<Utc>, subject: &str, id: &str) -> String {
    const SUBJECT_CHARS: usize = 80;
    let subject: String = subject
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(SUBJECT_CHARS)
        .collect();
    let subject = subject.trim();
    let subject = if subject.is_empty() {
        "(no subject)"
    } else {
        subject
    };
    let hash = Sha256::digest(id.as_bytes());
    let short = hex::encode(&hash[..4]);
    safe_component(&format!(
        "{} {subject} {short}.eml",
        received.format("%Y-%m-%d %H%M%S")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn refused_characters_are_replaced() {
        assert_eq!(
            safe_component("a/b\\c:d*e?f\"g<h>i|j"),
            "a_b_c_d_e_f_g_h_i_j"
        );
        assert_eq!(safe_component("tab\there\u{0}nul\u{85}"), "tab_here_nul_");
        assert_eq!(safe_component("Réunion 会議 📊"), "Réunion 会議 📊");
    }

    #[test]
    fn dots_spaces_and_empty_names() {
        assert_eq!(safe_component(""), "_");
        assert_eq!(safe_component("."), "_");
        assert_eq!(safe_component(".."), "_");
        assert_eq!(safe_component("name. . "), "name");
        assert_eq!(safe_component(".bashrc"), ".bashrc");
        assert_eq!(safe_component("  leading"), "  leading");
    }

    #[test]
    fn windows_device_names_with_any_extension() {
        for n in [
            "CON",
            "con",
            "Nul.txt",
            "COM1",
            "lpt9.tar.gz",
            "AUX .log",
            "COM¹",
        ] {
            let s = safe_component(n);
            assert!(s.starts_with('_'), "{n} → {s}");
            assert_eq!(s[1..], *n.trim_end_matches(['.', ' ']));
        }
        for n in ["CONSOLE", "COM10", "COM0", "LPT", "nul_", "prn-x.txt"] {
            assert_eq!(safe_component(n), n);
        }
    }

    #[test]
    fn long_names_keep_their_extension_and_whole_characters() {
        let long = format!("{}.docx", "é".repeat(200));
        let s = safe_component(&long);
        assert!(s.len() <= MAX_NAME_BYTES);
        assert!(s.ends_with(".docx"));
        assert_eq!(s.len(), 255, "125 two-byte characters and the extension");
        let no_ext = "x".repeat(300);
        assert_eq!(safe_component(&no_ext), "x".repeat(255));
        // An "extension" longer than 32 bytes is part of the name.
        let long_ext = format!("a.{}", "b".repeat(300));
        assert_eq!(safe_component(&long_ext).len(), 255);
    }

    #[test]
    fn join_never_leaves_the_root() {
        let root = Path::new("/export");
        assert_eq!(safe_join(root, "a/b/c.txt"), Path::new("/export/a/b/c.txt"));
        assert_eq!(
            safe_join(root, "/etc/passwd"),
            Path::new("/export/etc/passwd")
        );
        assert_eq!(safe_join(root, "../../x"), Path::new("/export/_/_/x"));
        assert_eq!(safe_join(root, "a//./b"), Path::new("/export/a/_/b"));
        assert_eq!(
            safe_join(root, "C:\\Windows"),
            Path::new("/export/C__Windows")
        );
        assert_eq!(safe_join(root, ""), root);
    }

    #[test]
    fn eml_names_sort_by_time_and_differ_by_id() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 10, 15, 0).unwrap();
        let a = eml_name(t, "  RE:  Contract\tdraft v3 ", "AAMkAGI2=");
        assert!(
            a.starts_with("2026-03-01 101500 RE_ Contract draft v3 "),
            "{a}"
        );
        assert!(a.ends_with(".eml"));
        assert_ne!(a, eml_name(t, "RE: Contract draft v3", "AAMkAGI3="));
        assert_eq!(a, eml_name(t, "RE: Contract draft v3", "AAMkAGI2="));
        let odd = eml_name(t, "Invoice #48213 / Q3: final?", "id");
        assert!(odd.contains("Invoice #48213 _ Q3_ final_"), "{odd}");
        assert!(eml_name(t, "   ", "id").contains("(no subject)"));
        assert!(eml_name(t, &"Ω".repeat(500), "id").len() <= MAX_NAME_BYTES);
    }
}
