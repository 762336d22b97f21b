//! A batch of sensor work in one PostgreSQL transaction, through [`Registry::transact`]:
//!
//! 1. the messages' idempotency keys are inserted (`ON CONFLICT DO NOTHING`); a key already
//!    there is a duplicate and does nothing more;
//! 2. the touched sensors' rows are locked (`FOR UPDATE`, in id order), so nodes sharing a
//!    subscription serialise per sensor;
//! 3. each reading goes through the state machine (`alarms.rs`), in arrival order;
//! 4. raised alarms become observations submitted to the registry (open or join an appeal),
//!    cleared ones a `sensor_cleared` event on the appeal's timeline;
//! 5. the new states are written.
//!
//! Everything commits together or not at all: the caller acknowledges the MQTT messages only
//! after this returns `Ok`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::alarms::{AlarmKind, Change, SensorState, Verdict};
use super::catalog::SensorInfo;
use super::{CATEGORY_FLOODING, CATEGORY_MAINTENANCE, CATEGORY_OPEN_MANHOLE};
use crate::domain::{Category, EvidenceRef, Observation, SensorReading, Source};
use crate::incidents::Intake;
use crate::registry::{Registry, RegistryError, SubmitOutcome};

/// One piece of work for one sensor.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    pub sensor: Arc<SensorInfo>,
    pub work: Work,
}

#[derive(Clone, Debug)]
pub(crate) enum Work {
    Reading {
        key: String,
        reading: SensorReading,
        received_at: DateTime<Utc>,
        topic: String,
    },
    /// Raise `Silent` if the sensor's type's `silent_after` has passed (see `alarms.rs`).
    Silence {
        watch_from: DateTime<Utc>,
        now: DateTime<Utc>,
    },
}

/// What one item did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Applied,
    Duplicate,
    Stale,
    /// A silence check that found the sensor alive.
    NoChange,
}

/// A committed alarm change.
#[derive(Clone, Debug)]
pub(crate) struct Effect {
    pub sensor: Arc<SensorInfo>,
    pub change: Change,
    /// The appeal opened or joined (raised) or noted (cleared).
    pub appeal_number: Option<String>,
    pub outcome: Option<SubmitOutcome>,
}

#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    pub outcomes: Vec<Outcome>,
    pub effects: Vec<Effect>,
}

pub(crate) fn category_of(kind: AlarmKind) -> &'static str {
    match kind {
        AlarmKind::Cover => CATEGORY_OPEN_MANHOLE,
        AlarmKind::Flooding => CATEGORY_FLOODING,
        AlarmKind::BatteryLow | AlarmKind::Silent => CATEGORY_MAINTENANCE,
    }
}

fn describe(sensor: &SensorInfo, kind: AlarmKind, reading: Option<&SensorReading>) -> String {
    let what = match kind {
        AlarmKind::Cover => match reading.and_then(|r| r.tilt_deg) {
            Some(tilt) => format!(
                "cover {} (tilt {tilt:.0}°)",
                reading.map_or("open", |r| r.state.as_str())
            ),
            None => format!("cover {}", reading.map_or("open", |r| r.state.as_str())),
        },
        AlarmKind::Flooding => match reading.and_then(|r| r.water_level_cm) {
            Some(level) => format!("flooding (water level {level:.0} cm)"),
            None => "flooding".to_owned(),
        },
        AlarmKind::BatteryLow => match reading.and_then(|r| r.battery_pct) {
            Some(b) => format!("sensor battery low ({b:.0} %)"),
            None => "sensor battery low".to_owned(),
        },
        AlarmKind::Silent => format!(
            "sensor silent for more than {} s (heartbeat {} s)",
            sensor.settings.silent_after.as_secs(),
            sensor.settings.heartbeat.as_secs()
        ),
    };
    format!("Sensor {} at manhole {}: {what}", sensor.id, sensor.manhole)
}

/// The observation an alarm episode submits: idempotent on `sensor:<id>:<alarm>:episode:<n>`.
pub(crate) fn observation(
    sensor: &SensorInfo,
    kind: AlarmKind,
    episode: u32,
    at: DateTime<Utc>,
    reading: Option<(&SensorReading, &str, &str)>,
) -> Result<Observation, RegistryError> {
    let category = Category::new(category_of(kind)).map_err(|e| RegistryError::Invalid {
        number: String::new(),
        message: e.to_string(),
    })?;
    let data = json!({
        "sensor": sensor.id,
        "sensor_type": sensor.kind,
        "manhole": sensor.manhole,
        "alarm": kind.as_str(),
        "episode": episode,
        "reading": reading.map(|r| r.0),
        "message_key": reading.map(|r| r.1),
        "topic": reading.map(|r| r.2),
    });
    Ok(Observation {
        category,
        source: Source::Sensor,
        source_ref: format!("sensor:{}:{}:episode:{episode}", sensor.id, kind.as_str()),
        position: sensor.position,
        uncertainty_m: Some(1.0),
        address: None,
        description: Some(describe(sensor, kind, reading.map(|r| r.0))),
        actor: sensor.id.to_string(),
        observed_at: at,
        evidence: vec![EvidenceRef {
            kind: "sensor_reading".into(),
            uri: None,
            data: Some(data),
        }],
    })
}

struct Row {
    state: SensorState,
    last_seen: Option<DateTime<Utc>>,
    dirty: bool,
}

/// Applies `items` in one transaction (retried whole on conflicts).
pub(crate) async fn apply_batch(
    registry: &Registry,
    intake: &Intake,
    items: Arc<Vec<Item>>,
) -> Result<BatchResult, RegistryError> {
    registry
        .transact(move |rtx| {
let items = items.clone();
 let intake = intake.clone();
Box::pin(async move {
 let items: &[Item] = &items;
            let now = rtx.now();
            let mut keys = Vec::new();
            let mut received = Vec::new();
            for item in items {
                if let Work::Reading {
                    key, received_at, ..
                } = &item.work
                {
                    keys.push(key.as_str());
                    received.push(*received_at);
                }
            }
            let mut fresh: HashSet<String> = HashSet::new();
            if !keys.is_empty() {
                let rows = rtx
                    .client()
                    .query(
                        "INSERT INTO sensor_messages (msg_key, received_at) \
                         SELECT * FROM unnest($1::text[], $2::timestamptz[]) \
                         ON CONFLICT DO NOTHING RETURNING msg_key",
                        &[&keys, &received],
                    )
                    .await?;
                for row in rows {
                    fresh.insert(row.try_get(0)?);
                }
            }
            let mut ids: Vec<&str> = items
                .iter()
                .filter(|item| match &item.work {
                    Work::Reading { key, .. } => fresh.contains(key),
                    Work::Silence { .. } => true,
                })
                .map(|item| item.sensor.id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut rows: HashMap<String, Row> = HashMap::with_capacity(ids.len());
            if !ids.is_empty() {
                rtx.client()
                    .execute(
                        "INSERT INTO sensor_state (sensor_id, updated_at) \
                         SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                        &[&ids, &now],
                    )
                    .await?;
                for row in rtx
                    .client()
                    .query(
                        "SELECT sensor_id, state, last_seen_at FROM sensor_state \
                         WHERE sensor_id = ANY($1) ORDER BY sensor_id FOR UPDATE",
                        &[&ids],
                    )
                    .await?
                {
                    let id: String = row.try_get(0)?;
                    let raw: serde_json::Value = row.try_get(1)?;
                    let state = serde_json::from_value(raw).map_err(|e| RegistryError::Invalid {
                        number: id.clone(),
                        message: format!("stored sensor state is not readable: {e}"),
                    })?;
                    rows.insert(
                        id,
                        Row {
                            state,
                            last_seen: row.try_get(2)?,
                            dirty: false,
                        },
                    );
                }
            }
            let mut result = BatchResult::default();
            // (item index, change)
            let mut changes: Vec<(usize, Change)> = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let id = item.sensor.id.as_str();
                let outcome = match &item.work {
                    Work::Reading {
                        key,
                        reading,
                        received_at,
                        ..
                    } => match (fresh.remove(key), rows.get_mut(id)) {
                        (true, Some(row)) => match row.state.apply(reading, &item.sensor.settings) {
                            Verdict::Stale => Outcome::Stale,
                            Verdict::Applied(applied) => {
                                row.last_seen =
                                    Some(row.last_seen.map_or(*received_at, |s| s.max(*received_at)));
                                row.dirty = true;
                                changes.extend(applied.into_iter().map(|c| (index, c)));
                                Outcome::Applied
                            }
                        },
                        _ => Outcome::Duplicate,
                    },
                    Work::Silence { watch_from, now } => match rows.get_mut(id) {
                        Some(row) => match row.state.check_silence(
                            row.last_seen,
                            *watch_from,
                            *now,
                            &item.sensor.settings,
                        ) {
                            Some(change) => {
                                row.dirty = true;
                                changes.push((index, change));
                                Outcome::Applied
                            }
                            None => Outcome::NoChange,
                        },
                        None => Outcome::NoChange,
                    },
                };
                result.outcomes.push(outcome);
            }
            // One category's dedup lock after another, in a fixed order (no lock cycles
            // between nodes).
            changes.sort_by_key(|(_, c)| match c {
                Change::Raised { kind, .. } | Change::Cleared { kind, .. } => category_of(*kind),
            });
            let mut opened: HashMap<(crate::domain::SensorId, AlarmKind, u32), (i64, String)> =
                HashMap::new();
            for (index, change) in changes {
                let item = &items[index];
                let sensor = &item.sensor;
                let reading = match &item.work {
                    Work::Reading {
                        reading, key, topic, ..
                    } => Some((reading, key.as_str(), topic.as_str())),
                    Work::Silence { .. } => None,
                };
                let Some(row) = rows.get_mut(sensor.id.as_str()) else {
                    continue;
                };
                match &change {
                    Change::Raised { kind, episode, at } => {
                        let obs = observation(sensor, *kind, *episode, *at, reading)?;
                        let plan = intake.plan(&obs).map_err(|e| RegistryError::Invalid {
                            number: String::new(),
                            message: format!("sensor {}: {e}", sensor.id),
                        })?;
                        let submission = rtx.submit(&obs, &plan).await?;
                        // Several episodes of one kind can pass in one batch: the map keeps
                        // each one's appeal for its clearing.
                        opened.insert(
                            (sensor.id.clone(), *kind, *episode),
                            (submission.appeal_id, submission.number.clone()),
                        );
                        if let Some(e) = row.state.alarms.get_mut(kind)
                            && e.number == *episode
                        {
                            e.appeal_id = Some(submission.appeal_id);
                            e.appeal_number = Some(submission.number.clone());
                        }
                        result.effects.push(Effect {
                            sensor: sensor.clone(),
                            change: change.clone(),
                            appeal_number: Some(submission.number),
                            outcome: Some(submission.outcome),
                        });
                    }
                    Change::Cleared {
                        kind,
                        episode,
                        at,
                        appeal_id,
                    } => {
                        let (appeal_id, number) =
                            match opened.get(&(sensor.id.clone(), *kind, *episode)) {
                                Some((id, number)) => (Some(*id), Some(number.clone())),
                                None => (
                                    *appeal_id,
                                    row.state
                                        .alarms
                                        .get(kind)
                                        .filter(|e| e.number == *episode)
                                        .and_then(|e| e.appeal_number.clone()),
                                ),
                            };
                        if let Some(appeal_id) = appeal_id {
                            let data = json!({
                                "sensor": sensor.id,
                                "alarm": kind.as_str(),
                                "episode": episode,
                                "cleared_at": at,
                                "reading": reading.map(|r| r.0),
                                "message_key": reading.map(|r| r.1),
                            });
                            rtx.add_note(appeal_id, sensor.id.as_str(), "sensor_cleared", &data)
                                .await?;
                        }
                        result.effects.push(Effect {
                            sensor: sensor.clone(),
                            change: change.clone(),
                            appeal_number: number,
                            outcome: None,
                        });
                    }
                }
            }
            let mut upd_ids = Vec::new();
            let mut upd_states = Vec::new();
            let mut upd_seen = Vec::new();
            for (id, row) in &rows {
                if row.dirty {
                    upd_ids.push(id.as_str());
                    upd_states.push(serde_json::to_value(&row.state).map_err(|e| {
                        RegistryError::Invalid {
                            number: id.clone(),
                            message: format!("sensor state not serialisable: {e}"),
                        }
                    })?);
                    upd_seen.push(row.last_seen);
                }
            }
            if !upd_ids.is_empty() {
                rtx.client()
                    .execute(
                        "UPDATE sensor_state AS s SET state = u.state, last_seen_at = u.seen, \
                         updated_at = $4 \
                         FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) AS u(id, state, seen) \
                         WHERE s.sensor_id = u.id",
                        &[&upd_ids, &upd_states, &upd_seen, &now],
                    )
                    .await?;
            }
            Ok(result)
        })
})
        .await
}

/// Makes sure every known sensor has a row (so one that never reports is found silent).
pub(crate) async fn ensure_rows(
    registry: &Registry,
    ids: Vec<String>,
) -> Result<(), RegistryError> {
    registry
        .transact(move |rtx| {
            let ids = ids.clone();
            Box::pin(async move {
                let now = rtx.now();
                rtx.client()
                    .execute(
                        "INSERT INTO sensor_state (sensor_id, updated_at) \
                     SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                        &[&ids, &now],
                    )
                    .await?;
                Ok(())
            })
        })
        .await
}

/// Sensors whose last applied message is older than `before` (or none) and that are not
/// already silent: candidates for the silence check.
pub(crate) async fn silence_candidates(
    registry: &Registry,
    before: DateTime<Utc>,
) -> Result<Vec<(String, Option<DateTime<Utc>>)>, RegistryError> {
    registry
        .transact(move |rtx| {
            Box::pin(async move {
                let rows = rtx
                    .client()
                    .query(
                        "SELECT sensor_id, last_seen_at FROM sensor_state \
                     WHERE coalesce(last_seen_at, '-infinity') < $1 \
                       AND coalesce(state #>> '{alarms,silent,active}', 'false') <> 'true'",
                        &[&before],
                    )
                    .await?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect()
            })
        })
        .await
}

/// Deletes idempotency keys received before `before`; returns how many.
pub(crate) async fn prune_keys(
    registry: &Registry,
    before: DateTime<Utc>,
) -> Result<u64, RegistryError> {
    registry
        .transact(move |rtx| {
            Box::pin(async move {
                Ok(rtx
                    .client()
                    .execute(
                        "DELETE FROM sensor_messages WHERE received_at < $1",
                        &[&before],
                    )
                    .await?)
            })
        })
        .await
}

/// One sensor's stored state and last receipt, for the API.
pub(crate) async fn load_state(
    registry: &Registry,
    id: &str,
) -> Result<Option<(SensorState, Option<DateTime<Utc>>)>, RegistryError> {
    let id = id.to_owned();
    registry
        .transact(move |rtx| {
            let id = id.clone();
            Box::pin(async move {
                let Some(row) = rtx
                    .client()
                    .query_opt(
                        "SELECT state, last_seen_at FROM sensor_state WHERE sensor_id = $1",
                        &[&id],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let raw: serde_json::Value = row.try_get(0)?;
                let state = serde_json::from_value(raw).map_err(|e| RegistryError::Invalid {
                    number: id.to_owned(),
                    message: format!("stored sensor state is not readable: {e}"),
                })?;
                Ok(Some((state, row.try_get(1)?)))
            })
        })
        .await
}

/// Sensors with an active alarm: (id, alarm kinds).
pub(crate) async fn active_alarms(
    registry: &Registry,
) -> Result<Vec<(String, SensorState)>, RegistryError> {
    registry
        .transact(move |rtx| {
            Box::pin(async move {
                let rows = rtx
                    .client()
                    .query(
                        "SELECT sensor_id, state FROM sensor_state WHERE \
                     jsonb_path_exists(state, '$.alarms.* ? (@.active == true)') \
                     ORDER BY sensor_id LIMIT 1000",
                        &[],
                    )
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: String = row.try_get(0)?;
                    let raw: serde_json::Value = row.try_get(1)?;
                    if let Ok(state) = serde_json::from_value(raw) {
                        out.push((id, state));
                    }
                }
                Ok(out)
            })
        })
        .await
}
