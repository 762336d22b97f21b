//! The appeal registry in PostgreSQL.
//!
//! Owns the schema (versioned migrations in `migrations/`, applied at start-up by refinery under
//! an advisory lock so several nodes can start at once), registration numbers
//! (`109-<year>-<seq>`, unique and gap-free per year), the append-only event log with the state
//! projection derived from it by triggers, evidence by reference, deduplication and SLA
//! escalation. Consumes [`Observation`]s planned by `incidents::Intake` and actions from the
//! APIs; produces [`AppealView`]s, timelines and [`Escalation`]s.
//!
//! One way in: [`Registry::connect`]. The pool's connections run as the `sitcenter_service`
//! role, which can read and append but never UPDATE history, DELETE or TRUNCATE; triggers refuse
//! those for every role. Deduplication is decided inside one transaction under a per-category
//! advisory lock, so concurrent arrivals of one problem yield exactly one appeal on any number of
//! nodes.

mod clock;
mod connect;
mod error;
mod escalation;
mod lifecycle;
mod read;
mod review;
mod store;
mod tx;
mod verify;
mod views;

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde_json::json;

pub use clock::{Clock, ManualClock, SystemClock};
pub use connect::MigrateReport;
pub use error::RegistryError;
pub use lifecycle::{Action, Confirmer};
pub use review::{ChangeView, VerdictCount, VerdictView, VerdictedItem};
pub use tx::{RegistryTx, TxFuture};
pub use verify::VerifyReport;
pub use views::{
    AppealFilter, AppealView, DeadlineView, Escalation, EventView, EvidenceView, Submission,
    SubmitOutcome,
};

use crate::domain::{Observation, Position, Status};
use crate::incidents::Plan;
use crate::obs::{CategorySource, RegistryMetrics, StatusLabel};
use store::{add_evidence, insert_event, lock_appeal, register};

mod embedded {
    refinery::embed_migrations!("src/registry/migrations");
}

/// The role the pool's connections use (created by the first migration).
pub const SERVICE_ROLE: &str = "sitcenter_service";
/// Registration numbers: `109-<year>-<6-digit sequence>`.
pub const NUMBER_PREFIX: &str = "109";
/// Pool size: concurrent registry transactions per node.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// Attempts for a transaction that hit a serialization conflict.
const MAX_ATTEMPTS: u32 = 8;
/// Lock id (two-key space) for migrations; dedup uses (hashtext('sitcenter.dedup'), category).
const MIGRATION_LOCK: i64 = 0x5174_1090;
/// Search results per page, at most.
pub const MAX_PAGE: i64 = 500;

/// Format a registration number.
pub fn registration_number(year: i32, seq: i32) -> String {
    format!("{NUMBER_PREFIX}-{year}-{seq:06}")
}

/// The registry handle: cheap to clone.
#[derive(Clone, Debug)]
pub struct Registry {
    pool: Pool,
    clock: Arc<dyn Clock>,
    metrics: Arc<RegistryMetrics>,
}

impl Registry {
    /// The service role's connection pool, shared with the sign-in store (`auth`), whose
    /// tables live in the same database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn metrics(&self) -> &RegistryMetrics {
        &self.metrics
    }

    /// Counts into `metrics` (the node's, [`crate::obs::Metrics::registry`]) from now on;
    /// without it the registry counts into handles nobody exposes (tests, tools).
    #[must_use]
    pub fn with_metrics(mut self, metrics: RegistryMetrics) -> Self {
        self.metrics = Arc::new(metrics);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Record an observation: join an open appeal of the same category within the plan's
    /// dedup radius and window, or register a new one. Idempotent on `source_ref`.
    pub async fn submit(
        &self,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Submission, RegistryError> {
        let started = Instant::now();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match self.submit_once(obs, plan).await {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(source_ref = %obs.source_ref, attempt, error = %e, "registry submit retried");
                }
                other => break other,
            }
        };
        self.metrics
            .submit_seconds
            .observe(started.elapsed().as_secs_f64());
        let submission = result?;
        self.record_submission(obs, &submission);
        Ok(submission)
    }

    /// Counts and logs a committed submission.
    fn record_submission(&self, obs: &Observation, submission: &Submission) {
        let labels = CategorySource {
            category: obs.category.to_string(),
            source: obs.source.to_string(),
        };
        match submission.outcome {
            SubmitOutcome::Created => {
                self.metrics.registered.get_or_create(&labels).inc();
                tracing::info!(number = %submission.number, category = %obs.category, source = %obs.source, "appeal registered");
            }
            SubmitOutcome::Joined => {
                self.metrics.joined.get_or_create(&labels).inc();
                tracing::debug!(number = %submission.number, source_ref = %obs.source_ref, "observation joined an open appeal");
            }
            SubmitOutcome::Repeated => {
                self.metrics.repeated.inc();
            }
        }
    }

    async fn submit_once(
        &self,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Submission, RegistryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let submission = submit_in(&tx, obs, plan, self.clock.as_ref()).await?;
        tx.commit().await?;
        Ok(submission)
    }

    async fn appeal_id(&self, number: &str) -> Result<i64, RegistryError> {
        let client = self.pool.get().await?;
        client
            .query_opt("SELECT id FROM appeals WHERE reg_number = $1", &[&number])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .ok_or_else(|| RegistryError::NotFound(number.to_owned()))
    }

    /// Apply a lifecycle action by `actor`, with an optional free-text `note` (why).
    pub async fn apply(
        &self,
        number: &str,
        actor: &str,
        action: &Action,
        note: Option<&str>,
    ) -> Result<AppealView, RegistryError> {
        if actor.trim().is_empty() {
            return Err(RegistryError::Invalid {
                number: number.to_owned(),
                message: "every change needs an actor".into(),
            });
        }
        let id = self.appeal_id(number).await?;
        let (kind, from, to) = action.rule();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (status, seq) = lock_appeal(&tx, id).await?;
        if !from.is_empty() && !from.contains(&status) {
            return Err(RegistryError::InvalidTransition {
                number: number.to_owned(),
                action: kind,
                status: status.to_string(),
            });
        }
        let mut data = json!({});
        let mut reason = note.map(str::to_owned);
        match action {
            Action::Reject { reason: code } => {
                data["note"] = json!(note);
                reason = Some(code.to_string());
            }
            Action::Assign { body_id, body_name } => {
                data = json!({ "body_id": body_id, "body_name": body_name });
            }
            Action::ReachStage { stage } => {
                let known = tx
                    .query_opt(
                        "SELECT 1 FROM appeal_deadlines WHERE appeal_id = $1 AND stage = $2",
                        &[&id, stage],
                    )
                    .await?;
                if known.is_none() {
                    return Err(RegistryError::Invalid {
                        number: number.to_owned(),
                        message: format!("`{stage}` is not an SLA stage of this appeal"),
                    });
                }
                data = json!({ "stage": stage });
            }
            Action::Close { confirmed_by } => {
                data = json!({ "confirmed_by": confirmed_by.as_str() });
            }
            Action::Comment if note.is_none_or(|n| n.trim().is_empty()) => {
                return Err(RegistryError::Invalid {
                    number: number.to_owned(),
                    message: "a comment needs text".into(),
                });
            }
            _ => {}
        }
        let now = self.clock.now();
        let inserted = insert_event(
            &tx,
            id,
            seq + 1,
            now,
            actor,
            kind,
            to.map(|_| status),
            to,
            reason.as_deref(),
            &data,
        )
        .await;
        match inserted {
            Err(RegistryError::Db(e))
                if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                return Err(RegistryError::Invalid {
                    number: number.to_owned(),
                    message: format!("{kind} was already recorded"),
                });
            }
            other => other?,
        }
        tx.commit().await?;
        if let Some(to) = to {
            self.metrics
                .transitions
                .get_or_create(&StatusLabel {
                    status: to.to_string(),
                })
                .inc();
        }
        tracing::info!(%number, actor, action = kind, "appeal changed");
        self.appeal(number)
            .await?
            .ok_or_else(|| RegistryError::NotFound(number.to_owned()))
    }
}

/// Dedup-or-register inside `tx` (the caller commits): shared by [`Registry::submit`] and
/// [`RegistryTx::submit`].
pub(crate) async fn submit_in(
    tx: &deadpool_postgres::Transaction<'_>,
    obs: &Observation,
    plan: &Plan,
    clock: &dyn Clock,
) -> Result<Submission, RegistryError> {
    let category = obs.category.as_str();
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('sitcenter.dedup'), hashtext($1))",
        &[&category],
    )
    .await?;
    if let Some(row) = tx
        .query_opt(
            "SELECT a.id, a.reg_number FROM evidence e JOIN appeals a ON a.id = e.appeal_id \
             WHERE e.source_ref = $1",
            &[&obs.source_ref],
        )
        .await?
    {
        return Ok(Submission {
            outcome: SubmitOutcome::Repeated,
            appeal_id: row.try_get(0)?,
            number: row.try_get(1)?,
        });
    }
    let rule = plan.category.dedup;
    let window = chrono::Duration::from_std(rule.window).unwrap_or(chrono::Duration::MAX);
    // Checked: a window or an `observed_at` near the representable limits must not panic.
    let since = obs
        .observed_at
        .checked_sub_signed(window)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let dlat = rule.radius_m / 111_000.0 * 1.01;
    let dlon = dlat / obs.position.lat.to_radians().cos().max(0.01);
    let candidates = tx
        .query(
            "SELECT a.id, a.reg_number, a.lat, a.lon FROM appeals a \
             JOIN appeal_state s ON s.appeal_id = a.id \
             WHERE a.category = $1 AND s.status NOT IN ('rejected', 'closed') \
               AND s.last_evidence_at >= $2 \
               AND a.lat BETWEEN $3 AND $4 AND a.lon BETWEEN $5 AND $6",
            &[
                &category,
                &since,
                &(obs.position.lat - dlat),
                &(obs.position.lat + dlat),
                &(obs.position.lon - dlon),
                &(obs.position.lon + dlon),
            ],
        )
        .await?;
    let mut nearest: Option<(f64, i64, String)> = None;
    for row in &candidates {
        let at = Position::new(row.try_get(2)?, row.try_get(3)?);
        let d = at.distance_m(&obs.position);
        if d <= rule.radius_m && nearest.as_ref().is_none_or(|n| d < n.0) {
            nearest = Some((d, row.try_get(0)?, row.try_get(1)?));
        }
    }
    let now = clock.now();
    // The candidate was open when it was read, but a close or a rejection may have committed
    // since (it holds the appeal's lock, not the category's): re-check under the appeal's lock
    // and open a new appeal rather than join a finished one.
    let mut joinable = None;
    if let Some((distance_m, appeal_id, number)) = nearest {
        let (status, seq) = lock_appeal(tx, appeal_id).await?;
        if !matches!(status, Status::Rejected | Status::Closed) {
            joinable = Some((distance_m, appeal_id, number, seq));
        }
    }
    let submission = match joinable {
        Some((distance_m, appeal_id, number, seq)) => {
            add_evidence(tx, appeal_id, seq + 1, obs, now, Some(distance_m)).await?;
            Submission {
                outcome: SubmitOutcome::Joined,
                number,
                appeal_id,
            }
        }
        None => {
            let (appeal_id, number) = register(tx, obs, plan, now).await?;
            Submission {
                outcome: SubmitOutcome::Created,
                number,
                appeal_id,
            }
        }
    };
    Ok(submission)
}
