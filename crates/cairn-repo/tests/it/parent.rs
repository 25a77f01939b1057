//! Parents named by the caller instead of searched for, and the index concurrent archives
//! share: an incremental opens nothing unchanged, whatever was written since the index was
//! read, and a parent that is gone or foreign only costs the search.

use crate::{content, entries, item_size, local, meta, read, tmp};
use cairn_repo::{ForgetRule, Repo, SnapshotInfo, SnapshotMeta};
use std::sync::Arc;

fn after(label: &str, day: i64, parent: &str) -> SnapshotMeta {
    SnapshotMeta {
        parent: Some(parent.into()),
        ..meta(label, day)
    }
}

/// Archives `n` generated items, `version` choosing the content of item 0.
fn archive(repo: &Repo, m: &SnapshotMeta, n: u64, version: u64) -> (SnapshotInfo, u64) {
    let r = repo
        .archive(m, entries(n, version, Arc::default()).into_iter())
        .unwrap();
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    (r.snapshot, r.opened)
}

#[test]
fn a_given_parent_is_used_rather_than_the_latest() {
    let repo = Repo::init(local(&tmp("parent"))).unwrap();
    let (a, opened) = archive(&repo, &meta("adele@contoso", 1), 20, 1);
    assert_eq!(opened, 20);
    // A later snapshot with item 0 changed: the search would take it as the parent.
    let (c, opened) = archive(&repo, &meta("adele@contoso", 2), 20, 2);
    assert_eq!(c.parent.as_deref(), Some(a.id.as_str()));
    assert_eq!(opened, 1);
    // Back to A's content, with A named: nothing is opened.
    let (b, opened) = archive(&repo, &after("adele@contoso", 3, &a.id), 20, 1);
    assert_eq!(b.parent.as_deref(), Some(a.id.as_str()));
    assert_eq!(
        opened, 0,
        "unchanged items of the given parent are not opened"
    );
    assert_eq!(b.files_unmodified, 20);
    // A unique prefix of the id is enough.
    let (d, opened) = archive(&repo, &after("adele@contoso", 4, &c.id[..8]), 20, 2);
    assert_eq!(d.parent.as_deref(), Some(c.id.as_str()));
    assert_eq!(opened, 0);
    assert_eq!(
        read(&repo, &b.id, "mail/Inbox/2024-05/0000.eml"),
        content(1001, item_size(1001))
    );
    assert_eq!(
        read(&repo, &d.id, "mail/Inbox/2024-05/0000.eml"),
        content(1002, item_size(1002))
    );
}

#[test]
fn a_forgotten_or_foreign_parent_falls_back_to_the_latest() {
    let repo = Repo::init(local(&tmp("parent-gone"))).unwrap();
    let (a1, _) = archive(&repo, &meta("adele@contoso", 1), 15, 1);
    let (a2, _) = archive(&repo, &meta("adele@contoso", 2), 15, 2);
    let rule = ForgetRule {
        keep_last: Some(1),
        ..Default::default()
    };
    let report = repo.forget(&rule, &[], false).unwrap();
    assert_eq!(report.removed.len(), 1);
    assert_eq!(report.removed[0].id, a1.id);
    repo.prune().unwrap();
    // The named parent is gone: the latest of the resource is found instead.
    let (b, opened) = archive(&repo, &after("adele@contoso", 3, &a1.id), 15, 2);
    assert_eq!(b.parent.as_deref(), Some(a2.id.as_str()));
    assert_eq!(opened, 0);
    // A snapshot of another resource is never taken as the parent.
    let (m, _) = archive(&repo, &meta("megan@contoso", 3), 15, 1);
    let (c, opened) = archive(&repo, &after("adele@contoso", 4, &m.id), 15, 2);
    assert_eq!(c.parent.as_deref(), Some(b.id.as_str()));
    assert_eq!(opened, 0);
    // Nor does a malformed id fail the archive.
    let (d, opened) = archive(&repo, &after("adele@contoso", 5, "not-a-snapshot"), 15, 2);
    assert_eq!(d.parent.as_deref(), Some(c.id.as_str()));
    assert_eq!(opened, 0);
    // No snapshot of the resource at all: everything is read, nothing fails.
    let (n, opened) = archive(&repo, &after("nestor@contoso", 1, &a1.id), 15, 1);
    assert_eq!(n.parent, None);
    assert_eq!(opened, 15);
    assert!(repo.check(Some("all")).unwrap().is_ok());
}

#[test]
fn the_shared_index_knows_what_this_process_wrote() {
    let repo = Repo::init(local(&tmp("parent-index"))).unwrap();
    archive(&repo, &meta("megan@contoso", 1), 5, 1);
    repo.refresh_index();
    // Loads the shared index: megan's snapshot is in it, nothing of adele's.
    archive(&repo, &meta("lee@contoso", 1), 1, 1);
    let (a1, _) = archive(&repo, &meta("adele@contoso", 1), 20, 1);
    repo.refresh_index();
    // Megan's new items hold the same content as adele's: after the refresh the index knows
    // it, and only trees are added.
    let (m2, opened) = archive(&repo, &meta("megan@contoso", 2), 20, 1);
    assert_eq!(opened, 15);
    let new_items: u64 = (5..20).map(|s| item_size(s) as u64).sum();
    assert!(
        m2.data_added < new_items / 10,
        "deduplicated against adele's archive: {} bytes added",
        m2.data_added
    );
    let (a2, opened) = archive(&repo, &after("adele@contoso", 2, &a1.id), 20, 2);
    assert_eq!(a2.parent.as_deref(), Some(a1.id.as_str()));
    assert_eq!(
        opened, 1,
        "the index read after refresh_index has the parent's blobs"
    );
    // Without a refresh, an index older than the parent is read again rather than used.
    let (a3, opened) = archive(&repo, &after("adele@contoso", 3, &a2.id), 20, 2);
    assert_eq!(a3.parent.as_deref(), Some(a2.id.as_str()));
    assert_eq!(opened, 0);
}

#[test]
fn concurrent_archives_share_one_repo_and_its_index() {
    let repo = Arc::new(Repo::init(local(&tmp("parent-concurrent"))).unwrap());
    let run = |parents: Vec<Option<String>>, day: i64| -> Vec<(SnapshotInfo, u64)> {
        let handles: Vec<_> = parents
            .into_iter()
            .enumerate()
            .map(|(i, parent)| {
                let repo = repo.clone();
                std::thread::spawn(move || {
                    let m = SnapshotMeta {
                        parent,
                        ..meta(&format!("user{i}@contoso"), day)
                    };
                    archive(&repo, &m, 15, i as u64)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let first = run(vec![None; 4], 1);
    assert!(first.iter().all(|(_, opened)| *opened == 15));
    repo.refresh_index();
    let second = run(first.iter().map(|(s, _)| Some(s.id.clone())).collect(), 2);
    for ((s1, _), (s2, opened)) in first.iter().zip(&second) {
        assert_eq!(s2.parent.as_deref(), Some(s1.id.as_str()));
        assert_eq!(*opened, 0);
    }
    assert_eq!(repo.snapshots().unwrap().len(), 8);
    assert!(repo.check(Some("all")).unwrap().is_ok());
}
