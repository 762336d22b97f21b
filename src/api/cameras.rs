use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;

use super::{ApiError, CamerasState};
use crate::domain::CameraId;
use crate::ingest::{CameraFilter, CameraSnapshot};

/// Largest page of `GET /api/cameras` (the camera wall asks for one screen at a time).
pub(super) const MAX_CAMERA_PAGE: usize = 1000;

/// `GET /api/cameras` query: `state`, `district`, `q` (id, name or address), `offset`, `limit`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CameraQuery {
    state: Option<String>,
    district: Option<String>,
    q: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

/// One page of cameras, sorted by id; `X-Total-Count` says how many match in all.
pub(super) async fn list(
    State(state): State<CamerasState>,
    query: Result<Query<CameraQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let limit = query.limit.unwrap_or(MAX_CAMERA_PAGE);
    if limit == 0 || limit > MAX_CAMERA_PAGE {
        return Err(ApiError::BadQuery(format!(
            "`limit` must be 1..={MAX_CAMERA_PAGE}, not {limit}"
        )));
    }
    let filter = CameraFilter {
        state: query.state.filter(|s| !s.is_empty()),
        district: query.district.filter(|s| !s.is_empty()),
        text: query.q.filter(|s| !s.is_empty()),
        offset: query.offset.unwrap_or(0),
        limit,
    };
    let (total, page) = state.ingest.page(&filter);
    Ok((
        [(
            HeaderName::from_static("x-total-count"),
            HeaderValue::from(total),
        )],
        Json(page),
    ))
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
