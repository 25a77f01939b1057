//! The `cairn` command line: parses arguments, wires the crates together, prints.

use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod graph;
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
    /// Microsoft Graph requests, for administrators and debugging.
    Graph(graph::GraphArgs),
    /// Throughput benchmarks against the simulator.
    Bench(bench::BenchArgs),
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
        Command::Graph(args) => graph::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Demo => demo::demo(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<cairn_graph::GraphError>() {
                Some(g) => {
                    if let Some(h) = g.hint() {
                        eprintln!("hint: {h}");
                    }
                    // A refused sign-in or bad configuration is the user's to fix: exit 2.
                    match g {
                        cairn_graph::GraphError::Auth { .. }
                        | cairn_graph::GraphError::Config(_) => std::process::ExitCode::from(2),
                        _ => std::process::ExitCode::FAILURE,
                    }
                }
                None => std::process::ExitCode::FAILURE,
            }
        }
    }
}
