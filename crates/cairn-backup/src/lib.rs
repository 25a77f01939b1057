//! `cairn-backup`: the backup engine, turning Microsoft 365 resources into restore points.
//!
//! Today it backs up OneDrive drives (files with content, one restore point per drive and
//! run; unchanged files are not downloaded again). Mail, calendars, contacts, SharePoint,
//! the catalog and delta-driven incrementals follow the layout in
//! docs/decisions/0004-backup-engine-layout.md.

mod drive;

pub use drive::{DriveBackup, backup_onedrive};

/// The order the repository needs: component-wise, as `Path` compares. Replacing `/` by
/// `\0` makes a byte-wise comparison agree with it (`a/b` before `a.txt`).
pub fn sort_key(path: &str) -> Vec<u8> {
    path.bytes()
        .map(|b| if b == b'/' { 0 } else { b })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_key_orders_like_paths() {
        let mut v = vec!["a.txt", "a/b", "a", "a b/c", "a/b/c", "ab"];
        v.sort_by_key(|p| sort_key(p));
        let mut w = v.clone();
        w.sort_by(|x, y| std::path::Path::new(x).cmp(std::path::Path::new(y)));
        assert_eq!(v, w);
    }
}
