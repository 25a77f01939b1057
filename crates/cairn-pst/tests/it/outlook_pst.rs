//! Reading our PSTs back with Microsoft's `outlook-pst` crate.

use std::path::Path;
use std::rc::Rc;

pub use cairn_testkit::pst::{Tree, column_texts, read_tree, text};
use outlook_pst::ltp::prop_context::PropertyValue;
use outlook_pst::messaging::folder::Folder;
use outlook_pst::messaging::store::Store;
use outlook_pst::ndb::node_id::NodeId;

use crate::fixture::{temp_dir, write_sample};

#[test]
fn outlook_pst_reads_folder_tree_and_subjects() {
    let dir = temp_dir("opst");
    let file = dir.join("sample.pst");
    let (stats, expected) = write_sample(&file);
    assert_eq!(stats.folders, 5);
    assert_eq!(stats.messages as usize, expected.total_items());

    let store = outlook_pst::open_store(&file).unwrap();
    assert_eq!(store.properties().display_name().unwrap(), "Архив Cairn 📦");

    let tree = read_tree(&file);
    let want: Tree = expected.folders.iter().cloned().collect();
    assert_eq!(tree, want);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn outlook_pst_reads_message_details() {
    let dir = temp_dir("opst-details");
    let file = dir.join("sample.pst");
    let (_, expected) = write_sample(&file);
    let store = outlook_pst::open_store(&file).unwrap();
    let ipm = store.properties().ipm_sub_tree_entry_id().unwrap();
    let top = store.open_folder(&ipm).unwrap();
    let h = top.hierarchy_table().unwrap();
    let (inbox_id, _) = column_texts(h.as_ref(), 0x3001)
        .into_iter()
        .find(|(_, n)| n.as_deref() == Some("Входящие"))
        .unwrap();
    let inbox = store
        .open_folder(
            &store
                .properties()
                .make_entry_id(NodeId::from(inbox_id))
                .unwrap(),
        )
        .unwrap();
    let contents = inbox.contents_table().unwrap();
    let rows = column_texts(contents.as_ref(), 0x0037);
    assert_eq!(rows.len(), 3);
    // The contents table carries the subject column itself.
    let subjects: Vec<_> = rows.iter().map(|r| r.1.clone().unwrap()).collect();
    assert_eq!(subjects, expected.folders[1].1);

    let first = store
        .open_message(
            &store
                .properties()
                .make_entry_id(NodeId::from(rows[0].0))
                .unwrap(),
            None,
        )
        .unwrap();
    let p = first.properties();
    assert_eq!(p.get(0x001A).and_then(text).as_deref(), Some("IPM.Note"));
    assert_eq!(
        p.get(0x0C1A).and_then(text).as_deref(),
        Some("Zoë Ångström")
    );
    assert_eq!(
        p.get(0x0C1F).and_then(text).as_deref(),
        Some("zoe@example.com")
    );
    assert_eq!(
        p.get(0x1035).and_then(text).as_deref(),
        Some("<msg-0@example.com>")
    );
    assert!(
        p.get(0x007D)
            .and_then(text)
            .unwrap()
            .starts_with("Received: from mx")
    );
    assert!(
        p.get(0x1000)
            .and_then(text)
            .unwrap()
            .starts_with("Привет! Body of message 0")
    );
    match p.get(0x1013) {
        Some(PropertyValue::Binary(b)) => {
            assert!(String::from_utf8_lossy(b.buffer()).contains("HTML body 0"));
        }
        other => panic!("PR_HTML: {other:?}"),
    }
    // 2024-03-01T10:00:00Z = Unix 1_709_287_200 s; FILETIME counts 100 ns from 1601.
    match p.get(0x0039) {
        Some(PropertyValue::Time(t)) => {
            assert_eq!(*t, (1_709_287_200 + 11_644_473_600) * 10_000_000)
        }
        other => panic!("PR_CLIENT_SUBMIT_TIME: {other:?}"),
    }
    assert_eq!(p.get(0x0E04).and_then(text).as_deref(), Some("Иван Петров"));
    assert_eq!(p.get(0x0E03).and_then(text).as_deref(), Some("山田太郎"));

    let recipients = first.recipient_table().unwrap();
    let names: Vec<_> = column_texts(recipients.as_ref(), 0x3001)
        .into_iter()
        .map(|r| r.1.unwrap())
        .collect();
    assert_eq!(names, vec!["Иван Петров", "山田太郎"]);
    let emails: Vec<_> = column_texts(recipients.as_ref(), 0x3003)
        .into_iter()
        .map(|r| r.1.unwrap())
        .collect();
    assert_eq!(emails, vec!["ivan@example.com", "taro@example.jp"]);

    let attachments = first.attachment_table().expect("attachment table");
    let files: Vec<_> = column_texts(attachments.as_ref(), 0x3704)
        .into_iter()
        .map(|r| r.1.unwrap())
        .collect();
    assert_eq!(files, expected.attachment_names);

    // Named properties: the map lists PSETID_Appointment's start time under 0x8000.
    let map = store.named_property_map().unwrap();
    let entries = map.properties().stream_entry().unwrap();
    assert!(entries.len() >= 12);
    let guids = map.properties().stream_guid().unwrap();
    assert_eq!(guids.len(), 3);
    std::fs::remove_dir_all(dir).ok();
}

/// Leaves a sample file behind for manual inspection when CAIRN_PST_KEEP is set.
#[test]
fn sample_file_for_inspection() {
    if let Ok(p) = std::env::var("CAIRN_PST_KEEP") {
        write_sample(Path::new(&p));
    }
}

fn child(store: &Rc<dyn Store>, folder: &Rc<dyn Folder>, name: &str) -> Rc<dyn Folder> {
    let h = folder.hierarchy_table().unwrap();
    let (id, _) = column_texts(h.as_ref(), 0x3001)
        .into_iter()
        .find(|(_, n)| n.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("folder {name}"));
    store
        .open_folder(&store.properties().make_entry_id(NodeId::from(id)).unwrap())
        .unwrap()
}

fn items(
    store: &Rc<dyn Store>,
    folder: &Rc<dyn Folder>,
) -> Vec<Rc<dyn outlook_pst::messaging::message::Message>> {
    let contents = folder.contents_table().unwrap();
    column_texts(contents.as_ref(), 0x0037)
        .into_iter()
        .map(|(id, _)| {
            let entry = store.properties().make_entry_id(NodeId::from(id)).unwrap();
            store.open_message(&entry, None).unwrap()
        })
        .collect()
}

#[test]
fn outlook_pst_reads_appointments_and_contacts_through_named_properties() {
    use outlook_pst::messaging::named_prop::{NamedPropertyGuid, NamedPropertyId};

    let dir = temp_dir("opst-named");
    let file = dir.join("sample.pst");
    let (_, expected) = write_sample(&file);
    let store = outlook_pst::open_store(&file).unwrap();

    // Resolve the property ids through the name-to-id map, as a reader must.
    let map = store.named_property_map().unwrap();
    let guids = map.properties().stream_guid().unwrap();
    let entries = map.properties().stream_entry().unwrap();
    let lookup = |set: u32, lid: u32| -> u16 {
        entries
            .iter()
            .find(|e| {
                e.id() == NamedPropertyId::Number(lid)
                    && matches!(e.guid(), NamedPropertyGuid::GuidIndex(i) if guids[i as usize].data1() == set)
            })
            .unwrap_or_else(|| panic!("named property {set:#x}/{lid:#x}"))
            .prop_id()
    };
    let start_id = lookup(0x0006_2002, 0x820D);
    let end_id = lookup(0x0006_2002, 0x820E);
    let location_id = lookup(0x0006_2002, 0x8208);
    let all_day_id = lookup(0x0006_2002, 0x8215);
    let email_id = lookup(0x0006_2004, 0x8083);

    let ipm = store
        .open_folder(&store.properties().ipm_sub_tree_entry_id().unwrap())
        .unwrap();
    let calendar = child(&store, &ipm, "Календарь");
    assert_eq!(
        calendar.properties().get(0x3613).and_then(text).as_deref(),
        Some("IPF.Appointment")
    );
    let events = items(&store, &calendar);
    assert_eq!(events.len(), expected.appointment_subjects.len());
    let first = events[0].properties();
    assert_eq!(
        first.get(0x001A).and_then(text).as_deref(),
        Some("IPM.Appointment")
    );
    assert_eq!(
        first.get(0x0037).and_then(text).as_deref(),
        Some(expected.appointment_subjects[0].as_str())
    );
    let ft = |unix: i64| (unix + 11_644_473_600) * 10_000_000;
    // 2024-05-06T09:00:00Z and 10:30.
    assert!(matches!(first.get(start_id), Some(PropertyValue::Time(t)) if *t == ft(1_714_986_000)));
    assert!(matches!(first.get(end_id), Some(PropertyValue::Time(t)) if *t == ft(1_714_991_400)));
    assert_eq!(
        first.get(location_id).and_then(text).as_deref(),
        Some("Переговорная 5")
    );
    assert!(matches!(
        first.get(all_day_id),
        Some(PropertyValue::Boolean(false))
    ));
    assert!(matches!(
        events[1].properties().get(all_day_id),
        Some(PropertyValue::Boolean(true))
    ));

    let contacts = child(&store, &ipm, "Контакты");
    assert_eq!(
        contacts.properties().get(0x3613).and_then(text).as_deref(),
        Some("IPF.Contact")
    );
    let people = items(&store, &contacts);
    let names: Vec<_> = people
        .iter()
        .map(|p| p.properties().get(0x3001).and_then(text).unwrap())
        .collect();
    assert_eq!(names, expected.contact_names);
    let ivan = people[0].properties();
    assert_eq!(
        ivan.get(0x001A).and_then(text).as_deref(),
        Some("IPM.Contact")
    );
    assert_eq!(ivan.get(0x3A06).and_then(text).as_deref(), Some("Иван"));
    assert_eq!(ivan.get(0x3A11).and_then(text).as_deref(), Some("Петров"));
    assert_eq!(
        ivan.get(0x3A16).and_then(text).as_deref(),
        Some("ООО Ромашка")
    );
    assert_eq!(
        ivan.get(0x3A08).and_then(text).as_deref(),
        Some("+7 495 123-45-67")
    );
    assert_eq!(
        ivan.get(email_id).and_then(text).as_deref(),
        Some("ivan@example.com")
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn empty_store_opens() {
    let dir = temp_dir("opst-empty");
    let file = dir.join("empty.pst");
    let w = cairn_pst::PstWriter::new(std::fs::File::create(&file).unwrap(), "Пусто").unwrap();
    let stats = w.finish().unwrap();
    assert_eq!(stats.messages, 0);
    let tree = read_tree(&file);
    let want: Tree = [(vec!["Deleted Items".to_string()], vec![])]
        .into_iter()
        .collect();
    assert_eq!(tree, want);
    crate::external::require_tool("pffinfo");
    crate::external::run(std::process::Command::new("pffinfo").arg(&file));
    let rp = crate::external::readpst(&file, &dir.join("rp"));
    assert!(rp.is_empty());
    std::fs::remove_dir_all(dir).ok();
}
