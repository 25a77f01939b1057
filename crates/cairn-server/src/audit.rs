//! The audit log: who did what to the backups, kept so that someone who controls the server
//! afterwards cannot quietly rewrite it.
//!
//! Every state-changing API call and every read of item content becomes an entry (who:
//! token name and role, when, from where, what, on what, with which outcome), appended to a
//! table in the catalog's SQLite file beside the server's other tables.
//!
//! **Why a hash chain.** A row in SQLite can be edited, deleted or made up by anyone who
//! can write the file. Each entry therefore carries a SHA-256 over a canonical encoding of
//! its sequence number, time, fields and the hash of the entry before it
//! ([`AuditRecord::expected_hash`]); sequence numbers are contiguous from 1 and a one-row
//! head remembers the last entry the server wrote. So:
//! - an edited field no longer matches its entry's hash ("altered");
//! - a deleted entry leaves a gap in the numbers, or, if the rest were renumbered, entries
//!   whose hash only matches their former number ("missing");
//! - an entry made up in the middle (with a hash of its own that is right) breaks the link
//!   of the entry after it, which still names the hash of its true predecessor ("inserted");
//! - a cut or extended tail disagrees with the head.
//!
//! [`AuditLog::verify`] walks the chain in one pass and names the first broken entry and
//! how it broke. A chain alone cannot resist someone who rewrites everything from some
//! entry on, recomputing every hash and the head: nothing in the file is secret.
//!
//! **Why the mirror.** The repository keeps what the chain cannot: [`AuditLog::mirror`]
//! writes the entries not yet there into it as a restore point (hostname [`MIRROR_HOST`],
//! label [`MIRROR_LABEL`]), encrypted, usually on other storage. A wiped server, a catalog
//! restored from an older copy or a chain rewritten with recomputed hashes still leaves
//! the entries as they were written, and [`AuditLog::verify_with_mirror`] compares every
//! copy of every entry in every restore point of the log with the log. The server can
//! write to the repository, so against someone who controls it the copy is only as safe as
//! the storage makes it: S3 Object Lock keeps even the server from deleting it.
//!
//! **Layout in the repository.** One group of restore points per log (paths
//! `/audit-log/<log id>`, the log id being the start of its first entry's hash), so a
//! log started afresh after a wiped server never replaces an older one. Entries are JSON
//! lines ([`AuditRecord`] as serde writes it, one object per line) in segment files
//! `audit-log/<log id>/<bucket>/<first>-<last>.jsonl` (numbers zero-padded to 12 digits, a
//! bucket directory per 10 000 entries so no directory grows without bound); a mirror run
//! adds one segment per bucket it touches and never changes one written before. Every
//! restore point holds all segments mirrored before, carried over from its parent without
//! being read, so the latest one is the whole log up to its time (`restic dump latest` is
//! enough, and retention keeping only the latest point loses nothing). Which segments were
//! mirrored (size, SHA-256, restore point) is kept in a table beside the log; when no
//! parent holds one any more (its points forgotten, another repository), it is written
//! again from the log only if the log still gives its very bytes, else the run fails.

use anyhow::Context;
use cairn_repo::{Entry, Repo, SnapshotInfo, SnapshotMeta};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The hostname of the restore points that hold the audit log.
pub const MIRROR_HOST: &str = "cairn-server";
/// The label of the restore points that hold the audit log.
pub const MIRROR_LABEL: &str = "audit-log";
/// The top directory of those restore points.
const MIRROR_ROOT: &str = "audit-log";
/// Entries per directory of segments in the repository.
const BUCKET: i64 = 10_000;
/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How far from its number an entry's hash is tried, to tell renumbered entries (something
/// deleted or inserted before them) from edited ones.
const RENUMBER_WINDOW: i64 = 1000;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS server_audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_audit_at ON server_audit (at);
CREATE TABLE IF NOT EXISTS server_audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS server_audit_mirror (
    path TEXT PRIMARY KEY,
    log TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    entries INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mtime TEXT NOT NULL,
    snapshot TEXT NOT NULL
);
"#;

const COLUMNS: &str = "seq, at, actor, role, source, action, target, outcome, prev, hash";

/// What happened, as the server reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The API token's name (or what else acted: `scheduler`).
    pub actor: String,
    /// The token's role.
    pub role: String,
    /// The client's address, when the call came over the network.
    pub source: Option<String>,
    /// What was done (`backup.run`, `restore`, `item.read`, …).
    pub action: String,
    /// On what (a job, a resource, a restore point, an item).
    pub target: String,
    /// How it ended (`ok`, `denied`, `failed: …`).
    pub outcome: String,
}

/// An entry of the log, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Its number: contiguous from 1.
    pub seq: u64,
    /// When it was written: RFC 3339 in UTC with microseconds, exactly the text the hash
    /// covers.
    #[schema(format = DateTime)]
    pub at: String,
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The hash of the entry before it ([`GENESIS`] for the first), hex.
    pub prev: String,
    /// SHA-256 of this entry ([`AuditRecord::expected_hash`]), hex.
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record must carry: SHA-256 over a tag, the number (8 bytes, big
    /// endian), then `at`, the entry's fields in declaration order and `prev`, each as a
    /// presence byte (0: none, 1: some) followed by its length (8 bytes, big endian) and its
    /// UTF-8 bytes. Unambiguous: no two records encode alike.
    pub fn expected_hash(&self) -> String {
        chain_hash(self.seq as i64, &self.at, &self.entry, &self.prev)
    }

    /// Does the record match its hash?
    pub fn is_consistent(&self) -> bool {
        self.expected_hash() == self.hash
    }

    /// `at` as a time (`None` if it is no RFC 3339 time: an altered record).
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

fn chain_hash(seq: i64, at: &str, e: &AuditEntry, prev: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"cairn-audit-v1\n");
    h.update(seq.to_be_bytes());
    let fields = [
        Some(at),
        Some(e.actor.as_str()),
        Some(e.role.as_str()),
        e.source.as_deref(),
        Some(e.action.as_str()),
        Some(e.target.as_str()),
        Some(e.outcome.as_str()),
        Some(prev),
    ];
    for f in fields {
        match f {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_be_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    hex::encode(h.finalize())
}

/// A time as entries record it.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// How an entry broke the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// Its content (or its link) is not what was written.
    Altered,
    /// It was not written by the server: made up and slipped in.
    Inserted,
    /// Entries were removed here.
    Missing,
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BreakKind::Altered => "altered",
            BreakKind::Inserted => "inserted",
            BreakKind::Missing => "missing",
        })
    }
}

/// The first broken entry of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Broken {
    /// The entry's number (for missing entries, the first number missing).
    pub seq: u64,
    pub kind: BreakKind,
    /// What exactly is wrong.
    pub detail: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {} {}: {}", self.seq, self.kind, self.detail)
    }
}

/// What the repository's copy of the log held, as [`AuditLog::verify_with_mirror`] read it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MirrorCheck {
    /// Restore points of this log in the repository.
    pub snapshots: u64,
    /// Copies of entries compared with the log (an entry mirrored once counts once).
    pub entries: u64,
    /// The highest entry the repository holds.
    pub through: Option<u64>,
    /// Other audit logs the repository holds (their ids), not compared: a log that
    /// was started afresh after a wiped server — or this log with its first entry
    /// rewritten, a reason to look at them.
    pub other_logs: Vec<String>,
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Entries in the log.
    pub entries: u64,
    /// The last entry's number and hash: note them to compare later.
    pub last_seq: Option<u64>,
    pub last_hash: Option<String>,
    /// The comparison with the repository, when asked for.
    pub mirror: Option<MirrorCheck>,
    /// The first broken entry; `None`: the chain is intact.
    pub broken: Option<Broken>,
}

impl Verification {
    pub fn is_ok(&self) -> bool {
        self.broken.is_none()
    }

    /// Keeps the break with the lower number.
    fn found(&mut self, b: Broken) {
        if self.broken.as_ref().is_none_or(|o| b.seq < o.seq) {
            self.broken = Some(b);
        }
    }
}

/// A row as stored, whatever was done to it.
struct Row {
    seq: i64,
    at: String,
    entry: AuditEntry,
    prev: String,
    hash: String,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let s = |i| text(r, i).map(Option::unwrap_or_default);
        Ok(Row {
            seq: r.get(0)?,
            at: s(1)?,
            entry: AuditEntry {
                actor: s(2)?,
                role: s(3)?,
                source: text(r, 4)?,
                action: s(5)?,
                target: s(6)?,
                outcome: s(7)?,
            },
            prev: s(8)?,
            hash: s(9)?,
        })
    }

    fn hash_at(&self, seq: i64) -> String {
        chain_hash(seq, &self.at, &self.entry, &self.prev)
    }

    fn record(self) -> AuditRecord {
        AuditRecord {
            seq: self.seq.max(0) as u64,
            at: self.at,
            entry: self.entry,
            prev: self.prev,
            hash: self.hash,
        }
    }
}

/// A column as text, whatever SQLite holds in it (someone may have stored a number in a
/// text column): a changed type is an alteration to report, not a reason to fail.
fn text(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<String>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Null => None,
        ValueRef::Integer(v) => Some(v.to_string()),
        ValueRef::Real(v) => Some(v.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(hex::encode(b)),
    })
}

/// A segment file of the repository's copy, as the mirror table remembers it.
struct Segment {
    path: String,
    first: i64,
    last: i64,
    size: u64,
    sha256: String,
    mtime: DateTime<Utc>,
    snapshot: String,
}

/// The tamper-evident audit log of `cairn serve`.
pub struct AuditLog {
    path: PathBuf,
    /// The writer's connection; reads (verify, export, mirror) open their own, so a long
    /// verification never holds up the server's appends (WAL).
    conn: Mutex<Connection>,
    /// One mirror run at a time: two would write the same entries twice.
    mirroring: Mutex<()>,
}

// Appends come from every request handler at once.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<AuditLog>();
};

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish()
    }
}

fn connect(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("opening the audit log in {}", path.display()))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    )?;
    Ok(conn)
}

impl AuditLog {
    /// Opens the log kept in the SQLite file at `path` (the catalog's file; the server's
    /// other tables live there too), creating its tables.
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = connect(path)?;
        conn.execute_batch(SCHEMA)?;
        // The head starts with the log; one that goes missing later is reported, not
        // recreated from whatever rows are left.
        conn.execute(
            "INSERT OR IGNORE INTO server_audit_head (id, seq, hash)
             SELECT 1, 0, ?1 WHERE NOT EXISTS (SELECT 1 FROM server_audit)",
            params![GENESIS],
        )?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            mirroring: Mutex::new(()),
        })
    }

    /// The SQLite file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry (time = now), chained to the previous one. Safe to call from many
    /// threads (and processes: the append is one immediate transaction).
    pub fn append(&self, e: &AuditEntry) -> anyhow::Result<AuditRecord> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM server_audit_head WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, text(r, 1)?.unwrap_or_default())),
            )
            .optional()?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM server_audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, text(r, 1)?.unwrap_or_default())),
            )
            .optional()?;
        // Chained to the last entry this server wrote (the head); numbered after any row,
        // so that a row slipped in behind the server's back neither stops the log nor goes
        // unnoticed (the next entry does not link to it).
        let prev = match (&head, &last) {
            (Some((_, h)), _) => h.clone(),
            (None, Some((_, h))) => {
                tracing::warn!(path = %self.path.display(), "the audit log's head is missing");
                h.clone()
            }
            (None, None) => GENESIS.to_string(),
        };
        let seq = 1 + head
            .map(|(s, _)| s)
            .unwrap_or(0)
            .max(last.map(|(s, _)| s).unwrap_or(0));
        let at = stamp(Utc::now());
        let hash = chain_hash(seq, &at, e, &prev);
        tx.execute(
            "INSERT INTO server_audit (seq, at, actor, role, source, action, target, outcome, prev, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![seq, at, e.actor, e.role, e.source, e.action, e.target, e.outcome, prev, hash],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO server_audit_head (id, seq, hash) VALUES (1, ?1, ?2)",
            params![seq, hash],
        )?;
        tx.commit()?;
        Ok(AuditRecord {
            seq: seq as u64,
            at,
            entry: e.clone(),
            prev,
            hash,
        })
    }

    /// A connection of its own for a long read.
    fn reader(&self) -> anyhow::Result<Connection> {
        connect(&self.path)
    }

    /// Walks the chain and names its first broken entry: altered, inserted or missing.
    pub fn verify(&self) -> anyhow::Result<Verification> {
        let mut conn = self.reader()?;
        // One read transaction: the rows and the head as of one moment, appends going on.
        let tx = conn.transaction()?;
        let mut v = Verification::default();
        let mut prev_hash = GENESIS.to_string();
        let mut expected: i64 = 1;
        {
            let mut stmt =
                tx.prepare(&format!("SELECT {COLUMNS} FROM server_audit ORDER BY seq"))?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let row = Row::read(r)?;
                v.entries += 1;
                if let Some(b) = check(&tx, &row, expected, &prev_hash)? {
                    v.broken = Some(b);
                    break;
                }
                expected = row.seq + 1;
                prev_hash = row.hash.clone();
                v.last_seq = Some(row.seq as u64);
                v.last_hash = Some(row.hash);
            }
        }
        if v.broken.is_none() {
            v.broken = check_head(&tx, v.last_seq.unwrap_or(0) as i64, &prev_hash)?;
        } else {
            v.entries = tx.query_row("SELECT COUNT(*) FROM server_audit", [], |r| r.get(0))?;
            v.last_seq = None;
            v.last_hash = None;
        }
        Ok(v)
    }

    /// The entries written at or after `t`, oldest first, handed to `f` until it returns
    /// false.
    pub fn since(
        &self,
        t: DateTime<Utc>,
        f: &mut dyn FnMut(AuditRecord) -> bool,
    ) -> anyhow::Result<()> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM server_audit WHERE at >= ?1 ORDER BY seq"
        ))?;
        let mut rows = stmt.query(params![stamp(t)])?;
        while let Some(r) = rows.next()? {
            if !f(Row::read(r)?.record()) {
                break;
            }
        }
        Ok(())
    }

    /// The log's id in the repository: the start of its first entry's hash, or the one it
    /// was mirrored under already. `None` for an empty log.
    fn log_id(conn: &Connection) -> anyhow::Result<Option<String>> {
        let mirrored: Option<String> = conn
            .query_row(
                "SELECT log FROM server_audit_mirror ORDER BY last DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if mirrored.is_some() {
            return Ok(mirrored);
        }
        let first: Option<Option<String>> = conn
            .query_row(
                "SELECT hash FROM server_audit ORDER BY seq LIMIT 1",
                [],
                |r| text(r, 0),
            )
            .optional()?;
        Ok(first.flatten().map(|h| h.chars().take(16).collect()))
    }

    /// Writes the entries not yet in the repository into it, as a restore point that also
    /// holds everything mirrored before (see the module's documentation). Returns how many
    /// entries it wrote (0: nothing new, no restore point). Blocking.
    pub fn mirror(&self, repo: &Repo) -> anyhow::Result<u64> {
        let _one = self.mirroring.lock().unwrap_or_else(|p| p.into_inner());
        let conn = self.reader()?;
        let Some(log) = Self::log_id(&conn)? else {
            return Ok(0);
        };
        let done: Vec<Segment> = {
            let mut stmt = conn.prepare(
                "SELECT path, first, last, size, sha256, mtime, snapshot FROM server_audit_mirror
                 WHERE log = ?1 ORDER BY path",
            )?;
            let rows = stmt.query_map(params![log], |r| {
                let mtime: String = r.get(5)?;
                Ok(Segment {
                    path: r.get(0)?,
                    first: r.get(1)?,
                    last: r.get(2)?,
                    size: r.get::<_, i64>(3)? as u64,
                    sha256: r.get(4)?,
                    mtime: DateTime::parse_from_rfc3339(&mtime)
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                    snapshot: r.get(6)?,
                })
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let through = done.iter().map(|s| s.last).max().unwrap_or(0);
        let parent = done
            .iter()
            .max_by_key(|s| s.last)
            .map(|s| s.snapshot.clone());
        // The new entries, cut at bucket boundaries: (first, last, entries).
        let mut new: Vec<(i64, i64, u64)> = Vec::new();
        {
            let mut stmt =
                conn.prepare("SELECT seq FROM server_audit WHERE seq > ?1 ORDER BY seq")?;
            let mut rows = stmt.query(params![through])?;
            while let Some(r) = rows.next()? {
                let seq: i64 = r.get(0)?;
                match new.last_mut() {
                    Some((first, last, n)) if bucket(*first) == bucket(seq) => {
                        *last = seq;
                        *n += 1;
                    }
                    _ => new.push((seq, seq, 1)),
                }
            }
        }
        if new.is_empty() {
            return Ok(0);
        }
        // To the microsecond, as the mirror table keeps it: a segment carried over must
        // have the very time of the parent's copy to be taken from it unread.
        let now =
            DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap_or_default();
        let root = format!("{MIRROR_ROOT}/{log}");
        let mut slots: BTreeMap<PathBuf, Slot> = BTreeMap::new();
        for s in &done {
            dirs(&mut slots, &s.path);
            slots.insert(
                PathBuf::from(&s.path),
                Slot::Old {
                    size: s.size,
                    mtime: s.mtime,
                    first: s.first,
                    last: s.last,
                    sha256: s.sha256.clone(),
                },
            );
        }
        let mut written = Vec::new();
        for &(first, last, n) in &new {
            let path = format!(
                "{root}/{:012}/{first:012}-{last:012}.jsonl",
                bucket(first) * BUCKET
            );
            dirs(&mut slots, &path);
            slots.insert(PathBuf::from(&path), Slot::New { first, last });
            written.push((path, first, last, n));
        }
        let failed = Arc::new(Mutex::new(Vec::new()));
        let sizes = Arc::new(Mutex::new(BTreeMap::new()));
        let entries = MirrorEntries {
            slots: slots.into_iter(),
            db: self.path.clone(),
            conn: self.reader()?,
            now,
            failed: failed.clone(),
            sizes: sizes.clone(),
        };
        let last = new[new.len() - 1].1;
        let n: u64 = new.iter().map(|s| s.2).sum();
        let meta = SnapshotMeta {
            hostname: MIRROR_HOST.into(),
            label: MIRROR_LABEL.into(),
            paths: vec![format!("/{root}")],
            tags: vec![MIRROR_LABEL.into()],
            time: Some(now),
            description: Some(format!(
                "the audit log of cairn serve through entry {last} ({n} new)"
            )),
            parent,
        };
        let report = repo
            .archive(&meta, entries)
            .context("writing the audit log into the repository")?;
        let failed = std::mem::take(&mut *failed.lock().unwrap_or_else(|p| p.into_inner()));
        if !failed.is_empty() || !report.skipped.is_empty() {
            // Not recorded: the next run writes these entries again, over the last complete
            // restore point.
            let why: Vec<String> = failed
                .into_iter()
                .chain(report.skipped.into_iter().map(|(p, w)| format!("{p}: {w}")))
                .collect();
            anyhow::bail!(
                "the audit log's restore point {} is incomplete: {}",
                report.snapshot.id,
                why.join("; ")
            );
        }
        let written_as = std::mem::take(&mut *sizes.lock().unwrap_or_else(|p| p.into_inner()));
        let mut count = 0;
        let mut conn = conn;
        let tx = conn.transaction()?;
        for (path, first, last, n) in written {
            let (size, sha256) = written_as.get(&path).cloned().unwrap_or_default();
            tx.execute(
                "INSERT OR REPLACE INTO server_audit_mirror
                 (path, log, first, last, entries, size, sha256, mtime, snapshot)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    path,
                    log,
                    first,
                    last,
                    n as i64,
                    size as i64,
                    sha256,
                    stamp(now),
                    report.snapshot.id
                ],
            )?;
            count += n;
        }
        tx.commit()?;
        tracing::info!(
            snapshot = %report.snapshot.id,
            entries = count,
            "audit log mirrored into the repository"
        );
        Ok(count)
    }

    /// [`verify`](Self::verify), then every entry of every restore point of this log in the
    /// repository compared with the log: a copy the log no longer has, or has otherwise,
    /// is reported (the repository's copy is the one written first). Reads the repository's
    /// index and the mirrored entries. Blocking.
    pub fn verify_with_mirror(&self, repo: &Repo) -> anyhow::Result<Verification> {
        let mut v = self.verify()?;
        let conn = self.reader()?;
        let mut check = MirrorCheck::default();
        let Some(log) = Self::log_id(&conn)? else {
            v.mirror = Some(check);
            return Ok(v);
        };
        let group = format!("/{MIRROR_ROOT}/{log}");
        let mut snaps: Vec<SnapshotInfo> = Vec::new();
        for s in repo.snapshots()? {
            if s.hostname != MIRROR_HOST || s.label != MIRROR_LABEL {
                continue;
            }
            if s.paths == [group.clone()] {
                snaps.push(s);
                continue;
            }
            let other = s.paths.join(",");
            let other = other.rsplit('/').next().unwrap_or_default().to_string();
            if !check.other_logs.contains(&other) {
                check.other_logs.push(other);
            }
        }
        let mut local = conn.prepare("SELECT hash FROM server_audit WHERE seq = ?1")?;
        let mut seen = HashSet::new();
        let mut reader: Option<cairn_repo::SnapshotReader> = None;
        for s in &snaps {
            check.snapshots += 1;
            let rd = match reader.take() {
                Some(r) => r.at(&s.id)?,
                None => repo.open_snapshot(&s.id)?,
            };
            let mut files = Vec::new();
            rd.walk(&mut |e| {
                if !e.is_dir && e.path.ends_with(".jsonl") {
                    files.push(e);
                }
                true
            })?;
            for f in files {
                // A segment carried over unchanged is the same copy: read it once.
                if !seen.insert((f.path.clone(), f.size, f.mtime)) {
                    continue;
                }
                let mut buf = Vec::new();
                rd.read_entry(&f, &mut buf)?;
                let short = &s.id[..8.min(s.id.len())];
                for (i, line) in buf
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    let rec: AuditRecord = match serde_json::from_slice(line) {
                        Ok(r) => r,
                        Err(e) => {
                            v.found(Broken {
                                seq: segment_first(&f.path).unwrap_or(0) + i as u64,
                                kind: BreakKind::Altered,
                                detail: format!(
                                    "line {} of {} in restore point {short} is no audit entry: {e}",
                                    i + 1,
                                    f.path
                                ),
                            });
                            continue;
                        }
                    };
                    check.entries += 1;
                    check.through = check.through.max(Some(rec.seq));
                    if !rec.is_consistent() {
                        v.found(Broken {
                            seq: rec.seq,
                            kind: BreakKind::Altered,
                            detail: format!(
                                "the repository's copy (restore point {short}) does not match its hash"
                            ),
                        });
                        continue;
                    }
                    let mine: Option<Option<String>> = local
                        .query_row(params![rec.seq as i64], |r| text(r, 0))
                        .optional()?;
                    match mine {
                        Some(Some(h)) if h == rec.hash => {}
                        Some(_) => v.found(Broken {
                            seq: rec.seq,
                            kind: BreakKind::Altered,
                            detail: format!(
                                "the log's entry differs from the copy written into the repository at {} (restore point {short}: {} by {})",
                                rec.at, rec.entry.action, rec.entry.actor
                            ),
                        }),
                        None => v.found(Broken {
                            seq: rec.seq,
                            kind: BreakKind::Missing,
                            detail: format!(
                                "the repository holds it (restore point {short}: {} by {} at {}), the log does not",
                                rec.entry.action, rec.entry.actor, rec.at
                            ),
                        }),
                    }
                }
            }
            reader = Some(rd);
        }
        v.mirror = Some(check);
        Ok(v)
    }
}

/// The directories above `file`, as slots.
fn dirs(slots: &mut BTreeMap<PathBuf, Slot>, file: &str) {
    let mut p = Path::new(file).parent();
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        slots.insert(d.to_path_buf(), Slot::Dir);
        p = d.parent();
    }
}

/// The first entry of a segment file, from its name.
fn segment_first(path: &str) -> Option<u64> {
    let name = path.rsplit('/').next()?;
    name.split('-').next()?.parse().ok()
}

fn bucket(seq: i64) -> i64 {
    seq.div_euclid(BUCKET)
}

/// One step of the walk: is this row where `expected` should be, whole, and linked to the
/// row before (whose hash is `prev_hash`)? If not, how did it break.
fn check(
    conn: &Connection,
    row: &Row,
    expected: i64,
    prev_hash: &str,
) -> anyhow::Result<Option<Broken>> {
    let broken = |seq: i64, kind, detail: String| {
        Ok(Some(Broken {
            seq: seq.max(0) as u64,
            kind,
            detail,
        }))
    };
    // The row that has this hash (how a link is followed back).
    let holder = |hash: &str| -> anyhow::Result<Option<i64>> {
        if hash == GENESIS {
            return Ok(Some(0));
        }
        Ok(conn
            .query_row(
                "SELECT seq FROM server_audit WHERE hash = ?1 ORDER BY seq LIMIT 1",
                params![hash],
                |r| r.get(0),
            )
            .optional()?)
    };
    if row.hash_at(row.seq) != row.hash {
        // Renumbered rather than edited? Its hash then matches the number it was written
        // under.
        let written_as = (1..=RENUMBER_WINDOW)
            .flat_map(|d| [row.seq + d, row.seq - d])
            .find(|&s| s >= 1 && row.hash_at(s) == row.hash);
        return match written_as {
            Some(orig) if orig > row.seq => broken(
                row.seq,
                BreakKind::Missing,
                format!(
                    "{} entries were removed here: the next entry was written as entry {orig} and renumbered",
                    orig - row.seq
                ),
            ),
            Some(orig) => {
                // Entries were slipped in before it: they follow its true predecessor.
                let first = match holder(&row.prev)? {
                    Some(j) if j < row.seq - 1 => j + 1,
                    _ => orig,
                };
                broken(
                    first,
                    BreakKind::Inserted,
                    format!(
                        "{} entries were slipped in here: entry {} was written as entry {orig} and renumbered",
                        row.seq - orig,
                        row.seq
                    ),
                )
            }
            None => broken(
                row.seq,
                BreakKind::Altered,
                format!(
                    "its content does not match its hash ({}: {} by {} at {})",
                    row.entry.target, row.entry.action, row.entry.actor, row.at
                ),
            ),
        };
    }
    if row.seq > expected {
        let n = row.seq - expected;
        return broken(
            expected,
            BreakKind::Missing,
            format!(
                "{n} entr{} removed: the log goes from entry {} to entry {}",
                if n == 1 { "y was" } else { "ies were" },
                expected - 1,
                row.seq
            ),
        );
    }
    if row.seq < expected {
        return broken(
            row.seq,
            BreakKind::Inserted,
            "numbered before the first entry".into(),
        );
    }
    if row.prev != prev_hash {
        return match holder(&row.prev)? {
            Some(j) if j < row.seq - 1 => broken(
                j + 1,
                BreakKind::Inserted,
                format!(
                    "entry {} follows entry {j} in the chain: the {} entries between were slipped in",
                    row.seq,
                    row.seq - 1 - j
                ),
            ),
            Some(j) => broken(
                row.seq,
                BreakKind::Altered,
                format!("it links to entry {j}, which comes after it: entries were reordered"),
            ),
            None if row.seq == 1 => broken(
                1,
                BreakKind::Missing,
                "the first entry links to an entry the log does not have: its beginning was removed".into(),
            ),
            None => broken(
                row.seq - 1,
                BreakKind::Altered,
                format!(
                    "it was rewritten with a hash of its own (or an entry after it was removed): entry {} links to another entry {}",
                    row.seq,
                    row.seq - 1
                ),
            ),
        };
    }
    Ok(None)
}

/// The end of the walk against the head: the last entry the server wrote.
fn check_head(conn: &Connection, last: i64, last_hash: &str) -> anyhow::Result<Option<Broken>> {
    let head: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM server_audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, text(r, 1)?.unwrap_or_default())),
        )
        .optional()?;
    let broken = |seq: i64, kind, detail: String| {
        Some(Broken {
            seq: seq.max(0) as u64,
            kind,
            detail,
        })
    };
    Ok(match head {
        None if last == 0 => None,
        None => broken(
            last + 1,
            BreakKind::Missing,
            format!(
                "the record of the last entry written is gone: entries after {last} may have been removed"
            ),
        ),
        Some((h, _)) if h > last => broken(
            last + 1,
            BreakKind::Missing,
            format!("the log ends at entry {last}, but the server wrote up to entry {h}"),
        ),
        Some((h, _)) if h < last => broken(
            h + 1,
            BreakKind::Inserted,
            format!(
                "the server wrote up to entry {h}; entries {} to {last} were added behind its back",
                h + 1
            ),
        ),
        Some((_, hash)) if hash != last_hash => broken(
            last,
            BreakKind::Altered,
            "the last entry is not the one the server wrote (its hash differs from the head's)"
                .into(),
        ),
        Some(_) => None,
    })
}

/// What goes where in a mirror's restore point.
enum Slot {
    Dir,
    /// A segment mirrored before: taken from the parent restore point unread. Only when
    /// the repository lost it (its restore points forgotten, another repository) is it
    /// written again from the log, and only if the log still gives the very bytes
    /// mirrored then.
    Old {
        size: u64,
        mtime: DateTime<Utc>,
        first: i64,
        last: i64,
        sha256: String,
    },
    /// A segment of new entries, written from the log.
    New {
        first: i64,
        last: i64,
    },
}

/// The entries of a mirror's restore point, in the repository's order; new segments are
/// read from the log one at a time, as the archiver asks for them.
struct MirrorEntries {
    slots: std::collections::btree_map::IntoIter<PathBuf, Slot>,
    /// The log's file, for a segment written again.
    db: PathBuf,
    conn: Connection,
    now: DateTime<Utc>,
    failed: Arc<Mutex<Vec<String>>>,
    /// Size and SHA-256 of each new segment, by path.
    sizes: Arc<Mutex<BTreeMap<String, (u64, String)>>>,
}

/// Entries `first..=last` of the log as a segment file: JSON lines.
fn segment(conn: &Connection, first: i64, last: i64) -> anyhow::Result<Vec<u8>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM server_audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![first, last])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        serde_json::to_writer(&mut out, &Row::read(r)?.record())?;
        out.push(b'\n');
    }
    Ok(out)
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A segment mirrored before, from the log again, if the log still gives its bytes.
fn rewrite(db: &Path, first: i64, last: i64, sha256: &str, path: &str) -> std::io::Result<Vec<u8>> {
    let bytes = connect(db)
        .and_then(|c| segment(&c, first, last))
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    if sha256_hex(&bytes) != sha256 {
        return Err(std::io::Error::other(format!(
            "{path} is in no parent restore point, and the log no longer holds what was mirrored into it: `cairn audit verify --mirror`"
        )));
    }
    Ok(bytes)
}

impl Iterator for MirrorEntries {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        loop {
            let (path, slot) = self.slots.next()?;
            let p = path.to_string_lossy().into_owned();
            match slot {
                Slot::Dir => return Some(Entry::dir(p, self.now)),
                Slot::Old {
                    size,
                    mtime,
                    first,
                    last,
                    sha256,
                } => {
                    let (db, what) = (self.db.clone(), p.clone());
                    return Some(Entry::file(p, size, mtime, move || {
                        let bytes = rewrite(&db, first, last, &sha256, &what)?;
                        tracing::warn!(segment = %what, "audit segment written again: no parent restore point holds it");
                        Ok(Box::new(std::io::Cursor::new(bytes)))
                    }));
                }
                Slot::New { first, last } => match segment(&self.conn, first, last) {
                    Ok(bytes) => {
                        self.sizes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(p.clone(), (bytes.len() as u64, sha256_hex(&bytes)));
                        return Some(Entry::file(p, bytes.len() as u64, self.now, move || {
                            Ok(Box::new(std::io::Cursor::new(bytes)))
                        }));
                    }
                    Err(e) => {
                        self.failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("{p}: {e:#}"));
                    }
                },
            }
        }
    }
}
