use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::incidents::IncidentsError;
use crate::registry::RegistryError;

/// Errors of the appeals JSON API (`/api/v1/appeals…`): `{"error": {"code": …, "message": …}}`.
#[derive(Debug, thiserror::Error)]
pub enum AppealsApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("the registry is unavailable")]
    Unavailable,
}

impl AppealsApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppealsApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppealsApiError::NotFound(_) => StatusCode::NOT_FOUND,
            AppealsApiError::Conflict(_) => StatusCode::CONFLICT,
            AppealsApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppealsApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppealsApiError::BadRequest(_) => "bad_request",
            AppealsApiError::NotFound(_) => "not_found",
            AppealsApiError::Conflict(_) => "conflict",
            AppealsApiError::Unprocessable(_) => "unprocessable",
            AppealsApiError::Unavailable => "unavailable",
        }
    }
}

impl From<RegistryError> for AppealsApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(_) => AppealsApiError::NotFound(e.to_string()),
            RegistryError::InvalidTransition { .. } | RegistryError::Conflict(_) => {
                AppealsApiError::Conflict(e.to_string())
            }
            RegistryError::Invalid { .. } => AppealsApiError::Unprocessable(e.to_string()),
            other => {
                tracing::error!(error = %other, "registry request failed");
                AppealsApiError::Unavailable
            }
        }
    }
}

impl From<IncidentsError> for AppealsApiError {
    fn from(e: IncidentsError) -> Self {
        AppealsApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for AppealsApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (self.status(), Json(body)).into_response()
    }
}
