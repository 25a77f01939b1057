//! A sample mailbox with non-ASCII names everywhere.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use cairn_pst::{
    Appointment, Attachment, Contact, FolderKind, Message, PstWriter, Recipient, RecipientKind,
    Stats,
};
use chrono::{TimeZone, Utc};

/// What the fixture wrote, to compare with what readers find.
pub struct Expected {
    /// (folder path from the IPM subtree, subjects in that folder)
    pub folders: Vec<(Vec<String>, Vec<String>)>,
    pub appointment_subjects: Vec<String>,
    pub contact_names: Vec<String>,
    pub attachment_names: Vec<String>,
}

impl Expected {
    pub fn total_items(&self) -> usize {
        self.folders.iter().map(|f| f.1.len()).sum()
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cairn-pst-{name}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn message(subject: &str, i: usize) -> Message {
    Message {
        subject: subject.to_string(),
        from_name: "Zoë Ångström".into(),
        from_email: "zoe@example.com".into(),
        recipients: vec![
            Recipient {
                name: "Иван Петров".into(),
                email: "ivan@example.com".into(),
                kind: RecipientKind::To,
            },
            Recipient {
                name: "山田太郎".into(),
                email: "taro@example.jp".into(),
                kind: RecipientKind::Cc,
            },
        ],
        sent: Some(
            Utc.with_ymd_and_hms(2024, 3, 1, 10, 0, i as u32 % 60)
                .unwrap(),
        ),
        received: Some(
            Utc.with_ymd_and_hms(2024, 3, 1, 10, 1, i as u32 % 60)
                .unwrap(),
        ),
        internet_message_id: Some(format!("<msg-{i}@example.com>")),
        transport_headers: Some(format!(
            "Received: from mx.example.com\r\nMessage-ID: <msg-{i}@example.com>\r\nX-Mailer: cairn-test\r\n"
        )),
        body_text: Some(format!(
            "Привет! Body of message {i}. 日本語のテキスト 🎉\r\n"
        )),
        body_html: Some(
            format!("<html><body><p>Привет! HTML body {i} 🎉</p></body></html>").into_bytes(),
        ),
        attachments: Vec::new(),
        read: i % 2 == 0,
        ..Message::default()
    }
}

/// Writes the sample mailbox to `path`.
pub fn write_sample(path: &Path) -> (Stats, Expected) {
    let out = BufWriter::new(File::create(path).unwrap());
    let mut w = PstWriter::new(out, "Архив Cairn 📦").unwrap();
    let root = w.root();
    let inbox = w.add_folder(root, "Входящие", FolderKind::Mail).unwrap();
    let nested = w.add_folder(inbox, "日本語", FolderKind::Mail).unwrap();
    let deeper = w.add_folder(nested, "Émile 🎉", FolderKind::Mail).unwrap();
    let calendar = w
        .add_folder(root, "Календарь", FolderKind::Calendar)
        .unwrap();
    let contacts = w
        .add_folder(root, "Контакты", FolderKind::Contacts)
        .unwrap();

    let inbox_subjects = vec![
        "Привет, мир".to_string(),
        "会議の議題 📅".to_string(),
        "Ça va? Ünïcödé".to_string(),
    ];
    for (i, s) in inbox_subjects.iter().enumerate() {
        let mut m = message(s, i);
        if i == 0 {
            m.attachments.push(Attachment {
                filename: "отчёт.txt".into(),
                mime_type: "text/plain".into(),
                data: "Содержимое вложения\n".as_bytes().to_vec(),
            });
            m.attachments.push(Attachment {
                filename: "image.png".into(),
                mime_type: "image/png".into(),
                data: (0..20_000u32).map(|x| (x % 251) as u8).collect(),
            });
        }
        w.add_message(inbox, &m).unwrap();
    }
    let nested_subjects = vec!["東京からのメール".to_string()];
    w.add_message(nested, &message(&nested_subjects[0], 10))
        .unwrap();
    let deeper_subjects = vec!["Émile répond 🎉".to_string(), "Deux".to_string()];
    for (i, s) in deeper_subjects.iter().enumerate() {
        w.add_message(deeper, &message(s, 20 + i)).unwrap();
    }

    let appointment_subjects = vec!["Встреча команды".to_string(), "全日イベント".to_string()];
    w.add_appointment(
        calendar,
        &Appointment {
            subject: appointment_subjects[0].clone(),
            location: Some("Переговорная 5".into()),
            start: Utc.with_ymd_and_hms(2024, 5, 6, 9, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2024, 5, 6, 10, 30, 0).unwrap(),
            all_day: false,
            body_text: Some("Повестка дня".into()),
            organizer_name: Some("Zoë Ångström".into()),
            organizer_email: Some("zoe@example.com".into()),
        },
    )
    .unwrap();
    w.add_appointment(
        calendar,
        &Appointment {
            subject: appointment_subjects[1].clone(),
            location: None,
            start: Utc.with_ymd_and_hms(2024, 5, 7, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2024, 5, 8, 0, 0, 0).unwrap(),
            all_day: true,
            ..Appointment::default()
        },
    )
    .unwrap();

    let contact_names = vec!["Иван Петров".to_string(), "山田 太郎".to_string()];
    w.add_contact(
        contacts,
        &Contact {
            display_name: contact_names[0].clone(),
            given_name: Some("Иван".into()),
            surname: Some("Петров".into()),
            email: Some("ivan@example.com".into()),
            business_phone: Some("+7 495 123-45-67".into()),
            company: Some("ООО Ромашка".into()),
            ..Contact::default()
        },
    )
    .unwrap();
    w.add_contact(
        contacts,
        &Contact {
            display_name: contact_names[1].clone(),
            given_name: Some("太郎".into()),
            surname: Some("山田".into()),
            email: Some("taro@example.jp".into()),
            mobile_phone: Some("+81 90 1234 5678".into()),
            ..Contact::default()
        },
    )
    .unwrap();
    let stats = w.finish().unwrap();

    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let expected = Expected {
        folders: vec![
            (s(&["Deleted Items"]), vec![]),
            (s(&["Входящие"]), inbox_subjects),
            (s(&["Входящие", "日本語"]), nested_subjects),
            (s(&["Входящие", "日本語", "Émile 🎉"]), deeper_subjects),
            (s(&["Календарь"]), appointment_subjects.clone()),
            (s(&["Контакты"]), contact_names.clone()),
        ],
        appointment_subjects,
        contact_names,
        attachment_names: s(&["отчёт.txt", "image.png"]),
    };
    (stats, expected)
}
