//! Signing people in through Microsoft Entra ID: OpenID Connect's authorization-code flow
//! with PKCE, against each tenant's own issuer (`{login-url}/{tenant-id}/v2.0`), with the
//! tenant's portal app (docs/portal.md). The ID token is checked here with `jsonwebtoken`
//! against the keys the tenant's discovery document names (docs/decisions/0008): signature
//! (by `kid`), issuer, audience, lifetime, the nonce of the sign-in this server started, and
//! that the token's tenant (`tid`) is the tenant signed in to.

use crate::auth::Role;
use crate::store::{Store, now};
use base64::Engine as _;
use rusqlite::{OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use std::collections::BTreeMap;

/// How long a sign-in may take between `/login` and `/auth/callback`.
pub const PENDING_SECONDS: i64 = 600;

/// Slack for clocks that differ between the server and Microsoft.
const LEEWAY_SECONDS: u64 = 60;

/// A tenant people can sign in through: `[tenants.NAME]` with a portal app.
#[derive(Clone, Debug)]
pub struct PortalTenant {
    /// Its name in the configuration.
    pub name: String,
    pub tenant_id: String,
    pub client_id: String,
    pub secret_file: std::path::PathBuf,
    /// The identity root, without a trailing `/`.
    pub login_url: String,
}

impl PortalTenant {
    /// The issuer its ID tokens must name.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.login_url, self.tenant_id)
    }

    fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    fn secret(&self) -> anyhow::Result<SecretString> {
        let s = std::fs::read_to_string(&self.secret_file).map_err(|e| {
            anyhow::anyhow!(
                "reading the portal app's client secret of tenant {} from {}: {e}",
                self.name,
                self.secret_file.display()
            )
        })?;
        Ok(SecretString::from(s.trim().to_string()))
    }
}

/// The tenants of the configuration that have a portal app, by name.
pub fn portal_tenants(ws: &cairn_app::Workspace) -> Vec<PortalTenant> {
    let cfg = ws.config();
    cfg.file()
        .tenants
        .iter()
        .filter_map(|(name, t)| {
            let client_id = t.portal_client_id.clone()?;
            let secret_file = t.portal_client_secret_file.clone()?;
            // The one resolver of a tenant's id and login URL (environment included).
            let resolved = cfg
                .tenant(&cairn_config::TenantOverrides {
                    tenant: Some(name.clone()),
                    ..Default::default()
                })
                .ok()?;
            Some(PortalTenant {
                name: name.clone(),
                tenant_id: resolved.tenant_id,
                client_id,
                secret_file,
                login_url: resolved.login_url.trim_end_matches('/').to_string(),
            })
        })
        .collect()
}

/// What a tenant's discovery document says (the part used here).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Discovery {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// Fetches the tenant's discovery document.
pub async fn discover(http: &reqwest::Client, t: &PortalTenant) -> anyhow::Result<Discovery> {
    let url = t.discovery_url();
    let r = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| anyhow::anyhow!("fetching the OpenID configuration {url}: {e}"))?;
    r.json()
        .await
        .map_err(|e| anyhow::anyhow!("reading the OpenID configuration {url}: {e}"))
}

/// A sign-in under way, kept server-side between `/login` and `/auth/callback`.
pub struct Pending {
    pub tenant: String,
    pub nonce: String,
    pub verifier: String,
}

/// The PKCE challenge (S256) of `verifier`.
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// Records a new sign-in through `tenant`: its `state`, nonce and PKCE verifier.
pub fn begin(store: &Store, tenant: &str) -> anyhow::Result<(String, Pending)> {
    let state = crate::session::random();
    let p = Pending {
        tenant: tenant.to_string(),
        nonce: crate::session::random(),
        verifier: crate::session::random(),
    };
    let t = now();
    store.with(|c| {
        c.execute("DELETE FROM server_logins WHERE expires <= ?1", params![t])?;
        c.execute(
            "INSERT INTO server_logins (state, tenant, nonce, verifier, expires) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![state, p.tenant, p.nonce, p.verifier, t + PENDING_SECONDS],
        )
    })?;
    Ok((state, p))
}

/// The sign-in of `state`, once: it is removed as it is read. `None` when unknown or
/// expired.
pub fn take(store: &Store, state: &str) -> anyhow::Result<Option<Pending>> {
    store.with(|c| {
        let row = c
            .query_row(
                "SELECT tenant, nonce, verifier, expires FROM server_logins WHERE state=?1",
                params![state],
                |r| {
                    Ok((
                        Pending {
                            tenant: r.get(0)?,
                            nonce: r.get(1)?,
                            verifier: r.get(2)?,
                        },
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()?;
        c.execute("DELETE FROM server_logins WHERE state=?1", params![state])?;
        Ok(row.filter(|(_, e)| *e > now()).map(|(p, _)| p))
    })
}

/// Where the browser goes to sign in.
pub fn authorize_url(
    d: &Discovery,
    t: &PortalTenant,
    redirect_uri: &str,
    state: &str,
    p: &Pending,
) -> anyhow::Result<String> {
    let mut u = url::Url::parse(&d.authorization_endpoint).map_err(|e| {
        anyhow::anyhow!(
            "the authorization endpoint {:?} of tenant {} is not a URL: {e}",
            d.authorization_endpoint,
            t.name
        )
    })?;
    u.query_pairs_mut()
        .append_pair("client_id", &t.client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_mode", "query")
        .append_pair("scope", "openid profile email")
        .append_pair("state", state)
        .append_pair("nonce", &p.nonce)
        .append_pair("code_challenge", &challenge(&p.verifier))
        .append_pair("code_challenge_method", "S256");
    Ok(u.into())
}

/// The claims of an ID token this server reads.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Claims {
    pub nonce: Option<String>,
    /// The tenant (directory) id.
    pub tid: Option<String>,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    /// App roles assigned to the person (`Cairn.Admin`, …).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Group object ids (with the app registration's groups claim).
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Why a sign-in was refused, for the person and the audit log (never a secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Exchanges `code` for tokens (client secret and PKCE verifier) and checks the ID token;
/// its claims when it is this tenant's, for this sign-in.
pub async fn finish(
    http: &reqwest::Client,
    t: &PortalTenant,
    redirect_uri: &str,
    code: &str,
    p: &Pending,
) -> anyhow::Result<Claims> {
    let d = discover(http, t).await?;
    let secret = t.secret()?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("client_id", &t.client_id),
        ("client_secret", secret.expose_secret()),
        ("code_verifier", &p.verifier),
        ("scope", "openid profile email"),
    ];
    let r = http
        .post(&d.token_endpoint)
        .form(&form)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("redeeming the sign-in at {}: {e}", d.token_endpoint))?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if !status.is_success() {
        return Err(Refused(format!(
            "the tenant's token endpoint refused the sign-in ({status}): {} {}",
            body["error"].as_str().unwrap_or("?"),
            body["error_description"].as_str().unwrap_or("")
        ))
        .into());
    }
    let Some(id_token) = body["id_token"].as_str() else {
        return Err(Refused("the token endpoint answered without an ID token".into()).into());
    };
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(&d.jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| anyhow::anyhow!("fetching the signing keys {}: {e}", d.jwks_uri))?
        .json()
        .await
        .map_err(|e| anyhow::anyhow!("reading the signing keys {}: {e}", d.jwks_uri))?;
    validate(id_token, &jwks, t, &p.nonce)
}

/// Checks an ID token: signature by a key of `jwks` (by `kid`, RS256), issuer, audience,
/// lifetime (`exp`, `nbf`), `nonce` and `tid`.
pub fn validate(
    id_token: &str,
    jwks: &jsonwebtoken::jwk::JwkSet,
    t: &PortalTenant,
    nonce: &str,
) -> anyhow::Result<Claims> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let refused = |what: String| anyhow::Error::from(Refused(what));
    let header = jsonwebtoken::decode_header(id_token)
        .map_err(|e| refused(format!("the ID token cannot be read: {e}")))?;
    let kid = header
        .kid
        .ok_or_else(|| refused("the ID token names no signing key (kid)".into()))?;
    let jwk = jwks.find(&kid).ok_or_else(|| {
        refused(format!(
            "the ID token is signed with key {kid}, which the tenant does not publish"
        ))
    })?;
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| refused(format!("the tenant's signing key {kid} is unusable: {e}")))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[t.issuer()]);
    v.set_audience(&[&t.client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.validate_nbf = true;
    v.leeway = LEEWAY_SECONDS;
    let claims = jsonwebtoken::decode::<Claims>(id_token, &key, &v)
        .map_err(|e| refused(format!("the ID token is not valid here: {e}")))?
        .claims;
    if claims.nonce.as_deref() != Some(nonce) {
        return Err(refused(
            "the ID token's nonce is not the one of this sign-in (a replayed token?)".into(),
        ));
    }
    if !claims
        .tid
        .as_deref()
        .is_some_and(|tid| tid.eq_ignore_ascii_case(&t.tenant_id))
    {
        return Err(refused(format!(
            "the ID token is of tenant {}, not of tenant {} ({})",
            claims.tid.as_deref().unwrap_or("(none)"),
            t.name,
            t.tenant_id
        )));
    }
    Ok(claims)
}

/// The app roles of the portal app and the role each stands for.
pub const APP_ROLES: [(&str, Role); 4] = [
    ("Cairn.Admin", Role::Admin),
    ("Cairn.BackupOperator", Role::BackupOperator),
    ("Cairn.RestoreOperator", Role::RestoreOperator),
    ("Cairn.Auditor", Role::Auditor),
];

/// The role a person's claims give: from app roles and `[server.portal] groups`, the first
/// of admin, backup-operator, restore-operator, auditor they hold; `None`: self-service.
pub fn role_of(claims: &Claims, groups: &BTreeMap<String, String>) -> Option<Role> {
    let mut held = Vec::new();
    for r in &claims.roles {
        held.extend(
            APP_ROLES
                .iter()
                .filter(|(n, _)| n == r)
                .map(|(_, role)| *role),
        );
    }
    for g in &claims.groups {
        held.extend(
            groups
                .iter()
                .filter(|(id, _)| id.eq_ignore_ascii_case(g))
                .filter_map(|(_, r)| Role::parse(r)),
        );
    }
    Role::ALL.into_iter().find(|r| held.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_rfc7636s_example() {
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn roles_come_from_app_roles_or_groups_else_self_service() {
        let c = |roles: &[&str], groups: &[&str]| Claims {
            nonce: None,
            tid: None,
            preferred_username: None,
            name: None,
            roles: roles.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        };
        let map = BTreeMap::from([("g-1".to_string(), "auditor".to_string())]);
        assert_eq!(role_of(&c(&[], &[]), &map), None);
        assert_eq!(role_of(&c(&["Other"], &["g-2"]), &map), None);
        assert_eq!(role_of(&c(&[], &["G-1"]), &map), Some(Role::Auditor));
        assert_eq!(
            role_of(&c(&["Cairn.RestoreOperator", "Cairn.Admin"], &[]), &map),
            Some(Role::Admin)
        );
    }

    #[test]
    fn a_sign_in_is_taken_once_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("c.db")).unwrap();
        let (state, p) = begin(&s, "contoso").unwrap();
        let got = take(&s, &state).unwrap().unwrap();
        assert_eq!((got.tenant.as_str(), got.nonce), ("contoso", p.nonce));
        assert!(take(&s, &state).unwrap().is_none(), "once");
        let (state, _) = begin(&s, "contoso").unwrap();
        s.with(|c| c.execute("UPDATE server_logins SET expires=1", []))
            .unwrap();
        assert!(take(&s, &state).unwrap().is_none(), "expired");
    }
}
