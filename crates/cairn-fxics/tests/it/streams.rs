//! Hand-built streams: every property type, named properties, multi-valued properties,
//! recipients, attachments, embedded messages, unknown identifiers, non-ASCII text.

use cairn_fxics::{
    AttachMethod, Guid, Importance, NameKind, Properties, RecipientKind, Value, parse_message, tags,
};

use crate::build::*;

#[test]
fn every_property_type_round_trips() {
    let g: [u8; 16] = core::array::from_fn(|i| i as u8);
    let mut w = W::new();
    w.u32(0x6601_0002).u16(0xFFFE); // Int16 -2
    w.int32(0x6602_0003, -7);
    w.u32(0x6603_0004).bytes(&1.5f32.to_le_bytes());
    w.u32(0x6604_0005).bytes(&2.25f64.to_le_bytes());
    w.u32(0x6605_0006).bytes(&123_4500i64.to_le_bytes());
    w.u32(0x6606_0007).bytes(&45000.5f64.to_le_bytes());
    w.u32(0x6607_000A).u32(0x8004_010F);
    w.boolean(0x6608_000B, true);
    w.u32(0x6609_0014).bytes(&(-9i64).to_le_bytes());
    w.unicode(0x660A_001F, "unicode ✓");
    w.string8(0x660B_001E, b"eight");
    w.time(0x660C_0040, filetime(2020, 1, 2, 3, 4, 5));
    w.u32(0x660D_0048).bytes(&g);
    w.binary(0x660E_00FB, &[1, 0, 9]);
    w.binary(0x660F_00FD, &[0xAA]);
    w.binary(0x6610_00FE, &[0xBB, 0xCC]);
    w.binary(0x6611_0102, &[0, 1, 2, 3]);
    w.binary(0x6612_000D, &[7, 7]);
    w.u32(0x6613_1002).u32(2).u16(1).u16(0xFFFF);
    w.u32(0x6614_1003).u32(2).u32(10).u32(0xFFFF_FFFF);
    w.u32(0x6615_1004).u32(1).bytes(&0.5f32.to_le_bytes());
    w.u32(0x6616_1005).u32(1).bytes(&0.25f64.to_le_bytes());
    w.u32(0x6617_1006).u32(1).bytes(&5i64.to_le_bytes());
    w.u32(0x6618_1007).u32(1).bytes(&1.0f64.to_le_bytes());
    w.u32(0x6619_1014)
        .u32(2)
        .bytes(&1i64.to_le_bytes())
        .bytes(&2i64.to_le_bytes());
    w.u32(0x661A_101F).mv_unicode(&["a", "ß"]);
    w.u32(0x661B_101E).u32(2).counted(b"x\0").counted(b"yz\0");
    w.u32(0x661C_1040).u32(1).u64(filetime(2000, 1, 1, 0, 0, 0));
    w.u32(0x661D_1048).u32(1).bytes(&g);
    w.u32(0x661E_1102).u32(2).counted(&[1]).counted(&[]);
    w.u32(0x661F_84B0).counted(&utf16z("cp"));
    let item = parse_message(&w.done()).unwrap();
    let values: Vec<&Value> = item.properties.iter().map(|p| &p.value).collect();
    let expected = vec![
        Value::Int16(-2),
        Value::Int32(-7),
        Value::Float(1.5),
        Value::Double(2.25),
        Value::Currency(1_234_500),
        Value::FloatingTime(45000.5),
        Value::ErrorCode(0x8004_010F),
        Value::Boolean(true),
        Value::Int64(-9),
        Value::String("unicode ✓".into()),
        Value::String8(b"eight".to_vec()),
        Value::Time(filetime(2020, 1, 2, 3, 4, 5)),
        Value::Guid(Guid(g)),
        Value::ServerId(vec![1, 0, 9]),
        Value::Restriction(vec![0xAA]),
        Value::RuleAction(vec![0xBB, 0xCC]),
        Value::Binary(vec![0, 1, 2, 3]),
        Value::Object(vec![7, 7]),
        Value::MvInt16(vec![1, -1]),
        Value::MvInt32(vec![10, -1]),
        Value::MvFloat(vec![0.5]),
        Value::MvDouble(vec![0.25]),
        Value::MvCurrency(vec![5]),
        Value::MvFloatingTime(vec![1.0]),
        Value::MvInt64(vec![1, 2]),
        Value::MvString(vec!["a".into(), "ß".into()]),
        Value::MvString8(vec![b"x".to_vec(), b"yz".to_vec()]),
        Value::MvTime(vec![filetime(2000, 1, 1, 0, 0, 0)]),
        Value::MvGuid(vec![Guid(g)]),
        Value::MvBinary(vec![vec![1], vec![]]),
        Value::CodePageString {
            code_page: 1200,
            bytes: utf16z("cp")[..4].to_vec(),
        },
    ];
    assert_eq!(values.len(), expected.len());
    for (got, want) in values.iter().zip(&expected) {
        assert_eq!(*got, want);
    }
    assert_eq!(
        item.time(0x660C_0040).unwrap().to_rfc3339(),
        "2020-01-02T03:04:05+00:00"
    );
    assert_eq!(item.string(0x661F_0000).as_deref(), Some("cp"));
}

#[test]
fn named_properties_by_id_and_by_name() {
    let mut w = W::new();
    w.unicode(tags::PidTagMessageClass, "IPM.Appointment");
    w.named_id(0x8010_0040, PSETID_APPOINTMENT, 0x820D)
        .u64(filetime(2024, 5, 6, 9, 0, 0));
    w.named_id(0x8011_0040, PSETID_APPOINTMENT, 0x820E)
        .u64(filetime(2024, 5, 6, 10, 30, 0));
    w.named_id(0x8012_001F, PSETID_APPOINTMENT, 0x8208)
        .counted(&utf16z("Room 1"));
    w.named_name(0x8013_001F, PS_PUBLIC_STRINGS, "x-custom-ünï")
        .counted(&utf16z("value"));
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.message_class().as_deref(), Some("IPM.Appointment"));
    assert_eq!(
        item.appointment_start().unwrap().to_rfc3339(),
        "2024-05-06T09:00:00+00:00"
    );
    assert_eq!(
        item.appointment_end().unwrap().to_rfc3339(),
        "2024-05-06T10:30:00+00:00"
    );
    assert_eq!(item.location().as_deref(), Some("Room 1"));
    let p = &item.properties[4];
    assert_eq!(p.tag, 0x8013_001F);
    let n = p.name.as_ref().unwrap();
    assert_eq!(n.guid, tags::PS_PUBLIC_STRINGS);
    assert_eq!(n.kind, NameKind::Name("x-custom-ünï".into()));
    // Named property ids are stream-local: get_id never matches them.
    assert!(item.get_id(0x8012_0000).is_none());
}

#[test]
fn task_and_contact_named_properties() {
    let mut w = W::new();
    w.unicode(tags::PidTagMessageClass, "IPM.Task");
    w.named_id(0x8020_0003, PSETID_TASK, 0x8101).u32(2);
    w.named_id(0x8021_0005, PSETID_TASK, 0x8102)
        .bytes(&1.0f64.to_le_bytes());
    w.named_id(0x8022_0040, PSETID_TASK, 0x8105)
        .u64(filetime(2024, 6, 1, 0, 0, 0));
    w.named_id(0x8023_000B, PSETID_TASK, 0x811C).u16(1);
    w.named_id(0x8030_001F, PSETID_ADDRESS, 0x8083)
        .counted(&utf16z("c1@example.com"));
    w.named_id(0x8031_001F, PSETID_ADDRESS, 0x80A3)
        .counted(&utf16z("c3@example.com"));
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.task_status(), Some(2));
    assert_eq!(item.task_percent_complete(), Some(1.0));
    assert_eq!(item.task_complete(), Some(true));
    assert_eq!(
        item.task_due_date().unwrap().to_rfc3339(),
        "2024-06-01T00:00:00+00:00"
    );
    assert_eq!(
        item.contact_email_addresses(),
        vec!["c1@example.com".to_owned(), "c3@example.com".to_owned()]
    );
}

#[test]
fn sample_mail_accessors() {
    let item = parse_message(&sample_mail("Quarterly numbers – Ünïcödé ✓")).unwrap();
    assert_eq!(item.message_class().as_deref(), Some("IPM.Note"));
    assert_eq!(
        item.subject().as_deref(),
        Some("Quarterly numbers – Ünïcödé ✓")
    );
    let from = item.from().unwrap();
    assert_eq!(from.name.as_deref(), Some("Zoë Ålund"));
    assert_eq!(from.email.as_deref(), Some("zoe@example.com"));
    assert_eq!(
        item.sender().unwrap().email.as_deref(),
        Some("zoe@example.com")
    );
    let r = item.recipients();
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].kind, RecipientKind::To);
    assert_eq!(r[0].mailbox.email.as_deref(), Some("bob@example.com"));
    assert_eq!(r[1].kind, RecipientKind::Cc);
    assert_eq!(r[1].mailbox.email.as_deref(), Some("carol@example.com"));
    assert_eq!(r[2].kind, RecipientKind::Bcc);
    assert!(item.body().unwrap().starts_with("Hello Bob"));
    assert!(item.html().unwrap().contains("<p>Hello Bob,</p>"));
    assert_eq!(
        item.client_submit_time().unwrap().to_rfc3339(),
        "2024-03-01T12:30:00+00:00"
    );
    assert_eq!(
        item.message_delivery_time().unwrap().to_rfc3339(),
        "2024-03-01T12:30:05+00:00"
    );
    assert_eq!(
        item.internet_message_id().as_deref(),
        Some("<abc123@example.com>")
    );
    assert_eq!(item.importance(), Some(Importance::High));
    assert_eq!(item.is_read(), Some(true));
    assert_eq!(
        item.categories(),
        vec!["Red".to_owned(), "Projekt Ü".to_owned()]
    );
    assert_eq!(item.attachments.len(), 2);
    let a = &item.attachments[0];
    assert_eq!(a.filename().as_deref(), Some("zahlen €.csv"));
    assert_eq!(a.mime_type().as_deref(), Some("text/csv"));
    assert_eq!(a.data(), Some(&b"a,b\r\n1,2\r\n"[..]));
    assert_eq!(a.attach_method(), Some(AttachMethod::ByValue));
    let e = &item.attachments[1];
    assert_eq!(e.attach_method(), Some(AttachMethod::EmbeddedMessage));
    let inner = e.embedded.as_ref().unwrap();
    assert_eq!(inner.subject().as_deref(), Some("Inner subject"));
    assert_eq!(inner.recipients().len(), 1);
    assert_eq!(inner.recipients()[0].mailbox.name.as_deref(), Some("Zoë"));
}

#[test]
fn subject_from_prefix_and_normalized_subject() {
    let mut w = W::new();
    w.unicode(tags::PidTagSubjectPrefix, "RE: ")
        .unicode(tags::PidTagNormalizedSubject, "lunch");
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.subject().as_deref(), Some("RE: lunch"));
}

#[test]
fn string8_properties_are_found_by_id() {
    let mut w = W::new();
    w.string8(0x0037_001E, b"caf\xE9"); // Windows-1252
    w.string8(0x0C1A_001E, "Jörg".as_bytes()); // UTF-8
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.subject().as_deref(), Some("café"));
    assert_eq!(item.sender().unwrap().name.as_deref(), Some("Jörg"));
}

#[test]
fn unknown_property_ids_are_kept() {
    let mut w = W::new();
    w.int32(0x7ABC_0003, 42).unicode(0x7ABD_001F, "?");
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.properties.len(), 2);
    assert_eq!(item.properties[0].id(), 0x7ABC);
    assert_eq!(item.get(0x7ABC_0003), Some(&Value::Int32(42)));
}

#[test]
fn wrapped_message_and_fai_message_are_accepted() {
    let inner = sample_mail("wrapped");
    for start in [START_MESSAGE, START_FAI_MSG] {
        let mut w = W::new();
        w.marker(start).bytes(&inner).marker(END_MESSAGE);
        let item = parse_message(&w.done()).unwrap();
        assert_eq!(item.subject().as_deref(), Some("wrapped"));
        assert_eq!(item.attachments.len(), 2);
    }
}

#[test]
fn meta_properties_are_skipped() {
    let mut w = W::new();
    w.int32(tags::META_TAG_EC_WARNING, 0x0004_0380)
        .binary(tags::META_TAG_NEW_FX_FOLDER, &[1, 2, 3])
        .string8(tags::META_TAG_DN_PREFIX, b"/o=Org")
        .unicode(tags::PidTagSubject, "s")
        .int32(
            tags::META_TAG_FX_DEL_PROP,
            tags::PidTagMessageRecipients as i32,
        )
        .marker(START_RECIP)
        .unicode(tags::PidTagDisplayName, "r")
        .marker(END_TO_RECIP)
        .int32(
            tags::META_TAG_FX_DEL_PROP,
            tags::PidTagMessageAttachments as i32,
        )
        .marker(NEW_ATTACH)
        .marker(END_ATTACH);
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(item.properties.len(), 1);
    assert_eq!(item.recipients.len(), 1);
    assert_eq!(item.attachments.len(), 1);
}

#[test]
fn nested_embedded_messages() {
    // An embedded message that itself carries an embedded message.
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "outer")
        .marker(NEW_ATTACH)
        .int32(tags::PidTagAttachMethod, 5)
        .marker(START_EMBED)
        .unicode(tags::PidTagSubject, "middle")
        .marker(NEW_ATTACH)
        .int32(tags::PidTagAttachMethod, 5)
        .marker(START_EMBED)
        .unicode(tags::PidTagSubject, "inner")
        .marker(END_EMBED)
        .marker(END_ATTACH)
        .marker(END_EMBED)
        .marker(END_ATTACH);
    let item = parse_message(&w.done()).unwrap();
    let middle = item.attachments[0].embedded.as_ref().unwrap();
    assert_eq!(middle.subject().as_deref(), Some("middle"));
    let inner = middle.attachments[0].embedded.as_ref().unwrap();
    assert_eq!(inner.subject().as_deref(), Some("inner"));
}

#[test]
fn empty_stream_is_an_empty_item() {
    let item = parse_message(&[]).unwrap();
    assert!(item.properties.is_empty());
    assert!(item.subject().is_none());
}
