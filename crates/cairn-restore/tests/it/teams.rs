//! Teams restores through migration mode, against the simulator: a team backed up, messages
//! soft-deleted as people delete them, restored, then read back through Graph and compared
//! with what the backup holds.

use cairn_backup::{BackupOptions, Engine, Silent, Target};
use cairn_catalog::{Catalog, ItemRow, ResourceKind};
use cairn_graph::GraphClient;
use cairn_restore::{
    Collision, Done, RestoreOptions, RestoreReport, RestoreTarget, Restorer, Selection,
};
use cairn_sim::TenantSpec;
use cairn_testkit::{SimTenant, Workspace};
use futures::StreamExt;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

fn spec(seed: u64) -> TenantSpec {
    TenantSpec {
        seed,
        users: 4,
        groups: 1,
        sites: 0,
        mail_per_mailbox: 2,
        events_per_mailbox: 1,
        contacts_per_mailbox: 1,
        files_per_drive: 2,
        items_per_list: 1,
        max_item_size: 32 * 1024,
        ..TenantSpec::default()
    }
}

struct Team {
    sim: SimTenant,
    ws: Workspace,
    graph: Arc<GraphClient>,
    target: Target,
}

impl Team {
    /// A tenant whose first group is a team, backed up once.
    async fn backed_up(seed: u64) -> Team {
        let sim = SimTenant::start(spec(seed)).await;
        let ws = Workspace::new();
        let graph = sim.graph();
        let engine = Arc::new(Engine::new(
            graph.clone(),
            ws.repo.clone(),
            ws.catalog.clone(),
            "contoso",
            BackupOptions::new(ws.spool_dir()),
            Arc::new(Silent),
        ));
        let groups = engine.groups(&[]).await.unwrap();
        let mut target = None;
        for g in groups {
            if graph.get(&format!("/teams/{}", g.id)).await.is_ok() {
                target = Some(g);
                break;
            }
        }
        let target = target.expect("a team");
        let r = engine.run(vec![target.clone()]).await;
        for res in &r.resources {
            assert!(res.ok(), "{}: {:?}", res.resource, res.error);
        }
        Team {
            sim,
            ws,
            graph,
            target,
        }
    }

    fn rows(&self, prefix: &str) -> Vec<ItemRow> {
        let res = self
            .ws
            .catalog
            .resource("contoso", ResourceKind::Group, &self.target.name)
            .unwrap();
        let mut out = Vec::new();
        self.ws
            .catalog
            .for_each_at(res.id, 1, prefix, &mut |r| {
                out.push(r);
                true
            })
            .unwrap();
        out
    }

    /// What the restore point holds at `path`.
    fn read(&self, path: &str) -> Vec<u8> {
        let res = self
            .ws
            .catalog
            .resource("contoso", ResourceKind::Group, &self.target.name)
            .unwrap();
        let point = self.ws.catalog.points(res.id).unwrap()[0].clone();
        let reader = self.ws.repo.open_snapshot(&point.snapshot).unwrap();
        let mut out = Vec::new();
        reader.read(path, &mut out).unwrap();
        out
    }

    async fn restore(&self, paths: &[String], target: RestoreTarget, beta: bool) -> RestoreReport {
        let r = Restorer::new(
            "contoso",
            self.graph.clone(),
            self.ws.repo.clone(),
            self.ws.catalog.clone(),
        )
        .with_beta(beta)
        .run(
            &Selection {
                paths: paths.to_vec(),
                ..Selection::new(&self.target.name)
            },
            &RestoreOptions {
                target,
                collision: Collision::Skip,
                ..RestoreOptions::default()
            },
        )
        .await
        .unwrap();
        assert!(r.ok(), "failed: {:#?}", r.failed);
        r
    }

    /// The team's teams manifest (`/_sim/manifest?resource=…&teams=true`).
    async fn manifest(&self) -> Vec<Value> {
        let url = format!("{}/_sim/manifest", self.sim.url());
        let v: Value = reqwest::Client::new()
            .get(url)
            .query(&[("resource", self.target.id.as_str()), ("teams", "true")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    /// Every message of a channel as Graph serves it now: roots with `replies`.
    async fn channel(&self, channel: &str) -> Vec<Value> {
        let mut s = Box::pin(self.graph.items(&format!(
            "/teams/{}/channels/{}/messages?$expand=replies&$top=50",
            self.target.id,
            enc(channel)
        )));
        let mut out = Vec::new();
        while let Some(m) = s.next().await {
            out.push(m.unwrap());
        }
        out
    }

    async fn channel_id(&self, name: &str) -> String {
        let v = self
            .graph
            .get(&format!("/teams/{}/channels", self.target.id))
            .await
            .unwrap();
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["displayName"] == name)
            .unwrap_or_else(|| panic!("no channel {name}: {v}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// A body's text: tags dropped, whitespace squeezed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut tag = false;
    for c in html.chars() {
        match c {
            '<' => tag = true,
            '>' => tag = false,
            c if !tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn restorable(m: &Value) -> bool {
    m["messageType"] == "message"
        && !m["attachments"].as_array().into_iter().flatten().any(|a| {
            a["contentType"]
                .as_str()
                .is_some_and(|c| c.starts_with("application/vnd.microsoft.card."))
        })
}

/// (created, author) of a message.
fn key(m: &Value) -> (String, String) {
    (
        m["createdDateTime"].as_str().unwrap_or("").to_string(),
        m["from"]["user"]["id"].as_str().unwrap_or("").to_string(),
    )
}

fn live(m: &&Value) -> bool {
    m["deletedDateTime"].is_null()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_channel_thread_comes_back_through_migration_mode_with_its_authors_and_times() {
    let team = Team::backed_up(41).await;
    let messages = team.rows("teams/");
    assert!(
        messages.iter().any(|r| r.kind == "chatMessage"),
        "the backup holds channel messages"
    );
    // People delete messages; the thread of a deleted one is restored into a new channel.
    let applied = team
        .sim
        .mutate(json!({"seed": 5, "count": 8, "resource": team.target.id,
                       "kinds": ["chatMessage"], "ops": ["delete"]}))
        .await;
    // A thread with a reply and an inline image if one was deleted, else any.
    let thread_dirs: Vec<(String, String, String)> = applied
        .iter()
        .filter_map(|a| {
            let (c, t) = (a["channel"].as_str()?, a["thread"].as_str()?);
            let root = messages
                .iter()
                .find(|r| r.kind == "chatMessage" && r.item == format!("{c}/{t}"))?;
            let dir = root.path.rsplit_once('/')?.0.to_string();
            Some((dir, c.to_string(), a["id"].as_str()?.to_string()))
        })
        .collect();
    assert!(!thread_dirs.is_empty(), "{applied:#?}");
    let score = |dir: &str| {
        let rows: Vec<&ItemRow> = messages
            .iter()
            .filter(|r| r.path.starts_with(&format!("{dir}/")))
            .collect();
        let ok = rows
            .iter()
            .filter(|r| r.kind == "chatMessage")
            .all(|r| restorable(&serde_json::from_slice(&team.read(&r.path)).unwrap()));
        (
            ok,
            rows.iter().any(|r| r.kind == "hostedContent"),
            rows.len(),
        )
    };
    let (dir, _channel, _) = thread_dirs
        .iter()
        .max_by_key(|(d, _, _)| score(d))
        .unwrap()
        .clone();
    let backed: Vec<&ItemRow> = messages
        .iter()
        .filter(|r| r.path.starts_with(&format!("{dir}/")))
        .collect();
    let docs: Vec<Value> = backed
        .iter()
        .filter(|r| r.kind == "chatMessage")
        .map(|r| serde_json::from_slice(&team.read(&r.path)).unwrap())
        .collect();
    let root_key = key(docs.iter().find(|m| m["replyToId"].is_null()).unwrap());

    let r = team
        .restore(
            std::slice::from_ref(&dir),
            RestoreTarget::Folder(Some("Recovered thread".into())),
            false,
        )
        .await;
    let want = docs.iter().filter(|m| restorable(m)).count();
    let created = r.restored as usize - backed.iter().filter(|r| r.kind == "hostedContent").count();
    assert_eq!(created, want, "{r:#?}");

    // Read back through Graph: authors, times, bodies, threads, images.
    let cid = team.channel_id("Recovered thread").await;
    let now = team.channel(&cid).await;
    // By (created, author): the message now, and its root's key for a reply.
    type Key = (String, String);
    let mut got: BTreeMap<Key, (Value, Option<Key>)> = BTreeMap::new();
    for root in &now {
        got.insert(key(root), (root.clone(), None));
        for reply in root["replies"].as_array().into_iter().flatten() {
            got.insert(key(reply), (reply.clone(), Some(key(root))));
        }
    }
    for m in docs.iter().filter(|m| restorable(m)) {
        let (back, parent) = got
            .get(&key(m))
            .unwrap_or_else(|| panic!("{:?} not restored: {got:#?}", key(m)));
        assert_eq!(back["from"]["user"]["id"], m["from"]["user"]["id"]);
        assert_eq!(back["createdDateTime"], m["createdDateTime"]);
        assert_eq!(
            text(back["body"]["content"].as_str().unwrap()),
            text(m["body"]["content"].as_str().unwrap())
        );
        if m["replyToId"].is_null() {
            assert!(parent.is_none(), "a root stays a root");
        } else {
            assert_eq!(parent.as_ref(), Some(&root_key), "a reply under its root");
        }
        // Inline images: the same bytes.
        let mid = m["id"].as_str().unwrap();
        let mut want_imgs: Vec<String> = backed
            .iter()
            .filter(|r| r.kind == "hostedContent" && r.item.split('/').nth(1) == Some(mid))
            .map(|r| sha(&team.read(&r.path)))
            .collect();
        let base = match parent {
            None => format!(
                "/teams/{}/channels/{}/messages/{}",
                team.target.id,
                enc(&cid),
                back["id"].as_str().unwrap()
            ),
            Some(_) => format!(
                "/teams/{}/channels/{}/messages/{}/replies/{}",
                team.target.id,
                enc(&cid),
                back["replyToId"].as_str().unwrap(),
                back["id"].as_str().unwrap()
            ),
        };
        let hosted = team
            .graph
            .get(&format!("{base}/hostedContents"))
            .await
            .unwrap();
        let mut got_imgs = Vec::new();
        for h in hosted["value"].as_array().into_iter().flatten() {
            let b = team
                .graph
                .get_bytes(&format!(
                    "{base}/hostedContents/{}/$value",
                    enc(h["id"].as_str().unwrap())
                ))
                .await
                .unwrap();
            got_imgs.push(sha(&b));
        }
        want_imgs.sort();
        got_imgs.sort();
        assert_eq!(got_imgs, want_imgs, "inline images of {mid}");
    }
    let manifest = team.manifest().await;
    let ch = manifest
        .iter()
        .find(|e| e["kind"] == "channel" && e["id"] == cid.as_str())
        .unwrap_or_else(|| panic!("{manifest:#?}"));
    assert_eq!(ch["migrationMode"], "completed");

    // One deleted reply, restored into its own thread with beta: only it comes back.
    let mut seed = 11;
    let reply = loop {
        let found = applied_replies(&team, &messages).await;
        if let Some(x) = found {
            break x;
        }
        team.sim
            .mutate(json!({"seed": seed, "count": 6, "resource": team.target.id,
                           "kinds": ["chatMessage"], "ops": ["delete"]}))
            .await;
        seed += 1;
        assert!(seed < 30, "no deleted reply with a live root");
    };
    let (row, channel_id, root_id) = reply;
    let before = team.channel(&channel_id).await;
    let live_before: usize = before
        .iter()
        .map(|r| {
            r["replies"]
                .as_array()
                .map(|a| a.iter().filter(live).count())
                .unwrap_or(0)
        })
        .sum();
    let r = team
        .restore(
            std::slice::from_ref(&row.path),
            RestoreTarget::Original,
            true,
        )
        .await;
    assert_eq!(r.restored, 1, "{r:#?}");
    let after = team.channel(&channel_id).await;
    assert_eq!(after.len(), before.len(), "no new root post");
    let live_after: usize = after
        .iter()
        .map(|r| {
            r["replies"]
                .as_array()
                .map(|a| a.iter().filter(live).count())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(live_after, live_before + 1);
    let doc: Value = serde_json::from_slice(&team.read(&row.path)).unwrap();
    let root = after.iter().find(|m| m["id"] == root_id.as_str()).unwrap();
    assert!(
        root["replies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(live)
            .any(|m| key(m) == key(&doc)),
        "the reply is back in its thread"
    );
    let manifest = team.manifest().await;
    let ch = manifest
        .iter()
        .find(|e| e["kind"] == "channel" && e["id"] == channel_id.as_str())
        .unwrap_or_else(|| panic!("{manifest:#?}"));
    assert_eq!(ch["migrationMode"], "completed");
}

/// A backed-up reply that is deleted now while its root is not: (its row, channel, root).
async fn applied_replies(team: &Team, rows: &[ItemRow]) -> Option<(ItemRow, String, String)> {
    for row in rows.iter().filter(|r| r.kind == "chatMessage") {
        let doc: Value = serde_json::from_slice(&team.read(&row.path)).ok()?;
        let Some(root) = doc["replyToId"].as_str() else {
            continue;
        };
        if !restorable(&doc) {
            continue;
        }
        let cid = doc["channelIdentity"]["channelId"].as_str()?.to_string();
        let base = format!(
            "/teams/{}/channels/{}/messages/{root}",
            team.target.id,
            enc(&cid)
        );
        let Ok(now) = team.graph.get(&base).await else {
            continue;
        };
        if !now["deletedDateTime"].is_null() {
            continue;
        }
        let mut gone = false;
        let mut s = Box::pin(team.graph.items(&format!("{base}/replies?$top=50")));
        while let Some(m) = s.next().await {
            let m = m.unwrap();
            gone |= m["id"] == doc["id"] && !m["deletedDateTime"].is_null();
        }
        if gone {
            return Some((row.clone(), cid, root.to_string()));
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unrestorable_teams_messages_are_reported_skipped_with_why() {
    let team = Team::backed_up(43).await;
    // General starts with a system event and an announcement.
    let general = team
        .rows("teams/General/")
        .into_iter()
        .filter(|r| r.kind == "chatMessage")
        .count();
    assert!(general > 0);
    let r = team
        .restore(
            &["teams/General".to_string()],
            RestoreTarget::Folder(Some("General copy".into())),
            false,
        )
        .await;
    let skipped: Vec<_> = r
        .skipped
        .iter()
        .filter(|o| o.kind == "chatMessage" && o.done == Done::Skipped)
        .collect();
    assert!(
        skipped.iter().any(|o| o.detail.contains("system event")),
        "{r:#?}"
    );
    assert!(
        skipped.iter().any(|o| o.detail.contains("announcement")),
        "{r:#?}"
    );
    assert!(r.restored > 0, "{r:#?}");
    // Without beta, `original` goes into a new channel and the report says why.
    let again = team
        .restore(
            &["teams/General".to_string()],
            RestoreTarget::Original,
            false,
        )
        .await;
    assert!(
        again.notes.iter().any(|n| n.contains("beta")),
        "{:#?}",
        again.notes
    );
}
