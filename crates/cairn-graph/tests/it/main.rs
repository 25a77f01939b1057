//! cairn-graph against the simulator: whole mailboxes and drives fetched under faults and
//! Microsoft-mode throttling equal the fault-free fetch.

use cairn_graph::{Credential, DeltaEvent, GraphClient, GraphConfig, RetryPolicy};
use cairn_sim::{SimConfig, SimServer, TenantSpec, ThrottleMode};
use futures::{StreamExt, TryStreamExt};
use sha2::Digest;
use std::collections::BTreeMap;
use std::time::Duration;

fn spec() -> TenantSpec {
    TenantSpec {
        seed: 21,
        users: 3,
        groups: 1,
        sites: 1,
        mail_per_mailbox: 50,
        files_per_drive: 30,
        max_item_size: 3 * 1024 * 1024,
        ..TenantSpec::default()
    }
}

async fn sim(fault_rate: f64, throttle: ThrottleMode) -> SimServer {
    let mut cfg = SimConfig::new(spec());
    cfg.fault_rate = fault_rate;
    cfg.throttle = throttle;
    cfg.token_lifetime = Duration::from_secs(3);
    SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(s: &SimServer) -> GraphClient {
    let c = &s.sim.cfg;
    let mut cfg = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Secret(c.client_secret.clone().into()),
    );
    cfg.graph_url = s.url();
    cfg.login_url = s.url();
    cfg.retry = RetryPolicy {
        max_attempts: 30,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(500),
    };
    GraphClient::new(cfg).unwrap()
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// id → sha256 of every message (MIME) and file (content) of the first user.
async fn fetch_user(g: &GraphClient, user: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut folders: Vec<serde_json::Value> = g
        .items(&format!("/users/{user}/mailFolders/delta"))
        .try_collect()
        .await
        .expect("folders");
    folders.push(
        g.get(&format!(
            "/users/{user}/mailFolders/recoverableitemsdeletions"
        ))
        .await
        .unwrap(),
    );
    for f in folders
        .iter()
        .filter(|f| f["@odata.type"] != "#microsoft.graph.mailSearchFolder")
    {
        let fid = f["id"].as_str().unwrap();
        let start = format!("/users/{user}/mailFolders/{fid}/messages/delta?$select=id");
        let mut events = Box::pin(g.delta(&start, None));
        while let Some(ev) = events.next().await {
            match ev.expect("delta") {
                DeltaEvent::Upsert(m) => {
                    let id = m["id"].as_str().unwrap().to_string();
                    let mime = g
                        .get_bytes(&format!("/users/{user}/messages/{id}/$value"))
                        .await
                        .expect("mime");
                    out.insert(id, sha(&mime));
                }
                DeltaEvent::Removed { id } => {
                    out.remove(&id);
                }
                DeltaEvent::Complete { .. } => {}
                DeltaEvent::Resync { .. } => panic!("no resync on a first enumeration"),
            }
        }
    }
    let mut events = Box::pin(g.delta(&format!("/users/{user}/drive/root/delta"), None));
    while let Some(ev) = events.next().await {
        if let DeltaEvent::Upsert(item) = ev.expect("drive delta") {
            if item.get("file").is_none() {
                continue;
            }
            let id = item["id"].as_str().unwrap().to_string();
            let drive = item["parentReference"]["driveId"].as_str().unwrap();
            let mut h = sha2::Sha256::new();
            let mut s = Box::pin(g.download(&format!("/drives/{drive}/items/{id}/content")));
            let mut n = 0u64;
            while let Some(chunk) = s.next().await {
                let c = chunk.expect("download");
                n += c.len() as u64;
                h.update(&c);
            }
            assert_eq!(n, item["size"].as_u64().unwrap(), "size of {id}");
            out.insert(id, hex::encode(h.finalize()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_throttling_give_the_same_mailbox_and_drive() {
    let clean = sim(0.0, ThrottleMode::Off).await;
    let g = client(&clean);
    let users = g.get("/users?$select=id").await.unwrap();
    let user = users["value"][0]["id"].as_str().unwrap().to_string();
    let want = fetch_user(&g, &user).await;
    // The manifest agrees with what the client fetched.
    let manifest: Vec<serde_json::Value> =
        reqwest::get(format!("{}/_sim/manifest?resource={user}", clean.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let from_manifest: BTreeMap<String, String> = manifest
        .iter()
        .filter(|e| e["kind"] == "message" || e["kind"] == "file")
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(want, from_manifest);

    let hostile = sim(0.2, ThrottleMode::Microsoft).await;
    let g2 = client(&hostile);
    let got = fetch_user(&g2, &user).await;
    assert_eq!(got, want, "faults changed what was fetched");
    let stats: serde_json::Value = reqwest::get(format!("{}/_sim/stats", hostile.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["faults_total"].as_u64().unwrap() > 20,
        "faults were injected: {stats}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_secret_is_a_clear_auth_error_without_the_secret() {
    let s = sim(0.0, ThrottleMode::Off).await;
    let c = &s.sim.cfg;
    let mut cfg = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Secret("not-the-S3cret".to_string().into()),
    );
    cfg.graph_url = s.url();
    cfg.login_url = s.url();
    let g = GraphClient::new(cfg).unwrap();
    let err = g.get("/users").await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, cairn_graph::GraphError::Auth { .. }),
        "{text}"
    );
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(!text.contains("not-the-S3cret"), "{text}");
    assert!(err.hint().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credential_signs_in() {
    let mut cfg = SimConfig::new(spec());
    cfg.throttle = ThrottleMode::Off;
    cfg.client_certificates_pem =
        Some(include_str!("../../../cairn-sim/tests/fixtures/client-cert.pem").into());
    let s = SimServer::start(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = &s.sim.cfg;
    let pem = format!(
        "{}{}",
        include_str!("../../../cairn-sim/tests/fixtures/client-cert.pem"),
        include_str!("../../../cairn-sim/tests/fixtures/client-key.pem")
    );
    let cert = cairn_graph::cert::Certificate::from_pem(&pem).unwrap();
    let mut gc = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Certificate(cert.into()),
    );
    gc.graph_url = s.url();
    gc.login_url = s.url();
    let g = GraphClient::new(gc).unwrap();
    let users = g.get("/users").await.unwrap();
    assert_eq!(users["value"].as_array().unwrap().len(), 3);
    // The same key pair from a PKCS#12 file.
    let pfx = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cairn-sim/tests/fixtures/client.pfx");
    let cert = cairn_graph::cert::Certificate::from_file(&pfx, Some("test")).unwrap();
    assert!(cairn_graph::cert::Certificate::from_file(&pfx, Some("wrong")).is_err());
    let mut gc = GraphConfig::new(
        &c.tenant_id,
        &c.client_id,
        Credential::Certificate(cert.into()),
    );
    gc.graph_url = s.url();
    gc.login_url = s.url();
    let g = GraphClient::new(gc).unwrap();
    assert!(g.get("/users").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_delta_token_is_a_resync_event() {
    let s = sim(0.0, ThrottleMode::Off).await;
    let g = client(&s);
    let users = g.get("/users?$select=id").await.unwrap();
    let user = users["value"][0]["id"].as_str().unwrap().to_string();
    let start = format!("/users/{user}/drive/root/delta");
    let events: Vec<DeltaEvent> = g.delta(&start, None).try_collect().await.unwrap();
    let Some(DeltaEvent::Complete { delta_link }) = events.last().cloned() else {
        panic!("a delta round ends with its link");
    };
    reqwest::Client::new()
        .post(format!("{}/_sim/expire-tokens", s.url()))
        .send()
        .await
        .unwrap();
    let events: Vec<DeltaEvent> = g
        .delta(&start, Some(&delta_link))
        .try_collect()
        .await
        .unwrap();
    assert!(
        matches!(events.as_slice(), [DeltaEvent::Resync { .. }]),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_every_part() {
    let s = sim(0.3, ThrottleMode::Off).await;
    let g = client(&s);
    let users = g.get("/users?$select=id").await.unwrap();
    let paths: Vec<String> = users["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| format!("/users/{}/mailFolders/inbox", u["id"].as_str().unwrap()))
        .collect();
    let replies = g.batch_get(&paths).await.unwrap();
    assert_eq!(replies.len(), paths.len());
    for (status, body) in replies {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["displayName"], "Inbox");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_session_and_typed_models_round_trip() {
    let s = sim(0.1, ThrottleMode::Off).await;
    let g = client(&s);
    let users: Vec<cairn_graph::models::User> = g
        .items("/users")
        .map_ok(|v| serde_json::from_value(v).expect("a user"))
        .try_collect()
        .await
        .unwrap();
    let user = &users[0].id;
    let drive: cairn_graph::models::Drive =
        serde_json::from_value(g.get(&format!("/users/{user}/drive")).await.unwrap()).unwrap();
    // 2.5 MiB: several 320 KiB-multiple fragments and a short last one.
    let data: Vec<u8> = (0..2_621_447u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let chunks: Vec<Result<bytes::Bytes, cairn_graph::GraphError>> = data
        .chunks(100_000)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    let item = g
        .upload_session(
            &format!("/drives/{}/items/root", drive.id),
            "Résumé #1 (final).bin",
            data.len() as u64,
            "fail",
            futures::stream::iter(chunks),
        )
        .await
        .unwrap();
    let item: cairn_graph::models::DriveItem = serde_json::from_value(item).unwrap();
    assert_eq!(item.size, Some(data.len() as u64));
    assert_eq!(item.name.as_deref(), Some("Résumé #1 (final).bin"));
    let back: Vec<u8> = g
        .download(&format!("/drives/{}/items/{}/content", drive.id, item.id))
        .try_fold(Vec::new(), |mut acc, c| async move {
            acc.extend_from_slice(&c);
            Ok(acc)
        })
        .await
        .unwrap();
    assert_eq!(sha(&back), sha(&data));
    // The same name again with conflict "fail" is refused with Graph's code.
    let again = g
        .upload_session(
            &format!("/drives/{}/items/root", drive.id),
            "Résumé #1 (final).bin",
            3,
            "fail",
            futures::stream::iter(vec![Ok(bytes::Bytes::from_static(b"abc"))]),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("nameAlreadyExists"), "{again}");
}
