//! The audit log: a real log verifies; an entry edited, deleted or slipped in directly in
//! SQLite is named by `verify`; the repository's copy holds what was mirrored and shows
//! a history rewritten afterwards.

use cairn_repo::{Repo, RepoOptions};
use cairn_server::audit::{
    AuditEntry, AuditLog, AuditRecord, BreakKind, MIRROR_HOST, MIRROR_LABEL,
};
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::Arc;

fn entry(i: usize) -> AuditEntry {
    AuditEntry {
        actor: format!("token-{}", i % 3),
        role: ["admin", "operator", "auditor"][i % 3].into(),
        source: (i % 4 != 0).then(|| format!("10.0.0.{}", i % 250)),
        action: ["backup.run", "item.read", "forget"][i % 3].into(),
        target: format!("user{i}@contoso"),
        outcome: if i % 5 == 0 { "denied" } else { "ok" }.into(),
    }
}

/// A log of `n` entries in a fresh file.
fn log_of(dir: &Path, n: usize) -> AuditLog {
    let log = AuditLog::open(&dir.join("catalog.db")).unwrap();
    for i in 0..n {
        log.append(&entry(i)).unwrap();
    }
    log
}

fn sql(log: &AuditLog) -> Connection {
    Connection::open(log.path()).unwrap()
}

fn record(c: &Connection, seq: i64) -> AuditRecord {
    c.query_row(
        "SELECT seq, at, actor, role, source, action, target, outcome, prev, hash FROM server_audit WHERE seq = ?1",
        params![seq],
        |r| {
            Ok(AuditRecord {
                seq: r.get::<_, i64>(0)? as u64,
                at: r.get(1)?,
                entry: AuditEntry {
                    actor: r.get(2)?,
                    role: r.get(3)?,
                    source: r.get(4)?,
                    action: r.get(5)?,
                    target: r.get(6)?,
                    outcome: r.get(7)?,
                },
                prev: r.get(8)?,
                hash: r.get(9)?,
            })
        },
    )
    .unwrap()
}

/// Moves entries `from..` by `by` (SQLite checks the key row by row: through negatives).
fn renumber(c: &Connection, from: i64, by: i64) {
    c.execute(
        "UPDATE server_audit SET seq = -seq WHERE seq >= ?1",
        params![from],
    )
    .unwrap();
    c.execute(
        "UPDATE server_audit SET seq = -seq + ?1 WHERE seq < 0",
        params![by],
    )
    .unwrap();
}

fn broken(log: &AuditLog) -> (u64, BreakKind, String) {
    let v = log.verify().unwrap();
    let b = v.broken.expect("the chain should be broken");
    (b.seq, b.kind, b.detail)
}

#[test]
fn a_log_written_from_many_threads_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(&dir.path().join("catalog.db")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..12 {
                    log.append(&entry(t * 12 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let v = log.verify().unwrap();
    assert!(v.is_ok(), "{:?}", v.broken);
    assert_eq!(v.entries, 48);
    assert_eq!(v.last_seq, Some(48));

    // Reopened, it goes on from where it was.
    drop(log);
    let log = AuditLog::open(&dir.path().join("catalog.db")).unwrap();
    let r = log.append(&entry(99)).unwrap();
    assert_eq!(r.seq, 49);
    assert!(r.is_consistent());
    assert_eq!(
        log.verify().unwrap().last_hash.as_deref(),
        Some(r.hash.as_str())
    );

    // Export: every entry, in order, chained; a time after the last gives nothing.
    let mut all = Vec::new();
    log.since(chrono::DateTime::UNIX_EPOCH, &mut |r| {
        all.push(r);
        true
    })
    .unwrap();
    assert_eq!(all.len(), 49);
    assert!(
        all.windows(2)
            .all(|w| w[1].prev == w[0].hash && w[1].seq == w[0].seq + 1)
    );
    let json = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(json["seq"], 1);
    assert!(
        json["actor"].is_string() && json["hash"].is_string(),
        "{json}"
    );
    let mut later = 0;
    log.since(
        chrono::Utc::now() + chrono::Duration::seconds(5),
        &mut |_| {
            later += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(later, 0);
}

#[test]
fn an_edited_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    assert_eq!(record(&c, 16).entry.outcome, "denied");
    // A denied call made to look like a success.
    c.execute("UPDATE server_audit SET outcome = 'ok' WHERE seq = 16", [])
        .unwrap();
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (16, BreakKind::Altered), "{detail}");

    // Rewritten with a hash of its own: the next entry still names the original.
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    let mut r = record(&c, 12);
    r.entry.actor = "someone-else".into();
    r.hash = r.expected_hash();
    c.execute(
        "UPDATE server_audit SET actor = ?1, hash = ?2 WHERE seq = 12",
        params![r.entry.actor, r.hash],
    )
    .unwrap();
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (12, BreakKind::Altered), "{detail}");
}

#[test]
fn a_deleted_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    c.execute("DELETE FROM server_audit WHERE seq = 17", [])
        .unwrap();
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (17, BreakKind::Missing), "{detail}");

    // The gap closed by renumbering the rest: their hashes name their old numbers.
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    c.execute("DELETE FROM server_audit WHERE seq = 9", [])
        .unwrap();
    renumber(&c, 10, -1);
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (9, BreakKind::Missing), "{detail}");

    // The last entry removed: the head remembers it.
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    sql(&log)
        .execute("DELETE FROM server_audit WHERE seq = 30", [])
        .unwrap();
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (30, BreakKind::Missing), "{detail}");
}

#[test]
fn an_inserted_entry_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    // A made-up entry 17, chained to 16 with a hash that is right for its content; the
    // real 17.. make room.
    renumber(&c, 17, 1);
    let before = record(&c, 16);
    let mut forged = AuditRecord {
        seq: 17,
        at: before.at.clone(),
        entry: AuditEntry {
            actor: "token-0".into(),
            role: "admin".into(),
            source: None,
            action: "forget".into(),
            target: "user3@contoso".into(),
            outcome: "ok".into(),
        },
        prev: before.hash.clone(),
        hash: String::new(),
    };
    forged.hash = forged.expected_hash();
    assert!(forged.is_consistent());
    insert(&c, &forged);
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (17, BreakKind::Inserted), "{detail}");

    // Appended behind the server's back: the head knows the last entry it wrote.
    let dir = tempfile::tempdir().unwrap();
    let log = log_of(dir.path(), 30);
    let c = sql(&log);
    let last = record(&c, 30);
    let mut forged = AuditRecord {
        seq: 31,
        prev: last.hash.clone(),
        ..last
    };
    forged.hash = forged.expected_hash();
    insert(&c, &forged);
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (31, BreakKind::Inserted), "{detail}");
    // The server goes on writing after it, and the made-up entry stays named.
    assert_eq!(log.append(&entry(1)).unwrap().seq, 32);
    let (seq, kind, detail) = broken(&log);
    assert_eq!((seq, kind), (31, BreakKind::Inserted), "{detail}");
}

fn insert(c: &Connection, r: &AuditRecord) {
    let e = &r.entry;
    c.execute(
        "INSERT INTO server_audit (seq, at, actor, role, source, action, target, outcome, prev, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![r.seq as i64, r.at, e.actor, e.role, e.source, e.action, e.target, e.outcome, r.prev, r.hash],
    )
    .unwrap();
}

#[test]
fn the_mirror_holds_every_entry_and_shows_a_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let repo =
        Repo::init(RepoOptions::new(dir.path().join("repo").to_str().unwrap(), "pw").unwrap())
            .unwrap();
    let log = log_of(dir.path(), 25);
    assert_eq!(log.mirror(&repo).unwrap(), 25);
    // Nothing new, no restore point.
    assert_eq!(log.mirror(&repo).unwrap(), 0);
    for i in 0..7 {
        log.append(&entry(i)).unwrap();
    }
    assert_eq!(log.mirror(&repo).unwrap(), 7);

    let repo =
        Repo::open(RepoOptions::new(dir.path().join("repo").to_str().unwrap(), "pw").unwrap())
            .unwrap();
    let snaps: Vec<_> = repo
        .snapshots()
        .unwrap()
        .into_iter()
        .filter(|s| s.label == MIRROR_LABEL)
        .collect();
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    assert!(snaps.iter().all(|s| s.hostname == MIRROR_HOST));
    // The second holds both segments, the first one taken unread from the first point.
    let latest = &snaps[1];
    assert_eq!(
        (latest.files_new, latest.files_unmodified),
        (1, 1),
        "{latest:?}"
    );
    let files: Vec<_> = repo
        .list(&latest.id, "")
        .unwrap()
        .into_iter()
        .filter(|(p, dir, _)| !dir && p.ends_with(".jsonl"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].0.ends_with("000000000001-000000000025.jsonl"),
        "{files:?}"
    );
    assert!(
        files[1].0.ends_with("000000000026-000000000032.jsonl"),
        "{files:?}"
    );
    let mut text = Vec::new();
    repo.read(&latest.id, &files[1].0, &mut text).unwrap();
    let records: Vec<AuditRecord> = String::from_utf8(text)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 7);
    assert!(records.iter().all(AuditRecord::is_consistent));
    assert_eq!(records[0].seq, 26);

    let v = log.verify_with_mirror(&repo).unwrap();
    assert!(v.is_ok(), "{:?}", v.broken);
    let m = v.mirror.unwrap();
    assert_eq!((m.snapshots, m.entries, m.through), (2, 32, Some(32)));

    // History rewritten from entry 20 on, every hash and the head recomputed: the log
    // alone verifies, its copy in the repository does not.
    let c = sql(&log);
    let mut prev = record(&c, 19).hash;
    for seq in 20..=32 {
        let mut r = record(&c, seq);
        if seq == 20 {
            r.entry.outcome = "denied".into();
        }
        r.prev = prev;
        r.hash = r.expected_hash();
        c.execute(
            "UPDATE server_audit SET outcome = ?1, prev = ?2, hash = ?3 WHERE seq = ?4",
            params![r.entry.outcome, r.prev, r.hash, seq],
        )
        .unwrap();
        prev = r.hash;
    }
    c.execute("UPDATE server_audit_head SET hash = ?1", params![prev])
        .unwrap();
    assert!(log.verify().unwrap().is_ok());
    let v = log.verify_with_mirror(&repo).unwrap();
    let b = v.broken.expect("the repository's copy differs");
    assert_eq!((b.seq, b.kind), (20, BreakKind::Altered), "{}", b.detail);
}

#[test]
fn segments_a_repository_lost_are_written_again_only_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let repo = |name: &str| {
        Repo::init(RepoOptions::new(dir.path().join(name).to_str().unwrap(), "pw").unwrap())
            .unwrap()
    };
    let log = log_of(dir.path(), 10);
    assert_eq!(log.mirror(&repo("a")).unwrap(), 10);
    log.append(&entry(10)).unwrap();
    // Another repository (the first one's audit points forgotten, or a move): the
    // segment mirrored before is in no parent, so it comes from the log, checked.
    let b = repo("b");
    assert_eq!(log.mirror(&b).unwrap(), 1);
    let v = log.verify_with_mirror(&b).unwrap();
    assert!(v.is_ok(), "{:?}", v.broken);
    assert_eq!(v.mirror.unwrap().through, Some(11));

    // Once the log was altered, it is not written again.
    sql(&log)
        .execute("UPDATE server_audit SET target = 'x' WHERE seq = 3", [])
        .unwrap();
    log.append(&entry(11)).unwrap();
    let e = log.mirror(&repo("c")).unwrap_err();
    assert!(format!("{e:#}").contains("no longer holds"), "{e:#}");
}
