//! Which Microsoft Graph application permissions each service needs, for backups (read
//! only) and for restores (write), and what an app's token says it was granted. Cairn
//! recommends two apps per tenant (docs/entra-app.md): a backup app that can only read, so
//! that whoever takes the backup server cannot change the tenant, and a restore app used
//! for restores only.
//!
//! The table follows Graph's permission reference (least privileged first); a higher
//! permission is listed beside the lower one it implies.

use cairn_backup::Service;

/// What one part of Cairn needs.
#[derive(Clone, Copy, Debug)]
pub struct Need {
    /// `users`, `groups`, `mail`, …
    pub part: &'static str,
    /// Any of these lets a backup read it (the first is the one to grant).
    pub read: &'static [&'static str],
    /// Any of these lets a restore write it (the first is the one to grant).
    pub write: &'static [&'static str],
}

/// Every part, in the order a report lists them.
pub const NEEDS: [Need; 8] = [
    Need {
        part: "users",
        read: &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        write: &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
    },
    Need {
        part: "groups",
        read: &[
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        write: &["Group.ReadWrite.All"],
    },
    Need {
        part: "mail",
        read: &["Mail.Read", "Mail.ReadWrite"],
        write: &["Mail.ReadWrite"],
    },
    Need {
        part: "calendar",
        read: &["Calendars.Read", "Calendars.ReadWrite"],
        write: &["Calendars.ReadWrite"],
    },
    Need {
        part: "contacts",
        read: &["Contacts.Read", "Contacts.ReadWrite"],
        write: &["Contacts.ReadWrite"],
    },
    Need {
        part: "onedrive",
        read: &[
            "Files.Read.All",
            "Files.ReadWrite.All",
            "Sites.Read.All",
            "Sites.ReadWrite.All",
            "Sites.FullControl.All",
        ],
        write: &[
            "Files.ReadWrite.All",
            "Sites.ReadWrite.All",
            "Sites.FullControl.All",
        ],
    },
    Need {
        part: "sharepoint",
        read: &[
            "Sites.Read.All",
            "Sites.ReadWrite.All",
            "Sites.FullControl.All",
            "Sites.Selected",
        ],
        write: &[
            "Sites.ReadWrite.All",
            "Sites.FullControl.All",
            "Sites.Selected",
        ],
    },
    // Teams needs several permissions at once (docs/entra-app.md lists them); the one named
    // here reads the messages, the restore's posts them with their original authors.
    Need {
        part: "teams",
        read: &["ChannelMessage.Read.All"],
        write: &["Teamwork.Migrate.All"],
    },
];

/// The part a backup service reads.
pub fn need_of(s: Service) -> Need {
    let part = match s {
        Service::Mail => "mail",
        Service::Calendar => "calendar",
        Service::Contacts => "contacts",
        Service::OneDrive => "onedrive",
        Service::SharePoint => "sharepoint",
        Service::Teams => "teams",
    };
    NEEDS
        .into_iter()
        .find(|n| n.part == part)
        .unwrap_or(NEEDS[0])
}

fn any(granted: &[String], of: &[&str]) -> bool {
    of.iter()
        .any(|p| granted.iter().any(|g| g.eq_ignore_ascii_case(p)))
}

impl Need {
    pub fn can_read(&self, granted: &[String]) -> bool {
        any(granted, self.read)
    }

    pub fn can_write(&self, granted: &[String]) -> bool {
        any(granted, self.write)
    }
}

/// Whether `granted` holds any permission that writes to the tenant's content (the
/// directory parts only ever read).
pub fn can_write_anything(granted: &[String]) -> bool {
    NEEDS
        .iter()
        .filter(|n| !matches!(n.part, "users" | "groups"))
        .any(|n| n.can_write(granted))
}

/// The URL where an administrator grants an app the permissions its registration asks for.
pub fn admin_consent_url(login_url: &str, tenant_id: &str, client_id: &str) -> String {
    format!(
        "{}/{tenant_id}/adminconsent?client_id={client_id}",
        login_url.trim_end_matches('/')
    )
}

/// One line of a permission report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Line {
    pub part: &'static str,
    /// `None`: the token says nothing (no `roles` claim).
    pub backup: Option<bool>,
    pub restore: Option<bool>,
    /// What to grant the backup app when it cannot read.
    pub grant_backup: &'static str,
    /// What to grant the restore app when it cannot write.
    pub grant_restore: &'static str,
}

/// What works with the backup app's and the restore app's granted permissions.
pub fn report(backup: Option<&[String]>, restore: Option<&[String]>) -> Vec<Line> {
    NEEDS
        .iter()
        .map(|n| Line {
            part: n.part,
            backup: backup.map(|g| n.can_read(g)),
            restore: restore.map(|g| n.can_write(g)),
            grant_backup: n.read[0],
            grant_restore: n.write[0],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn read_only_apps_read_and_write_nothing() {
        let backup = roles(&[
            "User.Read.All",
            "Group.Read.All",
            "Mail.Read",
            "Calendars.Read",
            "Contacts.Read",
            "Files.Read.All",
            "Sites.Read.All",
            "ChannelMessage.Read.All",
        ]);
        assert!(NEEDS.iter().all(|n| n.can_read(&backup)));
        assert!(!can_write_anything(&backup));
        let restore = roles(&["Mail.ReadWrite", "Files.ReadWrite.All"]);
        assert!(can_write_anything(&restore));
        assert!(need_of(Service::Mail).can_read(&restore), "ReadWrite reads");
        let mailless = roles(&["User.Read.All", "Files.Read.All"]);
        let r = report(Some(&mailless), None);
        let mail = r.iter().find(|l| l.part == "mail").unwrap();
        assert_eq!((mail.backup, mail.grant_backup), (Some(false), "Mail.Read"));
        assert_eq!(mail.restore, None);
        assert_eq!(
            admin_consent_url("https://login.microsoftonline.com/", "t", "c"),
            "https://login.microsoftonline.com/t/adminconsent?client_id=c"
        );
    }
}
