//! A small FastTransfer stream writer for the tests, written from MS-OXCFXICS 2.2.4 (not
//! from the crate's parser).

pub const START_MESSAGE: u32 = 0x400C_0003;
pub const START_FAI_MSG: u32 = 0x4010_0003;
pub const END_MESSAGE: u32 = 0x400D_0003;
pub const START_EMBED: u32 = 0x4001_0003;
pub const END_EMBED: u32 = 0x4002_0003;
pub const START_RECIP: u32 = 0x4003_0003;
pub const END_TO_RECIP: u32 = 0x4004_0003;
pub const NEW_ATTACH: u32 = 0x4000_0003;
pub const END_ATTACH: u32 = 0x400E_0003;

#[derive(Default, Clone)]
pub struct W(pub Vec<u8>);

impl W {
    pub fn new() -> W {
        W(Vec::new())
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub fn marker(&mut self, m: u32) -> &mut Self {
        self.u32(m)
    }
    pub fn counted(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32).bytes(b)
    }
    pub fn int32(&mut self, tag: u32, v: i32) -> &mut Self {
        self.u32(tag).bytes(&v.to_le_bytes())
    }
    pub fn boolean(&mut self, tag: u32, v: bool) -> &mut Self {
        self.u32(tag).u16(u16::from(v))
    }
    pub fn time(&mut self, tag: u32, ft: u64) -> &mut Self {
        self.u32(tag).u64(ft)
    }
    pub fn unicode(&mut self, tag: u32, s: &str) -> &mut Self {
        self.u32(tag).counted(&utf16z(s))
    }
    pub fn string8(&mut self, tag: u32, b: &[u8]) -> &mut Self {
        let mut v = b.to_vec();
        v.push(0);
        self.u32(tag).counted(&v)
    }
    pub fn binary(&mut self, tag: u32, b: &[u8]) -> &mut Self {
        self.u32(tag).counted(b)
    }
    /// A named property's tag and identity; the value follows.
    pub fn named_id(&mut self, tag: u32, guid: [u8; 16], dispid: u32) -> &mut Self {
        self.u32(tag).bytes(&guid).bytes(&[0x00]).u32(dispid)
    }
    pub fn named_name(&mut self, tag: u32, guid: [u8; 16], name: &str) -> &mut Self {
        self.u32(tag)
            .bytes(&guid)
            .bytes(&[0x01])
            .bytes(&utf16z(name))
    }
    pub fn mv_unicode(&mut self, values: &[&str]) -> &mut Self {
        self.u32(values.len() as u32);
        for v in values {
            self.counted(&utf16z(v));
        }
        self
    }
    pub fn done(&self) -> Vec<u8> {
        self.0.clone()
    }
}

pub fn utf16z(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// {00020329-0000-0000-C000-000000000046} in its serialized form (MS-OXCDATA 2.5.1).
pub const PS_PUBLIC_STRINGS: [u8; 16] = [
    0x29, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
/// {00062002-0000-0000-C000-000000000046}.
pub const PSETID_APPOINTMENT: [u8; 16] = [
    0x02, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
/// {00062004-0000-0000-C000-000000000046}.
pub const PSETID_ADDRESS: [u8; 16] = [
    0x04, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];
/// {00062003-0000-0000-C000-000000000046}.
pub const PSETID_TASK: [u8; 16] = [
    0x03, 0x20, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// FILETIME of a UTC date.
pub fn filetime(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> u64 {
    use chrono::TimeZone;
    let t = chrono::Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    (t.timestamp() as u64 + 11_644_473_600) * 10_000_000
}

/// A representative mail: subject, sender, To/Cc/Bcc, text and HTML bodies, categories, an
/// attachment and an embedded message.
pub fn sample_mail(subject: &str) -> Vec<u8> {
    let mut w = W::new();
    w.unicode(0x001A_001F, "IPM.Note")
        .unicode(0x0037_001F, subject)
        .unicode(0x0042_001F, "Zoë Ålund")
        .unicode(0x5D02_001F, "zoe@example.com")
        .unicode(0x0C1A_001F, "Zoë Ålund")
        .unicode(0x5D01_001F, "zoe@example.com")
        .unicode(0x1000_001F, "Hello Bob,\r\nthe numbers are attached.\r\n")
        .binary(0x1013_0102, b"<html><body><p>Hello Bob,</p></body></html>")
        .int32(0x3FDE_0003, 65001)
        .time(0x0039_0040, filetime(2024, 3, 1, 12, 30, 0))
        .time(0x0E06_0040, filetime(2024, 3, 1, 12, 30, 5))
        .unicode(0x1035_001F, "<abc123@example.com>")
        .int32(0x0017_0003, 2)
        .int32(0x0E07_0003, 1)
        .named_name(0x8001_101F, PS_PUBLIC_STRINGS, "Keywords")
        .mv_unicode(&["Red", "Projekt Ü"]);
    w.marker(START_RECIP)
        .int32(0x0C15_0003, 1)
        .unicode(0x3001_001F, "Bob Builder")
        .unicode(0x39FE_001F, "bob@example.com")
        .marker(END_TO_RECIP);
    w.marker(START_RECIP)
        .int32(0x0C15_0003, 2)
        .unicode(0x3001_001F, "Carol")
        .unicode(0x3002_001F, "SMTP")
        .unicode(0x3003_001F, "carol@example.com")
        .marker(END_TO_RECIP);
    w.marker(START_RECIP)
        .int32(0x0C15_0003, 3)
        .unicode(0x3001_001F, "Dave")
        .unicode(0x39FE_001F, "dave@example.com")
        .marker(END_TO_RECIP);
    w.marker(NEW_ATTACH)
        .int32(0x0E21_0003, 0)
        .int32(0x3705_0003, 1)
        .unicode(0x3707_001F, "zahlen €.csv")
        .unicode(0x370E_001F, "text/csv")
        .binary(0x3701_0102, b"a,b\r\n1,2\r\n")
        .marker(END_ATTACH);
    w.marker(NEW_ATTACH)
        .int32(0x0E21_0003, 1)
        .int32(0x3705_0003, 5)
        .unicode(0x3001_001F, "Forwarded note")
        .marker(START_EMBED)
        .unicode(0x001A_001F, "IPM.Note")
        .unicode(0x0037_001F, "Inner subject")
        .unicode(0x0042_001F, "Eve")
        .unicode(0x5D02_001F, "eve@example.com")
        .unicode(0x1000_001F, "inner body")
        .marker(START_RECIP)
        .int32(0x0C15_0003, 1)
        .unicode(0x3001_001F, "Zoë")
        .unicode(0x39FE_001F, "zoe@example.com")
        .marker(END_TO_RECIP)
        .marker(END_EMBED)
        .marker(END_ATTACH);
    w.done()
}
