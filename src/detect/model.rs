//! Model manifests (`models/<name>/model.toml`), the ONNX Runtime library and sessions with
//! their contract check.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;
use serde::Deserialize;

use super::DetectError;
use crate::domain::Category;

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
    pub fn load(path: &Path) -> Result<Self, DetectError> {
        let text = std::fs::read_to_string(path).map_err(|source| DetectError::ReadManifest {
            file: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates manifest `text` that was read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, DetectError> {
        let at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            DetectError::Manifest {
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

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// ONNX Runtime, loaded from its shared library. Cheap to clone; one per process in practice.
#[derive(Clone)]
pub struct Runtime {
    env: ort::environment::Environment,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// The library this process loaded and its environment. ort keeps the first library for the
/// process's lifetime (a later `init_from` path is silently ignored) and ONNX Runtime allows one
/// environment per process, so both are kept here and a different path is refused.
static LOADED: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

impl Runtime {
    /// Loads ONNX Runtime from `library`, or from `ORT_DYLIB_PATH` when `None`.
    ///
    /// A missing or unloadable library is an error, never a panic (ort itself panics on first
    /// use when nothing was loaded).
    pub fn load(library: Option<&Path>) -> Result<Self, DetectError> {
        let requested = match library {
            Some(path) => path.to_owned(),
            None => match std::env::var_os("ORT_DYLIB_PATH") {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => return Err(DetectError::RuntimeNotConfigured),
            },
        };
        let canonical =
            std::fs::canonicalize(&requested).map_err(|_| DetectError::RuntimeMissing {
                path: requested.clone(),
            })?;
        let mut loaded = LOADED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match loaded.as_ref() {
            Some((path, env)) if *path == canonical => Ok(Self { env: env.clone() }),
            Some((path, _)) => Err(DetectError::RuntimeConflict {
                loaded: path.clone(),
                requested,
            }),
            None => {
                let load_error = |message: String| DetectError::RuntimeLoad {
                    path: requested.clone(),
                    message,
                };
                let env = ort::init_from(&canonical)
                    .map_err(|e| load_error(e.to_string()))?
                    .with_name("sitcenter")
                    .build()
                    .map_err(|e| load_error(e.to_string()))?;
                *loaded = Some((canonical, env.clone()));
                Ok(Self { env })
            }
        }
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

/// Registers `provider` on `builder`, failing when the runtime library does not have it.
fn with_provider(
    builder: ort::session::builder::SessionBuilder,
    provider: ExecutionProvider,
) -> Result<ort::session::builder::SessionBuilder, String> {
    use ort::ep::ExecutionProvider as _;
    let (available, dispatch) = match provider {
        ExecutionProvider::Cpu => return Ok(builder),
        ExecutionProvider::Cuda => (
            ort::ep::CUDA::is_available(),
            ort::ep::CUDA::default().build().error_on_failure(),
        ),
        ExecutionProvider::TensorRt => (
            ort::ep::TensorRT::is_available(),
            ort::ep::TensorRT::default().build().error_on_failure(),
        ),
    };
    match available {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "execution provider `{}` is not in this ONNX Runtime library (use a GPU build such as onnxruntime-gpu, or provider = \"cpu\")",
                provider.as_str()
            ));
        }
        Err(e) => return Err(format!("execution provider `{}`: {e}", provider.as_str())),
    }
    builder
        .with_execution_providers([dispatch])
        .map_err(|e| format!("execution provider `{}`: {e}", provider.as_str()))
}

/// A loaded model: its manifest and a session that passed the contract check.
pub struct Model {
    pub manifest: ModelManifest,
    pub(crate) session: Session,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Creates a session for `manifest.model_path` with `intra_threads` compute threads and
    /// checks the model's input and output shapes against the manifest.
    pub fn load(
        runtime: &Runtime,
        manifest: ModelManifest,
        intra_threads: usize,
    ) -> Result<Self, DetectError> {
        Self::load_on(runtime, manifest, intra_threads, ExecutionProvider::Cpu)
    }

    /// [`Model::load`] on an execution provider.
    pub fn load_on(
        runtime: &Runtime,
        manifest: ModelManifest,
        intra_threads: usize,
        provider: ExecutionProvider,
    ) -> Result<Self, DetectError> {
        let file = manifest.model_path.clone();
        let load_error = |message: String| DetectError::ModelLoad {
            file: file.clone(),
            message,
        };
        if !file.is_file() {
            return Err(load_error("no such file".into()));
        }
        let builder = Session::builder(&runtime.env)
            .map_err(|e| load_error(e.to_string()))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| load_error(e.to_string()))?;
        let session = with_provider(builder, provider)
            .map_err(load_error)?
            .commit_from_file(&file)
            .map_err(|e| load_error(e.to_string()))?;
        let shapes = |outlets: &[ort::value::Outlet]| -> Vec<(String, Option<Vec<i64>>)> {
            outlets
                .iter()
                .map(|o| {
                    let shape = match o.dtype().tensor_type() {
                        Some(ort::value::TensorElementType::Float32) => {
                            o.dtype().tensor_shape().map(|s| s.to_vec())
                        }
                        _ => None,
                    };
                    (o.name().to_owned(), shape)
                })
                .collect()
        };
        check_contract(
            &manifest,
            &shapes(session.inputs()),
            &shapes(session.outputs()),
        )
        .map_err(|message| DetectError::Contract {
            file: file.clone(),
            manifest: manifest.manifest_path.clone(),
            message,
        })?;
        Ok(Self { manifest, session })
    }
}

/// Checks one f32 input `[batch, 3, H, W]` and one f32 output in the manifest's layout.
/// Shapes are `None` for a non-f32 tensor; negative dimensions are dynamic.
fn check_contract(
    manifest: &ModelManifest,
    inputs: &[(String, Option<Vec<i64>>)],
    outputs: &[(String, Option<Vec<i64>>)],
) -> Result<(), String> {
    let matches = |dim: i64, want: i64| dim < 0 || dim == want;
    let [(input_name, input)] = inputs else {
        return Err(format!("expected 1 input, the model has {}", inputs.len()));
    };
    let (w, h) = (
        i64::from(manifest.input_width),
        i64::from(manifest.input_height),
    );
    match input.as_deref() {
        Some([_, c, ih, iw]) if matches(*c, 3) && matches(*ih, h) && matches(*iw, w) => {}
        other => {
            return Err(format!(
                "input `{input_name}` is {} but the manifest needs f32 [batch, 3, {h}, {w}]",
                describe(other)
            ));
        }
    }
    let [(output_name, output)] = outputs else {
        return Err(format!(
            "expected 1 output, the model has {}",
            outputs.len()
        ));
    };
    let classes = manifest.classes.len() as i64;
    match (manifest.layout, output.as_deref()) {
        (OutputLayout::Yolo, Some([_, ch, _])) if matches(*ch, 4 + classes) => Ok(()),
        (OutputLayout::EndToEnd, Some([_, _, 6])) => Ok(()),
        (layout, other) => Err(format!(
            "output `{output_name}` is {} but the manifest ({} classes, layout {layout:?}) needs {}",
            describe(other),
            classes,
            match layout {
                OutputLayout::Yolo => format!("f32 [batch, {}, anchors]", 4 + classes),
                OutputLayout::EndToEnd => "f32 [batch, N, 6]".to_owned(),
            }
        )),
    }
}

fn describe(shape: Option<&[i64]>) -> String {
    match shape {
        Some(dims) => format!("f32 {dims:?}"),
        None => "not an f32 tensor".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layout: OutputLayout, classes: usize) -> ModelManifest {
        ModelManifest {
            name: "m".into(),
            version: "1".into(),
            manifest_path: "m.toml".into(),
            model_path: "m.onnx".into(),
            layout,
            input_width: 640,
            input_height: 640,
            iou_threshold: 0.5,
            max_detections: 10,
            classes: (0..classes)
                .map(|i| ClassSpec {
                    name: format!("c{i}"),
                    score_threshold: 0.5,
                    category: Some(Category::new("open_manhole").expect("valid")),
                })
                .collect(),
        }
    }

    fn io(shape: &[i64]) -> Vec<(String, Option<Vec<i64>>)> {
        vec![("t".into(), Some(shape.to_vec()))]
    }

    #[test]
    fn a_yolov8_shaped_model_with_a_dynamic_batch_passes_the_contract() {
        let m = manifest(OutputLayout::Yolo, 80);
        assert_eq!(
            check_contract(&m, &io(&[-1, 3, 640, 640]), &io(&[-1, 84, 8400])),
            Ok(())
        );
    }

    #[test]
    fn a_class_count_mismatch_is_named_in_the_contract_error() {
        let m = manifest(OutputLayout::Yolo, 3);
        let err =
            check_contract(&m, &io(&[1, 3, 640, 640]), &io(&[1, 84, 8400])).expect_err("must fail");
        assert!(
            err.contains("[1, 84, 8400]") && err.contains("[batch, 7, anchors]"),
            "{err}"
        );
    }

    #[test]
    fn an_input_size_mismatch_fails_the_contract() {
        let m = manifest(OutputLayout::Yolo, 80);
        let err =
            check_contract(&m, &io(&[1, 3, 320, 320]), &io(&[1, 84, 2100])).expect_err("must fail");
        assert!(err.contains("[batch, 3, 640, 640]"), "{err}");
    }

    #[test]
    fn an_end_to_end_model_needs_six_values_per_row() {
        let m = manifest(OutputLayout::EndToEnd, 2);
        assert_eq!(
            check_contract(&m, &io(&[1, 3, 640, 640]), &io(&[1, 300, 6])),
            Ok(())
        );
        assert!(check_contract(&m, &io(&[1, 3, 640, 640]), &io(&[1, 300, 7])).is_err());
    }

    #[test]
    fn a_non_float_input_fails_the_contract() {
        let m = manifest(OutputLayout::Yolo, 80);
        let inputs = vec![("images".to_owned(), None)];
        let err = check_contract(&m, &inputs, &io(&[1, 84, 8400])).expect_err("must fail");
        assert!(err.contains("not an f32 tensor"), "{err}");
    }

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

    #[test]
    fn a_missing_runtime_library_is_a_clear_error_not_a_panic() {
        let err = Runtime::load(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1")))
            .expect_err("must fail");
        assert!(matches!(err, DetectError::RuntimeMissing { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("/nonexistent/libonnxruntime.so.1.31.1"),
            "{err}"
        );
    }
}
