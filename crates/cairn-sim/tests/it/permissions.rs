//! Application permissions: the `roles` of an app's token decide what it may call, refused as
//! Graph refuses (403 with the service's error), per request and per `$batch` part;
//! `Sites.Selected` apps reach only the sites granted to them.

use crate::harness::{Sim, config, small_spec, start};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cairn_sim::auth::GRANTED_ROLES;
use cairn_sim::{SimApp, SimConfig};
use serde_json::{Value, json};

const USERS_ONLY: &str = "10000000-0000-0000-0000-000000000001";
const MAIL_READER: &str = "10000000-0000-0000-0000-000000000002";
const SELECTED: &str = "10000000-0000-0000-0000-000000000003";
const WIDE: &str = "10000000-0000-0000-0000-000000000004";
const SECRET: &str = "app-secret";

fn cfg() -> SimConfig {
    let mut cfg = config(small_spec(71));
    cfg.apps = vec![
        SimApp::new(USERS_ONLY, SECRET, &["User.Read.All"]),
        SimApp::new(MAIL_READER, SECRET, &["User.Read.All", "Mail.Read"]),
        SimApp::new(SELECTED, SECRET, &["Sites.Selected"]),
        SimApp::new(WIDE, SECRET, &["Sites.Read.All", "Files.Read.All"]),
    ];
    cfg
}

/// The token endpoint's answer for `client_id` and `secret`.
async fn token_response(sim: &Sim, client_id: &str, secret: &str) -> (u16, Value) {
    let cfg = &sim.server.sim.cfg;
    let resp = sim
        .http
        .post(format!("{}/{}/oauth2/v2.0/token", sim.url(), cfg.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn token(sim: &Sim, client_id: &str) -> String {
    let (status, v) = token_response(sim, client_id, SECRET).await;
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().expect("a token").to_owned()
}

fn claims(token: &str) -> Value {
    let body = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
}

/// One Graph call with `token`, no retries (the simulator runs without faults here).
async fn call(
    sim: &Sim,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut rb = sim.http.request(method, sim.abs(path)).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn get(sim: &Sim, token: &str, path: &str) -> (u16, Value) {
    call(sim, token, "GET", path, None).await
}

/// A user with a mailbox and a OneDrive.
fn member(sim: &Sim) -> String {
    let t = &sim.server.sim.model.tenant;
    (0..t.spec.users)
        .filter_map(|i| t.user(i))
        .find(|u| u.has_mailbox() && u.has_drive())
        .expect("a licensed member")
        .id
}

/// Two standalone sites (site collections with a library and lists).
fn two_sites(sim: &Sim) -> (String, String) {
    let t = &sim.server.sim.model.tenant;
    (t.site(0).unwrap().id, t.site(1).unwrap().id)
}

#[track_caller]
fn assert_denied(got: &(u16, Value), code: &str, message: &str) {
    let (status, body) = got;
    assert_eq!(*status, 403, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["message"], message, "{body}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "{body}"
    );
}

const OUTLOOK: (&str, &str) = (
    "ErrorAccessDenied",
    "Access is denied. Check credentials and try again.",
);
const FILES: (&str, &str) = ("accessDenied", "Access denied");
const DIRECTORY: (&str, &str) = (
    "Authorization_RequestDenied",
    "Insufficient privileges to complete the operation.",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_app_keeps_every_permission() {
    let sim = start(cfg()).await;
    let roles = claims(&sim.token)["roles"].clone();
    assert_eq!(roles, json!(GRANTED_ROLES), "the default app's roles claim");
    let user = member(&sim);
    let (site, _) = two_sites(&sim);
    for path in [
        "/users".to_owned(),
        "/groups".to_owned(),
        format!("/users/{user}/mailFolders/inbox/messages"),
        format!("/users/{user}/contacts"),
        format!("/users/{user}/calendars"),
        format!("/users/{user}/drive/root/delta"),
        format!("/sites/{site}/lists"),
        "/sites/getAllSites".to_owned(),
    ] {
        let (status, body) = get(&sim, &sim.token, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_roles_claim_carries_the_apps_permissions() {
    let sim = start(cfg()).await;
    let c = claims(&token(&sim, MAIL_READER).await);
    assert_eq!(c["roles"], json!(["User.Read.All", "Mail.Read"]));
    assert_eq!(c["appid"], MAIL_READER);
    assert_eq!(c["idtyp"], "app");
    let c = claims(&token(&sim, SELECTED).await);
    assert_eq!(c["roles"], json!(["Sites.Selected"]));

    // Each app signs in with its own secret, and only with it.
    let (status, body) = token_response(&sim, USERS_ONLY, "cairn-sim-secret").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = token_response(&sim, "10000000-0000-0000-0000-00000000ffff", SECRET).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS700016")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_read_all_lists_users_but_reads_no_mailbox_or_drive() {
    let sim = start(cfg()).await;
    let t = token(&sim, USERS_ONLY).await;
    let user = member(&sim);
    let (status, users) = get(&sim, &t, "/users").await;
    assert_eq!(status, 200, "{users}");
    assert!(!users["value"].as_array().unwrap().is_empty());
    assert_eq!(get(&sim, &t, &format!("/users/{user}")).await.0, 200);

    let (code, message) = OUTLOOK;
    for path in [
        format!("/users/{user}/mailFolders/inbox/messages"),
        format!("/users/{user}/mailFolders/delta"),
        format!("/users/{user}/calendarView/delta?startDateTime=2020-01-01&endDateTime=2030-01-01"),
        format!("/users/{user}/contactFolders"),
    ] {
        assert_denied(&get(&sim, &t, &path).await, code, message);
    }
    let (code, message) = FILES;
    assert_denied(
        &get(&sim, &t, &format!("/users/{user}/drive")).await,
        code,
        message,
    );
    assert_denied(
        &get(&sim, &t, &format!("/users/{user}/drive/root/delta")).await,
        code,
        message,
    );
    let (code, message) = DIRECTORY;
    assert_denied(&get(&sim, &t, "/groups").await, code, message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_read_reads_messages_but_may_not_change_them() {
    let sim = start(cfg()).await;
    let t = token(&sim, MAIL_READER).await;
    let user = member(&sim);
    let inbox = format!("/users/{user}/mailFolders/inbox/messages");
    let (status, page) = get(&sim, &t, &inbox).await;
    assert_eq!(status, 200, "{page}");
    let message = page["value"][0].clone();
    let id = message["id"].as_str().expect("a message").to_owned();
    assert_eq!(
        get(&sim, &t, &format!("/users/{user}/messages/{id}"))
            .await
            .0,
        200
    );

    let (code, msg) = OUTLOOK;
    let created = call(
        &sim,
        &t,
        "POST",
        &inbox,
        Some(json!({"subject": "not allowed"})),
    )
    .await;
    assert_denied(&created, code, msg);
    let patched = call(
        &sim,
        &t,
        "PATCH",
        &format!("/users/{user}/messages/{id}"),
        Some(json!({"subject": "changed"})),
    )
    .await;
    assert_denied(&patched, code, msg);
    let deleted = call(
        &sim,
        &t,
        "DELETE",
        &format!("/users/{user}/messages/{id}"),
        None,
    )
    .await;
    assert_denied(&deleted, code, msg);

    // Nothing changed: the message reads as before.
    let (_, again) = get(&sim, &t, &format!("/users/{user}/messages/{id}")).await;
    assert_eq!(again["subject"], message["subject"]);
    // The default app, with Mail.ReadWrite, may.
    let (status, body) = call(
        &sim,
        &sim.token,
        "PATCH",
        &format!("/users/{user}/messages/{id}"),
        Some(json!({"subject": "changed"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_part_is_refused_on_its_own() {
    let sim = start(cfg()).await;
    let t = token(&sim, USERS_ONLY).await;
    let user = member(&sim);
    let batch = json!({"requests": [
        {"id": "users", "method": "GET", "url": "/users"},
        {"id": "mail", "method": "GET", "url": format!("/users/{user}/mailFolders/inbox/messages")},
        {"id": "drive", "method": "GET", "url": format!("/users/{user}/drive/root/delta")},
        {"id": "write", "method": "POST", "url": format!("/users/{user}/mailFolders"),
         "headers": {"Content-Type": "application/json"}, "body": {"displayName": "X"}},
    ]});
    let (status, body) = call(&sim, &t, "POST", "/$batch", Some(batch)).await;
    assert_eq!(status, 200, "{body}");
    let part = |id: &str| {
        body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("part {id}"))
            .clone()
    };
    assert_eq!(part("users")["status"], 200);
    for (id, (code, message)) in [("mail", OUTLOOK), ("drive", FILES), ("write", OUTLOOK)] {
        let p = part(id);
        assert_denied(
            &(p["status"].as_u64().unwrap() as u16, p["body"].clone()),
            code,
            message,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_permissions_imply_lower_ones() {
    let sim = start(cfg()).await;
    // Sites.Read.All and Files.Read.All: every drive and every site, read only.
    let t = token(&sim, WIDE).await;
    let user = member(&sim);
    let (site, _) = two_sites(&sim);
    for path in [
        format!("/users/{user}/drive/root/delta"),
        format!("/sites/{site}/drive/root/delta"),
        format!("/sites/{site}/lists"),
        "/sites/getAllSites".to_owned(),
    ] {
        let (status, body) = get(&sim, &t, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (code, message) = FILES;
    let list = sim_list(&sim, &site).await;
    let created = call(
        &sim,
        &t,
        "POST",
        &format!("/sites/{site}/lists/{list}/items"),
        Some(json!({"fields": {"Title": "x"}})),
    )
    .await;
    assert_denied(&created, code, message);
}

/// The first list of a site, as the default app sees it.
async fn sim_list(sim: &Sim, site: &str) -> String {
    let (status, lists) = get(sim, &sim.token, &format!("/sites/{site}/lists")).await;
    assert_eq!(status, 200, "{lists}");
    lists["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list"]["template"] != "documentLibrary")
        .expect("a generic list")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_selected_reaches_only_the_sites_granted() {
    let sim = start(cfg()).await;
    let t = token(&sim, SELECTED).await;
    let (granted, other) = two_sites(&sim);
    let (code, message) = FILES;
    assert_denied(
        &get(&sim, &t, &format!("/sites/{granted}")).await,
        code,
        message,
    );

    // An app without Sites.FullControl.All may not grant itself.
    let grant = |role: &str| {
        json!({"roles": [role], "grantedToIdentities": [
            {"application": {"id": SELECTED, "displayName": "Cairn restore"}}]})
    };
    let path = format!("/sites/{granted}/permissions");
    assert_denied(
        &call(&sim, &t, "POST", &path, Some(grant("read"))).await,
        code,
        message,
    );

    let (status, perm) = call(&sim, &sim.token, "POST", &path, Some(grant("read"))).await;
    assert_eq!(status, 201, "{perm}");
    assert_eq!(perm["roles"], json!(["read"]));
    let who = json!([{"application": {"id": SELECTED, "displayName": "Cairn restore"}}]);
    assert_eq!(perm["grantedToIdentities"], who);
    assert_eq!(perm["grantedToIdentitiesV2"], who);
    let perm_id = perm["id"].as_str().unwrap().to_owned();
    let (status, listed) = get(&sim, &sim.token, &path).await;
    assert_eq!(
        (status, listed["value"][0]["id"].as_str()),
        (200, Some(perm_id.as_str()))
    );

    // Read access to that site, its libraries and lists; nothing else.
    let list = sim_list(&sim, &granted).await;
    for p in [
        format!("/sites/{granted}"),
        format!("/sites/{granted}/drives"),
        format!("/sites/{granted}/drive/root/delta"),
        format!("/sites/{granted}/lists/{list}/items"),
    ] {
        let (status, body) = get(&sim, &t, &p).await;
        assert_eq!(status, 200, "{p}: {body}");
    }
    let drive = get(&sim, &t, &format!("/sites/{granted}/drive")).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&sim, &t, &format!("/drives/{drive}/root/children"))
            .await
            .0,
        200
    );
    assert_denied(
        &get(&sim, &t, &format!("/sites/{other}")).await,
        code,
        message,
    );
    assert_denied(
        &get(&sim, &t, &format!("/sites/{other}/drive/root/delta")).await,
        code,
        message,
    );
    assert_denied(&get(&sim, &t, "/sites/getAllSites").await, code, message);
    assert_denied(&get(&sim, &t, "/sites?search=*").await, code, message);
    let item = json!({"fields": {"Title": "restored"}});
    let items = format!("/sites/{granted}/lists/{list}/items");
    assert_denied(
        &call(&sim, &t, "POST", &items, Some(item.clone())).await,
        code,
        message,
    );

    // A write grant (here by updating the permission) allows writes; revoking it, nothing.
    let perm_path = format!("{path}/{perm_id}");
    let (status, body) = call(
        &sim,
        &sim.token,
        "PATCH",
        &perm_path,
        Some(json!({"roles": ["write"]})),
    )
    .await;
    assert_eq!(
        (status, body["roles"].clone()),
        (200, json!(["write"])),
        "{body}"
    );
    let (status, body) = call(&sim, &t, "POST", &items, Some(item)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        call(&sim, &sim.token, "DELETE", &perm_path, None).await.0,
        204
    );
    assert_denied(
        &get(&sim, &t, &format!("/sites/{granted}")).await,
        code,
        message,
    );

    // Grants are for apps the directory knows.
    let stranger = json!({"roles": ["read"], "grantedToIdentities": [
        {"application": {"id": "10000000-0000-0000-0000-00000000ffff"}}]});
    assert_eq!(
        call(&sim, &sim.token, "POST", &path, Some(stranger))
            .await
            .0,
        400
    );
}
