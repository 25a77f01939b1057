//! `cairn key list|add|remove|passwd`: the repository's keys, as restic's — each a password
//! that opens the repository, so that a departing administrator's password can be removed
//! and the server can hold a key of its own (`cairn_app::maintenance`).

use crate::repo_cmd::RepoArgs;
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List the keys (`*`: the one the given password opens).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a key: another password that opens the repository.
    Add {
        /// File holding the new password [default: asked for on a terminal].
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
        /// Who or what the key is for (shown by `key list`).
        #[arg(long)]
        label: Option<String>,
    },
    /// Remove a key by its id (or the start of it); not the one the given password opens.
    Remove { id: String },
    /// Change the password: a key for the new one, then the current key removed.
    Passwd {
        #[arg(long, value_name = "FILE")]
        new_password_file: Option<PathBuf>,
    },
}

/// The new password: from the file, else asked twice on a terminal.
fn new_password(file: Option<&Path>) -> anyhow::Result<String> {
    if let Some(f) = file {
        let p = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("reading the new password file {}: {e}", f.display()))?;
        return Ok(p.trim_end_matches(['\n', '\r']).to_string());
    }
    if !std::io::stdin().is_terminal() {
        return Err(cairn_app::UserError::new("no new password")
            .hint("give --new-password-file FILE")
            .into());
    }
    let p = rpassword::prompt_password("new password: ")?;
    if rpassword::prompt_password("new password again: ")? != p {
        return Err(cairn_app::UserError::new("the two passwords differ").into());
    }
    Ok(p)
}

pub fn run(a: KeyArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, None)?;
    use cairn_app::maintenance as m;
    match a.command {
        KeyCommand::List { json } => {
            let keys = m::keys(&ws)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&keys)?);
                return Ok(());
            }
            outln!(" {:<10} {:<26} {:<20} HOST", "ID", "CREATED", "LABEL");
            for k in &keys {
                outln!(
                    "{}{:<10} {:<26} {:<20} {}",
                    if k.current { "*" } else { " " },
                    &k.id[..8.min(k.id.len())],
                    k.created.as_deref().unwrap_or("-"),
                    k.username.as_deref().unwrap_or("-"),
                    k.hostname.as_deref().unwrap_or("-")
                );
            }
        }
        KeyCommand::Add {
            new_password_file,
            label,
        } => {
            let p = new_password(new_password_file.as_deref())?;
            let id = m::add_key(&ws, &p, label)?;
            outln!("added key {}", &id[..8.min(id.len())]);
        }
        KeyCommand::Remove { id } => {
            let removed = m::remove_key(&ws, &id)?;
            outln!("removed key {}", &removed[..8.min(removed.len())]);
        }
        KeyCommand::Passwd { new_password_file } => {
            let p = new_password(new_password_file.as_deref())?;
            let (added, removed) = m::change_password(&ws, &p)?;
            outln!(
                "password changed: key {} added, key {} removed",
                &added[..8.min(added.len())],
                &removed[..8.min(removed.len())]
            );
        }
    }
    Ok(())
}
