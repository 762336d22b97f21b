//! Binary-level end to end: `sitcenter rtsp-sim` and `sitcenter run` as separate
//! processes, read over plain HTTP and through a real browser (headless Chromium).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, get, request, spawn, wait_listening};

fn write_cameras(dir: &Path, sim_port: u16, mounts: &[&str]) {
    let mut cameras = String::new();
    for (i, mount) in mounts.iter().enumerate() {
        cameras.push_str(&format!(
            "[[camera]]\nid = \"e2e-{i}\"\nname = \"E2E camera {i}\"\nurl = \"rtsp://127.0.0.1:{sim_port}/{mount}\"\n\
             lat = {}\nlon = 71.4{i}\naddress = \"Astana, test street {i}\"\n",
            51.1 + i as f64 * 0.05
        ));
    }
    std::fs::write(dir.join("cameras.toml"), cameras).expect("cameras.toml");
}

fn write_site(dir: &Path, sim_port: u16, http_port: u16) {
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[site]\nname = \"e2e\"\ncity = \"Astana\"\nbounds = {{ south = 51.0, west = 71.0, north = 51.5, east = 72.0 }}\n\
             [ingest]\nstall_timeout_s = 3\nbackoff_initial_s = 0.2\nbackoff_max_s = 2\nreload_poll_s = 0.5\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n"
        ),
    )
    .expect("site.toml");
    write_cameras(dir, sim_port, &["cam/1", "cam/2", "cam/3", "refuse/1"]);
}

fn cameras_json(port: u16) -> serde_json::Value {
    let (status, body) = get(port, "/api/cameras");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[test]
fn the_service_streams_cameras_shows_them_in_metrics_the_api_and_the_browser_and_reloads_its_config()
 {
    let sim_port = free_port();
    let media = concat!(env!("CARGO_MANIFEST_DIR"), "/test-media/synthetic-360p.mp4");
    let _sim = spawn(&[
        "rtsp-sim",
        "--port",
        &sim_port.to_string(),
        "--cameras",
        "3",
        "--refusing",
        "1",
        "--media",
        media,
    ]);
    wait_listening(sim_port);
    let dir = tempfile::tempdir().expect("tempdir");
    let http_port = free_port();
    write_site(dir.path(), sim_port, http_port);
    let _service = spawn(&["run", "--site", dir.path().to_str().expect("utf-8 path")]);
    wait_listening(http_port);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cameras = cameras_json(http_port);
        let states: Vec<&str> = cameras
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["state"].as_str().unwrap_or(""))
            .collect();
        if states == ["streaming", "streaming", "streaming", "failed"] {
            let refused = &cameras[3];
            assert_eq!(refused["reason"]["kind"], "unauthorized", "{refused}");
            break;
        }
        assert!(Instant::now() < deadline, "states: {states:?}");
        std::thread::sleep(Duration::from_millis(250));
    }

    let (status, metrics) = get(http_port, "/metrics");
    assert_eq!(status, 200);
    for expected in [
        "sitcenter_frames_received_total{camera=\"e2e-0\"}",
        "sitcenter_frames_decoded_total{camera=\"e2e-2\"}",
        "sitcenter_cameras{state=\"streaming\"} 3",
        "sitcenter_cameras{state=\"failed\"} 1",
        "sitcenter_frame_queue_capacity 256",
        "sitcenter_decode_latency_seconds_bucket",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in:\n{metrics}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let jpeg = loop {
        let (status, body) = request(
            http_port,
            "GET /api/cameras/e2e-0/snapshot.jpg HTTP/1.1",
            b"",
        );
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no snapshot: {status}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let (status, body) = get(http_port, "/api/cameras/nope");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no camera `nope`"), "{body}");

    // The operator UI in a real browser: the page loads the API and renders every camera.
    let profile = tempfile::tempdir().expect("profile dir");
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--virtual-time-budget=8000",
            "--dump-dom",
            &format!("http://127.0.0.1:{http_port}/"),
        ])
        .output()
        .expect("chromium runs (scripts/bootstrap.sh installs it)");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the page did not load the API:\n{dom}"
    );
    assert!(dom.contains("sitcenter — e2e (Astana)"), "{dom}");
    for i in 0..4 {
        assert!(
            dom.contains(&format!("<tr data-camera=\"e2e-{i}\"")),
            "row e2e-{i} missing:\n{dom}"
        );
        // One table row and one map dot per camera.
        assert_eq!(
            dom.matches(&format!("data-camera=\"e2e-{i}\"")).count(),
            2,
            "map dot e2e-{i} missing:\n{dom}"
        );
    }
    assert!(dom.contains("streaming: 3"), "{dom}");
    assert!(dom.contains("unauthorized"), "{dom}");

    // Config reload at run time: a broken file is refused and nothing changes...
    std::fs::write(
        dir.path().join("cameras.toml"),
        "[[camera]]\nid = \"broken\"\n",
    )
    .expect("write");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        cameras_json(http_port).as_array().map(Vec::len),
        Some(4),
        "a broken file changed the cameras"
    );
    // ...and a valid one applies: e2e-3 (refused) is removed, e2e-0..2 keep streaming untouched.
    let since_before = cameras_json(http_port)[0]["since"].clone();
    write_cameras(dir.path(), sim_port, &["cam/1", "cam/2", "cam/3"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cameras_json(http_port).as_array().map(Vec::len) != Some(3) {
        assert!(Instant::now() < deadline, "the reload was not applied");
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = cameras_json(http_port);
    assert_eq!(
        after[0]["since"], since_before,
        "an unchanged camera was restarted"
    );
    assert_eq!(after[0]["state"], "streaming");
}

/// A database of its own for one test, dropped at the end.
struct TestDatabase {
    name: String,
}

const PG: &str = "host=127.0.0.1 port=5432 user=postgres";

fn psql(sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| PG.to_owned());
        let (client, connection) =
            tokio_postgres::connect(&format!("{url} dbname=postgres"), tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL is running (scripts/services.sh starts it)");
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.expect(sql);
        drop(client);
        let _ended = driver.await;
    });
}

impl TestDatabase {
    fn create() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("sitcenter_e2e_{}_{nanos}", std::process::id());
        psql(&format!("CREATE DATABASE {name}"));
        Self { name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn post_form(port: u16, path: &str, body: &str) -> (u16, String) {
    let (status, body) = request(
        port,
        &format!("POST {path} HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded"),
        body.as_bytes(),
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn the_demo_city_service_serves_open311_from_its_registry_beside_the_cameras() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    for entry in std::fs::read_dir(&demo).expect("demo site") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "geojson") {
            std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                .expect("copy layer");
        }
    }
    let http_port = free_port();
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "[site]\nname = \"e2e-registry\"\nbounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             [registry]\ndatabase_url = \"{PG} dbname={}\"\n[registry.open311]\njurisdiction_id = \"astana.kz\"\n",
            db.name
        ),
    )
    .expect("site.toml");
    std::fs::write(dir.path().join("cameras.toml"), "").expect("cameras.toml");
    let service = spawn(&["run", "--site", dir.path().to_str().expect("utf-8 path")]);
    wait_listening(http_port);

    let (status, body) = post_form(
        http_port,
        "/open311/v2/requests.json",
        "jurisdiction_id=astana.kz&service_code=open_manhole&lat=51.16&long=71.43&description=Open+manhole+by+the+school",
    );
    assert_eq!(status, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let number = created[0]["service_request_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert!(
        number.starts_with("109-") && number.ends_with("-000001"),
        "{number}"
    );
    let (status, body) = get(
        http_port,
        &format!("/open311/v2/requests/{number}.json?jurisdiction_id=astana.kz"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"service_code\":\"open_manhole\""), "{body}");
    let (status, metrics) = get(http_port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("appeal"),
        "registry metrics are exposed:\n{metrics}"
    );
    drop(service);
}
