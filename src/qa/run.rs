//! One file through the camera pipeline (unpaced, blocking queue: no frame lost) and,
//! when a model is given, through the detector on this thread, scored against labels.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::labels::Labels;
use super::score::{Scored, Tally};
use crate::config::{BuiltinPipeline, CameraConfig, IngestSettings, Sampling, Transport};
use crate::detect::Detector;
use crate::domain::{CameraId, Frame, Position};
use crate::ingest::run_file;
use crate::obs::Metrics;
use crate::queue::{FrameQueue, WhenFull};

/// Latency percentiles in milliseconds.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let at = |q: f64| {
            (!values.is_empty()).then(|| values[((values.len() - 1) as f64 * q).round() as usize])
        };
        Self {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// One file replayed once (with one model, or none).
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    /// `name version` of the model, when one ran.
    pub model: Option<String>,
    pub labels: Option<PathBuf>,
    /// Frames analysed.
    pub frames: u64,
    /// Of those, frames that had ground truth and were scored.
    pub frames_scored: u64,
    pub units: u64,
    pub detections: u64,
    pub wall_s: f64,
    pub frames_per_s: f64,
    /// Footage seconds replayed per wall-clock second.
    pub speed_x_realtime: Option<f64>,
    /// From the unit entering the decoder to the frame leaving the pipeline.
    pub decode_latency_ms: Percentiles,
    /// From the frame leaving the pipeline to its detections (queue wait + batch inference).
    pub detect_latency_ms: Percentiles,
    pub error: Option<String>,
    #[serde(skip)]
    pub tally: Option<Tally>,
}

impl FileReport {
    fn failed(file: &Path, model: Option<String>, error: String) -> Self {
        Self {
            file: file.to_path_buf(),
            model,
            labels: None,
            frames: 0,
            frames_scored: 0,
            units: 0,
            detections: 0,
            wall_s: 0.0,
            frames_per_s: 0.0,
            speed_x_realtime: None,
            decode_latency_ms: Percentiles::default(),
            detect_latency_ms: Percentiles::default(),
            error: Some(error),
            tally: None,
        }
    }
}

/// The camera a file is replayed as: `file-h264` for MP4/QuickTime, `file-any` otherwise.
fn file_camera(path: &Path, sampling: Sampling) -> Result<CameraConfig, String> {
    let absolute = std::fs::canonicalize(path).map_err(|e| format!("cannot read: {e}"))?;
    let url = url::Url::from_file_path(&absolute).map_err(|()| "not an absolute path")?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let pipeline = if matches!(ext.as_str(), "mp4" | "mov") {
        BuiltinPipeline::FileH264
    } else {
        BuiltinPipeline::FileAny
    };
    Ok(CameraConfig {
        id: CameraId::new(&format!("replay:{}", path.display())),
        name: path.display().to_string(),
        url,
        credentials: None,
        location: Position { lat: 0.0, lon: 0.0 },
        address: String::new(),
        district: None,
        heading_deg: None,
        detectors: Vec::new(),
        sampling,
        transport: Transport::Tcp,
        pipeline: pipeline.into(),
        zones: Vec::new(),
        masks: Vec::new(),
        calibration: Vec::new(),
        defined_at: path.display().to_string(),
    })
}

/// What to do with the frames of one file.
pub struct Analysis<'a> {
    pub detector: Option<&'a mut Detector>,
    pub labels: Option<&'a Labels>,
    /// Classes to score (the model's that the labels also know).
    pub classes: Vec<String>,
}

/// Replays one file; frames are analysed on this thread while the pipeline runs.
pub fn replay_file(
    path: &Path,
    sampling: Sampling,
    settings: &IngestSettings,
    analysis: Analysis<'_>,
) -> FileReport {
    let Analysis {
        mut detector,
        labels,
        classes,
    } = analysis;
    let model = detector.as_ref().map(|d| {
        let m = d.manifest();
        format!("{} {}", m.name, m.version)
    });
    let camera = match file_camera(path, sampling) {
        Ok(camera) => camera,
        Err(error) => return FileReport::failed(path, model, error),
    };
    let batch_size = detector.as_ref().map_or(32, |d| d.max_batch());
    let queue = Arc::new(FrameQueue::with_policy(64, WhenFull::Block));
    let started = Instant::now();
    let producer = {
        let queue = queue.clone();
        let settings = settings.clone();
        let camera = camera.clone();
        std::thread::spawn(move || {
            let result = run_file(&camera, &settings, queue.clone(), Arc::new(Metrics::new()));
            queue.close();
            result
        })
    };
    let mut tally = labels.map(|_| Tally::new(classes));
    let mut decode_latencies = Vec::new();
    let mut detect_latencies = Vec::new();
    let mut last_pts = Duration::ZERO;
    let (mut consumed, mut detections, mut analysis_error) = (0u64, 0u64, None);
    while let Some(batch) = queue.pop_batch(batch_size, Duration::from_millis(200)) {
        for frame in &batch {
            consumed += 1;
            if let Some(l) = frame.decode_latency {
                decode_latencies.push(l.as_secs_f64() * 1000.0);
            }
            if let Some(pts) = frame.pts {
                last_pts = last_pts.max(pts);
            }
        }
        let Some(detector) = detector.as_deref_mut() else {
            continue;
        };
        if analysis_error.is_some() {
            continue;
        }
        let frames: Vec<Frame> = batch;
        let keys: Vec<(u64, Option<Duration>, SystemTime)> = frames
            .iter()
            .map(|f| (f.seq, f.pts, f.captured_at))
            .collect();
        match detector.run(frames) {
            Ok(outcome) => {
                if let Some((frame, reason)) = outcome.rejected.first() {
                    analysis_error = Some(format!("frame {} not analysed: {reason}", frame.seq));
                }
                let done = SystemTime::now();
                let mut by_seq: HashMap<u64, Vec<Scored>> = HashMap::new();
                for d in outcome.detections {
                    if d.score >= d.threshold {
                        detections += 1;
                    }
                    by_seq.entry(d.seq).or_default().push(Scored {
                        class: d.class.to_string(),
                        score: d.score,
                        bbox: d.bbox,
                    });
                }
                for (seq, pts, captured) in keys {
                    if let Ok(waited) = done.duration_since(captured) {
                        detect_latencies.push(waited.as_secs_f64() * 1000.0);
                    }
                    if let (Some(tally), Some(labels), Some(pts)) = (tally.as_mut(), labels, pts)
                        && let Some(truth) = labels.at(pts)
                    {
                        tally.add_frame(truth, by_seq.get(&seq).map_or(&[], Vec::as_slice));
                    }
                }
            }
            Err(error) => analysis_error = Some(error.to_string()),
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let run = producer.join().unwrap_or_else(|_| {
        Err(crate::ingest::IngestError::Replay {
            file: path.display().to_string(),
            element: String::new(),
            message: "the replay thread panicked".to_owned(),
        })
    });
    let (units, error) = match run {
        Ok(run) => (run.units, analysis_error),
        Err(error) => (0, Some(error.to_string())),
    };
    FileReport {
        file: path.to_path_buf(),
        model,
        labels: labels.map(|l| l.file.clone()),
        frames: consumed,
        frames_scored: tally.as_ref().map_or(0, |t| t.frames),
        units,
        detections,
        wall_s: wall,
        frames_per_s: if wall > 0.0 {
            consumed as f64 / wall
        } else {
            0.0
        },
        speed_x_realtime: (wall > 0.0 && last_pts > Duration::ZERO)
            .then(|| last_pts.as_secs_f64() / wall),
        decode_latency_ms: Percentiles::of(decode_latencies),
        detect_latency_ms: Percentiles::of(detect_latencies),
        error,
        tally,
    }
}
