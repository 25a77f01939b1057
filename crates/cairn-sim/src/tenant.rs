//! The generated tenant: users, groups, sites and the shape of their content.
//!
//! Everything here is computed from the seed on demand. Only the small per-resource tables
//! (folder trees, drive layouts) are ever built, and only for the resource being served.

use crate::keys::{Coll, CollKey, Res, SUBSITE};
use crate::seeded::{guid, hash, lognormal_size, pick};
use serde::{Deserialize, Serialize};

/// The knobs of a generated tenant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantSpec {
    pub seed: u64,
    pub users: u32,
    pub groups: u32,
    pub sites: u32,
    /// Messages per mailbox (spread over its folders).
    pub mail_per_mailbox: u32,
    pub events_per_mailbox: u32,
    pub contacts_per_mailbox: u32,
    pub files_per_drive: u32,
    pub items_per_list: u32,
    /// Conversation threads in each group's mailbox (each with 1–4 posts).
    #[serde(default = "default_threads_per_group")]
    pub threads_per_group: u32,
    /// Upper bound of a generated message or file, bytes.
    pub max_item_size: u64,
    /// Verified domain of the tenant.
    pub domain: String,
    /// Whether some licensed users have an in-place archive mailbox (user 1 always, with an
    /// auto-expanding archive; see `mailbox_api`).
    #[serde(default = "default_archives")]
    pub archives: bool,
}

impl Default for TenantSpec {
    fn default() -> Self {
        Self {
            seed: 1,
            users: 10,
            groups: 2,
            sites: 3,
            mail_per_mailbox: 60,
            events_per_mailbox: 12,
            contacts_per_mailbox: 10,
            files_per_drive: 25,
            items_per_list: 8,
            threads_per_group: default_threads_per_group(),
            max_item_size: 25 * 1024 * 1024,
            domain: "contoso.example".into(),
            archives: true,
        }
    }
}

fn default_threads_per_group() -> u32 {
    4
}

fn default_archives() -> bool {
    true
}

const FIRST: &[&str] = &[
    "Adele", "Alex", "Bianca", "Chen", "Diego", "Emma", "Fatima", "Grady", "Henrik", "Isaiah",
    "Johanna", "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Zoë",
    "José", "Søren", "Aoife", "Yuki", "Łukasz", "Ngozi", "Priya", "Björn", "Amélie", "Omar",
];
const LAST: &[&str] = &[
    "Vance",
    "Wilber",
    "Tanaka",
    "Müller",
    "García",
    "O'Brien",
    "Nakamura",
    "Okafor",
    "Dubois",
    "Kowalski",
    "Andersson",
    "Rossi",
    "Haddad",
    "Novák",
    "Silva",
    "Ó Súilleabháin",
    "Kim",
    "Nguyen",
    "Schmidt",
    "Smith",
    "Holt",
    "Sánchez",
    "Petrov",
    "Ivanova",
    "Lambert",
];

/// ASCII form of a name part for addresses.
pub fn ascii_slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        let mapped = match ch {
            'à' | 'á' | 'â' | 'ä' => "a",
            'é' | 'è' | 'ê' | 'ë' => "e",
            'í' | 'ï' => "i",
            'ó' | 'ö' | 'ô' | 'Ó' => "o",
            'ú' | 'ü' => "u",
            'ø' => "o",
            'ñ' => "n",
            'Ł' => "l",
            'ł' => "l",
            'å' => "a",
            'š' => "s",
            'č' => "c",
            'ç' => "c",
            'ý' => "y",
            'ß' => "ss",
            c if c.is_ascii_alphanumeric() => {
                out.push(c.to_ascii_lowercase());
                continue;
            }
            _ => "",
        };
        out.push_str(mapped);
    }
    out
}

/// What kind of directory object a user is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserKind {
    /// Licensed member with mailbox and OneDrive.
    Member,
    /// Shared mailbox: a disabled account with a mailbox and no OneDrive.
    SharedMailbox,
    /// Unlicensed: no mailbox, no OneDrive (404 on both).
    Unlicensed,
}

#[derive(Clone, Debug)]
pub struct User {
    pub idx: u32,
    pub id: String,
    pub display_name: String,
    pub upn: String,
    pub kind: UserKind,
    pub job_title: &'static str,
    pub department: &'static str,
}

impl User {
    pub fn has_mailbox(&self) -> bool {
        self.kind != UserKind::Unlicensed
    }
    pub fn has_drive(&self) -> bool {
        self.kind == UserKind::Member
    }
    pub fn mail(&self) -> Option<&str> {
        self.has_mailbox().then_some(self.upn.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Group {
    pub idx: u32,
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
}

#[derive(Clone, Debug)]
pub struct Site {
    pub n: u32,
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub web_url: String,
    pub group: Option<u32>,
}

/// A generated mail, contact or calendar folder.
#[derive(Clone, Debug)]
pub struct FolderDef {
    pub n: u32,
    pub name: String,
    pub parent: Option<u32>,
    pub well_known: Option<&'static str>,
    pub hidden: bool,
    pub search_folder: bool,
    /// Share of the mailbox's messages, in permille.
    pub weight: u32,
}

/// Folder numbers of the well-known folders in every mailbox.
pub mod wk {
    pub const ROOT: u32 = 0;
    pub const INBOX: u32 = 1;
    pub const DRAFTS: u32 = 2;
    pub const SENT: u32 = 3;
    pub const DELETED: u32 = 4;
    pub const JUNK: u32 = 5;
    pub const OUTBOX: u32 = 6;
    pub const ARCHIVE: u32 = 7;
    pub const CONVERSATION_HISTORY: u32 = 8;
    pub const CLUTTER: u32 = 9;
    pub const SEARCH_FOLDERS: u32 = 10;
    pub const RECOVERABLE_ROOT: u32 = 11;
    pub const RECOVERABLE_DELETIONS: u32 = 12;
    pub const SCHEDULED: u32 = 13;
    pub const FIRST_CUSTOM: u32 = 14;
}

const WELL_KNOWN: &[(&str, &str, u32, bool, u32)] = &[
    // (displayName, wellKnownName, parent, hidden, weight)
    (
        "Top of Information Store",
        "msgfolderroot",
        u32::MAX,
        false,
        0,
    ),
    ("Inbox", "inbox", wk::ROOT, false, 380),
    ("Drafts", "drafts", wk::ROOT, false, 15),
    ("Sent Items", "sentitems", wk::ROOT, false, 170),
    ("Deleted Items", "deleteditems", wk::ROOT, false, 60),
    ("Junk Email", "junkemail", wk::ROOT, false, 25),
    ("Outbox", "outbox", wk::ROOT, false, 0),
    ("Archive", "archive", wk::ROOT, false, 90),
    (
        "Conversation History",
        "conversationhistory",
        wk::ROOT,
        false,
        5,
    ),
    ("Clutter", "clutter", wk::ROOT, true, 10),
    ("Finder", "searchfolders", wk::ROOT, true, 0),
    (
        "Recoverable Items",
        "recoverableitemsroot",
        u32::MAX,
        true,
        0,
    ),
    (
        "Deletions",
        "recoverableitemsdeletions",
        wk::RECOVERABLE_ROOT,
        true,
        20,
    ),
    ("Scheduled", "scheduled", wk::ROOT, false, 0),
];

const CUSTOM_FOLDERS: &[&str] = &[
    "Projects",
    "Clients",
    "Receipts",
    "Travel",
    "Newsletters",
    "HR",
    "Board",
    "2023",
    "2024",
    "Acme Corp",
    "Fabrikam",
    "Contoso Ltd",
    "Réunions",
    "Важное",
    "プロジェクト",
    "Q3 📈",
    "Legal & Compliance",
    "Old/Archive",
    "Invoices",
    "Team Offsite",
];

const JOBS: &[&str] = &[
    "Engineer",
    "Accountant",
    "Sales Manager",
    "Designer",
    "Lawyer",
    "Analyst",
    "Director",
];
const DEPTS: &[&str] = &[
    "Engineering",
    "Finance",
    "Sales",
    "Legal",
    "Operations",
    "HR",
];

const GROUP_NAMES: &[&str] = &[
    "Mark 8 Project Team",
    "Retail",
    "Sales and Marketing",
    "Digital Initiative",
    "U.S. Sales",
    "Leadership",
    "Contoso Life",
    "Design Team",
    "Finance",
    "IT Helpdesk",
];
const SITE_NAMES: &[&str] = &[
    "Intranet",
    "HR Portal",
    "Engineering Wiki",
    "Legal Archive",
    "Sales Hub",
    "Brand Center",
    "Project Phoenix",
    "Operations",
];

/// The generated tenant.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub spec: TenantSpec,
    /// Directory object ids (users, groups) to (kind, index): one small entry per directory
    /// object, never per item.
    ids: std::collections::HashMap<String, (u64, u32)>,
}

impl Tenant {
    pub fn new(spec: TenantSpec) -> Self {
        let mut ids = std::collections::HashMap::new();
        for i in 0..spec.users {
            ids.insert(guid(spec.seed, &[1, i as u64]), (1, i));
        }
        for i in 0..spec.groups {
            ids.insert(guid(spec.seed, &[2, i as u64]), (2, i));
        }
        Self { spec, ids }
    }

    fn seed(&self) -> u64 {
        self.spec.seed
    }

    // ---- directory ----------------------------------------------------------------------

    pub fn user(&self, idx: u32) -> Option<User> {
        if idx >= self.spec.users {
            return None;
        }
        let h = hash(self.seed(), &[1, idx as u64]);
        let kind = if idx % 40 == 39 {
            UserKind::Unlicensed
        } else if idx % 25 == 24 {
            UserKind::SharedMailbox
        } else {
            UserKind::Member
        };
        let (display_name, local) = if kind == UserKind::SharedMailbox {
            let name = pick(
                h,
                &["Support", "Reception", "Info", "Payroll", "Facilities"],
            );
            (
                format!("{name} {idx}"),
                format!("{}{idx}", name.to_lowercase()),
            )
        } else {
            let first = pick(h, FIRST);
            let last = pick(h >> 20, LAST);
            (
                format!("{first} {last}"),
                format!("{}.{}{idx}", ascii_slug(first), ascii_slug(last)),
            )
        };
        Some(User {
            idx,
            id: guid(self.seed(), &[1, idx as u64]),
            display_name,
            upn: format!("{local}@{}", self.spec.domain),
            kind,
            job_title: pick(h >> 7, JOBS),
            department: pick(h >> 13, DEPTS),
        })
    }

    /// Resolves a user id or user principal name (case-insensitive for UPNs, as Graph).
    pub fn find_user(&self, key: &str) -> Option<User> {
        if let Some((local, domain)) = key.split_once('@') {
            if !domain.eq_ignore_ascii_case(&self.spec.domain) {
                return None;
            }
            let digits: String = local
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let idx: u32 = digits.parse().ok()?;
            let u = self.user(idx)?;
            return u.upn.eq_ignore_ascii_case(key).then_some(u);
        }
        let idx = self.index_of_guid(key, 1, self.spec.users)?;
        self.user(idx)
    }

    /// Ids are GUIDs from a hash and carry no index; the directory index maps them back.
    fn index_of_guid(&self, key: &str, kind: u64, _count: u32) -> Option<u32> {
        match self.ids.get(&key.to_ascii_lowercase())? {
            (k, i) if *k == kind => Some(*i),
            _ => None,
        }
    }

    pub fn group(&self, idx: u32) -> Option<Group> {
        if idx >= self.spec.groups {
            return None;
        }
        let base = GROUP_NAMES[idx as usize % GROUP_NAMES.len()];
        let display_name = if (idx as usize) < GROUP_NAMES.len() {
            base.to_string()
        } else {
            format!("{base} {idx}")
        };
        Some(Group {
            idx,
            id: guid(self.seed(), &[2, idx as u64]),
            mail_nickname: ascii_slug(&display_name),
            display_name,
        })
    }

    pub fn find_group(&self, key: &str) -> Option<Group> {
        let idx = self.index_of_guid(key, 2, self.spec.groups)?;
        self.group(idx)
    }

    /// Is user `user` a member of group `group`? Licensed members only (shared mailboxes and
    /// unlicensed users are in no group): about one group in three, and always group
    /// `user % groups`, so that every licensed user is in at least one group. Generated, so
    /// `/groups/{id}/members` and the ID token's `groups` claim agree without storing anything.
    pub fn is_member(&self, group: u32, user: u32) -> bool {
        if group >= self.spec.groups {
            return false;
        }
        let Some(u) = self.user(user) else {
            return false;
        };
        u.kind == UserKind::Member
            && (user % self.spec.groups == group
                || hash(self.seed(), &[3, group as u64, user as u64]) % 3 == 0)
    }

    /// The members of group `group` (user indexes, ascending).
    pub fn group_members(&self, group: u32) -> impl Iterator<Item = u32> + '_ {
        (0..self.spec.users).filter(move |&u| self.is_member(group, u))
    }

    /// The groups user `user` is a member of (group indexes, ascending).
    pub fn member_of(&self, user: u32) -> impl Iterator<Item = u32> + '_ {
        (0..self.spec.groups).filter(move |&g| self.is_member(g, user))
    }

    fn root_site_count(&self) -> u32 {
        self.spec.sites + self.spec.groups
    }

    pub fn site(&self, n: u32) -> Option<Site> {
        let parent = if n & SUBSITE != 0 {
            Some(n & !SUBSITE)
        } else {
            None
        };
        let root_n = parent.unwrap_or(n);
        if root_n >= self.root_site_count() {
            return None;
        }
        if parent.is_some() && !self.has_subsite(root_n) {
            return None;
        }
        let group = (root_n >= self.spec.sites).then(|| root_n - self.spec.sites);
        let (mut name, mut display_name) = match group {
            Some(g) => {
                let gr = self.group(g)?;
                (gr.mail_nickname.clone(), gr.display_name.clone())
            }
            None => {
                let base = SITE_NAMES[root_n as usize % SITE_NAMES.len()];
                let dn = if (root_n as usize) < SITE_NAMES.len() {
                    base.to_string()
                } else {
                    format!("{base} {root_n}")
                };
                (ascii_slug(&dn), dn)
            }
        };
        let host = format!("{}.sharepoint.com", self.tenant_short());
        let mut web_url = format!("https://{host}/sites/{name}");
        if parent.is_some() {
            name = "archive".into();
            display_name = format!("{display_name} Archive");
            web_url.push_str("/archive");
        }
        let site_guid = guid(self.seed(), &[3, root_n as u64]);
        let web_guid = guid(self.seed(), &[4, n as u64]);
        Some(Site {
            n,
            id: format!("{host},{site_guid},{web_guid}"),
            name,
            display_name,
            web_url,
            group,
        })
    }

    pub fn has_subsite(&self, root_n: u32) -> bool {
        root_n < self.spec.sites && root_n % 2 == 0
    }

    pub fn subsites(&self, n: u32) -> Vec<u32> {
        if n & SUBSITE == 0 && self.has_subsite(n) {
            vec![SUBSITE | n]
        } else {
            vec![]
        }
    }

    /// All sites, root sites first then their subsites, in a stable order.
    pub fn all_sites(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.root_site_count()).flat_map(move |n| std::iter::once(n).chain(self.subsites(n)))
    }

    pub fn tenant_short(&self) -> String {
        self.spec
            .domain
            .split('.')
            .next()
            .unwrap_or("contoso")
            .to_string()
    }

    /// Resolves a site id (`host,guid,guid`), or `root`.
    /// The site Graph's path addressing names: `/sites/{hostname}:/{server-relative path}`
    /// (`/sites/contoso.sharepoint.com:/sites/hr`).
    pub fn find_site_by_path(&self, hostname: &str, path: &str) -> Option<Site> {
        let url = format!("https://{hostname}/{}", path.trim_matches('/'));
        let url = url.trim_end_matches('/');
        self.all_sites()
            .filter_map(|n| self.site(n))
            .find(|s| s.web_url.trim_end_matches('/').eq_ignore_ascii_case(url))
    }

    pub fn find_site(&self, key: &str) -> Option<Site> {
        if key == "root" {
            return self.site(0);
        }
        let web = key.split(',').nth(2)?;
        self.all_sites().find_map(|n| {
            (guid(self.seed(), &[4, n as u64]) == web.to_ascii_lowercase())
                .then(|| self.site(n))
                .flatten()
        })
    }

    // ---- resources ----------------------------------------------------------------------

    pub fn res_exists(&self, r: Res) -> bool {
        match r {
            Res::User(i) => i < self.spec.users,
            Res::Group(i) => i < self.spec.groups,
            Res::Site(n) => self.site(n).is_some(),
        }
    }

    /// Does user `idx` have an in-place archive mailbox? Licensed members only: user 1
    /// always, others about one in three (seeded); none when `TenantSpec::archives` is off.
    pub fn has_archive(&self, idx: u32) -> bool {
        self.spec.archives
            && self.user(idx).is_some_and(|u| u.kind == UserKind::Member)
            && (idx == 1 || hash(self.seed(), &[95, idx as u64]) % 3 == 0)
    }

    /// Is user `idx`'s archive auto-expanding (some folders in an auxiliary archive)? User 1
    /// only.
    pub fn has_auxiliary_archive(&self, idx: u32) -> bool {
        idx == 1 && self.has_archive(idx)
    }

    pub fn has_mailbox(&self, r: Res) -> bool {
        match r {
            Res::User(i) => self.user(i).is_some_and(|u| u.has_mailbox()),
            _ => false,
        }
    }

    /// The resource id used on the wire and by the manifest.
    pub fn res_id(&self, r: Res) -> Option<String> {
        match r {
            Res::User(i) => self.user(i).map(|u| u.id),
            Res::Group(i) => self.group(i).map(|g| g.id),
            Res::Site(n) => self.site(n).map(|s| s.id),
        }
    }

    /// Resolves any resource id: user id or UPN, group id, site id.
    pub fn find_res(&self, key: &str) -> Option<Res> {
        if let Some(u) = self.find_user(key) {
            return Some(Res::User(u.idx));
        }
        if let Some(g) = self.find_group(key) {
            return Some(Res::Group(g.idx));
        }
        self.find_site(key).map(|s| Res::Site(s.n))
    }

    /// Drives of a resource: a user's OneDrive, a group's library (shared with its site), the
    /// document libraries of a site.
    pub fn drives(&self, r: Res) -> Vec<(CollKey, String)> {
        let names: Vec<&str> = match r {
            Res::User(i) if self.user(i).is_some_and(|u| u.has_drive()) => vec!["OneDrive"],
            Res::User(_) => vec![],
            Res::Group(i) if i < self.spec.groups => vec!["Documents"],
            Res::Group(_) => vec![],
            Res::Site(n) => match self.site(n) {
                None => vec![],
                // A group's site shares the group's drive.
                Some(s) if s.group.is_some() => vec![],
                Some(_) if n % 3 == 1 => vec!["Documents", "Contracts"],
                Some(_) => vec!["Documents"],
            },
        };
        names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    CollKey {
                        res: r,
                        coll: Coll::Drive(i as u32),
                    },
                    name.to_string(),
                )
            })
            .collect()
    }

    /// The drive a group's site shows is the group's drive.
    pub fn site_drives(&self, n: u32) -> Vec<(CollKey, String)> {
        match self.site(n).and_then(|s| s.group) {
            Some(g) => self.drives(Res::Group(g)),
            None => self.drives(Res::Site(n)),
        }
    }

    /// Conversation threads of a group's mailbox.
    pub fn threads(&self, r: Res) -> Vec<CollKey> {
        match r {
            Res::Group(g) if g < self.spec.groups => (0..self.spec.threads_per_group)
                .map(|t| CollKey {
                    res: r,
                    coll: Coll::Thread(t),
                })
                .collect(),
            _ => vec![],
        }
    }

    pub fn lists(&self, n: u32) -> Vec<(CollKey, &'static str)> {
        if self.site(n).is_none() {
            return vec![];
        }
        let mut v = vec!["Issue tracker"];
        if n % 2 == 0 {
            v.push("Contacts list");
        }
        v.into_iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    CollKey {
                        res: Res::Site(n),
                        coll: Coll::List(i as u32),
                    },
                    name,
                )
            })
            .collect()
    }

    // ---- mail folders -------------------------------------------------------------------

    /// The generated folder tree of a mailbox.
    pub fn mail_folders(&self, r: Res) -> Vec<FolderDef> {
        let mut out: Vec<FolderDef> = WELL_KNOWN
            .iter()
            .enumerate()
            .map(|(n, (name, wkn, parent, hidden, weight))| FolderDef {
                n: n as u32,
                name: name.to_string(),
                parent: (*parent != u32::MAX).then_some(*parent),
                well_known: Some(wkn),
                hidden: *hidden,
                search_folder: false,
                weight: *weight,
            })
            .collect();
        let h = hash(self.seed(), &[10, res_seed(r)]);
        let custom = 2 + (h % 6) as u32;
        for i in 0..custom {
            let n = wk::FIRST_CUSTOM + i;
            let hh = hash(h, &[i as u64]);
            // Nest under inbox, the root, or an earlier custom folder.
            let parent = match hh % 4 {
                0 => wk::INBOX,
                1 | 2 if i > 0 => wk::FIRST_CUSTOM + (hh >> 8) as u32 % i,
                _ => wk::ROOT,
            };
            let base = pick(hh >> 16, CUSTOM_FOLDERS);
            out.push(FolderDef {
                n,
                name: format!("{base} {i}"),
                parent: Some(parent),
                well_known: None,
                hidden: false,
                search_folder: false,
                weight: 20 + (hh >> 32) as u32 % 40,
            });
        }
        // A hidden folder as real mailboxes have, and a search folder (no own items).
        let n = wk::FIRST_CUSTOM + custom;
        out.push(FolderDef {
            n,
            name: "Yammer Root".into(),
            parent: Some(wk::ROOT),
            well_known: None,
            hidden: true,
            search_folder: false,
            weight: 5,
        });
        out.push(FolderDef {
            n: n + 1,
            name: "Unread Mail".into(),
            parent: Some(wk::SEARCH_FOLDERS),
            well_known: None,
            hidden: false,
            search_folder: true,
            weight: 0,
        });
        out
    }

    /// Number of generated messages in each folder of a mailbox (index = folder number).
    pub fn mail_counts(&self, r: Res) -> Vec<u32> {
        let folders = self.mail_folders(r);
        let total_w: u64 = folders.iter().map(|f| f.weight as u64).sum();
        let total = self.spec.mail_per_mailbox as u64;
        let mut counts: Vec<u32> = folders
            .iter()
            .map(|f| (total * f.weight as u64 / total_w.max(1)) as u32)
            .collect();
        let assigned: u32 = counts.iter().sum();
        counts[wk::INBOX as usize] += total as u32 - assigned;
        counts
    }

    // ---- sizes --------------------------------------------------------------------------

    /// Target size of a generated message: median about 40 KB, a long tail up to the cap.
    pub fn message_size(&self, h: u64) -> u64 {
        let cap = self.spec.max_item_size.max(2048);
        if h % 997 == 0 {
            // The occasional very large message, near Exchange's default 25 MB limit.
            return cap.min(25 * 1024 * 1024) * 9 / 10;
        }
        lognormal_size(h, 40_000.0, 1.3, cap).max(800)
    }

    /// Size of a generated file: 3 % empty, median about 120 KB, heavy tail.
    pub fn file_size(&self, h: u64) -> u64 {
        if h % 33 == 0 {
            return 0;
        }
        if h % 211 == 0 {
            return self.spec.max_item_size;
        }
        lognormal_size(h, 120_000.0, 1.8, self.spec.max_item_size)
    }
}

/// A stable number for a resource, used as a hash coordinate.
pub fn res_seed(r: Res) -> u64 {
    match r {
        Res::User(i) => (1 << 40) | i as u64,
        Res::Group(i) => (2 << 40) | i as u64,
        Res::Site(i) => (3 << 40) | i as u64,
    }
}

pub fn coll_seed(c: CollKey) -> u64 {
    let (k, n) = match c.coll {
        Coll::MailFolder(n) => (1, n),
        Coll::ContactFolder(n) => (2, n),
        Coll::Calendar(n) => (3, n),
        Coll::Drive(n) => (4, n),
        Coll::List(n) => (5, n),
        Coll::Thread(n) => (6, n),
    };
    crate::seeded::mix(res_seed(c.res) ^ ((k as u64) << 56) ^ ((n as u64) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_id_and_upn() {
        let t = Tenant::new(TenantSpec {
            users: 50,
            ..Default::default()
        });
        for i in [0, 7, 24, 39, 49] {
            let u = t.user(i).unwrap();
            assert_eq!(t.find_user(&u.id).unwrap().idx, i);
            assert_eq!(t.find_user(&u.upn.to_uppercase()).unwrap().idx, i);
        }
        assert_eq!(t.user(24).unwrap().kind, UserKind::SharedMailbox);
        assert_eq!(t.user(39).unwrap().kind, UserKind::Unlicensed);
        assert!(t.find_user("nobody@contoso.example").is_none());
    }

    #[test]
    fn folder_counts_sum_to_spec() {
        let t = Tenant::new(TenantSpec::default());
        let c = t.mail_counts(Res::User(3));
        assert_eq!(c.iter().sum::<u32>(), t.spec.mail_per_mailbox);
        let folders = t.mail_folders(Res::User(3));
        assert_eq!(c.len(), folders.len());
        assert!(folders.iter().any(|f| f.hidden));
    }

    #[test]
    fn sites_resolve() {
        let t = Tenant::new(TenantSpec::default());
        let all: Vec<u32> = t.all_sites().collect();
        assert!(all.iter().any(|n| n & SUBSITE != 0));
        for n in all {
            let s = t.site(n).unwrap();
            assert_eq!(t.find_site(&s.id).unwrap().n, n);
        }
    }
}
