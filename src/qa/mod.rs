//! QA replay: recorded footage through the same ingest pipeline (templates, sampling
//! gate, scaling, appsink, FrameQueue) and, with `--model`, the same detector code as
//! live cameras, as fast as it decodes: never paced and never dropping (the queue blocks
//! instead). Reports per file the frames analysed, frames per second, speed against real
//! time and latency percentiles; with labels (docs/labels.md) per-class precision,
//! recall, F1 and AP@0.5 plus mAP@0.5; with `--baseline` both models side by side and a
//! regression verdict. A file that cannot be decoded is reported by name and the other
//! files still run.
//!
//! Files: `labels.rs` (ground truth), `run.rs` (one file through pipeline + detector),
//! `score.rs` (matching, P/R/F1/AP), `verdict.rs` (minimums, regressions), `report.rs`
//! (tables and JSON).

mod labels;
mod report;
mod run;
mod score;
mod verdict;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use labels::{Labels, LabelsError, Truth};
pub use report::{ModelReport, ReplayReport, Verdict};
pub use run::{FileReport, Percentiles};
pub use score::{ClassScore, IOU_MATCH, Scored, Summary, Tally, average_precision};
pub use verdict::{Minimum, Shortfall};

use crate::config::ModelManifest;
use crate::config::{IngestSettings, Sampling, SamplingMode};
use crate::detect::{DetectError, Detector, Runtime};

/// What `sitcenter replay` runs (its command line is parsed in `src/cli/`).
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// A video file, or a folder of them (.mp4, .mov, .mkv, .avi).
    pub input: PathBuf,
    /// `All` decodes every frame; `Keyframes` only keyframes (as live cameras do).
    pub mode: SamplingMode,
    /// Analyse at most one frame per this many seconds of footage (0 = every frame).
    pub interval_s: f64,
    /// The model to run: its manifest (`models/<name>/model.toml`).
    pub model: Option<PathBuf>,
    /// A second model to compare against (`--model` is the candidate); needs labels.
    pub baseline: Option<PathBuf>,
    /// Ground truth (docs/labels.md): a labels file for a single video, or a folder with
    /// `<video stem>.labels.json` files. Default: labels files beside the videos.
    pub labels: Option<PathBuf>,
    /// Fail (exit 3) when a class's recall is below this: `0.8` for every class or
    /// `CLASS=0.8` for one (repeatable; a class entry wins over the general one).
    pub min_recall: Vec<Minimum>,
    /// Fail (exit 3) when a class's precision is below this; same form as --min-recall.
    pub min_precision: Vec<Minimum>,
    /// How much worse than the baseline a figure may be before it counts as a regression.
    pub tolerance: f64,
    /// Frames per inference call.
    pub batch: usize,
    /// ONNX Runtime threads (0 = one per core).
    pub threads: usize,
    /// Write the report as JSON here.
    pub report: Option<PathBuf>,
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
    #[error("--batch must be 1..=64, got {0}")]
    Batch(usize),
    #[error("--tolerance must be in 0..=1, got {0}")]
    Tolerance(f64),
    #[error("--labels {0}: a single labels file needs a single video")]
    LabelsForFolder(PathBuf),
    #[error("--baseline needs labels: no labels file was found for any video")]
    BaselineWithoutLabels,
    #[error(transparent)]
    Labels(#[from] LabelsError),
    #[error(transparent)]
    Model(#[from] DetectError),
    #[error("cannot write the report {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

const VIDEO_EXTENSIONS: &[&str] = &["mp4", "mov", "mkv", "avi"];

fn inputs(input: &Path) -> Result<Vec<PathBuf>, QaError> {
    let read = |source| QaError::Read {
        path: input.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(input).map_err(read)?;
    if meta.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(input)
        .map_err(read)?
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

/// The labels of each file (`None` where there are none); a broken labels file is an error.
fn labels_for(files: &[PathBuf], arg: Option<&Path>) -> Result<Vec<Option<Labels>>, QaError> {
    if let Some(arg) = arg
        && arg.is_file()
    {
        if files.len() != 1 {
            return Err(QaError::LabelsForFolder(arg.to_path_buf()));
        }
        return Ok(vec![Some(Labels::load(arg)?)]);
    }
    if let Some(arg) = arg
        && !arg.is_dir()
    {
        return Err(QaError::Read {
            path: arg.to_path_buf(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    files
        .iter()
        .map(|f| labels::beside(f, arg).map(|p| Labels::load(&p)).transpose())
        .collect::<Result<_, _>>()
        .map_err(QaError::from)
}

fn load_detector(
    runtime: &Runtime,
    manifest: &Path,
    args: &ReplayOptions,
) -> Result<Detector, QaError> {
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let manifest = ModelManifest::load(manifest).map_err(DetectError::from)?;
    // Scores down to 0.05 are kept for AP; precision/recall use each class's threshold.
    Ok(Detector::load(runtime, manifest, args.batch, threads)?.with_score_floor(0.05))
}

/// `sitcenter replay`.
pub fn replay(args: &ReplayOptions) -> Result<ReplayReport, QaError> {
    if !(args.interval_s.is_finite() && args.interval_s >= 0.0) {
        return Err(QaError::Interval(args.interval_s));
    }
    if !(1..=64).contains(&args.batch) {
        return Err(QaError::Batch(args.batch));
    }
    if !(0.0..=1.0).contains(&args.tolerance) {
        return Err(QaError::Tolerance(args.tolerance));
    }
    let sampling = Sampling {
        mode: args.mode,
        interval: Duration::from_secs_f64(args.interval_s),
        // Replay is not paced by the wall clock: no quiet hours.
        quiet: None,
    };
    let files = inputs(&args.input)?;
    let labels = labels_for(&files, args.labels.as_deref())?;
    if args.baseline.is_some() && labels.iter().all(Option::is_none) {
        return Err(QaError::BaselineWithoutLabels);
    }
    let mut detectors = Vec::new();
    if let Some(model) = &args.model {
        let runtime = Runtime::load(None)?;
        detectors.push(load_detector(&runtime, model, args)?);
        if let Some(baseline) = &args.baseline {
            detectors.push(load_detector(&runtime, baseline, args)?);
        }
    }
    let mut report = ReplayReport::default();
    if detectors.is_empty() {
        let settings = IngestSettings::default();
        for file in &files {
            let analysis = run::Analysis {
                detector: None,
                labels: None,
                classes: Vec::new(),
            };
            report
                .files
                .push(run::replay_file(file, sampling, &settings, analysis));
        }
    }
    for detector in &mut detectors {
        let manifest = detector.manifest().clone();
        let settings = IngestSettings {
            analysis_width: manifest.input_width,
            analysis_height: manifest.input_height,
            ..IngestSettings::default()
        };
        let mut model = ModelReport::new(&manifest);
        for (file, labels) in files.iter().zip(&labels) {
            let classes = labels.as_ref().map_or_else(Vec::new, |l| {
                manifest
                    .classes
                    .iter()
                    .map(|c| c.name.clone())
                    .filter(|c| l.classes.contains(c))
                    .collect()
            });
            let analysis = run::Analysis {
                detector: Some(detector),
                labels: labels.as_ref(),
                classes,
            };
            let file_report = run::replay_file(file, sampling, &settings, analysis);
            model.add(&file_report);
            report.files.push(file_report);
        }
        report.models.push(model.finish(&manifest));
    }
    report.judge(&args.min_precision, &args.min_recall, args.tolerance);
    report.print();
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(path, json).map_err(|source| QaError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(report)
}
