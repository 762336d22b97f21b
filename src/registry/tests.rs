//! Registry tests against the real PostgreSQL, one fresh database per test.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};

use super::test_db::TestDb;
use super::*;
use crate::config::IncidentsConfig;
use crate::domain::{Category, EvidenceRef, Observation, RejectReason, Source, Status};
use crate::geo::CityHandle;
use crate::incidents::Intake;

pub(super) fn intake() -> Intake {
    static CITY: OnceLock<Arc<CityHandle>> = OnceLock::new();
    let city = CITY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
        Arc::new(CityHandle::load(&dir).expect("demo city"))
    });
    Intake::new(Arc::new(IncidentsConfig::default()), Arc::clone(city))
}

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .single()
        .expect("valid time")
}

pub(super) fn obs(
    category: &str,
    source: Source,
    source_ref: &str,
    lat: f64,
    lon: f64,
) -> Observation {
    Observation {
        category: Category::new(category).expect("category"),
        source,
        source_ref: source_ref.to_owned(),
        position: Position::new(lat, lon),
        uncertainty_m: Some(5.0),
        address: Some("Kabanbay Batyr Ave 10".into()),
        description: Some(format!("{category} seen")),
        actor: format!("{source}:{source_ref}"),
        observed_at: t0(),
        evidence: vec![EvidenceRef {
            kind: "image".into(),
            uri: Some(format!("s3://evidence/{source_ref}.jpg")),
            data: None,
        }],
    }
}

pub(super) async fn setup(clock: Arc<dyn Clock>) -> (TestDb, Registry) {
    let db = TestDb::create().await;
    let registry = Registry::connect(&db.url, clock)
        .await
        .expect("connect + migrate");
    (db, registry)
}

/// `registry verify` finds nothing wrong: chains, projections and numbers.
pub(super) async fn assert_intact(registry: &Registry) {
    let report = registry.verify().await.expect("verify");
    assert!(report.is_intact(), "{:#?}", report.problems);
}

pub(super) async fn submit(
    registry: &Registry,
    o: &Observation,
) -> Result<Submission, RegistryError> {
    let plan = intake().plan(o).expect("plan");
    registry.submit(o, &plan).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_numbers_stay_unique_and_gap_free_under_50_concurrent_writers() {
    let (_db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let mut tasks = Vec::new();
    for i in 0..60 {
        let registry = registry.clone();
        tasks.push(tokio::spawn(async move {
            // 50 good writers, far apart (no dedup), and 10 whose transaction fails after it has
            // drawn a number (empty actor violates a CHECK): their numbers must be returned.
            let lat = 51.07 + 0.003 * f64::from(i % 50);
            let lon = 71.32 + 0.0045 * f64::from(i % 50);
            let mut o = obs(
                "illegal_dump",
                Source::Camera,
                &format!("cam-{i}"),
                lat,
                lon,
            );
            if i >= 50 {
                o.actor = String::new();
            }
            submit(&registry, &o).await
        }));
    }
    let mut numbers = BTreeSet::new();
    let mut failures = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(s) => {
                assert_eq!(s.outcome, SubmitOutcome::Created);
                assert!(numbers.insert(s.number.clone()), "duplicate {}", s.number);
            }
            Err(_) => failures += 1,
        }
    }
    assert_eq!(failures, 10);
    let expected: BTreeSet<String> = (1..=50).map(|n| registration_number(2026, n)).collect();
    assert_eq!(numbers, expected);
    let all = registry
        .search(&AppealFilter {
            limit: Some(500),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(all.len(), 50);
    assert_intact(&registry).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_duplicate_observations_of_one_open_manhole_yield_one_appeal_with_100_pieces_of_evidence()
 {
    let (_db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let city = intake().city();
    let manhole = city.manholes()[100].clone();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let registry = registry.clone();
        let p = manhole.position;
        tasks.push(tokio::spawn(async move {
            // Cameras, the cover sensor and operators all report it, a few metres apart.
            let source = [Source::Camera, Source::Sensor, Source::Operator][i % 3];
            let jitter = (i as f64 - 50.0) * 0.000_001;
            let o = obs(
                "open_manhole",
                source,
                &format!("obs-{i}"),
                p.lat + jitter,
                p.lon - jitter,
            );
            submit(&registry, &o).await.expect("submit")
        }));
    }
    let mut created = Vec::new();
    let mut joined = 0;
    for t in tasks {
        let s = t.await.expect("task");
        match s.outcome {
            SubmitOutcome::Created => created.push(s.number),
            SubmitOutcome::Joined => joined += 1,
            SubmitOutcome::Repeated => panic!("no repeats were sent"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(joined, 99);
    let appeal = registry
        .appeal(&created[0])
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(appeal.evidence_count, 100);
    assert_eq!(appeal.asset_id.as_deref(), Some(manhole.id.as_str()));
    assert_eq!(appeal.body_id.as_deref(), Some(manhole.owner.as_str()));
    assert_eq!(
        registry
            .evidence(&created[0])
            .await
            .expect("evidence")
            .len(),
        100
    );
    let open = registry
        .search(&AppealFilter {
            category: Some("open_manhole".into()),
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(open.len(), 1);
    assert_intact(&registry).await;
}

#[tokio::test]
async fn the_same_observation_submitted_twice_is_recorded_once() {
    let (_db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let o = obs(
        "flooding",
        Source::Sensor,
        "sensor:FL-1:episode:1",
        51.12,
        71.43,
    );
    let first = submit(&registry, &o).await.expect("first");
    let again = submit(&registry, &o).await.expect("again");
    assert_eq!(first.outcome, SubmitOutcome::Created);
    assert_eq!(again.outcome, SubmitOutcome::Repeated);
    assert_eq!(again.number, first.number);
    let appeal = registry
        .appeal(&first.number)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(appeal.evidence_count, 1);
}

#[tokio::test]
async fn observations_beyond_the_radius_or_the_window_or_of_a_closed_appeal_open_new_appeals() {
    let clock = Arc::new(ManualClock::new(t0()));
    let (_db, registry) = setup(clock.clone()).await;
    let base = submit(
        &registry,
        &obs("illegal_dump", Source::Camera, "a", 51.12, 71.43),
    )
    .await
    .expect("base");
    // 60 m away: within the 80 m dump radius → joins.
    let near = submit(
        &registry,
        &obs("illegal_dump", Source::Operator, "b", 51.12054, 71.43),
    )
    .await
    .expect("near");
    assert_eq!(
        (near.outcome, &near.number),
        (SubmitOutcome::Joined, &base.number)
    );
    // 120 m away → new.
    let far = submit(
        &registry,
        &obs("illegal_dump", Source::Camera, "c", 51.12108, 71.43),
    )
    .await
    .expect("far");
    assert_eq!(far.outcome, SubmitOutcome::Created);
    // Another category at the same spot → new.
    let other = submit(
        &registry,
        &obs("yard_garbage", Source::Citizen, "d", 51.12, 71.43),
    )
    .await
    .expect("other");
    assert_eq!(other.outcome, SubmitOutcome::Created);
    // 25 h after the last evidence (window 24 h) → new.
    let mut late = obs("illegal_dump", Source::Camera, "e", 51.12, 71.43);
    late.observed_at = t0() + chrono::Duration::hours(25);
    let late = submit(&registry, &late).await.expect("late");
    assert_eq!(late.outcome, SubmitOutcome::Created);
    // A rejected appeal absorbs nothing.
    registry
        .apply(
            &late.number,
            "inspector-7",
            &Action::Reject {
                reason: RejectReason::FalsePositive,
            },
            None,
        )
        .await
        .expect("reject");
    let mut after = obs("illegal_dump", Source::Camera, "f", 51.12, 71.43);
    after.observed_at = t0() + chrono::Duration::hours(26);
    let after = submit(&registry, &after).await.expect("after");
    assert_eq!(after.outcome, SubmitOutcome::Created);
    assert_ne!(after.number, late.number);
}

#[tokio::test]
async fn deleting_or_rewriting_history_fails_for_the_service_role_and_for_a_superuser() {
    let (db, registry) = setup(Arc::new(ManualClock::new(t0()))).await;
    let s = submit(
        &registry,
        &obs("road_damage", Source::Citizen, "c-1", 51.15, 71.42),
    )
    .await
    .expect("submit");
    let before = registry.timeline(&s.number).await.expect("timeline");
    let service = registry.pool.get().await.expect("conn");
    let role: String = service
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("who")
        .get(0);
    assert_eq!(role, SERVICE_ROLE);
    let superuser = db.superuser().await;
    let attacks = [
        "DELETE FROM appeal_events",
        "DELETE FROM appeals",
        "DELETE FROM evidence",
        "UPDATE appeal_events SET actor = 'someone else'",
        "UPDATE appeals SET category = 'nothing'",
        "UPDATE appeal_state SET status = 'closed'",
        "DELETE FROM appeal_state",
        "TRUNCATE appeal_events CASCADE",
        "UPDATE appeal_deadlines SET due_at = due_at + interval '10 days'",
    ];
    for sql in attacks {
        let as_service = service.batch_execute(sql).await;
        assert!(as_service.is_err(), "service role could run: {sql}");
        let as_superuser = superuser.batch_execute(sql).await;
        let err = as_superuser.expect_err(sql);
        assert!(
            err.as_db_error()
                .is_some_and(|e| e.message().contains("append-only")
                    || e.message().contains("derived from appeal_events")),
            "{sql}: {err:?}"
        );
    }
    // A forged transition that skips the lifecycle is refused by the log trigger.
    let forged = superuser
        .batch_execute(&format!(
            "INSERT INTO appeal_events (appeal_id, seq, at, actor, kind, from_status, to_status, data) \
             SELECT id, 4, now(), 'x', 'closed', 'awaiting_confirmation', 'closed', '{{}}' \
             FROM appeals WHERE reg_number = '{}'",
            s.number
        ))
        .await;
    assert!(forged.is_err());
    assert_eq!(
        registry.timeline(&s.number).await.expect("timeline"),
        before
    );
    assert_intact(&registry).await;
}

#[tokio::test]
async fn sla_escalation_fires_at_the_right_minute() {
    let clock = Arc::new(ManualClock::new(t0()));
    let (_db, registry) = setup(clock.clone()).await;
    let manhole = submit(
        &registry,
        &obs("open_manhole", Source::Camera, "m", 51.13, 71.45),
    )
    .await
    .expect("manhole");
    let lift = submit(
        &registry,
        &obs("elevator_stuck", Source::Citizen, "l", 51.17, 71.41),
    )
    .await
    .expect("lift");
    for n in [&manhole.number, &lift.number] {
        registry
            .apply(n, "inspector-1", &Action::Confirm, None)
            .await
            .expect("confirm");
    }
    let minutes = |m: i64| t0() + chrono::Duration::minutes(m);

    clock.set(minutes(19));
    assert_eq!(registry.escalate_overdue().await.expect("check"), vec![]);
    clock.set(minutes(20));
    let fired = registry.escalate_overdue().await.expect("check");
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].number.as_str(), fired[0].stage.as_str()),
        (lift.number.as_str(), "released")
    );
    assert_eq!(fired[0].due_at, minutes(20));

    clock.set(minutes(179));
    assert_eq!(registry.escalate_overdue().await.expect("check"), vec![]);
    let view = registry
        .appeal(&manhole.number)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.deadlines[0].remaining_minutes, 1);
    assert!(!view.deadlines[0].overdue);
    clock.set(minutes(180));
    let fired = registry.escalate_overdue().await.expect("check");
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].number.as_str(), fired[0].stage.as_str()),
        (manhole.number.as_str(), "fenced")
    );
    // Once per stage.
    clock.set(minutes(181));
    assert_eq!(registry.escalate_overdue().await.expect("check"), vec![]);
    let view = registry
        .appeal(&manhole.number)
        .await
        .expect("read")
        .expect("exists");
    assert!(view.deadlines[0].overdue && view.deadlines[0].escalated);
    assert_eq!(view.deadlines[0].remaining_minutes, -1);

    // Fenced late, then the 24 h closing deadline escalates at exactly 24 h.
    registry
        .apply(
            &manhole.number,
            "dispatcher-2",
            &Action::Assign {
                body_id: "astana-su-arnasy".into(),
                body_name: None,
            },
            None,
        )
        .await
        .expect("assign");
    registry
        .apply(
            &manhole.number,
            "crew-5",
            &Action::ReachStage {
                stage: "fenced".into(),
            },
            Some("fence up"),
        )
        .await
        .expect("fenced");
    clock.set(minutes(24 * 60 - 1));
    assert_eq!(registry.escalate_overdue().await.expect("check"), vec![]);
    clock.set(minutes(24 * 60));
    let fired = registry.escalate_overdue().await.expect("check");
    assert_eq!(
        fired.iter().map(|e| e.stage.as_str()).collect::<Vec<_>>(),
        vec!["closed"]
    );
    let timeline = registry.timeline(&manhole.number).await.expect("timeline");
    let escalations: Vec<_> = timeline.iter().filter(|e| e.kind == "escalated").collect();
    assert_eq!(escalations.len(), 2);
    assert!(escalations.iter().all(|e| e.actor == "sla"));
    let mut text = String::new();
    let mut metrics = prometheus_client::registry::Registry::default();
    registry.metrics().register(&mut metrics);
    prometheus_client::encoding::text::encode(&mut text, &metrics).expect("encode");
    assert!(
        text.contains(r#"appeal_escalations_total{category="open_manhole",stage="fenced"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn an_appeal_runs_from_detection_to_closure_and_can_be_reopened() {
    let clock = Arc::new(ManualClock::new(t0()));
    let (_db, registry) = setup(clock.clone()).await;
    let s = submit(
        &registry,
        &obs("yard_garbage", Source::Camera, "y", 51.15, 71.42),
    )
    .await
    .expect("submit");
    let n = s.number.as_str();
    let status = |v: AppealView| v.status;
    let early = registry
        .apply(
            n,
            "crew",
            &Action::Close {
                confirmed_by: Confirmer::Reporter,
            },
            None,
        )
        .await;
    assert!(
        matches!(early, Err(RegistryError::InvalidTransition { .. })),
        "{early:?}"
    );
    assert!(matches!(
        registry.apply(n, "", &Action::Confirm, None).await,
        Err(RegistryError::Invalid { .. })
    ));
    let steps = [
        (Action::Confirm, Status::Confirmed),
        (
            Action::Assign {
                body_id: "ksk-0001".into(),
                body_name: Some("OSI 1".into()),
            },
            Status::Assigned,
        ),
        (Action::Start, Status::InProgress),
        (Action::Resolve, Status::Resolved),
        (
            Action::Close {
                confirmed_by: Confirmer::Reporter,
            },
            Status::Closed,
        ),
        (Action::Reopen, Status::Assigned),
    ];
    for (i, (action, want)) in steps.iter().enumerate() {
        clock.advance(chrono::Duration::minutes(5));
        let v = registry
            .apply(n, &format!("user-{i}"), action, Some("because"))
            .await
            .expect("step");
        assert_eq!(status(v), *want, "after {action:?}");
    }
    let v = registry.appeal(n).await.expect("read").expect("exists");
    assert_eq!(v.body_id.as_deref(), Some("ksk-0001"));
    let timeline = registry.timeline(n).await.expect("timeline");
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "registered",
            "sent_for_confirmation",
            "evidence_added",
            "confirmed",
            "assigned",
            "started",
            "resolved",
            "closed",
            "reopened"
        ]
    );
    assert!(timeline.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(timeline[7].data["confirmed_by"], "reporter");
    assert_eq!(timeline[8].reason.as_deref(), Some("because"));
    assert_intact(&registry).await;
}

#[tokio::test]
async fn registration_numbers_restart_at_one_each_year() {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 0)
            .single()
            .expect("time"),
    ));
    let (_db, registry) = setup(clock.clone()).await;
    let a = submit(
        &registry,
        &obs("road_damage", Source::Citizen, "y1", 51.15, 71.42),
    )
    .await
    .expect("a");
    clock.advance(chrono::Duration::minutes(2));
    let mut o = obs("road_damage", Source::Citizen, "y2", 51.10, 71.50);
    o.observed_at = clock.now();
    let b = submit(&registry, &o).await.expect("b");
    assert_eq!(a.number, "109-2026-000001");
    assert_eq!(b.number, "109-2027-000001");
}

#[tokio::test]
async fn search_filters_by_status_category_body_and_overdue() {
    let clock = Arc::new(ManualClock::new(t0()));
    let (_db, registry) = setup(clock.clone()).await;
    let a = submit(
        &registry,
        &obs("elevator_stuck", Source::Citizen, "s1", 51.17, 71.41),
    )
    .await
    .expect("a");
    let b = submit(
        &registry,
        &obs("road_damage", Source::Operator, "s2", 51.10, 71.50),
    )
    .await
    .expect("b");
    registry
        .apply(&b.number, "insp", &Action::Confirm, None)
        .await
        .expect("confirm");
    let by = |f: AppealFilter| {
        let registry = registry.clone();
        async move {
            registry
                .search(&f)
                .await
                .expect("search")
                .into_iter()
                .map(|v| v.number)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(AppealFilter {
            status: Some(Status::Confirmed),
            ..Default::default()
        })
        .await,
        vec![b.number.clone()]
    );
    assert_eq!(
        by(AppealFilter {
            category: Some("elevator_stuck".into()),
            ..Default::default()
        })
        .await,
        vec![a.number.clone()]
    );
    assert_eq!(
        by(AppealFilter {
            source: Some(Source::Operator),
            ..Default::default()
        })
        .await,
        vec![b.number.clone()]
    );
    clock.advance(chrono::Duration::minutes(21));
    assert_eq!(
        by(AppealFilter {
            overdue_only: true,
            ..Default::default()
        })
        .await,
        vec![a.number.clone()]
    );
    assert_eq!(
        by(AppealFilter {
            text: Some("Kabanbay".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_nodes_can_start_at_once_on_one_database_and_share_the_sequence() {
    let db = TestDb::create().await;
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(t0()));
    let mut starts = Vec::new();
    for _ in 0..4 {
        let (url, clock) = (db.url.clone(), Arc::clone(&clock));
        starts.push(tokio::spawn(
            async move { Registry::connect(&url, clock).await },
        ));
    }
    let mut nodes = Vec::new();
    for s in starts {
        nodes.push(
            s.await
                .expect("task")
                .expect("every node migrates or finds it done"),
        );
    }
    let a = submit(
        &nodes[0],
        &obs("road_damage", Source::Operator, "n1", 51.15, 71.42),
    )
    .await
    .expect("a");
    let b = submit(
        &nodes[3],
        &obs("road_damage", Source::Operator, "n2", 51.10, 71.50),
    )
    .await
    .expect("b");
    assert_eq!(
        [a.number, b.number],
        [registration_number(2026, 1), registration_number(2026, 2)]
    );
}
