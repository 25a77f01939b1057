//! FastTransfer streams ([MS-OXCFXICS] section 2.2.4), the opaque `data` of the mailbox
//! export/import API: an encoder and a decoder of the `messageContent` production, written
//! from the specification.
//!
//! ```text
//! messageContent    = propList messageChildren
//! messageChildren   = [ PidTagFXDelProp ] *recipient [ PidTagFXDelProp ] *attachment
//! recipient         = StartRecip propList EndToRecip
//! attachment        = NewAttach PidTagAttachNumber attachmentContent EndAttach
//! attachmentContent = propList [ embeddedMessage ]
//! propValue         = propType propInfo ( fixedSizeValue / length varSizeValue
//!                                         / length *( fixedSizeValue / length varSizeValue ) )
//! propInfo          = propId [ namedPropInfo ]        ; named when propId >= 0x8000
//! namedPropInfo     = propertySet ( %x00 dispid / %x01 name )   ; name: UTF-16LE, 0x0000 ended
//! ```
//!
//! Every number is little-endian; a property tag is written as its type (2 bytes) then its id
//! (2 bytes), i.e. the 32-bit tag little-endian; markers are bare 32-bit tags.
//! `length` is 4 bytes: the byte count of a variable-size value, the value count of a
//! multi-valued one. Unicode strings carry their terminating 0x0000 (counted in the length).

/// Markers ([MS-OXCFXICS] 2.2.4.1.4) and meta-properties (2.2.4.1.5).
pub mod marker {
    pub const START_TOP_FLD: u32 = 0x4009_0003;
    pub const START_SUB_FLD: u32 = 0x400A_0003;
    pub const END_FOLDER: u32 = 0x400B_0003;
    pub const START_MESSAGE: u32 = 0x400C_0003;
    pub const END_MESSAGE: u32 = 0x400D_0003;
    pub const START_FAI_MSG: u32 = 0x4010_0003;
    pub const START_EMBED: u32 = 0x4001_0003;
    pub const END_EMBED: u32 = 0x4002_0003;
    pub const START_RECIP: u32 = 0x4003_0003;
    pub const END_TO_RECIP: u32 = 0x4004_0003;
    pub const NEW_ATTACH: u32 = 0x4000_0003;
    pub const END_ATTACH: u32 = 0x400E_0003;
    /// Meta-property (has a 4-byte value): PidTagFXDelProp.
    pub const FX_DEL_PROP: u32 = 0x4016_0003;

    pub const ALL: &[u32] = &[
        START_TOP_FLD,
        START_SUB_FLD,
        END_FOLDER,
        START_MESSAGE,
        END_MESSAGE,
        START_FAI_MSG,
        START_EMBED,
        END_EMBED,
        START_RECIP,
        END_TO_RECIP,
        NEW_ATTACH,
        END_ATTACH,
    ];
}

/// Property types ([MS-OXCDATA] 2.11.1).
pub mod ptype {
    pub const I16: u16 = 0x0002;
    pub const I32: u16 = 0x0003;
    pub const F32: u16 = 0x0004;
    pub const F64: u16 = 0x0005;
    pub const CURRENCY: u16 = 0x0006;
    pub const APPTIME: u16 = 0x0007;
    pub const ERROR: u16 = 0x000A;
    pub const BOOLEAN: u16 = 0x000B;
    pub const I64: u16 = 0x0014;
    pub const STRING8: u16 = 0x001E;
    pub const UNICODE: u16 = 0x001F;
    pub const TIME: u16 = 0x0040;
    pub const GUID: u16 = 0x0048;
    pub const SERVER_ID: u16 = 0x00FB;
    pub const OBJECT: u16 = 0x000D;
    pub const BINARY: u16 = 0x0102;
    pub const MV: u16 = 0x1000;
}

/// Property tags used by the simulator ([MS-OXPROPS]).
pub mod tag {
    pub const MESSAGE_CLASS: u32 = 0x001A_001F;
    pub const SUBJECT: u32 = 0x0037_001F;
    pub const IMPORTANCE: u32 = 0x0017_0003;
    pub const CLIENT_SUBMIT_TIME: u32 = 0x0039_0040;
    pub const SENT_REPRESENTING_NAME: u32 = 0x0042_001F;
    pub const SENT_REPRESENTING_ADDRESS_TYPE: u32 = 0x0064_001F;
    pub const SENT_REPRESENTING_EMAIL_ADDRESS: u32 = 0x0065_001F;
    pub const CONVERSATION_TOPIC: u32 = 0x0070_001F;
    pub const TRANSPORT_MESSAGE_HEADERS: u32 = 0x007D_001F;
    pub const START_DATE: u32 = 0x0060_0040;
    pub const END_DATE: u32 = 0x0061_0040;
    pub const RECIPIENT_TYPE: u32 = 0x0C15_0003;
    pub const SENDER_NAME: u32 = 0x0C1A_001F;
    pub const SENDER_ADDRESS_TYPE: u32 = 0x0C1E_001F;
    pub const SENDER_EMAIL_ADDRESS: u32 = 0x0C1F_001F;
    pub const MESSAGE_DELIVERY_TIME: u32 = 0x0E06_0040;
    pub const MESSAGE_FLAGS: u32 = 0x0E07_0003;
    pub const MESSAGE_SIZE: u32 = 0x0E08_0003;
    pub const ATTACH_SIZE: u32 = 0x0E20_0003;
    pub const ATTACH_NUMBER: u32 = 0x0E21_0003;
    pub const BODY: u32 = 0x1000_001F;
    pub const HTML: u32 = 0x1013_0102;
    pub const INTERNET_MESSAGE_ID: u32 = 0x1035_001F;
    pub const IN_REPLY_TO_ID: u32 = 0x1042_001F;
    pub const ICON_INDEX: u32 = 0x1080_0003;
    pub const FLAG_STATUS: u32 = 0x1090_0003;
    pub const ROWID: u32 = 0x3000_0003;
    pub const DISPLAY_NAME: u32 = 0x3001_001F;
    pub const ADDRESS_TYPE: u32 = 0x3002_001F;
    pub const EMAIL_ADDRESS: u32 = 0x3003_001F;
    pub const CREATION_TIME: u32 = 0x3007_0040;
    pub const LAST_MODIFICATION_TIME: u32 = 0x3008_0040;
    pub const ATTACH_DATA_BINARY: u32 = 0x3701_0102;
    pub const ATTACH_FILENAME: u32 = 0x3704_001F;
    pub const ATTACH_METHOD: u32 = 0x3705_0003;
    pub const ATTACH_LONG_FILENAME: u32 = 0x3707_001F;
    pub const ATTACH_LONG_PATHNAME: u32 = 0x370D_001F;
    pub const ATTACH_MIME_TAG: u32 = 0x370E_001F;
    pub const ATTACH_CONTENT_ID: u32 = 0x3712_001F;
    pub const SMTP_ADDRESS: u32 = 0x39FE_001F;
    pub const GIVEN_NAME: u32 = 0x3A06_001F;
    pub const BUSINESS_TELEPHONE_NUMBER: u32 = 0x3A08_001F;
    pub const SURNAME: u32 = 0x3A11_001F;
    pub const COMPANY_NAME: u32 = 0x3A16_001F;
    pub const TITLE: u32 = 0x3A17_001F;
    pub const MOBILE_TELEPHONE_NUMBER: u32 = 0x3A1C_001F;
    pub const SENDER_SMTP_ADDRESS: u32 = 0x5D01_001F;
    pub const SENT_REPRESENTING_SMTP_ADDRESS: u32 = 0x5D02_001F;
}

/// A property set GUID in its wire form (Data1, Data2, Data3 little-endian, then Data4).
pub type Guid = [u8; 16];

/// Builds the wire form of `{d1-d2-d3-d4}`.
pub const fn guid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
        d4[6], d4[7],
    ]
}

/// PS_PUBLIC_STRINGS {00020329-0000-0000-C000-000000000046}.
pub const PS_PUBLIC_STRINGS: Guid = guid(0x0002_0329, 0, 0, [0xC0, 0, 0, 0, 0, 0, 0, 0x46]);
/// PSETID_Appointment {00062002-0000-0000-C000-000000000046}.
pub const PSETID_APPOINTMENT: Guid = guid(0x0006_2002, 0, 0, [0xC0, 0, 0, 0, 0, 0, 0, 0x46]);
/// PSETID_Address {00062004-0000-0000-C000-000000000046}.
pub const PSETID_ADDRESS: Guid = guid(0x0006_2004, 0, 0, [0xC0, 0, 0, 0, 0, 0, 0, 0x46]);

/// The name of a named property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Id(u32),
    String(String),
}

/// Which property: a tagged property id (< 0x8000) or a named one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropKey {
    Tagged(u16),
    Named(Guid, Name),
}

/// A property value, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    I16(i16),
    I32(i32),
    I64(i64),
    /// FILETIME: 100 ns ticks since 1601-01-01 UTC.
    Time(u64),
    Guid(Guid),
    Unicode(String),
    Binary(Vec<u8>),
    MvUnicode(Vec<String>),
    MvI32(Vec<i32>),
    /// Any other type, kept as its raw value bytes (fixed) or byte string (variable).
    Raw(u16, Vec<u8>),
}

impl Val {
    pub fn ptype(&self) -> u16 {
        match self {
            Val::I16(_) => ptype::I16,
            Val::I32(_) => ptype::I32,
            Val::I64(_) => ptype::I64,
            Val::Time(_) => ptype::TIME,
            Val::Guid(_) => ptype::GUID,
            Val::Unicode(_) => ptype::UNICODE,
            Val::Binary(_) => ptype::BINARY,
            Val::MvUnicode(_) => ptype::MV | ptype::UNICODE,
            Val::MvI32(_) => ptype::MV | ptype::I32,
            Val::Raw(t, _) => *t,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Unicode(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Val::I32(n) => Some(*n),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prop {
    pub key: PropKey,
    pub val: Val,
}

impl Prop {
    /// A tagged property; the tag's type must agree with the value's.
    pub fn tag(tag: u32, val: Val) -> Self {
        debug_assert_eq!(tag as u16, val.ptype(), "tag {tag:08x}");
        Prop {
            key: PropKey::Tagged((tag >> 16) as u16),
            val,
        }
    }

    pub fn named(set: Guid, name: Name, val: Val) -> Self {
        Prop {
            key: PropKey::Named(set, name),
            val,
        }
    }

    /// The property tag (type in the low word); named properties report id 0x8000.
    pub fn tag_value(&self) -> u32 {
        let id = match self.key {
            PropKey::Tagged(id) => id,
            PropKey::Named(..) => 0x8000,
        };
        (id as u32) << 16 | self.val.ptype() as u32
    }
}

/// A message as a FastTransfer `messageContent`: its properties, recipients and attachments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FxMessage {
    pub props: Vec<Prop>,
    pub recipients: Vec<Vec<Prop>>,
    pub attachments: Vec<Attachment>,
}

/// An attachment: its properties and, for an attached item (`PidTagAttachMethod` 5), the
/// embedded message (`StartEmbed messageContent EndEmbed`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attachment {
    pub props: Vec<Prop>,
    pub embedded: Option<Box<FxMessage>>,
}

impl Attachment {
    pub fn new(props: Vec<Prop>) -> Self {
        Self {
            props,
            embedded: None,
        }
    }
}

impl FxMessage {
    /// The value of a tagged property.
    pub fn get(&self, tag: u32) -> Option<&Val> {
        find(&self.props, tag)
    }

    pub fn str(&self, tag: u32) -> Option<&str> {
        self.get(tag).and_then(Val::as_str)
    }

    pub fn named(&self, set: &Guid, name: &Name) -> Option<&Val> {
        self.props
            .iter()
            .find(|p| matches!(&p.key, PropKey::Named(s, n) if s == set && n == name))
            .map(|p| &p.val)
    }
}

/// The value of a tagged property in a property list.
pub fn find(props: &[Prop], tag: u32) -> Option<&Val> {
    props
        .iter()
        .find(|p| p.key == PropKey::Tagged((tag >> 16) as u16) && p.val.ptype() == tag as u16)
        .map(|p| &p.val)
}

// ---- encoding ------------------------------------------------------------------------------

fn utf16z(s: &str) -> Vec<u8> {
    let mut out: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    out.extend_from_slice(&[0, 0]);
    out
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_le_bytes());
}

fn put_var(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len() as u32);
    out.extend_from_slice(bytes);
}

/// Appends one `propValue`; `named_ids` numbers the named properties of the stream (0x8000 on).
fn put_prop(out: &mut Vec<u8>, p: &Prop, named_ids: &mut Vec<(Guid, Name)>) {
    let t = p.val.ptype();
    out.extend_from_slice(&t.to_le_bytes());
    match &p.key {
        PropKey::Tagged(id) => out.extend_from_slice(&id.to_le_bytes()),
        PropKey::Named(set, name) => {
            let pos = match named_ids.iter().position(|(s, n)| s == set && n == name) {
                Some(i) => i,
                None => {
                    named_ids.push((*set, name.clone()));
                    named_ids.len() - 1
                }
            };
            out.extend_from_slice(&(0x8000u16 + pos as u16).to_le_bytes());
            out.extend_from_slice(set);
            match name {
                Name::Id(d) => {
                    out.push(0x00);
                    put_u32(out, *d);
                }
                Name::String(s) => {
                    out.push(0x01);
                    out.extend_from_slice(&utf16z(s));
                }
            }
        }
    }
    match &p.val {
        Val::I16(n) => out.extend_from_slice(&n.to_le_bytes()),
        Val::I32(n) => out.extend_from_slice(&n.to_le_bytes()),
        Val::I64(n) => out.extend_from_slice(&n.to_le_bytes()),
        Val::Time(n) => out.extend_from_slice(&n.to_le_bytes()),
        Val::Guid(g) => out.extend_from_slice(g),
        Val::Unicode(s) => put_var(out, &utf16z(s)),
        Val::Binary(b) => put_var(out, b),
        Val::MvUnicode(list) => {
            put_u32(out, list.len() as u32);
            for s in list {
                put_var(out, &utf16z(s));
            }
        }
        Val::MvI32(list) => {
            put_u32(out, list.len() as u32);
            for n in list {
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        Val::Raw(t, bytes) => {
            if fixed_size(*t).is_some() {
                out.extend_from_slice(bytes);
            } else {
                put_var(out, bytes);
            }
        }
    }
}

/// Encodes a message as the `messageContent` of a FastTransfer stream.
pub fn encode(m: &FxMessage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut named = Vec::new();
    encode_into(&mut out, m, &mut named);
    out
}

fn encode_into(out: &mut Vec<u8>, m: &FxMessage, named: &mut Vec<(Guid, Name)>) {
    for p in &m.props {
        put_prop(out, p, named);
    }
    for r in &m.recipients {
        put_u32(out, marker::START_RECIP);
        for p in r {
            put_prop(out, p, named);
        }
        put_u32(out, marker::END_TO_RECIP);
    }
    for (i, a) in m.attachments.iter().enumerate() {
        put_u32(out, marker::NEW_ATTACH);
        put_prop(
            out,
            &Prop::tag(tag::ATTACH_NUMBER, Val::I32(i as i32)),
            named,
        );
        for p in a
            .props
            .iter()
            .filter(|p| p.tag_value() != tag::ATTACH_NUMBER)
        {
            put_prop(out, p, named);
        }
        if let Some(e) = &a.embedded {
            put_u32(out, marker::START_EMBED);
            encode_into(out, e, named);
            put_u32(out, marker::END_EMBED);
        }
        put_u32(out, marker::END_ATTACH);
    }
}

// ---- decoding ------------------------------------------------------------------------------

/// Size of a fixed-size value of this (single-valued) type; `None` for variable-size types.
/// PtypBoolean is read as 2 bytes, as FastTransfer streams are recalled to serialize it
/// (unverified here; the encoder never writes a boolean).
fn fixed_size(t: u16) -> Option<usize> {
    match t {
        ptype::I16 | ptype::BOOLEAN => Some(2),
        ptype::I32 | ptype::F32 | ptype::ERROR => Some(4),
        ptype::F64 | ptype::CURRENCY | ptype::APPTIME | ptype::I64 | ptype::TIME => Some(8),
        ptype::GUID => Some(16),
        _ => None,
    }
}

/// Property types with this bit are strings in the code page of the low bits
/// ([MS-OXCFXICS] 2.2.4.1.1, "code page property types"); 1200 is UTF-16LE.
const CODE_PAGE: u16 = 0x8000;

/// One lexical element of a stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Element {
    Marker(u32),
    Prop(Prop),
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.data.len() - self.pos < n {
            return Err(format!("stream ends inside a value at byte {}", self.pos));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn utf16z(&mut self) -> Result<String, String> {
        let mut units = Vec::new();
        loop {
            let b = self.take(2)?;
            let u = u16::from_le_bytes([b[0], b[1]]);
            if u == 0 {
                break;
            }
            units.push(u);
        }
        String::from_utf16(&units).map_err(|_| "invalid UTF-16 in a name".to_string())
    }
}

fn unicode_value(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() % 2 != 0 {
        return Err("odd-length Unicode string".into());
    }
    let mut units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    if units.last() == Some(&0) {
        units.pop();
    }
    String::from_utf16(&units).map_err(|_| "invalid UTF-16 string value".to_string())
}

/// Splits a stream into its lexical elements.
pub fn lex(data: &[u8]) -> Result<Vec<Element>, String> {
    let mut r = Reader { data, pos: 0 };
    let mut out = Vec::new();
    while r.pos < data.len() {
        let tagv = r.u32()?;
        if marker::ALL.contains(&tagv) {
            out.push(Element::Marker(tagv));
            continue;
        }
        let t = tagv as u16;
        let id = (tagv >> 16) as u16;
        let key = if id >= 0x8000 {
            let set: Guid = r
                .take(16)?
                .try_into()
                .map_err(|_| "short GUID".to_string())?;
            let kind = r.take(1)?[0];
            let name = match kind {
                0x00 => Name::Id(r.u32()?),
                0x01 => Name::String(r.utf16z()?),
                k => return Err(format!("named property kind {k:#04x} is neither 0 nor 1")),
            };
            PropKey::Named(set, name)
        } else {
            PropKey::Tagged(id)
        };
        let val = if t & CODE_PAGE != 0 {
            // A string in a code page (PtypCodePage…: 0x8000 | code page), variable-size.
            let n = r.u32()? as usize;
            let b = r.take(n)?;
            if t & !CODE_PAGE == 1200 {
                Val::Unicode(unicode_value(b)?)
            } else {
                Val::Raw(t, b.to_vec())
            }
        } else if t & ptype::MV != 0 {
            let base = t & !ptype::MV;
            let count = r.u32()? as usize;
            if count > data.len() {
                return Err("multi-valued count exceeds the stream".into());
            }
            match base {
                ptype::UNICODE => {
                    let mut list = Vec::with_capacity(count);
                    for _ in 0..count {
                        let n = r.u32()? as usize;
                        list.push(unicode_value(r.take(n)?)?);
                    }
                    Val::MvUnicode(list)
                }
                ptype::I32 => {
                    let mut list = Vec::with_capacity(count);
                    for _ in 0..count {
                        let b = r.take(4)?;
                        list.push(i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    }
                    Val::MvI32(list)
                }
                _ => {
                    let mut raw = (count as u32).to_le_bytes().to_vec();
                    for _ in 0..count {
                        match fixed_size(base) {
                            Some(n) => raw.extend_from_slice(r.take(n)?),
                            None => {
                                let n = r.u32()?;
                                raw.extend_from_slice(&n.to_le_bytes());
                                raw.extend_from_slice(r.take(n as usize)?);
                            }
                        }
                    }
                    Val::Raw(t, raw)
                }
            }
        } else if let Some(n) = fixed_size(t) {
            let b = r.take(n)?;
            match t {
                ptype::I16 => Val::I16(i16::from_le_bytes([b[0], b[1]])),
                ptype::I32 => Val::I32(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ptype::I64 => Val::I64(i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
                ptype::TIME => Val::Time(u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
                ptype::GUID => Val::Guid(b.try_into().unwrap_or([0; 16])),
                _ => Val::Raw(t, b.to_vec()),
            }
        } else {
            match t {
                ptype::UNICODE
                | ptype::STRING8
                | ptype::BINARY
                | ptype::SERVER_ID
                | ptype::OBJECT => {}
                _ => return Err(format!("unknown property type {t:#06x} at byte {}", r.pos)),
            }
            let n = r.u32()? as usize;
            let b = r.take(n)?;
            match t {
                ptype::UNICODE => Val::Unicode(unicode_value(b)?),
                ptype::BINARY => Val::Binary(b.to_vec()),
                _ => Val::Raw(t, b.to_vec()),
            }
        };
        out.push(Element::Prop(Prop { key, val }));
    }
    Ok(out)
}

/// Parses a `messageContent` stream, embedded messages included.
pub fn decode(data: &[u8]) -> Result<FxMessage, String> {
    let elements = lex(data)?;
    let mut i = 0;
    let m = message_content(&elements, &mut i, 0)?;
    match elements.get(i) {
        None => Ok(m),
        Some(e) => Err(format!("unexpected {e:?} after the message")),
    }
}

/// `messageContent` from `els[*i..]`; stops before a marker that does not belong to it.
fn message_content(els: &[Element], i: &mut usize, depth: usize) -> Result<FxMessage, String> {
    if depth > 8 {
        return Err("embedded messages nest too deep".into());
    }
    let mut m = FxMessage::default();
    while let Some(Element::Prop(p)) = els.get(*i) {
        *i += 1;
        if p.tag_value() != marker::FX_DEL_PROP {
            m.props.push(p.clone());
        }
    }
    loop {
        match els.get(*i) {
            Some(Element::Marker(marker::START_RECIP)) => {
                *i += 1;
                let mut r = Vec::new();
                loop {
                    match els.get(*i) {
                        Some(Element::Prop(p)) => r.push(p.clone()),
                        Some(Element::Marker(marker::END_TO_RECIP)) => break,
                        _ => return Err("recipient without EndToRecip".into()),
                    }
                    *i += 1;
                }
                *i += 1;
                m.recipients.push(r);
            }
            Some(Element::Marker(marker::NEW_ATTACH)) => {
                *i += 1;
                let mut a = Attachment::default();
                match els.get(*i) {
                    Some(Element::Prop(p)) if p.tag_value() == tag::ATTACH_NUMBER => {
                        a.props.push(p.clone())
                    }
                    _ => return Err("NewAttach is not followed by PidTagAttachNumber".into()),
                }
                *i += 1;
                while let Some(Element::Prop(p)) = els.get(*i) {
                    a.props.push(p.clone());
                    *i += 1;
                }
                if let Some(Element::Marker(marker::START_EMBED)) = els.get(*i) {
                    *i += 1;
                    let e = message_content(els, i, depth + 1)?;
                    match els.get(*i) {
                        Some(Element::Marker(marker::END_EMBED)) => *i += 1,
                        _ => return Err("embedded message without EndEmbed".into()),
                    }
                    a.embedded = Some(Box::new(e));
                }
                match els.get(*i) {
                    Some(Element::Marker(marker::END_ATTACH)) => *i += 1,
                    _ => return Err("attachment without EndAttach".into()),
                }
                m.attachments.push(a);
            }
            Some(Element::Prop(p)) if p.tag_value() == marker::FX_DEL_PROP => *i += 1,
            _ => return Ok(m),
        }
    }
}

/// FILETIME of a UTC instant.
pub fn filetime(t: chrono::DateTime<chrono::Utc>) -> u64 {
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = t.timestamp() + EPOCH_DIFF_SECS;
    (secs.max(0) as u64) * 10_000_000 + (t.timestamp_subsec_nanos() / 100) as u64
}

/// The UTC instant of a FILETIME.
pub fn from_filetime(ft: u64) -> chrono::DateTime<chrono::Utc> {
    const EPOCH_DIFF_SECS: i64 = 11_644_473_600;
    let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF_SECS;
    let nanos = ((ft % 10_000_000) * 100) as u32;
    chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_the_specified_tags() {
        // [MS-OXCFXICS] 2.2.4.1.4: serialized as 4-byte little-endian property tags.
        let m = FxMessage {
            props: vec![],
            recipients: vec![vec![]],
            attachments: vec![Attachment::default()],
        };
        assert_eq!(
            encode(&m),
            [
                0x03, 0x00, 0x03, 0x40, // StartRecip 0x40030003
                0x03, 0x00, 0x04, 0x40, // EndToRecip 0x40040003
                0x03, 0x00, 0x00, 0x40, // NewAttach 0x40000003
                0x03, 0x00, 0x21, 0x0E, 0, 0, 0, 0, // PidTagAttachNumber = 0
                0x03, 0x00, 0x0E, 0x40, // EndAttach 0x400E0003
            ]
        );
    }

    #[test]
    fn fixed_and_variable_values() {
        // PidTagImportance (0x00170003) = 2: type 0x0003, id 0x0017, 4-byte value.
        let mut out = Vec::new();
        put_prop(
            &mut out,
            &Prop::tag(tag::IMPORTANCE, Val::I32(2)),
            &mut vec![],
        );
        assert_eq!(out, [0x03, 0x00, 0x17, 0x00, 0x02, 0x00, 0x00, 0x00]);
        // PidTagSubject (0x0037001F) = "Hi": length 6 (UTF-16LE with its terminator).
        let mut out = Vec::new();
        put_prop(
            &mut out,
            &Prop::tag(tag::SUBJECT, Val::Unicode("Hi".into())),
            &mut vec![],
        );
        assert_eq!(
            out,
            [0x1F, 0x00, 0x37, 0x00, 6, 0, 0, 0, b'H', 0, b'i', 0, 0, 0]
        );
        // PidTagHtml (0x10130102): 4-byte byte count then the bytes.
        let mut out = Vec::new();
        put_prop(
            &mut out,
            &Prop::tag(tag::HTML, Val::Binary(vec![1, 2, 3])),
            &mut vec![],
        );
        assert_eq!(out, [0x02, 0x01, 0x13, 0x10, 3, 0, 0, 0, 1, 2, 3]);
        // PidTagClientSubmitTime (0x00390040): an 8-byte FILETIME.
        let t = chrono::DateTime::from_timestamp(0, 0).unwrap();
        assert_eq!(filetime(t), 116_444_736_000_000_000);
        assert_eq!(from_filetime(filetime(t)), t);
    }

    #[test]
    fn named_and_multivalued() {
        // Keywords: PS_PUBLIC_STRINGS, by name, PtypMultipleString (0x101F): count, then each
        // string with its own length.
        let p = Prop::named(
            PS_PUBLIC_STRINGS,
            Name::String("Keywords".into()),
            Val::MvUnicode(vec!["A".into()]),
        );
        let mut out = Vec::new();
        put_prop(&mut out, &p, &mut vec![]);
        let mut want = vec![0x1F, 0x10, 0x00, 0x80];
        want.extend_from_slice(&[
            0x29, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0, 0, 0, 0, 0, 0, 0x46,
        ]);
        want.push(0x01);
        want.extend_from_slice(&utf16z("Keywords"));
        want.extend_from_slice(&[1, 0, 0, 0, 4, 0, 0, 0, b'A', 0, 0, 0]);
        assert_eq!(out, want);
        // A dispid-named property: kind 0x00 and a 4-byte dispid.
        let p = Prop::named(
            PSETID_APPOINTMENT,
            Name::Id(0x8208),
            Val::Unicode("X".into()),
        );
        let mut out = Vec::new();
        put_prop(&mut out, &p, &mut vec![]);
        assert_eq!(&out[20..25], &[0x00, 0x08, 0x82, 0x00, 0x00]);
    }

    #[test]
    fn reads_exchange_property_values() {
        // The property values that open the stream of the `Data` example of Graph's "Import an
        // Exchange mailbox item" page (after Exchange's framing): PidTagImportance = 1, then
        // PidTagMessageClass typed 0x84B0 (code page 1200, UTF-16LE), 0x12 bytes; the page cuts
        // the value after "IPM.", completed here as "IPM.Note".
        let mut data = vec![0x03, 0x00, 0x17, 0x00, 0x01, 0x00, 0x00, 0x00];
        data.extend_from_slice(&[0xB0, 0x84, 0x1A, 0x00, 0x12, 0x00, 0x00, 0x00]);
        data.extend_from_slice(&utf16z("IPM.Note"));
        let m = decode(&data).unwrap();
        assert_eq!(m.get(tag::IMPORTANCE), Some(&Val::I32(1)));
        assert_eq!(
            m.props[1],
            Prop {
                key: PropKey::Tagged(0x001A),
                val: Val::Unicode("IPM.Note".into())
            }
        );
    }

    #[test]
    fn round_trip() {
        let m = FxMessage {
            props: vec![
                Prop::tag(tag::MESSAGE_CLASS, Val::Unicode("IPM.Note".into())),
                Prop::tag(tag::SUBJECT, Val::Unicode("Grüße ✈️".into())),
                Prop::tag(tag::CLIENT_SUBMIT_TIME, Val::Time(133_000_000_000_000_000)),
                Prop::named(
                    PS_PUBLIC_STRINGS,
                    Name::String("Keywords".into()),
                    Val::MvUnicode(vec!["Red".into(), "Blue".into()]),
                ),
            ],
            recipients: vec![vec![
                Prop::tag(tag::ROWID, Val::I32(0)),
                Prop::tag(tag::RECIPIENT_TYPE, Val::I32(1)),
                Prop::tag(tag::DISPLAY_NAME, Val::Unicode("Ann".into())),
            ]],
            attachments: vec![
                Attachment::new(vec![
                    Prop::tag(tag::ATTACH_NUMBER, Val::I32(0)),
                    Prop::tag(tag::ATTACH_DATA_BINARY, Val::Binary(vec![0; 10])),
                ]),
                Attachment {
                    props: vec![
                        Prop::tag(tag::ATTACH_NUMBER, Val::I32(1)),
                        Prop::tag(tag::ATTACH_METHOD, Val::I32(5)),
                    ],
                    embedded: Some(Box::new(FxMessage {
                        props: vec![Prop::tag(tag::SUBJECT, Val::Unicode("inner".into()))],
                        recipients: vec![vec![Prop::tag(tag::ROWID, Val::I32(0))]],
                        attachments: vec![],
                    })),
                },
            ],
        };
        let bytes = encode(&m);
        assert_eq!(decode(&bytes).unwrap(), m);
        assert!(decode(&bytes[..bytes.len() - 2]).is_err());
        assert!(decode(&[0x1F, 0x00, 0x37, 0x00, 0xFF, 0xFF, 0, 0]).is_err());
    }
}
