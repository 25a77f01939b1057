//! `cairn serve`: the server (`cairn-server`) on a listener until SIGTERM or SIGINT, and
//! `cairn token create|list|revoke`, the API tokens, made on the server's machine.

use crate::repo_cmd::RepoArgs;
use cairn_server::auth::{self, Role};
use cairn_server::store::Store;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The address `cairn serve` listens on when neither `--listen` nor `[server] listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: `listen` of `[server]`, else 127.0.0.1:8470].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    #[command(flatten)]
    repo: RepoArgs,
    /// Local state (catalog, spool, the server's tables) [default: the configuration's
    /// cache-dir].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

pub fn serve(a: ServeArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, a.cache_dir.as_deref())?.serving();
    let listen = a
        .listen
        .clone()
        .or_else(|| ws.config().file().server.as_ref()?.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    // Fail now, not at the first run: the repository opens (and the password is right).
    ws.repo()?;
    let rt = crate::sim::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
        let address = listener.local_addr()?.to_string();
        let _owner = ws.local().lock_for_serving(&address)?;
        let state = cairn_server::State::new(Arc::new(ws))?;
        if auth::admins(&state.store)? == 0 {
            tracing::warn!(
                "no admin token yet: create one on this machine with `cairn token create --name admin --role admin`"
            );
        }
        eprintln!("cairn serve: listening on http://{address} (API at /api/v1, metrics at /metrics)");
        cairn_server::serve(state, listener, stop_signal()).await
    })?;
    eprintln!("cairn serve: stopped");
    Ok(())
}

/// SIGTERM (systemd, kill) or SIGINT (Ctrl-C).
pub(crate) async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot wait for SIGTERM: {e}");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[derive(Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    repo: RepoArgs,
    /// Local state [default: the configuration's cache-dir].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (alone, on stdout): it is never shown again.
    Create {
        #[arg(long)]
        name: String,
        /// admin, backup-operator, restore-operator or auditor.
        #[arg(long, value_parser = ["admin", "backup-operator", "restore-operator", "auditor"])]
        role: String,
        /// Limit the token to one tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// Limit the token to one resource of that tenant (a user principal name,
        /// group:NAME, a site URL): it browses, restores and exports that one only.
        #[arg(long, requires = "tenant")]
        resource: Option<String>,
        /// Expire after this long: 90d, 12h.
        #[arg(long)]
        expires: Option<String>,
    },
    /// List the tokens (never the secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token.
    Revoke { name: String },
}

pub fn token(a: TokenArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, a.cache_dir.as_deref())?;
    let store = Store::open(&ws.local().catalog)?;
    match a.command {
        TokenCommand::Create {
            name,
            role,
            tenant,
            resource,
            expires,
        } => {
            let role = Role::parse(&role).unwrap_or(Role::Auditor);
            let expires = match expires {
                None => None,
                Some(e) => Some(auth::parse_duration(&e).ok_or_else(|| {
                    cairn_app::UserError::new(format!("--expires {e:?} is not a duration"))
                        .hint("write it as 90d, 12h or 30m")
                })?),
            };
            let t = auth::create(
                &store,
                &name,
                role,
                &auth::Scope { tenant, resource },
                expires,
            )?;
            outln!("{t}");
        }
        TokenCommand::List { json } => {
            let all = auth::list(&store)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                outln!(
                    "{:<24} {:<17} {:<12} {:<20} STATE",
                    "NAME",
                    "ROLE",
                    "TENANT",
                    "CREATED"
                );
                for t in &all {
                    let state = match (t.revoked, t.expires) {
                        (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d")),
                        (None, Some(e)) if e <= chrono::Utc::now() => "expired".into(),
                        (None, Some(e)) => format!("expires {}", e.format("%Y-%m-%d")),
                        (None, None) => "live".into(),
                    };
                    outln!(
                        "{:<24} {:<17} {:<12} {:<20} {state}",
                        t.name,
                        t.role.as_str(),
                        t.tenant.as_deref().unwrap_or("all"),
                        t.created.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        TokenCommand::Revoke { name } => {
            if !auth::revoke(&store, &name)? {
                return Err(
                    cairn_app::UserError::new(format!("no live token named {name}"))
                        .hint("`cairn token list` shows them")
                        .into(),
                );
            }
            outln!("revoked {name}");
        }
    }
    Ok(())
}
