//! The inspectors' review queue over HTTP, and what is derived from the verdicts:
//!
//! - `POST /api/review/claim` — the caller's claimed items, topped up to [`HOLD`] (the one on
//!   screen and the next, preloaded), each with its evidence and its camera's recent verdicts
//! - `POST /api/review/release` — give every claim back (stop reviewing, sign out)
//! - `POST /api/review/{number}/verdict` — `{"verdict": "confirm" | "reject" | "reclassify",
//!   "reason": …, "category": …, "note": …}` on an appeal the caller holds
//! - `GET /api/review/stats?days=` — false-positive rates by camera, model version and class
//! - `GET /api/review/export?days=` — the verdicted items as a labelled set (docs/labels.md)
//! - `GET /api/evidence/{id}/{item}` — an evidence image, read from the evidence folder only
//!
//! The actor is the signed-in identity; a verdict on an item the caller does not hold is refused
//! (409), so two inspectors never decide the same item.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::appeals_error::AppealsApiError;
use super::registry_api::RegistryApiState;
use crate::auth::Identity;
use crate::domain::{Category, EvidenceRef, Observation, RejectReason, Source, Status};
use crate::registry::{Action, AppealView, EvidenceView, VerdictCount, VerdictView};

/// Items an inspector holds at once: the one on screen and the next, already loaded.
pub(super) const HOLD: i64 = 2;
/// A claim not renewed (by asking for the next item) for this long goes back to the queue.
pub(super) const CLAIM_TTL: Duration = Duration::from_secs(300);
/// Verdicts of the item's camera shown beside it.
const CAMERA_HISTORY: i64 = 10;
/// Largest evidence file served.
const MAX_EVIDENCE_BYTES: u64 = 32 * 1024 * 1024;
/// Most items in one export.
const MAX_EXPORT: i64 = 50_000;

/// What the review routes read.
#[derive(Clone)]
pub struct ReviewState {
    pub api: RegistryApiState,
    /// `[detect] evidence_dir`: evidence files are served from there and nowhere else.
    pub evidence_dir: Option<Arc<PathBuf>>,
}

pub(super) fn router(state: ReviewState) -> Router {
    Router::new()
        .route("/api/review/claim", post(claim))
        .route("/api/review/release", post(release))
        .route("/api/review/{number}/verdict", post(verdict))
        .route("/api/review/stats", get(stats))
        .route("/api/review/export", get(export))
        .route("/api/evidence/{id}/{item}", get(evidence_file))
        .with_state(state)
}

fn user_name(identity: &Identity) -> Result<&str, AppealsApiError> {
    match identity {
        Identity::User { name, .. } => Ok(name),
        Identity::Key { .. } => Err(AppealsApiError::BadRequest(
            "the review queue is for people who sign in, not keys".into(),
        )),
    }
}

/// One item of the queue.
#[derive(Serialize)]
struct ReviewItem {
    appeal: AppealView,
    evidence: Vec<EvidenceView>,
    /// The camera that raised it, when a camera did.
    camera: Option<String>,
    /// That camera's latest verdicts, newest first.
    camera_history: Vec<VerdictView>,
}

async fn item(state: &ReviewState, appeal: AppealView) -> Result<ReviewItem, AppealsApiError> {
    let evidence = state.api.registry.evidence(&appeal.number).await?;
    let camera = evidence
        .iter()
        .find(|e| e.source == Source::Camera.to_string())
        .map(|e| e.actor.clone());
    let camera_history = match &camera {
        Some(c) => {
            state
                .api
                .registry
                .camera_verdicts(c, CAMERA_HISTORY)
                .await?
        }
        None => Vec::new(),
    };
    Ok(ReviewItem {
        appeal,
        evidence,
        camera,
        camera_history,
    })
}

async fn claim(
    State(state): State<ReviewState>,
    Extension(identity): Extension<Identity>,
) -> Result<Json<Value>, AppealsApiError> {
    let user = user_name(&identity)?;
    let appeals = state
        .api
        .registry
        .claim_for_review(user, HOLD, CLAIM_TTL)
        .await?;
    let mut items = Vec::with_capacity(appeals.len());
    for appeal in appeals {
        items.push(item(&state, appeal).await?);
    }
    let pending = state.api.registry.pending_review_count().await?;
    Ok(Json(json!({
        "items": items,
        "pending": pending,
        "claim_ttl_s": CLAIM_TTL.as_secs(),
    })))
}

async fn release(
    State(state): State<ReviewState>,
    Extension(identity): Extension<Identity>,
) -> Result<Json<Value>, AppealsApiError> {
    let user = user_name(&identity)?;
    let released = state.api.registry.release_claims_of(user).await?;
    Ok(Json(json!({ "released": released })))
}

/// What the inspector decided.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Confirm,
    Reject,
    /// The detection is real but of another category: a new appeal of that category is
    /// registered (confirmed by the same inspector) and this one is rejected as its duplicate.
    Reclassify,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerdictBody {
    verdict: Verdict,
    reason: Option<RejectReason>,
    category: Option<String>,
    note: Option<String>,
}

async fn verdict(
    State(state): State<ReviewState>,
    Extension(identity): Extension<Identity>,
    Path(number): Path<String>,
    body: Result<Json<VerdictBody>, JsonRejection>,
) -> Result<Json<Value>, AppealsApiError> {
    let Json(body) = body.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    let user = user_name(&identity)?;
    let registry = &state.api.registry;
    if !registry.holds_claim(user, &number).await? {
        return Err(AppealsApiError::Conflict(format!(
            "appeal {number} is not claimed by you (the claim expired or another inspector holds it); ask for the next item"
        )));
    }
    let actor = identity.actor();
    let note = body.note.as_deref().filter(|n| !n.trim().is_empty());
    let mut created = None;
    let appeal = match body.verdict {
        Verdict::Confirm => {
            registry
                .apply(&number, &actor, &Action::Confirm, note)
                .await?
        }
        Verdict::Reject => {
            let reason = body
                .reason
                .ok_or_else(|| AppealsApiError::BadRequest("a rejection needs `reason`".into()))?;
            registry
                .apply(&number, &actor, &Action::Reject { reason }, note)
                .await?
        }
        Verdict::Reclassify => {
            let code = body
                .category
                .as_deref()
                .ok_or_else(|| AppealsApiError::BadRequest("reclassify needs `category`".into()))?;
            let new_number = reclassify(&state, &number, code, &actor).await?;
            let why = format!("reclassified as {code}: {new_number}");
            created = Some(new_number);
            registry
                .apply(
                    &number,
                    &actor,
                    &Action::Reject {
                        reason: RejectReason::Duplicate,
                    },
                    Some(note.unwrap_or(&why)),
                )
                .await?
        }
    };
    registry.release_claim(&number).await?;
    Ok(Json(json!({ "appeal": appeal, "created": created })))
}

/// Registers the observation of appeal `number` again under category `code` (operator source,
/// same place and evidence) and confirms the result; its registration number.
async fn reclassify(
    state: &ReviewState,
    number: &str,
    code: &str,
    actor: &str,
) -> Result<String, AppealsApiError> {
    let registry = &state.api.registry;
    let original = registry
        .appeal(number)
        .await?
        .ok_or_else(|| AppealsApiError::NotFound(format!("appeal `{number}` not found")))?;
    if original.category == code {
        return Err(AppealsApiError::BadRequest(format!(
            "appeal {number} is already `{code}`"
        )));
    }
    let category = Category::new(code).map_err(|e| AppealsApiError::BadRequest(e.to_string()))?;
    let evidence: Vec<EvidenceRef> = registry
        .evidence(number)
        .await?
        .into_iter()
        .flat_map(|e| serde_json::from_value::<Vec<EvidenceRef>>(e.items).unwrap_or_default())
        .collect();
    let obs = Observation {
        category,
        source: Source::Operator,
        source_ref: format!("reclassify:{number}:{code}"),
        position: original.position,
        uncertainty_m: None,
        address: original.address.clone(),
        description: original.description.clone(),
        actor: actor.to_owned(),
        observed_at: original.registered_at,
        evidence,
    };
    let plan = state.api.intake.plan(&obs)?;
    let submission = registry.submit(&obs, &plan).await?;
    if let Some(new) = registry.appeal(&submission.number).await?
        && matches!(new.status, Status::Detected | Status::AwaitingConfirmation)
    {
        registry
            .apply(
                &submission.number,
                actor,
                &Action::Confirm,
                Some(&format!("reclassified from {number}")),
            )
            .await?;
    }
    Ok(submission.number)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    /// Verdicts of the last this many days (default 30, at most 3650).
    days: Option<u32>,
}

impl SinceQuery {
    fn since(&self, state: &ReviewState) -> chrono::DateTime<chrono::Utc> {
        state.api.registry.now()
            - chrono::Duration::days(i64::from(self.days.unwrap_or(30).min(3650)))
    }
}

/// Confirmed and rejected counts with the false-positive rate (rejected as false positive
/// or not, every rejection counts: the detector raised something an inspector did not want).
#[derive(Serialize)]
struct Rate {
    key: String,
    confirmed: i64,
    rejected: i64,
    fp_rate: f64,
}

fn rates(counts: &[VerdictCount], key: impl Fn(&VerdictCount) -> String) -> Vec<Rate> {
    let mut by: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for c in counts {
        let entry = by.entry(key(c)).or_default();
        entry.0 += c.confirmed;
        entry.1 += c.rejected;
    }
    let mut rates: Vec<Rate> = by
        .into_iter()
        .map(|(key, (confirmed, rejected))| Rate {
            key,
            confirmed,
            rejected,
            fp_rate: rejected as f64 / (confirmed + rejected).max(1) as f64,
        })
        .collect();
    rates.sort_by(|a, b| b.fp_rate.total_cmp(&a.fp_rate).then(a.key.cmp(&b.key)));
    rates
}

async fn stats(
    State(state): State<ReviewState>,
    query: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Json<Value>, AppealsApiError> {
    let Query(query) = query.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    let since = query.since(&state);
    let counts = state.api.registry.verdict_counts(since).await?;
    Ok(Json(json!({
        "since": since,
        "by_camera": rates(&counts, |c| c.camera.clone()),
        "by_model": rates(&counts, |c| format!("{} {}", c.model, c.model_version)),
        "by_class": rates(&counts, |c| c.class.clone()),
    })))
}

/// The export: one `sitcenter-labels/1` document per verdicted evidence image (a one-frame
/// "clip" of the clean image). A confirmed item carries its box; a rejected one carries none,
/// so it replays as a hard negative.
async fn export(
    State(state): State<ReviewState>,
    query: Result<Query<SinceQuery>, QueryRejection>,
) -> Result<Response, AppealsApiError> {
    let Query(query) = query.map_err(|e| AppealsApiError::BadRequest(e.body_text()))?;
    let since = query.since(&state);
    let items = state
        .api
        .registry
        .verdicted_items(since, MAX_EXPORT)
        .await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let refs: Vec<EvidenceRef> = serde_json::from_value(item.items).unwrap_or_default();
        let data = refs.iter().find_map(|r| r.data.clone()).unwrap_or_default();
        // The clean copy is the second image (events/observation.rs); else the first.
        let image = refs
            .iter()
            .filter(|r| r.kind == "image")
            .filter_map(|r| r.uri.clone())
            .nth(1)
            .or_else(|| refs.iter().find_map(|r| r.uri.clone()));
        let class = data["class"].as_str().unwrap_or_default().to_owned();
        let boxes = match (item.verdict.as_str(), data["bbox"].as_array()) {
            ("confirmed", Some(b)) => json!([{ "class": class, "box": b }]),
            _ => json!([]),
        };
        let (width, height) = match image.as_deref().and_then(|u| local_file(&state, u)) {
            Some(path) => tokio::task::spawn_blocking(move || {
                image::ImageReader::open(path)
                    .ok()
                    .and_then(|r| r.into_dimensions().ok())
            })
            .await
            .ok()
            .flatten()
            .unwrap_or((0, 0)),
            None => (0, 0),
        };
        out.push(json!({
            "number": item.number,
            "category": item.category,
            "camera": item.camera,
            "verdict": item.verdict,
            "reason": item.reason,
            "at": item.at,
            "model": data["model"],
            "score": data["score"],
            "labels": {
                "format": "sitcenter-labels/1",
                "video": image.as_deref().map(|u| u.trim_start_matches("file://")),
                "width": width,
                "height": height,
                "fps": 1,
                "classes": if class.is_empty() { json!([]) } else { json!([class]) },
                "generator": format!("sitcenter review export, verdict {}", item.verdict),
                "frames": [{ "frame": 0, "pts_ms": 0, "boxes": boxes }],
            },
        }));
    }
    let body = json!({ "format": "sitcenter-review-export/1", "since": since, "items": out });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"review-export.json\"",
            ),
        ],
        body.to_string(),
    )
        .into_response())
}

/// The path of a `file://` URI when it lies inside the evidence folder.
fn local_file(state: &ReviewState, uri: &str) -> Option<PathBuf> {
    let dir = state.evidence_dir.as_ref()?.canonicalize().ok()?;
    let path = PathBuf::from(uri.strip_prefix("file://")?)
        .canonicalize()
        .ok()?;
    path.starts_with(&dir).then_some(path)
}

async fn evidence_file(
    State(state): State<ReviewState>,
    Path((id, item)): Path<(i64, i32)>,
) -> Result<Response, AppealsApiError> {
    let missing = || AppealsApiError::NotFound(format!("no evidence image {id}/{item}"));
    let uri = state
        .api
        .registry
        .evidence_uri(id, item)
        .await?
        .ok_or_else(missing)?;
    let path = local_file(&state, &uri).ok_or_else(missing)?;
    let meta = tokio::fs::metadata(&path).await.map_err(|_| missing())?;
    if meta.len() > MAX_EVIDENCE_BYTES {
        return Err(AppealsApiError::Unprocessable(format!(
            "evidence {id}/{item} is larger than {MAX_EVIDENCE_BYTES} bytes"
        )));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|_| missing())?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}
