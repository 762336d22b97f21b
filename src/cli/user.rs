//! `sitcenter user add|passwd|disable|roles|list` and `sitcenter key add|list|revoke`: people
//! and machine clients in a site's registry database. Passwords are read from
//! `SITCENTER_PASSWORD` or the first line of standard input, never from the command line
//! (which other users of the machine can see); every change is audited as `cli:<login>`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use sitcenter::auth::{Auth, Role, Scope};

#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// The site folder whose `[registry]` holds the users.
    #[arg(long, global = true, default_value = "camera-configs/demo")]
    pub site: PathBuf,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum UserAction {
    /// Add a user (password from SITCENTER_PASSWORD or standard input).
    Add {
        name: String,
        /// inspector, dispatcher, supervisor, qa or admin (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// Set a user's password (ends their open sessions).
    Passwd { name: String },
    /// Disable a user (ends their open sessions).
    Disable { name: String },
    /// Replace a user's roles.
    Roles {
        name: String,
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// List users and their roles.
    List,
}

#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[arg(long, global = true, default_value = "camera-configs/demo")]
    pub site: PathBuf,
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeyAction {
    /// Issue an API key; it is printed once and stored only hashed.
    Add {
        name: String,
        /// open311:write, sensors:write, telemetry:write, events:read, metrics:read (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by its id.
    Revoke { id: String },
}

async fn connect(site: &std::path::Path) -> anyhow::Result<Auth> {
    let config = sitcenter::config::load_site(site)?;
    let Some(registry) = config.registry else {
        bail!(
            "{}: site.toml has no [registry]: users live in its database",
            site.display()
        );
    };
    let store = sitcenter::registry::Registry::open(
        &registry.database,
        Arc::new(sitcenter::registry::SystemClock),
        2,
    )
    .await
    .context("the registry database")?;
    Ok(Auth::new(store.pool().clone(), registry.auth))
}

fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("SITCENTER_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password (one line on standard input):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn roles(names: &[String]) -> anyhow::Result<Vec<Role>> {
    names
        .iter()
        .map(|r| Role::parse(r).map_err(anyhow::Error::msg))
        .collect()
}

pub async fn user(args: UserArgs) -> anyhow::Result<()> {
    let auth = connect(&args.site).await?;
    match args.action {
        UserAction::Add {
            name,
            roles: names,
            display_name,
        } => {
            let roles = roles(&names)?;
            auth.add_user(&actor(), &name, &display_name, &roles, &password()?)
                .await?;
            println!("user `{name}` added");
        }
        UserAction::Passwd { name } => {
            auth.set_password(&actor(), &name, &password()?).await?;
            println!("password of `{name}` changed; their sessions are closed");
        }
        UserAction::Disable { name } => {
            auth.disable(&actor(), &name).await?;
            println!("user `{name}` disabled; their sessions are closed");
        }
        UserAction::Roles { name, roles: names } => {
            auth.set_roles(&actor(), &name, &roles(&names)?).await?;
            println!("roles of `{name}` set");
        }
        UserAction::List => {
            for u in auth.users().await? {
                let roles: Vec<&str> = u.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<24} {:<40} {}{}",
                    u.name,
                    roles.join(","),
                    u.display_name,
                    if u.disabled { " (disabled)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

pub async fn key(args: KeyArgs) -> anyhow::Result<()> {
    let auth = connect(&args.site).await?;
    match args.action {
        KeyAction::Add { name, scopes } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let key = auth.add_key(&actor(), &name, &scopes).await?;
            println!("{key}");
            eprintln!("the key is shown once; only its hash is stored");
        }
        KeyAction::List => {
            for k in auth.keys().await? {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.as_str()).collect();
                println!(
                    "{:<18} {:<30} {}{}",
                    k.id,
                    k.name,
                    scopes.join(","),
                    if k.revoked { " (revoked)" } else { "" }
                );
            }
        }
        KeyAction::Revoke { id } => {
            auth.revoke_key(&actor(), &id).await?;
            println!("key `{id}` revoked");
        }
    }
    Ok(())
}
