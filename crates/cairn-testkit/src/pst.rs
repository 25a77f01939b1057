//! Reading PST files back with three independent readers: `readpst` (libpst),
//! `pffexport` (libpff) and Microsoft's `outlook-pst` crate. The two tools are required:
//! without them a test fails with the packages to install, it does not skip.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use outlook_pst::ltp::prop_context::PropertyValue;
use outlook_pst::ltp::table_context::TableContext;
use outlook_pst::messaging::folder::Folder;
use outlook_pst::messaging::store::Store;
use outlook_pst::ndb::node_id::NodeId;

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

pub fn files(dir: &Path, out: &mut Vec<PathBuf>) {
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
        // The charset's name in any case (readpst writes `utf-8` or `UTF-8`).
        let lower = word.get(..10).map(str::to_ascii_lowercase);
        if let Some(rest) = (lower.as_deref() == Some("=?utf-8?b?"))
            .then(|| &word[10..])
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
    std::fs::create_dir_all(out).unwrap();
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

pub fn text(v: &PropertyValue) -> Option<String> {
    match v {
        PropertyValue::Unicode(s) => Some(s.to_string()),
        PropertyValue::String8(s) => Some(s.to_string()),
        _ => None,
    }
}

/// Column `prop_id` of every row of `table`, as text.
pub fn column_texts(table: &dyn TableContext, prop_id: u16) -> Vec<(u32, Option<String>)> {
    let ctx = table.context();
    table
        .rows_matrix()
        .map(|row| {
            let cols = row.columns(ctx).unwrap();
            let v = ctx
                .columns()
                .iter()
                .zip(cols)
                .find(|(c, _)| c.prop_id() == prop_id)
                .and_then(|(c, v)| v.map(|v| table.read_column(&v, c.prop_type()).unwrap()));
            (u32::from(row.id()), v.as_ref().and_then(text))
        })
        .collect()
}

/// A folder tree as read back: path -> subjects of its messages (read from each message).
pub type Tree = BTreeMap<Vec<String>, Vec<String>>;

pub fn read_tree(path: &Path) -> Tree {
    let store = outlook_pst::open_store(path).expect("outlook-pst opens the file");
    let ipm = store.properties().ipm_sub_tree_entry_id().unwrap();
    let top = store.open_folder(&ipm).unwrap();
    let mut tree = Tree::new();
    walk(&store, &top, Vec::new(), &mut tree);
    tree
}

fn walk(store: &Rc<dyn Store>, folder: &Rc<dyn Folder>, path: Vec<String>, tree: &mut Tree) {
    if !path.is_empty() {
        let mut subjects = Vec::new();
        if let Some(contents) = folder.contents_table() {
            for (id, _) in column_texts(contents.as_ref(), 0x0037) {
                let entry = store.properties().make_entry_id(NodeId::from(id)).unwrap();
                let m = store.open_message(&entry, None).expect("message opens");
                let subject = m
                    .properties()
                    .get(0x0037)
                    .and_then(text)
                    .unwrap_or_default();
                subjects.push(subject);
            }
        }
        tree.insert(path.clone(), subjects);
    }
    let Some(h) = folder.hierarchy_table() else {
        return;
    };
    for (id, name) in column_texts(h.as_ref(), 0x3001) {
        let entry = store.properties().make_entry_id(NodeId::from(id)).unwrap();
        let child = store.open_folder(&entry).expect("folder opens");
        let own = child.properties().display_name().unwrap();
        assert_eq!(Some(own.clone()), name, "hierarchy row and folder agree");
        let mut p = path.clone();
        p.push(own);
        walk(store, &child, p, tree);
    }
}
