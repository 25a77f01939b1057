//! The FastTransfer stream: lexical level (markers and propValues, MS-OXCFXICS 2.2.4.1 and
//! 2.2.4.2) and the message grammar (2.2.4.3).

use crate::item::{AttachmentItem, Item};
use crate::text;
use crate::value::{Guid, NameKind, NamedProperty, Property, Value};
use crate::{Error, tags};

/// How deep embedded messages may nest before the stream is refused.
pub const MAX_DEPTH: usize = 64;

/// The markers of MS-OXCFXICS section 2.2.4.1.4: property tags with no value that delimit
/// the stream's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    StartTopFld,
    StartSubFld,
    EndFolder,
    StartMessage,
    StartFAIMsg,
    EndMessage,
    StartEmbed,
    EndEmbed,
    StartRecip,
    EndToRecip,
    NewAttach,
    EndAttach,
    IncrSyncChg,
    IncrSyncChgPartial,
    IncrSyncDel,
    IncrSyncEnd,
    IncrSyncRead,
    IncrSyncStateBegin,
    IncrSyncStateEnd,
    IncrSyncProgressMode,
    IncrSyncProgressPerMsg,
    IncrSyncMessage,
    IncrSyncGroupInfo,
    FXErrorInfo,
}

const MARKERS: [(Marker, u32, &str); 24] = [
    (Marker::StartTopFld, 0x4009_0003, "StartTopFld"),
    (Marker::StartSubFld, 0x400A_0003, "StartSubFld"),
    (Marker::EndFolder, 0x400B_0003, "EndFolder"),
    (Marker::StartMessage, 0x400C_0003, "StartMessage"),
    (Marker::StartFAIMsg, 0x4010_0003, "StartFAIMsg"),
    (Marker::EndMessage, 0x400D_0003, "EndMessage"),
    (Marker::StartEmbed, 0x4001_0003, "StartEmbed"),
    (Marker::EndEmbed, 0x4002_0003, "EndEmbed"),
    (Marker::StartRecip, 0x4003_0003, "StartRecip"),
    (Marker::EndToRecip, 0x4004_0003, "EndToRecip"),
    (Marker::NewAttach, 0x4000_0003, "NewAttach"),
    (Marker::EndAttach, 0x400E_0003, "EndAttach"),
    (Marker::IncrSyncChg, 0x4012_0003, "IncrSyncChg"),
    (
        Marker::IncrSyncChgPartial,
        0x407D_0003,
        "IncrSyncChgPartial",
    ),
    (Marker::IncrSyncDel, 0x4013_0003, "IncrSyncDel"),
    (Marker::IncrSyncEnd, 0x4014_0003, "IncrSyncEnd"),
    (Marker::IncrSyncRead, 0x402F_0003, "IncrSyncRead"),
    (
        Marker::IncrSyncStateBegin,
        0x403A_0003,
        "IncrSyncStateBegin",
    ),
    (Marker::IncrSyncStateEnd, 0x403B_0003, "IncrSyncStateEnd"),
    (
        Marker::IncrSyncProgressMode,
        0x4074_000B,
        "IncrSyncProgressMode",
    ),
    (
        Marker::IncrSyncProgressPerMsg,
        0x4075_000B,
        "IncrSyncProgressPerMsg",
    ),
    (Marker::IncrSyncMessage, 0x4015_0003, "IncrSyncMessage"),
    (Marker::IncrSyncGroupInfo, 0x407B_0102, "IncrSyncGroupInfo"),
    (Marker::FXErrorInfo, 0x4018_0003, "FXErrorInfo"),
];

impl Marker {
    /// The marker's 4-byte tag.
    pub fn tag(self) -> u32 {
        MARKERS
            .iter()
            .find(|(m, _, _)| *m == self)
            .map_or(0, |(_, t, _)| *t)
    }

    /// The marker whose tag this is, if any.
    pub fn from_tag(tag: u32) -> Option<Marker> {
        MARKERS
            .iter()
            .find(|(_, t, _)| *t == tag)
            .map(|(m, _, _)| *m)
    }

    /// The marker's name in MS-OXCFXICS.
    pub fn name(self) -> &'static str {
        MARKERS
            .iter()
            .find(|(m, _, _)| *m == self)
            .map_or("marker", |(_, _, n)| n)
    }

    /// Markers that shape a message (the others are skipped inside one).
    fn is_structural(self) -> bool {
        matches!(
            self,
            Marker::StartTopFld
                | Marker::StartSubFld
                | Marker::EndFolder
                | Marker::StartMessage
                | Marker::StartFAIMsg
                | Marker::EndMessage
                | Marker::StartEmbed
                | Marker::EndEmbed
                | Marker::StartRecip
                | Marker::EndToRecip
                | Marker::NewAttach
                | Marker::EndAttach
        )
    }
}

/// One lexical element of a FastTransfer stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Marker(Marker),
    Property(Property),
}

/// The stream as a flat list of elements, each with its byte offset, without any grammar:
/// markers and propValues (meta-properties included) in order.
pub fn lex(data: &[u8]) -> Result<Vec<(usize, Element)>, Error> {
    let mut r = Reader { data, pos: 0 };
    let mut out = Vec::new();
    while r.pos < data.len() {
        let offset = r.pos;
        let tag = r.u32(None)?;
        match Marker::from_tag(tag) {
            Some(m) => out.push((offset, Element::Marker(m))),
            None => out.push((offset, Element::Property(r.prop_value(tag, offset)?))),
        }
    }
    Ok(out)
}

/// Reads the FastTransfer stream of one exported item (see the crate documentation for the
/// framing) into an [`Item`].
pub fn parse_message(data: &[u8]) -> Result<Item, Error> {
    let mut r = Reader { data, pos: 0 };
    let wrapped = match r.peek_marker() {
        Some(Marker::StartMessage | Marker::StartFAIMsg) => {
            r.pos += 4;
            true
        }
        _ => false,
    };
    let item = r.message_content(0)?;
    if wrapped {
        r.expect(Marker::EndMessage, 0, "EndMessage")?;
    }
    // Anything left is a marker message_content stopped at and nothing here closes.
    if r.pos < data.len() {
        let offset = r.pos;
        let tag = r.u32(None)?;
        return Err(Error::UnexpectedMarker {
            offset,
            tag,
            expected: if wrapped {
                "end of stream after EndMessage"
            } else {
                "end of stream"
            },
        });
    }
    Ok(item)
}

/// Meta-properties (MS-OXCFXICS 2.2.4.1.5 and the ICS state properties of 2.2.1.1) by
/// property identifier: parsed, never reported as the message's properties.
fn is_meta_property(tag: u32) -> bool {
    matches!(
        tag >> 16,
        0x4008 // MetaTagDnPrefix
            | 0x400F // MetaTagEcWarning
            | 0x4011 // MetaTagNewFXFolder
            | 0x4016 // MetaTagFXDelProp
            | 0x4017 // MetaTagIdsetGiven
            | 0x407A // MetaTagIncrementalSyncMessagePartial
            | 0x407C // MetaTagIncrSyncGroupId
            | 0x4021 // MetaTagIdsetNoLongerInScope
            | 0x402D // MetaTagIdsetRead
            | 0x402E // MetaTagIdsetUnread
            | 0x6793 // MetaTagIdsetExpired
            | 0x6796 // MetaTagCnsetSeen
            | 0x67D2 // MetaTagCnsetRead
            | 0x67DA // MetaTagCnsetSeenFAI
            | 0x67E5 // MetaTagIdsetDeleted
    )
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, tag: Option<u32>) -> Result<&'a [u8], Error> {
        let available = self.data.len() - self.pos;
        if n > available {
            return Err(Error::Truncated {
                offset: self.pos,
                tag,
                needed: n,
                available,
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, tag: Option<u32>) -> Result<[u8; N], Error> {
        let s = self.take(N, tag)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, tag: Option<u32>) -> Result<u32, Error> {
        self.array::<4>(tag).map(u32::from_le_bytes)
    }

    fn peek_tag(&self) -> Option<u32> {
        let s = self.data.get(self.pos..self.pos + 4)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn peek_marker(&self) -> Option<Marker> {
        self.peek_tag().and_then(Marker::from_tag)
    }

    /// A 4-byte byte count then that many bytes.
    fn counted(&mut self, tag: u32) -> Result<&'a [u8], Error> {
        let len = self.u32(Some(tag))? as usize;
        self.take(len, Some(tag))
    }

    /// A 4-byte element count, checked against what is left so that a forged count cannot
    /// make us allocate more than the stream could hold.
    fn count(&mut self, tag: u32, min_elem: usize) -> Result<usize, Error> {
        let offset = self.pos;
        let n = self.u32(Some(tag))? as usize;
        let available = self.data.len() - self.pos;
        let needed = n.saturating_mul(min_elem);
        if needed > available {
            return Err(Error::Truncated {
                offset,
                tag: Some(tag),
                needed,
                available,
            });
        }
        Ok(n)
    }

    fn mv_fixed<T, const N: usize>(
        &mut self,
        tag: u32,
        f: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, Error> {
        let n = self.count(tag, N)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self.array::<N>(Some(tag))?));
        }
        Ok(v)
    }

    fn mv_counted(&mut self, tag: u32) -> Result<Vec<&'a [u8]>, Error> {
        let n = self.count(tag, 4)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.counted(tag)?);
        }
        Ok(v)
    }

    /// The rest of a propValue whose tag (at `offset`) has been read.
    fn prop_value(&mut self, tag: u32, offset: usize) -> Result<Property, Error> {
        let name = if tag >> 16 >= 0x8000 {
            Some(self.named_prop_info(tag)?)
        } else {
            None
        };
        let value = if tag == tags::META_TAG_IDSET_GIVEN {
            // Typed PtypInteger32, serialized as PtypBinary (MS-OXCFXICS 3.2.5.2.1).
            Value::Binary(self.counted(tag)?.to_vec())
        } else {
            self.value(tag, offset)?
        };
        Ok(Property { tag, name, value })
    }

    fn named_prop_info(&mut self, tag: u32) -> Result<NamedProperty, Error> {
        let guid = Guid(self.array::<16>(Some(tag))?);
        let kind_offset = self.pos;
        let kind = match self.array::<1>(Some(tag))?[0] {
            0x00 => NameKind::Id(self.u32(Some(tag))?),
            0x01 => {
                let mut units = Vec::new();
                loop {
                    let u = u16::from_le_bytes(self.array::<2>(Some(tag))?);
                    if u == 0 {
                        break;
                    }
                    units.push(u);
                }
                NameKind::Name(String::from_utf16_lossy(&units))
            }
            _ => {
                return Err(Error::Malformed {
                    offset: kind_offset,
                    tag,
                    reason: "named property kind is neither 0x00 (dispid) nor 0x01 (name)",
                });
            }
        };
        Ok(NamedProperty { guid, kind })
    }

    fn value(&mut self, tag: u32, offset: usize) -> Result<Value, Error> {
        let t = Some(tag);
        let ptype = (tag & 0xFFFF) as u16;
        Ok(match ptype {
            0x0002 => Value::Int16(i16::from_le_bytes(self.array(t)?)),
            0x0003 => Value::Int32(i32::from_le_bytes(self.array(t)?)),
            0x0004 => Value::Float(f32::from_le_bytes(self.array(t)?)),
            0x0005 => Value::Double(f64::from_le_bytes(self.array(t)?)),
            0x0006 => Value::Currency(i64::from_le_bytes(self.array(t)?)),
            0x0007 => Value::FloatingTime(f64::from_le_bytes(self.array(t)?)),
            0x000A => Value::ErrorCode(u32::from_le_bytes(self.array(t)?)),
            0x000B => Value::Boolean(u16::from_le_bytes(self.array(t)?) != 0),
            0x0014 => Value::Int64(i64::from_le_bytes(self.array(t)?)),
            0x0040 => Value::Time(u64::from_le_bytes(self.array(t)?)),
            0x0048 => Value::Guid(Guid(self.array(t)?)),
            0x001F => Value::String(utf16_string(self.counted(tag)?)),
            0x001E => Value::String8(strip_nul8(self.counted(tag)?).to_vec()),
            0x00FB => Value::ServerId(self.counted(tag)?.to_vec()),
            0x00FD => Value::Restriction(self.counted(tag)?.to_vec()),
            0x00FE => Value::RuleAction(self.counted(tag)?.to_vec()),
            0x0102 => Value::Binary(self.counted(tag)?.to_vec()),
            0x000D => Value::Object(self.counted(tag)?.to_vec()),
            0x8000..=0xFFFF => {
                let code_page = ptype & 0x7FFF;
                let raw = self.counted(tag)?;
                let bytes = if code_page == 1200 || code_page == 1201 {
                    strip_nul16(raw)
                } else {
                    strip_nul8(raw)
                };
                Value::CodePageString {
                    code_page,
                    bytes: bytes.to_vec(),
                }
            }
            0x1002 => Value::MvInt16(self.mv_fixed(tag, i16::from_le_bytes)?),
            0x1003 => Value::MvInt32(self.mv_fixed(tag, i32::from_le_bytes)?),
            0x1004 => Value::MvFloat(self.mv_fixed(tag, f32::from_le_bytes)?),
            0x1005 => Value::MvDouble(self.mv_fixed(tag, f64::from_le_bytes)?),
            0x1006 => Value::MvCurrency(self.mv_fixed(tag, i64::from_le_bytes)?),
            0x1007 => Value::MvFloatingTime(self.mv_fixed(tag, f64::from_le_bytes)?),
            0x1014 => Value::MvInt64(self.mv_fixed(tag, i64::from_le_bytes)?),
            0x1040 => Value::MvTime(self.mv_fixed(tag, u64::from_le_bytes)?),
            0x1048 => Value::MvGuid(self.mv_fixed(tag, Guid)?),
            0x101F => Value::MvString(
                self.mv_counted(tag)?
                    .into_iter()
                    .map(utf16_string)
                    .collect(),
            ),
            0x101E => Value::MvString8(
                self.mv_counted(tag)?
                    .into_iter()
                    .map(|b| strip_nul8(b).to_vec())
                    .collect(),
            ),
            0x1102 => Value::MvBinary(
                self.mv_counted(tag)?
                    .into_iter()
                    .map(<[u8]>::to_vec)
                    .collect(),
            ),
            _ => return Err(Error::UnknownType { offset, tag }),
        })
    }

    /// Expects `marker` next; `opened` is where the element it closes began.
    fn expect(
        &mut self,
        marker: Marker,
        opened: usize,
        expected: &'static str,
    ) -> Result<(), Error> {
        match self.peek_tag() {
            Some(tag) if tag == marker.tag() => {
                self.pos += 4;
                Ok(())
            }
            Some(tag) => Err(Error::UnexpectedMarker {
                offset: self.pos,
                tag,
                expected,
            }),
            None if self.pos < self.data.len() => Err(Error::Truncated {
                offset: self.pos,
                tag: None,
                needed: 4,
                available: self.data.len() - self.pos,
            }),
            None => Err(Error::Unterminated {
                offset: opened,
                expected,
            }),
        }
    }

    /// `messageContent`: stops (without consuming it) at the first structural marker that
    /// does not open a recipient or an attachment, or at the end of the stream.
    fn message_content(&mut self, depth: usize) -> Result<Item, Error> {
        let mut item = Item::default();
        while self.pos < self.data.len() {
            let offset = self.pos;
            let tag = self.u32(None)?;
            match Marker::from_tag(tag) {
                Some(Marker::StartRecip) => {
                    item.recipients.push(self.prop_list_until(
                        Marker::EndToRecip,
                        offset,
                        "EndToRecip",
                    )?);
                }
                Some(Marker::NewAttach) => item.attachments.push(self.attachment(offset, depth)?),
                Some(m) if m.is_structural() => {
                    self.pos = offset;
                    break;
                }
                Some(_) => {}
                None => {
                    let p = self.prop_value(tag, offset)?;
                    if !is_meta_property(p.tag) {
                        item.properties.push(p);
                    }
                }
            }
        }
        Ok(item)
    }

    /// A propList closed by `end` (consumed); `opened` is the opening marker's offset.
    fn prop_list_until(
        &mut self,
        end: Marker,
        opened: usize,
        expected: &'static str,
    ) -> Result<Vec<Property>, Error> {
        let mut props = Vec::new();
        loop {
            if self.pos >= self.data.len() {
                return Err(Error::Unterminated {
                    offset: opened,
                    expected,
                });
            }
            let offset = self.pos;
            let tag = self.u32(None)?;
            match Marker::from_tag(tag) {
                Some(m) if m == end => return Ok(props),
                Some(m) if m.is_structural() => {
                    return Err(Error::UnexpectedMarker {
                        offset,
                        tag,
                        expected,
                    });
                }
                Some(_) => {}
                None => {
                    let p = self.prop_value(tag, offset)?;
                    if !is_meta_property(p.tag) {
                        props.push(p);
                    }
                }
            }
        }
    }

    /// `attachment` after its NewAttach (at `opened`).
    fn attachment(&mut self, opened: usize, depth: usize) -> Result<AttachmentItem, Error> {
        let mut att = AttachmentItem::default();
        loop {
            if self.pos >= self.data.len() {
                return Err(Error::Unterminated {
                    offset: opened,
                    expected: "EndAttach",
                });
            }
            let offset = self.pos;
            let tag = self.u32(None)?;
            match Marker::from_tag(tag) {
                Some(Marker::EndAttach) => return Ok(att),
                Some(Marker::StartEmbed) if att.embedded.is_none() => {
                    if depth + 1 > MAX_DEPTH {
                        return Err(Error::TooDeep { offset });
                    }
                    let inner = self.message_content(depth + 1)?;
                    self.expect(Marker::EndEmbed, offset, "EndEmbed")?;
                    att.embedded = Some(Box::new(inner));
                }
                Some(m) if m.is_structural() => {
                    return Err(Error::UnexpectedMarker {
                        offset,
                        tag,
                        expected: "EndAttach",
                    });
                }
                Some(_) => {}
                None => {
                    let p = self.prop_value(tag, offset)?;
                    if !is_meta_property(p.tag) {
                        att.properties.push(p);
                    }
                }
            }
        }
    }
}

fn strip_nul8(b: &[u8]) -> &[u8] {
    b.strip_suffix(&[0]).unwrap_or(b)
}

fn strip_nul16(b: &[u8]) -> &[u8] {
    if b.len() % 2 == 0 {
        b.strip_suffix(&[0, 0]).unwrap_or(b)
    } else {
        b
    }
}

/// UTF-16LE bytes to text, terminating NUL removed; an odd trailing byte is ignored.
fn utf16_string(b: &[u8]) -> String {
    let mut s = text::decode_utf16le(b);
    if s.ends_with('\0') {
        s.pop();
    }
    s
}
