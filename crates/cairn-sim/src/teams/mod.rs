//! Microsoft Teams: teams (the groups provisioned with a team), their channels, members,
//! tabs and channel messages with replies, and every user's chats with their messages; the
//! import ("migration mode") that restores messages with their original author and time.
//!
//! Generated from the seed on first use of a team (or of any chat), then kept whole in
//! memory; every change is a journal record (`teams.jsonl` beside the state journal with
//! `--state`) replayed over the generated data at start, as `todo.rs` does for To Do. Delta
//! queries count changes with sequence numbers. Assumptions where Graph's documentation is
//! silent: docs/simulator.md, section "Teams".

mod generate;
mod migration;
mod routes;

use crate::content::canonical;
use crate::wire::Resp;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

/// The fields of a chatMessage the manifest hashes (what people wrote, who and when).
pub const CHAT_MESSAGE_CONTENT_FIELDS: &[&str] = &[
    "messageType",
    "subject",
    "body",
    "from",
    "importance",
    "attachments",
    "mentions",
    "reactions",
    "replyToId",
    "createdDateTime",
];

/// Kinds `/_sim/mutate` plays here.
pub const TEAMS_KINDS: &[&str] = &["chatMessage"];

/// The stable service root written into message bodies (hosted-content URLs), whatever host
/// a request came in on, so that hashes do not depend on the simulator's port.
pub const GRAPH_ROOT: &str = "https://graph.microsoft.com/v1.0";

/// How long soft-deleted messages stay readable.
const DELETED_READABLE_DAYS: i64 = 21;
/// How far back channel delta looks.
const DELTA_WINDOW_DAYS: i64 = 8 * 30;

/// An inline image of a message.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Hosted {
    id: String,
    #[serde(rename = "ct")]
    content_type: String,
    /// The bytes, base64.
    b64: String,
}

impl Hosted {
    fn bytes(&self) -> Vec<u8> {
        STANDARD.decode(&self.b64).unwrap_or_default()
    }
}

/// One message (a root post, a reply or a chat message) as GET serves it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Msg {
    v: Value,
    /// Sequence number of its last change (0: generated).
    seq: u64,
    #[serde(default)]
    hosted: Vec<Hosted>,
}

impl Msg {
    fn id(&self) -> &str {
        self.v["id"].as_str().unwrap_or_default()
    }

    /// The root this message replies to; `None` for a root or a chat message.
    fn root(&self) -> Option<&str> {
        self.v["replyToId"].as_str()
    }

    fn created(&self) -> &str {
        self.v["createdDateTime"].as_str().unwrap_or_default()
    }

    fn modified(&self) -> &str {
        self.v["lastModifiedDateTime"].as_str().unwrap_or_default()
    }

    fn deleted(&self) -> bool {
        !self.v["deletedDateTime"].is_null()
    }

    /// Deleted more than 21 days ago: no longer served at all.
    fn vanished(&self, now: DateTime<Utc>) -> bool {
        self.v["deletedDateTime"]
            .as_str()
            .and_then(parse_time)
            .is_some_and(|d| d < now - Duration::days(DELETED_READABLE_DAYS))
    }
}

/// A thread's migration (import) state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Migration {
    /// Client id of the app managing it.
    app: String,
    /// The earliest createdDateTime an imported message may have.
    since: String,
    /// `inProgress` or `completed`.
    state: String,
}

/// A channel or a chat: its JSON, people, tabs and messages.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Conv {
    id: String,
    chat: bool,
    /// The hosting team's group index (channels).
    #[serde(default)]
    team: u32,
    /// The hosting team's id (channels).
    #[serde(default)]
    team_id: String,
    /// Further teams whose `allChannels` show it (shared channels).
    #[serde(default)]
    shared_with: Vec<u32>,
    /// The channel or chat JSON (without members).
    v: Value,
    members: Vec<u32>,
    /// Owners among the members.
    #[serde(default)]
    owners: Vec<u32>,
    #[serde(default)]
    tabs: Vec<Value>,
    #[serde(default)]
    msgs: Vec<Msg>,
    #[serde(default)]
    migration: Option<Migration>,
}

impl Conv {
    fn name(&self) -> &str {
        self.v["displayName"].as_str().unwrap_or_default()
    }

    fn msg(&self, id: &str) -> Option<&Msg> {
        self.msgs.iter().find(|m| m.id() == id)
    }

    fn migrating(&self) -> bool {
        self.migration
            .as_ref()
            .is_some_and(|m| m.state == "inProgress")
    }

    /// The JSON GET serves (with the migration state, when there is one).
    fn json(&self) -> Value {
        let mut v = self.v.clone();
        if let Some(m) = &self.migration {
            v["migrationMode"] = json!(m.state);
        }
        v
    }

    /// The sequence number of the last change of a thread (root and replies).
    fn thread_seq(&self, root: &str) -> u64 {
        self.msgs
            .iter()
            .filter(|m| m.id() == root || m.root() == Some(root))
            .map(|m| m.seq)
            .max()
            .unwrap_or(0)
    }

    /// The latest lastModifiedDateTime in a thread.
    fn thread_modified(&self, root: &str) -> String {
        self.msgs
            .iter()
            .filter(|m| m.id() == root || m.root() == Some(root))
            .map(|m| m.modified().to_string())
            .max()
            .unwrap_or_default()
    }

    /// A message id for a creation time: epoch milliseconds, bumped while taken.
    fn fresh_id(&self, created_ms: i64) -> String {
        let mut ms = created_ms;
        while self.msgs.iter().any(|m| m.id() == ms.to_string()) {
            ms += 1;
        }
        ms.to_string()
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// Owner: `g<group index>` (a team's channels) or `chats`; `meta` for the instance.
    o: String,
    /// `conv` (a channel or chat without its messages) or `msg`.
    #[serde(default)]
    t: String,
    /// The conversation a message belongs to.
    #[serde(default)]
    c: String,
    #[serde(default)]
    conv: Option<Conv>,
    #[serde(default)]
    m: Option<Msg>,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    instance: u64,
    /// Meta: the time generated content is dated back from (epoch seconds).
    #[serde(default)]
    anchor: i64,
}

pub(crate) struct Inner {
    instance: u64,
    seq: u64,
    anchor: DateTime<Utc>,
    teams: HashMap<u32, Vec<Conv>>,
    chats: Option<Vec<Conv>>,
    pending: HashMap<String, Vec<Record>>,
    journal: Option<File>,
    /// Migration posts per thread: the instants of the last ones (5 per second at most).
    posts: HashMap<String, Vec<std::time::Instant>>,
}

/// The store of every team's channels and every chat.
pub struct Teams {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Teams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teams").finish_non_exhaustive()
    }
}

/// The time generated content is dated back from: today, midnight UTC (never before the
/// content epoch), so that two simulators started the same day agree.
fn default_anchor() -> DateTime<Utc> {
    let now = Utc::now();
    let day = Utc
        .with_ymd_and_hms(
            chrono::Datelike::year(&now),
            chrono::Datelike::month(&now),
            chrono::Datelike::day(&now),
            0,
            0,
            0,
        )
        .single()
        .unwrap_or(now);
    day.max(crate::content::epoch()).min(now)
}

impl Teams {
    pub fn open(dir: Option<&Path>) -> anyhow::Result<Self> {
        let mut inner = Inner {
            instance: rand::random::<u64>() >> 12,
            seq: 0,
            anchor: default_anchor(),
            teams: HashMap::new(),
            chats: None,
            pending: HashMap::new(),
            journal: None,
            posts: HashMap::new(),
        };
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
            let path = dir.join("teams.jsonl");
            let fresh = !path.exists();
            if !fresh {
                for line in BufReader::new(File::open(&path)?).lines() {
                    let Ok(rec) = serde_json::from_str::<Record>(&line?) else {
                        continue;
                    };
                    if rec.o == "meta" {
                        inner.instance = rec.instance;
                        if let Some(a) = Utc.timestamp_opt(rec.anchor, 0).single() {
                            inner.anchor = a;
                        }
                        continue;
                    }
                    inner.seq = inner.seq.max(rec.seq);
                    inner.pending.entry(rec.o.clone()).or_default().push(rec);
                }
            }
            inner.journal = Some(OpenOptions::new().create(true).append(true).open(&path)?);
            if fresh {
                let meta = Record {
                    o: "meta".into(),
                    t: String::new(),
                    c: String::new(),
                    conv: None,
                    m: None,
                    seq: 0,
                    instance: inner.instance,
                    anchor: inner.anchor.timestamp(),
                };
                write(&mut inner.journal, &meta)?;
            }
        }
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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

fn apply(convs: &mut Vec<Conv>, rec: Record) {
    match rec.t.as_str() {
        "conv" => {
            let Some(mut c) = rec.conv else {
                return;
            };
            match convs.iter_mut().find(|o| o.id == c.id) {
                Some(o) => {
                    c.msgs = std::mem::take(&mut o.msgs);
                    *o = c;
                }
                None => convs.push(c),
            }
        }
        "msg" => {
            let (Some(m), Some(conv)) = (rec.m, convs.iter_mut().find(|o| o.id == rec.c)) else {
                return;
            };
            match conv.msgs.iter_mut().find(|o| o.id() == m.id()) {
                Some(o) => *o = m,
                None => conv.msgs.push(m),
            }
        }
        _ => {}
    }
}

/// Where a conversation lives in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Team(u32),
    Chats,
}

impl Owner {
    fn key(self) -> String {
        match self {
            Owner::Team(g) => format!("g{g}"),
            Owner::Chats => "chats".into(),
        }
    }
}

impl Inner {
    /// The conversations of an owner, generated (and the journal replayed) on first use.
    fn convs(&mut self, t: &crate::tenant::Tenant, o: Owner) -> &mut Vec<Conv> {
        let anchor = self.anchor;
        match o {
            Owner::Team(g) => {
                if !self.teams.contains_key(&g) {
                    let mut convs = generate::team(t, g, anchor);
                    for rec in self.pending.remove(&o.key()).unwrap_or_default() {
                        apply(&mut convs, rec);
                    }
                    self.teams.insert(g, convs);
                }
                self.teams.get_mut(&g).expect("just inserted")
            }
            Owner::Chats => {
                if self.chats.is_none() {
                    let mut convs = generate::chats(t, anchor);
                    for rec in self.pending.remove(&o.key()).unwrap_or_default() {
                        apply(&mut convs, rec);
                    }
                    self.chats = Some(convs);
                }
                self.chats.as_mut().expect("just set")
            }
        }
    }

    fn conv(&mut self, t: &crate::tenant::Tenant, o: Owner, id: &str) -> Option<&mut Conv> {
        self.convs(t, o).iter_mut().find(|c| c.id == id)
    }

    /// Records and applies a new or changed message; returns its sequence number.
    fn put_msg(
        &mut self,
        t: &crate::tenant::Tenant,
        o: Owner,
        conv: &str,
        mut m: Msg,
    ) -> Result<u64, Resp> {
        self.seq += 1;
        m.seq = self.seq;
        let rec = Record {
            o: o.key(),
            t: "msg".into(),
            c: conv.to_string(),
            conv: None,
            m: Some(m),
            seq: self.seq,
            instance: 0,
            anchor: 0,
        };
        write(&mut self.journal, &rec).map_err(crate::graph::internal)?;
        apply(self.convs(t, o), rec);
        Ok(self.seq)
    }

    /// Records and applies a new or changed channel or chat (its messages untouched).
    fn put_conv(&mut self, t: &crate::tenant::Tenant, o: Owner, mut c: Conv) -> Result<(), Resp> {
        self.seq += 1;
        c.msgs = Vec::new();
        let rec = Record {
            o: o.key(),
            t: "conv".into(),
            c: c.id.clone(),
            conv: Some(c),
            m: None,
            seq: self.seq,
            instance: 0,
            anchor: 0,
        };
        write(&mut self.journal, &rec).map_err(crate::graph::internal)?;
        apply(self.convs(t, o), rec);
        Ok(())
    }
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Graph's spelling of a message time: `2026-01-05T10:11:12.345Z`.
pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The manifest hash of a message as GET serves it.
pub fn message_sha256(v: &Value) -> String {
    sha(&canonical(v, CHAT_MESSAGE_CONTENT_FIELDS))
}

/// A small valid PNG (8×8, one colour from `seed`), the seeded inline images.
pub fn png(seed: u64) -> Vec<u8> {
    let (w, h) = (8u32, 8u32);
    let rgb = [(seed >> 16) as u8, (seed >> 8) as u8, seed as u8];
    // Each scanline: filter type 0, then the pixels.
    let row: Vec<u8> = std::iter::once(0u8)
        .chain((0..w).flat_map(|_| rgb))
        .collect();
    let raw = row.repeat(h as usize);
    // zlib: one stored deflate block.
    let mut z = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&(!len).to_le_bytes());
    z.extend_from_slice(&raw);
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_well_formed() {
        let p = png(0x123456);
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&p[12..16], b"IHDR");
        assert!(p.ends_with(&[0xAE, 0x42, 0x60, 0x82]), "IEND crc");
    }

    #[test]
    fn times_have_milliseconds() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap();
        assert_eq!(fmt_time(t), "2026-01-02T03:04:05.000Z");
        assert_eq!(parse_time("2026-01-02T03:04:05.000Z"), Some(t));
    }
}
