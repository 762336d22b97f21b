//! The inspectors' review queue: claims with expiry on appeals awaiting confirmation (two
//! inspectors never hold the same appeal), the verdict statistics (false-positive rates by
//! camera, model version and class), the verdicted items for a labelled export, and the tail of
//! the event log that feeds live updates.
//!
//! Claims live in `review_claims` (migration V5). Every claim change runs in one transaction
//! under one advisory lock, so concurrent inspectors on any number of nodes are served one after
//! the other; a claim whose holder has no live session (signed out, disabled, expired) or whose
//! expiry passed is void and is removed by the next claim.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::views::{self, AppealView};
use super::{Registry, RegistryError};

/// The advisory lock key serialising claim changes (`hashtext('sitcenter.review')`).
const CLAIM_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock(hashtext('sitcenter.review'))";

/// Statuses an inspector reviews.
const PENDING: &str = "('detected', 'awaiting_confirmation')";

/// One verdict of a camera's recent history.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictView {
    pub number: String,
    pub category: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Verdict counts for one (camera, model, version, class).
#[derive(Clone, Debug, Serialize)]
pub struct VerdictCount {
    pub camera: String,
    pub model: String,
    pub model_version: String,
    pub class: String,
    pub confirmed: i64,
    pub rejected: i64,
}

/// A verdicted camera appeal for the labelled export.
#[derive(Clone, Debug, Serialize)]
pub struct VerdictedItem {
    pub number: String,
    pub category: String,
    pub verdict: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    pub camera: String,
    /// The first camera evidence's items (`[{kind, uri, data}]`).
    pub items: serde_json::Value,
}

/// One appended event of the log, for live updates.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeView {
    pub id: i64,
    pub number: String,
    pub kind: String,
    pub to_status: Option<String>,
}

/// The pending set ordered most urgent first: the earliest SLA due time (the category's
/// deadline counted from registration), then the oldest registration.
const PENDING_ORDER: &str = "(SELECT min(d.due_at) FROM appeal_deadlines d WHERE d.appeal_id = a.id) \
     ASC NULLS LAST, a.registered_at ASC, a.id ASC";

impl Registry {
    /// Tops the claims of `user` up to `hold` appeals (renewing the ones held) and returns them,
    /// the oldest claim first; expired and orphaned claims are released first.
    pub async fn claim_for_review(
        &self,
        user: &str,
        hold: i64,
        ttl: Duration,
    ) -> Result<Vec<AppealView>, RegistryError> {
        let now = self.now();
        let expires =
            now + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::minutes(5));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(CLAIM_LOCK_SQL, &[]).await?;
        tx.execute(
            &format!(
                "DELETE FROM review_claims c WHERE c.expires_at <= $1 \
                 OR NOT EXISTS (SELECT 1 FROM auth_users u JOIN auth_sessions s ON s.user_id = u.id \
                   WHERE u.name = c.user_name AND NOT u.disabled AND s.revoked_at IS NULL \
                   AND s.expires_at > $1) \
                 OR NOT EXISTS (SELECT 1 FROM appeal_state st WHERE st.appeal_id = c.appeal_id \
                   AND st.status IN {PENDING})"
            ),
            &[&now],
        )
        .await?;
        let held = tx
            .execute(
                "UPDATE review_claims SET expires_at = $2 WHERE user_name = $1",
                &[&user, &expires],
            )
            .await?;
        let want = hold.saturating_sub(i64::try_from(held).unwrap_or(hold));
        if want > 0 {
            tx.execute(
                &format!(
                    "INSERT INTO review_claims (appeal_id, user_name, claimed_at, expires_at) \
                     SELECT a.id, $1, $2, $3 FROM appeals a JOIN appeal_state s ON s.appeal_id = a.id \
                     WHERE s.status IN {PENDING} \
                     AND NOT EXISTS (SELECT 1 FROM review_claims c WHERE c.appeal_id = a.id) \
                     ORDER BY {PENDING_ORDER} LIMIT $4"
                ),
                &[&user, &now, &expires, &want],
            )
            .await?;
        }
        tx.commit().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM review_claims c JOIN appeals a ON a.id = c.appeal_id \
                     JOIN appeal_state s ON s.appeal_id = a.id WHERE c.user_name = $1 \
                     ORDER BY c.claimed_at, {PENDING_ORDER}",
                    views::APPEAL_COLUMNS
                ),
                &[&user],
            )
            .await?;
        let mut appeals = rows
            .iter()
            .map(AppealView::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.fill_deadlines(&client, &mut appeals).await?;
        Ok(appeals)
    }

    /// Whether `user` holds a live claim on appeal `number`.
    pub async fn holds_claim(&self, user: &str, number: &str) -> Result<bool, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM review_claims c JOIN appeals a ON a.id = c.appeal_id \
                 WHERE a.reg_number = $1 AND c.user_name = $2 AND c.expires_at > $3",
                &[&number, &user, &self.now()],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Releases the claim on `number` (after its verdict).
    pub async fn release_claim(&self, number: &str) -> Result<(), RegistryError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "DELETE FROM review_claims WHERE appeal_id = (SELECT id FROM appeals WHERE reg_number = $1)",
                &[&number],
            )
            .await?;
        Ok(())
    }

    /// Releases every claim of `user` (sign-out, "stop reviewing").
    pub async fn release_claims_of(&self, user: &str) -> Result<u64, RegistryError> {
        let client = self.pool.get().await?;
        Ok(client
            .execute("DELETE FROM review_claims WHERE user_name = $1", &[&user])
            .await?)
    }

    /// Appeals awaiting review, claimed or not.
    pub async fn pending_review_count(&self) -> Result<i64, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!("SELECT count(*) FROM appeal_state WHERE status IN {PENDING}"),
                &[],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The latest verdicts on appeals raised by `camera`, newest first.
    pub async fn camera_verdicts(
        &self,
        camera: &str,
        limit: i64,
    ) -> Result<Vec<VerdictView>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT a.reg_number, a.category, e.kind, e.reason, e.actor, e.at \
                 FROM appeal_events e JOIN appeals a ON a.id = e.appeal_id \
                 WHERE e.kind IN ('confirmed', 'rejected') AND EXISTS (SELECT 1 FROM evidence v \
                   WHERE v.appeal_id = e.appeal_id AND v.source = 'camera' AND v.actor = $1) \
                 ORDER BY e.at DESC, e.id DESC LIMIT $2",
                &[&camera, &limit.clamp(1, 100)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(VerdictView {
                    number: r.try_get(0)?,
                    category: r.try_get(1)?,
                    verdict: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    actor: r.try_get(4)?,
                    at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Confirmed and rejected camera appeals since `since`, counted by camera, model, model
    /// version and class (from the first camera evidence of each appeal).
    pub async fn verdict_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<VerdictCount>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT v.actor, coalesce(v.items -> 0 -> 'data' -> 'model' ->> 'name', ''), \
                   coalesce(v.items -> 0 -> 'data' -> 'model' ->> 'version', ''), \
                   coalesce(v.items -> 0 -> 'data' ->> 'class', ''), \
                   count(*) FILTER (WHERE e.kind = 'confirmed'), \
                   count(*) FILTER (WHERE e.kind = 'rejected') \
                 FROM appeal_events e JOIN LATERAL (SELECT actor, items FROM evidence v \
                   WHERE v.appeal_id = e.appeal_id AND v.source = 'camera' ORDER BY v.id LIMIT 1) v ON true \
                 WHERE e.kind IN ('confirmed', 'rejected') AND e.at >= $1 \
                 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
                &[&since],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(VerdictCount {
                    camera: r.try_get(0)?,
                    model: r.try_get(1)?,
                    model_version: r.try_get(2)?,
                    class: r.try_get(3)?,
                    confirmed: r.try_get(4)?,
                    rejected: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Verdicted camera appeals since `since`, oldest first, at most `limit`.
    pub async fn verdicted_items(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<VerdictedItem>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT a.reg_number, a.category, e.kind, e.reason, e.at, v.actor, v.items \
                 FROM appeal_events e JOIN appeals a ON a.id = e.appeal_id \
                 JOIN LATERAL (SELECT actor, items FROM evidence v WHERE v.appeal_id = e.appeal_id \
                   AND v.source = 'camera' ORDER BY v.id LIMIT 1) v ON true \
                 WHERE e.kind IN ('confirmed', 'rejected') AND e.at >= $1 \
                 ORDER BY e.at, e.id LIMIT $2",
                &[&since, &limit.clamp(1, 100_000)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(VerdictedItem {
                    number: r.try_get(0)?,
                    category: r.try_get(1)?,
                    verdict: r.try_get(2)?,
                    reason: r.try_get(3)?,
                    at: r.try_get(4)?,
                    camera: r.try_get(5)?,
                    items: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The URI of item `item` of evidence row `id`, when there is one.
    pub async fn evidence_uri(&self, id: i64, item: i32) -> Result<Option<String>, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT items -> $2::int ->> 'uri' FROM evidence WHERE id = $1",
                &[&id, &item],
            )
            .await?;
        Ok(row
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten())
    }

    /// The id of the latest event in the log (0 when empty): where live updates start.
    pub async fn last_change_id(&self) -> Result<i64, RegistryError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT coalesce(max(id), 0) FROM appeal_events", &[])
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Events appended after `after`, in order, at most `limit`.
    pub async fn changes_since(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChangeView>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT e.id, a.reg_number, e.kind, e.to_status FROM appeal_events e \
                 JOIN appeals a ON a.id = e.appeal_id WHERE e.id > $1 ORDER BY e.id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ChangeView {
                    id: r.try_get(0)?,
                    number: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    to_status: r.try_get(3)?,
                })
            })
            .collect()
    }
}
