//! Reading our PSTs back with readpst (libpst) and pffexport (libpff).
//! Both tools are required: without them these tests fail, they do not skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fixture::{temp_dir, write_sample};

/// Fails the test with an install hint when `tool` is missing.
pub fn require_tool(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed; these tests need it: apt-get install pst-utils pff-tools"
    );
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().expect("tool runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Decodes the RFC 2047 `=?utf-8?B?...?=` words readpst writes.
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    for word in v.split_whitespace() {
        if let Some(rest) = word
            .strip_prefix("=?utf-8?B?")
            .and_then(|r| r.strip_suffix("?="))
        {
            out.push_str(&String::from_utf8(b64(rest)).unwrap());
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

fn header(text: &str, name: &str) -> Option<String> {
    text.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
}

/// What readpst wrote: folder path (below the store) -> sorted item titles.
pub fn readpst(file: &Path, out: &Path) -> BTreeMap<Vec<String>, Vec<String>> {
    require_tool("readpst");
    std::fs::create_dir_all(out).unwrap();
    run(Command::new("readpst")
        .args(["-q", "-D", "-j", "0", "-r", "-e", "-o"])
        .arg(out)
        .arg(file));
    let mut all = Vec::new();
    files(out, &mut all);
    let mut tree: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for f in all {
        let rel = f.strip_prefix(out).unwrap();
        let mut path: Vec<String> = rel
            .parent()
            .unwrap()
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        path.remove(0); // the store's own directory
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let title = match f.extension().and_then(|e| e.to_str()) {
            Some("eml") => decode_words(&header(&text, "Subject:").unwrap_or_default()),
            Some("ics") => text
                .lines()
                .find_map(|l| l.strip_prefix("SUMMARY:"))
                .unwrap_or_default()
                .to_string(),
            Some("vcf") => text
                .lines()
                .find_map(|l| l.strip_prefix("FN:"))
                .unwrap_or_default()
                .to_string(),
            other => panic!("unexpected readpst output {f:?} ({other:?})"),
        };
        tree.entry(path).or_default().push(title);
    }
    for v in tree.values_mut() {
        v.sort();
    }
    tree
}

/// libpff 20180714 mangles characters outside the BMP (and its "Subject"
/// line drops the first bytes of non-ASCII subjects), so comparisons with
/// pffexport use the conversation topic with such characters removed.
pub fn bmp_only(s: &str) -> String {
    s.chars().filter(|c| (*c as u32) <= 0xFFFF).collect()
}

/// What pffexport wrote: folder path (below the IPM subtree) -> sorted topics.
pub fn pffexport(file: &Path, out: &Path) -> BTreeMap<Vec<String>, Vec<String>> {
    require_tool("pffexport");
    require_tool("pffinfo");
    run(Command::new("pffinfo").arg(file));
    let target = out.join("x");
    run(Command::new("pffexport")
        .args(["-q", "-m", "all", "-t"])
        .arg(&target)
        .arg(file));
    let top = out.join("x.export").join("Top of Personal Folders");
    let mut all = Vec::new();
    files(&top, &mut all);
    let mut tree: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for f in all {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if !matches!(
            name.as_str(),
            "OutlookHeaders.txt" | "Appointment.txt" | "Contact.txt"
        ) {
            continue;
        }
        // .../<folder path>/<ItemNNNNN>/<file>
        let item_dir = f.parent().unwrap();
        let rel = item_dir.parent().unwrap().strip_prefix(&top).unwrap();
        let path: Vec<String> = rel
            .components()
            .map(|c| bmp_only(&c.as_os_str().to_string_lossy()))
            .collect();
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let topic = text
            .lines()
            .find_map(|l| l.strip_prefix("Conversation topic:"))
            .map(|t| bmp_only(t.trim()))
            .unwrap_or_default();
        tree.entry(path).or_default().push(topic);
    }
    for v in tree.values_mut() {
        v.sort();
    }
    tree
}

#[test]
fn readpst_exports_every_item_with_its_subject() {
    let dir = temp_dir("readpst");
    let file = dir.join("sample.pst");
    let (_, expected) = write_sample(&file);
    let tree = readpst(&file, &dir.join("out"));
    let mut want: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (path, titles) in &expected.folders {
        if titles.is_empty() {
            continue; // readpst makes no directory for an empty folder
        }
        let mut t = titles.clone();
        t.sort();
        want.insert(path.clone(), t);
    }
    assert_eq!(tree, want);

    // The first inbox message carries both attachments, named and typed.
    let inbox = dir.join("out").join("Архив Cairn 📦").join("Входящие");
    let mut emls = Vec::new();
    files(&inbox, &mut emls);
    let with_attachments: Vec<String> = emls
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .filter(|t| t.contains("filename=\"image.png\""))
        .collect();
    assert_eq!(with_attachments.len(), 1);
    let t = &with_attachments[0];
    assert!(t.contains("filename=\"отчёт.txt\""));
    assert!(t.contains("Content-Type: image/png"));
    assert!(t.contains("Message-ID: <msg-0@example.com>"));
    assert!(t.contains("Привет! HTML body 0"));

    // Events and contacts keep their details (via the named-property map).
    let store_dir = dir.join("out").join("Архив Cairn 📦");
    let read_all = |sub: &str| {
        let mut fs = Vec::new();
        files(&store_dir.join(sub), &mut fs);
        fs.iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ics = read_all("Календарь");
    assert!(
        ics.contains("DTSTART;VALUE=DATE-TIME:20240506T090000Z"),
        "{ics}"
    );
    assert!(
        ics.contains("DTEND;VALUE=DATE-TIME:20240506T103000Z"),
        "{ics}"
    );
    assert!(ics.contains("LOCATION:Переговорная 5"), "{ics}");
    // readpst 0.6.76 reads the all-day flag (its debug log says so) but writes
    // every event as DATE-TIME; the flag itself is checked with outlook-pst.
    assert!(
        ics.contains("DTSTART;VALUE=DATE-TIME:20240507T000000Z"),
        "{ics}"
    );
    let vcf = read_all("Контакты");
    assert!(vcf.contains("N:Петров;Иван;;;"), "{vcf}");
    assert!(vcf.contains("EMAIL:ivan@example.com"), "{vcf}");
    assert!(vcf.contains("ORG:ООО Ромашка"), "{vcf}");
    assert!(vcf.contains("EMAIL:taro@example.jp"), "{vcf}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn pffexport_exports_every_item() {
    let dir = temp_dir("pffexport");
    let file = dir.join("sample.pst");
    let (_, expected) = write_sample(&file);
    let tree = pffexport(&file, &dir);
    let mut want: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    for (path, titles) in &expected.folders {
        if titles.is_empty() {
            continue;
        }
        let mut t: Vec<String> = titles.iter().map(|s| bmp_only(s)).collect();
        t.sort();
        want.insert(path.iter().map(|s| bmp_only(s)).collect(), t);
    }
    assert_eq!(tree, want);
    let total: usize = tree.values().map(Vec::len).sum();
    assert_eq!(total, expected.total_items());

    // Attachments come out byte for byte.
    let mut all = Vec::new();
    files(&dir.join("x.export"), &mut all);
    let png = all
        .iter()
        .find(|p| p.to_string_lossy().ends_with("_image.png"))
        .expect("image.png exported");
    let data = std::fs::read(png).unwrap();
    assert_eq!(
        data,
        (0..20_000u32).map(|x| (x % 251) as u8).collect::<Vec<_>>()
    );
    let txt = all
        .iter()
        .find(|p| p.to_string_lossy().ends_with("_отчёт.txt"))
        .expect("отчёт.txt exported");
    assert_eq!(
        std::fs::read_to_string(txt).unwrap(),
        "Содержимое вложения\n"
    );
    std::fs::remove_dir_all(dir).ok();
}
