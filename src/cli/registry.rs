//! `sitcenter migrate` (the owner applies the registry's migrations) and `sitcenter registry
//! verify` (recompute hash chains, projections and numbers; exit 1 on any break).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use sitcenter::config::RegistrySettings;
use sitcenter::registry::{Registry, SystemClock};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The site folder whose `[registry]` names the database and its logins.
    #[arg(long, default_value = "camera-configs/demo")]
    pub site: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    #[arg(long, global = true, default_value = "camera-configs/demo")]
    pub site: PathBuf,
    #[command(subcommand)]
    pub action: RegistryAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum RegistryAction {
    /// Recompute every appeal's hash chain and state and check the numbers are gap-free;
    /// prints the chain head to publish. Exit 1 when anything is broken.
    Verify {
        /// The report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

fn settings(site: &Path) -> anyhow::Result<RegistrySettings> {
    let config = sitcenter::config::load_site(site)?;
    match config.registry {
        Some(registry) => Ok(registry),
        None => bail!("{}: site.toml has no [registry]", site.display()),
    }
}

pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let settings = settings(&args.site)?;
    let report = Registry::migrate(&settings.database)
        .await
        .context("the registry database (as its owner)")?;
    if report.applied.is_empty() {
        println!("registry schema is current (version {})", report.version);
    }
    for m in &report.applied {
        println!("applied {m}");
    }
    if let Some(login) = &report.granted_to {
        println!(
            "made {login} a member of {}",
            sitcenter::registry::SERVICE_ROLE
        );
    }
    Ok(())
}

pub async fn registry(args: RegistryArgs) -> anyhow::Result<ExitCode> {
    let mut settings = settings(&args.site)?;
    // Verifying reads only: never migrate for it.
    settings.database.migrate_at_start = false;
    let registry = Registry::open(&settings.database, Arc::new(SystemClock), 1)
        .await
        .context("the registry database")?;
    match args.action {
        RegistryAction::Verify { json } => {
            let report = registry.verify().await.context("registry verify")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} appeals, {} events; chain head {}",
                    report.appeals, report.events, report.head
                );
                for problem in &report.problems {
                    println!("BROKEN {problem}");
                }
                if report.problem_count > report.problems.len() as u64 {
                    println!(
                        "… and {} more",
                        report.problem_count - report.problems.len() as u64
                    );
                }
                if report.is_intact() {
                    println!("intact");
                }
            }
            Ok(if report.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
