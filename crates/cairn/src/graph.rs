//! `cairn graph get`: the JSON of a Graph GET, like `az rest` (for admins and debugging), and
//! the options that configure a tenant everywhere in Cairn.

use anyhow::{Context, bail};
use cairn_graph::cert::Certificate;
use cairn_graph::{Credential, GraphClient, GraphConfig};
use clap::Args;
use futures::StreamExt;
use std::path::PathBuf;

/// How to reach and sign in to a Microsoft 365 tenant. (No `Debug`: it holds secrets.)
#[derive(Args, Clone)]
pub struct TenantOpts {
    /// Directory (tenant) id or verified domain.
    #[arg(long, env = "CAIRN_TENANT_ID")]
    pub tenant_id: String,
    /// Application (client) id of the app registration.
    #[arg(long, env = "CAIRN_CLIENT_ID")]
    pub client_id: String,
    /// Client secret (prefer CAIRN_CLIENT_SECRET or --client-secret-file: a flag stays in
    /// the shell history).
    #[arg(long, env = "CAIRN_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// File holding the client secret.
    #[arg(long, env = "CAIRN_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Certificate with its private key: PEM, or PKCS#12 (.pfx/.p12).
    #[arg(long, env = "CAIRN_CERTIFICATE")]
    pub certificate: Option<PathBuf>,
    /// Password of a .pfx certificate.
    #[arg(long, env = "CAIRN_CERTIFICATE_PASSWORD", hide_env_values = true)]
    pub certificate_password: Option<String>,
    /// Graph service root, without the version.
    #[arg(long, env = "CAIRN_GRAPH_URL", default_value = cairn_graph::client::DEFAULT_GRAPH_URL)]
    pub graph_url: String,
    /// Identity (login) root.
    #[arg(long, env = "CAIRN_LOGIN_URL", default_value = cairn_graph::client::DEFAULT_LOGIN_URL)]
    pub login_url: String,
}

impl TenantOpts {
    pub fn client(&self) -> anyhow::Result<GraphClient> {
        let credential = match (
            &self.client_secret,
            &self.client_secret_file,
            &self.certificate,
        ) {
            (Some(s), None, None) => Credential::Secret(s.clone().into()),
            (None, Some(f), None) => {
                let s = std::fs::read_to_string(f)
                    .with_context(|| format!("reading the client secret file {}", f.display()))?;
                Credential::Secret(s.trim().to_string().into())
            }
            (None, None, Some(c)) => Credential::Certificate(
                Certificate::from_file(c, self.certificate_password.as_deref())?.into(),
            ),
            (None, None, None) => bail!(
                "no credential given\nhint: set CAIRN_CLIENT_SECRET, --client-secret-file or --certificate"
            ),
            _ => bail!("give one credential: a client secret, a secret file or a certificate"),
        };
        let mut cfg = GraphConfig::new(&self.tenant_id, &self.client_id, credential);
        cfg.graph_url = self.graph_url.clone();
        cfg.login_url = self.login_url.clone();
        Ok(GraphClient::new(cfg)?)
    }
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
    tenant: TenantOpts,
}

pub fn run(args: GraphArgs) -> anyhow::Result<()> {
    match args.command {
        GraphCommand::Get(a) => crate::sim::runtime()?.block_on(async move {
            let client = a.tenant.client()?;
            if a.all {
                let mut items = Box::pin(client.items(&a.path));
                while let Some(item) = items.next().await {
                    println!("{}", serde_json::to_string(&item?)?);
                }
            } else {
                let v = client.get(&a.path).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            Ok(())
        }),
    }
}
