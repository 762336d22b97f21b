//! Model manifests (`models/<name>/model.toml`), the ONNX Runtime library and sessions with
//! their contract check.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::Session;

use super::DetectError;
use crate::config::{ExecutionProvider, ModelManifest, OutputLayout};

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
    use crate::config::ClassSpec;
    use crate::domain::Category;

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
