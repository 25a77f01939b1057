//! Properties and their values (MS-OXCDATA section 2.11.1).

use chrono::{DateTime, Utc};
use std::fmt;

use crate::text;

/// A GUID as MS-OXCDATA section 2.5.1 serializes it: `Data1` (4 bytes), `Data2` and `Data3`
/// (2 bytes each) little-endian, then `Data4` (8 bytes) as is. [`fmt::Display`] gives the
/// registry form, `00020329-0000-0000-c000-000000000046`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID `{d1-d2-d3-d4[0..2]-d4[2..8]}`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let d2 = u16::from_le_bytes([b[4], b[5]]);
        let d3 = u16::from_le_bytes([b[6], b[7]]);
        write!(
            f,
            "{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// How a named property is named within its property set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// `MNID_ID`: a numeric dispid (the `PidLid...` properties).
    Id(u32),
    /// `MNID_STRING`: a name (the `PidName...` properties).
    Name(String),
}

/// The identity of a named property (property identifier 0x8000 or more): the stream's
/// property identifier is only a local mapping, this is what the property *is*.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedProperty {
    pub guid: Guid,
    pub kind: NameKind,
}

/// One property as found in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The property tag as serialized: identifier in the high 16 bits, type in the low 16.
    pub tag: u32,
    /// Set when the identifier is 0x8000 or more.
    pub name: Option<NamedProperty>,
    pub value: Value,
}

impl Property {
    /// The property identifier (high 16 bits of the tag).
    pub fn id(&self) -> u16 {
        (self.tag >> 16) as u16
    }

    /// The property type (low 16 bits of the tag).
    pub fn prop_type(&self) -> u16 {
        (self.tag & 0xFFFF) as u16
    }
}

/// A property value, one variant per property type a FastTransfer stream can carry
/// (MS-OXCDATA section 2.11.1 and MS-OXCFXICS section 2.2.4.1.1.1).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// PtypInteger16 (0x0002).
    Int16(i16),
    /// PtypInteger32 (0x0003).
    Int32(i32),
    /// PtypFloating32 (0x0004).
    Float(f32),
    /// PtypFloating64 (0x0005).
    Double(f64),
    /// PtypCurrency (0x0006): a count of ten-thousandths.
    Currency(i64),
    /// PtypFloatingTime (0x0007): an OLE automation date.
    FloatingTime(f64),
    /// PtypErrorCode (0x000A).
    ErrorCode(u32),
    /// PtypBoolean (0x000B), two bytes in a FastTransfer stream; any non-zero value is true.
    Boolean(bool),
    /// PtypInteger64 (0x0014).
    Int64(i64),
    /// PtypString (0x001F): UTF-16LE, terminating NUL removed. Unpaired surrogates are
    /// replaced by U+FFFD.
    String(String),
    /// PtypString8 (0x001E): 8-bit string in an unstated code page, terminating NUL removed.
    String8(Vec<u8>),
    /// A code page property type (0x8000 | code page, MS-OXCFXICS 2.2.4.1.1.1): the string's
    /// bytes as stored on the server, terminating NUL removed.
    CodePageString { code_page: u16, bytes: Vec<u8> },
    /// PtypTime (0x0040): a FILETIME, 100-nanosecond intervals since 1601-01-01 UTC.
    Time(u64),
    /// PtypGuid (0x0048).
    Guid(Guid),
    /// PtypServerId (0x00FB), kept as bytes.
    ServerId(Vec<u8>),
    /// PtypRestriction (0x00FD), kept as bytes (not decoded).
    Restriction(Vec<u8>),
    /// PtypRuleAction (0x00FE), kept as bytes (not decoded).
    RuleAction(Vec<u8>),
    /// PtypBinary (0x0102).
    Binary(Vec<u8>),
    /// PtypObject (0x000D), kept as bytes.
    Object(Vec<u8>),
    /// PtypMultipleInteger16 (0x1002).
    MvInt16(Vec<i16>),
    /// PtypMultipleInteger32 (0x1003).
    MvInt32(Vec<i32>),
    /// PtypMultipleFloating32 (0x1004).
    MvFloat(Vec<f32>),
    /// PtypMultipleFloating64 (0x1005).
    MvDouble(Vec<f64>),
    /// PtypMultipleCurrency (0x1006).
    MvCurrency(Vec<i64>),
    /// PtypMultipleFloatingTime (0x1007).
    MvFloatingTime(Vec<f64>),
    /// PtypMultipleInteger64 (0x1014).
    MvInt64(Vec<i64>),
    /// PtypMultipleString (0x101F).
    MvString(Vec<String>),
    /// PtypMultipleString8 (0x101E).
    MvString8(Vec<Vec<u8>>),
    /// PtypMultipleTime (0x1040).
    MvTime(Vec<u64>),
    /// PtypMultipleGuid (0x1048).
    MvGuid(Vec<Guid>),
    /// PtypMultipleBinary (0x1102).
    MvBinary(Vec<Vec<u8>>),
}

/// FILETIME of 1970-01-01T00:00:00Z.
const UNIX_EPOCH_FILETIME: u64 = 116_444_736_000_000_000;

/// A FILETIME as a UTC date, `None` when chrono cannot represent it.
pub fn filetime_to_utc(ft: u64) -> Option<DateTime<Utc>> {
    let delta = i128::from(ft) - i128::from(UNIX_EPOCH_FILETIME);
    let secs = delta.div_euclid(10_000_000);
    let nanos = (delta.rem_euclid(10_000_000) * 100) as u32;
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

impl Value {
    /// The value as text, for the string types (String8 as UTF-8 when it is valid UTF-8,
    /// else as Windows-1252; code page strings in their code page where it is known).
    pub fn as_string(&self) -> Option<String> {
        match self {
            Value::String(s) => Some(s.clone()),
            Value::String8(b) => Some(text::decode_8bit(b)),
            Value::CodePageString { code_page, bytes } => {
                Some(text::decode_code_page(u32::from(*code_page), bytes))
            }
            _ => None,
        }
    }

    /// The value as an integer, for the integer types and Boolean.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int16(v) => Some(i64::from(*v)),
            Value::Int32(v) => Some(i64::from(*v)),
            Value::Int64(v) => Some(*v),
            Value::ErrorCode(v) => Some(i64::from(*v)),
            Value::Boolean(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The value as a boolean (Boolean, or a non-zero integer).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            other => other.as_i64().map(|v| v != 0),
        }
    }

    /// The value as a UTC date, for PtypTime.
    pub fn as_time(&self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(ft) => filetime_to_utc(*ft),
            _ => None,
        }
    }

    /// The value as bytes, for the byte-carrying types (Binary, Object, ServerId...).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Binary(b)
            | Value::Object(b)
            | Value::ServerId(b)
            | Value::Restriction(b)
            | Value::RuleAction(b)
            | Value::String8(b) => Some(b),
            Value::CodePageString { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// The value as a list of strings, for the multi-valued string types (a single string
    /// gives a list of one).
    pub fn as_strings(&self) -> Option<Vec<String>> {
        match self {
            Value::MvString(v) => Some(v.clone()),
            Value::MvString8(v) => Some(v.iter().map(|b| text::decode_8bit(b)).collect()),
            other => other.as_string().map(|s| vec![s]),
        }
    }
}
