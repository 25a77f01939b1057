//! Individual endpoint contracts: what a Graph client relies on, one behaviour per test, checked
//! over HTTP against a simulator on a random port (GRAPH-NOTES §1, §2, §3, §5, §8, §9).

use crate::harness::{Outcome, Sim, TempDir, config, sha256_hex, small_spec, start};
use base64::Engine;
use cairn_sim::{TenantSpec, ThrottleMode};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

const IMMUTABLE: (&str, &str) = ("Prefer", "IdType=\"ImmutableId\"");
const CLIENT_CERT: &str = include_str!("../fixtures/client-cert.pem");
const CLIENT_KEY: &str = include_str!("../fixtures/client-key.pem");
const OTHER_KEY: &str = include_str!("../fixtures/other-key.pem");
/// OneDrive upload fragments are multiples of this (320 KiB).
const FRAGMENT_UNIT: usize = 327_680;

// ---- helpers ---------------------------------------------------------------------------------

/// A whole HTTP answer.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(rb: RequestBuilder) -> Reply {
    let resp = rb.send().await.expect("the simulator answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("a whole body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// A Graph request with the simulator's bearer token.
fn graph(sim: &Sim, method: Method, path: &str) -> RequestBuilder {
    sim.http
        .request(method, sim.abs(path))
        .bearer_auth(&sim.token)
}

/// Checks Graph's error body (`error.code`, `message`, `innerError.request-id`/`date`).
#[track_caller]
fn assert_error_body(v: &Value, code: &str) {
    let e = &v["error"];
    assert_eq!(e["code"], code, "error code in {v}");
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error message in {v}"
    );
    assert!(
        e["innerError"]["request-id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "innerError.request-id in {v}"
    );
    assert!(
        e["innerError"]["date"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "innerError.date in {v}"
    );
}

/// Checks status and Graph error shape of a reply.
#[track_caller]
fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "status of {}", r.text());
    assert_error_body(&r.json(), code);
}

async fn user_ids(sim: &Sim) -> Vec<String> {
    let (users, _) = sim
        .walk("/users?$select=id", &[])
        .await
        .expect("user listing");
    users
        .iter()
        .map(|u| u["id"].as_str().expect("user id").to_string())
        .collect()
}

async fn first_user(sim: &Sim) -> String {
    user_ids(sim).await.swap_remove(0)
}

async fn drive_of(sim: &Sim, user: &str) -> String {
    sim.get_ok(&format!("/users/{user}/drive")).await["id"]
        .as_str()
        .expect("drive id")
        .to_string()
}

/// The messages of the user's inbox (immutable ids), at least two.
async fn inbox_messages(sim: &Sim, user: &str) -> Vec<Value> {
    let (items, _) = sim
        .walk(
            &format!("/users/{user}/mailFolders/inbox/messages/delta"),
            &[IMMUTABLE],
        )
        .await
        .expect("inbox delta");
    assert!(items.len() >= 2, "the inbox has messages: {}", items.len());
    items
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect()
}

/// Reproducible, non-repeating test data.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}

/// Runs a test body on its own thread and runtime and fails if it has not finished within
/// `limit`. A stuck simulator thread is left behind (the test process ends with the test);
/// waiting for it, as a runtime shutdown does, would hang the suite.
fn within<F, Fut>(limit: Duration, body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(body())));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("no answer within {limit:?}: the simulator hangs"),
    }
}

/// A deltaLink of one server instance, pointed at another (same paths, new address).
fn rebase(link: &str, old: &str, new: &str) -> String {
    let rest = link
        .strip_prefix(old)
        .unwrap_or_else(|| panic!("{link} is served by {old}"));
    format!("{new}{rest}")
}

// ---- 1. authentication -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bearer_token_is_401_invalid_authentication_token() {
    let sim = start(config(small_spec(101))).await;
    let r = send(sim.http.get(sim.abs("/users"))).await;
    assert_error(&r, 401, "InvalidAuthenticationToken");
    let r = send(
        sim.http
            .get(sim.abs("/users"))
            .bearer_auth("eyJnot.a.token"),
    )
    .await;
    assert_error(&r, 401, "InvalidAuthenticationToken");
    // The same call with the token works: the 401 was about the token.
    sim.get_ok("/users").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_secret_is_invalid_client_without_the_secret() {
    let sim = start(config(small_spec(102))).await;
    let cfg = &sim.server.sim.cfg;
    let wrong = "wr0ng-S3cret-value-4711";
    let r = send(
        sim.http
            .post(format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", cfg.client_id.as_str()),
                ("client_secret", wrong),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"], "invalid_client", "{v}");
    let desc = v["error_description"].as_str().expect("error_description");
    assert!(desc.starts_with("AADSTS"), "{desc}");
    assert!(v.get("access_token").is_none(), "{v}");
    let text = r.text();
    assert!(!text.contains(wrong), "the sent secret leaks: {text}");
    assert!(
        !text.contains(cfg.client_secret.as_str()),
        "the real secret leaks: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_token_stops_working_after_expiry() {
    let mut cfg = config(small_spec(103));
    cfg.token_lifetime = Duration::from_secs(1);
    let sim = start(cfg).await;
    // A token is valid for the rest of the second it was issued in and the next: a fresh one
    // works (retry in case issuing and using straddle a second boundary).
    let mut token = String::new();
    let mut worked = false;
    for _ in 0..5 {
        token = sim.fetch_token().await;
        let r = send(sim.http.get(sim.abs("/users")).bearer_auth(&token)).await;
        if r.status == 200 {
            worked = true;
            break;
        }
    }
    assert!(worked, "a fresh token is accepted");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = send(sim.http.get(sim.abs("/users")).bearer_auth(&token)).await;
    assert_error(&r, 401, "InvalidAuthenticationToken");
}

// ---- 2. certificate authentication -------------------------------------------------------

/// A client assertion (RS256, `x5t` of the test certificate) signed with `key_pem`.
fn client_assertion(sim: &Sim, jti: &str, key_pem: &str) -> String {
    let cfg = &sim.server.sim.cfg;
    let cert = pem::parse(CLIENT_CERT).expect("certificate PEM");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(cairn_sim::auth::thumbprint_sha1(cert.contents()));
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id),
        "iss": cfg.client_id,
        "sub": cfg.client_id,
        "jti": jti,
        "iat": now - 30,
        "nbf": now - 30,
        "exp": now + 600,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes()).expect("RSA key");
    jsonwebtoken::encode(&header, &claims, &key).expect("signed assertion")
}

async fn assertion_token(sim: &Sim, assertion: &str) -> Reply {
    let cfg = &sim.server.sim.cfg;
    send(
        sim.http
            .post(format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", cfg.client_id.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
                ("scope", "https://graph.microsoft.com/.default"),
            ]),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_assertion_gets_a_token_once() {
    let mut cfg = config(small_spec(104));
    cfg.client_certificates_pem = Some(CLIENT_CERT.to_string());
    let sim = start(cfg).await;
    let jti = format!("{:032x}", rand::random::<u128>());
    let assertion = client_assertion(&sim, &jti, CLIENT_KEY);

    let r = assertion_token(&sim, &assertion).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().is_some_and(|s| s > 0), "{v}");
    let token = v["access_token"].as_str().expect("access_token");
    let users = send(sim.http.get(sim.abs("/users")).bearer_auth(token)).await;
    assert_eq!(users.status, 200, "{}", users.text());
    assert!(!users.json()["value"].as_array().unwrap().is_empty());

    // The same assertion again is a replay.
    let r = assertion_token(&sim, &assertion).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_client");
    assert!(r.json().get("access_token").is_none());

    // Signed with a key that does not belong to the certificate named in x5t.
    let forged = client_assertion(&sim, "another-jti", OTHER_KEY);
    let r = assertion_token(&sim, &forged).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_client");
}

// ---- 3. paging ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_page_with_top_and_select() {
    let spec = TenantSpec {
        users: 10,
        ..small_spec(105)
    };
    let sim = start(config(spec)).await;
    let mut next = Some("/users?$top=3&$select=id,displayName".to_string());
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    while let Some(p) = next {
        let page = sim.get_ok(&p).await;
        pages += 1;
        let value = page["value"].as_array().expect("value");
        assert!(value.len() <= 3, "page of {}", value.len());
        for u in value {
            let keys: BTreeSet<&str> = u
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .filter(|k| !k.starts_with('@'))
                .collect();
            assert_eq!(keys, BTreeSet::from(["id", "displayName"]), "{u}");
            assert!(seen.insert(u["id"].as_str().unwrap().to_string()), "{u}");
        }
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        assert!(pages <= 10, "paging ends");
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(pages, 4);
    // Without $select the same users carry more properties.
    let full = sim.get_ok("/users?$top=1").await;
    assert!(full["value"][0]["userPrincipalName"].is_string(), "{full}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxpagesize_pages_a_message_delta() {
    let sim = start(config(small_spec(106))).await;
    let user = first_user(&sim).await;
    let (folders, _) = sim
        .walk(&format!("/users/{user}/mailFolders/delta"), &[])
        .await
        .expect("folder delta");
    let folder = folders
        .iter()
        .filter(|f| f["@odata.type"] != "#microsoft.graph.mailSearchFolder")
        .max_by_key(|f| f["totalItemCount"].as_u64().unwrap_or(0))
        .expect("a folder")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let total = sim
        .get_ok(&format!("/users/{user}/mailFolders/{folder}"))
        .await["totalItemCount"]
        .as_u64()
        .expect("totalItemCount") as usize;
    assert!(total > 5, "the folder spans several pages: {total}");

    let prefer = ("Prefer", "odata.maxpagesize=5");
    let mut next = Some(format!("/users/{user}/mailFolders/{folder}/messages/delta"));
    let mut got = Vec::new();
    let mut pages = 0;
    let mut delta_link = None;
    while let Some(p) = next {
        let page = match sim.get(&p, &[prefer]).await {
            Outcome::Ok(v) => v,
            Outcome::Status(s, v) => panic!("{p}: {s} {v}"),
        };
        pages += 1;
        let value = page["value"].as_array().expect("value");
        assert!(value.len() <= 5, "page of {}", value.len());
        got.extend(ids(value));
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        delta_link = page["@odata.deltaLink"].as_str().map(str::to_string);
        assert!(pages <= total + 2, "paging ends");
    }
    assert!(delta_link.is_some(), "the last page has a deltaLink");
    assert!(pages >= total.div_ceil(5), "{pages} pages for {total}");
    let distinct: BTreeSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), got.len(), "no message twice");
    assert_eq!(got.len(), total);
    // The same set as without the preference.
    let (plain, _) = sim
        .walk(
            &format!("/users/{user}/mailFolders/{folder}/messages/delta"),
            &[],
        )
        .await
        .unwrap();
    let plain: BTreeSet<String> = ids(&plain).into_iter().collect();
    assert_eq!(plain, got.into_iter().collect());
}

// ---- 4, 5. messages ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_on_a_message_trims_the_body() {
    let sim = start(config(small_spec(107))).await;
    let user = first_user(&sim).await;
    let id = ids(&inbox_messages(&sim, &user).await).swap_remove(0);
    let get = async |path: String| match sim.get(&path, &[IMMUTABLE]).await {
        Outcome::Ok(v) => v,
        Outcome::Status(s, v) => panic!("{path}: {s} {v}"),
    };
    let full = get(format!("/users/{user}/messages/{id}")).await;
    assert!(
        full["body"].is_object(),
        "a full message has a body: {full}"
    );
    let v = get(format!("/users/{user}/messages/{id}?$select=subject")).await;
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["subject"], full["subject"]);
    assert!(v.get("body").is_none(), "{v}");
    assert!(v.get("from").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_value_matches_the_manifest() {
    let sim = start(config(small_spec(108))).await;
    let user = first_user(&sim).await;
    let messages: Vec<Value> = sim
        .manifest(&user)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "message")
        .collect();
    assert!(messages.len() >= 3, "the manifest lists messages");
    for e in messages.iter().step_by(messages.len() / 3).take(3) {
        let id = e["id"].as_str().unwrap();
        let r = send(
            graph(
                &sim,
                Method::GET,
                &format!("/users/{user}/messages/{id}/$value"),
            )
            .header(IMMUTABLE.0, IMMUTABLE.1),
        )
        .await;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert!(
            r.body
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"subject: ")),
            "RFC 822 headers"
        );
        assert_eq!(sha256_hex(&r.body), e["sha256"].as_str().unwrap(), "{id}");
    }
}

// ---- 6. downloads ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_redirect_serves_byte_ranges() {
    let sim = start(config(small_spec(109))).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await;
    let (items, _) = sim
        .walk(&format!("/drives/{drive}/root/delta"), &[])
        .await
        .expect("drive delta");
    let file = items
        .iter()
        .find(|i| i["file"].is_object() && i["size"].as_u64().is_some_and(|s| s > 3000))
        .expect("a file over 3000 bytes");
    let id = file["id"].as_str().unwrap();
    let size = file["size"].as_u64().unwrap();
    let want = sim
        .manifest(&user)
        .await
        .into_iter()
        .find(|e| e["id"] == id)
        .expect("the file is in the manifest")["sha256"]
        .as_str()
        .unwrap()
        .to_string();

    let r = send(graph(
        &sim,
        Method::GET,
        &format!("/drives/{drive}/items/{id}/content"),
    ))
    .await;
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").expect("Location").to_string();

    // The pre-authenticated URL needs no token.
    let mut whole = Vec::new();
    for (range, a, b) in [
        ("bytes=0-999".to_string(), 0, 999),
        ("bytes=1000-2236".to_string(), 1000, 2236),
        ("bytes=2237-".to_string(), 2237, size - 1),
    ] {
        let r = send(sim.http.get(&location).header("Range", &range)).await;
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{size}").as_str()),
            "{range}"
        );
        assert_eq!(r.body.len() as u64, b - a + 1, "{range}");
        whole.extend_from_slice(&r.body);
    }
    assert_eq!(whole.len() as u64, size);
    assert_eq!(sha256_hex(&whole), want);

    // A suffix range is the tail.
    let r = send(sim.http.get(&location).header("Range", "bytes=-100")).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, whole[whole.len() - 100..]);

    // No range: the whole file.
    let r = send(sim.http.get(&location)).await;
    assert_eq!(r.status, 200);
    assert_eq!(sha256_hex(&r.body), want);

    // A range starting past the end cannot be satisfied.
    let r = send(
        sim.http
            .get(&location)
            .header("Range", format!("bytes={size}-")),
    )
    .await;
    assert_eq!(r.status, 416, "{}", r.text());
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );
}

// ---- 7. $batch ------------------------------------------------------------------------------

async fn batch(sim: &Sim, requests: Value) -> Reply {
    send(
        graph(sim, Method::POST, "/$batch")
            .header("Content-Type", "application/json")
            .body(json!({ "requests": requests }).to_string()),
    )
    .await
}

fn by_id<'a>(responses: &'a [Value], id: &str) -> &'a Value {
    let hits: Vec<&Value> = responses.iter().filter(|r| r["id"] == id).collect();
    assert_eq!(hits.len(), 1, "one response for id {id}: {responses:?}");
    hits[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_answers_each_request_by_id() {
    let sim = start(config(small_spec(110))).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await;
    let r = batch(
        &sim,
        json!([
            {"id": "1", "method": "GET", "url": format!("/users/{user}")},
            {"id": "2", "method": "GET", "url": format!("/users/{user}/mailFolders/inbox")},
            {"id": "3", "method": "GET", "url": format!("/drives/{drive}")},
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let responses = v["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 3, "{v}");
    for id in ["1", "2", "3"] {
        let x = by_id(responses, id);
        assert_eq!(x["status"], 200, "{x}");
        assert!(x["body"].is_object(), "{x}");
    }
    assert_eq!(by_id(responses, "1")["body"]["id"], user.as_str());
    assert!(by_id(responses, "2")["body"]["totalItemCount"].is_u64());
    assert_eq!(by_id(responses, "3")["body"]["id"], drive.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_limits_ids_and_dependencies() {
    let sim = start(config(small_spec(111))).await;
    let user = first_user(&sim).await;
    let get = |id: String| json!({"id": id, "method": "GET", "url": format!("/users/{user}")});

    let twenty: Vec<Value> = (1..=20).map(|i| get(i.to_string())).collect();
    let r = batch(&sim, json!(twenty)).await;
    assert_eq!(r.status, 200, "20 requests are allowed: {}", r.text());
    let twenty_one: Vec<Value> = (1..=21).map(|i| get(i.to_string())).collect();
    let r = batch(&sim, json!(twenty_one)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["code"].is_string());

    let r = batch(&sim, json!([get("1".into()), get("1".into())])).await;
    assert_eq!(r.status, 400, "duplicate ids: {}", r.text());
    let r = batch(&sim, json!([get("a".into()), get("A".into())])).await;
    assert_eq!(r.status, 400, "ids are case-insensitive: {}", r.text());

    let r = batch(
        &sim,
        json!([
            {"id": "1", "method": "GET", "url": format!("/users/{user}/messages/AAMkAGdoesnotexist")},
            {"id": "2", "dependsOn": ["1"], "method": "GET", "url": format!("/users/{user}")},
        ]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let responses = v["responses"].as_array().expect("responses");
    let failed = by_id(responses, "1");
    assert_eq!(failed["status"], 404, "{failed}");
    assert_error_body(&failed["body"], "ErrorItemNotFound");
    assert_eq!(by_id(responses, "2")["status"], 424, "{v}");
}

// ---- 8. throttling --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailbox_concurrency_is_four_per_mailbox() {
    let mut cfg = config(small_spec(112));
    cfg.throttle = ThrottleMode::Microsoft;
    cfg.latency = Duration::from_millis(1500);
    let sim = start(cfg).await;
    let users = user_ids(&sim).await;
    let (busy, other) = (&users[0], &users[1]);
    let busy_path = format!("/users/{busy}/mailFolders/inbox");
    let other_path = format!("/users/{other}/mailFolders/inbox");
    let busy_calls = (0..10).map(|_| send(graph(&sim, Method::GET, &busy_path)));
    let other_calls = (0..4).map(|_| send(graph(&sim, Method::GET, &other_path)));
    let (busy_replies, other_replies) = tokio::join!(
        futures::future::join_all(busy_calls),
        futures::future::join_all(other_calls)
    );

    let ok = busy_replies.iter().filter(|r| r.status == 200).count();
    let throttled: Vec<&Reply> = busy_replies.iter().filter(|r| r.status == 429).collect();
    assert!((1..=4).contains(&ok), "{ok} of 10 succeeded");
    assert_eq!(ok + throttled.len(), 10, "only 200 or 429");
    for r in throttled {
        assert_error(r, 429, "ApplicationThrottled");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!(retry >= 1, "{retry}");
    }
    for r in &other_replies {
        assert_eq!(
            r.status,
            200,
            "another mailbox is not throttled: {}",
            r.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharepoint_budget_warns_then_throttles() {
    let mut cfg = config(small_spec(113));
    cfg.throttle = ThrottleMode::Microsoft;
    cfg.limits.sharepoint_ru_per_min = Some(20);
    let sim = start(cfg).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await; // 1 RU
    let mut used = 1;
    let mut warned = false;
    let mut throttled = None;
    for _ in 0..40 {
        let r = send(graph(&sim, Method::GET, &format!("/drives/{drive}"))).await;
        if r.status == 429 {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        used += 1;
        if let Some(rem) = r.header("ratelimit-remaining") {
            warned = true;
            assert_eq!(r.header("ratelimit-limit"), Some("20"));
            assert_eq!(rem.parse::<u32>().expect("a number"), 20 - used);
            assert!(r.header("ratelimit-reset").is_some());
        } else {
            assert!(
                used * 10 < 20 * 8,
                "RateLimit-* headers past 80 % ({used} RU)"
            );
        }
    }
    let r = throttled.expect("the budget runs out");
    assert!(warned, "RateLimit-Remaining was sent before the 429");
    assert!(used <= 20, "{used} RU admitted on a 20 RU budget");
    assert_error(&r, 429, "activityLimitReached");
    assert_eq!(r.json()["error"]["innerError"]["code"], "throttledRequest");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
}

// ---- 9. uploads -----------------------------------------------------------------------------

async fn put_fragment(sim: &Sim, url: &str, all: &[u8], a: usize, b: usize, auth: bool) -> Reply {
    let mut rb = sim
        .http
        .put(url)
        .header("Content-Range", format!("bytes {a}-{b}/{}", all.len()))
        .body(all[a..=b].to_vec());
    if auth {
        rb = rb.bearer_auth(&sim.token);
    }
    send(rb).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_session_enforces_fragments_and_commits() {
    let sim = start(config(small_spec(114))).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await;
    let r = send(
        graph(
            &sim,
            Method::POST,
            &format!("/drives/{drive}/items/root:/big file.bin:/createUploadSession"),
        )
        .header("Content-Type", "application/json")
        .body(json!({"item": {"@microsoft.graph.conflictBehavior": "fail"}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["uploadUrl"]
        .as_str()
        .expect("uploadUrl")
        .to_string();
    let all = data(2 * FRAGMENT_UNIT + 12_345);
    let u = FRAGMENT_UNIT;

    let r = put_fragment(&sim, &url, &all, 0, u - 1, false).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["nextExpectedRanges"], json!([format!("{u}-")]));

    // Not a multiple of 320 KiB and not the last fragment.
    let r = put_fragment(&sim, &url, &all, u, u + 999, false).await;
    assert_error(&r, 400, "invalidRequest");
    // Overlaps what was already received.
    let r = put_fragment(&sim, &url, &all, u / 2, u / 2 + u - 1, false).await;
    assert_error(&r, 416, "invalidRange");
    // The upload URL is pre-authenticated: a token is refused.
    let r = put_fragment(&sim, &url, &all, u, 2 * u - 1, true).await;
    assert_eq!(r.status, 401, "{}", r.text());
    // None of the refused fragments moved the session on.
    let r = send(sim.http.get(&url)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["nextExpectedRanges"], json!([format!("{u}-")]));

    let r = put_fragment(&sim, &url, &all, u, 2 * u - 1, false).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        r.json()["nextExpectedRanges"],
        json!([format!("{}-", 2 * u)])
    );
    let r = put_fragment(&sim, &url, &all, 2 * u, all.len() - 1, false).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let item = r.json();
    assert_eq!(item["name"], "big file.bin");
    assert_eq!(item["size"], all.len() as u64);
    let id = item["id"].as_str().expect("id");

    let (status, body, _) = sim
        .bytes(&format!("/drives/{drive}/items/{id}/content"), None)
        .await;
    assert_eq!(status, 200);
    assert!(body == all, "downloaded bytes equal the upload");
    let entry = sim
        .manifest(&user)
        .await
        .into_iter()
        .find(|e| e["id"] == id)
        .expect("the manifest lists the upload");
    assert_eq!(entry["kind"], "file");
    assert_eq!(entry["sha256"], sha256_hex(&all).as_str());
    assert!(
        entry["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("/big file.bin")),
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_upload_and_name_conflict() {
    let sim = start(config(small_spec(115))).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await;
    let path = format!("/drives/{drive}/items/root:/hello.txt:/content");
    let r = send(graph(&sim, Method::PUT, &path).body("hello, world")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let item = r.json();
    assert_eq!(item["name"], "hello.txt");
    assert_eq!(item["size"], 12);
    let r = send(
        graph(
            &sim,
            Method::PUT,
            &format!("{path}?@microsoft.graph.conflictBehavior=fail"),
        )
        .body("second"),
    )
    .await;
    assert_error(&r, 409, "nameAlreadyExists");
    let (status, body, _) = sim
        .bytes(
            &format!(
                "/drives/{drive}/items/{}/content",
                item["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, b"hello, world", "the refused upload changed nothing");
}

// ---- 10. restore writes ---------------------------------------------------------------------

const MIME: &str = "From: Alex Wilber <alexw@contoso.example>\r\n\
To: Megan Bowen <meganb@contoso.example>\r\n\
Subject: Restored from backup\r\n\
Message-ID: <restore-test-1@cairn.example>\r\n\
Date: Tue, 11 Feb 2025 10:00:00 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
The quarterly numbers are attached in spirit.\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_restore_writes() {
    let sim = start(config(small_spec(116))).await;
    let user = first_user(&sim).await;
    let new_folder = || {
        graph(&sim, Method::POST, &format!("/users/{user}/mailFolders"))
            .header("Content-Type", "application/json")
            .header(IMMUTABLE.0, IMMUTABLE.1)
            .body(json!({"displayName": "Restored 2025"}).to_string())
    };
    let r = send(new_folder()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let folder = r.json()["id"].as_str().expect("folder id").to_string();
    let r = send(new_folder()).await;
    assert_error(&r, 409, "ErrorFolderExists");

    let delta = format!("/users/{user}/mailFolders/{folder}/messages/delta");
    let (items, link0) = sim.walk(&delta, &[IMMUTABLE]).await.expect("delta");
    assert!(items.is_empty(), "a new folder is empty: {items:?}");
    let link0 = link0.expect("deltaLink");

    let r = send(
        graph(
            &sim,
            Method::POST,
            &format!("/users/{user}/mailFolders/{folder}/messages"),
        )
        .header("Content-Type", "text/plain")
        .header(IMMUTABLE.0, IMMUTABLE.1)
        .body(base64::engine::general_purpose::STANDARD.encode(MIME)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let msg = r.json();
    assert_eq!(msg["subject"], "Restored from backup", "{msg}");
    assert_eq!(msg["isDraft"], true, "MIME imports land as drafts");
    let id = msg["id"].as_str().expect("message id").to_string();
    let r = send(
        graph(
            &sim,
            Method::GET,
            &format!("/users/{user}/messages/{id}/$value"),
        )
        .header(IMMUTABLE.0, IMMUTABLE.1),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.body == MIME.as_bytes(), "$value is the imported MIME");

    let (items, link1) = sim.walk(&link0, &[IMMUTABLE]).await.expect("delta");
    assert_eq!(
        ids(&items),
        vec![id.clone()],
        "the delta reports the import"
    );
    let link1 = link1.expect("deltaLink");

    let r = send(
        graph(
            &sim,
            Method::DELETE,
            &format!("/users/{user}/messages/{id}"),
        )
        .header(IMMUTABLE.0, IMMUTABLE.1),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = send(
        graph(&sim, Method::GET, &format!("/users/{user}/messages/{id}"))
            .header(IMMUTABLE.0, IMMUTABLE.1),
    )
    .await;
    assert_error(&r, 404, "ErrorItemNotFound");
    let (items, _) = sim.walk(&link1, &[IMMUTABLE]).await.expect("delta");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["@removed"]["reason"], "deleted", "{items:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patching_a_message_changes_its_change_key() {
    let sim = start(config(small_spec(117))).await;
    let user = first_user(&sim).await;
    let before = inbox_messages(&sim, &user).await.swap_remove(0);
    let id = before["id"].as_str().unwrap();
    let ck = before["changeKey"].as_str().expect("changeKey");
    let r = send(
        graph(&sim, Method::PATCH, &format!("/users/{user}/messages/{id}"))
            .header("Content-Type", "application/json")
            .header(IMMUTABLE.0, IMMUTABLE.1)
            .body(json!({"isRead": true}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let patched = r.json();
    assert_eq!(patched["isRead"], true);
    let ck2 = patched["changeKey"].as_str().expect("changeKey");
    assert_ne!(ck, ck2, "an update gets a new changeKey");
    assert_eq!(patched["@odata.etag"], format!("W/\"{ck2}\"").as_str());
    let again = match sim
        .get(&format!("/users/{user}/messages/{id}"), &[IMMUTABLE])
        .await
    {
        Outcome::Ok(v) => v,
        Outcome::Status(s, v) => panic!("{s} {v}"),
    };
    assert_eq!(again["changeKey"], ck2);
    assert_eq!(again["isRead"], true);
}

// ---- 11. state persistence ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_links_survive_a_restart_with_state() {
    let dir = TempDir::new("state");
    let mut cfg = config(small_spec(118));
    cfg.state_dir = Some(dir.0.clone());
    let sim = start(cfg.clone()).await;
    let user = first_user(&sim).await;
    let items = inbox_messages(&sim, &user).await;
    let (_, link) = sim
        .walk(
            &format!("/users/{user}/mailFolders/inbox/messages/delta"),
            &[IMMUTABLE],
        )
        .await
        .unwrap();
    let link = link.expect("deltaLink");
    let [changed, deleted] = [0, 1].map(|i| items[i]["id"].as_str().unwrap().to_string());
    let r = send(
        graph(
            &sim,
            Method::PATCH,
            &format!("/users/{user}/messages/{changed}"),
        )
        .header("Content-Type", "application/json")
        .header(IMMUTABLE.0, IMMUTABLE.1)
        .body(json!({"subject": "Changed before the restart"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(
        graph(
            &sim,
            Method::DELETE,
            &format!("/users/{user}/messages/{deleted}"),
        )
        .header(IMMUTABLE.0, IMMUTABLE.1),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());

    let old = sim.url();
    sim.server.stop().await;
    let sim = start(cfg).await;
    let link = rebase(&link, &old, &sim.url());
    match sim.get_once(&link, &[IMMUTABLE]).await {
        Ok(Outcome::Ok(_)) => {}
        other => panic!("the old deltaLink works after a restart: {other:?}"),
    }
    let (changes, next) = sim.walk(&link, &[IMMUTABLE]).await.expect("delta");
    assert!(next.is_some(), "a new deltaLink");
    assert_eq!(changes.len(), 2, "{changes:?}");
    let c = changes
        .iter()
        .find(|x| x["id"] == changed.as_str())
        .expect("the change");
    assert_eq!(c["subject"], "Changed before the restart");
    let d = changes
        .iter()
        .find(|x| x["id"] == deleted.as_str())
        .expect("the deletion");
    assert_eq!(d["@removed"]["reason"], "deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_links_of_a_previous_instance_without_state_are_gone() {
    let cfg = config(small_spec(119));
    let sim = start(cfg.clone()).await;
    let user = first_user(&sim).await;
    let (_, link) = sim
        .walk(
            &format!("/users/{user}/mailFolders/inbox/messages/delta"),
            &[IMMUTABLE],
        )
        .await
        .unwrap();
    let link = link.expect("deltaLink");
    let old = sim.url();
    sim.server.stop().await;
    let sim = start(cfg).await;
    let link = rebase(&link, &old, &sim.url());
    match sim.get(&link, &[IMMUTABLE]).await {
        Outcome::Status(410, v) => assert_error_body(&v, "syncStateNotFound"),
        other => panic!("expected 410, got {other:?}"),
    }
}

// ---- 12. drive delta from now --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drive_delta_token_latest_reports_only_later_changes() {
    let sim = start(config(small_spec(120))).await;
    let user = first_user(&sim).await;
    let drive = drive_of(&sim, &user).await;
    let r = send(
        graph(
            &sim,
            Method::POST,
            &format!("/drives/{drive}/root/children"),
        )
        .header("Content-Type", "application/json")
        .body(json!({"name": "Delta Test", "folder": {}}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let folder = r.json()["id"].as_str().unwrap().to_string();
    let root = sim.get_ok(&format!("/drives/{drive}/root")).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let latest = sim
        .get_ok(&format!("/drives/{drive}/root/delta?token=latest"))
        .await;
    assert_eq!(latest["value"], json!([]), "{latest}");
    assert!(latest.get("@odata.nextLink").is_none());
    let link = latest["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();

    let (items, _) = sim.walk(&link, &[]).await.expect("delta");
    assert!(items.is_empty(), "nothing changed yet: {items:?}");

    let r = send(
        graph(
            &sim,
            Method::PUT,
            &format!("/drives/{drive}/items/root:/Delta Test/new.txt:/content"),
        )
        .body("fresh"),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let file = r.json()["id"].as_str().unwrap().to_string();

    let (items, next) = sim.walk(&link, &[]).await.expect("delta");
    assert!(next.is_some(), "a new deltaLink");
    let got: BTreeSet<String> = ids(&items).into_iter().collect();
    assert_eq!(
        got,
        BTreeSet::from([file.clone(), folder.clone(), root.clone()]),
        "the new file and its parents: {items:?}"
    );
    let f = items.iter().find(|i| i["id"] == file.as_str()).unwrap();
    assert_eq!(f["name"], "new.txt");
    assert_eq!(f["parentReference"]["id"], folder.as_str());
}

// ---- 13. errors per service -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_each_services_codes() {
    let spec = TenantSpec {
        users: 40,
        mail_per_mailbox: 3,
        events_per_mailbox: 2,
        contacts_per_mailbox: 1,
        files_per_drive: 3,
        ..small_spec(121)
    };
    let sim = start(config(spec)).await;
    let (users, _) = sim
        .walk("/users?$top=40&$select=id,mail", &[])
        .await
        .unwrap();
    assert_eq!(users.len(), 40);
    let user = users[0]["id"].as_str().unwrap();
    let drive = drive_of(&sim, user).await;
    let get = async |path: &str| send(graph(&sim, Method::GET, path)).await;

    let r = get(&format!("/users/{user}/messages/AAMkAGdoesnotexist")).await;
    assert_error(&r, 404, "ErrorItemNotFound");
    let r = get(&format!("/drives/{drive}/items/01NOSUCHITEM")).await;
    assert_error(&r, 404, "itemNotFound");
    let r = get("/drives/b!nosuchdrive").await;
    assert_error(&r, 404, "itemNotFound");
    let r = get("/users/00000000-0000-0000-0000-000000000000").await;
    assert_error(&r, 404, "Request_ResourceNotFound");
    let r = get("/users/nobody@contoso.example").await;
    assert_error(&r, 404, "Request_ResourceNotFound");

    let r = get("/me").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["code"].is_string());

    let r = get(&format!(
        "/users/{user}/calendarView/delta?endDateTime=2025-12-31T00:00:00Z"
    ))
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"]["code"].is_string());
    let r = get(&format!(
        "/users/{user}/calendarView/delta?startDateTime=2025-01-01T00:00:00Z&endDateTime=2025-12-31T00:00:00Z"
    ))
    .await;
    assert_eq!(r.status, 200, "with a window it works: {}", r.text());

    // User 39 of every 40 is unlicensed: in the directory, without a mailbox.
    let unlicensed = users[39]["id"].as_str().unwrap();
    assert!(users[39]["mail"].is_null(), "{}", users[39]);
    sim.get_ok(&format!("/users/{unlicensed}")).await;
    let r = get(&format!("/users/{unlicensed}/mailFolders")).await;
    assert_error(&r, 404, "MailboxNotEnabledForRESTAPI");
    let r = get(&format!("/users/{unlicensed}/mailFolders/inbox")).await;
    assert_error(&r, 404, "MailboxNotEnabledForRESTAPI");
    sim.get_ok(&format!("/users/{user}/mailFolders/inbox"))
        .await;
}

#[test]
fn folder_listings_answer() {
    // On its own runtime with a deadline: a simulator that deadlocks fails this test instead
    // of hanging the suite.
    within(Duration::from_secs(5), async || {
        let sim = start(config(small_spec(122))).await;
        let user = first_user(&sim).await;
        let (folders, _) = sim
            .walk(&format!("/users/{user}/mailFolders"), &[])
            .await
            .expect("mail folder listing");
        let names: BTreeSet<&str> = folders
            .iter()
            .filter_map(|f| f["displayName"].as_str())
            .collect();
        assert!(names.contains("Inbox"), "{names:?}");
        assert!(
            folders.iter().all(|f| f["isHidden"] != true),
            "hidden folders only with includeHiddenFolders: {folders:?}"
        );
        let (contacts, _) = sim
            .walk(&format!("/users/{user}/contactFolders"), &[])
            .await
            .expect("contact folder listing");
        assert!(!contacts.is_empty());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_delta_pages_with_maxpagesize() {
    let sim = start(config(small_spec(131))).await;
    let user = first_user(&sim).await;
    let path = format!("/users/{user}/mailFolders/delta");
    let (whole, _) = sim.walk(&path, &[]).await.unwrap();
    let mut pages = 0;
    let mut seen = Vec::new();
    let mut next = Some(path.clone());
    let mut delta = None;
    while let Some(p) = next.take() {
        let page = match sim.get(&p, &[("Prefer", "odata.maxpagesize=3")]).await {
            crate::harness::Outcome::Ok(v) => v,
            other => panic!("{other:?}"),
        };
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|f| f["id"].as_str().unwrap().to_string()));
        pages += 1;
        next = page["@odata.nextLink"].as_str().map(str::to_string);
        delta = page["@odata.deltaLink"].as_str().map(str::to_string);
    }
    assert!(pages > 2, "{pages} pages");
    let mut want: Vec<String> = whole
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    seen.sort();
    assert_eq!(seen, want, "every folder once");
    // The link at the end reports later changes only.
    let created = sim
        .http
        .post(sim.abs(&format!("/users/{user}/mailFolders")))
        .bearer_auth(&sim.token)
        .json(&serde_json::json!({"displayName": "Paged"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let (changes, _) = sim.walk(&delta.unwrap(), &[]).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["displayName"], "Paged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hierarchical_sharing_marks_only_items_shared_on_their_own() {
    let spec = TenantSpec {
        users: 1,
        groups: 0,
        sites: 0,
        mail_per_mailbox: 0,
        files_per_drive: 40,
        ..small_spec(107)
    };
    let mut cfg = config(spec);
    cfg.throttle = ThrottleMode::Microsoft;
    let sim = start(cfg).await;
    let user = first_user(&sim).await;
    let delta = format!("/users/{user}/drive/root/delta");
    let hierarchical = [("Prefer", "hierarchicalsharing")];
    let (items, _) = sim.walk(&delta, &hierarchical).await.expect("delta");
    let (plain, _) = sim.walk(&delta, &[]).await.expect("delta");
    let not_root = |v: &&Value| v.get("root").is_none();
    // Without the preference every item carries sharing information.
    assert!(
        plain
            .iter()
            .filter(not_root)
            .all(|v| v.get("shared").is_some())
    );
    let (mut shared, mut files) = (0u64, 0u64);
    for it in items.iter().filter(not_root) {
        files += u64::from(it.get("file").is_some());
        let perms = sim
            .get_ok(&format!(
                "/drives/{}/items/{}/permissions",
                it["parentReference"]["driveId"].as_str().unwrap(),
                it["id"].as_str().unwrap()
            ))
            .await;
        let own = perms["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.get("link").is_some());
        assert_eq!(own, it.get("shared").is_some(), "{it}");
        shared += u64::from(own);
    }
    assert!(shared > 0 && shared < files, "{shared} of {files}");
    // A complete backup of the drive: its delta (one page, 2 resource units), a download per
    // file, the permissions of each item shared on its own (5 each). Both rates are bound by
    // the same budget, so they differ by that cost against one unit per file.
    let stats = sim.server.sim.stats_json();
    let (ideal, complete) = (
        stats["ideal_items_per_sec"].as_f64().unwrap(),
        stats["complete_items_per_sec"].as_f64().unwrap(),
    );
    let ru = 2 + files + 5 * shared;
    assert!(
        (ideal / complete - ru as f64 / files as f64).abs() < 1e-9,
        "ideal {ideal}, complete {complete}, {ru} units for {files} files"
    );
}
