//! The detection path of a whole node, with real parts: the real ONNX Runtime running the
//! tiny model (`models/tiny`: a red 8×8 square scores 1.0), real JPEG evidence files, the real
//! Mosquitto on 127.0.0.1:1883 and the real PostgreSQL on 127.0.0.1:5432. Frames are
//! synthetic inputs pushed into the node's FrameQueue; the camera itself points at a closed
//! port and stays backing off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::{AppError, EventSink, Node};
use crate::config::{SiteConfig, load_site};
use crate::domain::{CameraId, DetectionEvent, EventKind, Frame, Letterbox};
use crate::obs::Metrics;
use crate::test_util::wait_for;

const SIZE: usize = 64;
const STRIDE: usize = SIZE * 3 + 4;
const T0: u64 = 1_795_000_000;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A site folder with one camera `cam-1` (detectors `manholes`) and `[detect]` on the tiny
/// model; `detect_extra` is appended to `[detect]`, `manifest` names the model's manifest.
fn site(dir: &Path, manifest: &Path, detect_extra: &str) -> SiteConfig {
    let site = format!(
        r#"[site]
name = "test"
bounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}

[ingest]
analysis_width = 64
analysis_height = 64
backoff_initial_s = 0.5
backoff_max_s = 2

[http]
listen = "127.0.0.1:0"

[detect]
models = {{ tiny = "{manifest}" }}
confirm_s = 4
confirm_min_samples = 3
evidence_dir = "evidence"
{detect_extra}

[detect.detectors.manholes]
model = "tiny"
classes = ["red_square"]
"#,
        manifest = manifest.display()
    );
    let cameras = r#"[[camera]]
id = "cam-1"
name = "Test camera"
url = "rtsp://127.0.0.1:9/cam/1"
lat = 51.17
lon = 71.43
address = "Astana, test street 1"
detectors = ["manholes"]
"#;
    std::fs::write(dir.join("site.toml"), site).expect("site.toml");
    std::fs::write(dir.join("cameras.toml"), cameras).expect("cameras.toml");
    match load_site(dir) {
        Ok(site) => site,
        Err(errors) => panic!("test site does not load: {errors}"),
    }
}

/// A dark 64×64 frame with a red 8×8 square at grid cell `(col, row)`, taken at `T0 + secs`.
fn red_square_frame(camera: &str, seq: u64, secs: u64, cell: (usize, usize)) -> Frame {
    gstreamer::init().expect("gst init");
    let mut pixels = vec![0u8; STRIDE * SIZE];
    let (col, row) = cell;
    for y in row * 8..row * 8 + 8 {
        for x in col * 8..col * 8 + 8 {
            pixels[y * STRIDE + x * 3..y * STRIDE + x * 3 + 3].copy_from_slice(&[255, 0, 0]);
        }
    }
    Frame {
        camera: CameraId::new(camera),
        seq,
        pts: None,
        captured_at: SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs),
        width: SIZE as u32,
        height: SIZE as u32,
        stride: STRIDE,
        letterbox: Letterbox::fit((SIZE as u32, SIZE as u32), (SIZE as u32, SIZE as u32)),
        decode_latency: None,
        received_at: std::time::Instant::now(),
        buffer: gstreamer::Buffer::from_mut_slice(pixels),
    }
}

/// Pushes one red-square sample every 2 s (sample time) and waits for the first event.
async fn feed_until_event(node: &Node) -> Arc<DetectionEvent> {
    for i in 0..4 {
        node.ingest
            .queue()
            .push(red_square_frame("cam-1", i, 2 * i, (3, 2)));
    }
    wait_for(Duration::from_secs(60), || {
        node.events.list().first().cloned()
    })
    .await
    .expect("a confirmed event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_square_seen_over_the_confirmation_time_becomes_one_hazard_event_with_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site(dir.path(), &repo("models/tiny/model.toml"), "");
    let metrics = Arc::new(Metrics::new());
    let node = Node::start(&site, metrics.clone(), true)
        .await
        .expect("node starts");
    // A single flicker first, far from the later square: never an event.
    node.ingest
        .queue()
        .push(red_square_frame("cam-1", 100, 0, (7, 7)));
    let event = feed_until_event(&node).await;
    assert_eq!(event.kind, EventKind::Hazard);
    assert_eq!(&*event.class, "red_square");
    assert_eq!(event.category.as_str(), "open_manhole");
    assert_eq!(event.camera.as_str(), "cam-1");
    assert_eq!((event.model.name.as_str(), event.threshold), ("tiny", 0.5));
    assert!((event.bbox.x1 - 24.0).abs() < 0.5 && (event.bbox.y1 - 16.0).abs() < 0.5);
    assert_eq!(
        event.first_seen,
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0)
    );
    let evidence = event.evidence.clone().expect("evidence stored");
    assert!(
        evidence
            .annotated_path
            .starts_with(dir.path().join("evidence"))
    );
    let annotated = image::open(&evidence.annotated_path)
        .expect("annotated JPEG decodes")
        .to_rgb8();
    let clean = image::load_from_memory(&std::fs::read(&evidence.clean_path).expect("clean file"))
        .expect("clean JPEG decodes")
        .to_rgb8();
    assert_eq!(annotated.dimensions(), (64, 64));
    // The box is drawn (yellow) on the square's edge in the annotated copy only; the square's
    // inside stays red in both.
    let yellow = |p: &image::Rgb<u8>| p[0] > 180 && p[1] > 150 && p[2] < 100;
    assert!(
        yellow(annotated.get_pixel(27, 16)),
        "{:?}",
        annotated.get_pixel(27, 16)
    );
    assert!(
        !yellow(clean.get_pixel(27, 16)),
        "{:?}",
        clean.get_pixel(27, 16)
    );
    assert!(clean.get_pixel(27, 19)[0] > 180);

    // The same object seen again is the same track: no second event.
    for i in 4..8 {
        node.ingest
            .queue()
            .push(red_square_frame("cam-1", i, 2 * i, (3, 2)));
    }
    let text_has = |needle: &str| metrics.encode().lines().any(|l| l.starts_with(needle));
    assert!(
        wait_for(Duration::from_secs(60), || {
            metrics
                .encode()
                .lines()
                .find(|l| l.starts_with("sitcenter_frames_analysed_total{model=\"tiny\"}"))
                .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .filter(|n| *n >= 9)
        })
        .await
        .is_some(),
        "{}",
        metrics.encode()
    );
    node.stop().await;
    assert_eq!(node.events.len(), 1, "{:?}", node.events.list());
    assert!(text_has(
        "sitcenter_detection_events_total{kind=\"hazard\",class=\"red_square\"} 1"
    ));
    assert!(text_has("sitcenter_inference_batch_size_count"));
    assert!(text_has("sitcenter_detections_total{class=\"red_square\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_model_stops_the_start_with_an_error_naming_the_file() {
    for (manifest, file) in [
        ("models/tiny/invalid/wrong-shape.toml", "wrong-shape.onnx"),
        ("models/tiny/invalid/truncated.toml", "truncated.onnx"),
        ("models/tiny/invalid/three-classes.toml", "model.onnx"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = site(dir.path(), &repo(manifest), "");
        match Node::start(&site, Arc::new(Metrics::new()), true).await {
            Err(AppError::Detect(error)) => {
                let message = error.to_string();
                assert!(message.contains(file), "{manifest}: {message}");
            }
            Err(other) => panic!("{manifest}: unexpected error {other}"),
            Ok(node) => {
                node.stop().await;
                panic!("{manifest}: a broken model must not start");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_model_at_reload_keeps_the_running_detector_and_reports_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A private copy of the tiny model, so the test can break it.
    let model_dir = dir.path().join("model");
    std::fs::create_dir(&model_dir).expect("mkdir");
    for f in ["model.toml", "model.onnx"] {
        std::fs::copy(repo("models/tiny").join(f), model_dir.join(f)).expect("copy");
    }
    let site = site(dir.path(), &model_dir.join("model.toml"), "");
    let node = Node::start(&site, Arc::new(Metrics::new()), true)
        .await
        .expect("node starts");
    std::fs::copy(
        repo("models/tiny/invalid/truncated.onnx"),
        model_dir.join("model.onnx"),
    )
    .expect("break the model");
    node.reload_detector(true).await;
    let status = node.detector_status().expect("detection runs");
    let error = status.last_error.expect("the reload error is kept");
    assert!(error.contains("model.onnx"), "{error}");
    // The old detector still runs: frames still become an event.
    let event = feed_until_event(&node).await;
    assert_eq!(&*event.class, "red_square");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_event_is_published_over_mqtt_as_json_without_the_jpeg_bytes() {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let prefix = format!("sitcenter-test-{:016x}", rand::random::<u64>());
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site(
        dir.path(),
        &repo("models/tiny/model.toml"),
        &format!(
            "\n[detect.mqtt]\nhost = \"127.0.0.1\"\nport = 1883\ntopic_prefix = \"{prefix}\"\n"
        ),
    );
    // Subscribe first (a test client with its own id and topic).
    let mut options = MqttOptions::new(format!("{prefix}-sub"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    client
        .subscribe(format!("{prefix}/#"), QoS::AtLeastOnce)
        .await
        .expect("subscribe request");
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if tx.send(None).await.is_err() {
                        return;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send(Some((p.topic, p.payload.to_vec()))).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("test MQTT client (Mosquitto on 127.0.0.1:1883): {e}"),
            }
        }
    });
    let subscribed = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
    assert!(matches!(subscribed, Ok(Some(None))), "no SubAck");

    let node = Node::start(&site, Arc::new(Metrics::new()), true)
        .await
        .expect("node starts");
    let event = feed_until_event(&node).await;
    let (topic, payload) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("an MQTT message")
        .flatten()
        .expect("a publish");
    assert_eq!(topic, format!("{prefix}/test/events/cam-1"));
    let json: serde_json::Value = serde_json::from_slice(&payload).expect("JSON");
    assert_eq!(json["id"], event.id.as_str());
    assert_eq!(json["class"], "red_square");
    assert_eq!(json["kind"], "hazard");
    assert_eq!(json["category"], "open_manhole");
    assert_eq!(json["model"]["name"], "tiny");
    assert!(
        json["evidence"]["annotated_path"]
            .as_str()
            .is_some_and(|p| p.ends_with(".jpg"))
    );
    assert!(json["evidence"].get("annotated_jpeg").is_none());
    assert!(payload.len() < 4096, "no JPEG bytes in the payload");
    node.stop().await;
    poller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_open_manhole_becomes_an_appeal_in_the_registry() {
    use crate::config::IncidentsConfig;
    use crate::geo::CityHandle;
    use crate::incidents::Intake;
    use crate::registry::test_db::TestDb;
    use crate::registry::{Registry, SystemClock};

    let db = TestDb::create().await;
    let registry = Registry::connect(&db.url, Arc::new(SystemClock))
        .await
        .expect("registry");
    let city = CityHandle::load(&repo("camera-configs/demo")).expect("demo city");
    let intake = Intake::new(Arc::new(IncidentsConfig::default()), Arc::new(city));
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let sink = EventSink {
        name: "registry",
        events: tx,
        task: tokio::spawn(crate::app::registry::submit_events(
            registry.clone(),
            intake,
            rx,
        )),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site(dir.path(), &repo("models/tiny/model.toml"), "");
    let node = Node::start_with(&site, Arc::new(Metrics::new()), true, vec![sink])
        .await
        .expect("node starts");
    let event = feed_until_event(&node).await;
    // Stopping drains the sinks: the submission has happened when stop returns.
    node.stop().await;
    let rows = db
        .superuser()
        .await
        .query("SELECT category FROM appeals", &[])
        .await
        .expect("query");
    let categories: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(categories, vec!["open_manhole".to_owned()], "{event:?}");
    let evidence = db
        .superuser()
        .await
        .query("SELECT items::text FROM evidence", &[])
        .await
        .expect("query");
    let items: Vec<String> = evidence.iter().map(|r| r.get(0)).collect();
    assert!(
        items.len() == 1 && items[0].contains(".clean.jpg"),
        "{items:?}"
    );
}

/// `GET path` over plain HTTP/1.1 (`Connection: close`): status and raw body bytes.
async fn get_with(addr: std::net::SocketAddr, path: &str, header: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{header}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, raw[end + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_their_evidence_are_served_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = site(dir.path(), &repo("models/tiny/model.toml"), "");
    let node = Arc::new(
        Node::start(&site, Arc::new(Metrics::new()), true)
            .await
            .expect("node starts"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The events routes need an identity: a key with `events:read`, on a sign-in store of
    // its own.
    let db = crate::registry::test_db::TestDb::create().await;
    let registry =
        crate::registry::Registry::connect(&db.url, Arc::new(crate::registry::SystemClock))
            .await
            .expect("registry");
    let auth = crate::auth::Auth::new(registry.pool().clone(), Default::default());
    let key = auth
        .add_key("test", "dashboard", &[crate::auth::Scope::EventsRead])
        .await
        .expect("key");
    auth.add_user(
        "test",
        "qa",
        "",
        &[crate::auth::Role::Qa],
        "correct horse battery",
    )
    .await
    .expect("user");
    let person = auth
        .sign_in("qa", "correct horse battery", [127, 0, 0, 1].into())
        .await
        .expect("sign in");
    let cookie = format!("Cookie: sitcenter_session={}", person.token);
    let bearer = format!("Authorization: Bearer {key}");
    let session = crate::api::SessionState {
        auth,
        secure_cookies: false,
    };
    let router = crate::api::router(node.api_state(&site, Arc::default(), None, Some(session)));
    let server = tokio::spawn(axum::serve(listener, router).into_future());
    let event = feed_until_event(&node).await;

    let (status, body) = get_with(addr, "/api/events", &bearer).await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(list[0]["id"], event.id.as_str());
    assert_eq!(list[0]["camera"], "cam-1");
    for path in ["evidence.jpg", "clean.jpg"] {
        let (status, body) =
            get_with(addr, &format!("/api/events/{}/{path}", event.id), &bearer).await;
        assert_eq!(status, 200, "{path}");
        assert!(image::load_from_memory(&body).is_ok(), "{path} is a JPEG");
    }
    let (status, _) = get_with(addr, "/api/events/nope/evidence.jpg", &bearer).await;
    assert_eq!(status, 404);
    let (status, _) = get_with(addr, "/api/detect", "X-Nobody: 1").await;
    assert_eq!(status, 401, "anonymous");
    let (status, body) = get_with(addr, "/api/detect", &cookie).await;
    assert_eq!(status, 200);
    let detect: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(
        (detect["model"].as_str(), detect["provider"].as_str()),
        (Some("tiny"), Some("cpu"))
    );
    node.stop().await;
    server.abort();
}
