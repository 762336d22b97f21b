//! HTTP (axum): one way in, [`router`] with an [`ApiState`] made of one small state per
//! router (cameras and UI, detection events, the registry APIs), so each router's handlers
//! are tested on their own state, without a running node.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the operator UI |
//! | `GET /metrics` | Prometheus text exposition |
//! | `GET /health` | `ok` plus counts of cameras by state |
//! | `GET /api/site` | site name, city, bounds |
//! | `GET /api/cameras` | every camera with state, reason, counters, history |
//! | `GET /api/cameras/{id}` | one camera |
//! | `GET /api/cameras/{id}/snapshot.jpg` | its latest sampled frame |
//! | `POST /api/cameras/{id}/restart` | restart one camera (e.g. after fixing it) |
//! | `POST /api/reload` | re-read the cameras file now |
//! | `GET /api/events` | recent detection events, newest first (`events.rs`) |
//! | `GET /api/events/{id}/evidence.jpg`, `/clean.jpg` | an event's evidence, annotated / clean |
//! | `GET /api/detect` | the detector's model, provider, workers and last reload error |

mod appeals;
mod appeals_error;
mod cameras;
mod error;
mod events;
mod open311;
mod registry_api;
#[cfg(test)]
mod registry_api_tests;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::Notify;

pub use error::ApiError;
pub use events::EventsState;
pub use registry_api::RegistryApiState;

use crate::config::{Bounds, SiteConfig};
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::web::Previews;

/// Every router's state; `registry` is `None` on a node without `[registry]`.
#[derive(Clone)]
pub struct ApiState {
    pub cameras: CamerasState,
    pub events: EventsState,
    pub registry: Option<RegistryApiState>,
}

/// The whole HTTP API and the UI.
pub fn router(state: ApiState) -> Router {
    let mut router = cameras_router(state.cameras).merge(events::router(state.events));
    if let Some(registry) = state.registry {
        router = router.merge(registry_api::router(registry));
    }
    router
}

/// The UI, `/metrics`, `/health`, the site and the camera API.
#[derive(Clone)]
pub struct CamerasState {
    ingest: Arc<Ingest>,
    metrics: Arc<Metrics>,
    previews: Arc<Previews>,
    site: Arc<SiteInfo>,
    reload_now: Arc<Notify>,
}

#[derive(Debug, Clone, Serialize)]
struct SiteInfo {
    name: String,
    city: Option<String>,
    bounds: BoundsInfo,
}

#[derive(Debug, Clone, Serialize)]
struct BoundsInfo {
    south: f64,
    west: f64,
    north: f64,
    east: f64,
}

impl From<Bounds> for BoundsInfo {
    fn from(b: Bounds) -> Self {
        Self {
            south: b.south,
            west: b.west,
            north: b.north,
            east: b.east,
        }
    }
}

impl CamerasState {
    pub fn new(
        ingest: Arc<Ingest>,
        metrics: Arc<Metrics>,
        previews: Arc<Previews>,
        site: &SiteConfig,
        reload_now: Arc<Notify>,
    ) -> Self {
        Self {
            ingest,
            metrics,
            previews,
            site: Arc::new(SiteInfo {
                name: site.name.clone(),
                city: site.city.clone(),
                bounds: site.bounds.into(),
            }),
            reload_now,
        }
    }
}

fn cameras_router(state: CamerasState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/health", get(cameras::health))
        .route("/api/site", get(site))
        .route("/api/cameras", get(cameras::list))
        .route("/api/cameras/{id}", get(cameras::one))
        .route("/api/cameras/{id}/snapshot.jpg", get(cameras::snapshot))
        .route("/api/cameras/{id}/restart", post(cameras::restart))
        .route("/api/reload", post(reload))
        .with_state(state)
}

async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(crate::web::INDEX_HTML)
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<CamerasState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn site(
    axum::extract::State(state): axum::extract::State<CamerasState>,
) -> axum::Json<SiteInfo> {
    axum::Json(state.site.as_ref().clone())
}

async fn reload(
    axum::extract::State(state): axum::extract::State<CamerasState>,
) -> axum::http::StatusCode {
    state.reload_now.notify_one();
    axum::http::StatusCode::ACCEPTED
}
