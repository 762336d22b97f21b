//! Load run of the sensor stage (a benchmark, not a test): N simulated sensors publish QoS 1
//! readings through a real Mosquitto (a private one on a free port, started here) into
//! the real stage and PostgreSQL (`SITCENTER_TEST_PG`; a throwaway database).
//!
//! Two cases in one run, the same messages:
//! - **baseline**: a bare MQTT 5 subscriber (same client options, manual acks) that acknowledges
//!   each message on receipt — what the broker and client alone sustain here;
//! - **stage**: the sensor stage — parse, idempotency keys, per-sensor state, registry, ack after
//!   commit. Every 1,000th message opens a cover, so alarms → appeals flow throughout.
//!
//! `cargo bench --bench sensors_load -- [sensors] [messages per sensor] [offered msg/s, 0 = full
//! speed]` (default 20000 × 5 at full speed);
//! figures in docs/performance.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use sitcenter::config::IncidentsConfig;
use sitcenter::config::{SensorEntry, SensorMqttSettings, SensorTypeSettings, SensorsSettings};
use sitcenter::domain::{CoverState, SensorId, SensorReading};
use sitcenter::geo::CityHandle;
use sitcenter::incidents::Intake;
use sitcenter::obs::SensorMetrics;
use sitcenter::registry::{Registry, SystemClock};
use sitcenter::sensors::SensorsStage;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

fn pg() -> String {
    std::env::var("SITCENTER_TEST_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".to_owned())
}

static BROKER: std::sync::OnceLock<(String, u16)> = std::sync::OnceLock::new();
/// Offered load in messages per second (all publishers); 0 = as fast as they can.
static RATE: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn broker() -> (String, u16) {
    BROKER.get().cloned().expect("broker started")
}

/// A private Mosquitto on a free port with the settings docs/sensors.md asks of a broker
/// (queues large enough that a subscriber slower than its publishers loses nothing).
fn start_broker(dir: &Path) -> std::process::Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 0\n"),
    )
    .expect("conf");
    let child = std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    BROKER.set(("127.0.0.1".to_owned(), port)).expect("once");
    child
}

async fn admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&format!("{} dbname=postgres", pg()), NoTls)
        .await
        .expect("the benchmark needs PostgreSQL");
    tokio::spawn(conn);
    client.batch_execute(sql).await.expect(sql);
}

fn reading(seq: u64, state: CoverState) -> SensorReading {
    SensorReading {
        seq,
        ts: Utc::now(),
        state,
        tilt_deg: Some(if state == CoverState::Open { 90.0 } else { 0.3 }),
        water_level_cm: Some(4.0),
        flooding: Some(false),
        temperature_c: Some(-5.0),
        battery_pct: Some(77.0),
        rssi_dbm: Some(-98.0),
        snr_db: Some(6.0),
        firmware: Some("2.3.1".into()),
    }
}

/// Publishes `per_sensor` readings of each sensor (sensor-major rounds), as fast as the
/// broker takes them over `publishers` connections; returns the seconds it took.
async fn publish(prefix: &str, sensors: usize, per_sensor: u64, publishers: usize) -> f64 {
    let rate = RATE.get().copied().unwrap_or(0.0) / publishers as f64;
    let (host, port) = broker();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let prefix = prefix.to_owned();
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut options =
                MqttOptions::new(format!("bench-pub-{p}-{}", std::process::id()), host, port);
            options.set_keep_alive(Duration::from_secs(30));
            options.set_outgoing_inflight_upper_limit(1000);
            let (client, mut eventloop) = AsyncClient::new(options, 10_000);
            let total = (sensors / publishers) as u64 * per_sensor;
            let poller = tokio::spawn(async move {
                let mut acked = 0u64;
                while acked < total {
                    match eventloop.poll().await {
                        Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                        Ok(_) => {}
                        Err(e) => panic!("publisher: {e}"),
                    }
                }
            });
            let begun = Instant::now();
            let mut sent = 0u64;
            for seq in 1..=per_sensor {
                for i in (p..sensors).step_by(publishers) {
                    let id = SensorId::new(&format!("L-{i:05}")).expect("id");
                    // Every 1,000th message opens a cover (the sensor's next one closes it).
                    let state = if (seq as usize * sensors + i).is_multiple_of(1000) {
                        CoverState::Open
                    } else {
                        CoverState::Closed
                    };
                    sent += 1;
                    if rate > 0.0 && sent.is_multiple_of(50) {
                        let due = Duration::from_secs_f64(sent as f64 / rate);
                        if let Some(wait) = due.checked_sub(begun.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    let payload = sitcenter::sim::sensors::payload(&id, &reading(seq, state));
                    client
                        .publish(
                            format!("{prefix}/{id}/up"),
                            QoS::AtLeastOnce,
                            false,
                            payload,
                        )
                        .await
                        .expect("publish");
                }
            }
            poller.await.expect("poller");
        }));
    }
    for t in tasks {
        t.await.expect("publisher");
    }
    started.elapsed().as_secs_f64()
}

/// The baseline subscriber: receives and acknowledges `expected` messages.
async fn baseline(prefix: &str, expected: u64, sensors: usize, per_sensor: u64) -> (f64, f64) {
    let (host, port) = broker();
    let mut options = MqttOptions::new(format!("bench-base-{}", std::process::id()), host, port);
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_manual_acks(true)
        .set_receive_maximum(Some(2000))
        .set_max_packet_size(Some(2 * 1024 * 1024));
    let (client, mut eventloop) = AsyncClient::new(options, 4000);
    let filter = Filter::new(format!("{prefix}/+/up"), QoS::AtLeastOnce);
    loop {
        if let Ok(Event::Incoming(Packet::ConnAck(_))) = eventloop.poll().await {
            break;
        }
    }
    client.subscribe_many([filter]).await.expect("subscribe");
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = eventloop.poll().await {
            break;
        }
    }
    let publisher = tokio::spawn({
        let prefix = prefix.to_owned();
        async move { publish(&prefix, sensors, per_sensor, 2).await }
    });
    let mut got = 0u64;
    let mut first: Option<Instant> = None;
    while got < expected {
        if let Ok(Event::Incoming(Packet::Publish(p))) = eventloop.poll().await {
            first.get_or_insert_with(Instant::now);
            got += 1;
            client.try_ack(&p).expect("ack");
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    let pub_secs = publisher.await.expect("publisher");
    (expected as f64 / secs, pub_secs)
}

fn quantile(m: &SensorMetrics, q: f64) -> String {
    // The histogram's text exposition: cumulative buckets.
    let mut registry = prometheus_client::registry::Registry::default();
    m.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    let mut buckets = Vec::new();
    let mut count = 0.0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("sensor_alarm_to_appeal_seconds_bucket{le=\"") {
            let (le, n) = rest.split_once("\"} ").expect("bucket");
            buckets.push((le.to_owned(), n.parse::<f64>().expect("n")));
        }
        if let Some(n) = line.strip_prefix("sensor_alarm_to_appeal_seconds_count ") {
            count = n.parse().expect("count");
        }
    }
    buckets
        .iter()
        .find(|(_, n)| *n >= q * count)
        .map_or("-".into(), |(le, _)| {
            format!("≤ {le} s (of {count} alarms)")
        })
}

fn main() {
    let given: Vec<String> = std::env::args().skip(1).collect();
    // A test runner listing this target (`cargo nextest --all-targets` runs `--list`): it
    // holds no tests. The load run is a benchmark: only under `cargo bench` (`--bench`).
    if given.iter().any(|a| a == "--list") {
        return;
    }
    if !given.iter().any(|a| a == "--bench") {
        eprintln!(
            "sensors_load is a benchmark: cargo bench --bench sensors_load -- [sensors] [messages per sensor] [rate]"
        );
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sensors: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let per_sensor: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let expected = sensors as u64 * per_sensor;
    let rate: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.0);
    RATE.set(rate).expect("once");
    let dir = std::env::temp_dir().join(format!("sitcenter-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let mut mosquitto = start_broker(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let run = format!("{:x}", std::process::id());
        println!("sensor load run: {sensors} sensors × {per_sensor} messages = {expected} QoS 1 messages, offered at {} msg/s", if rate > 0.0 { format!("{rate:.0}") } else { "full speed".into() });

        let (base_rate, base_pub) = baseline(&format!("bench/{run}/base"), expected, sensors, per_sensor).await;
        println!("baseline (bare subscriber, ack on receipt): {base_rate:.0} msg/s (publishers took {base_pub:.1} s)");

        let db = format!("sitcenter_bench_sensors_{run}");
        admin(&format!("CREATE DATABASE {db}")).await;
        let registry = Registry::connect(&format!("{} dbname={db}", pg()), Arc::new(SystemClock))
            .await
            .expect("registry");
        let demo: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
        let city = Arc::new(CityHandle::load(&demo).expect("demo city"));
        let manholes: Vec<String> = city.current().manholes().iter().map(|m| m.id.clone()).collect();
        let mut types = BTreeMap::new();
        types.insert(
            "cover".to_owned(),
            SensorTypeSettings {
                heartbeat: Duration::from_secs(3600),
                silent_after: Duration::from_secs(3 * 3600),
                tilt_alarm_deg: 15.0,
                battery_low_pct: 20.0,
                battery_ok_pct: 30.0,
                flood_level_cm: Some(40.0),
            },
        );
        let (host, port) = broker();
        let prefix = format!("bench/{run}/stage");
        let settings = SensorsSettings {
            mqtt: SensorMqttSettings {
                host,
                port,
                client_id: format!("bench-stage-{run}"),
                credentials: None,
                share_group: None,
                keep_alive: Duration::from_secs(30),
                session_expiry: Duration::from_secs(600),
                receive_maximum: 2000,
                max_packet_bytes: 2 * 1024 * 1024,
            },
            topic_prefix: prefix.clone(),
            chirpstack: None,
            types,
            sensors: (0..sensors)
                .map(|i| SensorEntry {
                    id: SensorId::new(&format!("L-{i:05}")).expect("id"),
                    kind: "cover".into(),
                    manhole: manholes[i % manholes.len()].clone(),
                    dev_eui: None,
                    defined_at: "bench".into(),
                })
                .collect(),
            sensors_file: PathBuf::from("bench"),
            max_payload_bytes: 16 * 1024,
            batch_max: 500,
            silence_check: Duration::from_secs(10),
            message_retention: Duration::from_secs(3600),
            recent_rejections: 100,
        };
        let metrics = SensorMetrics::default();
        let stop = CancellationToken::new();
        let intake = Intake::new(Arc::new(IncidentsConfig::default()), city.clone());
        let stage = SensorsStage::start(&settings, &city.current(), registry, intake, metrics.clone(), stop.clone())
            .await
            .expect("stage");
        while !stage.handle.connection().subscribed {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let handled = |m: &SensorMetrics| {
            ["applied", "duplicate", "stale"].iter().map(|o| m.count("sitcenter", o)).sum::<u64>()
        };
        let publisher = tokio::spawn({
            let prefix = prefix.clone();
            async move { publish(&prefix, sensors, per_sensor, 2).await }
        });
        let mut first: Option<Instant> = None;
        while handled(&metrics) < expected {
            if first.is_none() && handled(&metrics) > 0 {
                first = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
        let stage_rate = expected as f64 / secs;
        let pub_secs = publisher.await.expect("publisher");
        println!("stage (parse + keys + state + registry, ack after commit): {stage_rate:.0} msg/s (publishers took {pub_secs:.1} s)");
        println!("stage / baseline: {:.2}", stage_rate / base_rate);
        println!("alarm → appeal p50 {}, p99 {}", quantile(&metrics, 0.5), quantile(&metrics, 0.99));
        stop.cancel();
        stage.stopped().await;
        admin(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    });
    let _killed = mosquitto.kill();
    let _reaped = mosquitto.wait();
}
