//! Microsoft Graph's mailbox import/export API (`/admin/exchange/mailboxes/{id}/…`,
//! `/users/{id}/settings/exchange`) and in-place archive mailboxes.
//!
//! Mailboxes are addressed by `MBX:xxxxxxxx@yyyyyyyy` ids derived from the seed: each user with
//! a mailbox has a primary mailbox; some have an in-place archive (`Tenant::has_archive`), and
//! user 1 an auto-expanding one whose folders `2019` and `Projects/Old` live in an auxiliary
//! archive mailbox with its own id. Archive folders are mail folders numbered from
//! [`ARCHIVE_FOLDER`]; their items are generated like other messages (older dates) and served
//! by this API only. Items are the same items the Outlook APIs serve: an item's id here is its
//! immutable Outlook id (`Prefer: IdType="ImmutableId"`), and REST ids are accepted too.
//! `exportItems` answers FastTransfer streams (`fxics`) built from the same generated message.

use crate::content::{self, epoch, iso};
use crate::fxics::{self, Attachment, FxMessage, Name, Prop, Val, tag};
use crate::keys::{Coll, CollKey, ItemKey, OUTLOOK_PREFIX, Res, coll_id, item_id, parse_coll_id};
use crate::model::{Ctx, Model, new_state, state_for_change};
use crate::paging::{DeltaSpec, Tok, delta, gone, page_list};
use crate::plan::{AttKind, MessagePlan};
use crate::seeded::hash;
use crate::sim::Sim;
use crate::state::{Content, FxRef, ItemState, Kind, State};
use crate::tenant::{Tenant, wk};
use crate::wire::{Req, Resp, apply_select};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Mail folder numbers at or above this are folders of the user's in-place archive.
pub const ARCHIVE_FOLDER: u32 = 1 << 28;

/// The request header the server sets on `/beta` requests.
pub const VERSION_HEADER: &str = "x-cairn-sim-graph-version";

/// Most item ids one `exportItems` request takes.
pub const EXPORT_MAX: usize = 20;

/// Lifetime of an import URL.
const IMPORT_LIFETIME_SECS: i64 = 3600;

/// The archive's folder tree: (number, name, parent, share of the archive in percent).
/// Folder 0 is the archive's root ("Top of Information Store").
const ARCHIVE_TREE: &[(u32, &str, Option<u32>, u32)] = &[
    (0, "Top of Information Store", None, 0),
    (1, "Inbox", Some(0), 20),
    (2, "Sent Items", Some(0), 10),
    (3, "Deleted Items", Some(0), 5),
    (4, "2019", Some(0), 15),
    (5, "2020", Some(0), 15),
    (6, "Projects", Some(0), 10),
    (7, "Old", Some(6), 8),
];

/// Archive folders held by the auxiliary archive of an auto-expanding archive.
const AUX_FOLDERS: &[u32] = &[4, 7];

/// Which of a user's mailboxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailboxKind {
    Primary,
    /// The main in-place archive mailbox.
    Archive,
    /// The auxiliary archive mailbox of an auto-expanding archive.
    Auxiliary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub user: u32,
    pub kind: MailboxKind,
}

// ---- mailbox ids ---------------------------------------------------------------------------

const ODD: u32 = 0x9E37_79B1;

fn inverse(a: u32) -> u32 {
    let mut x = a;
    for _ in 0..5 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

fn keys(t: &Tenant) -> (u32, u32, u32) {
    (
        hash(t.spec.seed, &[96]) as u32,
        hash(t.spec.seed, &[97]) as u32,
        hash(t.spec.seed, &[98]) as u32,
    )
}

/// The `MBX:…@…` id of a mailbox: stable, derived from the seed.
pub fn mailbox_id(t: &Tenant, m: Mailbox) -> String {
    let (k1, k2, tenant) = keys(t);
    let kind = match m.kind {
        MailboxKind::Primary => 0,
        MailboxKind::Archive => 1,
        MailboxKind::Auxiliary => 2,
    };
    let x = (m.user << 2) | kind;
    let y = (x ^ k1).wrapping_mul(ODD) ^ k2;
    format!("MBX:{y:08x}@{tenant:08x}")
}

/// The mailbox an id names, if it exists.
pub fn parse_mailbox_id(t: &Tenant, id: &str) -> Option<Mailbox> {
    let rest = id
        .get(..4)?
        .eq_ignore_ascii_case("MBX:")
        .then(|| &id[4..])?;
    let (a, b) = rest.split_once('@')?;
    let (k1, k2, tenant) = keys(t);
    if a.len() != 8 || u32::from_str_radix(b, 16).ok()? != tenant || b.len() != 8 {
        return None;
    }
    let y = u32::from_str_radix(a, 16).ok()?;
    let x = (y ^ k2).wrapping_mul(inverse(ODD)) ^ k1;
    let user = x >> 2;
    let kind = match x & 3 {
        0 => MailboxKind::Primary,
        1 => MailboxKind::Archive,
        2 => MailboxKind::Auxiliary,
        _ => return None,
    };
    let ok = match kind {
        MailboxKind::Primary => t.has_mailbox(Res::User(user)),
        MailboxKind::Archive => t.has_archive(user),
        MailboxKind::Auxiliary => t.has_auxiliary_archive(user),
    };
    ok.then_some(Mailbox { user, kind })
}

// ---- archive content -----------------------------------------------------------------------

/// Is this collection a folder of an in-place archive?
pub fn is_archive(c: CollKey) -> bool {
    matches!(c.coll, Coll::MailFolder(f) if f >= ARCHIVE_FOLDER)
}

/// Generated messages in archive folder `n` of user `user`'s archive.
pub fn archive_count(t: &Tenant, user: u32, n: u32) -> u32 {
    if !t.has_archive(user) {
        return 0;
    }
    match ARCHIVE_TREE.iter().find(|x| x.0 == n) {
        Some(&(_, _, _, w)) if w > 0 => (w * t.spec.mail_per_mailbox / 100).max(1),
        _ => 0,
    }
}

/// The plan of archived message `n` of archive folder `folder` (numbered from
/// `ARCHIVE_FOLDER`): generated as any message, dated three to six years before the epoch.
pub fn archive_plan(t: &Tenant, r: Res, folder: u32, n: u32) -> MessagePlan {
    let mut plan = content::message_plan(t, r, folder, n);
    let h = plan.seed;
    let k = folder.saturating_sub(ARCHIVE_FOLDER) as i64;
    let minutes = 3 * 365 * 24 * 60 + n as i64 * 211 + k * 7919 + (h % 90) as i64;
    let minutes = minutes.min(6 * 365 * 24 * 60);
    plan.received = epoch() - chrono::Duration::minutes(minutes);
    plan.sent = plan.received - chrono::Duration::seconds((h % 300) as i64 + 2);
    plan
}

fn archive_coll(user: u32, n: u32) -> CollKey {
    CollKey {
        res: Res::User(user),
        coll: Coll::MailFolder(ARCHIVE_FOLDER + n),
    }
}

/// Which mailbox holds a collection now.
fn home_of(t: &Tenant, c: CollKey) -> Option<Mailbox> {
    let Res::User(user) = c.res else {
        return None;
    };
    let kind = match c.coll {
        Coll::MailFolder(f) if f >= ARCHIVE_FOLDER => {
            if t.has_auxiliary_archive(user) && AUX_FOLDERS.contains(&(f - ARCHIVE_FOLDER)) {
                MailboxKind::Auxiliary
            } else {
                MailboxKind::Archive
            }
        }
        Coll::MailFolder(_) | Coll::ContactFolder(_) | Coll::Calendar(_) => MailboxKind::Primary,
        _ => return None,
    };
    Some(Mailbox { user, kind })
}

/// A folder as the mailbox API shows it.
#[derive(Clone, Debug)]
struct MFolder {
    coll: CollKey,
    name: String,
    parent: Option<CollKey>,
    well_known: Option<&'static str>,
    class: &'static str,
    home: Mailbox,
    /// In listings and folder deltas (Recoverable Items is reached by id or name only).
    listed: bool,
}

const IMM: Ctx = Ctx {
    immutable_ids: true,
};

fn version(req: &Req) -> &'static str {
    if req.header(VERSION_HEADER) == Some("beta") {
        "beta"
    } else {
        "v1.0"
    }
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn moved_message(t: &Tenant, home: Mailbox) -> String {
    format!(
        "Invalid import session. The target session is expected in mailbox {}.",
        mailbox_id(t, home)
    )
}

fn import_error(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({ "Message": message }))
}

/// The capability an import URL carries.
#[derive(Serialize, Deserialize)]
struct ImportCap {
    /// Mailbox id.
    m: String,
    /// Expiry, Unix seconds.
    e: i64,
}

fn time_of(v: &Value) -> Option<u64> {
    let s = v.as_str()?;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(fxics::filetime(t.with_timezone(&chrono::Utc)));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| fxics::filetime(n.and_utc()))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

fn ustr(tag: u32, s: impl Into<String>) -> Prop {
    Prop::tag(tag, Val::Unicode(s.into()))
}

fn keywords(v: &Value) -> Option<Prop> {
    let list: Vec<String> = v
        .as_array()?
        .iter()
        .filter_map(|c| c.as_str().map(str::to_string))
        .collect();
    (!list.is_empty()).then(|| {
        Prop::named(
            fxics::PS_PUBLIC_STRINGS,
            Name::String("Keywords".into()),
            Val::MvUnicode(list),
        )
    })
}

fn recipient(row: usize, kind: i32, a: &Value) -> Vec<Prop> {
    let name = a["name"].as_str().unwrap_or("").to_string();
    let addr = a["address"].as_str().unwrap_or("").to_string();
    vec![
        Prop::tag(tag::ROWID, Val::I32(row as i32)),
        Prop::tag(tag::RECIPIENT_TYPE, Val::I32(kind)),
        ustr(
            tag::DISPLAY_NAME,
            if name.is_empty() { &addr } else { &name },
        ),
        ustr(tag::ADDRESS_TYPE, "SMTP"),
        ustr(tag::EMAIL_ADDRESS, addr.clone()),
        ustr(tag::SMTP_ADDRESS, addr),
    ]
}

fn importance(v: &Value) -> i32 {
    match v.as_str() {
        Some("low") => 0,
        Some("high") => 2,
        _ => 1,
    }
}

impl Sim {
    // ---- settings/exchange ---------------------------------------------------------------

    /// `GET /users/{id}/settings/exchange`: the user's mailbox ids (the archive's under
    /// `/beta` only).
    pub fn exchange_settings(&self, req: &Req, idx: u32) -> Resp {
        let t = &self.model.tenant;
        let Some(user) = t.user(idx) else {
            return Resp::not_found_directory(&idx.to_string());
        };
        if !user.has_mailbox() {
            return Resp::error(
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
            );
        }
        let v = version(req);
        let mut out = json!({
            "@odata.context": format!("{}/{v}/$metadata#users('{}')/settings/exchange/$entity", req.base, user.id),
            "primaryMailboxId": mailbox_id(t, Mailbox { user: idx, kind: MailboxKind::Primary }),
        });
        if v == "beta" && t.has_archive(idx) {
            out["inPlaceArchiveMailboxId"] = json!(mailbox_id(
                t,
                Mailbox {
                    user: idx,
                    kind: MailboxKind::Archive
                }
            ));
        }
        Resp::ok(out)
    }

    // ---- folders -------------------------------------------------------------------------

    /// The folders of a mailbox (the root excluded) and the root's collection. An archive
    /// and its auxiliary archive share one tree; each folder says where it lives.
    fn mbx_folders(&self, st: &State, m: Mailbox) -> (CollKey, Vec<MFolder>) {
        let t = &self.model.tenant;
        let r = Res::User(m.user);
        if m.kind != MailboxKind::Primary {
            let out = ARCHIVE_TREE
                .iter()
                .filter(|x| x.0 > 0)
                .map(|&(n, name, parent, _)| {
                    let coll = archive_coll(m.user, n);
                    MFolder {
                        coll,
                        name: name.into(),
                        parent: parent.map(|p| archive_coll(m.user, p)),
                        well_known: None,
                        class: "IPF.Note",
                        home: home_of(t, coll).unwrap_or(m),
                        listed: true,
                    }
                })
                .collect();
            return (archive_coll(m.user, 0), out);
        }
        let root = CollKey {
            res: r,
            coll: Coll::MailFolder(wk::ROOT),
        };
        let home = Mailbox {
            user: m.user,
            kind: MailboxKind::Primary,
        };
        let mail = self.model.mail_folders(st, r);
        let num = |c: CollKey| match c.coll {
            Coll::MailFolder(n) => n,
            _ => u32::MAX,
        };
        let under_root = |f: &crate::model::FolderInfo| {
            let mut cur = Some(f.clone());
            for _ in 0..64 {
                let Some(x) = cur else { break };
                if x.well_known == Some("msgfolderroot") {
                    return true;
                }
                cur = x
                    .parent
                    .and_then(|p| mail.iter().find(|y| num(y.coll) == p).cloned());
            }
            false
        };
        let mut out: Vec<MFolder> = mail
            .iter()
            .filter(|f| f.well_known != Some("msgfolderroot"))
            .map(|f| MFolder {
                coll: f.coll,
                name: f.name.clone(),
                parent: f.parent.map(|p| CollKey {
                    res: r,
                    coll: Coll::MailFolder(p),
                }),
                well_known: f.well_known,
                class: "IPF.Note",
                home,
                listed: under_root(f),
            })
            .collect();
        for (c, name) in self.model.calendars(r) {
            let first = c.coll == Coll::Calendar(0);
            out.push(MFolder {
                coll: c,
                name: name.into(),
                parent: Some(if first {
                    root
                } else {
                    CollKey {
                        res: r,
                        coll: Coll::Calendar(0),
                    }
                }),
                well_known: first.then_some("calendar"),
                class: "IPF.Appointment",
                home,
                listed: true,
            });
        }
        for f in self.model.contact_folders(st, r) {
            out.push(MFolder {
                coll: f.coll,
                name: f.name.clone(),
                parent: Some(match f.parent {
                    Some(p) => CollKey {
                        res: r,
                        coll: Coll::ContactFolder(p),
                    },
                    None => root,
                }),
                well_known: (f.coll.coll == Coll::ContactFolder(0)).then_some("contacts"),
                class: "IPF.Contact",
                home,
                listed: true,
            });
        }
        (root, out)
    }

    fn mailbox_url(&self, req: &Req, m: Mailbox) -> String {
        format!(
            "{}/{}/admin/exchange/mailboxes/{}",
            req.base,
            version(req),
            mailbox_id(&self.model.tenant, m)
        )
    }

    fn mfolder_json(&self, req: &Req, st: &State, f: &MFolder, all: &[MFolder]) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.mailboxFolder",
            "id": coll_id(f.coll),
            "displayName": f.name,
            "parentFolderId": f.parent.map(coll_id),
            "parentMailboxUrl": self.mailbox_url(req, f.home),
            "childFolderCount": all.iter().filter(|x| x.parent == Some(f.coll)).count(),
            "totalItemCount": self.members(st, f.coll).len(),
            "wellKnownName": f.well_known,
            "type": f.class,
        })
    }

    /// A listing of folders: `$filter` (any property, as Outlook filters), `$select`, `$top`
    /// / `Prefer: odata.maxpagesize` (default 10), `$skip`.
    fn folder_list(&self, req: &Req, st: &State, list: Vec<&MFolder>, all: &[MFolder]) -> Resp {
        let filter = match req.q("$filter").map(crate::odata::Expr::parse) {
            None => None,
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                return Resp::error(
                    400,
                    "ErrorInvalidUrlQueryFilter",
                    &format!("Invalid filter clause: {e}"),
                );
            }
        };
        let items: Vec<Value> = list
            .into_iter()
            .map(|f| self.mfolder_json(req, st, f, all))
            .filter(|v| filter.as_ref().is_none_or(|f| f.matches(v)))
            .collect();
        let url = format!("{}/{}{}", req.base, version(req), req.path);
        page_list(req, &url, items, 10, 1000)
    }

    /// `folders/delta` and `folders/{id}/childFolders/delta`: the folders (all of them, or
    /// those below `scope`), flat, then what changed.
    fn mbx_folder_delta(
        &self,
        req: &Req,
        st: &State,
        m: Mailbox,
        all: &[MFolder],
        scope: Option<CollKey>,
    ) -> Resp {
        let url = format!("{}/{}{}", req.base, version(req), req.path);
        let within = |f: &MFolder| -> bool {
            let Some(s) = scope else { return true };
            let mut cur = f.parent;
            for _ in 0..64 {
                match cur {
                    Some(p) if p == s => return true,
                    Some(p) => cur = all.iter().find(|x| x.coll == p).and_then(|x| x.parent),
                    None => return false,
                }
            }
            false
        };
        let raw = req.q("$deltatoken").or_else(|| req.q("$skiptoken"));
        let (since, offset, snapshot, page) = match raw.map(Tok::decode) {
            None => (None, 0, st.seq, req.max_page_size()),
            Some(Some(t)) if t.i == st.instance && t.m == 4 => {
                ((t.s != u64::MAX).then_some(t.s), t.p as usize, t.u, t.n)
            }
            Some(Some(t)) if t.i == st.instance && t.m == 2 && t.s >= st.floor => {
                (Some(t.s), 0, st.seq, req.max_page_size())
            }
            Some(_) => return gone(false, &url),
        };
        let mut value = Vec::new();
        match since {
            None => {
                for f in all.iter().filter(|f| within(f)) {
                    value.push(self.mfolder_json(req, st, f, all));
                }
            }
            Some(s) => {
                let r = Res::User(m.user);
                let log = st.folder_log.get(&r).cloned().unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for (seq, c) in log {
                    if seq <= s || seq > snapshot || !seen.insert(c) {
                        continue;
                    }
                    if home_of(&self.model.tenant, c).map(|h| h.kind == MailboxKind::Primary)
                        != Some(m.kind == MailboxKind::Primary)
                    {
                        continue;
                    }
                    match all.iter().find(|f| f.coll == c) {
                        Some(f) if within(f) => value.push(self.mfolder_json(req, st, f, all)),
                        Some(_) => {}
                        None => value.push(json!({
                            "@odata.type": "#microsoft.graph.mailboxFolder",
                            "id": coll_id(c),
                            "@removed": {"reason": "deleted"}
                        })),
                    }
                }
            }
        }
        let sel = req.select();
        for v in value.iter_mut() {
            apply_select(v, &sel);
        }
        let size = page.map(|n| n.max(1) as usize).unwrap_or(usize::MAX);
        let total = value.len();
        let value: Vec<Value> = value.into_iter().skip(offset).take(size).collect();
        let mut t = Tok {
            i: st.instance,
            m: 2,
            s: snapshot,
            u: snapshot,
            p: 0,
            sel: None,
            x: None,
            n: None,
            f: None,
        };
        if offset.saturating_add(size) < total {
            t.m = 4;
            t.s = since.unwrap_or(u64::MAX);
            t.p = (offset + size) as u64;
            t.n = page;
            return Resp::ok(
                json!({"value": value, "@odata.nextLink": format!("{url}?$skiptoken={}", t.encode())}),
            );
        }
        Resp::ok(
            json!({"value": value, "@odata.deltaLink": format!("{url}?$deltatoken={}", t.encode())}),
        )
    }

    // ---- items ---------------------------------------------------------------------------

    /// The message class of an item.
    fn item_class(&self, key: ItemKey, s: Option<&ItemState>) -> Option<String> {
        if let Some(fx) = s.and_then(|s| s.fx.as_ref()) {
            return Some(fx.class.clone());
        }
        Some(
            match self.model.kind_of(key, s)? {
                Kind::Message => "IPM.Note",
                Kind::Event => "IPM.Appointment",
                Kind::Contact => "IPM.Contact",
                _ => return None,
            }
            .into(),
        )
    }

    /// The item's Outlook JSON (message, event or contact), ids immutable.
    fn item_graph_json(&self, st: &State, key: ItemKey, s: Option<&ItemState>) -> Option<Value> {
        match self.model.kind_of(key, s)? {
            Kind::Message => self.model.message_json(st, key, IMM),
            Kind::Event => self.model.event_json(st, key, IMM),
            Kind::Contact => self.model.contact_json(st, key, IMM),
            _ => None,
        }
    }

    /// `mailboxItem.size` (and `PidTagMessageSize`): the imported stream's length, the
    /// stored MIME's, or an estimate from the generated message.
    fn item_size(&self, st: &State, key: ItemKey, s: Option<&ItemState>, v: &Value) -> u64 {
        if let Some(fx) = s.and_then(|s| s.fx.as_ref()) {
            return fx.blob.len;
        }
        if let Some(Content::Blob(b)) = s.and_then(|s| s.content.as_ref()) {
            return b.len;
        }
        let _ = st;
        match self.model.message_plan(key) {
            Some(p) => {
                p.body_text.len() as u64 * if p.html { 3 } else { 1 }
                    + p.attachments.iter().map(|a| a.size).sum::<u64>()
                    + 1_500
            }
            None => serde_json::to_vec(v).map(|b| b.len() as u64).unwrap_or(0) + 1_000,
        }
    }

    /// An item as a `mailboxItem`.
    fn mailbox_item_json(&self, st: &State, key: ItemKey) -> Option<Value> {
        let (_, s) = self.model.current(st, key)?;
        let class = self.item_class(key, s)?;
        let v = self.item_graph_json(st, key, s)?;
        let ck = Model::change_key(key, s.map(|s| s.rev).unwrap_or(0));
        let created = text(&v["createdDateTime"])
            .or_else(|| s.map(|s| s.created.clone()))
            .unwrap_or_else(|| iso(epoch()));
        let modified = text(&v["lastModifiedDateTime"])
            .or_else(|| s.map(|s| s.modified.clone()))
            .unwrap_or_else(|| created.clone());
        Some(json!({
            "@odata.type": "#microsoft.graph.mailboxItem",
            "@odata.etag": format!("W/\"{ck}\""),
            "id": item_id(OUTLOOK_PREFIX, key),
            "changeKey": ck,
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "categories": v.get("categories").cloned().filter(Value::is_array).unwrap_or(json!([])),
            "type": class,
            "size": self.item_size(st, key, s, &v),
        }))
    }

    fn item_routes(
        &self,
        req: &Req,
        st: &mut State,
        mb: Mailbox,
        f: &MFolder,
        rest: &[&str],
    ) -> Resp {
        if req.method == "DELETE" {
            return self.delete_item(req, st, mb, f, rest.first().copied().unwrap_or(""));
        }
        let st: &State = st;
        let url = format!("{}/{}{}", req.base, version(req), req.path);
        let render = |st: &State, k: ItemKey| self.mailbox_item_json(st, k);
        let tomb = |_: &State, k: ItemKey| {
            Some(json!({
                "@odata.type": "#microsoft.graph.mailboxItem",
                "id": item_id(OUTLOOK_PREFIX, k),
                "@removed": {"reason": "deleted"},
            }))
        };
        match rest {
            [] | ["delta"] => {
                let first = crate::paging::Tok::of(req).is_none();
                if first && req.q("$search").is_some() {
                    return Resp::error(
                        400,
                        "ErrorInvalidUrlQuery",
                        "The query parameter '$search' is not supported with change tracking over the 'Items' resource.",
                    );
                }
                // Only `$orderby=receivedDateTime desc` (accepted, order unchanged) and
                // `$filter=receivedDateTime ge|gt {v}`, as the delta page says.
                if first
                    && req
                        .q("$orderby")
                        .is_some_and(|o| !o.trim().eq_ignore_ascii_case("receivedDateTime desc"))
                {
                    return Resp::error(
                        400,
                        "ErrorInvalidUrlQuery",
                        "The only supported $orderby is 'receivedDateTime desc'.",
                    );
                }
                let filter_src = req
                    .q("$filter")
                    .map(str::to_string)
                    .or_else(|| Tok::of(req).and_then(|t| t.f));
                let filter = match filter_src.as_deref().map(received_filter) {
                    None => None,
                    Some(Some(f)) => Some(f),
                    Some(None) => {
                        return Resp::error(
                            400,
                            "ErrorInvalidUrlQuery",
                            "The only supported $filter is 'receivedDateTime ge|gt {value}'.",
                        );
                    }
                };
                let keep = |st: &State, k: ItemKey| {
                    filter.as_ref().is_none_or(|f| {
                        self.model
                            .current(st, k)
                            .and_then(|(_, s)| self.item_graph_json(st, k, s))
                            .is_some_and(|v| f.matches(&v))
                    })
                };
                let spec = DeltaSpec {
                    max_page: self.cfg.outlook_max_page,
                    members_filter: filter.is_some().then_some(&keep as _),
                    ..DeltaSpec::new(url, &render, &tomb)
                };
                delta(&self.model, st, req, f.coll, &spec, rest.is_empty())
            }
            [id] => {
                let Some(key) = self.model.parse_outlook_id(st, id) else {
                    return Resp::not_found_outlook();
                };
                match self.model.current(st, key) {
                    Some((c, _)) if c == f.coll => {}
                    _ => return Resp::not_found_outlook(),
                }
                match self.mailbox_item_json(st, key) {
                    Some(mut v) => {
                        apply_select(&mut v, &req.select());
                        Resp::ok(v)
                    }
                    None => Resp::not_found_outlook(),
                }
            }
            _ => no_segment(rest),
        }
    }

    /// `DELETE …/folders/{fid}/items/{id}?disposalType=softDelete|hardDelete`: a soft delete
    /// moves a primary-mailbox item to Recoverable Items (Deletions), a hard delete (and any
    /// delete in an archive) removes it.
    fn delete_item(&self, req: &Req, st: &mut State, mb: Mailbox, f: &MFolder, id: &str) -> Resp {
        let soft = match req.q("disposalType") {
            Some(d) if d.eq_ignore_ascii_case("softDelete") => true,
            Some(d) if d.eq_ignore_ascii_case("hardDelete") => false,
            _ => {
                return Resp::error(
                    400,
                    "ErrorInvalidRequest",
                    "The query parameter 'disposalType' is required: softDelete or hardDelete.",
                );
            }
        };
        let Some(key) = self.model.parse_outlook_id(st, id) else {
            return Resp::not_found_outlook();
        };
        let Some((coll, s)) = self.model.current(st, key) else {
            return Resp::not_found_outlook();
        };
        if coll != f.coll {
            return Resp::not_found_outlook();
        }
        let Some(kind) = self.model.kind_of(key, s) else {
            return Resp::not_found_outlook();
        };
        let deletions = CollKey {
            res: Res::User(mb.user),
            coll: Coll::MailFolder(wk::RECOVERABLE_DELETIONS),
        };
        let mut s = state_for_change(st, key, kind, coll);
        s.rev += 1;
        s.modified = iso(chrono::Utc::now());
        if soft && mb.kind == MailboxKind::Primary && coll != deletions {
            s.coll = deletions;
        } else {
            s.deleted = true;
        }
        match st.put(key, s, Some(coll)) {
            Ok(_) => Resp::empty(204),
            Err(e) => crate::graph::internal(e),
        }
    }

    /// `POST …/folders` and `POST …/folders/{fid}/childFolders` `{"displayName", "type"}`:
    /// a mail (`IPF.Note`) or contact (`IPF.Contact`) folder of a primary mailbox, made as
    /// the Outlook API makes it (same ids, same journal, 409 `ErrorFolderExists`).
    fn create_mbx_folder(&self, req: &Req, mb: Mailbox, parent: Option<&str>) -> Resp {
        if mb.kind != MailboxKind::Primary {
            return Resp::error(
                400,
                "ErrorInvalidRequest",
                "The simulator does not create folders in archive mailboxes.",
            );
        }
        let body = match req.json_body() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let class = body["type"].as_str().unwrap_or("");
        let segment = match class {
            "IPF.Note" => "mailFolders",
            "IPF.Contact" => "contactFolders",
            "" => return Resp::error(400, "ErrorInvalidRequest", "type is required."),
            _ => {
                return Resp::error(
                    400,
                    "ErrorInvalidRequest",
                    &format!(
                        "The simulator creates IPF.Note and IPF.Contact folders, not {class}."
                    ),
                );
            }
        };
        let Some(user) = self.model.tenant.user(mb.user) else {
            return Resp::not_found_outlook();
        };
        let path = match parent {
            None => format!("/users/{}/{segment}", user.id),
            Some(fid) => {
                let st = self.state();
                let (_, all) = self.mbx_folders(&st, mb);
                drop(st);
                let Some(p) = all.iter().find(|f| {
                    coll_id(f.coll) == fid
                        || f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(fid))
                }) else {
                    return Resp::not_found_outlook();
                };
                if p.class != class {
                    return Resp::error(
                        400,
                        "ErrorInvalidRequest",
                        "A child folder has its parent's type.",
                    );
                }
                format!(
                    "/users/{}/{segment}/{}/childFolders",
                    user.id,
                    coll_id(p.coll)
                )
            }
        };
        let sub = Req {
            path,
            body: Bytes::from(
                serde_json::to_vec(&json!({"displayName": body["displayName"]}))
                    .unwrap_or_default(),
            ),
            ..req.clone()
        };
        let resp = self.graph(&sub);
        let crate::wire::Body::Json(v) = &resp.body else {
            return resp;
        };
        if resp.status != 201 {
            return resp;
        }
        let id = v["id"].as_str().unwrap_or("").to_string();
        let st = self.state();
        let (_, all) = self.mbx_folders(&st, mb);
        match all.iter().find(|f| coll_id(f.coll) == id) {
            Some(f) => Resp::json(201, self.mfolder_json(req, &st, f, &all)),
            None => resp,
        }
    }

    // ---- routing -------------------------------------------------------------------------

    /// `/admin/exchange/mailboxes/{mailbox-id}/…`.
    pub fn mailbox_api_routes(&self, req: &Req, mbx: &str, rest: &[&str]) -> Resp {
        let t = &self.model.tenant;
        let Some(mb) = parse_mailbox_id(t, mbx) else {
            return Resp::error(
                404,
                "ErrorMailboxNotFound",
                &format!("The mailbox '{mbx}' was not found."),
            );
        };
        let m = req.method.as_str();
        match (m, rest) {
            ("POST", ["exportItems"]) => return self.export_items(req, mb),
            ("POST", ["createImportSession"]) => return self.create_import_session(req, mb),
            ("POST", ["folders"]) => return self.create_mbx_folder(req, mb, None),
            ("POST", ["folders", fid, "childFolders"]) => {
                return self.create_mbx_folder(req, mb, Some(fid));
            }
            ("GET", ["folders", ..]) | ("DELETE", ["folders", _, "items", _]) => {}
            _ => return no_segment(rest),
        }
        let mut st = self.state();
        let (root, all) = self.mbx_folders(&st, mb);
        // The folders this mailbox id serves: an auxiliary archive only those it holds.
        let visible: Vec<&MFolder> = all
            .iter()
            .filter(|f| mb.kind != MailboxKind::Auxiliary || f.home == mb)
            .collect();
        match rest {
            ["folders"] => {
                let list = visible
                    .into_iter()
                    .filter(|f| f.listed)
                    .filter(|f| mb.kind == MailboxKind::Auxiliary || f.parent == Some(root))
                    .collect();
                self.folder_list(req, &st, list, &all)
            }
            ["folders", "delta"] => {
                let scoped: Vec<MFolder> =
                    visible.into_iter().filter(|f| f.listed).cloned().collect();
                self.mbx_folder_delta(req, &st, mb, &scoped, None)
            }
            ["folders", fid, more @ ..] => {
                let folder = visible.iter().copied().find(|f| {
                    coll_id(f.coll) == *fid
                        || (mb.kind == MailboxKind::Primary
                            && f.well_known.is_some_and(|w| w.eq_ignore_ascii_case(fid)))
                });
                let Some(folder) = folder.cloned() else {
                    return Resp::not_found_outlook();
                };
                // An expanded folder: its content lives in the auxiliary archive.
                if mb.kind == MailboxKind::Archive && folder.home != mb {
                    return self.redirect(req, folder.home, fid, more);
                }
                self.mbx_folder_routes(req, &mut st, mb, &folder, &all, more)
            }
            _ => no_segment(rest),
        }
    }

    fn redirect(&self, req: &Req, home: Mailbox, fid: &str, more: &[&str]) -> Resp {
        let mut loc = format!("{}/folders/{fid}", self.mailbox_url(req, home));
        for s in more {
            loc.push('/');
            loc.push_str(s);
        }
        if !req.query.is_empty() {
            let q: Vec<String> = req
                .query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        percent_encoding::utf8_percent_encode(
                            v,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    )
                })
                .collect();
            loc.push('?');
            loc.push_str(&q.join("&"));
        }
        Resp::empty(308).with_header("Location", loc)
    }

    fn mbx_folder_routes(
        &self,
        req: &Req,
        st: &mut State,
        mb: Mailbox,
        folder: &MFolder,
        all: &[MFolder],
        more: &[&str],
    ) -> Resp {
        match more {
            [] => {
                let mut v = self.mfolder_json(req, st, folder, all);
                apply_select(&mut v, &req.select());
                Resp::ok(v)
            }
            ["childFolders"] => {
                let list = all
                    .iter()
                    .filter(|f| f.parent == Some(folder.coll))
                    .collect();
                self.folder_list(req, st, list, all)
            }
            ["childFolders", "delta"] => self.mbx_folder_delta(req, st, mb, all, Some(folder.coll)),
            ["childFolders", cid] => {
                match all
                    .iter()
                    .find(|f| f.parent == Some(folder.coll) && coll_id(f.coll) == *cid)
                {
                    Some(c) => {
                        let mut v = self.mfolder_json(req, st, c, all);
                        apply_select(&mut v, &req.select());
                        Resp::ok(v)
                    }
                    None => Resp::not_found_outlook(),
                }
            }
            ["items", rest @ ..] => self.item_routes(req, st, mb, folder, rest),
            _ => no_segment(more),
        }
    }

    // ---- export --------------------------------------------------------------------------

    /// `POST …/mailboxes/{id}/exportItems` `{"itemIds": […]}` (at most 20).
    fn export_items(&self, req: &Req, mb: Mailbox) -> Resp {
        let body = match req.json_body() {
            Ok(b) => b,
            Err(e) => return e,
        };
        let Some(ids) = body.get("itemIds").and_then(Value::as_array) else {
            return Resp::error(
                400,
                "ErrorInvalidRequest",
                "The request body must contain 'itemIds', a collection of item ids.",
            );
        };
        let ids: Vec<&str> = ids.iter().filter_map(Value::as_str).collect();
        if ids.is_empty() {
            return Resp::error(
                400,
                "ErrorInvalidRequest",
                "'itemIds' must contain at least one item id.",
            );
        }
        if ids.len() > EXPORT_MAX {
            return Resp::error(
                400,
                "ErrorInvalidRequest",
                &format!(
                    "'itemIds' contains {} ids; an export request takes at most {EXPORT_MAX}.",
                    ids.len()
                ),
            );
        }
        let t = &self.model.tenant;
        let st = self.state();
        let not_found = |id: &str| json!({"itemId": id, "error": {"code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}});
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(key) = self.model.parse_outlook_id(&st, id) else {
                out.push(not_found(id));
                continue;
            };
            let Some((coll, s)) = self.model.current(&st, key) else {
                out.push(not_found(id));
                continue;
            };
            let Some(home) = home_of(t, coll).filter(|h| h.user == mb.user) else {
                out.push(not_found(id));
                continue;
            };
            if home != mb {
                if mb.kind == MailboxKind::Archive && home.kind == MailboxKind::Auxiliary {
                    out.push(json!({"itemId": id, "error": {
                        "code": "ErrorArchiveFolderMovedPermanently",
                        "message": format!("{}/exportItems", self.mailbox_url(req, home)),
                    }}));
                } else {
                    out.push(not_found(id));
                }
                continue;
            }
            match self.fx_stream(&st, key) {
                Some(data) => out.push(json!({
                    "itemId": id,
                    "changeKey": Model::change_key(key, s.map(|s| s.rev).unwrap_or(0)),
                    "data": STANDARD.encode(&data),
                })),
                None => out.push(not_found(id)),
            }
        }
        Resp::ok(json!({
            "@odata.context": format!("{}/{}/$metadata#Collection(microsoft.graph.exportItemResponse)", req.base, version(req)),
            "value": out,
        }))
    }

    /// The FastTransfer stream `exportItems` answers for an item: the stream it was imported
    /// with, else one encoded from the item as the Outlook APIs serve it.
    pub fn fx_stream(&self, st: &State, key: ItemKey) -> Option<Vec<u8>> {
        let (_, s) = self.model.current(st, key)?;
        if let Some(fx) = s.and_then(|s| s.fx.as_ref()) {
            return st.blob(&fx.blob).map(|b| b.to_vec());
        }
        let v = self.item_graph_json(st, key, s)?;
        let size = self.item_size(st, key, s, &v);
        let m = match self.model.kind_of(key, s)? {
            Kind::Message => self.message_fx(st, key, s, &v, size),
            Kind::Event => event_fx(&v, size),
            Kind::Contact => contact_fx(&v, size),
            _ => return None,
        };
        Some(fxics::encode(&m))
    }

    fn message_fx(
        &self,
        st: &State,
        key: ItemKey,
        s: Option<&ItemState>,
        v: &Value,
        size: u64,
    ) -> FxMessage {
        let stored_mime = matches!(s.and_then(|s| s.content.as_ref()), Some(Content::Blob(_)));
        let plan = if stored_mime {
            None
        } else {
            self.model.message_plan(key)
        };
        let mime = self.model.message_mime(st, key).unwrap_or_default();
        let mut p = vec![ustr(tag::MESSAGE_CLASS, "IPM.Note")];
        let subject = v["subject"].as_str().unwrap_or("").to_string();
        p.push(ustr(tag::SUBJECT, subject.clone()));
        let topic = subject
            .strip_prefix("RE: ")
            .or_else(|| subject.strip_prefix("FW: "))
            .unwrap_or(&subject)
            .to_string();
        p.push(ustr(tag::CONVERSATION_TOPIC, topic));
        p.push(Prop::tag(
            tag::IMPORTANCE,
            Val::I32(importance(&v["importance"])),
        ));
        for (tg, field) in [
            (tag::CLIENT_SUBMIT_TIME, "sentDateTime"),
            (tag::MESSAGE_DELIVERY_TIME, "receivedDateTime"),
            (tag::CREATION_TIME, "createdDateTime"),
            (tag::LAST_MODIFICATION_TIME, "lastModifiedDateTime"),
        ] {
            if let Some(ft) = time_of(&v[field]) {
                p.push(Prop::tag(tg, Val::Time(ft)));
            }
        }
        let from = &v["from"]["emailAddress"];
        if from.is_object() {
            let name = from["name"].as_str().unwrap_or("");
            let addr = from["address"].as_str().unwrap_or("");
            p.push(ustr(tag::SENDER_NAME, name));
            p.push(ustr(tag::SENDER_ADDRESS_TYPE, "SMTP"));
            p.push(ustr(tag::SENDER_EMAIL_ADDRESS, addr));
            p.push(ustr(tag::SENDER_SMTP_ADDRESS, addr));
            p.push(ustr(tag::SENT_REPRESENTING_NAME, name));
            p.push(ustr(tag::SENT_REPRESENTING_ADDRESS_TYPE, "SMTP"));
            p.push(ustr(tag::SENT_REPRESENTING_EMAIL_ADDRESS, addr));
            p.push(ustr(tag::SENT_REPRESENTING_SMTP_ADDRESS, addr));
        }
        if let Some(id) = text(&v["internetMessageId"]) {
            p.push(ustr(tag::INTERNET_MESSAGE_ID, id));
        }
        if let Some(r) = plan.as_ref().and_then(|p| p.in_reply_to.clone()) {
            p.push(ustr(tag::IN_REPLY_TO_ID, r));
        }
        let header_end = mime
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 2)
            .or_else(|| mime.windows(2).position(|w| w == b"\n\n").map(|i| i + 1))
            .unwrap_or(mime.len());
        p.push(ustr(
            tag::TRANSPORT_MESSAGE_HEADERS,
            String::from_utf8_lossy(&mime[..header_end]).into_owned(),
        ));
        let body = v["body"]["content"].as_str().unwrap_or("");
        let html = v["body"]["contentType"].as_str() == Some("html");
        let plain = match &plan {
            Some(pl) => pl.body_text.clone(),
            None if html => content::html_text(body),
            None => body.to_string(),
        };
        p.push(ustr(tag::BODY, plain));
        if html {
            p.push(Prop::tag(tag::HTML, Val::Binary(body.as_bytes().to_vec())));
        }
        let read = v["isRead"].as_bool().unwrap_or(true);
        let parsed = mail_parser::MessageParser::default().parse(&mime[..]);
        let attachments = match &plan {
            Some(pl) => self.plan_attachments(pl, parsed.as_ref()),
            None => mime_attachments(parsed.as_ref()),
        };
        let mut flags = 0;
        if read {
            flags |= 0x01; // mfRead
        }
        if v["isDraft"].as_bool() == Some(true) {
            flags |= 0x08; // mfUnsent
        }
        if !attachments.is_empty() {
            flags |= 0x10; // mfHasAttach
        }
        p.push(Prop::tag(tag::MESSAGE_FLAGS, Val::I32(flags)));
        p.push(Prop::tag(
            tag::MESSAGE_SIZE,
            Val::I32(size.min(i32::MAX as u64) as i32),
        ));
        // MAPI-only: the follow-up flag and the icon Outlook shows.
        match v["flag"]["flagStatus"].as_str() {
            Some("flagged") => p.push(Prop::tag(tag::FLAG_STATUS, Val::I32(2))),
            Some("complete") => p.push(Prop::tag(tag::FLAG_STATUS, Val::I32(1))),
            _ => {}
        }
        p.push(Prop::tag(
            tag::ICON_INDEX,
            Val::I32(if read { 0x100 } else { 0x101 }),
        ));
        if let Some(k) = keywords(&v["categories"]) {
            p.push(k);
        }
        let mut recipients = Vec::new();
        for (kind, field) in [
            (1, "toRecipients"),
            (2, "ccRecipients"),
            (3, "bccRecipients"),
        ] {
            for a in v[field].as_array().into_iter().flatten() {
                recipients.push(recipient(recipients.len(), kind, &a["emailAddress"]));
            }
        }
        FxMessage {
            props: p,
            recipients,
            attachments,
        }
    }

    /// The attachments of a generated message; attached messages are embedded, read from
    /// the `message/rfc822` parts of its MIME (in order).
    fn plan_attachments(
        &self,
        plan: &MessagePlan,
        mime: Option<&mail_parser::Message>,
    ) -> Vec<Attachment> {
        let mut nested = mime
            .into_iter()
            .flat_map(|m| m.attachments())
            .filter_map(|p| p.message());
        plan.attachments
            .iter()
            .map(|a| {
                if a.kind == AttKind::Item
                    && let Some(inner) = nested.next()
                {
                    return embedded_attachment(&a.name, inner);
                }
                let mut p = vec![
                    ustr(tag::ATTACH_LONG_FILENAME, a.name.clone()),
                    ustr(tag::ATTACH_MIME_TAG, a.content_type.clone()),
                ];
                match a.kind {
                    AttKind::Reference => {
                        p.insert(0, Prop::tag(tag::ATTACH_METHOD, Val::I32(7)));
                        p.push(ustr(
                            tag::ATTACH_LONG_PATHNAME,
                            format!(
                                "https://{}-my.sharepoint.com/personal/doc/{}",
                                self.model.tenant.tenant_short(),
                                a.seed % 100_000
                            ),
                        ));
                        p.push(Prop::tag(tag::ATTACH_SIZE, Val::I32(0)));
                    }
                    AttKind::File | AttKind::Item => {
                        p.insert(0, Prop::tag(tag::ATTACH_METHOD, Val::I32(1)));
                        if let Some(cid) = &a.content_id {
                            p.push(ustr(tag::ATTACH_CONTENT_ID, cid.clone()));
                        }
                        let data = crate::mime::attachment_bytes(a);
                        p.push(Prop::tag(tag::ATTACH_SIZE, Val::I32(data.len() as i32)));
                        p.push(Prop::tag(tag::ATTACH_DATA_BINARY, Val::Binary(data)));
                    }
                }
                Attachment::new(p)
            })
            .collect()
    }

    // ---- import --------------------------------------------------------------------------

    /// `POST …/mailboxes/{id}/createImportSession`.
    fn create_import_session(&self, req: &Req, mb: Mailbox) -> Resp {
        let id = mailbox_id(&self.model.tenant, mb);
        let exp = chrono::Utc::now() + chrono::Duration::seconds(IMPORT_LIFETIME_SECS);
        let cap = ImportCap {
            m: id.clone(),
            e: exp.timestamp(),
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cap).unwrap_or_default());
        let token = format!("{payload}.{}", self.sign(&payload));
        let v = version(req);
        let gv = if v == "beta" { "gbeta" } else { "gv1.0" };
        Resp::ok(json!({
            "@odata.context": format!("{}/{v}/$metadata#microsoft.graph.mailboxItemImportSession", req.base),
            "importUrl": format!("{}/api/{gv}/Mailboxes('{id}')/importItem?authtoken={token}", req.base),
            // Seven fractional digits, as Graph writes them.
            "expirationDateTime": format!("{}0Z", exp.format("%Y-%m-%dT%H:%M:%S%.6f")),
        }))
    }

    /// `POST {importUrl}`: create or update one item from a FastTransfer stream. The URL is
    /// pre-authenticated: a request with an `Authorization` header is refused (401).
    pub fn import_item(
        &self,
        req: &Req,
        version: &str,
        mailbox_segment: &str,
        token: Option<&str>,
    ) -> Resp {
        if req.header("authorization").is_some() {
            return import_error(
                401,
                "The import URL is pre-authenticated: send it without an Authorization header.",
            );
        }
        if !matches!(version, "gv1.0" | "gbeta") {
            return import_error(404, "Unknown API version.");
        }
        let cap = token.and_then(|tk| {
            let (payload, sig) = tk.split_once('.')?;
            (self.sign(payload) == sig).then_some(())?;
            serde_json::from_slice::<ImportCap>(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
        });
        let Some(cap) = cap else {
            return import_error(401, "The import session token is invalid.");
        };
        if cap.e < chrono::Utc::now().timestamp() {
            return import_error(401, "The import session has expired.");
        }
        if mailbox_segment != format!("Mailboxes('{}')", cap.m) {
            return import_error(401, "The import URL was modified.");
        }
        let t = &self.model.tenant;
        let Some(mb) = parse_mailbox_id(t, &cap.m) else {
            return import_error(404, "The mailbox was not found.");
        };
        let permit = match self
            .throttle
            .admit(crate::throttle::Bucket::Mailbox(Res::User(mb.user)))
        {
            Ok(p) => p,
            Err(rej) => {
                return Resp::error(rej.status, rej.code, rej.message)
                    .with_header("Retry-After", rej.retry_after.to_string());
            }
        };
        let resp = self.import_into(req, mb);
        drop(permit);
        resp
    }

    fn import_into(&self, req: &Req, mb: Mailbox) -> Resp {
        let t = &self.model.tenant;
        let body = match req.json_body() {
            Ok(Value::Object(o)) => o,
            _ => return import_error(400, "The request body must be a JSON object."),
        };
        let field = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        };
        let (Some(folder_id), Some(mode), Some(data)) =
            (field("FolderId"), field("Mode"), field("Data"))
        else {
            return import_error(400, "FolderId, Mode and Data are required.");
        };
        let st_guard = self.state();
        let (_, all) = self.mbx_folders(&st_guard, mb);
        drop(st_guard);
        let Some(folder) = parse_coll_id(folder_id).and_then(|c| all.iter().find(|f| f.coll == c))
        else {
            return import_error(404, "The specified folder was not found in the mailbox.");
        };
        if folder.home != mb {
            return import_error(409, &moved_message(t, folder.home));
        }
        let Ok(bytes) = STANDARD.decode(data.trim()) else {
            return import_error(400, "Data is not valid base64.");
        };
        let fx = match fxics::decode(&bytes) {
            Ok(m) => m,
            Err(e) => return import_error(400, &format!("Data is not a valid item stream: {e}")),
        };
        let class = fx.str(tag::MESSAGE_CLASS).unwrap_or("IPM.Note").to_string();
        let kind = if class.starts_with("IPM.Appointment") {
            Kind::Event
        } else if class.starts_with("IPM.Contact") {
            Kind::Contact
        } else {
            Kind::Message
        };
        let props = props_from_fx(&fx, kind);
        let mut st = self.state();
        let key = match mode.to_ascii_lowercase().as_str() {
            "create" => {
                if field("ItemId").is_some() || field("ChangeKey").is_some() {
                    return import_error(400, "ItemId and ChangeKey are not allowed with create.");
                }
                ItemKey::New(st.next_seq())
            }
            "update" => {
                let (Some(item), Some(ck)) = (field("ItemId"), field("ChangeKey")) else {
                    return import_error(400, "ItemId and ChangeKey are required with update.");
                };
                let found = self.model.parse_outlook_id(&st, item).and_then(|k| {
                    let (c, s) = self.model.current(&st, k)?;
                    (c == folder.coll && Model::change_key(k, s.map(|s| s.rev).unwrap_or(0)) == ck)
                        .then_some(k)
                });
                match found {
                    Some(k) => k,
                    None => {
                        return import_error(
                            400,
                            "No item with this ItemId and ChangeKey exists in the folder.",
                        );
                    }
                }
            }
            _ => return import_error(400, "Mode must be 'create' or 'update'."),
        };
        let blob = match st.put_blob(Bytes::from(bytes)) {
            Ok(b) => b,
            Err(e) => return crate::graph::internal(e),
        };
        let creating = mode.eq_ignore_ascii_case("create");
        let mut s = match creating {
            true => new_state(kind, folder.coll, Map::new()),
            false => {
                let mut s = state_for_change(&st, key, kind, folder.coll);
                s.rev += 1;
                s.modified = iso(chrono::Utc::now());
                s
            }
        };
        s.kind = kind;
        s.props = props;
        s.fx = Some(Box::new(FxRef { blob, class }));
        s.content = None;
        if kind == Kind::Message && !is_archive(folder.coll) {
            // The Outlook APIs serve it too: MIME rendered from the stream's properties.
            let mime = crate::mime_headers::mime_from_props(&s.props);
            match st.put_blob(Bytes::from(mime)) {
                Ok(b) => s.content = Some(Content::Blob(b)),
                Err(e) => return crate::graph::internal(e),
            }
        }
        let rev = s.rev;
        if let Err(e) = st.put(key, s, None) {
            return crate::graph::internal(e);
        }
        Resp::ok(json!({
            "@odata.context": format!("{}/api/gbeta/$metadata#microsoft.graph.importMailboxItemResponse", req.base),
            "itemId": item_id(OUTLOOK_PREFIX, key),
            "changeKey": Model::change_key(key, rev),
        }))
    }

    // ---- manifest ------------------------------------------------------------------------

    /// Manifest entries of user `user`'s archive items: `{"id", "kind": "archiveItem",
    /// "path", "mailbox", "sha256"}`, the hash of the exported stream.
    pub fn archive_manifest(&self, st: &State, user: u32) -> Vec<Value> {
        let t = &self.model.tenant;
        if !t.has_archive(user) {
            return vec![];
        }
        let m = Mailbox {
            user,
            kind: MailboxKind::Archive,
        };
        let (_, all) = self.mbx_folders(st, m);
        let mut out = Vec::new();
        for f in &all {
            let mut path = vec![f.name.clone()];
            let mut cur = f.parent;
            while let Some(p) = cur.and_then(|c| all.iter().find(|x| x.coll == c)) {
                path.push(p.name.clone());
                cur = p.parent;
            }
            path.reverse();
            for key in self.members(st, f.coll) {
                if let Some(data) = self.fx_stream(st, key) {
                    out.push(json!({
                        "id": item_id(OUTLOOK_PREFIX, key),
                        "kind": "archiveItem",
                        "path": path.join("/"),
                        "mailbox": mailbox_id(t, f.home),
                        "sha256": sha_hex(&data),
                    }));
                }
            }
        }
        out
    }
}

/// `receivedDateTime ge|gt {value}`, the one filter items delta takes.
fn received_filter(src: &str) -> Option<crate::odata::Expr> {
    let mut words = src.split_whitespace();
    let (Some(field), Some(op), Some(_), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    if !field.eq_ignore_ascii_case("receivedDateTime")
        || !(op.eq_ignore_ascii_case("ge") || op.eq_ignore_ascii_case("gt"))
    {
        return None;
    }
    crate::odata::Expr::parse(src).ok()
}

fn no_segment(rest: &[&str]) -> Resp {
    Resp::error(
        400,
        "BadRequest",
        &format!(
            "Resource not found for the segment '{}'.",
            rest.first().unwrap_or(&"")
        ),
    )
}

/// An attached message as an embedded message (`PidTagAttachMethod` 5, afEmbeddedMessage).
fn embedded_attachment(name: &str, inner: &mail_parser::Message) -> Attachment {
    let addr = |a: &mail_parser::Addr| json!({"name": a.name.as_deref().unwrap_or(""), "address": a.address.as_deref().unwrap_or("")});
    let mut p = vec![
        ustr(tag::MESSAGE_CLASS, "IPM.Note"),
        ustr(tag::SUBJECT, inner.subject().unwrap_or("")),
    ];
    if let Some(d) = inner.date() {
        let t = chrono::DateTime::from_timestamp(d.to_timestamp(), 0).unwrap_or_default();
        p.push(Prop::tag(
            tag::CLIENT_SUBMIT_TIME,
            Val::Time(fxics::filetime(t)),
        ));
    }
    if let Some(from) = inner.from().and_then(|f| f.first()) {
        let from = addr(from);
        p.push(ustr(tag::SENDER_NAME, from["name"].as_str().unwrap_or("")));
        p.push(ustr(
            tag::SENDER_SMTP_ADDRESS,
            from["address"].as_str().unwrap_or(""),
        ));
    }
    if let Some(id) = inner.message_id() {
        p.push(ustr(tag::INTERNET_MESSAGE_ID, format!("<{id}>")));
    }
    p.push(ustr(
        tag::BODY,
        inner
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
    ));
    if let Some(h) = inner.body_html(0) {
        p.push(Prop::tag(tag::HTML, Val::Binary(h.as_bytes().to_vec())));
    }
    p.push(Prop::tag(tag::MESSAGE_FLAGS, Val::I32(0x01)));
    let mut recipients = Vec::new();
    for (kind, list) in [(1, inner.to()), (2, inner.cc())] {
        for a in list.into_iter().flat_map(|l| l.iter()) {
            recipients.push(recipient(recipients.len(), kind, &addr(a)));
        }
    }
    let size = inner.raw_message().len();
    Attachment {
        props: vec![
            Prop::tag(tag::ATTACH_METHOD, Val::I32(5)),
            ustr(tag::DISPLAY_NAME, name),
            ustr(tag::ATTACH_MIME_TAG, "message/rfc822"),
            Prop::tag(tag::ATTACH_SIZE, Val::I32(size as i32)),
        ],
        embedded: Some(Box::new(FxMessage {
            props: p,
            recipients,
            attachments: vec![],
        })),
    }
}

/// Attachments of a stored MIME message.
fn mime_attachments(msg: Option<&mail_parser::Message>) -> Vec<Attachment> {
    use mail_parser::MimeHeaders;
    let Some(msg) = msg else {
        return vec![];
    };
    msg.attachments()
        .map(|a| {
            if let Some(inner) = a.message() {
                return embedded_attachment(a.attachment_name().unwrap_or("attachment"), inner);
            }
            let ct = a
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{s}", c.ctype()),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into());
            let data = a.contents().to_vec();
            let mut p = vec![
                Prop::tag(tag::ATTACH_METHOD, Val::I32(1)),
                ustr(
                    tag::ATTACH_LONG_FILENAME,
                    a.attachment_name().unwrap_or("attachment"),
                ),
                ustr(tag::ATTACH_MIME_TAG, ct),
            ];
            if let Some(cid) = a.content_id() {
                p.push(ustr(tag::ATTACH_CONTENT_ID, cid));
            }
            p.push(Prop::tag(tag::ATTACH_SIZE, Val::I32(data.len() as i32)));
            p.push(Prop::tag(tag::ATTACH_DATA_BINARY, Val::Binary(data)));
            Attachment::new(p)
        })
        .collect()
}

fn times(p: &mut Vec<Prop>, v: &Value) {
    for (tg, field) in [
        (tag::CREATION_TIME, "createdDateTime"),
        (tag::LAST_MODIFICATION_TIME, "lastModifiedDateTime"),
    ] {
        if let Some(ft) = time_of(&v[field]) {
            p.push(Prop::tag(tg, Val::Time(ft)));
        }
    }
}

fn body_props(p: &mut Vec<Prop>, v: &Value) {
    let body = v["body"]["content"].as_str().unwrap_or("");
    if v["body"]["contentType"].as_str() == Some("html") {
        p.push(ustr(tag::BODY, content::html_text(body)));
        p.push(Prop::tag(tag::HTML, Val::Binary(body.as_bytes().to_vec())));
    } else {
        p.push(ustr(tag::BODY, body));
    }
}

/// An event as an `IPM.Appointment` item.
fn event_fx(v: &Value, size: u64) -> FxMessage {
    let mut p = vec![
        ustr(tag::MESSAGE_CLASS, "IPM.Appointment"),
        ustr(tag::SUBJECT, v["subject"].as_str().unwrap_or("")),
        Prop::tag(tag::IMPORTANCE, Val::I32(importance(&v["importance"]))),
    ];
    let start = time_of(&v["start"]["dateTime"]);
    let end = time_of(&v["end"]["dateTime"]);
    if let Some(s) = start {
        p.push(Prop::tag(tag::START_DATE, Val::Time(s)));
    }
    if let Some(e) = end {
        p.push(Prop::tag(tag::END_DATE, Val::Time(e)));
    }
    times(&mut p, v);
    let org = &v["organizer"]["emailAddress"];
    p.push(ustr(tag::SENDER_NAME, org["name"].as_str().unwrap_or("")));
    p.push(ustr(
        tag::SENDER_SMTP_ADDRESS,
        org["address"].as_str().unwrap_or(""),
    ));
    body_props(&mut p, v);
    p.push(Prop::tag(tag::MESSAGE_FLAGS, Val::I32(0x01)));
    p.push(Prop::tag(
        tag::MESSAGE_SIZE,
        Val::I32(size.min(i32::MAX as u64) as i32),
    ));
    p.push(Prop::tag(tag::ICON_INDEX, Val::I32(0x400)));
    // PidLidLocation, PidLidAppointmentStartWhole / EndWhole (PSETID_Appointment).
    p.push(Prop::named(
        fxics::PSETID_APPOINTMENT,
        Name::Id(0x8208),
        Val::Unicode(
            v["location"]["displayName"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        ),
    ));
    if let Some(s) = start {
        p.push(Prop::named(
            fxics::PSETID_APPOINTMENT,
            Name::Id(0x820D),
            Val::Time(s),
        ));
    }
    if let Some(e) = end {
        p.push(Prop::named(
            fxics::PSETID_APPOINTMENT,
            Name::Id(0x820E),
            Val::Time(e),
        ));
    }
    if let Some(k) = keywords(&v["categories"]) {
        p.push(k);
    }
    let recipients = v["attendees"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, a)| {
            let kind = if a["type"].as_str() == Some("optional") {
                2
            } else {
                1
            };
            recipient(i, kind, &a["emailAddress"])
        })
        .collect();
    FxMessage {
        props: p,
        recipients,
        attachments: vec![],
    }
}

/// A contact as an `IPM.Contact` item.
fn contact_fx(v: &Value, size: u64) -> FxMessage {
    let mut p = vec![
        ustr(tag::MESSAGE_CLASS, "IPM.Contact"),
        ustr(
            tag::SUBJECT,
            v["displayName"].as_str().unwrap_or("").to_string(),
        ),
        ustr(tag::DISPLAY_NAME, v["displayName"].as_str().unwrap_or("")),
    ];
    for (tg, field) in [
        (tag::GIVEN_NAME, "givenName"),
        (tag::SURNAME, "surname"),
        (tag::COMPANY_NAME, "companyName"),
        (tag::TITLE, "jobTitle"),
        (tag::MOBILE_TELEPHONE_NUMBER, "mobilePhone"),
    ] {
        if let Some(s) = text(&v[field]) {
            p.push(ustr(tg, s));
        }
    }
    if let Some(s) = text(&v["businessPhones"][0]) {
        p.push(ustr(tag::BUSINESS_TELEPHONE_NUMBER, s));
    }
    if let Some(s) = text(&v["personalNotes"]) {
        p.push(ustr(tag::BODY, s));
    }
    times(&mut p, v);
    p.push(Prop::tag(tag::MESSAGE_FLAGS, Val::I32(0x01)));
    p.push(Prop::tag(
        tag::MESSAGE_SIZE,
        Val::I32(size.min(i32::MAX as u64) as i32),
    ));
    p.push(Prop::tag(tag::ICON_INDEX, Val::I32(0x200)));
    // PidLidEmail1EmailAddress (PSETID_Address).
    if let Some(s) = text(&v["emailAddresses"][0]["address"]) {
        p.push(Prop::named(
            fxics::PSETID_ADDRESS,
            Name::Id(0x8083),
            Val::Unicode(s),
        ));
    }
    if let Some(k) = keywords(&v["categories"]) {
        p.push(k);
    }
    FxMessage {
        props: p,
        recipients: vec![],
        attachments: vec![],
    }
}

fn iso_of(m: &FxMessage, t: u32) -> Option<Value> {
    match m.get(t) {
        Some(Val::Time(ft)) => Some(json!(iso(fxics::from_filetime(*ft)))),
        _ => None,
    }
}

/// The Outlook properties of an imported item, read back from its stream.
fn props_from_fx(m: &FxMessage, kind: Kind) -> Map<String, Value> {
    let mut p = Map::new();
    let s = |t: u32| m.str(t).unwrap_or("").to_string();
    let body = match m.get(tag::HTML) {
        Some(Val::Binary(b)) => {
            json!({"contentType": "html", "content": String::from_utf8_lossy(b)})
        }
        _ => json!({"contentType": "text", "content": s(tag::BODY)}),
    };
    let categories = match m.named(&fxics::PS_PUBLIC_STRINGS, &Name::String("Keywords".into())) {
        Some(Val::MvUnicode(l)) => json!(l),
        _ => json!([]),
    };
    if let Some(v) = iso_of(m, tag::CREATION_TIME) {
        p.insert("createdDateTime".into(), v);
    }
    p.insert("categories".into(), categories);
    match kind {
        Kind::Event => {
            p.insert("subject".into(), json!(s(tag::SUBJECT)));
            p.insert("body".into(), body);
            for (field, t) in [("start", tag::START_DATE), ("end", tag::END_DATE)] {
                if let Some(Val::Time(ft)) = m.get(t) {
                    let dt = fxics::from_filetime(*ft)
                        .format("%Y-%m-%dT%H:%M:%S.0000000")
                        .to_string();
                    p.insert(field.into(), json!({"dateTime": dt, "timeZone": "UTC"}));
                }
            }
        }
        Kind::Contact => {
            p.insert("displayName".into(), json!(s(tag::DISPLAY_NAME)));
            p.insert("givenName".into(), json!(s(tag::GIVEN_NAME)));
            p.insert("surname".into(), json!(s(tag::SURNAME)));
            p.insert("companyName".into(), json!(s(tag::COMPANY_NAME)));
            if let Some(Val::Unicode(e)) = m.named(&fxics::PSETID_ADDRESS, &Name::Id(0x8083)) {
                p.insert(
                    "emailAddresses".into(),
                    json!([{"name": s(tag::DISPLAY_NAME), "address": e}]),
                );
            }
        }
        _ => {
            p.insert("subject".into(), json!(s(tag::SUBJECT)));
            p.insert("body".into(), body);
            let addr = |name: String, address: String| json!({"emailAddress": {"name": name, "address": address}});
            if m.get(tag::SENDER_SMTP_ADDRESS).is_some() || m.get(tag::SENDER_NAME).is_some() {
                let a = addr(s(tag::SENDER_NAME), s(tag::SENDER_SMTP_ADDRESS));
                p.insert("from".into(), a.clone());
                p.insert("sender".into(), a);
            }
            let mut to = Vec::new();
            let mut cc = Vec::new();
            let mut bcc = Vec::new();
            for r in &m.recipients {
                let name = fxics::find(r, tag::DISPLAY_NAME)
                    .and_then(Val::as_str)
                    .unwrap_or("");
                let address = fxics::find(r, tag::SMTP_ADDRESS)
                    .or_else(|| fxics::find(r, tag::EMAIL_ADDRESS))
                    .and_then(Val::as_str)
                    .unwrap_or("");
                let a = addr(name.into(), address.into());
                match fxics::find(r, tag::RECIPIENT_TYPE).and_then(Val::as_i32) {
                    Some(2) => cc.push(a),
                    Some(3) => bcc.push(a),
                    _ => to.push(a),
                }
            }
            p.insert("toRecipients".into(), json!(to));
            p.insert("ccRecipients".into(), json!(cc));
            p.insert("bccRecipients".into(), json!(bcc));
            if let Some(id) = m.str(tag::INTERNET_MESSAGE_ID) {
                p.insert("internetMessageId".into(), json!(id));
            }
            if let Some(v) = iso_of(m, tag::CLIENT_SUBMIT_TIME) {
                p.insert("sentDateTime".into(), v);
            }
            if let Some(v) = iso_of(m, tag::MESSAGE_DELIVERY_TIME) {
                p.insert("receivedDateTime".into(), v);
            }
            let flags = m.get(tag::MESSAGE_FLAGS).and_then(Val::as_i32).unwrap_or(1);
            p.insert("isRead".into(), json!(flags & 0x01 != 0));
            p.insert("isDraft".into(), json!(flags & 0x08 != 0));
            p.insert("hasAttachments".into(), json!(!m.attachments.is_empty()));
            p.insert(
                "importance".into(),
                json!(match m.get(tag::IMPORTANCE).and_then(Val::as_i32) {
                    Some(0) => "low",
                    Some(2) => "high",
                    _ => "normal",
                }),
            );
            let flag = match m.get(tag::FLAG_STATUS).and_then(Val::as_i32) {
                Some(2) => "flagged",
                Some(1) => "complete",
                _ => "notFlagged",
            };
            p.insert("flag".into(), json!({"flagStatus": flag}));
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_ids_round_trip() {
        let t = Tenant::new(crate::TenantSpec::default());
        for user in 0..t.spec.users {
            for kind in [
                MailboxKind::Primary,
                MailboxKind::Archive,
                MailboxKind::Auxiliary,
            ] {
                let m = Mailbox { user, kind };
                let id = mailbox_id(&t, m);
                assert!(id.starts_with("MBX:") && id.len() == 21, "{id}");
                let exists = match kind {
                    MailboxKind::Primary => t.has_mailbox(Res::User(user)),
                    MailboxKind::Archive => t.has_archive(user),
                    MailboxKind::Auxiliary => t.has_auxiliary_archive(user),
                };
                assert_eq!(parse_mailbox_id(&t, &id), exists.then_some(m));
            }
        }
        assert!(t.has_archive(1) && t.has_auxiliary_archive(1));
        assert!(
            !Tenant::new(crate::TenantSpec {
                archives: false,
                ..Default::default()
            })
            .has_archive(1)
        );
        assert_eq!(parse_mailbox_id(&t, "MBX:e0643f21@a7809c93"), None);
    }

    #[test]
    fn attached_messages_are_embedded() {
        let sim = Sim::new(crate::SimConfig::new(crate::TenantSpec::default())).unwrap();
        let t = &sim.model.tenant;
        // The first generated message with an attached message.
        let mut found = None;
        'search: for u in 0..t.spec.users {
            let r = Res::User(u);
            if !t.has_mailbox(r) {
                continue;
            }
            for f in [wk::INBOX, wk::SENT, wk::ARCHIVE] {
                let c = CollKey {
                    res: r,
                    coll: Coll::MailFolder(f),
                };
                for n in 0..sim.model.base_count(c) {
                    let plan = content::message_plan(t, r, f, n);
                    if plan.malformed == crate::plan::Malformed::None
                        && let Some(a) = plan.attachments.iter().find(|a| a.kind == AttKind::Item)
                    {
                        found = Some((ItemKey::Base(c, n), a.name.clone()));
                        break 'search;
                    }
                }
            }
        }
        let (key, name) = found.expect("some message has an attached message");
        let st = sim.state();
        let data = sim.fx_stream(&st, key).unwrap();
        let m = fxics::decode(&data).unwrap();
        let att = m
            .attachments
            .iter()
            .find(|a| a.embedded.is_some())
            .expect("an embedded message");
        assert_eq!(
            fxics::find(&att.props, tag::ATTACH_METHOD),
            Some(&Val::I32(5))
        );
        assert_eq!(
            fxics::find(&att.props, tag::DISPLAY_NAME).and_then(Val::as_str),
            Some(name.as_str())
        );
        let inner = att.embedded.as_ref().unwrap();
        assert_eq!(inner.str(tag::SUBJECT), Some(name.as_str()));
        assert!(!inner.recipients.is_empty());
        assert_eq!(fxics::encode(&m), data, "decode and encode agree");
    }
}
