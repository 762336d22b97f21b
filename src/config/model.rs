//! Model manifests (`models/<name>/model.toml`): what a model file is, read and validated at
//! config load (the ONNX file itself is loaded and checked against it by `detect`), and the
//! execution provider a session runs on.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::line_col;
use crate::domain::Category;

/// A manifest that cannot be read or is not valid; names the file, line and column.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: cannot read model manifest: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The layout of the model's single output tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputLayout {
    /// Ultralytics YOLOv8/YOLO11 detection head: `[batch, 4 + classes, anchors]`, rows
    /// `cx, cy, w, h` in input pixels, then one score per class; NMS is ours.
    Yolo,
    /// Exported with built-in NMS: `[batch, N, 6]`, rows `x1, y1, x2, y2, score, class`.
    EndToEnd,
}

const fn default_layout() -> OutputLayout {
    OutputLayout::Yolo
}
const fn default_iou_threshold() -> f32 {
    0.45
}
const fn default_max_detections() -> usize {
    100
}

/// `model.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    file: toml::Spanned<PathBuf>,
    #[serde(default = "default_layout")]
    layout: OutputLayout,
    input_width: toml::Spanned<u32>,
    input_height: toml::Spanned<u32>,
    #[serde(default)]
    iou_threshold: Option<toml::Spanned<f32>>,
    #[serde(default = "default_max_detections")]
    max_detections: usize,
    classes: toml::Spanned<Vec<RawClass>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    /// Label of the class, in the model's class order.
    name: String,
    /// Detections of this class below this score are discarded (0 < t <= 1).
    score_threshold: toml::Spanned<f32>,
    /// The incident category a detection of this class raises; omitted for classes that
    /// raise nothing by themselves (cars, people: the zone rules decide).
    #[serde(default)]
    category: Option<Category>,
}

/// One class the model outputs, in output order.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassSpec {
    pub name: String,
    pub score_threshold: f32,
    /// `None`: the class raises no incident by itself (it may still feed zone rules).
    pub category: Option<Category>,
}

/// A validated model manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelManifest {
    pub name: String,
    pub version: String,
    /// The manifest file itself (for error messages).
    pub manifest_path: PathBuf,
    /// The ONNX file, resolved against the manifest's folder.
    pub model_path: PathBuf,
    pub layout: OutputLayout,
    pub input_width: u32,
    pub input_height: u32,
    pub iou_threshold: f32,
    pub max_detections: usize,
    pub classes: Vec<ClassSpec>,
}

impl ModelManifest {
    /// Reads and validates `path` (usually `models/<name>/model.toml`).
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates manifest `text` that was read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            ManifestError::Invalid {
                file: path.to_owned(),
                line,
                column,
                message,
            }
        };
        let raw: RawManifest = toml::from_str(text)
            .map_err(|e| at(e.span().unwrap_or(0..0), e.message().to_owned()))?;
        for (field, size) in [
            ("input_width", &raw.input_width),
            ("input_height", &raw.input_height),
        ] {
            if !(1..=8192).contains(size.get_ref()) {
                return Err(at(size.span(), format!("`{field}` must be 1..=8192")));
            }
        }
        let iou = match &raw.iou_threshold {
            None => default_iou_threshold(),
            Some(iou) if *iou.get_ref() > 0.0 && *iou.get_ref() <= 1.0 => *iou.get_ref(),
            Some(iou) => {
                return Err(at(iou.span(), "`iou_threshold` must be in (0, 1]".into()));
            }
        };
        if raw.classes.get_ref().is_empty() {
            return Err(at(
                raw.classes.span(),
                "`classes` must list at least one class".into(),
            ));
        }
        let mut classes = Vec::new();
        for class in raw.classes.into_inner() {
            let threshold = *class.score_threshold.get_ref();
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(at(
                    class.score_threshold.span(),
                    format!(
                        "`score_threshold` of class `{}` must be in (0, 1]",
                        class.name
                    ),
                ));
            }
            classes.push(ClassSpec {
                name: class.name,
                score_threshold: threshold,
                category: class.category,
            });
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(Self {
            name: raw.name,
            version: raw.version,
            manifest_path: path.to_owned(),
            model_path: dir.join(raw.file.get_ref()),
            layout: raw.layout,
            input_width: *raw.input_width.get_ref(),
            input_height: *raw.input_height.get_ref(),
            iou_threshold: iou,
            max_detections: raw.max_detections,
            classes,
        })
    }

    /// The per-class score thresholds, in class order.
    pub fn thresholds(&self) -> Vec<f32> {
        self.classes.iter().map(|c| c.score_threshold).collect()
    }
}

/// Where a session runs. CUDA and TensorRT need an ONNX Runtime library built with them (the
/// PyPI `onnxruntime` wheel is CPU-only; `onnxruntime-gpu` has both): when the loaded library
/// lacks the provider, loading fails with an error naming it; there is no silent CPU fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionProvider {
    #[default]
    Cpu,
    Cuda,
    TensorRt,
}

impl ExecutionProvider {
    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionProvider::Cpu => "cpu",
            ExecutionProvider::Cuda => "cuda",
            ExecutionProvider::TensorRt => "tensorrt",
        }
    }
}

impl std::str::FromStr for ExecutionProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" => Ok(Self::TensorRt),
            other => Err(format!(
                "unknown execution provider `{other}` (expected `cpu`, `cuda` or `tensorrt`)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tiny_manifest_loads_with_its_classes_in_order() {
        let m = ModelManifest::load(Path::new("models/tiny/model.toml")).expect("valid manifest");
        assert_eq!(m.name, "tiny");
        assert_eq!(m.thresholds(), vec![0.5, 0.6]);
        assert_eq!(
            m.classes[1].category.as_ref().map(Category::as_str),
            Some("illegal_dump")
        );
        assert_eq!(m.model_path, Path::new("models/tiny/model.onnx"));
        assert_eq!(
            (m.input_width, m.input_height, m.layout),
            (64, 64, OutputLayout::Yolo)
        );
    }

    #[test]
    fn an_unknown_manifest_key_is_reported_with_file_and_line() {
        let path = Path::new("models/tiny/invalid/unknown-key.toml");
        let err = ModelManifest::load(path)
            .expect_err("must fail")
            .to_string();
        assert!(
            err.starts_with("models/tiny/invalid/unknown-key.toml:9:")
                && err.contains("score_treshold"),
            "{err}"
        );
    }

    #[test]
    fn an_out_of_range_threshold_is_reported_at_its_line() {
        let text = "name = \"m\"\nversion = \"1\"\nfile = \"m.onnx\"\ninput_width = 64\ninput_height = 64\n\
                    [[classes]]\nname = \"a\"\nscore_threshold = 1.5\ncategory = \"open_manhole\"\n";
        let err = ModelManifest::parse(Path::new("m.toml"), text)
            .expect_err("must fail")
            .to_string();
        assert!(
            err.starts_with("m.toml:8:") && err.contains("score_threshold"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_category_code_is_reported_at_its_line() {
        let text = "name = \"m\"\nversion = \"1\"\nfile = \"m.onnx\"\ninput_width = 64\ninput_height = 64\n\
                    [[classes]]\nname = \"a\"\nscore_threshold = 0.5\ncategory = \"Open Manhole\"\n";
        let err = ModelManifest::parse(Path::new("m.toml"), text)
            .expect_err("must fail")
            .to_string();
        assert!(
            err.starts_with("m.toml:9:") && err.contains("Open Manhole"),
            "{err}"
        );
    }
}
