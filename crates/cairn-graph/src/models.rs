//! Typed views of the Graph entities Cairn uses. Tolerant by design: unknown fields are
//! ignored and every field Graph may omit is optional or defaulted, so a page with a field
//! missing is not an error. Calendar events and contacts are kept as raw JSON elsewhere, to
//! be lossless.

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: Option<String>,
    /// `None`: the user has no mailbox.
    pub mail: Option<String>,
    pub account_enabled: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Group {
    pub id: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub group_types: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Site {
    pub id: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub web_url: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct MailFolder {
    pub id: String,
    pub display_name: String,
    pub parent_folder_id: Option<String>,
    pub child_folder_count: Option<u32>,
    pub total_item_count: Option<u64>,
    pub is_hidden: Option<bool>,
    #[serde(rename = "@odata.type")]
    pub odata_type: Option<String>,
}

impl MailFolder {
    /// Search folders show other folders' items and have none of their own.
    pub fn is_search_folder(&self) -> bool {
        self.odata_type.as_deref() == Some("#microsoft.graph.mailSearchFolder")
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct EmailAddress {
    pub name: Option<String>,
    pub address: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Recipient {
    pub email_address: EmailAddress,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Flag {
    pub flag_status: Option<String>,
}

/// Message metadata (the content is its MIME, fetched separately).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Message {
    pub id: String,
    pub change_key: Option<String>,
    pub parent_folder_id: Option<String>,
    pub internet_message_id: Option<String>,
    pub conversation_id: Option<String>,
    pub subject: Option<String>,
    pub received_date_time: Option<String>,
    pub sent_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub is_read: Option<bool>,
    pub is_draft: Option<bool>,
    pub importance: Option<String>,
    pub categories: Vec<String>,
    pub flag: Option<Flag>,
    pub from: Option<Recipient>,
    pub to_recipients: Vec<Recipient>,
    pub cc_recipients: Vec<Recipient>,
    pub has_attachments: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Hashes {
    pub quick_xor_hash: Option<String>,
    pub sha1_hash: Option<String>,
    pub sha256_hash: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FileFacet {
    pub mime_type: Option<String>,
    pub hashes: Option<Hashes>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct FolderFacet {
    pub child_count: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ItemReference {
    pub drive_id: Option<String>,
    pub id: Option<String>,
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct DriveItem {
    pub id: String,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub e_tag: Option<String>,
    pub c_tag: Option<String>,
    pub created_date_time: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub parent_reference: Option<ItemReference>,
    pub file: Option<FileFacet>,
    pub folder: Option<FolderFacet>,
    pub root: Option<serde_json::Value>,
    pub deleted: Option<serde_json::Value>,
    #[serde(rename = "@microsoft.graph.downloadUrl")]
    pub download_url: Option<String>,
}

impl DriveItem {
    pub fn is_file(&self) -> bool {
        self.file.is_some()
    }
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Drive {
    pub id: String,
    pub name: Option<String>,
    pub drive_type: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ListInfo {
    pub template: Option<String>,
    pub hidden: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct List {
    pub id: String,
    pub display_name: Option<String>,
    pub list: Option<ListInfo>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ListItem {
    pub id: String,
    pub e_tag: Option<String>,
    pub last_modified_date_time: Option<String>,
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unknown_fields_are_fine() {
        let m: Message = serde_json::from_str(r#"{"id":"x","someNewField":{"a":1}}"#).unwrap();
        assert_eq!(m.id, "x");
        assert!(m.subject.is_none() && m.categories.is_empty());
        let d: DriveItem = serde_json::from_str(
            r#"{"id":"1","name":"a.txt","file":{"mimeType":"text/plain"},"@microsoft.graph.downloadUrl":"u"}"#,
        )
        .unwrap();
        assert!(d.is_file() && !d.is_deleted());
        assert!(
            d.file.unwrap().hashes.is_none(),
            "hashes may be missing until processed"
        );
        assert_eq!(d.download_url.as_deref(), Some("u"));
        let f: MailFolder = serde_json::from_str(
            r##"{"id":"f","displayName":"Unread","@odata.type":"#microsoft.graph.mailSearchFolder"}"##,
        )
        .unwrap();
        assert!(f.is_search_folder());
        let u: User =
            serde_json::from_str(r#"{"id":"u","userPrincipalName":"a@b","mail":null}"#).unwrap();
        assert!(u.mail.is_none());
    }
}
