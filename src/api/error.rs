use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Errors of the HTTP API, rendered as `{"error": "..."}` with a status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no camera `{0}`")]
    UnknownCamera(String),
    #[error(
        "no frame of camera `{0}` yet: it is now watched, ask again after its sampling interval"
    )]
    NoFrameYet(String),
    #[error("no recent event `{0}` (only the latest events are held; evidence files stay on disk)")]
    UnknownEvent(String),
    #[error("event `{0}` has no evidence (it could not be stored; see the logs)")]
    NoEvidence(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("no file `{0}`")]
    NotFound(String),
    #[error("cannot encode the snapshot: {0}")]
    Snapshot(#[from] crate::web::PreviewError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::UnknownCamera(_)
            | ApiError::NoFrameYet(_)
            | ApiError::UnknownEvent(_)
            | ApiError::NoEvidence(_)
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Snapshot(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
