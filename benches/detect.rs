//! Detection stages: preprocessing, YOLOv8 decode + NMS on 8400 anchors (sorted greedy NMS
//! against the O(n²) repeated-max baseline, same run), and inference (preprocess + ort run
//! on one thread + decode) per batch size with the tiny test model and with the trained
//! model (`models/street`, or `SITCENTER_BENCH_MODEL`) on its PNG fixtures.
//!
//! `scripts/env.sh` sets ORT_DYLIB_PATH; without it the bootstrap location is used.
//! `cargo bench --bench detect`; `bash scripts/bench_detect.sh` runs it beside the Python
//! onnxruntime + OpenCV loop on the same model and frames. Figures in docs/performance.md.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use sitcenter::config::{ModelManifest, OutputLayout};
use sitcenter::detect::{
    Candidate, Decoder, Detector, Preprocessor, Runtime, nms, nms_repeated_max,
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
    if let Err(e) = gstreamer::init() {
        panic!("gstreamer: {e}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    model_batches(
        c,
        &runtime,
        &root.join("models/tiny/model.toml"),
        &[1, 4, 8],
        |_, i| red_square_frame(i),
    );
    // The trained model (or SITCENTER_BENCH_MODEL) on its PNG fixtures, letterboxed to
    // its input size as the pipeline would: scripts/bench_detect.py runs the Python loop
    // on the same files.
    let trained = std::env::var_os("SITCENTER_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/street/model.toml"));
    if trained.is_file() {
        let fixtures = fixtures_of(&trained);
        model_batches(c, &runtime, &trained, &[1, 2, 4, 8, 16], |m, i| {
            letterboxed(&fixtures[i % fixtures.len()], m)
        });
    }
}

/// `<model>_model_batch/batch_<n>`: preprocess + one ort run (one thread) + decode.
fn model_batches(
    c: &mut Criterion,
    runtime: &Runtime,
    manifest: &Path,
    batches: &[usize],
    frame: impl Fn(&ModelManifest, usize) -> Frame,
) {
    let manifest = match ModelManifest::load(manifest) {
        Ok(manifest) => manifest,
        Err(e) => panic!("{e}"),
    };
    let max = batches.iter().copied().max().unwrap_or(1);
    let frames: Vec<Frame> = (0..max).map(|i| frame(&manifest, i)).collect();
    let name = manifest.name.clone();
    let mut detector = match Detector::load(runtime, manifest, max, 1) {
        Ok(detector) => detector,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group(format!("{name}_model_batch"));
    for &batch in batches {
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

/// A 64×64 frame with a red 8×8 square at cell (i, i): one tiny-model detection.
fn red_square_frame(i: usize) -> Frame {
    let i = i % 8;
    let stride = 64 * 3;
    let mut pixels = vec![0u8; stride * 64];
    for y in i * 8..i * 8 + 8 {
        for x in i * 8..i * 8 + 8 {
            pixels[y * stride + x * 3] = 255;
        }
    }
    frame(
        pixels,
        64,
        64,
        stride,
        Letterbox::fit((1280, 720), (64, 64)),
    )
}

fn fixtures_of(manifest: &Path) -> Vec<image::RgbImage> {
    let dir = manifest.parent().unwrap_or(Path::new(".")).join("fixtures");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| p.extension().is_some_and(|e| e == "png"));
    paths.sort();
    let images: Vec<image::RgbImage> = paths
        .iter()
        .filter_map(|p| image::open(p).ok().map(|i| i.to_rgb8()))
        .collect();
    assert!(!images.is_empty(), "no PNG fixtures in {}", dir.display());
    images
}

/// `source` scaled into the model's input keeping its aspect, centred on black borders
/// (what the pipeline's `videoscale add-borders` delivers).
fn letterboxed(source: &image::RgbImage, m: &ModelManifest) -> Frame {
    let (w, h) = (m.input_width, m.input_height);
    let lb = Letterbox::fit(source.dimensions(), (w, h));
    let scaled = image::imageops::resize(
        source,
        (source.width() as f32 * lb.scale).round() as u32,
        (source.height() as f32 * lb.scale).round() as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut canvas = image::RgbImage::new(w, h);
    image::imageops::replace(&mut canvas, &scaled, lb.pad_x.into(), lb.pad_y.into());
    frame(canvas.into_raw(), w, h, w as usize * 3, lb)
}

fn frame(pixels: Vec<u8>, width: u32, height: u32, stride: usize, letterbox: Letterbox) -> Frame {
    Frame {
        camera: CameraId::new("bench"),
        seq: 0,
        pts: None,
        captured_at: SystemTime::now(),
        width,
        height,
        stride,
        letterbox,
        decode_latency: None,
        received_at: std::time::Instant::now(),
        buffer: gstreamer::Buffer::from_mut_slice(pixels),
    }
}

/// Where the letterbox belongs: GStreamer (`videoconvert ! videoscale add-borders`, from the
/// decoder's I420, colour conversion included) against the `image` crate resizing RGB that is
/// already converted (so favoured), 640×360 → the trained model's input (or 640×640).
fn letterbox(c: &mut Criterion) {
    use gstreamer::prelude::*;
    if let Err(e) = gstreamer::init() {
        panic!("gstreamer: {e}");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let size = ModelManifest::load(&root.join("models/street/model.toml"))
        .map(|m| (m.input_width, m.input_height))
        .unwrap_or((640, 640));
    let (sw, sh) = (640u32, 360u32);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let i420: Vec<u8> = (0..sw * sh * 3 / 2).map(|_| rng.random()).collect();
    let rgb =
        image::RgbImage::from_fn(sw, sh, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
    let mut g = c.benchmark_group(format!("letterbox_640x360_to_{}x{}", size.0, size.1));
    g.throughput(Throughput::Elements(1));

    let description = format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width={sw},height={sh},framerate=0/1 \
         ! videoconvert ! videoscale add-borders=true \
         ! video/x-raw,format=RGB,width={},height={},pixel-aspect-ratio=1/1 \
         ! appsink name=sink sync=false max-buffers=1",
        size.0, size.1
    );
    let pipeline = match gstreamer::parse::launch(&description) {
        Ok(p) => p
            .downcast::<gstreamer::Pipeline>()
            .unwrap_or_else(|_| panic!("not a pipeline")),
        Err(e) => panic!("{e}"),
    };
    let by_name = |name: &str| pipeline.by_name(name).unwrap_or_else(|| panic!("{name}"));
    let src = by_name("src")
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap_or_else(|_| panic!("appsrc"));
    let sink = by_name("sink")
        .downcast::<gstreamer_app::AppSink>()
        .unwrap_or_else(|_| panic!("appsink"));
    if let Err(e) = pipeline.set_state(gstreamer::State::Playing) {
        panic!("{e}");
    }
    let mut pts = 0u64;
    g.bench_function("gstreamer_i420_convert_and_scale", |b| {
        b.iter(|| {
            let mut buffer = gstreamer::Buffer::from_slice(i420.clone());
            if let Some(buffer) = buffer.get_mut() {
                buffer.set_pts(gstreamer::ClockTime::from_mseconds(pts));
            }
            pts += 40;
            if let Err(e) = src.push_buffer(buffer) {
                panic!("{e}");
            }
            match sink.pull_sample() {
                Ok(sample) => sample.buffer().map_or(0, |b| b.size()),
                Err(e) => panic!("{e}"),
            }
        })
    });
    if let Err(e) = pipeline.set_state(gstreamer::State::Null) {
        panic!("{e}");
    }
    g.bench_function("image_crate_rgb_scale_only", |b| {
        b.iter(|| {
            let lb = Letterbox::fit((sw, sh), size);
            let scaled = image::imageops::resize(
                black_box(&rgb),
                (sw as f32 * lb.scale).round() as u32,
                (sh as f32 * lb.scale).round() as u32,
                image::imageops::FilterType::Triangle,
            );
            let mut canvas = image::RgbImage::new(size.0, size.1);
            image::imageops::replace(&mut canvas, &scaled, lb.pad_x.into(), lb.pad_y.into());
            canvas.len()
        })
    });
    g.finish();
}

criterion_group!(benches, preprocess, letterbox, postprocess, inference);
criterion_main!(benches);
