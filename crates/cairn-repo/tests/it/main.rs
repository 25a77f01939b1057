//! The repository end to end: archives of generated items, incrementals that do not reopen
//! unchanged items, damage detected by check, GFS retention with legal holds, copies,
//! concurrent writers, S3 (a real S3-compatible server) and the restic command line tool;
//! parents named by the caller and the index archives share (`parent.rs`); restore points
//! rewritten without given items, and purge (`rewrite.rs`).

use cairn_repo::{Entry, ForgetRule, LegalHold, Repo, RepoError, RepoOptions, SnapshotMeta};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod parent;
mod rewrite;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cairn-repo-{name}-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn content(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Size of generated item `seed` in `entries`.
fn item_size(seed: u64) -> usize {
    1000 + (seed as usize * 7919) % 50_000
}

fn t(day: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000 + day * 86_400, 0).unwrap()
}

/// A mailbox-like tree: /mail/Inbox/2024-05/NNN.eml, sorted as the archiver needs.
fn entries(n: u64, version: u64, opened: Arc<AtomicU64>) -> Vec<Entry> {
    let mut v = vec![
        Entry::dir("mail", t(0)),
        Entry::dir("mail/Inbox", t(0)),
        Entry::dir("mail/Inbox/2024-05", t(0)),
    ];
    for i in 0..n {
        // Item 0 changes with each version; the rest stay the same.
        let seed = if i == 0 { 1000 + version } else { i };
        let size = 1000 + (seed as usize * 7919) % 50_000;
        let opened = opened.clone();
        v.push(Entry::file(
            format!("mail/Inbox/2024-05/{i:04}.eml"),
            size as u64,
            t(if i == 0 { version as i64 } else { 0 }),
            move || {
                opened.fetch_add(1, Ordering::Relaxed);
                Ok(Box::new(Cursor::new(content(seed, size))))
            },
        ));
    }
    v
}

fn meta(label: &str, day: i64) -> SnapshotMeta {
    SnapshotMeta {
        hostname: "contoso".into(),
        label: label.into(),
        paths: vec!["/mail".into()],
        tags: vec!["service=mail".into()],
        time: Some(t(day)),
        description: None,
        parent: None,
    }
}

fn local(dir: &Path) -> RepoOptions {
    RepoOptions::new(dir.to_str().unwrap(), "correct horse").unwrap()
}

fn read(repo: &Repo, snap: &str, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    repo.read(snap, path, &mut out).unwrap();
    out
}

#[test]
fn archive_read_and_incremental_without_reopening() {
    let dir = tmp("incr");
    let repo = Repo::init(local(&dir)).unwrap();
    let opened = Arc::new(AtomicU64::new(0));
    let r1 = repo
        .archive(
            &meta("adele@contoso", 1),
            entries(50, 1, opened.clone()).into_iter(),
        )
        .unwrap();
    assert!(r1.skipped.is_empty(), "{:?}", r1.skipped);
    assert_eq!(opened.load(Ordering::Relaxed), 50);
    assert_eq!(r1.snapshot.files_new, 50);
    // A second run with one changed item opens only that item.
    opened.store(0, Ordering::Relaxed);
    let r2 = repo
        .archive(
            &meta("adele@contoso", 2),
            entries(50, 2, opened.clone()).into_iter(),
        )
        .unwrap();
    assert_eq!(
        opened.load(Ordering::Relaxed),
        1,
        "unchanged items are not reopened"
    );
    assert_eq!(r2.snapshot.files_unmodified, 49);
    assert_eq!(r2.snapshot.files_changed, 1);
    assert_eq!(r2.snapshot.parent.as_deref(), Some(r1.snapshot.id.as_str()));
    // Both restore points read back exactly.
    let size1 = 1000 + (1001usize * 7919) % 50_000;
    let size2 = 1000 + (1002usize * 7919) % 50_000;
    assert_eq!(
        read(&repo, &r1.snapshot.id, "mail/Inbox/2024-05/0000.eml"),
        content(1001, size1)
    );
    assert_eq!(
        read(&repo, &r2.snapshot.id, "mail/Inbox/2024-05/0000.eml"),
        content(1002, size2)
    );
    let listed = repo.list(&r2.snapshot.id, "mail/Inbox").unwrap();
    assert_eq!(listed.iter().filter(|(_, dir, _)| !dir).count(), 50);
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps[0].time < snaps[1].time);
    assert!(repo.check(Some("all")).unwrap().is_ok());
}

#[test]
fn bad_items_are_skipped_and_reported() {
    let dir = tmp("skip");
    let repo = Repo::init(local(&dir)).unwrap();
    let mut v = vec![Entry::dir("mail", t(0))];
    v.push(Entry::file("mail/a.eml", 5, t(0), || {
        Ok(Box::new(Cursor::new(b"hello".to_vec())))
    }));
    v.push(Entry::file("mail/b.eml", 5, t(0), || {
        Err(std::io::Error::other("410 gone"))
    }));
    v.push(Entry::file("mail/c.eml", 10, t(0), || {
        Ok(Box::new(Cursor::new(b"short".to_vec())))
    }));
    // Out of order: refused rather than written into a wrong tree.
    v.push(Entry::file("mail/a0.eml", 1, t(0), || {
        Ok(Box::new(Cursor::new(b"x".to_vec())))
    }));
    v.push(Entry::file("mail/d.eml", 3, t(0), || {
        Ok(Box::new(Cursor::new(b"abc".to_vec())))
    }));
    let r = repo
        .archive(&meta("lee@contoso", 1), v.into_iter())
        .unwrap();
    let skipped: Vec<&str> = r.skipped.iter().map(|(p, _)| p.as_str()).collect();
    assert!(skipped.contains(&"mail/b.eml"), "{:?}", r.skipped);
    assert!(skipped.contains(&"mail/c.eml"), "{:?}", r.skipped);
    assert!(skipped.contains(&"mail/a0.eml"), "{:?}", r.skipped);
    assert_eq!(read(&repo, &r.snapshot.id, "mail/a.eml"), b"hello");
    assert_eq!(read(&repo, &r.snapshot.id, "mail/d.eml"), b"abc");
    let files: Vec<String> = repo
        .list(&r.snapshot.id, "")
        .unwrap()
        .into_iter()
        .filter(|x| !x.1)
        .map(|x| x.0)
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn opening_errors_name_the_problem() {
    let dir = tmp("errs");
    assert!(matches!(
        Repo::open(local(&dir)),
        Err(RepoError::NotInitialised(_))
    ));
    Repo::init(local(&dir)).unwrap();
    assert!(matches!(
        Repo::init(local(&dir)),
        Err(RepoError::AlreadyExists(_))
    ));
    let wrong = RepoOptions::new(dir.to_str().unwrap(), "wrong").unwrap();
    let err = Repo::open(wrong).unwrap_err();
    assert!(matches!(err, RepoError::WrongPassword(_)), "{err}");
    assert!(err.hint().is_some() && err.is_user_error());
    assert!(
        !err.to_string().contains("wrong\""),
        "the password is not echoed"
    );
}

fn pack_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir.join("data")).unwrap() {
        for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

#[test]
fn check_detects_a_flipped_byte_and_a_missing_pack() {
    let dir = tmp("damage");
    let repo = Repo::init(local(&dir)).unwrap();
    repo.archive(
        &meta("a@contoso", 1),
        entries(30, 1, Arc::default()).into_iter(),
    )
    .unwrap();
    assert!(repo.check(Some("all")).unwrap().is_ok());
    let packs = pack_files(&dir);
    assert!(!packs.is_empty());
    // Flip one byte in the middle of a pack: only reading the data finds it.
    let p = &packs[0];
    let mut bytes = std::fs::read(p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(p, &bytes).unwrap();
    let report = repo.check(Some("all")).unwrap();
    assert!(
        !report.is_ok(),
        "a flipped byte is found by check --read-data"
    );
    // A missing pack is found by the structural check alone.
    std::fs::remove_file(p).unwrap();
    let report = repo.check(None).unwrap();
    assert!(!report.is_ok(), "a missing pack is found");
    assert!(report.errors.iter().any(|e| !e.is_empty()));
}

#[test]
fn forget_keeps_by_rule_and_spares_legal_holds_then_prune() {
    let dir = tmp("forget");
    let repo = Repo::init(local(&dir)).unwrap();
    for day in 1..=5 {
        repo.archive(
            &meta("adele@contoso", day),
            entries(5, day as u64, Arc::default()).into_iter(),
        )
        .unwrap();
        repo.archive(
            &meta("megan@contoso", day),
            entries(5, 10 + day as u64, Arc::default()).into_iter(),
        )
        .unwrap();
    }
    let rule = ForgetRule {
        keep_daily: Some(2),
        ..Default::default()
    };
    let holds = [LegalHold::Resource("megan@contoso".into())];
    let dry = repo.forget(&rule, &holds, true).unwrap();
    assert_eq!(dry.removed.len(), 3);
    assert_eq!(dry.held.len(), 3);
    assert_eq!(
        repo.snapshots().unwrap().len(),
        10,
        "dry run deletes nothing"
    );
    let report = repo.forget(&rule, &holds, false).unwrap();
    assert!(report.removed.iter().all(|s| s.label == "adele@contoso"));
    let left = repo.snapshots().unwrap();
    assert_eq!(left.len(), 7);
    assert_eq!(
        left.iter().filter(|s| s.label == "megan@contoso").count(),
        5
    );
    repo.prune().unwrap();
    assert!(repo.check(Some("all")).unwrap().is_ok());
    // What is left is still readable.
    let latest = left.iter().rfind(|s| s.label == "adele@contoso").unwrap();
    assert!(!read(&repo, &latest.id, "mail/Inbox/2024-05/0001.eml").is_empty());
}

#[test]
fn copy_is_incremental() {
    let (a, b) = (tmp("copy-a"), tmp("copy-b"));
    let src = Repo::init(local(&a)).unwrap();
    let dst = Repo::init(local(&b)).unwrap();
    src.archive(
        &meta("a@contoso", 1),
        entries(10, 1, Arc::default()).into_iter(),
    )
    .unwrap();
    assert_eq!(src.copy_to(&dst).unwrap(), 1);
    src.archive(
        &meta("a@contoso", 2),
        entries(10, 2, Arc::default()).into_iter(),
    )
    .unwrap();
    assert_eq!(src.copy_to(&dst).unwrap(), 1, "only the new snapshot");
    assert_eq!(src.copy_to(&dst).unwrap(), 0);
    let snaps = dst.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(dst.check(Some("all")).unwrap().is_ok());
    let size = 1000 + (1002usize * 7919) % 50_000;
    assert_eq!(
        read(&dst, &snaps[1].id, "mail/Inbox/2024-05/0000.eml"),
        content(1002, size)
    );
}

#[test]
fn concurrent_writers_share_one_repository() {
    let dir = tmp("concurrent");
    Repo::init(local(&dir)).unwrap();
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let repo = Repo::open(local(&dir)).unwrap();
                repo.archive(
                    &meta(&format!("user{i}@contoso"), 1),
                    entries(40, i, Arc::default()).into_iter(),
                )
                .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().skipped.is_empty());
    }
    let repo = Repo::open(local(&dir)).unwrap();
    assert_eq!(repo.snapshots().unwrap().len(), 3);
    assert!(repo.check(Some("all")).unwrap().is_ok());
}

#[test]
fn restic_lists_and_restores_a_cairn_repository() {
    let restic = Command::new("restic").arg("version").output();
    assert!(
        restic.as_ref().is_ok_and(|o| o.status.success()),
        "the restic command line tool is needed (apt-get install restic)"
    );
    let dir = tmp("restic");
    let repo = Repo::init(local(&dir)).unwrap();
    let r = repo
        .archive(
            &meta("adele@contoso", 1),
            entries(20, 1, Arc::default()).into_iter(),
        )
        .unwrap();
    let out = Command::new("restic")
        .args([
            "-r",
            dir.to_str().unwrap(),
            "snapshots",
            "--json",
            "--no-lock",
        ])
        .env("RESTIC_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let snaps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["hostname"], "contoso");
    assert!(
        r.snapshot
            .id
            .starts_with(snaps[0]["short_id"].as_str().unwrap())
    );
    let target = tmp("restic-out");
    let out = Command::new("restic")
        .args([
            "-r",
            dir.to_str().unwrap(),
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--no-lock",
        ])
        .env("RESTIC_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in [0u64, 7, 19] {
        let seed = if i == 0 { 1001 } else { i };
        let size = 1000 + (seed as usize * 7919) % 50_000;
        let got = std::fs::read(target.join(format!("mail/Inbox/2024-05/{i:04}.eml"))).unwrap();
        assert_eq!(got, content(seed, size), "item {i} restored by restic");
    }
    let check = Command::new("restic")
        .args([
            "-r",
            dir.to_str().unwrap(),
            "check",
            "--read-data",
            "--no-lock",
        ])
        .env("RESTIC_PASSWORD", "correct horse")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// A real S3-compatible server (moto) for the duration of a test.
struct Moto(std::process::Child, u16);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> Moto {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spawn = |program: &str, pre: &[&str]| {
        Command::new(program)
            .args(pre)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    };
    // The console script, or the module when the script's directory is not on PATH.
    let child = spawn("moto_server", &[])
        .or_else(|_| spawn("python3", &["-m", "moto.server"]))
        .expect("moto is needed (pip install 'moto[server]')");
    let server = Moto(child, port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("moto_server did not start");
}

fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut c = Command::new("curl");
    c.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        method,
        url,
    ]);
    for (k, v) in headers {
        c.args(["-H", &format!("{k}: {v}")]);
    }
    let out = c.output().expect("curl");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[test]
fn s3_repository_round_trip() {
    let m = moto();
    let base = format!("http://127.0.0.1:{}", m.1);
    assert_eq!(http("PUT", &format!("{base}/cairn-backups"), &[]), 200);
    let mut opts =
        RepoOptions::new(&format!("s3:{base}/cairn-backups/tenant-a"), "s3 secret pw").unwrap();
    opts.s3_access_key_id = Some("testing".into());
    opts.s3_secret_access_key = Some("testing".into());
    opts.s3_region = Some("us-east-1".into());
    let repo = Repo::init(opts.clone()).unwrap();
    let r1 = repo
        .archive(
            &meta("adele@contoso", 1),
            entries(25, 1, Arc::default()).into_iter(),
        )
        .unwrap();
    let opened = Arc::new(AtomicU64::new(0));
    let r2 = repo
        .archive(
            &meta("adele@contoso", 2),
            entries(25, 2, opened.clone()).into_iter(),
        )
        .unwrap();
    assert_eq!(opened.load(Ordering::Relaxed), 1);
    assert_eq!(r2.snapshot.parent.as_deref(), Some(r1.snapshot.id.as_str()));
    let again = Repo::open(opts).unwrap();
    assert_eq!(again.snapshots().unwrap().len(), 2);
    let size = 1000 + (7usize * 7919) % 50_000;
    assert_eq!(
        read(&again, &r1.snapshot.id, "mail/Inbox/2024-05/0007.eml"),
        content(7, size)
    );
    assert!(again.check(Some("all")).unwrap().is_ok());
}

#[test]
fn object_lock_bucket_backs_up_and_defers_deletions() {
    let m = moto();
    let base = format!("http://127.0.0.1:{}", m.1);
    assert_eq!(
        http(
            "PUT",
            &format!("{base}/locked"),
            &[("x-amz-bucket-object-lock-enabled", "true")]
        ),
        200
    );
    let cfg = r#"<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>"#;
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/xml",
        ])
        .arg(format!("{base}/locked?object-lock"))
        .args(["--data-binary", cfg])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "default retention set"
    );
    let mut opts = RepoOptions::new(&format!("s3:{base}/locked/cairn"), "pw").unwrap();
    opts.s3_access_key_id = Some("testing".into());
    opts.s3_secret_access_key = Some("testing".into());
    let repo = Repo::init(opts).unwrap();
    for day in 1..=3 {
        repo.archive(
            &meta("adele@contoso", day),
            entries(10, day as u64, Arc::default()).into_iter(),
        )
        .expect("backups succeed under Object Lock");
    }
    let versions = |prefix: &str| -> Vec<String> {
        let out = Command::new("curl")
            .arg("-s")
            .arg(format!("{base}/locked?versions&prefix={prefix}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split("<Version>")
            .skip(1)
            .filter_map(|v| {
                let key = v.split("<Key>").nth(1)?.split('<').next()?;
                let id = v.split("<VersionId>").nth(1)?.split('<').next()?;
                Some(format!("{key}?versionId={id}"))
            })
            .collect()
    };
    let before = versions("cairn/snapshots/");
    assert!(before.len() >= 3, "{before:?}");
    let report = repo
        .forget(
            &ForgetRule {
                keep_last: Some(1),
                ..Default::default()
            },
            &[],
            false,
        )
        .unwrap();
    // S3 answers a plain DELETE on a versioned, locked bucket with a delete marker (some
    // stores refuse it instead: then the report lists the snapshots as deferred). Either way
    // no retained version is gone, and the credential cannot delete one.
    assert_eq!(
        report.removed.len() + report.deferred.len(),
        2,
        "{report:?}"
    );
    let after = versions("cairn/snapshots/");
    assert_eq!(after, before, "every snapshot version is still retained");
    for v in &after {
        assert_eq!(
            http("DELETE", &format!("{base}/locked/{v}"), &[]),
            403,
            "{v} is locked"
        );
    }
    assert!(!versions("cairn/data/").is_empty());
    assert!(repo.check(Some("all")).unwrap().is_ok());
}

/// Killed with SIGKILL in the middle of an archive, the repository still passes check and the
/// next archive completes. The test runs itself as the child that gets killed.
#[test]
fn kill_9_mid_archive_leaves_a_checkable_repository() {
    if let Ok(dir) = std::env::var("CAIRN_REPO_KILL_CHILD") {
        // Child: archive an endless stream until killed.
        let repo = Repo::open(local(Path::new(&dir))).unwrap();
        let endless = (0u64..).flat_map(|i| {
            let mut v = Vec::new();
            if i == 0 {
                v.push(Entry::dir("mail", t(0)));
            }
            let size = 20_000;
            v.push(Entry::file(
                format!("mail/{i:012}.eml"),
                size as u64,
                t(0),
                move || Ok(Box::new(Cursor::new(content(i, size)))),
            ));
            v
        });
        let _ = repo.archive(&meta("killed@contoso", 1), endless);
        unreachable!("the endless archive only ends by being killed");
    }
    let dir = tmp("kill9");
    let repo = Repo::init(local(&dir)).unwrap();
    repo.archive(
        &meta("before@contoso", 1),
        entries(20, 1, Arc::default()).into_iter(),
    )
    .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_9_mid_archive_leaves_a_checkable_repository",
            "--nocapture",
        ])
        .env("CAIRN_REPO_KILL_CHILD", &dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Let it write packs for a while, then kill it without warning.
    let packs = || {
        std::fs::read_dir(dir.join("data"))
            .map(|d| {
                d.flatten()
                    .map(|s| std::fs::read_dir(s.path()).map(|x| x.count()).unwrap_or(0))
                    .sum::<usize>()
            })
            .unwrap_or(0)
    };
    let initial = packs();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(30) && packs() < initial + 3 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        packs() >= initial + 3,
        "the child was writing when it was killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let repo = Repo::open(local(&dir)).unwrap();
    let report = repo.check(Some("all")).unwrap();
    assert!(report.is_ok(), "{:?}", report.errors);
    assert_eq!(
        repo.snapshots().unwrap().len(),
        1,
        "the killed run left no snapshot"
    );
    let r = repo
        .archive(
            &meta("after@contoso", 2),
            entries(20, 2, Arc::default()).into_iter(),
        )
        .unwrap();
    assert!(r.skipped.is_empty());
    assert!(repo.check(Some("all")).unwrap().is_ok());
    let size = item_size(5);
    assert_eq!(
        read(&repo, &r.snapshot.id, "mail/Inbox/2024-05/0005.eml"),
        content(5, size)
    );
}

#[test]
fn a_truncated_index_is_found_and_repaired() {
    let dir = tmp("index");
    let repo = Repo::init(local(&dir)).unwrap();
    let r = repo
        .archive(
            &meta("a@contoso", 1),
            entries(30, 1, Arc::default()).into_iter(),
        )
        .unwrap();
    let index: Vec<PathBuf> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!index.is_empty());
    let bytes = std::fs::read(&index[0]).unwrap();
    std::fs::write(&index[0], &bytes[..bytes.len() / 2]).unwrap();
    // Truncated: opening the index fails, or check reports it.
    let damaged = match repo.check(None) {
        Ok(report) => !report.is_ok(),
        Err(_) => true,
    };
    assert!(damaged, "a truncated index is detected");
    std::fs::remove_file(&index[0]).unwrap();
    repo.repair_index(false).unwrap();
    assert!(
        repo.check(Some("all")).unwrap().is_ok(),
        "the rebuilt index is complete"
    );
    let size = item_size(7);
    assert_eq!(
        read(&repo, &r.snapshot.id, "mail/Inbox/2024-05/0007.eml"),
        content(7, size)
    );
}
