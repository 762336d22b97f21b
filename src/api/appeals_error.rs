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
    /// Refused at the edge or by the body extractor (413, 415, 429, …).
    #[error("{1}")]
    Refused(StatusCode, String),
}

impl AppealsApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppealsApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppealsApiError::NotFound(_) => StatusCode::NOT_FOUND,
            AppealsApiError::Conflict(_) => StatusCode::CONFLICT,
            AppealsApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppealsApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppealsApiError::Refused(status, _) => *status,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppealsApiError::BadRequest(_) => "bad_request",
            AppealsApiError::NotFound(_) => "not_found",
            AppealsApiError::Conflict(_) => "conflict",
            AppealsApiError::Unprocessable(_) => "unprocessable",
            AppealsApiError::Unavailable => "unavailable",
            AppealsApiError::Refused(status, _) => match *status {
                StatusCode::BAD_REQUEST => "bad_request",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
                StatusCode::URI_TOO_LONG => "uri_too_long",
                StatusCode::MISDIRECTED_REQUEST => "misdirected",
                _ => "refused",
            },
        }
    }

    /// A body the JSON extractor refused: 413, 415 or 400 as the extractor says, with its text.
    pub(crate) fn from_json(rejection: &axum::extract::rejection::JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                AppealsApiError::BadRequest(rejection.body_text())
            }
            status => AppealsApiError::Refused(status, rejection.body_text()),
        }
    }
}

impl From<super::input::InputError> for AppealsApiError {
    fn from(e: super::input::InputError) -> Self {
        AppealsApiError::BadRequest(e.to_string())
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
