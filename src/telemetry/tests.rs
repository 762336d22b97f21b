//! The telemetry stage against real parts: its TCP and HTTP servers on port 0, real sockets
//! as trackers (bytes as the specifications define them), the real PostgreSQL track store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::{DevicePassword, TelemetrySettings, VehicleEntry, VehicleTypeSettings};
use crate::registry::test_db::TestDb;
use crate::registry::{Registry, SystemClock};

fn vehicle(id: &str, imei: &str, password: Option<&str>) -> VehicleEntry {
    VehicleEntry {
        id: id.into(),
        imei: imei.into(),
        kind: "waste_truck".into(),
        depot: Some("north".into()),
        route: None,
        password: password.map(|p| DevicePassword(p.into())),
        defined_at: "test".into(),
    }
}

/// Settings for tests: every server on port 0 of the loopback, three vehicles.
pub(crate) fn settings() -> TelemetrySettings {
    let any = Some("127.0.0.1:0".parse().expect("address"));
    TelemetrySettings {
        wialon_listen: any,
        teltonika_listen: any,
        osmand_listen: any,
        mqtt: None,
        max_connections: 100,
        max_packet_bytes: 64 * 1024,
        idle_timeout: Duration::from_secs(60),
        queue_capacity: 1000,
        batch_max: 100,
        max_hdop: 10.0,
        max_accuracy_m: 100.0,
        future_tolerance: Duration::from_secs(300),
        stop_radius_m: 30.0,
        stop_min: Duration::from_secs(60),
        served_radius_m: 30.0,
        served_min: Duration::from_secs(60),
        off_route_m: 500.0,
        types: BTreeMap::from([(
            "waste_truck".to_owned(),
            VehicleTypeSettings {
                period: Duration::from_secs(5),
                silent_after: Duration::from_secs(45),
                max_speed_kmh: 150.0,
                idle_after: Duration::from_secs(600),
                collects: true,
            },
        )]),
        routes: BTreeMap::new(),
        vehicles: vec![
            vehicle("truck-w", "860000000000001", Some("s3cret")),
            vehicle("truck-t", "356307042441013", None),
            vehicle("phone-1", "osm-17", None),
        ],
        vehicles_file: "vehicles.toml".into(),
        utc_offset_minutes: 0,
    }
}

struct Running {
    db: TestDb,
    stage: TelemetryStage,
    stop: CancellationToken,
}

async fn start() -> Running {
    start_with(settings(), HashMap::new()).await
}

async fn start_with(
    settings: TelemetrySettings,
    route_points: HashMap<String, Vec<(String, crate::domain::Position)>>,
) -> Running {
    let db = TestDb::create().await;
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let stop = CancellationToken::new();
    let stage = TelemetryStage::start(
        &settings,
        registry.pool().clone(),
        route_points,
        crate::obs::TelemetryMetrics::new(),
        stop.clone(),
    )
    .await
    .expect("stage starts");
    Running { db, stage, stop }
}

async fn connect(r: &Running, p: Protocol) -> TcpStream {
    TcpStream::connect(r.stage.addresses[&p])
        .await
        .expect("connect")
}

/// Sends one Wialon line and reads its one-line answer.
async fn wialon(s: &mut TcpStream, line: &str) -> String {
    s.write_all(line.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n") {
        assert_eq!(
            s.read(&mut byte).await.expect("read"),
            1,
            "connection closed"
        );
        answer.push(byte[0]);
    }
    String::from_utf8(answer).expect("text")
}

/// Waits (bounded) until the store holds `n` fixes of `vehicle` today and returns them.
async fn stored(h: &TelemetryHandle, vehicle: &str, n: usize) -> Vec<TrackPoint> {
    let from = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
    let to = Utc::now() + chrono::Duration::days(1);
    for _ in 0..200 {
        let track = h.track(vehicle, from, to, 10_000).await.expect("track");
        if track.len() >= n {
            return track;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{vehicle}: fewer than {n} fixes were stored");
}

fn wialon_time(at: DateTime<Utc>) -> String {
    at.format("%d%m%y;%H%M%S").to_string()
}

#[tokio::test]
async fn a_wialon_tracker_is_refused_when_unknown_or_wrong_and_its_data_lands_in_the_store() {
    let r = start().await;
    let h = r.stage.handle();
    let mut s = connect(&r, Protocol::Wialon).await;
    // The published login of an unregistered tracker, checksum as sent.
    assert_eq!(
        wialon(&mut s, "#L#2.0;355217044956192;NA;E335\r\n").await,
        "#AL#0\r\n"
    );
    assert_eq!(
        wialon(
            &mut s,
            &wialon::with_checksum("#L#2.0;860000000000001;guess;")
        )
        .await,
        "#AL#01\r\n"
    );
    assert_eq!(
        wialon(&mut s, "#L#2.0;860000000000001;s3cret;0000\r\n").await,
        "#AL#10\r\n"
    );
    assert_eq!(
        wialon(
            &mut s,
            &wialon::with_checksum("#L#2.0;860000000000001;s3cret;")
        )
        .await,
        "#AL#1\r\n"
    );
    assert_eq!(wialon(&mut s, "#P#\r\n").await, "#AP#\r\n");
    let now = Utc::now() - chrono::Duration::seconds(60);
    let t = |s: i64| wialon_time(now + chrono::Duration::seconds(s));
    let sd = wialon::with_checksum(&format!(
        "#SD#{};5107.6800;N;07125.8000;E;20;90;350;9;",
        t(0)
    ));
    // A bad checksum is refused with its code, and the connection goes on.
    let broken = sd.replace(";20;", ";21;");
    assert_eq!(wialon(&mut s, &broken).await, "#ASD#13\r\n");
    assert_eq!(wialon(&mut s, &sd).await, "#ASD#1\r\n");
    let d = wialon::with_checksum(&format!(
        "#D#{};5107.7000;N;07125.8200;E;25;90;350;9;0.9;0;0;;NA;ign:1:1;",
        t(10)
    ));
    assert_eq!(wialon(&mut s, &d).await, "#AD#1\r\n");
    // The same fix again: answered, not stored twice.
    assert_eq!(wialon(&mut s, &d).await, "#AD#1\r\n");
    // After a tunnel: the black box brings two older fixes.
    let bb = wialon::with_checksum(&format!(
        "#B#{};5107.6900;N;07125.8100;E;22;90;350;9|{};5107.6950;N;07125.8150;E;23;90;350;9|",
        t(4),
        t(7)
    ));
    assert_eq!(wialon(&mut s, &bb).await, "#AB#2\r\n");
    let track = stored(&h, "truck-w", 4).await;
    assert_eq!(track.len(), 4, "{track:?}");
    assert!(track.windows(2).all(|w| w[0].at < w[1].at));
    assert_eq!(track.iter().filter(|p| p.late).count(), 2);
    // The live position is the newest fix, not the black box's.
    let live = h.vehicle("truck-w").expect("live");
    assert!((live.lat.expect("lat") - (51.0 + 7.7 / 60.0)).abs() < 1e-9);
    assert_eq!(live.ignition, Some(true));
    let near = h.near(crate::domain::Position::new(51.1283, 71.4303), 500.0);
    assert_eq!(near.first().map(|(v, _)| v.id.as_str()), Some("truck-w"));
    let m = &r.stage.handle.core.metrics;
    assert_eq!(m.rejected_count("wialon", "unknown_device"), 1);
    assert_eq!(m.rejected_count("wialon", "wrong_password"), 1);
    assert_eq!(m.rejected_count("wialon", "checksum"), 2);
    assert_eq!(m.rejected_count("wialon", "duplicate"), 1);
    r.stop.cancel();
}

#[tokio::test]
async fn a_teltonika_tracker_gets_record_counts_and_a_bad_crc_does_not_cost_the_next_packet() {
    let r = start().await;
    let h = r.stage.handle();
    // Unknown IMEI: 0x00 and the server hangs up.
    let mut s = connect(&r, Protocol::Teltonika).await;
    s.write_all(&teltonika::encode_imei("111111111111111"))
        .await
        .expect("write");
    let mut one = [9u8; 1];
    s.read_exact(&mut one).await.expect("answer");
    assert_eq!(one, teltonika::IMEI_REFUSED);
    // The documented IMEI greeting of a registered tracker.
    let mut s = connect(&r, Protocol::Teltonika).await;
    s.write_all(&teltonika::encode_imei("356307042441013"))
        .await
        .expect("write");
    s.read_exact(&mut one).await.expect("answer");
    assert_eq!(one, teltonika::IMEI_ACCEPTED);
    let at = Utc::now() - chrono::Duration::seconds(30);
    let fix = |s: i64, lat: f64| Fix {
        at: at + chrono::Duration::seconds(s),
        position: crate::domain::Position::new(lat, 71.43),
        speed_kmh: Some(20.0),
        course_deg: Some(0.0),
        altitude_m: Some(350.0),
        satellites: Some(10),
        hdop: None,
        accuracy_m: None,
        ignition: Some(true),
        black_box: false,
    };
    let mut ack = [0u8; 4];
    let mut bad = teltonika::encode_codec8(&[fix(0, 51.10)]);
    let n = bad.len();
    bad[n - 1] ^= 0xFF;
    s.write_all(&bad).await.expect("write");
    s.read_exact(&mut ack).await.expect("ack");
    assert_eq!(u32::from_be_bytes(ack), 0);
    let good = teltonika::encode_codec8(&[fix(0, 51.10), fix(5, 51.1003)]);
    s.write_all(&good).await.expect("write");
    s.read_exact(&mut ack).await.expect("ack");
    assert_eq!(u32::from_be_bytes(ack), 2);
    // An impossible jump (20 km in 5 s) is acknowledged but filtered and counted.
    s.write_all(&teltonika::encode_codec8(&[fix(10, 51.30)]))
        .await
        .expect("write");
    s.read_exact(&mut ack).await.expect("ack");
    assert_eq!(u32::from_be_bytes(ack), 1);
    let track = stored(&h, "truck-t", 2).await;
    assert_eq!(track.len(), 2);
    let m = &r.stage.handle.core.metrics;
    assert_eq!(m.rejected_count("teltonika", "checksum"), 1);
    assert_eq!(m.rejected_count("teltonika", "impossible_jump"), 1);
    assert_eq!(m.rejected_count("teltonika", "unknown_device"), 1);
    r.stop.cancel();
}

/// Sends a raw HTTP/1.1 request and returns the status code.
async fn http(r: &Running, request: &str) -> u16 {
    let mut s = connect(r, Protocol::Osmand).await;
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"))
}

#[tokio::test]
async fn osmand_and_traccar_client_requests_are_taken_and_unknown_ids_refused() {
    let r = start().await;
    let h = r.stage.handle();
    let ts = (Utc::now() - chrono::Duration::seconds(20)).timestamp();
    // The OsmAnd app: GET with query parameters.
    let get = format!(
        "GET /?id=osm-17&timestamp={ts}&lat=51.1283&lon=71.4305&speed=5.0&bearing=90&altitude=350&accuracy=6&batt=80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(http(&r, &get).await, 200);
    // Traccar Client: POST, parameters as a form body.
    let body = format!(
        "id=osm-17&timestamp={}&lat=51.1290&lon=71.4310&speed=6.0",
        ts + 5
    );
    let post = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(http(&r, &post).await, 200);
    let unknown =
        "GET /?id=nobody&lat=51.1&lon=71.4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(http(&r, unknown).await, 403);
    let broken =
        "GET /?id=osm-17&lat=north&lon=71.4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_eq!(http(&r, broken).await, 400);
    let track = stored(&h, "phone-1", 2).await;
    assert_eq!(track.len(), 2);
    assert!((f64::from(track[0].speed_kmh.expect("speed")) - 9.26).abs() < 0.01);
    assert!(
        h.rejected()
            .iter()
            .any(|p| p.device.as_deref() == Some("nobody")
                && p.reason == RejectReason::UnknownDevice)
    );
    r.stop.cancel();
}

#[tokio::test]
async fn a_truck_standing_at_a_route_point_serves_it_and_the_point_it_drove_past_is_missed() {
    use crate::config::RouteSettings;
    use crate::domain::Position;
    let mut s = settings();
    s.routes.insert(
        "r1".into(),
        RouteSettings {
            points: vec!["A".into(), "B".into()],
            start_s: 6 * 3600,
            end_s: 12 * 3600,
        },
    );
    s.vehicles[1].route = Some("r1".into());
    let a = Position::new(51.1000, 71.4300);
    let b = Position::new(51.1100, 71.4300);
    let points = HashMap::from([(
        "r1".to_owned(),
        vec![("A".to_owned(), a), ("B".to_owned(), b)],
    )]);
    let r = start_with(s, points).await;
    let h = r.stage.handle();
    let mut sock = connect(&r, Protocol::Teltonika).await;
    sock.write_all(&teltonika::encode_imei("356307042441013"))
        .await
        .expect("write");
    let mut one = [0u8; 1];
    sock.read_exact(&mut one).await.expect("imei answer");
    // 2026-11-30 08:00 UTC: stands 2 minutes at A (±4 m jitter), then drives past B at 30 km/h.
    let t0 = DateTime::<Utc>::from_timestamp(1_764_489_600, 0).expect("time");
    let mut fixes = Vec::new();
    for k in 0..25i64 {
        let jitter = if k % 2 == 0 { 0.00003 } else { -0.00003 };
        fixes.push((k * 5, a.lat + jitter, 0.0));
    }
    for k in 0..30i64 {
        fixes.push((125 + k * 5, a.lat + 0.0004 * (k + 1) as f64, 30.0));
    }
    for chunk in fixes.chunks(20) {
        let batch: Vec<Fix> = chunk
            .iter()
            .map(|(s, lat, speed)| Fix {
                at: t0 + chrono::Duration::seconds(*s),
                position: Position::new(*lat, a.lon),
                speed_kmh: Some(*speed),
                course_deg: Some(0.0),
                altitude_m: None,
                satellites: Some(9),
                hdop: None,
                accuracy_m: None,
                ignition: Some(true),
                black_box: false,
            })
            .collect();
        sock.write_all(&teltonika::encode_codec8(&batch))
            .await
            .expect("write");
        let mut ack = [0u8; 4];
        sock.read_exact(&mut ack).await.expect("ack");
        assert_eq!(u32::from_be_bytes(ack) as usize, batch.len());
    }
    stored(&h, "truck-t", fixes.len()).await;
    let day = h
        .route_day("r1", t0.date_naive())
        .await
        .expect("store")
        .expect("route");
    let states: Vec<_> = day.iter().map(|p| (p.point.as_str(), p.state)).collect();
    assert_eq!(
        states,
        [("A", PointState::Served), ("B", PointState::Missed)]
    );
    assert_eq!(day[0].served_by.as_deref(), Some("truck-t"));
    assert_eq!(h.routes()[0].vehicles, ["truck-t"]);
    // The missed point raises one appeal, however often the check runs.
    let registry = Registry::connect(&r.db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let site = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    let city = Arc::new(crate::geo::CityHandle::load(&site).expect("demo city"));
    let intake =
        crate::incidents::Intake::new(Arc::new(crate::config::IncidentsConfig::default()), city);
    let mut numbers = Vec::new();
    for _ in 0..2 {
        let missed = h
            .raise_missed("r1", t0.date_naive(), &registry, &intake)
            .await
            .expect("raised");
        assert_eq!(missed.len(), 1, "{missed:?}");
        assert_eq!(missed[0].0, "B");
        numbers.push(missed[0].1.clone());
    }
    assert_eq!(
        numbers[0].outcome,
        crate::registry::SubmitOutcome::Created,
        "{numbers:?}"
    );
    assert_ne!(
        numbers[1].outcome,
        crate::registry::SubmitOutcome::Created,
        "{numbers:?}"
    );
    assert_eq!(numbers[0].number, numbers[1].number);
    let appeal = registry
        .appeal(&numbers[0].number)
        .await
        .expect("read")
        .expect("appeal");
    assert_eq!(appeal.category, "waste_not_collected");
    r.stop.cancel();
}
