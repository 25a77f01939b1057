//! The transport stack: one small object-safe trait, and behaviours (authentication,
//! pacing, retries) as wrappers around the HTTP transport, like storage backends are.
//!
//! ```text
//! PaceLayer → RetryLayer → AuthLayer → HttpTransport
//! ```
//! Pacing waits before a request may go; retries repeat it; authentication puts a token on
//! each attempt as it leaves.

use crate::error::{GraphError, display_path};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, Method};
use std::time::Duration;

/// Whose limits a request counts against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Outlook: one mailbox (user id or UPN).
    Mailbox(String),
    /// SharePoint/OneDrive: charged to the tenant's resource-unit budget.
    Files { ru: u32 },
    /// Directory and other calls: only the global limits.
    Tenant,
}

#[derive(Clone)]
pub struct Request {
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub resource: Resource,
    /// `false` for pre-authenticated URLs (downloads, upload sessions): never send a token.
    pub authenticated: bool,
    /// Stream the body instead of buffering it (downloads).
    pub stream: bool,
}

impl Request {
    pub fn get(url: impl Into<String>, resource: Resource) -> Self {
        Self {
            method: Method::GET,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
            resource,
            authenticated: true,
            stream: false,
        }
    }

    /// What messages and logs may say of the URL: its path without the query, or, for a
    /// pre-authenticated URL (whose path or query is itself the credential), only what it is.
    pub fn path(&self) -> String {
        if self.authenticated {
            display_path(&self.url)
        } else {
            "(a pre-authenticated download or upload URL)".into()
        }
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path())
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

pub enum Body {
    Buffered(Bytes),
    Streaming(reqwest::Response),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Buffered(b) => write!(f, "Buffered({} bytes)", b.len()),
            Body::Streaming(_) => f.write_str("Streaming"),
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Retry-After` in seconds (Graph never sends the date form).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.body {
            Body::Buffered(b) => b,
            Body::Streaming(_) => &[],
        }
    }

    /// Turns an error status into a `GraphError::Api` with Graph's error code.
    pub fn error(&self, req: &Request) -> GraphError {
        let v: serde_json::Value = serde_json::from_slice(self.bytes()).unwrap_or_default();
        let e = &v["error"];
        // Files nest the specific code (`activityLimitReached` → `throttledRequest`).
        let code = e["code"]
            .as_str()
            .filter(|c| !c.is_empty())
            .or_else(|| e["innerError"]["code"].as_str())
            .or_else(|| v["error"].as_str())
            .unwrap_or("")
            .to_string();
        let message = e["message"]
            .as_str()
            .or_else(|| v["error_description"].as_str())
            .unwrap_or("")
            .to_string();
        GraphError::Api {
            method: req.method.to_string(),
            path: req.path(),
            status: self.status,
            code,
            message,
            retry_after: self.retry_after(),
        }
    }
}

/// Sends one request. Implementations decorate another transport.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, req: Request) -> BoxFuture<'_, Result<Response, GraphError>>;
}

/// The bottom of the stack: HTTP/2 over rustls with connection reuse.
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(user_agent: &str, timeout: Duration) -> Result<Self, GraphError> {
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GraphError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { client })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

fn network(req: &Request, e: impl std::fmt::Display) -> GraphError {
    GraphError::Network {
        method: req.method.to_string(),
        path: req.path(),
        detail: e.to_string(),
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: Request) -> BoxFuture<'_, Result<Response, GraphError>> {
        Box::pin(async move {
            let mut rb = self
                .client
                .request(req.method.clone(), &req.url)
                .headers(req.headers.clone());
            if let Some(b) = &req.body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| network(&req, without_url(e)))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            // Buffer JSON and error bodies here, so that a body cut short is a network
            // error the retry layer sees; downloads stream.
            let body = if req.stream && (200..300).contains(&status) {
                Body::Streaming(resp)
            } else {
                Body::Buffered(
                    resp.bytes()
                        .await
                        .map_err(|e| network(&req, without_url(e)))?,
                )
            };
            Ok(Response {
                status,
                headers,
                body,
            })
        })
    }
}

/// reqwest errors print their URL, which may carry pre-authenticated tokens.
pub fn without_url(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "connection lost while reading the answer"
    } else if e.is_request() {
        "connection lost while sending the request"
    } else {
        "network error"
    };
    let mut source = std::error::Error::source(&e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pre_authenticated_url_never_reaches_messages() {
        let mut req = Request::get(
            "https://contoso.sharepoint.com/_dl/SECRETPAYLOAD.SIG?tempauth=SECRET",
            Resource::Files { ru: 1 },
        );
        req.authenticated = false;
        for shown in [req.path(), format!("{req:?}")] {
            assert!(!shown.contains("SECRET"), "{shown}");
        }
        let graph = Request::get(
            "https://graph.microsoft.com/v1.0/drives/b!x/root/delta?token=SECRET",
            Resource::Files { ru: 1 },
        );
        assert_eq!(graph.path(), "/v1.0/drives/b!x/root/delta");
        assert!(!format!("{graph:?}").contains("SECRET"));
    }
}
