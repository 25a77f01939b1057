//! App-only sign-in (OAuth2 client credentials) with a client secret or a certificate, and
//! the layer that puts a fresh token on every request: cached, refreshed before it expires,
//! renewed once when Graph says it is invalid.

use crate::cert::Certificate;
use crate::error::GraphError;
use crate::transport::{Request, Response, Transport};
use futures::future::BoxFuture;
use http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the application proves who it is.
#[derive(Clone)]
pub enum Credential {
    Secret(SecretString),
    Certificate(Arc<Certificate>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Secret(_) => f.write_str("Secret(<redacted>)"),
            Credential::Certificate(c) => write!(f, "Certificate({})", c.thumbprint_sha256()),
        }
    }
}

/// Where and as whom to sign in.
#[derive(Clone, Debug)]
pub struct SignIn {
    /// Identity root, e.g. `https://login.microsoftonline.com`.
    pub login_url: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: Credential,
    /// Resource whose `.default` scope is asked for, e.g. `https://graph.microsoft.com`.
    pub scope_resource: String,
}

struct Token {
    secret: SecretString,
    refresh_at: Instant,
}

/// Obtains and caches access tokens.
pub struct TokenCache {
    sign_in: SignIn,
    http: reqwest::Client,
    current: tokio::sync::Mutex<Option<Token>>,
}

impl TokenCache {
    pub fn new(sign_in: SignIn, http: reqwest::Client) -> Self {
        Self {
            sign_in,
            http,
            current: tokio::sync::Mutex::new(None),
        }
    }

    fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.sign_in.login_url.trim_end_matches('/'),
            self.sign_in.tenant_id
        )
    }

    /// A valid token; fetched when none is cached, or it is near its end, or `force`.
    pub async fn token(&self, force: bool) -> Result<SecretString, GraphError> {
        let mut cur = self.current.lock().await;
        if !force
            && let Some(t) = cur.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.secret.clone());
        }
        let t = self.fetch().await?;
        let secret = t.secret.clone();
        *cur = Some(t);
        Ok(secret)
    }

    async fn fetch(&self) -> Result<Token, GraphError> {
        let s = &self.sign_in;
        let scope = format!("{}/.default", s.scope_resource.trim_end_matches('/'));
        let url = self.token_url();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", s.client_id.clone()),
            ("scope", scope),
        ];
        match &s.credential {
            Credential::Secret(secret) => {
                form.push(("client_secret", secret.expose_secret().to_string()));
            }
            Credential::Certificate(cert) => {
                let now = chrono::Utc::now().timestamp();
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                ));
                form.push(("client_assertion", cert.assertion(&s.client_id, &url, now)?));
            }
        }
        let auth_err = |description: String| GraphError::Auth {
            tenant: s.tenant_id.clone(),
            description,
        };
        let mut last = None;
        for attempt in 0..5u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
            let resp = match self.http.post(&url).form(&form).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(auth_err(format!(
                        "identity endpoint unreachable: {}",
                        crate::transport::without_url(e)
                    )));
                    continue;
                }
            };
            let status = resp.status().as_u16();
            let body: serde_json::Value = match resp.json().await {
                Ok(v) => v,
                Err(e) => {
                    last = Some(auth_err(format!(
                        "unreadable token response: {}",
                        crate::transport::without_url(e)
                    )));
                    continue;
                }
            };
            if status >= 500 || status == 429 {
                last = Some(auth_err(format!("identity endpoint answered {status}")));
                continue;
            }
            if status != 200 {
                let desc = body["error_description"]
                    .as_str()
                    .or(body["error"].as_str())
                    .unwrap_or("no description");
                // The first line is the AADSTS code and reason; never echo the request.
                return Err(auth_err(desc.lines().next().unwrap_or(desc).to_string()));
            }
            let Some(token) = body["access_token"].as_str() else {
                return Err(auth_err("the token response has no access_token".into()));
            };
            let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3599));
            // Refresh with a margin: five minutes, or a quarter of short lifetimes.
            let margin = Duration::from_secs(300).min(lifetime / 4);
            return Ok(Token {
                secret: SecretString::from(token.to_string()),
                refresh_at: Instant::now() + lifetime - margin,
            });
        }
        Err(last.unwrap_or_else(|| auth_err("sign-in failed".into())))
    }
}

/// Adds `Authorization: Bearer …`; on 401 `InvalidAuthenticationToken`, renews the token and
/// tries once more.
pub struct AuthLayer<T> {
    inner: T,
    tokens: Arc<TokenCache>,
}

impl<T: Transport> AuthLayer<T> {
    pub fn new(inner: T, tokens: Arc<TokenCache>) -> Self {
        Self { inner, tokens }
    }
}

fn bearer(token: &SecretString) -> Result<HeaderValue, GraphError> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
        .map_err(|_| GraphError::Config("the access token is not a valid header value".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

impl<T: Transport> Transport for AuthLayer<T> {
    fn send(&self, mut req: Request) -> BoxFuture<'_, Result<Response, GraphError>> {
        Box::pin(async move {
            if !req.authenticated {
                req.headers.remove(http::header::AUTHORIZATION);
                return self.inner.send(req).await;
            }
            let token = self.tokens.token(false).await?;
            req.headers
                .insert(http::header::AUTHORIZATION, bearer(&token)?);
            let resp = self.inner.send(req.clone()).await?;
            if resp.status != 401 {
                return Ok(resp);
            }
            tracing::debug!(path = %req.path(), "401: renewing the access token");
            let token = self.tokens.token(true).await?;
            req.headers
                .insert(http::header::AUTHORIZATION, bearer(&token)?);
            self.inner.send(req).await
        })
    }
}
