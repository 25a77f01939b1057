//! The configuration file, and how it combines with the environment and the flags.
//!
//! A scheduled backup should need no flags at all: the file says where the repository is,
//! which tenants there are and where their credentials live; `CAIRN_*` variables override it
//! (for containers and CI), and flags override both. Secrets are never written to the file,
//! only the paths of files that hold them. Every key is documented in docs/configuration.md.
//!
//! Commands other than the repository and tenant commands use this module through
//! [`Config::load`], [`Settings::resolve`], [`resolve_tenant`], [`Config::repo_options`] and
//! [`Config::cache_dir`].

use crate::env;
use crate::graph::TenantFlags;
use crate::repo_cmd::RepoArgs;
use anyhow::Context;
use cairn_graph::cert::Certificate;
use cairn_graph::client::{DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL};
use cairn_graph::{Credential, GraphClient, GraphConfig};
use cairn_repo::RepoOptions;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A mistake the user can fix (a bad configuration file, a missing setting, an unknown
/// tenant): the CLI exits with 2 and prints the hint.
#[derive(Debug)]
pub struct UserError {
    message: String,
    hint: Option<String>,
}

impl UserError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What to do about it.
    pub fn hint_text(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UserError {}

/// The configuration file as written (see docs/configuration.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Repository location, as `--repo` takes it.
    pub repository: Option<String>,
    /// File holding the repository password.
    pub password_file: Option<PathBuf>,
    /// Where the local catalog and spool live.
    pub cache_dir: Option<PathBuf>,
    /// Tenants by the name commands know them by (`--tenant NAME`).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantEntry>,
}

/// One `[tenants.NAME]` table: how to reach and sign in to a tenant. It holds no secret,
/// only the paths of files that do.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantEntry {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub certificate_password_file: Option<PathBuf>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
}

/// The configuration file, read (an absent file reads as empty), with relative paths
/// already made relative to the file's directory.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    exists: bool,
    file: FileConfig,
}

/// Reads environment variables: the process's in the binary, a map in unit tests (the
/// process environment cannot be changed safely while tests run in threads).
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn process_env(name: &str) -> Option<String> {
    env::var(name)
}

impl Config {
    /// Reads the configuration file: `explicit` (from `--config`, which clap fills from
    /// `CAIRN_CONFIG` too), else `$XDG_CONFIG_HOME/cairn/config.toml`, else
    /// `$HOME/.config/cairn/config.toml`. A file that does not exist is an empty
    /// configuration; one with an unknown key or a bad value is an error naming both.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => default_config_path(&process_env)?,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&path, &text, &process_env),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config {
                path,
                exists: false,
                file: FileConfig::default(),
            }),
            Err(e) => {
                Err(e).with_context(|| format!("reading the configuration file {}", path.display()))
            }
        }
    }

    fn parse(path: &Path, text: &str, lookup: Lookup) -> anyhow::Result<Config> {
        let mut file: FileConfig = toml_edit::de::from_str(text).map_err(|e| {
            UserError::new(format!(
                "the configuration file {} is not valid: {}",
                path.display(),
                e.to_string().trim_end()
            ))
            .hint("every key is described in docs/configuration.md (keys are kebab-case)")
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| *p = resolve_path(base, p, lookup);
        file.password_file.as_mut().map(resolve);
        file.cache_dir.as_mut().map(resolve);
        if let Some(repo) = &mut file.repository {
            *repo = resolve_location(base, repo, lookup);
        }
        for (name, t) in &mut file.tenants {
            let where_ = || format!("tenant {name} in {}", path.display());
            match (&t.client_secret_file, &t.certificate) {
                (Some(_), Some(_)) => {
                    return Err(UserError::new(format!(
                        "{} has both client-secret-file and certificate",
                        where_()
                    ))
                    .hint("keep one credential per tenant")
                    .into());
                }
                (None, None) => {
                    return Err(UserError::new(format!(
                        "{} has no credential",
                        where_()
                    ))
                    .hint("add client-secret-file or certificate (secrets themselves never go into the file)")
                    .into());
                }
                _ => {}
            }
            if t.certificate_password_file.is_some() && t.certificate.is_none() {
                return Err(UserError::new(format!(
                    "{} has certificate-password-file without certificate",
                    where_()
                ))
                .into());
            }
            t.client_secret_file.as_mut().map(resolve);
            t.certificate.as_mut().map(resolve);
            t.certificate_password_file.as_mut().map(resolve);
        }
        Ok(Config {
            path: path.to_path_buf(),
            exists: true,
            file,
        })
    }

    /// Where the file is (or would be created).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file says.
    pub fn file(&self) -> &FileConfig {
        &self.file
    }

    /// The names of the configured tenants, sorted.
    pub fn tenant_names(&self) -> Vec<&str> {
        self.file.tenants.keys().map(String::as_str).collect()
    }

    /// The repository location: `--repo`/`CAIRN_REPOSITORY` (in `args`), else the file's
    /// `repository`; an error with a hint when neither says.
    pub fn repository(&self, args: &RepoArgs) -> anyhow::Result<String> {
        if let Some(r) = &args.repository {
            return Ok(r.clone());
        }
        if let Some(r) = &self.file.repository {
            return Ok(r.clone());
        }
        let whence = if self.exists {
            format!("{} has no `repository`", self.path.display())
        } else {
            format!("there is no configuration file at {}", self.path.display())
        };
        Err(UserError::new(format!("no repository given ({whence})"))
            .hint(format!(
                "give --repo, set {}, or run `cairn init --repo …` (which records it in the configuration file)",
                env::CAIRN_REPOSITORY
            ))
            .into())
    }

    /// Where the repository password comes from, by precedence.
    fn password_source(&self, args: &RepoArgs, lookup: Lookup) -> PasswordSource {
        if let Some(f) = &args.password_file {
            PasswordSource::File(f.clone())
        } else if let Some(p) = lookup(env::CAIRN_PASSWORD) {
            PasswordSource::Value(p)
        } else if let Some(f) = &self.file.password_file {
            PasswordSource::File(f.clone())
        } else {
            PasswordSource::Prompt
        }
    }

    /// The repository password: `--password-file`/`CAIRN_PASSWORD_FILE`, else
    /// `CAIRN_PASSWORD`, else the file's `password-file`, else a prompt on a terminal.
    pub fn password(&self, args: &RepoArgs) -> anyhow::Result<String> {
        match self.password_source(args, &process_env) {
            PasswordSource::File(f) => {
                let p = std::fs::read_to_string(&f)
                    .with_context(|| format!("reading the password file {}", f.display()))?;
                Ok(p.trim_end_matches(['\n', '\r']).to_string())
            }
            PasswordSource::Value(p) => Ok(p),
            PasswordSource::Prompt if std::io::stdin().is_terminal() => {
                Ok(rpassword::prompt_password("repository password: ")?)
            }
            PasswordSource::Prompt => Err(UserError::new("no repository password")
                .hint(format!(
                    "set {} or {}, or password-file in {}",
                    env::CAIRN_PASSWORD_FILE,
                    env::CAIRN_PASSWORD,
                    self.path.display()
                ))
                .into()),
        }
    }

    /// Location and password of the repository, ready for `Repo::open`/`Repo::init`.
    pub fn repo_options(&self, args: &RepoArgs) -> anyhow::Result<RepoOptions> {
        let location = self.repository(args)?;
        let mut o = RepoOptions::new(&location, &self.password(args)?)?;
        storage_credentials(&mut o, &process_env);
        Ok(o)
    }

    /// Where the local catalog and spool live: `flag`, else `CAIRN_CACHE_DIR`, else the
    /// file's `cache-dir`, else `$XDG_CACHE_HOME/cairn`, else `$HOME/.cache/cairn`. Not
    /// created here.
    pub fn cache_dir(&self, flag: Option<&Path>) -> anyhow::Result<PathBuf> {
        self.cache_dir_with(flag, &process_env)
    }

    fn cache_dir_with(&self, flag: Option<&Path>, lookup: Lookup) -> anyhow::Result<PathBuf> {
        if let Some(f) = flag {
            return Ok(f.to_path_buf());
        }
        if let Some(d) = lookup(env::CAIRN_CACHE_DIR) {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = &self.file.cache_dir {
            return Ok(d.clone());
        }
        xdg_dir(env::XDG_CACHE_HOME, ".cache", lookup)
            .map(|d| d.join("cairn"))
            .ok_or_else(|| {
                UserError::new("no cache directory: neither XDG_CACHE_HOME nor HOME is set")
                    .hint(format!(
                        "set {} or cache-dir in {}",
                        env::CAIRN_CACHE_DIR,
                        self.path.display()
                    ))
                    .into()
            })
    }

    /// The tenant named `name` (or the only one, when `name` is `None`), with the flags and
    /// environment in `flags` over the file's values. See [`resolve_tenant`].
    pub fn tenant(
        &self,
        name: Option<&str>,
        flags: &TenantFlags,
    ) -> anyhow::Result<ResolvedTenant> {
        let entry = match name {
            Some(n) => match self.file.tenants.get(n) {
                Some(t) => Some((n, t)),
                None => {
                    let known = if self.file.tenants.is_empty() {
                        format!("{} configures no tenant", self.path.display())
                    } else {
                        format!(
                            "{} configures {}",
                            self.path.display(),
                            self.tenant_names().join(", ")
                        )
                    };
                    return Err(UserError::new(format!("no tenant named {n}: {known}"))
                        .hint(format!("add it with `cairn tenant add {n} --tenant-id … --client-id … --client-secret-file …`"))
                        .into());
                }
            },
            None => match self.file.tenants.len() {
                0 => None,
                1 => self
                    .file
                    .tenants
                    .iter()
                    .next()
                    .map(|(n, t)| (n.as_str(), t)),
                // Flags that name a tenant completely need no entry of the file.
                _ if flags.tenant_id.is_some() && flags.client_id.is_some() => None,
                _ => {
                    return Err(UserError::new(format!(
                        "{} configures several tenants ({}): which one?",
                        self.path.display(),
                        self.tenant_names().join(", ")
                    ))
                    .hint(format!(
                        "choose one with --tenant NAME or {}",
                        env::CAIRN_TENANT
                    ))
                    .into());
                }
            },
        };
        let missing = |what: &str, var: &str| -> anyhow::Error {
            UserError::new(format!("no {what} given"))
                .hint(format!(
                    "add a tenant with `cairn tenant add NAME …`, or give --{} (or {var})",
                    what.replace(' ', "-")
                ))
                .into()
        };
        let file = entry.map(|(_, t)| t);
        let tenant_id = flags
            .tenant_id
            .clone()
            .or_else(|| file.map(|t| t.tenant_id.clone()))
            .ok_or_else(|| missing("tenant id", env::CAIRN_TENANT_ID))?;
        let client_id = flags
            .client_id
            .clone()
            .or_else(|| file.map(|t| t.client_id.clone()))
            .ok_or_else(|| missing("client id", env::CAIRN_CLIENT_ID))?;
        let credential = match (
            &flags.client_secret,
            &flags.client_secret_file,
            &flags.certificate,
        ) {
            (Some(s), None, None) => CredentialSource::Secret(s.clone()),
            (None, Some(f), None) => CredentialSource::SecretFile(f.clone()),
            (None, None, Some(c)) => CredentialSource::Certificate {
                path: c.clone(),
                password: flags.certificate_password.clone(),
                password_file: flags.certificate_password_file.clone(),
            },
            (None, None, None) => match file {
                Some(t) => match (&t.client_secret_file, &t.certificate) {
                    (Some(f), _) => CredentialSource::SecretFile(f.clone()),
                    (None, Some(c)) => CredentialSource::Certificate {
                        path: c.clone(),
                        password: flags.certificate_password.clone(),
                        password_file: flags
                            .certificate_password_file
                            .clone()
                            .or_else(|| t.certificate_password_file.clone()),
                    },
                    // `parse` refuses entries without a credential.
                    (None, None) => unreachable!("tenant entry without credential"),
                },
                None => {
                    return Err(UserError::new("no credential given")
                        .hint(format!(
                            "set {}, --client-secret-file or --certificate, or add the tenant with `cairn tenant add`",
                            env::CAIRN_CLIENT_SECRET
                        ))
                        .into());
                }
            },
            _ => {
                return Err(UserError::new(
                    "give one credential: a client secret, a secret file or a certificate",
                )
                .hint(format!(
                    "{} in the environment counts as one",
                    env::CAIRN_CLIENT_SECRET
                ))
                .into());
            }
        };
        Ok(ResolvedTenant {
            name: entry.map(|(n, _)| n.to_string()),
            tenant_id,
            client_id,
            credential,
            graph_url: flags
                .graph_url
                .clone()
                .or_else(|| file.and_then(|t| t.graph_url.clone()))
                .unwrap_or_else(|| DEFAULT_GRAPH_URL.into()),
            login_url: flags
                .login_url
                .clone()
                .or_else(|| file.and_then(|t| t.login_url.clone()))
                .unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
        })
    }
}

enum PasswordSource {
    File(PathBuf),
    Value(String),
    Prompt,
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

/// A tenant after precedence (flags > environment > file > defaults). (No `Debug`: it may
/// hold a secret.)
pub struct ResolvedTenant {
    /// Its name in the configuration file; `None` when flags alone describe it.
    pub name: Option<String>,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: CredentialSource,
    pub graph_url: String,
    pub login_url: String,
}

impl ResolvedTenant {
    /// The client configuration, credential files read.
    pub fn graph_config(&self) -> anyhow::Result<GraphConfig> {
        let credential = match &self.credential {
            CredentialSource::Secret(s) => Credential::Secret(s.clone().into()),
            CredentialSource::SecretFile(f) => {
                let s = std::fs::read_to_string(f)
                    .with_context(|| format!("reading the client secret file {}", f.display()))?;
                Credential::Secret(s.trim().to_string().into())
            }
            CredentialSource::Certificate {
                path,
                password,
                password_file,
            } => {
                let password = match (password, password_file) {
                    (Some(p), _) => Some(p.clone()),
                    (None, Some(f)) => Some(
                        std::fs::read_to_string(f)
                            .with_context(|| {
                                format!("reading the certificate password file {}", f.display())
                            })?
                            .trim_end_matches(['\n', '\r'])
                            .to_string(),
                    ),
                    (None, None) => None,
                };
                Credential::Certificate(Certificate::from_file(path, password.as_deref())?.into())
            }
        };
        let mut cfg = GraphConfig::new(&self.tenant_id, &self.client_id, credential);
        cfg.graph_url = self.graph_url.clone();
        cfg.login_url = self.login_url.clone();
        Ok(cfg)
    }

    /// A client for the tenant; it signs in on its first request.
    pub fn client(&self) -> anyhow::Result<GraphClient> {
        Ok(GraphClient::new(self.graph_config()?)?)
    }
}

/// A Graph client for the tenant `name` of the configuration file, or for the only one
/// when `name` is `None` (with several, `name` is required and the error lists them), or
/// for the tenant the flags describe when the file has none. Flags and `CAIRN_*` variables
/// (already in `flags`) override the file's values, a credential in them replaces the
/// file's credential.
pub fn resolve_tenant(
    cfg: &Config,
    name: Option<&str>,
    flags: &TenantFlags,
) -> anyhow::Result<GraphClient> {
    cfg.tenant(name, flags)?.client()
}

/// What a command that backs up (or restores) needs, resolved once from the file, the
/// environment and the flags.
#[derive(Debug)]
pub struct Settings {
    /// The configuration file these settings were read from (for messages).
    pub config_path: PathBuf,
    /// Repository location and password, for `Repo::open`.
    pub repo: RepoOptions,
    /// Repository location as given (for messages; `repo.location` is parsed).
    pub repository: String,
    /// Where the local catalog and spool live (not created here).
    pub cache_dir: PathBuf,
    /// The tenant's name in the configuration file (`None` when flags alone describe it).
    pub tenant_name: Option<String>,
    /// The tenant's directory id, as configured.
    pub tenant_id: String,
    /// A client for that tenant; it signs in on its first request.
    pub graph: GraphClient,
}

impl Settings {
    /// The tenant as the catalog and the repository name it: its name in the
    /// configuration file, else its directory id.
    pub fn tenant_key(&self) -> String {
        self.tenant_name
            .clone()
            .unwrap_or_else(|| self.tenant_id.clone())
    }

    /// Reads the configuration file (`config`: the global `--config`, `None` for the
    /// default) and resolves the repository (`repo`), the tenant (`tenant.tenant`, or the
    /// file's only one) and the cache directory (`cache_dir` flag, if the command has one).
    pub fn resolve(
        config: Option<&Path>,
        repo: &RepoArgs,
        tenant: &TenantFlags,
        cache_dir: Option<&Path>,
    ) -> anyhow::Result<Settings> {
        let cfg = Config::load(config)?;
        let t = cfg.tenant(tenant.tenant.as_deref(), tenant)?;
        Ok(Settings {
            repository: cfg.repository(repo)?,
            repo: cfg.repo_options(repo)?,
            cache_dir: cfg.cache_dir(cache_dir)?,
            tenant_name: t.name.clone(),
            tenant_id: t.tenant_id.clone(),
            graph: t.client()?,
            config_path: cfg.path,
        })
    }
}

/// S3 credentials and region from the usual AWS variables: the repository library reads
/// no environment, the front end hands them over.
fn storage_credentials(o: &mut RepoOptions, lookup: Lookup) {
    o.s3_access_key_id = lookup(env::AWS_ACCESS_KEY_ID);
    o.s3_secret_access_key = lookup(env::AWS_SECRET_ACCESS_KEY);
    o.s3_region = lookup(env::AWS_DEFAULT_REGION).or_else(|| lookup(env::AWS_REGION));
}

/// `$XDG_CONFIG_HOME/cairn/config.toml`, else `$HOME/.config/cairn/config.toml`.
fn default_config_path(lookup: Lookup) -> anyhow::Result<PathBuf> {
    xdg_dir(env::XDG_CONFIG_HOME, ".config", lookup)
        .map(|d| d.join("cairn").join("config.toml"))
        .ok_or_else(|| {
            UserError::new("no configuration directory: neither XDG_CONFIG_HOME nor HOME is set")
                .hint(format!("give --config FILE or set {}", env::CAIRN_CONFIG))
                .into()
        })
}

/// An XDG base directory: the variable when it holds an absolute path (the specification
/// says to ignore relative ones), else `$HOME/<fallback>`.
fn xdg_dir(var: &str, fallback: &str, lookup: Lookup) -> Option<PathBuf> {
    lookup(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| lookup(env::HOME).map(|h| PathBuf::from(h).join(fallback)))
}

/// A path of the file: `~/` is the home, a relative path is relative to the file's directory
/// (as in Cargo's configuration), so the file means the same from any working directory.
fn resolve_path(base: &Path, p: &Path, lookup: Lookup) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = lookup(env::HOME)
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A repository location of the file: local paths resolved like other paths, URLs as they are.
fn resolve_location(base: &Path, location: &str, lookup: Lookup) -> String {
    if location.starts_with("s3:") {
        return location.to_string();
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    resolve_path(base, Path::new(path), lookup)
        .to_string_lossy()
        .into_owned()
}

/// A repository location as given on the command line, made absolute (local paths against
/// the working directory) so that it can be recorded in the configuration file.
pub fn absolute_location(location: &str) -> anyhow::Result<String> {
    if location.starts_with("s3:") {
        return Ok(location.to_string());
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    Ok(std::path::absolute(path)
        .with_context(|| format!("making {path} absolute"))?
        .to_string_lossy()
        .into_owned())
}

/// Changes the configuration file with `edit`, keeping its comments and layout: creates it
/// (and its directory) when absent, refuses a result that would not load, and replaces the
/// file atomically.
pub fn edit_file(
    path: &Path,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let (text, header) = match std::fs::read_to_string(path) {
        Ok(t) => (t, ""),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            String::new(),
            "# Cairn configuration: every key is described in docs/configuration.md.\n\n",
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("reading the configuration file {}", path.display()));
        }
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        UserError::new(format!(
            "the configuration file {} is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    edit(&mut doc)?;
    let out = format!("{header}{doc}");
    Config::parse(path, &out, &process_env).context("the changed configuration would not load")?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, out).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// A path for the configuration file: absolute, as text.
pub fn path_value(p: &Path) -> anyhow::Result<String> {
    let abs = std::path::absolute(p).with_context(|| format!("making {} absolute", p.display()))?;
    abs.to_str().map(str::to_string).ok_or_else(|| {
        UserError::new(format!("{} is not valid UTF-8", abs.display()))
            .hint("TOML holds only UTF-8 text: move the file to a path that is")
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse(
            Path::new("/etc/cairn/config.toml"),
            text,
            &lookup(&[("HOME", "/home/ann")]),
        )
    }

    const TWO: &str = r#"
repository = "repo"
password-file = "~/pw"
cache-dir = "/var/cache/cairn"

[tenants.contoso]
tenant-id = "contoso-id"
client-id = "contoso-app"
client-secret-file = "secrets/contoso"

[tenants.fabrikam]
tenant-id = "fabrikam-id"
client-id = "fabrikam-app"
certificate = "/certs/fabrikam.pfx"
certificate-password-file = "certs/pw"
graph-url = "http://127.0.0.1:9/"
"#;

    fn repo_args(repo: Option<&str>, pw: Option<&str>) -> RepoArgs {
        RepoArgs {
            repository: repo.map(str::to_string),
            password_file: pw.map(PathBuf::from),
        }
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let cfg = parse(TWO).unwrap();
        let f = cfg.file();
        assert_eq!(f.repository.as_deref(), Some("/etc/cairn/repo"));
        assert_eq!(f.password_file.as_deref(), Some(Path::new("/home/ann/pw")));
        let c = &f.tenants["contoso"];
        assert_eq!(
            c.client_secret_file.as_deref(),
            Some(Path::new("/etc/cairn/secrets/contoso"))
        );
        let fab = &f.tenants["fabrikam"];
        assert_eq!(
            fab.certificate.as_deref(),
            Some(Path::new("/certs/fabrikam.pfx"))
        );
        assert_eq!(
            fab.certificate_password_file.as_deref(),
            Some(Path::new("/etc/cairn/certs/pw"))
        );
        let s3 = parse(r#"repository = "s3:https://h/b/p""#).unwrap();
        assert_eq!(s3.file().repository.as_deref(), Some("s3:https://h/b/p"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name_and_the_file() {
        let err = parse("repository = \"/r\"\npasword-file = \"/p\"\n").unwrap_err();
        let u = err.downcast_ref::<UserError>().expect("a user error");
        let msg = u.to_string();
        assert!(msg.contains("pasword-file"), "{msg}");
        assert!(msg.contains("/etc/cairn/config.toml"), "{msg}");
        assert!(u.hint_text().unwrap().contains("docs/configuration.md"));
        let err =
            parse("[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret = \"x\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("client-secret"), "{err}");
        // snake_case is not the spelling.
        assert!(parse("cache_dir = \"/c\"").is_err());
    }

    #[test]
    fn a_tenant_needs_exactly_one_credential() {
        let none = parse("[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\n").unwrap_err();
        assert!(none.to_string().contains("tenant a"), "{none}");
        let both = parse(
            "[tenants.a]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret-file = \"s\"\ncertificate = \"c.pem\"\n",
        )
        .unwrap_err();
        assert!(both.to_string().contains("both"), "{both}");
    }

    #[test]
    fn repository_flag_or_env_over_file_and_an_error_when_nowhere() {
        let cfg = parse(TWO).unwrap();
        assert_eq!(
            cfg.repository(&repo_args(None, None)).unwrap(),
            "/etc/cairn/repo"
        );
        assert_eq!(cfg.repository(&repo_args(Some("/x"), None)).unwrap(), "/x");
        let empty = parse("").unwrap();
        let err = empty.repository(&repo_args(None, None)).unwrap_err();
        let u = err.downcast_ref::<UserError>().unwrap();
        assert!(u.hint_text().unwrap().contains("cairn init --repo"));
        assert!(u.to_string().contains("/etc/cairn/config.toml"));
    }

    #[test]
    fn password_file_flag_then_env_password_then_file_then_prompt() {
        let cfg = parse(TWO).unwrap();
        let env_pw = lookup(&[("CAIRN_PASSWORD", "from-env")]);
        let none = lookup(&[]);
        let src = |args: &RepoArgs, l: Lookup| match cfg.password_source(args, l) {
            PasswordSource::File(f) => format!("file {}", f.display()),
            PasswordSource::Value(v) => format!("value {v}"),
            PasswordSource::Prompt => "prompt".into(),
        };
        assert_eq!(src(&repo_args(None, Some("/f")), &env_pw), "file /f");
        assert_eq!(src(&repo_args(None, None), &env_pw), "value from-env");
        assert_eq!(src(&repo_args(None, None), &none), "file /home/ann/pw");
        let empty = parse("").unwrap();
        assert!(matches!(
            empty.password_source(&repo_args(None, None), &none),
            PasswordSource::Prompt
        ));
    }

    #[test]
    fn cache_dir_flag_env_file_xdg_home() {
        let cfg = parse(TWO).unwrap();
        let empty = parse("").unwrap();
        let all = lookup(&[
            ("CAIRN_CACHE_DIR", "/env-cache"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/ann"),
        ]);
        let at = |c: &Config, flag: Option<&str>, l: Lookup| {
            c.cache_dir_with(flag.map(Path::new), l).unwrap()
        };
        assert_eq!(at(&cfg, Some("/flag"), &all), Path::new("/flag"));
        assert_eq!(at(&cfg, None, &all), Path::new("/env-cache"));
        assert_eq!(
            at(&cfg, None, &lookup(&[("XDG_CACHE_HOME", "/xdg")])),
            Path::new("/var/cache/cairn")
        );
        assert_eq!(
            at(
                &empty,
                None,
                &lookup(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/h")])
            ),
            Path::new("/xdg/cairn")
        );
        // A relative XDG variable is ignored, as the specification says.
        assert_eq!(
            at(
                &empty,
                None,
                &lookup(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/h")])
            ),
            Path::new("/h/.cache/cairn")
        );
        assert!(empty.cache_dir_with(None, &lookup(&[])).is_err());
    }

    #[test]
    fn default_config_path_follows_xdg() {
        assert_eq!(
            default_config_path(&lookup(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            Path::new("/x/cairn/config.toml")
        );
        assert_eq!(
            default_config_path(&lookup(&[("HOME", "/h")])).unwrap(),
            Path::new("/h/.config/cairn/config.toml")
        );
        assert!(default_config_path(&lookup(&[])).is_err());
    }

    fn flags() -> TenantFlags {
        TenantFlags::default()
    }

    fn credential(t: &ResolvedTenant) -> String {
        match &t.credential {
            CredentialSource::Secret(_) => "secret".into(),
            CredentialSource::SecretFile(f) => format!("secret file {}", f.display()),
            CredentialSource::Certificate {
                path,
                password_file,
                ..
            } => format!(
                "certificate {} {}",
                path.display(),
                password_file.as_deref().unwrap_or(Path::new("-")).display()
            ),
        }
    }

    #[test]
    fn the_only_tenant_is_the_default_and_several_need_a_name() {
        let one = parse(
            "[tenants.solo]\ntenant-id = \"t\"\nclient-id = \"c\"\nclient-secret-file = \"/s\"\n",
        )
        .unwrap();
        let t = one.tenant(None, &flags()).unwrap();
        assert_eq!(t.name.as_deref(), Some("solo"));
        assert_eq!(t.graph_url, DEFAULT_GRAPH_URL);
        assert_eq!(t.login_url, DEFAULT_LOGIN_URL);
        let two = parse(TWO).unwrap();
        let err = two.tenant(None, &flags()).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("contoso, fabrikam"), "{msg}");
        let hint = err
            .downcast_ref::<UserError>()
            .unwrap()
            .hint_text()
            .unwrap()
            .to_string();
        assert!(hint.contains("--tenant NAME"), "{hint}");
        let fab = two.tenant(Some("fabrikam"), &flags()).unwrap();
        assert_eq!(fab.tenant_id, "fabrikam-id");
        assert_eq!(fab.graph_url, "http://127.0.0.1:9/");
        assert_eq!(
            credential(&fab),
            "certificate /certs/fabrikam.pfx /etc/cairn/certs/pw"
        );
        let unknown = two
            .tenant(Some("northwind"), &flags())
            .err()
            .unwrap()
            .to_string();
        assert!(
            unknown.contains("northwind") && unknown.contains("contoso, fabrikam"),
            "{unknown}"
        );
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let two = parse(TWO).unwrap();
        let f = TenantFlags {
            client_id: Some("other-app".into()),
            login_url: Some("http://login.test".into()),
            ..flags()
        };
        let t = two.tenant(Some("contoso"), &f).unwrap();
        assert_eq!(t.tenant_id, "contoso-id", "not overridden: from the file");
        assert_eq!(t.client_id, "other-app");
        assert_eq!(t.login_url, "http://login.test");
        assert_eq!(credential(&t), "secret file /etc/cairn/secrets/contoso");
        // A secret from the environment replaces the file's credential.
        let s = TenantFlags {
            client_secret: Some("s".into()),
            ..flags()
        };
        assert_eq!(
            credential(&two.tenant(Some("contoso"), &s).unwrap()),
            "secret"
        );
        // Two credentials in the flags are refused.
        let both = TenantFlags {
            client_secret: Some("s".into()),
            certificate: Some("/c.pem".into()),
            ..flags()
        };
        assert!(two.tenant(Some("contoso"), &both).is_err());
    }

    #[test]
    fn flags_alone_describe_a_tenant() {
        let f = TenantFlags {
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            ..flags()
        };
        let t = parse("").unwrap().tenant(None, &f).unwrap();
        assert_eq!((t.name, t.tenant_id.as_str()), (None, "t"));
        // With several tenants in the file, complete flags need no name.
        let t = parse(TWO).unwrap().tenant(None, &f).unwrap();
        assert_eq!(t.name, None);
        assert_eq!(t.client_id, "c");
        let err = parse("").unwrap().tenant(None, &flags()).err().unwrap();
        let hint = err
            .downcast_ref::<UserError>()
            .unwrap()
            .hint_text()
            .unwrap()
            .to_string();
        assert!(hint.contains("cairn tenant add"), "{hint}");
    }
}
