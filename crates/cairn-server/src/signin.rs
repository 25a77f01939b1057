//! People signing in to `cairn serve` (docs/portal.md): `/login` (a page of the ways in, or
//! the redirect to a tenant's Microsoft Entra ID), `/auth/callback` (where Entra sends the
//! browser back), `/login/local` (local accounts), `/logout`; and the security headers of
//! every response. These routes are public: what they hand out is a session
//! ([`crate::session`]), which the API's one middleware then accepts as a caller.

use crate::State;
use crate::audit::AuditEntry;
use crate::auth::Role;
use crate::session::{self, Person};
use axum::extract::{ConnectInfo, Query, Request, State as Axum};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::sync::Arc;

type Shared = Arc<State>;

/// The public sign-in routes.
pub fn routes() -> axum::Router<Shared> {
    axum::Router::new()
        .route("/login", get(login))
        .route("/login/local", post(login_local))
        .route("/auth/callback", get(callback))
        .route("/logout", post(logout))
}

/// The Content-Security-Policy of every response: only the server's own scripts, styles
/// and images, no framing, forms posting only here and to the tenants' sign-in pages.
pub fn content_security_policy(login_urls: &[String]) -> String {
    let mut origins: Vec<String> = login_urls
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .collect();
    origins.sort();
    origins.dedup();
    let mut form_action = String::from("'self'");
    for o in origins {
        form_action.push(' ');
        form_action.push_str(&o);
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action {form_action}"
    )
}

/// Adds the security headers to every response (a handler's own CSP stays).
pub async fn security_headers(Axum(state): Axum<Shared>, req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&state.csp) {
        h.entry(header::CONTENT_SECURITY_POLICY).or_insert(v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// Text made safe inside HTML.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A minimal page (no script, no inline style: the CSP allows neither).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · Cairn</title></head>\n<body><main>\n<h1>{t}</h1>\n{body}\n</main></body></html>\n",
        t = escape(title)
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// A page saying a sign-in failed, with what to do.
fn failed(status: StatusCode, message: &str, hint: &str) -> Response {
    page(
        status,
        "Sign-in failed",
        &format!(
            "<p>{}</p>\n<p>{}</p>\n<p><a href=\"/login\">Sign in again</a></p>",
            escape(message),
            escape(hint)
        ),
    )
}

fn source(req_ext: Option<&ConnectInfo<SocketAddr>>) -> Option<String> {
    req_ext.map(|c| c.0.to_string())
}

async fn audit(
    state: &Shared,
    actor: &str,
    role: &str,
    source: Option<String>,
    action: &str,
    target: String,
    outcome: String,
) {
    crate::record_audit(
        state,
        AuditEntry {
            actor: actor.to_string(),
            role: role.to_string(),
            source,
            action: action.to_string(),
            target,
            outcome,
        },
    )
    .await;
}

/// A redirect to `to` that starts a session: its cookies set.
fn signed_in(state: &State, status: StatusCode, id: &str, csrf: &str) -> Response {
    let mut r = (status, [(header::LOCATION, "/")]).into_response();
    for c in session::set_cookies(id, csrf, state.secure_cookies()) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("a task failed: {e}"))?
}

fn internal(e: anyhow::Error) -> Response {
    tracing::error!("sign-in: {e:#}");
    failed(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not complete the sign-in.",
        "Try again; the server's log says more.",
    )
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    tenant: Option<String>,
}

/// `GET /login`: the ways in; `GET /login?tenant=NAME`: off to that tenant's Entra ID.
async fn login(Axum(state): Axum<Shared>, Query(q): Query<LoginQuery>) -> Response {
    let Some(name) = q.tenant else {
        let mut body = String::new();
        if !state.portal.is_empty() {
            body.push_str("<h2>With your Microsoft 365 account</h2>\n<ul>\n");
            for t in &state.portal {
                let href: String =
                    url::form_urlencoded::byte_serialize(t.name.as_bytes()).collect();
                body.push_str(&format!(
                    "<li><a href=\"/login?tenant={href}\">Sign in to {}</a></li>\n",
                    escape(&t.name)
                ));
            }
            body.push_str("</ul>\n");
        }
        body.push_str(
            "<h2>With a local account</h2>\n<form method=\"post\" action=\"/login/local\">\n\
             <p><label>Name <input name=\"username\" autocomplete=\"username\" required></label></p>\n\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\n\
             <p><button type=\"submit\">Sign in</button></p>\n</form>",
        );
        return page(StatusCode::OK, "Sign in to Cairn", &body);
    };
    let Some(t) = state.portal.iter().find(|t| t.name == name) else {
        return failed(
            StatusCode::NOT_FOUND,
            &format!("No tenant named {name} signs people in here."),
            "Choose one on the sign-in page; a tenant needs portal-client-id and portal-client-secret-file in the server's configuration (docs/portal.md).",
        );
    };
    let Some(redirect) = state.redirect_uri() else {
        return failed(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server does not know its own address.",
            "Its administrator sets public-url in [server] (docs/portal.md).",
        );
    };
    let d = match crate::oidc::discover(&state.http, t).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("sign-in through tenant {}: {e:#}", t.name);
            return failed(
                StatusCode::BAD_GATEWAY,
                &format!(
                    "Microsoft Entra ID of tenant {} could not be reached.",
                    t.name
                ),
                "Try again in a moment; if it persists, the server's log says why.",
            );
        }
    };
    let (store, tenant) = (state.store.clone(), t.name.clone());
    let (st, pending) = match blocking(move || crate::oidc::begin(&store, &tenant)).await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    match crate::oidc::authorize_url(&d, t, &redirect, &st, &pending) {
        Ok(u) => (StatusCode::FOUND, [(header::LOCATION, u)]).into_response(),
        Err(e) => internal(e),
    }
}

#[derive(serde::Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// `GET /auth/callback`: Entra ID sends the browser back with a code (or an error).
async fn callback(
    Axum(state): Axum<Shared>,
    conn: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let from = source(conn.as_ref().map(|c| &c.0));
    let pending = match q.state.clone() {
        Some(s) => {
            let store = state.store.clone();
            match blocking(move || crate::oidc::take(&store, &s)).await {
                Ok(p) => p,
                Err(e) => return internal(e),
            }
        }
        None => None,
    };
    if let Some(error) = q.error {
        let d = q.error_description.unwrap_or_default();
        audit(
            &state,
            "anonymous",
            "",
            from,
            "login.entra",
            pending
                .map(|p| format!("tenant {}", p.tenant))
                .unwrap_or_default(),
            format!("denied: {error}: {d}"),
        )
        .await;
        return failed(
            StatusCode::UNAUTHORIZED,
            &format!("Microsoft Entra ID did not sign you in: {error}. {d}"),
            "If you cancelled, sign in again; else ask an administrator whether you are allowed to use Cairn (the portal app's users and groups in Entra ID).",
        );
    }
    let (Some(code), Some(p)) = (q.code, pending) else {
        return failed(
            StatusCode::BAD_REQUEST,
            "This sign-in expired or was not started here.",
            "A sign-in must end within 10 minutes of starting it on this server: start again.",
        );
    };
    let Some(t) = state.portal.iter().find(|t| t.name == p.tenant) else {
        return failed(
            StatusCode::BAD_REQUEST,
            &format!("Tenant {} no longer signs people in here.", p.tenant),
            "Choose another way on the sign-in page.",
        );
    };
    let Some(redirect) = state.redirect_uri() else {
        return internal(anyhow::anyhow!("[server] public-url is not set"));
    };
    let claims = match crate::oidc::finish(&state.http, t, &redirect, &code, &p).await {
        Ok(c) => c,
        Err(e) => {
            let refused = e.downcast_ref::<crate::oidc::Refused>().is_some();
            audit(
                &state,
                "anonymous",
                "",
                from,
                "login.entra",
                format!("tenant {}", t.name),
                format!("denied: {e:#}"),
            )
            .await;
            return if refused {
                failed(
                    StatusCode::UNAUTHORIZED,
                    &format!("The sign-in was refused: {e:#}."),
                    "Sign in again; if it keeps failing, show this message to an administrator.",
                )
            } else {
                tracing::warn!("sign-in through tenant {}: {e:#}", t.name);
                failed(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "Microsoft Entra ID of tenant {} could not be reached.",
                        t.name
                    ),
                    "Try again in a moment; if it persists, the server's log says why.",
                )
            };
        }
    };
    let Some(upn) = claims.preferred_username.clone().filter(|u| !u.is_empty()) else {
        audit(
            &state,
            "anonymous",
            "",
            from,
            "login.entra",
            format!("tenant {}", t.name),
            "denied: the ID token has no preferred_username".into(),
        )
        .await;
        return failed(
            StatusCode::UNAUTHORIZED,
            "Your account has no user name Cairn can use (preferred_username).",
            "Ask an administrator: the portal app must issue the profile scope.",
        );
    };
    let role = crate::oidc::role_of(&claims, &state.portal_groups);
    let person = Person {
        name: upn.clone(),
        via: "entra",
        role: role.unwrap_or(Role::SelfService),
        tenant: Some(t.name.clone()),
        resource: role.is_none().then(|| upn.clone()),
    };
    let store = state.store.clone();
    let p2 = person.clone();
    let (id, csrf) = match blocking(move || session::create(&store, &p2)).await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    audit(
        &state,
        &upn,
        person.role.as_str(),
        from,
        "login.entra",
        format!("tenant {}", t.name),
        "ok".into(),
    )
    .await;
    signed_in(&state, StatusCode::FOUND, &id, &csrf)
}

#[derive(serde::Deserialize)]
struct LocalForm {
    username: String,
    password: String,
}

/// `POST /login/local`: a local account's name and password.
async fn login_local(
    Axum(state): Axum<Shared>,
    conn: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    axum::Form(f): axum::Form<LocalForm>,
) -> Response {
    let from = source(conn.as_ref().map(|c| &c.0));
    let store = state.store.clone();
    let (name, password) = (f.username.trim().to_string(), f.password);
    let n = name.clone();
    let account = match blocking(move || crate::users::verify(&store, &n, &password)).await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let Some(a) = account else {
        audit(
            &state,
            &name,
            "",
            from,
            "login.local",
            format!("account {name}"),
            "denied: wrong name or password".into(),
        )
        .await;
        return failed(
            StatusCode::UNAUTHORIZED,
            "Wrong name or password.",
            "Check both and try again; an administrator sets a new password with `cairn user remove` and `cairn user add`.",
        );
    };
    let person = Person {
        name: a.name.clone(),
        via: "local",
        role: a.role,
        tenant: a.tenant.clone(),
        resource: None,
    };
    let store = state.store.clone();
    let (id, csrf) = match blocking(move || session::create(&store, &person)).await {
        Ok(x) => x,
        Err(e) => return internal(e),
    };
    audit(
        &state,
        &a.name,
        a.role.as_str(),
        from,
        "login.local",
        format!("account {}", a.name),
        "ok".into(),
    )
    .await;
    signed_in(&state, StatusCode::SEE_OTHER, &id, &csrf)
}

/// `POST /logout`: ends the session (with its CSRF token, as every change), clears the
/// cookies, back to `/login`.
async fn logout(
    Axum(state): Axum<Shared>,
    conn: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from = source(conn.as_ref().map(|c| &c.0));
    if let Some(id) = session::cookie(&headers, session::COOKIE).map(str::to_string) {
        let (store, i) = (state.store.clone(), id.clone());
        let s = match blocking(move || session::lookup(&store, &i)).await {
            Ok(s) => s,
            Err(e) => return internal(e),
        };
        if let Some(s) = s {
            let given = headers
                .get(session::CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| session::form_field(&body, "csrf"));
            if !session::csrf_matches(&s.csrf, given.as_deref()) {
                return crate::api::csrf_refused();
            }
            let store = state.store.clone();
            if let Err(e) = blocking(move || session::delete(&store, &id)).await {
                return internal(e);
            }
            audit(
                &state,
                &s.caller.name,
                s.caller.role.as_str(),
                from,
                "logout",
                String::new(),
                "ok".into(),
            )
            .await;
        }
    }
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response();
    for c in session::clear_cookies(state.secure_cookies()) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csp_lets_forms_reach_only_here_and_the_sign_in_pages() {
        let csp = content_security_policy(&[
            "https://login.microsoftonline.com".into(),
            "https://login.microsoftonline.com/".into(),
            "http://127.0.0.1:9/x".into(),
        ]);
        assert!(
            csp.starts_with("default-src 'self'; script-src 'self';"),
            "{csp}"
        );
        assert!(
            csp.ends_with(
                "form-action 'self' http://127.0.0.1:9 https://login.microsoftonline.com"
            ),
            "{csp}"
        );
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
