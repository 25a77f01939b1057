//! `cairn audit verify|export`: the audit log `cairn serve` keeps (`cairn_server::audit`),
//! read on the server's machine from the catalog file, without the server. `verify`
//! checks its hash chain (and, with `--mirror`, compares it with the copy in the
//! repository); `export` prints entries as JSON lines for other tools (a SIEM, `jq`).

use crate::repo_cmd::RepoArgs;
use cairn_server::audit::{AuditLog, Verification};
use clap::{Args, Subcommand};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the log's hash chain: exits non-zero naming the first altered, inserted or
    /// missing entry.
    Verify(VerifyArgs),
    /// Print entries as JSON lines, oldest first.
    Export(ExportArgs),
}

/// Where the log is: the server's repository and local state.
#[derive(Args)]
struct Location {
    #[command(flatten)]
    repo: RepoArgs,
    /// Local state (catalog, the server's tables) [default: the configuration's cache-dir].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    #[command(flatten)]
    at: Location,
    /// Also compare the log with its copy in the repository (every entry mirrored into
    /// it): shows a history rewritten with recomputed hashes. Needs the repository's
    /// password.
    #[arg(long)]
    mirror: bool,
    /// Print the verification as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    at: Location,
    /// Only entries written on or after this date (2026-03-01, 2026-03-01T10:15, RFC 3339)
    /// [default: all].
    #[arg(long, value_name = "DATE", value_parser = crate::browse::start_time)]
    since: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn run(a: AuditArgs, config: Option<&Path>) -> anyhow::Result<()> {
    match a.command {
        AuditCommand::Verify(a) => verify(a, config),
        AuditCommand::Export(a) => export(a, config),
    }
}

/// The workspace and its log, which must exist already: reading it never starts one.
fn open(at: &Location, config: Option<&Path>) -> anyhow::Result<(cairn_app::Workspace, AuditLog)> {
    let ws = crate::config::workspace(config, &at.repo, at.cache_dir.as_deref())?;
    let path = ws.local().catalog.clone();
    if !path.exists() {
        return Err(crate::config::UserError::new(format!(
            "no audit log for the repository {}: {} does not exist",
            ws.repository(),
            path.display()
        ))
        .hint(
            "`cairn serve` keeps it in its catalog: run this on the server's machine, with its --repo and --cache-dir",
        )
        .into());
    }
    let log = AuditLog::open(&path)?;
    Ok((ws, log))
}

fn verify(a: VerifyArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let (ws, log) = open(&a.at, config)?;
    let v = if a.mirror {
        let repo = ws.repo()?;
        log.verify_with_mirror(&repo)?
    } else {
        log.verify()?
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        summary(&v, log.path())?;
    }
    match &v.broken {
        // Not the user's mistake: exit 1, as a damaged repository does.
        Some(b) => anyhow::bail!(
            "the audit log's chain is broken: {b}\nhint: keep a copy of {} as it is now; `cairn audit export` prints the entries, `--mirror` compares them with the repository's copy",
            log.path().display()
        ),
        None => Ok(()),
    }
}

fn summary(v: &Verification, path: &Path) -> anyhow::Result<()> {
    outln!("audit log:  {}", path.display());
    outln!("entries:    {}", v.entries);
    if let (Some(seq), Some(hash)) = (v.last_seq, &v.last_hash) {
        outln!("last entry: {seq}, hash {hash}");
    }
    if let Some(m) = &v.mirror {
        match m.through {
            Some(t) => outln!(
                "repository: {} entries in {} restore points, through entry {t}",
                m.entries,
                m.snapshots
            ),
            None => outln!("repository: nothing mirrored yet"),
        }
        if !m.other_logs.is_empty() {
            outln!(
                "repository: also holds other audit logs, not compared: {}",
                m.other_logs.join(", ")
            );
        }
    }
    match &v.broken {
        Some(b) => outln!("chain:      BROKEN at entry {} ({})", b.seq, b.kind),
        None => outln!("chain:      intact"),
    }
    Ok(())
}

fn export(a: ExportArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let (_ws, log) = open(&a.at, config)?;
    let since = a.since.unwrap_or(chrono::DateTime::UNIX_EPOCH);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed: Option<anyhow::Error> = None;
    log.since(since, &mut |r| {
        // A write error stays an io::Error, so `main` recognises a closed pipe.
        let written = serde_json::to_string(&r)
            .map_err(anyhow::Error::from)
            .and_then(|line| Ok(writeln!(out, "{line}")?));
        match written {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.flush()?;
    Ok(())
}
