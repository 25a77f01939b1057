//! `cairn-config`: the configuration file, and how it combines with the environment and
//! explicit overrides (command-line flags, an API request) into plain settings.
//!
//! A scheduled backup should need no flags at all: the file says where the repository is,
//! which tenants there are and where their credentials live; `CAIRN_*` variables override it
//! (for containers and CI), and overrides win over both. Secrets are never written to the
//! file, only the paths of files that hold them. Every key is documented in
//! docs/configuration.md.
//!
//! No clap and no terminal here: the environment is a value the caller passes
//! ([`Environment`]), and where the repository password comes from is a
//! [`PasswordSource`] the caller acts on (the command line prompts; a server refuses to).

mod detection;
pub mod env;
pub use detection::Thresholds;
mod file;
mod tenant;

pub use env::Environment;
pub use file::{absolute_location, edit_file, path_value};
pub use tenant::{CredentialSource, GLOBAL_CONCURRENCY, ResolvedTenant, TenantOverrides};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The user's to fix: a bad configuration file, a missing setting, an unknown tenant.
    #[error("{message}")]
    User {
        message: String,
        hint: Option<String>,
    },
    /// A file the settings name could not be read.
    #[error("reading the {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration file could not be written.
    #[error("{doing} {}: {source}", path.display())]
    Write {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Graph(#[from] cairn_graph::GraphError),
    #[error(transparent)]
    Repo(#[from] cairn_repo::RepoError),
}

impl ConfigError {
    pub fn user(message: impl Into<String>) -> Self {
        ConfigError::User {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with a hint (only user errors carry one of their own).
    pub fn with_hint(self, h: impl Into<String>) -> Self {
        match self {
            ConfigError::User { message, .. } => ConfigError::User {
                message,
                hint: Some(h.into()),
            },
            other => other,
        }
    }

    /// The user's to fix (exit 2), not an outage or a bug.
    pub fn is_user_error(&self) -> bool {
        match self {
            ConfigError::User { .. } => true,
            // A credential or password file that is not there is a mistake in the settings.
            ConfigError::Read { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            ConfigError::Write { .. } => false,
            ConfigError::Graph(g) => matches!(
                g,
                cairn_graph::GraphError::Auth { .. } | cairn_graph::GraphError::Config(_)
            ),
            ConfigError::Repo(r) => r.is_user_error(),
        }
    }

    /// What to do next.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::User { hint, .. } => hint.clone(),
            ConfigError::Read { .. } => {
                Some("check the path in the configuration file or the flag that names it".into())
            }
            ConfigError::Write { .. } => None,
            ConfigError::Graph(g) => g.hint().map(str::to_string),
            ConfigError::Repo(r) => r.hint().map(str::to_string),
        }
    }
}

pub type Result<T> = std::result::Result<T, ConfigError>;

/// A service URL as the file gives it (a catalog, a NATS server); its password never
/// shows in `Debug`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(pub String);

/// The catalog's URL.
pub type CatalogUrl = SecretUrl;

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `scheme://user:password@host…`: everything between the first `:` after the
        // scheme and the `@` goes. NATS takes a lone `token@`: it goes whole.
        let s = &self.0;
        let shown = match (s.find("://"), s.rfind('@')) {
            (Some(i), Some(at)) if at > i => match s[i + 3..at].find(':') {
                Some(c) => format!("{}:***{}", &s[..i + 3 + c], &s[at..]),
                None if s.starts_with("nats") || s.starts_with("tls") => {
                    format!("{}***{}", &s[..i + 3], &s[at..])
                }
                None => s.clone(),
            },
            _ => s.clone(),
        };
        let shown = match shown.find("password=") {
            Some(p) => {
                let end = shown[p..].find('&').map(|e| p + e).unwrap_or(shown.len());
                format!("{}password=***{}", &shown[..p], &shown[end..])
            }
            None => shown,
        };
        write!(f, "{shown:?}")
    }
}

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
    /// A shared catalog instead of this machine's: `postgres://user@host:port/db?schema=NAME`.
    pub catalog: Option<CatalogUrl>,
    /// NATS JetStream server that backups are handed to as per-resource tasks for `cairn
    /// worker`s (`nats://host:4222`, `?queue=NAME` to keep several installations apart);
    /// unset: backups run in the process that starts them.
    pub nats: Option<SecretUrl>,
    /// Tenants by the name commands know them by (`--tenant NAME`).
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantEntry>,
    /// Backup jobs `cairn serve` runs on their schedules (`[jobs.NAME]`).
    #[serde(default)]
    pub jobs: BTreeMap<String, JobEntry>,
    /// `cairn serve`'s own settings (`[server]`).
    pub server: Option<ServerEntry>,
    /// Ransomware and mass-change detection thresholds (`[detection]`).
    #[serde(default)]
    pub detection: Thresholds,
}

/// One `[jobs.NAME]` table: what to back up, when, and how long to keep it. Scope keys are
/// named like `cairn backup`'s flags, retention keys like `cairn forget`'s.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobEntry {
    /// A tenant of `[tenants]`.
    pub tenant: String,
    /// Five-field cron expression (`30 2 * * *`), in `timezone`.
    pub schedule: Option<String>,
    /// Or an interval: `10m`, `6h`, `1d`.
    pub every: Option<String>,
    /// IANA time zone of `schedule` [default: UTC].
    pub timezone: Option<String>,
    /// `all`, `none` or user principal names (comma-separated) [default: all].
    pub users: Option<String>,
    /// `all`, `none` or group names [default: all].
    pub groups: Option<String>,
    /// `all`, `none` or site URLs [default: all].
    pub sites: Option<String>,
    /// mail, calendar, contacts, onedrive, sharepoint, teams [default: all].
    pub services: Option<Vec<String>>,
    /// Resources left out; `*` matches any run of characters.
    #[serde(default)]
    pub exclude: Vec<String>,
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within_days: Option<u32>,
    /// A restore drill: the share of the items of each of the job's latest restore points
    /// read back and compared with the catalog (`5%`), as `cairn verify --sample` [default:
    /// no drill].
    pub verify: Option<String>,
    /// When the drill runs: a cron expression (in `timezone`) or an interval (`7d`)
    /// [default: after each succeeded run of the job].
    pub verify_schedule: Option<String>,
    /// Item-level retention after each succeeded run, as `cairn forget --keep-items`: every
    /// item of the job's resources is kept this long from its date (`7y`, `18m`, `90d`,
    /// `2w`) and removed from the restore points holding it after [default: keep every
    /// item as long as its restore points].
    pub keep_items: Option<String>,
    /// The date `keep-items` counts from: `modified` (received for mail) or `deleted` (in
    /// Microsoft 365) [default: modified].
    pub items_from: Option<String>,
    /// Also keep each mailbox item's full-fidelity stream (the mailbox export API), as
    /// `cairn backup --full-fidelity` [default: false].
    pub full_fidelity: Option<bool>,
    /// [default: true]
    pub enabled: Option<bool>,
    /// Where this job's alerts go, instead of `[server.alerts]`.
    pub alerts: Option<AlertsEntry>,
}

impl JobEntry {
    /// The share of items the job's restore drill reads back, in percent; `None` when the
    /// job has no `verify`. An error names the job (`job`: its name, and where it is
    /// defined) when `verify` is not a share, or when `verify-schedule` comes without it.
    pub fn verify_percent(&self, job: &str) -> Result<Option<f64>> {
        let Some(v) = &self.verify else {
            if let Some(s) = &self.verify_schedule {
                return Err(ConfigError::user(format!(
                    "job {job} has verify-schedule = {s:?} but no verify"
                ))
                .with_hint(
                    "add verify = \"5%\" (the share of items the restore drill reads back), or remove verify-schedule",
                ));
            }
            return Ok(None);
        };
        parse_share(v).map(Some).ok_or_else(|| {
            ConfigError::user(format!(
                "job {job}: verify = {v:?} is not a share of the items"
            ))
            .with_hint("write a percentage above 0% and at most 100%, e.g. verify = \"5%\"")
        })
    }
}

impl JobEntry {
    /// The job's item-level retention: how many days items are kept and from which date;
    /// `None` without `keep-items`. An error names the job (`job`: its name, and where it
    /// is defined) when `keep-items` is not a span or `items-from` not a date of items, or
    /// when `items-from` comes without `keep-items`.
    pub fn item_retention(&self, job: &str) -> Result<Option<(i64, ItemsFrom)>> {
        let from = match &self.items_from {
            None => ItemsFrom::Modified,
            Some(f) => ItemsFrom::parse(f).ok_or_else(|| {
                ConfigError::user(format!(
                    "job {job}: items-from = {f:?} is not a date of items"
                ))
                .with_hint("write items-from = \"modified\" (received for mail) or \"deleted\" (in Microsoft 365)")
            })?,
        };
        let Some(k) = &self.keep_items else {
            if let Some(f) = &self.items_from {
                return Err(ConfigError::user(format!(
                    "job {job} has items-from = {f:?} but no keep-items"
                ))
                .with_hint(
                    "add keep-items = \"7y\" (how long each item is kept), or remove items-from",
                ));
            }
            return Ok(None);
        };
        let days = span_days(k).ok_or_else(|| {
            ConfigError::user(format!(
                "job {job}: keep-items = {k:?} is not a retention span"
            ))
            .with_hint("write a number and a unit: \"7y\", \"18m\" (months), \"90d\", \"2w\"")
        })?;
        Ok(Some((days, from)))
    }
}

/// The date an item's retention counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemsFrom {
    /// Received (mail), start (events), else last modified.
    Modified,
    /// Deleted in Microsoft 365 (first seen missing by a backup).
    Deleted,
}

impl ItemsFrom {
    /// `modified` (or `received`) and `deleted`, in any case.
    pub fn parse(s: &str) -> Option<ItemsFrom> {
        match s.trim().to_ascii_lowercase().as_str() {
            "modified" | "received" => Some(ItemsFrom::Modified),
            "deleted" => Some(ItemsFrom::Deleted),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemsFrom::Modified => "modified",
            ItemsFrom::Deleted => "deleted",
        }
    }
}

/// A retention span in days: `7y` (a year is 365¼ days, rounded down), `18m` (a month
/// 30 5⁄12 days), `2w`, `90d`; `None` unless a positive whole number and one of the units.
/// The one reader of spans: `cairn forget --keep-items` and `[jobs.NAME] keep-items`.
pub fn span_days(s: &str) -> Option<i64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    if n <= 0 || n > 100_000 {
        return None;
    }
    Some(match unit.to_ascii_lowercase() {
        'y' => n * 365 + n / 4,
        'm' => n * 30 + n * 5 / 12,
        'w' => n * 7,
        'd' => n,
        _ => return None,
    })
}

/// A share of items as written in `verify`: `5%`, `0.5%`, `100%`, in percent; `None` unless
/// it ends in `%` and lies above 0 and at most 100.
pub fn parse_share(s: &str) -> Option<f64> {
    let p: f64 = s.trim().strip_suffix('%')?.trim_end().parse().ok()?;
    (p > 0.0 && p <= 100.0).then_some(p)
}

/// `[server]`: the listener, state kept by the server, alerts.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerEntry {
    /// Address to listen on [default: 127.0.0.1:8470].
    pub listen: Option<String>,
    /// How long a filed request for a destructive action waits for a second admin, in
    /// hours [default: 72].
    pub approval_hours: Option<u32>,
    /// Where alerts go for jobs that name none.
    pub alerts: Option<AlertsEntry>,
    /// Send a summary of the last day's runs to `alerts` every day at this time (UTC,
    /// `HH:MM`).
    pub daily_summary: Option<String>,
    /// Where people reach the server (`https://cairn.example.com`): the portal's sign-in
    /// redirect URI is `{public-url}/auth/callback`, and cookies are `Secure` when it is
    /// `https` (docs/portal.md).
    pub public_url: Option<String>,
    /// `[server.portal]`: who gets which role when signing in to the portal.
    pub portal: Option<PortalEntry>,
}

/// `[server.portal]`: roles of people signing in through Microsoft Entra ID beside the app
/// roles of their ID token (docs/portal.md).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PortalEntry {
    /// Group object id → role (`admin`, `backup-operator`, `restore-operator`,
    /// `auditor`), from the ID token's `groups` claim.
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, String>,
}

/// Where alerts go: a webhook, e-mail, or both.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertsEntry {
    /// URL the alert is POSTed to as JSON.
    pub webhook_url: Option<String>,
    /// File holding the key of the `X-Cairn-Signature` HMAC-SHA256 header.
    #[schema(value_type = Option<String>)]
    pub webhook_secret_file: Option<PathBuf>,
    /// SMTP server: `smtp://host:port` (STARTTLS when offered), `smtps://host:port`
    /// (TLS), or `smtp+plain://host:port` (no TLS: a relay on localhost only).
    pub smtp_url: Option<String>,
    pub smtp_username: Option<String>,
    /// File holding the SMTP password.
    #[schema(value_type = Option<String>)]
    pub smtp_password_file: Option<PathBuf>,
    /// Sender address.
    pub email_from: Option<String>,
    /// Recipients.
    #[serde(default)]
    pub email_to: Vec<String>,
}

/// One `[tenants.NAME]` table: how to reach and sign in to a tenant. It holds no secret,
/// only the paths of files that do.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TenantEntry {
    pub tenant_id: String,
    /// The backup app: read permissions only (docs/entra-app.md).
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    pub certificate_password_file: Option<PathBuf>,
    pub graph_url: Option<String>,
    pub login_url: Option<String>,
    /// The restore app: write permissions, used by restores only (backups never load
    /// its credential). Without it, restores use the backup app.
    pub restore_client_id: Option<String>,
    pub restore_client_secret_file: Option<PathBuf>,
    pub restore_certificate: Option<PathBuf>,
    pub restore_certificate_password_file: Option<PathBuf>,
    /// The portal app (docs/portal.md): people sign in to `cairn serve` with it (OpenID
    /// Connect, authorization code with PKCE). Its client id …
    pub portal_client_id: Option<String>,
    /// … and the file holding its client secret.
    pub portal_client_secret_file: Option<PathBuf>,
    /// Whether Cairn may call Graph's beta endpoint for what v1.0 cannot do: restoring
    /// Teams messages into an existing channel or chat (`startMigration`). Beta calls may
    /// change without notice, so this is off unless asked for.
    #[serde(default)]
    pub beta: bool,
    /// The tenant's SharePoint/OneDrive budget in resource units per minute, which
    /// Microsoft sets by licence count (1,250 up to 1,000 licences, 2,500 up to 5,000, …)
    /// [default: 1250].
    pub files_ru_per_min: Option<u32>,
}

/// Where the repository is and how to unlock it, given explicitly (flags, a request);
/// unset fields fall back to the environment, then the file.
#[derive(Clone, Debug, Default)]
pub struct RepoOverrides {
    pub repository: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Where the local catalog and spool live.
    pub cache_dir: Option<PathBuf>,
    /// A shared catalog (`postgres://…`) instead of the local one.
    pub catalog: Option<String>,
    /// Backups as tasks for workers through this NATS server (`nats://…`).
    pub nats: Option<String>,
}

/// The configuration file, read (an absent file reads as empty), with relative paths
/// already made relative to the file's directory, and the environment it is resolved with.
pub struct Config {
    path: PathBuf,
    exists: bool,
    file: FileConfig,
    env: Environment,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// Where the repository password comes from, by precedence. The caller acts on it: reads
/// it ([`PasswordSource::read`]), or prompts for [`PasswordSource::Prompt`] where a person
/// is there to answer. (No `Debug`: it may hold the password.)
pub enum PasswordSource {
    File(PathBuf),
    Value(String),
    /// Nothing configured it.
    Prompt,
}

impl PasswordSource {
    /// The password, `None` for [`PasswordSource::Prompt`].
    pub fn read(&self) -> Result<Option<String>> {
        match self {
            PasswordSource::File(f) => {
                let p = std::fs::read_to_string(f).map_err(|source| ConfigError::Read {
                    what: "password file",
                    path: f.clone(),
                    source,
                })?;
                Ok(Some(p.trim_end_matches(['\n', '\r']).to_string()))
            }
            PasswordSource::Value(p) => Ok(Some(p.clone())),
            PasswordSource::Prompt => Ok(None),
        }
    }
}

/// The repository's settings after precedence: what a workspace is built from.
pub struct RepoSettings {
    /// The configuration file these settings were read from (for messages).
    pub config_path: PathBuf,
    /// Repository location as given (for messages and the local state's key).
    pub repository: String,
    /// Where the local catalog and spool live (not created here).
    pub cache_dir: PathBuf,
    /// A shared catalog (`postgres://…`); `None`: the local one under `cache_dir`.
    pub catalog: Option<String>,
    /// Backups go to workers through this NATS JetStream server; `None`: run here.
    pub nats: Option<String>,
    pub password: PasswordSource,
    /// S3 credentials and region (from `AWS_*`), handed to the repository explicitly.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
    pub s3_region: Option<String>,
}

impl RepoSettings {
    /// Location, credentials and `password`, ready for `Repo::open`/`Repo::init`.
    pub fn repo_options(&self, password: &str) -> Result<cairn_repo::RepoOptions> {
        let mut o = cairn_repo::RepoOptions::new(&self.repository, password)?;
        o.s3_access_key_id = self.s3_access_key_id.clone();
        o.s3_secret_access_key = self.s3_secret_access_key.clone();
        o.s3_region = self.s3_region.clone();
        Ok(o)
    }

    /// The hint for a missing password.
    pub fn no_password(&self) -> ConfigError {
        ConfigError::user("no repository password").with_hint(format!(
            "set {} or {}, or password-file in {}",
            env::CAIRN_PASSWORD_FILE,
            env::CAIRN_PASSWORD,
            self.config_path.display()
        ))
    }
}

impl Config {
    /// Reads the configuration file: `explicit` (from `--config`), else `CAIRN_CONFIG`, else
    /// `$XDG_CONFIG_HOME/cairn/config.toml`, else `$HOME/.config/cairn/config.toml`. A file
    /// that does not exist is an empty configuration; one with an unknown key or a bad value
    /// is an error naming both.
    pub fn load(explicit: Option<&Path>, env: Environment) -> Result<Config> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match env.get(env::CAIRN_CONFIG) {
                Some(p) => PathBuf::from(p),
                None => default_config_path(&env)?,
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::parse(&path, &text, env),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config {
                path,
                exists: false,
                file: FileConfig::default(),
                env,
            }),
            Err(source) => Err(ConfigError::Read {
                what: "configuration file",
                path,
                source,
            }),
        }
    }

    pub(crate) fn parse(path: &Path, text: &str, env: Environment) -> Result<Config> {
        let mut file: FileConfig = toml_edit::de::from_str(text).map_err(|e| {
            ConfigError::user(format!(
                "the configuration file {} is not valid: {}",
                path.display(),
                e.to_string().trim_end()
            ))
            .with_hint("every key is described in docs/configuration.md (keys are kebab-case)")
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| *p = resolve_path(base, p, &env);
        file.password_file.as_mut().map(resolve);
        file.cache_dir.as_mut().map(resolve);
        if let Some(repo) = &mut file.repository {
            *repo = resolve_location(base, repo, &env);
        }
        for (name, t) in &mut file.tenants {
            let where_ = || format!("tenant {name} in {}", path.display());
            match (&t.client_secret_file, &t.certificate) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::user(format!(
                        "{} has both client-secret-file and certificate",
                        where_()
                    ))
                    .with_hint("keep one credential per tenant"));
                }
                (None, None) => {
                    return Err(ConfigError::user(format!("{} has no credential", where_()))
                        .with_hint("add client-secret-file or certificate (secrets themselves never go into the file)"));
                }
                _ => {}
            }
            if t.certificate_password_file.is_some() && t.certificate.is_none() {
                return Err(ConfigError::user(format!(
                    "{} has certificate-password-file without certificate",
                    where_()
                )));
            }
            t.client_secret_file.as_mut().map(resolve);
            t.certificate.as_mut().map(resolve);
            t.certificate_password_file.as_mut().map(resolve);
            let restore_credentials = [&t.restore_client_secret_file, &t.restore_certificate]
                .iter()
                .filter(|c| c.is_some())
                .count();
            match (&t.restore_client_id, restore_credentials) {
                (None, 0) => {}
                (Some(_), 1) => {}
                (None, _) => {
                    return Err(ConfigError::user(format!(
                        "{} has a restore credential without restore-client-id",
                        where_()
                    ))
                    .with_hint(
                        "add restore-client-id, the restore app's application (client) id",
                    ));
                }
                (Some(_), _) => {
                    return Err(ConfigError::user(format!(
                        "{} needs exactly one restore credential",
                        where_()
                    ))
                    .with_hint("restore-client-secret-file or restore-certificate"));
                }
            }
            t.restore_client_secret_file.as_mut().map(resolve);
            t.restore_certificate.as_mut().map(resolve);
            t.restore_certificate_password_file.as_mut().map(resolve);
            if t.portal_client_id.is_some() != t.portal_client_secret_file.is_some() {
                return Err(ConfigError::user(format!(
                    "{} needs both portal-client-id and portal-client-secret-file, or neither",
                    where_()
                ))
                .with_hint("the portal app's application (client) id and the file of its client secret (docs/portal.md)"));
            }
            t.portal_client_secret_file.as_mut().map(resolve);
        }
        for (name, job) in &file.jobs {
            let named = format!("{name} in {}", path.display());
            job.verify_percent(&named)?;
            job.item_retention(&named)?;
        }
        let alerts = file
            .server
            .iter_mut()
            .filter_map(|s| s.alerts.as_mut())
            .chain(file.jobs.values_mut().filter_map(|j| j.alerts.as_mut()));
        for a in alerts {
            a.webhook_secret_file.as_mut().map(resolve);
            a.smtp_password_file.as_mut().map(resolve);
        }
        Ok(Config {
            path: path.to_path_buf(),
            exists: true,
            file,
            env,
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

    /// The environment these settings are resolved with.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// The names of the configured tenants, sorted.
    pub fn tenant_names(&self) -> Vec<&str> {
        self.file.tenants.keys().map(String::as_str).collect()
    }

    /// The repository location: the override, else `CAIRN_REPOSITORY`, else the file's
    /// `repository`; an error with a hint when none says.
    pub fn repository(&self, o: &RepoOverrides) -> Result<String> {
        if let Some(r) = o
            .repository
            .clone()
            .or_else(|| self.env.get(env::CAIRN_REPOSITORY))
        {
            return Ok(r);
        }
        if let Some(r) = &self.file.repository {
            return Ok(r.clone());
        }
        let whence = if self.exists {
            format!("{} has no `repository`", self.path.display())
        } else {
            format!("there is no configuration file at {}", self.path.display())
        };
        Err(ConfigError::user(format!("no repository given ({whence})")).with_hint(format!(
            "give --repo, set {}, or run `cairn init --repo …` (which records it in the configuration file)",
            env::CAIRN_REPOSITORY
        )))
    }

    /// Where the repository password comes from: the override's password file, else
    /// `CAIRN_PASSWORD_FILE`, else `CAIRN_PASSWORD`, else the file's `password-file`, else
    /// nothing ([`PasswordSource::Prompt`]).
    pub fn password_source(&self, o: &RepoOverrides) -> PasswordSource {
        if let Some(f) = o
            .password_file
            .clone()
            .or_else(|| self.env.get(env::CAIRN_PASSWORD_FILE).map(PathBuf::from))
        {
            PasswordSource::File(f)
        } else if let Some(p) = self.env.get(env::CAIRN_PASSWORD) {
            PasswordSource::Value(p)
        } else if let Some(f) = &self.file.password_file {
            PasswordSource::File(f.clone())
        } else {
            PasswordSource::Prompt
        }
    }

    /// Where the local catalog and spool live: the override, else `CAIRN_CACHE_DIR`, else
    /// the file's `cache-dir`, else `$XDG_CACHE_HOME/cairn`, else `$HOME/.cache/cairn`. Not
    /// created here.
    pub fn cache_dir(&self, o: &RepoOverrides) -> Result<PathBuf> {
        if let Some(f) = &o.cache_dir {
            return Ok(f.clone());
        }
        if let Some(d) = self.env.get(env::CAIRN_CACHE_DIR) {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = &self.file.cache_dir {
            return Ok(d.clone());
        }
        xdg_dir(env::XDG_CACHE_HOME, ".cache", &self.env)
            .map(|d| d.join("cairn"))
            .ok_or_else(|| {
                ConfigError::user("no cache directory: neither XDG_CACHE_HOME nor HOME is set")
                    .with_hint(format!(
                        "set {} or cache-dir in {}",
                        env::CAIRN_CACHE_DIR,
                        self.path.display()
                    ))
            })
    }

    /// Repository location, password source, cache directory and storage credentials.
    pub fn repo_settings(&self, o: &RepoOverrides) -> Result<RepoSettings> {
        Ok(RepoSettings {
            config_path: self.path.clone(),
            repository: self.repository(o)?,
            cache_dir: self.cache_dir(o)?,
            catalog: o
                .catalog
                .clone()
                .or_else(|| self.env.get(env::CAIRN_CATALOG))
                .or_else(|| self.file.catalog.as_ref().map(|c| c.0.clone())),
            nats: o
                .nats
                .clone()
                .or_else(|| self.env.get(env::CAIRN_NATS))
                .or_else(|| self.file.nats.as_ref().map(|c| c.0.clone())),
            password: self.password_source(o),
            s3_access_key_id: self.env.get(env::AWS_ACCESS_KEY_ID),
            s3_secret_access_key: self.env.get(env::AWS_SECRET_ACCESS_KEY),
            s3_region: self
                .env
                .get(env::AWS_DEFAULT_REGION)
                .or_else(|| self.env.get(env::AWS_REGION)),
        })
    }
}

/// `$XDG_CONFIG_HOME/cairn/config.toml`, else `$HOME/.config/cairn/config.toml`.
fn default_config_path(env: &Environment) -> Result<PathBuf> {
    xdg_dir(env::XDG_CONFIG_HOME, ".config", env)
        .map(|d| d.join("cairn").join("config.toml"))
        .ok_or_else(|| {
            ConfigError::user("no configuration directory: neither XDG_CONFIG_HOME nor HOME is set")
                .with_hint(format!("give --config FILE or set {}", env::CAIRN_CONFIG))
        })
}

/// An XDG base directory: the variable when it holds an absolute path (the specification
/// says to ignore relative ones), else `$HOME/<fallback>`.
fn xdg_dir(var: &str, fallback: &str, env: &Environment) -> Option<PathBuf> {
    env.get(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env.get(env::HOME).map(|h| PathBuf::from(h).join(fallback)))
}

/// A path of the file: `~/` is the home, a relative path is relative to the file's directory
/// (as in Cargo's configuration), so the file means the same from any working directory.
fn resolve_path(base: &Path, p: &Path, env: &Environment) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = env.get(env::HOME)
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
fn resolve_location(base: &Path, location: &str, env: &Environment) -> String {
    if location.starts_with("s3:") {
        return location.to_string();
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    resolve_path(base, Path::new(path), env)
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests;
