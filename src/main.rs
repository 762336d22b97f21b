//! The `sitcenter` binary: CLI (`cli/`), logging, exit codes, and the measuring tools.
//! Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

mod cli;

use cli::{Cli, Command};

/// Exit code for configuration errors (EX_CONFIG-like; sysexits' EX_USAGE = 64).
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            if let Some(config) = error.downcast_ref::<sitcenter::config::ConfigErrors>() {
                eprint!("{config}");
                return ExitCode::from(EXIT_CONFIG);
            }
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate { sites } => Ok(validate(&sites)),
        Command::Run { site, listen } => {
            let mut config = sitcenter::config::load_site(&site)?;
            if let Some(listen) = listen {
                config.http.listen = listen;
            }
            runtime()?.block_on(sitcenter::app::run(config, None))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            runtime()?.block_on(sitcenter::app::demo(args.into()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay(args) => {
            let report = sitcenter::qa::replay(&args.into())?;
            Ok(ExitCode::from(report.exit_code()))
        }
        Command::RtspSim(args) => {
            cli::rtsp_sim::run(args).context("rtsp-sim")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(args) => {
            runtime()?.block_on(cli::user::user(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Key(args) => {
            runtime()?.block_on(cli::user::key(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate(args) => {
            runtime()?.block_on(cli::registry::migrate(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Registry(args) => runtime()?.block_on(cli::registry::registry(args)),
        Command::DecodeFloor(args) => {
            let report = cli::decode_floor::run(&args).context("decode-floor")?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `sitcenter validate`: config, then pipeline templates; every error printed.
fn validate(sites: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for site in sites {
        match sitcenter::config::load_site(site) {
            Ok(config) => {
                let mut problems = sitcenter::app::check_pipelines(&config);
                problems.extend(sitcenter::app::check_detector(&config));
                match runtime() {
                    Ok(rt) => {
                        problems.extend(rt.block_on(sitcenter::app::check_connectivity(&config)))
                    }
                    Err(error) => problems.push(format!("{error:#}")),
                }
                if problems.is_empty() {
                    println!(
                        "{}: ok ({} cameras, site `{}`)",
                        site.display(),
                        config.cameras.len(),
                        config.name
                    );
                } else {
                    failed = true;
                    for problem in problems {
                        eprintln!("{}: {problem}", site.display());
                    }
                }
            }
            Err(errors) => {
                failed = true;
                eprint!("{errors}");
            }
        }
    }
    if failed {
        ExitCode::from(EXIT_CONFIG)
    } else {
        ExitCode::SUCCESS
    }
}
