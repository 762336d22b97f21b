//! A throwaway database per test on the real PostgreSQL (`SITCENTER_TEST_PG`, default
//! `host=127.0.0.1 port=5432 user=postgres`), dropped when the test ends, pass or fail.

use rand::Rng;
use tokio_postgres::NoTls;

pub(crate) const DEFAULT_URL: &str = "host=127.0.0.1 port=5432 user=postgres";

pub(crate) fn server_url() -> String {
    std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) url: String,
}

async fn admin() -> tokio_postgres::Client {
    let url = format!("{} dbname=postgres", server_url());
    let (client, connection) = match tokio_postgres::connect(&url, NoTls).await {
        Ok(pair) => pair,
        Err(e) => {
            panic!("cannot reach the test PostgreSQL at `{url}` (set SITCENTER_TEST_PG): {e}")
        }
    };
    tokio::spawn(connection);
    client
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        let name = format!("sitcenter_test_{:016x}", rand::rng().random::<u64>());
        if let Err(e) = admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
        {
            panic!("cannot create test database {name}: {e}");
        }
        let url = format!("{} dbname={name}", server_url());
        Self { name, url }
    }

    /// A superuser connection to this database (to try what the service role may not).
    pub(crate) async fn superuser(&self) -> tokio_postgres::Client {
        let (client, connection) = match tokio_postgres::connect(&self.url, NoTls).await {
            Ok(pair) => pair,
            Err(e) => panic!("cannot connect to {}: {e}", self.name),
        };
        tokio::spawn(connection);
        client
    }
}

/// Runs `sql` on the server's `postgres` database from a thread with its own runtime (for
/// `Drop`, which runs inside a test's runtime); failures are printed, not raised.
pub(crate) fn admin_blocking(sql: String) {
    let done = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(rt) = rt {
            rt.block_on(async {
                if let Err(e) = admin().await.batch_execute(&sql).await {
                    eprintln!("test cleanup `{sql}` failed: {e}");
                }
            });
        }
    })
    .join();
    if done.is_err() {
        eprintln!("test cleanup panicked");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        admin_blocking(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
