//! The `sitcenter` binary (minimal CLI; the full one comes with the app module).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sitcenter",
    version,
    about = "City situational-center monitoring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve simulated RTSP cameras from test-media/ until Ctrl-C.
    RtspSim(sitcenter::sim::RtspSimArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::RtspSim(args) => sitcenter::sim::run_cli(args).map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sitcenter: {error:#}");
            ExitCode::FAILURE
        }
    }
}
