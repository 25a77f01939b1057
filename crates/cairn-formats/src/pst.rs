//! Backed-up items as the items of an Outlook PST file (written by `cairn-pst`): a message
//! from its MIME, an event and a contact from Graph's JSON.
//!
//! What a PST made from a backup keeps: for mail, the subject, sender, To/Cc/Bcc, the sent
//! and received times, the Internet message id, the original headers (as the transport
//! headers), the plain and HTML bodies and every attachment (an attached message as an
//! `.eml` file); for events, subject, location, start, end, all-day, organiser and the
//! body as text; for contacts, names, the first e-mail address, phones, company, title and
//! notes. What it loses: recurrence and attendees of events, categories and flags,
//! postal addresses and photos of contacts, and MAPI properties that MIME does not carry.

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

/// A message as PST wants it, from its MIME; `None` when the bytes are not a message at all.
pub fn message(mime: &[u8], read: bool) -> Option<cairn_pst::Message> {
    let m = MessageParser::default().parse(mime)?;
    let addrs = |a: Option<&mail_parser::Address<'_>>, kind: cairn_pst::RecipientKind| {
        a.map(|a| {
            a.iter()
                .filter_map(|x| {
                    let email = x.address().unwrap_or_default().to_string();
                    let name = x
                        .name()
                        .map(str::to_string)
                        .unwrap_or_else(|| email.clone());
                    (!name.is_empty() || !email.is_empty()).then_some(cairn_pst::Recipient {
                        name,
                        email,
                        kind,
                    })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
    };
    let (from_name, from_email) = m
        .from()
        .and_then(|a| a.first())
        .map(|a| {
            let email = a.address().unwrap_or_default().to_string();
            (
                a.name()
                    .map(str::to_string)
                    .unwrap_or_else(|| email.clone()),
                email,
            )
        })
        .unwrap_or_default();
    let mut recipients = addrs(m.to(), cairn_pst::RecipientKind::To);
    recipients.extend(addrs(m.cc(), cairn_pst::RecipientKind::Cc));
    recipients.extend(addrs(m.bcc(), cairn_pst::RecipientKind::Bcc));
    let sent = m
        .date()
        .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0));
    // The received time is the newest Received: header's, else the sent time.
    let received = m
        .header_values("Received")
        .find_map(|v| v.as_received().and_then(|r| r.date()))
        .and_then(|d| DateTime::<Utc>::from_timestamp(d.to_timestamp(), 0))
        .or(sent);
    let html = m
        .html_bodies()
        .find(|p| p.is_text_html())
        .map(|p| p.contents().to_vec());
    let attachments = m
        .attachments()
        .enumerate()
        .map(|(i, a)| cairn_pst::Attachment {
            filename: a
                .attachment_name()
                .map(str::to_string)
                .or_else(|| {
                    a.message()
                        .and_then(|m| m.subject())
                        .map(|s| format!("{s}.eml"))
                })
                .unwrap_or_else(|| format!("attachment-{}", i + 1)),
            mime_type: match a.content_type() {
                Some(ct) => match ct.subtype() {
                    Some(s) => format!("{}/{}", ct.ctype(), s).to_ascii_lowercase(),
                    None => ct.ctype().to_ascii_lowercase(),
                },
                None if a.is_message() => "message/rfc822".into(),
                None => "application/octet-stream".into(),
            },
            data: a.contents().to_vec(),
        })
        .collect();
    Some(cairn_pst::Message {
        subject: m.subject().unwrap_or_default().to_string(),
        from_name,
        from_email,
        recipients,
        sent,
        received,
        internet_message_id: m.message_id().map(|id| format!("<{id}>")),
        transport_headers: Some(headers(mime)),
        body_text: m.body_text(0).map(|t| t.into_owned()),
        body_html: html,
        attachments,
        read,
        message_class: "IPM.Note".into(),
    })
}

/// The header block of a MIME message, as text.
fn headers(mime: &[u8]) -> String {
    let end = mime
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| mime.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
        .unwrap_or(mime.len());
    String::from_utf8_lossy(&mime[..end]).into_owned()
}

/// An event (Graph's JSON) as a PST appointment; `None` without a start.
pub fn appointment(v: &Value) -> Option<cairn_pst::Appointment> {
    let start = crate::ics::utc_of(&v["start"])?;
    let end = crate::ics::utc_of(&v["end"]).unwrap_or(start);
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    Some(cairn_pst::Appointment {
        subject: v["subject"].as_str().unwrap_or_default().to_string(),
        location: text(&v["location"]["displayName"]),
        start,
        end,
        all_day: v["isAllDay"].as_bool().unwrap_or(false),
        body_text: body_text(&v["body"]),
        organizer_name: text(&v["organizer"]["emailAddress"]["name"]),
        organizer_email: text(&v["organizer"]["emailAddress"]["address"]),
    })
}

/// A contact (Graph's JSON) as a PST contact.
pub fn contact(v: &Value) -> cairn_pst::Contact {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let first = |v: &Value| v.as_array().and_then(|a| a.iter().find_map(text));
    let email = v["emailAddresses"]
        .as_array()
        .and_then(|a| a.iter().find_map(|e| text(&e["address"])));
    let display_name = text(&v["displayName"])
        .or_else(|| email.clone())
        .unwrap_or_default();
    cairn_pst::Contact {
        display_name,
        given_name: text(&v["givenName"]),
        surname: text(&v["surname"]),
        email,
        business_phone: first(&v["businessPhones"]),
        mobile_phone: text(&v["mobilePhone"]),
        home_phone: first(&v["homePhones"]),
        company: text(&v["companyName"]),
        job_title: text(&v["jobTitle"]),
        body_text: text(&v["personalNotes"]),
    }
}

/// An item body (`{"contentType","content"}`) as text: HTML reduced to its text.
fn body_text(body: &Value) -> Option<String> {
    let content = body["content"].as_str().filter(|s| !s.trim().is_empty())?;
    if body["contentType"].as_str() == Some("html") {
        Some(crate::text::html_to_text(content))
    } else {
        Some(content.to_string())
    }
}
