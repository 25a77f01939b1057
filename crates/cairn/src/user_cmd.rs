//! `cairn user add|list|remove`: the local accounts people sign in to `cairn serve`'s
//! portal with when the server has no Microsoft Entra ID sign-in (docs/portal.md), made on
//! the server's machine like tokens.

use crate::repo_cmd::RepoArgs;
use cairn_server::auth::Role;
use cairn_server::store::Store;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    #[command(flatten)]
    repo: RepoArgs,
    /// Local state [default: the configuration's cache-dir].
    #[arg(long, global = true)]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add an account (the password is asked twice, or read from --password-file).
    Add {
        name: String,
        /// admin, backup-operator, restore-operator or auditor.
        #[arg(long, value_parser = ["admin", "backup-operator", "restore-operator", "auditor"])]
        role: String,
        /// Limit the account to one tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// A file holding the password (its first line).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// List the accounts (never their passwords).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an account and end its sessions.
    Remove { name: String },
}

/// The account's password: from the file, else asked twice on a terminal.
fn password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(f) = file {
        let p = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("reading the password file {}: {e}", f.display()))?;
        return Ok(p.lines().next().unwrap_or_default().to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(cairn_app::UserError::new("no password")
            .hint("give --password-file FILE, or run it on a terminal to be asked")
            .into());
    }
    let p = rpassword::prompt_password("password: ")?;
    if rpassword::prompt_password("password again: ")? != p {
        return Err(cairn_app::UserError::new("the two passwords differ").into());
    }
    Ok(p)
}

pub fn run(a: UserArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, a.cache_dir.as_deref())?;
    let store = Store::open(&ws.local().catalog)?;
    match a.command {
        UserCommand::Add {
            name,
            role,
            tenant,
            password_file,
        } => {
            let role = Role::parse(&role).unwrap_or(Role::Auditor);
            if let Some(t) = &tenant
                && !ws.config().file().tenants.contains_key(t)
            {
                return Err(cairn_app::UserError::new(format!("no tenant named {t}"))
                    .hint("`cairn tenant list` shows them")
                    .into());
            }
            let p = password(password_file.as_deref())?;
            cairn_server::users::add(&store, &name, role, tenant.as_deref(), &p)?;
            outln!("added {name} ({})", role.as_str());
        }
        UserCommand::List { json } => {
            let all = cairn_server::users::list(&store)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                outln!("{:<24} {:<17} {:<12} CREATED", "NAME", "ROLE", "TENANT");
                for u in &all {
                    outln!(
                        "{:<24} {:<17} {:<12} {}",
                        u.name,
                        u.role.as_str(),
                        u.tenant.as_deref().unwrap_or("all"),
                        u.created.format("%Y-%m-%d %H:%M")
                    );
                }
            }
        }
        UserCommand::Remove { name } => {
            if !cairn_server::users::remove(&store, &name)? {
                return Err(
                    cairn_app::UserError::new(format!("no account named {name}"))
                        .hint("`cairn user list` shows them")
                        .into(),
                );
            }
            outln!("removed {name}");
        }
    }
    Ok(())
}
