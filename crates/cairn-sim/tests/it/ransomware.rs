//! The ransomware attack the simulator plays (`"ops": ["encrypt"]`), as a backup tool meets
//! it through Graph: a share of one user's files renamed and turned to noise, ransom notes in
//! the folders it went through, other users untouched, and the manifest agreeing.

use crate::harness::{Sim, TempDir, config, sha256_hex, small_spec, start};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const EXT: &str = ".locked";
const NOTE: &str = "README_RESTORE_FILES.txt";
/// What the attack adds to each file it encrypts.
const FOOTER: usize = 256;

/// Shannon entropy of the bytes, bits per byte (8 for uniformly random data).
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for b in data {
        counts[*b as usize] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Users as (id, userPrincipalName), in directory order.
async fn users(sim: &Sim) -> Vec<(String, String)> {
    let (users, _) = sim
        .walk("/users?$select=id,userPrincipalName", &[])
        .await
        .expect("user listing");
    users
        .iter()
        .map(|u| {
            (
                u["id"].as_str().expect("id").to_string(),
                u["userPrincipalName"].as_str().expect("upn").to_string(),
            )
        })
        .collect()
}

/// A drive item as delta reports it, with its content when it is a file.
#[derive(Clone, Debug)]
struct Item {
    json: Value,
    content: Option<Vec<u8>>,
}

impl Item {
    fn name(&self) -> &str {
        self.json["name"].as_str().expect("name")
    }
    fn parent(&self) -> Option<&str> {
        self.json["parentReference"]["id"].as_str()
    }
}

/// Walks a drive delta (full from `root/delta`, or incremental from a deltaLink) and downloads
/// every file it reports. Returns the items by id and the next deltaLink.
async fn drive_delta(sim: &Sim, url: &str) -> (BTreeMap<String, Item>, String) {
    let (items, link) = sim.walk(url, &[]).await.expect("drive delta");
    let mut out = BTreeMap::new();
    for it in items {
        let id = it["id"].as_str().expect("id").to_string();
        let content = if it.get("file").is_some() && it.get("deleted").is_none() {
            let drive = it["parentReference"]["driveId"].as_str().expect("driveId");
            let (status, body, _) = sim
                .bytes(&format!("/drives/{drive}/items/{id}/content"), None)
                .await;
            assert_eq!(status, 200, "content of {id}");
            Some(body)
        } else {
            None
        };
        out.insert(id, Item { json: it, content });
    }
    (out, link.expect("a deltaLink at the end"))
}

/// The manifest's files of a resource: id → (path, sha256).
async fn manifest_files(sim: &Sim, resource: &str) -> BTreeMap<String, (String, String)> {
    sim.manifest(resource)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "file")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                (
                    e["path"].as_str().unwrap().to_string(),
                    e["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

fn ops_of(resp: &Value, op: &str, kind: &str) -> usize {
    resp["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .filter(|a| a["op"] == op && a["kind"] == kind)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_renames_and_scrambles_a_share_of_one_users_files() {
    let sim = start(config(small_spec(31))).await;
    let users = users(&sim).await;
    let (victim, victim_upn) = users[0].clone();
    let mut others = BTreeMap::new();
    for (id, _) in &users[1..] {
        others.insert(id.clone(), sim.manifest(id).await);
    }
    let victim_mail: Vec<Value> = sim
        .manifest(&victim)
        .await
        .into_iter()
        .filter(|e| e["kind"] != "file")
        .collect();

    let (before, link) = drive_delta(&sim, &format!("/users/{victim}/drive/root/delta")).await;
    let files_before: BTreeMap<&String, &Item> =
        before.iter().filter(|(_, i)| i.content.is_some()).collect();
    assert!(files_before.len() >= 10, "{} files", files_before.len());
    let root = before
        .iter()
        .find(|(_, i)| i.json.get("root").is_some())
        .map(|(id, _)| id.clone())
        .expect("the root");

    // Aimed by UPN, half the files.
    let resp = sim
        .mutate(json!({"seed": 4, "ops": ["encrypt"], "resource": victim_upn, "share": 0.5}))
        .await;
    assert_eq!(resp["resource"], victim.as_str(), "{resp}");
    let want = (files_before.len() as f64 * 0.5).round() as usize;
    assert_eq!(ops_of(&resp, "encrypt", "file"), want, "{resp}");
    assert_eq!(
        ops_of(&resp, "delete", "message"),
        0,
        "no mail deleted by default"
    );

    // The incremental delta reports each encrypted file as a change of the same item: renamed,
    // new content, new eTag, cTag and hash.
    let (changed, _) = drive_delta(&sim, &link).await;
    let mut encrypted = BTreeMap::new();
    for (id, now) in &changed {
        let Some(was) = files_before.get(id) else {
            continue;
        };
        if now.name() == was.name() {
            continue;
        }
        assert_eq!(now.name(), format!("{}{EXT}", was.name()), "renamed {id}");
        assert_eq!(now.parent(), was.parent(), "{id} stays in its folder");
        for tag in ["eTag", "cTag"] {
            assert_ne!(now.json[tag], was.json[tag], "{tag} of {id}");
        }
        if let (Some(a), Some(b)) = (
            now.json["file"]["hashes"]["quickXorHash"].as_str(),
            was.json["file"]["hashes"]["quickXorHash"].as_str(),
        ) {
            assert_ne!(a, b, "quickXorHash of {id}");
        }
        assert_ne!(
            now.json["lastModifiedDateTime"], was.json["lastModifiedDateTime"],
            "{id} modified now"
        );
        let (old, new) = (was.content.as_ref().unwrap(), now.content.as_ref().unwrap());
        assert_ne!(old, new, "content of {id}");
        assert_eq!(new.len(), old.len() + FOOTER, "size of {id}");
        assert_eq!(now.json["size"], new.len(), "size property of {id}");
        if new.len() >= 16 * 1024 {
            let e = entropy(new);
            assert!(e > 7.5, "{id} looks encrypted: {e} bits/byte");
            assert!(
                entropy(old) < e,
                "{id} was less random before: {}",
                entropy(old)
            );
        }
        encrypted.insert(id.clone(), now.clone());
    }
    assert_eq!(encrypted.len(), want, "encrypted files in delta");
    assert!(
        encrypted
            .values()
            .any(|i| i.content.as_ref().unwrap().len() >= 16 * 1024),
        "some encrypted file is large enough to measure"
    );

    // A ransom note in the root and in every folder that had an encrypted file.
    let (after, _) = drive_delta(&sim, &format!("/users/{victim}/drive/root/delta")).await;
    let notes: BTreeMap<&str, &Item> = after
        .values()
        .filter(|i| i.name() == NOTE)
        .map(|i| (i.parent().expect("a note has a folder"), i))
        .collect();
    let mut folders: BTreeSet<&str> = encrypted.values().filter_map(Item::parent).collect();
    folders.insert(&root);
    assert_eq!(notes.keys().copied().collect::<BTreeSet<_>>(), folders);
    assert_eq!(
        after.values().filter(|i| i.name() == NOTE).count(),
        folders.len(),
        "one note per folder"
    );
    for note in notes.values() {
        let text = String::from_utf8(note.content.clone().unwrap()).expect("a text note");
        assert!(text.contains("ENCRYPTED") && text.contains(EXT), "{text}");
        assert_eq!(note.json["file"]["mimeType"], "text/plain");
    }

    // The other files are as they were.
    for (id, was) in &files_before {
        if encrypted.contains_key(*id) {
            continue;
        }
        let now = &after[*id];
        assert_eq!(now.name(), was.name(), "{id} untouched");
        assert_eq!(now.content, was.content, "{id} untouched");
    }

    // The manifest is what a client sees: every file once, same content.
    let manifest = manifest_files(&sim, &victim).await;
    let seen: BTreeMap<String, String> = after
        .iter()
        .filter_map(|(id, i)| Some((id.clone(), sha256_hex(i.content.as_ref()?))))
        .collect();
    let listed: BTreeMap<String, String> = manifest
        .iter()
        .map(|(id, (_, sha))| (id.clone(), sha.clone()))
        .collect();
    assert_eq!(listed, seen);
    for (id, i) in &encrypted {
        assert!(manifest[id].0.ends_with(i.name()), "{:?}", manifest[id]);
    }
    let mail_after: Vec<Value> = sim
        .manifest(&victim)
        .await
        .into_iter()
        .filter(|e| e["kind"] != "file")
        .collect();
    assert_eq!(
        mail_after, victim_mail,
        "mail untouched without delete_mail"
    );

    // Nobody else was touched.
    for (id, was) in &others {
        assert_eq!(&sim.manifest(id).await, was, "user {id} untouched");
    }

    // Played again, it leaves encrypted files and notes alone and takes from the rest.
    let again = sim
        .mutate(json!({"seed": 5, "ops": ["encrypt"], "resource": victim, "share": 1.0}))
        .await;
    assert_eq!(
        ops_of(&again, "encrypt", "file"),
        files_before.len() - want,
        "{again}"
    );
    let names: Vec<String> = manifest_files(&sim, &victim)
        .await
        .into_values()
        .map(|(path, _)| path)
        .collect();
    assert!(
        names.iter().all(
            |p| (p.ends_with(EXT) && !p.ends_with(&format!("{EXT}{EXT}"))) || p.ends_with(NOTE)
        ),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_is_seeded_journaled_and_deletes_mail() {
    let dir = TempDir::new("encrypt");
    let mut cfg = config(small_spec(32));
    cfg.state_dir = Some(dir.0.clone());
    let sim = start(cfg.clone()).await;
    let body = json!({"seed": 8, "ops": ["encrypt"], "delete_mail": 0.5, "count": 1});

    let all: Vec<String> = users(&sim).await.into_iter().map(|u| u.0).collect();
    let mut messages_before = BTreeMap::new();
    for id in &all {
        let n = sim
            .manifest(id)
            .await
            .iter()
            .filter(|e| e["kind"] == "message")
            .count();
        messages_before.insert(id.clone(), n);
    }
    // Without a resource, the seed picks the user.
    let resp = sim.mutate(body.clone()).await;
    let victim = resp["resource"]
        .as_str()
        .expect("the user attacked")
        .to_string();
    assert!(all.contains(&victim), "{resp}");
    let deleted = ops_of(&resp, "delete", "message");
    let had = messages_before[&victim];
    assert_eq!(deleted, (had as f64 * 0.5).round() as usize, "{resp}");
    let after = sim.manifest(&victim).await;
    let messages = after.iter().filter(|e| e["kind"] == "message").count();
    assert_eq!(messages, had - deleted);
    assert!(ops_of(&resp, "encrypt", "file") >= 1);
    assert!(ops_of(&resp, "create", "file") >= 1, "ransom notes");

    // The same seed on the same tenant plays the same attack.
    let twin = start(config(small_spec(32))).await;
    let resp2 = twin.mutate(body).await;
    assert_eq!(resp2["applied"], resp["applied"]);
    assert_eq!(resp2["resource"], resp["resource"]);
    assert_eq!(twin.manifest(&victim).await, after);

    // Journaled: a restart on the same state serves the attacked tenant.
    sim.server.stop().await;
    let sim = start(cfg).await;
    assert_eq!(sim.manifest(&victim).await, after);
    let (items, _) = sim
        .walk(&format!("/users/{victim}/drive/root/delta"), &[])
        .await
        .expect("drive delta");
    let locked = items
        .iter()
        .filter(|i| i["name"].as_str().is_some_and(|n| n.ends_with(EXT)))
        .count();
    assert_eq!(locked, ops_of(&resp, "encrypt", "file"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_takes_its_own_extension_and_note() {
    let sim = start(config(small_spec(33))).await;
    let (victim, _) = users(&sim).await.swap_remove(1);
    let resp = sim
        .mutate(
            json!({"ops": ["encrypt"], "resource": victim, "share": 0.01,
            "extension": ".crypt", "note": "HOW_TO_DECRYPT.html"}),
        )
        .await;
    // A tiny share still encrypts one file.
    assert_eq!(ops_of(&resp, "encrypt", "file"), 1, "{resp}");
    let files = manifest_files(&sim, &victim).await;
    let paths: Vec<&str> = files.values().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths.iter().filter(|p| p.ends_with(".crypt")).count(), 1);
    assert!(paths.contains(&"OneDrive/HOW_TO_DECRYPT.html"), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with(NOTE)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_refuses_what_it_cannot_play() {
    let sim = start(config(small_spec(34))).await;
    let (user, _) = users(&sim).await.swap_remove(0);
    let group = sim.get_ok("/groups?$select=id").await["value"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (body, says) in [
        (
            json!({"count": 3, "ops": ["encrypt", "delete"]}),
            "cannot be mixed",
        ),
        (json!({"ops": ["encrypt"], "share": 0}), "share"),
        (json!({"ops": ["encrypt"], "share": 1.5}), "share"),
        (
            json!({"ops": ["encrypt"], "delete_mail": -1}),
            "delete_mail",
        ),
        (json!({"ops": ["encrypt"], "extension": "/x"}), "extension"),
        (json!({"ops": ["encrypt"], "extension": ""}), "extension"),
        (json!({"ops": ["encrypt"], "note": "a:b.txt"}), "note"),
        (json!({"ops": ["encrypt"], "resource": group}), "user"),
        (
            json!({"count": 3, "ops": ["delete"], "share": 0.5}),
            "only apply to the op 'encrypt'",
        ),
        (json!({"ops": ["delete"]}), "count"),
        (json!({"count": 1, "ops": ["explode"]}), "encrypt"),
    ] {
        let (status, v) = sim.mutate_raw(body.clone()).await;
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{body}: {msg}");
    }
    let (status, _) = sim
        .mutate_raw(json!({"ops": ["encrypt"], "resource": "nobody@nowhere"}))
        .await;
    assert_eq!(status, 404);
    // Nothing was changed by the refusals.
    assert!(
        manifest_files(&sim, &user)
            .await
            .values()
            .all(|(p, _)| !p.ends_with(EXT) && !p.ends_with(NOTE))
    );
}
