//! Restores against the simulator: back up, damage, restore, and compare the tenant with
//! what it was (the simulator's manifest hashes messages' MIME, files' content, events'
//! and contacts' content fields).

use cairn_backup::{BackupOptions, Engine, JobReport, Silent, Target};
use cairn_catalog::Catalog;
use cairn_graph::GraphClient;
use cairn_restore::{
    Collision, Done, PointSel, RestoreOptions, RestoreReport, RestoreTarget, Restorer, Selection,
};
use cairn_sim::TenantSpec;
use cairn_testkit::{SimTenant, Workspace};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

mod teams;

fn spec(seed: u64, users: u32) -> TenantSpec {
    TenantSpec {
        seed,
        users,
        groups: 1,
        sites: 1,
        mail_per_mailbox: 30,
        events_per_mailbox: 6,
        contacts_per_mailbox: 5,
        files_per_drive: 10,
        items_per_list: 4,
        max_item_size: 256 * 1024,
        ..TenantSpec::default()
    }
}

/// A workspace and a Graph client of one simulated tenant: backups into the workspace,
/// restores out of it.
struct Setup {
    ws: Workspace,
    graph: Arc<GraphClient>,
}

impl Setup {
    fn new(s: &SimTenant) -> Self {
        Self {
            ws: Workspace::new(),
            graph: s.graph(),
        }
    }

    fn engine(&self) -> Arc<Engine> {
        Arc::new(Engine::new(
            self.graph.clone(),
            self.ws.repo.clone(),
            self.ws.catalog.clone(),
            "contoso",
            BackupOptions::new(self.ws.spool_dir()),
            Arc::new(Silent),
        ))
    }

    fn restorer(&self) -> Restorer {
        Restorer::new(
            "contoso",
            self.graph.clone(),
            self.ws.repo.clone(),
            self.ws.catalog.clone(),
        )
    }

    async fn backup(&self, t: &Target) {
        let r: JobReport = self.engine().run(vec![t.clone()]).await;
        for res in &r.resources {
            assert!(res.ok(), "{}: {:?}", res.resource, res.error);
        }
    }

    async fn restore(
        &self,
        sel: &Selection,
        target: RestoreTarget,
        collision: Collision,
    ) -> RestoreReport {
        let r = self
            .restorer()
            .run(
                sel,
                &RestoreOptions {
                    target,
                    collision,
                    ..RestoreOptions::default()
                },
            )
            .await
            .unwrap();
        assert!(r.ok(), "failed: {:#?}", r.failed);
        r
    }

    /// The catalog's id of a user backed up from the tenant.
    fn resource_id(&self, user: &str) -> i64 {
        self.ws
            .catalog
            .resource("contoso", cairn_catalog::ResourceKind::User, user)
            .unwrap()
            .id
    }

    /// The message sidecars of a restore point by internetMessageId: what a restore must
    /// bring back besides the MIME.
    fn mail_state(&self, user: &str, seq: i64) -> BTreeMap<String, Value> {
        let res = self.resource_id(user);
        let mut out = BTreeMap::new();
        self.ws
            .catalog
            .for_each_at(res, seq, "mail/", &mut |r| {
                let m: Value = serde_json::from_str(r.sidecar.as_deref().unwrap()).unwrap();
                out.insert(
                    m["internetMessageId"].as_str().unwrap().to_string(),
                    json!([
                        m["isRead"],
                        m["flag"]["flagStatus"],
                        m["categories"],
                        m["importance"],
                        m["folder"]
                    ]),
                );
                true
            })
            .unwrap();
        out
    }

    fn points(&self, user: &str) -> i64 {
        let res = self.resource_id(user);
        self.ws.catalog.points(res).unwrap().len() as i64
    }
}

async fn users(s: &Setup) -> Vec<Target> {
    s.engine().users(&[]).await.unwrap()
}

/// What a resource holds, as a multiset of (kind, path, sha256): restored items have new
/// ids, so ids are left out.
async fn manifest(s: &SimTenant, resource: &str) -> BTreeMap<(String, String, String), usize> {
    let mut out = BTreeMap::new();
    for e in s.manifest(resource).await {
        *out.entry((e.kind, e.path, e.sha256)).or_insert(0) += 1;
    }
    out
}

fn count(m: &BTreeMap<(String, String, String), usize>, kind: &str) -> usize {
    m.iter().filter(|(k, _)| k.0 == kind).map(|(_, n)| n).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn damage_is_repaired_by_a_restore_to_the_original_and_a_rerun_changes_nothing() {
    let sim = SimTenant::start(spec(11, 2)).await;
    let setup = Setup::new(&sim);
    let user = users(&setup).await[0].clone();
    // A file above the simple-upload size goes back through an upload session.
    let big: Vec<u8> = (0..5 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    setup
        .graph
        .get(&format!("/users/{}/drive?$select=id", user.id))
        .await
        .unwrap();
    let url = format!(
        "{}/v1.0/users/{}/drive/root:/big.bin:/content",
        sim.url(),
        user.id
    );
    let token = sim.token().await;
    let put = reqwest::Client::new()
        .put(&url)
        .bearer_auth(&token)
        .body(big)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());

    setup.backup(&user).await;
    let before = manifest(&sim, &user.id).await;
    for k in ["message", "file", "event", "contact"] {
        assert!(count(&before, k) > 0, "{k}");
    }
    let flags_before = setup.mail_state(&user.name, 1);

    // Users delete and change things.
    let applied = sim
        .mutate(
            json!({"seed": 3, "count": 30, "resource": user.id, "ops": ["modify", "delete"],
                   "kinds": ["message", "file", "event", "contact"]}),
        )
        .await;
    assert!(applied.len() > 15, "{applied:?}");
    // (The mutation may have deleted it already.)
    let gone = setup
        .graph
        .delete(&format!("/users/{}/drive/root:/big.bin:", user.id))
        .await;
    assert!(gone.is_ok() || gone.unwrap_err().status() == Some(404));
    let damaged = manifest(&sim, &user.id).await;
    assert_ne!(damaged, before);

    let sel = Selection::new(&user.name);
    let r = setup
        .restore(&sel, RestoreTarget::Original, Collision::Overwrite)
        .await;
    assert!(r.restored > 10, "{r:#?}");
    assert!(r.overwritten > 0, "{r:#?}");
    assert_eq!(
        manifest(&sim, &user.id).await,
        before,
        "the tenant is as backed up"
    );
    // Read state, flags and categories came back too: back up again and compare.
    setup.backup(&user).await;
    let n = setup.points(&user.name);
    assert_eq!(setup.mail_state(&user.name, n), flags_before);

    // A rerun finds everything in place.
    let again = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert_eq!(again.restored, 0, "{again:#?}");
    assert_eq!(again.skipped_total, r.restored + r.skipped_total);
    let odd: Vec<_> = again
        .skipped
        .iter()
        .filter(|o| o.done != Done::Skipped || !o.detail.contains("already"))
        .collect();
    assert!(odd.is_empty(), "{odd:#?}");
    assert_eq!(manifest(&sim, &user.id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_point_brings_back_deleted_items_and_restores_to_another_user() {
    let sim = SimTenant::start(spec(12, 3)).await;
    let setup = Setup::new(&sim);
    let all = users(&setup).await;
    let (ann, bob) = (all[0].clone(), all[1].clone());
    setup.backup(&ann).await;
    let at1 = manifest(&sim, &ann.id).await;
    sim.mutate(
        json!({"seed": 5, "count": 12, "resource": ann.id, "ops": ["delete"],
               "kinds": ["message", "file", "event", "contact"]}),
    )
    .await;
    setup.backup(&ann).await;
    assert_ne!(manifest(&sim, &ann.id).await, at1);

    // Point 1 held what was deleted before point 2.
    let mut sel = Selection::new(&ann.name);
    sel.point = PointSel::Seq(1);
    let r = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert!(r.restored >= 6, "{r:#?}");
    assert_eq!(manifest(&sim, &ann.id).await, at1);

    // Into Bob's mailbox and OneDrive, same folders and paths.
    let bob_before = manifest(&sim, &bob.id).await;
    let r = setup
        .restore(&sel, RestoreTarget::User(bob.name.clone()), Collision::Skip)
        .await;
    let bob_after = manifest(&sim, &bob.id).await;
    // Calendars are not created by a restore: events of a calendar the other user lacks
    // go to the default one, so events are compared without their calendar.
    let no_calendar = |m: &BTreeMap<(String, String, String), usize>| {
        let mut out: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for ((kind, path, sha), n) in m {
            let path = if kind == "event" {
                String::new()
            } else {
                path.clone()
            };
            *out.entry((kind.clone(), path, sha.clone())).or_insert(0) += n;
        }
        out
    };
    let (want, had, got) = (
        no_calendar(&at1),
        no_calendar(&bob_before),
        no_calendar(&bob_after),
    );
    for (k, n) in &want {
        assert!(
            got.get(k).copied().unwrap_or(0) >= had.get(k).copied().unwrap_or(0) + n,
            "{k:?} missing in the other user"
        );
    }
    assert_eq!(r.failed_total, 0);
    // Again: nothing new.
    setup
        .restore(&sel, RestoreTarget::User(bob.name.clone()), Collision::Skip)
        .await;
    assert_eq!(manifest(&sim, &bob.id).await, bob_after);

    // A folder beside the originals.
    let mut mail = sel.clone();
    mail.paths = vec!["mail/Inbox".into()];
    let r = setup
        .restore(&mail, RestoreTarget::Folder(None), Collision::Skip)
        .await;
    let inbox = at1
        .iter()
        .filter(|(k, _)| k.0 == "message" && k.1 == "Inbox")
        .map(|(_, n)| *n as u64)
        .sum::<u64>();
    assert_eq!(r.restored, inbox);
    let now = manifest(&sim, &ann.id).await;
    let restored_folder = now
        .iter()
        .filter(|(k, _)| k.1.starts_with("Restored ") && k.1.ends_with("/Inbox"))
        .map(|(_, n)| *n as u64)
        .sum::<u64>();
    assert_eq!(restored_folder, inbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collision_policies_skip_overwrite_and_keep_both() {
    let sim = SimTenant::start(spec(13, 1)).await;
    let setup = Setup::new(&sim);
    let user = users(&setup).await[0].clone();
    setup.backup(&user).await;
    let before = manifest(&sim, &user.id).await;

    // One file changes after the backup.
    let res = setup
        .ws
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut file = None;
    setup
        .ws
        .catalog
        .for_each_at(res, 1, "onedrive/", &mut |r| {
            if r.size > 0 && !r.path["onedrive/".len()..].contains('/') {
                file = Some(r);
                return false;
            }
            true
        })
        .unwrap();
    let file = file.expect("a file at the top of the OneDrive");
    let name = file.name.clone().unwrap();
    let token = sim.token().await;
    let changed = reqwest::Client::new()
        .put(format!(
            "{}/v1.0/users/{}/drive/root:/{}:/content",
            sim.url(),
            user.id,
            percent_encode(&name)
        ))
        .bearer_auth(&token)
        .body("changed")
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success());
    let after_change = manifest(&sim, &user.id).await;

    let mut sel = Selection::new(&user.name);
    sel.paths = vec![file.path.clone()];

    // Dry run: one planned file, nothing asked of Graph.
    let planned: Vec<_> = setup
        .restorer()
        .plan(&sel, &RestoreOptions::default())
        .unwrap()
        .collect()
        .await;
    assert_eq!(planned.len(), 1);
    assert!(
        planned[0]
            .as_ref()
            .unwrap()
            .destination
            .starts_with("OneDrive /"),
        "{planned:?}"
    );

    let skip = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert_eq!((skip.restored, skip.skipped_total), (0, 1));
    assert!(skip.skipped[0].detail.contains("--collision"), "{skip:?}");
    assert_eq!(manifest(&sim, &user.id).await, after_change);

    let keep = setup
        .restore(&sel, RestoreTarget::Original, Collision::KeepBoth)
        .await;
    assert_eq!(keep.kept_both, 1, "{keep:#?}");
    let with_copy = manifest(&sim, &user.id).await;
    assert_eq!(count(&with_copy, "file"), count(&after_change, "file") + 1);
    let copy = with_copy
        .keys()
        .find(|k| k.0 == "file" && k.1.contains("(restored "))
        .expect("a kept copy");
    assert!(before.keys().any(|k| k.0 == "file" && k.2 == copy.2));
    // Keep-both again: the copy is found, not made twice.
    let again = setup
        .restore(&sel, RestoreTarget::Original, Collision::KeepBoth)
        .await;
    assert_eq!((again.restored, again.skipped_total), (0, 1));
    assert_eq!(manifest(&sim, &user.id).await, with_copy);

    let over = setup
        .restore(&sel, RestoreTarget::Original, Collision::Overwrite)
        .await;
    assert_eq!(over.overwritten, 1);
    let now = manifest(&sim, &user.id).await;
    let orig = before
        .keys()
        .find(|k| k.0 == "file" && k.1.ends_with(&format!("/{name}")))
        .unwrap();
    assert!(now.contains_key(orig), "the original content is back");

    // An event changed since: keep-both adds the restored one beside it.
    sim.mutate(
        json!({"seed": 9, "count": 1, "resource": user.id, "ops": ["modify"], "kinds": ["event"]}),
    )
    .await;
    let mut cal = Selection::new(&user.name);
    cal.paths = vec!["calendar/".into()];
    let r = setup
        .restore(&cal, RestoreTarget::Original, Collision::KeepBoth)
        .await;
    assert_eq!(r.kept_both, 1, "{r:#?}");
    let events = manifest(&sim, &user.id).await;
    assert_eq!(count(&events, "event"), count(&before, "event") + 1);
    let r = setup
        .restore(&cal, RestoreTarget::Original, Collision::KeepBoth)
        .await;
    assert_eq!(r.restored, 0);
}

fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_resources_and_points_are_the_users_mistake() {
    let sim = SimTenant::start(spec(14, 1)).await;
    let setup = Setup::new(&sim);
    let user = users(&setup).await[0].clone();
    setup.backup(&user).await;
    let r = setup.restorer();
    let e = r
        .resolve(&Selection::new("nobody@contoso.com"))
        .unwrap_err();
    assert!(e.is_user_error());
    assert!(e.hint().unwrap().contains(&user.name), "{:?}", e.hint());
    let mut sel = Selection::new(&user.name);
    sel.point = PointSel::Seq(9);
    let e = r.resolve(&sel).unwrap_err();
    assert!(e.is_user_error(), "{e}");
    sel.point = PointSel::At(chrono::DateTime::from_timestamp(0, 0).unwrap());
    assert!(r.resolve(&sel).is_err());
    sel.point = PointSel::At(chrono::Utc::now());
    assert_eq!(r.resolve(&sel).unwrap().1.seq, 1);
}

/// The raw manifest entries of a resource's archive items: (id, mailbox, sha256).
async fn archive_items(s: &SimTenant, resource: &str) -> Vec<(String, String, String, String)> {
    let v: Value = reqwest::Client::new()
        .get(format!("{}/_sim/manifest?resource={resource}", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "archiveItem")
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("path"), s("mailbox"), s("sha256"))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_auto_expanded_archive_is_backed_up_whole_and_restored_through_import_sessions() {
    let sim = SimTenant::start(spec(12, 2)).await;
    let setup = Setup::new(&sim);
    // The simulator's user 1 has an auto-expanded archive: folders 2019 and Projects/Old
    // live in an auxiliary archive mailbox.
    let user = users(&setup).await[1].clone();
    let before = archive_items(&sim, &user.id).await;
    let mailboxes: std::collections::BTreeSet<&str> = before.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(mailboxes.len(), 2, "main and auxiliary archive: {before:?}");
    setup.backup(&user).await;

    // Backed up whole: every item's stream, byte for byte, as exportItems gave it.
    let res = setup.resource_id(&user.name);
    let point = setup.ws.catalog.points(res).unwrap()[0].snapshot.clone();
    let reader = setup.ws.repo.open_snapshot(&point).unwrap();
    let mut held = Vec::new();
    setup
        .ws
        .catalog
        .for_each_at(res, 1, "archive/", &mut |r| {
            held.push(r);
            true
        })
        .unwrap();
    let mut got: Vec<(String, String)> = held
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            reader.read(&r.path, &mut out).unwrap();
            (r.item.clone(), hex::encode(sha2::Sha256::digest(&out)))
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = before.iter().map(|e| (e.0.clone(), e.3.clone())).collect();
    assert_eq!(got, want, "the archive, hash for hash");
    // Searchable: the catalog read subjects out of the streams.
    assert!(held.iter().all(|r| r.subject.is_some()), "{held:?}");

    // One item of each mailbox is deleted for good.
    let token = sim.token().await;
    let http = reqwest::Client::new();
    for mbx in &mailboxes {
        let (id, path, _, _) = before.iter().find(|e| e.2 == *mbx).unwrap();
        let folder = held
            .iter()
            .find(|r| r.item == *id)
            .map(|r| r.scope.trim_start_matches("archive:").to_string())
            .unwrap();
        let r = http
            .delete(format!(
                "{}/beta/admin/exchange/mailboxes/{mbx}/folders/{folder}/items/{id}?disposalType=hardDelete",
                sim.url()
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204, "deleting {path}/{id}");
    }
    assert_eq!(archive_items(&sim, &user.id).await.len(), before.len() - 2);

    // Restored where they were: the two through import sessions (the auxiliary mailbox's
    // own), the rest left alone.
    let mut sel = Selection::new(&user.name);
    sel.paths = vec!["archive/".into()];
    let r = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert_eq!(r.restored, 2, "{r:#?}");
    assert_eq!(r.skipped_total as usize, before.len() - 2, "{r:#?}");
    let after: Vec<(String, String)> = archive_items(&sim, &user.id)
        .await
        .into_iter()
        .map(|e| (e.1, e.3))
        .collect();
    let mut want: Vec<(String, String)> =
        before.iter().map(|e| (e.1.clone(), e.3.clone())).collect();
    want.sort();
    let mut after = after;
    after.sort();
    assert_eq!(after, want, "the same streams in the same folders again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_message_comes_back_as_the_exact_stream_exchange_exported() {
    let sim = SimTenant::start(spec(13, 1)).await;
    let setup = Setup::new(&sim);
    let user = users(&setup).await[0].clone();
    let mut opts = BackupOptions::new(setup.ws.spool_dir());
    opts.full_fidelity = true;
    let engine = Arc::new(Engine::new(
        setup.graph.clone(),
        setup.ws.repo.clone(),
        setup.ws.catalog.clone(),
        "contoso",
        opts,
        Arc::new(Silent),
    ));
    let r = engine.run(vec![user.clone()]).await;
    assert!(r.resources[0].ok(), "{:?}", r.resources[0].error);

    // Every message's full-fidelity copy is in the restore point, byte for byte as exported.
    let raw = |s: &SimTenant, id: &str| {
        let url = format!("{}/_sim/manifest?resource={id}", s.url());
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let before = raw(&sim, &user.id).await;
    let streams: BTreeMap<String, String> = before
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["fxSha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let res = setup.resource_id(&user.name);
    let point = setup.ws.catalog.points(res).unwrap()[0].snapshot.clone();
    let reader = setup.ws.repo.open_snapshot(&point).unwrap();
    let mut rows = Vec::new();
    setup
        .ws
        .catalog
        .for_each_at(res, 1, "fidelity/", &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
    let held: BTreeMap<String, (String, String)> = rows
        .iter()
        .filter(|r| r.kind == "messageStream")
        .map(|r| {
            let mut out = Vec::new();
            reader.read(&r.path, &mut out).unwrap();
            (
                r.item.trim_start_matches("fx:").to_string(),
                (hex::encode(sha2::Sha256::digest(&out)), r.path.clone()),
            )
        })
        .collect();
    // (The mailbox API's item ids are the immutable Outlook ids: those of the manifest.)
    for (id, sha) in &streams {
        let got = held.get(id).map(|v| v.0.as_str());
        assert_eq!(got, Some(sha.as_str()), "message {id}");
    }

    // One message is purged for good; its full-fidelity copy is restored.
    let (gone_id, gone_sha) = streams.iter().next().unwrap();
    let (_, (_, path)) = held
        .iter()
        .find(|(_, v)| v.0 == *gone_sha)
        .expect("its copy");
    let token = sim.token().await;
    let http = reqwest::Client::new();
    let mbx: Value = http
        .get(format!(
            "{}/v1.0/users/{}/settings/exchange",
            sim.url(),
            user.id
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = rows.iter().find(|r| r.path == *path).unwrap();
    let folder = row.scope.trim_start_matches("fidelity:");
    let del = http
        .delete(format!(
            "{}/v1.0/admin/exchange/mailboxes/{}/folders/{folder}/items/{gone_id}?disposalType=hardDelete",
            sim.url(),
            mbx["primaryMailboxId"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let fx = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["fxSha256"].as_str().map(str::to_string))
            .collect();
        out.sort();
        out
    };
    assert!(!fx(&raw(&sim, &user.id).await).contains(gone_sha));

    let mut sel = Selection::new(&user.name);
    sel.paths = vec![path.clone()];
    let r = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert_eq!(r.restored, 1, "{r:#?}");
    // The same stream again, byte for byte, as the simulator exports it now.
    assert_eq!(fx(&raw(&sim, &user.id).await), fx(&before));
}

/// The user's tasks, rules and settings in the simulator: (kind, path, sha256) → count.
async fn extras(s: &SimTenant, resource: &str) -> BTreeMap<(String, String, String), usize> {
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{}/_sim/manifest?resource={resource}&extras=true",
            s.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for e in v.as_array().unwrap() {
        let kind = e["kind"].as_str().unwrap_or_default();
        if ["todoTask", "messageRule", "mailboxSettings"].contains(&kind) {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            *out.entry((s("kind"), s("path"), s("sha256"))).or_insert(0) += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_tasks_and_rules_and_changed_settings_come_back() {
    let sim = SimTenant::start(spec(23, 2)).await;
    let setup = Setup::new(&sim);
    let user = users(&setup).await[0].clone();
    setup.backup(&user).await;
    let before = extras(&sim, &user.id).await;
    assert!(before.keys().any(|k| k.0 == "todoTask"), "{before:?}");

    let applied = sim
        .mutate(
            json!({"seed": 9, "count": 6, "resource": user.id, "ops": ["delete"],
                       "kinds": ["todoTask", "messageRule"]}),
        )
        .await;
    assert!(!applied.is_empty());
    sim.mutate(
        json!({"seed": 9, "count": 1, "resource": user.id, "ops": ["modify"],
                      "kinds": ["mailboxSettings"]}),
    )
    .await;
    assert_ne!(extras(&sim, &user.id).await, before);

    let sel = Selection::new(&user.name);
    let r = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert!(r.restored > 0, "{r:#?}");
    assert_eq!(extras(&sim, &user.id).await, before);

    // A rerun finds everything in place.
    let again = setup
        .restore(&sel, RestoreTarget::Original, Collision::Skip)
        .await;
    assert_eq!(again.restored, 0, "{again:#?}");
    assert_eq!(extras(&sim, &user.id).await, before);
}
