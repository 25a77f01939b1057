//! To Do tasks, inbox rules and mailbox settings: backed up hash for hash, incrementally.

use crate::{backup_engine, report_ok, spec, users};
use cairn_catalog::Catalog;
use cairn_sim::content::canonical;
use cairn_sim::todo::{
    MAILBOX_SETTINGS_CONTENT_FIELDS, MESSAGE_RULE_CONTENT_FIELDS, TODO_TASK_CONTENT_FIELDS,
};
use cairn_testkit::{SimTenant, Workspace};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;

/// The canonical content of a saved task, rule or settings document, as the manifest hashes it.
pub fn canonical_of(kind: &str, doc: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(doc).unwrap();
    let fields = match kind {
        "todoTask" => TODO_TASK_CONTENT_FIELDS,
        "messageRule" => MESSAGE_RULE_CONTENT_FIELDS,
        _ => MAILBOX_SETTINGS_CONTENT_FIELDS,
    };
    canonical(&v, fields)
}

pub const KINDS: [&str; 3] = ["todoTask", "messageRule", "mailboxSettings"];

type Items = BTreeMap<String, (String, String)>;

/// id → (kind, sha256) of the user's tasks, rules and settings in the simulator.
pub async fn extras_manifest(s: &SimTenant, resource: &str) -> Items {
    // The admin API over plain HTTP/1.0 (no client library among this crate's dependencies).
    let addr = s.url().trim_start_matches("http://").to_string();
    let path = format!("/_sim/manifest?resource={resource}&extras=true");
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
        .filter(|e| KINDS.contains(&e["kind"].as_str().unwrap_or_default()))
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// id → (kind, sha256) of the tasks, rules and settings a restore point holds.
pub fn extras_point(setup: &Workspace, resource: &str, seq: i64) -> Items {
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
            if KINDS.contains(&r.kind.as_str()) {
                rows.push(r);
            }
            true
        })
        .unwrap();
    let reader = setup.repo.open_snapshot(&snap).unwrap();
    rows.into_iter()
        .map(|r| {
            let mut out = Vec::new();
            reader.read(&r.path, &mut out).unwrap();
            let sha = hex::encode(sha2::Sha256::digest(canonical_of(&r.kind, &out)));
            (r.item, (r.kind, sha))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_rules_and_settings_equal_the_manifest_and_incrementals_follow_changes() {
    let sim = SimTenant::start(spec(52, 3)).await;
    let setup = Workspace::new();
    let engine = backup_engine(&setup, sim.graph());
    let user = users(&engine).await[0].clone();
    let first = engine.run(vec![user.clone()]).await;
    report_ok(&first);
    assert!(
        first.resources[0].skipped.is_empty(),
        "{:?}",
        first.resources[0].skipped
    );
    let want1 = extras_manifest(&sim, &user.id).await;
    assert!(want1.values().any(|v| v.0 == "todoTask"), "{want1:?}");
    assert!(want1.values().any(|v| v.0 == "mailboxSettings"));
    assert_eq!(extras_point(&setup, &user.name, 1), want1);

    // Tasks and rules created, changed and deleted; settings changed; a forwarding rule.
    let applied = sim
        .mutate(json!({"seed": 5, "count": 12, "resource": user.id,
                       "kinds": ["todoTask", "messageRule", "mailboxSettings"]}))
        .await;
    assert!(applied.len() >= 10, "{applied:?}");
    sim.mutate(json!({"ops": ["forward-rule"], "resource": user.id, "to": "x@evil.example"}))
        .await;
    let second = engine.run(vec![user.clone()]).await;
    report_ok(&second);
    let want2 = extras_manifest(&sim, &user.id).await;
    assert_ne!(want1, want2);
    assert_eq!(extras_point(&setup, &user.name, 2), want2);
    assert_eq!(extras_point(&setup, &user.name, 1), want1);

    // Nothing changed: the same point again.
    let third = engine.run(vec![user.clone()]).await;
    report_ok(&third);
    assert_eq!(extras_point(&setup, &user.name, 3), want2);

    // Found by title.
    let res = setup
        .catalog
        .resource("contoso", cairn_catalog::ResourceKind::User, &user.name)
        .unwrap()
        .id;
    let mut rows = Vec::new();
    setup
        .catalog
        .for_each_at(res, 3, "todo/", &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.kind == "todoTask" && r.subject.is_some())
    );
}
