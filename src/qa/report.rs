//! The replay report: per file, per model (aggregated over the files) and the verdict;
//! printed as tables and written as JSON.

use std::path::PathBuf;

use serde::Serialize;

use super::run::FileReport;
use super::score::{Summary, Tally};
use super::verdict::{self, Minimum, Shortfall};
use crate::config::ModelManifest;

/// One model over every replayed file.
#[derive(Debug, Serialize)]
pub struct ModelReport {
    pub name: String,
    pub version: String,
    pub manifest: PathBuf,
    pub frames: u64,
    pub wall_s: f64,
    pub frames_per_s: f64,
    /// `None` when no file had labels.
    pub summary: Option<Summary>,
    #[serde(skip)]
    tally: Option<Tally>,
}

impl ModelReport {
    pub(super) fn new(manifest: &ModelManifest) -> Self {
        Self {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            manifest: manifest.manifest_path.clone(),
            frames: 0,
            wall_s: 0.0,
            frames_per_s: 0.0,
            summary: None,
            tally: None,
        }
    }

    pub(super) fn add(&mut self, file: &FileReport) {
        self.frames += file.frames;
        self.wall_s += file.wall_s;
        if let Some(t) = &file.tally {
            self.tally.get_or_insert_with(Tally::default).merge(t);
        }
    }

    pub(super) fn finish(mut self, manifest: &ModelManifest) -> Self {
        self.frames_per_s = if self.wall_s > 0.0 {
            self.frames as f64 / self.wall_s
        } else {
            0.0
        };
        self.summary = self.tally.take().map(|t| {
            t.summary(|class| {
                manifest
                    .classes
                    .iter()
                    .find(|c| c.name == class)
                    .map_or(0.5, |c| c.score_threshold)
            })
        });
        self
    }
}

/// What failed, in order of precedence for the exit code.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Files that could not be replayed or analysed.
    pub failed_files: Vec<PathBuf>,
    /// The candidate (`--model`) below `--min-precision`/`--min-recall`.
    pub below_minimums: Vec<Shortfall>,
    /// The candidate worse than `--baseline` by more than the tolerance.
    pub regressions: Vec<Shortfall>,
    /// Whether a baseline was compared at all.
    pub compared: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct ReplayReport {
    pub files: Vec<FileReport>,
    pub models: Vec<ModelReport>,
    pub verdict: Verdict,
}

impl ReplayReport {
    /// Every file replayed and no threshold or regression check failed.
    pub fn passed(&self) -> bool {
        self.exit_code() == 0
    }

    /// 0 passed; 1 a file failed; 3 a class below its minimum; 4 a regression.
    pub fn exit_code(&self) -> u8 {
        let v = &self.verdict;
        if !v.failed_files.is_empty() {
            1
        } else if !v.below_minimums.is_empty() {
            3
        } else if !v.regressions.is_empty() {
            4
        } else {
            0
        }
    }

    pub(super) fn judge(&mut self, min_precision: &[Minimum], min_recall: &[Minimum], tol: f64) {
        let mut v = Verdict {
            failed_files: self
                .files
                .iter()
                .filter(|f| f.error.is_some())
                .map(|f| f.file.clone())
                .collect(),
            ..Verdict::default()
        };
        v.failed_files.dedup();
        let summaries: Vec<Option<&Summary>> =
            self.models.iter().map(|m| m.summary.as_ref()).collect();
        if let Some(Some(candidate)) = summaries.first() {
            v.below_minimums = verdict::below_minimums(candidate, min_precision, min_recall);
            if let Some(Some(baseline)) = summaries.get(1) {
                v.compared = true;
                v.regressions = verdict::regressions(candidate, baseline, tol);
            }
        }
        self.verdict = v;
    }

    pub fn print(&self) {
        let ms = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.2}"));
        println!(
            "{:<40} {:<22} {:>7} {:>9} {:>8} {:>9} {:>8} {:>9} {:>9}",
            "file",
            "model",
            "frames",
            "frames/s",
            "× real",
            "dec p50",
            "dec p99",
            "det p50",
            "det p99"
        );
        for f in &self.files {
            let name = f.file.display().to_string();
            let model = f.model.as_deref().unwrap_or("—");
            match &f.error {
                None => println!(
                    "{name:<40} {model:<22} {:>7} {:>9.1} {:>8} {:>9} {:>8} {:>9} {:>9}",
                    f.frames,
                    f.frames_per_s,
                    f.speed_x_realtime
                        .map_or("—".to_owned(), |s| format!("{s:.1}")),
                    ms(f.decode_latency_ms.p50),
                    ms(f.decode_latency_ms.p99),
                    ms(f.detect_latency_ms.p50),
                    ms(f.detect_latency_ms.p99),
                ),
                Some(error) => println!("{name:<40} {model:<22} ERROR: {error}"),
            }
        }
        let pct = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.3}"));
        for (i, m) in self.models.iter().enumerate() {
            let role = match (i, self.models.len()) {
                (0, 1) => "model",
                (0, _) => "candidate",
                _ => "baseline",
            };
            println!(
                "\n{role} {} {} ({}): {} frames, {:.1} frames/s",
                m.name,
                m.version,
                m.manifest.display(),
                m.frames,
                m.frames_per_s
            );
            let Some(s) = &m.summary else {
                println!("  no labels: not scored");
                continue;
            };
            println!(
                "  {:<16} {:>5} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6} {:>7}",
                "class", "thr", "truth", "TP", "FP", "FN", "precision", "recall", "F1", "AP@0.5"
            );
            for (class, c) in &s.classes {
                println!(
                    "  {class:<16} {:>5.2} {:>6} {:>6} {:>6} {:>6} {:>9} {:>7} {:>6} {:>7}",
                    c.threshold,
                    c.truths,
                    c.true_positives,
                    c.false_positives,
                    c.false_negatives,
                    pct(c.precision),
                    pct(c.recall),
                    pct(c.f1),
                    pct(c.ap50)
                );
            }
            println!("  mAP@0.5 {} over {} scored frames", pct(s.map50), s.frames);
        }
        let v = &self.verdict;
        for f in &v.failed_files {
            println!("\nFAILED: {} could not be replayed", f.display());
        }
        for s in &v.below_minimums {
            println!("BELOW MINIMUM: {s}");
        }
        if v.compared {
            if v.regressions.is_empty() {
                println!("\nverdict: no regression against the baseline");
            } else {
                println!("\nverdict: REGRESSION against the baseline");
                for s in &v.regressions {
                    println!("  {s}");
                }
            }
        }
    }
}
