//! `/api/vehicles` and `/api/telemetry`: the dispatcher's map data from the telemetry stage.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/vehicles` | every vehicle: type, depot, route, state, last position (`?type=`, `?state=` filter) |
//! | `GET /api/vehicles/stream` | Server-Sent Events: a `snapshot` of all, then one `vehicle` event per position or state change |
//! | `GET /api/vehicles/near?lat=&lon=&radius_m=` | vehicles within a radius (R-tree), nearest first |
//! | `GET /api/vehicles/{id}` | one vehicle |
//! | `GET /api/vehicles/{id}/track?date=YYYY-MM-DD` | its stored track for a UTC day (or `from`/`to` RFC 3339), in time order |
//! | `GET /api/routes` | collection routes: window, point count, vehicles |
//! | `GET /api/routes/{id}/day?date=YYYY-MM-DD` | each point of the route that (local) day: served / late / missed / pending, when and by whom |
//! | `GET /api/telemetry` | servers, vehicles by state, fixes by protocol, rejections by protocol and reason |
//! | `GET /api/telemetry/rejected` | recent refused packets: protocol, device, peer, reason, detail |

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::domain::Position;
use crate::telemetry::TelemetryHandle;

/// Points per track answer at most (a day of 1-second fixes is 86,400).
const MAX_TRACK_POINTS: i64 = 100_000;
/// `near` radius at most.
const MAX_RADIUS_M: f64 = 50_000.0;

pub fn router(handle: TelemetryHandle) -> Router {
    Router::new()
        .route("/api/vehicles", get(list))
        .route("/api/vehicles/stream", get(live_stream))
        .route("/api/vehicles/near", get(near))
        .route("/api/vehicles/{id}", get(one))
        .route("/api/vehicles/{id}/track", get(track))
        .route("/api/routes", get(routes))
        .route("/api/routes/{id}/day", get(route_day))
        .route("/api/telemetry", get(summary))
        .route("/api/telemetry/rejected", get(rejected))
        .with_state(handle)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<String>,
}

async fn list(State(h): State<TelemetryHandle>, Query(q): Query<ListQuery>) -> Response {
    let list: Vec<_> = h
        .live()
        .into_iter()
        .filter(|v| q.kind.as_ref().is_none_or(|k| &v.kind == k))
        .filter(|v| q.state.as_ref().is_none_or(|s| v.state.as_str() == s))
        .collect();
    axum::Json(list).into_response()
}

async fn one(State(h): State<TelemetryHandle>, Path(id): Path<String>) -> Response {
    match h.vehicle(&id) {
        Some(v) => axum::Json(v).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no vehicle `{id}`")).into_response(),
    }
}

#[derive(Deserialize)]
struct NearQuery {
    lat: f64,
    lon: f64,
    radius_m: Option<f64>,
}

async fn near(State(h): State<TelemetryHandle>, Query(q): Query<NearQuery>) -> Response {
    let at = Position::new(q.lat, q.lon);
    let radius = q.radius_m.unwrap_or(1000.0);
    if !(at.is_valid() && radius.is_finite() && (0.0..=MAX_RADIUS_M).contains(&radius)) {
        return (
            StatusCode::BAD_REQUEST,
            format!("lat/lon must be WGS84 degrees and radius_m within 0..={MAX_RADIUS_M}"),
        )
            .into_response();
    }
    let found: Vec<serde_json::Value> = h
        .near(at, radius)
        .into_iter()
        .map(|(v, d)| serde_json::json!({ "vehicle": v, "distance_m": d }))
        .collect();
    axum::Json(found).into_response()
}

#[derive(Deserialize)]
struct TrackQuery {
    date: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn time_range(q: &TrackQuery) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| format!("`{s}` is not an RFC 3339 time"))
    };
    match (&q.date, &q.from, &q.to) {
        (Some(day), None, None) => {
            let d = NaiveDate::parse_from_str(day, "%Y-%m-%d")
                .map_err(|_| format!("date `{day}` is not YYYY-MM-DD"))?;
            let start = d
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .ok_or("bad date")?;
            Ok((start, start + chrono::Duration::days(1)))
        }
        (None, Some(from), Some(to)) => {
            let (from, to) = (parse(from)?, parse(to)?);
            if to <= from || to - from > chrono::Duration::days(7) {
                return Err("`to` must be after `from`, at most 7 days later".into());
            }
            Ok((from, to))
        }
        (None, None, None) => {
            let start = Utc::now()
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc())
                .ok_or("bad date")?;
            Ok((start, start + chrono::Duration::days(1)))
        }
        _ => Err("give `date`, or `from` and `to`".into()),
    }
}

async fn track(
    State(h): State<TelemetryHandle>,
    Path(id): Path<String>,
    Query(q): Query<TrackQuery>,
) -> Response {
    if h.vehicle(&id).is_none() {
        return (StatusCode::NOT_FOUND, format!("no vehicle `{id}`")).into_response();
    }
    let (from, to) = match time_range(&q) {
        Ok(range) => range,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    match h.track(&id, from, to, MAX_TRACK_POINTS).await {
        Ok(points) => axum::Json(serde_json::json!({
            "vehicle": id, "from": from, "to": to,
            "truncated": points.len() as i64 == MAX_TRACK_POINTS,
            "points": points,
        }))
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "vehicle track: track store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the track store is unavailable",
            )
                .into_response()
        }
    }
}

async fn routes(State(h): State<TelemetryHandle>) -> Response {
    axum::Json(h.routes()).into_response()
}

#[derive(Deserialize)]
struct DayQuery {
    date: Option<String>,
}

async fn route_day(
    State(h): State<TelemetryHandle>,
    Path(id): Path<String>,
    Query(q): Query<DayQuery>,
) -> Response {
    let day = match &q.date {
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(day) => day,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("date `{d}` is not YYYY-MM-DD"),
                )
                    .into_response();
            }
        },
        None => Utc::now().date_naive(),
    };
    match h.route_day(&id, day).await {
        Ok(Some(points)) => axum::Json(serde_json::json!({
            "route": id, "date": day.to_string(), "points": points,
        }))
        .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no route `{id}`")).into_response(),
        Err(error) => {
            tracing::error!(%error, "route day: track store unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the track store is unavailable",
            )
                .into_response()
        }
    }
}

async fn summary(State(h): State<TelemetryHandle>) -> Response {
    axum::Json(h.summary()).into_response()
}

async fn rejected(State(h): State<TelemetryHandle>) -> Response {
    axum::Json(h.rejected()).into_response()
}

fn json_event(name: &str, value: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(value)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// A snapshot first, then changes; a subscriber that falls behind gets a fresh snapshot
/// instead of the changes it missed (memory stays bounded by the broadcast buffer).
async fn live_stream(
    State(h): State<TelemetryHandle>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = h.subscribe();
    let first = json_event("snapshot", &h.live());
    let changes = stream::unfold((h, rx), |(h, mut rx)| async move {
        let event = match rx.recv().await {
            Ok(v) => json_event("vehicle", &v),
            Err(RecvError::Lagged(_)) => json_event("snapshot", &h.live()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (h, rx)))
    });
    Sse::new(stream::once(async move { Ok(first) }).chain(changes))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
