//! Walking a whole resource through Graph yields exactly the simulator's manifest: every item
//! once, content hash-equal; also under faults, after mutations and across a 410 resync.

use crate::harness::{Outcome, Sim, config, sha256_hex, small_spec, start};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const IMMUTABLE: (&str, &str) = ("Prefer", "IdType=\"ImmutableId\"");

/// What a client sees of one resource: id → (kind, sha256).
type Seen = BTreeMap<String, (String, String)>;

/// Delta state a client keeps: collection path → deltaLink.
type Links = BTreeMap<String, String>;

async fn folders(sim: &Sim, user: &str) -> Vec<Value> {
    let (mut f, _) = sim
        .walk(&format!("/users/{user}/mailFolders/delta"), &[IMMUTABLE])
        .await
        .expect("folder delta");
    // Recoverable Items is outside the folder root: reached by its well-known name.
    f.push(
        sim.get_ok(&format!(
            "/users/{user}/mailFolders/recoverableitemsdeletions"
        ))
        .await,
    );
    f.retain(|x| x["@odata.type"] != "#microsoft.graph.mailSearchFolder");
    f
}

/// Applies one delta walk (full or incremental) of a collection to `seen`.
async fn apply_delta(
    sim: &Sim,
    seen: &mut Seen,
    links: &mut Links,
    key: &str,
    start_url: &str,
    kind: &str,
    content: impl AsyncFn(&Value) -> Option<String>,
) {
    let url = links
        .get(key)
        .cloned()
        .unwrap_or_else(|| start_url.to_string());
    let (items, delta) = match sim.walk(&url, &[IMMUTABLE]).await {
        Ok(x) => x,
        Err(410) => {
            // Resync: drop what this collection held and enumerate afresh.
            seen.retain(|_, (k, _)| !k.starts_with(&format!("{kind}@{key}")));
            links.remove(key);
            sim.walk(start_url, &[IMMUTABLE])
                .await
                .expect("fresh enumeration")
        }
        Err(s) => panic!("delta {url}: {s}"),
    };
    for it in items {
        let id = it["id"].as_str().expect("id").to_string();
        if it.get("@removed").is_some() || it.get("deleted").is_some() {
            seen.remove(&id);
            continue;
        }
        if it.get("folder").is_some() || it.get("root").is_some() {
            continue;
        }
        if let Some(sha) = content(&it).await {
            seen.insert(id, (format!("{kind}@{key}"), sha));
        }
    }
    links.insert(key.to_string(), delta.expect("delta link at the end"));
}

/// Backs up (in memory) the mail and OneDrive of a user through delta queries.
async fn sync_user(sim: &Sim, user: &str, seen: &mut Seen, links: &mut Links) {
    let folder_list = folders(sim, user).await;
    let folder_ids: Vec<String> = folder_list
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    // Forget items of folders that disappeared.
    for fid in folder_ids {
        let start = format!("/users/{user}/mailFolders/{fid}/messages/delta?$select=id,subject");
        let fetch = async |it: &Value| -> Option<String> {
            let id = it["id"].as_str()?;
            let (status, body, _) = sim
                .bytes(&format!("/users/{user}/messages/{id}/$value"), None)
                .await;
            assert_eq!(status, 200, "$value of {id}");
            Some(sha256_hex(&body))
        };
        apply_delta(sim, seen, links, &fid, &start, "message", fetch).await;
    }
    let drive = format!("/users/{user}/drive/root/delta");
    let fetch = async |it: &Value| -> Option<String> {
        let id = it["id"].as_str()?;
        let drive_id = it["parentReference"]["driveId"].as_str()?;
        let (status, body, _) = sim
            .bytes(&format!("/drives/{drive_id}/items/{id}/content"), None)
            .await;
        assert_eq!(status, 200, "content of {id}");
        Some(sha256_hex(&body))
    };
    apply_delta(sim, seen, links, "drive", &drive, "file", fetch).await;
}

async fn expected(sim: &Sim, user: &str) -> Seen {
    sim.manifest(user)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "message" || e["kind"] == "file")
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

fn strip(seen: &Seen) -> BTreeMap<String, String> {
    seen.iter()
        .map(|(k, (_, s))| (k.clone(), s.clone()))
        .collect()
}

fn strip_expected(e: &Seen) -> BTreeMap<String, String> {
    strip(e)
}

async fn first_user(sim: &Sim) -> String {
    let users = sim.get_ok("/users?$select=id,mail").await;
    users["value"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_walk_equals_manifest() {
    let sim = start(config(small_spec(11))).await;
    let user = first_user(&sim).await;
    let mut seen = Seen::new();
    let mut links = Links::new();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let want = expected(&sim, &user).await;
    assert!(
        want.len() > 40,
        "the manifest has mail and files: {}",
        want.len()
    );
    assert_eq!(strip(&seen), strip_expected(&want));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_after_mutations_equals_manifest() {
    let sim = start(config(small_spec(12))).await;
    let user = first_user(&sim).await;
    let mut seen = Seen::new();
    let mut links = Links::new();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let before = sim.admin("/_sim/stats").await["requests_total"]
        .as_u64()
        .unwrap();
    let applied = sim
        .mutate(json!({"seed": 5, "count": 30, "resource": user, "kinds": ["message", "file"]}))
        .await;
    assert!(applied["applied"].as_array().unwrap().len() >= 25);
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let after = sim.admin("/_sim/stats").await["requests_total"]
        .as_u64()
        .unwrap();
    assert_eq!(strip(&seen), strip_expected(&expected(&sim, &user).await));
    // The incremental costs far fewer requests than the full walk did.
    let full = before;
    assert!(
        after - before < full,
        "incremental {} vs full {}",
        after - before,
        full
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_change_incremental_is_one_request_per_collection() {
    let sim = start(config(small_spec(13))).await;
    let user = first_user(&sim).await;
    let mut seen = Seen::new();
    let mut links = Links::new();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let before = sim.admin("/_sim/stats").await["requests_total"]
        .as_u64()
        .unwrap();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let after = sim.admin("/_sim/stats").await["requests_total"]
        .as_u64()
        .unwrap();
    // One folder delta, one Recoverable Items lookup, one delta per folder, one drive delta.
    let collections = links.len() as u64;
    assert!(
        after - before <= collections + 2,
        "{} requests for {collections} collections",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_what_a_retrying_client_sees() {
    let mut cfg = config(small_spec(14));
    cfg.fault_rate = 0.2;
    let sim = start(cfg).await;
    let user = first_user(&sim).await;
    let mut seen = Seen::new();
    let mut links = Links::new();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    sim.mutate(json!({"seed": 2, "count": 15, "resource": user, "kinds": ["message", "file"]}))
        .await;
    sync_user(&sim, &user, &mut seen, &mut links).await;
    assert_eq!(strip(&seen), strip_expected(&expected(&sim, &user).await));
    let stats = sim.admin("/_sim/stats").await;
    assert!(
        stats["faults_total"].as_u64().unwrap() > 10,
        "faults were injected: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_answer_410_and_resync_recovers() {
    let sim = start(config(small_spec(15))).await;
    let user = first_user(&sim).await;
    let mut seen = Seen::new();
    let mut links = Links::new();
    sync_user(&sim, &user, &mut seen, &mut links).await;
    let link = links.values().next().unwrap().clone();
    sim.http
        .post(format!("{}/_sim/expire-tokens", sim.url()))
        .send()
        .await
        .unwrap();
    match sim.get(&link, &[IMMUTABLE]).await {
        Outcome::Status(410, v) => {
            let code = v["error"]["code"].as_str().unwrap();
            assert!(
                code == "syncStateNotFound" || code == "resyncChangesApplyDifferences",
                "{code}"
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    sim.mutate(json!({"seed": 9, "count": 10, "resource": user, "kinds": ["message", "file"]}))
        .await;
    sync_user(&sim, &user, &mut seen, &mut links).await;
    assert_eq!(strip(&seen), strip_expected(&expected(&sim, &user).await));
}
