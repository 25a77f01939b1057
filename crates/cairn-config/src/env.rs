//! Every environment variable Cairn reads, named once (as uv's `EnvVars`), and the
//! environment itself as a value the caller hands in.
//!
//! Precedence everywhere: configuration file < environment < explicit overrides (flags,
//! an API request). The libraries never read the process environment: the command line
//! captures it once ([`Environment::from_process`]); a server holding several
//! repositories passes what it wants each one to see.

use std::collections::BTreeMap;

/// The configuration file (the same as `--config`).
pub const CAIRN_CONFIG: &str = "CAIRN_CONFIG";
/// Where the local catalog and spool live (overrides `cache-dir`).
pub const CAIRN_CACHE_DIR: &str = "CAIRN_CACHE_DIR";
/// The tracing filter, e.g. `debug` or `info,cairn_graph=trace`.
pub const CAIRN_LOG: &str = "CAIRN_LOG";

/// Repository location, as `--repo` takes it (overrides `repository`).
pub const CAIRN_REPOSITORY: &str = "CAIRN_REPOSITORY";
/// A shared catalog, as `--catalog` takes it (overrides `catalog`).
pub const CAIRN_CATALOG: &str = "CAIRN_CATALOG";
/// NATS JetStream server for workers, as `--nats` takes it (overrides `nats`).
pub const CAIRN_NATS: &str = "CAIRN_NATS";
/// File holding the repository password (overrides `password-file`).
pub const CAIRN_PASSWORD_FILE: &str = "CAIRN_PASSWORD_FILE";
/// The repository password itself (overrides `password-file`).
pub const CAIRN_PASSWORD: &str = "CAIRN_PASSWORD";
/// Password of the second repository of `cairn copy` (else the first one's).
pub const CAIRN_PASSWORD2: &str = "CAIRN_PASSWORD2";

/// Which `[tenants.NAME]` of the configuration file to use.
pub const CAIRN_TENANT: &str = "CAIRN_TENANT";
/// Directory (tenant) id or verified domain.
pub const CAIRN_TENANT_ID: &str = "CAIRN_TENANT_ID";
/// Application (client) id of the app registration.
pub const CAIRN_CLIENT_ID: &str = "CAIRN_CLIENT_ID";
/// The client secret itself (never stored in the configuration file).
pub const CAIRN_CLIENT_SECRET: &str = "CAIRN_CLIENT_SECRET";
/// File holding the client secret.
pub const CAIRN_CLIENT_SECRET_FILE: &str = "CAIRN_CLIENT_SECRET_FILE";
/// Certificate with its private key (PEM, or PKCS#12).
pub const CAIRN_CERTIFICATE: &str = "CAIRN_CERTIFICATE";
/// Password of a PKCS#12 certificate.
pub const CAIRN_CERTIFICATE_PASSWORD: &str = "CAIRN_CERTIFICATE_PASSWORD";
/// File holding the password of a PKCS#12 certificate.
pub const CAIRN_CERTIFICATE_PASSWORD_FILE: &str = "CAIRN_CERTIFICATE_PASSWORD_FILE";
/// Graph service root, without the version.
pub const CAIRN_GRAPH_URL: &str = "CAIRN_GRAPH_URL";
/// Identity (login) root.
pub const CAIRN_LOGIN_URL: &str = "CAIRN_LOGIN_URL";

/// Client secret the simulator accepts (`cairn sim serve`).
pub const CAIRN_SIM_CLIENT_SECRET: &str = "CAIRN_SIM_CLIENT_SECRET";

/// S3 credentials of the repository (as the AWS tools read them).
pub const AWS_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
pub const AWS_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Region of the S3 bucket (`AWS_DEFAULT_REGION` first).
pub const AWS_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
pub const AWS_REGION: &str = "AWS_REGION";

/// Base of the configuration directory (XDG Base Directory).
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Base of the cache directory (XDG Base Directory).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// The user's home, when the XDG variables are unset.
pub const HOME: &str = "HOME";

/// Environment variables as settings see them. An empty value means "unset", as most Unix
/// tools read it. (No `Debug`: it holds secrets.)
#[derive(Clone, Default)]
pub struct Environment {
    vars: BTreeMap<String, String>,
}

impl Environment {
    /// The variables of this process that settings read (`CAIRN_*`, `AWS_*`, `XDG_*`,
    /// `HOME`).
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars().filter(|(k, _)| {
            k.starts_with("CAIRN_") || k.starts_with("AWS_") || k.starts_with("XDG_") || k == HOME
        }))
    }

    /// An environment of exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(_, v): &(String, String)| !v.is_empty())
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}
