//! Binary-level end to end: `sitcenter rtsp-sim` and `sitcenter run` as separate
//! processes, read over plain HTTP and through a real browser (headless Chromium).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Browser, TestDatabase, copy_city_layers, free_port, get, get_with, run_cli, sign_in, spawn,
    wait_listening,
};

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

fn write_site(dir: &Path, sim_port: u16, http_port: u16, db: &TestDatabase) {
    std::fs::write(
        dir.join("site.toml"),
        format!(
            "[site]\nname = \"e2e\"\ncity = \"Astana\"\nbounds = {{ south = 51.0, west = 71.0, north = 51.5, east = 72.0 }}\n\
             [ingest]\nstall_timeout_s = 3\nbackoff_initial_s = 0.2\nbackoff_max_s = 2\nreload_poll_s = 0.5\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n{}",
            db.registry_toml()
        ),
    )
    .expect("site.toml");
    copy_city_layers(dir);
    write_cameras(dir, sim_port, &["cam/1", "cam/2", "cam/3", "refuse/1"]);
}

const PASSWORD: &str = "e2e correct horse";

fn cameras_json(port: u16, cookie: &str) -> serde_json::Value {
    let (status, body) = get_with(port, "/api/cameras", cookie);
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
    let db = TestDatabase::create();
    write_site(dir.path(), sim_port, http_port, &db);
    let site = dir.path().to_str().expect("utf-8 path");
    // No built-in account: the admin is created with the CLI, the password from the
    // environment (never the command line).
    run_cli(
        &[
            "user",
            "add",
            "--site",
            site,
            "e2e-admin",
            "--role",
            "admin",
        ],
        &[("SITCENTER_PASSWORD", PASSWORD)],
    );
    assert!(run_cli(&["user", "list", "--site", site], &[]).contains("e2e-admin"));
    let _service = spawn(&["run", "--site", site]);
    wait_listening(http_port);
    let (status, _) = get(http_port, "/api/cameras");
    assert_eq!(status, 401, "anonymous callers see no camera");
    let (cookie, _csrf) = sign_in(http_port, "e2e-admin", PASSWORD);
    let cookie = cookie.as_str();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let cameras = cameras_json(http_port, cookie);
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

    let (status, metrics) = get_with(http_port, "/metrics", cookie);
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
        let (status, body) = common::request(
            http_port,
            &format!("GET /api/cameras/e2e-0/snapshot.jpg HTTP/1.1\r\n{cookie}"),
            b"",
        );
        if status == 200 {
            break body;
        }
        assert!(Instant::now() < deadline, "no snapshot: {status}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
    let (status, body) = get_with(http_port, "/api/cameras/nope", cookie);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no camera `nope`"), "{body}");

    // The operator UI in a real browser (Chromium through chromedriver): the page asks for
    // sign-in, the admin signs in, and the camera wall renders every camera with its state.
    let browser = Browser::start();
    browser.open(&format!("http://127.0.0.1:{http_port}/#/cameras"));
    browser.wait_until(
        "the sign-in form",
        "return !!document.getElementById('login-user')",
    );
    browser.type_into("#login-user", "e2e-admin");
    browser.type_into("#login-password", PASSWORD);
    browser.click("#login button[type=submit]");
    browser.wait_until(
        "the camera wall",
        "return document.body.dataset.loaded === '1' && document.querySelectorAll('#camera-wall .tile').length === 4",
    );
    let dom = browser.source();
    assert!(dom.contains("sitcenter — e2e (Astana)"), "{dom}");
    for i in 0..4 {
        assert_eq!(
            dom.matches(&format!("data-camera=\"e2e-{i}\"")).count(),
            1,
            "tile e2e-{i} missing:\n{dom}"
        );
    }
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#camera-wall .tile.state-streaming').length"),
        serde_json::json!(3),
        "{dom}"
    );
    assert!(dom.contains("unauthorized"), "{dom}");

    // Config reload at run time: a broken file is refused and nothing changes...
    std::fs::write(
        dir.path().join("cameras.toml"),
        "[[camera]]\nid = \"broken\"\n",
    )
    .expect("write");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        cameras_json(http_port, cookie).as_array().map(Vec::len),
        Some(4),
        "a broken file changed the cameras"
    );
    // ...and a valid one applies: e2e-3 (refused) is removed, e2e-0..2 keep streaming untouched.
    let since_before = cameras_json(http_port, cookie)[0]["since"].clone();
    write_cameras(dir.path(), sim_port, &["cam/1", "cam/2", "cam/3"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cameras_json(http_port, cookie).as_array().map(Vec::len) != Some(3) {
        assert!(Instant::now() < deadline, "the reload was not applied");
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = cameras_json(http_port, cookie);
    assert_eq!(
        after[0]["since"], since_before,
        "an unchanged camera was restarted"
    );
    assert_eq!(after[0]["state"], "streaming");
}

fn post_form(port: u16, path: &str, body: &str) -> (u16, String) {
    let (status, body) = common::request(
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
    copy_city_layers(dir.path());
    let http_port = free_port();
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "[site]\nname = \"e2e-registry\"\nbounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}\n\
             [http]\nlisten = \"127.0.0.1:{http_port}\"\n\
             {}[registry.open311]\njurisdiction_id = \"astana.kz\"\n",
            db.registry_toml()
        ),
    )
    .expect("site.toml");
    std::fs::write(dir.path().join("cameras.toml"), "").expect("cameras.toml");
    let site = dir.path().to_str().expect("utf-8 path");
    // The city portal's key (shown once) and a Prometheus key, issued with the CLI.
    let portal = run_cli(
        &[
            "key",
            "add",
            "--site",
            site,
            "portal",
            "--scope",
            "open311:write",
        ],
        &[],
    );
    let portal = portal.trim();
    let scraper = run_cli(
        &[
            "key",
            "add",
            "--site",
            site,
            "prometheus",
            "--scope",
            "metrics:read",
        ],
        &[],
    );
    let service = spawn(&["run", "--site", site]);
    wait_listening(http_port);

    let request = "jurisdiction_id=astana.kz&service_code=open_manhole&lat=51.16&long=71.43&description=Open+manhole+by+the+school";
    let (status, _) = post_form(http_port, "/open311/v2/requests.json", request);
    assert_eq!(status, 403, "no anonymous request");
    let (status, body) = post_form(
        http_port,
        "/open311/v2/requests.json",
        &format!("{request}&api_key={portal}"),
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
    let (status, _) = get(http_port, "/metrics");
    assert_eq!(status, 401);
    let (status, metrics) = get_with(
        http_port,
        "/metrics",
        &format!("Authorization: Bearer {}", scraper.trim()),
    );
    assert_eq!(status, 200);
    assert!(
        metrics.contains("appeal"),
        "registry metrics are exposed:\n{metrics}"
    );
    drop(service);
    // The registry's own checks, as an auditor runs them: intact, then not after the owner
    // rewrites an event behind the triggers' back.
    let migrated = run_cli(&["migrate", "--site", site], &[]);
    assert!(migrated.contains("current"), "{migrated}");
    let verified = run_cli(&["registry", "verify", "--site", site], &[]);
    assert!(verified.contains("intact"), "{verified}");
    db.as_owner(
        "ALTER TABLE appeal_events DISABLE TRIGGER USER; \
         UPDATE appeal_events SET actor = 'inspector:nobody' WHERE seq = 1; \
         ALTER TABLE appeal_events ENABLE TRIGGER USER;",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sitcenter"))
        .args(["registry", "verify", "--site", site])
        .output()
        .expect("run verify");
    let report = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains(&format!("BROKEN {number}: event 1")),
        "{report}"
    );
}
