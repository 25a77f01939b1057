//! People signing in to the server (docs/portal.md), end to end through `app(state)`: the
//! OpenID Connect flow against a small provider in this test (discovery, keys and token
//! endpoint, ID tokens signed with a generated RSA key), the session and its cookies, CSRF,
//! what a self-service person may reach, the security headers; local accounts.

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const TENANT_ID: &str = "8f3c1c2e-0000-4000-8000-00000000c0de";
const CLIENT_ID: &str = "portal-app";
const SECRET: &str = "portal-secret-value";
const ADELE: &str = "adele@contoso.com";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// What the provider hands out for a code: the ID token's claims, and the PKCE challenge
/// the code was asked with.
#[derive(Default)]
struct Codes {
    issued: HashMap<String, (Value, String)>,
    /// Token requests that presented the wrong secret or verifier.
    refused: Vec<String>,
}

/// A stand-in for Microsoft Entra ID: discovery, JWKS and the token endpoint of one tenant.
struct Provider {
    base: String,
    codes: Arc<Mutex<Codes>>,
}

fn rsa_key() -> (jsonwebtoken::EncodingKey, Value) {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let pem = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "key-1",
        "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be()),
    });
    (
        jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        jwk,
    )
}

impl Provider {
    async fn start() -> Provider {
        let (key, jwk) = rsa_key();
        let codes: Arc<Mutex<Codes>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let b = base.clone();
        let discovery = move || {
            let b = b.clone();
            async move {
                axum::Json(json!({
                    "issuer": format!("{b}/{TENANT_ID}/v2.0"),
                    "authorization_endpoint": format!("{b}/{TENANT_ID}/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{b}/{TENANT_ID}/oauth2/v2.0/token"),
                    "jwks_uri": format!("{b}/{TENANT_ID}/discovery/v2.0/keys"),
                }))
            }
        };
        let keys = move || {
            let jwk = jwk.clone();
            async move { axum::Json(json!({ "keys": [jwk] })) }
        };
        let c = codes.clone();
        let enc = key.clone();
        let token = move |axum::Form(f): axum::Form<HashMap<String, String>>| {
            let (c, enc) = (c.clone(), enc.clone());
            async move {
                let mut codes = c.lock().unwrap();
                let code = f.get("code").cloned().unwrap_or_default();
                let Some((claims, challenge)) = codes.issued.remove(&code) else {
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(
                            json!({"error": "invalid_grant", "error_description": "unknown code"}),
                        ),
                    );
                };
                let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                let pkce_ok = b64(&sha2::Sha256::digest(verifier.as_bytes())) == challenge;
                let ok = pkce_ok
                    && f.get("client_secret").map(String::as_str) == Some(SECRET)
                    && f.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                    && f.get("grant_type").map(String::as_str) == Some("authorization_code")
                    && f.get("redirect_uri").map(String::as_str)
                        == Some("https://cairn.example.com/auth/callback");
                if !ok {
                    codes.refused.push(code);
                    return (
                        StatusCode::BAD_REQUEST,
                        axum::Json(
                            json!({"error": "invalid_grant", "error_description": "PKCE, secret or redirect URI wrong"}),
                        ),
                    );
                }
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                h.kid = Some("key-1".into());
                let id_token = jsonwebtoken::encode(&h, &claims, &enc).unwrap();
                (
                    StatusCode::OK,
                    axum::Json(
                        json!({"token_type": "Bearer", "access_token": "x", "id_token": id_token}),
                    ),
                )
            }
        };
        let app = axum::Router::new()
            .route(
                &format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration"),
                axum::routing::get(discovery),
            )
            .route(
                &format!("/{TENANT_ID}/discovery/v2.0/keys"),
                axum::routing::get(keys),
            )
            .route(
                &format!("/{TENANT_ID}/oauth2/v2.0/token"),
                axum::routing::post(token),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Provider { base, codes }
    }

    /// The claims a good ID token of this sign-in carries.
    fn claims(&self, nonce: &str, upn: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": format!("{}/{TENANT_ID}/v2.0", self.base),
            "aud": CLIENT_ID,
            "tid": TENANT_ID,
            "nonce": nonce,
            "preferred_username": upn,
            "name": "Adele Vance",
            "iat": now, "nbf": now, "exp": now + 3600,
        })
    }

    /// The provider signs `claims` in: the code the browser brings back.
    fn issue(&self, claims: Value, challenge: &str) -> String {
        let code = format!("code-{}", rand_code());
        self.codes
            .lock()
            .unwrap()
            .issued
            .insert(code.clone(), (claims, challenge.to_string()));
        code
    }
}

/// A change to a good ID token's claims.
type Change = Box<dyn Fn(&mut Value)>;

fn rand_code() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn configure(dir: &std::path::Path, login_url: &str, extra: &str) -> std::path::PathBuf {
    let secret = dir.join("secret");
    std::fs::write(&secret, "s").unwrap();
    let portal = dir.join("portal-secret");
    std::fs::write(&portal, format!("{SECRET}\n")).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
repository = "repo"
cache-dir = "cache"
[server]
public-url = "https://cairn.example.com/"
{extra}
[tenants.contoso]
tenant-id = "{TENANT_ID}"
client-id = "c"
client-secret-file = "{secret}"
graph-url = "http://127.0.0.1:9"
login-url = "{login_url}"
portal-client-id = "{CLIENT_ID}"
portal-client-secret-file = "{portal}"
[jobs.nightly]
tenant = "contoso"
every = "1d"
"#,
            secret = secret.display(),
            portal = portal.display(),
        ),
    )
    .unwrap();
    config
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

async fn send(state: &Arc<cairn_server::State>, req: Request<Body>) -> Answer {
    let resp = cairn_server::app(state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A request with the session cookie (and the CSRF header when `csrf` is given).
fn with_session(
    method: &str,
    path: &str,
    session: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut r = Request::builder().method(method).uri(path).header(
        header::COOKIE,
        format!("cairn_session={session}; cairn_csrf=x"),
    );
    if let Some(c) = csrf {
        r = r.header("x-csrf-token", c);
    }
    match body {
        Some(b) => r
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    }
    .unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::builder().uri(path).body(Body::empty()).unwrap()
}

/// What `/login?tenant=contoso` asked the provider for.
struct Started {
    state: String,
    nonce: String,
    challenge: String,
}

async fn start_sign_in(state: &Arc<cairn_server::State>, p: &Provider) -> Started {
    let a = send(state, get("/login?tenant=contoso")).await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
    let to = url::Url::parse(&a.location()).unwrap();
    assert_eq!(
        &to.as_str()[..to.as_str().find('?').unwrap()],
        format!("{}/{TENANT_ID}/oauth2/v2.0/authorize", p.base)
    );
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["response_mode"], "query");
    assert_eq!(q["scope"], "openid profile email");
    assert_eq!(q["redirect_uri"], "https://cairn.example.com/auth/callback");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "{q:?}");
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43, "{q:?}");
    Started {
        state: q["state"].clone(),
        nonce: q["nonce"].clone(),
        challenge: q["code_challenge"].clone(),
    }
}

async fn callback(state: &Arc<cairn_server::State>, code: &str, st: &str) -> Answer {
    send(
        state,
        get(&format!("/auth/callback?code={code}&state={st}")),
    )
    .await
}

fn audit(state: &cairn_server::State) -> Vec<cairn_server::audit::AuditRecord> {
    let mut all = Vec::new();
    state
        .audit
        .since(chrono::DateTime::UNIX_EPOCH, &mut |r| {
            all.push(r);
            true
        })
        .unwrap();
    all
}

fn cookie_value<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap())
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_through_entra_and_reaches_only_their_own_data() {
    let p = Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(&configure(dir.path(), &p.base, ""));

    // The sign-in page names the tenant and offers local accounts; security headers.
    let page = send(&state, get("/login")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("/login?tenant=contoso") && page.text.contains("/login/local"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert_eq!(
        csp,
        format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self' {}",
            p.base
        )
    );
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");

    let s = start_sign_in(&state, &p).await;
    let code = p.issue(p.claims(&s.nonce, ADELE), &s.challenge);
    let a = callback(&state, &code, &s.state).await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
    assert_eq!(a.location(), "/");
    let cookies = a.cookies();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("cairn_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
        assert!(session_cookie.contains(flag), "{session_cookie}");
    }
    let csrf_cookie = cookies
        .iter()
        .find(|c| c.starts_with("cairn_csrf="))
        .unwrap();
    assert!(
        !csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("Secure"),
        "{csrf_cookie}"
    );
    let session = cookie_value(&cookies, "cairn_session").to_string();
    let csrf = cookie_value(&cookies, "cairn_csrf").to_string();
    assert_eq!(session.len(), 43, "256 bits");
    // The state is used up: the same callback again is refused.
    assert_eq!(
        callback(&state, &code, &s.state).await.status,
        StatusCode::BAD_REQUEST
    );

    // Who: self-service, their own UPN.
    let me = send(
        &state,
        with_session("GET", "/api/v1/me", &session, None, None),
    )
    .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(
        me.json(),
        json!({"name": ADELE, "tenant": "contoso", "role": "self-service", "resources": [ADELE], "csrf": csrf})
    );
    assert!(me.headers.contains_key(header::CONTENT_SECURITY_POLICY));

    // Their own restore points: yes; another person's: 403, audited.
    let own = send(
        &state,
        with_session(
            "GET",
            &format!("/api/v1/restore-points?resource={ADELE}"),
            &session,
            None,
            None,
        ),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    let other = send(
        &state,
        with_session(
            "GET",
            "/api/v1/restore-points?resource=bob@contoso.com",
            &session,
            None,
            None,
        ),
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN, "{}", other.text);
    assert_eq!(other.json()["error"]["code"], "forbidden");
    let denied: Vec<_> = audit(&state)
        .into_iter()
        .filter(|r| r.entry.action == "access.denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].entry.actor, ADELE);
    assert_eq!(denied[0].entry.role, "self-service");
    assert!(
        denied[0].entry.target.contains("bob@contoso.com"),
        "{denied:?}"
    );
    for path in [
        "/api/v1/ls?target=bob@contoso.com@1".to_string(),
        "/api/v1/find?resource=bob@contoso.com&q=x".to_string(),
    ] {
        let a = send(&state, with_session("GET", &path, &session, None, None)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
    // Their own: through to the catalog (nothing backed up here: not found).
    let a = send(
        &state,
        with_session(
            "GET",
            &format!("/api/v1/ls?target={ADELE}@1"),
            &session,
            None,
            None,
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    // Not for self-service: jobs, runs, audit, tokens, holds, approvals.
    for path in [
        "/api/v1/jobs",
        "/api/v1/runs/1",
        "/api/v1/audit",
        "/api/v1/tokens",
        "/api/v1/holds",
        "/api/v1/approvals",
        "/api/v1/tenants",
    ] {
        let a = send(&state, with_session("GET", path, &session, None, None)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }

    // Changes need the CSRF token; with it they pass (to the handler).
    let export = json!({"target": ADELE, "format": "eml"});
    let a = send(
        &state,
        with_session(
            "POST",
            "/api/v1/exports",
            &session,
            None,
            Some(export.clone()),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.json()["error"]["code"], "csrf");
    let a = send(
        &state,
        with_session(
            "POST",
            "/api/v1/exports",
            &session,
            Some("wrong"),
            Some(export.clone()),
        ),
    )
    .await;
    assert_eq!(a.json()["error"]["code"], "csrf");
    let a = send(
        &state,
        with_session(
            "POST",
            "/api/v1/exports",
            &session,
            Some(&csrf),
            Some(export),
        ),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "past CSRF, nothing to export: {}",
        a.text
    );
    // Restores: their own only, and only into their own mailbox and drive.
    for body in [
        json!({"target": "bob@contoso.com", "to": "original"}),
        json!({"target": ADELE, "to": "user:bob@contoso.com"}),
    ] {
        let a = send(
            &state,
            with_session(
                "POST",
                "/api/v1/restores",
                &session,
                Some(&csrf),
                Some(body.clone()),
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{body}: {}", a.text);
    }
    let a = send(
        &state,
        with_session(
            "POST",
            "/api/v1/restores",
            &session,
            Some(&csrf),
            Some(json!({"target": ADELE, "to": "folder:Restored"})),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    let log = audit(&state);
    assert!(
        log.iter()
            .any(|r| r.entry.actor == ADELE && r.entry.action == "POST /api/v1/exports"),
        "content reads are audited"
    );
    assert!(log.iter().any(|r| r.entry.actor == ADELE
        && r.entry.action == "login.entra"
        && r.entry.outcome == "ok"));

    // API tokens need no CSRF token.
    let t = cairn_server::auth::create(
        &state.store,
        "ann",
        cairn_server::auth::Role::Admin,
        &Default::default(),
        None,
    )
    .unwrap();
    let a = send(
        &state,
        Request::builder()
            .method("POST")
            .uri("/api/v1/prune")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);

    // Sign-out: with the CSRF token (a form field), then the session is gone.
    let logout = |csrf: Option<&str>| {
        Request::builder()
            .method("POST")
            .uri("/logout")
            .header(header::COOKIE, format!("cairn_session={session}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                csrf.map(|c| format!("csrf={c}")).unwrap_or_default(),
            ))
            .unwrap()
    };
    let a = send(&state, logout(None)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = send(&state, logout(Some(&csrf))).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(
        a.cookies().iter().all(|c| c.contains("Max-Age=0")),
        "{:?}",
        a.cookies()
    );
    let me = send(
        &state,
        with_session("GET", "/api/v1/me", &session, None, None),
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert!(
        p.codes.lock().unwrap().refused.is_empty(),
        "PKCE and secret as the provider expects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_of_another_tenant_or_sign_in_or_time_is_refused() {
    let p = Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(&configure(dir.path(), &p.base, ""));
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Change)> = vec![
        (
            "tid",
            Box::new(|c: &mut Value| c["tid"] = json!("11111111-2222-3333-4444-555555555555")),
        ),
        (
            "nonce",
            Box::new(|c: &mut Value| c["nonce"] = json!("another sign-in's nonce")),
        ),
        (
            "exp",
            Box::new(move |c: &mut Value| {
                c["exp"] = json!(now - 3600);
                c["nbf"] = json!(now - 7200);
            }),
        ),
        (
            "aud",
            Box::new(|c: &mut Value| c["aud"] = json!("someone-else")),
        ),
        (
            "iss",
            Box::new(|c: &mut Value| {
                c["iss"] = json!("https://login.microsoftonline.com/common/v2.0")
            }),
        ),
    ];
    for (what, change) in cases {
        let s = start_sign_in(&state, &p).await;
        let mut claims = p.claims(&s.nonce, ADELE);
        change(&mut claims);
        let code = p.issue(claims, &s.challenge);
        let a = callback(&state, &code, &s.state).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.text);
        assert!(a.cookies().is_empty(), "{what}: no session");
        assert!(a.text.contains("refused"), "{what}: {}", a.text);
    }
    // A token signed with a key the tenant does not publish.
    let s = start_sign_in(&state, &p).await;
    let (other_key, _) = rsa_key();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("key-1".into());
    let forged = jsonwebtoken::encode(&h, &p.claims(&s.nonce, ADELE), &other_key).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(json!({"keys": [rsa_key().1]})).unwrap();
    let t = &state.portal[0];
    assert!(cairn_server::oidc::validate(&forged, &jwks, t, &s.nonce).is_err());
    // Entra's own error comes back as a clear page.
    let a = send(&state, get(&format!("/auth/callback?error=access_denied&error_description=AADSTS50105%3A+not+assigned&state={}", s.state))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.text.contains("access_denied") && a.text.contains("AADSTS50105"),
        "{}",
        a.text
    );
    let denied = audit(&state)
        .into_iter()
        .filter(|r| r.entry.action == "login.entra" && r.entry.outcome.starts_with("denied"))
        .count();
    assert_eq!(denied, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_roles_and_groups_give_roles() {
    let p = Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "[server.portal]\ngroups = { \"0b7c-group\" = \"auditor\" }\n";
    let state = common::state(&configure(dir.path(), &p.base, extra));
    for (claims, role, jobs) in [
        (json!({"roles": ["Cairn.Admin"]}), "admin", StatusCode::OK),
        (json!({"groups": ["0b7c-group"]}), "auditor", StatusCode::OK),
        (
            json!({"roles": ["Cairn.Unknown"]}),
            "self-service",
            StatusCode::FORBIDDEN,
        ),
    ] {
        let s = start_sign_in(&state, &p).await;
        let mut c = p.claims(&s.nonce, "megan@contoso.com");
        for (k, v) in claims.as_object().unwrap() {
            c[k] = v.clone();
        }
        let a = callback(&state, &p.issue(c, &s.challenge), &s.state).await;
        assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
        let session = cookie_value(&a.cookies(), "cairn_session").to_string();
        let me = send(
            &state,
            with_session("GET", "/api/v1/me", &session, None, None),
        )
        .await
        .json();
        assert_eq!(me["role"], role, "{me}");
        assert_eq!(me["resources"].is_null(), role != "self-service", "{me}");
        let a = send(
            &state,
            with_session("GET", "/api/v1/jobs", &session, None, None),
        )
        .await;
        assert_eq!(a.status, jobs, "{role}: {}", a.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_account_signs_in_with_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let state = common::state(&configure(dir.path(), "http://127.0.0.1:9", ""));
    cairn_server::users::add(
        &state.store,
        "ops",
        cairn_server::auth::Role::Admin,
        None,
        "a long enough passphrase",
    )
    .unwrap();
    let form = |user: &str, pw: &str| {
        Request::builder()
            .method("POST")
            .uri("/login/local")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "username={user}&password={}",
                pw.replace(' ', "+")
            )))
            .unwrap()
    };
    for (user, pw) in [
        ("ops", "wrong passphrase here"),
        ("nobody", "a long enough passphrase"),
    ] {
        let a = send(&state, form(user, pw)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(a.cookies().is_empty());
        assert!(a.text.contains("Wrong name or password"), "{}", a.text);
    }
    let a = send(&state, form("ops", "a long enough passphrase")).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.text);
    let session = cookie_value(&a.cookies(), "cairn_session").to_string();
    // http://… public-url would drop Secure; this one is https.
    assert!(a.cookies().iter().all(|c| c.contains("Secure")));
    let jobs = send(
        &state,
        with_session("GET", "/api/v1/jobs", &session, None, None),
    )
    .await;
    assert_eq!(jobs.status, StatusCode::OK, "{}", jobs.text);
    let me = send(
        &state,
        with_session("GET", "/api/v1/me", &session, None, None),
    )
    .await
    .json();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("ops"), Some("admin"))
    );
    let log = audit(&state);
    let logins: Vec<_> = log
        .iter()
        .filter(|r| r.entry.action == "login.local")
        .map(|r| (r.entry.actor.as_str(), r.entry.outcome.as_str()))
        .collect();
    assert_eq!(
        logins,
        [
            ("ops", "denied: wrong name or password"),
            ("nobody", "denied: wrong name or password"),
            ("ops", "ok")
        ]
    );
}
