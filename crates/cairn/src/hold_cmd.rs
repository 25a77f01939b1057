//! `cairn hold add|list|release`: legal holds (`cairn_app::holds`), kept in the catalog and
//! in the repository.

use crate::repo_cmd::RepoArgs;
use cairn_app::holds::{self, Hold, NewHold};
use cairn_catalog::select::{Bound, parse_time};
use clap::{Args, Subcommand};
use std::path::Path;

#[derive(Args)]
pub struct HoldArgs {
    #[command(subcommand)]
    command: HoldCommand,
    #[command(flatten)]
    repo: RepoArgs,
}

#[derive(Subcommand)]
enum HoldCommand {
    /// Place a hold on a resource (every restore point), one restore point (RESOURCE@N),
    /// or a search (every restore point holding a matching item).
    Add {
        /// A user, group:ID or site URL; RESOURCE@N (or @SNAPSHOT, @TIME) for one restore point.
        #[arg(long)]
        resource: Option<String>,
        /// Search: items sent or received by this person, and all of their own mailbox and drive.
        #[arg(long)]
        custodian: Option<String>,
        /// Search: words in the subject or file name.
        #[arg(long)]
        query: Option<String>,
        /// Search: items dated on or after (2026-01-31, or a full RFC 3339 time).
        #[arg(long)]
        from: Option<String>,
        /// Search: items dated on or before.
        #[arg(long)]
        to: Option<String>,
        /// The tenant (needed when several hold the resource).
        #[arg(long)]
        tenant: Option<String>,
        /// Why: the matter, case or request number.
        #[arg(long)]
        reason: String,
    },
    /// List the holds in force (with --all, released ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Release a hold. An automatic hold (placed on a suspect restore point's clean
    /// predecessor) of a served repository is released through the server's four-eyes
    /// request instead.
    Release {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// Who is asking, as holds and erasure records name them.
pub(crate) fn who() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = hostname();
    format!("{user}@{host} (command line)")
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

pub fn run(a: HoldArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, None)?;
    match a.command {
        HoldCommand::Add {
            resource,
            custodian,
            query,
            from,
            to,
            tenant,
            reason,
        } => {
            let new = NewHold {
                tenant,
                resource,
                custodian,
                query,
                from: from.map(|f| parse_time(&f, Bound::Start)).transpose()?,
                to: to.map(|t| parse_time(&t, Bound::End)).transpose()?,
                reason,
            };
            let h = holds::place(&ws, &new, &who())?;
            outln!("placed legal hold {}: {}", h.id, h.describe());
        }
        HoldCommand::List { all, json } => {
            let list: Vec<Hold> = holds::list(&ws)?
                .into_iter()
                .filter(|h| all || h.in_force())
                .collect();
            if json {
                outln!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            outln!(
                "{:<11} {:<17} {:<9} {:<40} REASON",
                "ID",
                "PLACED",
                "BY",
                "HOLDS"
            );
            for h in &list {
                let state = match (&h.released, h.automatic) {
                    (Some(_), _) => "released",
                    (None, true) => "automatic",
                    (None, false) => "placed",
                };
                outln!(
                    "{:<11} {:<17} {:<9} {:<40} {}",
                    h.id,
                    h.placed.format("%Y-%m-%d %H:%M"),
                    state,
                    h.describe(),
                    h.reason
                );
            }
            outln!("{} legal holds", list.len());
        }
        HoldCommand::Release { id, reason } => {
            let h = holds::release(&ws, &id, &who(), &reason)?;
            outln!("released legal hold {}: {}", h.id, h.describe());
        }
    }
    Ok(())
}
