//! What a node's detector runs and whether its last (re)load worked (`/api/detect`).

use serde::Serialize;

/// What the detector runs and whether the last (re)load worked, for `/api/detect`.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DetectorStatus {
    pub model: String,
    pub version: String,
    pub provider: &'static str,
    pub workers: usize,
    /// The last failed reload, with the file at fault; the previous detector kept running.
    pub last_error: Option<String>,
}
