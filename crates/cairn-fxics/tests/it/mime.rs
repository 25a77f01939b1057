//! to_mime output read back with mail-parser.

use cairn_fxics::{parse_message, tags, to_mime};
use mail_parser::{MessageParser, MimeHeaders};

use crate::build::*;

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<(Option<String>, Option<String>)> {
    a.map(|a| {
        a.iter()
            .map(|x| {
                (
                    x.name.as_ref().map(|s| s.to_string()),
                    x.address.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

#[test]
fn mime_round_trip_subject_from_to_body_attachments() {
    let subject = "Quarterly numbers – Ünïcödé ✓ with a rather long subject line to force several encoded words";
    let item = parse_message(&sample_mail(subject)).unwrap();
    let eml = to_mime(&item);
    assert!(eml.is_ascii(), "headers and bodies are 7-bit clean");
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(msg.subject(), Some(subject));
    assert_eq!(
        addresses(msg.from()),
        vec![(Some("Zoë Ålund".into()), Some("zoe@example.com".into()))]
    );
    assert_eq!(
        addresses(msg.to()),
        vec![(Some("Bob Builder".into()), Some("bob@example.com".into()))]
    );
    assert_eq!(
        addresses(msg.cc()),
        vec![(Some("Carol".into()), Some("carol@example.com".into()))]
    );
    assert_eq!(
        addresses(msg.bcc()),
        vec![(Some("Dave".into()), Some("dave@example.com".into()))]
    );
    assert_eq!(msg.message_id(), Some("abc123@example.com"));
    assert_eq!(
        msg.date().map(|d| d.to_timestamp()),
        Some(item.client_submit_time().unwrap().timestamp())
    );
    assert!(
        msg.body_text(0)
            .unwrap()
            .contains("the numbers are attached.")
    );
    assert!(msg.body_html(0).unwrap().contains("<p>Hello Bob,</p>"));

    let atts: Vec<_> = msg.attachments().collect();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0].attachment_name(), Some("zahlen €.csv"));
    assert_eq!(atts[0].contents(), b"a,b\r\n1,2\r\n");
    assert_eq!(
        atts[0]
            .content_type()
            .map(|c| (c.ctype().to_string(), c.subtype().map(str::to_string))),
        Some(("text".into(), Some("csv".into())))
    );
    let inner = atts[1]
        .message()
        .expect("embedded message as message/rfc822");
    assert_eq!(inner.subject(), Some("Inner subject"));
    assert_eq!(
        addresses(inner.from()),
        vec![(Some("Eve".into()), Some("eve@example.com".into()))]
    );
    assert_eq!(
        addresses(inner.to()),
        vec![(Some("Zoë".into()), Some("zoe@example.com".into()))]
    );
    assert!(inner.body_text(0).unwrap().contains("inner body"));

    let text = String::from_utf8(eml).unwrap();
    assert!(text.contains("Importance: high\r\n"));
    assert!(text.contains("Keywords: Red, =?UTF-8?B?"));
    assert!(text.split("\r\n").all(|l| l.len() <= 998));
}

#[test]
fn mime_prefers_transport_headers() {
    let headers = "Received: from mx.example.com by mail.example.org; Fri, 1 Mar 2024 12:30:04 +0000\r\n\
From: \"Original Sender\" <orig@example.com>\r\n\
To: list@example.com\r\n\
Subject: =?utf-8?q?Original_=C3=9Cber?=\r\n\
Date: Fri, 01 Mar 2024 13:30:00 +0100\r\n\
Message-ID: <orig@example.com>\r\n\
List-Id: <list.example.com>\r\n\
X-Long: first\r\n\tcontinued\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"old\"\r\n\
DKIM-Signature: v=1; a=rsa-sha256; d=example.com\r\n\r\n";
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "Über (from properties)")
        .unicode(tags::PidTagSentRepresentingName, "Prop Sender")
        .unicode(tags::PidTagSentRepresentingSmtpAddress, "prop@example.com")
        .unicode(tags::PidTagTransportMessageHeaders, headers)
        .unicode(tags::PidTagBody, "body text")
        .unicode(tags::PidTagInReplyToId, "<parent@example.com>");
    w.marker(START_RECIP)
        .int32(tags::PidTagRecipientType, 1)
        .unicode(tags::PidTagDisplayName, "List")
        .unicode(tags::PidTagSmtpAddress, "list@example.com")
        .marker(END_TO_RECIP);
    let item = parse_message(&w.done()).unwrap();
    let eml = to_mime(&item);
    let text = String::from_utf8(eml.clone()).unwrap();
    assert!(text.starts_with("Received: from mx.example.com"));
    assert!(text.contains("X-Long: first\r\n\tcontinued\r\n"));
    assert!(!text.contains("DKIM-Signature"));
    assert!(!text.contains("boundary=\"old\""));
    assert_eq!(text.matches("MIME-Version").count(), 1);
    assert_eq!(
        text.matches("\r\nFrom:").count() + usize::from(text.starts_with("From:")),
        1
    );
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(msg.subject(), Some("Original Über"));
    assert_eq!(
        addresses(msg.from()),
        vec![(
            Some("Original Sender".into()),
            Some("orig@example.com".into())
        )]
    );
    assert_eq!(msg.message_id(), Some("orig@example.com"));
    assert_eq!(msg.in_reply_to().as_text(), Some("parent@example.com"));
    assert_eq!(msg.body_text(0).as_deref(), Some("body text\r\n"));
}

#[test]
fn mime_for_minimal_and_odd_items() {
    // No properties at all: still a parseable message.
    let eml = to_mime(&parse_message(&[]).unwrap());
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert!(msg.subject().is_none());

    // RTF-only body, recipient without SMTP address, header injection attempt.
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "evil\r\nBcc: victim@example.com")
        .binary(tags::PidTagRtfCompressed, b"\x10\x00\x00\x00rtf")
        .marker(START_RECIP)
        .int32(tags::PidTagRecipientType, 1)
        .unicode(tags::PidTagDisplayName, "Legacy, User")
        .unicode(tags::PidTagAddressType, "EX")
        .unicode(
            tags::PidTagEmailAddress,
            "/o=Org/ou=Site/cn=Recipients/cn=user",
        )
        .marker(END_TO_RECIP);
    let item = parse_message(&w.done()).unwrap();
    let eml = to_mime(&item);
    let text = String::from_utf8(eml.clone()).unwrap();
    assert!(!text.contains("\r\nBcc:"));
    assert!(text.contains("To: \"Legacy, User\":;\r\n"));
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(msg.subject(), Some("evil  Bcc: victim@example.com"));
    let atts: Vec<_> = msg.attachments().collect();
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].attachment_name(), Some("body.rtf.lzfu"));
    assert_eq!(atts[0].contents(), b"\x10\x00\x00\x00rtf");
}

#[test]
fn mime_inline_attachment_with_content_id() {
    let mut w = W::new();
    w.unicode(tags::PidTagSubject, "pic")
        .binary(tags::PidTagHtml, b"<img src=\"cid:img1@x\">")
        .marker(NEW_ATTACH)
        .int32(tags::PidTagAttachMethod, 1)
        .unicode(tags::PidTagAttachFilename, "a.png")
        .unicode(tags::PidTagAttachMimeTag, "image/png")
        .unicode(tags::PidTagAttachContentId, "img1@x")
        .binary(
            tags::PidTagAttachDataBinary,
            &[0x89, b'P', b'N', b'G', 0, 255],
        )
        .marker(END_ATTACH);
    let eml = to_mime(&parse_message(&w.done()).unwrap());
    let msg = MessageParser::default().parse(&eml).unwrap();
    assert!(msg.body_html(0).unwrap().contains("cid:img1@x"));
    let part = msg
        .parts
        .iter()
        .find(|p| p.content_id() == Some("img1@x"))
        .expect("part with the content id");
    assert_eq!(part.contents(), &[0x89, b'P', b'N', b'G', 0, 255]);
    assert_eq!(
        part.content_disposition().map(|d| d.ctype().to_string()),
        Some("inline".to_string())
    );
}
