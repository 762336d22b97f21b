//! The appeals JSON API for the UI, under `/api/v1`:
//!
//! - `GET  /api/v1/openapi.json` — this API's OpenAPI 3.0 document
//! - `GET  /api/v1/services` — categories with SLA stages and dedup rules
//! - `GET  /api/v1/appeals?status=&category=&source=&body_id=&district=&registered_from=&registered_to=&open_only=&overdue_only=&text=&limit=&offset=`
//! - `POST /api/v1/appeals` — an operator (or any source) files an observation; it joins an open
//!   appeal or registers a new one
//! - `GET  /api/v1/appeals/{number}`, `…/{number}/timeline`, `…/{number}/evidence`
//! - `POST /api/v1/appeals/{number}/{confirm|reject|assign|start|stage|resolve|close|reopen|comment}`
//!   with `{"note": "…", …}`: one route per verb, each with its own row in the policy table.
//!
//! The actor of every write is the signed-in identity (`user:<name>` or `key:<name>`), never a
//! field of the body.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::appeals_error::AppealsApiError;
use super::input::{self, InputError};
use super::registry_api::RegistryApiState;
use crate::auth::{Identity, Role};
use crate::domain::{Category, EvidenceRef, Observation, Position, RejectReason, Source};
use crate::registry::{Action, AppealFilter, AppealView, Confirmer, EventView, EvidenceView};

/// The OpenAPI document served at `/api/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    let mut response = OPENAPI_JSON.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn services(State(state): State<RegistryApiState>) -> Json<Value> {
    let list: Vec<Value> = state
        .intake
        .config()
        .categories
        .iter()
        .map(|c| {
            json!({
                "code": c.code.as_str(),
                "name": c.name,
                "group": c.group,
                "body_kind": c.body_kind,
                "asset": c.asset,
                "stages": c.stages,
                "dedup_radius_m": c.dedup.radius_m,
                "dedup_window_minutes": c.dedup.window.as_secs() / 60,
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn search(
    State(state): State<RegistryApiState>,
    filter: Result<Query<AppealFilter>, QueryRejection>,
) -> Result<Json<Vec<AppealView>>, AppealsApiError> {
    let Query(filter) = filter.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    check_filter(&filter)?;
    Ok(Json(state.registry.search(&filter).await?))
}

/// A search within bounds: a page of at most [`crate::registry::MAX_PAGE`], bounded text,
/// dates the database can hold.
fn check_filter(f: &AppealFilter) -> Result<(), InputError> {
    input::page(f.limit, f.offset, crate::registry::MAX_PAGE)?;
    input::opt_text("text", f.text.as_deref(), input::MAX_SEARCH_TEXT)?;
    input::opt_text("category", f.category.as_deref(), input::MAX_ID)?;
    input::opt_text("body_id", f.body_id.as_deref(), input::MAX_ID)?;
    input::opt_text("district", f.district.as_deref(), input::MAX_NAME)?;
    if let Some(t) = f.registered_from {
        input::query_date("registered_from", t)?;
    }
    if let Some(t) = f.registered_to {
        input::query_date("registered_to", t)?;
    }
    Ok(())
}

async fn one(
    State(state): State<RegistryApiState>,
    Path(number): Path<String>,
) -> Result<Json<AppealView>, AppealsApiError> {
    state
        .registry
        .appeal(&number)
        .await?
        .map(Json)
        .ok_or_else(|| AppealsApiError::NotFound(format!("appeal `{number}` not found")))
}

/// `?limit=&offset=` of the per-appeal lists (timeline, evidence).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Per-appeal lists: 100 entries by default, at most [`crate::registry::MAX_PAGE`].
const DEFAULT_ITEMS: i64 = 100;

impl Page {
    fn bounds(&self) -> Result<(i64, i64), InputError> {
        input::page(self.limit, self.offset, crate::registry::MAX_PAGE)?;
        Ok((
            self.limit.unwrap_or(DEFAULT_ITEMS),
            self.offset.unwrap_or(0),
        ))
    }
}

async fn timeline(
    State(state): State<RegistryApiState>,
    Path(number): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<EventView>>, AppealsApiError> {
    let Query(page) = page.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    let (limit, offset) = page.bounds()?;
    Ok(Json(
        state
            .registry
            .timeline_page(&number, Some(limit), offset)
            .await?,
    ))
}

/// Roles that talk to the reporter (confirmation of closure, follow-up questions) and so see
/// a citizen's name and contact; everyone else gets them hidden.
const SEE_CONTACTS: &[Role] = &[Role::Inspector, Role::Supervisor];

async fn evidence(
    State(state): State<RegistryApiState>,
    Extension(identity): Extension<Identity>,
    Path(number): Path<String>,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<EvidenceView>>, AppealsApiError> {
    let Query(page) = page.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    let (limit, offset) = page.bounds()?;
    let mut all = state
        .registry
        .evidence_page(&number, Some(limit), offset)
        .await?;
    if !SEE_CONTACTS.iter().any(|r| identity.has_role(*r)) {
        for view in &mut all {
            hide_contacts(&mut view.items);
        }
    }
    Ok(Json(all))
}

/// Blanks the reporter's name and contact in `citizen_report` items (Open311 `email`, `phone`,
/// `first_name`, `last_name`, `account_id`, `device_id` end up there).
fn hide_contacts(items: &mut Value) {
    let Some(items) = items.as_array_mut() else {
        return;
    };
    for item in items {
        if item.get("kind").and_then(Value::as_str) != Some("citizen_report") {
            continue;
        }
        if let Some(data) = item.get_mut("data").and_then(Value::as_object_mut) {
            for field in ["first_name", "last_name", "contact"] {
                if data.get(field).is_some_and(|v| !v.is_null()) {
                    data.insert(field.to_owned(), Value::String("(hidden)".to_owned()));
                }
            }
        }
    }
}

/// `POST /api/v1/appeals` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewObservation {
    pub category: String,
    #[serde(default = "operator")]
    pub source: Source,
    /// Idempotency key; generated when absent (then a retried POST records its evidence twice).
    pub source_ref: Option<String>,
    pub lat: f64,
    pub lon: f64,
    pub uncertainty_m: Option<f64>,
    pub address: Option<String>,
    pub description: Option<String>,
    pub observed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
}

const fn operator() -> Source {
    Source::Operator
}

async fn file(
    State(state): State<RegistryApiState>,
    Extension(identity): Extension<Identity>,
    body: Result<Json<NewObservation>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), AppealsApiError> {
    let Json(n) = body.map_err(|e| AppealsApiError::from_json(&e))?;
    let now = state.registry.now();
    check_observation(&n, now)?;
    let position = Position::new(n.lat, n.lon);
    if !position.is_valid() {
        return Err(AppealsApiError::BadRequest(format!(
            "`lat`/`lon` {},{} is not a WGS84 position",
            n.lat, n.lon
        )));
    }
    if state.intake.city().district_at(position).is_none() {
        return Err(AppealsApiError::BadRequest(format!(
            "`lat`/`lon` {},{} is outside the city (no district there)",
            n.lat, n.lon
        )));
    }
    let actor = identity.actor();
    let category =
        Category::new(&n.category).map_err(|e| AppealsApiError::BadRequest(e.to_string()))?;
    let source_ref = n
        .source_ref
        .unwrap_or_else(|| format!("api:{actor}:{:016x}", rand::random::<u64>()));
    let obs = Observation {
        category,
        source: n.source,
        source_ref,
        position,
        uncertainty_m: n.uncertainty_m,
        address: n.address,
        description: n.description,
        actor,
        observed_at: n.observed_at.unwrap_or(now),
        evidence: n.evidence,
    };
    let plan = state.intake.plan(&obs)?;
    let submission = state.registry.submit(&obs, &plan).await?;
    let status = match submission.outcome {
        crate::registry::SubmitOutcome::Created => StatusCode::CREATED,
        _ => StatusCode::OK,
    };
    Ok((
        status,
        Json(
            json!({ "number": submission.number, "outcome": submission.outcome, "routing": plan.routing }),
        ),
    ))
}

/// Every field of a filed observation within its bounds (docs/api.md lists them).
fn check_observation(n: &NewObservation, now: DateTime<Utc>) -> Result<(), InputError> {
    input::text("category", &n.category, input::MAX_ID)?;
    input::opt_text("source_ref", n.source_ref.as_deref(), input::MAX_ID)?;
    input::opt_text("address", n.address.as_deref(), input::MAX_ADDRESS)?;
    input::opt_text(
        "description",
        n.description.as_deref(),
        input::MAX_DESCRIPTION,
    )?;
    if let Some(u) = n.uncertainty_m {
        input::uncertainty("uncertainty_m", u)?;
    }
    if let Some(t) = n.observed_at {
        input::observed_at("observed_at", t, now)?;
    }
    if n.evidence.len() > input::MAX_EVIDENCE_ITEMS {
        return Err(InputError::Invalid {
            field: "evidence".into(),
            message: format!(
                "has {} entries; at most {}",
                n.evidence.len(),
                input::MAX_EVIDENCE_ITEMS
            ),
        });
    }
    for (i, e) in n.evidence.iter().enumerate() {
        input::text(&format!("evidence[{i}].kind"), &e.kind, input::MAX_ID)?;
        input::opt_text(
            &format!("evidence[{i}].uri"),
            e.uri.as_deref(),
            input::MAX_URL,
        )?;
        if let Some(data) = &e.data {
            input::json(
                &format!("evidence[{i}].data"),
                data,
                input::MAX_EVIDENCE_DATA_BYTES,
            )?;
        }
    }
    Ok(())
}

/// Every field of a lifecycle action within its bounds.
fn check_action(b: &ActionBody) -> Result<(), InputError> {
    input::opt_text("note", b.note.as_deref(), input::MAX_NOTE)?;
    input::opt_text("body_id", b.body_id.as_deref(), input::MAX_ID)?;
    input::opt_text("body_name", b.body_name.as_deref(), input::MAX_NAME)?;
    input::opt_text("stage", b.stage.as_deref(), input::MAX_ID)?;
    Ok(())
}

/// Body of the lifecycle verbs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub note: Option<String>,
    pub reason: Option<RejectReason>,
    pub body_id: Option<String>,
    pub body_name: Option<String>,
    pub stage: Option<String>,
    pub confirmed_by: Option<Confirmer>,
}

fn action(verb: &str, b: &ActionBody) -> Result<Action, AppealsApiError> {
    let need = |field: &str| AppealsApiError::BadRequest(format!("`{verb}` needs `{field}`"));
    Ok(match verb {
        "confirm" => Action::Confirm,
        "reject" => Action::Reject {
            reason: b.reason.ok_or_else(|| need("reason"))?,
        },
        "assign" => Action::Assign {
            body_id: b.body_id.clone().ok_or_else(|| need("body_id"))?,
            body_name: b.body_name.clone(),
        },
        "start" => Action::Start,
        "stage" => Action::ReachStage {
            stage: b.stage.clone().ok_or_else(|| need("stage"))?,
        },
        "resolve" => Action::Resolve,
        "close" => Action::Close {
            confirmed_by: b.confirmed_by.ok_or_else(|| need("confirmed_by"))?,
        },
        "reopen" => Action::Reopen,
        "comment" => Action::Comment,
        other => {
            return Err(AppealsApiError::NotFound(format!(
                "unknown action `{other}`; use confirm, reject, assign, start, stage, resolve, close, reopen or comment"
            )));
        }
    })
}

async fn act(
    state: RegistryApiState,
    number: String,
    verb: &'static str,
    identity: Identity,
    body: Result<Json<ActionBody>, JsonRejection>,
) -> Result<Json<AppealView>, AppealsApiError> {
    let Json(b) = body.map_err(|e| AppealsApiError::from_json(&e))?;
    check_action(&b)?;
    let action = action(verb, &b)?;
    if let Action::Assign { body_id, .. } = &action
        && state.intake.city().body(body_id).is_none()
    {
        return Err(AppealsApiError::Unprocessable(format!(
            "body `{body_id}` is not in the city's bodies layer"
        )));
    }
    let mut action = action;
    if let Action::Assign {
        body_id,
        body_name: name @ None,
    } = &mut action
    {
        *name = state.intake.city().body(body_id).map(|b| b.name.clone());
    }
    Ok(Json(
        state
            .registry
            .apply(&number, &identity.actor(), &action, b.note.as_deref())
            .await?,
    ))
}

/// Largest `POST /api/v1/appeals` body (fields and evidence within their own limits fit).
pub const OBSERVATION_BODY_LIMIT: usize = 256 * 1024;
/// Largest lifecycle-action body.
pub const ACTION_BODY_LIMIT: usize = 16 * 1024;

/// The lifecycle verbs and their routes (each with its own policy row).
const VERBS: &[(&str, &str)] = &[
    ("confirm", "/api/v1/appeals/{number}/confirm"),
    ("reject", "/api/v1/appeals/{number}/reject"),
    ("assign", "/api/v1/appeals/{number}/assign"),
    ("start", "/api/v1/appeals/{number}/start"),
    ("stage", "/api/v1/appeals/{number}/stage"),
    ("resolve", "/api/v1/appeals/{number}/resolve"),
    ("close", "/api/v1/appeals/{number}/close"),
    ("reopen", "/api/v1/appeals/{number}/reopen"),
    ("comment", "/api/v1/appeals/{number}/comment"),
];

/// The appeals API routes under `/api/v1`.
pub(super) fn router(state: RegistryApiState) -> Router {
    let appeals = get(search)
        .post(file)
        .layer(DefaultBodyLimit::max(OBSERVATION_BODY_LIMIT));
    let mut router = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/services", get(services))
        .route("/api/v1/appeals", appeals)
        .route("/api/v1/appeals/{number}", get(one))
        .route("/api/v1/appeals/{number}/timeline", get(timeline))
        .route("/api/v1/appeals/{number}/evidence", get(evidence));
    for &(verb, path) in VERBS {
        router = router.route(
            path,
            post(
                move |State(state): State<RegistryApiState>,
                      Path(number): Path<String>,
                      Extension(identity): Extension<Identity>,
                      body: Result<Json<ActionBody>, JsonRejection>| {
                    act(state, number, verb, identity, body)
                },
            )
            .layer(DefaultBodyLimit::max(ACTION_BODY_LIMIT)),
        );
    }
    router.with_state(state)
}
