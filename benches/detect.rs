//! Detection stages: preprocessing, YOLOv8 decode + NMS on 8400 anchors (sorted greedy NMS
//! against the O(n²) repeated-max baseline, same run), and inference with the tiny committed
//! model at batch sizes 1, 4 and 8 (preprocess + ort run + decode).
//!
//! `scripts/env.sh` sets ORT_DYLIB_PATH; without it the bootstrap location is used.
//! `cargo bench --bench detect`; figures in docs/performance.md.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use sitcenter::detect::{
    Candidate, Decoder, Detector, ModelManifest, OutputLayout, Preprocessor, Runtime, nms,
    nms_repeated_max,
};
use sitcenter::domain::{BBox, CameraId, Frame, Letterbox};

const ANCHORS: usize = 8400;
const CLASSES: usize = 80;

fn runtime_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".local/share/sitcenter/onnxruntime-1.31.1/libonnxruntime.so.1.31.1"),
    }
}

fn preprocess(c: &mut Criterion) {
    let mut g = c.benchmark_group("preprocess_rgb_to_nchw");
    g.throughput(Throughput::Elements(1));
    for size in [64u32, 640] {
        let stride = (size as usize * 3).next_multiple_of(4) + 4;
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let rgb: Vec<u8> = (0..stride * size as usize).map(|_| rng.random()).collect();
        let mut pre = Preprocessor::new(size, size, 1);
        g.bench_function(format!("{size}x{size}"), |b| {
            b.iter(|| pre.fill(0, size, size, stride, black_box(&rgb)))
        });
        // Lower bound: copying the same bytes, no conversion.
        let mut copy = vec![0u8; rgb.len()];
        g.bench_function(format!("{size}x{size}_memcpy_baseline"), |b| {
            b.iter(|| copy.copy_from_slice(black_box(&rgb)))
        });
    }
    g.finish();
}

/// A YOLOv8 `[84, 8400]` output: low background scores, `objects` clusters of overlapping
/// high-scoring anchors (as a real head gives around each object).
fn yolo_output(objects: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut out = vec![0.0f32; (4 + CLASSES) * ANCHORS];
    for a in 0..ANCHORS {
        out[a] = rng.random_range(0.0..640.0);
        out[ANCHORS + a] = rng.random_range(0.0..640.0);
        out[2 * ANCHORS + a] = rng.random_range(8.0..120.0);
        out[3 * ANCHORS + a] = rng.random_range(8.0..120.0);
        for c in 0..CLASSES {
            out[(4 + c) * ANCHORS + a] = rng.random_range(0.0..0.05);
        }
    }
    for o in 0..objects {
        let (cx, cy, class) = (
            rng.random_range(50.0..590.0),
            rng.random_range(50.0..590.0),
            rng.random_range(0..CLASSES),
        );
        for k in 0..20 {
            let a = (o * 20 + k) * (ANCHORS / (objects * 20));
            out[a] = cx + rng.random_range(-4.0..4.0);
            out[ANCHORS + a] = cy + rng.random_range(-4.0..4.0);
            out[2 * ANCHORS + a] = 60.0;
            out[3 * ANCHORS + a] = 60.0;
            out[(4 + class) * ANCHORS + a] = rng.random_range(0.3..0.95);
        }
    }
    out
}

/// `n` candidates, all above threshold: the worst case NMS can be handed (every anchor).
fn candidates(n: usize) -> Vec<Candidate> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    (0..n)
        .map(|_| {
            let (x, y, s) = (
                rng.random_range(0.0..600.0f32),
                rng.random_range(0.0..600.0f32),
                rng.random_range(8.0..80.0f32),
            );
            Candidate {
                class: rng.random_range(0..CLASSES),
                score: rng.random_range(0.25..1.0),
                bbox: BBox {
                    x1: x,
                    y1: y,
                    x2: x + s,
                    y2: y + s,
                },
            }
        })
        .collect()
}

fn postprocess(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_yolov8_84x8400");
    g.throughput(Throughput::Elements(1));
    let output = yolo_output(20);
    let mut decoder = Decoder::new(OutputLayout::Yolo, vec![0.25; CLASSES], 0.45, 300);
    g.bench_function("20_objects_thresholds_0.25", |b| {
        b.iter(|| decoder.decode(black_box(&output)).map(|kept| kept.len()))
    });
    g.finish();

    let mut g = c.benchmark_group("nms_8400_candidates");
    g.throughput(Throughput::Elements(ANCHORS as u64));
    let all = candidates(ANCHORS);
    g.bench_function("sorted_greedy", |b| {
        b.iter_batched(
            || all.clone(),
            |mut cands| {
                nms(&mut cands, 0.45, 300);
                cands.len()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("repeated_max_baseline", |b| {
        b.iter(|| nms_repeated_max(black_box(&all), 0.45, 300).len())
    });
    g.finish();
}

fn inference(c: &mut Criterion) {
    let runtime = match Runtime::load(Some(&runtime_library())) {
        Ok(runtime) => runtime,
        Err(e) => panic!("ONNX Runtime is needed for the inference benchmark: {e}"),
    };
    let manifest_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/tiny/model.toml");
    let manifest = match ModelManifest::load(&manifest_path) {
        Ok(manifest) => manifest,
        Err(e) => panic!("{e}"),
    };
    let mut detector = match Detector::load(&runtime, manifest, 8, 1) {
        Ok(detector) => detector,
        Err(e) => panic!("{e}"),
    };
    if let Err(e) = gstreamer::init() {
        panic!("gstreamer: {e}");
    }
    let stride = 64 * 3;
    let frames: Vec<Frame> = (0..8)
        .map(|i| {
            let mut pixels = vec![0u8; stride * 64];
            // A red 8x8 square at cell (i, i): one detection per frame.
            for y in i * 8..i * 8 + 8 {
                for x in i * 8..i * 8 + 8 {
                    pixels[y * stride + x * 3] = 255;
                }
            }
            Frame {
                camera: CameraId::new(&format!("cam-{i}")),
                seq: 0,
                pts: None,
                captured_at: SystemTime::now(),
                width: 64,
                height: 64,
                stride,
                letterbox: Letterbox::fit((1280, 720), (64, 64)),
                decode_latency: None,
                received_at: std::time::Instant::now(),
                buffer: gstreamer::Buffer::from_mut_slice(pixels),
            }
        })
        .collect();
    let mut g = c.benchmark_group("tiny_model_batch");
    for batch in [1usize, 4, 8] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                || frames[..batch].to_vec(),
                |frames| match detector.run(frames) {
                    Ok(outcome) => outcome.detections.len(),
                    Err(e) => panic!("{e}"),
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, preprocess, postprocess, inference);
criterion_main!(benches);
