//! Microsoft Teams: a team's channels in its group's restore point and a person's chats in
//! theirs, message for message as the simulator's manifest (`teams=true`) has them; an
//! incremental reads only what changed; the catalog rebuilt from the repository gives back
//! the same rows.

use crate::{backup_engine, report_ok, spec, users};
use cairn_catalog::{Catalog, ResourceKind, SqliteCatalog};
use cairn_sim::content::canonical;
use cairn_sim::teams::CHAT_MESSAGE_CONTENT_FIELDS;
use cairn_testkit::{SimTenant, Workspace};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The kinds Teams items are catalogued as.
pub const KINDS: [&str; 6] = [
    "team",
    "teamMembers",
    "channel",
    "chat",
    "chatMessage",
    "hostedContent",
];

/// A message as the manifest describes it: where it is (channel name or chat id), its
/// thread's root (channel messages), its content hash, and its images' hashes.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Message {
    pub path: String,
    pub thread: Option<String>,
    pub sha256: String,
    pub hosted: BTreeMap<String, String>,
}

/// Messages by (channel name or chat id, message id): ids are unique per thread only.
type Messages = BTreeMap<(String, String), Message>;

/// Panics naming the messages that differ (the maps are too large to print whole).
#[track_caller]
pub fn same(got: &Messages, want: &Messages, what: &str) {
    let mut diff = Vec::new();
    for k in got.keys().chain(want.keys()) {
        if got.get(k) != want.get(k) && !diff.contains(&k) {
            diff.push(k);
        }
    }
    assert!(
        diff.is_empty(),
        "{what}: {} of {} messages differ, e.g. {:#?}",
        diff.len(),
        want.len(),
        diff.iter()
            .take(4)
            .map(|k| (k, got.get(k), want.get(k)))
            .collect::<Vec<_>>()
    );
}

/// `GET /_sim/manifest?resource=ID&teams=true`, its `chatMessage` entries by message id.
pub async fn teams_manifest(s: &SimTenant, resource: &str, channels: bool) -> Messages {
    // The admin API over plain HTTP/1.0 (no client library among this crate's dependencies).
    let addr = s.url().trim_start_matches("http://").to_string();
    let path = format!("/_sim/manifest?resource={resource}&teams=true");
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&addr).unwrap();
        write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    let at = body.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let v: Value = serde_json::from_slice(&body[at..]).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "chatMessage")
        .map(|e| {
            let hosted = e["hostedContents"]
                .as_array()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h["id"].as_str().unwrap().to_string(),
                                h["sha256"].as_str().unwrap().to_string(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            (
                (
                    e["path"].as_str().unwrap().to_string(),
                    e["id"].as_str().unwrap().to_string(),
                ),
                Message {
                    path: e["path"].as_str().unwrap().to_string(),
                    thread: channels.then(|| e["thread"].as_str().unwrap().to_string()),
                    sha256: e["sha256"].as_str().unwrap().to_string(),
                    hosted,
                },
            )
        })
        .collect()
}

/// The messages a restore point holds, read back from the repository and described as the
/// manifest describes them.
pub fn teams_point(setup: &Workspace, kind: ResourceKind, resource: &str, seq: i64) -> Messages {
    let res = setup
        .catalog
        .resource("contoso", kind, resource)
        .unwrap()
        .id;
    let snap = setup
        .catalog
        .points(res)
        .unwrap()
        .into_iter()
        .find(|p| p.seq == seq)
        .unwrap()
        .snapshot;
    let top = if kind == ResourceKind::Group {
        "teams/"
    } else {
        "chats/"
    };
    let mut rows = Vec::new();
    setup
        .catalog
        .for_each_at(res, seq, top, &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
    let reader = setup.repo.open_snapshot(&snap).unwrap();
    let read = |path: &str| {
        let mut out = Vec::new();
        reader
            .read(path, &mut out)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        out
    };
    let mut out = Messages::new();
    for r in rows.iter().filter(|r| r.kind == "chatMessage") {
        let (conversation, id) = r.item.split_once('/').unwrap();
        let v: Value = serde_json::from_slice(&read(&r.path)).unwrap();
        assert_eq!(v["id"], json!(id), "{}", r.path);
        assert!(v.get("replies").is_none(), "{}: replies kept apart", r.path);
        let path = if kind == ResourceKind::Group {
            cairn_catalog::component::decode(r.path.split('/').nth(1).unwrap())
        } else {
            conversation.to_string()
        };
        let thread = (kind == ResourceKind::Group)
            .then(|| v["replyToId"].as_str().unwrap_or(id).to_string());
        out.insert(
            (path.clone(), id.to_string()),
            Message {
                path,
                thread,
                sha256: hex::encode(sha2::Sha256::digest(canonical(
                    &v,
                    CHAT_MESSAGE_CONTENT_FIELDS,
                ))),
                hosted: BTreeMap::new(),
            },
        );
    }
    for r in rows.iter().filter(|r| r.kind == "hostedContent") {
        let mut parts = r.item.splitn(3, '/');
        let (conversation, message, hosted) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let path = if kind == ResourceKind::Group {
            cairn_catalog::component::decode(r.path.split('/').nth(1).unwrap())
        } else {
            conversation.to_string()
        };
        let sha = hex::encode(sha2::Sha256::digest(read(&r.path)));
        out.get_mut(&(path, message.to_string()))
            .unwrap_or_else(|| panic!("{}: an image of no message kept", r.path))
            .hosted
            .insert(hosted.to_string(), sha);
    }
    out
}

fn rows_of(c: &dyn Catalog, kind: ResourceKind, resource: &str) -> Vec<Vec<String>> {
    let res = c.resource("contoso", kind, resource).unwrap().id;
    let mut out = Vec::new();
    for p in c.points(res).unwrap() {
        c.for_each_at(res, p.seq, "", &mut |r| {
            if KINDS.contains(&r.kind.as_str()) {
                out.push(vec![
                    p.seq.to_string(),
                    r.path,
                    r.item,
                    r.kind,
                    r.size.to_string(),
                    format!("{:?}", r.subject),
                    format!("{:?}", r.sender),
                    format!("{:?}", r.date),
                    format!("{:?}", r.name),
                ]);
            }
            true
        })
        .unwrap();
    }
    out
}

fn changes(r: &cairn_backup::ResourceReport) -> u64 {
    r.added + r.changed + r.removed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_and_a_user_are_backed_up_message_for_message_and_incrementals_read_only_changes() {
    let mut s = spec(71, 3);
    s.groups = 2;
    let sim = SimTenant::start(s).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let groups = engine.groups(&[]).await.unwrap();
    // Groups with an even index are teams: the first is one.
    let team = groups[0].clone();
    let user = users(&engine).await[0].clone();
    let targets = vec![team.clone(), user.clone()];
    let first = engine.run(targets.clone()).await;
    report_ok(&first);
    for r in &first.resources {
        assert!(r.skipped.is_empty(), "{}: {:?}", r.resource, r.skipped);
    }

    let team1 = teams_manifest(&sim, &team.id, true).await;
    let chats1 = teams_manifest(&sim, &user.id, false).await;
    assert!(!team1.is_empty() && !chats1.is_empty());
    assert!(
        team1
            .iter()
            .any(|((_, id), m)| m.thread.as_deref() != Some(id)),
        "the team's threads have replies"
    );
    assert!(
        team1
            .values()
            .chain(chats1.values())
            .any(|m| !m.hosted.is_empty()),
        "inline images are seeded"
    );
    same(
        &teams_point(&setup, ResourceKind::Group, &team.name, 1),
        &team1,
        "team1",
    );
    same(
        &teams_point(&setup, ResourceKind::User, &user.name, 1),
        &chats1,
        "chats1",
    );

    // A group that is no team: nothing of Teams, and nothing said about it.
    if let Some(other) = groups.get(1) {
        let r = engine.run(vec![other.clone()]).await;
        report_ok(&r);
        assert!(
            r.resources[0].skipped.is_empty(),
            "{:?}",
            r.resources[0].skipped
        );
        let res = setup
            .catalog
            .resource("contoso", ResourceKind::Group, &other.name)
            .unwrap()
            .id;
        let mut teams_rows = 0;
        setup
            .catalog
            .for_each_at(res, 1, "teams/", &mut |_| {
                teams_rows += 1;
                true
            })
            .unwrap();
        assert_eq!(teams_rows, 0);
    }

    // People post, reply, edit and delete, in the team's channels and in the user's chats.
    let ops = json!(["create", "reply", "modify", "delete"]);
    let mut applied = sim
        .mutate(json!({"seed": 7, "count": 8, "resource": team.id,
                       "kinds": ["chatMessage"], "ops": ops}))
        .await;
    let on_team = applied.len() as u64;
    applied.extend(
        sim.mutate(json!({"seed": 8, "count": 6, "resource": user.id,
                           "kinds": ["chatMessage"], "ops": ops}))
            .await,
    );
    let on_user = applied.len() as u64 - on_team;
    assert!(on_team > 0 && on_user > 0, "{applied:?}");
    let second = engine.run(targets.clone()).await;
    report_ok(&second);
    let team2 = teams_manifest(&sim, &team.id, true).await;
    let chats2 = teams_manifest(&sim, &user.id, false).await;
    assert_ne!(team1, team2);
    assert_ne!(chats1, chats2);
    same(
        &teams_point(&setup, ResourceKind::Group, &team.name, 2),
        &team2,
        "team2",
    );
    same(
        &teams_point(&setup, ResourceKind::User, &user.name, 2),
        &chats2,
        "chats2",
    );
    // The earlier points still read as they were (a deleted message is still in them).
    same(
        &teams_point(&setup, ResourceKind::Group, &team.name, 1),
        &team1,
        "team1",
    );
    same(
        &teams_point(&setup, ResourceKind::User, &user.name, 1),
        &chats1,
        "chats1",
    );

    // Only what changed was staged: a new post with a reply and its images are at most a few
    // items per change; an untouched message is not staged again.
    let by_name = |r: &cairn_backup::JobReport, name: &str| {
        r.resources
            .iter()
            .find(|x| x.resource == name)
            .unwrap()
            .clone()
    };
    let (t2, u2) = (by_name(&second, &team.name), by_name(&second, &user.name));
    assert!(
        changes(&t2) >= 1 && changes(&t2) <= on_team * 4,
        "{} changes for {on_team} mutations: {t2:?}",
        changes(&t2)
    );
    assert!(
        changes(&u2) >= 1 && changes(&u2) <= on_user * 3,
        "{} changes for {on_user} mutations: {u2:?}",
        changes(&u2)
    );
    // Fewer requests than the full run (which also listed every channel's old posts).
    assert!(
        second.requests < first.requests,
        "{} requests after {} for the full run",
        second.requests,
        first.requests
    );

    // Nothing new: nothing staged, the same messages.
    let third = engine.run(targets.clone()).await;
    report_ok(&third);
    assert_eq!(changes(&by_name(&third, &team.name)), 0);
    assert_eq!(changes(&by_name(&third, &user.name)), 0);
    same(
        &teams_point(&setup, ResourceKind::Group, &team.name, 3),
        &team2,
        "team2",
    );
    same(
        &teams_point(&setup, ResourceKind::User, &user.name, 3),
        &chats2,
        "chats2",
    );

    // Found by sender and text.
    let res = setup
        .catalog
        .resource("contoso", ResourceKind::Group, &team.name)
        .unwrap()
        .id;
    let mut described = 0;
    setup
        .catalog
        .for_each_at(res, 3, "teams/", &mut |r| {
            if r.kind == "chatMessage" {
                assert!(r.date.is_some() && r.name.is_some(), "{r:?}");
                // System events (members added…) have no sender.
                described += u64::from(r.sender.is_some() && r.subject.is_some());
            }
            true
        })
        .unwrap();
    assert!(described > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_catalog_gives_back_the_same_teams_rows_and_backups_carry_on() {
    let mut s = spec(73, 2);
    s.groups = 1;
    let sim = SimTenant::start(s).await;
    let mut setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let team = engine.groups(&[]).await.unwrap()[0].clone();
    let user = users(&engine).await[0].clone();
    let targets = vec![team.clone(), user.clone()];
    report_ok(&engine.run(targets.clone()).await);
    for resource in [&team.id, &user.id] {
        sim.mutate(json!({"seed": 9, "count": 6, "resource": resource,
                           "kinds": ["chatMessage"], "ops": ["create", "reply", "modify", "delete"]}))
            .await;
    }
    report_ok(&engine.run(targets.clone()).await);
    let team_rows = rows_of(setup.catalog.as_ref(), ResourceKind::Group, &team.name);
    let user_rows = rows_of(setup.catalog.as_ref(), ResourceKind::User, &user.name);
    assert!(
        team_rows.iter().any(|r| r[3] == "hostedContent")
            || user_rows.iter().any(|r| r[3] == "hostedContent")
    );

    drop(engine);
    setup.catalog = Arc::new(SqliteCatalog::open(&setup.path().join("rebuilt.db")).unwrap());
    let (repo, cat) = (setup.repo.clone(), setup.catalog.clone());
    let report = tokio::task::spawn_blocking(move || {
        cairn_backup::rebuild(&repo, cat.as_ref(), Some("contoso"), &cairn_backup::Silent)
    })
    .await
    .unwrap()
    .unwrap();
    for r in &report.resources {
        assert_eq!(r.error, None, "{}", r.resource);
        assert!(r.skipped.is_empty(), "{}: {:?}", r.resource, r.skipped);
    }
    assert_eq!(
        rows_of(setup.catalog.as_ref(), ResourceKind::Group, &team.name),
        team_rows
    );
    assert_eq!(
        rows_of(setup.catalog.as_ref(), ResourceKind::User, &user.name),
        user_rows
    );

    // The next backup works from the rebuilt catalog: the same messages, each once, in its
    // real collection.
    let engine = backup_engine(&setup, sim.graph());
    report_ok(&engine.run(targets.clone()).await);
    same(
        &teams_point(&setup, ResourceKind::Group, &team.name, 3),
        &teams_manifest(&sim, &team.id, true).await,
        "the team after the rebuild",
    );
    same(
        &teams_point(&setup, ResourceKind::User, &user.name, 3),
        &teams_manifest(&sim, &user.id, false).await,
        "the chats after the rebuild",
    );
    for (kind, name) in [
        (ResourceKind::Group, &team.name),
        (ResourceKind::User, &user.name),
    ] {
        let res = setup.catalog.resource("contoso", kind, name).unwrap().id;
        setup
            .catalog
            .for_each_at(res, 3, "", &mut |r| {
                assert!(!r.scope.ends_with("(rebuilt)"), "{} {}", r.path, r.scope);
                true
            })
            .unwrap();
    }
}
