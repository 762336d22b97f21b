//! Detection events over HTTP: the recent-events ring and each event's evidence JPEGs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::ApiError;
use crate::app::{DetectorStatus, Node};
use crate::domain::DetectionEvent;

/// `/api/events`, `/api/events/{id}/evidence.jpg`, `/api/events/{id}/clean.jpg`, `/api/detect`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/api/events", get(list))
        .route("/api/events/{id}/evidence.jpg", get(annotated))
        .route("/api/events/{id}/clean.jpg", get(clean))
        .route("/api/detect", get(status))
        .with_state(node)
}

async fn list(State(node): State<Arc<Node>>) -> Json<Vec<DetectionEvent>> {
    // Clones share the JPEG bytes (Arc); the bytes are not serialised.
    Json(node.events.list().iter().map(|e| (**e).clone()).collect())
}

async fn status(State(node): State<Arc<Node>>) -> Json<Option<DetectorStatus>> {
    Json(node.detector_status())
}

fn jpeg(node: &Node, id: String, annotated: bool) -> Result<impl IntoResponse + use<>, ApiError> {
    let event = node
        .events
        .get(&id)
        .ok_or_else(|| ApiError::UnknownEvent(id.clone()))?;
    let evidence = event.evidence.as_ref().ok_or(ApiError::NoEvidence(id))?;
    let bytes = if annotated {
        evidence.annotated_jpeg.clone()
    } else {
        evidence.clean_jpeg.clone()
    };
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], bytes.to_vec()))
}

async fn annotated(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    jpeg(&node, id, true)
}

async fn clean(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    jpeg(&node, id, false)
}
