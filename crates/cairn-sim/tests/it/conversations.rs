//! Group conversations: threads and posts of a group's mailbox, their paging, the manifest's
//! post entries and seeded replies (GRAPH-NOTES §1, §2).

use crate::harness::{Outcome, Sim, config, sha256_hex, small_spec, start};
use base64::Engine;
use cairn_sim::TenantSpec;
use cairn_sim::content::{POST_CONTENT_FIELDS, canonical};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn spec() -> TenantSpec {
    TenantSpec {
        threads_per_group: 5,
        ..small_spec(31)
    }
}

async fn group_id(sim: &Sim) -> String {
    let groups = sim.get_ok("/groups").await;
    groups["value"][0]["id"]
        .as_str()
        .expect("a group")
        .to_string()
}

/// Follows nextLinks by hand with a page size, checking every page respects it.
async fn pages(sim: &Sim, path: &str, headers: &[(&str, &str)], max: usize) -> (Vec<Value>, usize) {
    let mut next = Some(path.to_string());
    let mut out = Vec::new();
    let mut n = 0;
    while let Some(p) = next {
        let page = match sim.get(&p, headers).await {
            Outcome::Ok(v) => v,
            Outcome::Status(s, v) => panic!("{p}: {s} {v}"),
        };
        n += 1;
        let value = page["value"].as_array().expect("value");
        assert!(value.len() <= max, "page of {} > {max}", value.len());
        assert!(
            page.get("@odata.deltaLink").is_none(),
            "a listing, not a delta"
        );
        out.extend(value.iter().cloned());
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        assert!(n < 100, "paging ends");
    }
    (out, n)
}

async fn threads(sim: &Sim, group: &str) -> Vec<Value> {
    sim.walk(&format!("/groups/{group}/threads"), &[])
        .await
        .expect("threads")
        .0
}

async fn posts(sim: &Sim, group: &str, thread: &str) -> Vec<Value> {
    sim.walk(&format!("/groups/{group}/threads/{thread}/posts"), &[])
        .await
        .expect("posts")
        .0
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_and_posts_are_listed_in_pages_oldest_post_first() {
    let sim = start(config(spec())).await;
    let group = group_id(&sim).await;
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let (list, n) = pages(&sim, &format!("/groups/{group}/threads"), &prefer, 2).await;
    assert_eq!(list.len(), 5, "threads_per_group threads");
    assert_eq!(n, 3, "5 threads in pages of 2");
    let (top, _) = pages(&sim, &format!("/groups/{group}/threads?$top=3"), &[], 3).await;
    assert_eq!(top, list, "$top pages the same threads");
    let ids: BTreeSet<&str> = list.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 5, "distinct thread ids");
    for t in &list {
        assert_eq!(
            keys(t),
            BTreeSet::from([
                "id",
                "topic",
                "hasAttachments",
                "lastDeliveredDateTime",
                "uniqueSenders",
                "preview",
                "isLocked"
            ])
        );
        let id = t["id"].as_str().unwrap();
        assert!(id.starts_with("AAQkA"), "Exchange-like thread id {id}");
        assert_eq!(t["isLocked"], false);
        assert!(!t["preview"].as_str().unwrap().is_empty());
        let one = sim.get_ok(&format!("/groups/{group}/threads/{id}")).await;
        assert_eq!(&one, t, "GET by id equals the listed thread");

        let (ps, _) = pages(
            &sim,
            &format!("/groups/{group}/threads/{id}/posts"),
            &[("Prefer", "odata.maxpagesize=1")],
            1,
        )
        .await;
        assert!((1..=4).contains(&ps.len()), "{} posts", ps.len());
        let mut last = String::new();
        let mut senders = Vec::new();
        for p in &ps {
            assert_eq!(
                keys(p),
                BTreeSet::from([
                    "id",
                    "createdDateTime",
                    "lastModifiedDateTime",
                    "changeKey",
                    "categories",
                    "receivedDateTime",
                    "hasAttachments",
                    "body",
                    "from",
                    "sender",
                    "conversationThreadId",
                    "conversationId",
                    "newParticipants"
                ])
            );
            assert_eq!(p["conversationThreadId"], t["id"]);
            assert_eq!(p["body"]["contentType"], "html");
            assert!(
                p["from"]["emailAddress"]["address"]
                    .as_str()
                    .unwrap()
                    .contains('@')
            );
            let at = p["receivedDateTime"].as_str().unwrap().to_string();
            assert!(at > last, "oldest first: {at} after {last}");
            last = at;
            let name = p["from"]["emailAddress"]["name"].as_str().unwrap();
            if !senders.contains(&name) {
                senders.push(name);
            }
            let one = sim
                .get_ok(&format!(
                    "/groups/{group}/threads/{id}/posts/{}",
                    p["id"].as_str().unwrap()
                ))
                .await;
            assert_eq!(&one, p, "GET by id equals the listed post");
        }
        assert_eq!(t["lastDeliveredDateTime"], json!(last));
        assert_eq!(t["uniqueSenders"], json!(senders));
        assert_eq!(ps, posts(&sim, &group, id).await, "stable across listings");
    }

    // Same seed, same tenant: ids and content are stable.
    let again = start(config(spec())).await;
    assert_eq!(threads(&again, &group).await, list);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_posts_hash_equal_to_posts_as_served() {
    let sim = start(config(spec())).await;
    let group = group_id(&sim).await;
    let mut served: BTreeMap<String, (String, String)> = BTreeMap::new();
    for t in threads(&sim, &group).await {
        let topic = t["topic"].as_str().unwrap().to_string();
        for p in posts(&sim, &group, t["id"].as_str().unwrap()).await {
            // What a backup saves is the JSON as served, reparsed.
            let saved: Value = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
            served.insert(
                p["id"].as_str().unwrap().to_string(),
                (
                    topic.clone(),
                    sha256_hex(&canonical(&saved, POST_CONTENT_FIELDS)),
                ),
            );
        }
    }
    let manifest: BTreeMap<String, (String, String)> = sim
        .manifest(&group)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "post")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                (
                    e["path"].as_str().unwrap().to_string(),
                    e["sha256"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect();
    assert!(manifest.len() >= 5, "every thread has posts");
    assert_eq!(manifest, served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_reply_is_appended_and_bumps_the_thread() {
    let sim = start(config(spec())).await;
    let group = group_id(&sim).await;
    let before = threads(&sim, &group).await;
    let mut before_posts = BTreeMap::new();
    for t in &before {
        let id = t["id"].as_str().unwrap().to_string();
        before_posts.insert(id.clone(), posts(&sim, &group, &id).await);
    }

    for round in 0..2 {
        let r = sim
            .mutate(json!({"seed": 7 + round, "count": 1, "resource": group, "kinds": ["post"], "ops": ["create"]}))
            .await;
        let applied = r["applied"].as_array().unwrap();
        assert_eq!(applied.len(), 1, "{r}");
        assert_eq!(applied[0]["kind"], "post");
        assert_eq!(applied[0]["op"], "create");
    }
    // Other operations on posts are not simulated: nothing is applied.
    let r = sim
        .mutate(
            json!({"seed": 3, "count": 1, "resource": group, "kinds": ["post"], "ops": ["delete"]}),
        )
        .await;
    assert_eq!(r["applied"], json!([]));

    let after = threads(&sim, &group).await;
    assert_eq!(after.len(), before.len());
    let manifest: BTreeSet<String> = sim
        .manifest(&group)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "post")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let mut added = 0;
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old["id"], new["id"], "threads keep their order");
        let id = new["id"].as_str().unwrap();
        let was = &before_posts[id];
        let now = posts(&sim, &group, id).await;
        assert_eq!(&now[..was.len()], &was[..], "existing posts unchanged");
        let fresh = &now[was.len()..];
        if fresh.is_empty() {
            assert_eq!(old, new, "an untouched thread is unchanged");
            continue;
        }
        added += fresh.len();
        let mut last = old["lastDeliveredDateTime"].as_str().unwrap().to_string();
        for p in fresh {
            assert_eq!(p["conversationThreadId"], new["id"]);
            assert_eq!(p["conversationId"], was[0]["conversationId"]);
            let at = p["receivedDateTime"].as_str().unwrap().to_string();
            assert!(at > last, "a reply is newer: {at} after {last}");
            last = at;
            assert!(
                manifest.contains(p["id"].as_str().unwrap()),
                "reply in manifest"
            );
        }
        assert_eq!(new["lastDeliveredDateTime"], json!(last), "thread bumped");
        assert!(new["lastDeliveredDateTime"].as_str() > old["lastDeliveredDateTime"].as_str());
    }
    assert_eq!(added, 2, "two replies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_groups_threads_and_posts_are_404() {
    let sim = start(config(spec())).await;
    let group = group_id(&sim).await;
    let status = |o: Outcome| match o {
        Outcome::Status(s, v) => (s, v["error"]["code"].as_str().unwrap_or("").to_string()),
        Outcome::Ok(v) => panic!("unexpected success: {v}"),
    };
    let missing = "00000000-0000-0000-0000-000000000000";
    assert_eq!(
        status(sim.get(&format!("/groups/{missing}/threads"), &[]).await),
        (404, "Request_ResourceNotFound".into())
    );
    // Well-formed ids of a thread that is not there, and garbage.
    let beyond = format!(
        "AAQkA{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("g0.t99")
    );
    for id in [beyond.as_str(), "AAQkAnope", "garbage"] {
        assert_eq!(
            status(sim.get(&format!("/groups/{group}/threads/{id}"), &[]).await),
            (404, "ErrorItemNotFound".into()),
            "{id}"
        );
        assert_eq!(
            status(
                sim.get(&format!("/groups/{group}/threads/{id}/posts"), &[])
                    .await
            ),
            (404, "ErrorItemNotFound".into()),
            "{id}"
        );
    }
    let t = threads(&sim, &group).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        status(
            sim.get(
                &format!("/groups/{group}/threads/{t}/posts/AAMkAbm9wZQ"),
                &[]
            )
            .await
        ),
        (404, "ErrorItemNotFound".into())
    );
}
