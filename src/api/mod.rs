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
//! | `GET /assets/{file}` | the UI's built scripts and styles (`ui/`, embedded) |
//! | `GET /api/city/layers/{name}` | the site's own map layers (`districts`, `streets`) as GeoJSON |
//! | `/api/review/…`, `GET /api/evidence/{id}/{item}` | the inspectors' review queue (`review.rs`) |
//! | `GET /api/stream` | live registry changes over SSE (`stream.rs`) |
//! | `GET /api/vehicles[/stream\|/near\|/{id}\|/{id}/track]`, `/api/telemetry[/rejected]` | vehicle GPS (`vehicles.rs`) |

mod appeals;
mod appeals_error;
mod cameras;
mod edge;
mod error;
mod events;
#[cfg(test)]
mod hostile_tests;
mod input;
mod open311;
mod policy;
#[cfg(test)]
mod policy_tests;
mod registry_api;
#[cfg(test)]
mod registry_api_tests;
mod review;
mod sensors;
mod session;
mod stream;
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

/// Client-given bytes through the parsers of the HTTP edge, as the fuzz target
/// (`fuzz/fuzz_targets/request_input.rs`) and the corpus test feed them: the first line is a
/// request target (path and query, checked by `edge.rs`), the rest an Open311 form body
/// (every parameter checked by `open311.rs`, every value also tried as a W3C datetime).
/// Returns whether everything was accepted; it must return, never panic.
#[doc(hidden)]
pub fn parse_client_input(data: &[u8]) -> bool {
    let (target, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let target_ok = edge::check_target_bytes(target);
    let body_ok = open311::check_form_body(body);
    target_ok && body_ok
}

/// [`router_with`] with the default edge limits (`[http]` defaults, loopback).
pub fn router(state: ApiState) -> Router {
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 8080));
    router_with(state, &crate::config::HttpSettings::new(loopback))
}

/// The whole HTTP API and the UI, every route behind the policy table (`policy.rs`), with
/// the edge's checks (`edge.rs`: Host allow-list, request target, write rate limits), body
/// limits (per route, `BODY_LIMIT` elsewhere), a timeout, a concurrency cap, panic catching
/// and security headers. Unknown paths answer 404 in each API's error format.
pub fn router_with(state: ApiState, http: &crate::config::HttpSettings) -> Router {
    use axum::http::{HeaderName, HeaderValue, header};
    use tower_http::set_header::SetResponseHeaderLayer;

    let auth = state.session.as_ref().map(|s| s.auth.clone());
    let cameras = state.cameras.clone();
    let tiles_origin = cameras
        .site
        .map_tiles_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization());
    let mut router = events::router(state.events);
    if let Some(registry) = state.registry {
        router = router
            .merge(review::router(review::ReviewState {
                api: registry.clone(),
                evidence_dir: state.cameras.evidence_dir.clone(),
            }))
            .merge(stream::router(stream::LiveHub::start(
                registry.registry.clone(),
            )))
            .merge(registry_api::router(registry));
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
    let edge = edge::Edge::new(http);
    let router = router.merge(cameras_router(cameras));
    router
        .route_layer(axum::middleware::from_fn_with_state(
            edge.clone(),
            edge::limit_writes,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            auth,
            policy::authorize,
        ))
        .fallback(edge::not_found)
        .layer(axum::middleware::from_fn_with_state(
            edge,
            edge::check_request,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(tiles_origin.as_deref()),
        ))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(CONCURRENCY))
}

/// The CSP of every answer: our own origin only, plus the tile server's for images and
/// fetches when `[http] map_tiles_url` names one.
fn content_security_policy(tiles_origin: Option<&str>) -> axum::http::HeaderValue {
    let tiles = tiles_origin.map(|o| format!(" {o}")).unwrap_or_default();
    let policy = format!(
        "default-src 'self'; img-src 'self' data: blob:{tiles}; style-src 'self' 'unsafe-inline'; \
         script-src 'self'; worker-src 'self' blob:; connect-src 'self'{tiles}; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    );
    axum::http::HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        axum::http::HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; \
             script-src 'self'; worker-src 'self' blob:; connect-src 'self'; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
    })
}

/// The UI, `/metrics`, `/health`, the site and the camera API.
#[derive(Clone)]
pub struct CamerasState {
    ingest: Arc<Ingest>,
    metrics: Arc<Metrics>,
    previews: Arc<Previews>,
    site: Arc<SiteInfo>,
    reload_now: Arc<Notify>,
    /// The site folder (its GeoJSON layers feed the UI's map).
    site_dir: Arc<std::path::PathBuf>,
    /// `[detect] evidence_dir`, when the node detects.
    evidence_dir: Option<Arc<std::path::PathBuf>>,
}

#[derive(Debug, Clone, Serialize)]
struct SiteInfo {
    name: String,
    city: Option<String>,
    bounds: BoundsInfo,
    /// `[http] map_tiles_url` (the `{z}/{x}/{y}` placeholders kept), or `null`.
    map_tiles_url: Option<String>,
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
                map_tiles_url: site
                    .http
                    .map_tiles_url
                    .as_ref()
                    .map(|u| u.as_str().replace("%7B", "{").replace("%7D", "}")),
            }),
            reload_now,
            site_dir: Arc::new(site.dir.clone()),
            evidence_dir: site
                .detect
                .as_ref()
                .map(|d| Arc::new(d.evidence_dir.clone())),
        }
    }
}

fn cameras_router(state: CamerasState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/api/city/layers/{name}", get(layer))
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

async fn index() -> axum::response::Response {
    asset_response("index.html")
}

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> axum::response::Response {
    asset_response(&format!("assets/{file}"))
}

fn asset_response(path: &str) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    match crate::web::asset(path) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                // Names are fixed (no content hash): revalidate, the ETag makes it cheap.
                (header::CACHE_CONTROL, "no-cache"),
                (header::ETAG, asset.etag),
            ],
            asset.bytes,
        )
            .into_response(),
        None => ApiError::NotFound(path.to_owned()).into_response(),
    }
}

/// Map layers the UI may ask for, each a `<name>.geojson` of the site folder.
const LAYERS: &[&str] = &["districts", "streets"];
/// Largest layer file served.
const MAX_LAYER_BYTES: u64 = 64 * 1024 * 1024;

async fn layer(
    axum::extract::State(state): axum::extract::State<CamerasState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let name = name.strip_suffix(".geojson").unwrap_or(&name).to_owned();
    if !LAYERS.contains(&name.as_str()) {
        return Err(ApiError::NotFound(format!(
            "{name} (layers: {})",
            LAYERS.join(", ")
        )));
    }
    let path = state.site_dir.join(format!("{name}.geojson"));
    let empty = r#"{"type":"FeatureCollection","features":[]}"#.as_bytes().to_vec();
    let bytes = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.len() <= MAX_LAYER_BYTES => tokio::fs::read(&path).await.unwrap_or(empty),
        // A site without the layer still gets a (blank) layer, never an error on the map.
        _ => empty,
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        bytes,
    )
        .into_response())
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
