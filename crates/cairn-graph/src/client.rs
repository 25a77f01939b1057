//! The client: URLs, the transport stack, JSON, paging and delta streams, `$batch`,
//! streaming downloads with resume, upload sessions.

use crate::auth::{AuthLayer, Credential, SignIn, TokenCache};
use crate::error::{GraphError, display_path};
use crate::pacer::{Limits, PaceLayer, Pacer};
use crate::retry::{RetryLayer, RetryPolicy};
use crate::transport::{Body, HttpTransport, Request, Resource, Response, Transport};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderValue, Method};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";

#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// Service root without the version, e.g. `https://graph.microsoft.com`.
    pub graph_url: String,
    /// Identity root, e.g. `https://login.microsoftonline.com`.
    pub login_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    pub limits: Limits,
    pub retry: RetryPolicy,
    /// Read timeout of one request.
    pub timeout: Duration,
    /// Page size asked of collections and delta queries (`Prefer: odata.maxpagesize`):
    /// Outlook's default of 10 would cost a request per 10 messages.
    pub page_size: Option<u32>,
    /// Page size asked of message delta queries (`…/messages/delta`), when smaller: a
    /// backup holds the current page of each folder it reads while the messages' bodies are
    /// fetched, one request each, so a page costs memory for as long as its bodies take and
    /// a smaller one few extra requests (one per 50 bodies).
    pub message_page_size: Option<u32>,
}

impl GraphConfig {
    pub fn new(tenant_id: &str, client_id: &str, credential: Credential) -> Self {
        Self {
            graph_url: DEFAULT_GRAPH_URL.into(),
            login_url: DEFAULT_LOGIN_URL.into(),
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(120),
            page_size: Some(200),
            message_page_size: Some(50),
        }
    }
}

/// One change seen by a delta query.
#[derive(Clone, Debug)]
pub enum DeltaEvent {
    /// A new or changed item (its current state).
    Upsert(Value),
    /// An item that was deleted or left the collection.
    Removed { id: String },
    /// End of this round: persist the link, the next round starts from it.
    Complete { delta_link: String },
    /// The token is gone: enumerate afresh from `restart` and reconcile.
    Resync { restart: String },
}

pub struct GraphClient {
    transport: Arc<dyn Transport>,
    /// The sign-in's token cache, also read for the permissions a token grants.
    tokens: Arc<TokenCache>,
    base: String,
    pacer: Arc<Pacer>,
    requests: AtomicU64,
    page_size: Option<u32>,
    message_page_size: Option<u32>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base)
            .finish()
    }
}

/// `User-Agent` as Microsoft asks ISVs to decorate traffic.
pub fn user_agent() -> String {
    format!("ISV|Cairn|Cairn/{}", env!("CARGO_PKG_VERSION"))
}

impl GraphClient {
    pub fn new(cfg: GraphConfig) -> Result<Self, GraphError> {
        for (name, u) in [
            ("--graph-url", &cfg.graph_url),
            ("--login-url", &cfg.login_url),
        ] {
            url::Url::parse(u)
                .map_err(|e| GraphError::Config(format!("{name} {u} is not a URL: {e}")))?;
        }
        let http = HttpTransport::new(&user_agent(), cfg.timeout)?;
        let tokens = Arc::new(TokenCache::new(
            SignIn {
                login_url: cfg.login_url.clone(),
                tenant_id: cfg.tenant_id.clone(),
                client_id: cfg.client_id.clone(),
                credential: cfg.credential.clone(),
                scope_resource: scope_for(&cfg.graph_url),
            },
            http.client().clone(),
        ));
        let pacer = Arc::new(Pacer::new(cfg.limits.clone()));
        // Auth sits next to HTTP so every attempt, however long it waited for a fence or a
        // backoff, carries a token that is valid when it leaves.
        let stack = PaceLayer::new(
            RetryLayer::new(
                AuthLayer::new(http, tokens.clone()),
                cfg.retry.clone(),
                pacer.clone(),
            ),
            pacer.clone(),
        );
        Ok(Self {
            transport: Arc::new(stack),
            tokens,
            base: format!("{}/v1.0", cfg.graph_url.trim_end_matches('/')),
            pacer,
            requests: AtomicU64::new(0),
            page_size: cfg.page_size,
            message_page_size: cfg.message_page_size,
        })
    }

    /// The application permissions the tenant granted this app: the `roles` claim of its
    /// access token (signs in if it has not yet). `None` when the token carries no such
    /// claim (nothing can be concluded from it). The token is not verified: it was just
    /// received from the identity platform over TLS, and is only read here to tell an
    /// administrator what to grant.
    pub async fn granted_roles(&self) -> Result<Option<Vec<String>>, GraphError> {
        use base64::Engine as _;
        use secrecy::ExposeSecret as _;
        let token = self.tokens.token(false).await?;
        let payload = token
            .expose_secret()
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p.trim_end_matches('='))
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        Ok(payload.and_then(|p| {
            p.get("roles").and_then(Value::as_array).map(|roles| {
                roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
        }))
    }

    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }

    /// Requests sent through the client (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn throttled(&self) -> u64 {
        self.pacer.stats.throttled.load(Ordering::Relaxed)
    }

    /// Absolute URL of a path relative to the version root (or an absolute link as given).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        }
    }

    /// Which limits a URL counts against (mirrors Microsoft's throttling scopes).
    pub fn resource_for(&self, method: &Method, url: &str) -> Resource {
        let path = display_path(url);
        let path = path
            .strip_prefix("/v1.0")
            .or_else(|| path.strip_prefix("/beta"))
            .unwrap_or(&path);
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let has_token =
            url.contains("token=") || url.contains("$deltatoken") || url.contains("$skiptoken");
        let ru = || {
            let last = segs.last().copied().unwrap_or("");
            if path.contains("permissions") {
                5
            } else if *method != Method::GET
                || (last == "delta" && !has_token)
                || ["children", "items", "drives", "lists"].contains(&last)
            {
                2
            } else {
                1
            }
        };
        match segs.as_slice() {
            ["users", _, "drive", ..] => Resource::Files { ru: ru() },
            ["users", _] | ["users", _, "drives"] => Resource::Tenant,
            // The mailbox import/export API: the mailbox's own limits.
            ["admin", "exchange", "mailboxes", m, ..] => Resource::Mailbox(
                percent_encoding::percent_decode_str(m)
                    .decode_utf8_lossy()
                    .into_owned(),
            ),
            ["users", u, ..] => Resource::Mailbox(
                percent_encoding::percent_decode_str(u)
                    .decode_utf8_lossy()
                    .into_owned(),
            ),
            ["drives", ..]
            | ["sites", ..]
            | ["groups", _, "drive", ..]
            | ["groups", _, "sites", ..] => Resource::Files { ru: ru() },
            _ => Resource::Tenant,
        }
    }

    fn request(&self, method: Method, path: &str, body: Option<Value>) -> Request {
        let url = self.url(path);
        let mut req = Request::get(url.clone(), self.resource_for(&method, &url));
        req.method = method;
        // Outlook ids that survive moves, on every request (Graph reads it per request).
        let page_size = match (self.page_size, self.message_page_size) {
            (Some(all), Some(messages)) if is_message_delta(&display_path(&url)) => {
                Some(all.min(messages))
            }
            (all, _) => all,
        };
        let mut prefer = match page_size {
            Some(n) => format!("IdType=\"ImmutableId\", odata.maxpagesize={n}"),
            None => "IdType=\"ImmutableId\"".to_string(),
        };
        // Drives: sharing information only where a permission hierarchy starts (an item
        // shared on its own carries the `shared` facet; the rest inherit from their folder),
        // with sharing changes reported by delta. Microsoft's scanning guidance for backup.
        if matches!(req.resource, Resource::Files { .. }) {
            prefer.push_str(", hierarchicalsharing, deltashowsharingchanges");
        }
        if let Ok(v) = HeaderValue::from_str(&prefer) {
            req.headers.insert("Prefer", v);
        }
        if let Some(b) = body {
            req.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            req.body = Some(Bytes::from(serde_json::to_vec(&b).unwrap_or_default()));
        }
        req
    }

    /// Sends a prepared request through the stack.
    pub async fn send(&self, req: Request) -> Result<Response, GraphError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.transport.send(req).await
    }

    async fn json_of(&self, req: Request) -> Result<Value, GraphError> {
        let resp = self.send(req.clone()).await?;
        if !(200..300).contains(&resp.status) {
            return Err(resp.error(&req));
        }
        if resp.bytes().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(resp.bytes()).map_err(|e| GraphError::Decode {
            path: req.path(),
            detail: e.to_string(),
        })
    }

    /// `GET` a path and parse its JSON.
    pub async fn get(&self, path: &str) -> Result<Value, GraphError> {
        self.json_of(self.request(Method::GET, path, None)).await
    }

    /// A request with a JSON body (`POST`, `PATCH`, …).
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<Value, GraphError> {
        self.json_of(self.request(method, path, Some(body))).await
    }

    /// The root of Graph's beta endpoint beside the configured version root
    /// (`https://graph.microsoft.com/beta`): for the few calls documented there only, such
    /// as in-place archive mailboxes.
    pub fn beta_url(&self, path: &str) -> String {
        let root = self
            .base
            .rsplit_once('/')
            .map(|(root, _)| root)
            .unwrap_or(&self.base);
        format!("{root}/beta/{}", path.trim_start_matches('/'))
    }

    /// `GET` a path, following Exchange's permanent redirects (308: a folder of an
    /// auto-expanded archive lives in an auxiliary archive mailbox) within Graph's own
    /// origin; returns the JSON and the URL that answered it.
    pub async fn get_following(&self, path: &str) -> Result<(Value, String), GraphError> {
        let mut url = self.url(path);
        for _ in 0..4 {
            let req = self.request(Method::GET, &url, None);
            let resp = self.send(req.clone()).await?;
            if matches!(resp.status, 301 | 308)
                && let Some(next) = resp.header("location")
            {
                let next = self.url(next);
                if !same_origin(&next, &self.base) {
                    return Err(GraphError::Decode {
                        path: req.path(),
                        detail: "redirected to another host".into(),
                    });
                }
                url = next;
                continue;
            }
            if !(200..300).contains(&resp.status) {
                return Err(resp.error(&req));
            }
            let v = serde_json::from_slice(resp.bytes()).map_err(|e| GraphError::Decode {
                path: req.path(),
                detail: e.to_string(),
            })?;
            return Ok((v, url));
        }
        Err(GraphError::Decode {
            path: display_path(&url),
            detail: "redirected more than 4 times".into(),
        })
    }

    /// Posts one item into a mailbox through the mailbox import API: an import session of
    /// the mailbox at `mailbox_url` (`…/admin/exchange/mailboxes/{id}`), then the item to
    /// its pre-authenticated `importUrl`, which never sees a token. `item` is the request's
    /// JSON (`FolderId`, `Mode`, `Data`…); the answer is `{"itemId","changeKey"}`.
    pub async fn import_item(&self, mailbox_url: &str, item: Value) -> Result<Value, GraphError> {
        let session = self
            .send_json(
                Method::POST,
                &format!("{}/createImportSession", mailbox_url.trim_end_matches('/')),
                json!({}),
            )
            .await?;
        let url = session["importUrl"]
            .as_str()
            .ok_or_else(|| GraphError::Decode {
                path: display_path(mailbox_url),
                detail: "no importUrl in the import session".into(),
            })?;
        let mut req = Request::get(
            url.to_string(),
            self.resource_for(&Method::POST, mailbox_url),
        );
        req.method = Method::POST;
        req.authenticated = false;
        req.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        req.body = Some(Bytes::from(serde_json::to_vec(&item).unwrap_or_default()));
        self.json_of(req).await
    }

    /// `GET` raw bytes (a message's MIME via `…/$value`). A transfer cut short is retried
    /// whole by the transport stack.
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes, GraphError> {
        let req = self.request(Method::GET, path, None);
        let resp = self.send(req.clone()).await?;
        if !(200..300).contains(&resp.status) {
            return Err(resp.error(&req));
        }
        match resp.body {
            Body::Buffered(b) => Ok(b),
            Body::Streaming(r) => r.bytes().await.map_err(|e| GraphError::Network {
                method: "GET".into(),
                path: req.path(),
                detail: crate::transport::without_url(e),
            }),
        }
    }

    pub async fn delete(&self, path: &str) -> Result<(), GraphError> {
        self.json_of(self.request(Method::DELETE, path, None))
            .await
            .map(|_| ())
    }

    /// Every page of a collection, following `@odata.nextLink` exactly as given.
    pub fn pages<'a>(&'a self, path: &str) -> impl Stream<Item = Result<Value, GraphError>> + 'a {
        self.pages_from(path, None)
    }

    /// [`pages`](Self::pages) when the first page's answer is already at hand (from a
    /// `$batch`): the pages after it are requested as usual.
    pub fn pages_from<'a>(
        &'a self,
        path: &str,
        mut first_page: Option<Value>,
    ) -> impl Stream<Item = Result<Value, GraphError>> + 'a {
        let first = path.to_string();
        async_stream::try_stream! {
            let mut next = Some(first);
            while let Some(p) = next.take() {
                let page = match first_page.take() {
                    Some(page) => page,
                    None => self.get(&p).await?,
                };
                next = page["@odata.nextLink"].as_str().map(str::to_string);
                yield page;
            }
        }
    }

    /// Every item of every page.
    pub fn items<'a>(&'a self, path: &str) -> impl Stream<Item = Result<Value, GraphError>> + 'a {
        self.items_from(path, None)
    }

    /// [`items`](Self::items) when the first page's answer is already at hand.
    pub fn items_from<'a>(
        &'a self,
        path: &str,
        first_page: Option<Value>,
    ) -> impl Stream<Item = Result<Value, GraphError>> + 'a {
        self.pages_from(path, first_page)
            .map(|page| -> Vec<Result<Value, GraphError>> {
                match page {
                    Ok(mut p) => match p["value"].take() {
                        Value::Array(items) => items.into_iter().map(Ok).collect(),
                        _ => vec![],
                    },
                    Err(e) => vec![Err(e)],
                }
            })
            .flat_map(futures::stream::iter)
    }

    /// A delta round: from `link` (a saved deltaLink) or from `start` (fresh enumeration).
    /// Ends with `Complete` (save the link) or `Resync` (start afresh from `restart`).
    pub fn delta<'a>(
        &'a self,
        start: &str,
        link: Option<&str>,
    ) -> impl Stream<Item = Result<DeltaEvent, GraphError>> + 'a {
        self.delta_from(start, link, None)
    }

    /// [`delta`](Self::delta) when the answer to its first request (`link`, else `start`)
    /// is already at hand (from a `$batch`): it is read exactly as if it had just come.
    pub fn delta_from<'a>(
        &'a self,
        start: &str,
        link: Option<&str>,
        mut first_page: Option<Value>,
    ) -> impl Stream<Item = Result<DeltaEvent, GraphError>> + 'a {
        let start = start.to_string();
        let first = link.map(str::to_string).unwrap_or_else(|| start.clone());
        async_stream::try_stream! {
            let mut next = Some(first);
            while let Some(p) = next.take() {
                let got = match first_page.take() {
                    Some(page) => Ok(page),
                    None => self.get(&p).await,
                };
                let page = match got {
                    Ok(page) => page,
                    Err(e) if is_resync(&e) => {
                        let restart = match &e {
                            GraphError::Api { .. } => start.clone(),
                            GraphError::Resync { restart: Some(r), .. } => r.clone(),
                            _ => start.clone(),
                        };
                        yield DeltaEvent::Resync { restart };
                        return;
                    }
                    Err(e) => Err(e)?,
                };
                // The items are handed on, not copied: each one's memory goes with it, so a
                // page being worked through shrinks as it is.
                let mut page = page;
                let items = match page.get_mut("value").map(Value::take) {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let next_link = page["@odata.nextLink"].as_str().map(str::to_string);
                let delta_link = page["@odata.deltaLink"].as_str().map(str::to_string);
                drop(page);
                for it in items {
                    if it.get("@removed").is_some() || it.get("deleted").is_some() {
                        let id = it["id"].as_str().unwrap_or_default().to_string();
                        yield DeltaEvent::Removed { id };
                    } else {
                        yield DeltaEvent::Upsert(it);
                    }
                }
                if let Some(n) = next_link {
                    next = Some(n);
                } else if let Some(d) = delta_link {
                    yield DeltaEvent::Complete { delta_link: d };
                } else {
                    Err(GraphError::Decode { path: display_path(&p), detail: "a delta page without nextLink or deltaLink".into() })?;
                }
            }
        }
    }

    /// `$batch`: up to 20 GETs (relative paths) answered together; parts that were throttled
    /// or failed transiently are sent again (after the largest `Retry-After`), the rest are
    /// returned as (status, body) in the order given. Graph runs the parts side by side.
    pub async fn batch_get(&self, paths: &[String]) -> Result<Vec<(u16, Value)>, GraphError> {
        self.batch(paths, false).await
    }

    /// [`batch_get`](Self::batch_get) with each part depending on the one before
    /// (`dependsOn`): Graph runs them one after another, so a batch of one mailbox's parts
    /// takes one of its four concurrent requests, as the batch is paced. Parts that failed
    /// only because one before them did (424) are sent again.
    pub async fn batch_get_in_order(
        &self,
        paths: &[String],
    ) -> Result<Vec<(u16, Value)>, GraphError> {
        self.batch(paths, true).await
    }

    async fn batch(
        &self,
        paths: &[String],
        chained: bool,
    ) -> Result<Vec<(u16, Value)>, GraphError> {
        if paths.len() > 20 {
            return Err(GraphError::Config(
                "a $batch holds at most 20 requests".into(),
            ));
        }
        let mut results: Vec<Option<(u16, Value)>> = vec![None; paths.len()];
        let mut attempt = 0;
        loop {
            let todo: Vec<usize> = (0..paths.len()).filter(|i| results[*i].is_none()).collect();
            if todo.is_empty() {
                break;
            }
            attempt += 1;
            let requests: Vec<Value> = todo
                .iter()
                .enumerate()
                .map(|(n, i)| {
                    let url = format!("/{}", paths[*i].trim_start_matches('/'));
                    // Each part carries the headers its direct request would (`Prefer`).
                    let direct = self.request(Method::GET, &url, None);
                    let headers: serde_json::Map<String, Value> = direct
                        .headers
                        .iter()
                        .filter_map(|(k, v)| Some((k.to_string(), json!(v.to_str().ok()?))))
                        .collect();
                    let mut part = json!({"id": i.to_string(), "method": "GET", "url": url, "headers": headers});
                    if chained && n > 0 {
                        part["dependsOn"] = json!([todo[n - 1].to_string()]);
                    }
                    part
                })
                .collect();
            let mut req =
                self.request(Method::POST, "/$batch", Some(json!({"requests": requests})));
            // Each part counts against its own mailbox; pace on the first part's resource.
            req.resource = self.resource_for(&Method::GET, &self.url(&paths[todo[0]]));
            let reply = self.json_of(req).await?;
            let mut wait = Duration::ZERO;
            for r in reply["responses"].as_array().cloned().unwrap_or_default() {
                let Some(i) = r["id"].as_str().and_then(|s| s.parse::<usize>().ok()) else {
                    continue;
                };
                let status = r["status"].as_u64().unwrap_or(0) as u16;
                if chained && status == 424 && attempt < 10 {
                    // Its answer is what went wrong before it: asked again.
                    continue;
                }
                if matches!(status, 429 | 500 | 502 | 503 | 504) && attempt < 10 {
                    let ra = r["headers"]["Retry-After"]
                        .as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                        .map(Duration::from_secs)
                        .unwrap_or(Duration::from_millis(200 * attempt as u64));
                    wait = wait.max(ra);
                    if status == 429 {
                        self.pacer.note_throttled();
                    }
                    continue;
                }
                if i < results.len() {
                    results[i] = Some((status, r["body"].clone()));
                }
            }
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            if attempt >= 10 {
                break;
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or((503, Value::Null)))
            .collect())
    }

    /// A link Graph gave (or a path) as a path relative to the version root, as `$batch`
    /// parts name their requests; `None` for a link elsewhere (another host or version).
    pub fn relative(&self, link: &str) -> Option<String> {
        if !(link.starts_with("http://") || link.starts_with("https://")) {
            return Some(format!("/{}", link.trim_start_matches('/')));
        }
        link.strip_prefix(&self.base)
            .filter(|rest| rest.starts_with('/'))
            .map(str::to_string)
    }

    /// Streams the bytes behind a `…/content` path (302 to a pre-authenticated URL),
    /// resuming with `Range` when a transfer is cut, and fetching a fresh URL when the old one
    /// expired. Nothing is buffered beyond one chunk.
    pub fn download<'a>(
        &'a self,
        content_path: &str,
    ) -> impl Stream<Item = Result<Bytes, GraphError>> + 'a {
        self.download_from(content_path, None)
    }

    /// Like `download`, starting from a pre-authenticated URL already known (the item's
    /// `@microsoft.graph.downloadUrl`), which saves one request per file; `content_path`
    /// is asked for a fresh URL when that one has expired.
    pub fn download_from<'a>(
        &'a self,
        content_path: &str,
        known_url: Option<String>,
    ) -> impl Stream<Item = Result<Bytes, GraphError>> + 'a {
        let content_path = content_path.to_string();
        async_stream::try_stream! {
            let mut got: u64 = 0;
            let mut location: Option<String> = known_url;
            let mut failures = 0u32;
            loop {
                let loc = match &location {
                    Some(l) => l.clone(),
                    None => {
                        let req = self.request(Method::GET, &content_path, None);
                        let resp = self.send(req.clone()).await?;
                        match resp.status {
                            302 | 301 | 303 | 307 => {
                                let l = resp.header("location").map(str::to_string).ok_or_else(|| GraphError::Decode { path: req.path(), detail: "redirect without Location".into() })?;
                                location = Some(l.clone());
                                l
                            }
                            s if (200..300).contains(&s) => Err(GraphError::Decode { path: req.path(), detail: "expected a redirect to the content".into() })?,
                            _ => Err(resp.error(&req))?,
                        }
                    }
                };
                let mut req = Request::get(loc.clone(), Resource::Files { ru: 1 });
                req.authenticated = false;
                req.stream = true;
                if got > 0 {
                    req.headers.insert(http::header::RANGE, HeaderValue::from_str(&format!("bytes={got}-")).map_err(|e| GraphError::Config(e.to_string()))?);
                }
                let resp = self.send(req.clone()).await?;
                let (status, body) = (resp.status, resp.body);
                let skip = match status {
                    206 => 0,
                    200 => got, // the range was ignored: drop what we already have
                    401 | 403 | 404 | 410 if failures < 5 => {
                        // The pre-authenticated URL expired: ask for a new one.
                        failures += 1;
                        location = None;
                        continue;
                    }
                    416 if got > 0 => return,
                    _ => {
                        let r = Response { status, headers: resp.headers, body: Body::Buffered(Bytes::new()) };
                        Err(r.error(&req))?;
                        return;
                    }
                };
                let Body::Streaming(stream_resp) = body else {
                    return;
                };
                let mut s = stream_resp.bytes_stream();
                let mut to_skip = skip;
                let mut cut = false;
                while let Some(chunk) = s.next().await {
                    match chunk {
                        Ok(mut c) => {
                            if to_skip > 0 {
                                let n = (to_skip as usize).min(c.len());
                                c = c.slice(n..);
                                to_skip -= n as u64;
                            }
                            if !c.is_empty() {
                                got += c.len() as u64;
                                yield c;
                            }
                        }
                        Err(e) => {
                            tracing::debug!("download cut after {got} bytes: {}", crate::transport::without_url(e));
                            cut = true;
                            break;
                        }
                    }
                }
                if !cut {
                    return;
                }
                failures += 1;
                if failures > 20 {
                    Err(GraphError::Network { method: "GET".into(), path: display_path(&content_path), detail: format!("the transfer was cut {failures} times") })?;
                }
            }
        }
    }

    /// Uploads `data` as `name` under the folder `parent_item_path` (e.g.
    /// `/drives/{id}/items/{parent}`) with an upload session: 320 KiB-multiple fragments,
    /// resumed from `nextExpectedRanges` after a failure. `conflict`: fail|replace|rename.
    pub async fn upload_session<S>(
        &self,
        parent_item_path: &str,
        name: &str,
        size: u64,
        conflict: &str,
        mut data: S,
    ) -> Result<Value, GraphError>
    where
        S: Stream<Item = Result<Bytes, GraphError>> + Unpin,
    {
        const FRAGMENT: usize = 10 * 320 * 1024;
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let session = self
            .send_json(
                Method::POST,
                &format!("{}:/{encoded}:/createUploadSession", parent_item_path.trim_end_matches('/')),
                json!({"item": {"@microsoft.graph.conflictBehavior": conflict, "name": name}, "deferCommit": false}),
            )
            .await?;
        let upload_url = session["uploadUrl"]
            .as_str()
            .ok_or_else(|| GraphError::Decode {
                path: parent_item_path.into(),
                detail: "no uploadUrl in the upload session".into(),
            })?
            .to_string();
        let mut sent: u64 = 0;
        let mut buf: Vec<u8> = Vec::with_capacity(FRAGMENT);
        let mut done = false;
        let mut last_item = Value::Null;
        while !done {
            while buf.len() < FRAGMENT {
                match data.next().await {
                    Some(chunk) => buf.extend_from_slice(&chunk?),
                    None => break,
                }
            }
            let take = if sent + buf.len() as u64 >= size {
                buf.len()
            } else {
                buf.len() / (320 * 1024) * (320 * 1024)
            };
            if take == 0 && size > 0 {
                return Err(GraphError::Decode {
                    path: parent_item_path.into(),
                    detail: format!("the data ended after {sent} of {size} bytes"),
                });
            }
            let fragment: Vec<u8> = buf.drain(..take).collect();
            let end = sent + fragment.len() as u64;
            let mut req = Request::get(upload_url.clone(), Resource::Files { ru: 0 });
            req.method = Method::PUT;
            req.authenticated = false;
            let range = if size == 0 {
                "bytes */0".to_string()
            } else {
                format!("bytes {sent}-{}/{size}", end - 1)
            };
            req.headers.insert(
                http::header::CONTENT_RANGE,
                HeaderValue::from_str(&range).map_err(|e| GraphError::Config(e.to_string()))?,
            );
            req.body = Some(Bytes::from(fragment));
            let resp = self.send(req.clone()).await?;
            match resp.status {
                202 => sent = end,
                200 | 201 => {
                    last_item = serde_json::from_slice(resp.bytes()).unwrap_or(Value::Null);
                    done = true;
                }
                _ => return Err(resp.error(&req)),
            }
            if end >= size && !done {
                return Err(GraphError::Decode {
                    path: parent_item_path.into(),
                    detail: "the upload session did not complete".into(),
                });
            }
        }
        Ok(last_item)
    }
}

/// Whether a path is a message delta query, in any of the forms Graph accepts and gives
/// back in its links (`…/messages/delta`, `delta()`, `microsoft.graph.delta()`).
fn is_message_delta(path: &str) -> bool {
    let mut segs = path.rsplit('/');
    let last = segs.next().unwrap_or_default();
    segs.next() == Some("messages")
        && last
            .trim_start_matches("microsoft.graph.")
            .trim_end_matches("()")
            == "delta"
}

fn is_resync(e: &GraphError) -> bool {
    match e {
        GraphError::Resync { .. } => true,
        GraphError::Api { status, code, .. } => {
            *status == 410
                || matches!(
                    code.as_str(),
                    "syncStateNotFound"
                        | "resyncRequired"
                        | "resyncChangesApplyDifferences"
                        | "resyncChangesUploadDifferences"
                )
        }
        _ => false,
    }
}

/// The resource whose `.default` scope is requested: Microsoft's Graph for any Graph URL,
/// which is what the simulator expects too.
fn scope_for(_graph_url: &str) -> String {
    DEFAULT_GRAPH_URL.to_string()
}

/// Whether two URLs share `scheme://host[:port]`: where a token or a link Graph gave may
/// be followed.
pub fn same_origin(a: &str, b: &str) -> bool {
    origin(a) == origin(b)
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_deltas_are_recognised_in_every_form() {
        for p in [
            "/v1.0/users/u/mailFolders/f/messages/delta",
            "/v1.0/users/u/mailFolders('f')/messages/delta()",
            "/v1.0/users/u/mailFolders('f')/messages/microsoft.graph.delta()",
        ] {
            assert!(is_message_delta(p), "{p}");
        }
        for p in [
            "/v1.0/users/u/mailFolders/delta",
            "/v1.0/users/u/contactFolders/f/contacts/delta",
            "/v1.0/users/u/messages/m/$value",
            "/v1.0/drives/d/root/delta",
        ] {
            assert!(!is_message_delta(p), "{p}");
        }
    }

    #[test]
    fn links_become_paths_relative_to_the_version_root() {
        let g = GraphClient::new(GraphConfig::new(
            "t",
            "c",
            Credential::Secret("s".to_string().into()),
        ))
        .unwrap();
        assert_eq!(
            g.relative("https://graph.microsoft.com/v1.0/users/u/mailFolders/f/messages/delta?$deltatoken=x")
                .as_deref(),
            Some("/users/u/mailFolders/f/messages/delta?$deltatoken=x")
        );
        assert_eq!(
            g.relative("users/u/drive").as_deref(),
            Some("/users/u/drive")
        );
        assert_eq!(
            g.relative("https://graph.microsoft.com/beta/users/u/settings/exchange"),
            None
        );
        assert_eq!(g.relative("https://elsewhere.example/v1.0/users/u"), None);
    }
}
