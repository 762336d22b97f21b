//! Reading the registry: one appeal with its SLA clocks, search, timeline, evidence, and the
//! check of the state projection against the log.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::views::{self, AppealFilter, AppealView, DeadlineView, EventView, EvidenceView};
use super::{MAX_PAGE, Registry, RegistryError};
use crate::domain::{Position, Status};

impl Registry {
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

    pub(super) async fn fill_deadlines(
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
        // `%`, `_` and `\\` in the search text are literal (backslash is LIKE's escape).
        let text = filter.text.as_ref().map(|t| {
            let escaped = t
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
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
        let categories = (!filter.categories.is_empty()).then_some(&filter.categories);
        filter_on!(categories, " AND a.category = ANY(${})");
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
        self.timeline_page(number, None, 0).await
    }

    /// A page of one appeal's events, in order (`limit` `None` = all).
    pub async fn timeline_page(
        &self,
        number: &str,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Vec<EventView>, RegistryError> {
        let id = self.appeal_id(number).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, at, actor, kind, from_status, to_status, reason, data \
                 FROM appeal_events WHERE appeal_id = $1 ORDER BY seq LIMIT $2 OFFSET $3",
                &[&id, &limit, &offset],
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
        self.evidence_page(number, None, 0).await
    }

    /// A page of one appeal's evidence, oldest first (`limit` `None` = all).
    pub async fn evidence_page(
        &self,
        number: &str,
        limit: Option<i64>,
        offset: i64,
    ) -> Result<Vec<EvidenceView>, RegistryError> {
        let id = self.appeal_id(number).await?;
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, source, source_ref, actor, observed_at, recorded_at, lat, lon, \
                 uncertainty_m, items FROM evidence WHERE appeal_id = $1 ORDER BY id \
                 LIMIT $2 OFFSET $3",
                &[&id, &limit, &offset],
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
}
