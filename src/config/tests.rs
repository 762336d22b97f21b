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
    assert_eq!(camera.detectors, ["dumps"]);
    assert_eq!(camera.sampling.mode, SamplingMode::All);
    assert_eq!(camera.pipeline, "rtsp-h264");
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
             decode_budget_ms_per_s = 0.0\nkeyframe_decode_ms = -1.0\ndecoder_queue_capacity = 0\n"
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
