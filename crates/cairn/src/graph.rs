//! `cairn graph get`: the JSON of a Graph GET, like `az rest` (for admins and debugging), and
//! the options that select and configure a tenant everywhere in Cairn.

use clap::Args;
use futures::StreamExt;
use std::path::{Path, PathBuf};

/// Which tenant, and how to reach and sign in to it. Every field overrides the same value
/// of the configuration file's tenant; an unset one falls back to its `CAIRN_*` variable
/// (`cairn_config::TenantOverrides`). (No `Debug`: it holds secrets.)
#[derive(Args, Clone, Default)]
pub struct TenantFlags {
    /// A tenant of the configuration file (`cairn tenant list`), or CAIRN_TENANT; optional
    /// when it has one.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Directory (tenant) id or verified domain (or CAIRN_TENANT_ID).
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Application (client) id of the app registration (or CAIRN_CLIENT_ID).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Client secret (prefer CAIRN_CLIENT_SECRET or --client-secret-file: a flag stays in
    /// the shell history).
    #[arg(long)]
    pub client_secret: Option<String>,
    /// File holding the client secret (or CAIRN_CLIENT_SECRET_FILE).
    #[arg(long)]
    pub client_secret_file: Option<PathBuf>,
    /// Certificate with its private key: PEM, or PKCS#12 (.pfx/.p12) (or CAIRN_CERTIFICATE).
    #[arg(long)]
    pub certificate: Option<PathBuf>,
    /// Password of a .pfx certificate (prefer CAIRN_CERTIFICATE_PASSWORD).
    #[arg(long)]
    pub certificate_password: Option<String>,
    /// File holding the password of a .pfx certificate (or
    /// CAIRN_CERTIFICATE_PASSWORD_FILE).
    #[arg(long)]
    pub certificate_password_file: Option<PathBuf>,
    /// Graph service root, without the version (or CAIRN_GRAPH_URL) [default:
    /// https://graph.microsoft.com].
    #[arg(long)]
    pub graph_url: Option<String>,
    /// Identity (login) root (or CAIRN_LOGIN_URL) [default:
    /// https://login.microsoftonline.com].
    #[arg(long)]
    pub login_url: Option<String>,
}

#[derive(Args)]
pub struct GraphArgs {
    #[command(subcommand)]
    command: GraphCommand,
}

#[derive(clap::Subcommand)]
enum GraphCommand {
    /// GET a Graph path (relative to the version, e.g. /users) and print its JSON.
    Get(GetArgs),
}

#[derive(Args)]
struct GetArgs {
    /// Path relative to the version root, e.g. /users or /users/{id}/mailFolders.
    path: String,
    /// Follow every page and print each item as one JSON object per line.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    tenant: TenantFlags,
}

pub fn run(args: GraphArgs, config: Option<&Path>) -> anyhow::Result<()> {
    match args.command {
        GraphCommand::Get(a) => crate::sim::runtime()?.block_on(async move {
            let cfg = crate::config::load(config)?;
            let client = cfg.tenant(&a.tenant.overrides())?.client()?;
            if a.all {
                let mut items = Box::pin(client.items(&a.path));
                while let Some(item) = items.next().await {
                    outln!("{}", serde_json::to_string(&item?)?);
                }
            } else {
                let v = client.get(&a.path).await?;
                outln!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(())
        }),
    }
}
