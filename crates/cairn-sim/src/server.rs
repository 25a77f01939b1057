//! The HTTP server: axum routes onto the simulator's pipeline, plus transport behaviour
//! (bandwidth caps, truncated bodies, dropped connections).

use crate::config::SimConfig;
use crate::sim::{Fault, Sim, parse_query};
use crate::wire::{Body as WBody, Req, Resp};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running simulator.
pub struct SimServer {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimServer {
    /// Starts a simulator on `listen` (port 0 picks a free port).
    pub async fn start(cfg: SimConfig, listen: SocketAddr) -> anyhow::Result<Self> {
        let sim = Arc::new(Sim::new(cfg)?);
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        sim.set_login_base(&format!("http://{addr}"))?;
        let app = router(sim.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            sim,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Service root for Graph (`--graph-url`) and identity (`--login-url`): both are served
    /// here.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize).post(authorize),
        )
        .route("/{tenant}/oauth2/v2.0/logout", get(logout).post(logout))
        .route("/_sim/passwords", get(passwords))
        .route("/_sim/apps/redirect-uris", post(redirect_uris))
        .route("/_sim/app-roles", post(app_roles))
        .route("/_sim/rotate-keys", post(rotate_keys))
        .route("/_sim/stats", get(stats))
        .route("/_sim/manifest", get(manifest))
        .route("/_sim/mutate", post(mutate))
        .route("/_sim/expire-tokens", post(expire_tokens))
        .route("/_sim/info", get(info))
        .route("/_dl/{token}", get(download))
        .route("/_up/{id}", any(upload))
        .route("/v1.0/{*rest}", any(graph))
        .route("/beta/{*rest}", any(graph))
        .route("/api/{version}/{mailbox}/importItem", post(import_item))
        .layer(DefaultBodyLimit::max(300 * 1024 * 1024))
        .with_state(sim)
}

fn base_of(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect()
}

async fn token(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_query(&String::from_utf8_lossy(&body));
    let resp = sim.token(&base_of(&headers), &tenant, &form);
    sim.count("POST /{tenant}/oauth2/v2.0/token", resp.status, 0);
    to_http(&sim, resp, None).await
}

async fn openid_configuration(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let resp = sim.openid_configuration(&base_of(&headers), &tenant);
    sim.count(
        "GET /{tenant}/v2.0/.well-known/openid-configuration",
        resp.status,
        0,
    );
    to_http(&sim, resp, None).await
}

async fn jwks(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    let resp = sim.jwks(&base_of(&headers), &tenant);
    sim.count("GET /{tenant}/discovery/v2.0/keys", resp.status, 0);
    to_http(&sim, resp, None).await
}

/// The parameters of a front-channel request: the form body of a POST, then the query.
fn front_channel_params(uri: &Uri, body: &Bytes) -> Vec<(String, String)> {
    let mut params = parse_query(&String::from_utf8_lossy(body));
    params.extend(uri.query().map(parse_query).unwrap_or_default());
    params
}

async fn authorize(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let params = front_channel_params(&uri, &body);
    let resp = sim.authorize_endpoint(&tenant, &params, method == Method::POST);
    sim.count(
        &format!("{method} /{{tenant}}/oauth2/v2.0/authorize"),
        resp.status,
        0,
    );
    to_http(&sim, resp, None).await
}

async fn logout(
    State(sim): State<Arc<Sim>>,
    Path(tenant): Path<String>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let resp = sim.logout(&tenant, &front_channel_params(&uri, &body));
    sim.count("/{tenant}/oauth2/v2.0/logout", resp.status, 0);
    to_http(&sim, resp, None).await
}

async fn passwords(State(sim): State<Arc<Sim>>) -> Response {
    to_http(&sim, Resp::ok(sim.passwords_json()), None).await
}

async fn redirect_uris(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let resp = match serde_json::from_slice::<crate::oidc::RedirectUrisRequest>(&body) {
        Ok(r) => sim.register_redirect_uris(&r),
        Err(e) => Resp::bad_request(&format!(
            "Invalid request: {e}. Send {{\"client_id\": …, \"uris\": [\"https://…\"]}}."
        )),
    };
    to_http(&sim, resp, None).await
}

async fn app_roles(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let resp = match serde_json::from_slice::<crate::oidc::AppRoleRequest>(&body) {
        Ok(r) => sim.assign_app_role(&r),
        Err(e) => Resp::bad_request(&format!(
            "Invalid request: {e}. Send {{\"client_id\": …, \"user\": ID or UPN, \"role\": …}}."
        )),
    };
    to_http(&sim, resp, None).await
}

async fn rotate_keys(State(sim): State<Arc<Sim>>) -> Response {
    to_http(&sim, sim.rotate_keys(), None).await
}

async fn graph(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // `/beta` serves what `/v1.0` does; handlers that differ (the archive mailbox id) and
    // links of the mailbox import/export API read the version from this header.
    let (raw_path, beta) = match uri.path().strip_prefix("/beta") {
        Some(p) => (p, true),
        None => (
            uri.path().strip_prefix("/v1.0").unwrap_or(uri.path()),
            false,
        ),
    };
    let mut query = uri.query().map(parse_query).unwrap_or_default();
    let mut pairs = header_pairs(&headers);
    pairs.retain(|(k, _)| k != crate::mailbox_api::VERSION_HEADER);
    if beta {
        pairs.push((crate::mailbox_api::VERSION_HEADER.into(), "beta".into()));
    }
    let req = Req {
        method: method.as_str().to_string(),
        path: crate::wire::canonical_path(raw_path, &mut query),
        query,
        headers: pairs,
        body,
        base: base_of(&headers),
        duplicate_page_item: false,
    };
    if let Err(resp) = sim.authenticate(req.header("authorization")) {
        sim.count("unauthenticated", resp.status, 0);
        return to_http(&sim, resp, None).await;
    }
    if req.path == "/$batch" && req.method == "POST" {
        let resp = sim.batch(&req).await;
        sim.count("POST /$batch", resp.status, 0);
        return to_http(&sim, resp, None).await;
    }
    let (resp, fault) = sim.serve_graph(req, false).await;
    to_http(&sim, resp, fault).await
}

async fn download(
    State(sim): State<Arc<Sim>>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    if headers.contains_key(header::AUTHORIZATION) {
        // Pre-authenticated URLs are fetched without a token; one sent anyway is ignored.
        tracing::debug!("download URL fetched with an Authorization header");
    }
    let req = Req {
        method: "GET".into(),
        path: "/_dl".into(),
        query: vec![],
        headers: vec![],
        body: Bytes::new(),
        base: String::new(),
        duplicate_page_item: false,
    };
    // Downloads are charged to the files budget like any files request.
    let fault = sim.draw_fault(&req, false);
    match fault {
        Some(Fault::Status(code)) => {
            sim.count("GET /_dl", code, 0);
            return to_http(
                &sim,
                Resp::error(code, "serviceNotAvailable", "Try again."),
                None,
            )
            .await;
        }
        Some(Fault::Throttle) => {
            sim.count("GET /_dl", 429, 0);
            let r = Resp::nested_error(
                429,
                "activityLimitReached",
                "throttledRequest",
                "The request has been throttled",
            )
            .with_header("Retry-After", "1");
            return to_http(&sim, r, None).await;
        }
        _ => {}
    }
    let permit = match sim.throttle.admit(crate::throttle::Bucket::Files { ru: 1 }) {
        Ok(p) => p,
        Err(rej) => {
            sim.count("GET /_dl", rej.status, 0);
            let mut r = Resp::nested_error(rej.status, rej.code, "throttledRequest", rej.message)
                .with_header("Retry-After", rej.retry_after.to_string());
            for (k, v) in rej.headers {
                r = r.with_header(&k, v);
            }
            return to_http(&sim, r, None).await;
        }
    };
    let resp = tokio::task::block_in_place(|| sim.download(&token, range));
    drop(permit);
    sim.count("GET /_dl", resp.status, crate::sim::body_len(&resp.body));
    let transport = fault.filter(|f| matches!(f, Fault::Reset | Fault::Truncate));
    to_http(&sim, resp, transport).await
}

async fn upload(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = Req {
        method: method.as_str().to_string(),
        path: format!("/_up/{id}"),
        query: vec![],
        headers: header_pairs(&headers),
        body,
        base: base_of(&headers),
        duplicate_page_item: false,
    };
    let resp = tokio::task::block_in_place(|| sim.upload_fragment(&req, &id));
    sim.count(&format!("{} /_up", req.method), resp.status, 0);
    to_http(&sim, resp, None).await
}

/// `POST {importUrl}`: the pre-authenticated import URL of the mailbox import API.
async fn import_item(
    State(sim): State<Arc<Sim>>,
    Path((version, mailbox)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = uri.query().map(parse_query).unwrap_or_default();
    let token = q
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authtoken"))
        .map(|(_, v)| v.clone());
    let req = Req {
        method: "POST".into(),
        path: format!("/api/{version}/{mailbox}/importItem"),
        query: q,
        headers: header_pairs(&headers),
        body,
        base: base_of(&headers),
        duplicate_page_item: false,
    };
    let resp =
        tokio::task::block_in_place(|| sim.import_item(&req, &version, &mailbox, token.as_deref()));
    sim.count("POST /api/{version}/{mailbox}/importItem", resp.status, 0);
    to_http(&sim, resp, None).await
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    to_http(&sim, Resp::ok(sim.stats_json()), None).await
}

async fn info(State(sim): State<Arc<Sim>>) -> Response {
    to_http(&sim, Resp::ok(sim.info_json()), None).await
}

async fn manifest(State(sim): State<Arc<Sim>>, uri: Uri) -> Response {
    let q = uri.query().map(parse_query).unwrap_or_default();
    let resource = q
        .iter()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.clone());
    let resp = match resource {
        None => Resp::bad_request("Give ?resource=ID (a user, group or site id)."),
        Some(r) => {
            let extras = q.iter().any(|(k, v)| k == "extras" && v == "true");
            let teams = q.iter().any(|(k, v)| k == "teams" && v == "true");
            tokio::task::block_in_place(|| sim.manifest_with_teams(&r, extras, teams))
        }
    };
    to_http(&sim, resp, None).await
}

async fn mutate(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let resp = match serde_json::from_slice::<crate::admin::MutateRequest>(&body) {
        Ok(m) => tokio::task::block_in_place(|| sim.mutate(&m)),
        Err(e) => Resp::bad_request(&format!("Invalid mutate request: {e}")),
    };
    to_http(&sim, resp, None).await
}

async fn expire_tokens(State(sim): State<Arc<Sim>>) -> Response {
    let resp = match sim.state().expire_tokens() {
        Ok(()) => Resp::ok(serde_json::json!({"expired": true})),
        Err(e) => crate::graph::internal(e),
    };
    to_http(&sim, resp, None).await
}

/// Turns a simulator response into HTTP, applying bandwidth and transport faults.
async fn to_http(sim: &Sim, resp: Resp, fault: Option<Fault>) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (bytes, content_type) = match resp.body {
        WBody::Empty => (Bytes::new(), None),
        WBody::Json(v) => (
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            Some("application/json; odata.metadata=minimal; charset=utf-8".to_string()),
        ),
        WBody::Bytes(b, ct) => (b, Some(ct)),
    };
    let mut builder = Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder = builder.header("request-id", crate::seeded::guid(rand::random(), &[2]));
    for (k, v) in &resp.headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            builder = builder.header(k.as_str(), v);
        }
    }
    let total = bytes.len();
    let bandwidth = sim.cfg.bandwidth;
    let needs_stream = bandwidth.is_some() || fault.is_some();
    if !needs_stream {
        return builder
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    builder = builder.header(header::CONTENT_LENGTH, total);
    let cut = match fault {
        Some(Fault::Reset) => Some(0),
        Some(Fault::Truncate) => Some(total / 2),
        _ => None,
    };
    let stream = async_stream(bytes, bandwidth, cut);
    builder
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Streams a body in chunks at `bandwidth` bytes/s, failing after `cut` bytes if set.
fn async_stream(
    bytes: Bytes,
    bandwidth: Option<u64>,
    cut: Option<usize>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    const CHUNK: usize = 16 * 1024;
    futures::stream::unfold(
        (bytes, 0usize, false),
        move |(bytes, pos, failed)| async move {
            if failed {
                return None;
            }
            if let Some(c) = cut
                && pos >= c
            {
                return Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected fault",
                    )),
                    (bytes, pos, true),
                ));
            }
            if pos >= bytes.len() {
                return None;
            }
            let end = (pos + CHUNK)
                .min(bytes.len())
                .min(cut.unwrap_or(usize::MAX).max(pos + 1));
            if let Some(bw) = bandwidth {
                let secs = (end - pos) as f64 / bw.max(1) as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
            let chunk = bytes.slice(pos..end);
            Some((Ok(chunk), (bytes, end, false)))
        },
    )
}
