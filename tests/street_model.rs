//! The committed street detector (`models/street`) through ONNX Runtime on its held-out
//! fixtures (rendered from seeds it was never trained on): real inference, real outputs.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sitcenter::config::ModelManifest;
use sitcenter::detect::{Detector, Runtime};
use sitcenter::domain::{BBox, CameraId, Detection, Frame, Letterbox};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/sitcenter/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

fn detector(model: &str) -> Detector {
    let runtime = Runtime::load(Some(&runtime_library())).expect("ONNX Runtime (bootstrap)");
    let manifest =
        ModelManifest::load(&root().join(format!("models/{model}/model.toml"))).expect("manifest");
    Detector::load(&runtime, manifest, 4, 1).expect("model")
}

/// A 640×360 fixture letterboxed to the model input as the pipeline's `videoscale
/// add-borders` does (bilinear, centred on black).
fn frame(fixture: &str, m: &ModelManifest) -> Frame {
    let source = image::open(root().join("models/street/fixtures").join(fixture))
        .expect("fixture")
        .to_rgb8();
    let (w, h) = (m.input_width, m.input_height);
    let lb = Letterbox::fit(source.dimensions(), (w, h));
    let scaled = image::imageops::resize(
        &source,
        (source.width() as f32 * lb.scale).round() as u32,
        (source.height() as f32 * lb.scale).round() as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut canvas = image::RgbImage::new(w, h);
    image::imageops::replace(&mut canvas, &scaled, lb.pad_x.into(), lb.pad_y.into());
    gstreamer::init().expect("gstreamer");
    Frame {
        camera: CameraId::new("fixture"),
        seq: 0,
        pts: None,
        captured_at: SystemTime::now(),
        width: w,
        height: h,
        stride: w as usize * 3,
        letterbox: lb,
        decode_latency: None,
        received_at: std::time::Instant::now(),
        buffer: gstreamer::Buffer::from_mut_slice(canvas.into_raw()),
    }
}

/// The labelled boxes of a fixture, in source pixels.
fn truth(fixture: &str) -> Vec<(String, BBox)> {
    let path = root()
        .join("models/street/fixtures")
        .join(fixture.replace(".png", ".json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture labels"))
            .expect("json");
    json["boxes"]
        .as_array()
        .expect("boxes")
        .iter()
        .map(|b| {
            let v: Vec<f32> = b["box"]
                .as_array()
                .expect("box")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect();
            (
                b["class"].as_str().expect("class").to_owned(),
                BBox {
                    x1: v[0],
                    y1: v[1],
                    x2: v[2],
                    y2: v[3],
                },
            )
        })
        .collect()
}

fn detect(model: &str, fixture: &str) -> Vec<Detection> {
    let mut d = detector(model);
    let f = frame(fixture, d.manifest());
    let outcome = d.run(vec![f]).expect("inference");
    assert!(outcome.rejected.is_empty(), "{:?}", outcome.rejected);
    outcome.detections
}

#[test]
fn an_open_manhole_is_found_with_its_box_within_tolerance() {
    let truth = truth("open_manhole.png");
    let (_, expected) = truth
        .iter()
        .find(|(c, _)| c == "manhole_open")
        .expect("the fixture has an open manhole");
    let found = detect("street", "open_manhole.png");
    let open: Vec<&Detection> = found
        .iter()
        .filter(|d| &*d.class == "manhole_open")
        .collect();
    assert_eq!(open.len(), 1, "exactly one open manhole: {found:#?}");
    let d = open[0];
    assert!(
        d.bbox.iou(expected) >= 0.5,
        "box {:?} vs truth {expected:?}: IoU {:.2}",
        d.bbox,
        d.bbox.iou(expected)
    );
    let centre = |b: &BBox| ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0);
    let (dc, tc) = (centre(&d.bbox), centre(expected));
    assert!(
        (dc.0 - tc.0).abs() <= 8.0 && (dc.1 - tc.1).abs() <= 8.0,
        "centre {dc:?} vs {tc:?} (8 px tolerance in the 640×360 frame)"
    );
    assert!(d.score >= d.threshold);
    assert_eq!(d.model.name, "street");
    assert_eq!(
        d.category.as_ref().map(|c| c.as_str()),
        Some("open_manhole")
    );
}

#[test]
fn a_closed_cover_is_not_reported_as_open() {
    let truth = truth("closed_manhole.png");
    assert!(truth.iter().any(|(c, _)| c == "manhole_closed"));
    assert!(!truth.iter().any(|(c, _)| c == "manhole_open"));
    let found = detect("street", "closed_manhole.png");
    assert!(
        !found.iter().any(|d| &*d.class == "manhole_open"),
        "a closed cover reported open: {found:#?}"
    );
}
