//! The admin API (not Graph, no token): the manifest of what a resource holds, seeded
//! mutations that play the users who change and delete data (and the ransomware that
//! encrypts it), and statistics.

use crate::content::{
    self, CONTACT_CONTENT_FIELDS, EVENT_CONTENT_FIELDS, POST_CONTENT_FIELDS, canonical,
    canonical_list_fields,
};
use crate::keys::{Coll, CollKey, ItemKey, Res};
use crate::model::{Ctx, DriveNode, Model, new_state, state_for_change};
use crate::seeded::{hash, mix};
use crate::sim::Sim;
use crate::state::{Content, GenContent, Kind, State, VersionRec};
use crate::wire::Resp;
use chrono::Timelike;
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutateRequest {
    #[serde(default)]
    pub seed: u64,
    /// Number of changes; required by every op but `encrypt`, which ignores it.
    #[serde(default)]
    pub count: Option<u32>,
    /// Restrict to one resource (user, group or site id); default: any. For `encrypt`, the
    /// user attacked (id or UPN); default: a seeded pick among users with a OneDrive.
    #[serde(default)]
    pub resource: Option<String>,
    /// Kinds to touch: message, event, contact, file, listItem, post. Default: message, file,
    /// listItem. Ignored by `encrypt`.
    #[serde(default)]
    pub kinds: Option<Vec<String>>,
    /// Operations: create, modify, move, delete, share, or `encrypt` alone (a ransomware
    /// attack on one user, see `Sim::encrypt`). Default: create, modify, move, delete.
    #[serde(default)]
    pub ops: Option<Vec<String>>,
    /// `encrypt`: fraction (0, 1] of the user's files encrypted, at least one; default 0.6.
    #[serde(default)]
    pub share: Option<f64>,
    /// `encrypt`: what is appended to the name of each encrypted file; default `.locked`.
    #[serde(default)]
    pub extension: Option<String>,
    /// `encrypt`: name of the ransom note dropped in each folder that had an encrypted file
    /// and in the root; default `README_RESTORE_FILES.txt`.
    #[serde(default)]
    pub note: Option<String>,
    /// `encrypt`: fraction [0, 1] of the user's messages deleted; default 0 (none).
    #[serde(default)]
    pub delete_mail: Option<f64>,
    /// `forward-rule`: the address the new inbox rule forwards to; default `x@evil.example`.
    #[serde(default)]
    pub to: Option<String>,
}

impl MutateRequest {
    /// Whether a field only `encrypt` reads was given.
    fn has_encrypt_fields(&self) -> bool {
        self.share.is_some()
            || self.extension.is_some()
            || self.note.is_some()
            || self.delete_mail.is_some()
    }
}

/// `encrypt` without `share`: the fraction of the user's files encrypted.
pub const ENCRYPT_SHARE: f64 = 0.6;
/// `encrypt` without `extension`: what encrypted files' names end in.
pub const ENCRYPT_EXTENSION: &str = ".locked";
/// `encrypt` without `note`: the name of the ransom note.
pub const ENCRYPT_NOTE: &str = "README_RESTORE_FILES.txt";

/// Bytes ransomware adds to each file it encrypts (a footer holding the encrypted file key),
/// so that even an empty file changes.
const ENCRYPT_FOOTER: u64 = 256;

/// An entry of a mutation's `applied` list.
fn applied_entry(op: &str, kind: &str, key: ItemKey) -> Value {
    json!({"op": op, "kind": kind, "key": format!("{key:?}")})
}

/// `k` of `n` positions, in order, drawn with `rng`: `share` of them rounded, at least one
/// when there are any and `share` is above 0.
fn sample_share(rng: &mut impl Rng, n: usize, share: f64) -> Vec<usize> {
    if n == 0 || share <= 0.0 {
        return vec![];
    }
    let k = ((n as f64 * share).round() as usize).clamp(1, n);
    let mut picked = rand::seq::index::sample(rng, n, k).into_vec();
    picked.sort_unstable();
    picked
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn touch(s: &mut crate::state::ItemState) {
    s.rev += 1;
    s.modified = content::iso(chrono::Utc::now());
}

impl Sim {
    /// Every current item of a collection: generated ones still there, then arrivals.
    pub fn members(&self, st: &State, c: CollKey) -> Vec<ItemKey> {
        let mut out: Vec<ItemKey> = (0..self.model.base_count(c))
            .map(|n| ItemKey::Base(c, n))
            .filter(|k| match st.items.get(k) {
                Some(s) => s.coll == c && !s.deleted,
                None => true,
            })
            .collect();
        out.extend(st.arrivals(c, u64::MAX));
        out
    }

    /// The folders among a drive's members, and its root.
    fn drive_folders(&self, st: &State, members: &[ItemKey], c: CollKey) -> Vec<ItemKey> {
        members
            .iter()
            .copied()
            .filter(|k| self.model.drive_node(st, *k).is_some_and(|n| n.folder))
            .chain(std::iter::once(ItemKey::Base(c, 0)))
            .collect()
    }

    /// All collections of a resource (mail and contact folders, calendars, drives, lists,
    /// a group's conversation threads).
    pub fn collections(&self, st: &State, r: Res) -> Vec<CollKey> {
        let t = &self.model.tenant;
        let mut out = Vec::new();
        out.extend(
            self.model
                .mail_folders(st, r)
                .into_iter()
                .filter(|f| !f.search_folder)
                .map(|f| f.coll),
        );
        out.extend(
            self.model
                .contact_folders(st, r)
                .into_iter()
                .map(|f| f.coll),
        );
        out.extend(self.model.calendars(r).into_iter().map(|(c, _)| c));
        out.extend(t.drives(r).into_iter().map(|(c, _)| c));
        if let Res::Site(n) = r {
            out.extend(t.lists(n).into_iter().map(|(c, _)| c));
        }
        out.extend(t.threads(r));
        out
    }

    /// `GET /_sim/manifest?resource=ID`.
    pub fn manifest(&self, id: &str) -> Resp {
        let Some(r) = self.model.tenant.find_res(id) else {
            return Resp::error(
                404,
                "notFound",
                &format!("No user, group or site has id '{id}'."),
            );
        };
        let st = self.state();
        let ctx = Ctx {
            immutable_ids: true,
        };
        let mail = self.model.mail_folders(&st, r);
        let contacts = self.model.contact_folders(&st, r);
        let drives = self.model.tenant.drives(r);
        let mut out = Vec::new();
        for c in self.collections(&st, r) {
            for key in self.members(&st, c) {
                let entry = match c.coll {
                    Coll::MailFolder(_) => self
                        .model
                        .message_mime(&st, key)
                        .map(|m| ("message", self.model.folder_path(&mail, c), sha(&m))),
                    Coll::ContactFolder(_) => self.model.contact_json(&st, key, ctx).map(|v| {
                        (
                            "contact",
                            self.model.folder_path(&contacts, c),
                            sha(&canonical(&v, CONTACT_CONTENT_FIELDS)),
                        )
                    }),
                    Coll::Calendar(_) => self.model.event_json(&st, key, ctx).map(|v| {
                        let name = self.model.calendar_name(c);
                        (
                            "event",
                            name.to_string(),
                            sha(&canonical(&v, EVENT_CONTENT_FIELDS)),
                        )
                    }),
                    Coll::Drive(_) => self
                        .model
                        .drive_node(&st, key)
                        .filter(|n| !n.folder && !n.deleted)
                        .map(|n| {
                            let drive = drives
                                .iter()
                                .find(|(k, _)| *k == c)
                                .map(|x| x.1.clone())
                                .unwrap_or_default();
                            (
                                "file",
                                format!("{drive}/{}", self.model.item_path(&st, &n)),
                                self.model.content_sha256(&st, &n.content),
                            )
                        }),
                    Coll::List(l) => self.model.list_item_json(&st, key, true).map(|v| {
                        let name = match r {
                            Res::Site(n) => self
                                .model
                                .tenant
                                .lists(n)
                                .get(l as usize)
                                .map(|x| x.1)
                                .unwrap_or(""),
                            _ => "",
                        };
                        (
                            "listItem",
                            name.to_string(),
                            sha(&canonical_list_fields(&v["fields"])),
                        )
                    }),
                    Coll::Thread(k) => self.model.post_json(&st, key).map(|v| {
                        let topic = match r {
                            Res::Group(g) => content::thread_topic(&self.model.tenant, g, k),
                            _ => String::new(),
                        };
                        ("post", topic, sha(&canonical(&v, POST_CONTENT_FIELDS)))
                    }),
                };
                if let Some((kind, path, sha256)) = entry {
                    let id = match kind {
                        "file" => crate::model::Model::drive_item_id(key),
                        "listItem" => crate::keys::list_item_id(key),
                        "post" => crate::model::Model::post_id(key),
                        _ => self.model.outlook_id(key, c, ctx),
                    };
                    let mut entry = json!({"id": id, "kind": kind, "path": path, "sha256": sha256});
                    if kind == "message"
                        && let Some(fx) = self.fx_stream(&st, key)
                    {
                        // The hash of what `exportItems` answers for it.
                        entry["fxSha256"] = json!(sha(&fx));
                    }
                    out.push(entry);
                }
            }
        }
        if let Res::User(u) = r {
            out.extend(self.archive_manifest(&st, u));
        }
        Resp::ok(Value::Array(out))
    }

    pub fn stats_json(&self) -> Value {
        let s = &self.stats;
        json!({
            "requests_total": s.requests_total.load(Ordering::Relaxed),
            "throttled_total": s.throttled_total.load(Ordering::Relaxed),
            "faults_total": s.faults_total.load(Ordering::Relaxed),
            "bytes_served": s.bytes_served.load(Ordering::Relaxed),
            "ideal_items_per_sec": self.ideal_items_per_sec(),
            "complete_items_per_sec": self.complete_items_per_sec(),
            "by_endpoint": *s.by_endpoint.lock().unwrap_or_else(|e| e.into_inner()),
            "peaks": self.throttle.peaks(),
            "limits": {
                "mailbox_concurrency": self.throttle.limits().mailbox_concurrency,
                "files_ru_per_min": self.throttle.files_budget_per_min(),
            },
            "by_status": s.by_status.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }

    /// What the simulator serves: ids and counts, never the client secret.
    pub fn info_json(&self) -> Value {
        let t = &self.model.tenant;
        json!({
            "tenant_id": self.cfg.tenant_id,
            "client_id": self.cfg.client_id,
            "domain": t.spec.domain,
            "seed": t.spec.seed,
            "users": t.spec.users,
            "groups": t.spec.groups,
            "sites": t.all_sites().count(),
            "mail_per_mailbox": t.spec.mail_per_mailbox,
            "files_per_drive": t.spec.files_per_drive,
            "threads_per_group": t.spec.threads_per_group,
        })
    }

    /// `POST /_sim/mutate`: seeded creates, modifications, moves and deletions.
    pub fn mutate(&self, m: &MutateRequest) -> Resp {
        let extra = |k: &String| crate::todo::EXTRA_KINDS.contains(&k.as_str());
        if m.kinds.as_ref().is_some_and(|k| {
            k.iter()
                .any(|k| crate::teams::TEAMS_KINDS.contains(&k.as_str()))
        }) {
            return self.mutate_teams(m);
        }
        let forward = m.ops.iter().flatten().any(|o| o == "forward-rule");
        if forward
            || m.kinds
                .as_ref()
                .is_some_and(|k| !k.is_empty() && k.iter().all(extra))
        {
            return self.mutate_extras(m);
        }
        let t = &self.model.tenant;
        let kinds: Vec<String> = m
            .kinds
            .clone()
            .unwrap_or_else(|| vec!["message".into(), "file".into(), "listItem".into()]);
        for k in &kinds {
            if !["message", "event", "contact", "file", "listItem", "post"].contains(&k.as_str()) {
                return Resp::bad_request(&format!(
                    "Unknown kind '{k}': use message, event, contact, file, listItem or post."
                ));
            }
        }
        let ops: Vec<String> = m.ops.clone().unwrap_or_else(|| {
            ["create", "modify", "move", "delete"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        for o in &ops {
            if !["create", "modify", "move", "delete", "share", "encrypt"].contains(&o.as_str()) {
                return Resp::bad_request(&format!(
                    "Unknown op '{o}': use create, modify, move, delete, share or encrypt."
                ));
            }
        }
        if ops.iter().any(|o| o == "encrypt") {
            if ops.iter().any(|o| o != "encrypt") {
                return Resp::bad_request(
                    "The op 'encrypt' plays a whole ransomware attack and cannot be mixed with \
                     other ops: send it in a request of its own (\"ops\": [\"encrypt\"]).",
                );
            }
            return self.encrypt(m);
        }
        if m.has_encrypt_fields() {
            return Resp::bad_request(
                "The fields share, extension, note and delete_mail only apply to the op \
                 'encrypt': add \"ops\": [\"encrypt\"] or leave them out.",
            );
        }
        let Some(count) = m.count else {
            return Resp::bad_request(
                "Invalid mutate request: missing field `count` (the number of changes to make).",
            );
        };
        let fixed = match &m.resource {
            Some(id) => match t.find_res(id) {
                Some(r) => Some(r),
                None => {
                    return Resp::error(
                        404,
                        "notFound",
                        &format!("No user, group or site has id '{id}'."),
                    );
                }
            },
            None => None,
        };
        let mut st = self.state();
        let mut rng = crate::seeded::rng(t.spec.seed ^ m.seed, &[0xAD, st.seq]);
        let mut applied = Vec::new();
        let mut attempts = 0;
        while applied.len() < count as usize && attempts < count * 50 + 50 {
            attempts += 1;
            let kind = kinds[rng.random_range(0..kinds.len())].as_str();
            let op = ops[rng.random_range(0..ops.len())].as_str();
            let r = match fixed {
                Some(r) => r,
                None => match kind {
                    "listItem" => {
                        let sites: Vec<u32> = t.all_sites().collect();
                        Res::Site(sites[rng.random_range(0..sites.len())])
                    }
                    "post" if t.spec.groups > 0 => Res::Group(rng.random_range(0..t.spec.groups)),
                    "post" => continue,
                    "file" if rng.random_bool(0.3) && t.spec.sites > 0 => {
                        let sites: Vec<u32> = t.all_sites().collect();
                        Res::Site(sites[rng.random_range(0..sites.len())])
                    }
                    _ => Res::User(rng.random_range(0..t.spec.users.max(1))),
                },
            };
            let colls: Vec<CollKey> = self
                .collections(&st, r)
                .into_iter()
                .filter(|c| {
                    matches!(
                        (kind, c.coll),
                        ("message", Coll::MailFolder(_))
                            | ("contact", Coll::ContactFolder(_))
                            | ("event", Coll::Calendar(_))
                            | ("file", Coll::Drive(_))
                            | ("listItem", Coll::List(_))
                            | ("post", Coll::Thread(_))
                    )
                })
                .collect();
            if colls.is_empty() {
                continue;
            }
            let c = colls[rng.random_range(0..colls.len())];
            let seed = rng.random::<u64>();
            match self.mutate_one(&mut st, r, c, &colls, kind, op, seed) {
                Ok(Some(v)) => applied.push(v),
                Ok(None) => {}
                Err(e) => return crate::graph::internal(e),
            }
        }
        Resp::ok(json!({"applied": applied, "seq": st.seq}))
    }

    #[allow(clippy::too_many_arguments)]
    fn mutate_one(
        &self,
        st: &mut State,
        r: Res,
        c: CollKey,
        colls: &[CollKey],
        kind: &str,
        op: &str,
        seed: u64,
    ) -> anyhow::Result<Option<Value>> {
        let t = &self.model.tenant;
        let ctx = Ctx {
            immutable_ids: true,
        };
        let members = self.members(st, c);
        let pick_member = |members: &[ItemKey], st: &State| -> Option<ItemKey> {
            let files: Vec<ItemKey> = members
                .iter()
                .copied()
                .filter(|k| {
                    kind != "file" || self.model.drive_node(st, *k).is_some_and(|n| !n.folder)
                })
                .collect();
            (!files.is_empty()).then(|| files[(seed % files.len() as u64) as usize])
        };
        let record = |op: &str, key: ItemKey| applied_entry(op, kind, key);
        match (kind, op) {
            ("message", "create") => {
                let Coll::MailFolder(f) = c.coll else {
                    return Ok(None);
                };
                let plan = content::message_plan(t, r, f, 1_000_000 + (seed % 1_000_000) as u32);
                let mime = crate::mime::render(&plan);
                let props = content::message_props(t, r, f, 0, &plan);
                let blob = st.put_blob(bytes::Bytes::from(mime))?;
                let key = ItemKey::New(st.next_seq());
                let mut s = new_state(
                    Kind::Message,
                    c,
                    props.as_object().cloned().unwrap_or_default(),
                );
                s.content = Some(Content::Blob(blob));
                st.put(key, s, None)?;
                Ok(Some(record(op, key)))
            }
            ("file", "create") => {
                let folders = self.drive_folders(st, &members, c);
                let parent = folders[(seed % folders.len() as u64) as usize];
                let key = ItemKey::New(st.next_seq());
                let mut s = new_state(Kind::DriveItem, c, serde_json::Map::new());
                s.name = Some(format!("New document {}.txt", seed % 1_000_000));
                s.parent = Some(parent);
                s.content = Some(Content::Generated(GenContent {
                    seed,
                    size: t.file_size(mix(seed)).min(4 * 1024 * 1024),
                }));
                s.props.insert("mimeType".into(), json!("text/plain"));
                st.put(key, s, None)?;
                Ok(Some(record(op, key)))
            }
            ("listItem", "create") | ("event", "create") | ("contact", "create") => {
                let (k, v) = match kind {
                    "listItem" => (
                        Kind::ListItem,
                        content::list_item_fields(t, c, 100_000 + (seed % 100_000) as u32),
                    ),
                    "event" => {
                        let Coll::Calendar(cal) = c.coll else {
                            return Ok(None);
                        };
                        (
                            Kind::Event,
                            content::event_json(t, r, cal, 100_000 + (seed % 100_000) as u32),
                        )
                    }
                    _ => {
                        let Coll::ContactFolder(f) = c.coll else {
                            return Ok(None);
                        };
                        (
                            Kind::Contact,
                            content::contact_json(t, r, f, 100_000 + (seed % 100_000) as u32),
                        )
                    }
                };
                let key = ItemKey::New(st.next_seq());
                st.put(
                    key,
                    new_state(k, c, v.as_object().cloned().unwrap_or_default()),
                    None,
                )?;
                Ok(Some(record(op, key)))
            }
            ("post", "create") => {
                let (Res::Group(g), Coll::Thread(k)) = (c.res, c.coll) else {
                    return Ok(None);
                };
                // A reply is delivered now, and strictly after the thread's newest post (two
                // replies within a second still order).
                let mut at = chrono::Utc::now()
                    .with_nanosecond(0)
                    .unwrap_or_else(chrono::Utc::now);
                if let Some(prev) = self
                    .model
                    .thread_last_delivered(st, c)
                    .and_then(|p| chrono::DateTime::parse_from_rfc3339(&p).ok())
                {
                    let prev = prev.with_timezone(&chrono::Utc);
                    if at <= prev {
                        at = prev + chrono::Duration::seconds(1);
                    }
                }
                let at = content::iso(at);
                let mut v = content::post_props(t, g, k, 1_000 + (seed % 1_000_000) as u32);
                for f in [
                    "createdDateTime",
                    "lastModifiedDateTime",
                    "receivedDateTime",
                ] {
                    v[f] = json!(at);
                }
                let key = ItemKey::New(st.next_seq());
                let mut s = new_state(Kind::Post, c, v.as_object().cloned().unwrap_or_default());
                s.created = at.clone();
                s.modified = at;
                st.put(key, s, None)?;
                Ok(Some(record(op, key)))
            }
            // Posts are only ever added to (replies); other changes are not simulated.
            ("post", _) => Ok(None),
            ("file", "share") => {
                // A file shared on its own, or its sharing removed: its content, eTag and
                // time stay; delta reports it with `@microsoft.graph.sharedChanged`.
                let Some(key) = pick_member(&members, st) else {
                    return Ok(None);
                };
                let Some(node) = self.model.drive_node(st, key) else {
                    return Ok(None);
                };
                let mut s = state_for_change(st, key, Kind::DriveItem, c);
                s.modified = node.modified.clone();
                s.props
                    .insert("shared".into(), json!(!self.model.shared_uniquely(&node)));
                s.props.insert("sharedChanged".into(), json!(true));
                st.put(key, s, None)?;
                Ok(Some(record(op, key)))
            }
            (_, "modify" | "delete") => {
                let Some(key) = pick_member(&members, st) else {
                    return Ok(None);
                };
                let k = self
                    .model
                    .kind_of(key, st.items.get(&key))
                    .unwrap_or(Kind::Message);
                let mut s = state_for_change(st, key, k, c);
                if op == "delete" {
                    s.deleted = true;
                } else {
                    match k {
                        Kind::Message => {
                            let read = self
                                .model
                                .message_json(st, key, ctx)
                                .map(|v| v["isRead"] == json!(true))
                                .unwrap_or(false);
                            s.props.insert("isRead".into(), json!(!read));
                            s.props.insert("categories".into(), json!(["Mutated"]));
                            s.props
                                .insert("flag".into(), json!({"flagStatus": "flagged"}));
                        }
                        Kind::DriveItem => {
                            let Some(node) = self.model.drive_node(st, key) else {
                                return Ok(None);
                            };
                            s.versions.push(VersionRec {
                                content: node.content.clone(),
                                modified: node.modified.clone(),
                            });
                            let size = t.file_size(mix(seed)).min(4 * 1024 * 1024);
                            s.content = Some(Content::Generated(GenContent { seed, size }));
                        }
                        Kind::ListItem => {
                            s.props
                                .insert("Status".into(), json!(format!("Changed {}", seed % 1000)));
                        }
                        Kind::Post => return Ok(None),
                        Kind::Event | Kind::Contact => {
                            let field = if k == Kind::Event {
                                "subject"
                            } else {
                                "jobTitle"
                            };
                            s.props
                                .insert(field.into(), json!(format!("Changed {}", seed % 1000)));
                        }
                    }
                }
                touch(&mut s);
                st.put(key, s, None)?;
                Ok(Some(record(op, key)))
            }
            ("message", "move") | ("file", "move") => {
                let Some(key) = pick_member(&members, st) else {
                    return Ok(None);
                };
                if kind == "message" {
                    let others: Vec<&CollKey> = colls.iter().filter(|x| **x != c).collect();
                    if others.is_empty() {
                        return Ok(None);
                    }
                    let dest = *others[(hash(seed, &[1]) % others.len() as u64) as usize];
                    let mut s = state_for_change(st, key, Kind::Message, c);
                    s.coll = dest;
                    touch(&mut s);
                    st.put(key, s, Some(c))?;
                } else {
                    let folders = self.drive_folders(st, &members, c);
                    let dest = folders[(hash(seed, &[1]) % folders.len() as u64) as usize];
                    let mut s = state_for_change(st, key, Kind::DriveItem, c);
                    s.parent = Some(dest);
                    touch(&mut s);
                    st.put(key, s, None)?;
                }
                Ok(Some(record(op, key)))
            }
            _ => Ok(None),
        }
    }

    /// `POST /_sim/mutate` with `"ops": ["encrypt"]`: ransomware on one user's OneDrive. A
    /// seeded `share` of the files gets uniformly random content (the old size plus a
    /// 256-byte footer) and `extension` appended to its name, each a change of the driveItem
    /// (same id; new name, content, eTag, cTag, hash and time; the old content kept as a
    /// version); a ransom note `note` lands in the root and in every folder that held an
    /// encrypted file (overwritten where one exists); `delete_mail` of the user's messages
    /// are deleted. The response names the user attacked (`resource`).
    pub fn encrypt(&self, m: &MutateRequest) -> Resp {
        let t = &self.model.tenant;
        let share = m.share.unwrap_or(ENCRYPT_SHARE);
        if !(share > 0.0 && share <= 1.0) {
            return Resp::bad_request(&format!(
                "share must be a fraction above 0 and at most 1 (of the user's files to \
                 encrypt), got {share}."
            ));
        }
        let delete_mail = m.delete_mail.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&delete_mail) {
            return Resp::bad_request(&format!(
                "delete_mail must be a fraction from 0 to 1 (of the user's messages to \
                 delete), got {delete_mail}."
            ));
        }
        let extension = m.extension.as_deref().unwrap_or(ENCRYPT_EXTENSION);
        let bad_extension = match extension {
            "" => Some("It is empty.".to_string()),
            _ => crate::graph::check_name(&format!("x{extension}")).err(),
        };
        if let Some(e) = bad_extension {
            return Resp::bad_request(&format!(
                "The extension '{extension}' cannot end a OneDrive file name: {e}"
            ));
        }
        let note = m.note.as_deref().unwrap_or(ENCRYPT_NOTE);
        if let Err(e) = crate::graph::check_name(note) {
            return Resp::bad_request(&format!(
                "The note name '{note}' is not a valid OneDrive file name: {e}"
            ));
        }
        let has_drive = |r: Res| !t.drives(r).is_empty();
        let fixed = match &m.resource {
            None => None,
            Some(id) => match t.find_res(id) {
                None => {
                    return Resp::error(
                        404,
                        "notFound",
                        &format!("No user, group or site has id '{id}'."),
                    );
                }
                Some(r @ Res::User(_)) if has_drive(r) => Some(r),
                Some(Res::User(_)) => {
                    return Resp::bad_request(&format!(
                        "User '{id}' has no OneDrive to encrypt (a shared mailbox or an \
                         unlicensed user): aim encrypt at a licensed user."
                    ));
                }
                Some(_) => {
                    return Resp::bad_request(&format!(
                        "encrypt attacks a user's OneDrive, and '{id}' is a group or a site: \
                         give a user id or UPN."
                    ));
                }
            },
        };
        let mut st = self.state();
        let mut rng = crate::seeded::rng(t.spec.seed ^ m.seed, &[0xEC, st.seq]);
        let user = match fixed {
            Some(r) => r,
            None => {
                let users: Vec<Res> = (0..t.spec.users)
                    .map(Res::User)
                    .filter(|r| has_drive(*r))
                    .collect();
                if users.is_empty() {
                    return Resp::bad_request(
                        "No user of the tenant has a OneDrive to encrypt: generate licensed \
                         users (--users).",
                    );
                }
                users[rng.random_range(0..users.len())]
            }
        };
        let attack = Attack {
            share,
            extension,
            note,
            delete_mail,
        };
        match self.play_encrypt(&mut st, &mut rng, user, &attack) {
            Ok(applied) => Resp::ok(json!({
                "applied": applied,
                "seq": st.seq,
                "resource": t.res_id(user),
            })),
            Err(e) => crate::graph::internal(e),
        }
    }

    fn play_encrypt(
        &self,
        st: &mut State,
        rng: &mut impl Rng,
        user: Res,
        a: &Attack,
    ) -> anyhow::Result<Vec<Value>> {
        let t = &self.model.tenant;
        let mut applied = Vec::new();
        let ransom = format!(
            "YOUR FILES HAVE BEEN ENCRYPTED\n\n\
             Your documents were encrypted and renamed to end in {ext}.\n\
             Do not rename or move them. Restore them from a backup made before the attack.\n\n\
             Personal ID: {id}\n\n\
             This is a simulated ransomware attack played by cairn-sim for tests and demos.\n",
            ext = a.extension,
            id = crate::seeded::guid(rng.random(), &[]),
        );
        for (c, _) in t.drives(user) {
            let files: Vec<DriveNode> = self
                .members(st, c)
                .into_iter()
                .filter_map(|k| self.model.drive_node(st, k))
                .filter(|n| {
                    let name = n.name.to_lowercase();
                    !n.folder
                        && !n.deleted
                        && !name.ends_with(&a.extension.to_lowercase())
                        && name != a.note.to_lowercase()
                })
                .collect();
            let root = ItemKey::Base(c, 0);
            let mut folders = vec![root];
            for i in sample_share(rng, files.len(), a.share) {
                let node = &files[i];
                let Some(parent) = node.parent.and_then(|p| self.model.drive_node(st, p)) else {
                    continue;
                };
                let mut name = format!("{}{}", node.name, a.extension);
                if self
                    .child_by_name(st, &parent, &name)
                    .is_some_and(|n| n.key != node.key)
                {
                    name = self.free_name(st, &parent, &name);
                }
                let mut s = state_for_change(st, node.key, Kind::DriveItem, c);
                s.versions.push(VersionRec {
                    content: node.content.clone(),
                    modified: node.modified.clone(),
                });
                s.name = Some(name);
                s.content = Some(Content::Noise(GenContent {
                    seed: rng.random(),
                    size: Model::content_len(&node.content) + ENCRYPT_FOOTER,
                }));
                s.props
                    .insert("mimeType".into(), json!("application/octet-stream"));
                touch(&mut s);
                st.put(node.key, s, None)?;
                applied.push(applied_entry("encrypt", "file", node.key));
                if !folders.contains(&parent.key) {
                    folders.push(parent.key);
                }
            }
            let blob = st.put_blob(bytes::Bytes::from(ransom.clone()))?;
            for f in folders {
                let Some(folder) = self.model.drive_node(st, f).filter(|n| !n.deleted) else {
                    continue;
                };
                match self.child_by_name(st, &folder, a.note) {
                    Some(old) if !old.folder => {
                        let mut s = state_for_change(st, old.key, Kind::DriveItem, c);
                        s.versions.push(VersionRec {
                            content: old.content.clone(),
                            modified: old.modified.clone(),
                        });
                        s.content = Some(Content::Blob(blob.clone()));
                        s.props.insert("mimeType".into(), json!("text/plain"));
                        touch(&mut s);
                        st.put(old.key, s, None)?;
                        applied.push(applied_entry("modify", "file", old.key));
                    }
                    taken => {
                        let name = match taken {
                            Some(_) => self.free_name(st, &folder, a.note),
                            None => a.note.to_string(),
                        };
                        let key = ItemKey::New(st.next_seq());
                        let mut s = new_state(Kind::DriveItem, c, serde_json::Map::new());
                        s.name = Some(name);
                        s.parent = Some(folder.key);
                        s.content = Some(Content::Blob(blob.clone()));
                        s.props.insert("mimeType".into(), json!("text/plain"));
                        st.put(key, s, None)?;
                        applied.push(applied_entry("create", "file", key));
                    }
                }
            }
        }
        if a.delete_mail > 0.0 {
            let mail: Vec<(CollKey, ItemKey)> = self
                .collections(st, user)
                .into_iter()
                .filter(|c| matches!(c.coll, Coll::MailFolder(_)))
                .flat_map(|c| self.members(st, c).into_iter().map(move |k| (c, k)))
                .collect();
            for i in sample_share(rng, mail.len(), a.delete_mail) {
                let (c, key) = mail[i];
                let mut s = state_for_change(st, key, Kind::Message, c);
                s.deleted = true;
                touch(&mut s);
                st.put(key, s, None)?;
                applied.push(applied_entry("delete", "message", key));
            }
        }
        Ok(applied)
    }
}

/// What an `encrypt` request asked for, defaults applied and checked.
struct Attack<'a> {
    share: f64,
    extension: &'a str,
    note: &'a str,
    delete_mail: f64,
}
