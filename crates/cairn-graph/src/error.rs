//! Errors of Graph calls: what failed, on which resource, whether trying again can help.

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("{method} {path}: HTTP {status} {code}: {message}")]
    Api {
        method: String,
        /// Path without query (never carries secrets).
        path: String,
        status: u16,
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its answer could not be read.
    #[error("{method} {path}: {detail}")]
    Network {
        method: String,
        path: String,
        detail: String,
    },
    /// Retries ran out; `last` is the final failure.
    #[error("{last} (gave up after {attempts} attempts)")]
    Exhausted {
        attempts: u32,
        last: Box<GraphError>,
    },
    /// The identity platform refused the credentials.
    #[error("sign-in to tenant {tenant} failed: {description}")]
    Auth { tenant: String, description: String },
    /// A delta token is no longer valid: the collection must be enumerated afresh.
    #[error("delta token expired for {path}: a resync is required")]
    Resync {
        path: String,
        /// Where the fresh enumeration starts, when Graph says (`Location`).
        restart: Option<String>,
    },
    /// A response body was not what the Graph contract says.
    #[error("{path}: unexpected response: {detail}")]
    Decode { path: String, detail: String },
    /// Invalid configuration (bad URL, unreadable certificate…).
    #[error("{0}")]
    Config(String),
}

impl GraphError {
    /// Would the same request succeed if sent again later?
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            GraphError::Network { .. } => true,
            _ => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            GraphError::Api { status, .. } => Some(*status),
            GraphError::Exhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. } => Some(code),
            GraphError::Exhausted { last, .. } => last.code(),
            _ => None,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            GraphError::Auth { .. } => Some(
                "check the tenant id, client id and client secret or certificate, and that the app registration has admin consent",
            ),
            GraphError::Api { status: 403, .. } => Some(
                "the app registration lacks an application permission (or an application access policy excludes this mailbox)",
            ),
            GraphError::Api { status: 404, .. } => {
                Some("the object does not exist (any more), or the user has no mailbox or OneDrive")
            }
            GraphError::Exhausted { .. } => Some(
                "the service kept failing or throttling; run again later, already saved work is kept",
            ),
            GraphError::Network { .. } => {
                Some("check the network and the --graph-url/--login-url settings")
            }
            _ => None,
        }
    }
}

/// The path of a URL without its query, for messages that must not carry tokens.
pub fn display_path(url: &str) -> String {
    let no_query = url.split('?').next().unwrap_or(url);
    match no_query.find("://") {
        Some(i) => match no_query[i + 3..].find('/') {
            Some(j) => no_query[i + 3 + j..].to_string(),
            None => "/".into(),
        },
        None => no_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_drop_host_and_query() {
        assert_eq!(
            display_path("https://graph.microsoft.com/v1.0/users?$skiptoken=SECRET"),
            "/v1.0/users"
        );
        assert_eq!(display_path("http://h:1"), "/");
    }
}
