//! SLA escalation: overdue, unreached stages of open appeals become `escalated` events, once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::store::{insert_event, lock_appeal};
use super::views::Escalation;
use super::{Registry, RegistryError};
use crate::domain::Status;
use crate::obs::StageLabel;

impl Registry {
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
