//! Restore points rewritten without some items (erasure, item-level retention): exactly the
//! items named go, matched literally whatever their names; the rest reads back byte for
//! byte; the original is replaced; purge then frees the removed items' data; restic still
//! reads the repository; paths not in a restore point write nothing.

use crate::{content, local, meta, pack_files, read, t, tmp};
use cairn_repo::{Entry, Repo, SnapshotInfo};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Items of one restore point: path → content (`None`: a directory).
type Tree = BTreeMap<String, Option<Vec<u8>>>;

/// A name made of everything glob syntax and gitignore lines give a meaning to, and unicode.
const AWKWARD: &str = "[a]*?{b} é😀.eml";

fn tree() -> Tree {
    let mut tree = Tree::new();
    for dir in ["mail", "mail/Inbox", "mail/Archive"] {
        tree.insert(dir.into(), None);
    }
    let files = [
        (format!("mail/Inbox/{AWKWARD}"), 1, 300_000),
        ("mail/Inbox/a".into(), 2, 100_000),
        ("mail/Inbox/b.eml".into(), 3, 100_000),
        ("mail/Archive/x.eml".into(), 4, 300_000),
        ("mail/Archive/y.eml".into(), 5, 100_000),
    ];
    for (path, seed, size) in files {
        tree.insert(path, Some(content(seed, size)));
    }
    tree
}

/// Entries in the order the archiver needs (as `Path` compares).
fn entries(tree: &Tree) -> Vec<Entry> {
    let mut paths: Vec<&String> = tree.keys().collect();
    paths.sort_by(|a, b| Path::new(a).cmp(Path::new(b)));
    paths
        .into_iter()
        .map(|p| match &tree[p] {
            None => Entry::dir(p.clone(), t(0)),
            Some(bytes) => {
                let bytes = bytes.clone();
                Entry::file(p.clone(), bytes.len() as u64, t(0), move || {
                    Ok(Box::new(Cursor::new(bytes)))
                })
            }
        })
        .collect()
}

fn archive(repo: &Repo, label: &str, day: i64, tree: &Tree) -> SnapshotInfo {
    let r = repo
        .archive(&meta(label, day), entries(tree).into_iter())
        .unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    r.snapshot
}

/// Every path of a restore point, as `list` gives them.
fn listed(repo: &Repo, snap: &str) -> Vec<String> {
    let mut v: Vec<String> = repo
        .list(snap, "")
        .unwrap()
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    v.sort();
    v
}

/// Every file of the repository with its size: what "nothing written" compares.
fn files(dir: &Path) -> BTreeMap<PathBuf, u64> {
    fn walk(d: &Path, out: &mut BTreeMap<PathBuf, u64>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else {
                out.insert(e.path(), m.len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn data_size(dir: &Path) -> u64 {
    pack_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn rewrite_removes_exactly_the_given_items_and_purge_frees_their_data() {
    let dir = tmp("rewrite");
    let repo = Repo::init(local(&dir)).unwrap();
    let tree = tree();
    let old = archive(&repo, "adele@contoso", 1, &tree);
    let other = archive(&repo, "megan@contoso", 1, &tree);
    // The two archives shared an index loaded before either wrote: purge drops the copies.
    repo.purge().unwrap();
    let before = listed(&repo, &old.id);
    // `list` gives paths relative to the root; with a leading slash as the user may type.
    assert!(
        before.contains(&format!("mail/Inbox/{AWKWARD}")),
        "{before:?}"
    );
    let gone = [
        format!("/mail/Inbox/{AWKWARD}"),
        "mail/Archive/x.eml".to_string(),
    ];

    let out = repo
        .rewrite_without(&old.id, &gone, "erased", false)
        .unwrap();
    assert_eq!(out.removed, 2);
    assert_eq!(out.found, gone);
    assert_eq!(out.original.id, old.id);
    assert!(out.original_kept.is_none(), "{:?}", out.original_kept);
    let new = out.snapshot.expect("a new snapshot");
    assert_ne!(new.id, old.id);
    assert_eq!(
        (&new.hostname, &new.label, &new.paths, new.time),
        (&old.hostname, &old.label, &old.paths, old.time)
    );
    assert!(new.tags.contains(&"erased".to_string()), "{:?}", new.tags);
    assert!(
        old.tags.iter().all(|t| new.tags.contains(t)),
        "{:?}",
        new.tags
    );

    // Exactly the two entries are gone; the sibling whose name the awkward one matches as a
    // glob stays.
    let after = listed(&repo, &new.id);
    let lost: Vec<&String> = before.iter().filter(|p| !after.contains(p)).collect();
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert!(
        lost.iter()
            .all(|p| p.ends_with(AWKWARD) || p.ends_with("x.eml"))
    );
    assert_eq!(after.len(), before.len() - 2);
    for (path, bytes) in &tree {
        let Some(bytes) = bytes else { continue };
        if path.ends_with(AWKWARD) || path.ends_with("x.eml") {
            continue;
        }
        assert_eq!(&read(&repo, &new.id, path), bytes, "{path}");
    }
    // The original is gone, the other resource untouched, the count the same.
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|s| s.id != old.id));
    assert!(snaps.iter().any(|s| s.id == new.id));
    assert!(snaps.iter().any(|s| s.id == other.id));
    assert!(repo.list(&old.id, "").is_err());
    assert!(repo.check(Some("all")).unwrap().is_ok());

    // The removed items' content is still needed by the other resource: purge keeps it.
    let size = data_size(&dir);
    repo.purge().unwrap();
    assert!(data_size(&dir) + 100_000 > size, "nothing freed yet");
    assert_eq!(
        read(&repo, &other.id, &format!("mail/Inbox/{AWKWARD}")),
        tree[&format!("mail/Inbox/{AWKWARD}")].clone().unwrap()
    );
    // Erased from the other one too, purge frees it: 600 kB of incompressible content
    // (sharing a pack with kept items: `prune` would tolerate it as unused slack).
    let out = repo
        .rewrite_without(&other.id, &gone, "erased", false)
        .unwrap();
    assert_eq!(out.removed, 2);
    let size = data_size(&dir);
    repo.purge().unwrap();
    let freed = size - data_size(&dir);
    assert!(freed >= 550_000, "purge freed {freed} bytes of {size}");
    assert!(repo.check(Some("all")).unwrap().is_ok());
    let last = out.snapshot.unwrap();
    assert_eq!(
        read(&repo, &last.id, "mail/Inbox/a"),
        tree["mail/Inbox/a"].clone().unwrap()
    );
}

#[test]
fn paths_not_in_the_snapshot_write_nothing() {
    let dir = tmp("rewrite-none");
    let repo = Repo::init(local(&dir)).unwrap();
    let old = archive(&repo, "adele@contoso", 1, &tree());
    let before = files(&dir);
    let absent = [
        "/mail/Inbox/nope.eml".to_string(),
        // Under a file, above nothing, a glob that would match everything, another case.
        "mail/Inbox/a/deeper".into(),
        "mail/../mail/Inbox/a".into(),
        "mail/Inbox/*".into(),
        "MAIL/INBOX/A".into(),
    ];
    let out = repo
        .rewrite_without(&old.id, &absent, "erased", false)
        .unwrap();
    assert!(out.snapshot.is_none());
    assert_eq!(out.removed, 0);
    assert!(out.found.is_empty());
    assert_eq!(files(&dir), before, "nothing written");
    // A dry run counts (a directory with everything under it) and writes nothing.
    let out = repo
        .rewrite_without(&old.id, &["/mail/Archive/".into()], "erased", true)
        .unwrap();
    assert!(out.snapshot.is_none());
    assert_eq!(out.removed, 3);
    assert_eq!(files(&dir), before, "a dry run writes nothing");
    assert_eq!(repo.snapshots().unwrap()[0].id, old.id);
    // The root is refused: that is forgetting the whole restore point.
    assert!(
        repo.rewrite_without(&old.id, &["/".into()], "erased", false)
            .is_err()
    );
    assert!(
        repo.rewrite_without("0123abcd", &absent, "erased", false)
            .is_err()
    );
}

#[test]
fn directories_and_reserved_characters_across_restore_points() {
    let dir = tmp("rewrite-many");
    let repo = Repo::init(local(&dir)).unwrap();
    let mut tree = tree();
    for (i, name) in ["#x", "!y", "trail ", "a b", "back\\slash", "**", "x"]
        .into_iter()
        .enumerate()
    {
        tree.insert(format!("mail/{name}"), Some(content(100 + i as u64, 10)));
    }
    let a1 = archive(&repo, "adele@contoso", 1, &tree);
    let a2 = archive(&repo, "adele@contoso", 2, &tree);
    let gone = [
        "/mail/Archive".to_string(),
        "mail/Archive/y.eml".into(), // under a directory removed already
        "/mail/#x".into(),
        "/mail/trail ".into(),
        "/mail/**".into(),
        "/mail/!y".into(),
        // Not at the root: the item of that name deeper down stays.
        "/x".into(),
    ];
    let outs = repo
        .rewrite_many(
            &[a1.id.clone(), a2.id[..8].to_string(), a1.id.clone()],
            &gone,
            "retention",
            false,
        )
        .unwrap();
    assert_eq!(outs.len(), 2, "one outcome per restore point");
    let kept = [
        "mail/a b",
        "mail/back\\slash",
        "mail/x",
        "mail/Inbox/a",
        "mail/Inbox/b.eml",
    ];
    for (out, old) in outs.iter().zip([&a1, &a2]) {
        assert_eq!(out.original.id, old.id);
        // The directory counts with its two items.
        assert_eq!(out.removed, 3 + 4);
        // All but the one not at the root, the item under the directory included.
        assert_eq!(out.found.len(), gone.len() - 1, "{:?}", out.found);
        let new = out.snapshot.as_ref().unwrap();
        assert!(new.tags.contains(&"retention".to_string()));
        let after = listed(&repo, &new.id);
        for g in &gone {
            let g = g.trim_start_matches('/');
            assert!(
                !after
                    .iter()
                    .any(|p| p == g || p.trim_start_matches('/') == g),
                "{g} in {after:?}"
            );
        }
        for k in kept {
            assert_eq!(&read(&repo, &new.id, k), tree[k].as_ref().unwrap(), "{k}");
        }
    }
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    assert!(snaps.iter().all(|s| s.id != a1.id && s.id != a2.id));
    assert!(repo.check(Some("all")).unwrap().is_ok());
    assert!(
        repo.rewrite_without(&snaps[0].id, &gone, "a,b", true)
            .is_err(),
        "a tag with a comma"
    );
}

#[test]
fn restic_restores_a_rewritten_repository() {
    let restic = Command::new("restic").arg("version").output();
    assert!(
        restic.as_ref().is_ok_and(|o| o.status.success()),
        "the restic command line tool is needed (apt-get install restic)"
    );
    let dir = tmp("rewrite-restic");
    let repo = Repo::init(local(&dir)).unwrap();
    let tree = tree();
    let old = archive(&repo, "adele@contoso", 1, &tree);
    let gone = [format!("mail/Inbox/{AWKWARD}"), "mail/Archive/x.eml".into()];
    let new = repo
        .rewrite_without(&old.id, &gone, "erased", false)
        .unwrap()
        .snapshot
        .unwrap();
    repo.purge().unwrap();
    let restic = |args: &[&str]| {
        let out = Command::new("restic")
            .args(["-r", dir.to_str().unwrap()])
            .args(args)
            .arg("--no-lock")
            .env("RESTIC_PASSWORD", "correct horse")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restic {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let snaps: serde_json::Value =
        serde_json::from_slice(&restic(&["snapshots", "--json"])).unwrap();
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["short_id"], new.id.as_str());
    assert!(snaps[0]["original"].as_str().unwrap().starts_with(&old.id));
    assert!(
        snaps[0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "erased")
    );
    let target = tmp("rewrite-restic-out");
    restic(&["restore", "latest", "--target", target.to_str().unwrap()]);
    for (path, bytes) in &tree {
        let on_disk = target.join(path);
        match bytes {
            _ if gone.contains(path) => assert!(!on_disk.exists(), "{path} restored"),
            None => assert!(on_disk.is_dir(), "{path}"),
            Some(bytes) => assert_eq!(&std::fs::read(&on_disk).unwrap(), bytes, "{path}"),
        }
    }
    restic(&["check", "--read-data"]);
}

/// Makes a file undeletable (as Object Lock makes an object) until dropped.
struct Immutable(PathBuf);

impl Immutable {
    fn new(path: PathBuf) -> Self {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "chattr +i is needed (root, and a temporary directory on a filesystem with attributes)"
        );
        Immutable(path)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_original_the_storage_keeps_is_reported_and_the_new_snapshot_stays() {
    let dir = tmp("rewrite-locked");
    let repo = Repo::init(local(&dir)).unwrap();
    let tree = tree();
    let old = archive(&repo, "adele@contoso", 1, &tree);
    let file: Vec<PathBuf> = std::fs::read_dir(dir.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(file.len(), 1);
    let _locked = Immutable::new(file[0].clone());
    let out = repo
        .rewrite_without(&old.id, &["mail/Inbox/a".into()], "erased", false)
        .unwrap();
    assert!(out.original_kept.is_some(), "{out:?}");
    let new = out.snapshot.unwrap();
    assert_eq!(out.removed, 1);
    let snaps = repo.snapshots().unwrap();
    assert_eq!(
        snaps.len(),
        2,
        "the original is still there, and the new one"
    );
    assert!(repo.list(&new.id, "mail/Inbox/a").is_err());
    assert_eq!(
        read(&repo, &new.id, "mail/Inbox/b.eml"),
        tree["mail/Inbox/b.eml"].clone().unwrap()
    );
}
