//! Application permissions, enforced as Graph enforces them.
//!
//! An app-only access token carries the application permissions an administrator consented
//! to in its `roles` claim, and Graph refuses a call the permissions do not cover with 403 and
//! the error of the service behind the path: Outlook's `ErrorAccessDenied`, SharePoint's
//! `accessDenied`, the directory's `Authorization_RequestDenied`. Cairn must tell such a
//! refusal (the customer's consent is missing: a hint, not a retry) from every other failure,
//! so the simulator refuses exactly where Graph would.
//!
//! Everything is decided in one place, [`check`], called by the pipeline for every Graph call
//! (direct or a `$batch` part) from one table, [`RULES`]: (method, path pattern) → the least
//! privileged permission Graph documents for it. Higher permissions imply lower ones
//! ([`IMPLIES`]). An app holding `Sites.Selected` may also use the sites an app holding
//! `Sites.FullControl.All` granted it with `POST /sites/{id}/permissions` ([`SiteGrants`]).
//! Paths the table does not list are left to the handlers (which answer 400 or 404).
//! `docs/simulator.md` lists the sources and the assumptions.

use crate::keys::{Res, SUBSITE, parse_coll_id};
use crate::sim::Sim;
use crate::tenant::Tenant;
use crate::wire::{Req, Resp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The service that answers for a path, and so the shape of its refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Exchange Online: mail, calendars, contacts, mailbox settings, group conversations.
    Outlook,
    /// SharePoint Online: sites, lists, OneDrive and document libraries.
    Files,
    /// Entra ID: users and groups.
    Directory,
    /// Microsoft Teams: teams, channels, chats and their messages.
    Teams,
}

impl Service {
    /// The 403 this service answers a call the token's permissions do not cover with.
    pub fn denied(self) -> Resp {
        match self {
            Self::Outlook => Resp::error(
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
            ),
            Self::Files => Resp::error(403, "accessDenied", "Access denied"),
            Self::Directory => Resp::error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            ),
            Self::Teams => Resp::error(
                403,
                "Forbidden",
                "Missing role permissions on the request. API requires one of the application permissions of this call.",
            ),
        }
    }
}

/// Whether a request reads or changes: `GET` and `HEAD` read, every other method writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn of(method: &str) -> Self {
        if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD") {
            Self::Read
        } else {
            Self::Write
        }
    }
}

/// One row of the table: the permission a read (`GET`, `HEAD`) and a write (any other method)
/// of a path matching `pattern` need, or a permission implying it; `None` leaves that method to
/// the handler.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    /// Segments below the version root: a literal (compared regardless of case), `*` for one
    /// segment, `**` (last only) for any number, none included.
    pub pattern: &'static str,
    pub read: Option<&'static str>,
    pub write: Option<&'static str>,
    pub service: Service,
    /// A `Sites.Selected` grant on the site collection the path lies in also satisfies it
    /// (`read` grants for reads, `write` and above for writes).
    pub selected: bool,
}

impl Rule {
    /// The permission `access` needs under this rule.
    pub fn needs(&self, access: Access) -> Option<&'static str> {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// The permissions to read and to write a kind of data.
type Pair = (&'static str, &'static str);

const MAIL: Pair = ("Mail.Read", "Mail.ReadWrite");
const MAILBOX_SETTINGS: Pair = ("MailboxSettings.Read", "MailboxSettings.ReadWrite");
const CONTACTS: Pair = ("Contacts.Read", "Contacts.ReadWrite");
const TASKS: Pair = ("Tasks.Read.All", "Tasks.ReadWrite.All");
const CALENDARS: Pair = ("Calendars.Read", "Calendars.ReadWrite");
const CONVERSATIONS: Pair = ("Group.Read.All", "Group.ReadWrite.All");
const FILES: Pair = ("Files.Read.All", "Files.ReadWrite.All");
const SITES: Pair = ("Sites.Read.All", "Sites.ReadWrite.All");
const FULL_CONTROL: Pair = ("Sites.FullControl.All", "Sites.FullControl.All");
const USERS: Pair = ("User.Read.All", "User.ReadWrite.All");
const GROUPS: Pair = ("GroupMember.Read.All", "Group.ReadWrite.All");

const fn row(pattern: &'static str, (read, write): Pair, service: Service, selected: bool) -> Rule {
    Rule {
        pattern,
        read: Some(read),
        write: Some(write),
        service,
        selected,
    }
}

/// Exchange: refused with `ErrorAccessDenied`.
const fn outlook(pattern: &'static str, needs: Pair) -> Rule {
    row(pattern, needs, Service::Outlook, false)
}

/// Entra ID: refused with `Authorization_RequestDenied`.
const fn directory(pattern: &'static str, needs: Pair) -> Rule {
    row(pattern, needs, Service::Directory, false)
}

/// SharePoint, outside any site collection: refused with `accessDenied`.
const fn files(pattern: &'static str, needs: Pair) -> Rule {
    row(pattern, needs, Service::Files, false)
}

/// SharePoint, inside a site collection, which a `Sites.Selected` grant may open.
const fn site(pattern: &'static str, needs: Pair) -> Rule {
    row(pattern, needs, Service::Files, true)
}

/// SharePoint listings of sites, read only, which no `Sites.Selected` grant opens.
const fn listing(pattern: &'static str, (read, _): Pair) -> Rule {
    Rule {
        write: None,
        ..files(pattern, (read, read))
    }
}

/// Microsoft Teams: refused with `Forbidden`. `read`/`write` `None` leaves that method to the
/// handler (creating a channel needs `Channel.Create`, or `Teamwork.Migrate.All` in migration
/// mode: the body decides).
const fn teams(
    pattern: &'static str,
    read: Option<&'static str>,
    write: Option<&'static str>,
) -> Rule {
    Rule {
        pattern,
        read,
        write,
        service: Service::Teams,
        selected: false,
    }
}

const MIGRATE: Option<&str> = Some("Teamwork.Migrate.All");

/// (path pattern) → least privileged application permission to read and to write; the first
/// pattern that matches decides.
pub const RULES: &[Rule] = &[
    // The mailbox import/export API (`/admin/exchange/mailboxes/{id}/…`): folder and item
    // reads, export, import sessions; and the mailbox ids (`settings/exchange`).
    Rule {
        pattern: "admin/exchange/mailboxes/*/exportItems",
        read: None,
        write: Some("MailboxItem.Export.All"),
        service: Service::Outlook,
        selected: false,
    },
    Rule {
        pattern: "admin/exchange/mailboxes/*/createImportSession",
        read: None,
        write: Some("MailboxItem.ImportExport.All"),
        service: Service::Outlook,
        selected: false,
    },
    Rule {
        pattern: "admin/exchange/mailboxes/*/folders/*/items/**",
        read: Some("MailboxItem.Read.All"),
        write: Some("MailboxItem.ReadWrite.All"),
        service: Service::Outlook,
        selected: false,
    },
    Rule {
        pattern: "admin/exchange/mailboxes/*/folders/**",
        read: Some("MailboxFolder.Read.All"),
        write: Some("MailboxFolder.ReadWrite.All"),
        service: Service::Outlook,
        selected: false,
    },
    outlook("users/*/settings/exchange", USERS),
    // Microsoft Teams (GRAPH-NOTES §10; migration: Teamwork.Migrate.All).
    teams("teams/*", Some("Team.ReadBasic.All"), None),
    teams("teams/*/members/**", Some("TeamMember.Read.All"), None),
    teams(
        "teams/*/channels/getAllMessages",
        Some("ChannelMessage.Read.All"),
        None,
    ),
    teams("teams/*/channels", Some("Channel.ReadBasic.All"), None),
    teams("teams/*/allChannels", Some("Channel.ReadBasic.All"), None),
    teams("teams/*/*/*", Some("Channel.ReadBasic.All"), None),
    teams(
        "teams/*/*/*/members/**",
        Some("ChannelMember.Read.All"),
        None,
    ),
    teams("teams/*/*/*/tabs/**", Some("TeamsTab.Read.All"), None),
    teams(
        "teams/*/*/*/messages/**",
        Some("ChannelMessage.Read.All"),
        MIGRATE,
    ),
    teams("teams/*/*/*/startMigration", None, MIGRATE),
    teams("teams/*/*/*/completeMigration", None, MIGRATE),
    teams("users/*/chats/getAllMessages", Some("Chat.Read.All"), None),
    teams("users/*/chats", Some("Chat.ReadBasic.All"), None),
    teams("users/*/chats/*", Some("Chat.ReadBasic.All"), None),
    teams(
        "users/*/chats/*/members/**",
        Some("Chat.ReadBasic.All"),
        None,
    ),
    teams(
        "users/*/chats/*/messages/**",
        Some("Chat.Read.All"),
        MIGRATE,
    ),
    teams("chats/*", Some("Chat.ReadBasic.All"), None),
    teams("chats/*/members/**", Some("Chat.ReadBasic.All"), None),
    teams("chats/*/messages/**", Some("Chat.Read.All"), MIGRATE),
    teams("chats/*/startMigration", None, MIGRATE),
    teams("chats/*/completeMigration", None, MIGRATE),
    // Exchange: a mailbox's folders and items (Mail.ReadBasic.All is not simulated).
    outlook(
        "users/*/mailFolders/inbox/messageRules/**",
        MAILBOX_SETTINGS,
    ),
    outlook("users/*/mailFolders/**", MAIL),
    outlook("users/*/messages/**", MAIL),
    outlook("users/*/mailboxSettings/**", MAILBOX_SETTINGS),
    outlook("users/*/todo/**", TASKS),
    outlook("users/*/contactFolders/**", CONTACTS),
    outlook("users/*/contacts/**", CONTACTS),
    outlook("users/*/calendars/**", CALENDARS),
    outlook("users/*/calendar/**", CALENDARS),
    outlook("users/*/events/**", CALENDARS),
    outlook("users/*/calendarView/**", CALENDARS),
    // Group conversations live in the group's mailbox, but Graph asks for group permissions.
    outlook("groups/*/threads/**", CONVERSATIONS),
    outlook("groups/*/conversations/**", CONVERSATIONS),
    // OneDrive and document libraries. A user's OneDrive is no site of the simulated tenant,
    // so no Sites.Selected grant reaches it.
    files("users/*/drive/**", FILES),
    files("users/*/drives/**", FILES),
    site("drives/**", FILES),
    site("groups/*/drive/**", FILES),
    site("groups/*/drives/**", FILES),
    site("sites/*/drive/**", FILES),
    site("sites/*/drives/**", FILES),
    site("groups/*/sites/*/drive/**", FILES),
    site("groups/*/sites/*/drives/**", FILES),
    // Sites: enumerating them is not for Sites.Selected apps; granting access needs full control.
    listing("sites", SITES),
    listing("sites/getAllSites", SITES),
    listing("sites/oneDrive.getAllSites", SITES),
    files("sites/*/permissions/**", FULL_CONTROL),
    files("groups/*/sites/*/permissions/**", FULL_CONTROL),
    site("sites/*/**", SITES),
    site("groups/*/sites/**", SITES),
    // The directory.
    directory("users", USERS),
    directory("users/*", USERS),
    directory("groups", GROUPS),
    directory("groups/*", GROUPS),
    directory("groups/*/members", GROUPS),
];

/// What each permission implies besides itself (applied transitively): ReadWrite implies Read,
/// `Sites.*` imply the `Files.*` of the same reach (every drive is a site's library), and
/// `Sites.FullControl.All` ⊃ `Sites.Manage.All` ⊃ `Sites.ReadWrite.All`.
pub const IMPLIES: &[(&str, &[&str])] = &[
    ("Mail.ReadWrite", &["Mail.Read"]),
    ("Chat.Read.All", &["Chat.ReadBasic.All"]),
    ("MailboxItem.ImportExport.All", &["MailboxItem.Export.All"]),
    ("MailboxFolder.ReadWrite.All", &["MailboxFolder.Read.All"]),
    ("MailboxItem.ReadWrite.All", &["MailboxItem.Read.All"]),
    ("MailboxSettings.ReadWrite", &["MailboxSettings.Read"]),
    ("Contacts.ReadWrite", &["Contacts.Read"]),
    ("Tasks.ReadWrite.All", &["Tasks.Read.All"]),
    ("Calendars.ReadWrite", &["Calendars.Read"]),
    ("User.ReadWrite.All", &["User.Read.All"]),
    ("Group.ReadWrite.All", &["Group.Read.All"]),
    ("Group.Read.All", &["GroupMember.Read.All"]),
    (
        "Directory.ReadWrite.All",
        &["Directory.Read.All", "User.ReadWrite.All"],
    ),
    (
        "Directory.Read.All",
        &["User.Read.All", "GroupMember.Read.All"],
    ),
    ("Files.ReadWrite.All", &["Files.Read.All"]),
    ("Sites.Read.All", &["Files.Read.All"]),
    (
        "Sites.ReadWrite.All",
        &["Sites.Read.All", "Files.ReadWrite.All"],
    ),
    ("Sites.Manage.All", &["Sites.ReadWrite.All"]),
    ("Sites.FullControl.All", &["Sites.Manage.All"]),
];

/// The permission that limits an app to the sites it was granted one by one.
pub const SITES_SELECTED: &str = "Sites.Selected";

/// Permissions the simulator knows, in Graph's spelling (for `canonical_role`).
const KNOWN: &[&str] = &[
    "User.ReadBasic.All",
    "Mail.ReadBasic.All",
    SITES_SELECTED,
    "Channel.Create",
];

/// Graph's spelling of a permission named regardless of case; unknown names are kept as given.
pub fn canonical_role(role: &str) -> String {
    RULES
        .iter()
        .flat_map(|r| [r.read, r.write])
        .flatten()
        .chain(
            IMPLIES
                .iter()
                .flat_map(|(r, lower)| std::iter::once(*r).chain(lower.iter().copied())),
        )
        .chain(KNOWN.iter().copied())
        .find(|k| k.eq_ignore_ascii_case(role))
        .unwrap_or(role)
        .to_owned()
}

/// Every permission `roles` amounts to, themselves included.
pub fn effective(roles: &[String]) -> Vec<&str> {
    let mut held: Vec<&str> = roles.iter().map(String::as_str).collect();
    let mut i = 0;
    while i < held.len() {
        if let Some((_, lower)) = IMPLIES.iter().find(|(r, _)| *r == held[i]) {
            for l in *lower {
                if !held.contains(l) {
                    held.push(l);
                }
            }
        }
        i += 1;
    }
    held
}

/// The rule a path falls under, if any.
pub fn rule_for(path: &str) -> Option<&'static Rule> {
    let segs = segments(path);
    RULES.iter().find(|r| matches(r.pattern, &segs))
}

/// Decides whether the app `client_id`, holding `roles`, may make this request: `Err` is the
/// refusal to answer with.
pub fn check(
    tenant: &Tenant,
    grants: &SiteGrants,
    client_id: &str,
    roles: &[String],
    method: &str,
    path: &str,
) -> Result<(), Resp> {
    let segs = segments(path);
    let access = Access::of(method);
    let Some(rule) = RULES.iter().find(|r| matches(r.pattern, &segs)) else {
        return Ok(());
    };
    let Some(needs) = rule.needs(access) else {
        return Ok(());
    };
    let held = effective(roles);
    if held.contains(&needs) {
        return Ok(());
    }
    let selected = rule.selected
        && held.contains(&SITES_SELECTED)
        && site_scope(tenant, &segs, path)
            .is_some_and(|site| grants.allows(site, client_id, access));
    if selected {
        Ok(())
    } else {
        Err(rule.service.denied())
    }
}

/// The path's segments as the table sees them: path addressing (`root:/a/b:/content`) cut off,
/// percent-decoded, OData keys and calls unwrapped (`users('x')` → `users`, `x`; `delta()` and
/// `delta(token='…')` → `delta`; `microsoft.graph.` prefixes dropped).
fn segments(path: &str) -> Vec<String> {
    let head = match path.find(":/") {
        Some(i) => &path[..i],
        None => path.strip_suffix(':').unwrap_or(path),
    };
    let mut out = Vec::new();
    for raw in head.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        let seg = seg
            .strip_prefix("microsoft.graph.")
            .unwrap_or(&seg)
            .to_owned();
        match seg.split_once('(') {
            Some((name, args)) if seg.ends_with(')') => {
                out.push(name.to_owned());
                let args = &args[..args.len() - 1];
                if !args.is_empty() && !args.contains('=') {
                    out.push(args.trim_matches('\'').to_owned());
                }
            }
            _ => out.push(seg),
        }
    }
    out
}

fn matches(pattern: &str, segs: &[String]) -> bool {
    let mut segs = segs.iter();
    for p in pattern.split('/') {
        if p == "**" {
            return true;
        }
        match segs.next() {
            Some(s) if p == "*" || p.eq_ignore_ascii_case(s) => {}
            _ => return false,
        }
    }
    segs.next().is_none()
}

/// The site collection (its root site number) a path lies in, for `Sites.Selected`: a site
/// (or subsite), a group's site and library, a drive of either.
fn site_scope(tenant: &Tenant, segs: &[String], path: &str) -> Option<u32> {
    let n = match segs {
        // Path addressing: `sites/{hostname}:/{path}`.
        [s, host] if s.eq_ignore_ascii_case("sites") && tenant.find_site(host).is_none() => {
            let addressed = path.split_once(":/")?.1;
            let addressed = addressed.split(':').next().unwrap_or(addressed);
            tenant.find_site_by_path(host, addressed)?.n
        }
        [s, id, ..] if s.eq_ignore_ascii_case("sites") => tenant.find_site(id)?.n,
        [g, id, ..] if g.eq_ignore_ascii_case("groups") => {
            tenant.spec.sites + tenant.find_group(id)?.idx
        }
        [d, id, ..] if d.eq_ignore_ascii_case("drives") => match parse_coll_id(id)?.res {
            Res::Site(n) => n,
            Res::Group(g) => tenant.spec.sites + g,
            Res::User(_) => return None,
        },
        _ => return None,
    };
    Some(n & !SUBSITE)
}

// ---------------------------------------------------------------------------------------------
// Sites.Selected

/// Roles a site permission may grant an application, weakest first.
const SITE_ROLES: &[&str] = &["read", "write", "manage", "fullcontrol", "owner"];

/// One application's permission on a site collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteGrant {
    pub app_id: String,
    pub display_name: String,
    /// `read`, `write`, `manage`, `fullcontrol` or `owner`.
    pub roles: Vec<String>,
}

impl SiteGrant {
    fn allows(&self, access: Access) -> bool {
        self.roles
            .iter()
            .any(|r| access == Access::Read || r != "read")
    }
}

/// The application permissions granted on each site collection (by its root site number).
/// Kept in memory: a restart forgets them.
#[derive(Debug, Default)]
pub struct SiteGrants {
    by_site: Mutex<BTreeMap<u32, Vec<SiteGrant>>>,
}

impl SiteGrants {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Vec<SiteGrant>>> {
        self.by_site.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grants (or re-grants, replacing the roles) `grant.app_id` access to site `site`.
    pub fn grant(&self, site: u32, grant: SiteGrant) {
        let mut all = self.lock();
        let list = all.entry(site).or_default();
        match list.iter_mut().find(|g| g.app_id == grant.app_id) {
            Some(g) => *g = grant,
            None => list.push(grant),
        }
    }

    pub fn list(&self, site: u32) -> Vec<SiteGrant> {
        self.lock().get(&site).cloned().unwrap_or_default()
    }

    pub fn revoke(&self, site: u32, app_id: &str) -> bool {
        let mut all = self.lock();
        let Some(list) = all.get_mut(&site) else {
            return false;
        };
        let before = list.len();
        list.retain(|g| g.app_id != app_id);
        before != list.len()
    }

    pub fn allows(&self, site: u32, app_id: &str, access: Access) -> bool {
        self.lock()
            .get(&site)
            .is_some_and(|l| l.iter().any(|g| g.app_id == app_id && g.allows(access)))
    }
}

impl Sim {
    /// `/sites/{id}/permissions[/{permission-id}]`: list, create, get, update and delete the
    /// application permissions of a site collection (what `Sites.Selected` apps may use).
    /// Who may call it is decided by [`RULES`] (`Sites.FullControl.All`).
    pub fn site_permissions(&self, req: &Req, n: u32, rest: &[&str]) -> Resp {
        let site = n & !SUBSITE;
        match (req.method.as_str(), rest) {
            ("GET", []) => {
                let value: Vec<Value> = self
                    .site_grants
                    .list(site)
                    .iter()
                    .map(|g| self.permission_json(g))
                    .collect();
                Resp::ok(json!({ "value": value }))
            }
            ("POST", []) => match self.grant_from_body(req, None) {
                Ok(grant) => {
                    let v = self.permission_json(&grant);
                    self.site_grants.grant(site, grant);
                    Resp::json(201, v)
                }
                Err(resp) => resp,
            },
            (m, [id]) => {
                let Some(existing) = self
                    .site_grants
                    .list(site)
                    .into_iter()
                    .find(|g| self.permission_id(&g.app_id) == *id)
                else {
                    return Resp::error(404, "itemNotFound", "The permission was not found.");
                };
                match m {
                    "GET" => Resp::ok(self.permission_json(&existing)),
                    "PATCH" => match self.grant_from_body(req, Some(&existing)) {
                        Ok(grant) => {
                            let v = self.permission_json(&grant);
                            self.site_grants.grant(site, grant);
                            Resp::ok(v)
                        }
                        Err(resp) => resp,
                    },
                    "DELETE" => {
                        self.site_grants.revoke(site, &existing.app_id);
                        Resp::empty(204)
                    }
                    _ => Resp::error(405, "invalidRequest", "Method not allowed."),
                }
            }
            _ => Resp::error(405, "invalidRequest", "Method not allowed."),
        }
    }

    /// SharePoint's id of an app's site permission: base64 of its claim (`i:0i.t|ms.sp.ext|…`).
    fn permission_id(&self, app_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("i:0i.t|ms.sp.ext|{app_id}@{}", self.cfg.tenant_id))
    }

    fn permission_json(&self, g: &SiteGrant) -> Value {
        let who = json!([{"application": {"id": g.app_id, "displayName": g.display_name}}]);
        json!({
            "id": self.permission_id(&g.app_id),
            "@deprecated.GrantedToIdentities":
                "GrantedToIdentities has been deprecated. Refer to GrantedToIdentitiesV2",
            "roles": g.roles,
            "grantedToIdentities": who,
            "grantedToIdentitiesV2": who,
        })
    }

    /// The grant a create (`existing` = `None`) or update request body asks for.
    fn grant_from_body(&self, req: &Req, existing: Option<&SiteGrant>) -> Result<SiteGrant, Resp> {
        let bad = |msg: &str| Resp::error(400, "invalidRequest", msg);
        let body = req.json_body()?;
        let roles: Vec<String> = match body.get("roles") {
            Some(Value::Array(roles)) if !roles.is_empty() => roles
                .iter()
                .map(|r| {
                    r.as_str()
                        .map(str::to_ascii_lowercase)
                        .filter(|r| SITE_ROLES.contains(&r.as_str()))
                        .ok_or_else(|| {
                            bad(&format!(
                                "Invalid role {r}: a site permission grants one of {}.",
                                SITE_ROLES.join(", ")
                            ))
                        })
                })
                .collect::<Result<_, _>>()?,
            None if existing.is_some() => existing.map(|e| e.roles.clone()).unwrap_or_default(),
            _ => return Err(bad("The permission needs a non-empty 'roles' array.")),
        };
        if let Some(existing) = existing {
            return Ok(SiteGrant {
                roles,
                ..existing.clone()
            });
        }
        let identities = body
            .get("grantedToIdentitiesV2")
            .or_else(|| body.get("grantedToIdentities"))
            .and_then(Value::as_array)
            .filter(|a| a.len() == 1)
            .ok_or_else(|| {
                bad("The permission needs 'grantedToIdentities' with exactly one application.")
            })?;
        let app = &identities[0]["application"];
        let Some(app_id) = app["id"].as_str().filter(|id| !id.is_empty()) else {
            return Err(bad(
                "Only application permissions can be granted on a site: give grantedToIdentities[0].application.id.",
            ));
        };
        let known =
            app_id == self.cfg.client_id || self.cfg.apps.iter().any(|a| a.client_id == app_id);
        if !known {
            return Err(bad(&format!(
                "The application '{app_id}' was not found in the directory."
            )));
        }
        Ok(SiteGrant {
            app_id: app_id.to_owned(),
            display_name: app["displayName"].as_str().unwrap_or_default().to_owned(),
            roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::GRANTED_ROLES;
    use crate::tenant::TenantSpec;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|r| (*r).to_owned()).collect()
    }

    #[test]
    fn segments_unwrap_odata_forms_and_path_addressing() {
        assert_eq!(
            segments("/users('a%40b.com')/mailFolders/inbox/messages/delta()"),
            [
                "users",
                "a@b.com",
                "mailFolders",
                "inbox",
                "messages",
                "delta"
            ]
        );
        assert_eq!(
            segments("/drives/b!x/root/microsoft.graph.delta(token='abc')"),
            ["drives", "b!x", "root", "delta"]
        );
        assert_eq!(
            segments("/drives/b!x/root:/a/(b).txt:/content"),
            ["drives", "b!x", "root"]
        );
        assert_eq!(segments("/drives/b!x/root:"), ["drives", "b!x", "root"]);
        assert_eq!(segments("/sites/getAllSites()"), ["sites", "getAllSites"]);
    }

    #[test]
    fn patterns_match_whole_paths() {
        let s = |p: &str| segments(p);
        assert!(matches("users/*", &s("/users/x")));
        assert!(!matches("users/*", &s("/users/x/messages")));
        assert!(!matches("users/*", &s("/users")));
        assert!(matches("users/*/messages/**", &s("/users/x/messages")));
        assert!(matches(
            "users/*/messages/**",
            &s("/users/x/MESSAGES/y/$value")
        ));
        assert!(!matches("users/*/messages/**", &s("/users/x/mailFolders")));
    }

    #[test]
    fn rules_pick_the_service_and_permission() {
        use Service::{Directory, Files, Outlook};
        let cases = [
            ("GET", "/users", "User.Read.All", Directory),
            ("GET", "/users/x", "User.Read.All", Directory),
            ("PATCH", "/users/x", "User.ReadWrite.All", Directory),
            ("GET", "/groups", "GroupMember.Read.All", Directory),
            (
                "GET",
                "/users/x/mailFolders/inbox/messages/delta",
                "Mail.Read",
                Outlook,
            ),
            (
                "POST",
                "/users/x/mailFolders/inbox/messages",
                "Mail.ReadWrite",
                Outlook,
            ),
            ("PATCH", "/users/x/messages/m", "Mail.ReadWrite", Outlook),
            (
                "GET",
                "/users/x/mailboxSettings",
                "MailboxSettings.Read",
                Outlook,
            ),
            (
                "GET",
                "/users/x/calendarView/delta",
                "Calendars.Read",
                Outlook,
            ),
            (
                "DELETE",
                "/users/x/events/e",
                "Calendars.ReadWrite",
                Outlook,
            ),
            (
                "GET",
                "/users/x/contactFolders/delta",
                "Contacts.Read",
                Outlook,
            ),
            (
                "GET",
                "/groups/g/threads/t/posts",
                "Group.Read.All",
                Outlook,
            ),
            ("GET", "/users/x/drive/root/delta", "Files.Read.All", Files),
            (
                "PUT",
                "/drives/d/items/i:/a.txt:/content",
                "Files.ReadWrite.All",
                Files,
            ),
            ("GET", "/sites/s/drives", "Files.Read.All", Files),
            ("GET", "/sites/s/lists/l/items", "Sites.Read.All", Files),
            (
                "POST",
                "/sites/s/lists/l/items",
                "Sites.ReadWrite.All",
                Files,
            ),
            ("GET", "/sites/getAllSites", "Sites.Read.All", Files),
            ("GET", "/sites", "Sites.Read.All", Files),
            (
                "POST",
                "/sites/s/permissions",
                "Sites.FullControl.All",
                Files,
            ),
            ("GET", "/groups/g/sites/root/lists", "Sites.Read.All", Files),
        ];
        for (method, path, needs, service) in cases {
            let r = rule_for(path).unwrap_or_else(|| panic!("{method} {path}"));
            let got = (r.needs(Access::of(method)), r.service);
            assert_eq!(got, (Some(needs), service), "{method} {path}");
        }
        assert!(rule_for("/me/messages").is_none());
        assert!(rule_for("/$batch").is_none());
        // getAllSites is read only: a write is the handler's to refuse.
        assert_eq!(rule_for("/sites/getAllSites").unwrap().write, None);
    }

    #[test]
    fn higher_permissions_imply_lower_ones() {
        let full = roles(&["Sites.FullControl.All"]);
        let e = effective(&full);
        for r in [
            "Sites.Manage.All",
            "Sites.ReadWrite.All",
            "Sites.Read.All",
            "Files.ReadWrite.All",
            "Files.Read.All",
        ] {
            assert!(e.contains(&r), "{r}");
        }
        let rw = roles(&["Mail.ReadWrite", "Files.ReadWrite.All"]);
        let e = effective(&rw);
        assert!(e.contains(&"Mail.Read") && e.contains(&"Files.Read.All"));
        assert!(
            !e.contains(&"Sites.Read.All"),
            "Files.* gives no site access"
        );
        let sites = roles(&["Sites.Read.All"]);
        let e = effective(&sites);
        assert!(e.contains(&"Files.Read.All") && !e.contains(&"Files.ReadWrite.All"));
    }

    #[test]
    fn the_default_app_satisfies_every_rule() {
        let granted = roles(GRANTED_ROLES);
        let held = effective(&granted);
        for r in RULES {
            for needs in [r.read, r.write].into_iter().flatten() {
                assert!(held.contains(&needs), "{} {needs}", r.pattern);
            }
        }
    }

    #[test]
    fn roles_are_spelt_as_graph_spells_them() {
        assert_eq!(canonical_role("mail.read"), "Mail.Read");
        assert_eq!(canonical_role("SITES.SELECTED"), "Sites.Selected");
        assert_eq!(
            canonical_role("sites.fullcontrol.all"),
            "Sites.FullControl.All"
        );
        assert_eq!(canonical_role("Chat.Read.All"), "Chat.Read.All");
    }

    #[test]
    fn sites_selected_needs_a_grant_on_that_site_collection() {
        let tenant = Tenant::new(TenantSpec::default());
        let grants = SiteGrants::default();
        let selected = roles(&["Sites.Selected"]);
        let site0 = tenant.site(0).unwrap().id;
        let site1 = tenant.site(1).unwrap().id;
        let may = |m: &str, p: &str| check(&tenant, &grants, "app", &selected, m, p);
        assert!(may("GET", &format!("/sites/{site0}")).is_err());
        grants.grant(
            0,
            SiteGrant {
                app_id: "app".into(),
                display_name: String::new(),
                roles: roles(&["read"]),
            },
        );
        assert!(may("GET", &format!("/sites/{site0}")).is_ok());
        assert!(may("GET", &format!("/sites/{site0}/drive/root/delta")).is_ok());
        assert!(may("GET", &format!("/sites/{site0}/lists")).is_ok());
        assert!(may("POST", &format!("/sites/{site0}/lists/l/items")).is_err());
        assert!(may("GET", &format!("/sites/{site1}")).is_err());
        assert!(may("GET", "/sites/getAllSites").is_err());
        assert!(may("GET", "/sites/root").is_ok(), "root is site 0");
        // A subsite belongs to its collection's grant.
        let sub = tenant.site(SUBSITE).unwrap().id;
        assert!(may("GET", &format!("/sites/{sub}/lists")).is_ok());
        // Other apps are not helped by this app's grant.
        assert!(check(&tenant, &grants, "other", &selected, "GET", "/sites/root").is_err());
    }
}
