//! The binary's commands that need no running service: `validate` and `replay`.

use std::process::Command;

fn sitcenter(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sitcenter"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run sitcenter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_accepts_the_demo_site() {
    let (code, stdout, _) = sitcenter(&["validate", "camera-configs/demo"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("ok (294 cameras, site `demo`)"), "{stdout}");
}

#[test]
fn validate_prints_every_error_with_file_line_and_camera_and_exits_64() {
    let (code, _, stderr) = sitcenter(&["validate", "camera-configs/invalid/many-errors"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.starts_with("8 configuration errors:"), "{stderr}");
    for expected in [
        "many-errors/cameras.toml:23:7: camera `cam-b`: `url`",
        "many-errors/cameras.toml:29:6: camera `cam-a`: `id`: duplicate camera id",
        "many-errors/cameras.toml:40:7: camera `cam-c`: `lat/lon`",
        "many-errors/cameras.toml:51:26: camera `cam-d`: `detectors`: unknown detector `fireworks`",
        "many-errors/cameras.toml:63:11: camera `cam-e`: `zone[0].polygon`: invalid polygon",
        "many-errors/cameras.toml:68:7: camera `cam-f`: `url`: must not contain credentials",
        "many-errors/cameras.toml:80:1: camera `cam-g`: unknown field `colour`",
        "many-errors/cameras.toml:89:27: camera `cam-h`: `sampling.interval_s`",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("hunter2"));
}

#[test]
fn run_refuses_a_broken_site_before_binding_any_port() {
    let (code, _, stderr) = sitcenter(&["run", "--site", "camera-configs/invalid/bad-site"]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("bad-site/site.toml:20:10: `http.listen`"),
        "{stderr}"
    );
}

#[test]
fn replay_reports_every_clip_and_names_the_corrupt_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.json");
    let (code, stdout, stderr) = sitcenter(&[
        "replay",
        "test-media",
        "--report",
        report.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "a corrupt clip fails the replay: {stdout}{stderr}");
    assert!(
        stdout.contains("corrupt.mp4") && stdout.contains("ERROR"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("JSON");
    let files = json["files"].as_array().expect("files");
    let frames = |name: &str| {
        files
            .iter()
            .find(|f| f["file"].as_str().is_some_and(|p| p.ends_with(name)))
            .map(|f| (f["frames"].as_u64().unwrap_or(0), f["error"].clone()))
            .expect("file in report")
    };
    // Every frame of each clip, none lost: 20 s and 10 s at 25 fps, vtest 79.4 s.
    assert_eq!(frames("synthetic-360p.mp4").0, 500);
    assert_eq!(frames("synthetic-720p.mp4").0, 250);
    assert_eq!(frames("vtest-360p.mp4").0, 1985);
    let (corrupt_frames, corrupt_error) = frames("corrupt.mp4");
    assert_eq!(corrupt_frames, 0);
    assert!(
        corrupt_error
            .as_str()
            .is_some_and(|e| e.contains("corrupt.mp4")),
        "{corrupt_error}"
    );
}

#[test]
fn replay_with_keyframe_sampling_analyses_one_frame_per_interval() {
    let (code, stdout, stderr) = sitcenter(&[
        "replay",
        "test-media/synthetic-360p.mp4",
        "--mode",
        "keyframes",
        "--interval-s",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("synthetic-360p.mp4"))
        .expect("a row");
    let frames: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .expect("frames (after file and model)");
    assert_eq!(frames, 10, "20 s of footage, a keyframe every 2 s: {line}");
}

#[test]
fn validate_reports_a_registry_database_that_does_not_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("camera-configs/demo");
    for name in [
        "site.toml",
        "cameras.toml",
        "secrets.toml",
        "sensors.toml",
        "vehicles.toml",
    ] {
        std::fs::copy(demo.join(name), dir.path().join(name)).expect("copy");
    }
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let site = std::fs::read_to_string(dir.path().join("site.toml")).expect("read");
    std::fs::write(
        dir.path().join("site.toml"),
        site.replace("port=5432", &format!("port={closed_port}")),
    )
    .expect("write");
    let (code, _, stderr) = sitcenter(&["validate", dir.path().to_str().expect("utf-8")]);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("[registry] database_url: the database does not answer")
            && stderr.contains("Connection refused"),
        "{stderr}"
    );
}

#[test]
fn replay_scores_the_street_model_on_the_held_out_clips_and_fails_below_a_minimum() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("replay.json");
    let (code, stdout, stderr) = sitcenter(&[
        "replay",
        "test-media/labelled",
        "--model",
        "models/street/model.toml",
        "--interval-s",
        "0.4",
        "--min-recall",
        "manhole_open=0.8",
        "--report",
        report.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    let classes = &json["models"][0]["summary"]["classes"];
    for class in [
        "manhole_open",
        "manhole_closed",
        "dump",
        "bin",
        "car",
        "person",
    ] {
        let c = &classes[class];
        assert!(c["truths"].as_u64().expect("truths") > 0, "{class}: {c}");
        assert!(
            c["recall"].is_number() && c["ap50"].is_number(),
            "{class}: {c}"
        );
    }
    let open = &classes["manhole_open"];
    assert!(open["recall"].as_f64().expect("recall") >= 0.8, "{open}");
    assert!(json["models"][0]["summary"]["map50"].is_number());

    // The same run with a minimum no class reaches exits 3 and names the shortfalls.
    let (code, stdout, _) = sitcenter(&[
        "replay",
        "test-media/labelled/manhole-day.mp4",
        "--model",
        "models/street/model.toml",
        "--interval-s",
        "0.4",
        "--min-precision",
        "1.0",
        "--min-recall",
        "1.0",
    ]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("BELOW MINIMUM: "), "{stdout}");
}

#[test]
fn replay_with_a_baseline_reports_a_regression_of_the_weaker_model() {
    // street-v0 is an early checkpoint of street: as the candidate it regresses.
    let (code, stdout, stderr) = sitcenter(&[
        "replay",
        "test-media/labelled",
        "--model",
        "models/street-v0/model.toml",
        "--baseline",
        "models/street/model.toml",
        "--interval-s",
        "0.4",
    ]);
    assert_eq!(code, 4, "{stdout}{stderr}");
    assert!(stdout.contains("candidate street-v0"), "{stdout}");
    assert!(stdout.contains("baseline street "), "{stdout}");
    assert!(stdout.contains("verdict: REGRESSION"), "{stdout}");
    assert!(stdout.contains("manhole_open recall"), "{stdout}");
}

#[test]
fn replay_names_a_broken_model_or_labels_file() {
    let (code, _, stderr) = sitcenter(&[
        "replay",
        "test-media/synthetic-360p.mp4",
        "--model",
        "models/tiny/invalid/truncated.toml",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("truncated.onnx"), "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let labels = dir.path().join("broken.labels.json");
    std::fs::write(&labels, "{\"format\": \"sitcenter-labels/1\",\n \"fps\": }").expect("write");
    let (code, _, stderr) = sitcenter(&[
        "replay",
        "test-media/labelled/night.mp4",
        "--model",
        "models/street/model.toml",
        "--labels",
        labels.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("broken.labels.json:2:"), "{stderr}");
}
