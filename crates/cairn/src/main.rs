//! The `cairn` command line: parses arguments, wires the crates together, prints.

use clap::{Parser, Subcommand};

mod demo;
mod sim;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Backup and recovery for Microsoft 365"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The Microsoft 365 tenant simulator (Graph-compatible).
    Sim(sim::SimArgs),
    /// Show Cairn at work on a simulated tenant, on embedded defaults.
    Demo,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Demo => demo::demo(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
