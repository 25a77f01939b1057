//! Tenants: which one, how to reach it and how to sign in, after precedence.

use crate::env::{self, Environment};
use crate::{Config, ConfigError, Result};
use cairn_graph::cert::Certificate;
use cairn_graph::client::{DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL};
use cairn_graph::{Credential, GraphClient, GraphConfig};
use std::path::PathBuf;

/// Which tenant, and how to reach and sign in to it, given explicitly (flags, a request).
/// Every field overrides the same value of the configuration file's tenant; unset fields
/// fall back to the `CAIRN_*` variables ([`TenantOverrides::with_env`]). (No `Debug`: it
/// may hold secrets.)
#[derive(Clone, Default)]
pub struct TenantOverrides {
    /// A tenant of the configuration file.
    pub tenant: Option<String>,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub certificate_password: Option<String>,
    pub certificate_password_file: Option<PathBuf>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
}

/// Requests in flight at once across a client. Graph limits each mailbox (four at once) and
/// the tenant's SharePoint budget, not the app's requests in flight, and a backup works on
/// hundreds of mailboxes at once: 256 would cap 200 mailboxes at a third of their rate. This
/// guards the process's sockets only.
pub const GLOBAL_CONCURRENCY: u32 = 1_024;

impl TenantOverrides {
    /// Each unset field from its `CAIRN_*` variable.
    pub fn with_env(mut self, e: &Environment) -> Self {
        let s = |v: &mut Option<String>, name: &str| {
            if v.is_none() {
                *v = e.get(name);
            }
        };
        let p = |v: &mut Option<PathBuf>, name: &str| {
            if v.is_none() {
                *v = e.get(name).map(PathBuf::from);
            }
        };
        s(&mut self.tenant, env::CAIRN_TENANT);
        s(&mut self.tenant_id, env::CAIRN_TENANT_ID);
        s(&mut self.client_id, env::CAIRN_CLIENT_ID);
        s(&mut self.client_secret, env::CAIRN_CLIENT_SECRET);
        p(&mut self.client_secret_file, env::CAIRN_CLIENT_SECRET_FILE);
        p(&mut self.certificate, env::CAIRN_CERTIFICATE);
        s(
            &mut self.certificate_password,
            env::CAIRN_CERTIFICATE_PASSWORD,
        );
        p(
            &mut self.certificate_password_file,
            env::CAIRN_CERTIFICATE_PASSWORD_FILE,
        );
        s(&mut self.graph_url, env::CAIRN_GRAPH_URL);
        s(&mut self.login_url, env::CAIRN_LOGIN_URL);
        self
    }
}

/// Where a tenant's credential comes from. (No `Debug`: it may hold a secret.)
pub enum CredentialSource {
    /// The secret itself (`--client-secret` / `CAIRN_CLIENT_SECRET`).
    Secret(String),
    SecretFile(PathBuf),
    Certificate {
        path: PathBuf,
        password: Option<String>,
        password_file: Option<PathBuf>,
    },
}

/// A tenant after precedence (overrides > environment > file > defaults). (No `Debug`: it
/// may hold a secret.)
pub struct ResolvedTenant {
    /// Its name in the configuration file; `None` when overrides alone describe it.
    pub name: Option<String>,
    pub tenant_id: String,
    /// The backup app.
    pub client_id: String,
    pub credential: CredentialSource,
    pub graph_url: String,
    pub login_url: String,
    /// The restore app, when one is configured: (client id, credential).
    pub restore: Option<(String, CredentialSource)>,
    /// Graph's beta endpoint may be used (the file's `beta = true`).
    pub beta: bool,
    /// The tenant's SharePoint/OneDrive budget, resource units per minute (the file's
    /// `files-ru-per-min`); `None`: Microsoft's smallest, 1,250.
    pub files_ru_per_min: Option<u32>,
}

fn read(what: &'static str, f: &PathBuf) -> Result<String> {
    std::fs::read_to_string(f).map_err(|source| ConfigError::Read {
        what,
        path: f.clone(),
        source,
    })
}

impl ResolvedTenant {
    /// The tenant as the catalog and the repository name it: its name in the
    /// configuration file, else its directory id.
    pub fn key(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.tenant_id.clone())
    }

    /// The backup app's client configuration, credential files read.
    pub fn graph_config(&self) -> Result<GraphConfig> {
        self.config_for(&self.client_id, &self.credential)
    }

    /// The restore app's client configuration, when one is configured.
    pub fn restore_graph_config(&self) -> Result<Option<GraphConfig>> {
        self.restore
            .as_ref()
            .map(|(id, c)| self.config_for(id, c))
            .transpose()
    }

    fn config_for(&self, client_id: &str, credential: &CredentialSource) -> Result<GraphConfig> {
        let credential = match credential {
            CredentialSource::Secret(s) => Credential::Secret(s.clone().into()),
            CredentialSource::SecretFile(f) => {
                Credential::Secret(read("client secret file", f)?.trim().to_string().into())
            }
            CredentialSource::Certificate {
                path,
                password,
                password_file,
            } => {
                let password = match (password, password_file) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(f)) => Some(
                        read("certificate password file", f)?
                            .trim_end_matches(['\n', '\r'])
                            .to_string(),
                    ),
                    (None, None) => None,
                };
                Credential::Certificate(Certificate::from_file(path, password.as_deref())?.into())
            }
        };
        let mut cfg = GraphConfig::new(&self.tenant_id, client_id, credential);
        cfg.limits.global_concurrency = GLOBAL_CONCURRENCY;
        cfg.graph_url = self.graph_url.clone();
        cfg.login_url = self.login_url.clone();
        if let Some(ru) = self.files_ru_per_min {
            cfg.limits.files_ru_per_min = ru;
        }
        Ok(cfg)
    }

    /// A client for the tenant; it signs in on its first request.
    pub fn client(&self) -> Result<GraphClient> {
        Ok(GraphClient::new(self.graph_config()?)?)
    }
}

impl Config {
    /// The tenant named `o.tenant` (or `CAIRN_TENANT`; or the only one of the file when
    /// neither names one), with the overrides and environment over the file's values. With
    /// several tenants in the file, a name is required unless the overrides describe a
    /// tenant completely.
    pub fn tenant(&self, o: &TenantOverrides) -> Result<ResolvedTenant> {
        let o = o.clone().with_env(&self.env);
        let tenants = &self.file.tenants;
        let entry = match o.tenant.as_deref() {
            Some(n) => match tenants.get(n) {
                Some(t) => Some((n, t)),
                None => {
                    let known = if tenants.is_empty() {
                        format!("{} configures no tenant", self.path.display())
                    } else {
                        format!(
                            "{} configures {}",
                            self.path.display(),
                            self.tenant_names().join(", ")
                        )
                    };
                    return Err(ConfigError::user(format!("no tenant named {n}: {known}"))
                        .with_hint(format!("add it with `cairn tenant add {n} --tenant-id … --client-id … --client-secret-file …`")));
                }
            },
            None => match tenants.len() {
                0 => None,
                1 => tenants.iter().next().map(|(n, t)| (n.as_str(), t)),
                // Overrides that name a tenant completely need no entry of the file.
                _ if o.tenant_id.is_some() && o.client_id.is_some() => None,
                _ => {
                    return Err(ConfigError::user(format!(
                        "{} configures several tenants ({}): which one?",
                        self.path.display(),
                        self.tenant_names().join(", ")
                    ))
                    .with_hint(format!(
                        "choose one with --tenant NAME or {}",
                        env::CAIRN_TENANT
                    )));
                }
            },
        };
        let missing = |what: &str, var: &str| -> ConfigError {
            ConfigError::user(format!("no {what} given")).with_hint(format!(
                "add a tenant with `cairn tenant add NAME …`, or give --{} (or {var})",
                what.replace(' ', "-")
            ))
        };
        let file = entry.map(|(_, t)| t);
        let tenant_id = o
            .tenant_id
            .clone()
            .or_else(|| file.map(|t| t.tenant_id.clone()))
            .ok_or_else(|| missing("tenant id", env::CAIRN_TENANT_ID))?;
        let client_id = o
            .client_id
            .clone()
            .or_else(|| file.map(|t| t.client_id.clone()))
            .ok_or_else(|| missing("client id", env::CAIRN_CLIENT_ID))?;
        let credential = match (&o.client_secret, &o.client_secret_file, &o.certificate) {
            (Some(s), None, None) => CredentialSource::Secret(s.clone()),
            (None, Some(f), None) => CredentialSource::SecretFile(f.clone()),
            (None, None, Some(c)) => CredentialSource::Certificate {
                path: c.clone(),
                password: o.certificate_password.clone(),
                password_file: o.certificate_password_file.clone(),
            },
            (None, None, None) => match file {
                Some(t) => match (&t.client_secret_file, &t.certificate) {
                    (Some(f), _) => CredentialSource::SecretFile(f.clone()),
                    (None, Some(c)) => CredentialSource::Certificate {
                        path: c.clone(),
                        password: o.certificate_password.clone(),
                        password_file: o
                            .certificate_password_file
                            .clone()
                            .or_else(|| t.certificate_password_file.clone()),
                    },
                    // `parse` refuses entries without a credential.
                    (None, None) => {
                        return Err(ConfigError::user("tenant entry without credential"));
                    }
                },
                None => {
                    return Err(ConfigError::user("no credential given").with_hint(format!(
                        "set {}, --client-secret-file or --certificate, or add the tenant with `cairn tenant add`",
                        env::CAIRN_CLIENT_SECRET
                    )));
                }
            },
            _ => {
                return Err(ConfigError::user(
                    "give one credential: a client secret, a secret file or a certificate",
                )
                .with_hint(format!(
                    "{} in the environment counts as one",
                    env::CAIRN_CLIENT_SECRET
                )));
            }
        };
        let restore = file.and_then(|t| {
            let id = t.restore_client_id.clone()?;
            let c = match (&t.restore_client_secret_file, &t.restore_certificate) {
                (Some(f), _) => CredentialSource::SecretFile(f.clone()),
                (None, Some(c)) => CredentialSource::Certificate {
                    path: c.clone(),
                    password: None,
                    password_file: t.restore_certificate_password_file.clone(),
                },
                (None, None) => return None,
            };
            Some((id, c))
        });
        Ok(ResolvedTenant {
            restore,
            beta: file.is_some_and(|t| t.beta),
            files_ru_per_min: file.and_then(|t| t.files_ru_per_min),
            name: entry.map(|(n, _)| n.to_string()),
            tenant_id,
            client_id,
            credential,
            graph_url: o
                .graph_url
                .clone()
                .or_else(|| file.and_then(|t| t.graph_url.clone()))
                .unwrap_or_else(|| DEFAULT_GRAPH_URL.into()),
            login_url: o
                .login_url
                .clone()
                .or_else(|| file.and_then(|t| t.login_url.clone()))
                .unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
        })
    }
}
