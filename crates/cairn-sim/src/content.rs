//! Generated content of every kind: message plans and their Graph properties, events,
//! contacts, drive layouts and list items. Pure functions of (seed, coordinates).

use crate::keys::{Coll, CollKey, Res};
use crate::plan::{Addr, AttKind, AttPlan, Malformed, MessagePlan};
use crate::seeded::{hash, mix, pick};
use crate::tenant::{Tenant, coll_seed, res_seed, wk};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};

/// The instant the generated tenant was "captured": all generated times are before it.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

const SUBJECTS: &[&str] = &[
    "Quarterly budget review",
    "Lunch on Friday?",
    "Contract draft v3",
    "Invoice #48213",
    "Re-org announcement",
    "Your order has shipped",
    "Réunion de lancement du projet",
    "Angebot für das Projekt Phoenix",
    "会議の議事録",
    "Отчёт за квартал",
    "Travel itinerary: Zürich ✈️",
    "Security alert: new sign-in",
    "Weekly status",
    "Customer escalation – urgent",
    "Offsite agenda 🎉",
    "Board deck comments",
    "Expense report approval",
    "Welcome to the team!",
];

const SENTENCES: &[&str] = &[
    "Please find the latest numbers below.",
    "Let me know if you have any questions.",
    "We need sign-off by the end of the week.",
    "The customer asked for a revised quote.",
    "I have attached the document we discussed.",
    "Could you review the changes before Thursday?",
    "Merci pour votre retour rapide.",
    "Vielen Dank für die schnelle Antwort.",
    "Thanks, and have a great weekend.",
    "The meeting moved to room 4.12.",
    "Nothing is final until legal has a look.",
    "See the thread below for context.",
];

const EXTERNAL: &[(&str, &str)] = &[
    ("Fabrikam Newsletter", "news@fabrikam.example"),
    ("Tailspin Toys", "orders@tailspintoys.example"),
    ("Jürgen Weiß", "j.weiss@example.de"),
    ("Margaret O'Hara", "mohara@example.ie"),
    ("佐藤 花子", "hanako.sato@example.jp"),
    ("No Reply", "noreply@service.example"),
];

const ATTACHMENT_TYPES: &[(&str, &str)] = &[
    ("pdf", "application/pdf"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("zip", "application/zip"),
    ("ics", "text/calendar"),
    ("csv", "text/csv"),
    ("txt", "text/plain"),
];

const ATTACHMENT_NAMES: &[&str] = &[
    "report",
    "Präsentation",
    "invoice",
    "scan 0001",
    "photo",
    "résumé",
    "contract signed",
    "données",
    "budget",
];

fn addr_of_user(t: &Tenant, idx: u32) -> Addr {
    match t.user(idx) {
        Some(u) => Addr {
            name: u.display_name,
            email: u.upn,
        },
        None => Addr {
            name: "Unknown".into(),
            email: "unknown@example.com".into(),
        },
    }
}

fn someone(t: &Tenant, h: u64) -> Addr {
    if h % 3 == 0 {
        let (name, email) = pick(h >> 3, EXTERNAL);
        Addr {
            name: name.into(),
            email: email.into(),
        }
    } else {
        addr_of_user(t, (h >> 5) as u32 % t.spec.users.max(1))
    }
}

fn owner_addr(t: &Tenant, r: Res) -> Addr {
    match r {
        Res::User(i) => addr_of_user(t, i),
        _ => Addr {
            name: "Group".into(),
            email: format!("group@{}", t.spec.domain),
        },
    }
}

fn sentences(h: u64, target_len: usize) -> String {
    let mut out = String::new();
    let mut x = h;
    while out.len() < target_len {
        x = mix(x);
        out.push_str(pick(x, SENTENCES));
        out.push(if x % 5 == 0 { '\n' } else { ' ' });
    }
    out
}

/// The plan of generated message `n` of folder `folder` in mailbox `r`.
pub fn message_plan(t: &Tenant, r: Res, folder: u32, n: u32) -> MessagePlan {
    let seed = t.spec.seed;
    let h = hash(seed, &[20, res_seed(r), folder as u64, n as u64]);
    let owner = owner_addr(t, r);
    let outgoing = folder == wk::SENT || folder == wk::DRAFTS || folder == wk::OUTBOX;
    let other = someone(t, h >> 1);
    let (from, mut to) = if outgoing {
        (owner.clone(), vec![other])
    } else {
        (other, vec![owner.clone()])
    };
    if h % 4 == 0 {
        to.push(someone(t, mix(h)));
    }
    let cc = if h % 6 == 0 {
        vec![someone(t, mix(h ^ 1))]
    } else {
        vec![]
    };
    // Threads: runs of up to three consecutive messages in a folder form a conversation.
    let pos_in_thread = n % 3;
    let thread_h = hash(seed, &[21, res_seed(r), folder as u64, (n / 3) as u64]);
    let msg_id = |k: u32| format!("<{:016x}.{k}@{}>", thread_h, t.spec.domain);
    let base_subject = pick(thread_h, SUBJECTS);
    let subject = if pos_in_thread > 0 {
        format!("RE: {base_subject}")
    } else {
        base_subject.to_string()
    };
    let references: Vec<String> = (0..pos_in_thread).map(msg_id).collect();
    // Received times spread over three years before the epoch, newest first by index.
    let age_minutes = (n as i64) * 97 + (h % 90) as i64 + (folder as i64) * 13;
    let received = epoch() - Duration::minutes(age_minutes.min(3 * 365 * 24 * 60));
    let sent = received - Duration::seconds((h % 300) as i64 + 2);
    let target = t.message_size(h);
    let body_len = ((target / 2) as usize).clamp(120, 60_000);
    let body_text = format!(
        "Hello {},\n\n{}\n\n-- \n{}\n",
        to[0].name,
        sentences(h, body_len),
        from.name
    );
    let html = h % 5 != 0;
    let mut attachments = Vec::new();
    let budget = target.saturating_sub(body_len as u64 * 2);
    let want_attachments = budget > 8_000 || h % 7 == 0;
    if want_attachments {
        let count = 1 + (mix(h) % 3) as u32;
        for i in 0..count {
            let ah = hash(h, &[i as u64]);
            let (ext, ctype) = pick(ah, ATTACHMENT_TYPES);
            let kind = match ah % 31 {
                0 => AttKind::Item,
                1 => AttKind::Reference,
                _ => AttKind::File,
            };
            let size = match kind {
                AttKind::Reference => 0,
                _ => (budget * 3 / 4 / count as u64).max(200),
            };
            let name = match kind {
                AttKind::Item => format!("{} (forwarded)", pick(ah >> 9, SUBJECTS)),
                AttKind::Reference => {
                    format!("{} {i}.{ext} (link)", pick(ah >> 9, ATTACHMENT_NAMES))
                }
                AttKind::File => format!("{} {i}.{ext}", pick(ah >> 9, ATTACHMENT_NAMES)),
            };
            attachments.push(AttPlan {
                name,
                content_type: match kind {
                    AttKind::Item => "message/rfc822".into(),
                    _ => ctype.into(),
                },
                size,
                inline: false,
                content_id: None,
                seed: ah,
                kind,
            });
        }
    }
    if html && h % 9 == 0 {
        attachments.push(AttPlan {
            name: "image001.png".into(),
            content_type: "image/png".into(),
            size: 2_000 + h % 30_000,
            inline: true,
            content_id: Some(format!("image001.png@{:08x}", h as u32)),
            seed: mix(h ^ 7),
            kind: AttKind::File,
        });
    }
    let malformed = if h % 100 == 42 {
        pick(
            h >> 12,
            &[
                Malformed::MissingDate,
                Malformed::UnterminatedMultipart,
                Malformed::RawEightBitHeader,
                Malformed::BadCharset,
            ],
        )
    } else {
        Malformed::None
    };
    let importance = match h % 40 {
        0 | 1 => "high",
        2 => "low",
        _ => "normal",
    };
    MessagePlan {
        message_id: msg_id(pos_in_thread),
        in_reply_to: (pos_in_thread > 0).then(|| msg_id(pos_in_thread - 1)),
        references,
        subject,
        from,
        to,
        cc,
        sent,
        received,
        body_text,
        html,
        attachments,
        malformed,
        importance,
        seed: h,
    }
}

fn email_json(a: &Addr) -> Value {
    json!({ "emailAddress": { "name": a.name, "address": a.email } })
}

fn html_body(text: &str) -> String {
    let mut s = String::from("<html><head><meta charset=\"utf-8\"></head><body>");
    for p in text.split('\n').filter(|p| !p.is_empty()) {
        s.push_str("<p>");
        s.push_str(
            &p.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;"),
        );
        s.push_str("</p>");
    }
    s.push_str("</body></html>");
    s
}

/// Graph properties of a generated message, before state overrides (read flag, categories…).
pub fn message_props(t: &Tenant, r: Res, folder: u32, n: u32, plan: &MessagePlan) -> Value {
    let h = plan.seed;
    let body = if plan.html {
        json!({"contentType": "html", "content": html_body(&plan.body_text)})
    } else {
        json!({"contentType": "text", "content": plan.body_text})
    };
    let preview: String = plan.body_text.chars().take(255).collect();
    let categories: Vec<&str> = match h % 11 {
        0 => vec!["Red category"],
        1 => vec!["Blue category", "Important"],
        _ => vec![],
    };
    let flag = if h % 13 == 0 { "flagged" } else { "notFlagged" };
    let conversation = hash(
        t.spec.seed,
        &[22, res_seed(r), folder as u64, (n / 3) as u64],
    );
    json!({
        "createdDateTime": iso(plan.received),
        "lastModifiedDateTime": iso(plan.received),
        "receivedDateTime": iso(plan.received),
        "sentDateTime": iso(plan.sent),
        "hasAttachments": plan.attachments.iter().any(|a| !a.inline),
        "internetMessageId": plan.message_id,
        "subject": plan.subject,
        "bodyPreview": preview,
        "importance": plan.importance,
        "conversationId": format!("AAQkA{conversation:016x}"),
        "isDeliveryReceiptRequested": false,
        "isReadReceiptRequested": false,
        "isRead": folder == wk::SENT || folder == wk::DRAFTS || !h.is_multiple_of(5) || n > 40,
        "isDraft": folder == wk::DRAFTS,
        "inferenceClassification": if h % 4 == 0 { "other" } else { "focused" },
        "body": body,
        "sender": email_json(&plan.from),
        "from": email_json(&plan.from),
        "toRecipients": plan.to.iter().map(email_json).collect::<Vec<_>>(),
        "ccRecipients": plan.cc.iter().map(email_json).collect::<Vec<_>>(),
        "bccRecipients": [],
        "replyTo": [],
        "categories": categories,
        "flag": { "flagStatus": flag },
    })
}

// ---- calendars and contacts -------------------------------------------------------------

/// Calendars of a mailbox: the primary calendar, and a second one for some users.
pub fn calendars(t: &Tenant, r: Res) -> Vec<(u32, &'static str)> {
    let mut v = vec![(0, "Calendar")];
    if hash(t.spec.seed, &[30, res_seed(r)]) % 2 == 0 {
        v.push((1, "Team Events"));
    }
    v
}

pub fn event_count(t: &Tenant, r: Res, cal: u32) -> u32 {
    let total = t.spec.events_per_mailbox;
    let cals = calendars(t, r).len() as u32;
    match (cal, cals) {
        (0, 1) => total,
        (0, _) => total - total / 4,
        (1, 2) => total / 4,
        _ => 0,
    }
}

const EVENT_SUBJECTS: &[&str] = &[
    "1:1",
    "Team stand-up",
    "Quarterly planning",
    "Customer call – Fabrikam",
    "Dentist",
    "Sprint review",
    "Déjeuner d'équipe",
    "Board meeting",
    "Training: security awareness",
];

fn dt(t: DateTime<Utc>) -> Value {
    json!({"dateTime": t.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC"})
}

/// Start time of a generated event (used for calendarView windows).
pub fn event_start(t: &Tenant, r: Res, cal: u32, n: u32) -> DateTime<Utc> {
    let h = hash(t.spec.seed, &[31, res_seed(r), cal as u64, n as u64]);
    // From two years back to half a year ahead, on working hours.
    let day = (h % 900) as i64 - 720;
    let hour = 8 + (h >> 10) % 9;
    (epoch() + Duration::days(day))
        .date_naive()
        .and_hms_opt(hour as u32, if h % 2 == 0 { 0 } else { 30 }, 0)
        .map(|d| d.and_utc())
        .unwrap_or_else(epoch)
}

/// Graph JSON of a generated event (a series master when it recurs).
pub fn event_json(t: &Tenant, r: Res, cal: u32, n: u32) -> Value {
    let h = hash(t.spec.seed, &[31, res_seed(r), cal as u64, n as u64]);
    let start = event_start(t, r, cal, n);
    let all_day = h % 17 == 0;
    let (start, end) = if all_day {
        let s = start
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc())
            .unwrap_or(start);
        (s, s + Duration::days(1))
    } else {
        (
            start,
            start + Duration::minutes(30 * (1 + (h >> 20) as i64 % 4)),
        )
    };
    let organizer = owner_addr(t, r);
    let attendees: Vec<Value> = (0..(h % 5))
        .map(|i| {
            let a = someone(t, hash(h, &[i]));
            json!({
                "type": if i % 3 == 2 { "optional" } else { "required" },
                "status": {"response": pick(hash(h, &[i, 1]), &["accepted", "tentativelyAccepted", "declined", "none"]), "time": "0001-01-01T00:00:00Z"},
                "emailAddress": {"name": a.name, "address": a.email},
            })
        })
        .collect();
    let recurrence = match h % 5 {
        0 => json!({
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [start.format("%A").to_string().to_lowercase()], "firstDayOfWeek": "sunday", "dayOfMonth": 0, "month": 0, "index": "first"},
            "range": {"type": "endDate", "startDate": start.format("%Y-%m-%d").to_string(), "endDate": (start + Duration::days(180)).format("%Y-%m-%d").to_string(), "recurrenceTimeZone": "UTC", "numberOfOccurrences": 0},
        }),
        1 => json!({
            "pattern": {"type": "daily", "interval": 1 + (h >> 30) % 2, "daysOfWeek": [], "firstDayOfWeek": "sunday", "dayOfMonth": 0, "month": 0, "index": "first"},
            "range": {"type": "numbered", "startDate": start.format("%Y-%m-%d").to_string(), "endDate": "0001-01-01", "recurrenceTimeZone": "UTC", "numberOfOccurrences": 10},
        }),
        2 if h % 3 == 0 => json!({
            "pattern": {"type": "absoluteMonthly", "interval": 1, "daysOfWeek": [], "firstDayOfWeek": "sunday", "dayOfMonth": start.format("%d").to_string().parse::<u32>().unwrap_or(1), "month": 0, "index": "first"},
            "range": {"type": "noEnd", "startDate": start.format("%Y-%m-%d").to_string(), "endDate": "0001-01-01", "recurrenceTimeZone": "UTC", "numberOfOccurrences": 0},
        }),
        _ => Value::Null,
    };
    let subject = pick(h >> 4, EVENT_SUBJECTS);
    json!({
        "subject": subject,
        "body": {"contentType": "html", "content": html_body(&sentences(h, 200))},
        "bodyPreview": sentences(h, 100).chars().take(100).collect::<String>(),
        "start": dt(start),
        "end": dt(end),
        "isAllDay": all_day,
        "location": {"displayName": pick(h >> 8, &["Room 4.12", "Teams", "Café Central", "HQ – Board room", ""])},
        "organizer": {"emailAddress": {"name": organizer.name, "address": organizer.email}},
        "attendees": attendees,
        "recurrence": recurrence,
        "type": if recurrence.is_null() { "singleInstance" } else { "seriesMaster" },
        "showAs": pick(h >> 12, &["busy", "tentative", "free", "oof"]),
        "sensitivity": if h % 23 == 0 { "private" } else { "normal" },
        "importance": "normal",
        "categories": if h % 6 == 0 { json!(["Green category"]) } else { json!([]) },
        "isReminderOn": h % 3 != 0,
        "reminderMinutesBeforeStart": 15,
        "isCancelled": false,
        "iCalUId": format!("040000008200E00074C5B7101A82E008{:032X}", (h as u128) << 64 | mix(h) as u128),
        "createdDateTime": iso(start - Duration::days(10)),
        "lastModifiedDateTime": iso(start - Duration::days(3)),
    })
}

/// Contact folders: the default "Contacts" and, for some users, a subfolder.
pub fn contact_folders(t: &Tenant, r: Res) -> Vec<(u32, &'static str, Option<u32>)> {
    let mut v = vec![(0, "Contacts", None)];
    if hash(t.spec.seed, &[40, res_seed(r)]) % 3 != 0 {
        v.push((1, "Suppliers", Some(0)));
    }
    v
}

pub fn contact_count(t: &Tenant, r: Res, folder: u32) -> u32 {
    let total = t.spec.contacts_per_mailbox;
    match (folder, contact_folders(t, r).len()) {
        (0, 1) => total,
        (0, _) => total - total / 3,
        (1, 2) => total / 3,
        _ => 0,
    }
}

pub fn contact_json(t: &Tenant, r: Res, folder: u32, n: u32) -> Value {
    let h = hash(t.spec.seed, &[41, res_seed(r), folder as u64, n as u64]);
    let a = someone(t, h);
    let (given, surname) = a.name.split_once(' ').unwrap_or((a.name.as_str(), ""));
    let mut v = json!({
        "givenName": given,
        "surname": surname,
        "displayName": a.name,
        "emailAddresses": [{"name": a.name, "address": a.email}],
        "businessPhones": [format!("+1 425 555 {:04}", h % 10_000)],
        "mobilePhone": if h % 2 == 0 { Value::from(format!("+44 7700 9{:05}", h % 100_000)) } else { Value::Null },
        "companyName": pick(h >> 6, &["Fabrikam", "Contoso", "Tailspin Toys", "Wingtip", "Northwind Traders"]),
        "jobTitle": pick(h >> 9, &["Buyer", "CFO", "Account Manager", "Consultant"]),
        "department": Value::Null,
        "personalNotes": if h % 4 == 0 { sentences(h, 80) } else { String::new() },
        "categories": [],
        "imAddresses": [],
        "businessAddress": {"street": format!("{} Main St", h % 900 + 1), "city": pick(h >> 14, &["Redmond", "München", "Lyon", "Osaka"]), "state": "", "countryOrRegion": "", "postalCode": format!("{:05}", h % 99_999)},
        "homeAddress": {},
        "createdDateTime": iso(epoch() - Duration::days((h % 1000) as i64)),
        "lastModifiedDateTime": iso(epoch() - Duration::days((h % 100) as i64)),
    });
    if h % 5 == 0 {
        v["birthday"] = json!(format!(
            "19{:02}-0{}-1{}T11:59:00Z",
            50 + h % 50,
            1 + h % 9,
            h % 10
        ));
    }
    v
}

/// Fields of an event or contact that a restore must bring back; the manifest hashes these.
pub const EVENT_CONTENT_FIELDS: &[&str] = &[
    "subject",
    "body",
    "start",
    "end",
    "isAllDay",
    "location",
    "attendees",
    "recurrence",
    "showAs",
    "sensitivity",
    "importance",
    "categories",
    "isReminderOn",
    "reminderMinutesBeforeStart",
];
pub const CONTACT_CONTENT_FIELDS: &[&str] = &[
    "givenName",
    "surname",
    "displayName",
    "emailAddresses",
    "businessPhones",
    "mobilePhone",
    "companyName",
    "jobTitle",
    "department",
    "personalNotes",
    "categories",
    "imAddresses",
    "businessAddress",
    "homeAddress",
    "birthday",
];
pub const LIST_SYSTEM_FIELDS: &[&str] = &[
    "id",
    "Created",
    "Modified",
    "AuthorLookupId",
    "EditorLookupId",
    "_UIVersionString",
    "Attachments",
    "Edit",
    "LinkTitleNoMenu",
    "LinkTitle",
    "ItemChildCount",
    "FolderChildCount",
    "_ComplianceFlags",
    "_ComplianceTag",
    "_ComplianceTagWrittenTime",
    "_ComplianceTagUserId",
    "ContentType",
    "@odata.etag",
];

/// Fields of a group conversation post that a backup must keep; the manifest hashes these.
pub const POST_CONTENT_FIELDS: &[&str] = &[
    "body",
    "from",
    "sender",
    "createdDateTime",
    "receivedDateTime",
    "conversationThreadId",
    "conversationId",
    "categories",
    "hasAttachments",
    "newParticipants",
];

/// The canonical JSON (sorted keys, only content fields, nulls dropped) that the manifest hashes.
pub fn canonical(v: &Value, fields: &[&str]) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if let Some(obj) = v.as_object() {
        for f in fields {
            if let Some(x) = obj.get(*f)
                && !x.is_null()
            {
                m.insert((*f).to_string(), x.clone());
            }
        }
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

/// Canonical JSON of list item fields: everything but SharePoint's system fields.
pub fn canonical_list_fields(fields: &Value) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    if let Some(obj) = fields.as_object() {
        for (k, x) in obj {
            if !LIST_SYSTEM_FIELDS.contains(&k.as_str()) && !x.is_null() {
                m.insert(k.clone(), x.clone());
            }
        }
    }
    serde_json::to_vec(&Value::Object(m)).unwrap_or_default()
}

// ---- group conversations ---------------------------------------------------------------

fn thread_hash(t: &Tenant, g: u32, thread: u32) -> u64 {
    hash(t.spec.seed, &[50, res_seed(Res::Group(g)), thread as u64])
}

/// Topic of a generated conversation thread (the subject of its first post).
pub fn thread_topic(t: &Tenant, g: u32, thread: u32) -> String {
    let h = thread_hash(t, g, thread);
    format!("{} ({})", pick(h, SUBJECTS), thread + 1)
}

/// Number of generated posts of a thread: 1 to 4.
pub fn post_count(t: &Tenant, g: u32, thread: u32) -> u32 {
    1 + ((thread_hash(t, g, thread) >> 8) % 4) as u32
}

/// The `conversationId` shared by the posts of a thread (distinct from the thread's id).
pub fn conversation_id(t: &Tenant, g: u32, thread: u32) -> String {
    use base64::Engine;
    let h = hash(t.spec.seed, &[51, res_seed(Res::Group(g)), thread as u64]);
    let mut raw = h.to_be_bytes().to_vec();
    raw.extend_from_slice(&mix(h).to_be_bytes());
    format!(
        "AAQkAD{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// When generated post `n` of a thread was delivered: posts of a thread are minutes to
/// hours apart, in order, and all before the epoch.
pub fn post_time(t: &Tenant, g: u32, thread: u32, n: u32) -> DateTime<Utc> {
    let h = thread_hash(t, g, thread);
    let start = epoch() - Duration::days(1 + (h >> 12) as i64 % 400) - Duration::minutes(600);
    start + Duration::minutes(n as i64 * 97 + (hash(h, &[n as u64]) % 90) as i64)
}

/// Graph properties of post `n` of a generated thread (without id and change key).
/// `n` beyond the generated posts gives the content of a reply created later.
pub fn post_props(t: &Tenant, g: u32, thread: u32, n: u32) -> Value {
    let h = hash(thread_hash(t, g, thread), &[n as u64, 1]);
    let from = addr_of_user(t, (h >> 5) as u32 % t.spec.users.max(1));
    let at = iso(post_time(t, g, thread, n.min(1000)));
    let text = if n == 0 {
        sentences(h, 120 + (h % 400) as usize)
    } else {
        format!(
            "Re: {}\n{}",
            thread_topic(t, g, thread),
            sentences(h, 60 + (h % 300) as usize)
        )
    };
    json!({
        "createdDateTime": at,
        "lastModifiedDateTime": at,
        "receivedDateTime": at,
        "hasAttachments": false,
        "categories": [],
        "body": {"contentType": "html", "content": html_body(&text)},
        "from": email_json(&from),
        "sender": email_json(&from),
        "conversationId": conversation_id(t, g, thread),
        "newParticipants": [],
    })
}

/// Plain text of an HTML body, for previews.
pub fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

// ---- drives ------------------------------------------------------------------------------

/// The generated tree of a drive: item 0 is the root, `1..=folders` are folders,
/// `folders+1 ..= folders+files` are files.
#[derive(Clone, Debug)]
pub struct DriveLayout {
    pub folders: u32,
    pub files: u32,
    seed: u64,
}

const FOLDER_NAMES: &[&str] = &[
    "Documents",
    "Projects",
    "Finance",
    "Photos",
    "Archive",
    "Clients",
    "2024",
    "Q3",
    "Drafts",
    "Shared with team",
    "Réunions",
    "データ",
    "Contracts & NDAs",
    "Old #1",
    "Very long folder name that goes on and on to make deep paths longer",
];
const FILE_STEMS: &[&str] = &[
    "Budget",
    "Report",
    "Résumé (final)",
    "Meeting notes",
    "📊 Forecast",
    "IMG_2041",
    "a&b%c",
    "Proposal #2",
    "スライド",
    "Q3 numbers",
    "notes",
    "logo",
    "~draft",
    "contract.v2",
];
const FILE_TYPES: &[(&str, &str)] = &[
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("pdf", "application/pdf"),
    ("jpg", "image/jpeg"),
    ("png", "image/png"),
    ("txt", "text/plain"),
    ("zip", "application/zip"),
    ("mp4", "video/mp4"),
    ("csv", "text/csv"),
];

/// A generated drive item.
#[derive(Clone, Debug)]
pub struct DriveEntry {
    pub index: u32,
    pub name: String,
    /// Parent index; `None` for the root.
    pub parent: Option<u32>,
    pub folder: bool,
    pub size: u64,
    pub mime_type: &'static str,
    /// Seed of the current content (shared between users for duplicated documents).
    pub content_seed: u64,
    /// Number of versions, including the current one.
    pub versions: u32,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
}

pub fn drive_layout(t: &Tenant, c: CollKey) -> DriveLayout {
    let files = t.spec.files_per_drive;
    DriveLayout {
        folders: 1 + files / 6,
        files,
        seed: hash(t.spec.seed, &[50, coll_seed(c)]),
    }
}

impl DriveLayout {
    pub fn len(&self) -> u32 {
        1 + self.folders + self.files
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn entry(&self, t: &Tenant, index: u32) -> Option<DriveEntry> {
        if index >= self.len() {
            return None;
        }
        let h = hash(self.seed, &[index as u64]);
        let created = epoch() - Duration::minutes((h % (3 * 365 * 24 * 60)) as i64);
        let modified = created + Duration::minutes((mix(h) % (30 * 24 * 60)) as i64);
        let modified = modified.min(epoch());
        if index == 0 {
            return Some(DriveEntry {
                index,
                name: "root".into(),
                parent: None,
                folder: true,
                size: 0,
                mime_type: "",
                content_seed: 0,
                versions: 1,
                created,
                modified,
            });
        }
        if index <= self.folders {
            // Folders nest under the root or an earlier folder, giving depth.
            let parent = if index == 1 || h % 3 == 0 {
                0
            } else {
                1 + (h >> 8) as u32 % (index - 1)
            };
            return Some(DriveEntry {
                index,
                name: format!("{} {index}", pick(h >> 16, FOLDER_NAMES)),
                parent: Some(parent),
                folder: true,
                size: 0,
                mime_type: "",
                content_seed: 0,
                versions: 1,
                created,
                modified,
            });
        }
        let parent = (h >> 8) as u32 % (self.folders + 1);
        let (ext, mime_type) = pick(h >> 20, FILE_TYPES);
        // One file in ten is one of a small pool of documents every user has a copy of.
        let (content_seed, size) = if h % 10 == 0 {
            let pool = (h >> 30) % 16;
            let ps = hash(t.spec.seed, &[51, pool]);
            (ps, t.file_size(ps))
        } else {
            (h, t.file_size(mix(h)))
        };
        Some(DriveEntry {
            index,
            name: format!("{} {index}.{ext}", pick(h >> 24, FILE_STEMS)),
            parent: Some(parent),
            folder: false,
            size,
            mime_type,
            content_seed,
            versions: 1 + (h >> 40) as u32 % 4,
            created,
            modified,
        })
    }
}

/// Content seed and size of an older version `v` (1 = oldest) of a generated file.
pub fn old_version(t: &Tenant, e: &DriveEntry, v: u32) -> (u64, u64) {
    let s = hash(e.content_seed, &[52, v as u64]);
    (s, t.file_size(s).min(e.size.max(1) * 2))
}

// ---- lists -------------------------------------------------------------------------------

pub fn list_item_fields(t: &Tenant, c: CollKey, n: u32) -> Value {
    let h = hash(t.spec.seed, &[60, coll_seed(c), n as u64]);
    match c.coll {
        Coll::List(1) => json!({
            "Title": someone(t, h).name,
            "Email": someone(t, h).email,
            "Company": pick(h >> 6, &["Fabrikam", "Contoso", "Northwind"]),
            "Phone": format!("+1 206 555 {:04}", h % 10_000),
        }),
        _ => json!({
            "Title": format!("{} {}", pick(h, &["Printer jam", "VPN drops", "New laptop", "Access request", "Café machine broken ☕"]), n + 1),
            "Status": pick(h >> 4, &["Active", "Resolved", "Closed", "Blocked"]),
            "Priority": pick(h >> 8, &["(1) High", "(2) Normal", "(3) Low"]),
            "DueDate": iso(epoch() + Duration::days((h % 60) as i64 - 30)),
            "Description": sentences(h, 60),
            "Amount": (h % 100_000) as f64 / 100.0,
        }),
    }
}

pub fn list_count(t: &Tenant) -> u32 {
    t.spec.items_per_list
}
