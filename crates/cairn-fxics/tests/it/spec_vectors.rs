//! Byte sequences published by Microsoft for the FastTransfer stream, with the meaning the
//! publication gives them.

use cairn_fxics::{Element, Error, Guid, Marker, NameKind, Value, lex, parse_message, tags};

use crate::build::{W, utf16z};

/// The sample FastTransfer stream of the Microsoft Open Specifications team's article
/// "MS-OXCFXICS – How to parse the FastTransfer Stream" (2015, written against MS-OXCFXICS
/// v16.2, section 2.2.4), byte for byte.
const BLOG_STREAM: &[u8] = &[
    0x03, 0x00, 0x12, 0x40, 0x02, 0x01, 0xE1, 0x65, 0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0xE0, 0x65,
    0x16, 0x00, 0x00, 0x00, 0x52, 0xF6, 0x85, 0xEC, 0x7D, 0x43, 0x2E, 0x4A, 0xA9, 0x60, 0x34, 0x50,
    0x88, 0x53, 0xD9, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x03, 0xF5, 0x40, 0x00, 0x08, 0x30, 0x00, 0xD0,
    0x9E, 0xA8, 0x81, 0x85, 0xD0, 0x01, 0x02, 0x01, 0xE2, 0x65, 0x16, 0x00, 0x00, 0x00, 0x52, 0xF6,
    0x85, 0xEC, 0x7D, 0x43, 0x2E, 0x4A, 0xA9, 0x60, 0x34, 0x50, 0x88, 0x53, 0xD9, 0x0A, 0x00, 0x00,
    0x00, 0x00, 0x20, 0x7C, 0x02, 0x01, 0xE3, 0x65, 0x17, 0x00, 0x00, 0x00, 0x16, 0x52, 0xF6, 0x85,
    0xEC, 0x7D, 0x43, 0x2E, 0x4A, 0xA9, 0x60, 0x34, 0x50, 0x88, 0x53, 0xD9, 0x0A, 0x00, 0x00, 0x00,
    0x00, 0x20, 0x7C, 0x1F, 0x00, 0x01, 0x30, 0x0C, 0x00, 0x00, 0x00, 0x49, 0x00, 0x4E, 0x00, 0x42,
    0x00, 0x4F, 0x00, 0x58, 0x00, 0x00, 0x00, 0x14, 0x00, 0x49, 0x67, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x03, 0xF4, 0x03, 0x00, 0x39, 0x66, 0xFB, 0x03, 0x00, 0x00, 0x40, 0x00, 0x07, 0x30, 0x80,
    0x39, 0x06, 0xA8, 0x81, 0x85, 0xD0, 0x01, 0x0B, 0x00, 0xF4, 0x10, 0x00, 0x00,
];

const SOURCE_KEY: [u8; 22] = [
    0x52, 0xF6, 0x85, 0xEC, 0x7D, 0x43, 0x2E, 0x4A, 0xA9, 0x60, 0x34, 0x50, 0x88, 0x53, 0xD9, 0x0A,
    0x00, 0x00, 0x00, 0x00, 0x03, 0xF5,
];

fn prop(e: &Element) -> (u32, &Value) {
    match e {
        Element::Property(p) => (p.tag, &p.value),
        Element::Marker(m) => panic!("expected a property, got {m:?}"),
    }
}

/// MS-OXCFXICS 2.2.4.1 / 2.2.4.2 (lexical structure), as worked through in the Open
/// Specifications article: an IncrSyncChg marker then nine propValues of five types, the
/// last one a PtypBoolean serialized on two bytes.
#[test]
fn ms_oxcfxics_2_2_4_blog_sample_stream_lexes_element_by_element() {
    let elements = lex(BLOG_STREAM).unwrap();
    let offsets: Vec<usize> = elements.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets,
        vec![
            0x00, 0x04, 0x0C, 0x2A, 0x36, 0x54, 0x73, 0x87, 0x93, 0x9B, 0xA7
        ]
    );
    assert_eq!(elements[0].1, Element::Marker(Marker::IncrSyncChg));
    // PidTagParentSourceKey, empty binary.
    assert_eq!(prop(&elements[1].1), (0x65E1_0102, &Value::Binary(vec![])));
    // PidTagSourceKey, 22 bytes.
    assert_eq!(
        prop(&elements[2].1),
        (0x65E0_0102, &Value::Binary(SOURCE_KEY.to_vec()))
    );
    // PidTagLastModificationTime.
    let (tag, v) = prop(&elements[3].1);
    assert_eq!(tag, tags::PidTagLastModificationTime);
    assert_eq!(v, &Value::Time(0x01D0_8581_A89E_D000));
    assert_eq!(
        v.as_time().unwrap().to_rfc3339(),
        "2015-05-03T09:15:12+00:00"
    );
    // PidTagChangeKey and PidTagPredecessorChangeList.
    let (tag, v) = prop(&elements[4].1);
    assert_eq!(tag, 0x65E2_0102);
    assert_eq!(v.as_bytes().unwrap().len(), 22);
    let (tag, v) = prop(&elements[5].1);
    assert_eq!(tag, 0x65E3_0102);
    assert_eq!(v.as_bytes().unwrap().len(), 23);
    // PidTagDisplayName "INBOX" (12 bytes with the terminating NUL).
    assert_eq!(
        prop(&elements[6].1),
        (tags::PidTagDisplayName, &Value::String("INBOX".into()))
    );
    // PidTagParentFolderId, PtypInteger64.
    assert_eq!(
        prop(&elements[7].1),
        (
            0x6749_0014,
            &Value::Int64(i64::from_le_bytes([1, 0, 0, 0, 0, 0, 0x03, 0xF4]))
        )
    );
    // PidTagRights = 0x3FB.
    assert_eq!(prop(&elements[8].1), (0x6639_0003, &Value::Int32(0x3FB)));
    // PidTagCreationTime.
    let (tag, v) = prop(&elements[9].1);
    assert_eq!(tag, tags::PidTagCreationTime);
    assert_eq!(
        v.as_time().unwrap().to_rfc3339(),
        "2015-05-03T09:15:11+00:00"
    );
    // PidTagAttributeHidden, PtypBoolean on two bytes: false.
    assert_eq!(prop(&elements[10].1), (0x10F4_000B, &Value::Boolean(false)));
}

/// The same stream through the message reader: the IncrSyncChg marker is skipped, every
/// property is kept (unknown and folder-level identifiers included).
#[test]
fn ms_oxcfxics_2_2_4_blog_sample_stream_parses_leniently_as_item() {
    use cairn_fxics::Properties;
    let item = parse_message(BLOG_STREAM).unwrap();
    assert_eq!(item.properties.len(), 10);
    assert_eq!(item.display_name().as_deref(), Some("INBOX"));
    assert!(item.recipients.is_empty() && item.attachments.is_empty());
}

/// Every strict prefix of the published stream is an error (never a panic) naming an offset
/// inside the stream; a cut at an element boundary is accepted.
#[test]
fn ms_oxcfxics_2_2_4_blog_sample_stream_truncations() {
    let boundaries = [0x04, 0x0C, 0x2A, 0x36, 0x54, 0x73, 0x87, 0x93, 0x9B, 0xA7];
    for n in 0..BLOG_STREAM.len() {
        let r = lex(&BLOG_STREAM[..n]);
        if n == 0 || boundaries.contains(&n) {
            assert!(r.is_ok(), "prefix {n}");
        } else {
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Truncated { .. }), "prefix {n}: {e}");
            assert!(e.offset() <= n, "prefix {n}: {e}");
        }
    }
}

/// MS-OXCFXICS 2.2.4.1.1.1 (Code Page Property Types): "a code page property type of 0x84B0
/// specifies the Unicode (1200) code page and a code page property type of 0x84E2 specifies
/// the Western European (1250) code page".
#[test]
fn ms_oxcfxics_2_2_4_1_1_1_code_page_property_types() {
    let mut w = W::new();
    w.u32(0x0037_84B0).counted(&utf16z("Grüße"));
    w.u32(0x0E1D_84E2).counted(b"Zdravo \xE8\0"); // č in Windows-1250
    let item = parse_message(&w.done()).unwrap();
    assert_eq!(
        item.properties[0].value,
        Value::CodePageString {
            code_page: 1200,
            bytes: utf16z("Grüße")[..10].to_vec()
        }
    );
    assert_eq!(item.subject().as_deref(), Some("Grüße"));
    match &item.properties[1].value {
        Value::CodePageString { code_page, bytes } => {
            assert_eq!(*code_page, 1250);
            assert_eq!(bytes.as_slice(), b"Zdravo \xE8");
        }
        other => panic!("{other:?}"),
    }
}

/// MS-OXCFXICS 3.2.5.2.1 / 3.3.5.13: MetaTagIdsetGiven's tag says PtypInteger32 but its data
/// is PtypBinary; it is a meta-property and stays out of the item.
#[test]
fn ms_oxcfxics_3_2_5_2_1_idset_given_is_binary_despite_its_type() {
    let mut w = W::new();
    w.u32(tags::META_TAG_IDSET_GIVEN)
        .counted(&[1, 2, 3, 4, 5, 6, 7])
        .unicode(tags::PidTagSubject, "after");
    let bytes = w.done();
    let lexed = lex(&bytes).unwrap();
    assert_eq!(
        lexed[0].1,
        Element::Property(cairn_fxics::Property {
            tag: tags::META_TAG_IDSET_GIVEN,
            name: None,
            value: Value::Binary(vec![1, 2, 3, 4, 5, 6, 7]),
        })
    );
    let item = parse_message(&bytes).unwrap();
    assert_eq!(item.properties.len(), 1);
    assert_eq!(item.subject().as_deref(), Some("after"));
}

/// MS-OXCFXICS 2.2.4.1.4 (Markers): the marker table's tag values.
#[test]
fn ms_oxcfxics_2_2_4_1_4_marker_tags() {
    for (m, tag) in [
        (Marker::StartTopFld, 0x4009_0003),
        (Marker::StartSubFld, 0x400A_0003),
        (Marker::EndFolder, 0x400B_0003),
        (Marker::StartMessage, 0x400C_0003),
        (Marker::StartFAIMsg, 0x4010_0003),
        (Marker::EndMessage, 0x400D_0003),
        (Marker::StartEmbed, 0x4001_0003),
        (Marker::EndEmbed, 0x4002_0003),
        (Marker::StartRecip, 0x4003_0003),
        (Marker::EndToRecip, 0x4004_0003),
        (Marker::NewAttach, 0x4000_0003),
        (Marker::EndAttach, 0x400E_0003),
        (Marker::IncrSyncChg, 0x4012_0003),
        (Marker::FXErrorInfo, 0x4018_0003),
    ] {
        assert_eq!(m.tag(), tag, "{m:?}");
        assert_eq!(Marker::from_tag(tag), Some(m));
    }
}

/// MS-OXCDATA 2.5.1 (GUID serialization) and MS-OXPROPS 1.3.2 (property sets):
/// PS_PUBLIC_STRINGS is {00020329-0000-0000-C000-000000000046}, serialized little-endian in
/// its first three fields.
#[test]
fn ms_oxcdata_2_5_1_guid_serialization_of_ps_public_strings() {
    assert_eq!(tags::PS_PUBLIC_STRINGS.0, crate::build::PS_PUBLIC_STRINGS);
    assert_eq!(
        tags::PS_PUBLIC_STRINGS.to_string(),
        "00020329-0000-0000-c000-000000000046"
    );
    assert_eq!(
        tags::PSETID_Appointment,
        Guid(crate::build::PSETID_APPOINTMENT)
    );
    // MS-OXCFXICS 2.2.4.2 namedPropInfo: propertySet, then 0x01 and a NUL-terminated name.
    let mut w = W::new();
    w.named_name(0x8005_101F, crate::build::PS_PUBLIC_STRINGS, "Keywords")
        .mv_unicode(&["a"]);
    let item = parse_message(&w.done()).unwrap();
    let name = item.properties[0].name.as_ref().unwrap();
    assert_eq!(name.kind, NameKind::Name("Keywords".into()));
    assert_eq!(item.categories(), vec!["a".to_owned()]);
}
