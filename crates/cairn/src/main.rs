//! The `cairn` command line: parses arguments, wires the crates together, prints.

use clap::{Parser, Subcommand};

/// `println!` that hands a failed write back as an error instead of panicking: when stdout
/// is a pipe closed early (`cairn snapshots | head -1`), `main` exits quietly on it.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod audit_cmd;
mod backup_cmd;
mod bench;
mod browse;
mod catalog_cmd;
mod config;
mod demo;
mod erase_cmd;
mod graph;
mod hold_cmd;
mod key_cmd;
mod progress;
mod repo_cmd;
mod restore_cmd;
mod serve_cmd;
mod sim;
mod tenant_cmd;
mod user_cmd;
mod worker_cmd;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Backup and recovery for Microsoft 365"
)]
struct Cli {
    /// Configuration file (or CAIRN_CONFIG) [default: $XDG_CONFIG_HOME/cairn/config.toml, else
    /// ~/.config/cairn/config.toml].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// Log lines on stderr as text or as JSON objects (for `cairn serve` under a log
    /// collector); the filter is CAIRN_LOG.
    #[arg(long, global = true, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Microsoft 365 tenant simulator (Graph-compatible).
    Sim(sim::SimArgs),
    /// Create a repository.
    Init(repo_cmd::InitArgs),
    /// Back up a tenant's users, groups and sites: one restore point per resource.
    Backup(backup_cmd::BackupArgs),
    /// List restore points.
    Snapshots(repo_cmd::SnapshotsArgs),
    /// The local catalog: `rebuild` recreates it from the repository.
    Catalog(catalog_cmd::CatalogArgs),
    /// List what a restore point holds under a path (from the catalog).
    Ls(browse::ls::LsArgs),
    /// Search items across restore points (from the catalog).
    Find(browse::find::FindArgs),
    /// Export a restore point's items as EML, MBOX, ICS, VCF or files.
    Export(browse::export::ExportArgs),
    /// Restore items of a restore point into Microsoft 365 (original place, a folder, another user).
    Restore(restore_cmd::RestoreArgs),
    /// Verify the repository's structure and (with --read-data) content.
    Check(repo_cmd::CheckArgs),
    /// The repository's keys: list, add, remove, change the password.
    Key(key_cmd::KeyArgs),
    /// Erase one person's data from every restore point, with a signed record.
    Erase(erase_cmd::EraseArgs),
    /// Legal holds: add, list, release.
    Hold(hold_cmd::HoldArgs),
    /// A restore drill: read a sample of the latest restore points back and compare.
    Verify(repo_cmd::VerifyArgs),
    /// Remove restore points by retention rule, sparing legal holds.
    Forget(repo_cmd::ForgetArgs),
    /// Items deleted in Microsoft 365 that only the backup still has, with their age.
    OnlyInBackup(repo_cmd::OnlyInBackupArgs),
    /// Remove data no restore point needs.
    Prune(repo_cmd::PruneArgs),
    /// Copy restore points to a second repository (3-2-1).
    Copy(repo_cmd::CopyArgs),
    /// Repair a damaged repository: rebuild the index, or rewrite damaged restore points.
    Repair(repo_cmd::RepairArgs),
    /// Microsoft Graph requests, for administrators and debugging.
    Graph(graph::GraphArgs),
    /// The tenants of the configuration file: add (after signing in), list, remove.
    Tenant(tenant_cmd::TenantArgs),
    /// Throughput benchmarks against the simulator.
    Bench(bench::BenchArgs),
    /// Run the server: scheduled backup jobs, the REST API, alerts, metrics.
    Serve(serve_cmd::ServeArgs),
    /// Back up the resources `cairn serve` hands out through NATS JetStream, into the shared
    /// repository and catalog (start as many as needed, on any machines).
    Worker(worker_cmd::WorkerArgs),
    /// API tokens of the server: create (printed once), list, revoke.
    Token(serve_cmd::TokenArgs),
    /// Local accounts of the server's portal: add, list, remove.
    User(user_cmd::UserArgs),
    /// The server's audit log: verify its hash chain, export it.
    Audit(audit_cmd::AuditArgs),
    /// Show Cairn at work on a simulated tenant, on embedded defaults.
    Demo {
        /// Then leave a `cairn serve` with its portal running (its address and a demo
        /// user's sign-in are printed), until Ctrl-C.
        #[arg(long)]
        portal: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env(cairn_config::env::CAIRN_LOG)
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,rustic_core=warn,rustic_backend=warn")
        });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.init();
    }
    let config = cli.config.as_deref();
    let result = match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Graph(args) => graph::run(args, config),
        Command::Tenant(args) => tenant_cmd::run(args, config),
        Command::Init(a) => repo_cmd::init(a, config),
        Command::Backup(a) => backup_cmd::run(a, config),
        Command::Snapshots(a) => repo_cmd::snapshots(a, config),
        Command::Catalog(a) => catalog_cmd::run(a, config),
        Command::Ls(a) => browse::ls::run(a, config),
        Command::Find(a) => browse::find::run(a, config),
        Command::Export(a) => browse::export::run(a, config),
        Command::Restore(a) => restore_cmd::run(a, config),
        Command::Check(a) => repo_cmd::check(a, config),
        Command::Key(a) => key_cmd::run(a, config),
        Command::Hold(a) => hold_cmd::run(a, config),
        Command::Erase(a) => erase_cmd::run(a, config),
        Command::Verify(a) => repo_cmd::verify(a, config),
        Command::Forget(a) => repo_cmd::forget(a, config),
        Command::Prune(a) => repo_cmd::prune(a, config),
        Command::OnlyInBackup(a) => repo_cmd::only_in_backup(a, config),
        Command::Copy(a) => repo_cmd::copy(a, config),
        Command::Repair(a) => repo_cmd::repair(a, config),
        Command::Bench(args) => bench::run(args),
        Command::Serve(a) => serve_cmd::serve(a, config),
        Command::Worker(a) => worker_cmd::run(a, config),
        Command::Token(a) => serve_cmd::token(a, config),
        Command::User(a) => user_cmd::run(a, config),
        Command::Audit(a) => audit_cmd::run(a, config),
        Command::Demo { portal } => demo::demo(portal),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): nothing more to say, as ripgrep.
        Err(e) if is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One classification for every error: the user's mistakes exit with 2.
            let c = cairn_app::classify(&e);
            eprintln!("error: {}", c.message);
            if let Some(h) = &c.hint {
                eprintln!("hint: {h}");
            }
            std::process::ExitCode::from(c.exit_code())
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
