//! Config loading against the committed fixtures in `camera-configs/`.

use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("camera-configs")
        .join(name)
}

/// (line, camera, field) of every error, for compact assertions.
fn located(errors: &ConfigErrors) -> Vec<(usize, Option<&str>, Option<&str>)> {
    errors
        .0
        .iter()
        .map(|e| (e.line, e.camera.as_deref(), e.field.as_deref()))
        .collect()
}

#[test]
fn the_demo_site_is_valid_and_has_a_few_hundred_cameras_in_astana() {
    let site = load_site(&fixture("demo")).expect("demo site is valid");
    assert!(site.cameras.len() >= 200, "{} cameras", site.cameras.len());
    assert_eq!(site.city.as_deref(), Some("Astana"));
    for camera in &site.cameras {
        assert!(
            site.bounds
                .contains(camera.location.lat, camera.location.lon)
        );
    }
    let secure = site
        .cameras
        .iter()
        .find(|c| c.url.path().starts_with("/secure/"))
        .expect("a camera with credentials");
    assert_eq!(
        secure.credentials.as_ref().map(|c| c.user.as_str()),
        Some("sim")
    );
    assert!(
        !format!("{secure:?}").contains("sim-secret"),
        "credentials leak in Debug"
    );
    let yard = site
        .cameras
        .iter()
        .find(|c| c.name.ends_with("yard"))
        .expect("a yard camera");
    assert_eq!(yard.sampling.interval, std::time::Duration::from_secs(6));
}

#[test]
fn every_camera_error_is_reported_at_once_with_line_camera_and_field() {
    let errors = load_site(&fixture("invalid/many-errors")).expect_err("broken config");
    assert_eq!(
        located(&errors),
        [
            (23, Some("cam-b"), Some("url")),
            (29, Some("cam-a"), Some("id")),
            (40, Some("cam-c"), Some("lat/lon")),
            (51, Some("cam-d"), Some("detectors")),
            (63, Some("cam-e"), Some("zone[0].polygon")),
            (68, Some("cam-f"), Some("url")),
            (80, Some("cam-g"), None),
            (89, Some("cam-h"), Some("sampling.interval_s")),
        ]
    );
    let text = errors.to_string();
    assert!(text.contains("cameras.toml:29:6: camera `cam-a`: `id`: duplicate camera id (first defined at line 12)"), "{text}");
    assert!(text.contains("self-intersection"), "{text}");
    assert!(text.contains("unknown field `colour`"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "a password from a URL was printed: {text}"
    );
}

#[test]
fn a_syntax_error_names_the_file_line_and_column() {
    let errors = load_site(&fixture("invalid/syntax")).expect_err("syntax error");
    assert_eq!(errors.0.len(), 1, "{errors}");
    let error = &errors.0[0];
    assert!(error.file.ends_with("syntax/cameras.toml"));
    assert_eq!((error.line, error.column), (8, 30));
}

#[test]
fn site_settings_errors_are_all_reported_without_cascading() {
    let errors = load_site(&fixture("invalid/bad-site")).expect_err("broken site");
    let fields: Vec<_> = errors
        .0
        .iter()
        .map(|e| (e.line, e.field.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            (12, Some("site.bounds")),
            (15, Some("ingest.max_concurrent_connects")),
            (16, Some("ingest.stall_timeout_s")),
            (17, Some("ingest.backoff_max_s")),
            (20, Some("http.listen")),
            (0, None),
            (6, Some("credentials")),
        ]
    );
    assert!(errors.0[5].file.ends_with("no-such-secrets.toml"));
}

fn write_site(dir: &Path, cameras: &str) {
    std::fs::write(
        dir.join("site.toml"),
        "[site]\nname = \"t\"\nbounds = { south = 51.0, west = 71.0, north = 51.5, east = 72.0 }\n",
    )
    .expect("write site.toml");
    std::fs::write(dir.join("cameras.toml"), cameras).expect("write cameras.toml");
}

const ONE_CAMERA: &str = r#"
[defaults]
detectors = ["dumps"]
sampling = { mode = "all", interval_s = 1.0 }
[[camera]]
id = "c1"
name = "One"
url = "rtsp://127.0.0.1:8554/cam/1"
credentials = "env-only"
lat = 51.2
lon = 71.4
address = "Somewhere 1"
"#;

#[test]
fn defaults_apply_and_credentials_come_from_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_site(dir.path(), ONE_CAMERA);
    // Unique variable name: tests run in parallel processes, but keep it unique anyway.
    let errors = load_site(dir.path()).expect_err("no credential yet");
    assert!(
        errors
            .to_string()
            .contains("SITCENTER_CREDENTIALS_ENV_ONLY"),
        "{errors}"
    );
    // SAFETY-free: nextest runs each test in its own process.
    // (std::env::set_var is unsafe in edition 2024; unsafe code is forbidden here.)
    let site = {
        let dir2 = tempfile::tempdir().expect("tempdir");
        write_site(
            dir2.path(),
            &ONE_CAMERA.replace("credentials = \"env-only\"\n", ""),
        );
        load_site(dir2.path()).expect("valid")
    };
    let camera = &site.cameras[0];
    assert_eq!(camera.detectors, [DetectorKind::Dumps]);
    assert_eq!(camera.sampling.mode, SamplingMode::All);
    assert_eq!(camera.pipeline, BuiltinPipeline::RtspH264.into());
    assert_eq!(camera.transport, Transport::Tcp);
}

#[test]
fn a_changed_camera_differs_only_when_its_settings_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cameras = ONE_CAMERA.replace("credentials = \"env-only\"\n", "");
    write_site(dir.path(), &cameras);
    let a = load_site(dir.path()).expect("valid").cameras.remove(0);
    write_site(dir.path(), &format!("\n\n# moved down\n{cameras}"));
    let moved = load_site(dir.path()).expect("valid").cameras.remove(0);
    assert_ne!(a.defined_at, moved.defined_at);
    assert!(a.same_settings(&moved));
    write_site(
        dir.path(),
        &cameras.replace("interval_s = 1.0", "interval_s = 3.0"),
    );
    let changed = load_site(dir.path()).expect("valid").cameras.remove(0);
    assert!(!a.same_settings(&changed));
}

/// A temporary site: `site_extra` appended to a minimal site.toml, `cameras` as cameras.toml.
fn temp_site(
    site_extra: &str,
    cameras: &str,
) -> (tempfile::TempDir, Result<SiteConfig, ConfigErrors>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/model.toml");
    let site = format!(
        "[site]\nname = \"t\"\nbounds = {{ south = 51.0, west = 71.0, north = 52.0, east = 72.0 }}\n\
         {}",
        site_extra.replace("TINY", &tiny.display().to_string())
    );
    std::fs::write(dir.path().join("site.toml"), site).expect("write");
    std::fs::write(dir.path().join("cameras.toml"), cameras).expect("write");
    let loaded = load_site(dir.path());
    (dir, loaded)
}

const DETECT_CAMERA: &str = "[[camera]]\nid = \"c1\"\nname = \"c\"\nurl = \"rtsp://127.0.0.1/x\"\n\
                          lat = 51.5\nlon = 71.5\naddress = \"a\"\ndetectors = [\"manholes\", \"offences\"]\n";

const DETECT_OK: &str = "[ingest]\nanalysis_width = 64\nanalysis_height = 64\n\
     [detect]\nmodels = { tiny = \"TINY\" }\n\
     [detect.detectors.manholes]\nmodel = \"tiny\"\nclasses = [\"red_square\"]\n\
     [detect.detectors.offences]\nmodel = \"tiny\"\nvehicle_classes = [\"blue_square\"]\n";

#[test]
fn a_detect_section_routes_detectors_to_model_classes() {
    let (_dir, loaded) = temp_site(DETECT_OK, DETECT_CAMERA);
    let site = loaded.expect("valid");
    let detect = site.detect.expect("[detect]");
    assert_eq!(detect.model_name, "tiny");
    assert_eq!(detect.manifest.input_width, 64);
    assert_eq!(
        detect.detectors[&DetectorKind::Manholes].classes,
        ["red_square"]
    );
    assert_eq!(
        detect.detectors[&DetectorKind::Offences].vehicle_classes,
        ["blue_square"]
    );
    assert_eq!(detect.provider, crate::config::ExecutionProvider::Cpu);
    assert_eq!(detect.tracking.min_hits, 3);
    assert!(detect.evidence_dir.ends_with("evidence"));
}

#[test]
fn an_analysis_size_other_than_the_model_input_is_refused_at_its_line() {
    let text = DETECT_OK.replace(
        "analysis_width = 64\nanalysis_height = 64",
        "analysis_width = 640\nanalysis_height = 640",
    );
    let (_dir, loaded) = temp_site(&text, DETECT_CAMERA);
    let errors = loaded.expect_err("size mismatch");
    assert_eq!(located(&errors), [(5, None, Some("ingest.analysis_width"))]);
    let message = errors.to_string();
    assert!(
        message.contains("640×640") && message.contains("64×64") && message.contains("model.toml"),
        "{message}"
    );
}

#[test]
fn detect_mistakes_are_all_reported_with_their_lines() {
    let text = "[ingest]\nanalysis_width = 64\nanalysis_height = 64\n\
         [detect]\nmodels = { tiny = \"TINY\", gone = \"nowhere/model.toml\" }\nprovider = \"gpu\"\n\
         [detect.detectors.manholes]\nmodel = \"tiny\"\nclasses = [\"manhole_open\"]\n\
         [detect.detectors.graffiti]\nmodel = \"tiny\"\nclasses = [\"red_square\"]\n\
         [detect.mqtt]\ntopic_prefix = \"a/#\"\n";
    let (_dir, loaded) = temp_site(text, DETECT_CAMERA);
    let errors = loaded.expect_err("broken");
    let fields: Vec<_> = located(&errors)
        .into_iter()
        .map(|(line, _, field)| (line, field.unwrap_or_default().to_owned()))
        .collect();
    for expected in [
        (8, "detect.models.gone".to_owned()),
        (9, "detect.provider".to_owned()),
        (12, "detect.detectors.manholes".to_owned()),
        (13, "detect.detectors.graffiti".to_owned()),
        (17, "detect.mqtt.topic_prefix".to_owned()),
    ] {
        assert!(
            fields.contains(&expected),
            "{expected:?} not in {fields:?}\n{errors}"
        );
    }
    let message = errors.to_string();
    assert!(message.contains("has no class `manhole_open`"), "{message}");
}

#[test]
fn a_camera_detector_without_a_route_is_refused_at_the_camera() {
    let text = DETECT_OK.replace(
        "[detect.detectors.offences]\nmodel = \"tiny\"\nvehicle_classes = [\"blue_square\"]\n",
        "",
    );
    let (_dir, loaded) = temp_site(&text, DETECT_CAMERA);
    let errors = loaded.expect_err("offences not routed");
    assert_eq!(located(&errors), [(1, Some("c1"), Some("detectors"))]);
    assert!(errors.to_string().contains("offences"), "{errors}");
}

#[test]
fn zone_rule_parameters_are_checked_against_the_zone_kind() {
    let cameras = format!(
        "{DETECT_CAMERA}[[camera.zone]]\nname = \"stop\"\nkind = \"no_parking\"\n\
         polygon = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]\nmax_dwell_s = 120\n\
         [[camera.zone]]\nname = \"depot\"\nkind = \"restricted\"\n\
         polygon = [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]\nnight_only = false\n"
    );
    let (_dir, loaded) = temp_site(DETECT_OK, &cameras);
    let site = loaded.expect("valid zones");
    let zones = &site.cameras[0].zones;
    assert_eq!(zones[0].max_dwell, std::time::Duration::from_secs(120));
    assert!(!zones[1].night_only);

    let broken = cameras.replace("night_only = false", "max_dwell_s = 30");
    let (_dir, loaded) = temp_site(DETECT_OK, &broken);
    let errors = loaded.expect_err("dwell on a restricted zone");
    assert_eq!(
        located(&errors),
        [(18, Some("c1"), Some("zone[1].max_dwell_s"))],
        "{errors}"
    );

    // A misspelt kind is an error at its line, not a zone that silently enforces another rule.
    let misspelt = cameras.replace("kind = \"restricted\"", "kind = \"restriced\"");
    let (_dir, loaded) = temp_site(DETECT_OK, &misspelt);
    let errors = loaded.expect_err("unknown zone kind");
    assert_eq!(
        located(&errors),
        [(16, Some("c1"), Some("zone[1].kind"))],
        "{errors}"
    );
    assert!(
        errors
            .to_string()
            .contains("unknown zone kind `restriced` (known: no_parking, restricted)"),
        "{errors}"
    );
}

#[test]
fn with_a_registry_every_category_the_detectors_raise_must_exist() {
    // `[detect]` keys go before its sub-tables; the registry uses the built-in categories.
    let text = DETECT_OK.replace(
        "[detect.detectors.manholes]",
        "parking_category = \"double_parking\"\n[detect.detectors.manholes]",
    ) + "[registry]\ndatabase_url = \"host=127.0.0.1 user=postgres dbname=x\"\n";
    let (_dir, loaded) = temp_site(&text, DETECT_CAMERA);
    let errors = loaded.expect_err("unknown category");
    assert_eq!(
        located(&errors),
        [(0, None, Some("detect.parking_category"))],
        "{errors}"
    );
    assert!(errors.to_string().contains("double_parking"), "{errors}");
}

#[test]
fn ingest_backend_and_admission_settings_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_site(
        dir.path(),
        &ONE_CAMERA.replace("credentials = \"env-only\"\n", ""),
    );
    let site = std::fs::read_to_string(dir.path().join("site.toml")).expect("read");
    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "{site}[ingest]\nrtsp_backend = \"ffmpeg\"\ndecoder_workers = 0\n\
             decode_budget_ms_per_s = 0.0\nkeyframe_decode_ms = -1.0\ndecoder_queue_capacity = 0\n\
             receive_batch_ms = 900\nreceive_tick_ms = 101\nreceive_threads = 0\n"
        ),
    )
    .expect("write");
    let errors = load_site(dir.path()).expect_err("invalid ingest settings");
    let fields: Vec<_> = errors
        .0
        .iter()
        .map(|e| (e.line, e.field.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            (6, Some("ingest.decoder_workers")),
            (5, Some("ingest.rtsp_backend")),
            (9, Some("ingest.decoder_queue_capacity")),
            (7, Some("ingest.decode_budget_ms_per_s")),
            (8, Some("ingest.keyframe_decode_ms")),
            (10, Some("ingest.receive_batch_ms")),
            (11, Some("ingest.receive_tick_ms")),
            (12, Some("ingest.receive_threads")),
        ],
        "{errors}"
    );
    assert!(
        errors
            .to_string()
            .contains("expected `shared-decoder` or `pipeline`")
    );

    std::fs::write(
        dir.path().join("site.toml"),
        format!(
            "{site}[ingest]\nrtsp_backend = \"pipeline\"\ndecoder_workers = 3\n\
             keyframe_decode_ms = 4.0\n"
        ),
    )
    .expect("write");
    let config = load_site(dir.path()).expect("valid");
    assert_eq!(
        config.ingest.rtsp_backend,
        crate::config::RtspBackend::Pipeline
    );
    assert_eq!(config.ingest.decoder_workers, 3);
    // The default budget follows the workers: 80 % of three decoders' time.
    assert!((config.ingest.decode_budget_ms_per_s - 2400.0).abs() < 1e-9);
}

const QUIET_YARDS: &str = r#"
[defaults]
detectors = ["dumps"]
sampling = { interval_s = 2, quiet_hours = [22, 6], quiet_interval_s = 10 }
[[camera]]
id = "yard-1"
name = "Yard"
url = "rtsp://127.0.0.1:8554/cam/1"
lat = 51.2
lon = 71.4
address = "Yard 1"
[[camera]]
id = "street-1"
name = "Street"
url = "rtsp://127.0.0.1:8554/cam/2"
lat = 51.2
lon = 71.4
address = "Street 1"
sampling = { quiet_interval_s = 2 }
"#;

#[test]
fn quiet_hours_are_inherited_field_by_field_in_the_sites_local_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_site(dir.path(), QUIET_YARDS);
    let site = load_site(dir.path()).expect("valid");
    assert_eq!(site.utc_offset_minutes, 300);
    let yard = site.cameras[0]
        .sampling
        .quiet
        .expect("yard has quiet hours");
    assert_eq!(
        (
            yard.hours.start_hour,
            yard.hours.end_hour,
            yard.hours.utc_offset_minutes
        ),
        (22, 6, 300)
    );
    assert_eq!(yard.interval, Duration::from_secs(10));
    // The street camera keeps the hours and overrides the interval: no slowdown.
    let street = site.cameras[1].sampling;
    assert_eq!(street.peak_interval(), Duration::from_secs(2));
    assert_eq!(street.slowest_interval(), Duration::from_secs(2));
}

#[test]
fn broken_quiet_hours_are_reported_at_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = QUIET_YARDS
        .replace("quiet_hours = [22, 6]", "quiet_hours = [22, 22]")
        .replace(
            "sampling = { quiet_interval_s = 2 }",
            "sampling = { quiet_interval_s = -1 }",
        );
    write_site(dir.path(), &broken);
    let errors = load_site(dir.path()).expect_err("invalid");
    let found: Vec<_> = errors
        .0
        .iter()
        .map(|e| (e.line, e.camera.as_deref(), e.field.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (4, None, Some("defaults.sampling.quiet_hours")),
            (19, Some("street-1"), Some("sampling.quiet_interval_s")),
        ],
        "{errors}"
    );
    // An interval without hours anywhere says what is missing.
    write_site(
        dir.path(),
        &QUIET_YARDS.replace("quiet_hours = [22, 6], ", ""),
    );
    let text = load_site(dir.path()).expect_err("no hours").to_string();
    assert!(text.contains("needs `quiet_hours`"), "{text}");
}

#[test]
fn registry_logins_come_from_secrets_never_from_site_toml() {
    // Lines 4 onwards: the [registry] section.
    let (_dir, loaded) = temp_site(
        "[registry]\n\
         database_url = \"host=127.0.0.1 user=postgres password=hunter2 dbname=x\"\n\
         service_user = \"svc\"\n\
         service_credentials = \"registry-service\"\n\
         statement_timeout_s = 0\n",
        DETECT_CAMERA,
    );
    let errors = loaded.expect_err("password in site.toml");
    assert_eq!(
        located(&errors),
        [
            (5, None, Some("registry.database_url")),
            (7, None, Some("registry.service_credentials")),
            (6, None, Some("registry.service_user")),
            (8, None, Some("registry.statement_timeout_s")),
        ],
        "{errors}"
    );
    assert!(!errors.to_string().contains("hunter2"), "{errors}");
    let (_dir, loaded) = temp_site(
        "[registry]\ndatabase_url = \"host=127.0.0.1 user=postgres dbname=x\"\n\
         service_user = \"sitcenter_app\"\nmigrate_at_start = false\nlock_timeout_s = 2.5\n",
        DETECT_CAMERA,
    );
    let db = loaded.expect("valid").registry.expect("registry").database;
    assert_eq!(db.service.map(|c| c.user).as_deref(), Some("sitcenter_app"));
    assert!(!db.migrate_at_start);
    assert_eq!(db.lock_timeout, std::time::Duration::from_millis(2500));
}

#[test]
fn http_edge_settings_are_read_and_out_of_range_ones_named_with_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = "[site]\nname = \"t\"\nbounds = { south = 51.0, west = 71.0, north = 51.5, east = 72.0 }\n\
        [http]\nlisten = \"127.0.0.1:8080\"\nheader_read_timeout_s = 5\nmax_connections = 100\n\
        max_connections_per_address = 10\nallowed_hosts = [\"SitCenter.Astana.kz\"]\n\
        writes_per_minute_per_address = 60\nwrites_per_minute_per_key = 120\n";
    std::fs::write(dir.path().join("site.toml"), site).expect("site.toml");
    std::fs::write(dir.path().join("cameras.toml"), "").expect("cameras.toml");
    let http = load_site(dir.path()).expect("valid site").http;
    assert_eq!(http.header_read_timeout, std::time::Duration::from_secs(5));
    assert_eq!(
        (http.max_connections, http.max_connections_per_address),
        (100, 10)
    );
    assert_eq!(http.allowed_hosts, ["sitcenter.astana.kz"]);
    assert_eq!(
        (
            http.writes_per_minute_per_address,
            http.writes_per_minute_per_key
        ),
        (60, 120)
    );

    let broken = "[site]\nname = \"t\"\nbounds = { south = 51.0, west = 71.0, north = 51.5, east = 72.0 }\n\
        [http]\nheader_read_timeout_s = 0\nmax_connections = 0\nallowed_hosts = [\"http://x:80\"]\n\
        writes_per_minute_per_key = 0\n";
    std::fs::write(dir.path().join("site.toml"), broken).expect("site.toml");
    let errors = load_site(dir.path()).expect_err("broken [http]");
    let fields: Vec<_> = errors
        .0
        .iter()
        .map(|e| (e.line, e.field.as_deref()))
        .collect();
    assert_eq!(
        fields,
        [
            (5, Some("http.header_read_timeout_s")),
            (6, Some("http.max_connections")),
            (8, Some("http.writes_per_minute_per_key")),
            (7, Some("http.allowed_hosts")),
        ]
    );
}

#[test]
fn a_map_tile_url_needs_http_and_its_placeholders_and_is_kept_when_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_site(dir.path(), "");
    let site = std::fs::read_to_string(dir.path().join("site.toml")).expect("site.toml");
    std::fs::write(
        dir.path().join("site.toml"),
        format!("{site}[http]\nmap_tiles_url = \"ftp://tiles.example/{{z}}/{{x}}.png\"\n"),
    )
    .expect("write");
    let errors = load_site(dir.path()).expect_err("a bad tile URL");
    assert_eq!(errors.0[0].field.as_deref(), Some("http.map_tiles_url"));
    assert_eq!(errors.0[0].line, site.lines().count() + 2);
    std::fs::write(
        dir.path().join("site.toml"),
        format!("{site}[http]\nmap_tiles_url = \"https://tiles.example/{{z}}/{{x}}/{{y}}.png\"\n"),
    )
    .expect("write");
    let loaded = load_site(dir.path()).expect("a good tile URL");
    assert_eq!(
        loaded
            .http
            .map_tiles_url
            .map(|u| u.host_str().map(str::to_owned)),
        Some(Some("tiles.example".to_owned()))
    );
}

#[test]
fn telemetry_and_vehicle_file_errors_are_reported_at_their_lines() {
    let errors = load_site(&fixture("invalid/bad-telemetry")).expect_err("broken telemetry");
    let found: Vec<_> = errors
        .0
        .iter()
        .map(|e| {
            (
                e.file
                    .file_name()
                    .and_then(|f| f.to_str())
                    .unwrap_or("")
                    .to_owned(),
                e.line,
                e.field.clone().unwrap_or_default(),
            )
        })
        .collect();
    let want = [
        ("site.toml", 15, "telemetry.wialon_listen"),
        ("site.toml", 16, "telemetry.max_hdop"),
        ("site.toml", 19, "telemetry.types.truck.silent_after_s"),
        ("site.toml", 22, "telemetry.routes.r1.end"),
        ("site.toml", 23, "telemetry.routes.r1.points"),
        ("vehicles.toml", 7, "vehicle.imei"),
        ("vehicles.toml", 8, "vehicle.type"),
        ("vehicles.toml", 9, "vehicle.route"),
        ("vehicles.toml", 10, "vehicle.password"),
    ];
    for (file, line, field) in want {
        assert!(
            found
                .iter()
                .any(|(f, l, x)| f == file && *l == line && x == field),
            "{file}:{line} {field} not in {found:?}"
        );
    }
    // The device password is never printed.
    assert!(!format!("{errors}").contains("nowhere\" ="));
}
