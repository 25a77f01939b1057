//! The REST API under `/api/v1`, its OpenAPI document (generated from these handlers by
//! utoipa), `/metrics`, `/healthz` and `/readyz`.
//!
//! One middleware authenticates every `/api/v1` call (an API token, or a portal session
//! with its CSRF token on changes), checks the caller's role against the action of the
//! route (`route_action`, the one table of which route is which action) and
//! appends state-changing calls and reads of item content to the audit log. Errors have
//! one shape, `{"error": {"code", "message", "hint"}}`, with the status the error
//! classification gives.

use crate::State;
use crate::auth::{self, Action, Caller, Role};
use crate::jobs::{self, Job, Run, RunDetail};
use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State as Axum};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cairn_config::JobEntry;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};

type Shared = Arc<State>;

// ---------------------------------------------------------------------------------------
// Errors

/// The one error shape of the API.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad-request`, `unauthorized`, `forbidden`, `not-found`,
    /// `conflict`, `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    hint: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", what)
    }

    fn forbidden(what: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", what)
    }

    fn conflict(what: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", what)
    }

    fn bad(what: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", what)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let c = cairn_app::classify(&e);
        // A resource or restore point that does not exist is not found, not a bad request.
        let missing = e.chain().any(|x| {
            matches!(
                x.downcast_ref::<cairn_catalog::SelectError>(),
                Some(
                    cairn_catalog::SelectError::UnknownResource { .. }
                        | cairn_catalog::SelectError::NoPoints { .. }
                        | cairn_catalog::SelectError::UnknownPoint { .. }
                )
            )
        });
        if missing {
            return Self {
                status: StatusCode::NOT_FOUND,
                code: "not-found",
                message: c.message,
                hint: c.hint,
            };
        }
        let (status, code) = match c.class {
            cairn_app::Class::User => (StatusCode::BAD_REQUEST, "bad-request"),
            cairn_app::Class::Transient => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            cairn_app::Class::Internal => {
                tracing::error!("internal error: {}", c.message);
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        Self {
            status,
            code,
            message: c.message,
            hint: c.hint,
        }
    }
}

impl From<cairn_app::UserError> for ApiError {
    fn from(e: cairn_app::UserError) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code.into(),
                    message: self.message,
                    hint: self.hint,
                },
            }),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
        }
        r
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs blocking work (the catalog, the repository) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(anyhow::anyhow!("a task failed: {e}").into()),
    }
}

// ---------------------------------------------------------------------------------------
// Authorisation and audit: one place

/// Which action a route is: the one table the middleware checks roles against. `None`:
/// no token needed.
pub fn route_action(method: &Method, path: &str) -> Option<Action> {
    use Action::*;
    let m = method.as_str();
    Some(match (m, path) {
        (_, "/api/v1/openapi.json") => return None,
        (_, "/" | "/assets/{*path}") => return None,
        ("GET", "/api/v1/preview" | "/api/v1/preview/attachment" | "/api/v1/preview/file") => {
            ReadContent
        }
        ("GET", "/api/v1/me") => Whoami,
        ("GET", "/api/v1/restore-points") => ListPoints,
        ("GET", "/api/v1/tasks/{id}") => TaskStatus,
        ("GET", "/api/v1/jobs/{name}/runs" | "/api/v1/runs/{id}" | "/api/v1/jobs/{name}")
        | ("GET", "/api/v1/jobs" | "/api/v1/tenants")
        | ("GET", "/api/v1/approvals" | "/api/v1/metrics") => ReadStatus,
        ("POST", "/api/v1/jobs" | "/api/v1/jobs/{name}/run")
        | ("PUT" | "DELETE", "/api/v1/jobs/{name}") => ManageJobs,
        ("GET", "/api/v1/ls" | "/api/v1/find") => Browse,
        ("POST", "/api/v1/restores" | "/api/v1/exports")
        | ("GET", "/api/v1/tasks/{id}/download") => ReadContent,
        ("GET", "/api/v1/holds") => ReadStatus,
        ("POST", "/api/v1/holds") => ManageJobs,
        ("DELETE", "/api/v1/holds/{id}") => Destroy,
        ("GET", "/api/v1/audit" | "/api/v1/erasures") => ReadAudit,
        ("GET" | "POST", "/api/v1/tokens") | ("DELETE", "/api/v1/tokens/{name}") => ManageTokens,
        ("POST", "/api/v1/forget" | "/api/v1/prune" | "/api/v1/approvals/{id}/approve")
        | ("POST", "/api/v1/erasures") => Destroy,
        _ => Destroy,
    })
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The CSRF token of the session a call came with (`None` for an API token): `/api/v1/me`
/// hands it to the portal's pages.
#[derive(Clone)]
struct SessionCsrf(Option<String>);

/// The answer to a change made with a session cookie but without its CSRF token.
pub(crate) fn csrf_refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "a change made with a portal session needs its CSRF token",
    )
    .hint("send the value of the cairn_csrf cookie (or `csrf` of GET /api/v1/me) as the X-CSRF-Token header, or as the form field csrf")
    .into_response()
}

/// The body of `req`, read (at most 1 MiB), and the request to pass on with it.
async fn buffered(req: Request) -> Result<(Request, axum::body::Bytes), Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, 1 << 20).await {
        Ok(b) => Ok((
            Request::from_parts(parts, axum::body::Body::from(b.clone())),
            b,
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad-request",
            "the request body is larger than 1 MiB",
        )
        .into_response()),
    }
}

/// Whether `spec` (`RESOURCE[@POINT]`) names `own`. User principal names hold an `@`
/// themselves: the whole text, else the part before the last `@` (as the catalog's
/// resolver reads it).
fn names_own(spec: &str, own: &str) -> bool {
    let spec = spec.trim();
    spec.eq_ignore_ascii_case(own)
        || spec
            .rsplit_once('@')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case(own))
}

/// What of a self-service caller's call is not their own: the resource (or restore
/// target) it names, when another. Reads the query, and the JSON body of restores and
/// exports (`req` is passed on with it).
async fn not_own(
    caller: &Caller,
    path: &str,
    req: Request,
) -> Result<(Request, Option<String>), Response> {
    let own = caller.resource.clone().unwrap_or_default();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let other = |v: Option<String>, whole: bool| {
        v.filter(|v| {
            if whole {
                !v.trim().eq_ignore_ascii_case(&own)
            } else {
                !names_own(v, &own)
            }
        })
    };
    Ok(match path {
        "/api/v1/restore-points" | "/api/v1/find" => (req, other(q("resource"), true)),
        "/api/v1/ls" => (req, other(q("target"), false)),
        "/api/v1/restores" | "/api/v1/exports" => {
            let (req, body) = buffered(req).await?;
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let target = v["target"].as_str().map(str::to_string);
            let mut found = other(target, false);
            if found.is_none()
                && let Some(to) = v["to"].as_str()
                && let Some(cairn_restore::RestoreTarget::User(u)) =
                    cairn_restore::RestoreTarget::parse(to)
                && !u.eq_ignore_ascii_case(&own)
            {
                found = Some(format!("user:{u}"));
            }
            (req, found)
        }
        _ => (req, None),
    })
}

async fn authorize(Axum(state): Axum<Shared>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let method = req.method().clone();
    let Some(action) = route_action(&method, &path) else {
        return next.run(req).await;
    };
    let changes = method != Method::GET && method != Method::HEAD;
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    // Who: an API token, else a portal session (whose changes carry its CSRF token).
    let mut csrf = None;
    let caller = match bearer(req.headers()) {
        Some(t) => {
            let store = state.store.clone();
            let t = t.to_string();
            match blocking(move || auth::authenticate(&store, &t)).await {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            }
        }
        None => match crate::session::cookie(req.headers(), crate::session::COOKIE) {
            None => None,
            Some(id) => {
                let (store, id) = (state.store.clone(), id.to_string());
                match blocking(move || crate::session::lookup(&store, &id)).await {
                    Err(e) => return e.into_response(),
                    Ok(None) => None,
                    Ok(Some(s)) => {
                        if changes {
                            let header = req
                                .headers()
                                .get(crate::session::CSRF_HEADER)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string);
                            let form = req
                                .headers()
                                .get(header::CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .is_some_and(|v| {
                                    v.starts_with("application/x-www-form-urlencoded")
                                });
                            let given = match (header, form) {
                                (Some(h), _) => Some(h),
                                (None, true) => {
                                    let (r, body) = match buffered(req).await {
                                        Ok(x) => x,
                                        Err(e) => return e,
                                    };
                                    req = r;
                                    crate::session::form_field(&body, "csrf")
                                }
                                (None, false) => None,
                            };
                            if !crate::session::csrf_matches(&s.csrf, given.as_deref()) {
                                return csrf_refused();
                            }
                        }
                        csrf = Some(s.csrf);
                        Some(s.caller)
                    }
                }
            }
        },
    };
    let Some(caller) = caller else {
        let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid API token or a portal session is needed")
            .hint("send `Authorization: Bearer TOKEN` (`cairn token create --name NAME --role ROLE` makes one on the server's machine), or sign in at /login")
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let denied = |what: String, outcome: String| {
        let entry = crate::audit::AuditEntry {
            actor: caller.name.clone(),
            role: caller.role.as_str().to_string(),
            source: source.clone(),
            action: "access.denied".into(),
            target: what,
            outcome,
        };
        let audit = state.audit.clone();
        async move {
            if let Err(e) = blocking(move || audit.append(&entry).map(|_| ())).await {
                tracing::error!("appending to the audit log: {e:?}");
            }
        }
    };
    if !auth::allowed(caller.role, action) {
        if caller.role == Role::SelfService {
            denied(
                format!("{} {path}", method.as_str()),
                "denied: not for self-service".into(),
            )
            .await;
        }
        return ApiError::forbidden(format!(
            "the {} role may not {} {path}",
            caller.role.as_str(),
            method.as_str()
        ))
        .hint("docs/server.md lists what each role may do")
        .into_response();
    }
    // A person without a role reaches their own resource only: said here, once, for
    // every route (the handlers' scope checks stay behind it).
    if caller.role == Role::SelfService {
        let (r, other) = match not_own(&caller, &path, req).await {
            Ok(x) => x,
            Err(e) => return e,
        };
        req = r;
        if let Some(other) = other {
            let own = caller.resource.as_deref().unwrap_or("?");
            denied(
                format!("{} {path} {other}", method.as_str()),
                format!("denied: {other} is not {own}'s own"),
            )
            .await;
            return ApiError::forbidden(format!(
                "{} may reach only their own restore points ({own}), not {other}",
                caller.name
            ))
            .hint("restores go to your own mailbox and drive: to = original or folder:NAME")
            .into_response();
        }
    }
    req.extensions_mut().insert(caller.clone());
    req.extensions_mut().insert(SessionCsrf(csrf));
    let uri = req.uri().to_string();
    let response = next.run(req).await;
    if changes || action == Action::ReadContent {
        let entry = crate::audit::AuditEntry {
            actor: caller.name.clone(),
            role: caller.role.as_str().to_string(),
            source,
            action: format!("{} {path}", method.as_str()),
            target: uri,
            outcome: response.status().as_u16().to_string(),
        };
        let audit = state.audit.clone();
        if let Err(e) = blocking(move || audit.append(&entry).map(|_| ())).await {
            tracing::error!("appending to the audit log: {e:?}");
        }
    }
    response
}

// ---------------------------------------------------------------------------------------
// The router

#[derive(OpenApi)]
#[openapi(
    info(title = "Cairn", description = "Backup and recovery for Microsoft 365: the server's API"),
    paths(
        me, tenants, list_jobs, create_job, get_job, update_job, delete_job, run_job, job_runs,
        get_run, restore_points, ls, find, forget, prune, approvals, approve, audit_log,
        list_tokens, create_token, revoke_token, metrics_json, start_restore, start_export,
        get_task, download, list_holds, place_hold, release_hold, file_erasure, list_erasures
    ),
    components(schemas(Me, ErrorBody, ErrorDetail, Job, JobEntry, Run, RunDetail, jobs::RunResource, jobs::Status, jobs::Source, Role, auth::TokenInfo, JobView, NewJob, Started, TenantView, PointView, Approval, NewToken, CreatedToken, ForgetBody, Filed, LsView, FindView, AuditRecordView, RestoreBody, ExportBody, TaskStarted, crate::tasks::TaskView, crate::tasks::Kind, crate::tasks::TaskStatus, Hold, NewHold, EraseBody, ErasureView)),
    modifiers(&Bearer),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // Every operation may answer these, in the one error shape.
        let error = |what: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(what)
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        let common = [
            (
                "400",
                "The request is the user's mistake (the hint says what to do)",
            ),
            ("401", "No valid API token"),
            ("403", "The token's role may not do this"),
            ("404", "No such object"),
            ("405", "Method not allowed"),
            ("409", "In conflict with the current state"),
            ("413", "Request body too large"),
            ("415", "The body is not JSON"),
            ("422", "The body or a parameter does not fit the schema"),
            ("500", "A bug or a damaged store"),
            ("503", "Transient: retry after Retry-After"),
        ];
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                for (code, what) in common {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(what));
                }
            }
        }
    }
}

/// Rejections of axum's extractors (a body that is not JSON, a bad query) in the API's
/// error shape, like every other error.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    let code = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    ApiError {
        status,
        code,
        message: if message.is_empty() {
            status.canonical_reason().unwrap_or("error").to_string()
        } else {
            message
        },
        hint: Some("the API is described at /api/v1/openapi.json".into()),
    }
    .into_response()
}

/// The server's routes over `state`.
pub fn app(state: Shared) -> axum::Router {
    let api = axum::Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/me", get(me))
        .route("/api/v1/tenants", get(tenants))
        .route("/api/v1/jobs", get(list_jobs).post(create_job))
        .route(
            "/api/v1/jobs/{name}",
            get(get_job).put(update_job).delete(delete_job),
        )
        .route("/api/v1/jobs/{name}/run", post(run_job))
        .route("/api/v1/jobs/{name}/runs", get(job_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route("/api/v1/restore-points", get(restore_points))
        .route("/api/v1/ls", get(ls))
        .route("/api/v1/find", get(find))
        .route("/api/v1/forget", post(forget))
        .route("/api/v1/prune", post(prune))
        .route("/api/v1/approvals", get(approvals))
        .route("/api/v1/approvals/{id}/approve", post(approve))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{name}", axum::routing::delete(revoke_token))
        .route("/api/v1/metrics", get(metrics_json))
        .route("/api/v1/holds", get(list_holds).post(place_hold))
        .route("/api/v1/holds/{id}", axum::routing::delete(release_hold))
        .route("/api/v1/erasures", get(list_erasures).post(file_erasure))
        .route("/api/v1/restores", post(start_restore))
        .route("/api/v1/exports", post(start_export))
        .route("/api/v1/tasks/{id}", get(get_task))
        .route("/api/v1/tasks/{id}/download", get(download))
        .merge(crate::portal::routes())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ));
    let metrics = axum::Router::new()
        .route("/metrics", get(metrics_text))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize_metrics,
        ));
    axum::Router::new()
        .merge(api)
        .merge(metrics)
        .merge(crate::signin::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            ApiError::not_found("no such endpoint")
                .hint("the API is described at /api/v1/openapi.json")
        })
        .layer(axum::middleware::from_fn(json_errors))
        // Last: every route above, and every answer, gets the security headers.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::signin::security_headers,
        ))
        .with_state(state)
}

/// `/metrics` takes the same token as the API (any role).
async fn authorize_metrics(Axum(state): Axum<Shared>, req: Request, next: Next) -> Response {
    let ok = match bearer(req.headers()) {
        Some(t) => {
            let (store, t) = (state.store.clone(), t.to_string());
            matches!(
                blocking(move || auth::authenticate(&store, &t)).await,
                Ok(Some(_))
            )
        }
        None => false,
    };
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API token is needed",
        )
        .hint("Prometheus: `authorization: {credentials: TOKEN}` in the scrape configuration")
        .into_response();
    }
    next.run(req).await
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the catalog and the repository can be read.
async fn readyz(Axum(state): Axum<Shared>) -> ApiResult<&'static str> {
    let ws = state.ws.clone();
    blocking(move || {
        ws.catalog_for_backup()?;
        ws.repo()?.snapshots()?;
        Ok("ready")
    })
    .await
    .map_err(|e| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "unavailable",
        ..e
    })
}

// ---------------------------------------------------------------------------------------
// Who is calling

/// The caller: a token, or a person signed in to the portal.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The token's name, or the person's user principal name or account name.
    pub name: String,
    /// The one tenant the caller is limited to.
    pub tenant: Option<String>,
    /// `admin`, `backup-operator`, `restore-operator`, `auditor` or `self-service`.
    pub role: String,
    /// The only resources the caller reaches (a self-service person: their own user
    /// principal name); `null`: every resource of its tenants.
    pub resources: Option<Vec<String>>,
    /// A portal session's CSRF token, for the `X-CSRF-Token` header of changes; `null`
    /// for an API token.
    pub csrf: Option<String>,
}

/// Who is calling.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(
    axum::Extension(caller): axum::Extension<Caller>,
    axum::Extension(SessionCsrf(csrf)): axum::Extension<SessionCsrf>,
) -> Json<Me> {
    Json(Me {
        role: caller.role.as_str().to_string(),
        resources: caller.resource.clone().map(|r| vec![r]),
        name: caller.name,
        tenant: caller.tenant,
        csrf,
    })
}

// ---------------------------------------------------------------------------------------
// Tenants and jobs

#[derive(Serialize, ToSchema)]
pub struct TenantView {
    pub name: String,
    pub tenant_id: String,
}

/// The tenants of the configuration.
#[utoipa::path(get, path = "/api/v1/tenants", responses((status = 200, body = [TenantView]), (status = 401, body = ErrorBody)))]
async fn tenants(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> Json<Vec<TenantView>> {
    Json(
        state
            .ws
            .config()
            .file()
            .tenants
            .iter()
            .filter(|(n, _)| caller.sees(n))
            .map(|(n, t)| TenantView {
                name: n.clone(),
                tenant_id: t.tenant_id.clone(),
            })
            .collect(),
    )
}

/// A job with how it is doing.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub running: bool,
    /// Its last backup run.
    pub last_run: Option<Run>,
    /// Its last restore drill (jobs with `verify`).
    pub last_drill: Option<Run>,
    /// The resource's last successful backup by this job.
    pub last_success: BTreeMap<String, chrono::DateTime<chrono::Utc>>,
    /// Resources not backed up within about two of the job's intervals.
    pub unprotected: Vec<String>,
}

pub(crate) fn view(state: &State, job: Job) -> anyhow::Result<JobView> {
    let last_run = jobs::last_run(&state.store, &job.name, jobs::Kind::Backup)?;
    let last_drill = jobs::last_run(&state.store, &job.name, jobs::Kind::Drill)?;
    let last_success = jobs::last_success(&state.store, &job.name)?;
    let now = chrono::Utc::now();
    let unprotected = match job.schedule() {
        Ok(s) => {
            let limit = s.interval(now) * 2 + chrono::Duration::minutes(5);
            last_success
                .iter()
                .filter(|(_, t)| now - **t > limit)
                .map(|(r, _)| r.clone())
                .collect()
        }
        Err(_) => Vec::new(),
    };
    Ok(JobView {
        running: state.running.is_running(&job.name),
        job,
        last_run,
        last_drill,
        last_success,
        unprotected,
    })
}

/// Every job, with its last run and unprotected resources.
#[utoipa::path(get, path = "/api/v1/jobs", responses((status = 200, body = [JobView]), (status = 401, body = ErrorBody)))]
async fn list_jobs(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<Vec<JobView>>> {
    let s = state.clone();
    blocking(move || {
        s.jobs()?
            .into_iter()
            .filter(|j| caller.sees(&j.spec.tenant))
            .map(|j| view(&s, j))
            .collect()
    })
    .await
    .map(Json)
}

/// A job to create: a name and what `[jobs.NAME]` would say.
#[derive(Deserialize, ToSchema)]
pub struct NewJob {
    pub name: String,
    pub spec: JobEntry,
}

fn check_job(state: &State, caller: &Caller, name: &str, spec: &JobEntry) -> ApiResult<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ApiError::bad(format!("{name:?} is not a job name"))
            .hint("use letters, digits, `-`, `_` and `.`"));
    }
    if !caller.sees(&spec.tenant) {
        return Err(ApiError::forbidden(format!(
            "the token is limited to another tenant than {}",
            spec.tenant
        )));
    }
    if !state.ws.config().file().tenants.contains_key(&spec.tenant) {
        return Err(ApiError::bad(format!("no tenant named {}", spec.tenant))
            .hint("GET /api/v1/tenants lists them; tenants are added in the configuration file"));
    }
    jobs::Schedule::of(name, spec)?;
    cairn_app::backup::services(spec.services.as_deref())?;
    spec.verify_percent(name).map_err(anyhow::Error::from)?;
    jobs::Schedule::of_drill(name, spec)?;
    spec.item_retention(name).map_err(anyhow::Error::from)?;
    Ok(())
}

/// Creates a job (kept by the server; jobs of the configuration file are changed there).
#[utoipa::path(post, path = "/api/v1/jobs", request_body = NewJob, responses((status = 201, body = Job), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_job(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<NewJob>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    check_job(&state, &caller, &body.name, &body.spec)?;
    if state.job(&body.name)?.is_some() {
        return Err(ApiError::conflict(format!(
            "a job named {} exists",
            body.name
        )));
    }
    let spec = serde_json::to_string(&body.spec).map_err(anyhow::Error::from)?;
    let name = body.name.clone();
    state.store.with(|c| {
        c.execute(
            "INSERT INTO server_jobs (name, spec) VALUES (?1, ?2)",
            params![name, spec],
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(Job {
            name: body.name,
            source: jobs::Source::Api,
            spec: body.spec,
        }),
    ))
}

fn job_or_404(state: &State, name: &str, caller: &Caller) -> ApiResult<Job> {
    match state.job(name)? {
        Some(j) if caller.sees(&j.spec.tenant) => Ok(j),
        _ => {
            Err(ApiError::not_found(format!("no job named {name}"))
                .hint("GET /api/v1/jobs lists them"))
        }
    }
}

/// One job, with its last run and unprotected resources.
#[utoipa::path(get, path = "/api/v1/jobs/{name}", params(("name" = String, Path)), responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
async fn get_job(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<JobView>> {
    let job = job_or_404(&state, &name, &caller)?;
    Ok(Json(view(&state, job)?))
}

/// Changes a job created through the API. Shortening its retention keeps fewer restore
/// points: that is filed as a request a second admin approves.
#[utoipa::path(put, path = "/api/v1/jobs/{name}", params(("name" = String, Path)), request_body = JobEntry, responses((status = 200, body = Job), (status = 202, body = Filed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_job(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
    Json(spec): Json<JobEntry>,
) -> ApiResult<Response> {
    let old = job_or_404(&state, &name, &caller)?;
    if old.source == jobs::Source::File {
        return Err(
            ApiError::conflict(format!("job {name} is defined in the configuration file"))
                .hint("change it there and restart the server"),
        );
    }
    check_job(&state, &caller, &name, &spec)?;
    let body = serde_json::json!({"name": name, "spec": spec});
    if jobs::shortens_retention(&old.spec, &spec) {
        if !auth::allowed(caller.role, Action::Destroy) {
            return Err(
                ApiError::forbidden("shortening a job's retention needs an admin")
                    .hint("an admin files it, a second admin approves it"),
            );
        }
        let id = file(&state, "update-job", &body, &caller)?;
        return Ok((
            StatusCode::ACCEPTED,
            Json(Filed {
                id,
                status: "pending".into(),
            }),
        )
            .into_response());
    }
    apply_job_update(&state, &name, &spec)?;
    Ok(Json(Job {
        name,
        source: jobs::Source::Api,
        spec,
    })
    .into_response())
}

fn apply_job_update(state: &State, name: &str, spec: &JobEntry) -> anyhow::Result<()> {
    let text = serde_json::to_string(spec)?;
    state.store.with(|c| {
        c.execute(
            "UPDATE server_jobs SET spec=?2 WHERE name=?1",
            params![name, text],
        )
    })?;
    Ok(())
}

/// Deletes a job created through the API (its restore points stay).
#[utoipa::path(delete, path = "/api/v1/jobs/{name}", params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_job(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let job = job_or_404(&state, &name, &caller)?;
    if job.source == jobs::Source::File {
        return Err(
            ApiError::conflict(format!("job {name} is defined in the configuration file"))
                .hint("remove it there and restart the server"),
        );
    }
    state
        .store
        .with(|c| c.execute("DELETE FROM server_jobs WHERE name=?1", params![name]))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A run started.
#[derive(Serialize, ToSchema)]
pub struct Started {
    pub id: i64,
}

/// Runs a job now (202 with the run's id; 409 while a run of it is under way).
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", params(("name" = String, Path)), responses((status = 202, body = Started), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn run_job(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let job = job_or_404(&state, &name, &caller)?;
    match crate::start(&state, job, "api")? {
        Some(id) => Ok((StatusCode::ACCEPTED, Json(Started { id }))),
        None => Err(ApiError::conflict(format!("a run of {name} is under way"))
            .hint("GET /api/v1/jobs/{name}/runs shows it")),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct Limit {
    /// At most this many (default 100).
    pub limit: Option<u32>,
}

/// The job's runs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/runs", params(("name" = String, Path), Limit), responses((status = 200, body = [Run]), (status = 404, body = ErrorBody)))]
async fn job_runs(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Run>>> {
    job_or_404(&state, &name, &caller)?;
    Ok(Json(jobs::runs(
        &state.store,
        &name,
        q.limit.unwrap_or(100).min(10_000),
    )?))
}

/// One run with every resource's outcome.
#[utoipa::path(get, path = "/api/v1/runs/{id}", params(("id" = i64, Path)), responses((status = 200, body = RunDetail), (status = 404, body = ErrorBody)))]
async fn get_run(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<RunDetail>> {
    match jobs::run(&state.store, id)? {
        Some(mut r) if caller.sees(&r.run.tenant) => {
            for x in &mut r.results {
                findings_for(&caller, &mut x.findings);
            }
            Ok(Json(r))
        }
        _ => Err(ApiError::not_found(format!("no run {id}"))),
    }
}

/// Findings as `caller` may see them: their example items are paths in a restore point
/// (file names, folders), which only roles that may browse read.
fn findings_for(caller: &Caller, findings: &mut [cairn_backup::Finding]) {
    if !auth::allowed(caller.role, Action::Browse) {
        for f in findings {
            f.examples.clear();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Restore points, browsing, search

#[derive(Deserialize, IntoParams)]
pub struct PointsQuery {
    pub tenant: Option<String>,
    pub resource: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PointView {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub snapshot: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub items: u64,
    pub size: u64,
    pub kinds: BTreeMap<String, u64>,
    /// Ransomware or mass-change detection found signs in it (see `findings`).
    pub suspect: bool,
    /// What detection found: `signal`, `summary`, `numbers`, `examples` (example items,
    /// for roles that may browse).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub findings: Vec<cairn_backup::Finding>,
    /// The legal hold in force that keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// Restore points per resource, from the catalog.
#[utoipa::path(get, path = "/api/v1/restore-points", params(PointsQuery), responses((status = 200, body = [PointView]), (status = 403, body = ErrorBody)))]
async fn restore_points(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<PointsQuery>,
) -> ApiResult<Json<Vec<PointView>>> {
    let tenant = scoped(&caller, q.tenant)?;
    let ws = state.ws.clone();
    let rows = blocking(move || {
        let cat = ws.catalog_for_backup()?;
        let filter = cairn_app::browse::SnapshotFilter {
            tenant,
            resource: q.resource,
            since: None,
            until: None,
        };
        Ok(cairn_app::browse::snapshots(&*cat, &filter, None)?.rows)
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .filter(|r| caller.sees_resource(&r.tenant, &r.resource))
            .map(|mut r| {
                findings_for(&caller, &mut r.findings);
                r
            })
            .map(|r| PointView {
                tenant: r.tenant,
                resource: r.resource,
                point: r.point,
                snapshot: r.snapshot,
                time: r.time,
                items: r.items,
                size: r.size,
                kinds: r.kinds,
                suspect: r.suspect,
                findings: r.findings,
                held_by: r.held_by,
            })
            .collect(),
    ))
}

/// A restore point the caller may read: else "not found", as for a name that does not
/// exist (a limited token learns nothing of what it may not see).
fn may_read(caller: &Caller, tenant: &str, resource: &str) -> anyhow::Result<()> {
    if caller.sees_resource(tenant, resource) {
        return Ok(());
    }
    Err(cairn_catalog::SelectError::UnknownResource {
        name: resource.to_string(),
        tenant: Some(tenant.to_string()),
        known: Vec::new(),
        total: 0,
        elsewhere: Vec::new(),
    }
    .into())
}

/// The tenant a call may look at: the token's own when it is limited to one.
fn scoped(caller: &Caller, asked: Option<String>) -> ApiResult<Option<String>> {
    match (&caller.tenant, asked) {
        (None, a) => Ok(a),
        (Some(t), None) => Ok(Some(t.clone())),
        (Some(t), Some(a)) if *t == a => Ok(Some(a)),
        (Some(_), Some(a)) => Err(ApiError::forbidden(format!(
            "the token is limited to another tenant than {a}"
        ))),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct LsQuery {
    /// `RESOURCE[@POINT]`.
    pub target: String,
    pub tenant: Option<String>,
    /// A folder of the restore point; default its root.
    pub path: Option<String>,
    pub recursive: Option<bool>,
    /// At most this many items (default 1000).
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct LsView {
    pub tenant: String,
    pub resource: String,
    pub point: i64,
    pub snapshot: String,
    pub path: String,
    pub folders: Vec<serde_json::Value>,
    pub items: Vec<serde_json::Value>,
    /// More items than `limit`.
    pub truncated: bool,
}

fn item_json(row: &cairn_catalog::ItemRow) -> serde_json::Value {
    serde_json::json!({
        "path": row.path, "kind": row.kind, "id": row.item, "size": row.size,
        "mtime": row.mtime, "date": row.date, "subject": row.subject, "from": row.sender,
        "to": row.recipients, "name": row.name,
    })
}

/// What a restore point holds under a path.
#[utoipa::path(get, path = "/api/v1/ls", params(LsQuery), responses((status = 200, body = LsView), (status = 400, body = ErrorBody)))]
async fn ls(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<LsQuery>,
) -> ApiResult<Json<LsView>> {
    let tenant = scoped(&caller, q.tenant)?;
    let ws = state.ws.clone();
    blocking(move || {
        let cat = ws.catalog_for_backup()?;
        let sel = cairn_catalog::select::select(&*cat, tenant.as_deref(), &q.target)?;
        may_read(&caller, &sel.resource.tenant, &sel.resource.name)?;
        let listing = cairn_app::browse::list(
            &*cat,
            sel,
            q.path.as_deref().unwrap_or(""),
            q.recursive.unwrap_or(false),
        )?;
        let limit = q.limit.unwrap_or(1000) as usize;
        let mut items = Vec::new();
        let mut truncated = false;
        listing.for_each_item(&*cat, &mut |row| {
            if items.len() == limit {
                truncated = true;
                return false;
            }
            items.push(item_json(&row));
            true
        })?;
        Ok(Json(LsView {
            tenant: listing.selected.resource.tenant.clone(),
            resource: listing.selected.resource.name.clone(),
            point: listing.selected.point.seq,
            snapshot: listing.selected.point.snapshot.clone(),
            path: listing.dir.clone(),
            folders: listing
                .folders
                .iter()
                .map(|f| serde_json::json!(f))
                .collect(),
            items,
            truncated,
        }))
    })
    .await
}

#[derive(Deserialize, IntoParams)]
pub struct FindQuery {
    pub q: Option<String>,
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct FindView {
    pub hits: Vec<serde_json::Value>,
    pub more: bool,
}

/// Items across restore points.
#[utoipa::path(get, path = "/api/v1/find", params(FindQuery), responses((status = 200, body = FindView), (status = 400, body = ErrorBody)))]
async fn find(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(q): Query<FindQuery>,
) -> ApiResult<Json<FindView>> {
    let tenant = scoped(&caller, q.tenant)?;
    let ws = state.ws.clone();
    blocking(move || {
        let cat = ws.catalog_for_backup()?;
        let resources = match (&caller.resource, q.resource) {
            (Some(mine), Some(asked)) if !mine.eq_ignore_ascii_case(&asked) => {
                return Err(anyhow::Error::from(cairn_app::UserError::new(format!(
                    "the token is limited to {mine}"
                ))));
            }
            (Some(mine), _) => vec![mine.clone()],
            (None, asked) => asked.into_iter().collect(),
        };
        let req = cairn_app::browse::FindRequest {
            text: q.q,
            resources,
            tenant,
            from: q.from,
            to: q.to,
            kind: q.kind,
            limit: q.limit.unwrap_or(100).min(10_000),
            ..Default::default()
        };
        let r = cairn_app::browse::find(&*cat, &req)?;
        let hits = r
            .found
            .iter()
            .map(|f| {
                let mut v = item_json(&f.hit.row);
                v["tenant"] = serde_json::json!(f.hit.resource.tenant);
                v["resource"] = serde_json::json!(f.hit.resource.name);
                v["first"] = serde_json::json!(f.hit.first.seq);
                v["last"] = serde_json::json!(f.last_seq);
                v
            })
            .collect();
        Ok(Json(FindView { hits, more: r.more }))
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Destruction: requests a second admin approves

/// A filed request.
#[derive(Serialize, ToSchema)]
pub struct Filed {
    pub id: i64,
    pub status: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Approval {
    pub id: i64,
    /// `forget`, `prune`, `update-job`, `release-hold`, `erase`.
    pub action: String,
    pub body: serde_json::Value,
    pub filed_by: String,
    pub filed: chrono::DateTime<chrono::Utc>,
    pub expires: chrono::DateTime<chrono::Utc>,
    pub approved_by: Option<String>,
    /// `pending`, `done`, `failed`, `expired`.
    pub status: String,
    pub outcome: Option<String>,
}

fn file(
    state: &State,
    action: &str,
    body: &serde_json::Value,
    caller: &Caller,
) -> anyhow::Result<i64> {
    let now = crate::store::now();
    let expires = now + state.approval.num_seconds();
    let body = body.to_string();
    state.store.with(|c| {
        c.execute(
            "INSERT INTO server_approvals (action, body, filed_by, filed, expires, status)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![action, body, caller.name, now, expires],
        )?;
        Ok(c.last_insert_rowid())
    })
}

/// A forget to file: the retention rule, narrowed to a tenant or a resource.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ForgetBody {
    pub tenant: Option<String>,
    pub resource: Option<String>,
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within_days: Option<u32>,
    #[serde(default)]
    pub hold: Vec<String>,
    #[serde(default)]
    pub prune: bool,
}

/// Files a forget; it runs once a second admin approves it.
#[utoipa::path(post, path = "/api/v1/forget", request_body = ForgetBody, responses((status = 202, body = Filed), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn forget(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<ForgetBody>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let none = [
        body.keep_last,
        body.keep_daily,
        body.keep_weekly,
        body.keep_monthly,
        body.keep_yearly,
        body.keep_within_days,
    ]
    .iter()
    .all(Option::is_none);
    if none {
        return Err(ApiError::bad(
            "a forget needs a rule: keep-last, keep-daily, keep-weekly, keep-monthly, keep-yearly or keep-within-days",
        ));
    }
    scoped(&caller, body.tenant.clone())?;
    let id = file(&state, "forget", &serde_json::json!(body), &caller)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Filed {
            id,
            status: "pending".into(),
        }),
    ))
}

/// Files a prune; it runs once a second admin approves it.
#[utoipa::path(post, path = "/api/v1/prune", responses((status = 202, body = Filed), (status = 403, body = ErrorBody)))]
async fn prune(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let id = file(&state, "prune", &serde_json::json!({}), &caller)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Filed {
            id,
            status: "pending".into(),
        }),
    ))
}

fn approval_at(r: &rusqlite::Row<'_>) -> rusqlite::Result<Approval> {
    use crate::store::time;
    Ok(Approval {
        id: r.get(0)?,
        action: r.get(1)?,
        body: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
        filed_by: r.get(3)?,
        filed: time(r.get(4)?),
        expires: time(r.get(5)?),
        approved_by: r.get(6)?,
        status: r.get(7)?,
        outcome: r.get(8)?,
    })
}

const APPROVAL_COLS: &str =
    "id, action, body, filed_by, filed, expires, approved_by, status, outcome";

/// Requests, newest first (expired ones marked).
#[utoipa::path(get, path = "/api/v1/approvals", responses((status = 200, body = [Approval])))]
async fn approvals(Axum(state): Axum<Shared>) -> ApiResult<Json<Vec<Approval>>> {
    state
        .store
        .with(|c| {
            c.execute(
            "UPDATE server_approvals SET status='expired' WHERE status='pending' AND expires <= ?1",
            params![crate::store::now()],
        )?;
            let mut st = c.prepare(&format!(
                "SELECT {APPROVAL_COLS} FROM server_approvals ORDER BY id DESC"
            ))?;
            let rows = st.query_map([], approval_at)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })
        .map(Json)
        .map_err(ApiError::from)
}

/// Approves a request filed by another admin: it runs now, and the answer says how it went.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", params(("id" = i64, Path)), responses((status = 200, body = Approval), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn approve(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Approval>> {
    let a = state
        .store
        .with(|c| {
            c.query_row(
                &format!("SELECT {APPROVAL_COLS} FROM server_approvals WHERE id=?1"),
                params![id],
                approval_at,
            )
            .optional()
        })?
        .ok_or_else(|| ApiError::not_found(format!("no request {id}")))?;
    if a.filed_by == caller.name {
        return Err(ApiError::forbidden(
            "a request is approved by another admin than the one who filed it",
        )
        .hint("four eyes: a second admin token approves it"));
    }
    if a.status != "pending" {
        return Err(ApiError::conflict(format!("request {id} is {}", a.status)));
    }
    if a.expires <= chrono::Utc::now() {
        state.store.with(|c| {
            c.execute(
                "UPDATE server_approvals SET status='expired' WHERE id=?1",
                params![id],
            )
        })?;
        return Err(ApiError::conflict(format!("request {id} expired")).hint("file it again"));
    }
    // Claim it: two approvals at once run it once.
    let claimed = state.store.with(|c| {
        c.execute(
            "UPDATE server_approvals SET status='running', approved_by=?2, decided=?3 WHERE id=?1 AND status='pending'",
            params![id, caller.name, crate::store::now()],
        )
    })?;
    if claimed == 0 {
        return Err(ApiError::conflict(format!(
            "request {id} was decided meanwhile"
        )));
    }
    let a = Approval {
        approved_by: Some(caller.name.clone()),
        ..a
    };
    let result = carry_out(&state, &a).await;
    let (status, outcome) = match &result {
        Ok(o) => ("done", o.clone()),
        Err(e) => ("failed", format!("{e:#}")),
    };
    state.store.with(|c| {
        c.execute(
            "UPDATE server_approvals SET status=?2, outcome=?3 WHERE id=?1",
            params![id, status, outcome],
        )
    })?;
    Ok(Json(Approval {
        status: status.into(),
        outcome: Some(outcome),
        ..a
    }))
}

/// Runs an approved request.
async fn carry_out(state: &Shared, a: &Approval) -> anyhow::Result<String> {
    let _writer = state.writer.lock().await;
    match a.action.as_str() {
        "forget" => {
            let b: ForgetBody = serde_json::from_value(a.body.clone())?;
            // The holds on record are applied by forget itself.
            let hold = b.hold;
            let req = cairn_app::maintenance::ForgetRequest {
                rule: cairn_repo::ForgetRule {
                    keep_last: b.keep_last,
                    keep_daily: b.keep_daily,
                    keep_weekly: b.keep_weekly,
                    keep_monthly: b.keep_monthly,
                    keep_yearly: b.keep_yearly,
                    keep_within: b.keep_within_days.map(|d| chrono::Duration::days(d as i64)),
                    only_tenant: b.tenant,
                    only_resource: b.resource,
                },
                holds: hold,
                dry_run: false,
                prune: b.prune,
            };
            let out = cairn_app::maintenance::forget(state.ws.clone(), req).await?;
            Ok(format!(
                "{} restore points removed, {} held, {} kept",
                out.report.removed.len(),
                out.report.held.len(),
                out.report.kept.len()
            ))
        }
        "prune" => {
            let (n, completed) = cairn_app::maintenance::prune(state.ws.clone()).await?;
            Ok(match completed.is_empty() {
                true => format!("{n} packs deleted"),
                false => format!(
                    "{n} packs deleted; pending erasures completed: {}",
                    completed.join(", ")
                ),
            })
        }
        "release-hold" => {
            let id = a.body["id"].as_str().unwrap_or_default().to_string();
            let by = format!(
                "{} (filed), {} (approved)",
                a.filed_by,
                a.approved_by.as_deref().unwrap_or("?")
            );
            let reason = format!("four-eyes request {}", a.id);
            let ws = state.ws.clone();
            let h = tokio::task::spawn_blocking(move || {
                cairn_app::holds::release(&ws, &id, &by, &reason)
            })
            .await??;
            Ok(format!("legal hold {} released", h.id))
        }
        "erase" => {
            let b: EraseBody = serde_json::from_value(a.body.clone())?;
            let mut req = erase_request(&b)?;
            req.execute = true;
            req.by = format!(
                "{} (filed), {} (approved)",
                a.filed_by,
                a.approved_by.as_deref().unwrap_or("?")
            );
            let ws = state.ws.clone();
            let r =
                tokio::task::spawn_blocking(move || cairn_app::erase::erase(&ws, &req)).await??;
            Ok(format!(
                "erasure {} of {}: {}, {} items from {} restore points{}",
                r.id,
                r.subject,
                r.status,
                r.items,
                r.points.len(),
                match r.status.as_str() {
                    "pending" =>
                        " (the storage keeps some under retention: a later prune completes it)",
                    _ => "",
                }
            ))
        }
        "update-job" => {
            let name = a.body["name"].as_str().unwrap_or_default().to_string();
            let spec: JobEntry = serde_json::from_value(a.body["spec"].clone())?;
            apply_job_update(state, &name, &spec)?;
            Ok(format!("job {name} changed"))
        }
        other => anyhow::bail!("unknown request {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// Audit, tokens, metrics

#[derive(Deserialize, IntoParams)]
pub struct AuditQuery {
    /// RFC 3339; default: the last 24 hours.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub limit: Option<u32>,
}

/// An audit log entry (`crate::audit::AuditRecord`).
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct AuditRecordView(serde_json::Value);

/// The audit log since a time.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditQuery), responses((status = 200, body = [AuditRecordView])))]
async fn audit_log(
    Axum(state): Axum<Shared>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let since = q
        .since
        .unwrap_or_else(|| chrono::Utc::now() - chrono::Duration::days(1));
    let limit = q.limit.unwrap_or(1000) as usize;
    let audit = state.audit.clone();
    blocking(move || {
        let mut out = Vec::new();
        audit.since(since, &mut |r| {
            out.push(serde_json::json!(r));
            out.len() < limit
        })?;
        Ok(Json(out))
    })
    .await
}

/// Every token (never the secret).
#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = [auth::TokenInfo])))]
async fn list_tokens(Axum(state): Axum<Shared>) -> ApiResult<Json<Vec<auth::TokenInfo>>> {
    Ok(Json(auth::list(&state.store)?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub tenant: Option<String>,
    /// Limit the token to one resource of `tenant`.
    pub resource: Option<String>,
    /// `90d`, `12h`; default: no expiry.
    pub expires: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    pub name: String,
    /// Shown this once.
    pub token: String,
}

/// Creates a token; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = NewToken, responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody)))]
async fn create_token(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(mut b): Json<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    // An admin limited to a tenant makes tokens of that tenant only.
    b.tenant = scoped(&caller, b.tenant)?;
    let expires = match &b.expires {
        None => None,
        Some(e) => Some(auth::parse_duration(e).ok_or_else(|| {
            ApiError::bad(format!("expires = {e:?} is not a duration")).hint("90d, 12h, 30m")
        })?),
    };
    let scope = auth::Scope {
        tenant: b.tenant,
        resource: b.resource,
    };
    let token = auth::create(&state.store, &b.name, b.role, &scope, expires)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: b.name,
            token,
        }),
    ))
}

/// Revokes a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", params(("name" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_token(
    Axum(state): Axum<Shared>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if auth::revoke(&state.store, &name)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no live token named {name}")))
    }
}

/// The metrics, as text (also at /metrics for Prometheus).
#[utoipa::path(get, path = "/api/v1/metrics", responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics_json(Axum(state): Axum<Shared>) -> Response {
    metrics_text(Axum(state)).await
}

async fn metrics_text(Axum(state): Axum<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Restores and exports: tasks

/// A restore to start.
#[derive(Deserialize, ToSchema)]
pub struct RestoreBody {
    /// `RESOURCE[@POINT]`.
    pub target: String,
    /// The tenant, when several have a resource of that name (a token limited to a tenant
    /// restores into that one only).
    pub tenant: Option<String>,
    /// Paths of the restore point (`mail/Inbox`); empty: everything.
    #[serde(default)]
    pub paths: Vec<String>,
    /// `original`, `folder`, `folder:NAME` or `user:UPN` [default: original].
    pub to: Option<String>,
    /// `skip`, `overwrite` or `keep-both` [default: skip].
    pub collision: Option<String>,
}

/// An export to start; the result is one zip archive to download.
#[derive(Deserialize, ToSchema)]
pub struct ExportBody {
    pub target: String,
    pub tenant: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// `eml`, `ics` or `files` (mbox and vcf exports write a folder of files: use the
    /// command line).
    pub format: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskStarted {
    pub id: u64,
}

/// Starts a restore into the resource's own tenant; progress at `GET /api/v1/tasks/{id}`.
#[utoipa::path(post, path = "/api/v1/restores", request_body = RestoreBody, responses((status = 202, body = TaskStarted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn start_restore(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(b): Json<RestoreBody>,
) -> ApiResult<(StatusCode, Json<TaskStarted>)> {
    let tenant = scoped(&caller, b.tenant.clone())?;
    let to = b.to.as_deref().unwrap_or("original");
    let target = cairn_restore::RestoreTarget::parse(to).ok_or_else(|| {
        ApiError::bad(format!("unknown restore target {to:?}"))
            .hint("targets are original, folder, folder:NAME and user:UPN")
    })?;
    let c = b.collision.as_deref().unwrap_or("skip");
    let collision = cairn_restore::Collision::parse(c).ok_or_else(|| {
        ApiError::bad(format!("unknown collision policy {c:?}"))
            .hint("skip, overwrite or keep-both")
    })?;
    let req = cairn_app::restore::RestoreRequest {
        target_spec: b.target.clone(),
        paths: b.paths.clone(),
        target,
        collision,
        concurrency: 4,
    };
    let task = state
        .tasks
        .create(crate::tasks::Kind::Restore, &caller.name, tenant.clone());
    let overrides = cairn_config::TenantOverrides {
        tenant,
        ..Default::default()
    };
    // Resolved before answering: a name that does not exist or is ambiguous is the
    // caller's to fix now, not a failed task later.
    let prepared =
        match cairn_app::restore::prepare_async(state.ws.clone(), overrides, req, task.clone())
            .await
        {
            Ok(p) => p,
            Err(e) => {
                task.finish(
                    crate::tasks::TaskStatus::Failed,
                    None,
                    Some(format!("{e:#}")),
                );
                return Err(e.into());
            }
        };
    if let Err(e) = may_read(&caller, &prepared.tenant, &prepared.selection.resource) {
        task.finish(crate::tasks::TaskStatus::Failed, None, Some(e.to_string()));
        return Err(e.into());
    }
    let id = task.snapshot().id;
    state.metrics.task("restore");
    tokio::spawn(async move {
        task.done(prepared.run().await, |r| r.failed_total == 0);
    });
    Ok((StatusCode::ACCEPTED, Json(TaskStarted { id })))
}

/// Starts an export into one zip archive; download it when the task is done.
#[utoipa::path(post, path = "/api/v1/exports", request_body = ExportBody, responses((status = 202, body = TaskStarted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn start_export(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(b): Json<ExportBody>,
) -> ApiResult<(StatusCode, Json<TaskStarted>)> {
    let tenant = scoped(&caller, b.tenant.clone())?;
    let format = cairn_app::export::Format::parse(&b.format)
        .filter(|f| {
            matches!(
                f,
                cairn_app::export::Format::Eml
                    | cairn_app::export::Format::Ics
                    | cairn_app::export::Format::Files
            )
        })
        .ok_or_else(|| {
            ApiError::bad(format!("{:?} is not a format the API exports", b.format))
                .hint("eml, ics or files (one zip archive); mbox and vcf with `cairn export`")
        })?;
    // Resolved before answering, as restores.
    let ws = state.ws.clone();
    let (spec, t) = (b.target.clone(), tenant.clone());
    let sel = blocking(move || {
        Ok(cairn_catalog::select::select(
            &*ws.catalog_for_backup()?,
            t.as_deref(),
            &spec,
        )?)
    })
    .await?;
    may_read(&caller, &sel.resource.tenant, &sel.resource.name)?;
    let task = state
        .tasks
        .create(crate::tasks::Kind::Export, &caller.name, tenant.clone());
    let id = task.snapshot().id;
    let archive = state.exports.join(format!("task-{id}")).join("export.zip");
    let req = cairn_app::export::ExportRequest {
        target: b.target,
        tenant,
        paths: b.paths,
        format,
        output: archive.clone(),
        zip: true,
    };
    state.metrics.task("export");
    let ws = state.ws.clone();
    tokio::spawn(async move {
        if let Some(dir) = archive.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let result = cairn_app::export::export(ws, req, task.clone()).await;
        if result.is_ok() {
            *task.archive.lock().unwrap_or_else(|e| e.into_inner()) = Some(archive);
        }
        task.done(result, |r| r.skipped.is_empty());
    });
    Ok((StatusCode::ACCEPTED, Json(TaskStarted { id })))
}

fn task_of(state: &State, caller: &Caller, id: u64) -> ApiResult<Arc<crate::tasks::Task>> {
    // A token limited to a tenant sees that tenant's tasks only.
    state
        .tasks
        .get(id)
        .filter(|t| caller.tenant.is_none() || t.snapshot().tenant == caller.tenant)
        // A caller limited to one resource (a self-service person) sees its own tasks.
        .filter(|t| caller.resource.is_none() || t.snapshot().owner == caller.name)
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))
}

/// A task's progress, and its report when done.
#[utoipa::path(get, path = "/api/v1/tasks/{id}", params(("id" = u64, Path)), responses((status = 200, body = crate::tasks::TaskView), (status = 404, body = ErrorBody)))]
async fn get_task(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<u64>,
) -> ApiResult<Json<crate::tasks::TaskView>> {
    Ok(Json(task_of(&state, &caller, id)?.snapshot()))
}

/// The zip archive of a finished export.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/download", params(("id" = u64, Path)), responses((status = 200, content_type = "application/zip", body = Vec<u8>), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn download(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<u64>,
) -> ApiResult<Response> {
    let task = task_of(&state, &caller, id)?;
    let path = task
        .archive
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(path) = path else {
        return Err(
            ApiError::conflict(format!("task {id} has nothing to download (yet)"))
                .hint("GET /api/v1/tasks/{id} says when an export is done"),
        );
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(anyhow::Error::from)?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"export-{id}.zip\""))
                    .unwrap_or(HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Legal holds

/// A legal hold (`cairn_app::holds::Hold`): kept in the catalog and in the repository.
#[derive(Serialize, ToSchema)]
pub struct Hold {
    /// `H-` and 8 hex digits.
    pub id: String,
    pub tenant: Option<String>,
    /// What it holds: `{"kind": "resource"|"point"|"search", …}`.
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    /// For people: what it holds.
    pub holds: String,
    pub reason: String,
    pub placed_by: String,
    pub placed: chrono::DateTime<chrono::Utc>,
    /// Placed by Cairn on a suspect restore point's last clean one.
    pub automatic: bool,
    /// When, by whom and why it was released.
    #[schema(value_type = Option<Object>)]
    pub released: Option<serde_json::Value>,
}

impl From<cairn_app::holds::Hold> for Hold {
    fn from(h: cairn_app::holds::Hold) -> Hold {
        Hold {
            holds: h.describe(),
            target: serde_json::to_value(&h.target).unwrap_or_default(),
            released: h
                .released
                .as_ref()
                .and_then(|r| serde_json::to_value(r).ok()),
            id: h.id,
            tenant: h.tenant,
            reason: h.reason,
            placed_by: h.placed_by,
            placed: h.placed,
            automatic: h.automatic,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewHold {
    pub tenant: Option<String>,
    /// A resource (every restore point of it) or `RESOURCE@POINT`.
    pub target: Option<String>,
    /// A search instead: items sent or received by this person, and their own data.
    pub custodian: Option<String>,
    /// A search: words in the subject or file name.
    pub query: Option<String>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Why (a case number): kept with the hold and in the audit log.
    pub reason: String,
}

/// Legal holds, in force and released (newest first).
#[utoipa::path(get, path = "/api/v1/holds", responses((status = 200, body = [Hold])))]
async fn list_holds(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<Vec<Hold>>> {
    let ws = state.ws.clone();
    let mut all = blocking(move || cairn_app::holds::list(&ws)).await?;
    all.reverse();
    Ok(Json(
        all.into_iter()
            .filter(|h| h.tenant.as_deref().is_none_or(|t| caller.sees(t)))
            .map(Hold::from)
            .collect(),
    ))
}

/// Places a legal hold (in force at once).
#[utoipa::path(post, path = "/api/v1/holds", request_body = NewHold, responses((status = 201, body = Hold), (status = 400, body = ErrorBody)))]
async fn place_hold(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(b): Json<NewHold>,
) -> ApiResult<(StatusCode, Json<Hold>)> {
    let tenant = scoped(&caller, b.tenant)?;
    let new = cairn_app::holds::NewHold {
        tenant,
        resource: b.target.filter(|t| !t.trim().is_empty()),
        custodian: b.custodian,
        query: b.query,
        from: b.from,
        to: b.to,
        reason: b.reason,
    };
    let (ws, by) = (state.ws.clone(), caller.name.clone());
    let hold = blocking(move || cairn_app::holds::place(&ws, &new, &by)).await?;
    Ok((StatusCode::CREATED, Json(hold.into())))
}

/// Releasing a hold lets retention remove what it protected: a request a second admin
/// approves (automatic holds too).
#[utoipa::path(delete, path = "/api/v1/holds/{id}", params(("id" = String, Path)), responses((status = 202, body = Filed), (status = 404, body = ErrorBody)))]
async fn release_hold(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Filed>)> {
    let ws = state.ws.clone();
    let all = blocking(move || cairn_app::holds::in_force(&ws)).await?;
    let Some(h) = all.iter().find(|h| h.id.eq_ignore_ascii_case(&id)) else {
        return Err(ApiError::not_found(format!("no legal hold {id} in force")));
    };
    if let Some(t) = &h.tenant
        && !caller.sees(t)
    {
        return Err(ApiError::not_found(format!("no legal hold {id} in force")));
    }
    let id = h.id.clone();
    let filed = file(
        &state,
        "release-hold",
        &serde_json::json!({"id": id}),
        &caller,
    )?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Filed {
            id: filed,
            status: "pending".into(),
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Erasure of one person's data

/// An erasure: one person's data out of every restore point (`cairn erase`).
#[derive(Clone, Deserialize, Serialize, ToSchema)]
pub struct EraseBody {
    /// The person: an e-mail address / user principal name.
    pub subject: String,
    /// Only this tenant's restore points (a token limited to a tenant: that one).
    pub tenant: Option<String>,
    /// `owner` (their own mailbox, calendar, contacts, OneDrive: whole restore points),
    /// `sender`, `recipient` (items naming them, cut out of everyone else's).
    #[serde(rename = "match")]
    pub matches: Vec<String>,
    /// Answer the plan at once and change nothing [default: false: file a request a
    /// second admin approves].
    #[serde(default)]
    pub dry_run: bool,
}

/// An erasure record (`cairn_app::erase::ErasureRecord`: subject, matches, the restore
/// points and item ids removed, who and when, `status` `planned`, `pending` or
/// `complete`, the signature; never content), and in lists whether its signature holds
/// (`signature_valid`).
#[derive(Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct ErasureView(serde_json::Value);

fn erase_request(b: &EraseBody) -> anyhow::Result<cairn_app::erase::EraseRequest> {
    let matches = b
        .matches
        .iter()
        .map(|m| cairn_app::erase::Match::parse(m))
        .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
    Ok(cairn_app::erase::EraseRequest {
        subject: b.subject.trim().to_string(),
        tenant: b.tenant.clone(),
        matches,
        execute: false,
        by: String::new(),
    })
}

/// Plans an erasure (`dry_run`: the plan, at once) or files it as a request: it runs once a
/// second admin approves it, and its signed record is kept in the repository.
#[utoipa::path(post, path = "/api/v1/erasures", request_body = EraseBody, responses((status = 200, description = "The plan of a dry run", body = ErasureView), (status = 202, body = Filed), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn file_erasure(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(mut b): Json<EraseBody>,
) -> ApiResult<Response> {
    if caller.resource.is_some() {
        return Err(ApiError::forbidden(
            "a token limited to one resource may not erase a person's data",
        )
        .hint("an admin token of the whole tenant files erasures"));
    }
    b.tenant = scoped(&caller, b.tenant)?;
    let mut req = erase_request(&b)?;
    req.by = caller.name.clone();
    // Planned first, even for a request: a person with no data, or held data, is the
    // caller's to know now rather than a failed request later.
    let ws = state.ws.clone();
    let plan = blocking(move || cairn_app::erase::erase(&ws, &req)).await?;
    if b.dry_run {
        return Ok(Json(ErasureView(
            serde_json::to_value(&plan).map_err(anyhow::Error::from)?,
        ))
        .into_response());
    }
    let id = file(&state, "erase", &serde_json::json!(b), &caller)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Filed {
            id,
            status: "pending".into(),
        }),
    )
        .into_response())
}

/// The erasure records of the repository, oldest first, each with whether its signature
/// (the repository's key) holds.
#[utoipa::path(get, path = "/api/v1/erasures", responses((status = 200, body = [ErasureView])))]
async fn list_erasures(
    Axum(state): Axum<Shared>,
    axum::Extension(caller): axum::Extension<Caller>,
) -> ApiResult<Json<Vec<ErasureView>>> {
    let ws = state.ws.clone();
    let all = blocking(move || cairn_app::erase::records(&ws)).await?;
    let mut out = Vec::new();
    for k in all {
        // A token limited to a tenant sees the erasures of that tenant only.
        let visible = k
            .record
            .tenant
            .as_deref()
            .map_or(caller.tenant.is_none(), |t| caller.sees(t))
            && k.record.points.iter().all(|p| caller.sees(&p.tenant));
        if visible {
            out.push(ErasureView(
                serde_json::to_value(&k).map_err(anyhow::Error::from)?,
            ));
        }
    }
    Ok(Json(out))
}
