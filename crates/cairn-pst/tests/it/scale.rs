//! Thousands of messages, large bodies and attachments: multi-level B-trees,
//! XBLOCK/XXBLOCK data trees, multi-block heaps and row matrices in subnodes.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_pst::{Attachment, FolderKind, PstWriter};

use crate::external::{pffexport, readpst};
use crate::fixture::{message, temp_dir};
use crate::outlook_pst::read_tree;

const SMALL: usize = 3000;
const BIG: usize = 3;

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed) as u8)
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn thousands_of_messages_read_back_by_outlook_pst_and_readpst() {
    let started = Instant::now();
    let dir = temp_dir("scale");
    let file = dir.join("scale.pst");
    let out = BufWriter::new(File::create(&file).unwrap());
    let mut w = PstWriter::new(out, "Scale").unwrap();
    let root = w.root();
    let bulk = w
        .add_folder(root, "Массовая папка", FolderKind::Mail)
        .unwrap();
    let other = w.add_folder(bulk, "Вложенная", FolderKind::Mail).unwrap();
    for i in 0..SMALL {
        let mut m = message(&format!("Сообщение №{i:05}"), i);
        m.internet_message_id = Some(format!("<bulk-{i}@example.com>"));
        w.add_message(if i % 10 == 9 { other } else { bulk }, &m)
            .unwrap();
    }
    let stats = w.finish().unwrap();
    assert_eq!(stats.messages as usize, SMALL);
    let written = started.elapsed();

    let subjects = |pick: fn(usize) -> bool| {
        let mut v: Vec<String> = (0..SMALL)
            .filter(|i| pick(*i))
            .map(|i| format!("Сообщение №{i:05}"))
            .collect();
        v.sort();
        v
    };
    let want_bulk = subjects(|i| i % 10 != 9);
    let want_other = subjects(|i| i % 10 == 9);
    let bulk_path = vec!["Массовая папка".to_string()];
    let other_path = vec!["Массовая папка".to_string(), "Вложенная".to_string()];

    // outlook-pst: every message opens through the contents tables.
    let tree = read_tree(&file);
    let mut got = tree[&bulk_path].clone();
    got.sort();
    assert_eq!(got, want_bulk);
    let mut got = tree[&other_path].clone();
    got.sort();
    assert_eq!(got, want_other);
    let read_back = started.elapsed();

    // readpst walks the node tree instead and finds the same messages.
    let rp = readpst(&file, &dir.join("rp"));
    assert_eq!(rp[&bulk_path], want_bulk);
    assert_eq!(rp[&other_path], want_other);
    eprintln!(
        "scale: written {written:?}, outlook-pst {read_back:?}, total {:?}",
        started.elapsed()
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn large_bodies_and_attachments_round_trip() {
    let dir = temp_dir("large");
    let file = dir.join("large.pst");
    let out = BufWriter::new(File::create(&file).unwrap());
    let mut w = PstWriter::new(out, "Large").unwrap();
    let root = w.root();
    let large = w
        .add_folder(root, "Большие письма", FolderKind::Mail)
        .unwrap();
    let body: String = "Длинный текст письма. ".repeat(100_000 / 40);
    let mut big_subjects = Vec::new();
    for i in 0..BIG {
        let subject = format!("Большое письмо {i}");
        let mut m = message(&subject, i);
        m.body_text = Some(body.clone());
        m.body_html = Some(format!("<html><body>{body}</body></html>").into_bytes());
        m.transport_headers = Some(format!("X-Long: {}\r\n", "h".repeat(20_000)));
        m.attachments.push(Attachment {
            filename: format!("данные-{i}.bin"),
            mime_type: "application/octet-stream".into(),
            data: pattern(i as u32, 1 << 20),
        });
        if i == 0 {
            // More than 1021 blocks of 8176 bytes: needs an XXBLOCK.
            m.attachments.push(Attachment {
                filename: "huge.bin".into(),
                mime_type: "application/octet-stream".into(),
                data: pattern(99, 8_500_000),
            });
        }
        w.add_message(large, &m).unwrap();
        big_subjects.push(subject);
    }
    let stats = w.finish().unwrap();
    assert_eq!(stats.attachments as usize, BIG + 1);
    assert!(stats.file_bytes > 11_000_000, "{stats:?}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), stats.file_bytes);
    let path = vec!["Большие письма".to_string()];

    let tree = read_tree(&file);
    assert_eq!(tree[&path], big_subjects);

    let rp = readpst(&file, &dir.join("rp"));
    assert_eq!(rp[&path], big_subjects);

    let pe = pffexport(&file, &dir);
    assert_eq!(pe[&path].len(), BIG);
    let mut exported = Vec::new();
    collect(&dir.join("x.export"), &mut exported);
    let find = |suffix: &str| {
        exported
            .iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} exported"))
            .clone()
    };
    assert!(std::fs::read(find("_huge.bin")).unwrap() == pattern(99, 8_500_000));
    for i in 0..BIG {
        let data = std::fs::read(find(&format!("_данные-{i}.bin"))).unwrap();
        assert!(data == pattern(i as u32, 1 << 20), "attachment {i}");
    }
    let bodies: Vec<_> = exported
        .iter()
        .filter(|p| p.ends_with("Message.txt"))
        .collect();
    assert_eq!(bodies.len(), BIG);
    for b in bodies {
        let text = std::fs::read_to_string(b).unwrap();
        assert!(text.trim_end() == body.trim_end(), "body round-trips");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn wide_items_spill_heaps_over_several_blocks() {
    use cairn_pst::{Recipient, RecipientKind};
    let dir = temp_dir("wide");
    let file = dir.join("wide.pst");
    let mut w = PstWriter::new(BufWriter::new(File::create(&file).unwrap()), "Wide").unwrap();
    let f = w.add_folder(w.root(), "Широкие", FolderKind::Mail).unwrap();
    // Every value just under the 3580-byte heap limit: the message's property
    // context needs several heap blocks.
    let subject = "Я".repeat(1700);
    let mut m = message(&subject, 1);
    m.from_name = "Ф".repeat(1700);
    m.body_text = Some("Т".repeat(1700));
    m.transport_headers = Some(format!("X-A: {}\r\n", "a".repeat(3000)));
    m.body_html = Some(vec![b'h'; 3500]);
    // 400 recipients: the recipient table's rows go to a subnode and its
    // strings over several heap blocks.
    m.recipients = (0..400)
        .map(|i| Recipient {
            name: format!("Получатель {i}"),
            email: format!("r{i}@example.com"),
            kind: if i % 3 == 0 {
                RecipientKind::Cc
            } else {
                RecipientKind::To
            },
        })
        .collect();
    w.add_message(f, &m).unwrap();
    w.finish().unwrap();
    crate::structure::check_file(&file);

    let store = outlook_pst::open_store(&file).unwrap();
    let tree = read_tree(&file);
    assert_eq!(tree[&vec!["Широкие".to_string()]], vec![subject.clone()]);
    let ipm = store
        .open_folder(&store.properties().ipm_sub_tree_entry_id().unwrap())
        .unwrap();
    let h = ipm.hierarchy_table().unwrap();
    let (fid, _) = crate::outlook_pst::column_texts(h.as_ref(), 0x3001)
        .into_iter()
        .find(|r| r.1.as_deref() == Some("Широкие"))
        .unwrap();
    let folder = store
        .open_folder(
            &store
                .properties()
                .make_entry_id(outlook_pst::ndb::node_id::NodeId::from(fid))
                .unwrap(),
        )
        .unwrap();
    let contents = folder.contents_table().unwrap();
    let (mid, _) = crate::outlook_pst::column_texts(contents.as_ref(), 0x0037)[0].clone();
    let msg = store
        .open_message(
            &store
                .properties()
                .make_entry_id(outlook_pst::ndb::node_id::NodeId::from(mid))
                .unwrap(),
            None,
        )
        .unwrap();
    let rt = msg.recipient_table().unwrap();
    let emails: Vec<String> = crate::outlook_pst::column_texts(rt.as_ref(), 0x3003)
        .into_iter()
        .map(|r| r.1.unwrap())
        .collect();
    assert_eq!(
        emails,
        (0..400)
            .map(|i| format!("r{i}@example.com"))
            .collect::<Vec<_>>()
    );

    let rp = readpst(&file, &dir.join("rp"));
    assert_eq!(rp[&vec!["Широкие".to_string()]], vec![subject]);

    let pe = pffexport(&file, &dir);
    assert_eq!(pe[&vec!["Широкие".to_string()]].len(), 1);
    let mut exported = Vec::new();
    collect(&dir.join("x.export"), &mut exported);
    let recipients = exported
        .iter()
        .find(|p| p.ends_with("Recipients.txt"))
        .expect("Recipients.txt");
    let text = std::fs::read_to_string(recipients).unwrap();
    for i in [0, 1, 199, 399] {
        assert!(text.contains(&format!("r{i}@example.com")), "recipient {i}");
    }
    std::fs::remove_dir_all(dir).ok();
}
