//! Module tests with the real ONNX Runtime and the tiny committed model
//! (`models/tiny/`, made by `models/tiny/make_tiny.py`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::worker::StopReason;
use super::*;
use crate::config::{ExecutionProvider, ModelManifest, OutputLayout};
use crate::domain::{BBox, CameraId, Frame, Letterbox};
use crate::queue::FrameQueue;

const TINY: &str = "models/tiny/model.toml";
const SIZE: usize = 64;
/// GStreamer pads RGB rows to 4 bytes; use a wider stride still to exercise it.
const STRIDE: usize = SIZE * 3 + 8;

/// ORT_DYLIB_PATH, else where scripts/bootstrap.sh installs ONNX Runtime.
fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/sitcenter/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

fn runtime() -> Runtime {
    Runtime::load(Some(&runtime_library())).expect("ONNX Runtime (run scripts/bootstrap.sh)")
}

fn tiny(max_batch: usize) -> Detector {
    let manifest = ModelManifest::load(Path::new(TINY)).expect("tiny manifest");
    Detector::load(&runtime(), manifest, max_batch, 1).expect("tiny model")
}

/// A dark 64x64 frame with solid `(rgb)` 8x8 squares at grid cells `(col, row)`.
fn frame(camera: &str, source: (u32, u32), squares: &[((usize, usize), [u8; 3])]) -> Frame {
    gstreamer::init().expect("gst init");
    let mut pixels = vec![0u8; STRIDE * SIZE];
    for &((col, row), rgb) in squares {
        for y in row * 8..row * 8 + 8 {
            for x in col * 8..col * 8 + 8 {
                pixels[y * STRIDE + x * 3..y * STRIDE + x * 3 + 3].copy_from_slice(&rgb);
            }
        }
    }
    Frame {
        camera: CameraId::new(camera),
        seq: 7,
        pts: None,
        captured_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        width: SIZE as u32,
        height: SIZE as u32,
        stride: STRIDE,
        letterbox: Letterbox::fit(source, (SIZE as u32, SIZE as u32)),
        decode_latency: None,
        received_at: std::time::Instant::now(),
        buffer: gstreamer::Buffer::from_mut_slice(pixels),
    }
}

const RED: [u8; 3] = [255, 0, 0];
const BLUE: [u8; 3] = [0, 0, 255];

fn assert_box_near(got: BBox, want: BBox) {
    let err = [
        got.x1 - want.x1,
        got.y1 - want.y1,
        got.x2 - want.x2,
        got.y2 - want.y2,
    ]
    .iter()
    .fold(0.0f32, |m, d| m.max(d.abs()));
    assert!(err <= 0.5, "box {got:?} is not within 0.5 px of {want:?}");
}

#[test]
fn a_red_square_is_found_at_its_cell_with_its_box_in_source_pixels() {
    let mut detector = tiny(1);
    // 128x64 source letterboxed into 64x64: scale 0.5, 16 rows of padding on top.
    let outcome = detector
        .run(vec![frame("cam-1", (128, 64), &[((3, 2), RED)])])
        .expect("inference");
    assert!(outcome.rejected.is_empty());
    let [d] = outcome.detections.as_slice() else {
        panic!("expected one detection, got {:?}", outcome.detections);
    };
    assert_eq!(d.camera.as_str(), "cam-1");
    assert_eq!(
        (d.seq, &*d.class, d.category.as_ref().map(|c| c.as_str())),
        (7, "red_square", Some("open_manhole"))
    );
    assert!((d.score - 1.0).abs() < 1e-6, "score {}", d.score);
    assert_eq!(d.threshold, 0.5);
    assert_eq!(
        (d.model.name.as_str(), d.model.version.as_str()),
        ("tiny", "2026.11.23-1")
    );
    // Cell (3, 2) is analysis pixels (24, 16)-(32, 24) → source (48, 0)-(64, 16).
    assert_box_near(
        d.bbox,
        BBox {
            x1: 48.0,
            y1: 0.0,
            x2: 64.0,
            y2: 16.0,
        },
    );
}

#[test]
fn a_dark_frame_yields_no_detection() {
    let mut detector = tiny(1);
    let outcome = detector
        .run(vec![frame("cam-1", (64, 64), &[])])
        .expect("inference");
    assert!(outcome.detections.is_empty(), "{:?}", outcome.detections);
    assert!(outcome.rejected.is_empty());
}

#[test]
fn each_frame_of_a_cross_camera_batch_gets_its_own_detections() {
    let mut detector = tiny(4);
    let frames = vec![
        frame("a", (64, 64), &[((0, 0), RED)]),
        frame("b", (64, 64), &[]),
        frame("c", (64, 64), &[((7, 7), BLUE), ((1, 5), RED)]),
    ];
    let outcome = detector.run(frames).expect("inference");
    let mut got: Vec<_> = outcome
        .detections
        .iter()
        .map(|d| {
            (
                d.camera.as_str().to_owned(),
                d.class.to_string(),
                d.bbox.x1,
                d.bbox.y1,
            )
        })
        .collect();
    got.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    assert_eq!(
        got,
        [
            ("a".to_owned(), "red_square".to_owned(), 0.0, 0.0),
            ("c".to_owned(), "blue_square".to_owned(), 56.0, 56.0),
            ("c".to_owned(), "red_square".to_owned(), 8.0, 40.0),
        ]
    );
}

#[test]
fn a_dim_square_under_the_class_threshold_is_not_reported() {
    let mut detector = tiny(1);
    // Blue at 140/255 = 0.55: under blue_square's 0.6 threshold.
    let outcome = detector
        .run(vec![frame("a", (64, 64), &[((2, 2), [0, 0, 140])])])
        .expect("inference");
    assert!(outcome.detections.is_empty(), "{:?}", outcome.detections);
}

#[test]
fn a_frame_of_the_wrong_size_is_rejected_and_the_rest_of_the_batch_analysed() {
    gstreamer::init().expect("gst init");
    let mut detector = tiny(2);
    let mut small = frame("small", (64, 64), &[]);
    small.width = 32;
    small.height = 32;
    let outcome = detector
        .run(vec![small, frame("ok", (64, 64), &[((1, 1), RED)])])
        .expect("inference");
    assert_eq!(outcome.rejected.len(), 1);
    assert!(
        outcome.rejected[0].1.contains("32x32"),
        "{}",
        outcome.rejected[0].1
    );
    assert_eq!(outcome.detections.len(), 1);
    assert_eq!(outcome.detections[0].camera.as_str(), "ok");
}

#[test]
fn a_wrong_shaped_model_fails_the_contract_naming_the_file() {
    let manifest =
        ModelManifest::load(Path::new("models/tiny/invalid/wrong-shape.toml")).expect("manifest");
    let err = Detector::load(&runtime(), manifest, 1, 1).expect_err("must fail");
    assert!(matches!(err, DetectError::Contract { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("models/tiny/invalid/wrong-shape.onnx:"),
        "{message}"
    );
    assert!(message.contains("[batch, 3, 64, 64]"), "{message}");
}

#[test]
fn a_manifest_with_more_classes_than_the_model_fails_the_contract() {
    let manifest =
        ModelManifest::load(Path::new("models/tiny/invalid/three-classes.toml")).expect("manifest");
    let err = Detector::load(&runtime(), manifest, 1, 1)
        .expect_err("must fail")
        .to_string();
    assert!(
        err.contains("[-1, 6, 64]") && err.contains("[batch, 7, anchors]"),
        "{err}"
    );
    assert!(err.contains("three-classes.toml"), "{err}");
}

#[test]
fn a_truncated_model_file_is_a_load_error_naming_the_file() {
    let manifest =
        ModelManifest::load(Path::new("models/tiny/invalid/truncated.toml")).expect("manifest");
    let err = Detector::load(&runtime(), manifest, 1, 1).expect_err("must fail");
    assert!(matches!(err, DetectError::ModelLoad { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("models/tiny/invalid/truncated.onnx: cannot load model"),
        "{err}"
    );
}

#[test]
fn the_worker_thread_sends_detections_from_queued_frames_and_stops_when_the_queue_closes() {
    gstreamer::init().expect("gst init");
    let queue = Arc::new(FrameQueue::new(16));
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut config = DetectorConfig::new(TINY);
    config.runtime_library = Some(runtime_library());
    config.max_batch = 4;
    let handle = DetectorHandle::spawn(&config, queue.clone(), tx).expect("worker starts");
    assert_eq!(handle.model().name, "tiny");
    for (i, cam) in ["a", "b", "c", "d", "e", "f"].iter().enumerate() {
        queue.push(frame(cam, (64, 64), &[((i, i), RED)]));
    }
    queue.close();
    let mut got = Vec::new();
    while let Some(d) = rx.blocking_recv() {
        got.push((d.camera.as_str().to_owned(), d.bbox.x1));
    }
    let (report, reason) = handle.join().expect("worker did not panic");
    got.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    let want: Vec<_> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), i as f32 * 8.0))
        .collect();
    assert_eq!(
        got, want,
        "one detection per frame, a channel smaller than the output"
    );
    assert_eq!(reason, StopReason::QueueClosed);
    assert_eq!(
        (report.frames, report.detections, report.frames_rejected),
        (6, 6, 0)
    );
    assert!(
        report.batches >= 2,
        "max_batch 4 needs at least two batches for 6 frames"
    );
}

#[test]
fn a_detector_with_a_missing_runtime_library_does_not_start() {
    let mut config = DetectorConfig::new(TINY);
    config.runtime_library = Some(PathBuf::from("/nonexistent/libonnxruntime.so"));
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err =
        DetectorHandle::spawn(&config, Arc::new(FrameQueue::new(1)), tx).expect_err("must fail");
    assert!(
        err.to_string()
            .contains("not found at `/nonexistent/libonnxruntime.so`"),
        "{err}"
    );
}

#[test]
fn a_second_different_runtime_library_in_one_process_is_refused() {
    let _loaded = runtime();
    // Any other existing file: ort would silently keep the first library, so we refuse.
    let err = Runtime::load(Some(Path::new("models/tiny/model.onnx"))).expect_err("must fail");
    assert!(
        matches!(err, DetectError::RuntimeConflict { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("models/tiny/model.onnx"), "{err}");
}

#[test]
fn the_worker_stops_when_the_detection_receiver_is_dropped() {
    gstreamer::init().expect("gst init");
    let queue = Arc::new(FrameQueue::new(4));
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    let mut config = DetectorConfig::new(TINY);
    config.runtime_library = Some(runtime_library());
    let handle = DetectorHandle::spawn(&config, queue.clone(), tx).expect("worker starts");
    queue.push(frame("a", (64, 64), &[((0, 0), RED)]));
    let (report, reason) = handle.join().expect("worker did not panic");
    assert_eq!(reason, StopReason::ReceiverGone);
    assert_eq!(report.detections, 0);
}

#[test]
fn an_end_to_end_model_with_rows_of_six_is_decoded_through_the_same_path() {
    let manifest =
        ModelManifest::load(Path::new("models/tiny/end-to-end/model.toml")).expect("manifest");
    assert_eq!(manifest.layout, OutputLayout::EndToEnd);
    let mut detector = Detector::load(&runtime(), manifest, 2, 1).expect("model");
    let outcome = detector
        .run(vec![
            frame("a", (64, 64), &[((5, 1), RED)]),
            frame("b", (64, 64), &[]),
        ])
        .expect("inference");
    let [d] = outcome.detections.as_slice() else {
        panic!("expected one detection, got {:?}", outcome.detections);
    };
    assert_eq!((d.camera.as_str(), &*d.class), ("a", "red_square"));
    assert_eq!(d.model.name, "tiny-end-to-end");
    assert_box_near(
        d.bbox,
        BBox {
            x1: 40.0,
            y1: 8.0,
            x2: 48.0,
            y2: 16.0,
        },
    );
}

#[test]
fn validate_checks_runtime_manifest_and_contract_without_starting_a_worker() {
    let mut config = DetectorConfig::new(TINY);
    config.runtime_library = Some(runtime_library());
    assert_eq!(config.validate().expect("valid").name, "tiny");
    config.manifest = PathBuf::from("models/tiny/invalid/wrong-shape.toml");
    let err = config.validate().expect_err("must fail");
    assert!(matches!(err, DetectError::Contract { .. }), "{err:?}");
    config.manifest = PathBuf::from("models/none/model.toml");
    let err = config.validate().expect_err("must fail").to_string();
    assert!(
        err.starts_with("models/none/model.toml: cannot read model manifest"),
        "{err}"
    );
}

#[test]
fn a_gpu_provider_missing_from_the_runtime_library_is_a_load_error_naming_it() {
    // The CPU-only library of the tests has neither CUDA nor TensorRT; a GPU build would load.
    for provider in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt] {
        let manifest = ModelManifest::load(Path::new(TINY)).expect("tiny manifest");
        match Detector::load_on(&runtime(), manifest, 1, 1, provider) {
            Err(DetectError::ModelLoad { file, message }) => {
                assert!(file.ends_with("model.onnx"), "{file:?}");
                assert!(message.contains(provider.as_str()), "{message}");
            }
            Err(other) => panic!("{provider:?}: unexpected {other}"),
            Ok(_) => eprintln!("{provider:?} is available in this ONNX Runtime library"),
        }
    }
    assert_eq!("tensorrt".parse(), Ok(ExecutionProvider::TensorRt));
    assert!("gpu".parse::<ExecutionProvider>().is_err());
}
