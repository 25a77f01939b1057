//! `cairn erase`: one person's data removed from every restore point, with a signed
//! erasure record (`cairn_app::erase`).

use crate::repo_cmd::RepoArgs;
use cairn_app::erase::{self, EraseRequest, Match};
use clap::Args;
use std::collections::BTreeSet;
use std::path::Path;

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The person: their e-mail address (user principal name).
    #[arg(long, required_unless_present = "list")]
    subject: Option<String>,
    /// What counts as their data: owner (their own mailbox and OneDrive), sender,
    /// recipient (messages and events they sent or received in other people's mailboxes).
    #[arg(long = "match", value_delimiter = ',', default_value = "owner")]
    matches: Vec<String>,
    /// The tenant (else every tenant of the catalog).
    #[arg(long)]
    tenant: Option<String>,
    /// Show what would be erased; nothing changes.
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Erase. Cannot be undone.
    #[arg(long)]
    execute: bool,
    /// List the erasure records of the repository, with whether each signature holds.
    #[arg(long, conflicts_with_all = ["subject", "execute", "dry_run"])]
    list: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(a: EraseArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let ws = crate::config::workspace(config, &a.repo, None)?;
    if a.list {
        let records = erase::records(&ws)?;
        if a.json {
            outln!("{}", serde_json::to_string_pretty(&records)?);
            return Ok(());
        }
        for k in &records {
            let r = &k.record;
            outln!(
                "{} {} {:<9} {:<32} {} items from {} restore points, by {}{}",
                r.id,
                r.at.format("%Y-%m-%d %H:%M"),
                r.status,
                r.subject,
                r.items,
                r.points.len(),
                r.requested_by,
                if k.signature_valid {
                    ""
                } else {
                    "  SIGNATURE INVALID"
                }
            );
        }
        outln!("{} erasure records", records.len());
        return Ok(());
    }
    if !a.dry_run && !a.execute {
        return Err(cairn_app::UserError::new("an erasure cannot be undone")
            .hint("give --dry-run to see what would be erased, then --execute")
            .into());
    }
    let matches = a
        .matches
        .iter()
        .map(|m| Match::parse(m))
        .collect::<Result<BTreeSet<_>, _>>()?;
    let req = EraseRequest {
        subject: a.subject.clone().unwrap_or_default(),
        tenant: a.tenant.clone(),
        matches,
        execute: a.execute,
        by: crate::hold_cmd::who(),
    };
    let record = erase::erase(&ws, &req)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    let verb = if a.execute { "erased" } else { "would erase" };
    for p in &record.points {
        outln!(
            "{verb} {} {} of {}@{}{}{}",
            p.count,
            if p.whole {
                "items (the whole restore point)"
            } else {
                "items"
            },
            p.resource,
            p.point,
            p.rewritten_as
                .as_ref()
                .map(|s| format!(", rewritten as {}", &s[..8.min(s.len())]))
                .unwrap_or_default(),
            p.pending
                .as_ref()
                .map(|w| format!(" — PENDING: {w}"))
                .unwrap_or_default()
        );
    }
    match record.status.as_str() {
        "planned" => outln!(
            "{} items of {} in {} restore points; nothing changed (dry run)",
            record.items,
            record.subject,
            record.points.len()
        ),
        "pending" => outln!(
            "erasure {} recorded as PENDING: the storage keeps some of the data under retention; `cairn prune` completes it once retention ends",
            record.id
        ),
        _ => outln!(
            "erasure {} complete: {} items of {} removed from {} restore points; signed record kept in the repository",
            record.id,
            record.items,
            record.subject,
            record.points.len()
        ),
    }
    Ok(())
}
