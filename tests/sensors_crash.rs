//! Binary-level: `sitcenter run` with manhole sensors is killed with SIGKILL twice while
//! 10,000 QoS 1 messages (sent by `mosquitto_pub`) stream in, and restarted each time. In the
//! end every message is applied exactly once: every idempotency key committed, every sensor at
//! its last sequence number, every alarm episode recorded once with its clearing — nothing
//! lost between receipt and commit, nothing duplicated after a commit whose ack was lost.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Process, free_port, wait_listening};

const PG: &str = "host=127.0.0.1 port=5432 user=postgres";
const SENSORS: usize = 50;
const PER_SENSOR: u64 = 200;

fn pg_url() -> String {
    std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| PG.to_owned())
}

fn query_i64(db: &str, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&format!("{} dbname={db}", pg_url()), tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL is running (scripts/services.sh starts it)");
        let driver = tokio::spawn(connection);
        let value = match client.query_one(sql, &[]).await {
            Ok(row) => row.get::<_, i64>(0),
            // The table does not exist before the first start's migration.
            Err(_) => -1,
        };
        drop(client);
        let _ended = driver.await;
        value
    })
}

struct TestDatabase(String);

impl TestDatabase {
    fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("sitcenter_crash_{}_{nanos}", std::process::id());
        query_i64("postgres", &format!("CREATE DATABASE {name}"));
        Self(name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        query_i64(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0),
        );
    }
}

/// A private Mosquitto with large persistent-session queues.
struct Broker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\nmax_inflight_messages 0\n"),
        )
        .expect("conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (apt-get install mosquitto)");
        wait_listening(port);
        Self { child, _dir: dir }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

fn site(dir: &Path, db: &str, http_port: u16, mqtt_port: u16) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    for entry in std::fs::read_dir(&demo).expect("demo site") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "geojson") {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy layer");
        }
    }
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[site]\nname = \"crash\"\nbounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             [registry]\ndatabase_url = \"{} dbname={db}\"\n\
             [sensors]\ntopic_prefix = \"crash/sensors\"\n\
             [sensors.mqtt]\nport = {mqtt_port}\nclient_id = \"sitcenter-crash-test\"\nreceive_maximum = 1000\n\
             [sensors.types.cover]\nheartbeat_s = 3600\n",
            pg_url()
        ),
    )
    .expect("site.toml");
    std::fs::write(dir.join("cameras.toml"), "").expect("cameras.toml");
    let mut sensors = String::new();
    for i in 0..SENSORS {
        // Manholes 100 apart in the file: separate places.
        sensors.push_str(&format!(
            "[[sensor]]\nid = \"C-{i:03}\"\ntype = \"cover\"\nmanhole = \"MH-{:06}\"\n\n",
            1 + i * 100
        ));
    }
    std::fs::write(dir.join("sensors.toml"), sensors).expect("sensors.toml");
}

fn start_service(dir: &Path, http_port: u16) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("service.log"))
        .expect("log file");
    let process = Process(
        Command::new(env!("CARGO_BIN_EXE_sitcenter"))
            .args(["run", "--site", dir.to_str().expect("utf-8 path")])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sitcenter"),
    );
    wait_listening(http_port);
    process
}

/// The first start's subscription is in place once a probe reading (older than everything
/// the test sends, so it changes no outcome) has been committed.
fn wait_subscribed(db: &str, mqtt_port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mqtt_port.to_string(),
                "-q",
                "1",
                "-V",
                "mqttv5",
            ])
            .args(["-t", "crash/sensors/C-000/up", "-m"])
            .arg(r#"{"seq":0,"ts":"2026-11-29T09:00:00Z","state":"closed"}"#)
            .status()
            .expect("mosquitto_pub");
        assert!(status.success());
        if query_i64(db, "SELECT count(*) FROM sensor_messages") >= 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the service never subscribed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// State of reading `seq`: open for seq 21-40, 61-80, … (5 openings, 4 closings).
fn state(seq: u64) -> &'static str {
    if (seq - 1) / 20 % 2 == 1 {
        "open"
    } else {
        "closed"
    }
}

fn publishers(mqtt_port: u16) -> Vec<Child> {
    (0..SENSORS)
        .map(|i| {
            let mut child = Command::new("mosquitto_pub")
                .args(["-h", "127.0.0.1", "-p", &mqtt_port.to_string(), "-q", "1", "-V", "mqttv5", "-l"])
                .args(["-t", &format!("crash/sensors/C-{i:03}/up")])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .expect("mosquitto_pub runs");
            let mut lines = String::new();
            for seq in 1..=PER_SENSOR {
                lines.push_str(&format!(
                    "{{\"seq\":{seq},\"ts\":\"2026-11-29T10:{:02}:{:02}Z\",\"state\":\"{}\",\"battery_pct\":80}}\n",
                    seq / 60,
                    seq % 60,
                    state(seq)
                ));
            }
            let mut stdin = child.stdin.take().expect("stdin");
            std::io::Write::write_all(&mut stdin, lines.as_bytes()).expect("write");
            child
        })
        .collect()
}

fn kill9(process: &mut Process) {
    let pid = process.0.id().to_string();
    let status = Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let _reaped = process.0.wait();
}

fn wait_committed(db: &str, dir: &Path, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_i64(db, "SELECT count(*) FROM sensor_messages") < at_least {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("service.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "fewer than {at_least} messages committed; service log, newest first:\n{}",
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn killing_the_service_between_receipt_and_commit_loses_and_duplicates_nothing() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().expect("tmp");
    let (http_port, mqtt_port) = (free_port(), free_port());
    let _broker = Broker::start(mqtt_port);
    site(dir.path(), &db.0, http_port, mqtt_port);
    let dir_path: PathBuf = dir.path().to_path_buf();
    // The probe reading and every reading sent.
    let total = (SENSORS as u64 * PER_SENSOR) as i64 + 1;

    let mut service = start_service(&dir_path, http_port);
    wait_subscribed(&db.0, mqtt_port);
    let mut senders = publishers(mqtt_port);
    wait_committed(&db.0, &dir_path, total / 5);
    kill9(&mut service);
    let mut service = start_service(&dir_path, http_port);
    wait_committed(&db.0, &dir_path, total / 2);
    kill9(&mut service);
    for sender in &mut senders {
        let status = sender.wait().expect("mosquitto_pub ends");
        assert!(status.success());
    }
    let service = start_service(&dir_path, http_port);
    wait_committed(&db.0, &dir_path, total);
    let deadline = Instant::now() + Duration::from_secs(60);
    while query_i64(
        &db.0,
        "SELECT count(*) FROM sensor_state WHERE (state #>> '{reading,seq}')::bigint = 200",
    ) < SENSORS as i64
    {
        assert!(
            Instant::now() < deadline,
            "not every sensor reached its last reading"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(service);
    let log = std::fs::read_to_string(dir_path.join("service.log")).expect("service log");

    assert_eq!(
        query_i64(&db.0, "SELECT count(*) FROM sensor_messages"),
        total,
        "every message once"
    );
    assert_eq!(
        query_i64(
            &db.0,
            "SELECT count(*) FROM evidence WHERE source = 'sensor'"
        ),
        (SENSORS * 5) as i64,
        "five openings per sensor, each recorded once"
    );
    assert_eq!(
        query_i64(
            &db.0,
            "SELECT count(*) FROM appeal_events WHERE kind = 'sensor_cleared'"
        ),
        (SENSORS * 4) as i64,
        "four closings per sensor, each on the timeline once"
    );
    assert_eq!(
        query_i64(
            &db.0,
            "SELECT count(*) FROM sensor_state WHERE (state #>> '{alarms,cover,number}')::bigint = 5 AND (state #>> '{alarms,cover,active}')::bool"
        ),
        SENSORS as i64,
        "each sensor is in its fifth opening"
    );
    assert!(
        log.contains("the broker is redelivering unacknowledged sensor messages"),
        "the kills landed between receipt and acknowledgement (the broker redelivered)"
    );
}
