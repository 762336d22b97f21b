//! QA replay: recorded footage through the same ingest pipeline (templates,
//! sampling gate, scaling, appsink, FrameQueue), as fast as it decodes, never
//! paced and never dropping (the queue blocks instead). Reports per file the
//! frames analysed, frames per second, speed against real time and latency
//! percentiles; a file that cannot be decoded is reported by name and the
//! other files still run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{CameraConfig, IngestSettings, Sampling, SamplingMode, Transport};
use crate::domain::{CameraId, Position};
use crate::ingest::{FrameQueue, WhenFull, run_file};
use crate::obs::Metrics;

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A video file, or a folder of them (.mp4, .mov, .mkv, .avi).
    pub input: PathBuf,
    /// `all` decodes every frame; `keyframes` only keyframes (as live cameras do).
    #[arg(long, default_value = "all", value_parser = ["all", "keyframes"])]
    pub mode: String,
    /// Analyse at most one frame per this many seconds of footage (0 = every frame).
    #[arg(long, default_value_t = 0.0)]
    pub interval_s: f64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub file: PathBuf,
    pub frames: u64,
    pub units: u64,
    pub wall_s: f64,
    pub frames_per_s: f64,
    /// Footage seconds replayed per wall-clock second.
    pub speed_x_realtime: Option<f64>,
    pub decode_latency_ms: Percentiles,
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

impl Percentiles {
    fn of(mut values: Vec<f64>) -> Self {
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

#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub files: Vec<FileReport>,
}

impl ReplayReport {
    /// Every file replayed without error.
    pub fn passed(&self) -> bool {
        self.files.iter().all(|f| f.error.is_none())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: no video files (.mp4, .mov, .mkv, .avi) to replay")]
    NoFiles(PathBuf),
    #[error("--interval-s must be ≥ 0, got {0}")]
    Interval(f64),
    #[error("cannot write the report {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "mkv", "avi"];

fn inputs(input: &Path) -> Result<Vec<PathBuf>, QaError> {
    let read = |path: &Path| QaError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    let meta = std::fs::metadata(input).map_err(|source| QaError::Read {
        path: input.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(|_| read(input))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(QaError::NoFiles(input.to_path_buf()));
    }
    Ok(files)
}

/// The camera a file is replayed as: `file-h264` for MP4/QuickTime, `file-any` otherwise.
fn file_camera(path: &Path, sampling: Sampling) -> Result<CameraConfig, QaError> {
    let absolute = std::fs::canonicalize(path).map_err(|source| QaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let url = url::Url::from_file_path(&absolute).map_err(|()| QaError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::other("not an absolute path"),
    })?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let pipeline = if matches!(ext.as_str(), "mp4" | "mov") {
        "file-h264"
    } else {
        "file-any"
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
        pipeline: pipeline.to_owned(),
        zones: Vec::new(),
        masks: Vec::new(),
        calibration: Vec::new(),
        defined_at: path.display().to_string(),
    })
}

/// Replays one file; frames are consumed on this thread while the pipeline runs.
pub fn replay_file(path: &Path, sampling: Sampling, settings: &IngestSettings) -> FileReport {
    let camera = match file_camera(path, sampling) {
        Ok(camera) => camera,
        Err(error) => {
            return FileReport {
                file: path.to_path_buf(),
                frames: 0,
                units: 0,
                wall_s: 0.0,
                frames_per_s: 0.0,
                speed_x_realtime: None,
                decode_latency_ms: Percentiles::default(),
                error: Some(error.to_string()),
            };
        }
    };
    let queue = Arc::new(FrameQueue::with_policy(64, WhenFull::Block));
    let metrics = Arc::new(Metrics::new());
    let started = Instant::now();
    let producer = {
        let queue = queue.clone();
        let settings = settings.clone();
        let camera = camera.clone();
        std::thread::spawn(move || {
            let result = run_file(&camera, &settings, queue.clone(), metrics);
            queue.close();
            result
        })
    };
    let mut latencies = Vec::new();
    let mut last_pts = Duration::ZERO;
    let mut consumed = 0u64;
    while let Some(batch) = queue.pop_batch(32, Duration::from_millis(200)) {
        for frame in batch {
            consumed += 1;
            if let Some(l) = frame.decode_latency {
                latencies.push(l.as_secs_f64() * 1000.0);
            }
            if let Some(pts) = frame.pts {
                last_pts = last_pts.max(pts);
            }
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
        Ok(run) => (run.units, None),
        Err(error) => (0, Some(error.to_string())),
    };
    FileReport {
        file: path.to_path_buf(),
        frames: consumed,
        units,
        wall_s: wall,
        frames_per_s: if wall > 0.0 {
            consumed as f64 / wall
        } else {
            0.0
        },
        speed_x_realtime: (wall > 0.0 && last_pts > Duration::ZERO)
            .then(|| last_pts.as_secs_f64() / wall),
        decode_latency_ms: Percentiles::of(latencies),
        error,
    }
}

/// `sitcenter replay`.
pub fn replay(args: &ReplayArgs) -> Result<ReplayReport, QaError> {
    if !(args.interval_s.is_finite() && args.interval_s >= 0.0) {
        return Err(QaError::Interval(args.interval_s));
    }
    let sampling = Sampling {
        mode: if args.mode == "keyframes" {
            SamplingMode::Keyframes
        } else {
            SamplingMode::All
        },
        interval: Duration::from_secs_f64(args.interval_s),
    };
    let settings = IngestSettings::default();
    let files = inputs(&args.input)?;
    let report = ReplayReport {
        files: files
            .iter()
            .map(|f| replay_file(f, sampling, &settings))
            .collect(),
    };
    println!(
        "{:<40} {:>7} {:>9} {:>8} {:>9} {:>8} {:>8}",
        "file", "frames", "frames/s", "× real", "p50 ms", "p95 ms", "p99 ms"
    );
    let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
    for f in &report.files {
        match &f.error {
            None => println!(
                "{:<40} {:>7} {:>9.1} {:>8} {:>9} {:>8} {:>8}",
                f.file.display().to_string(),
                f.frames,
                f.frames_per_s,
                f.speed_x_realtime
                    .map_or("—".to_owned(), |s| format!("{s:.1}")),
                ms(f.decode_latency_ms.p50),
                ms(f.decode_latency_ms.p95),
                ms(f.decode_latency_ms.p99),
            ),
            Some(error) => println!("{:<40} ERROR: {error}", f.file.display().to_string()),
        }
    }
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, json).map_err(|source| QaError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report)
}
