//! The sensor stage against a real Mosquitto (`SITCENTER_TEST_MQTT`, default 127.0.0.1:1883,
//! or a private one started here) and PostgreSQL (a database per test), with messages sent by
//! `mosquitto_pub` (a client we did not write) and by our simulator. Each test uses its own
//! topic prefix, ChirpStack application id and client ids, so tests run in parallel.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{
    ChirpstackFields, ChirpstackSettings, SensorEntry, SensorMqttSettings, SensorTypeSettings,
};
use crate::domain::{CoverState, Observation, Position, SensorReading, Source};
use crate::geo::{CityHandle, CityIndex};

use crate::config::IncidentsConfig;
use crate::registry::SystemClock;
use crate::registry::test_db::TestDb;

const WAIT: Duration = Duration::from_secs(30);

fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo")
}

fn city() -> Arc<CityHandle> {
    static CITY: std::sync::OnceLock<Arc<CityHandle>> = std::sync::OnceLock::new();
    CITY.get_or_init(|| Arc::new(CityHandle::load(&demo_dir()).expect("demo city")))
        .clone()
}

fn broker() -> (String, u16) {
    match std::env::var("SITCENTER_TEST_MQTT") {
        Ok(addr) => {
            let (host, port) = addr.split_once(':').expect("SITCENTER_TEST_MQTT=host:port");
            (host.to_owned(), port.parse().expect("port"))
        }
        Err(_) => ("127.0.0.1".to_owned(), 1883),
    }
}

fn unique(tag: &str) -> String {
    format!("{tag}{:012x}", rand::rng().random::<u64>() >> 16)
}

/// `count` manholes at least 100 m from each other (so their appeals never merge).
fn spread_manholes(city: &CityIndex, count: usize) -> Vec<crate::geo::Asset> {
    let mut chosen: Vec<crate::geo::Asset> = Vec::new();
    for m in city.manholes() {
        if chosen
            .iter()
            .all(|c| c.position.distance_m(&m.position) > 100.0)
        {
            chosen.push(m.clone());
            if chosen.len() == count {
                break;
            }
        }
    }
    assert_eq!(chosen.len(), count, "enough spread-out manholes");
    chosen
}

fn cover_type() -> SensorTypeSettings {
    SensorTypeSettings {
        heartbeat: Duration::from_secs(3600),
        silent_after: Duration::from_secs(3 * 3600),
        tilt_alarm_deg: 15.0,
        battery_low_pct: 20.0,
        battery_ok_pct: 30.0,
        flood_level_cm: Some(40.0),
    }
}

struct Setup {
    settings: SensorsSettings,
    manholes: Vec<crate::geo::Asset>,
}

fn settings(sensors: usize, port: Option<u16>) -> Setup {
    let city = city().current();
    let manholes = spread_manholes(&city, sensors);
    let (host, default_port) = broker();
    let prefix = unique("test/sensors-");
    let mut types = BTreeMap::new();
    types.insert("cover".to_owned(), cover_type());
    let entries = manholes
        .iter()
        .enumerate()
        .map(|(i, m)| SensorEntry {
            id: SensorId::new(&format!("S-{i:04}")).expect("id"),
            kind: "cover".to_owned(),
            manhole: m.id.clone(),
            dev_eui: Some(format!("{:016x}", 0x00a0_0000_0000_0000_u64 + i as u64)),
            defined_at: format!("test:{i}"),
        })
        .collect();
    Setup {
        settings: SensorsSettings {
            mqtt: SensorMqttSettings {
                host,
                port: port.unwrap_or(default_port),
                client_id: unique("sitcenter-test-"),
                credentials: None,
                share_group: None,
                keep_alive: Duration::from_secs(10),
                session_expiry: Duration::from_secs(600),
                receive_maximum: 1000,
                max_packet_bytes: 2 * 1024 * 1024,
            },
            topic_prefix: prefix,
            chirpstack: Some(ChirpstackSettings {
                application_id: unique("app-"),
                fields: ChirpstackFields {
                    state: "cover.state".into(),
                    tilt_deg: Some("cover.tilt".into()),
                    water_level_cm: Some("water".into()),
                    flooding: None,
                    temperature_c: Some("temp".into()),
                    battery_pct: Some("battery".into()),
                    firmware: None,
                },
                state_values: [
                    ("0".to_owned(), CoverState::Closed),
                    ("1".to_owned(), CoverState::Open),
                    ("2".to_owned(), CoverState::Tilted),
                ]
                .into_iter()
                .collect(),
            }),
            types,
            sensors: entries,
            sensors_file: PathBuf::from("test"),
            max_payload_bytes: 16 * 1024,
            batch_max: 500,
            silence_check: Duration::from_millis(200),
            message_retention: Duration::from_secs(3600),
            recent_rejections: 100,
        },
        manholes,
    }
}

struct Running {
    stage: Option<SensorsStage>,
    stop: CancellationToken,
    metrics: SensorMetrics,
    registry: Registry,
    intake: Intake,
}

impl Running {
    fn handle(&self) -> &SensorsHandle {
        &self.stage.as_ref().expect("running").handle
    }

    async fn stop(mut self) {
        self.stop.cancel();
        if let Some(stage) = self.stage.take() {
            stage.stopped().await;
        }
    }
}

async fn start(db: &TestDb, settings: &SensorsSettings) -> Running {
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let handle = city();
    let intake = Intake::new(Arc::new(IncidentsConfig::default()), handle.clone());
    let metrics = SensorMetrics::default();
    let stop = CancellationToken::new();
    let stage = SensorsStage::start(
        settings,
        &handle.current(),
        registry.clone(),
        intake.clone(),
        metrics.clone(),
        stop.clone(),
    )
    .await
    .expect("sensor stage starts");
    let running = Running {
        stage: Some(stage),
        stop,
        metrics,
        registry,
        intake,
    };
    wait_for("the subscriber connects and subscribes", || async {
        running.handle().connection().subscribed
    })
    .await;
    running
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ts(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000 + seconds, 0).expect("ts")
}

fn reading(seq: u64, at: i64, state: CoverState) -> SensorReading {
    SensorReading {
        seq,
        ts: ts(at),
        state,
        tilt_deg: None,
        water_level_cm: Some(3.0),
        flooding: None,
        temperature_c: Some(-2.0),
        battery_pct: Some(88.0),
        rssi_dbm: Some(-95.0),
        snr_db: None,
        firmware: Some("2.3.1".into()),
    }
}

fn own(sensor: &str, r: &SensorReading) -> String {
    String::from_utf8(crate::sim::sensors::payload(
        &SensorId::new(sensor).expect("id"),
        r,
    ))
    .expect("utf8")
}

/// `mosquitto_pub` with one message per line of `lines` (`-l`), or the file `-f`.
fn mosquitto_pub(port: u16, topic: &str, extra: &[&str], stdin: Option<&str>) {
    let (host, _) = broker();
    let mut cmd = Command::new("mosquitto_pub");
    cmd.args([
        "-h",
        &host,
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-q",
        "1",
        "-V",
        "mqttv5",
    ])
    .args(extra)
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .expect("mosquitto_pub runs (apt-get install mosquitto-clients)");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(text.as_bytes())
            .expect("write to mosquitto_pub");
    }
    let status = child.wait().expect("mosquitto_pub ends");
    assert!(status.success(), "mosquitto_pub failed: {status}");
}

fn publish_lines(port: u16, topic: &str, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    mosquitto_pub(port, topic, &["-l"], Some(&text));
}

async fn sql_rows(db: &TestDb, sql: &str) -> Vec<tokio_postgres::Row> {
    db.superuser().await.query(sql, &[]).await.expect("query")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sql_rows(db, sql).await[0].get(0)
}

fn applied(m: &SensorMetrics) -> u64 {
    [Format::Own, Format::Chirpstack]
        .iter()
        .map(|f| m.count(f.as_str(), obs::OUTCOME_APPLIED))
        .sum()
}

fn handled(m: &SensorMetrics) -> u64 {
    [
        obs::OUTCOME_APPLIED,
        obs::OUTCOME_DUPLICATE,
        obs::OUTCOME_STALE,
        obs::OUTCOME_REJECTED,
        obs::OUTCOME_UNKNOWN_SENSOR,
    ]
    .iter()
    .flat_map(|o| {
        [Format::Own, Format::Chirpstack, Format::Unknown]
            .iter()
            .map(move |f| m.count(f.as_str(), o))
    })
    .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_cover_from_mosquitto_pub_becomes_one_appeal_at_its_manhole_for_its_owner() {
    let db = TestDb::create().await;
    let setup = settings(2, None);
    let run = start(&db, &setup.settings).await;
    let port = setup.settings.mqtt.port;
    let topic = format!("{}/S-0001/up", setup.settings.topic_prefix);
    let manhole = &setup.manholes[1];
    mosquitto_pub(
        port,
        &topic,
        &["-m", &own("S-0001", &reading(1, 0, CoverState::Closed))],
        None,
    );
    mosquitto_pub(
        port,
        &topic,
        &["-m", &own("S-0001", &reading(2, 10, CoverState::Open))],
        None,
    );
    wait_for("the appeal is registered", || async {
        count(&db, "SELECT count(*) FROM appeals").await == 1
    })
    .await;
    let row = &sql_rows(
        &db,
        "SELECT category, source, asset_id, body_id, lat, lon, district FROM appeals",
    )
    .await[0];
    assert_eq!(row.get::<_, String>(0), "open_manhole");
    assert_eq!(row.get::<_, String>(1), "sensor");
    assert_eq!(
        row.get::<_, Option<String>>(2).as_deref(),
        Some(manhole.id.as_str())
    );
    assert_eq!(
        row.get::<_, Option<String>>(3).as_deref(),
        Some(manhole.owner.as_str())
    );
    assert_eq!(row.get::<_, f64>(4), manhole.position.lat);
    assert_eq!(row.get::<_, f64>(5), manhole.position.lon);
    assert!(
        row.get::<_, Option<String>>(6).is_some(),
        "routed to a district"
    );
    let deadlines = count(&db, "SELECT count(*) FROM appeal_deadlines").await;
    assert_eq!(deadlines, 2, "fenced and closed SLA stages");
    // Closing the cover clears the alarm on the appeal's timeline; the appeal stays open.
    mosquitto_pub(
        port,
        &topic,
        &["-m", &own("S-0001", &reading(3, 20, CoverState::Closed))],
        None,
    );
    wait_for("the clearing is on the timeline", || async {
        count(
            &db,
            "SELECT count(*) FROM appeal_events WHERE kind = 'sensor_cleared'",
        )
        .await
            == 1
    })
    .await;
    let status: String = sql_rows(&db, "SELECT status FROM appeal_state").await[0].get(0);
    assert_eq!(status, "awaiting_confirmation");
    assert_eq!(
        run.metrics
            .alarms_raised
            .get_or_create(&obs::AlarmLabel { alarm: "cover" })
            .get(),
        1
    );
    let view = run
        .handle()
        .sensor("S-0001")
        .await
        .expect("db")
        .expect("known sensor");
    assert_eq!(view.manhole, manhole.id);
    assert_eq!(view.state.and_then(|s| s.reading).map(|r| r.seq), Some(3));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_duplicated_reordered_and_retained_messages_for_one_alarm_raise_one_appeal() {
    let db = TestDb::create().await;
    let setup = settings(1, None);
    let port = setup.settings.mqtt.port;
    let topic = format!("{}/S-0000/up", setup.settings.topic_prefix);
    // A retained "open" from before we subscribed: delivered on subscription.
    mosquitto_pub(
        port,
        &topic,
        &[
            "-r",
            "-m",
            &own("S-0000", &reading(100, 100, CoverState::Open)),
        ],
        None,
    );
    let run = start(&db, &setup.settings).await;
    // 250 open readings (seq 101..=350), each sent twice; then 99 older "closed" readings
    // (seq 99 down to 1: reordering, new keys but stale); then 400 copies of the retained
    // reading (as a redelivery or a re-subscription brings it): 1,000 messages in all.
    let mut lines = Vec::new();
    for seq in 101..=350 {
        let line = own("S-0000", &reading(seq, seq as i64, CoverState::Open));
        lines.push(line.clone());
        lines.push(line);
    }
    lines.extend(
        (1..=99)
            .rev()
            .map(|seq| own("S-0000", &reading(seq, seq as i64, CoverState::Closed))),
    );
    lines.extend((0..400).map(|_| own("S-0000", &reading(100, 100, CoverState::Open))));
    assert_eq!(lines.len() + 1, 1000);
    publish_lines(port, &topic, &lines);
    wait_for("1,000 messages are handled", || async {
        handled(&run.metrics) >= 1000
    })
    .await;
    assert_eq!(handled(&run.metrics), 1000);
    assert_eq!(
        applied(&run.metrics),
        251,
        "the retained reading and 250 new ones"
    );
    assert_eq!(run.metrics.count("sitcenter", obs::OUTCOME_STALE), 99);
    assert_eq!(run.metrics.count("sitcenter", obs::OUTCOME_DUPLICATE), 650);
    assert_eq!(count(&db, "SELECT count(*) FROM appeals").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM evidence").await, 1);
    let view = run
        .handle()
        .sensor("S-0000")
        .await
        .expect("db")
        .expect("sensor");
    let state = view.state.expect("state");
    assert_eq!(state.reading.map(|r| r.seq), Some(350));
    assert_eq!(state.alarms[&AlarmKind::Cover].number, 1);
    run.stop().await;
    // Clear the retained message so it does not outlive the test on a shared broker.
    mosquitto_pub(port, &topic, &["-r", "-n"], None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_with_sensor_and_reason_and_never_stop_the_ingest() {
    let db = TestDb::create().await;
    let setup = settings(1, None);
    let run = start(&db, &setup.settings).await;
    let port = setup.settings.mqtt.port;
    let prefix = &setup.settings.topic_prefix;
    let topic = format!("{prefix}/S-0000/up");
    let good = own("S-0000", &reading(1, 0, CoverState::Closed));
    let cases: Vec<(&str, String)> = vec![
        ("wrong_type", good.replace("\"seq\":1", "\"seq\":\"one\"")),
        ("missing_field", r#"{"seq":2,"state":"open"}"#.to_owned()),
        (
            "unknown_field",
            good.replace("\"seq\":1", "\"seq\":3,\"colour\":\"red\""),
        ),
        ("invalid_value", good.replace("\"closed\"", "\"ajar\"")),
        (
            "out_of_range",
            good.replace("\"battery_pct\":88.0", "\"battery_pct\":180.0"),
        ),
        ("sensor_mismatch", good.replace("\"S-0000\"", "\"S-9999\"")),
        ("not_json", "{\"seq\": 1, ".to_owned()),
    ];
    for (_, payload) in &cases {
        mosquitto_pub(port, &topic, &["-m", payload], None);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0xff_u8, 0xfe, 0x00, 0x9c, 0x12, 0x80]).expect("write");
    mosquitto_pub(port, &topic, &["-f", garbage.to_str().expect("path")], None);
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 1024 * 1024]).expect("write");
    mosquitto_pub(port, &topic, &["-f", big.to_str().expect("path")], None);
    // Wrong topic: a sensor id that is not one (a space), and a ChirpStack topic whose
    // DevEUI is not hex.
    mosquitto_pub(port, &format!("{prefix}/S 0/up"), &["-m", &good], None);
    let app = &setup
        .settings
        .chirpstack
        .as_ref()
        .expect("cs")
        .application_id;
    mosquitto_pub(
        port,
        &format!("application/{app}/device/zzzz/event/up"),
        &["-m", "{}"],
        None,
    );
    // An unknown sensor is listed, not dropped silently.
    mosquitto_pub(
        port,
        &format!("{prefix}/NOT-REGISTERED/up"),
        &[
            "-m",
            &own("NOT-REGISTERED", &reading(1, 0, CoverState::Open)),
        ],
        None,
    );
    // And a valid message after all of that is applied.
    mosquitto_pub(
        port,
        &topic,
        &["-m", &own("S-0000", &reading(9, 50, CoverState::Open))],
        None,
    );
    wait_for("the valid message is applied", || async {
        applied(&run.metrics) == 1
    })
    .await;
    wait_for("every message is handled", || async {
        handled(&run.metrics) == 13
    })
    .await;
    for (reason, _) in cases.iter().filter(|(r, _)| *r != "not_json") {
        assert_eq!(run.metrics.rejected_count(reason), 1, "{reason}");
    }
    assert_eq!(
        run.metrics.rejected_count("not_json"),
        2,
        "truncated JSON and garbage bytes"
    );
    assert_eq!(run.metrics.rejected_count("too_large"), 1);
    assert_eq!(run.metrics.rejected_count("wrong_topic"), 2);
    let rejected = run.handle().rejected();
    assert_eq!(rejected.len(), 11);
    let with_sensor = rejected
        .iter()
        .filter(|r| r.sensor.as_deref() == Some("S-0000"))
        .count();
    assert_eq!(
        with_sensor, 9,
        "every rejection on the sensor's topic names it"
    );
    assert!(
        rejected
            .iter()
            .any(|r| r.reason == RejectReason::TooLarge && r.bytes == 1024 * 1024)
    );
    let unknown = run.handle().unknown();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].sensor, "NOT-REGISTERED");
    assert_eq!(run.metrics.unknown_sensors.get(), 1);
    assert_eq!(
        count(&db, "SELECT count(*) FROM appeals").await,
        1,
        "the valid open cover"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_detected_per_sensor_type_and_a_message_clears_it() {
    let db = TestDb::create().await;
    let mut setup = settings(2, None);
    setup.settings.types.insert(
        "chatty".to_owned(),
        SensorTypeSettings {
            heartbeat: Duration::from_millis(500),
            silent_after: Duration::from_secs(1),
            ..cover_type()
        },
    );
    setup.settings.sensors[0].kind = "chatty".to_owned();
    let run = start(&db, &setup.settings).await;
    let port = setup.settings.mqtt.port;
    for id in ["S-0000", "S-0001"] {
        let topic = format!("{}/{id}/up", setup.settings.topic_prefix);
        mosquitto_pub(
            port,
            &topic,
            &["-m", &own(id, &reading(1, 0, CoverState::Closed))],
            None,
        );
    }
    wait_for("both readings are applied", || async {
        applied(&run.metrics) == 2
    })
    .await;
    wait_for("the chatty sensor is found silent", || async {
        count(
            &db,
            "SELECT count(*) FROM appeals WHERE category = 'sensor_maintenance'",
        )
        .await
            == 1
    })
    .await;
    let rows = sql_rows(&db, "SELECT e.actor FROM evidence e").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].get::<_, String>(0),
        "S-0000",
        "only the type with the short heartbeat"
    );
    let view = run
        .handle()
        .sensor("S-0001")
        .await
        .expect("db")
        .expect("sensor");
    assert!(!view.state.expect("state").is_active(AlarmKind::Silent));
    // It speaks again: the alarm is cleared on the ticket's timeline.
    let topic = format!("{}/S-0000/up", setup.settings.topic_prefix);
    mosquitto_pub(
        port,
        &topic,
        &["-m", &own("S-0000", &reading(2, 5, CoverState::Closed))],
        None,
    );
    wait_for("the silence is cleared", || async {
        count(
            &db,
            "SELECT count(*) FROM appeal_events WHERE kind = 'sensor_cleared'",
        )
        .await
            >= 1
    })
    .await;
    run.stop().await;
    // Maintenance tickets are not citizen appeals.
    let config = IncidentsConfig::default();
    assert!(
        !config
            .category(CATEGORY_MAINTENANCE)
            .expect("category")
            .public
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_detection_and_a_sensor_alarm_at_one_manhole_become_one_appeal() {
    let db = TestDb::create().await;
    let setup = settings(1, None);
    let run = start(&db, &setup.settings).await;
    let manhole = &setup.manholes[0];
    // The camera saw it first, 8 m away (its placement is less precise than the sensor's).
    let camera = Observation {
        category: crate::domain::Category::new("open_manhole").expect("category"),
        source: Source::Camera,
        source_ref: "camera:ast-0001:det:1".into(),
        position: Position::new(manhole.position.lat + 8.0 / 111_000.0, manhole.position.lon),
        uncertainty_m: Some(10.0),
        address: None,
        description: Some("open manhole seen by camera ast-0001".into()),
        actor: "ast-0001".into(),
        observed_at: Utc::now(),
        evidence: Vec::new(),
    };
    let plan = run.intake.plan(&camera).expect("plan");
    let first = run
        .registry
        .submit(&camera, &plan)
        .await
        .expect("camera appeal");
    let topic = format!("{}/S-0000/up", setup.settings.topic_prefix);
    let mut open = reading(1, 0, CoverState::Open);
    open.ts = Utc::now();
    mosquitto_pub(
        setup.settings.mqtt.port,
        &topic,
        &["-m", &own("S-0000", &open)],
        None,
    );
    wait_for("the sensor's evidence is recorded", || async {
        count(&db, "SELECT count(*) FROM evidence").await == 2
    })
    .await;
    assert_eq!(count(&db, "SELECT count(*) FROM appeals").await, 1);
    let sources: Vec<String> = sql_rows(&db, "SELECT source FROM evidence ORDER BY id")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sources, vec!["camera", "sensor"]);
    let appeal = run
        .registry
        .appeal(&first.number)
        .await
        .expect("db")
        .expect("appeal");
    assert_eq!(appeal.evidence_count, 2);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chirpstack_uplink_is_mapped_through_the_configured_fields() {
    let db = TestDb::create().await;
    let setup = settings(2, None);
    let run = start(&db, &setup.settings).await;
    let cs = setup.settings.chirpstack.as_ref().expect("cs");
    let eui = setup.settings.sensors[1].dev_eui.clone().expect("eui");
    let uplink = serde_json::json!({
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-11-29T10:00:00.123Z",
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "applicationId": cs.application_id,
            "deviceName": "cover-1",
            "devEui": eui,
        },
        "fCnt": 17,
        "fPort": 2,
        "data": "AQIDBA==",
        "object": { "cover": { "state": 2, "tilt": 35.5 }, "water": 12, "battery": 81, "temp": -4.0 },
        "rxInfo": [{ "gatewayId": "0016c001f153a14c", "rssi": -101, "snr": 7.2 }],
    });
    let topic = format!("application/{}/device/{eui}/event/up", cs.application_id);
    mosquitto_pub(
        setup.settings.mqtt.port,
        &topic,
        &["-m", &uplink.to_string()],
        None,
    );
    wait_for("the uplink's alarm is registered", || async {
        count(&db, "SELECT count(*) FROM appeals").await == 1
    })
    .await;
    let view = run
        .handle()
        .sensor("S-0001")
        .await
        .expect("db")
        .expect("sensor");
    let r = view.state.and_then(|s| s.reading).expect("reading");
    assert_eq!(
        (r.seq, r.state, r.tilt_deg, r.battery_pct, r.rssi_dbm),
        (17, CoverState::Tilted, Some(35.5), Some(81.0), Some(-101.0))
    );
    assert_eq!(run.metrics.count("chirpstack", obs::OUTCOME_APPLIED), 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_through_the_broker_opens_and_clears_its_scenario() {
    let db = TestDb::create().await;
    let setup = settings(5, None);
    let run = start(&db, &setup.settings).await;
    let s = &setup.settings;
    let id = |i: usize| s.sensors[i].id.clone();
    let step = |ms: u64, i: usize, action| crate::sim::sensors::SimStep {
        after: Duration::from_millis(ms),
        sensor: id(i),
        action,
    };
    let stop = CancellationToken::new();
    let sim = crate::sim::sensors::spawn(
        crate::sim::sensors::SensorSimConfig {
            host: s.mqtt.host.clone(),
            port: s.mqtt.port,
            client_id: unique("sim-"),
            credentials: None,
            topic_prefix: s.topic_prefix.clone(),
            sensors: s
                .sensors
                .iter()
                .map(|e| crate::sim::sensors::SimSensor {
                    id: e.id.clone(),
                    heartbeat: Duration::from_millis(300),
                })
                .collect(),
            scenario: vec![
                step(200, 0, crate::sim::sensors::SimAction::Open),
                step(900, 0, crate::sim::sensors::SimAction::Close),
                step(300, 1, crate::sim::sensors::SimAction::Flood(55.0)),
                step(100, 2, crate::sim::sensors::SimAction::Battery(5.0)),
                step(400, 3, crate::sim::sensors::SimAction::Tilt(40.0)),
            ],
        },
        stop.clone(),
    );
    wait_for("four appeals and a clearing", || async {
        count(&db, "SELECT count(*) FROM appeals").await == 4
            && count(
                &db,
                "SELECT count(*) FROM appeal_events WHERE kind = 'sensor_cleared'",
            )
            .await
                == 1
    })
    .await;
    let mut categories: Vec<String> =
        sql_rows(&db, "SELECT category FROM appeals ORDER BY category")
            .await
            .iter()
            .map(|r| r.get(0))
            .collect();
    categories.sort();
    assert_eq!(
        categories,
        vec![
            "flooding",
            "open_manhole",
            "open_manhole",
            "sensor_maintenance"
        ]
    );
    stop.cancel();
    let _ended = sim.await;
    run.stop().await;
}

/// A private Mosquitto with persistence on a free port.
struct PrivateBroker {
    child: std::process::Child,
    conf: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateBroker {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        // Run as root, mosquitto drops to the `mosquitto` user: it must be able to write here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 100000\nmax_inflight_messages 0\n",
                dir.path().display()
            ),
        )
        .expect("conf");
        let child = Self::spawn(&conf);
        let broker = Self {
            child,
            conf,
            port,
            _dir: dir,
        };
        broker.wait_listening();
        broker
    }

    fn spawn(conf: &Path) -> std::process::Child {
        Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (apt-get install mosquitto)")
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (mosquitto saves its sessions), then start it again.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let _exit = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = Self::spawn(&self.conf);
        self.wait_listening();
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_subscriber_reconnects_and_applies_what_was_sent_meanwhile_once()
{
    let db = TestDb::create().await;
    let mut broker = PrivateBroker::start();
    let setup = settings(3, Some(broker.port));
    let run = start(&db, &setup.settings).await;
    let topic = |i: usize| format!("{}/S-{i:04}/up", setup.settings.topic_prefix);
    for i in 0..3 {
        mosquitto_pub(
            broker.port,
            &topic(i),
            &[
                "-m",
                &own(&format!("S-{i:04}"), &reading(1, 0, CoverState::Closed)),
            ],
            None,
        );
    }
    wait_for("the first readings are applied", || async {
        applied(&run.metrics) == 3
    })
    .await;
    broker.stop();
    wait_for("the subscriber sees the broker gone", || async {
        run.handle().connection().connected_since.is_none()
    })
    .await;
    broker.restart();
    // Sent while the subscriber is still backing off: the broker queues them in its
    // persistent session.
    for i in 0..3 {
        let lines: Vec<String> = (2..=101)
            .map(|seq| {
                let state = if seq >= 50 && i == 1 {
                    CoverState::Open
                } else {
                    CoverState::Closed
                };
                own(&format!("S-{i:04}"), &reading(seq, seq as i64, state))
            })
            .collect();
        publish_lines(broker.port, &topic(i), &lines);
    }
    wait_for("everything sent meanwhile is applied", || async {
        applied(&run.metrics) == 303
    })
    .await;
    assert!(
        run.metrics.connections.get() >= 2,
        "it reconnected by itself"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM appeals").await, 1);
    for i in 0..3 {
        let view = run
            .handle()
            .sensor(&format!("S-{i:04}"))
            .await
            .expect("db")
            .expect("sensor");
        assert_eq!(view.state.and_then(|s| s.reading).map(|r| r.seq), Some(101));
    }
    // Acks in flight when the broker went down come back as redeliveries: duplicates, not
    // applied twice.
    let duplicates = run.metrics.count("sitcenter", obs::OUTCOME_DUPLICATE);
    assert_eq!(
        (applied(&run.metrics), handled(&run.metrics) - duplicates),
        (303, 303),
        "nothing applied twice, nothing lost"
    );
    run.stop().await;
}
