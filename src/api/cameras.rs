use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::{ApiError, CamerasState};
use crate::domain::CameraId;
use crate::ingest::CameraSnapshot;

pub(super) async fn list(State(state): State<CamerasState>) -> Json<Vec<CameraSnapshot>> {
    Json(state.ingest.snapshots())
}

pub(super) async fn one(
    State(state): State<CamerasState>,
    Path(id): Path<String>,
) -> Result<Json<CameraSnapshot>, ApiError> {
    state
        .ingest
        .snapshot(&CameraId::new(&id))
        .map(Json)
        .ok_or(ApiError::UnknownCamera(id))
}

pub(super) async fn snapshot(
    State(state): State<CamerasState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let camera = CameraId::new(&id);
    if state.ingest.snapshot(&camera).is_none() {
        return Err(ApiError::UnknownCamera(id));
    }
    let previews = state.previews.clone();
    let encoded = tokio::task::spawn_blocking(move || previews.jpeg(&camera))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| ApiError::NoFrameYet(id))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        encoded,
    ))
}

pub(super) async fn restart(
    State(state): State<CamerasState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.ingest.restart(&CameraId::new(&id)).await {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::UnknownCamera(id))
    }
}

pub(super) async fn health(State(state): State<CamerasState>) -> Json<serde_json::Value> {
    let mut by_state: BTreeMap<&'static str, usize> = BTreeMap::new();
    for camera in state.ingest.snapshots() {
        *by_state.entry(camera.state.as_str()).or_default() += 1;
    }
    Json(serde_json::json!({ "status": "ok", "cameras": by_state }))
}
