//! The registry's own guard against the real PostgreSQL: a separate service login that cannot
//! rewrite history or the counters, `verify` catching what an owner changes behind the
//! triggers' back, and a report racing a rejection opening a new appeal.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::test_db::TestDb;
use super::tests::{assert_intact, intake, obs, setup, submit, t0};
use super::*;
use crate::config::{Credentials, RegistryDatabase};
use crate::domain::Source;

/// A login role for one test (roles are cluster-wide), dropped at the end.
struct TestLogin {
    name: String,
}

impl TestLogin {
    async fn create(db: &TestDb) -> Self {
        let name = format!("sitcenter_svc_{:012x}", rand::rng().random::<u64>() >> 16);
        db.superuser()
            .await
            .batch_execute(&format!("CREATE ROLE {name} LOGIN"))
            .await
            .expect("create login");
        Self { name }
    }
}

impl Drop for TestLogin {
    fn drop(&mut self) {
        super::test_db::admin_blocking(format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_login_can_append_but_cannot_rewrite_disable_alter_or_shadow() {
    let db = TestDb::create().await;
    let login = TestLogin::create(&db).await;
    let database = RegistryDatabase {
        service: Some(Credentials {
            user: login.name.clone(),
            password: String::new(),
        }),
        ..RegistryDatabase::single_login(&db.url)
    };
    // The owner migrates and makes the login a member of the service role.
    let report = Registry::migrate(&database).await.expect("migrate");
    assert_eq!(report.granted_to.as_deref(), Some(login.name.as_str()));
    let registry = Registry::open(&database, Arc::new(ManualClock::new(t0())), 4)
        .await
        .expect("open as the service login");
    let s = submit(
        &registry,
        &obs("road_damage", Source::Citizen, "c-1", 51.15, 71.42),
    )
    .await
    .expect("the service appends");
    let service = registry.pool.get().await.expect("conn");
    let who: (String, String) = {
        let row = service
            .query_one("SELECT session_user::text, current_user::text", &[])
            .await
            .expect("who");
        (row.get(0), row.get(1))
    };
    assert_eq!(who, (login.name.clone(), SERVICE_ROLE.to_owned()));
    // The chain is the database's, not the caller's: a forged hash is overwritten.
    let forged = service
        .query_one(
            "INSERT INTO appeal_events (appeal_id, seq, at, actor, kind, data, hash, prev_hash, \
               recorded_at) \
             SELECT appeal_id, last_seq + 1, now(), 'x', 'comment', '{}', '\\x00', '\\x00', \
               '2000-01-01' FROM appeal_state RETURNING hash <> '\\x00' AND recorded_at > '2001-01-01'",
            &[],
        )
        .await
        .expect("an ordinary append");
    assert!(forged.get::<_, bool>(0));
    let attacks = [
        "UPDATE appeal_events SET actor = 'someone else'",
        "DELETE FROM appeal_events",
        "TRUNCATE appeal_events CASCADE",
        "ALTER TABLE appeal_events DISABLE TRIGGER ALL",
        "ALTER TABLE appeal_events DISABLE TRIGGER appeal_events_append_only",
        "DROP TRIGGER appeal_events_chain ON appeal_events",
        "ALTER TABLE appeals ADD COLUMN note text",
        "CREATE TEMP TABLE appeal_state (appeal_id bigint, status text)",
        "CREATE TABLE public.appeal_shadow (id bigint)",
        "CREATE FUNCTION public.sha256(bytea) RETURNS bytea LANGUAGE sql AS 'SELECT $1'",
        "UPDATE appeal_counters SET last_seq = 1",
        "INSERT INTO appeal_counters (year, last_seq) VALUES (2030, 41)",
        "DELETE FROM appeal_counters",
        "RESET ROLE; UPDATE appeal_events SET actor = 'x'",
        "SET ROLE postgres",
        "INSERT INTO appeals (reg_year, reg_seq, reg_number, category, source, lat, lon, \
           registered_at, registered_by, dedup_radius_m, dedup_window_s) \
         VALUES (2026, 999, '109-2026-000999', 'road_damage', 'citizen', 51.1, 71.4, now(), \
           'x', 10, 60)",
    ];
    for sql in attacks {
        let refused = service.batch_execute(sql).await;
        assert!(refused.is_err(), "the service login could run: {sql}");
    }
    drop(service);
    assert!(registry.timeline(&s.number).await.is_ok());
    assert_intact(&registry).await;
    drop(registry);
}

#[tokio::test]
async fn a_node_that_does_not_migrate_refuses_an_old_schema_and_a_superuser_service_login() {
    let db = TestDb::create().await;
    let behind = RegistryDatabase {
        migrate_at_start: false,
        ..RegistryDatabase::single_login(&db.url)
    };
    // Nothing migrated yet: the version table does not even exist.
    assert!(
        Registry::open(&behind, Arc::new(SystemClock), 1)
            .await
            .is_err()
    );
    Registry::migrate(&behind).await.expect("migrate");
    Registry::open(&behind, Arc::new(SystemClock), 1)
        .await
        .expect("current schema");
    let superuser_as_service = RegistryDatabase {
        service: Some(Credentials {
            user: "postgres".to_owned(),
            password: String::new(),
        }),
        ..RegistryDatabase::single_login(&db.url)
    };
    let refused = Registry::open(&superuser_as_service, Arc::new(SystemClock), 1)
        .await
        .expect_err("a superuser is not a service login");
    assert!(refused.to_string().contains("superuser"), "{refused}");
}

#[tokio::test]
async fn verify_finds_what_the_owner_changed_behind_the_triggers_back() {
    let (db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let mut numbers = Vec::new();
    for (i, at) in [
        (51.15, 71.42),
        (51.10, 71.40),
        (51.12, 71.45),
        (51.13, 71.38),
    ]
    .iter()
    .enumerate()
    {
        let s = submit(
            &registry,
            &obs(
                "road_damage",
                Source::Citizen,
                &format!("c-{i}"),
                at.0,
                at.1,
            ),
        )
        .await
        .expect("submit");
        numbers.push(s.number);
    }
    assert_intact(&registry).await;
    let head = registry.verify().await.expect("verify").head;
    let owner = db.superuser().await;
    let behind_the_back = |sql: String| {
        format!(
            "ALTER TABLE appeal_events DISABLE TRIGGER USER; ALTER TABLE appeals DISABLE TRIGGER USER; \
             ALTER TABLE evidence DISABLE TRIGGER USER; {sql}; \
             ALTER TABLE appeal_events ENABLE TRIGGER USER; ALTER TABLE appeals ENABLE TRIGGER USER; \
             ALTER TABLE evidence ENABLE TRIGGER USER;"
        )
    };
    let id = |n: &str| format!("(SELECT id FROM appeals WHERE reg_number = '{n}')");
    owner
        .batch_execute(&behind_the_back(format!(
            "UPDATE appeal_events SET actor = 'inspector:someone-else' WHERE seq = 2 AND appeal_id = {}",
            id(&numbers[0])
        )))
        .await
        .expect("owner rewrites an event");
    owner
        .batch_execute(&behind_the_back(format!(
            "UPDATE evidence SET lat = lat + 0.01 WHERE appeal_id = {}",
            id(&numbers[1])
        )))
        .await
        .expect("owner moves evidence");
    owner
        .batch_execute(&behind_the_back(format!(
            "UPDATE appeals SET category = 'illegal_dump' WHERE id = {}",
            id(&numbers[2])
        )))
        .await
        .expect("owner reclassifies a registration");
    owner
        .batch_execute(&behind_the_back(format!(
            "DELETE FROM appeal_events WHERE seq = 3 AND appeal_id = {}",
            id(&numbers[3])
        )))
        .await
        .expect("owner deletes an event");
    let report = registry.verify().await.expect("verify");
    assert!(!report.is_intact());
    let about = |n: &str| report.problems.iter().filter(|p| p.starts_with(n)).count();
    for n in &numbers {
        assert!(about(n) > 0, "{n} not reported: {:#?}", report.problems);
    }
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.starts_with(&numbers[0]) && p.contains("event 2") && p.contains("altered")),
        "{:#?}",
        report.problems
    );
    assert_ne!(report.head, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_arriving_while_its_appeal_is_rejected_opens_a_new_appeal() {
    let (db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let first = submit(
        &registry,
        &obs("open_manhole", Source::Camera, "cam-1:1", 51.15, 71.42),
    )
    .await
    .expect("first report");
    // An inspector's rejection is committing: it holds the appeal's lock.
    let mut inspector = db.superuser().await;
    let rejecting = inspector.transaction().await.expect("begin");
    rejecting
        .batch_execute(&format!(
            "SELECT pg_advisory_xact_lock(id) FROM appeals WHERE reg_number = '{n}'; \
             INSERT INTO appeal_events (appeal_id, seq, at, actor, kind, from_status, to_status, reason) \
             SELECT s.appeal_id, s.last_seq + 1, now(), 'inspector:a', 'rejected', s.status, 'rejected', \
               'false_positive' FROM appeal_state s JOIN appeals a ON a.id = s.appeal_id \
             WHERE a.reg_number = '{n}'",
            n = first.number
        ))
        .await
        .expect("reject inside the open transaction");
    let second = {
        let registry = registry.clone();
        tokio::spawn(async move {
            let o = obs("open_manhole", Source::Camera, "cam-1:2", 51.15, 71.42);
            let plan = intake().plan(&o).expect("plan");
            registry.submit(&o, &plan).await
        })
    };
    // Wait until the second report waits for the appeal's lock, then let the rejection commit.
    let watcher = db.superuser().await;
    let mut waited = false;
    for _ in 0..200 {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                &[],
            )
            .await
            .expect("pg_locks")
            .get(0);
        if waiting > 0 {
            waited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(waited, "the second report never waited for the appeal");
    rejecting.commit().await.expect("commit the rejection");
    let second = second.await.expect("task").expect("second report");
    assert_eq!(second.outcome, SubmitOutcome::Created, "{second:?}");
    assert_ne!(second.number, first.number);
    assert_intact(&registry).await;
}
