//! The live tenant: generated items merged with what changed since, as Graph renders them.

use crate::content::{self, DriveLayout, iso};
use crate::keys::{
    Coll, CollKey, DRIVE_ITEM_PREFIX, ItemKey, NEW_FOLDER, OUTLOOK_PREFIX, Res, coll_id, item_id,
    list_item_id, thread_id,
};
use crate::mime;
use crate::plan::MessagePlan;
use crate::seeded::{self, hash};
use crate::state::{Content, GenContent, ItemState, Kind, State};
use crate::tenant::{FolderDef, Tenant, coll_seed};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// How the caller asked ids to be rendered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ctx {
    /// `Prefer: IdType="ImmutableId"`: Outlook ids do not change when an item moves.
    pub immutable_ids: bool,
}

/// A folder of a mailbox (mail or contacts) as it is now.
#[derive(Clone, Debug)]
pub struct FolderInfo {
    pub coll: CollKey,
    pub name: String,
    pub parent: Option<u32>,
    pub well_known: Option<&'static str>,
    pub hidden: bool,
    pub search_folder: bool,
}

/// A drive item as it is now.
#[derive(Clone, Debug)]
pub struct DriveNode {
    pub key: ItemKey,
    pub coll: CollKey,
    pub name: String,
    pub parent: Option<ItemKey>,
    pub folder: bool,
    pub size: u64,
    pub mime_type: String,
    pub content: Content,
    pub created: String,
    pub modified: String,
    pub rev: u32,
    /// Earlier versions, oldest first: (content, modified).
    pub versions: Vec<(Content, String)>,
    pub deleted: bool,
    /// Whether it is shared on its own, when a mutation changed that (else seeded).
    pub shared: Option<bool>,
}

/// The tenant: generator plus change overlay.
pub struct Model {
    pub tenant: Tenant,
    /// quickXorHash of generated contents, memoised (bounded).
    /// Keyed by (variant of `Content`, seed or blob id, length).
    qx_cache: Mutex<HashMap<(u8, u64, u64), String>>,
    /// Children of generated drive folders, for the few drives being walked (bounded).
    children_cache: Mutex<HashMap<CollKey, std::sync::Arc<Vec<Vec<u32>>>>>,
}

const CACHE_CAP: usize = 50_000;

impl Model {
    pub fn new(tenant: Tenant) -> Self {
        Self {
            tenant,
            qx_cache: Mutex::new(HashMap::new()),
            children_cache: Mutex::new(HashMap::new()),
        }
    }

    // ---- collections -------------------------------------------------------------------

    /// Number of generated items in a collection.
    pub fn base_count(&self, c: CollKey) -> u32 {
        let t = &self.tenant;
        match (c.res, c.coll) {
            (Res::User(u), Coll::MailFolder(f)) if f >= crate::mailbox_api::ARCHIVE_FOLDER => {
                crate::mailbox_api::archive_count(t, u, f - crate::mailbox_api::ARCHIVE_FOLDER)
            }
            (r @ Res::User(_), Coll::MailFolder(f)) if t.has_mailbox(r) && f < NEW_FOLDER => {
                t.mail_counts(r).get(f as usize).copied().unwrap_or(0)
            }
            (r @ Res::User(_), Coll::ContactFolder(f)) if t.has_mailbox(r) => {
                content::contact_count(t, r, f)
            }
            (r @ Res::User(_), Coll::Calendar(k)) if t.has_mailbox(r) => {
                content::event_count(t, r, k)
            }
            (r, Coll::Drive(d)) if (d as usize) < t.drives(r).len() => {
                content::drive_layout(t, c).len()
            }
            (Res::Site(n), Coll::List(l)) if (l as usize) < t.lists(n).len() => {
                content::list_count(t)
            }
            (Res::Group(g), Coll::Thread(k))
                if g < t.spec.groups && k < t.spec.threads_per_group =>
            {
                content::post_count(t, g, k)
            }
            _ => 0,
        }
    }

    /// Mail folders of a mailbox as they are now (generated, renamed, created, not deleted).
    pub fn mail_folders(&self, st: &State, r: Res) -> Vec<FolderInfo> {
        if !self.tenant.has_mailbox(r) {
            return vec![];
        }
        let base: Vec<FolderDef> = self.tenant.mail_folders(r);
        let mut out: Vec<FolderInfo> = base
            .into_iter()
            .map(|f| FolderInfo {
                coll: CollKey {
                    res: r,
                    coll: Coll::MailFolder(f.n),
                },
                name: f.name,
                parent: f.parent,
                well_known: f.well_known,
                hidden: f.hidden,
                search_folder: f.search_folder,
            })
            .collect();
        self.overlay_folders(st, r, &mut out, |c| matches!(c, Coll::MailFolder(_)));
        out
    }

    pub fn contact_folders(&self, st: &State, r: Res) -> Vec<FolderInfo> {
        if !self.tenant.has_mailbox(r) {
            return vec![];
        }
        let mut out: Vec<FolderInfo> = content::contact_folders(&self.tenant, r)
            .into_iter()
            .map(|(n, name, parent)| FolderInfo {
                coll: CollKey {
                    res: r,
                    coll: Coll::ContactFolder(n),
                },
                name: name.into(),
                parent,
                well_known: None,
                hidden: false,
                search_folder: false,
            })
            .collect();
        self.overlay_folders(st, r, &mut out, |c| matches!(c, Coll::ContactFolder(_)));
        out
    }

    fn overlay_folders(
        &self,
        st: &State,
        r: Res,
        out: &mut Vec<FolderInfo>,
        kind: impl Fn(Coll) -> bool,
    ) {
        let mut changed: Vec<_> = st
            .folders
            .values()
            .filter(|f| f.coll.res == r && kind(f.coll.coll))
            .collect();
        changed.sort_by_key(|f| f.coll);
        for f in changed {
            match out.iter().position(|o| o.coll == f.coll) {
                Some(i) if f.deleted => {
                    out.remove(i);
                }
                Some(i) => {
                    out[i].name = f.name.clone();
                    out[i].parent = f.parent;
                }
                None if !f.deleted => out.push(FolderInfo {
                    coll: f.coll,
                    name: f.name.clone(),
                    parent: f.parent,
                    well_known: None,
                    hidden: false,
                    search_folder: false,
                }),
                None => {}
            }
        }
    }

    pub fn calendars(&self, r: Res) -> Vec<(CollKey, &'static str)> {
        if !self.tenant.has_mailbox(r) {
            return vec![];
        }
        content::calendars(&self.tenant, r)
            .into_iter()
            .map(|(n, name)| {
                (
                    CollKey {
                        res: r,
                        coll: Coll::Calendar(n),
                    },
                    name,
                )
            })
            .collect()
    }

    /// Display name of a calendar ("" when there is none).
    pub fn calendar_name(&self, c: CollKey) -> &'static str {
        self.calendars(c.res)
            .into_iter()
            .find(|(k, _)| *k == c)
            .map(|x| x.1)
            .unwrap_or("")
    }

    /// Does the collection exist now?
    pub fn coll_exists(&self, st: &State, c: CollKey) -> bool {
        match c.coll {
            Coll::MailFolder(_) => self.mail_folders(st, c.res).iter().any(|f| f.coll == c),
            Coll::ContactFolder(_) => self.contact_folders(st, c.res).iter().any(|f| f.coll == c),
            Coll::Calendar(_) => self.calendars(c.res).iter().any(|(k, _)| *k == c),
            Coll::Drive(_) => self.tenant.drives(c.res).iter().any(|(k, _)| *k == c),
            Coll::List(_) => match c.res {
                Res::Site(n) => self.tenant.lists(n).iter().any(|(k, _)| *k == c),
                _ => false,
            },
            Coll::Thread(_) => self.tenant.threads(c.res).contains(&c),
        }
    }

    /// Folder path of a mail or contact folder ("Inbox/Projects 1"), root excluded.
    pub fn folder_path(&self, folders: &[FolderInfo], c: CollKey) -> String {
        let mut parts = Vec::new();
        let mut cur = folders.iter().find(|f| f.coll == c);
        let mut guard = 0;
        while let Some(f) = cur {
            if f.well_known == Some("msgfolderroot") {
                break;
            }
            parts.push(f.name.clone());
            cur = f.parent.and_then(|p| {
                folders.iter().find(|x| {
                    x.coll.coll
                        == match c.coll {
                            Coll::ContactFolder(_) => Coll::ContactFolder(p),
                            _ => Coll::MailFolder(p),
                        }
                })
            });
            guard += 1;
            if guard > 64 {
                break;
            }
        }
        parts.reverse();
        parts.join("/")
    }

    // ---- items -------------------------------------------------------------------------

    /// The current collection and state of an item, `None` when it does not exist (now).
    pub fn current<'a>(
        &self,
        st: &'a State,
        key: ItemKey,
    ) -> Option<(CollKey, Option<&'a ItemState>)> {
        match st.items.get(&key) {
            Some(s) if s.deleted => None,
            Some(s) => Some((s.coll, Some(s))),
            None => match key {
                ItemKey::Base(c, n) if n < self.base_count(c) => Some((c, None)),
                _ => None,
            },
        }
    }

    pub fn kind_of(&self, key: ItemKey, s: Option<&ItemState>) -> Option<Kind> {
        if let Some(s) = s {
            return Some(s.kind);
        }
        match key {
            ItemKey::Base(c, _) => Some(match c.coll {
                Coll::MailFolder(_) => Kind::Message,
                Coll::ContactFolder(_) => Kind::Contact,
                Coll::Calendar(_) => Kind::Event,
                Coll::Drive(_) => Kind::DriveItem,
                Coll::List(_) => Kind::ListItem,
                Coll::Thread(_) => Kind::Post,
            }),
            ItemKey::New(_) => None,
        }
    }

    pub fn outlook_id(&self, key: ItemKey, coll: CollKey, ctx: Ctx) -> String {
        let id = item_id(OUTLOOK_PREFIX, key);
        if ctx.immutable_ids {
            id
        } else {
            // REST ids carry the folder: they change when the item moves, as Exchange's do.
            format!("{id}-{}", coll_seed(coll) % 1_000_000)
        }
    }

    /// Parses an Outlook item id, rejecting a REST id whose folder is no longer the item's.
    pub fn parse_outlook_id(&self, st: &State, id: &str) -> Option<ItemKey> {
        let (base, folder_tag) = match id.rsplit_once('-') {
            Some((b, t)) if t.chars().all(|c| c.is_ascii_digit()) => (b, Some(t)),
            _ => (id, None),
        };
        let key = crate::keys::parse_item_id(OUTLOOK_PREFIX, base)?;
        if let Some(tag) = folder_tag {
            let (coll, _) = self.current(st, key)?;
            if (coll_seed(coll) % 1_000_000).to_string() != tag {
                return None;
            }
        }
        Some(key)
    }

    pub(crate) fn change_key(key: ItemKey, rev: u32) -> String {
        let h = hash(
            rev as u64,
            &[match key {
                ItemKey::Base(c, n) => coll_seed(c) ^ n as u64,
                ItemKey::New(s) => s,
            }],
        );
        format!("CQAAABYAAA{}", &STANDARD.encode(h.to_le_bytes())[..10])
    }

    fn stamp(&self, v: &mut Value, key: ItemKey, coll: CollKey, s: Option<&ItemState>, ctx: Ctx) {
        let rev = s.map(|s| s.rev).unwrap_or(0);
        if let Some(s) = s {
            for (k, x) in &s.props {
                v[k] = x.clone();
            }
            v["lastModifiedDateTime"] = json!(s.modified);
        }
        let ck = Self::change_key(key, rev);
        v["id"] = json!(self.outlook_id(key, coll, ctx));
        v["changeKey"] = json!(ck);
        v["@odata.etag"] = json!(format!("W/\"{ck}\""));
    }

    pub fn message_plan(&self, key: ItemKey) -> Option<MessagePlan> {
        match key {
            ItemKey::Base(c, n) => match c.coll {
                Coll::MailFolder(f) if f >= crate::mailbox_api::ARCHIVE_FOLDER => {
                    Some(crate::mailbox_api::archive_plan(&self.tenant, c.res, f, n))
                }
                Coll::MailFolder(f) => Some(content::message_plan(&self.tenant, c.res, f, n)),
                _ => None,
            },
            ItemKey::New(_) => None,
        }
    }

    pub fn message_json(&self, st: &State, key: ItemKey, ctx: Ctx) -> Option<Value> {
        let (coll, s) = self.current(st, key)?;
        if self.kind_of(key, s)? != Kind::Message {
            return None;
        }
        let mut v = match key {
            ItemKey::Base(c, n) => {
                let Coll::MailFolder(f) = c.coll else {
                    return None;
                };
                let plan = self.message_plan(key)?;
                content::message_props(&self.tenant, c.res, f, n, &plan)
            }
            ItemKey::New(_) => json!({}),
        };
        self.stamp(&mut v, key, coll, s, ctx);
        v["parentFolderId"] = json!(coll_id(coll));
        Some(v)
    }

    /// The exact RFC 5322 bytes of a message.
    pub fn message_mime(&self, st: &State, key: ItemKey) -> Option<Bytes> {
        let (_, s) = self.current(st, key)?;
        if let Some(Content::Blob(b)) = s.and_then(|s| s.content.as_ref()) {
            return st.blob(b);
        }
        self.message_plan(key)
            .map(|p| Bytes::from(mime::render(&p)))
    }

    pub fn event_json(&self, st: &State, key: ItemKey, ctx: Ctx) -> Option<Value> {
        let (coll, s) = self.current(st, key)?;
        if self.kind_of(key, s)? != Kind::Event {
            return None;
        }
        let mut v = match key {
            ItemKey::Base(c, n) => {
                let Coll::Calendar(k) = c.coll else {
                    return None;
                };
                content::event_json(&self.tenant, c.res, k, n)
            }
            ItemKey::New(_) => json!({}),
        };
        self.stamp(&mut v, key, coll, s, ctx);
        Some(v)
    }

    pub fn contact_json(&self, st: &State, key: ItemKey, ctx: Ctx) -> Option<Value> {
        let (coll, s) = self.current(st, key)?;
        if self.kind_of(key, s)? != Kind::Contact {
            return None;
        }
        let mut v = match key {
            ItemKey::Base(c, n) => {
                let Coll::ContactFolder(f) = c.coll else {
                    return None;
                };
                content::contact_json(&self.tenant, c.res, f, n)
            }
            ItemKey::New(_) => json!({}),
        };
        self.stamp(&mut v, key, coll, s, ctx);
        v["parentFolderId"] = json!(coll_id(coll));
        Some(v)
    }

    // ---- group conversations ------------------------------------------------------------

    /// Id of a post: an Outlook item id that does not depend on `Prefer: IdType`.
    pub fn post_id(key: ItemKey) -> String {
        item_id(OUTLOOK_PREFIX, key)
    }

    /// The current posts of a thread, oldest first: generated ones, then replies.
    pub fn thread_posts(&self, st: &State, c: CollKey) -> Vec<ItemKey> {
        let mut out: Vec<ItemKey> = (0..self.base_count(c))
            .map(|n| ItemKey::Base(c, n))
            .filter(|k| st.items.get(k).is_none_or(|s| s.coll == c && !s.deleted))
            .collect();
        out.extend(st.arrivals(c, u64::MAX));
        out
    }

    /// Graph JSON of a post of a group conversation thread.
    pub fn post_json(&self, st: &State, key: ItemKey) -> Option<Value> {
        let (coll, s) = self.current(st, key)?;
        if self.kind_of(key, s)? != Kind::Post {
            return None;
        }
        let (Res::Group(g), Coll::Thread(k)) = (coll.res, coll.coll) else {
            return None;
        };
        let mut v = match key {
            ItemKey::Base(_, n) => content::post_props(&self.tenant, g, k, n),
            ItemKey::New(_) => json!({}),
        };
        if let Some(s) = s {
            for (name, x) in &s.props {
                v[name] = x.clone();
            }
            v["lastModifiedDateTime"] = json!(s.modified);
        }
        let rev = s.map(|s| s.rev).unwrap_or(0);
        let mut out = json!({
            "id": Self::post_id(key),
            "createdDateTime": v["createdDateTime"],
            "lastModifiedDateTime": v["lastModifiedDateTime"],
            "changeKey": Self::change_key(key, rev),
            "categories": v["categories"],
            "receivedDateTime": v["receivedDateTime"],
            "hasAttachments": v["hasAttachments"],
            "body": v["body"],
            "from": v["from"],
            "sender": v["sender"],
            "conversationThreadId": thread_id(coll),
            "conversationId": v["conversationId"],
            "newParticipants": v["newParticipants"],
        });
        for (name, def) in [("categories", json!([])), ("newParticipants", json!([]))] {
            if out[name].is_null() {
                out[name] = def;
            }
        }
        if out["hasAttachments"].is_null() {
            out["hasAttachments"] = json!(false);
        }
        Some(out)
    }

    /// When the newest post of a thread was delivered (`lastDeliveredDateTime`).
    pub fn thread_last_delivered(&self, st: &State, c: CollKey) -> Option<String> {
        self.thread_posts(st, c)
            .into_iter()
            .filter_map(|k| self.post_json(st, k))
            .filter_map(|v| v["receivedDateTime"].as_str().map(str::to_string))
            .max()
    }

    /// Graph JSON of a conversation thread of a group, `None` when there is no such thread.
    pub fn thread_json(&self, st: &State, c: CollKey) -> Option<Value> {
        let (Res::Group(g), Coll::Thread(k)) = (c.res, c.coll) else {
            return None;
        };
        if !self.tenant.threads(c.res).contains(&c) {
            return None;
        }
        let posts: Vec<Value> = self
            .thread_posts(st, c)
            .into_iter()
            .filter_map(|key| self.post_json(st, key))
            .collect();
        let mut senders: Vec<String> = Vec::new();
        for p in &posts {
            if let Some(name) = p["from"]["emailAddress"]["name"].as_str()
                && !senders.iter().any(|x| x == name)
            {
                senders.push(name.to_string());
            }
        }
        let last = posts.iter().max_by(|a, b| {
            a["receivedDateTime"]
                .as_str()
                .cmp(&b["receivedDateTime"].as_str())
        });
        let preview: String = last
            .and_then(|p| p["body"]["content"].as_str())
            .map(content::html_text)
            .unwrap_or_default()
            .chars()
            .take(255)
            .collect();
        Some(json!({
            "id": thread_id(c),
            "topic": content::thread_topic(&self.tenant, g, k),
            "hasAttachments": false,
            "lastDeliveredDateTime": last.map(|p| p["receivedDateTime"].clone()).unwrap_or(Value::Null),
            "uniqueSenders": senders,
            "preview": preview,
            "isLocked": false,
        }))
    }

    pub fn list_item_json(&self, st: &State, key: ItemKey, expand_fields: bool) -> Option<Value> {
        let (coll, s) = self.current(st, key)?;
        if self.kind_of(key, s)? != Kind::ListItem {
            return None;
        }
        let mut fields = match key {
            ItemKey::Base(c, n) => content::list_item_fields(&self.tenant, c, n),
            ItemKey::New(_) => json!({}),
        };
        if let Some(s) = s {
            for (k, x) in &s.props {
                fields[k] = x.clone();
            }
        }
        let rev = s.map(|s| s.rev).unwrap_or(0);
        let id = list_item_id(key);
        let created = s
            .map(|s| s.created.clone())
            .unwrap_or_else(|| iso(content::epoch() - chrono::Duration::days(90)));
        let modified = s
            .map(|s| s.modified.clone())
            .unwrap_or_else(|| iso(content::epoch() - chrono::Duration::days(30)));
        let etag = format!("\"{},{}\"", seeded::guid(coll_seed(coll), &[7]), rev + 1);
        fields["id"] = json!(id);
        fields["Created"] = json!(created);
        fields["Modified"] = json!(modified);
        fields["@odata.etag"] = json!(etag);
        let mut v = json!({
            "@odata.etag": etag,
            "id": id,
            "createdDateTime": created,
            "lastModifiedDateTime": modified,
            "eTag": etag,
            "contentType": {"id": "0x0100", "name": "Item"},
            "parentReference": {"id": seeded::guid(coll_seed(coll), &[8]), "siteId": self.tenant.res_id(coll.res)},
        });
        if expand_fields {
            v["fields"] = fields;
        }
        Some(v)
    }

    // ---- drives ------------------------------------------------------------------------

    fn layout(&self, c: CollKey) -> DriveLayout {
        content::drive_layout(&self.tenant, c)
    }

    /// A drive item as it is now, including deleted ones (for delta tombstones).
    pub fn drive_node(&self, st: &State, key: ItemKey) -> Option<DriveNode> {
        let s = st.items.get(&key);
        let mut node = match key {
            ItemKey::Base(c, n) => {
                let Coll::Drive(_) = c.coll else {
                    return None;
                };
                let e = self.layout(c).entry(&self.tenant, n)?;
                let versions = (1..e.versions)
                    .map(|v| {
                        let (seed, size) = content::old_version(&self.tenant, &e, v);
                        (
                            Content::Generated(GenContent { seed, size }),
                            iso(e.modified - chrono::Duration::days((e.versions - v) as i64)),
                        )
                    })
                    .collect();
                DriveNode {
                    key,
                    coll: c,
                    name: e.name,
                    parent: e.parent.map(|p| ItemKey::Base(c, p)),
                    folder: e.folder,
                    size: e.size,
                    mime_type: e.mime_type.to_string(),
                    content: Content::Generated(GenContent {
                        seed: e.content_seed,
                        size: e.size,
                    }),
                    created: iso(e.created),
                    modified: iso(e.modified),
                    rev: 0,
                    versions,
                    deleted: false,
                    shared: None,
                }
            }
            ItemKey::New(_) => {
                let s = s?;
                if s.kind != Kind::DriveItem {
                    return None;
                }
                DriveNode {
                    key,
                    coll: s.coll,
                    name: String::new(),
                    parent: None,
                    folder: s.folder,
                    size: 0,
                    mime_type: String::new(),
                    content: Content::Generated(GenContent { seed: 0, size: 0 }),
                    created: s.created.clone(),
                    modified: s.modified.clone(),
                    rev: 0,
                    versions: vec![],
                    deleted: false,
                    shared: None,
                }
            }
        };
        if let Some(s) = s {
            if s.kind != Kind::DriveItem {
                return None;
            }
            node.coll = s.coll;
            if let Some(n) = &s.name {
                node.name = n.clone();
            }
            if s.parent.is_some() {
                node.parent = s.parent;
            }
            if let Some(c) = &s.content {
                node.size = Self::content_len(c);
                node.content = c.clone();
            }
            if let Some(Value::String(m)) = s.props.get("mimeType") {
                node.mime_type = m.clone();
            }
            node.versions.extend(
                s.versions
                    .iter()
                    .map(|v| (v.content.clone(), v.modified.clone())),
            );
            node.modified = s.modified.clone();
            node.rev = s.rev;
            node.deleted = s.deleted;
            node.shared = s.props.get("shared").and_then(Value::as_bool);
        }
        Some(node)
    }

    /// Path of a drive item's parent folder, as `/drive/root:/A/B` (`/drive/root:` at the root).
    pub fn parent_path(&self, st: &State, node: &DriveNode) -> String {
        let mut parts = Vec::new();
        let mut cur = node.parent;
        let mut guard = 0;
        while let Some(k) = cur {
            let Some(p) = self.drive_node(st, k) else {
                break;
            };
            if p.parent.is_none() {
                break;
            }
            parts.push(p.name.clone());
            cur = p.parent;
            guard += 1;
            if guard > 256 {
                break;
            }
        }
        parts.reverse();
        let mut s = String::from("/drive/root:");
        for p in parts {
            s.push('/');
            s.push_str(&p);
        }
        s
    }

    /// Path of an item within its drive ("Documents 3/Budget 17.xlsx"), root excluded.
    pub fn item_path(&self, st: &State, node: &DriveNode) -> String {
        let parent = self.parent_path(st, node);
        let rel = parent
            .trim_start_matches("/drive/root:")
            .trim_start_matches('/');
        if rel.is_empty() {
            node.name.clone()
        } else {
            format!("{rel}/{}", node.name)
        }
    }

    /// Generated children of a folder (cached for the drives being walked).
    fn base_children(&self, c: CollKey) -> std::sync::Arc<Vec<Vec<u32>>> {
        let mut cache = self
            .children_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&c) {
            return v.clone();
        }
        let layout = self.layout(c);
        let mut v = vec![Vec::new(); (layout.folders + 1) as usize];
        for i in 1..layout.len() {
            if let Some(e) = layout.entry(&self.tenant, i)
                && let Some(p) = e.parent
            {
                v[p as usize].push(i);
            }
        }
        if cache.len() >= 32 {
            cache.clear();
        }
        let v = std::sync::Arc::new(v);
        cache.insert(c, v.clone());
        v
    }

    /// Current children of a drive folder.
    pub fn children(&self, st: &State, folder: &DriveNode) -> Vec<ItemKey> {
        let mut out = Vec::new();
        if let ItemKey::Base(c, n) = folder.key
            && c == folder.coll
        {
            let all = self.base_children(c);
            if let Some(kids) = all.get(n as usize) {
                for &k in kids {
                    let key = ItemKey::Base(c, k);
                    match st.items.get(&key) {
                        Some(s) if s.deleted || s.parent.is_some_and(|p| p != folder.key) => {}
                        _ => out.push(key),
                    }
                }
            }
        }
        for key in st.arrivals(folder.coll, u64::MAX) {
            if let Some(s) = st.items.get(&key)
                && s.parent == Some(folder.key)
                && !out.contains(&key)
            {
                out.push(key);
            }
        }
        // Base items moved under this folder.
        for (key, s) in st.items.iter() {
            if s.kind == Kind::DriveItem
                && !s.deleted
                && s.parent == Some(folder.key)
                && !out.contains(key)
            {
                out.push(*key);
            }
        }
        out
    }

    pub fn content_bytes(&self, st: &State, c: &Content, from: u64, to: u64) -> Option<Bytes> {
        match c {
            Content::Blob(b) => {
                let data = st.blob(b)?;
                let to = (to as usize).min(data.len());
                let from = (from as usize).min(to);
                Some(data.slice(from..to))
            }
            Content::Generated(g) => {
                Some(Bytes::from(seeded::blob_range(g.seed, g.size, from, to)))
            }
            Content::Noise(g) => Some(Bytes::from(seeded::noise_range(g.seed, g.size, from, to))),
        }
    }

    pub fn content_len(c: &Content) -> u64 {
        match c {
            Content::Blob(b) => b.len,
            Content::Generated(g) | Content::Noise(g) => g.size,
        }
    }

    /// SHA-256 of content, streamed block by block.
    pub fn content_sha256(&self, st: &State, c: &Content) -> String {
        let mut h = Sha256::new();
        let len = Self::content_len(c);
        let mut pos = 0;
        while pos < len {
            let end = (pos + 1024 * 1024).min(len);
            if let Some(b) = self.content_bytes(st, c, pos, end) {
                h.update(&b);
            }
            pos = end;
        }
        hex::encode(h.finalize())
    }

    /// quickXorHash (base64) of content, as OneDrive for Business reports it.
    pub fn quick_xor(&self, st: &State, c: &Content) -> String {
        let cache_key = match c {
            Content::Generated(g) => Some((0, g.seed, g.size)),
            Content::Blob(b) => Some((1, b.id, b.len)),
            Content::Noise(g) => Some((2, g.seed, g.size)),
        };
        if let Some(k) = cache_key
            && let Some(v) = self
                .qx_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&k)
        {
            return v.clone();
        }
        let mut q = quickxorhash::QuickXorHash::new();
        let len = Self::content_len(c);
        let mut pos = 0;
        while pos < len {
            let end = (pos + 1024 * 1024).min(len);
            if let Some(b) = self.content_bytes(st, c, pos, end) {
                q.update(&b);
            }
            pos = end;
        }
        let v = STANDARD.encode(q.finalize());
        if let Some(k) = cache_key {
            let mut cache = self.qx_cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(k, v.clone());
        }
        v
    }

    pub fn drive_id(&self, c: CollKey) -> String {
        coll_id(c)
    }

    pub fn drive_item_id(key: ItemKey) -> String {
        item_id(DRIVE_ITEM_PREFIX, key)
    }

    /// Graph JSON of a drive item (a tombstone with the `deleted` facet when deleted).
    /// Whether an item has permissions of its own (a sharing link), rather than only those
    /// it inherits from its folder: about one item in four, stable across renames. Such an
    /// item is the root of a permission hierarchy and carries the `shared` facet.
    pub fn shared_uniquely(&self, node: &DriveNode) -> bool {
        node.parent.is_some()
            && node
                .shared
                .unwrap_or_else(|| Self::shared_key(node.coll, node.key))
    }

    /// `shared_uniquely` for an item that is not a drive's root.
    pub fn shared_key(coll: CollKey, key: ItemKey) -> bool {
        hash(coll_seed(coll), &[node_num(key), 7]) % 4 == 0
    }

    /// What a complete backup of a drive as seeded needs of the SharePoint budget, resource
    /// units: its delta pages (2 for the first, 1 for each next page of 200 items), one
    /// download per file, and the permissions (5) of each item shared on its own.
    pub fn drive_backup_ru(&self, c: CollKey) -> u64 {
        let layout = self.layout(c);
        let items = u64::from(layout.len());
        let pages = items.div_ceil(200).max(1);
        let shared = (1..layout.len())
            .filter(|&n| Self::shared_key(c, ItemKey::Base(c, n)))
            .count() as u64;
        (pages + 1) + u64::from(layout.files) + 5 * shared
    }

    /// The item's permissions as `GET …/permissions` lists them: the owner (inherited from
    /// the drive) and, for an item shared on its own, its sharing link.
    pub fn permissions_json(&self, node: &DriveNode) -> Value {
        let owner = match node.coll.res {
            Res::User(i) => self
                .tenant
                .user(i)
                .map(|u| u.display_name)
                .unwrap_or_default(),
            _ => "Owners".into(),
        };
        let mut perms = vec![json!({
            "id": "aTowIy5mfG1lbWJlcnNoaXB8b3duZXI",
            "roles": ["owner"],
            "grantedToV2": {"user": {"displayName": owner}},
            "inheritedFrom": {}
        })];
        if self.shared_uniquely(node) {
            perms.push(json!({
                "id": format!("link{}", node_num(node.key)),
                "roles": ["read"],
                "link": {"type": "view", "scope": "organization", "webUrl": "https://contoso.sharepoint.com/:w:/s/x"}
            }));
        }
        json!({"value": perms})
    }

    pub fn drive_item_json(
        &self,
        st: &State,
        node: &DriveNode,
        download_url: Option<String>,
    ) -> Value {
        let drive_id = self.drive_id(node.coll);
        let id = Self::drive_item_id(node.key);
        let etag = format!(
            "\"{{{}}},{}\"",
            seeded::guid(coll_seed(node.coll), &[node_num(node.key)]),
            node.rev + 1
        );
        let ctag_seed = match &node.content {
            Content::Generated(g) => g.seed ^ g.size,
            Content::Blob(b) => b.id << 20 ^ b.len,
            Content::Noise(g) => hash(g.seed, &[0x4E]) ^ g.size,
        };
        let ctag = format!(
            "\"c:{{{}}},{}\"",
            seeded::guid(ctag_seed, &[1]),
            node.rev + 1
        );
        let mut v = json!({
            "id": id,
            "name": node.name,
            "eTag": etag,
            "cTag": ctag,
            "createdDateTime": node.created,
            "lastModifiedDateTime": node.modified,
            "size": if node.folder { 0 } else { node.size },
            "createdBy": {"user": {"displayName": "System Account"}},
            "lastModifiedBy": {"user": {"displayName": "System Account"}},
            "fileSystemInfo": {"createdDateTime": node.created, "lastModifiedDateTime": node.modified},
        });
        if node.deleted {
            v["deleted"] = json!({"state": "deleted"});
        }
        if self.shared_uniquely(node) {
            v["shared"] = json!({"scope": "organization"});
        } else if node.shared == Some(false) {
            // Its sharing was removed: permissions of its own, without links (an empty
            // facet, as Graph marks such an item under `hierarchicalsharing`).
            v["shared"] = json!({});
        }
        match node.parent {
            None => {
                v["root"] = json!({});
                v["folder"] = json!({"childCount": self.children(st, node).len()});
                v["parentReference"] =
                    json!({"driveId": drive_id, "driveType": self.drive_type(node.coll)});
            }
            Some(p) => {
                v["parentReference"] = json!({
                    "driveId": drive_id,
                    "driveType": self.drive_type(node.coll),
                    "id": Self::drive_item_id(p),
                    "path": self.parent_path(st, node),
                });
                if node.folder {
                    let count = if node.deleted {
                        0
                    } else {
                        self.children(st, node).len()
                    };
                    v["folder"] = json!({"childCount": count});
                } else {
                    let mut file = json!({"mimeType": node.mime_type});
                    // Hashes can be missing until the service has processed a file.
                    if !node.deleted && hash(node_num(node.key), &[3]) % 50 != 0 {
                        file["hashes"] = json!({"quickXorHash": self.quick_xor(st, &node.content)});
                    }
                    v["file"] = file;
                    if let Some(u) = download_url {
                        v["@microsoft.graph.downloadUrl"] = json!(u);
                    }
                }
            }
        }
        v
    }

    pub fn drive_type(&self, c: CollKey) -> &'static str {
        match c.res {
            Res::User(_) => "business",
            _ => "documentLibrary",
        }
    }

    pub fn drive_json(&self, st: &State, c: CollKey) -> Option<Value> {
        let (_, name) = self
            .tenant
            .drives(c.res)
            .into_iter()
            .find(|(k, _)| *k == c)?;
        let owner = match c.res {
            Res::User(i) => {
                let u = self.tenant.user(i)?;
                json!({"user": {"id": u.id, "displayName": u.display_name, "email": u.upn}})
            }
            Res::Group(i) => {
                let g = self.tenant.group(i)?;
                json!({"group": {"id": g.id, "displayName": g.display_name}})
            }
            Res::Site(_) => json!({"user": {"displayName": "System Account"}}),
        };
        let layout = self.layout(c);
        let used: u64 = (0..layout.len().min(2000))
            .filter_map(|i| layout.entry(&self.tenant, i))
            .map(|e| e.size)
            .sum();
        let _ = st;
        Some(json!({
            "id": self.drive_id(c),
            "name": name,
            "driveType": self.drive_type(c),
            "createdDateTime": iso(content::epoch() - chrono::Duration::days(1000)),
            "lastModifiedDateTime": iso(content::epoch()),
            "owner": owner,
            "quota": {"total": 1_099_511_627_776u64, "used": used, "remaining": 1_099_511_627_776u64 - used, "deleted": 0, "state": "normal"},
            "webUrl": format!("https://{}-my.sharepoint.com/drive/{}", self.tenant.tenant_short(), coll_seed(c)),
        }))
    }
}

fn node_num(k: ItemKey) -> u64 {
    match k {
        ItemKey::Base(c, n) => coll_seed(c) ^ ((n as u64) << 1),
        ItemKey::New(s) => s << 1 | 1,
    }
}

/// Event-like new state for created items (all props stored).
pub fn new_state(kind: Kind, coll: CollKey, props: serde_json::Map<String, Value>) -> ItemState {
    let now = iso(chrono::Utc::now());
    ItemState {
        kind,
        coll,
        parent: None,
        name: None,
        folder: false,
        deleted: false,
        rev: 1,
        props,
        content: None,
        versions: vec![],
        modified: now.clone(),
        created: now,
        fx: None,
    }
}

/// The state of an item as a starting point for a change: its overlay, or a fresh overlay
/// for a generated item.
pub fn state_for_change(st: &State, key: ItemKey, kind: Kind, coll: CollKey) -> ItemState {
    match st.items.get(&key) {
        Some(s) => s.clone(),
        None => {
            let mut s = new_state(kind, coll, serde_json::Map::new());
            s.rev = 0;
            s.created = iso(content::epoch());
            s
        }
    }
}
