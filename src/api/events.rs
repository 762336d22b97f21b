//! Detection events over HTTP: the recent-events ring and each event's evidence JPEGs, and the
//! detector's status.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use super::ApiError;
use crate::detect::DetectorStatus;
use crate::domain::DetectionEvent;
use crate::events::RecentEvents;

/// What the events routes read: the ring the event stage writes, and the detector's status
/// as the node publishes it (`None` without `[detect]`).
#[derive(Clone)]
pub struct EventsState {
    pub events: Arc<RecentEvents>,
    pub detector: watch::Receiver<Option<DetectorStatus>>,
}

/// `/api/events`, `/api/events/{id}/evidence.jpg`, `/api/events/{id}/clean.jpg`, `/api/detect`.
pub(super) fn router(state: EventsState) -> Router {
    Router::new()
        .route("/api/events", get(list))
        .route("/api/events/{id}/evidence.jpg", get(annotated))
        .route("/api/events/{id}/clean.jpg", get(clean))
        .route("/api/detect", get(status))
        .with_state(state)
}

async fn list(State(state): State<EventsState>) -> Json<Vec<DetectionEvent>> {
    // Clones share the JPEG bytes (Arc); the bytes are not serialised.
    Json(state.events.list().iter().map(|e| (**e).clone()).collect())
}

async fn status(State(state): State<EventsState>) -> Json<Option<DetectorStatus>> {
    Json(state.detector.borrow().clone())
}

fn jpeg(
    state: &EventsState,
    id: String,
    annotated: bool,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let event = state
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
    State(state): State<EventsState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    jpeg(&state, id, true)
}

async fn clean(
    State(state): State<EventsState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    jpeg(&state, id, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn detect_status_follows_the_watch_and_unknown_events_are_404() {
        use axum::body::Body;
        use axum::http::{Request, StatusCode};
        use tower::ServiceExt as _;

        let (tx, rx) = watch::channel(None);
        let app = router(EventsState {
            events: Arc::new(RecentEvents::new(4)),
            detector: rx,
        });
        let get = |uri: &str| Request::get(uri).body(Body::empty()).expect("request");
        let answer = app
            .clone()
            .oneshot(get("/api/detect"))
            .await
            .expect("answer");
        assert_eq!(answer.status(), StatusCode::OK);
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .expect("body");
        assert_eq!(&body[..], b"null");
        tx.send_replace(Some(DetectorStatus {
            model: "street".into(),
            last_error: Some("models/street/model.toml: bad".into()),
            ..DetectorStatus::default()
        }));
        let answer = app
            .clone()
            .oneshot(get("/api/detect"))
            .await
            .expect("answer");
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .expect("body");
        let status: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status["model"], "street");
        assert_eq!(status["last_error"], "models/street/model.toml: bad");
        let missing = app
            .oneshot(get("/api/events/nope/evidence.jpg"))
            .await
            .expect("answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
