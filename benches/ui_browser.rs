//! Browser benchmark of the operator UI (issue 14) and the screenshot tool — not a test.
//!
//! `cargo bench --bench ui_browser` starts a real node (PostgreSQL, the street model for
//! `[detect]`, 16,000 cameras refused by admission control so that none connects) and drives
//! headless Chromium through WebDriver:
//! - review throughput: a scripted keyboard user confirms and rejects (C, R 1) `REVIEW_ITEMS`
//!   camera detections; items per minute and the time from a verdict key to the next item on
//!   screen (measured in the page); baseline in the same run: the same claim + verdict calls
//!   over plain HTTP without a browser;
//! - the camera wall over 16,000 cameras: first page shown, and a text filter; baseline: the
//!   API call for the same page over plain HTTP.
//!
//! `cargo bench --bench ui_browser -- --screenshots docs/screenshots` writes a PNG of every
//! screen in Russian and the review screen in Kazakh instead (scripts/screenshots.sh).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Browser, TestDatabase, copy_city_layers, free_port, get_with, post_json, run_cli, sign_in,
    spawn,
};
use sitcenter::domain::{Category, EvidenceRef, Observation, Position, Source};

const PASSWORD: &str = "ui bench correct horse";
const REVIEW_ITEMS: usize = 60;
const WALL_CAMERAS: usize = 16_000;

struct Site {
    dir: tempfile::TempDir,
    port: u16,
    _node: common::Process,
}

fn camera_position(i: usize) -> (f64, f64) {
    // A grid over the city, about 100 m apart.
    let (row, col) = (i / 200, i % 200);
    (51.08 + row as f64 * 0.0009, 71.33 + col as f64 * 0.0013)
}

fn start(db: &TestDatabase, cameras: usize) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/street/model.toml");
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "[site]\nname = \"Astana demo\"\ncity = \"Astana\"\nbounds = {{ south = 51.05, west = 71.30, north = 51.25, east = 71.60 }}\n\
             [ingest]\ndecode_budget_ms_per_s = 0.001\nanalysis_width = 384\nanalysis_height = 224\n\
             [http]\nlisten = \"127.0.0.1:{port}\"\n{}\
             [detect]\nmodels = {{ street = \"{}\" }}\nevidence_dir = \"evidence\"\n\
             [detect.detectors.manholes]\nmodel = \"street\"\nclasses = [\"manhole_open\"]\n",
            db.registry_toml(),
            manifest.display()
        ),
    )
    .expect("site.toml");
    let districts = ["Saryarka", "Baikonur", "Almaty", "Yesil", "Nura"];
    let mut toml = String::new();
    for i in 0..cameras {
        let (lat, lon) = camera_position(i);
        toml.push_str(&format!(
            "[[camera]]\nid = \"ast-{i:05}\"\nname = \"Camera {i}\"\nurl = \"rtsp://127.0.0.1:9/cam/{i}\"\nlat = {lat:.5}\nlon = {lon:.5}\naddress = \"Astana, street {} house {}\"\ndistrict = \"{}\"\n",
            i / 40,
            i % 40 + 1,
            districts[i % districts.len()]
        ));
    }
    std::fs::write(dir.path().join("cameras.toml"), toml).expect("cameras.toml");
    copy_city_layers(dir.path());
    let site = dir.path().to_str().expect("utf-8 path");
    for (name, role) in [("insp1", "inspector"), ("sup", "supervisor")] {
        run_cli(
            &["user", "add", "--site", site, name, "--role", role],
            &[("SITCENTER_PASSWORD", PASSWORD)],
        );
    }
    let node = spawn(&["run", "--site", site]);
    // 16,000 cameras take a while to load and admit on a debug build: wait up to 10 minutes.
    let deadline = Instant::now() + Duration::from_secs(600);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the node does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Site {
        dir,
        port,
        _node: node,
    }
}

/// Evidence images from the street model's fixture (640×360), clean and with the box drawn.
fn evidence_files(dir: &Path) -> (PathBuf, PathBuf, [f32; 4]) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/street/fixtures");
    let clean = image::open(fixtures.join("open_manhole.png"))
        .expect("fixture")
        .to_rgb8();
    let bbox = [354.0f32, 184.3, 395.7, 203.3];
    let mut annotated = clean.clone();
    for x in bbox[0] as u32..=bbox[2] as u32 {
        for t in 0..2 {
            annotated.put_pixel(x, bbox[1] as u32 + t, image::Rgb([255, 45, 85]));
            annotated.put_pixel(x, bbox[3] as u32 - t, image::Rgb([255, 45, 85]));
        }
    }
    for y in bbox[1] as u32..=bbox[3] as u32 {
        for t in 0..2 {
            annotated.put_pixel(bbox[0] as u32 + t, y, image::Rgb([255, 45, 85]));
            annotated.put_pixel(bbox[2] as u32 - t, y, image::Rgb([255, 45, 85]));
        }
    }
    let folder = dir.join("evidence/bench");
    std::fs::create_dir_all(&folder).expect("evidence dir");
    let (a, c) = (folder.join("item.jpg"), folder.join("item.clean.jpg"));
    annotated.save(&a).expect("annotated jpeg");
    clean.save(&c).expect("clean jpeg");
    (a, c, bbox)
}

/// `n` camera detections as the event stage files them (events/observation.rs), directly
/// through the registry; each on its own camera, far enough apart not to be deduplicated.
fn file_detections(site: &Site, db: &TestDatabase, n: usize) {
    let (annotated, clean, bbox) = evidence_files(site.dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("{} dbname={}", std::env::var("SITCENTER_TEST_PG").unwrap_or_else(|_| common::PG.to_owned()), db.name);
        let registry = sitcenter::registry::Registry::connect(&url, Arc::new(sitcenter::registry::SystemClock)).await.expect("registry");
        let city = Arc::new(sitcenter::geo::CityHandle::load(site.dir.path()).expect("city"));
        let intake = sitcenter::incidents::Intake::new(Arc::new(sitcenter::config::IncidentsConfig::default()), city);
        for i in 0..n {
            let camera = format!("ast-{:05}", i * 37 % 16_000);
            let (lat, lon) = camera_position(i * 37 % 16_000);
            let class = if i % 3 == 2 { "dump" } else { "manhole_open" };
            let data = serde_json::json!({
                "class": class, "score": 0.6 + (i % 40) as f64 / 100.0, "bbox": bbox,
                "model": { "name": "street", "version": if i % 2 == 0 { "1.2.0" } else { "1.3.0" } },
                "letterbox": { "source_width": 640, "source_height": 360, "scale": 1.0, "pad_x": 0, "pad_y": 0 },
            });
            let obs = Observation {
                category: Category::new(if class == "dump" { "illegal_dump" } else { "open_manhole" }).expect("category"),
                source: Source::Camera,
                source_ref: format!("camera:{camera}:event:bench-{i}"),
                position: Position::new(lat, lon),
                uncertainty_m: Some(50.0),
                address: Some(format!("Astana, street {} house {}", i / 40, i % 40 + 1)),
                description: Some(format!("{class} detected by camera {camera}")),
                actor: camera,
                observed_at: chrono::Utc::now(),
                evidence: vec![
                    EvidenceRef { kind: "image".into(), uri: Some(format!("file://{}", annotated.display())), data: Some(data) },
                    EvidenceRef { kind: "image".into(), uri: Some(format!("file://{}", clean.display())), data: None },
                ],
            };
            let plan = intake.plan(&obs).expect("plan");
            registry.submit(&obs, &plan).await.expect("submit");
        }
    });
}

fn sign_in_browser(browser: &Browser, port: u16, user: &str, hash: &str) {
    browser.open(&format!("http://127.0.0.1:{port}/{hash}"));
    browser.wait_until(
        "the sign-in form",
        "return !!document.getElementById('login-user')",
    );
    browser.type_into("#login-user", user);
    browser.type_into("#login-password", PASSWORD);
    browser.click("#login button[type=submit]");
    browser.wait_until(
        "the signed-in shell",
        "return document.body.dataset.loaded === '1'",
    );
}

/// Polls `script` every 5 ms (tighter than `wait_until`, for timing).
fn spin(browser: &Browser, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while browser.eval(script) != serde_json::json!(true) {
        assert!(Instant::now() < deadline, "not reached: {script}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn bench() {
    let db = TestDatabase::create();
    let site = start(&db, WALL_CAMERAS);
    file_detections(&site, &db, REVIEW_ITEMS * 2);
    let port = site.port;

    // Baseline: the same verdicts over plain HTTP (claim, verdict) without a browser.
    let (cookie, csrf) = sign_in(port, "insp1", PASSWORD);
    let started = Instant::now();
    for i in 0..REVIEW_ITEMS {
        let (_, claim) = post_json(port, "/api/review/claim", &cookie, &csrf, "{}");
        let claim: serde_json::Value = serde_json::from_str(&claim).expect("claim");
        let number = claim["items"][0]["appeal"]["number"]
            .as_str()
            .expect("an item")
            .to_owned();
        let body = if i % 2 == 0 {
            r#"{"verdict":"confirm"}"#
        } else {
            r#"{"verdict":"reject","reason":"false_positive"}"#
        };
        let (status, answer) = post_json(
            port,
            &format!("/api/review/{number}/verdict"),
            &cookie,
            &csrf,
            body,
        );
        assert_eq!(status, 200, "{answer}");
    }
    let api_per_min = REVIEW_ITEMS as f64 / started.elapsed().as_secs_f64() * 60.0;
    post_json(port, "/api/review/release", &cookie, &csrf, "{}");

    // The scripted keyboard user in Chromium.
    let browser = Browser::start();
    sign_in_browser(&browser, port, "insp1", "#/review");
    spin(
        &browser,
        "const r = document.getElementById('review'); return !!r && !!r.dataset.number",
    );
    let mut next_ms = Vec::new();
    let started = Instant::now();
    for i in 0..REVIEW_ITEMS {
        let shown = browser.eval("return document.getElementById('review').dataset.number");
        let done = i + 1;
        if i % 2 == 0 {
            browser.press("c");
        } else {
            browser.press("r1");
        }
        spin(
            &browser,
            &format!(
                "return Number(document.body.dataset.verdicts || 0) >= {done} && document.getElementById('review').dataset.number !== {shown}"
            ),
        );
        next_ms.push(
            browser
                .eval("return Number(document.body.dataset.nextShownMs)")
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    let ui_per_min = REVIEW_ITEMS as f64 / started.elapsed().as_secs_f64() * 60.0;

    // The camera wall over 16,000 cameras.
    let (scookie, _) = sign_in(port, "sup", PASSWORD);
    let mut api_page = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (status, _) = get_with(port, "/api/cameras?offset=0&limit=48", &scookie);
        assert_eq!(status, 200);
        api_page.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut api_filter = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let (status, _) = get_with(
            port,
            "/api/cameras?q=street%2017%20house&offset=0&limit=48",
            &scookie,
        );
        assert_eq!(status, 200);
        api_filter.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut wall_load = Vec::new();
    let mut wall_filter = Vec::new();
    for i in 0..5 {
        let t = Instant::now();
        browser.eval("location.hash = '#/board'; return true");
        spin(&browser, "return document.body.dataset.screen === 'board'");
        browser
            .eval("delete document.body.dataset.cameras; location.hash = '#/cameras'; return true");
        spin(
            &browser,
            &format!(
                "return document.body.dataset.cameras === '{WALL_CAMERAS}' && document.querySelectorAll('#camera-wall .tile').length === 48"
            ),
        );
        wall_load.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        browser.eval(&format!(
            "const f = document.getElementById('camera-filter'); f.value = 'street {} house'; f.dispatchEvent(new Event('input')); return true",
            17 + i
        ));
        spin(&browser, "return document.body.dataset.cameras !== '16000'");
        // Minus the 250 ms input debounce: the time the page itself takes.
        wall_filter.push(t.elapsed().as_secs_f64() * 1000.0 - 250.0);
    }
    println!("ui_browser: review, {REVIEW_ITEMS} items each way");
    println!("  API only (claim + verdict over HTTP): {api_per_min:.0} items/min");
    println!(
        "  Chromium, keyboard (C / R 1):         {ui_per_min:.0} items/min ({:.2} × the API)",
        ui_per_min / api_per_min
    );
    println!(
        "  verdict key → next item on screen:    median {:.0} ms (in the page)",
        median(next_ms)
    );
    println!("ui_browser: camera wall, {WALL_CAMERAS} cameras, page of 48");
    let (p, f) = (median(api_page), median(api_filter));
    let (wl, wf) = (median(wall_load), median(wall_filter));
    println!("  API page:    median {p:.1} ms; filtered {f:.1} ms");
    println!(
        "  wall shown:  median {wl:.0} ms ({:.1} × the API page)",
        wl / p
    );
    println!(
        "  wall filter: median {wf:.0} ms after the debounce ({:.1} × the API)",
        wf / f
    );
}

fn screenshots(out: &Path) {
    std::fs::create_dir_all(out).expect("screenshot folder");
    let db = TestDatabase::create();
    let site = start(&db, 300);
    file_detections(&site, &db, 12);
    let port = site.port;
    // A little history: a few verdicts for the quality page and the camera history.
    let (cookie, csrf) = sign_in(port, "sup", PASSWORD);
    for i in 0..4 {
        let (_, claim) = post_json(port, "/api/review/claim", &cookie, &csrf, "{}");
        let claim: serde_json::Value = serde_json::from_str(&claim).expect("claim");
        let number = claim["items"][0]["appeal"]["number"]
            .as_str()
            .expect("an item")
            .to_owned();
        let body = if i % 2 == 0 {
            r#"{"verdict":"confirm"}"#
        } else {
            r#"{"verdict":"reject","reason":"false_positive"}"#
        };
        post_json(
            port,
            &format!("/api/review/{number}/verdict"),
            &cookie,
            &csrf,
            body,
        );
    }
    post_json(port, "/api/review/release", &cookie, &csrf, "{}");
    let (_, list) = get_with(port, "/api/v1/appeals?status=confirmed&limit=1", &cookie);
    let list: serde_json::Value = serde_json::from_str(&list).expect("appeals");
    let confirmed = list[0]["number"].as_str().unwrap_or_default().to_owned();

    let shoot = |browser: &Browser, hash: &str, ready: &str, name: &str| {
        browser.eval(&format!("location.hash = '{hash}'; return true"));
        browser.wait_until(name, ready);
        std::thread::sleep(Duration::from_millis(1500));
        browser.screenshot(&out.join(format!("{name}.png")));
    };
    let inspector = Browser::start();
    sign_in_browser(&inspector, port, "insp1", "#/review");
    shoot(
        &inspector,
        "#/review",
        "const r = document.getElementById('review'); return !!r && !!r.dataset.number",
        "review-ru",
    );
    inspector.eval("const s = document.getElementById('language'); s.value = 'kk'; s.dispatchEvent(new Event('change')); return true");
    shoot(
        &inspector,
        "#/review",
        "const r = document.getElementById('review'); return document.documentElement.lang === 'kk' && !!r && !!r.dataset.number",
        "review-kk",
    );
    inspector.eval("const s = document.getElementById('language'); s.value = 'ru'; s.dispatchEvent(new Event('change')); return true");

    let supervisor = Browser::start();
    sign_in_browser(&supervisor, port, "sup", "#/board");
    shoot(
        &supervisor,
        "#/board",
        "return !!document.querySelector('#board-rows tr[data-number]')",
        "board-ru",
    );
    shoot(
        &supervisor,
        &format!("#/appeal/{confirmed}"),
        "return !!document.getElementById('appeal-timeline')",
        "appeal-ru",
    );
    shoot(
        &supervisor,
        "#/cameras",
        "return document.querySelectorAll('#camera-wall .tile').length > 0",
        "cameras-ru",
    );
    shoot(
        &supervisor,
        "#/map",
        "return document.body.dataset.map === '1'",
        "map-ru",
    );
    shoot(
        &supervisor,
        "#/quality",
        "return !!document.querySelector('#quality-tables table')",
        "quality-ru",
    );
    println!("screenshots written to {}", out.display());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--screenshots") {
        let out = args
            .get(i + 1)
            .map_or_else(|| PathBuf::from("docs/screenshots"), PathBuf::from);
        let out = if out.is_absolute() {
            out
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(out)
        };
        screenshots(&out);
        return;
    }
    // `cargo test --benches` / nextest list: no benchmark then.
    if args.iter().any(|a| a == "--bench") {
        bench();
    }
}
