//! `cairn export --format html|json` of a team's channel, read back by an independent HTML5
//! parser (Python's `html5lib`) and compared with what the backup holds.

use super::home;
use cairn_backup::{BackupOptions, Engine, Silent};
use cairn_catalog::{Catalog, ItemRow, ResourceKind};
use cairn_sim::TenantSpec;
use cairn_testkit::{SimTenant, Workspace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const PASSWORD: &str = "teams password";

fn state_dir(location: &str) -> PathBuf {
    use sha2::Digest;
    let key = hex::encode(&sha2::Sha256::digest(location.as_bytes())[..8]);
    Path::new("cache/repositories").join(key)
}

/// Every element with `data-message-id`: id → (author, datetime, image sources).
const PARSE: &str = r#"
import html5lib, json, sys
doc = html5lib.parse(open(sys.argv[1], 'rb'), treebuilder='etree', namespaceHTMLElements=False)
out = {}
for sec in doc.iter():
    mid = sec.get('data-message-id')
    if mid is None:
        continue
    author = next((e.text for e in sec.iter('span') if e.get('class') == 'author'), None)
    time = next((e.get('datetime') for e in sec.iter('time')), None)
    imgs = [e.get('src') for e in sec.iter('img')]
    out[mid] = {'author': author, 'time': time, 'imgs': imgs}
json.dump(out, sys.stdout)
"#;

#[test]
fn the_html_export_of_a_channel_is_parsed_by_html5lib_and_holds_every_message() {
    let ws = Workspace::builder()
        .password(PASSWORD)
        .state_dir(state_dir)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let name = rt.block_on(async {
        let sim = SimTenant::start(TenantSpec {
            seed: 61,
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
        })
        .await;
        let graph = sim.graph();
        let engine = Arc::new(Engine::new(
            graph.clone(),
            ws.repo.clone(),
            ws.catalog.clone(),
            "contoso",
            BackupOptions::new(ws.spool_dir()),
            Arc::new(Silent),
        ));
        let mut team = None;
        for g in engine.groups(&[]).await.unwrap() {
            if graph.get(&format!("/teams/{}", g.id)).await.is_ok() {
                team = Some(g);
                break;
            }
        }
        let team = team.expect("a team");
        let r = engine.run(vec![team.clone()]).await;
        assert!(r.resources[0].ok(), "{:?}", r.resources[0].error);
        sim.stop().await;
        team.name
    });
    let res = ws
        .catalog
        .resource("contoso", ResourceKind::Group, &name)
        .unwrap();
    let mut rows: Vec<ItemRow> = Vec::new();
    ws.catalog
        .for_each_at(res.id, 1, "teams/", &mut |r| {
            rows.push(r);
            true
        })
        .unwrap();
    // The channel with the most inline images.
    let mut images: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        let ch = r.path.split('/').nth(1).unwrap().to_string();
        *images.entry(ch).or_default() += usize::from(r.kind == "hostedContent");
    }
    let channel = images.iter().max_by_key(|(_, n)| **n).unwrap().0.clone();
    let prefix = format!("teams/{channel}/");
    let messages: Vec<&ItemRow> = rows
        .iter()
        .filter(|r| r.kind == "chatMessage" && r.path.starts_with(&prefix))
        .collect();
    assert!(!messages.is_empty());
    let with_images: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.kind == "hostedContent" && r.path.starts_with(&prefix))
        .map(|r| r.item.split('/').nth(1).unwrap().to_string())
        .collect();

    let home = home();
    let run = |args: &[&str]| {
        let o = home
            .cmd()
            .env("CAIRN_CONFIG", ws.path().join("config.toml"))
            .env("CAIRN_REPOSITORY", ws.location())
            .env("CAIRN_PASSWORD", PASSWORD)
            .env("CAIRN_CACHE_DIR", ws.cache_dir())
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cairn {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let html = ws.path().join("exports").join("channel.html");
    let json = ws.path().join("exports").join("channel.json");
    let path = format!("teams/{channel}");
    run(&[
        "export",
        &name,
        &path,
        "--format",
        "html",
        "--output",
        html.to_str().unwrap(),
    ]);
    run(&[
        "export",
        &name,
        &path,
        "--format",
        "json",
        "--output",
        json.to_str().unwrap(),
    ]);

    let out = Command::new("python3")
        .args(["-c", PARSE, html.to_str().unwrap()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    for r in &messages {
        let id = r.item.split('/').nth(1).unwrap();
        let got = parsed
            .get(id)
            .unwrap_or_else(|| panic!("message {id} is not in the transcript"));
        let (time, author) = (got["time"].as_str().unwrap_or(""), got["author"].as_str());
        assert!(!time.is_empty(), "{id}: {got}");
        if let Some(sender) = r.sender.as_deref().filter(|s| !s.is_empty()) {
            assert_eq!(author, Some(sender), "{id}");
        }
        if let Some(d) = r.date {
            let t = chrono::DateTime::parse_from_rfc3339(time).unwrap();
            assert_eq!(t.timestamp_millis(), d.timestamp_millis(), "{id}");
        }
        let imgs = got["imgs"].as_array().unwrap();
        assert!(
            imgs.iter()
                .all(|s| s.as_str().unwrap_or("").starts_with("data:image/")),
            "{id}: {imgs:?}"
        );
        if with_images.contains(id) {
            assert!(!imgs.is_empty(), "{id} has its inline image");
        }
    }
    assert_eq!(parsed.len(), messages.len());

    // The JSON export: the same messages, replies under their root.
    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(doc["channel"]["id"].is_string(), "{}", doc["channel"]);
    let mut ids = BTreeSet::new();
    for root in doc["messages"].as_array().unwrap() {
        ids.insert(root["id"].as_str().unwrap().to_string());
        for reply in root["replies"].as_array().unwrap() {
            assert_eq!(reply["replyToId"], root["id"]);
            ids.insert(reply["id"].as_str().unwrap().to_string());
        }
    }
    let want: BTreeSet<String> = messages
        .iter()
        .map(|r| r.item.split('/').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(ids, want);
}
