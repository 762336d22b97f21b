//! `/api/sensors`: the sensor stage's connection, counters, active alarms, unknown sensors
//! and recent rejections, and one sensor's registry entry and stored state.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/sensors` | broker connection, topics, known/unknown counts, messages by outcome, rejections by reason |
//! | `GET /api/sensors/alarms` | sensors with an active alarm (at most 1,000) |
//! | `GET /api/sensors/unknown` | sensors heard from but not in the sensor registry |
//! | `GET /api/sensors/rejected` | recent rejected messages: sensor, topic, reason, detail |
//! | `GET /api/sensors/{id}` | one sensor: type, manhole, place, owner, state, alarms |

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::sensors::SensorsHandle;

pub fn router(handle: SensorsHandle) -> Router {
    Router::new()
        .route("/api/sensors", get(summary))
        .route("/api/sensors/alarms", get(alarms))
        .route("/api/sensors/unknown", get(unknown))
        .route("/api/sensors/rejected", get(rejected))
        .route("/api/sensors/{id}", get(sensor))
        .with_state(handle)
}

async fn summary(State(h): State<SensorsHandle>) -> Response {
    axum::Json(h.summary()).into_response()
}

async fn unknown(State(h): State<SensorsHandle>) -> Response {
    axum::Json(h.unknown()).into_response()
}

async fn rejected(State(h): State<SensorsHandle>) -> Response {
    axum::Json(h.rejected()).into_response()
}

fn unavailable(error: &crate::sensors::SensorsError) -> Response {
    tracing::error!(%error, "sensor API: registry database unavailable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the registry database is unavailable",
    )
        .into_response()
}

async fn alarms(State(h): State<SensorsHandle>) -> Response {
    match h.alarms().await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => unavailable(&e),
    }
}

async fn sensor(State(h): State<SensorsHandle>, Path(id): Path<String>) -> Response {
    match h.sensor(&id).await {
        Ok(Some(view)) => axum::Json(view).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("no sensor `{id}` in the sensor registry"),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}
