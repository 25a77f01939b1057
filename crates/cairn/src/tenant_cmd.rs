//! `cairn tenant add|list|remove`: the tenants of the configuration file, so that backups
//! name a tenant instead of repeating its ids and credential paths. `add` signs in first:
//! a typo in an id or a stale secret is found when it is typed, not at 2 a.m.

use crate::config::{self, Config, CredentialSource, ResolvedTenant, TenantEntry, UserError};
use anyhow::Context;
use cairn_graph::client::{DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL};
use cairn_graph::{GraphError, RetryPolicy};
use clap::{ArgGroup, Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args)]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Sign in to a tenant and record it in the configuration file.
    Add(Box<AddArgs>),
    /// Sign in with the tenant's apps and report, per service, what backups and restores
    /// may do and which permission to grant.
    Check(CheckArgs),
    /// List the tenants of the configuration file (never their secrets).
    List(ListArgs),
    /// Remove a tenant from the configuration file.
    Remove(RemoveArgs),
}

#[derive(Args)]
#[command(group(ArgGroup::new("credential").required(true).args(["client_secret_file", "certificate"])))]
struct AddArgs {
    /// The name commands will know the tenant by (`--tenant NAME`): letters, digits, `-`,
    /// `_` and `.`.
    name: String,
    /// Directory (tenant) id or verified domain.
    #[arg(long)]
    tenant_id: String,
    /// Application (client) id of the app registration.
    #[arg(long)]
    client_id: String,
    /// File holding the client secret (the file's path is recorded, never the secret).
    #[arg(long)]
    client_secret_file: Option<PathBuf>,
    /// Certificate with its private key: PEM, or PKCS#12 (.pfx/.p12).
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// File holding the password of a .pfx certificate.
    #[arg(long, requires = "certificate")]
    certificate_password_file: Option<PathBuf>,
    /// Graph service root, without the version [default: https://graph.microsoft.com].
    #[arg(long)]
    graph_url: Option<String>,
    /// Identity (login) root [default: https://login.microsoftonline.com].
    #[arg(long)]
    login_url: Option<String>,
    /// The restore app's application (client) id: write permissions, used by restores
    /// only (docs/entra-app.md). Without one, restores use the backup app.
    #[arg(long, requires = "restore_credential")]
    restore_client_id: Option<String>,
    /// File holding the restore app's client secret.
    #[arg(long, group = "restore_credential", requires = "restore_client_id")]
    restore_client_secret_file: Option<PathBuf>,
    /// The restore app's certificate with its private key (PEM, or PKCS#12).
    #[arg(long, group = "restore_credential", requires = "restore_client_id")]
    restore_certificate: Option<PathBuf>,
    /// File holding the password of the restore app's .pfx certificate.
    #[arg(long, requires = "restore_certificate")]
    restore_certificate_password_file: Option<PathBuf>,
    /// Allow Graph's beta endpoint where v1.0 lacks a call (restoring Teams messages into
    /// an existing channel or chat); recorded as `beta = true`.
    #[arg(long)]
    beta: bool,
    /// The tenant's SharePoint/OneDrive budget, resource units per minute, when Microsoft
    /// gives it more than the smallest (1,250: up to 1,000 licences); recorded as
    /// `files-ru-per-min`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    files_ru_per_min: Option<u32>,
    /// Record the tenant without signing in.
    #[arg(long)]
    no_verify: bool,
    /// Replace a tenant of the same name.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// The tenant's name.
    name: String,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RemoveArgs {
    /// The tenant's name.
    name: String,
}

pub fn run(args: TenantArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = config::load(config)?;
    match args.command {
        TenantCommand::Add(a) => add(*a, &cfg),
        TenantCommand::Check(a) => check(a, &cfg),
        TenantCommand::List(a) => list(a, &cfg),
        TenantCommand::Remove(a) => remove(a, &cfg),
    }
}

fn add(a: AddArgs, cfg: &Config) -> anyhow::Result<()> {
    if a.name.is_empty()
        || !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(UserError::new(format!("{:?} is not a tenant name", a.name))
            .hint("use letters, digits, `-`, `_` and `.`, e.g. contoso or contoso-prod")
            .into());
    }
    if cfg.file().tenants.contains_key(&a.name) && !a.force {
        return Err(UserError::new(format!(
            "tenant {} is already in {}",
            a.name,
            cfg.path().display()
        ))
        .hint(format!(
            "--force replaces it; `cairn tenant remove {}` removes it",
            a.name
        ))
        .into());
    }
    let absolute = |p: &Option<PathBuf>| p.as_deref().map(config::path_value).transpose();
    let entry = TenantEntry {
        tenant_id: a.tenant_id.clone(),
        client_id: a.client_id.clone(),
        client_secret_file: absolute(&a.client_secret_file)?.map(PathBuf::from),
        certificate: absolute(&a.certificate)?.map(PathBuf::from),
        certificate_password_file: absolute(&a.certificate_password_file)?.map(PathBuf::from),
        graph_url: a.graph_url.clone(),
        login_url: a.login_url.clone(),
        restore_client_id: a.restore_client_id.clone(),
        restore_client_secret_file: absolute(&a.restore_client_secret_file)?.map(PathBuf::from),
        restore_certificate: absolute(&a.restore_certificate)?.map(PathBuf::from),
        restore_certificate_password_file: absolute(&a.restore_certificate_password_file)?
            .map(PathBuf::from),
        portal_client_id: None,
        portal_client_secret_file: None,
        beta: a.beta,
        files_ru_per_min: a.files_ru_per_min,
    };
    let tenant = ResolvedTenant {
        beta: entry.beta,
        files_ru_per_min: entry.files_ru_per_min,
        name: Some(a.name.clone()),
        tenant_id: entry.tenant_id.clone(),
        client_id: entry.client_id.clone(),
        credential: match (&entry.client_secret_file, &entry.certificate) {
            (Some(f), _) => CredentialSource::SecretFile(f.clone()),
            (None, Some(c)) => CredentialSource::Certificate {
                path: c.clone(),
                password: None,
                password_file: entry.certificate_password_file.clone(),
            },
            (None, None) => unreachable!("clap requires a credential"),
        },
        graph_url: entry
            .graph_url
            .clone()
            .unwrap_or_else(|| DEFAULT_GRAPH_URL.into()),
        login_url: entry
            .login_url
            .clone()
            .unwrap_or_else(|| DEFAULT_LOGIN_URL.into()),
        restore: entry.restore_client_id.clone().map(|id| {
            let c = match (
                &entry.restore_client_secret_file,
                &entry.restore_certificate,
            ) {
                (Some(f), _) => CredentialSource::SecretFile(f.clone()),
                (None, _) => CredentialSource::Certificate {
                    path: entry.restore_certificate.clone().unwrap_or_default(),
                    password: None,
                    password_file: entry.restore_certificate_password_file.clone(),
                },
            };
            (id, c)
        }),
    };
    // Read the credential (and check the URLs) even without --no-verify: what is recorded
    // must at least be usable.
    let mut graph_cfg = tenant
        .graph_config()
        .with_context(|| format!("tenant {} was not added", a.name))?;
    if a.no_verify {
        cairn_graph::GraphClient::new(graph_cfg)
            .with_context(|| format!("tenant {} was not added", a.name))?;
    } else {
        // A wrong URL should fail in seconds, not after a backup's patience.
        graph_cfg.retry = RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(2),
        };
        verify(&a.name, graph_cfg)?;
        if let Some(mut restore_cfg) = tenant.restore_graph_config()? {
            restore_cfg.retry = RetryPolicy {
                max_attempts: 3,
                base: Duration::from_millis(200),
                cap: Duration::from_secs(2),
            };
            verify(&a.name, restore_cfg)?;
        }
        print_permissions(&tenant, false)?;
    }
    config::edit_file(cfg.path(), cfg.env(), |doc| {
        let tenants = doc
            .entry("tenants")
            .or_insert_with(toml_edit::table)
            .as_table_mut()
            .ok_or_else(|| {
                cairn_config::ConfigError::user(format!(
                    "`tenants` in {} is not a table",
                    cfg.path().display()
                ))
            })?;
        tenants.set_implicit(true);
        tenants.insert(&a.name, toml_edit::Item::Table(entry_table(&entry)));
        Ok(())
    })?;
    outln!("added tenant {} to {}", a.name, cfg.path().display());
    Ok(())
}

/// Signs in and makes one cheap call; a refusal is the user's to fix (exit 2).
fn verify(name: &str, graph_cfg: cairn_graph::GraphConfig) -> anyhow::Result<()> {
    let tenant_id = graph_cfg.tenant_id.clone();
    let client = cairn_graph::GraphClient::new(graph_cfg)?;
    let result = crate::sim::runtime()?.block_on(client.get("/users?$top=1&$select=id"));
    match result {
        Ok(_) => {
            eprintln!("signed in to {tenant_id} and read /users: the credentials work");
            Ok(())
        }
        // Signed in, but the app may not read users: the credentials themselves are good.
        Err(e @ GraphError::Api { status: 403, .. }) => {
            eprintln!("warning: signed in to {tenant_id}, but {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "tenant {name} was not added (nothing was written; --no-verify records it without signing in)"
        ))),
    }
}

fn entry_table(e: &TenantEntry) -> toml_edit::Table {
    let mut t = toml_edit::Table::new();
    t["tenant-id"] = toml_edit::value(&e.tenant_id);
    t["client-id"] = toml_edit::value(&e.client_id);
    let path = |p: &Path| toml_edit::value(p.to_string_lossy().into_owned());
    if let Some(f) = &e.client_secret_file {
        t["client-secret-file"] = path(f);
    }
    if let Some(c) = &e.certificate {
        t["certificate"] = path(c);
    }
    if let Some(f) = &e.certificate_password_file {
        t["certificate-password-file"] = path(f);
    }
    if let Some(u) = &e.graph_url {
        t["graph-url"] = toml_edit::value(u);
    }
    if let Some(u) = &e.login_url {
        t["login-url"] = toml_edit::value(u);
    }
    if let Some(id) = &e.restore_client_id {
        t["restore-client-id"] = toml_edit::value(id);
    }
    if let Some(f) = &e.restore_client_secret_file {
        t["restore-client-secret-file"] = path(f);
    }
    if let Some(c) = &e.restore_certificate {
        t["restore-certificate"] = path(c);
    }
    if let Some(f) = &e.restore_certificate_password_file {
        t["restore-certificate-password-file"] = path(f);
    }
    if e.beta {
        t["beta"] = toml_edit::value(true);
    }
    if let Some(ru) = e.files_ru_per_min {
        t["files-ru-per-min"] = toml_edit::value(i64::from(ru));
    }
    t
}

/// `cairn tenant check NAME`.
fn check(a: CheckArgs, cfg: &Config) -> anyhow::Result<()> {
    let tenant = cfg.tenant(&cairn_config::TenantOverrides {
        tenant: Some(a.name.clone()),
        ..Default::default()
    })?;
    print_permissions(&tenant, a.json)
}

/// Signs in with the backup app (and the restore app) and says per service what works,
/// what does not and what to grant, with the admin-consent URL.
fn print_permissions(tenant: &ResolvedTenant, json: bool) -> anyhow::Result<()> {
    use cairn_app::permissions::{admin_consent_url, report};
    let rt = crate::sim::runtime()?;
    let backup = cairn_graph::GraphClient::new(tenant.graph_config()?)?;
    let backup_roles = rt.block_on(backup.granted_roles())?;
    let restore_roles = match tenant.restore_graph_config()? {
        Some(cfg) => rt.block_on(cairn_graph::GraphClient::new(cfg)?.granted_roles())?,
        None => None,
    };
    let has_restore_app = tenant.restore.is_some();
    // Without a restore app, the backup app restores.
    let writer = if has_restore_app {
        restore_roles.as_deref()
    } else {
        backup_roles.as_deref()
    };
    let lines = report(backup_roles.as_deref(), writer);
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "backup-roles": backup_roles,
                "restore-roles": restore_roles,
                "restore-app": has_restore_app,
                "services": lines,
            }))?
        );
        return Ok(());
    }
    let Some(granted) = &backup_roles else {
        eprintln!("the backup app's token lists no application permissions: nothing to check");
        return Ok(());
    };
    outln!(
        "backup app {} holds: {}",
        tenant.client_id,
        if granted.is_empty() {
            "nothing".to_string()
        } else {
            granted.join(", ")
        }
    );
    if let (Some((id, _)), Some(r)) = (&tenant.restore, &restore_roles) {
        outln!("restore app {id} holds: {}", r.join(", "));
    }
    outln!("{:<12} {:<34} RESTORE", "SERVICE", "BACKUP");
    let mut missing = false;
    for l in &lines {
        let backup = match l.backup {
            Some(true) => "ok".to_string(),
            _ => {
                missing = true;
                format!("missing: grant {}", l.grant_backup)
            }
        };
        let restore = match l.restore {
            Some(true) => "ok".to_string(),
            Some(false) if has_restore_app => {
                format!("missing: grant the restore app {}", l.grant_restore)
            }
            Some(false) => format!(
                "no: the backup app may not write (add a restore app with {})",
                l.grant_restore
            ),
            None => "unknown".to_string(),
        };
        outln!("{:<12} {:<34} {restore}", l.part, backup);
    }
    if !has_restore_app && writer.is_some_and(cairn_app::permissions::can_write_anything) {
        eprintln!(
            "warning: the backup app may change the tenant's data; a read-only backup app and a separate restore app keep a stolen backup server from doing so (docs/entra-app.md)"
        );
    }
    if missing {
        outln!(
            "grant the missing permissions to the backup app, then consent: {}",
            admin_consent_url(&tenant.login_url, &tenant.tenant_id, &tenant.client_id)
        );
    }
    Ok(())
}

fn credential_kind(e: &TenantEntry) -> &'static str {
    if e.certificate.is_some() {
        "certificate"
    } else {
        "secret file"
    }
}

fn list(a: ListArgs, cfg: &Config) -> anyhow::Result<()> {
    let tenants = &cfg.file().tenants;
    if a.json {
        let v: Vec<serde_json::Value> = tenants
            .iter()
            .map(|(name, t)| {
                serde_json::json!({
                    "name": name,
                    "tenant-id": t.tenant_id,
                    "client-id": t.client_id,
                    "credential": credential_kind(t),
                    "graph-url": t.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL),
                    "login-url": t.login_url.as_deref().unwrap_or(DEFAULT_LOGIN_URL),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if tenants.is_empty() {
        eprintln!("no tenants in {}", cfg.path().display());
        eprintln!(
            "hint: add one with `cairn tenant add NAME --tenant-id … --client-id … --client-secret-file …`"
        );
        return Ok(());
    }
    outln!(
        "{:<16} {:<38} {:<38} {:<12} GRAPH URL",
        "NAME",
        "TENANT ID",
        "CLIENT ID",
        "CREDENTIAL"
    );
    for (name, t) in tenants {
        outln!(
            "{:<16} {:<38} {:<38} {:<12} {}",
            name,
            t.tenant_id,
            t.client_id,
            credential_kind(t),
            t.graph_url.as_deref().unwrap_or(DEFAULT_GRAPH_URL)
        );
    }
    Ok(())
}

fn remove(a: RemoveArgs, cfg: &Config) -> anyhow::Result<()> {
    if !cfg.file().tenants.contains_key(&a.name) {
        let known = match cfg.tenant_names() {
            n if n.is_empty() => "none".to_string(),
            n => n.join(", "),
        };
        return Err(UserError::new(format!(
            "no tenant named {} in {} (configured: {known})",
            a.name,
            cfg.path().display()
        ))
        .hint("`cairn tenant list` shows the configured tenants")
        .into());
    }
    config::edit_file(cfg.path(), cfg.env(), |doc| {
        if let Some(tenants) = doc.get_mut("tenants").and_then(|t| t.as_table_mut()) {
            tenants.remove(&a.name);
            if tenants.is_empty() {
                doc.remove("tenants");
            }
        }
        Ok(())
    })?;
    outln!("removed tenant {} from {}", a.name, cfg.path().display());
    Ok(())
}
