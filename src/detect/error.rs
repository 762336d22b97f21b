use std::path::PathBuf;

/// Everything that can go wrong loading a detector; each variant names the file (or library)
/// at fault.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "no ONNX Runtime library configured: set ORT_DYLIB_PATH (scripts/env.sh does) or the detector's `runtime_library`"
    )]
    RuntimeNotConfigured,
    #[error(
        "ONNX Runtime library not found at `{}` (scripts/bootstrap.sh installs it; ORT_DYLIB_PATH points at it)",
        path.display()
    )]
    RuntimeMissing { path: PathBuf },
    #[error("ONNX Runtime library at `{}` could not be loaded: {message}", path.display())]
    RuntimeLoad { path: PathBuf, message: String },
    #[error(
        "ONNX Runtime is already loaded from `{}` in this process; cannot also load `{}`",
        loaded.display(),
        requested.display()
    )]
    RuntimeConflict { loaded: PathBuf, requested: PathBuf },
    #[error(transparent)]
    Manifest(#[from] crate::config::ManifestError),
    #[error("{}: cannot load model: {message}", file.display())]
    ModelLoad { file: PathBuf, message: String },
    #[error("{}: model does not match its manifest `{}`: {message}", file.display(), manifest.display())]
    Contract {
        file: PathBuf,
        manifest: PathBuf,
        message: String,
    },
    #[error("cannot start the detector thread for model `{model}`: {source}")]
    Spawn {
        model: String,
        source: std::io::Error,
    },
}
