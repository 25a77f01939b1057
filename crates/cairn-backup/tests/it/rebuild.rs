//! The catalog lost and rebuilt from the repository: the same restore points holding the
//! same items, and the next backup carries on from it (what Graph deleted is removed,
//! nothing is duplicated, unchanged content is not fetched again).

use super::*;
use cairn_backup::REBUILT_ID;
use std::collections::BTreeSet;

/// An item as a restore point shows it: path, size, kind, and what identifies and
/// describes it (Graph id except for files, whose id the repository does not keep; subject,
/// sender and date of mail; a file's permissions).
type Item = (
    String,
    u64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[derive(Debug, PartialEq)]
struct PointView {
    seq: i64,
    snapshot: String,
    time: i64,
    items: BTreeSet<Item>,
}

fn view(c: &SqliteCatalog, resource: &str) -> Vec<PointView> {
    let res = c
        .resource("contoso", cairn_catalog::ResourceKind::User, resource)
        .unwrap()
        .id;
    c.points(res)
        .unwrap()
        .into_iter()
        .map(|p| {
            let mut items = BTreeSet::new();
            c.for_each_at(res, p.seq, "", &mut |r| {
                let (mail, file) = (r.kind == "message", r.kind == "file");
                items.insert((
                    r.path,
                    r.size,
                    r.kind.clone(),
                    (!matches!(r.kind.as_str(), "file" | "folder")).then_some(r.item),
                    r.subject.filter(|_| mail),
                    match (mail, file) {
                        (true, _) => Some(format!("{:?} {:?}", r.sender, r.date)),
                        // Permissions (and earlier versions), from `~permissions/…`.
                        (_, true) => r.sidecar,
                        _ => None,
                    },
                ));
                true
            })
            .unwrap();
            PointView {
                seq: p.seq,
                snapshot: p.snapshot,
                time: p.time.timestamp_micros(),
                items,
            }
        })
        .collect()
}

/// Message id → recipients, in a restore point.
fn recipients(c: &SqliteCatalog, resource: &str, seq: i64) -> BTreeMap<String, Option<String>> {
    let res = c
        .resource("contoso", cairn_catalog::ResourceKind::User, resource)
        .unwrap()
        .id;
    let mut out = BTreeMap::new();
    c.for_each_at(res, seq, "mail/", &mut |r| {
        out.insert(r.item, r.recipients);
        true
    })
    .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_catalog_is_rebuilt_from_the_repository_and_backups_carry_on() {
    let mut s = spec(61, 1);
    s.mail_per_mailbox = 30;
    let sim = SimTenant::start(s).await;
    let mut setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let user = users(&engine).await[0].clone();
    let kinds = json!(["message", "file", "event", "contact"]);
    report_ok(&engine.run(vec![user.clone()]).await);
    let changes = sim
        .mutate(json!({"seed": 3, "count": 16, "resource": user.id, "kinds": kinds}))
        .await
        .len() as u64;
    report_ok(&engine.run(vec![user.clone()]).await);
    let original = view(&setup.catalog, &user.name);
    let original_recipients = recipients(&setup.catalog, &user.name, 2);
    assert_eq!(original.len(), 2);
    assert_ne!(original[0].items, original[1].items);

    // The catalog is lost; a new one is rebuilt from the repository.
    drop(engine);
    let lost = setup.catalog.path().to_path_buf();
    setup.catalog = Arc::new(SqliteCatalog::open(&setup.path().join("rebuilt.db")).unwrap());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", lost.display()));
    }
    let (repo, cat) = (setup.repo.clone(), setup.catalog.clone());
    let report = tokio::task::spawn_blocking(move || {
        cairn_backup::rebuild(&repo, cat.as_ref(), Some("contoso"), &Silent)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.resources.len(), 1, "{report:?}");
    let rebuilt = &report.resources[0];
    assert_eq!(rebuilt.error, None);
    assert!(rebuilt.skipped.is_empty(), "{:?}", rebuilt.skipped);
    assert_eq!(rebuilt.points, 2);
    assert_eq!(view(&setup.catalog, &user.name), original);
    // Recipients come from the MIME header, as Graph gave them.
    assert_eq!(
        recipients(&setup.catalog, &user.name, 2),
        original_recipients
    );
    // The first point is read whole (a file: its permissions); the second only where it
    // changed, about one entry per change: the rest continued unread.
    // An archive item is two entries read: its sidecar (its id) and its stream (what
    // search shows of it); an inline image of a Teams message too: its message (its id)
    // and its bytes (its hash).
    let first = original[0].items.iter().filter(|i| i.2 != "folder").count() as u64
        + original[0]
            .items
            .iter()
            .filter(|i| i.2 == "archiveItem" || i.2 == "hostedContent")
            .count() as u64;
    assert!(
        rebuilt.read >= first && rebuilt.read <= first + changes,
        "{} entries read for {first} items and {changes} changes",
        rebuilt.read
    );

    // Graph changes again; the next backup works from the rebuilt catalog.
    let mut applied = sim
        .mutate(json!({"seed": 11, "count": 16, "resource": user.id, "kinds": kinds}))
        .await;
    applied.extend(
        sim.mutate(json!({"seed": 13, "count": 8, "resource": user.id, "kinds": ["message"]}))
            .await,
    );
    let ops = |kind: &str, op: &str| {
        applied
            .iter()
            .filter(|a| a["kind"] == kind && a["op"] == op)
            .count() as u64
    };
    // Drafts are fetched again after a rebuild: their content may change under the same
    // time, and the version marker that would tell is not in the repository.
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut drafts = 0u64;
    setup
        .catalog
        .for_each_at(res, 2, "mail/", &mut |r| {
            let meta: Value = serde_json::from_str(r.sidecar.as_deref().unwrap()).unwrap();
            drafts += u64::from(meta["isDraft"] == json!(true));
            true
        })
        .unwrap();
    let before = sim.stats().await;
    let engine = backup_engine(&setup, sim.graph());
    let third = engine.run(vec![user.clone()]).await;
    report_ok(&third);
    let after = sim.stats().await;
    let count = |label: &str| endpoint(&after, label) - endpoint(&before, label);
    let mime = count("GET /users/{id}/messages/{id}/$value");
    let (new, moved) = (ops("message", "create"), ops("message", "move"));
    assert!(
        mime >= new && mime <= new + moved + drafts,
        "{mime} MIME fetches for {new} new, {moved} moved messages and {drafts} drafts"
    );
    let downloads = count("GET /drives/{id}/items/{id}/content");
    let changed_files = ops("file", "create") + ops("file", "modify") + ops("file", "move");
    assert!(
        downloads <= changed_files,
        "{downloads} file downloads for {changed_files} new, changed or moved files"
    );
    assert_eq!(
        restore_point(&setup, &user.name, 3),
        manifest(&sim, &user.id).await,
        "restore point 3 equals the mailbox and drive"
    );
    // Every item is keyed by its Graph id again, in its real collection, once.
    let mut ids = BTreeSet::new();
    setup
        .catalog
        .for_each_at(res, 3, "", &mut |r| {
            assert!(!r.item.starts_with(REBUILT_ID), "{}", r.path);
            assert!(!r.scope.ends_with("(rebuilt)"), "{} {}", r.path, r.scope);
            assert!(ids.insert(r.item.clone()), "{} twice", r.item);
            true
        })
        .unwrap();
    // The rebuilt points still read as they were.
    assert_eq!(view(&setup.catalog, &user.name)[..2], original[..]);
}
