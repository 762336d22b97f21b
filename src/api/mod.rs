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
//! | `GET /api/sensors[/alarms\|/unknown\|/rejected\|/{id}]` | manhole-cover sensors (`sensors.rs`) |
//! | `GET /api/vehicles[/stream\|/near\|/{id}\|/{id}/track]`, `/api/telemetry[/rejected]` | vehicle GPS (`vehicles.rs`) |

mod appeals;
mod appeals_error;
mod cameras;
mod error;
mod events;
mod open311;
mod policy;
#[cfg(test)]
mod policy_tests;
mod registry_api;
#[cfg(test)]
mod registry_api_tests;
mod sensors;
mod session;
mod vehicles;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use serde::Serialize;
use tokio::sync::Notify;

pub use error::ApiError;
pub use events::EventsState;
pub use policy::{Access, POLICY, Rule};
pub use registry_api::RegistryApiState;
pub use session::SessionState;

use crate::config::{Bounds, SiteConfig};
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::web::Previews;

/// Every router's state; `registry` and `session` are `None` on a node without
/// `[registry]` (then only the public routes answer: nobody can sign in).
#[derive(Clone)]
pub struct ApiState {
    pub cameras: CamerasState,
    pub events: EventsState,
    pub registry: Option<RegistryApiState>,
    pub session: Option<SessionState>,
    /// `/api/sensors…` (`sensors.rs`); `None` on a node without `[sensors]`.
    pub sensors: Option<crate::sensors::SensorsHandle>,
    /// `/api/vehicles…`, `/api/telemetry…` (`vehicles.rs`); `None` without `[telemetry]`.
    pub telemetry: Option<crate::telemetry::TelemetryHandle>,
}

/// Largest request body on any route (Open311 and appeals bodies are far smaller).
const BODY_LIMIT: usize = 256 * 1024;
/// A request that has not been answered in this long is answered 408.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Requests in progress at once; more wait for a slot (the listener's backlog bounds them).
const CONCURRENCY: usize = 512;

/// The whole HTTP API and the UI, every route behind the policy table (`policy.rs`), with
/// body limits, a timeout, a concurrency cap, panic catching and security headers.
pub fn router(state: ApiState) -> Router {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;

    let auth = state.session.as_ref().map(|s| s.auth.clone());
    let mut router = cameras_router(state.cameras).merge(events::router(state.events));
    if let Some(registry) = state.registry {
        router = router.merge(registry_api::router(registry));
    }
    if let Some(session) = state.session {
        router = router.merge(session::router(session));
    }
    if let Some(sensors) = state.sensors {
        router = router.merge(sensors::router(sensors));
    }
    if let Some(telemetry) = state.telemetry {
        router = router.merge(vehicles::router(telemetry));
    }
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            policy::authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
             script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(CONCURRENCY))
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
        .route("/app.js", get(app_js))
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

async fn app_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        crate::web::APP_JS,
    )
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
