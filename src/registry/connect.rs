//! The two database logins (docs/security.md "Database roles"): the owner runs the migrations
//! (at start, or `sitcenter migrate`) and is then let go; the pool works as the service login, a
//! member of [`SERVICE_ROLE`] that can read and append but not ALTER, DISABLE TRIGGER, create
//! temporary tables or rewrite counters. Every service session carries statement, lock and
//! idle-in-transaction timeouts.

use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

use super::{
    Clock, DEFAULT_POOL_SIZE, MIGRATION_LOCK, Registry, RegistryError, SERVICE_ROLE, embedded,
};
use crate::config::{Credentials, RegistryDatabase};
use crate::obs::RegistryMetrics;

/// What `sitcenter migrate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Migrations applied now (`V4__registry_guard` …), oldest first.
    pub applied: Vec<String>,
    /// The schema version after the run.
    pub version: i32,
    /// The service login made a member of the service role now.
    pub granted_to: Option<String>,
}

fn base(db: &RegistryDatabase) -> Result<tokio_postgres::Config, RegistryError> {
    let mut config = tokio_postgres::Config::from_str(&db.url).map_err(|_| {
        // Never echo the string: it may hold a secret.
        RegistryError::Config(
            "database_url is not a libpq connection string or a postgresql:// URL".to_owned(),
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok(config)
}

fn with_login(
    mut config: tokio_postgres::Config,
    login: Option<&Credentials>,
) -> tokio_postgres::Config {
    if let Some(login) = login {
        config.user(&login.user);
        if !login.password.is_empty() {
            config.password(&login.password);
        }
    }
    config
}

fn owner(db: &RegistryDatabase) -> Result<tokio_postgres::Config, RegistryError> {
    Ok(with_login(base(db)?, db.owner.as_ref()))
}

/// The newest migration this build carries.
fn newest_migration() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

async fn client(
    config: &tokio_postgres::Config,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), RegistryError> {
    let (client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "registry connection failed");
        }
    });
    Ok((client, driver))
}

impl Registry {
    /// Checks that the database answers to the login the node works as (`sitcenter
    /// validate`), without running migrations or changing anything.
    pub async fn check_reachable(db: &RegistryDatabase) -> Result<(), RegistryError> {
        let config = match &db.service {
            Some(service) => with_login(base(db)?, Some(service)),
            None => owner(db)?,
        };
        let (client, driver) = client(&config).await?;
        client.simple_query("SELECT 1").await?;
        drop(client);
        let _ended = driver.await;
        Ok(())
    }

    /// One login at `url` for migrations and service (tests and tools; see
    /// [`Registry::open`]).
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, RegistryError> {
        Self::connect_with(url, clock, DEFAULT_POOL_SIZE).await
    }

    pub async fn connect_with(
        url: &str,
        clock: Arc<dyn Clock>,
        pool_size: usize,
    ) -> Result<Self, RegistryError> {
        Self::open(&RegistryDatabase::single_login(url), clock, pool_size).await
    }

    /// Migrates as the owner when `migrate_at_start` (else checks the schema is current), then
    /// opens a pool of `pool_size` service sessions.
    pub async fn open(
        db: &RegistryDatabase,
        clock: Arc<dyn Clock>,
        pool_size: usize,
    ) -> Result<Self, RegistryError> {
        if db.migrate_at_start {
            Self::migrate(db).await?;
        }
        let mut service = match &db.service {
            Some(login) => with_login(base(db)?, Some(login)),
            None => {
                tracing::warn!(
                    "registry: one database login for migrations and service (no \
                     service_credentials): the service's sessions could leave the {SERVICE_ROLE} \
                     role; use two logins outside development (docs/security.md)"
                );
                owner(db)?
            }
        };
        let ms = |d: std::time::Duration| d.as_millis();
        service.options(format!(
            "-c role={SERVICE_ROLE} -c statement_timeout={} -c lock_timeout={} \
             -c idle_in_transaction_session_timeout={}",
            ms(db.statement_timeout),
            ms(db.lock_timeout),
            ms(db.idle_in_transaction_timeout),
        ));
        if let Some(login) = &db.service {
            check_service_login(&service, &login.user).await?;
        }
        let manager = Manager::from_config(
            service,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        let conn = pool.get().await?;
        if !db.migrate_at_start {
            let version: Option<i32> = conn
                .query_one("SELECT max(version) FROM refinery_schema_history", &[])
                .await?
                .try_get(0)?;
            let want = newest_migration();
            if version.unwrap_or(0) < want {
                return Err(RegistryError::Schema(format!(
                    "the database is at version {} but this build needs {want}: run \
                     `sitcenter migrate` (or set migrate_at_start = true)",
                    version.unwrap_or(0)
                )));
            }
        }
        drop(conn);
        Ok(Self {
            pool,
            clock,
            metrics: Arc::new(RegistryMetrics::default()),
        })
    }

    /// Applies pending migrations as the owner, under an advisory lock (several nodes may start
    /// at once), and makes the service login a member of the service role when it is not yet.
    pub async fn migrate(db: &RegistryDatabase) -> Result<MigrateReport, RegistryError> {
        let (mut client, driver) = client(&owner(db)?).await?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = embedded::migrations::runner().run_async(&mut client).await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = report?;
        let mut out = MigrateReport {
            version: newest_migration(),
            ..MigrateReport::default()
        };
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "registry migration applied");
            out.applied.push(m.to_string());
        }
        if let Some(login) = &db.service {
            let row = client
                .query_opt(
                    "SELECT pg_has_role(r.oid, $2::text, 'MEMBER') FROM pg_roles r \
                     WHERE r.rolname = $1",
                    &[&login.user, &SERVICE_ROLE],
                )
                .await?;
            match row.map(|r| r.try_get::<_, bool>(0)).transpose()? {
                None => {
                    return Err(RegistryError::Login(format!(
                        "the service login `{}` does not exist; create it (e.g. `CREATE ROLE \
                         \"{}\" LOGIN PASSWORD '…'`) and run again",
                        login.user, login.user
                    )));
                }
                Some(true) => {}
                Some(false) => {
                    let grant = format!(
                        "GRANT {SERVICE_ROLE} TO \"{}\"",
                        login.user.replace('"', "\"\"")
                    );
                    client.batch_execute(&grant).await.map_err(|e| {
                        RegistryError::Login(format!(
                            "cannot make `{}` a member of {SERVICE_ROLE} ({e}); run `{grant}` \
                             as a role that may",
                            login.user
                        ))
                    })?;
                    out.granted_to = Some(login.user.clone());
                }
            }
        }
        drop(client);
        if let Err(e) = driver.await {
            tracing::warn!(error = %e, "registry migration connection task ended abnormally");
        }
        Ok(out)
    }
}

/// The service login must be what its name says: a member of the service role, not a superuser,
/// and not the owner of the registry's tables.
async fn check_service_login(
    config: &tokio_postgres::Config,
    user: &str,
) -> Result<(), RegistryError> {
    let (client, driver) = client(config).await.map_err(|e| {
        RegistryError::Login(format!("the service login `{user}` cannot connect: {e}"))
    })?;
    let row = client
        .query_one(
            "SELECT r.rolsuper, r.rolbypassrls, \
               EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public' \
                 AND t.tablename = 'appeal_events' AND t.tableowner = session_user) \
             FROM pg_roles r WHERE r.rolname = session_user",
            &[],
        )
        .await?;
    drop(client);
    let _ended = driver.await;
    let (superuser, bypass, owns): (bool, bool, bool) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if superuser || bypass || owns {
        return Err(RegistryError::Login(format!(
            "the service login `{user}` is a superuser or owns the registry: it could disable \
             the registry's triggers; give the service a login of its own (docs/security.md)"
        )));
    }
    Ok(())
}
