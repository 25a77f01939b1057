//! Sign-in for people: the simulator as an OpenID Connect provider, faithful to the Microsoft
//! identity platform's v2.0 endpoint (Entra ID).
//!
//! Cairn's portal signs administrators in with their Entra account. To test that without a
//! tenant, the simulator serves what Entra serves to a web app: the discovery document, the
//! authorization endpoint with a sign-in page, the authorization-code grant with PKCE at the
//! token endpoint, RS256 ID tokens, the signing keys (with rollover) and the logout endpoint.
//! Every user of the generated tenant can sign in with a password derived from the seed
//! ([`user_password`]), so no password is stored and tests can compute it.
//!
//! Errors follow Entra's split: a request whose client or redirect URI cannot be trusted gets
//! an error page and is never redirected; once the redirect URI is known to belong to the
//! client, errors go back to it as OAuth 2.0 `error`/`error_description`/`state`.
//! What is assumed where Microsoft's documentation is silent is listed in docs/simulator.md
//! ("Sign-in (OpenID Connect)").

use crate::seeded::hash;
use crate::sim::{Sim, oauth_error, unknown_client};
use crate::tenant::{User, UserKind};
use crate::wire::Resp;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::Rng;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// How long an authorization code may be redeemed ("typically about 10 minutes", Entra).
pub const CODE_LIFETIME_SECS: i64 = 600;
/// Lifetime of ID tokens (Entra: one hour).
pub const ID_TOKEN_LIFETIME_SECS: i64 = 3600;
/// Above this many groups the ID token carries the overage claim instead of `groups` (JWT
/// limit, Entra's ID token claims reference).
pub const GROUPS_OVERAGE: usize = 200;
/// The scopes of OpenID Connect itself; anything else names a resource's permission.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// The parameters of an authorization request that the sign-in form carries along.
const AUTHORIZE_PARAMS: &[&str] = &[
    "client_id",
    "response_type",
    "redirect_uri",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "domain_hint",
];

/// The password of user `upn` in the tenant generated from `seed`: HMAC-SHA256 of the
/// lower-cased UPN keyed with the seed, as 12 characters without look-alikes (no `0 O 1 l I`).
/// It starts with an upper-case letter and a lower-case one and ends with two digits, so it
/// meets Entra's complexity rule (three of four character classes).
pub fn user_password(seed: u64, upn: &str) -> String {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGITS: &[u8] = b"23456789";
    const ALL: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&seed.to_le_bytes()).expect("HMAC takes keys of any size");
    mac.update(upn.to_ascii_lowercase().as_bytes());
    let d = mac.finalize().into_bytes();
    let pick = |set: &[u8], b: u8| set[b as usize % set.len()] as char;
    let mut out = String::with_capacity(12);
    out.push(pick(UPPER, d[0]));
    out.push(pick(LOWER, d[1]));
    for &b in &d[2..10] {
        out.push(pick(ALL, b));
    }
    out.push(pick(DIGITS, d[10]));
    out.push(pick(DIGITS, d[11]));
    out
}

// ---------------------------------------------------------------------------------------------
// Signing keys

/// One RSA signing key: its id and public numbers (for the JWKS) and the private key.
struct SigningKey {
    kid: String,
    n: String,
    e: String,
    encoding: EncodingKey,
}

/// The ID token signing keys: generation `i` is a 2048-bit RSA key drawn from a ChaCha20
/// stream seeded with (seed, i), so a restart with the same seed signs with the same keys.
/// Keys are made on first use (key generation takes a moment; most simulators never sign
/// anyone in). The last key is current; the one before stays published (rollover).
pub struct KeyRing {
    seed: u64,
    keys: Mutex<Vec<SigningKey>>,
}

impl KeyRing {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            keys: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SigningKey>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.is_empty() {
            keys.push(generate_key(self.seed, 0));
        }
        keys
    }

    /// The key id (`kid`) of the current signing key.
    pub fn current_kid(&self) -> String {
        self.lock()
            .last()
            .map(|k| k.kid.clone())
            .unwrap_or_default()
    }

    /// The published keys (current first, then the previous one) as JWKS entries.
    pub fn jwks(&self, issuer: &str) -> Vec<Value> {
        self.lock()
            .iter()
            .rev()
            .take(2)
            .map(|k| {
                json!({"kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e,
                       "issuer": issuer})
            })
            .collect()
    }

    /// Makes a new current key; the old current one stays published as the previous key.
    /// Returns the new key id.
    pub fn rotate(&self) -> String {
        let mut keys = self.lock();
        let next = generate_key(self.seed, keys.len() as u64);
        let kid = next.kid.clone();
        keys.push(next);
        kid
    }

    /// Signs `claims` (RS256, `typ` JWT, `kid` of the current key).
    pub fn sign(&self, claims: &Value) -> String {
        let keys = self.lock();
        let key = keys.last().expect("the ring always holds a key");
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .expect("RS256 signing of JSON claims with an in-memory key cannot fail")
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<String> = self
            .keys
            .lock()
            .map(|k| k.iter().map(|k| k.kid.clone()).collect())
            .unwrap_or_default();
        f.debug_struct("KeyRing").field("kids", &kids).finish()
    }
}

/// `rsa` draws from rand_core 0.6; the workspace's ChaCha20 generator speaks 0.9.
struct ChaChaRng06(rand_chacha::ChaCha20Rng);

impl rsa::rand_core::RngCore for ChaChaRng06 {
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(&mut self.0)
    }
    fn next_u64(&mut self) -> u64 {
        rand::RngCore::next_u64(&mut self.0)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut self.0, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        rand::RngCore::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for ChaChaRng06 {}

fn generate_key(seed: u64, generation: u64) -> SigningKey {
    use rand::SeedableRng;
    let stream = rand_chacha::ChaCha20Rng::seed_from_u64(hash(seed, &[0x01DC, generation]));
    let key = rsa::RsaPrivateKey::new(&mut ChaChaRng06(stream), 2048)
        .expect("generating a 2048-bit RSA key does not fail");
    let private = key
        .to_pkcs1_der()
        .expect("an RSA key encodes as PKCS#1 DER");
    let public = key
        .to_public_key()
        .to_pkcs1_der()
        .expect("an RSA public key encodes as PKCS#1 DER");
    SigningKey {
        // Entra's key ids are base64url SHA-1 thumbprints (27 characters); here of the key.
        kid: URL_SAFE_NO_PAD.encode(Sha1::digest(public.as_bytes())),
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        encoding: EncodingKey::from_rsa_der(private.as_bytes()),
    }
}

// ---------------------------------------------------------------------------------------------
// State of the identity provider

/// An authorization code waiting to be redeemed, and what it is bound to.
#[derive(Clone, Debug)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    /// The S256 PKCE challenge, when the request had one.
    challenge: Option<String>,
    nonce: Option<String>,
    user: u32,
    scope: String,
    expires: i64,
    /// Spent by a redemption attempt; kept until it expires so that a replay is told so.
    redeemed: bool,
}

/// What the identity provider remembers: signing keys, outstanding codes, and the
/// configuration an administrator sets through `/_sim` (redirect URIs, app roles). Kept in
/// memory: a restart forgets codes, registrations, role assignments and rotations.
#[derive(Debug)]
pub struct IdentityProvider {
    pub keys: KeyRing,
    codes: Mutex<HashMap<String, PendingCode>>,
    /// client id → registered redirect URIs.
    redirect_uris: Mutex<HashMap<String, Vec<String>>>,
    /// client id → user object id → app roles assigned.
    app_roles: Mutex<HashMap<String, BTreeMap<String, BTreeSet<String>>>>,
}

impl IdentityProvider {
    pub fn new(seed: u64) -> Self {
        Self {
            keys: KeyRing::new(seed),
            codes: Mutex::new(HashMap::new()),
            redirect_uris: Mutex::new(HashMap::new()),
            app_roles: Mutex::new(HashMap::new()),
        }
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<String, PendingCode>> {
        self.codes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The redirect URIs registered for `client_id` (empty: loopback URIs are accepted).
    pub fn redirect_uris(&self, client_id: &str) -> Vec<String> {
        self.redirect_uris
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The app roles of `client_id` assigned to the user `oid`.
    pub fn roles_of(&self, client_id: &str, oid: &str) -> Vec<String> {
        self.app_roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(client_id)
            .and_then(|users| users.get(oid))
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Is `uri` a redirect URI `client_id` may use? A registered URI matches exactly, except
    /// that the port of a loopback URI is ignored (Entra's localhost exception). An app with
    /// no registered URI accepts any loopback URI (a simulator relaxation).
    pub fn redirect_allowed(&self, client_id: &str, uri: &str) -> bool {
        let registered = self.redirect_uris(client_id);
        if registered.is_empty() {
            return loopback(uri).is_some();
        }
        registered.iter().any(|r| {
            r == uri || matches!((loopback(r), loopback(uri)), (Some(a), Some(b)) if a == b)
        })
    }
}

/// A loopback URI without its port: (scheme, host, path, query), or `None` for any other URI.
fn loopback(uri: &str) -> Option<(String, String, String, Option<String>)> {
    let url = url::Url::parse(uri).ok()?;
    let host = url.host_str()?;
    let ok = matches!(url.scheme(), "http" | "https")
        && (host.eq_ignore_ascii_case("localhost") || host == "127.0.0.1")
        && url.fragment().is_none();
    ok.then(|| {
        (
            url.scheme().to_owned(),
            host.to_ascii_lowercase(),
            url.path().to_owned(),
            url.query().map(str::to_owned),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The authorization request

/// How the result goes back to the redirect URI.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ResponseMode {
    Query,
    Fragment,
}

/// An authorization request whose client and redirect URI have been checked.
struct Authorize {
    client_id: String,
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<String>,
    nonce: Option<String>,
    challenge: Option<String>,
    scope: String,
}

/// The parameters of a request (query or form), first occurrence wins.
struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
    /// A parameter that is present and not empty.
    fn given(&self, k: &str) -> Option<&str> {
        self.get(k).filter(|v| !v.is_empty())
    }
}

/// Admin body of `POST /_sim/apps/redirect-uris`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectUrisRequest {
    pub client_id: String,
    pub uris: Vec<String>,
}

/// Admin body of `POST /_sim/app-roles`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleRequest {
    pub client_id: String,
    /// The user's object id or UPN.
    pub user: String,
    pub role: String,
}

impl Sim {
    /// Is `tenant` (id or verified domain) this simulator's tenant?
    fn is_our_tenant(&self, tenant: &str) -> bool {
        tenant == self.cfg.tenant_id || tenant.eq_ignore_ascii_case(&self.cfg.tenant.domain)
    }

    /// The issuer of ID tokens for a client that reached the simulator at `base`.
    pub fn issuer(&self, base: &str) -> String {
        format!("{base}/{}/v2.0", self.cfg.tenant_id)
    }

    /// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
    pub fn openid_configuration(&self, base: &str, tenant: &str) -> Resp {
        if !self.is_our_tenant(tenant) {
            return unknown_tenant(tenant);
        }
        let root = format!("{base}/{}", self.cfg.tenant_id);
        Resp::ok(json!({
            "issuer": self.issuer(base),
            "authorization_endpoint": format!("{root}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{root}/oauth2/v2.0/token"),
            "jwks_uri": format!("{root}/discovery/v2.0/keys"),
            "end_session_endpoint": format!("{root}/oauth2/v2.0/logout"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "preferred_username",
                "name", "email", "tid", "oid", "ver", "groups", "roles", "uti",
            ],
            "request_uri_parameter_supported": false,
            "http_logout_supported": true,
            "frontchannel_logout_supported": false,
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
        }))
    }

    /// `GET /{tenant}/discovery/v2.0/keys`: the current and the previous signing key.
    pub fn jwks(&self, base: &str, tenant: &str) -> Resp {
        if !self.is_our_tenant(tenant) {
            return unknown_tenant(tenant);
        }
        Resp::ok(json!({ "keys": self.idp.keys.jwks(&self.issuer(base)) }))
    }

    /// `GET|POST /{tenant}/oauth2/v2.0/authorize`: the sign-in page, and (a POST with `login`
    /// and `passwd`) its submission.
    pub fn authorize_endpoint(
        &self,
        tenant: &str,
        params: &[(String, String)],
        submitted: bool,
    ) -> Resp {
        let p = Params(params);
        let request = match self.check_authorize(tenant, &p) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        if p.get("prompt") == Some("none") {
            // The simulator keeps no sign-in session: silent sign-in never succeeds.
            return redirect_error(
                &request,
                "login_required",
                "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
            );
        }
        let login = p.get("login").map(str::trim);
        let (Some(login), Some(passwd), true) = (login, p.get("passwd"), submitted) else {
            let hint = p.get("login_hint").unwrap_or_default();
            return self.sign_in_page(tenant, &p, hint, None);
        };
        let user = login
            .contains('@')
            .then(|| self.model.tenant.find_user(login))
            .flatten();
        let Some(user) = user else {
            let domain = &self.cfg.tenant.domain;
            let text = format!(
                "AADSTS50034: The user account {{EUII Hidden}} does not exist in the '{domain}' \
                 directory. To sign into this application, the account must be added to the \
                 directory."
            );
            let shown = "We couldn't find an account with that username.";
            return self.sign_in_page(tenant, &p, login, Some((shown, &text)));
        };
        if user.kind == UserKind::SharedMailbox {
            let text = "AADSTS50057: The user account is disabled.";
            let shown = "Your account has been locked. Contact your support person to unlock it.";
            return self.sign_in_page(tenant, &p, login, Some((shown, text)));
        }
        if passwd != user_password(self.cfg.tenant.seed, &user.upn) {
            let text = "AADSTS50126: Error validating credentials due to invalid username or \
                        password.";
            let shown = "Your account or password is incorrect.";
            return self.sign_in_page(tenant, &p, login, Some((shown, text)));
        }
        let code = self.issue_code(&request, &user);
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        redirect(&request.redirect_uri, request.mode, &pairs)
    }

    /// Checks an authorization request in Entra's order. An unknown tenant or client, or a
    /// redirect URI the client did not register, gets an error page; later problems go back to
    /// the redirect URI.
    fn check_authorize(&self, tenant: &str, p: &Params<'_>) -> Result<Authorize, Resp> {
        if !self.is_our_tenant(tenant) {
            return Err(error_page(
                400,
                &format!(
                    "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the \
                     correct tenant ID and are signing into the correct cloud."
                ),
            ));
        }
        let Some(client_id) = p.given("client_id") else {
            return Err(error_page(
                400,
                "AADSTS900144: The request body must contain the following parameter: \
                 'client_id'.",
            ));
        };
        if self.find_app(client_id).is_none() {
            return Err(error_page(
                400,
                &format!(
                    "AADSTS700016: Application with identifier '{client_id}' was not found in \
                     the directory '{}'. This can happen if the application has not been \
                     installed by the administrator of the tenant or consented to by any user \
                     in the tenant. You may have sent your authentication request to the wrong \
                     tenant.",
                    self.cfg.tenant.domain
                ),
            ));
        }
        let redirect_uri = p.get("redirect_uri").unwrap_or_default();
        if !self.idp.redirect_allowed(client_id, redirect_uri) {
            return Err(error_page(
                400,
                &format!(
                    "AADSTS50011: The redirect URI '{redirect_uri}' specified in the request \
                     does not match the redirect URIs configured for the application \
                     '{client_id}'. Make sure the redirect URI sent in the request matches one \
                     added to your application in the Azure portal."
                ),
            ));
        }
        let mut request = Authorize {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            mode: ResponseMode::Query,
            state: p.get("state").map(str::to_owned),
            nonce: p.given("nonce").map(str::to_owned),
            challenge: None,
            scope: String::new(),
        };
        match p.given("response_mode") {
            None | Some("query") => {}
            Some("fragment") => request.mode = ResponseMode::Fragment,
            Some(other) => {
                return Err(redirect_error(
                    &request,
                    "invalid_request",
                    &format!(
                        "AADSTS70007: The response_mode '{other}' is not supported by the \
                         simulator (use query or fragment)."
                    ),
                ));
            }
        }
        match p.given("response_type") {
            Some("code") => {}
            None => {
                return Err(redirect_error(
                    &request,
                    "invalid_request",
                    "AADSTS900144: The request body must contain the following parameter: \
                     'response_type'.",
                ));
            }
            Some(other) => {
                return Err(redirect_error(
                    &request,
                    "unsupported_response_type",
                    &format!(
                        "AADSTS700054: response_type '{other}' is not enabled for the \
                         application. The simulator serves the authorization code flow \
                         (response_type=code)."
                    ),
                ));
            }
        }
        let scope: Vec<&str> = p
            .get("scope")
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        if !scope.contains(&"openid") {
            return Err(redirect_error(
                &request,
                "invalid_scope",
                &format!(
                    "AADSTS70011: The provided value for the input parameter 'scope' is not \
                     valid. The scope '{}' does not include 'openid'.",
                    scope.join(" ")
                ),
            ));
        }
        request.scope = scope.join(" ");
        match (p.given("code_challenge"), p.given("code_challenge_method")) {
            (None, None) => {}
            (Some(challenge), Some("S256")) => {
                let valid = challenge.len() == 43
                    && challenge
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid {
                    return Err(redirect_error(
                        &request,
                        "invalid_request",
                        "AADSTS501491: Invalid size of Code_Challenge parameter.",
                    ));
                }
                request.challenge = Some(challenge.to_owned());
            }
            (None, Some(_)) => {
                return Err(redirect_error(
                    &request,
                    "invalid_request",
                    "AADSTS900144: The request body must contain the following parameter: \
                     'code_challenge'.",
                ));
            }
            (Some(_), method) => {
                return Err(redirect_error(
                    &request,
                    "invalid_request",
                    &format!(
                        "AADSTS50148: The code_challenge_method '{}' is not supported by the \
                         simulator: use S256.",
                        method.unwrap_or("plain")
                    ),
                ));
            }
        }
        match p.given("prompt") {
            None | Some("login" | "none" | "consent" | "select_account") => {}
            Some(other) => {
                return Err(redirect_error(
                    &request,
                    "invalid_request",
                    &format!(
                        "AADSTS90023: Invalid request. The value '{other}' of parameter \
                         'prompt' is not valid (login, none, consent or select_account)."
                    ),
                ));
            }
        }
        Ok(request)
    }

    fn issue_code(&self, request: &Authorize, user: &User) -> String {
        let bytes: [u8; 32] = rand::rng().random();
        let code = URL_SAFE_NO_PAD.encode(bytes);
        let now = chrono::Utc::now().timestamp();
        let mut codes = self.idp.codes();
        codes.retain(|_, c| c.expires > now);
        codes.insert(
            code.clone(),
            PendingCode {
                client_id: request.client_id.clone(),
                redirect_uri: request.redirect_uri.clone(),
                challenge: request.challenge.clone(),
                nonce: request.nonce.clone(),
                user: user.idx,
                scope: request.scope.clone(),
                expires: now + CODE_LIFETIME_SECS,
                redeemed: false,
            },
        );
        code
    }

    /// The sign-in page: a form posting Entra's field names (`login`, `passwd`) with the
    /// request's parameters as hidden fields back to the authorization endpoint. Everything
    /// that came from the request is escaped.
    fn sign_in_page(
        &self,
        tenant: &str,
        p: &Params<'_>,
        login: &str,
        error: Option<(&str, &str)>,
    ) -> Resp {
        let mut hidden = String::new();
        for name in AUTHORIZE_PARAMS {
            if let Some(v) = p.get(name) {
                hidden.push_str(&format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                    esc(name),
                    esc(v)
                ));
            }
        }
        let alert = match error {
            Some((shown, detail)) => format!(
                "<p id=\"passwordError\" class=\"error\" role=\"alert\">{}</p>\n\
                 <p class=\"detail\">{}</p>\n",
                esc(shown),
                esc(detail)
            ),
            None => String::new(),
        };
        let body = format!(
            "<p class=\"detail\">{domain}</p>\n<h1>Sign in</h1>\n{alert}\
             <form method=\"post\" action=\"/{tenant}/oauth2/v2.0/authorize\" \
             autocomplete=\"off\">\n{hidden}\
             <label for=\"i0116\">Email, phone, or Skype</label>\n\
             <input type=\"email\" id=\"i0116\" name=\"login\" value=\"{login}\" required>\n\
             <label for=\"i0118\">Password</label>\n\
             <input type=\"password\" id=\"i0118\" name=\"passwd\" required>\n\
             <button type=\"submit\" id=\"idSIButton9\">Sign in</button>\n</form>\n\
             <p class=\"detail\">cairn-sim: a simulated tenant. Passwords are listed at \
             /_sim/passwords and by <code>cairn sim info</code>.</p>\n",
            domain = esc(&self.cfg.tenant.domain),
            tenant = esc(tenant),
            login = esc(login),
        );
        // The form's answer is a redirect to the app: its origin must be a form action too,
        // or the browser refuses to follow it (a redirect after a form submission is held to
        // `form-action`). The redirect URI was checked before this page is shown.
        let app = p
            .get("redirect_uri")
            .and_then(|u| url::Url::parse(u).ok())
            .map(|u| u.origin().ascii_serialization())
            .filter(|o| o != "null");
        html_with(200, "Sign in to your account", &body, app.as_deref())
    }

    /// The authorization-code grant at the token endpoint: checks the client, then the code
    /// and what it is bound to (client, redirect URI, PKCE verifier), and returns an access
    /// token and an ID token.
    pub(crate) fn redeem_code(&self, base: &str, form: &[(String, String)]) -> Resp {
        let p = Params(form);
        let missing = |name: &str| {
            oauth_error(
                400,
                "invalid_request",
                &format!(
                    "AADSTS900144: The request body must contain the following parameter: \
                     '{name}'."
                ),
            )
        };
        let Some(client_id) = p.given("client_id") else {
            return missing("client_id");
        };
        let Some(app) = self.find_app(client_id) else {
            return unknown_client(client_id);
        };
        let now = chrono::Utc::now().timestamp();
        if let Err(resp) = self.authenticate_client(app, form, now) {
            return resp;
        }
        let Some(code) = p.given("code") else {
            return missing("code");
        };
        let Some(redirect_uri) = p.given("redirect_uri") else {
            return missing("redirect_uri");
        };
        let invalid_grant = |desc: &str| oauth_error(400, "invalid_grant", desc);
        // The first attempt by the code's own client spends it, whatever its outcome.
        let pending = {
            let mut codes = self.idp.codes();
            match codes.get_mut(code) {
                None => None,
                Some(c) if c.client_id != client_id => {
                    return invalid_grant(
                        "AADSTS70000: The provided authorization code was issued to another \
                         application.",
                    );
                }
                Some(c) if c.redeemed => {
                    return invalid_grant(
                        "AADSTS54005: OAuth2 Authorization code was already redeemed, please \
                         retry with a new valid code or use an existing refresh token.",
                    );
                }
                Some(c) => {
                    c.redeemed = true;
                    Some(c.clone())
                }
            }
        };
        let Some(pending) = pending else {
            return invalid_grant(
                "AADSTS9002313: Invalid request. Request is malformed or invalid: the \
                 authorization code is not one this tenant issued.",
            );
        };
        if pending.expires <= now {
            return invalid_grant(
                "AADSTS70008: The provided authorization code or refresh token has expired \
                 due to inactivity. Send a new interactive authorization request for this user \
                 and resource.",
            );
        }
        if pending.redirect_uri != redirect_uri {
            return invalid_grant(&format!(
                "AADSTS500112: The reply address '{redirect_uri}' does not match the reply \
                 address '{}' provided when requesting Authorization code.",
                pending.redirect_uri
            ));
        }
        if let Some(challenge) = &pending.challenge {
            let verifier = p.get("code_verifier").unwrap_or_default();
            let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !well_formed || &computed != challenge {
                return invalid_grant(
                    "AADSTS501481: The Code_Verifier does not match the code_challenge \
                     supplied in the authorization request.",
                );
            }
        }
        let Some(user) = self.model.tenant.user(pending.user) else {
            return invalid_grant("AADSTS50034: The user account does not exist.");
        };
        let id_token = self.id_token(base, client_id, &user, &pending, now);
        let resource: Vec<&str> = pending
            .scope
            .split_whitespace()
            .filter(|s| !OIDC_SCOPES.contains(s))
            .collect();
        let scp = if resource.is_empty() {
            "User.Read".to_owned()
        } else {
            resource
                .iter()
                .map(|s| s.rsplit('/').next().unwrap_or(s))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let access_token =
            self.issuer
                .issue_delegated(&self.cfg.tenant_id, client_id, &user.id, &scp, now);
        let life = self.cfg.token_lifetime.as_secs();
        let mut granted: Vec<String> = pending
            .scope
            .split_whitespace()
            .filter(|s| OIDC_SCOPES.contains(s) && *s != "offline_access")
            .map(str::to_owned)
            .collect();
        granted.extend(
            scp.split(' ')
                .map(|s| format!("{}/{s}", crate::auth::GRAPH_AUDIENCE)),
        );
        Resp::ok(json!({
            "token_type": "Bearer",
            "scope": granted.join(" "),
            "expires_in": life,
            "ext_expires_in": life,
            "access_token": access_token,
            "id_token": id_token,
        }))
    }

    /// The ID token of `user` for `client_id`, with the claims of Entra's v2.0 ID tokens.
    fn id_token(
        &self,
        base: &str,
        client_id: &str,
        user: &User,
        code: &PendingCode,
        now: i64,
    ) -> String {
        let tid = &self.cfg.tenant_id;
        let scopes: Vec<&str> = code.scope.split_whitespace().collect();
        // Pairwise: stable per (tenant, app, user), different for another app.
        let sub = URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{tid}|{client_id}|{}", user.id)));
        let uti: [u8; 16] = rand::rng().random();
        let mut claims = json!({
            "aud": client_id,
            "iss": self.issuer(base),
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME_SECS,
            "sub": sub,
            "tid": tid,
            "uti": URL_SAFE_NO_PAD.encode(uti),
            "ver": "2.0",
        });
        if scopes.contains(&"profile") {
            claims["oid"] = json!(user.id);
            claims["name"] = json!(user.display_name);
            claims["preferred_username"] = json!(user.upn);
        }
        if scopes.contains(&"email")
            && let Some(mail) = user.mail()
        {
            claims["email"] = json!(mail);
        }
        if let Some(nonce) = &code.nonce {
            claims["nonce"] = json!(nonce);
        }
        let groups: Vec<String> = self
            .model
            .tenant
            .member_of(user.idx)
            .filter_map(|g| self.model.tenant.group(g).map(|g| g.id))
            .collect();
        if groups.len() > GROUPS_OVERAGE {
            claims["_claim_names"] = json!({"groups": "src1"});
            claims["_claim_sources"] = json!({"src1": {"endpoint": format!(
                "{}/v1.0/users/{}/getMemberObjects", crate::auth::GRAPH_AUDIENCE, user.id
            )}});
        } else {
            claims["groups"] = json!(groups);
        }
        let roles = self.idp.roles_of(client_id, &user.id);
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        self.idp.keys.sign(&claims)
    }

    /// `GET|POST /{tenant}/oauth2/v2.0/logout`: the simulator keeps no session, so this only
    /// sends the browser to `post_logout_redirect_uri` (with `state`) when that is a redirect
    /// URI of an app of the tenant (of `client_id` when given), else shows the signed-out page.
    pub fn logout(&self, tenant: &str, params: &[(String, String)]) -> Resp {
        let p = Params(params);
        if !self.is_our_tenant(tenant) {
            return error_page(400, &format!("AADSTS90002: Tenant '{tenant}' not found."));
        }
        if let Some(uri) = p.given("post_logout_redirect_uri") {
            let mut clients: Vec<&str> = vec![self.cfg.client_id.as_str()];
            clients.extend(self.cfg.apps.iter().map(|a| a.client_id.as_str()));
            if let Some(c) = p.given("client_id") {
                clients.retain(|k| *k == c);
            }
            if clients.iter().any(|c| self.idp.redirect_allowed(c, uri)) {
                let state: Vec<(&str, &str)> =
                    p.given("state").map(|s| ("state", s)).into_iter().collect();
                return redirect(uri, ResponseMode::Query, &state);
            }
        }
        html(
            200,
            "Sign out",
            "<h1>You signed out of your account</h1>\n<p>It's a good idea to close all browser \
             windows.</p>\n",
        )
    }

    // ---- admin -------------------------------------------------------------------------

    /// `GET /_sim/passwords`: every user who can sign in (shared mailboxes cannot) and their
    /// password.
    pub fn passwords_json(&self) -> Value {
        let t = &self.model.tenant;
        let list: Vec<Value> = (0..t.spec.users)
            .filter_map(|i| t.user(i))
            .filter(|u| u.kind != UserKind::SharedMailbox)
            .map(|u| json!({"user": u.upn, "password": user_password(t.spec.seed, &u.upn)}))
            .collect();
        Value::Array(list)
    }

    /// `POST /_sim/apps/redirect-uris`: registers further redirect URIs of an app.
    pub fn register_redirect_uris(&self, r: &RedirectUrisRequest) -> Resp {
        if self.find_app(&r.client_id).is_none() {
            return Resp::bad_request(&format!(
                "The application '{}' was not found in the directory.",
                r.client_id
            ));
        }
        for uri in &r.uris {
            let valid = url::Url::parse(uri).is_ok_and(|u| {
                u.fragment().is_none()
                    && (u.scheme() == "https" || (u.scheme() == "http" && loopback(uri).is_some()))
            });
            if !valid || uri.len() > 256 {
                return Resp::bad_request(&format!(
                    "Invalid redirect URI '{uri}': an absolute https URI (http only for \
                     localhost and 127.0.0.1) without a fragment, at most 256 characters."
                ));
            }
        }
        let mut all = self
            .idp
            .redirect_uris
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let list = all.entry(r.client_id.clone()).or_default();
        for uri in &r.uris {
            if !list.contains(uri) {
                list.push(uri.clone());
            }
        }
        Resp::ok(json!({"client_id": r.client_id, "redirect_uris": list}))
    }

    /// `POST /_sim/app-roles`: assigns an app role of an app to a user.
    pub fn assign_app_role(&self, r: &AppRoleRequest) -> Resp {
        if self.find_app(&r.client_id).is_none() {
            return Resp::bad_request(&format!(
                "The application '{}' was not found in the directory.",
                r.client_id
            ));
        }
        let Some(user) = self.model.tenant.find_user(&r.user) else {
            return Resp::bad_request(&format!("The user '{}' was not found.", r.user));
        };
        let role = r.role.trim();
        if role.is_empty() || role.contains(char::is_whitespace) {
            return Resp::bad_request("An app role is a non-empty value without spaces.");
        }
        let mut all = self.idp.app_roles.lock().unwrap_or_else(|e| e.into_inner());
        let roles = all
            .entry(r.client_id.clone())
            .or_default()
            .entry(user.id.clone())
            .or_default();
        roles.insert(role.to_owned());
        Resp::ok(json!({"client_id": r.client_id, "user": user.id, "roles": roles}))
    }

    /// `POST /_sim/rotate-keys`: a new current signing key; the old one stays published.
    pub fn rotate_keys(&self) -> Resp {
        let kid = self.idp.keys.rotate();
        Resp::ok(json!({"kid": kid}))
    }
}

/// Unknown tenant at the discovery endpoints (JSON, as Entra answers them).
fn unknown_tenant(tenant: &str) -> Resp {
    oauth_error(
        400,
        "invalid_tenant",
        &format!(
            "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct \
             tenant ID and are signing into the correct cloud."
        ),
    )
}

/// `302` to `uri` with `pairs` added to its query or put in its fragment.
fn redirect(uri: &str, mode: ResponseMode, pairs: &[(&str, &str)]) -> Resp {
    let Ok(mut url) = url::Url::parse(uri) else {
        return error_page(
            400,
            "AADSTS90102: redirect_uri value must be a valid absolute URI.",
        );
    };
    match mode {
        ResponseMode::Query => {
            if !pairs.is_empty() {
                url.query_pairs_mut().extend_pairs(pairs);
            }
        }
        ResponseMode::Fragment => {
            let f = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            url.set_fragment(Some(&f));
        }
    }
    Resp::empty(302)
        .with_header("Location", url.to_string())
        .with_header("Cache-Control", "no-store")
}

/// An OAuth 2.0 error sent back to the (validated) redirect URI.
fn redirect_error(request: &Authorize, error: &str, description: &str) -> Resp {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(state) = &request.state {
        pairs.push(("state", state));
    }
    redirect(&request.redirect_uri, request.mode, &pairs)
}

/// Entra's error page: shown, never redirected.
fn error_page(status: u16, aadsts: &str) -> Resp {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1>\n\
         <p id=\"errorMessage\" class=\"error\" role=\"alert\">{}</p>\n",
        esc(aadsts)
    );
    html(status, "Sign in to your account", &body)
}

/// A self-contained HTML page (no external assets, no script) that may not be framed.
fn html(status: u16, title: &str, body: &str) -> Resp {
    html_with(status, title, body, None)
}

/// `html`, its forms also allowed to end up at `form_origin` (where a sign-in redirects).
fn html_with(status: u16, title: &str, body: &str, form_origin: Option<&str>) -> Resp {
    const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}\
        main{max-width:440px;margin:10vh auto;background:#fff;padding:44px;\
        box-shadow:0 2px 6px rgba(0,0,0,.2)}h1{font-size:24px;font-weight:600}\
        label{display:block;font-size:13px;color:#444}\
        input[type=email],input[type=password]{box-sizing:border-box;width:100%;padding:6px 0;\
        margin:4px 0 16px;border:0;border-bottom:1px solid #666;font-size:15px}\
        button{background:#0067b8;color:#fff;border:0;padding:8px 32px;font-size:15px}\
        .error{color:#e81123}.detail{color:#666;font-size:13px}";
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n\
         </body>\n</html>\n",
        esc(title)
    );
    Resp::bytes(status, Bytes::from(page), "text/html; charset=utf-8")
        .with_header("Cache-Control", "no-store")
        .with_header("X-Frame-Options", "DENY")
        .with_header(
            "Content-Security-Policy",
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{}; \
                 frame-ancestors 'none'; base-uri 'none'",
                form_origin.map(|o| format!(" {o}")).unwrap_or_default()
            ),
        )
}

/// Escapes text for HTML content and double- or single-quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '`' => out.push_str("&#96;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_stable_readable_and_case_blind() {
        let a = user_password(1, "adele.vance0@contoso.example");
        assert_eq!(a.len(), 12);
        assert_eq!(a, user_password(1, "Adele.Vance0@CONTOSO.example"));
        assert_ne!(a, user_password(2, "adele.vance0@contoso.example"));
        assert_ne!(a, user_password(1, "alex.wilber1@contoso.example"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert!(!a.contains(['0', 'O', '1', 'l', 'I']), "{a}");
        let b = a.as_bytes();
        assert!(
            b[0].is_ascii_uppercase() && b[1].is_ascii_lowercase(),
            "{a}"
        );
        assert!(b[10].is_ascii_digit() && b[11].is_ascii_digit(), "{a}");
    }

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            esc(r#"<script>alert('x')</script>" onfocus="x"#),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot; onfocus=&quot;x"
        );
    }

    #[test]
    fn loopback_redirects_ignore_the_port_only() {
        let idp = IdentityProvider::new(1);
        assert!(idp.redirect_allowed("app", "http://127.0.0.1:5123/cb"));
        assert!(idp.redirect_allowed("app", "http://localhost:80/x"));
        assert!(!idp.redirect_allowed("app", "https://evil.example/cb"));
        assert!(!idp.redirect_allowed("app", "http://127.0.0.2/cb"));
        assert!(!idp.redirect_allowed("app", "not a uri"));
        idp.redirect_uris
            .lock()
            .unwrap()
            .insert("app".into(), vec!["http://localhost/cb".into()]);
        assert!(idp.redirect_allowed("app", "http://localhost:4711/cb"));
        assert!(!idp.redirect_allowed("app", "http://localhost:4711/other"));
        assert!(!idp.redirect_allowed("app", "http://127.0.0.1:5123/cb"));
    }

    #[test]
    fn keys_are_deterministic_from_the_seed() {
        let a = KeyRing::new(7);
        let b = KeyRing::new(7);
        assert_eq!(a.current_kid(), b.current_kid());
        assert_eq!(a.current_kid().len(), 27);
        let old = a.current_kid();
        let new = a.rotate();
        assert_ne!(old, new);
        let published: Vec<String> = a
            .jwks("iss")
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(published, [new, old]);
    }
}
