//! `[registry]`'s database logins (docs/security.md "Database roles"): the owner that runs the
//! migrations and the service login the node works as, each from named credentials (secrets
//! file or environment, never site.toml), plus the server-side timeouts of the service's
//! sessions.

use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use super::Credentials;
use super::error::Collector;
use super::raw::{RawRegistry, RawSecretsFile};

/// How the node reaches the registry's database.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryDatabase {
    /// libpq-style connection string or `postgresql://` URL: where, which database, and (when
    /// `owner` is not given) the owner's user name. Never a password.
    pub url: String,
    /// The owner login (runs migrations); `None` = the user of `url`.
    pub owner: Option<Credentials>,
    /// The service login, a member of `sitcenter_service`; `None` = one login for both (the
    /// owner's connections then switch to the role, which they could leave: development only).
    pub service: Option<Credentials>,
    /// Apply pending migrations at start (as the owner); otherwise `sitcenter migrate` does.
    pub migrate_at_start: bool,
    pub statement_timeout: Duration,
    pub lock_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
}

impl RegistryDatabase {
    /// One login at `url` for migrations and service, default timeouts (tests, tools).
    pub fn single_login(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            owner: None,
            service: None,
            migrate_at_start: true,
            statement_timeout: Duration::from_secs(DEFAULT_STATEMENT_TIMEOUT_S),
            lock_timeout: Duration::from_secs(DEFAULT_LOCK_TIMEOUT_S),
            idle_in_transaction_timeout: Duration::from_secs(DEFAULT_IDLE_IN_TX_TIMEOUT_S),
        }
    }
}

const DEFAULT_STATEMENT_TIMEOUT_S: u64 = 30;
const DEFAULT_LOCK_TIMEOUT_S: u64 = 10;
const DEFAULT_IDLE_IN_TX_TIMEOUT_S: u64 = 60;

pub(super) fn database_settings(
    raw: &RawRegistry,
    secrets: &RawSecretsFile,
    c: &mut Collector<'_>,
) -> RegistryDatabase {
    let url = &raw.database_url;
    let text = url.get_ref().trim();
    if text.is_empty() {
        c.push(
            Some(url.span()),
            None,
            Some("registry.database_url"),
            "is empty",
        );
    } else {
        match tokio_postgres::Config::from_str(text) {
            // Never echo the string: it may hold a secret.
            Err(_) => c.push(
                Some(url.span()),
                None,
                Some("registry.database_url"),
                "is not a libpq connection string (`host=… port=… dbname=…`) or a \
                 postgresql:// URL",
            ),
            Ok(parsed) if parsed.get_password().is_some() => c.push(
                Some(url.span()),
                None,
                Some("registry.database_url"),
                "must not contain a password; name the logins with `owner_credentials` and \
                 `service_credentials` and put them in the secrets file or the environment",
            ),
            Ok(_) => {}
        }
    }
    let mut credentials = |key: &Option<Spanned<String>>, field: &str| {
        let key = key.as_ref()?;
        match super::credentials::lookup(key.get_ref(), secrets) {
            Ok(found) => Some(found),
            Err(message) => {
                c.push(Some(key.span()), None, Some(field), message);
                None
            }
        }
    };
    let owner = credentials(&raw.owner_credentials, "registry.owner_credentials");
    let mut service = credentials(&raw.service_credentials, "registry.service_credentials");
    if let Some(user) = &raw.service_user {
        if raw.service_credentials.is_some() {
            c.push(
                Some(user.span()),
                None,
                Some("registry.service_user"),
                "give either service_user (a login without a password: peer, trust or \
                 certificate authentication) or service_credentials, not both",
            );
        } else if user.get_ref().trim().is_empty() {
            c.push(
                Some(user.span()),
                None,
                Some("registry.service_user"),
                "is empty",
            );
        } else {
            service = Some(Credentials {
                user: user.get_ref().trim().to_owned(),
                password: String::new(),
            });
        }
    }
    let mut timeout = |v: &Option<Spanned<f64>>, field: &str, default: u64| match v {
        None => Duration::from_secs(default),
        Some(v) => {
            let s = *v.get_ref();
            if !s.is_finite() || !(0.1..=3600.0).contains(&s) {
                c.push(
                    Some(v.span()),
                    None,
                    Some(field),
                    format!("must be seconds between 0.1 and 3600, got {s}"),
                );
            }
            Duration::from_secs_f64(s.clamp(0.1, 3600.0))
        }
    };
    RegistryDatabase {
        url: text.to_owned(),
        owner,
        service,
        migrate_at_start: raw.migrate_at_start.unwrap_or(true),
        statement_timeout: timeout(
            &raw.statement_timeout_s,
            "registry.statement_timeout_s",
            DEFAULT_STATEMENT_TIMEOUT_S,
        ),
        lock_timeout: timeout(
            &raw.lock_timeout_s,
            "registry.lock_timeout_s",
            DEFAULT_LOCK_TIMEOUT_S,
        ),
        idle_in_transaction_timeout: timeout(
            &raw.idle_in_transaction_timeout_s,
            "registry.idle_in_transaction_timeout_s",
            DEFAULT_IDLE_IN_TX_TIMEOUT_S,
        ),
    }
}
