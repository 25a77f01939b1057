//! Property tags, property sets and named-property identifiers used by this crate, under
//! their MS-OXPROPS names. A tag is `id << 16 | type`; accessors match on the identifier so
//! that a string sent as PtypString8 or as a code page string is found as well.

#![allow(non_upper_case_globals)]

use crate::value::Guid;

// --- Meta-properties (MS-OXCFXICS 2.2.4.1.5, 2.2.1.1) ---------------------------------------

/// MetaTagIdsetGiven: typed PtypInteger32, serialized as PtypBinary.
pub const META_TAG_IDSET_GIVEN: u32 = 0x4017_0003;
/// MetaTagFXDelProp.
pub const META_TAG_FX_DEL_PROP: u32 = 0x4016_0003;
/// MetaTagEcWarning.
pub const META_TAG_EC_WARNING: u32 = 0x400F_0003;
/// MetaTagNewFXFolder.
pub const META_TAG_NEW_FX_FOLDER: u32 = 0x4011_0102;
/// MetaTagDnPrefix.
pub const META_TAG_DN_PREFIX: u32 = 0x4008_001E;

// --- Message ------------------------------------------------------------------------------

pub const PidTagMessageClass: u32 = 0x001A_001F;
pub const PidTagSubject: u32 = 0x0037_001F;
pub const PidTagSubjectPrefix: u32 = 0x003D_001F;
pub const PidTagNormalizedSubject: u32 = 0x0E1D_001F;
pub const PidTagConversationTopic: u32 = 0x0070_001F;
pub const PidTagSenderName: u32 = 0x0C1A_001F;
pub const PidTagSenderEmailAddress: u32 = 0x0C1F_001F;
pub const PidTagSenderAddressType: u32 = 0x0C1E_001F;
pub const PidTagSenderSmtpAddress: u32 = 0x5D01_001F;
pub const PidTagSentRepresentingName: u32 = 0x0042_001F;
pub const PidTagSentRepresentingEmailAddress: u32 = 0x0065_001F;
pub const PidTagSentRepresentingAddressType: u32 = 0x0064_001F;
pub const PidTagSentRepresentingSmtpAddress: u32 = 0x5D02_001F;
pub const PidTagDisplayTo: u32 = 0x0E04_001F;
pub const PidTagDisplayCc: u32 = 0x0E03_001F;
pub const PidTagDisplayBcc: u32 = 0x0E02_001F;
pub const PidTagBody: u32 = 0x1000_001F;
/// PidTagHtml, binary (the same identifier as PidTagBodyHtml).
pub const PidTagHtml: u32 = 0x1013_0102;
/// PidTagBodyHtml, string (the same identifier as PidTagHtml).
pub const PidTagBodyHtml: u32 = 0x1013_001F;
pub const PidTagRtfCompressed: u32 = 0x1009_0102;
pub const PidTagNativeBody: u32 = 0x1016_0003;
pub const PidTagInternetCodepage: u32 = 0x3FDE_0003;
pub const PidTagMessageCodepage: u32 = 0x3FFD_0003;
pub const PidTagClientSubmitTime: u32 = 0x0039_0040;
pub const PidTagMessageDeliveryTime: u32 = 0x0E06_0040;
pub const PidTagCreationTime: u32 = 0x3007_0040;
pub const PidTagLastModificationTime: u32 = 0x3008_0040;
pub const PidTagInternetMessageId: u32 = 0x1035_001F;
pub const PidTagInReplyToId: u32 = 0x1042_001F;
pub const PidTagInternetReferences: u32 = 0x1039_001F;
pub const PidTagTransportMessageHeaders: u32 = 0x007D_001F;
pub const PidTagImportance: u32 = 0x0017_0003;
pub const PidTagPriority: u32 = 0x0026_0003;
pub const PidTagSensitivity: u32 = 0x0036_0003;
pub const PidTagMessageFlags: u32 = 0x0E07_0003;
pub const PidTagMessageSize: u32 = 0x0E08_0003;
pub const PidTagHasAttachments: u32 = 0x0E1B_000B;
pub const PidTagFlagStatus: u32 = 0x1090_0003;
pub const PidTagIconIndex: u32 = 0x1080_0003;
pub const PidTagStartDate: u32 = 0x0060_0040;
pub const PidTagEndDate: u32 = 0x0061_0040;
pub const PidTagMessageRecipients: u32 = 0x0E12_000D;
pub const PidTagMessageAttachments: u32 = 0x0E13_000D;
pub const PidTagEntryId: u32 = 0x0FFF_0102;
pub const PidTagSearchKey: u32 = 0x300B_0102;

/// PidTagMessageFlags bit: mfRead.
pub const MF_READ: u32 = 0x0000_0001;

// --- Recipient ----------------------------------------------------------------------------

pub const PidTagRecipientType: u32 = 0x0C15_0003;
pub const PidTagDisplayName: u32 = 0x3001_001F;
pub const PidTagAddressType: u32 = 0x3002_001F;
pub const PidTagEmailAddress: u32 = 0x3003_001F;
pub const PidTagSmtpAddress: u32 = 0x39FE_001F;
pub const PidTagRecipientDisplayName: u32 = 0x5FF6_001F;
pub const PidTagRowid: u32 = 0x3000_0003;

// --- Attachment ---------------------------------------------------------------------------

pub const PidTagAttachLongFilename: u32 = 0x3707_001F;
pub const PidTagAttachFilename: u32 = 0x3704_001F;
pub const PidTagAttachExtension: u32 = 0x3703_001F;
pub const PidTagAttachMimeTag: u32 = 0x370E_001F;
pub const PidTagAttachContentId: u32 = 0x3712_001F;
pub const PidTagAttachContentLocation: u32 = 0x3713_001F;
pub const PidTagAttachDataBinary: u32 = 0x3701_0102;
pub const PidTagAttachDataObject: u32 = 0x3701_000D;
pub const PidTagAttachMethod: u32 = 0x3705_0003;
pub const PidTagAttachSize: u32 = 0x0E20_0003;
pub const PidTagAttachNumber: u32 = 0x0E21_0003;
pub const PidTagAttachFlags: u32 = 0x3714_0003;
pub const PidTagAttachmentHidden: u32 = 0x7FFE_000B;
pub const PidTagRenderingPosition: u32 = 0x370B_0003;

// --- Property sets (MS-OXPROPS 1.3.2) -------------------------------------------------------

const OLE: [u8; 8] = [0xC0, 0, 0, 0, 0, 0, 0, 0x46];
/// PS_PUBLIC_STRINGS {00020329-0000-0000-C000-000000000046}.
pub const PS_PUBLIC_STRINGS: Guid = Guid::from_fields(0x0002_0329, 0, 0, OLE);
/// PS_MAPI {00020328-0000-0000-C000-000000000046}.
pub const PS_MAPI: Guid = Guid::from_fields(0x0002_0328, 0, 0, OLE);
/// PS_INTERNET_HEADERS {00020386-0000-0000-C000-000000000046}.
pub const PS_INTERNET_HEADERS: Guid = Guid::from_fields(0x0002_0386, 0, 0, OLE);
/// PSETID_Appointment {00062002-0000-0000-C000-000000000046}.
pub const PSETID_Appointment: Guid = Guid::from_fields(0x0006_2002, 0, 0, OLE);
/// PSETID_Task {00062003-0000-0000-C000-000000000046}.
pub const PSETID_Task: Guid = Guid::from_fields(0x0006_2003, 0, 0, OLE);
/// PSETID_Address {00062004-0000-0000-C000-000000000046}.
pub const PSETID_Address: Guid = Guid::from_fields(0x0006_2004, 0, 0, OLE);
/// PSETID_Common {00062008-0000-0000-C000-000000000046}.
pub const PSETID_Common: Guid = Guid::from_fields(0x0006_2008, 0, 0, OLE);

// --- Named properties: (property set, dispid or name) ---------------------------------------

/// PidNameKeywords: the categories, "Keywords" in PS_PUBLIC_STRINGS (PtypMultipleString).
pub const PidNameKeywords: &str = "Keywords";
/// PidLidAppointmentStartWhole, PSETID_Appointment.
pub const PidLidAppointmentStartWhole: u32 = 0x820D;
/// PidLidAppointmentEndWhole, PSETID_Appointment.
pub const PidLidAppointmentEndWhole: u32 = 0x820E;
/// PidLidLocation, PSETID_Appointment.
pub const PidLidLocation: u32 = 0x8208;
/// PidLidTaskStatus, PSETID_Task.
pub const PidLidTaskStatus: u32 = 0x8101;
/// PidLidPercentComplete, PSETID_Task.
pub const PidLidPercentComplete: u32 = 0x8102;
/// PidLidTaskStartDate, PSETID_Task.
pub const PidLidTaskStartDate: u32 = 0x8104;
/// PidLidTaskDueDate, PSETID_Task.
pub const PidLidTaskDueDate: u32 = 0x8105;
/// PidLidTaskComplete, PSETID_Task.
pub const PidLidTaskComplete: u32 = 0x811C;
/// PidLidEmail1DisplayName, PSETID_Address.
pub const PidLidEmail1DisplayName: u32 = 0x8080;
/// PidLidEmail1EmailAddress, PSETID_Address.
pub const PidLidEmail1EmailAddress: u32 = 0x8083;
/// PidLidEmail2EmailAddress, PSETID_Address.
pub const PidLidEmail2EmailAddress: u32 = 0x8093;
/// PidLidEmail3EmailAddress, PSETID_Address.
pub const PidLidEmail3EmailAddress: u32 = 0x80A3;
/// PidLidFileUnder, PSETID_Address.
pub const PidLidFileUnder: u32 = 0x8005;
