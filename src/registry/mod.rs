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
mod error;
mod lifecycle;
mod metrics;
mod views;

#[cfg(test)]
pub(crate) mod test_db;
#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use serde_json::json;
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::RegistryError;
pub use lifecycle::{Action, Confirmer};
pub use metrics::RegistryMetrics;
pub use views::{
    AppealFilter, AppealView, DeadlineView, Escalation, EventView, EvidenceView, Submission,
    SubmitOutcome,
};

use crate::domain::{Observation, Position, Status};
use crate::incidents::Plan;
use metrics::{CategorySource, StageLabel, StatusLabel};

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
    /// Connect, apply pending migrations, and open a pool running as [`SERVICE_ROLE`].
    ///
    /// `url` is a libpq-style string (`host=… user=… dbname=…`) or a `postgresql://` URL; its
    /// user must own the schema (it runs the migrations).
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self, RegistryError> {
        Self::connect_with(url, clock, DEFAULT_POOL_SIZE).await
    }

    pub async fn connect_with(
        url: &str,
        clock: Arc<dyn Clock>,
        pool_size: usize,
    ) -> Result<Self, RegistryError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| RegistryError::Config(format!("`{url}`: {e}")))?;
        migrate(&config).await?;
        let mut service = config.clone();
        service.options(format!("-c role={SERVICE_ROLE}"));
        let manager = Manager::from_config(
            service,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .build()
            .map_err(|e| RegistryError::Config(e.to_string()))?;
        // Fail now, not on the first appeal, if the role cannot be assumed.
        pool.get().await?.simple_query("SELECT 1").await?;
        Ok(Self {
            pool,
            clock,
            metrics: Arc::new(RegistryMetrics::default()),
        })
    }

    pub fn metrics(&self) -> &RegistryMetrics {
        &self.metrics
    }

    /// Register the registry's metrics (see `metrics.rs` for names).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
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
        Ok(submission)
    }

    async fn submit_once(
        &self,
        obs: &Observation,
        plan: &Plan,
    ) -> Result<Submission, RegistryError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
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
        let since = obs.observed_at - window;
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
        let now = self.clock.now();
        let submission = match nearest {
            Some((distance_m, appeal_id, number)) => {
                let seq = lock_appeal(&tx, appeal_id).await?.1;
                add_evidence(&tx, appeal_id, seq + 1, obs, now, Some(distance_m)).await?;
                Submission {
                    outcome: SubmitOutcome::Joined,
                    number,
                    appeal_id,
                }
            }
            None => {
                let (appeal_id, number) = register(&tx, obs, plan, now).await?;
                Submission {
                    outcome: SubmitOutcome::Created,
                    number,
                    appeal_id,
                }
            }
        };
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

    /// One appeal with its SLA clocks.
    pub async fn appeal(&self, number: &str) -> Result<Option<AppealView>, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM appeals a JOIN appeal_state s ON s.appeal_id = a.id \
                     WHERE a.reg_number = $1",
                    views::APPEAL_COLUMNS
                ),
                &[&number],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut appeals = vec![AppealView::from_row(&row)?];
        self.fill_deadlines(&client, &mut appeals).await?;
        Ok(appeals.pop())
    }

    async fn fill_deadlines(
        &self,
        client: &deadpool_postgres::Client,
        appeals: &mut [AppealView],
    ) -> Result<(), RegistryError> {
        let ids: Vec<i64> = appeals.iter().map(|a| a.id).collect();
        let rows = client
            .query(
                "SELECT d.appeal_id, d.stage, d.due_at, \
                   (SELECT min(e.at) FROM appeal_events e WHERE e.appeal_id = d.appeal_id \
                      AND e.kind = 'stage_reached' AND e.data ->> 'stage' = d.stage), \
                   EXISTS (SELECT 1 FROM appeal_events e WHERE e.appeal_id = d.appeal_id \
                      AND e.kind = 'escalated' AND e.data ->> 'stage' = d.stage) \
                 FROM appeal_deadlines d WHERE d.appeal_id = ANY($1) \
                 ORDER BY d.appeal_id, d.ordinal",
                &[&ids],
            )
            .await?;
        let now = self.clock.now();
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let Some(appeal) = appeals.iter_mut().find(|a| a.id == id) else {
                continue;
            };
            let due_at: DateTime<Utc> = row.try_get(2)?;
            let reached_at: Option<DateTime<Utc>> = row.try_get(3)?;
            let settled = matches!(
                appeal.status,
                Status::Resolved | Status::Closed | Status::Rejected
            );
            let met = reached_at.is_some() || settled;
            appeal.deadlines.push(DeadlineView {
                stage: row.try_get(1)?,
                due_at,
                reached_at,
                met,
                escalated: row.try_get(4)?,
                overdue: !met && now >= due_at,
                remaining_minutes: (due_at - now).num_minutes(),
            });
        }
        Ok(())
    }

    /// Search appeals, newest first.
    pub async fn search(&self, filter: &AppealFilter) -> Result<Vec<AppealView>, RegistryError> {
        let mut sql = format!(
            "SELECT {} FROM appeals a JOIN appeal_state s ON s.appeal_id = a.id WHERE true",
            views::APPEAL_COLUMNS
        );
        let status = filter.status.map(|s| s.to_string());
        let source = filter.source.map(|s| s.to_string());
        let text = filter.text.as_ref().map(|t| format!("%{t}%"));
        let now = self.clock.now();
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        macro_rules! filter_on {
            ($value:expr, $clause:literal) => {
                if let Some(v) = $value {
                    params.push(v);
                    sql.push_str(&format!($clause, params.len()));
                }
            };
        }
        filter_on!(status.as_ref(), " AND s.status = ${}");
        filter_on!(filter.category.as_ref(), " AND a.category = ${}");
        filter_on!(source.as_ref(), " AND a.source = ${}");
        filter_on!(filter.body_id.as_ref(), " AND s.body_id = ${}");
        filter_on!(filter.district.as_ref(), " AND a.district = ${}");
        filter_on!(
            filter.registered_from.as_ref(),
            " AND a.registered_at >= ${}"
        );
        filter_on!(filter.registered_to.as_ref(), " AND a.registered_at < ${}");
        filter_on!(
            text.as_ref(),
            " AND (a.address ILIKE ${0} OR a.description ILIKE ${0})"
        );
        if filter.open_only {
            sql.push_str(" AND s.status NOT IN ('closed', 'rejected')");
        }
        if filter.closed_only {
            sql.push_str(" AND s.status IN ('closed', 'rejected')");
        }
        if filter.overdue_only {
            params.push(&now);
            sql.push_str(&format!(
                " AND s.status NOT IN ('resolved', 'closed', 'rejected') AND EXISTS (\
                   SELECT 1 FROM appeal_deadlines d WHERE d.appeal_id = a.id AND d.due_at <= ${} \
                   AND NOT EXISTS (SELECT 1 FROM appeal_events e WHERE e.appeal_id = a.id \
                     AND e.kind = 'stage_reached' AND e.data ->> 'stage' = d.stage))",
                params.len()
            ));
        }
        let limit = filter.limit.unwrap_or(100).clamp(1, MAX_PAGE);
        let offset = filter.offset.unwrap_or(0).max(0);
        sql.push_str(&format!(
            " ORDER BY a.registered_at DESC, a.id DESC LIMIT {limit} OFFSET {offset}"
        ));
        let client = self.pool.get().await?;
        let rows = client.query(&sql, &params).await?;
        let mut appeals = rows
            .iter()
            .map(AppealView::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_deadlines(&client, &mut appeals).await?;
        Ok(appeals)
    }

    /// Every event of one appeal, in order.
    pub async fn timeline(&self, number: &str) -> Result<Vec<EventView>, RegistryError> {
        let id = self.appeal_id(number).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, at, actor, kind, from_status, to_status, reason, data \
                 FROM appeal_events WHERE appeal_id = $1 ORDER BY seq",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EventView {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    kind: r.try_get(3)?,
                    from_status: r.try_get(4)?,
                    to_status: r.try_get(5)?,
                    reason: r.try_get(6)?,
                    data: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// The evidence of one appeal, oldest first.
    pub async fn evidence(&self, number: &str) -> Result<Vec<EvidenceView>, RegistryError> {
        let id = self.appeal_id(number).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, source, source_ref, actor, observed_at, recorded_at, lat, lon, \
                 uncertainty_m, items FROM evidence WHERE appeal_id = $1 ORDER BY id",
                &[&id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(EvidenceView {
                    id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    source_ref: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    observed_at: r.try_get(4)?,
                    recorded_at: r.try_get(5)?,
                    position: Position::new(r.try_get(6)?, r.try_get(7)?),
                    uncertainty_m: r.try_get(8)?,
                    items: r.try_get(9)?,
                })
            })
            .collect()
    }

    /// The appeal a `source_ref` was recorded under (Open311 tokens).
    pub async fn number_for_source_ref(
        &self,
        source_ref: &str,
    ) -> Result<Option<String>, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT a.reg_number FROM evidence e JOIN appeals a ON a.id = e.appeal_id \
                 WHERE e.source_ref = $1",
                &[&source_ref],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Escalate every SLA stage whose deadline has passed (by the registry clock) without being
    /// reached, on appeals not yet resolved, closed or rejected. Each stage escalates once.
    pub async fn escalate_overdue(&self) -> Result<Vec<Escalation>, RegistryError> {
        let now = self.clock.now();
        let overdue = {
            let client = self.pool.get().await?;
            client
                .query(
                    "SELECT d.appeal_id, a.reg_number, a.category, d.stage, d.due_at, \
                       EXISTS (SELECT 1 FROM appeal_events e WHERE e.appeal_id = d.appeal_id \
                         AND e.kind = 'escalated' AND e.data ->> 'stage' = d.stage) \
                     FROM appeal_deadlines d \
                     JOIN appeals a ON a.id = d.appeal_id \
                     JOIN appeal_state s ON s.appeal_id = d.appeal_id \
                     WHERE d.due_at <= $1 \
                       AND s.status NOT IN ('resolved', 'closed', 'rejected') \
                       AND NOT EXISTS (SELECT 1 FROM appeal_events e WHERE e.appeal_id = d.appeal_id \
                         AND e.kind = 'stage_reached' AND e.data ->> 'stage' = d.stage) \
                     ORDER BY d.due_at",
                    &[&now],
                )
                .await?
        };
        self.metrics
            .overdue
            .set(i64::try_from(overdue.len()).unwrap_or(i64::MAX));
        let mut escalations = Vec::new();
        for row in overdue {
            if row.try_get::<_, bool>(5)? {
                continue;
            }
            let appeal_id: i64 = row.try_get(0)?;
            let stage: String = row.try_get(3)?;
            let due_at: DateTime<Utc> = row.try_get(4)?;
            let mut client = self.pool.get().await?;
            let tx = client.transaction().await?;
            let (status, seq) = lock_appeal(&tx, appeal_id).await?;
            let done = tx
                .query_opt(
                    "SELECT 1 FROM appeal_events WHERE appeal_id = $1 \
                     AND kind IN ('escalated', 'stage_reached') AND data ->> 'stage' = $2",
                    &[&appeal_id, &stage],
                )
                .await?;
            if done.is_some()
                || matches!(status, Status::Resolved | Status::Closed | Status::Rejected)
            {
                continue;
            }
            let data = json!({
                "stage": stage,
                "due_at": due_at,
                "overdue_minutes": (now - due_at).num_minutes(),
            });
            insert_event(
                &tx,
                appeal_id,
                seq + 1,
                now,
                "sla",
                "escalated",
                None,
                None,
                None,
                &data,
            )
            .await?;
            tx.commit().await?;
            let escalation = Escalation {
                number: row.try_get(1)?,
                category: row.try_get(2)?,
                stage,
                due_at,
                escalated_at: now,
            };
            self.metrics
                .escalations
                .get_or_create(&StageLabel {
                    category: escalation.category.clone(),
                    stage: escalation.stage.clone(),
                })
                .inc();
            tracing::warn!(number = %escalation.number, stage = %escalation.stage, due_at = %due_at, "appeal stage overdue: escalated");
            escalations.push(escalation);
        }
        Ok(escalations)
    }

    /// Check the state projection against the log: returns one line per mismatch (empty = ok).
    pub async fn verify_projection(&self) -> Result<Vec<String>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "WITH derived AS ( \
                   SELECT e.appeal_id, \
                     (SELECT e2.to_status FROM appeal_events e2 WHERE e2.appeal_id = e.appeal_id \
                        AND e2.to_status IS NOT NULL ORDER BY e2.seq DESC LIMIT 1) AS status, \
                     max(e.seq) AS last_seq, \
                     count(*) FILTER (WHERE e.kind = 'evidence_added') AS evidence \
                   FROM appeal_events e GROUP BY e.appeal_id) \
                 SELECT a.reg_number, s.status, d.status, s.last_seq, d.last_seq, \
                        s.evidence_count, d.evidence, \
                        (SELECT count(*) FROM evidence v WHERE v.appeal_id = a.id) \
                 FROM appeals a \
                 LEFT JOIN appeal_state s ON s.appeal_id = a.id \
                 LEFT JOIN derived d ON d.appeal_id = a.id \
                 WHERE s.status IS DISTINCT FROM d.status OR s.last_seq IS DISTINCT FROM d.last_seq::int \
                    OR s.evidence_count::bigint IS DISTINCT FROM d.evidence \
                    OR d.evidence IS DISTINCT FROM (SELECT count(*) FROM evidence v WHERE v.appeal_id = a.id)",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(format!(
                    "{}: state {:?}/{:?}/{:?} but log {:?}/{:?}/{:?}, evidence rows {:?}",
                    r.try_get::<_, String>(0)?,
                    r.try_get::<_, Option<String>>(1)?,
                    r.try_get::<_, Option<i32>>(3)?,
                    r.try_get::<_, Option<i32>>(5)?,
                    r.try_get::<_, Option<String>>(2)?,
                    r.try_get::<_, Option<i32>>(4)?,
                    r.try_get::<_, Option<i64>>(6)?,
                    r.try_get::<_, Option<i64>>(7)?,
                ))
            })
            .collect()
    }

    /// Run [`Registry::escalate_overdue`] every `period` until `shutdown` is cancelled.
    pub async fn run_escalator(self, period: Duration, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    if let Err(e) = self.escalate_overdue().await {
                        tracing::error!(error = %e, "SLA escalation check failed");
                    }
                }
            }
        }
    }
}

async fn migrate(config: &tokio_postgres::Config) -> Result<(), RegistryError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "registry migration connection failed");
        }
    });
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = report?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "registry migration applied");
    }
    drop(client);
    if let Err(e) = driver.await {
        tracing::warn!(error = %e, "registry migration connection task ended abnormally");
    }
    Ok(())
}

/// Serialise changes to one appeal; returns its (status, last event seq).
async fn lock_appeal(tx: &Transaction<'_>, appeal_id: i64) -> Result<(Status, i32), RegistryError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&appeal_id])
        .await?;
    let row = tx
        .query_one(
            "SELECT status, last_seq FROM appeal_state WHERE appeal_id = $1",
            &[&appeal_id],
        )
        .await?;
    let status: String = row.try_get(0)?;
    let status = status.parse().map_err(|message| RegistryError::Invalid {
        number: appeal_id.to_string(),
        message,
    })?;
    Ok((status, row.try_get(1)?))
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &Transaction<'_>,
    appeal_id: i64,
    seq: i32,
    at: DateTime<Utc>,
    actor: &str,
    kind: &str,
    from: Option<Status>,
    to: Option<Status>,
    reason: Option<&str>,
    data: &serde_json::Value,
) -> Result<(), RegistryError> {
    let from = from.map(|s| s.as_str());
    let to = to.map(|s| s.as_str());
    tx.execute(
        "INSERT INTO appeal_events (appeal_id, seq, at, actor, kind, from_status, to_status, reason, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&appeal_id, &seq, &at, &actor, &kind, &from, &to, &reason, data],
    )
    .await?;
    Ok(())
}

async fn add_evidence(
    tx: &Transaction<'_>,
    appeal_id: i64,
    seq: i32,
    obs: &Observation,
    now: DateTime<Utc>,
    distance_m: Option<f64>,
) -> Result<(), RegistryError> {
    let items = serde_json::to_value(&obs.evidence).unwrap_or_else(|_| json!([]));
    let row = tx
        .query_one(
            "INSERT INTO evidence (appeal_id, source, source_ref, actor, observed_at, recorded_at, \
               lat, lon, uncertainty_m, items) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &appeal_id,
                &obs.source.as_str(),
                &obs.source_ref,
                &obs.actor,
                &obs.observed_at,
                &now,
                &obs.position.lat,
                &obs.position.lon,
                &obs.uncertainty_m,
                &items,
            ],
        )
        .await?;
    let evidence_id: i64 = row.try_get(0)?;
    let data = json!({
        "evidence_id": evidence_id,
        "source": obs.source,
        "source_ref": obs.source_ref,
        "observed_at": obs.observed_at,
        "distance_m": distance_m.map(|d| (d * 10.0).round() / 10.0),
    });
    insert_event(
        tx,
        appeal_id,
        seq,
        now,
        &obs.actor,
        "evidence_added",
        None,
        None,
        None,
        &data,
    )
    .await
}

async fn register(
    tx: &Transaction<'_>,
    obs: &Observation,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<(i64, String), RegistryError> {
    let year = now.year();
    let seq: i32 = tx
        .query_one(
            "INSERT INTO appeal_counters (year, last_seq) VALUES ($1, 1) \
             ON CONFLICT (year) DO UPDATE SET last_seq = appeal_counters.last_seq + 1 \
             RETURNING last_seq",
            &[&year],
        )
        .await?
        .try_get(0)?;
    let number = registration_number(year, seq);
    let routing = &plan.routing;
    let window_s = i64::try_from(plan.category.dedup.window.as_secs()).unwrap_or(i64::MAX);
    let appeal_id: i64 = tx
        .query_one(
            "INSERT INTO appeals (reg_year, reg_seq, reg_number, category, source, lat, lon, \
               address, description, district, body_id, body_name, asset_id, registered_at, \
               registered_by, dedup_radius_m, dedup_window_s) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             RETURNING id",
            &[
                &year,
                &seq,
                &number,
                &obs.category.as_str(),
                &obs.source.as_str(),
                &obs.position.lat,
                &obs.position.lon,
                &obs.address,
                &obs.description,
                &routing.district,
                &routing.body_id,
                &routing.body_name,
                &routing.asset_id,
                &now,
                &obs.actor,
                &plan.category.dedup.radius_m,
                &window_s,
            ],
        )
        .await?
        .try_get(0)?;
    for (ordinal, stage) in plan.category.stages.iter().enumerate() {
        let within = chrono::Duration::from_std(stage.within).unwrap_or(chrono::Duration::MAX);
        let ordinal = i32::try_from(ordinal).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO appeal_deadlines (appeal_id, stage, ordinal, due_at) VALUES ($1, $2, $3, $4)",
            &[&appeal_id, &stage.name, &ordinal, &(now + within)],
        )
        .await?;
    }
    let data = json!({ "category": obs.category, "source": obs.source, "routing": routing });
    insert_event(
        tx,
        appeal_id,
        1,
        now,
        &obs.actor,
        "registered",
        None,
        Some(Status::Detected),
        None,
        &data,
    )
    .await?;
    insert_event(
        tx,
        appeal_id,
        2,
        now,
        "registry",
        "sent_for_confirmation",
        Some(Status::Detected),
        Some(Status::AwaitingConfirmation),
        None,
        &json!({}),
    )
    .await?;
    add_evidence(tx, appeal_id, 3, obs, now, None).await?;
    Ok((appeal_id, number))
}
