//! The simulator service: the request pipeline every Graph call goes through
//! (authentication and authorisation → fault injection → throttling → handler), `$batch`,
//! token endpoint, pre-authenticated downloads and upload sessions, and statistics.

use crate::auth::{AssertionVerifier, GRANTED_ROLES, TokenClaims, TokenIssuer};
use crate::config::{SimApp, SimConfig, ThrottleMode};
use crate::keys::{CollKey, ItemKey, Res};
use crate::model::{DriveNode, Model};
use crate::paging::gone;
use crate::permissions::SiteGrants;
use crate::seeded::{hash, mix};
use crate::state::{Content, State};
use crate::tenant::Tenant;
use crate::throttle::{Bucket, Throttle};
use crate::wire::{Body, Req, Resp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A fault the simulator injects into one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    Status(u16),
    Reset,
    Truncate,
    Slow,
    ExpiredToken,
    Resync,
    DuplicateItem,
}

#[derive(Default, Debug)]
pub struct Stats {
    pub requests_total: AtomicU64,
    pub throttled_total: AtomicU64,
    pub faults_total: AtomicU64,
    pub bytes_served: AtomicU64,
    pub by_endpoint: Mutex<BTreeMap<String, u64>>,
    pub by_status: Mutex<BTreeMap<u16, u64>>,
}

/// An open upload session (OneDrive).
#[derive(Debug)]
pub struct UploadSession {
    pub coll: CollKey,
    /// The folder to create the file in, or the file to replace.
    pub target: ItemKey,
    pub new_name: Option<String>,
    pub behaviour: String,
    pub total: Option<u64>,
    pub data: BytesMut,
    pub expires: chrono::DateTime<chrono::Utc>,
}

pub struct Sim {
    pub cfg: SimConfig,
    pub model: Model,
    state: Mutex<State>,
    pub stats: Stats,
    pub throttle: Arc<Throttle>,
    pub issuer: TokenIssuer,
    /// Built when the server knows its own address (the assertion audience).
    verifier: std::sync::OnceLock<AssertionVerifier>,
    /// Key for pre-authenticated download URLs.
    url_key: u64,
    fault_counter: AtomicU64,
    pub uploads: Mutex<HashMap<String, UploadSession>>,
    /// Throttling bursts injected by faults: further 429s owed per mailbox.
    bursts: Mutex<HashMap<Res, u32>>,
    /// Which `Sites.Selected` apps were granted which site collections.
    pub site_grants: SiteGrants,
    /// Sign-in for people (OpenID Connect): signing keys, codes, redirect URIs, app roles.
    pub idp: crate::oidc::IdentityProvider,
    /// To Do, inbox rules and mailbox settings (`todo.rs`).
    pub extras: crate::todo::Extras,
    /// Teams' channels and chats (`teams`).
    pub teams: crate::teams::Teams,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("tenant_id", &self.cfg.tenant_id)
            .finish_non_exhaustive()
    }
}

/// The URL-safe encoding of a signed, expiring capability (download URLs, upload sessions).
#[derive(Serialize, Deserialize)]
struct DownloadCap {
    c: CollKey,
    k: ItemKey,
    /// Version number (1-based), 0 = current.
    v: usize,
    e: i64,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> anyhow::Result<Self> {
        let state = State::open(cfg.state_dir.as_deref())?;
        let tenant = Tenant::new(cfg.tenant.clone());
        let licences = (0..cfg.tenant.users)
            .filter(|&i| tenant.user(i).is_some_and(|u| u.has_drive()))
            .count() as u32;
        // Token keys derive from the seed and state instance: tokens survive a restart with
        // the same state, as Entra's do across Graph front ends.
        let mut key = [0u8; 32];
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(
                &hash(cfg.tenant.seed ^ state.instance, &[77, i as u64]).to_le_bytes(),
            );
        }
        let mut client_ids = vec![cfg.client_id.as_str()];
        for app in &cfg.apps {
            if app.client_id.is_empty() || app.client_secret.is_empty() {
                anyhow::bail!(
                    "app {:?} needs a client id and a client secret",
                    app.client_id
                );
            }
            if client_ids.contains(&app.client_id.as_str()) {
                anyhow::bail!(
                    "app client id {} is given twice (the default app is {})",
                    app.client_id,
                    cfg.client_id
                );
            }
            client_ids.push(&app.client_id);
        }
        if let Some(pem) = &cfg.client_certificates_pem {
            // Validate early so a bad certificate fails at start-up, not at first login.
            AssertionVerifier::new(&cfg.client_id, vec!["x".into()], pem)
                .map_err(|e| anyhow::anyhow!("client certificate: {e}"))?;
        }
        Ok(Self {
            throttle: Arc::new(Throttle::new(cfg.throttle, cfg.limits.clone(), licences)),
            issuer: TokenIssuer::new(key, cfg.token_lifetime),
            verifier: std::sync::OnceLock::new(),
            url_key: mix(cfg.tenant.seed ^ state.instance ^ 0x5eed),
            model: Model::new(tenant),
            state: Mutex::new(state),
            stats: Stats::default(),
            fault_counter: AtomicU64::new(0),
            uploads: Mutex::new(HashMap::new()),
            bursts: Mutex::new(HashMap::new()),
            site_grants: SiteGrants::default(),
            idp: crate::oidc::IdentityProvider::new(cfg.tenant.seed),
            extras: crate::todo::Extras::open(cfg.state_dir.as_deref())?,
            teams: crate::teams::Teams::open(cfg.state_dir.as_deref())?,
            cfg,
        })
    }

    /// Tells the simulator the identity root it is served at (`http://host:port`), the
    /// audience of client assertions.
    pub fn set_login_base(&self, base: &str) -> anyhow::Result<()> {
        if let Some(pem) = &self.cfg.client_certificates_pem {
            let audiences = [&self.cfg.tenant_id, &self.cfg.tenant.domain]
                .iter()
                .map(|t| format!("{base}/{t}/oauth2/v2.0/token"))
                .collect();
            let v = AssertionVerifier::new(&self.cfg.client_id, audiences, pem)
                .map_err(|e| anyhow::anyhow!("client certificate: {e}"))?;
            let _ = self.verifier.set(v);
        }
        Ok(())
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- capabilities ------------------------------------------------------------------

    pub(crate) fn sign(&self, payload: &str) -> String {
        let h = payload.bytes().fold(self.url_key, |h, b| mix(h ^ b as u64));
        format!("{h:016x}")
    }

    pub fn download_url(&self, req: &Req, node: &DriveNode) -> String {
        self.download_url_for(req, node, None, 0)
    }

    pub fn download_url_for(
        &self,
        req: &Req,
        node: &DriveNode,
        _content: Option<Content>,
        version: usize,
    ) -> String {
        let cap = DownloadCap {
            c: node.coll,
            k: node.key,
            v: if version == node.versions.len() + 1 {
                0
            } else {
                version
            },
            e: chrono::Utc::now().timestamp() + 3600,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cap).unwrap_or_default());
        let sig = self.sign(&payload);
        format!("{}/_dl/{payload}.{sig}", req.base)
    }

    /// Serves a pre-authenticated download URL, honouring `Range`.
    pub fn download(&self, token: &str, range: Option<&str>) -> Resp {
        let Some((payload, sig)) = token.split_once('.') else {
            return Resp::error(401, "unauthenticated", "Invalid download token.");
        };
        if self.sign(payload) != sig {
            return Resp::error(401, "unauthenticated", "Invalid download token.");
        }
        let Some(cap) = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice::<DownloadCap>(&b).ok())
        else {
            return Resp::error(401, "unauthenticated", "Invalid download token.");
        };
        if cap.e < chrono::Utc::now().timestamp() {
            return Resp::error(401, "unauthenticated", "The download URL has expired.");
        }
        let st = self.state();
        let Some(node) = self.model.drive_node(&st, cap.k).filter(|n| !n.deleted) else {
            return Resp::not_found_files();
        };
        let content = if cap.v == 0 {
            node.content.clone()
        } else {
            match node.versions.get(cap.v - 1) {
                Some((c, _)) => c.clone(),
                None => return Resp::not_found_files(),
            }
        };
        let len = Model::content_len(&content);
        let parsed = range.and_then(|r| parse_range(r, len));
        match (range, parsed) {
            (Some(_), Some(Ok((a, b)))) => {
                let data = self
                    .model
                    .content_bytes(&st, &content, a, b + 1)
                    .unwrap_or_default();
                Resp::bytes(206, data, "application/octet-stream")
                    .with_header("Content-Range", format!("bytes {a}-{b}/{len}"))
                    .with_header("Accept-Ranges", "bytes")
            }
            (Some(_), Some(Err(()))) => Resp::error(
                416,
                "invalidRange",
                "The requested range is not satisfiable.",
            )
            .with_header("Content-Range", format!("bytes */{len}")),
            _ => {
                // An unparseable range is ignored: the whole body, as the service does.
                let data = self
                    .model
                    .content_bytes(&st, &content, 0, len)
                    .unwrap_or_default();
                Resp::bytes(200, data, "application/octet-stream")
                    .with_header("Accept-Ranges", "bytes")
            }
        }
    }

    // ---- statistics --------------------------------------------------------------------

    pub fn count(&self, label: &str, status: u16, bytes: u64) {
        self.stats.requests_total.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes_served.fetch_add(bytes, Ordering::Relaxed);
        if status == 429 {
            self.stats.throttled_total.fetch_add(1, Ordering::Relaxed);
        }
        *self
            .stats
            .by_endpoint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label.to_string())
            .or_default() += 1;
        *self
            .stats
            .by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(status)
            .or_default() += 1;
    }

    // ---- the pipeline ------------------------------------------------------------------

    /// Which throttling bucket a Graph path falls in, and its cost in resource units.
    pub fn bucket(&self, method: &str, path: &str, query_has_token: bool) -> Bucket {
        let s: Vec<&str> = path.split('/').filter(|x| !x.is_empty()).collect();
        let files_cost = |s: &[&str]| -> u32 {
            let last = s.last().copied().unwrap_or("");
            if last == "permissions" || path.contains("permissions") {
                5
            } else if method != "GET"
                || (last == "delta" && !query_has_token)
                || ["children", "items", "drives", "lists"].contains(&last)
            {
                2
            } else {
                1
            }
        };
        match s.as_slice() {
            ["users", u, rest @ ..] => match rest.first() {
                None | Some(&"drives") => Bucket::Other,
                Some(&"drive") => Bucket::Files {
                    ru: files_cost(rest),
                },
                Some(_) => match self.model.tenant.find_user(u) {
                    Some(user) => Bucket::Mailbox(Res::User(user.idx)),
                    None => Bucket::Other,
                },
            },
            ["drives", ..] | ["sites", ..] => Bucket::Files { ru: files_cost(&s) },
            // The mailbox import/export API: the mailbox's owner's Exchange limits.
            ["admin", "exchange", "mailboxes", m, ..] => {
                match crate::mailbox_api::parse_mailbox_id(&self.model.tenant, m) {
                    Some(mb) => Bucket::Mailbox(Res::User(mb.user)),
                    None => Bucket::Other,
                }
            }
            ["groups", _, "drive", ..] | ["groups", _, "sites", ..] => {
                Bucket::Files { ru: files_cost(&s) }
            }
            // A group's conversations live in its mailbox: Exchange's per-mailbox limits.
            ["groups", g, "threads" | "conversations", ..] => {
                match self.model.tenant.find_group(g) {
                    Some(group) => Bucket::Mailbox(Res::Group(group.idx)),
                    None => Bucket::Other,
                }
            }
            _ => Bucket::Other,
        }
    }

    /// Draws the fault (if any) for the next request.
    pub fn draw_fault(&self, req: &Req, batch_part: bool) -> Option<Fault> {
        if self.cfg.fault_rate <= 0.0 {
            return None;
        }
        let n = self.fault_counter.fetch_add(1, Ordering::Relaxed);
        let h = hash(self.cfg.tenant.seed, &[0xFA, n]);
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u >= self.cfg.fault_rate {
            return None;
        }
        let has_token =
            req.q("$deltatoken").is_some() || req.q("token").is_some_and(|t| t != "latest");
        let paging = req.q("$skiptoken").is_some() || req.path.ends_with("/delta");
        let pick = mix(h) % 100;
        let f = match pick {
            0..=24 => Fault::Throttle,
            25..=34 => Fault::Status(500),
            35..=44 => Fault::Status(503),
            45..=52 => Fault::Status(504),
            53..=60 if !batch_part => Fault::Reset,
            61..=68 if !batch_part => Fault::Truncate,
            69..=76 => Fault::Slow,
            77..=82 => Fault::ExpiredToken,
            83..=90 if has_token => Fault::Resync,
            91..=99 if paging => Fault::DuplicateItem,
            _ => Fault::Status(503),
        };
        self.stats.faults_total.fetch_add(1, Ordering::Relaxed);
        Some(f)
    }

    /// One Graph request, direct or a `$batch` part: authentication and authorisation,
    /// faults, throttling, handler.
    /// Returns the response and the fault the transport must apply (reset, truncate).
    pub async fn serve_graph(&self, mut req: Req, batch_part: bool) -> (Resp, Option<Fault>) {
        let label = endpoint_label(&req.method, &req.path);
        if let Err(resp) = self.authorize(&req) {
            self.count(&label, resp.status, 0);
            return (resp, None);
        }
        let fault = self.draw_fault(&req, batch_part);
        let has_token = req.q("$deltatoken").is_some()
            || req.q("token").is_some()
            || req.q("$skiptoken").is_some();
        let bucket = self
            .teams_bucket(&req)
            .unwrap_or_else(|| self.bucket(&req.method, &req.path, has_token));
        // Bursts: a mailbox that was throttled by a fault stays throttled for a few requests.
        if let Bucket::Mailbox(r) = bucket {
            let mut bursts = self.bursts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = bursts.get_mut(&r)
                && *n > 0
            {
                *n -= 1;
                drop(bursts);
                let resp = throttled_resp(false, 1);
                self.count(&label, 429, 0);
                return (resp, None);
            }
        }
        let mut transport_fault = None;
        match fault {
            Some(Fault::Throttle) => {
                let files = matches!(bucket, Bucket::Files { .. });
                if let Bucket::Mailbox(r) = bucket {
                    self.bursts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(r, 2);
                }
                self.count(&label, 429, 0);
                return (
                    throttled_resp(files, 1 + self.fault_counter.load(Ordering::Relaxed) % 2),
                    None,
                );
            }
            Some(Fault::Status(code)) => {
                self.count(&label, code, 0);
                let mut r = Resp::error(
                    code,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable.",
                );
                if code == 503 {
                    r = r.with_header("Retry-After", "1");
                }
                return (r, None);
            }
            Some(Fault::ExpiredToken) if !self.token_is_fresh(&req) => {
                self.count(&label, 401, 0);
                return (
                    Resp::error(
                        401,
                        "InvalidAuthenticationToken",
                        "Lifetime validation failed, the token is expired.",
                    ),
                    None,
                );
            }
            Some(Fault::Resync) => {
                self.count(&label, 410, 0);
                let files = req.q("token").is_some();
                let url = format!("{}/v1.0{}", req.base, req.path);
                return (gone(files, &url), None);
            }
            Some(Fault::Slow) => tokio::time::sleep(Duration::from_millis(1500)).await,
            Some(Fault::DuplicateItem) => req.duplicate_page_item = true,
            Some(f @ (Fault::Reset | Fault::Truncate)) => transport_fault = Some(f),
            // A token issued moments ago is not reported expired: a client that renews once
            // on 401, as Microsoft advises, must succeed.
            Some(Fault::ExpiredToken) | None => {}
        }
        let permit = match self.throttle.admit(bucket) {
            Ok(p) => p,
            Err(rej) => {
                self.count(&label, rej.status, 0);
                let mut r = if rej.files {
                    Resp::nested_error(rej.status, rej.code, "throttledRequest", rej.message)
                } else {
                    Resp::error(rej.status, rej.code, rej.message)
                };
                r = r.with_header("Retry-After", rej.retry_after.to_string());
                for (k, v) in rej.headers {
                    r = r.with_header(&k, v);
                }
                return (r, None);
            }
        };
        if !self.cfg.latency.is_zero() {
            tokio::time::sleep(self.cfg.latency).await;
        }
        // Handlers are synchronous and short; generation of large bodies runs off the
        // async workers.
        let mut resp = tokio::task::block_in_place(|| self.graph(&req));
        for (k, v) in &permit.headers {
            resp = resp.with_header(k, v.clone());
        }
        drop(permit);
        self.count(&label, resp.status, body_len(&resp.body));
        (resp, transport_fault)
    }

    /// `POST /$batch`: up to 20 requests, `dependsOn`, each answered like a direct call.
    pub async fn batch(&self, outer: &Req) -> Resp {
        let body: Value = match serde_json::from_slice(&outer.body) {
            Ok(v) => v,
            Err(e) => return Resp::bad_request(&format!("Invalid batch payload: {e}")),
        };
        let Some(requests) = body["requests"].as_array() else {
            return Resp::bad_request("Batch request must have a 'requests' array.");
        };
        if requests.len() > 20 {
            return Resp::bad_request(
                "The number of batch requests exceeds the allowed limit of 20.",
            );
        }
        let mut ids = std::collections::HashSet::new();
        for r in requests {
            let Some(id) = r["id"].as_str() else {
                return Resp::bad_request("Each batch request needs an 'id'.");
            };
            if !ids.insert(id.to_ascii_lowercase()) {
                return Resp::bad_request(&format!("Batch request id '{id}' is duplicated."));
            }
            if r.get("body").is_some()
                && !r["headers"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("content-type")))
            {
                return Resp::bad_request(&format!(
                    "Batch request '{id}' has a body but no Content-Type header."
                ));
            }
        }
        // Requests without dependencies run concurrently; dependants run after theirs.
        let mut results: HashMap<String, u16> = HashMap::new();
        let mut responses: Vec<Value> = Vec::new();
        let mut pending: Vec<&Value> = requests.iter().collect();
        while !pending.is_empty() {
            let (ready, later): (Vec<&Value>, Vec<&Value>) = pending.into_iter().partition(|r| {
                r["dependsOn"].as_array().is_none_or(|d| {
                    d.iter()
                        .all(|x| x.as_str().is_some_and(|x| results.contains_key(x)))
                })
            });
            if ready.is_empty() {
                for r in later {
                    let id = r["id"].as_str().unwrap_or("");
                    responses.push(json!({"id": id, "status": 424, "body": {"error": {"code": "FailedDependency", "message": "Dependency cycle or unknown dependency."}}}));
                }
                break;
            }
            let runs = ready.iter().map(|r| {
                let failed_dep = r["dependsOn"].as_array().and_then(|d| {
                    d.iter().find(|x| {
                        x.as_str()
                            .and_then(|x| results.get(x))
                            .is_some_and(|s| *s >= 400)
                    })
                });
                let inner = self.batch_part(outer, r);
                async move {
                    if failed_dep.is_some() {
                        let id = r["id"].as_str().unwrap_or("").to_string();
                        return (
                            id,
                            Resp::error(
                                424,
                                "FailedDependency",
                                "A request this one depends on failed.",
                            ),
                        );
                    }
                    inner.await
                }
            });
            let done = futures::future::join_all(runs).await;
            for (id, resp) in done {
                results.insert(id.clone(), resp.status);
                responses.push(batch_json(&id, resp));
            }
            pending = later;
        }
        // Graph answers in any order.
        let rot = (self.fault_counter.load(Ordering::Relaxed) as usize) % responses.len().max(1);
        responses.rotate_left(rot);
        Resp::ok(json!({"responses": responses}))
    }

    async fn batch_part(&self, outer: &Req, r: &Value) -> (String, Resp) {
        let id = r["id"].as_str().unwrap_or("").to_string();
        let method = r["method"].as_str().unwrap_or("GET").to_ascii_uppercase();
        let url = r["url"].as_str().unwrap_or("/");
        let url = if url.starts_with('/') {
            url.to_string()
        } else {
            format!("/{url}")
        };
        let (path, mut query) = match url.split_once('?') {
            Some((p, q)) => (p.to_string(), parse_query(q)),
            None => (url.clone(), vec![]),
        };
        let path = crate::wire::canonical_path(&path, &mut query);
        let mut headers = outer.headers.clone();
        headers.retain(|(k, _)| k != "content-type" && k != "content-length");
        if let Some(h) = r["headers"].as_object() {
            for (k, v) in h {
                headers.push((k.to_ascii_lowercase(), v.as_str().unwrap_or("").to_string()));
            }
        }
        let body = match r.get("body") {
            None => Bytes::new(),
            Some(Value::String(s)) => {
                // Binary bodies travel base64-encoded.
                let is_json = headers
                    .iter()
                    .any(|(k, v)| k == "content-type" && v.contains("json"));
                if is_json {
                    Bytes::from(serde_json::to_vec(&Value::String(s.clone())).unwrap_or_default())
                } else {
                    Bytes::from(s.clone().into_bytes())
                }
            }
            Some(v) => Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
        };
        let req = Req {
            method,
            path,
            query,
            headers,
            body,
            base: outer.base.clone(),
            duplicate_page_item: false,
        };
        let (resp, _) = Box::pin(self.serve_graph(req, true)).await;
        (id, resp)
    }

    // ---- token endpoint ----------------------------------------------------------------

    /// `POST /{tenant}/oauth2/v2.0/token` (form body): the client-credentials grant for apps,
    /// and the authorization-code grant of a person's sign-in (`oidc`). `base` is the URL the
    /// client reached the simulator at (the issuer of ID tokens).
    pub fn token(&self, base: &str, tenant: &str, form: &[(String, String)]) -> Resp {
        let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        if tenant != self.cfg.tenant_id && !tenant.eq_ignore_ascii_case(&self.cfg.tenant.domain) {
            return oauth_error(
                400,
                "invalid_request",
                &format!("AADSTS90002: Tenant '{tenant}' not found."),
            );
        }
        match get("grant_type") {
            Some("client_credentials") => {}
            Some("authorization_code") => return self.redeem_code(base, form),
            _ => {
                return oauth_error(
                    400,
                    "unsupported_grant_type",
                    "AADSTS70003: The app requested an unsupported grant type.",
                );
            }
        }
        let Some(client_id) = get("client_id") else {
            return oauth_error(
                400,
                "invalid_request",
                "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(app) = self.find_app(client_id) else {
            return unknown_client(client_id);
        };
        if !get("scope").is_some_and(|s| s.ends_with("/.default")) {
            return oauth_error(
                400,
                "invalid_scope",
                "AADSTS1002012: The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
            );
        }
        let now = chrono::Utc::now().timestamp();
        if let Err(resp) = self.authenticate_client(app, form, now) {
            return resp;
        }
        let roles: Vec<String> = match app {
            Some(a) => a.roles.clone(),
            None => GRANTED_ROLES.iter().map(|r| (*r).to_owned()).collect(),
        };
        let token = self
            .issuer
            .issue(&self.cfg.tenant_id, client_id, &roles, now);
        let life = self.cfg.token_lifetime.as_secs();
        Resp::ok(
            json!({"token_type": "Bearer", "expires_in": life, "ext_expires_in": life, "access_token": token}),
        )
    }

    /// The app registration `client_id` names: `Some(None)` for the default app,
    /// `Some(Some(app))` for a further one, `None` when the directory has no such app.
    pub(crate) fn find_app(&self, client_id: &str) -> Option<Option<&SimApp>> {
        if client_id == self.cfg.client_id {
            return Some(None);
        }
        self.cfg
            .apps
            .iter()
            .find(|a| a.client_id == client_id)
            .map(Some)
    }

    /// Checks the client's credential in a token request: its secret, or (default app only)
    /// a certificate-signed client assertion. `Err` is the token endpoint's answer.
    pub(crate) fn authenticate_client(
        &self,
        app: Option<&SimApp>,
        form: &[(String, String)],
        now: i64,
    ) -> Result<(), Resp> {
        let get = |k: &str| form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        if let Some(secret) = get("client_secret") {
            let expected = app.map_or(&self.cfg.client_secret, |a| &a.client_secret);
            if secret != expected {
                return Err(oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS7000215: Invalid client secret provided.",
                ));
            }
        } else if let Some(assertion) = get("client_assertion") {
            if get("client_assertion_type")
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            {
                return Err(oauth_error(
                    400,
                    "invalid_request",
                    "AADSTS50027: client_assertion_type is invalid.",
                ));
            }
            // Only the default app has certificates registered.
            let Some(v) = self.verifier.get().filter(|_| app.is_none()) else {
                return Err(oauth_error(
                    401,
                    "invalid_client",
                    "AADSTS700027: No certificate is registered for this application.",
                ));
            };
            if let Err(e) = v.verify(assertion, now) {
                return Err(oauth_error(401, "invalid_client", &e.to_string()));
            }
        } else {
            return Err(oauth_error(
                401,
                "invalid_client",
                "AADSTS7000216: 'client_assertion', 'client_secret' or 'request' is required.",
            ));
        }
        Ok(())
    }

    /// Was the request's token issued in the last few seconds?
    fn token_is_fresh(&self, req: &Req) -> bool {
        let Some(token) = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
        else {
            return false;
        };
        let now = chrono::Utc::now().timestamp();
        match self.issuer.validate(token, now) {
            Ok(c) => now - (c.exp - self.cfg.token_lifetime.as_secs() as i64) < 5,
            Err(_) => false,
        }
    }

    /// Checks the bearer token of a Graph call.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<(), Resp> {
        self.caller(authorization).map(|_| ())
    }

    /// The authentication and authorisation step of every Graph call, direct or a `$batch`
    /// part (which carries the batch's token): a valid token, whose `roles` cover the request
    /// as `permissions::RULES` says, or Graph's refusal (401, or 403 in the shape of the
    /// service behind the path).
    pub fn authorize(&self, req: &Req) -> Result<(), Resp> {
        let caller = self.caller(req.header("authorization"))?;
        crate::permissions::check(
            &self.model.tenant,
            &self.site_grants,
            &caller.client_id,
            &caller.roles,
            &req.method,
            &req.path,
        )
    }

    /// The client id of the app a request's token was issued to.
    pub(crate) fn caller_id(&self, req: &Req) -> Option<String> {
        self.caller(req.header("authorization"))
            .ok()
            .map(|c| c.client_id)
    }

    /// The application permissions of a request's token.
    pub(crate) fn caller_roles(&self, req: &Req) -> Vec<String> {
        self.caller(req.header("authorization"))
            .map(|c| c.roles)
            .unwrap_or_default()
    }

    /// Who a bearer token was issued to, or the 401 Graph answers.
    fn caller(&self, authorization: Option<&str>) -> Result<TokenClaims, Resp> {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) else {
            return Err(Resp::error(
                401,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ));
        };
        match self.issuer.validate(token, chrono::Utc::now().timestamp()) {
            Ok(c) if c.tenant_id == self.cfg.tenant_id => Ok(c),
            Ok(_) => Err(Resp::error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )),
            Err(e) => Err(Resp::error(
                401,
                "InvalidAuthenticationToken",
                &e.to_string(),
            )),
        }
    }

    /// The throttle-bound ideal rate of a full backup, items per second: every mailbox at
    /// min(request budget, concurrency / latency), files at the tenant's RU budget (one RU
    /// per download), both running in parallel. One request per item (content), paging and
    /// metadata calls not counted: an upper bound no complete backup reaches.
    pub fn ideal_items_per_sec(&self) -> f64 {
        self.full_backup_rate(false)
    }

    /// Like `ideal_items_per_sec`, but drives cost what Graph's documented costs make a
    /// complete backup of them need (`Model::drive_backup_ru`: delta pages and the
    /// permissions of items shared on their own besides the downloads). Mail is counted as
    /// in the ideal. Still an upper bound: no lookups, no retries, no ramp.
    pub fn complete_items_per_sec(&self) -> f64 {
        self.full_backup_rate(true)
    }

    fn full_backup_rate(&self, complete: bool) -> f64 {
        let t = &self.model.tenant;
        let mailboxes = (0..t.spec.users)
            .filter(|&i| t.has_mailbox(Res::User(i)))
            .count() as f64;
        let mail_items = mailboxes * t.spec.mail_per_mailbox as f64;
        let drives: Vec<_> = (0..t.spec.users)
            .flat_map(|i| t.drives(Res::User(i)))
            .chain((0..t.spec.groups).flat_map(|i| t.drives(Res::Group(i))))
            .chain(t.all_sites().flat_map(|n| t.drives(Res::Site(n))))
            .collect();
        let file_items = drives.len() as f64 * t.spec.files_per_drive as f64;
        let file_ru = if complete {
            drives
                .iter()
                .map(|(c, _)| self.model.drive_backup_ru(*c))
                .sum::<u64>() as f64
        } else {
            file_items
        };
        let unthrottled = self.throttle.mode() == ThrottleMode::Off;
        let lat = self.cfg.latency.as_secs_f64().max(0.001);
        let l = self.throttle.limits();
        let per_mailbox = if unthrottled {
            1.0 / lat * 16.0
        } else {
            (l.mailbox_requests_per_10min as f64 / 600.0).min(l.mailbox_concurrency as f64 / lat)
        };
        let mail_rate = mailboxes * per_mailbox;
        let ru_rate = if unthrottled {
            f64::INFINITY
        } else {
            self.throttle.files_budget_per_min() as f64 / 60.0
        };
        let time = (mail_items / mail_rate.max(1e-9)).max(file_ru / ru_rate.max(1e-9));
        if time <= 0.0 || !time.is_finite() {
            return 0.0;
        }
        (mail_items + file_items) / time
    }
}

/// The token endpoint's error body (OAuth 2.0 with Entra's extras).
pub(crate) fn oauth_error(status: u16, error: &str, desc: &str) -> Resp {
    let code: Option<u64> = desc
        .strip_prefix("AADSTS")
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok());
    Resp::json(
        status,
        json!({"error": error, "error_description": desc,
               "error_codes": code.map(|c| vec![c]).unwrap_or_default(),
               "timestamp": chrono::Utc::now().to_rfc3339()}),
    )
}

/// AADSTS700016 at the token endpoint.
pub(crate) fn unknown_client(client_id: &str) -> Resp {
    oauth_error(
        400,
        "unauthorized_client",
        &format!(
            "AADSTS700016: Application with identifier '{client_id}' was not found in the directory."
        ),
    )
}

fn throttled_resp(files: bool, retry: u64) -> Resp {
    let r = if files {
        Resp::nested_error(
            429,
            "activityLimitReached",
            "throttledRequest",
            "The request has been throttled",
        )
    } else {
        Resp::error(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        )
    };
    r.with_header("Retry-After", retry.to_string())
}

fn batch_json(id: &str, resp: Resp) -> Value {
    let mut headers = serde_json::Map::new();
    for (k, v) in &resp.headers {
        headers.insert(k.clone(), json!(v));
    }
    let body = match resp.body {
        Body::Empty => Value::Null,
        Body::Json(v) => v,
        Body::Bytes(b, ct) => {
            headers.insert("Content-Type".into(), json!(ct));
            json!(base64::engine::general_purpose::STANDARD.encode(&b))
        }
    };
    let mut v = json!({"id": id, "status": resp.status, "headers": headers});
    if !body.is_null() {
        v["body"] = body;
    }
    v
}

pub fn body_len(b: &Body) -> u64 {
    match b {
        Body::Empty => 0,
        Body::Json(_) => 0,
        Body::Bytes(b, _) => b.len() as u64,
    }
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`. `None`: not a single byte range (ignored).
fn parse_range(r: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = r.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len.saturating_sub(1))
        }
        (a, "") => (a.parse().ok()?, len.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.saturating_sub(1)),
        ),
    };
    if a >= len || a > b {
        return Some(Err(()));
    }
    Some(Ok((a, b)))
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A path template for statistics: ids replaced by `{id}`.
pub fn endpoint_label(method: &str, path: &str) -> String {
    const WORDS: &[&str] = &[
        "users",
        "groups",
        "sites",
        "drives",
        "drive",
        "root",
        "items",
        "children",
        "content",
        "delta",
        "mailFolders",
        "childFolders",
        "messages",
        "$value",
        "attachments",
        "contacts",
        "contactFolders",
        "calendars",
        "calendar",
        "events",
        "calendarView",
        "lists",
        "fields",
        "versions",
        "permissions",
        "getAllSites",
        "createUploadSession",
        "move",
        "mailboxSettings",
        "threads",
        "posts",
        "$batch",
        "admin",
        "exchange",
        "mailboxes",
        "folders",
        "exportItems",
        "createImportSession",
        "settings",
        "teams",
        "channels",
        "allChannels",
        "chats",
        "replies",
        "hostedContents",
        "members",
        "tabs",
        "getAllMessages",
        "startMigration",
        "completeMigration",
    ];
    let mut out = String::from(method);
    out.push(' ');
    let path = path.split(":/").next().unwrap_or(path);
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(if WORDS.contains(&seg) { seg } else { "{id}" });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=95-200", 100), Some(Ok((95, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn group_conversations_count_against_the_group_mailbox() {
        let sim = Sim::new(crate::SimConfig::new(crate::TenantSpec::default())).unwrap();
        let g = sim.model.tenant.group(1).unwrap().id;
        for path in [
            format!("/groups/{g}/threads"),
            format!("/groups/{g}/threads/x/posts"),
        ] {
            assert_eq!(
                sim.bucket("GET", &path, false),
                Bucket::Mailbox(Res::Group(1))
            );
        }
        assert_eq!(
            sim.bucket("GET", "/groups/nope/threads", false),
            Bucket::Other
        );
        assert_eq!(
            sim.bucket("GET", &format!("/groups/{g}"), false),
            Bucket::Other
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            endpoint_label("GET", "/users/abc/mailFolders/xyz/messages/delta"),
            "GET /users/{id}/mailFolders/{id}/messages/delta"
        );
        assert_eq!(
            endpoint_label("GET", "/groups/abc/threads/xyz/posts"),
            "GET /groups/{id}/threads/{id}/posts"
        );
    }
}
