use std::path::PathBuf;

/// Errors loading city layers or calibrating a camera.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read layer {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not valid TOML: {source}")]
    Toml {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: feature #{index}: {message}")]
    Feature {
        path: PathBuf,
        index: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Layer { path: PathBuf, message: String },
    #[error("homography needs at least 4 image/map point pairs, got {0}")]
    TooFewPairs(usize),
    #[error("calibration pair #{0} has a coordinate that is not finite or out of range")]
    BadPair(usize),
    #[error("calibration points are degenerate (three or more collinear, or repeated)")]
    Degenerate,
}
