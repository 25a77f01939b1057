//! The backup engine against the simulator: restore points equal the simulator's manifest,
//! incrementals fetch only what changed, and a run with faults gives the same restore
//! points as one without.

use cairn_backup::{BackupOptions, Engine, JobReport, Silent, Target};
use cairn_catalog::{Catalog, SqliteCatalog};
use cairn_graph::GraphClient;
use cairn_sim::TenantSpec;
use cairn_sim::content::{
    CONTACT_CONTENT_FIELDS, EVENT_CONTENT_FIELDS, POST_CONTENT_FIELDS, canonical,
    canonical_list_fields,
};
use cairn_testkit::{SimTenant, Workspace};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

mod extras;
mod poll;
mod rebuild;
mod resume;
mod teams;

pub fn spec(seed: u64, users: u32) -> TenantSpec {
    TenantSpec {
        seed,
        users,
        groups: 1,
        sites: 1,
        mail_per_mailbox: 40,
        events_per_mailbox: 6,
        contacts_per_mailbox: 5,
        files_per_drive: 12,
        items_per_list: 4,
        max_item_size: 512 * 1024,
        ..TenantSpec::default()
    }
}

/// The engine of tenant `contoso` over a workspace, with its spool in it.
pub fn backup_engine(setup: &Workspace, g: Arc<GraphClient>) -> Arc<Engine> {
    Arc::new(Engine::new(
        g,
        setup.repo.clone(),
        setup.catalog.clone(),
        "contoso",
        BackupOptions::new(setup.spool_dir()),
        Arc::new(Silent),
    ))
}

pub fn endpoint(stats: &Value, label: &str) -> u64 {
    stats["by_endpoint"][label].as_u64().unwrap_or(0)
}

/// id → (kind, sha256 of content as the simulator's manifest computes it).
pub async fn manifest(s: &SimTenant, resource: &str) -> BTreeMap<String, (String, String)> {
    s.manifest(resource)
        .await
        .into_iter()
        .map(|e| (e.id, (e.kind, e.sha256)))
        .collect()
}

/// id → (kind, sha256) of what a restore point holds, read back from the repository and
/// hashed the way the manifest hashes (JSON items by their content fields).
pub fn restore_point(
    setup: &Workspace,
    resource: &str,
    seq: i64,
) -> BTreeMap<String, (String, String)> {
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, resource)
        .unwrap()
        .id;
    let points = setup.catalog.points(res).unwrap();
    let snap = points
        .iter()
        .find(|p| p.seq == seq)
        .unwrap()
        .snapshot
        .clone();
    let mut rows = Vec::new();
    setup
        .catalog
        .for_each_at(res, seq, "", &mut |r| {
            // Folders are directories of the restore point, not items of the manifest; tasks,
            // rules and settings are in the manifest asked `extras=true` (`extras.rs`), Teams
            // in the one asked `teams=true` (`teams.rs`).
            if r.kind != "folder"
                && !extras::KINDS.contains(&r.kind.as_str())
                && !teams::KINDS.contains(&r.kind.as_str())
            {
                rows.push(r);
            }
            true
        })
        .unwrap();
    let reader = setup.repo.open_snapshot(&snap).unwrap();
    rows.into_iter()
        .map(|r| {
            let mut out = Vec::new();
            reader
                .read(&r.path, &mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", r.path));
            let sha = match r.kind.as_str() {
                "event" => sha2::Sha256::digest(canonical(
                    &serde_json::from_slice(&out).unwrap(),
                    EVENT_CONTENT_FIELDS,
                )),
                "contact" => sha2::Sha256::digest(canonical(
                    &serde_json::from_slice(&out).unwrap(),
                    CONTACT_CONTENT_FIELDS,
                )),
                "post" => sha2::Sha256::digest(canonical(
                    &serde_json::from_slice(&out).unwrap(),
                    POST_CONTENT_FIELDS,
                )),
                "listItem" => sha2::Sha256::digest(canonical_list_fields(
                    &serde_json::from_slice::<Value>(&out).unwrap()["fields"],
                )),
                _ => sha2::Sha256::digest(&out),
            };
            (r.item, (r.kind, hex::encode(sha)))
        })
        .collect()
}

pub async fn users(e: &Engine) -> Vec<Target> {
    e.users(&[]).await.unwrap()
}

pub fn report_ok(r: &JobReport) {
    for res in &r.resources {
        assert!(res.ok(), "{}: {:?}", res.resource, res.error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_backup_equals_the_manifest_and_incrementals_fetch_only_changes() {
    let sim = SimTenant::start(spec(41, 3)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let all = users(&engine).await;
    let user = all[0].clone();

    // Something in Recoverable Items, which lies outside the folder tree.
    sim.graph()
        .send_json(
            http::Method::POST,
            &format!(
                "/users/{}/mailFolders/recoverableitemsroot/messages",
                user.id
            ),
            json!({"subject": "Deleted long ago", "body": {"contentType": "text", "content": "x"}}),
        )
        .await
        .unwrap();
    let first = engine.run(vec![user.clone()]).await;
    report_ok(&first);
    let r1 = &first.resources[0];
    assert!(r1.skipped.is_empty(), "{:?}", r1.skipped);
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut recoverable = 0;
    setup
        .catalog
        .for_each_at(res, 1, "mail/Recoverable Items/", &mut |_| {
            recoverable += 1;
            true
        })
        .unwrap();
    assert!(recoverable > 0, "Recoverable Items are backed up");
    let want1 = manifest(&sim, &user.id).await;
    let kinds: std::collections::BTreeSet<&str> = want1.values().map(|v| v.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["archiveItem", "contact", "event", "file", "message"]
            .into_iter()
            .collect()
    );
    assert_eq!(
        restore_point(&setup, &user.name, 1),
        want1,
        "restore point 1 equals the mailbox and drive"
    );

    // Users change things: messages arrive, are flagged, moved and deleted; files, events
    // and contacts change.
    let before = sim.stats().await;
    let applied = sim
        .mutate(json!({"seed": 7, "count": 24, "resource": user.id,
                       "kinds": ["message", "file", "event", "contact"]}))
        .await;
    assert!(applied.len() > 10, "{applied:?}");
    // New messages still there (a mutation may delete one it just created).
    let deleted: Vec<&Value> = applied
        .iter()
        .filter(|a| a["op"] == "delete")
        .map(|a| &a["key"])
        .collect();
    let new_messages = applied
        .iter()
        .filter(|a| a["kind"] == "message" && a["op"] == "create")
        .filter(|a| !deleted.contains(&&a["key"]))
        .count() as u64;
    let second = engine.run(vec![user.clone()]).await;
    report_ok(&second);
    let after = sim.stats().await;
    let mime_fetches = endpoint(&after, "GET /users/{id}/messages/{id}/$value")
        - endpoint(&before, "GET /users/{id}/messages/{id}/$value");
    // Only new messages are fetched; moved ones are taken from the repository... or fetched
    // once under their new path.
    let moved = applied
        .iter()
        .filter(|a| a["kind"] == "message" && a["op"] == "move")
        .count() as u64;
    let want2 = manifest(&sim, &user.id).await;
    assert_ne!(want1, want2);
    assert_eq!(
        restore_point(&setup, &user.name, 2),
        want2,
        "restore point 2 equals the changed mailbox and drive"
    );
    assert!(
        mime_fetches >= new_messages && mime_fetches <= new_messages + moved,
        "{mime_fetches} MIME fetches for {new_messages} new and {moved} moved messages"
    );
    // Restore point 1 still reads as it was.
    assert_eq!(restore_point(&setup, &user.name, 1), want1);
    let r2 = &second.resources[0];
    assert!(r2.added + r2.changed + r2.removed > 0);

    // Nothing changed: about one request per folder or drive.
    let before = sim.stats().await;
    let third = engine.run(vec![user.clone()]).await;
    report_ok(&third);
    let after = sim.stats().await;
    let requests =
        after["requests_total"].as_u64().unwrap() - before["requests_total"].as_u64().unwrap();
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let scopes = setup.catalog.scopes(res).unwrap().len() as u64;
    assert!(
        requests <= 2 * scopes + 4,
        "{requests} requests for {scopes} folders, calendars and drives"
    );
    assert_eq!(third.resources[0].fetched, 0);
    assert_eq!(restore_point(&setup, &user.name, 3), want2);

    let repo = setup.repo.clone();
    assert!(
        tokio::task::spawn_blocking(move || repo.check(Some("all")))
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_give_the_same_restore_points_as_a_clean_run() {
    let clean = SimTenant::start(spec(5, 2)).await;
    let faulty = SimTenant::start_with(spec(5, 2), |c| c.fault_rate = 0.1).await;
    let (a, b) = (Workspace::new(), Workspace::new());
    let (ea, eb) = (
        backup_engine(&a, clean.graph()),
        backup_engine(&b, faulty.graph()),
    );
    let ua = users(&ea).await;
    let ub = users(&eb).await;
    let ra = ea.run(ua.clone()).await;
    let rb = eb.run(ub).await;
    report_ok(&ra);
    report_ok(&rb);
    for u in &ua {
        let pa = restore_point(&a, &u.name, 1);
        assert!(!pa.is_empty());
        assert_eq!(pa, restore_point(&b, &u.name, 1), "{}", u.name);
    }
    assert!(faulty.stats().await["faults_total"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_and_groups_are_backed_up_with_libraries_and_lists() {
    let sim = SimTenant::start(spec(9, 1)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let mut targets = engine.sites(&[]).await.unwrap();
    targets.extend(engine.groups(&[]).await.unwrap());
    assert!(targets.len() >= 2);
    let report = engine.run(targets.clone()).await;
    report_ok(&report);
    for t in &targets {
        let want = manifest(&sim, &t.id).await;
        let got = restore_point(&setup, &t.name, 1);
        // Every file of the site or group is in its restore point, hash-equal.
        for (id, v) in &want {
            assert_eq!(got.get(id), Some(v), "{} item {id}", t.name);
        }
    }
    let lists = report
        .resources
        .iter()
        .filter(|r| r.kind == "site")
        .map(|r| r.items)
        .sum::<u64>();
    assert!(lists > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_conversations_are_kept_and_only_threads_with_new_posts_read_again() {
    let sim = SimTenant::start(spec(12, 1)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let groups = engine.groups(&[]).await.unwrap();
    let group = groups[0].clone();
    report_ok(&engine.run(vec![group.clone()]).await);
    let want1 = manifest(&sim, &group.id).await;
    let posts = want1.values().filter(|v| v.0 == "post").count();
    assert!(posts > 0, "the group has conversations: {want1:?}");
    assert_eq!(restore_point(&setup, &group.name, 1), want1);

    // New posts arrive in some threads: only those threads have their posts listed again.
    let applied = sim
        .mutate(json!({"seed": 6, "count": 2, "resource": group.id,
                       "kinds": ["post"], "ops": ["create"]}))
        .await;
    assert!(!applied.is_empty(), "posts were added");
    let label = "GET /groups/{id}/threads/{id}/posts";
    let before = sim.stats().await;
    let second = engine.run(vec![group.clone()]).await;
    report_ok(&second);
    let after = sim.stats().await;
    let listed = endpoint(&after, label) - endpoint(&before, label);
    assert!(
        listed >= 1 && listed <= applied.len() as u64,
        "{listed} threads read again for {} new posts",
        applied.len()
    );
    let want2 = manifest(&sim, &group.id).await;
    assert_eq!(
        want2.values().filter(|v| v.0 == "post").count(),
        posts + applied.len()
    );
    assert_eq!(restore_point(&setup, &group.name, 2), want2);
    assert_eq!(restore_point(&setup, &group.name, 1), want1);

    // Nothing new: the threads are listed, no posts.
    let before = sim.stats().await;
    report_ok(&engine.run(vec![group.clone()]).await);
    let after = sim.stats().await;
    assert_eq!(endpoint(&after, label), endpoint(&before, label));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_folder_takes_its_files_along_and_empty_folders_are_kept() {
    let sim = SimTenant::start(spec(23, 1)).await;
    let setup = Workspace::new();
    let g = sim.graph();
    let engine = backup_engine(&setup, g.clone());
    let user = users(&engine).await[0].clone();
    report_ok(&engine.run(vec![user.clone()]).await);

    let kids = g
        .get(&format!("/users/{}/drive/root/children", user.id))
        .await
        .unwrap();
    let folder = kids["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["folder"]["childCount"].as_u64().unwrap_or(0) > 0)
        .expect("a folder with files")
        .clone();
    let drive = folder["parentReference"]["driveId"].as_str().unwrap();
    let id = folder["id"].as_str().unwrap();
    g.send_json(
        http::Method::PATCH,
        &format!("/drives/{drive}/items/{id}"),
        json!({"name": "Renamed ✓"}),
    )
    .await
    .unwrap();
    g.send_json(
        http::Method::POST,
        &format!("/drives/{drive}/root/children"),
        json!({"name": "Empty", "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}),
    )
    .await
    .unwrap();
    report_ok(&engine.run(vec![user.clone()]).await);

    // Every file is where the drive now has it.
    let m = sim.manifest(&user.id).await;
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut paths = BTreeMap::new();
    setup
        .catalog
        .for_each_at(res, 2, "onedrive/", &mut |r| {
            if r.kind == "file" {
                paths.insert(r.item, r.path);
            }
            true
        })
        .unwrap();
    let mut renamed = 0;
    for e in m.iter().filter(|e| e.kind == "file") {
        let want = format!("onedrive/{}", e.path.strip_prefix("OneDrive/").unwrap());
        renamed += usize::from(want.contains("Renamed ✓"));
        assert_eq!(paths.get(&e.id), Some(&want));
    }
    assert!(renamed > 0);
    assert_eq!(
        restore_point(&setup, &user.name, 2),
        manifest(&sim, &user.id).await
    );
    let snap = setup.catalog.points(res).unwrap()[1].snapshot.clone();
    let listed = setup.repo.list(&snap, "onedrive").unwrap();
    assert!(
        listed
            .iter()
            .any(|(p, dir, _)| *dir && p.ends_with("Empty")),
        "{listed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_permissions_are_recorded_and_earlier_versions_kept_when_asked() {
    let sim = SimTenant::start(spec(31, 1)).await;
    let setup = Workspace::new();
    let mut opts = BackupOptions::new(setup.spool_dir());
    opts.file_versions = true;
    let engine = Arc::new(Engine::new(
        sim.graph(),
        setup.repo.clone(),
        setup.catalog.clone(),
        "contoso",
        opts,
        Arc::new(Silent),
    ));
    let user = users(&engine).await[0].clone();
    report_ok(&engine.run(vec![user.clone()]).await);
    let before = restore_point(&setup, &user.name, 1);
    let applied = sim
        .mutate(json!({"seed": 4, "count": 4, "resource": user.id,
                       "kinds": ["file"], "ops": ["modify"]}))
        .await;
    assert!(!applied.is_empty());
    // Files shared on their own, or no longer: only their sharing changes (not their eTag).
    let shared = sim
        .mutate(json!({"seed": 9, "count": 4, "resource": user.id,
                       "kinds": ["file"], "ops": ["share"]}))
        .await;
    assert!(!shared.is_empty());
    report_ok(&engine.run(vec![user.clone()]).await);
    let after = restore_point(&setup, &user.name, 2);
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut items = Vec::new();
    setup
        .catalog
        .for_each_at(res, 2, "onedrive/", &mut |r| {
            items.push(r);
            true
        })
        .unwrap();
    let snap = setup.catalog.points(res).unwrap()[1].snapshot.clone();
    let reader = setup.repo.open_snapshot(&snap).unwrap();
    // An item shared on its own has its permissions kept, as Graph lists them now (also
    // when only its sharing changed since the last run); one that only inherits from its
    // folder has none of its own kept (or, once unshared, the ones Graph lists).
    let client = sim.graph();
    let (mut own, mut inherited) = (0u64, 0u64);
    for i in &items {
        let drive = i.scope.trim_start_matches("drive:");
        let graph_perms = client
            .get(&format!("/drives/{drive}/items/{}/permissions", i.item))
            .await
            .unwrap()["value"]
            .clone();
        let shared = graph_perms
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.get("link").is_some());
        let kept = if i.kind == "folder" {
            format!(
                "~folder-permissions/{}.json",
                i.path.replace('%', "%25").replace('/', "%2F")
            )
        } else {
            format!("~permissions/{}", i.path)
        };
        let mut perms = Vec::new();
        match reader.read(&kept, &mut perms) {
            Ok(()) => {
                let perms: Value = serde_json::from_slice(&perms).unwrap();
                assert_eq!(perms, graph_perms, "{kept}");
                own += u64::from(shared);
            }
            Err(e) => {
                assert!(!shared, "{kept} of an item shared on its own: {e}");
                inherited += 1;
            }
        }
    }
    assert!(
        own > 0 && inherited > 0,
        "{own} shared, {inherited} inheriting"
    );
    let mut versions_checked = 0;
    for f in items.iter().filter(|i| i.kind == "file") {
        // A modified file: its content before the change is its latest earlier version.
        if before.get(&f.item) != after.get(&f.item) {
            let listed = setup
                .repo
                .list(&snap, &format!("~versions/{}", f.path))
                .unwrap();
            let latest = listed
                .iter()
                .filter(|(_, dir, _)| !dir)
                .map(|(p, _, _)| p.clone())
                .max_by_key(|p| {
                    p.rsplit('/')
                        .next()
                        .unwrap_or("")
                        .replace(".0", "")
                        .parse::<u32>()
                        .unwrap_or(0)
                })
                .expect("an earlier version");
            let latest = format!("~versions/{}/{latest}", f.path);
            let mut old = Vec::new();
            reader.read(&latest, &mut old).unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(&old)),
                before[&f.item].1,
                "{latest}"
            );
            versions_checked += 1;
        }
    }
    assert!(versions_checked > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_delta_tokens_resync_without_duplicates_or_refetching() {
    let sim = SimTenant::start(spec(17, 1)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let user = users(&engine).await[0].clone();
    report_ok(&engine.run(vec![user.clone()]).await);
    let applied = sim
        .mutate(json!({"seed": 11, "count": 10, "resource": user.id,
                       "kinds": ["message", "file", "contact"],
                       "ops": ["delete", "create", "modify"]}))
        .await;
    assert!(!applied.is_empty());
    sim.expire_tokens().await;
    let before = sim.stats().await;
    let report = engine.run(vec![user.clone()]).await;
    report_ok(&report);
    let after = sim.stats().await;
    let label = "GET /users/{id}/messages/{id}/$value";
    let new_messages = applied
        .iter()
        .filter(|a| a["kind"] == "message" && a["op"] == "create")
        .count() as u64;
    // Every collection was enumerated afresh, yet only new messages were fetched.
    assert_eq!(
        endpoint(&after, label) - endpoint(&before, label),
        new_messages
    );
    let want = manifest(&sim, &user.id).await;
    let got = restore_point(&setup, &user.name, 2);
    assert_eq!(got.len(), want.len(), "no duplicates, nothing missing");
    assert_eq!(got, want);
    assert!(
        report.resources[0].removed > 0,
        "deletions were seen by the resync"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlicensed_user_is_skipped_not_failed() {
    let sim = SimTenant::start(spec(3, 40)).await;
    let setup = Workspace::new();
    let g = sim.graph();
    let engine = backup_engine(&setup, g.clone());
    let all = users(&engine).await;
    // The simulator's every 40th user has neither mailbox nor OneDrive.
    let mut none = None;
    for u in &all {
        if g.get(&format!("/users/{}/drive", u.id)).await.is_err() {
            none = Some(u.clone());
        }
    }
    let user = none.expect("an unlicensed user");
    let report = engine.run(vec![user]).await;
    let r = &report.resources[0];
    assert!(r.ok(), "{:?}", r.error);
    assert!(r.snapshot.is_none());
    assert!(
        r.skipped
            .iter()
            .any(|s| s.object == "mail" && s.reason.contains("not available")),
        "{:?}",
        r.skipped
    );
    assert_eq!(report.failed(), 0);
}
