//! Malformed input: errors with offsets and tags, never a panic.

use cairn_fxics::{Error, MAX_DEPTH, lex, parse_message, tags};
use proptest::prelude::*;

use crate::build::*;

#[test]
fn unknown_property_type_names_offset_and_tag() {
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "ok"); // 4 + 4 + 6 = 14 bytes
    w.u32(0x1234_0099).u32(0);
    let e = parse_message(&w.done()).unwrap_err();
    assert_eq!(
        e,
        Error::UnknownType {
            offset: 14,
            tag: 0x1234_0099
        }
    );
    assert_eq!(e.tag(), Some(0x1234_0099));
    let msg = e.to_string();
    assert!(msg.contains("0x0099") && msg.contains("offset 14"), "{msg}");
}

#[test]
fn truncated_value_names_offset_and_tag() {
    let mut w = W::new();
    w.u32(tags::PidTagSubject).u32(100).bytes(b"abc");
    let e = parse_message(&w.done()).unwrap_err();
    assert_eq!(
        e,
        Error::Truncated {
            offset: 8,
            tag: Some(tags::PidTagSubject),
            needed: 100,
            available: 3
        }
    );
    assert!(e.to_string().contains("0x0037001F"));
}

#[test]
fn huge_multivalue_count_is_refused_without_allocating() {
    let mut w = W::new();
    w.u32(0x6614_1003).u32(0xFFFF_FFFF).u32(1);
    let e = parse_message(&w.done()).unwrap_err();
    assert!(matches!(e, Error::Truncated { offset: 4, .. }), "{e}");
}

#[test]
fn bad_named_property_kind() {
    let mut w = W::new();
    w.u32(0x8001_0003)
        .bytes(&PS_PUBLIC_STRINGS)
        .bytes(&[0x02])
        .u32(0);
    let e = parse_message(&w.done()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Malformed {
                offset: 20,
                tag: 0x8001_0003,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn unterminated_recipient_attachment_embed_and_message() {
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "s").marker(START_RECIP); // StartRecip at 12
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::Unterminated {
            offset: 12,
            expected: "EndToRecip"
        }
    );

    let mut w = W::new();
    w.marker(NEW_ATTACH).int32(tags::PidTagAttachMethod, 1);
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::Unterminated {
            offset: 0,
            expected: "EndAttach"
        }
    );

    let mut w = W::new();
    w.marker(NEW_ATTACH)
        .marker(START_EMBED)
        .unicode(tags::PidTagSubject, "x");
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::Unterminated {
            offset: 4,
            expected: "EndEmbed"
        }
    );

    let mut w = W::new();
    w.marker(START_MESSAGE).unicode(tags::PidTagSubject, "x");
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::Unterminated {
            offset: 0,
            expected: "EndMessage"
        }
    );
}

#[test]
fn bad_marker_nesting() {
    // EndEmbed with no StartEmbed.
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "s").marker(END_EMBED);
    let e = parse_message(&w.done()).unwrap_err();
    assert_eq!(
        e,
        Error::UnexpectedMarker {
            offset: 12,
            tag: END_EMBED,
            expected: "end of stream"
        }
    );
    assert!(e.to_string().contains("EndEmbed"));

    // EndAttach inside a recipient.
    let mut w = W::new();
    w.marker(START_RECIP).marker(END_ATTACH);
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::UnexpectedMarker {
            offset: 4,
            tag: END_ATTACH,
            expected: "EndToRecip"
        }
    );

    // A recipient inside a recipient.
    let mut w = W::new();
    w.marker(START_RECIP).marker(START_RECIP);
    assert!(matches!(
        parse_message(&w.done()).unwrap_err(),
        Error::UnexpectedMarker { offset: 4, .. }
    ));

    // Two embedded messages in one attachment.
    let mut w = W::new();
    w.marker(NEW_ATTACH)
        .marker(START_EMBED)
        .marker(END_EMBED)
        .marker(START_EMBED);
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::UnexpectedMarker {
            offset: 12,
            tag: START_EMBED,
            expected: "EndAttach"
        }
    );

    // An embedded message closed by EndAttach.
    let mut w = W::new();
    w.marker(NEW_ATTACH).marker(START_EMBED).marker(END_ATTACH);
    assert_eq!(
        parse_message(&w.done()).unwrap_err(),
        Error::UnexpectedMarker {
            offset: 8,
            tag: END_ATTACH,
            expected: "EndEmbed"
        }
    );

    // Trailing data after EndMessage.
    let mut w = W::new();
    w.marker(START_MESSAGE)
        .marker(END_MESSAGE)
        .marker(START_RECIP);
    assert!(matches!(
        parse_message(&w.done()).unwrap_err(),
        Error::UnexpectedMarker { offset: 8, .. }
    ));
}

#[test]
fn nesting_deeper_than_max_depth_is_refused() {
    let mut w = W::new();
    for _ in 0..=MAX_DEPTH {
        w.marker(NEW_ATTACH).marker(START_EMBED);
    }
    let e = parse_message(&w.done()).unwrap_err();
    assert!(matches!(e, Error::TooDeep { .. }), "{e}");

    let mut w = W::new();
    for _ in 0..MAX_DEPTH {
        w.marker(NEW_ATTACH).marker(START_EMBED);
    }
    for _ in 0..MAX_DEPTH {
        w.marker(END_EMBED).marker(END_ATTACH);
    }
    assert!(parse_message(&w.done()).is_ok());
}

#[test]
fn every_truncation_of_a_full_mail_is_an_error_or_a_shorter_item() {
    let full = sample_mail("truncate me");
    assert!(parse_message(&full).is_ok());
    for n in 0..full.len() {
        match parse_message(&full[..n]) {
            Ok(_) => {}
            Err(e) => assert!(e.offset() <= n, "prefix {n}: {e}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = lex(&data);
        if let Err(e) = parse_message(&data) {
            prop_assert!(e.offset() <= data.len());
        }
    }

    #[test]
    fn random_marker_soup_never_panics(
        picks in proptest::collection::vec(0usize..16, 0..64)
    ) {
        // Streams made of markers and small valid properties, in any order.
        let mut w = W::new();
        for p in picks {
            match p {
                0 => { w.marker(START_RECIP); }
                1 => { w.marker(END_TO_RECIP); }
                2 => { w.marker(NEW_ATTACH); }
                3 => { w.marker(END_ATTACH); }
                4 => { w.marker(START_EMBED); }
                5 => { w.marker(END_EMBED); }
                6 => { w.marker(START_MESSAGE); }
                7 => { w.marker(END_MESSAGE); }
                8 => { w.unicode(tags::PidTagSubject, "x"); }
                9 => { w.int32(tags::PidTagRecipientType, 1); }
                10 => { w.named_name(0x8001_101F, PS_PUBLIC_STRINGS, "Keywords").mv_unicode(&["k"]); }
                11 => { w.marker(0x4012_0003); }
                12 => { w.int32(tags::META_TAG_FX_DEL_PROP, 0); }
                13 => { w.binary(tags::PidTagAttachDataBinary, b"zz"); }
                14 => { w.u32(0x0000_0000); }
                _ => { w.bytes(&[0x1F]); }
            }
        }
        let data = w.done();
        if let Ok(item) = parse_message(&data) {
            let _ = cairn_fxics::to_mime(&item);
        } else if let Err(e) = parse_message(&data) {
            prop_assert!(e.offset() <= data.len());
        }
    }

    #[test]
    fn mutated_mail_never_panics(pos in 0usize..4096, byte in any::<u8>(), cut in 0usize..4096) {
        let mut data = sample_mail("mutate");
        let n = data.len();
        data[pos % n] = byte;
        data.truncate(cut % (n + 1));
        if let Ok(item) = parse_message(&data) {
            let _ = cairn_fxics::to_mime(&item);
        }
    }
}

/// A submit time past year 9999 (a FILETIME can say anything) leaves the Date header out
/// instead of panicking (found by `mutated_mail_never_panics`).
#[test]
fn a_date_beyond_year_9999_is_left_out_of_the_mime() {
    let item = cairn_fxics::Item {
        properties: vec![
            cairn_fxics::Property {
                // PidTagClientSubmitTime, PtypTime.
                tag: 0x0039_0040,
                name: None,
                value: cairn_fxics::Value::Time(u64::MAX),
            },
            cairn_fxics::Property {
                // PidTagSubject, PtypString.
                tag: 0x0037_001F,
                name: None,
                value: cairn_fxics::Value::String("far future".into()),
            },
        ],
        recipients: Vec::new(),
        attachments: Vec::new(),
    };
    let mime = String::from_utf8(cairn_fxics::to_mime(&item)).unwrap();
    assert!(mime.contains("Subject: far future"), "{mime}");
    assert!(!mime.contains("Date:"), "{mime}");
}
