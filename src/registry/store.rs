//! Writes inside a transaction: migrations, the per-appeal lock, events, evidence, registration.

use chrono::{DateTime, Datelike, Utc};
use deadpool_postgres::Transaction;
use serde_json::json;

use super::{RegistryError, registration_number};
use crate::domain::{Observation, Status};
use crate::incidents::Plan;

/// Serialise changes to one appeal; returns its (status, last event seq).
pub(super) async fn lock_appeal(
    tx: &Transaction<'_>,
    appeal_id: i64,
) -> Result<(Status, i32), RegistryError> {
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
pub(super) async fn insert_event(
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

pub(super) async fn add_evidence(
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
            // recorded_at: set by the database's clock (trigger `evidence_recorded_at`).
            "INSERT INTO evidence (appeal_id, source, source_ref, actor, observed_at, \
               lat, lon, uncertainty_m, items) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                &appeal_id,
                &obs.source.as_str(),
                &obs.source_ref,
                &obs.actor,
                &obs.observed_at,
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

pub(super) async fn register(
    tx: &Transaction<'_>,
    obs: &Observation,
    plan: &Plan,
    now: DateTime<Utc>,
) -> Result<(i64, String), RegistryError> {
    let year = now.year();
    let seq: i32 = tx
        .query_one("SELECT public.next_registration_seq($1)", &[&year])
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
