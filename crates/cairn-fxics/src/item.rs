//! The parsed item and its typed accessors by MS-OXPROPS name.

use chrono::{DateTime, Utc};

use crate::tags::*;
use crate::text;
use crate::value::{Guid, NameKind, Property, Value};

/// One exported item: a message (mail, appointment, contact, task... all are Message
/// objects) with its recipients and attachments.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Item {
    /// The message's own properties, in stream order (meta-properties left out).
    pub properties: Vec<Property>,
    /// One property list per recipient (StartRecip ... EndToRecip).
    pub recipients: Vec<Vec<Property>>,
    pub attachments: Vec<AttachmentItem>,
}

/// One attachment (NewAttach ... EndAttach).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttachmentItem {
    pub properties: Vec<Property>,
    /// The embedded message (StartEmbed ... EndEmbed), for `afEmbeddedMessage` attachments.
    pub embedded: Option<Box<Item>>,
}

/// Lookups over a property list, shared by messages, recipients and attachments.
pub trait Properties {
    fn props(&self) -> &[Property];

    /// The property with exactly this tag.
    fn get(&self, tag: u32) -> Option<&Value> {
        self.props().iter().find(|p| p.tag == tag).map(|p| &p.value)
    }

    /// The first non-named property with the identifier of `tag`, whatever its type.
    fn get_id(&self, tag: u32) -> Option<&Value> {
        let id = (tag >> 16) as u16;
        self.props()
            .iter()
            .find(|p| p.name.is_none() && p.id() == id)
            .map(|p| &p.value)
    }

    /// A named property by property set and name.
    fn get_named(&self, guid: &Guid, kind: &NameKind) -> Option<&Value> {
        self.props()
            .iter()
            .find(|p| {
                p.name
                    .as_ref()
                    .is_some_and(|n| n.guid == *guid && n.kind == *kind)
            })
            .map(|p| &p.value)
    }

    /// A named property by property set and dispid (`PidLid...`).
    fn get_lid(&self, guid: &Guid, dispid: u32) -> Option<&Value> {
        self.get_named(guid, &NameKind::Id(dispid))
    }

    /// A string property by the identifier of `tag`, whatever its string type; empty strings
    /// count as absent.
    fn string(&self, tag: u32) -> Option<String> {
        self.get_id(tag)
            .and_then(Value::as_string)
            .filter(|s| !s.is_empty())
    }

    /// An integer property by the identifier of `tag`.
    fn int(&self, tag: u32) -> Option<i64> {
        self.get_id(tag).and_then(Value::as_i64)
    }

    /// A PtypTime property by the identifier of `tag`.
    fn time(&self, tag: u32) -> Option<DateTime<Utc>> {
        self.get_id(tag).and_then(Value::as_time)
    }

    /// PidTagDisplayName.
    fn display_name(&self) -> Option<String> {
        self.string(PidTagDisplayName)
    }

    /// PidTagCreationTime.
    fn creation_time(&self) -> Option<DateTime<Utc>> {
        self.time(PidTagCreationTime)
    }

    /// PidTagLastModificationTime.
    fn last_modification_time(&self) -> Option<DateTime<Utc>> {
        self.time(PidTagLastModificationTime)
    }
}

impl Properties for [Property] {
    fn props(&self) -> &[Property] {
        self
    }
}

impl Properties for Vec<Property> {
    fn props(&self) -> &[Property] {
        self
    }
}

impl Properties for Item {
    fn props(&self) -> &[Property] {
        &self.properties
    }
}

impl Properties for AttachmentItem {
    fn props(&self) -> &[Property] {
        &self.properties
    }
}

/// A name and an address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    pub name: Option<String>,
    /// An SMTP address when one is known (an Exchange legacy DN is not one).
    pub email: Option<String>,
}

/// PidTagRecipientType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientKind {
    To,
    Cc,
    Bcc,
    /// Any other value (0x00000000 is the originator in some contexts).
    Other(u32),
}

/// One recipient, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub kind: RecipientKind,
    pub mailbox: Mailbox,
}

/// PidTagImportance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    Low,
    Normal,
    High,
}

/// PidTagAttachMethod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMethod {
    /// afNone (0).
    None,
    /// afByValue (1): the data is in PidTagAttachDataBinary.
    ByValue,
    /// afByReference (2).
    ByReference,
    /// afByReferenceOnly (4).
    ByReferenceOnly,
    /// afEmbeddedMessage (5): the data is an embedded message.
    EmbeddedMessage,
    /// afStorage (6): an OLE storage in PidTagAttachDataObject.
    Storage,
    /// afByWebReference (7).
    ByWebReference,
    Other(u32),
}

/// An address from an (address, address type, SMTP address) triple: the SMTP address, else
/// the address when its type is SMTP or it looks like one.
fn smtp_of(p: &(impl Properties + ?Sized), smtp: u32, addr: u32, addr_type: u32) -> Option<String> {
    if let Some(s) = p.string(smtp) {
        return Some(s);
    }
    let a = p.string(addr)?;
    let ty = p.string(addr_type);
    let smtp_typed = ty
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("SMTP"));
    (smtp_typed || (a.contains('@') && !a.starts_with('/'))).then_some(a)
}

impl Item {
    /// PidTagMessageClass, e.g. `IPM.Note`, `IPM.Appointment`, `IPM.Contact`, `IPM.Task`.
    pub fn message_class(&self) -> Option<String> {
        self.string(PidTagMessageClass)
    }

    /// PidTagSubject, else PidTagSubjectPrefix + PidTagNormalizedSubject.
    pub fn subject(&self) -> Option<String> {
        self.string(PidTagSubject).or_else(|| {
            let prefix = self.subject_prefix().unwrap_or_default();
            let norm = self.normalized_subject()?;
            Some(format!("{prefix}{norm}"))
        })
    }

    /// PidTagSubjectPrefix ("RE: ", "FW: "...).
    pub fn subject_prefix(&self) -> Option<String> {
        self.string(PidTagSubjectPrefix)
    }

    /// PidTagNormalizedSubject.
    pub fn normalized_subject(&self) -> Option<String> {
        self.string(PidTagNormalizedSubject)
    }

    /// PidTagSenderName and PidTagSenderSmtpAddress / PidTagSenderEmailAddress.
    pub fn sender(&self) -> Option<Mailbox> {
        let m = Mailbox {
            name: self.string(PidTagSenderName),
            email: smtp_of(
                self,
                PidTagSenderSmtpAddress,
                PidTagSenderEmailAddress,
                PidTagSenderAddressType,
            ),
        };
        (m.name.is_some() || m.email.is_some()).then_some(m)
    }

    /// PidTagSentRepresentingName and PidTagSentRepresentingSmtpAddress /
    /// PidTagSentRepresentingEmailAddress: the mailbox the message is from.
    pub fn sent_representing(&self) -> Option<Mailbox> {
        let m = Mailbox {
            name: self.string(PidTagSentRepresentingName),
            email: smtp_of(
                self,
                PidTagSentRepresentingSmtpAddress,
                PidTagSentRepresentingEmailAddress,
                PidTagSentRepresentingAddressType,
            ),
        };
        (m.name.is_some() || m.email.is_some()).then_some(m)
    }

    /// The author as RFC 5322 sees it: the sent-representing mailbox, else the sender.
    pub fn from(&self) -> Option<Mailbox> {
        self.sent_representing().or_else(|| self.sender())
    }

    /// The recipients, typed (PidTagRecipientType; PidTagDisplayName; PidTagSmtpAddress /
    /// PidTagEmailAddress).
    pub fn recipients(&self) -> Vec<Recipient> {
        self.recipients
            .iter()
            .map(|r| {
                let kind = match r.int(PidTagRecipientType).map(|v| v as u32) {
                    Some(v) => match v & 0x0FFF_FFFF {
                        1 => RecipientKind::To,
                        2 => RecipientKind::Cc,
                        3 => RecipientKind::Bcc,
                        other => RecipientKind::Other(other),
                    },
                    None => RecipientKind::To,
                };
                let name = r
                    .string(PidTagDisplayName)
                    .or_else(|| r.string(PidTagRecipientDisplayName));
                let email = smtp_of(r, PidTagSmtpAddress, PidTagEmailAddress, PidTagAddressType);
                Recipient {
                    kind,
                    mailbox: Mailbox { name, email },
                }
            })
            .collect()
    }

    /// PidTagBody.
    pub fn body(&self) -> Option<String> {
        self.string(PidTagBody)
    }

    /// PidTagHtml (bytes in PidTagInternetCodepage, UTF-8 when it is not given) or
    /// PidTagBodyHtml (string).
    pub fn html(&self) -> Option<String> {
        let v = self.get_id(PidTagHtml)?;
        let s = match v {
            Value::Binary(b) => match self.int(PidTagInternetCodepage) {
                Some(cp) => text::decode_code_page(cp as u32, b),
                None => text::decode_8bit(b),
            },
            other => other.as_string()?,
        };
        (!s.is_empty()).then_some(s)
    }

    /// PidTagRtfCompressed, as stored (compressed RTF, MS-OXRTFCP).
    pub fn rtf_compressed(&self) -> Option<&[u8]> {
        self.get(PidTagRtfCompressed).and_then(Value::as_bytes)
    }

    /// PidTagClientSubmitTime.
    pub fn client_submit_time(&self) -> Option<DateTime<Utc>> {
        self.time(PidTagClientSubmitTime)
    }

    /// PidTagMessageDeliveryTime.
    pub fn message_delivery_time(&self) -> Option<DateTime<Utc>> {
        self.time(PidTagMessageDeliveryTime)
    }

    /// PidTagInternetMessageId.
    pub fn internet_message_id(&self) -> Option<String> {
        self.string(PidTagInternetMessageId)
    }

    /// PidTagInReplyToId.
    pub fn in_reply_to(&self) -> Option<String> {
        self.string(PidTagInReplyToId)
    }

    /// PidTagInternetReferences.
    pub fn references(&self) -> Option<String> {
        self.string(PidTagInternetReferences)
    }

    /// PidTagTransportMessageHeaders: the message's original Internet headers.
    pub fn transport_message_headers(&self) -> Option<String> {
        self.string(PidTagTransportMessageHeaders)
    }

    /// PidTagImportance.
    pub fn importance(&self) -> Option<Importance> {
        match self.int(PidTagImportance)? {
            0 => Some(Importance::Low),
            1 => Some(Importance::Normal),
            2 => Some(Importance::High),
            _ => None,
        }
    }

    /// PidTagMessageFlags.
    pub fn message_flags(&self) -> Option<u32> {
        self.int(PidTagMessageFlags).map(|v| v as u32)
    }

    /// The mfRead bit of PidTagMessageFlags.
    pub fn is_read(&self) -> Option<bool> {
        self.message_flags().map(|f| f & MF_READ != 0)
    }

    /// PidTagFlagStatus (0 none, 1 complete, 2 flagged).
    pub fn flag_status(&self) -> Option<i64> {
        self.int(PidTagFlagStatus)
    }

    /// PidNameKeywords ("Keywords" in PS_PUBLIC_STRINGS): the categories.
    pub fn categories(&self) -> Vec<String> {
        self.get_named(
            &PS_PUBLIC_STRINGS,
            &NameKind::Name(PidNameKeywords.to_owned()),
        )
        .and_then(Value::as_strings)
        .unwrap_or_default()
    }

    /// PidLidAppointmentStartWhole.
    pub fn appointment_start(&self) -> Option<DateTime<Utc>> {
        self.get_lid(&PSETID_Appointment, PidLidAppointmentStartWhole)
            .and_then(Value::as_time)
    }

    /// PidLidAppointmentEndWhole.
    pub fn appointment_end(&self) -> Option<DateTime<Utc>> {
        self.get_lid(&PSETID_Appointment, PidLidAppointmentEndWhole)
            .and_then(Value::as_time)
    }

    /// PidLidLocation.
    pub fn location(&self) -> Option<String> {
        self.get_lid(&PSETID_Appointment, PidLidLocation)
            .and_then(Value::as_string)
    }

    /// PidLidTaskStatus (0 not started, 1 in progress, 2 complete, 3 waiting, 4 deferred).
    pub fn task_status(&self) -> Option<i64> {
        self.get_lid(&PSETID_Task, PidLidTaskStatus)
            .and_then(Value::as_i64)
    }

    /// PidLidPercentComplete, 0.0 to 1.0.
    pub fn task_percent_complete(&self) -> Option<f64> {
        match self.get_lid(&PSETID_Task, PidLidPercentComplete)? {
            Value::Double(d) => Some(*d),
            Value::Float(f) => Some(f64::from(*f)),
            _ => None,
        }
    }

    /// PidLidTaskStartDate.
    pub fn task_start_date(&self) -> Option<DateTime<Utc>> {
        self.get_lid(&PSETID_Task, PidLidTaskStartDate)
            .and_then(Value::as_time)
    }

    /// PidLidTaskDueDate.
    pub fn task_due_date(&self) -> Option<DateTime<Utc>> {
        self.get_lid(&PSETID_Task, PidLidTaskDueDate)
            .and_then(Value::as_time)
    }

    /// PidLidTaskComplete.
    pub fn task_complete(&self) -> Option<bool> {
        self.get_lid(&PSETID_Task, PidLidTaskComplete)
            .and_then(Value::as_bool)
    }

    /// PidLidEmail1EmailAddress, PidLidEmail2EmailAddress, PidLidEmail3EmailAddress, those
    /// present, in order.
    pub fn contact_email_addresses(&self) -> Vec<String> {
        [
            PidLidEmail1EmailAddress,
            PidLidEmail2EmailAddress,
            PidLidEmail3EmailAddress,
        ]
        .iter()
        .filter_map(|&lid| self.get_lid(&PSETID_Address, lid))
        .filter_map(Value::as_string)
        .filter(|s| !s.is_empty())
        .collect()
    }
}

impl AttachmentItem {
    /// PidTagAttachLongFilename, else PidTagAttachFilename, else PidTagDisplayName.
    pub fn filename(&self) -> Option<String> {
        self.string(PidTagAttachLongFilename)
            .or_else(|| self.string(PidTagAttachFilename))
            .or_else(|| self.display_name())
    }

    /// PidTagAttachMimeTag.
    pub fn mime_type(&self) -> Option<String> {
        self.string(PidTagAttachMimeTag)
    }

    /// PidTagAttachContentId.
    pub fn content_id(&self) -> Option<String> {
        self.string(PidTagAttachContentId)
    }

    /// PidTagAttachDataBinary (or PidTagAttachDataObject when carried as bytes).
    pub fn data(&self) -> Option<&[u8]> {
        self.get(PidTagAttachDataBinary)
            .or_else(|| self.get(PidTagAttachDataObject))
            .and_then(Value::as_bytes)
    }

    /// PidTagAttachMethod.
    pub fn attach_method(&self) -> Option<AttachMethod> {
        Some(match self.int(PidTagAttachMethod)? as u32 {
            0 => AttachMethod::None,
            1 => AttachMethod::ByValue,
            2 => AttachMethod::ByReference,
            4 => AttachMethod::ByReferenceOnly,
            5 => AttachMethod::EmbeddedMessage,
            6 => AttachMethod::Storage,
            7 => AttachMethod::ByWebReference,
            other => AttachMethod::Other(other),
        })
    }

    /// PidTagAttachmentHidden.
    pub fn is_hidden(&self) -> bool {
        self.get_id(PidTagAttachmentHidden)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}
