//! Microsoft Teams: channels, channel messages with replies, delta, getAllMessages, hosted
//! contents, chats, the manifest's chatMessage entries, seeded mutations, throttling and
//! migration mode (docs/simulator.md "Teams", GRAPH-NOTES §10).

use crate::harness::{Outcome, Sim, config, sha256_hex, small_spec, start};
use cairn_sim::content::canonical;
use cairn_sim::teams::CHAT_MESSAGE_CONTENT_FIELDS;
use cairn_sim::{SimApp, SimConfig, TenantSpec, ThrottleMode};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn spec() -> TenantSpec {
    TenantSpec {
        users: 8,
        groups: 6,
        ..small_spec(41)
    }
}

async fn groups(sim: &Sim) -> Vec<String> {
    sim.get_ok("/groups").await["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_string())
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn channels(sim: &Sim, team: &str, all: bool) -> Vec<Value> {
    let seg = if all { "allChannels" } else { "channels" };
    sim.walk(&format!("/teams/{team}/{seg}"), &[])
        .await
        .expect("channels")
        .0
}

/// Every root of a channel with its replies, through `$expand=replies`.
async fn threads(sim: &Sim, team: &str, channel: &str) -> Vec<Value> {
    sim.walk(
        &format!(
            "/teams/{team}/channels/{}/messages?$expand=replies&$top=3",
            enc(channel)
        ),
        &[],
    )
    .await
    .expect("messages")
    .0
}

fn sha_of(v: &Value) -> String {
    sha256_hex(&canonical(v, CHAT_MESSAGE_CONTENT_FIELDS))
}

async fn teams_manifest(sim: &Sim, id: &str) -> Vec<Value> {
    sim.admin(&format!("/_sim/manifest?resource={id}&teams=true"))
        .await
        .as_array()
        .cloned()
        .expect("manifest")
        .into_iter()
        .filter(|e| e["kind"] == "chatMessage" || e["kind"] == "channel" || e["kind"] == "chat")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn channels_all_channels_and_the_shared_channel() {
    let sim = start(config(spec())).await;
    let g = groups(&sim).await;
    // Odd groups have no team.
    match sim.get(&format!("/teams/{}", g[1]), &[]).await {
        Outcome::Status(404, v) => assert_eq!(v["error"]["code"], "NotFound"),
        o => panic!("a group without a team: {o:?}"),
    }
    let team = sim.get_ok(&format!("/teams/{}", g[0])).await;
    assert_eq!(team["id"], g[0].as_str());
    let own = channels(&sim, &g[0], false).await;
    assert_eq!(own[0]["displayName"], "General");
    let kinds: Vec<&str> = own
        .iter()
        .map(|c| c["membershipType"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"private"), "{kinds:?}");
    let shared: Vec<&Value> = own
        .iter()
        .filter(|c| c["membershipType"] == "shared")
        .collect();
    assert_eq!(shared.len(), 1, "team 0 hosts a shared channel");
    let shared_id = shared[0]["id"].as_str().unwrap();
    assert!(shared_id.starts_with("19:") && shared_id.ends_with("@thread.tacv2"));
    // The next team sees it in allChannels only.
    let next_own = channels(&sim, &g[2], false).await;
    let next_all = channels(&sim, &g[2], true).await;
    assert!(!next_own.iter().any(|c| c["id"] == shared_id));
    assert!(next_all.iter().any(|c| c["id"] == shared_id));
    assert_eq!(next_all.len(), next_own.len() + 1);
    let filtered = sim
        .walk(
            &format!(
                "/teams/{}/allChannels?$filter={}",
                g[2],
                enc("membershipType eq 'shared'")
            ),
            &[],
        )
        .await
        .unwrap()
        .0;
    assert_eq!(filtered.len(), 1);
    // Members and tabs.
    let members = sim
        .walk(&format!("/teams/{}/members", g[0]), &[])
        .await
        .unwrap()
        .0;
    assert!(members.len() >= 2 && members[0]["userId"].is_string());
    let general = own[0]["id"].as_str().unwrap();
    let tabs = sim
        .walk(
            &format!("/teams/{}/channels/{}/tabs", g[0], enc(general)),
            &[],
        )
        .await
        .unwrap()
        .0;
    assert!(tabs[0]["teamsApp"]["id"].is_string());
    assert!(tabs[0]["configuration"]["contentUrl"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_with_replies_page_and_match_the_manifest() {
    let sim = start(config(spec())).await;
    let g = groups(&sim).await;
    let team = &g[0];
    let manifest = teams_manifest(&sim, team).await;
    // Message ids are unique per channel: key by channel name and id.
    let by_id: BTreeMap<(String, String), Value> = manifest
        .iter()
        .map(|e| {
            let key = (
                e["path"].as_str().unwrap().to_string(),
                e["id"].as_str().unwrap().to_string(),
            );
            (key, e.clone())
        })
        .collect();
    let mut seen = 0;
    let mut kinds = BTreeSet::new();
    for c in channels(&sim, team, false).await {
        let cid = c["id"].as_str().unwrap();
        // A page respects $top and links to the next.
        let first = sim
            .get_ok(&format!(
                "/teams/{team}/channels/{}/messages?$top=2",
                enc(cid)
            ))
            .await;
        assert!(first["value"].as_array().unwrap().len() <= 2);
        assert!(first["@odata.nextLink"].is_string(), "3+ roots per channel");
        let roots = threads(&sim, team, cid).await;
        assert!((3..=8).contains(&roots.len()), "{} roots", roots.len());
        let dates: Vec<&str> = roots
            .iter()
            .map(|r| r["createdDateTime"].as_str().unwrap())
            .collect();
        assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first");
        for root in &roots {
            assert!(root["replyToId"].is_null());
            assert_eq!(root["channelIdentity"]["channelId"], cid);
            let rid = root["id"].as_str().unwrap();
            let replies = root["replies"].as_array().unwrap();
            let listed = sim
                .walk(
                    &format!("/teams/{team}/channels/{}/messages/{rid}/replies", enc(cid)),
                    &[],
                )
                .await
                .unwrap()
                .0;
            assert_eq!(listed.len(), replies.len());
            let mut bare = root.clone();
            let obj = bare.as_object_mut().unwrap();
            obj.remove("replies");
            obj.remove("replies@odata.count");
            let single = sim
                .get_ok(&format!(
                    "/teams/{team}/channels/{}/messages/{rid}",
                    enc(cid)
                ))
                .await;
            assert_eq!(single, bare, "GET one = the listing's root");
            for m in std::iter::once(&bare).chain(replies.iter()) {
                kinds.insert(m["messageType"].as_str().unwrap().to_string());
                for a in m["attachments"].as_array().unwrap() {
                    kinds.insert(a["contentType"].as_str().unwrap().to_string());
                }
                let id = m["id"].as_str().unwrap();
                let key = (
                    c["displayName"].as_str().unwrap().to_string(),
                    id.to_string(),
                );
                if m["deletedDateTime"].is_null() {
                    let e = by_id
                        .get(&key)
                        .unwrap_or_else(|| panic!("{id} in the manifest"));
                    assert_eq!(e["sha256"], sha_of(m), "hash of {id}");
                    assert_eq!(e["thread"], rid);
                    assert_eq!(e["path"], c["displayName"]);
                    seen += 1;
                } else {
                    assert!(
                        !by_id.contains_key(&key),
                        "deleted messages are not in the manifest"
                    );
                }
            }
        }
    }
    let messages = manifest
        .iter()
        .filter(|e| e["kind"] == "chatMessage")
        .count();
    assert_eq!(seen, messages, "every manifest entry was served");
    for k in [
        "systemEventMessage",
        "application/vnd.microsoft.card.announcement",
        "application/vnd.microsoft.card.codesnippet",
        "application/vnd.microsoft.card.sticker",
    ] {
        assert!(kinds.contains(k), "a {k} is seeded: {kinds:?}");
    }
    // The default manifest has no Teams entries.
    let plain = sim.manifest(team).await;
    assert!(plain.iter().all(|e| e["kind"] != "chatMessage"));
}

#[tokio::test(flavor = "multi_thread")]
async fn delta_keeps_to_eight_months_and_replays_changes() {
    let sim = start(config(spec())).await;
    let g = groups(&sim).await;
    let team = &g[0];
    let window = (chrono::Utc::now() - chrono::Duration::days(240)).to_rfc3339();
    let mut links = BTreeMap::new();
    let mut old_roots = 0;
    for c in channels(&sim, team, false).await {
        let cid = c["id"].as_str().unwrap().to_string();
        let (items, link) = sim
            .walk(
                &format!(
                    "/teams/{team}/channels/{}/messages/delta?$expand=replies&$top=2",
                    enc(&cid)
                ),
                &[],
            )
            .await
            .unwrap();
        let in_delta: BTreeSet<String> = items
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        for m in &items {
            let last = std::iter::once(m)
                .chain(m["replies"].as_array().unwrap().iter())
                .map(|x| x["lastModifiedDateTime"].as_str().unwrap().to_string())
                .max()
                .unwrap();
            assert!(last >= window, "{last} within 8 months");
        }
        for root in threads(&sim, team, &cid).await {
            if !in_delta.contains(root["id"].as_str().unwrap()) {
                old_roots += 1;
            }
        }
        links.insert(cid, link.expect("a deltaLink"));
    }
    assert!(old_roots > 0, "some threads are older than 8 months");
    // Nothing changed: the deltaLinks replay nothing.
    for link in links.values() {
        assert!(sim.walk(link, &[]).await.unwrap().0.is_empty());
    }
    let mut applied = Vec::new();
    for op in ["modify", "reply", "delete"] {
        let out = sim
            .mutate(json!({"kinds": ["chatMessage"], "ops": [op], "count": 2, "resource": team, "seed": 5}))
            .await;
        applied.extend(out["applied"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(applied.len(), 6, "{applied:?}");
    for a in &applied {
        let cid = a["channel"].as_str().unwrap();
        assert_eq!(a["team"], team.as_str());
        let changed = sim.walk(&links[cid], &[]).await.unwrap().0;
        let thread = a["thread"].as_str().unwrap();
        let root = changed
            .iter()
            .find(|m| m["id"] == thread)
            .unwrap_or_else(|| panic!("thread {thread} replayed for {a}"));
        let id = a["id"].as_str().unwrap();
        let mut all: Vec<&Value> = vec![root];
        all.extend(root["replies"].as_array().unwrap());
        if let Some(m) = all.iter().find(|m| m["id"] == id) {
            match a["op"].as_str().unwrap() {
                "modify" => assert!(
                    m["lastEditedDateTime"].is_string() || !m["deletedDateTime"].is_null(),
                    "{m}"
                ),
                "delete" => assert!(m["deletedDateTime"].is_string(), "{m}"),
                _ => assert_eq!(m["replyToId"], thread),
            }
        } else {
            panic!("message {id} in its replayed thread");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_all_messages_filters_by_modification_time() {
    let sim = start(config(spec())).await;
    let g = groups(&sim).await;
    let team = &g[0];
    let all = sim
        .walk(
            &format!("/teams/{team}/channels/getAllMessages?$top=50"),
            &[],
        )
        .await
        .unwrap()
        .0;
    assert!(all.len() > 10);
    assert!(
        all.iter()
            .all(|m| m["channelIdentity"]["teamId"] == team.as_str())
    );
    let now = chrono::Utc::now();
    let t1 = (now - chrono::Duration::days(60))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let t2 = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let filter = enc(&format!(
        "lastModifiedDateTime gt {t1} and lastModifiedDateTime lt {t2}"
    ));
    let window = sim
        .walk(
            &format!("/teams/{team}/channels/getAllMessages?$top=5&$filter={filter}"),
            &[],
        )
        .await
        .unwrap()
        .0;
    let expected = all
        .iter()
        .filter(|m| {
            let t = m["lastModifiedDateTime"].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(t).unwrap() > now - chrono::Duration::days(60)
        })
        .count();
    assert_eq!(window.len(), expected);
    assert!(window.len() < all.len());
    let bad = enc("createdDateTime gt 2026-01-01T00:00:00Z");
    match sim
        .get(
            &format!("/teams/{team}/channels/getAllMessages?$filter={bad}"),
            &[],
        )
        .await
    {
        Outcome::Status(400, _) => {}
        o => panic!("a bad filter: {o:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hosted_contents_serve_their_bytes() {
    let sim = start(config(spec())).await;
    let g = groups(&sim).await;
    let mut checked = 0;
    for team in [&g[0], &g[2], &g[4]] {
        for e in teams_manifest(&sim, team).await {
            let Some(h) = e["hostedContents"].as_array().filter(|h| !h.is_empty()) else {
                continue;
            };
            let all = sim
                .walk(&format!("/teams/{team}/channels/getAllMessages"), &[])
                .await
                .unwrap()
                .0;
            let m = all.iter().find(|m| m["id"] == e["id"]).unwrap();
            let cid = m["channelIdentity"]["channelId"].as_str().unwrap();
            let base = match m["replyToId"].as_str() {
                Some(root) => format!(
                    "/teams/{team}/channels/{}/messages/{root}/replies/{}",
                    enc(cid),
                    e["id"].as_str().unwrap()
                ),
                None => format!(
                    "/teams/{team}/channels/{}/messages/{}",
                    enc(cid),
                    e["id"].as_str().unwrap()
                ),
            };
            let hid = h[0]["id"].as_str().unwrap();
            assert!(m["body"]["content"].as_str().unwrap().contains(&format!(
                "https://graph.microsoft.com/v1.0{}",
                base.replace(&enc(cid), cid)
            )));
            let list = sim.get_ok(&format!("{base}/hostedContents")).await;
            assert_eq!(list["value"][0]["id"], hid);
            assert!(list["value"][0]["contentBytes"].is_null());
            assert_eq!(list["value"][0]["contentType"], "image/png");
            let (status, bytes, _) = sim
                .bytes(&format!("{base}/hostedContents/{hid}/$value"), None)
                .await;
            assert_eq!(status, 200);
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
            assert_eq!(sha256_hex(&bytes), h[0]["sha256"].as_str().unwrap());
            checked += 1;
            break;
        }
    }
    assert!(checked > 0, "some message has an inline image");
}

#[tokio::test(flavor = "multi_thread")]
async fn chats_and_their_get_all_messages() {
    let sim = start(config(spec())).await;
    let users = sim.get_ok("/users").await;
    let uid = users["value"][0]["id"].as_str().unwrap().to_string();
    let chats = sim
        .walk(&format!("/users/{uid}/chats?$expand=members"), &[])
        .await
        .unwrap()
        .0;
    assert!(!chats.is_empty());
    let mut total = 0;
    for c in &chats {
        let cid = c["id"].as_str().unwrap();
        assert!(["oneOnOne", "group", "meeting"].contains(&c["chatType"].as_str().unwrap()));
        assert!(
            c["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["userId"] == uid.as_str())
        );
        let one = sim.get_ok(&format!("/chats/{}", enc(cid))).await;
        assert_eq!(one["id"], cid);
        let msgs = sim
            .walk(&format!("/chats/{}/messages?$top=2", enc(cid)), &[])
            .await
            .unwrap()
            .0;
        assert!((3..=10).contains(&msgs.len()));
        assert!(msgs.iter().all(|m| m["chatId"] == cid));
        total += msgs.len();
    }
    let all = sim
        .walk(&format!("/users/{uid}/chats/getAllMessages?$top=7"), &[])
        .await
        .unwrap()
        .0;
    assert_eq!(all.len(), total);
    // The user's manifest lists the same messages with the served hashes.
    let manifest = teams_manifest(&sim, &uid).await;
    for m in all.iter().filter(|m| m["deletedDateTime"].is_null()) {
        let e = manifest
            .iter()
            .find(|e| e["id"] == m["id"] && e["path"] == m["chatId"])
            .unwrap();
        assert_eq!(e["sha256"], sha_of(m));
    }
    // A mutation in the user's chats shows in getAllMessages.
    let out = sim
        .mutate(json!({"kinds": ["chatMessage"], "ops": ["create"], "count": 1, "resource": uid}))
        .await;
    let id = out["applied"][0]["id"].as_str().unwrap();
    let after = sim
        .walk(&format!("/users/{uid}/chats/getAllMessages"), &[])
        .await
        .unwrap()
        .0;
    assert!(after.iter().any(|m| m["id"] == id));
}

#[tokio::test(flavor = "multi_thread")]
async fn team_reads_are_throttled_at_four_per_second() {
    let mut cfg = config(spec());
    cfg.throttle = ThrottleMode::Microsoft;
    let sim = start(cfg).await;
    let g = groups(&sim).await;
    let mut throttled = None;
    for _ in 0..12 {
        let resp = sim
            .http
            .get(sim.abs(&format!("/teams/{}/channels", g[0])))
            .bearer_auth(&sim.token)
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 429 {
            throttled = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
    }
    assert_eq!(throttled.as_deref(), Some("1"), "429 with Retry-After");
}

// ---- migration mode -------------------------------------------------------------------

const OTHER: &str = "22222222-0000-0000-0000-000000000002";

fn migration_config() -> SimConfig {
    let mut cfg = config(spec());
    cfg.apps.push(SimApp::new(
        OTHER,
        "other-secret",
        &["Teamwork.Migrate.All"],
    ));
    cfg
}

async fn token_of(sim: &Sim, client: &str, secret: &str) -> String {
    let cfg = &sim.server.sim.cfg;
    let v: Value = sim
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

async fn post(sim: &Sim, token: &str, url: &str, body: Value) -> (u16, Value) {
    let full = if url.starts_with("/beta") {
        format!("{}{url}", sim.url())
    } else {
        sim.abs(url)
    };
    let resp = sim
        .http
        .post(full)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn import(user: &Value, created: &str, text: &str) -> Value {
    json!({
        "createdDateTime": created,
        "from": {"user": {"id": user["id"], "displayName": user["displayName"], "userIdentityType": "aadUser"}},
        "body": {"contentType": "html", "content": text},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn migration_mode_rules() {
    let sim = start(migration_config()).await;
    let g = groups(&sim).await;
    let team = &g[0];
    let me = sim.token.clone();
    let user = sim.get_ok("/users").await["value"][0].clone();
    // A new channel in migration mode.
    let (s, ch) = post(
        &sim,
        &me,
        &format!("/teams/{team}/channels"),
        json!({"@microsoft.graph.channelCreationMode": "migration", "displayName": "Restored",
               "membershipType": "standard", "createdDateTime": "2024-03-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(s, 201, "{ch}");
    assert_eq!(ch["migrationMode"], "inProgress");
    let cid = ch["id"].as_str().unwrap().to_string();
    let msgs = format!("/teams/{team}/channels/{}/messages", enc(&cid));
    // Private channels cannot be created in migration mode.
    let (s, _) = post(
        &sim,
        &me,
        &format!("/teams/{team}/channels"),
        json!({"@microsoft.graph.channelCreationMode": "migration", "displayName": "P",
               "membershipType": "private", "createdDateTime": "2024-03-01T10:00:00Z"}),
    )
    .await;
    assert_eq!(s, 400);
    // Before the channel's creation: 400.
    let (s, _) = post(
        &sim,
        &me,
        &msgs,
        import(&user, "2024-02-01T10:00:00Z", "early"),
    )
    .await;
    assert_eq!(s, 400);
    // A root with an inline image, then a reply.
    let mut body = import(
        &user,
        "2024-03-02T10:00:00.123Z",
        "<p>hi</p><img src=\"../hostedContents/1/$value\">",
    );
    body["hostedContents"] = json!([{"@microsoft.graph.temporaryId": "1",
        "contentBytes": "iVBORw0KGgo=", "contentType": "image/png"}]);
    let (s, root) = post(&sim, &me, &msgs, body).await;
    assert_eq!(s, 201, "{root}");
    let rid = root["id"].as_str().unwrap().to_string();
    assert_eq!(rid, "1709373600123", "id = epoch ms of createdDateTime");
    assert_eq!(root["from"]["user"]["id"], user["id"]);
    let content = root["body"]["content"].as_str().unwrap();
    assert!(
        content.contains("https://graph.microsoft.com/v1.0/teams/"),
        "{content}"
    );
    // Same createdDateTime again: 400.
    let (s, _) = post(
        &sim,
        &me,
        &msgs,
        import(&user, "2024-03-02T10:00:00.123Z", "dup"),
    )
    .await;
    assert_eq!(s, 400);
    let (s, reply) = post(
        &sim,
        &me,
        &format!("{msgs}/{rid}/replies"),
        import(&user, "2024-03-02T11:00:00Z", "a reply"),
    )
    .await;
    assert_eq!(s, 201, "{reply}");
    assert_eq!(reply["replyToId"], rid.as_str());
    // Unrestorable kinds: 400.
    let mut card = import(
        &user,
        "2024-03-03T10:00:00Z",
        "<attachment id=\"a\"></attachment>",
    );
    card["attachments"] = json!([{"id": "a", "contentType": "application/vnd.microsoft.card.announcement", "content": "{}"}]);
    let (s, v) = post(&sim, &me, &msgs, card).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("announcement")
    );
    let mut sys = import(&user, "2024-03-03T10:00:01Z", "x");
    sys["messageType"] = json!("systemEventMessage");
    assert_eq!(post(&sim, &me, &msgs, sys).await.0, 400);
    // A user not of the tenant: 400.
    let mut stranger = import(&user, "2024-03-03T10:00:02Z", "x");
    stranger["from"]["user"]["id"] = json!("00000000-0000-0000-0000-000000000000");
    assert_eq!(post(&sim, &me, &msgs, stranger).await.0, 400);
    // Another app may not post into this migration.
    let other = token_of(&sim, OTHER, "other-secret").await;
    assert_eq!(
        post(
            &sim,
            &other,
            &msgs,
            import(&user, "2024-03-04T10:00:00Z", "x")
        )
        .await
        .0,
        403
    );
    // The manifest shows the channel in migration and the imported messages.
    let manifest = teams_manifest(&sim, team).await;
    assert!(manifest.iter().any(|e| e["kind"] == "channel"
        && e["id"] == cid.as_str()
        && e["migrationMode"] == "inProgress"));
    assert!(
        manifest
            .iter()
            .any(|e| e["id"] == rid.as_str() && e["hostedContents"].as_array().unwrap().len() == 1)
    );
    // Complete: no more imports.
    let (s, _) = post(
        &sim,
        &me,
        &format!("/teams/{team}/channels/{}/completeMigration", enc(&cid)),
        json!({}),
    )
    .await;
    assert_eq!(s, 204);
    let served = sim
        .get_ok(&format!("/teams/{team}/channels/{}", enc(&cid)))
        .await;
    assert_eq!(served["migrationMode"], "completed");
    assert_eq!(
        post(
            &sim,
            &me,
            &msgs,
            import(&user, "2024-03-05T10:00:00Z", "late")
        )
        .await
        .0,
        403
    );
    let (s, _) = post(
        &sim,
        &me,
        &format!("/teams/{team}/channels/{}/completeMigration", enc(&cid)),
        json!({}),
    )
    .await;
    assert_eq!(s, 400, "not migrating any more");

    // An existing channel: posting without migration is refused; startMigration is beta.
    let general = channels(&sim, team, false).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gmsgs = format!("/teams/{team}/channels/{}/messages", enc(&general));
    assert_eq!(
        post(
            &sim,
            &me,
            &gmsgs,
            import(&user, "2026-06-01T10:00:00Z", "x")
        )
        .await
        .0,
        403
    );
    let start_v1 = format!("/teams/{team}/channels/{}/startMigration", enc(&general));
    assert_eq!(post(&sim, &me, &start_v1, json!({})).await.0, 400);
    let start_beta = format!(
        "/beta/teams/{team}/channels/{}/startMigration",
        enc(&general)
    );
    // Not earlier than the oldest message: 400.
    assert_eq!(
        post(
            &sim,
            &me,
            &start_beta,
            json!({"conversationCreationDateTime": chrono::Utc::now().to_rfc3339()})
        )
        .await
        .0,
        400
    );
    assert_eq!(post(&sim, &me, &start_beta, json!({})).await.0, 204);
    assert_eq!(
        post(&sim, &me, &start_beta, json!({})).await.0,
        400,
        "already migrating"
    );
    // The app that started it manages it; another is refused.
    assert_eq!(
        post(
            &sim,
            &other,
            &gmsgs,
            import(&user, "2026-06-01T10:00:00Z", "x")
        )
        .await
        .0,
        403
    );
    let (s, v) = post(
        &sim,
        &me,
        &gmsgs,
        import(&user, "2026-06-01T10:00:00Z", "restored"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        post(
            &sim,
            &other,
            &format!("/teams/{team}/channels/{}/completeMigration", enc(&general)),
            json!({})
        )
        .await
        .0,
        403
    );
    // Five posts a second at most.
    let mut limited = false;
    for i in 0..12 {
        let (s, _) = post(
            &sim,
            &me,
            &gmsgs,
            import(&user, &format!("2026-06-02T10:00:{i:02}Z"), "burst"),
        )
        .await;
        if s == 429 {
            limited = true;
            break;
        }
        assert_eq!(s, 201);
    }
    assert!(limited, "a burst of imports meets 429");
    // Seeded mutations leave a migrating channel alone.
    let out = sim
        .mutate(json!({"kinds": ["chatMessage"], "ops": ["create"], "count": 10, "resource": team}))
        .await;
    assert!(
        out["applied"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["channel"] != general.as_str())
    );
    // Chats: beta startMigration, import, complete.
    let uid = user["id"].as_str().unwrap();
    let chat_v = sim
        .walk(&format!("/users/{uid}/chats"), &[])
        .await
        .unwrap()
        .0[0]
        .clone();
    let chat = chat_v["id"].as_str().unwrap().to_string();
    let chat_born =
        chrono::DateTime::parse_from_rfc3339(chat_v["createdDateTime"].as_str().unwrap()).unwrap();
    let chat_at = (chat_born + chrono::Duration::milliseconds(37_123)).to_rfc3339();
    let cmsgs = format!("/chats/{}/messages", enc(&chat));
    // An app without Chat.Read.All may not read chats: Teams' 403.
    let denied = sim
        .http
        .get(sim.abs(&cmsgs))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status().as_u16(), 403);
    let v: Value = denied.json().await.unwrap();
    assert_eq!(v["error"]["code"], "Forbidden");
    assert_eq!(
        post(
            &sim,
            &me,
            &cmsgs,
            import(&user, "2025-01-01T10:00:00Z", "x")
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(
            &sim,
            &me,
            &format!("/beta/chats/{}/startMigration", enc(&chat)),
            json!({})
        )
        .await
        .0,
        204
    );
    let (s, v) = post(&sim, &me, &cmsgs, import(&user, &chat_at, "chat import")).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["chatId"], chat.as_str());
    assert_eq!(
        post(
            &sim,
            &me,
            &format!("/chats/{}/completeMigration", enc(&chat)),
            json!({})
        )
        .await
        .0,
        204
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_state_survives_a_restart() {
    let dir = crate::harness::TempDir::new("teams");
    let mut cfg = config(spec());
    cfg.state_dir = Some(dir.0.clone());
    let (team, before) = {
        let sim = start(cfg.clone()).await;
        let g = groups(&sim).await;
        sim.mutate(json!({"kinds": ["chatMessage"], "count": 5, "resource": g[0]}))
            .await;
        let m = teams_manifest(&sim, &g[0]).await;
        (g[0].clone(), m)
    };
    let sim = start(cfg).await;
    assert_eq!(teams_manifest(&sim, &team).await, before);
}
