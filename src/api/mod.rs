//! HTTP (axum): one way in, [`router`]. `/metrics` (Prometheus text), `/health`,
//! the camera API the UI uses, and the UI itself.
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

pub mod appeals;
mod appeals_error;
mod cameras;
mod error;
pub mod events;
pub mod open311;
pub mod registry_api;
#[cfg(test)]
mod registry_api_tests;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::Notify;

pub use error::ApiError;

use crate::config::{Bounds, SiteConfig};
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::web::Previews;

#[derive(Clone)]
pub struct AppState {
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

impl AppState {
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

pub fn router(state: AppState) -> Router {
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
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

async fn site(axum::extract::State(state): axum::extract::State<AppState>) -> axum::Json<SiteInfo> {
    axum::Json(state.site.as_ref().clone())
}

async fn reload(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::http::StatusCode {
    state.reload_now.notify_one();
    axum::http::StatusCode::ACCEPTED
}
