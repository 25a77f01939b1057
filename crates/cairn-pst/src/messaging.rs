//! The messaging layer: message store, name-to-id map, folders, messages,
//! recipients and attachments, appointments and contacts.

use std::collections::HashMap;
use std::io::{Seek, Write};

use chrono::{DateTime, Utc};

use crate::Error;
use crate::ltp::{Row, Subnodes, TcLayout, Val, write_pc, write_tc};
use crate::ndb::Ndb;

// Node ids (MS-PST 2.4.1 and 2.7.1).
const NID_MESSAGE_STORE: u32 = 0x21;
const NID_NAME_TO_ID_MAP: u32 = 0x61;
const NID_NORMAL_FOLDER_TEMPLATE: u32 = 0xA1;
const NID_SEARCH_FOLDER_TEMPLATE: u32 = 0xC1;
const NID_ROOT_FOLDER: u32 = 0x122;
const NID_EMPTY_QUEUES: [u32; 10] = [
    0x1E1, 0x201, 0x241, 0x261, 0x281, 0x2A1, 0x2E1, 0x301, 0x321, 0x341,
];
const NID_HIERARCHY_TABLE_TEMPLATE: u32 = 0x60D;
const NID_CONTENTS_TABLE_TEMPLATE: u32 = 0x60E;
const NID_ASSOC_CONTENTS_TABLE_TEMPLATE: u32 = 0x60F;
const NID_SEARCH_CONTENTS_TABLE_TEMPLATE: u32 = 0x610;
const NID_ATTACHMENT_TABLE: u32 = 0x671;
const NID_RECIPIENT_TABLE: u32 = 0x692;

const NID_TYPE_NORMAL_FOLDER: u32 = 0x02;
const NID_TYPE_NORMAL_MESSAGE: u32 = 0x04;
const NID_TYPE_ATTACHMENT: u32 = 0x05;
const NID_TYPE_HIERARCHY_TABLE: u32 = 0x0D;
const NID_TYPE_CONTENTS_TABLE: u32 = 0x0E;
const NID_TYPE_ASSOC_CONTENTS_TABLE: u32 = 0x0F;

const NID_IPM_SUBTREE: u32 = (0x401 << 5) | NID_TYPE_NORMAL_FOLDER; // 0x8022
const NID_SEARCH_ROOT: u32 = (0x402 << 5) | NID_TYPE_NORMAL_FOLDER; // 0x8042
const NID_SPAM_SEARCH: u32 = (0x403 << 5) | NID_TYPE_NORMAL_FOLDER; // 0x8062
const NID_DELETED_ITEMS: u32 = (0x404 << 5) | NID_TYPE_NORMAL_FOLDER; // 0x8082
const FIRST_USER_FOLDER_INDEX: u32 = 0x405;
const FIRST_MESSAGE_INDEX: u32 = 0x10000;

// Property ids.
const PR_IMPORTANCE: u16 = 0x0017;
const PR_MESSAGE_CLASS: u16 = 0x001A;
const PR_PRIORITY: u16 = 0x0026;
const PR_SENSITIVITY: u16 = 0x0036;
const PR_SUBJECT: u16 = 0x0037;
const PR_CLIENT_SUBMIT_TIME: u16 = 0x0039;
const PR_SENT_REPRESENTING_NAME: u16 = 0x0042;
const PR_MESSAGE_TO_ME: u16 = 0x0057;
const PR_MESSAGE_CC_ME: u16 = 0x0058;
const PR_START_DATE: u16 = 0x0060;
const PR_END_DATE: u16 = 0x0061;
const PR_SENT_REPRESENTING_ADDRTYPE: u16 = 0x0064;
const PR_SENT_REPRESENTING_EMAIL: u16 = 0x0065;
const PR_CONVERSATION_TOPIC: u16 = 0x0070;
const PR_TRANSPORT_HEADERS: u16 = 0x007D;
const PR_RECIPIENT_TYPE: u16 = 0x0C15;
const PR_SENDER_NAME: u16 = 0x0C1A;
const PR_SENDER_ADDRTYPE: u16 = 0x0C1E;
const PR_SENDER_EMAIL: u16 = 0x0C1F;
const PR_DISPLAY_BCC: u16 = 0x0E02;
const PR_DISPLAY_CC: u16 = 0x0E03;
const PR_DISPLAY_TO: u16 = 0x0E04;
const PR_MESSAGE_DELIVERY_TIME: u16 = 0x0E06;
const PR_MESSAGE_FLAGS: u16 = 0x0E07;
const PR_MESSAGE_SIZE: u16 = 0x0E08;
const PR_RESPONSIBILITY: u16 = 0x0E0F;
const PR_MESSAGE_STATUS: u16 = 0x0E17;
const PR_HASATTACH: u16 = 0x0E1B;
const PR_NORMALIZED_SUBJECT: u16 = 0x0E1D;
const PR_ATTACH_SIZE: u16 = 0x0E20;
const PR_ATTACH_NUM: u16 = 0x0E21;
const PR_REPL_ITEMID: u16 = 0x0E30;
const PR_REPL_CHANGENUM: u16 = 0x0E33;
const PR_REPL_VERSIONHISTORY: u16 = 0x0E34;
const PR_REPL_FLAGS: u16 = 0x0E38;
const PR_REPL_COPIEDFROM_VERSIONHISTORY: u16 = 0x0E3C;
const PR_REPL_COPIEDFROM_ITEMID: u16 = 0x0E3D;
const PR_RECORD_KEY: u16 = 0x0FF9;
const PR_OBJECT_TYPE: u16 = 0x0FFE;
const PR_ENTRYID: u16 = 0x0FFF;
const PR_BODY: u16 = 0x1000;
const PR_HTML: u16 = 0x1013;
const PR_INTERNET_MESSAGE_ID: u16 = 0x1035;
const PR_ROWID: u16 = 0x3000;
const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_ADDRTYPE: u16 = 0x3002;
const PR_EMAIL_ADDRESS: u16 = 0x3003;
const PR_CREATION_TIME: u16 = 0x3007;
const PR_LAST_MODIFICATION_TIME: u16 = 0x3008;
const PR_SEARCH_KEY: u16 = 0x300B;
const PR_STORE_SUPPORT_MASK: u16 = 0x340D;
const PR_VALID_FOLDER_MASK: u16 = 0x35DF;
const PR_IPM_SUBTREE_ENTRYID: u16 = 0x35E0;
const PR_IPM_WASTEBASKET_ENTRYID: u16 = 0x35E3;
const PR_FINDER_ENTRYID: u16 = 0x35E7;
const PR_CONTENT_COUNT: u16 = 0x3602;
const PR_CONTENT_UNREAD: u16 = 0x3603;
const PR_SUBFOLDERS: u16 = 0x360A;
const PR_CONTAINER_CLASS: u16 = 0x3613;
const PR_ATTACH_DATA_BIN: u16 = 0x3701;
const PR_ATTACH_EXTENSION: u16 = 0x3703;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_METHOD: u16 = 0x3705;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_RENDERING_POSITION: u16 = 0x370B;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const PR_DISPLAY_TYPE: u16 = 0x3900;
const PR_SMTP_ADDRESS: u16 = 0x39FE;
const PR_7BIT_DISPLAY_NAME: u16 = 0x39FF;
const PR_GIVEN_NAME: u16 = 0x3A06;
const PR_BUSINESS_PHONE: u16 = 0x3A08;
const PR_HOME_PHONE: u16 = 0x3A09;
const PR_SURNAME: u16 = 0x3A11;
const PR_COMPANY_NAME: u16 = 0x3A16;
const PR_TITLE: u16 = 0x3A17;
const PR_MOBILE_PHONE: u16 = 0x3A1C;
const PR_TRANSMITTABLE_DISPLAY_NAME: u16 = 0x3A20;
const PR_SEND_RICH_INFO: u16 = 0x3A40;
const PR_INTERNET_CPID: u16 = 0x3FDE;
const PR_SENDER_SMTP_ADDRESS: u16 = 0x5D01;
const PR_SENT_REPRESENTING_SMTP_ADDRESS: u16 = 0x5D02;
const PR_SECURE_SUBMIT_FLAGS: u16 = 0x65C6;
const PR_PST_HIDDEN_COUNT: u16 = 0x6635;
const PR_PST_HIDDEN_UNREAD: u16 = 0x6636;
const PR_PST_PASSWORD: u16 = 0x67FF;
const PR_NAMEID_BUCKET_COUNT: u16 = 0x0001;
const PR_NAMEID_STREAM_GUID: u16 = 0x0002;
const PR_NAMEID_STREAM_ENTRY: u16 = 0x0003;
const PR_NAMEID_STREAM_STRING: u16 = 0x0004;
const NAMEID_BUCKETS: u32 = 251;

const T_I32: u16 = 0x0003;
const T_BOOL: u16 = 0x000B;
const T_I64: u16 = 0x0014;
const T_STR: u16 = 0x001F;
const T_TIME: u16 = 0x0040;
const T_BIN: u16 = 0x0102;

const fn tag(id: u16, t: u16) -> u32 {
    ((id as u32) << 16) | t as u32
}

const MSGFLAG_READ: i32 = 0x01;
const MSGFLAG_HASATTACH: i32 = 0x10;

/// GUIDs in their on-disk (little-endian first three fields) byte order.
const PSETID_APPOINTMENT: [u8; 16] = guid(0x0006_2002);
const PSETID_COMMON: [u8; 16] = guid(0x0006_2008);
const PSETID_ADDRESS: [u8; 16] = guid(0x0006_2004);

/// `{xxxxxxxx-0000-0000-C000-000000000046}`, the MAPI property set GUID family.
const fn guid(d1: u32) -> [u8; 16] {
    let b = d1.to_le_bytes();
    [
        b[0], b[1], b[2], b[3], 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
    ]
}

/// Named properties this writer uses: (property set, LID). Each gets the
/// property id 0x8000 + its index here.
const NAMED: [([u8; 16], u32); 12] = [
    (PSETID_APPOINTMENT, 0x820D), // PidLidAppointmentStartWhole
    (PSETID_APPOINTMENT, 0x820E), // PidLidAppointmentEndWhole
    (PSETID_APPOINTMENT, 0x8208), // PidLidLocation
    (PSETID_APPOINTMENT, 0x8215), // PidLidAppointmentSubType (all day)
    (PSETID_APPOINTMENT, 0x8205), // PidLidBusyStatus
    (PSETID_APPOINTMENT, 0x8213), // PidLidAppointmentDuration
    (PSETID_COMMON, 0x8516),      // PidLidCommonStart
    (PSETID_COMMON, 0x8517),      // PidLidCommonEnd
    (PSETID_ADDRESS, 0x8083),     // PidLidEmail1EmailAddress
    (PSETID_ADDRESS, 0x8080),     // PidLidEmail1DisplayName
    (PSETID_ADDRESS, 0x8082),     // PidLidEmail1AddressType
    (PSETID_ADDRESS, 0x8005),     // PidLidFileUnder
];
const GUIDS: [[u8; 16]; 3] = [PSETID_APPOINTMENT, PSETID_COMMON, PSETID_ADDRESS];

const NP_APPT_START: u16 = 0x8000;
const NP_APPT_END: u16 = 0x8001;
const NP_LOCATION: u16 = 0x8002;
const NP_ALL_DAY: u16 = 0x8003;
const NP_BUSY_STATUS: u16 = 0x8004;
const NP_DURATION: u16 = 0x8005;
const NP_COMMON_START: u16 = 0x8006;
const NP_COMMON_END: u16 = 0x8007;
const NP_EMAIL1_ADDRESS: u16 = 0x8008;
const NP_EMAIL1_DISPLAY_NAME: u16 = 0x8009;
const NP_EMAIL1_ADDRTYPE: u16 = 0x800A;
const NP_FILE_UNDER: u16 = 0x800B;

/// A folder, as returned by [`PstWriter::add_folder`] and [`PstWriter::root`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FolderId(u32);

impl FolderId {
    /// The folder's node id in the PST.
    pub fn nid(self) -> u32 {
        self.0
    }
}

/// What a folder holds; sets its container class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FolderKind {
    /// `IPF.Note`
    Mail,
    /// `IPF.Appointment`
    Calendar,
    /// `IPF.Contact`
    Contacts,
}

impl FolderKind {
    fn container_class(self) -> &'static str {
        match self {
            FolderKind::Mail => "IPF.Note",
            FolderKind::Calendar => "IPF.Appointment",
            FolderKind::Contacts => "IPF.Contact",
        }
    }
}

/// To, Cc or Bcc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipientKind {
    To,
    Cc,
    Bcc,
}

/// One recipient of a message.
#[derive(Clone, Debug)]
pub struct Recipient {
    pub name: String,
    pub email: String,
    pub kind: RecipientKind,
}

/// A file attached by value.
#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: String,
    pub mime_type: String,
    pub data: Vec<u8>,
}

/// A mail message.
#[derive(Clone, Debug)]
pub struct Message {
    pub subject: String,
    pub from_name: String,
    pub from_email: String,
    pub recipients: Vec<Recipient>,
    pub sent: Option<DateTime<Utc>>,
    pub received: Option<DateTime<Utc>>,
    pub internet_message_id: Option<String>,
    pub transport_headers: Option<String>,
    pub body_text: Option<String>,
    pub body_html: Option<Vec<u8>>,
    pub attachments: Vec<Attachment>,
    pub read: bool,
    /// `IPM.Note` unless set otherwise.
    pub message_class: String,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            subject: String::new(),
            from_name: String::new(),
            from_email: String::new(),
            recipients: Vec::new(),
            sent: None,
            received: None,
            internet_message_id: None,
            transport_headers: None,
            body_text: None,
            body_html: None,
            attachments: Vec::new(),
            read: true,
            message_class: "IPM.Note".into(),
        }
    }
}

/// A calendar item (`IPM.Appointment`).
#[derive(Clone, Debug, Default)]
pub struct Appointment {
    pub subject: String,
    pub location: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub all_day: bool,
    pub body_text: Option<String>,
    pub organizer_name: Option<String>,
    pub organizer_email: Option<String>,
}

/// A contact (`IPM.Contact`).
#[derive(Clone, Debug, Default)]
pub struct Contact {
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub business_phone: Option<String>,
    pub mobile_phone: Option<String>,
    pub home_phone: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub body_text: Option<String>,
}

/// What [`PstWriter::finish`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Folders created with [`PstWriter::add_folder`].
    pub folders: u64,
    /// Messages, appointments and contacts together.
    pub messages: u64,
    pub appointments: u64,
    pub contacts: u64,
    pub attachments: u64,
    /// Size of the PST file.
    pub file_bytes: u64,
}

struct FolderState {
    nid: u32,
    parent: u32,
    name: String,
    class: Option<&'static str>,
    children: Vec<u32>,
    rows: Vec<ContentsRow>,
    unread: u32,
}

/// What a folder's contents table needs of one item, kept until `finish`:
/// 56 bytes plus the item's class, subject, sender and recipient display
/// strings.
struct ContentsRow {
    nid: u32,
    flags: i32,
    size: i32,
    /// FILETIMEs; 0 when unknown.
    sent: i64,
    received: i64,
    modified: i64,
    /// Class, subject, sender name, To and Cc display strings, NUL-separated.
    text: Box<str>,
}

#[cfg(test)]
pub(crate) const CONTENTS_ROW_SIZE: usize = std::mem::size_of::<ContentsRow>();

impl ContentsRow {
    fn to_row(&self) -> Row {
        let mut t = self.text.split('\0');
        let mut next = || s(t.next().unwrap_or_default());
        let (class, subject, from, to, cc) = (next(), next(), next(), next(), next());
        let mut values = vec![
            cv(PR_IMPORTANCE, Val::I32(1)),
            cv(PR_MESSAGE_CLASS, class),
            cv(PR_SENSITIVITY, Val::I32(0)),
            cv(PR_CONVERSATION_TOPIC, subject.clone()),
            cv(PR_SUBJECT, subject),
            cv(PR_SENT_REPRESENTING_NAME, from),
            cv(PR_MESSAGE_TO_ME, Val::Bool(false)),
            cv(PR_MESSAGE_CC_ME, Val::Bool(false)),
            cv(PR_DISPLAY_CC, cc),
            cv(PR_DISPLAY_TO, to),
            cv(PR_MESSAGE_FLAGS, Val::I32(self.flags)),
            cv(PR_MESSAGE_SIZE, Val::I32(self.size)),
            cv(PR_MESSAGE_STATUS, Val::I32(0)),
            cv(PR_LAST_MODIFICATION_TIME, Val::Time(self.modified)),
        ];
        if self.sent != 0 {
            values.push(cv(PR_CLIENT_SUBMIT_TIME, Val::Time(self.sent)));
        }
        if self.received != 0 {
            values.push(cv(PR_MESSAGE_DELIVERY_TIME, Val::Time(self.received)));
        }
        Row {
            id: self.nid,
            values,
        }
    }
}

/// Streams items into a Unicode PST.
///
/// Each `add_*` call writes the item's blocks to `out` at once; `finish`
/// writes the folder tables, B-trees, allocation maps and header. A writer
/// dropped without `finish` leaves an unusable file. Give it a buffered
/// writer (`BufWriter<File>`): it writes mostly sequentially, seeking back
/// only for allocation-map pages and, at the end, the header.
pub struct PstWriter<W: Write + Seek> {
    ndb: Ndb<W>,
    store_name: String,
    store_uid: [u8; 16],
    folders: Vec<FolderState>,
    by_nid: HashMap<u32, usize>,
    next_folder_index: u32,
    next_message_index: u32,
    stats: Stats,
    now: i64,
}

fn filetime(t: DateTime<Utc>) -> i64 {
    (t.timestamp() + 11_644_473_600) * 10_000_000 + i64::from(t.timestamp_subsec_nanos() / 100)
}

fn s(v: &str) -> Val {
    Val::Str(v.to_string())
}

fn entry_id(uid: &[u8; 16], nid: u32) -> Vec<u8> {
    let mut e = vec![0u8; 4];
    e.extend_from_slice(uid);
    e.extend_from_slice(&nid.to_le_bytes());
    e
}

/// A one-off entry id (MS-OXCDATA 2.2.5.1) for an SMTP address, Unicode strings.
fn one_off_entry_id(name: &str, email: &str) -> Vec<u8> {
    let mut e = vec![0u8; 4];
    e.extend_from_slice(&[
        0x81, 0x2B, 0x1F, 0xA4, 0xBE, 0xA3, 0x10, 0x19, 0x9D, 0x6E, 0x00, 0xDD, 0x01, 0x0F, 0x54,
        0x02,
    ]);
    e.extend_from_slice(&[0x00, 0x00, 0x01, 0x90]);
    for part in [name, "SMTP", email] {
        e.extend_from_slice(&crate::ltp::utf16(part));
        e.extend_from_slice(&[0, 0]);
    }
    e
}

fn search_key(email: &str) -> Vec<u8> {
    let mut k = format!("SMTP:{}", email.to_uppercase()).into_bytes();
    k.push(0);
    k
}

fn hierarchy_layout() -> TcLayout {
    TcLayout::new(&[
        tag(PR_REPL_ITEMID, T_I32),
        tag(PR_REPL_CHANGENUM, T_I64),
        tag(PR_REPL_VERSIONHISTORY, T_BIN),
        tag(PR_REPL_FLAGS, T_I32),
        tag(PR_DISPLAY_NAME, T_STR),
        tag(PR_CONTENT_COUNT, T_I32),
        tag(PR_CONTENT_UNREAD, T_I32),
        tag(PR_SUBFOLDERS, T_BOOL),
        tag(PR_CONTAINER_CLASS, T_STR),
        tag(PR_PST_HIDDEN_COUNT, T_I32),
        tag(PR_PST_HIDDEN_UNREAD, T_I32),
    ])
}

fn contents_layout() -> TcLayout {
    TcLayout::new(&[
        tag(PR_IMPORTANCE, T_I32),
        tag(PR_MESSAGE_CLASS, T_STR),
        tag(PR_SENSITIVITY, T_I32),
        tag(PR_SUBJECT, T_STR),
        tag(PR_CLIENT_SUBMIT_TIME, T_TIME),
        tag(PR_SENT_REPRESENTING_NAME, T_STR),
        tag(PR_MESSAGE_TO_ME, T_BOOL),
        tag(PR_MESSAGE_CC_ME, T_BOOL),
        tag(PR_CONVERSATION_TOPIC, T_STR),
        tag(0x0071, T_BIN), // PidTagConversationIndex
        tag(PR_DISPLAY_CC, T_STR),
        tag(PR_DISPLAY_TO, T_STR),
        tag(PR_MESSAGE_DELIVERY_TIME, T_TIME),
        tag(PR_MESSAGE_FLAGS, T_I32),
        tag(PR_MESSAGE_SIZE, T_I32),
        tag(PR_MESSAGE_STATUS, T_I32),
        tag(PR_REPL_ITEMID, T_I32),
        tag(PR_REPL_CHANGENUM, T_I64),
        tag(PR_REPL_VERSIONHISTORY, T_BIN),
        tag(PR_REPL_FLAGS, T_I32),
        tag(PR_REPL_COPIEDFROM_VERSIONHISTORY, T_BIN),
        tag(PR_REPL_COPIEDFROM_ITEMID, T_BIN),
        tag(PR_LAST_MODIFICATION_TIME, T_TIME),
        tag(PR_SECURE_SUBMIT_FLAGS, T_I32),
    ])
}

fn assoc_layout() -> TcLayout {
    TcLayout::new(&[
        tag(PR_MESSAGE_CLASS, T_STR),
        tag(PR_MESSAGE_FLAGS, T_I32),
        tag(PR_MESSAGE_STATUS, T_I32),
        tag(PR_DISPLAY_NAME, T_STR),
        tag(0x6800, T_STR), // PidTagOfflineAddressBookName
        tag(0x7003, T_I32), // PidTagViewDescriptorFlags
        tag(0x7004, T_BIN), // PidTagViewDescriptorLinkTo
        tag(0x7006, T_BIN), // PidTagViewDescriptorViewFolder
        tag(0x7007, T_STR), // PidTagViewDescriptorName
        tag(0x7009, T_I32), // PidTagViewDescriptorVersion
    ])
}

fn recipient_layout() -> TcLayout {
    TcLayout::new(&[
        tag(PR_RECIPIENT_TYPE, T_I32),
        tag(PR_RESPONSIBILITY, T_BOOL),
        tag(PR_RECORD_KEY, T_BIN),
        tag(PR_OBJECT_TYPE, T_I32),
        tag(PR_ENTRYID, T_BIN),
        tag(PR_DISPLAY_NAME, T_STR),
        tag(PR_ADDRTYPE, T_STR),
        tag(PR_EMAIL_ADDRESS, T_STR),
        tag(PR_SEARCH_KEY, T_BIN),
        tag(PR_DISPLAY_TYPE, T_I32),
        tag(PR_7BIT_DISPLAY_NAME, T_STR),
        tag(PR_SEND_RICH_INFO, T_BOOL),
        tag(PR_SMTP_ADDRESS, T_STR),
        tag(PR_TRANSMITTABLE_DISPLAY_NAME, T_STR),
        tag(PR_ROWID, T_I32),
    ])
}

fn attachment_layout() -> TcLayout {
    TcLayout::new(&[
        tag(PR_ATTACH_SIZE, T_I32),
        tag(PR_ATTACH_FILENAME, T_STR),
        tag(PR_ATTACH_METHOD, T_I32),
        tag(PR_RENDERING_POSITION, T_I32),
    ])
}

/// A value in a contents-table row, by tag.
fn cv(id: u16, v: Val) -> (u32, Val) {
    (tag(id, v.ptype()), v)
}

impl<W: Write + Seek> PstWriter<W> {
    /// Starts a PST whose message store is called `store_display_name`.
    pub fn new(out: W, store_display_name: &str) -> Result<Self, Error> {
        let now_t = Utc::now();
        let mut uid = [0u8; 16];
        // A record key unique enough to tell stores apart: FNV-1a over name and time.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in store_display_name
            .bytes()
            .chain(now_t.timestamp_nanos_opt().unwrap_or(0).to_le_bytes())
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        uid[..8].copy_from_slice(&h.to_le_bytes());
        uid[8..].copy_from_slice(
            &h.rotate_left(29)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .to_le_bytes(),
        );
        let mut w = PstWriter {
            ndb: Ndb::new(out),
            store_name: store_display_name.to_string(),
            store_uid: uid,
            folders: Vec::new(),
            by_nid: HashMap::new(),
            next_folder_index: FIRST_USER_FOLDER_INDEX,
            next_message_index: FIRST_MESSAGE_INDEX,
            stats: Stats::default(),
            now: filetime(now_t),
        };
        w.push_folder(NID_ROOT_FOLDER, NID_ROOT_FOLDER, "", None);
        w.push_folder(
            NID_IPM_SUBTREE,
            NID_ROOT_FOLDER,
            "Top of Personal Folders",
            None,
        );
        w.push_folder(NID_SEARCH_ROOT, NID_ROOT_FOLDER, "Search Root", None);
        w.push_folder(
            NID_SPAM_SEARCH,
            NID_ROOT_FOLDER,
            "SPAM Search Folder 2",
            None,
        );
        w.push_folder(
            NID_DELETED_ITEMS,
            NID_IPM_SUBTREE,
            "Deleted Items",
            Some("IPF.Note"),
        );
        Ok(w)
    }

    fn push_folder(&mut self, nid: u32, parent: u32, name: &str, class: Option<&'static str>) {
        let idx = self.folders.len();
        self.folders.push(FolderState {
            nid,
            parent,
            name: name.to_string(),
            class,
            children: Vec::new(),
            rows: Vec::new(),
            unread: 0,
        });
        self.by_nid.insert(nid, idx);
        if let Some(&p) = self.by_nid.get(&parent).filter(|_| parent != nid) {
            self.folders[p].children.push(nid);
        }
    }

    /// The top of the personal folders (IPM subtree), where user folders go.
    pub fn root(&self) -> FolderId {
        FolderId(NID_IPM_SUBTREE)
    }

    /// The predefined "Deleted Items" folder.
    pub fn deleted_items(&self) -> FolderId {
        FolderId(NID_DELETED_ITEMS)
    }

    /// Creates a folder under `parent`.
    pub fn add_folder(
        &mut self,
        parent: FolderId,
        name: &str,
        kind: FolderKind,
    ) -> Result<FolderId, Error> {
        self.folder_index(parent)?;
        if self.next_folder_index >= 1 << 27 {
            return Err(Error::TooLarge("too many folders"));
        }
        let nid = (self.next_folder_index << 5) | NID_TYPE_NORMAL_FOLDER;
        self.next_folder_index += 1;
        self.push_folder(nid, parent.0, name, Some(kind.container_class()));
        self.stats.folders += 1;
        Ok(FolderId(nid))
    }

    fn folder_index(&self, f: FolderId) -> Result<usize, Error> {
        match self.by_nid.get(&f.0) {
            Some(&i) if f.0 != NID_ROOT_FOLDER => Ok(i),
            _ => Err(Error::UnknownFolder(f.0)),
        }
    }

    fn next_message_nid(&mut self) -> Result<u32, Error> {
        if self.next_message_index >= 1 << 27 {
            return Err(Error::TooLarge("too many messages"));
        }
        let nid = (self.next_message_index << 5) | NID_TYPE_NORMAL_MESSAGE;
        self.next_message_index += 1;
        Ok(nid)
    }

    /// Adds a mail message to `folder`.
    pub fn add_message(&mut self, folder: FolderId, m: &Message) -> Result<(), Error> {
        let fi = self.folder_index(folder)?;
        let class = if m.message_class.is_empty() {
            "IPM.Note"
        } else {
            m.message_class.as_str()
        };
        let join = |k: RecipientKind| {
            m.recipients
                .iter()
                .filter(|r| r.kind == k)
                .map(|r| {
                    if r.name.is_empty() {
                        r.email.as_str()
                    } else {
                        r.name.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let (to, cc, bcc) = (
            join(RecipientKind::To),
            join(RecipientKind::Cc),
            join(RecipientKind::Bcc),
        );
        let mut props: Vec<(u16, Val)> = vec![
            (PR_SENDER_NAME, s(&m.from_name)),
            (PR_SENDER_EMAIL, s(&m.from_email)),
            (PR_SENDER_ADDRTYPE, s("SMTP")),
            (PR_SENDER_SMTP_ADDRESS, s(&m.from_email)),
            (PR_SENT_REPRESENTING_NAME, s(&m.from_name)),
            (PR_SENT_REPRESENTING_EMAIL, s(&m.from_email)),
            (PR_SENT_REPRESENTING_ADDRTYPE, s("SMTP")),
            (PR_SENT_REPRESENTING_SMTP_ADDRESS, s(&m.from_email)),
            (PR_DISPLAY_TO, s(&to)),
            (PR_DISPLAY_CC, s(&cc)),
            (PR_DISPLAY_BCC, s(&bcc)),
            (PR_INTERNET_CPID, Val::I32(65001)),
        ];
        if let Some(v) = &m.internet_message_id {
            props.push((PR_INTERNET_MESSAGE_ID, s(v)));
        }
        if let Some(v) = &m.transport_headers {
            props.push((PR_TRANSPORT_HEADERS, s(v)));
        }
        if let Some(v) = &m.body_text {
            props.push((PR_BODY, s(v)));
        }
        if let Some(v) = &m.body_html {
            props.push((PR_HTML, Val::Bin(v.clone())));
        }
        let recipients: Vec<Row> = m
            .recipients
            .iter()
            .enumerate()
            .map(|(i, r)| Row {
                id: i as u32,
                values: vec![
                    cv(
                        PR_RECIPIENT_TYPE,
                        Val::I32(match r.kind {
                            RecipientKind::To => 1,
                            RecipientKind::Cc => 2,
                            RecipientKind::Bcc => 3,
                        }),
                    ),
                    cv(PR_RESPONSIBILITY, Val::Bool(false)),
                    cv(PR_RECORD_KEY, Val::Bin(search_key(&r.email))),
                    cv(PR_OBJECT_TYPE, Val::I32(6)),
                    cv(PR_ENTRYID, Val::Bin(one_off_entry_id(&r.name, &r.email))),
                    cv(
                        PR_DISPLAY_NAME,
                        s(if r.name.is_empty() { &r.email } else { &r.name }),
                    ),
                    cv(PR_ADDRTYPE, s("SMTP")),
                    cv(PR_EMAIL_ADDRESS, s(&r.email)),
                    cv(PR_SEARCH_KEY, Val::Bin(search_key(&r.email))),
                    cv(PR_DISPLAY_TYPE, Val::I32(0)),
                    cv(PR_7BIT_DISPLAY_NAME, s(&r.name)),
                    cv(PR_SEND_RICH_INFO, Val::Bool(false)),
                    cv(PR_SMTP_ADDRESS, s(&r.email)),
                    cv(PR_TRANSMITTABLE_DISPLAY_NAME, s(&r.name)),
                    cv(PR_ROWID, Val::I32(i as i32)),
                ],
            })
            .collect();
        let item = Item {
            folder_index: fi,
            class,
            subject: &m.subject,
            from_name: &m.from_name,
            to: &to,
            cc: &cc,
            sent: m.sent.map(filetime),
            received: m.received.or(m.sent).map(filetime),
            read: m.read,
            props,
            recipients,
            attachments: &m.attachments,
        };
        self.write_item(item)
    }

    /// Adds a calendar item to `folder`.
    pub fn add_appointment(&mut self, folder: FolderId, a: &Appointment) -> Result<(), Error> {
        let fi = self.folder_index(folder)?;
        let start = filetime(a.start);
        let end = filetime(a.end);
        let minutes = (a.end - a.start)
            .num_minutes()
            .clamp(0, i64::from(i32::MAX)) as i32;
        let mut props = vec![
            (NP_APPT_START, Val::Time(start)),
            (NP_APPT_END, Val::Time(end)),
            (NP_COMMON_START, Val::Time(start)),
            (NP_COMMON_END, Val::Time(end)),
            (PR_START_DATE, Val::Time(start)),
            (PR_END_DATE, Val::Time(end)),
            (NP_ALL_DAY, Val::Bool(a.all_day)),
            (NP_BUSY_STATUS, Val::I32(if a.all_day { 0 } else { 2 })),
            (NP_DURATION, Val::I32(minutes)),
            (PR_INTERNET_CPID, Val::I32(65001)),
        ];
        if let Some(l) = &a.location {
            props.push((NP_LOCATION, s(l)));
        }
        if let Some(b) = &a.body_text {
            props.push((PR_BODY, s(b)));
        }
        let from = a.organizer_name.clone().unwrap_or_default();
        if let Some(e) = &a.organizer_email {
            props.push((PR_SENDER_EMAIL, s(e)));
            props.push((PR_SENDER_ADDRTYPE, s("SMTP")));
            props.push((PR_SENT_REPRESENTING_EMAIL, s(e)));
            props.push((PR_SENT_REPRESENTING_ADDRTYPE, s("SMTP")));
        }
        if !from.is_empty() {
            props.push((PR_SENDER_NAME, s(&from)));
        }
        self.stats.appointments += 1;
        self.write_item(Item {
            folder_index: fi,
            class: "IPM.Appointment",
            subject: &a.subject,
            from_name: &from,
            to: "",
            cc: "",
            sent: None,
            received: None,
            read: true,
            props,
            recipients: Vec::new(),
            attachments: &[],
        })
    }

    /// Adds a contact to `folder`.
    pub fn add_contact(&mut self, folder: FolderId, c: &Contact) -> Result<(), Error> {
        let fi = self.folder_index(folder)?;
        let mut props = vec![
            (PR_DISPLAY_NAME, s(&c.display_name)),
            (NP_FILE_UNDER, s(&c.display_name)),
            (PR_INTERNET_CPID, Val::I32(65001)),
        ];
        let opt = [
            (PR_GIVEN_NAME, &c.given_name),
            (PR_SURNAME, &c.surname),
            (PR_BUSINESS_PHONE, &c.business_phone),
            (PR_MOBILE_PHONE, &c.mobile_phone),
            (PR_HOME_PHONE, &c.home_phone),
            (PR_COMPANY_NAME, &c.company),
            (PR_TITLE, &c.job_title),
            (PR_BODY, &c.body_text),
        ];
        for (id, v) in opt {
            if let Some(v) = v {
                props.push((id, s(v)));
            }
        }
        if let Some(e) = &c.email {
            props.push((NP_EMAIL1_ADDRESS, s(e)));
            props.push((NP_EMAIL1_ADDRTYPE, s("SMTP")));
            props.push((
                NP_EMAIL1_DISPLAY_NAME,
                s(&format!("{} ({})", c.display_name, e)),
            ));
        }
        self.stats.contacts += 1;
        self.write_item(Item {
            folder_index: fi,
            class: "IPM.Contact",
            subject: &c.display_name,
            from_name: "",
            to: "",
            cc: "",
            sent: None,
            received: None,
            read: true,
            props,
            recipients: Vec::new(),
            attachments: &[],
        })
    }

    /// Writes one message-like item (PC, recipient table, attachments).
    fn write_item(&mut self, it: Item<'_>) -> Result<(), Error> {
        let nid = self.next_message_nid()?;
        let now = self.now;
        let mut subs = Subnodes::default();
        let mut size: u64 = 0;

        // Recipients.
        // Tables and attachments are subnodes of the message; values they keep
        // in subnodes of their own go in nested subnode trees.
        let mut rsubs = subs.nested();
        let rt = write_tc(
            &mut self.ndb,
            &recipient_layout(),
            &it.recipients,
            &mut rsubs,
        )?;
        subs.continue_after(&rsubs);
        let rt_sub = self.ndb.write_subnodes(rsubs.entries)?;
        subs.push(NID_RECIPIENT_TABLE, rt, rt_sub);

        // Attachments: each one a PC in a subnode, plus the attachment table.
        if !it.attachments.is_empty() {
            let mut rows = Vec::with_capacity(it.attachments.len());
            for (i, a) in it.attachments.iter().enumerate() {
                let anid = ((0x400 + i as u32) << 5) | NID_TYPE_ATTACHMENT;
                let ext = a
                    .filename
                    .rfind('.')
                    .map(|p| a.filename[p..].to_string())
                    .unwrap_or_default();
                let asize = i32::try_from(a.data.len()).unwrap_or(i32::MAX);
                let mut props = vec![
                    (PR_ATTACH_METHOD, Val::I32(1)),
                    (PR_ATTACH_SIZE, Val::I32(asize)),
                    (PR_ATTACH_NUM, Val::I32(i as i32)),
                    (PR_ATTACH_FILENAME, s(&a.filename)),
                    (PR_ATTACH_LONG_FILENAME, s(&a.filename)),
                    (PR_DISPLAY_NAME, s(&a.filename)),
                    (PR_ATTACH_EXTENSION, s(&ext)),
                    (PR_ATTACH_MIME_TAG, s(&a.mime_type)),
                    (PR_RENDERING_POSITION, Val::I32(-1)),
                    (PR_CREATION_TIME, Val::Time(now)),
                    (PR_LAST_MODIFICATION_TIME, Val::Time(now)),
                ];
                let mut asubs = subs.nested();
                if a.data.len() <= crate::ltp::MAX_HEAP_ALLOC {
                    props.push((PR_ATTACH_DATA_BIN, Val::Bin(a.data.clone())));
                } else if !a.data.is_empty() {
                    // Straight from the caller's buffer to the file, no copy.
                    let data_bid = self.ndb.write_stream(&a.data)?;
                    let data_nid = asubs.next_internal();
                    asubs.push(data_nid, data_bid, 0);
                    props.push((PR_ATTACH_DATA_BIN, Val::BinInSubnode(data_nid)));
                }
                let bid = write_pc(&mut self.ndb, &mut props, &mut asubs)?;
                drop(props);
                subs.continue_after(&asubs);
                let bid_sub = self.ndb.write_subnodes(asubs.entries)?;
                subs.push(anid, bid, bid_sub);
                size += a.data.len() as u64;
                rows.push(Row {
                    id: anid,
                    values: vec![
                        cv(PR_ATTACH_SIZE, Val::I32(asize)),
                        cv(PR_ATTACH_FILENAME, s(&a.filename)),
                        cv(PR_ATTACH_METHOD, Val::I32(1)),
                        cv(PR_RENDERING_POSITION, Val::I32(-1)),
                    ],
                });
                self.stats.attachments += 1;
            }
            let mut tsubs = subs.nested();
            let at = write_tc(&mut self.ndb, &attachment_layout(), &rows, &mut tsubs)?;
            subs.continue_after(&tsubs);
            let at_sub = self.ndb.write_subnodes(tsubs.entries)?;
            subs.push(NID_ATTACHMENT_TABLE, at, at_sub);
        }

        let mut flags = 0;
        if it.read {
            flags |= MSGFLAG_READ;
        }
        if !it.attachments.is_empty() {
            flags |= MSGFLAG_HASATTACH;
        }
        let mut props = it.props;
        for (_, v) in &props {
            size += match v {
                Val::Str(x) => x.len() as u64 * 2,
                Val::Bin(x) => x.len() as u64,
                _ => 8,
            };
        }
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        let mut key = [0u8; 16];
        key[..4].copy_from_slice(&nid.to_le_bytes());
        key[4..].copy_from_slice(&self.store_uid[4..]);
        let modified = it.received.or(it.sent).unwrap_or(now);
        props.extend([
            (PR_MESSAGE_CLASS, s(it.class)),
            (PR_SUBJECT, s(it.subject)),
            (PR_NORMALIZED_SUBJECT, s(it.subject)),
            (PR_CONVERSATION_TOPIC, s(it.subject)),
            (PR_IMPORTANCE, Val::I32(1)),
            (PR_PRIORITY, Val::I32(0)),
            (PR_SENSITIVITY, Val::I32(0)),
            (PR_MESSAGE_FLAGS, Val::I32(flags)),
            (PR_MESSAGE_SIZE, Val::I32(size)),
            (PR_MESSAGE_STATUS, Val::I32(0)),
            (PR_HASATTACH, Val::Bool(!it.attachments.is_empty())),
            (PR_CREATION_TIME, Val::Time(modified)),
            (PR_LAST_MODIFICATION_TIME, Val::Time(modified)),
            (PR_SEARCH_KEY, Val::Bin(key.to_vec())),
        ]);
        if let Some(t) = it.sent {
            props.push((PR_CLIENT_SUBMIT_TIME, Val::Time(t)));
        }
        if let Some(t) = it.received {
            props.push((PR_MESSAGE_DELIVERY_TIME, Val::Time(t)));
        }
        // Several callers may set the same property; the last one wins.
        props.reverse();
        let mut seen = std::collections::HashSet::new();
        props.retain(|(id, _)| seen.insert(*id));
        let bid = write_pc(&mut self.ndb, &mut props, &mut subs)?;
        drop(props);
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        let folder = &mut self.folders[it.folder_index];
        self.ndb.add_node(nid, folder.nid, bid, bid_sub);

        folder.rows.push(ContentsRow {
            nid,
            flags,
            size,
            sent: it.sent.unwrap_or(0),
            received: it.received.unwrap_or(0),
            modified,
            text: [it.class, it.subject, it.from_name, it.to, it.cc]
                .map(|t| t.replace('\0', ""))
                .join("\0")
                .into_boxed_str(),
        });
        if !it.read {
            folder.unread += 1;
        }
        self.stats.messages += 1;
        Ok(())
    }

    fn write_empty_tc(&mut self, nid: u32, layout: &TcLayout) -> Result<(), Error> {
        let mut subs = Subnodes::default();
        let bid = write_tc(&mut self.ndb, layout, &[], &mut subs)?;
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb.add_node(nid, 0, bid, bid_sub);
        Ok(())
    }

    fn write_folder(&mut self, idx: usize) -> Result<(), Error> {
        let (nid, parent, name, class, unread, count) = {
            let f = &self.folders[idx];
            (
                f.nid,
                f.parent,
                f.name.clone(),
                f.class,
                f.unread,
                f.rows.len(),
            )
        };
        let children = std::mem::take(&mut self.folders[idx].children);
        let rows = std::mem::take(&mut self.folders[idx].rows);
        let mut props = vec![
            (PR_DISPLAY_NAME, s(&name)),
            (PR_CONTENT_COUNT, Val::I32(count as i32)),
            (PR_CONTENT_UNREAD, Val::I32(unread as i32)),
            (PR_SUBFOLDERS, Val::Bool(!children.is_empty())),
        ];
        if let Some(c) = class {
            props.push((PR_CONTAINER_CLASS, s(c)));
        }
        let mut subs = Subnodes::default();
        let bid = write_pc(&mut self.ndb, &mut props, &mut subs)?;
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb.add_node(nid, parent, bid, bid_sub);

        // Hierarchy table: one row per child folder.
        let hrows: Vec<Row> = children
            .iter()
            .map(|c| {
                let f = &self.folders[self.by_nid[c]];
                let mut values = vec![
                    cv(PR_DISPLAY_NAME, s(&f.name)),
                    cv(PR_CONTENT_COUNT, Val::I32(f.rows.len() as i32)),
                    cv(PR_CONTENT_UNREAD, Val::I32(f.unread as i32)),
                    cv(PR_SUBFOLDERS, Val::Bool(!f.children.is_empty())),
                ];
                if let Some(c) = f.class {
                    values.push(cv(PR_CONTAINER_CLASS, s(c)));
                }
                Row { id: *c, values }
            })
            .collect();
        let index = nid >> 5;
        let mut subs = Subnodes::default();
        let bid = write_tc(&mut self.ndb, &hierarchy_layout(), &hrows, &mut subs)?;
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb
            .add_node((index << 5) | NID_TYPE_HIERARCHY_TABLE, 0, bid, bid_sub);

        let mut subs = Subnodes::default();
        let rows: Vec<Row> = rows.iter().map(ContentsRow::to_row).collect();
        let bid = write_tc(&mut self.ndb, &contents_layout(), &rows, &mut subs)?;
        drop(rows);
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb
            .add_node((index << 5) | NID_TYPE_CONTENTS_TABLE, 0, bid, bid_sub);

        self.write_empty_tc(
            (index << 5) | NID_TYPE_ASSOC_CONTENTS_TABLE,
            &assoc_layout(),
        )?;
        // Keep the child list (needed while writing the children themselves).
        self.folders[idx].children = children;
        Ok(())
    }

    fn write_store(&mut self) -> Result<(), Error> {
        let uid = self.store_uid;
        let mut props = vec![
            (PR_RECORD_KEY, Val::Bin(uid.to_vec())),
            (PR_DISPLAY_NAME, s(&self.store_name)),
            (
                PR_IPM_SUBTREE_ENTRYID,
                Val::Bin(entry_id(&uid, NID_IPM_SUBTREE)),
            ),
            (
                PR_IPM_WASTEBASKET_ENTRYID,
                Val::Bin(entry_id(&uid, NID_DELETED_ITEMS)),
            ),
            (PR_FINDER_ENTRYID, Val::Bin(entry_id(&uid, NID_SEARCH_ROOT))),
            // FOLDER_IPM_SUBTREE_VALID | FOLDER_IPM_WASTEBASKET_VALID | FOLDER_FINDER_VALID
            (PR_VALID_FOLDER_MASK, Val::I32(0x89)),
            // STORE_UNICODE_OK | STORE_HTML_OK ... (a plain, unencrypted local store)
            (PR_STORE_SUPPORT_MASK, Val::I32(0x0005_0000)),
            (PR_PST_PASSWORD, Val::I32(0)),
        ];
        let mut subs = Subnodes::default();
        let bid = write_pc(&mut self.ndb, &mut props, &mut subs)?;
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb.add_node(NID_MESSAGE_STORE, 0, bid, bid_sub);
        Ok(())
    }

    fn write_name_map(&mut self) -> Result<(), Error> {
        let mut guids = Vec::new();
        for g in GUIDS {
            guids.extend_from_slice(&g);
        }
        let mut entries = Vec::new();
        let mut buckets: Vec<Vec<u8>> = vec![Vec::new(); NAMEID_BUCKETS as usize];
        for (i, (g, lid)) in NAMED.iter().enumerate() {
            let wguid = 3 + GUIDS.iter().position(|x| x == g).unwrap_or(0) as u16;
            let mut e = Vec::with_capacity(8);
            e.extend_from_slice(&lid.to_le_bytes());
            e.extend_from_slice(&(wguid << 1).to_le_bytes()); // N = 0: numeric name
            e.extend_from_slice(&(i as u16).to_le_bytes());
            let bucket = (lid ^ u32::from(wguid << 1)) % NAMEID_BUCKETS;
            buckets[bucket as usize].extend_from_slice(&e);
            entries.extend_from_slice(&e);
        }
        // One string-named property, PS_PUBLIC_STRINGS "Keywords" (the item
        // categories), so that the string stream is not empty: libpff insists on it.
        let mut strings = Vec::new();
        let name = crate::ltp::utf16("Keywords");
        strings.extend_from_slice(&(name.len() as u32).to_le_bytes());
        strings.extend_from_slice(&name);
        while strings.len() % 4 != 0 {
            strings.push(0);
        }
        let wguid: u16 = 2; // PS_PUBLIC_STRINGS
        let index = NAMED.len() as u16;
        let mut e = Vec::with_capacity(8);
        e.extend_from_slice(&0u32.to_le_bytes()); // offset into the string stream
        e.extend_from_slice(&((wguid << 1) | 1).to_le_bytes());
        e.extend_from_slice(&index.to_le_bytes());
        entries.extend_from_slice(&e);
        let hash = crate::crc::crc(0, &name);
        let mut hashed = Vec::with_capacity(8);
        hashed.extend_from_slice(&hash.to_le_bytes());
        hashed.extend_from_slice(&e[4..]);
        let bucket = (hash ^ u32::from((wguid << 1) | 1)) % NAMEID_BUCKETS;
        buckets[bucket as usize].extend_from_slice(&hashed);

        let mut props = vec![
            (PR_NAMEID_BUCKET_COUNT, Val::I32(NAMEID_BUCKETS as i32)),
            (PR_NAMEID_STREAM_GUID, Val::Bin(guids)),
            (PR_NAMEID_STREAM_ENTRY, Val::Bin(entries)),
            (PR_NAMEID_STREAM_STRING, Val::Bin(strings)),
        ];
        for (i, b) in buckets.into_iter().enumerate() {
            if !b.is_empty() {
                props.push((0x1000 + i as u16, Val::Bin(b)));
            }
        }
        let mut subs = Subnodes::default();
        let bid = write_pc(&mut self.ndb, &mut props, &mut subs)?;
        let bid_sub = self.ndb.write_subnodes(subs.entries)?;
        self.ndb.add_node(NID_NAME_TO_ID_MAP, 0, bid, bid_sub);
        Ok(())
    }

    /// Writes the folders, tables, internal nodes, B-trees and header.
    pub fn finish(mut self) -> Result<Stats, Error> {
        self.write_store()?;
        self.write_name_map()?;
        for nid in [NID_NORMAL_FOLDER_TEMPLATE, NID_SEARCH_FOLDER_TEMPLATE] {
            let mut subs = Subnodes::default();
            let bid = write_pc(&mut self.ndb, &mut [], &mut subs)?;
            self.ndb.add_node(nid, 0, bid, 0);
        }
        for nid in NID_EMPTY_QUEUES {
            let bid = self.ndb.write_block(&[], false)?;
            self.ndb.add_node(nid, 0, bid, 0);
        }
        self.write_empty_tc(NID_HIERARCHY_TABLE_TEMPLATE, &hierarchy_layout())?;
        self.write_empty_tc(NID_CONTENTS_TABLE_TEMPLATE, &contents_layout())?;
        self.write_empty_tc(NID_ASSOC_CONTENTS_TABLE_TEMPLATE, &assoc_layout())?;
        self.write_empty_tc(NID_SEARCH_CONTENTS_TABLE_TEMPLATE, &contents_layout())?;
        self.write_empty_tc(NID_ATTACHMENT_TABLE, &attachment_layout())?;
        self.write_empty_tc(NID_RECIPIENT_TABLE, &recipient_layout())?;
        for idx in 0..self.folders.len() {
            self.write_folder(idx)?;
        }
        let mut rgnid = [0x400u32; 32];
        rgnid[NID_TYPE_NORMAL_FOLDER as usize] = self.next_folder_index;
        rgnid[0x03] = 0x4000;
        rgnid[NID_TYPE_NORMAL_MESSAGE as usize] = self.next_message_index;
        rgnid[0x08] = 0x8000;
        let (_, eof) = self.ndb.finish(rgnid)?;
        self.stats.file_bytes = eof;
        Ok(self.stats)
    }
}

struct Item<'a> {
    folder_index: usize,
    class: &'a str,
    subject: &'a str,
    from_name: &'a str,
    to: &'a str,
    cc: &'a str,
    sent: Option<i64>,
    received: Option<i64>,
    read: bool,
    props: Vec<(u16, Val)>,
    recipients: Vec<Row>,
    attachments: &'a [Attachment],
}
