//! `[detection]`: thresholds of ransomware and mass-change detection, per signal.

use serde::{Deserialize, Serialize};

/// Thresholds, per signal (the `[detection]` table of the configuration file).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Thresholds {
    /// Off: no restore point is scored.
    pub enabled: bool,
    /// Share-based signals need at least this many items concerned (small resources
    /// change by large shares in ordinary use).
    pub min_items: u64,
    /// Share of the previous point's items gone (all kinds).
    pub deleted_share: f64,
    /// Share of the previous point's items modified.
    pub modified_share: f64,
    /// Files newly named with a known ransomware extension.
    pub extension_files: u64,
    /// Extensions taken as ransomware's, beside the built-in list (with the dot).
    pub extensions: Vec<String>,
    /// Folders a ransom note (the same note name) newly appears in.
    pub note_folders: u64,
    /// Files whose content turned high-entropy while their type is not a compressed one.
    pub entropy_files: u64,
    /// Bits per byte above which content counts as encrypted or compressed (max 8).
    pub entropy_bits: f64,
    /// Changed files read for the entropy signal, at most, per restore point.
    pub entropy_sample: u64,
    /// Share of the previous point's messages moved into Deleted Items.
    pub mail_deleted_share: f64,
    /// Share of the previous point's messages purged.
    pub mail_purged_share: f64,
    /// Inbox rules newly forwarding or redirecting mail outside the organisation (0: off).
    pub forwarding_rules: u64,
    /// Domains taken as the organisation's, beside the user's own (`contoso.com`).
    pub internal_domains: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            enabled: true,
            min_items: 10,
            deleted_share: 0.3,
            modified_share: 0.5,
            extension_files: 3,
            extensions: Vec::new(),
            note_folders: 2,
            entropy_files: 3,
            entropy_bits: 7.5,
            entropy_sample: 200,
            mail_deleted_share: 0.3,
            mail_purged_share: 0.3,
            forwarding_rules: 1,
            internal_domains: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_read_from_kebab_case_with_defaults() {
        let t: Thresholds =
            toml_edit::de::from_str("deleted-share = 0.5\nextensions = [\".pwnd\"]").unwrap();
        assert_eq!(t.deleted_share, 0.5);
        assert_eq!(t.extensions, vec![".pwnd".to_string()]);
        assert_eq!(t.min_items, Thresholds::default().min_items);
        assert!(toml_edit::de::from_str::<Thresholds>("deleted = 1").is_err());
    }
}
