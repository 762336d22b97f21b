//! Manhole-cover sensors over MQTT → alarms → appeals, exactly once.
//!
//! Consumes MQTT publishes (our JSON schema and ChirpStack v4 uplinks, docs/sensors.md);
//! produces appeals in the registry (`open_manhole`, `flooding`, `sensor_maintenance`) and
//! `sensor_cleared` timeline events; keeps per-sensor state in PostgreSQL.
//!
//! One way in: [`SensorsStage::start`] → a [`SensorsHandle`] for the API.
//!
//! Tasks and queues:
//! - `client.rs` polls the broker (MQTT 5, persistent session, manual acks) and sends each
//!   publish into a bounded channel sized above the broker's in-flight window
//!   (`receive_maximum`): the broker, not us, holds back what we cannot take yet. Nothing is
//!   dropped.
//! - the writer takes what is queued (≤ `batch_max`), parses it (`payload.rs`, strict; every
//!   rejection counted with sensor and reason), resolves sensors (`catalog.rs`; unknown ones
//!   are listed), and commits the batch's effects in one transaction (`store.rs`:
//!   idempotency keys, per-sensor state machine `alarms.rs`, registry submissions); only then
//!   are the messages acknowledged. A crash before the commit loses nothing (the broker
//!   redelivers), one after it duplicates nothing (the keys are committed).
//! - the watchdog checks silence per sensor type and prunes old idempotency keys.

mod alarms;
mod catalog;
mod client;
mod error;
pub mod payload;
mod store;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use alarms::{AlarmKind, Change, Episode, SensorState, Verdict};
pub use catalog::{Catalog, SensorInfo};
pub use client::Connection;
pub use error::SensorsError;
pub use payload::{Format, Layout, Parsed, RejectReason, Rejection, SensorRef};

use crate::config::SensorsSettings;
use crate::domain::SensorId;
use crate::geo::CityIndex;
use crate::incidents::Intake;
use crate::obs::{self, SensorMetrics};
use crate::registry::{Registry, SubmitOutcome};
use client::{Acker, Delivery};
use store::{Item, Outcome, Work};

/// Category of an opened or tilted cover.
pub const CATEGORY_OPEN_MANHOLE: &str = "open_manhole";
/// Category of a flooding alarm.
pub const CATEGORY_FLOODING: &str = "flooding";
/// Category of battery-low and silence tickets (not offered to citizens).
pub const CATEGORY_MAINTENANCE: &str = "sensor_maintenance";

/// How often old idempotency keys are pruned.
const PRUNE_PERIOD: Duration = Duration::from_secs(300);
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// A sensor heard from but not in the registry file.
#[derive(Clone, Debug, Serialize)]
pub struct UnknownSensor {
    /// The id from the topic (or `eui:<devEUI>`).
    pub sensor: String,
    pub topic: String,
    pub messages: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// A refused message, as listed by `/api/sensors/rejected`.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedMessage {
    pub at: DateTime<Utc>,
    pub sensor: Option<String>,
    pub topic: String,
    pub reason: RejectReason,
    pub detail: String,
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Board {
    unknown: HashMap<String, UnknownSensor>,
    rejected: VecDeque<RejectedMessage>,
}

/// What the API reads.
#[derive(Clone, Debug)]
pub struct SensorsHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    catalog: Arc<Catalog>,
    registry: Registry,
    metrics: SensorMetrics,
    board: Mutex<Board>,
    capacity: usize,
    connection: watch::Receiver<Connection>,
    filters: Vec<String>,
}

/// `/api/sensors`.
#[derive(Clone, Debug, Serialize)]
pub struct SensorsSummary {
    pub connected: bool,
    pub connection: ConnectionView,
    pub topics: Vec<String>,
    pub known_sensors: usize,
    pub unknown_sensors: usize,
    pub messages: BTreeMap<&'static str, u64>,
    pub rejected: BTreeMap<&'static str, u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConnectionView {
    pub connected_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub session_present: bool,
    pub subscribed: bool,
}

/// `/api/sensors/{id}`.
#[derive(Clone, Debug, Serialize)]
pub struct SensorView {
    pub id: SensorId,
    #[serde(rename = "type")]
    pub kind: String,
    pub manhole: String,
    pub lat: f64,
    pub lon: f64,
    pub owner: String,
    pub owner_name: Option<String>,
    pub district: Option<String>,
    pub heartbeat_s: u64,
    pub silent_after_s: u64,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub state: Option<SensorState>,
}

impl SensorsHandle {
    pub fn summary(&self) -> SensorsSummary {
        let c = self.shared.connection.borrow().clone();
        let m = &self.shared.metrics;
        let mut messages = BTreeMap::new();
        for outcome in [
            obs::OUTCOME_APPLIED,
            obs::OUTCOME_DUPLICATE,
            obs::OUTCOME_STALE,
            obs::OUTCOME_REJECTED,
            obs::OUTCOME_UNKNOWN_SENSOR,
        ] {
            let total: u64 = [Format::Own, Format::Chirpstack, Format::Unknown]
                .iter()
                .map(|f| m.count(f.as_str(), outcome))
                .sum();
            messages.insert(outcome, total);
        }
        let rejected = RejectReason::ALL
            .iter()
            .map(|r| (r.as_str(), m.rejected_count(r.as_str())))
            .filter(|(_, n)| *n > 0)
            .collect();
        SensorsSummary {
            connected: c.connected_since.is_some(),
            connection: ConnectionView {
                connected_since: c.connected_since,
                last_error: c.last_error,
                session_present: c.session_present,
                subscribed: c.subscribed,
            },
            topics: self.shared.filters.clone(),
            known_sensors: self.shared.catalog.len(),
            unknown_sensors: self.shared.board.lock().unknown.len(),
            messages,
            rejected,
        }
    }

    /// Unknown sensors, most recently heard first.
    pub fn unknown(&self) -> Vec<UnknownSensor> {
        let mut list: Vec<UnknownSensor> =
            self.shared.board.lock().unknown.values().cloned().collect();
        list.sort_by_key(|u| std::cmp::Reverse(u.last_seen));
        list
    }

    /// Recent rejections, newest first.
    pub fn rejected(&self) -> Vec<RejectedMessage> {
        self.shared
            .board
            .lock()
            .rejected
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    pub fn connection(&self) -> Connection {
        self.shared.connection.borrow().clone()
    }

    /// One sensor with its stored state.
    pub async fn sensor(&self, id: &str) -> Result<Option<SensorView>, SensorsError> {
        let Ok(id) = SensorId::new(id) else {
            return Ok(None);
        };
        let Some(info) = self.shared.catalog.get(&id).cloned() else {
            return Ok(None);
        };
        let stored = store::load_state(&self.shared.registry, id.as_str()).await?;
        Ok(Some(view(&info, stored)))
    }

    /// Sensors with an active alarm (at most 1,000).
    pub async fn alarms(&self) -> Result<Vec<SensorView>, SensorsError> {
        let rows = store::active_alarms(&self.shared.registry).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, state)| {
                let id = SensorId::new(&id).ok()?;
                let info = self.shared.catalog.get(&id)?;
                Some(view(info, Some((state, None))))
            })
            .collect())
    }

    fn unknown_seen(&self, sensor: String, topic: &str, at: DateTime<Utc>) {
        let mut board = self.shared.board.lock();
        let len = board.unknown.len();
        if let Some(entry) = board.unknown.get_mut(&sensor) {
            entry.messages += 1;
            entry.last_seen = at;
            entry.topic = topic.to_owned();
            return;
        }
        if len >= self.shared.capacity
            && let Some(oldest) = board
                .unknown
                .values()
                .min_by_key(|u| u.last_seen)
                .map(|u| u.sensor.clone())
        {
            board.unknown.remove(&oldest);
        }
        tracing::warn!(
            sensor,
            topic,
            "message from a sensor that is not in the sensor registry"
        );
        board.unknown.insert(
            sensor.clone(),
            UnknownSensor {
                sensor,
                topic: topic.to_owned(),
                messages: 1,
                first_seen: at,
                last_seen: at,
            },
        );
        self.shared.metrics.unknown_sensors.inc();
    }

    fn rejected_seen(&self, entry: RejectedMessage) {
        let mut board = self.shared.board.lock();
        if board.rejected.len() >= self.shared.capacity {
            board.rejected.pop_front();
        }
        board.rejected.push_back(entry);
    }
}

fn view(info: &SensorInfo, stored: Option<(SensorState, Option<DateTime<Utc>>)>) -> SensorView {
    let (state, last_seen_at) = match stored {
        Some((state, seen)) => (Some(state), seen),
        None => (None, None),
    };
    SensorView {
        id: info.id.clone(),
        kind: info.kind.clone(),
        manhole: info.manhole.clone(),
        lat: info.position.lat,
        lon: info.position.lon,
        owner: info.owner.clone(),
        owner_name: info.owner_name.clone(),
        district: info.district.clone(),
        heartbeat_s: info.settings.heartbeat.as_secs(),
        silent_after_s: info.settings.silent_after.as_secs(),
        last_seen_at,
        state,
    }
}

/// The running stage.
pub struct SensorsStage {
    pub handle: SensorsHandle,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SensorsStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SensorsStage")
    }
}

impl SensorsStage {
    /// Resolves the sensor registry on `city`, checks the categories alarms raise, creates
    /// missing state rows, then connects to the broker and starts the writer and watchdog.
    pub async fn start(
        settings: &SensorsSettings,
        city: &CityIndex,
        registry: Registry,
        intake: Intake,
        metrics: SensorMetrics,
        stop: CancellationToken,
    ) -> Result<Self, SensorsError> {
        let catalog = Arc::new(Catalog::build(settings, city)?);
        for code in [
            CATEGORY_OPEN_MANHOLE,
            CATEGORY_FLOODING,
            CATEGORY_MAINTENANCE,
        ] {
            if intake.config().category(code).is_none() {
                return Err(SensorsError::MissingCategory(code));
            }
        }
        let ids: Vec<String> = catalog.iter().map(|s| s.id.to_string()).collect();
        for chunk in ids.chunks(5_000) {
            store::ensure_rows(&registry, chunk.to_vec()).await?;
        }
        let layout = Arc::new(Layout {
            own_prefix: settings.topic_prefix.clone(),
            chirpstack: settings.chirpstack.clone(),
            max_payload_bytes: settings.max_payload_bytes,
        });
        let filters = layout.filters();
        let (tx, rx) = mpsc::channel(client::channel_capacity(&settings.mqtt));
        let subscriber = client::spawn(
            &settings.mqtt,
            client::subscription_filters(&settings.mqtt, &filters),
            tx,
            metrics.clone(),
            stop.clone(),
        );
        let shown_filters = client::subscription_filters(&settings.mqtt, &filters)
            .into_iter()
            .map(|f| f.path)
            .collect();
        let handle = SensorsHandle {
            shared: Arc::new(Shared {
                catalog: catalog.clone(),
                registry: registry.clone(),
                metrics: metrics.clone(),
                board: Mutex::new(Board::default()),
                capacity: settings.recent_rejections,
                connection: subscriber.connection.clone(),
                filters: shown_filters,
            }),
        };
        let ctx = Ctx {
            handle: handle.clone(),
            catalog,
            registry,
            intake,
            metrics,
            batch_max: settings.batch_max,
            stop: stop.clone(),
        };
        let writer = tokio::spawn(run_writer(ctx.clone(), layout, rx, subscriber.acker));
        let watchdog = tokio::spawn(run_watchdog(
            ctx,
            subscriber.connection,
            settings.silence_check,
            settings.message_retention,
        ));
        tracing::info!(
            sensors = handle.shared.catalog.len(),
            topics = ?handle.shared.filters,
            "sensor stage started"
        );
        Ok(Self {
            handle,
            tasks: vec![subscriber.task, writer, watchdog],
        })
    }

    /// Waits for the tasks after the stop token was cancelled: the subscriber disconnects,
    /// the writer commits what it holds (unacknowledged messages are redelivered later).
    pub async fn stopped(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "sensor stage task ended abnormally");
            }
        }
    }
}

#[derive(Clone)]
struct Ctx {
    handle: SensorsHandle,
    catalog: Arc<Catalog>,
    registry: Registry,
    intake: Intake,
    metrics: SensorMetrics,
    batch_max: usize,
    stop: CancellationToken,
}

/// Commits `items`, retrying until it succeeds or the stage stops (then `None`: nothing is
/// acknowledged and the broker redelivers).
async fn commit(ctx: &Ctx, items: Arc<Vec<Item>>) -> Option<store::BatchResult> {
    let mut wait = RETRY_MIN;
    loop {
        let started = std::time::Instant::now();
        match store::apply_batch(&ctx.registry, &ctx.intake, items.clone()).await {
            Ok(result) => {
                ctx.metrics
                    .commit_seconds
                    .observe(started.elapsed().as_secs_f64());
                return Some(result);
            }
            Err(error) => {
                ctx.metrics.commit_failures.inc();
                tracing::error!(%error, items = items.len(), retry_in_ms = wait.as_millis() as u64, "sensor batch not committed; retrying (nothing acknowledged)");
                tokio::select! {
                    () = ctx.stop.cancelled() => return None,
                    () = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

fn record_effects(ctx: &Ctx, effects: &[store::Effect], committed_at: DateTime<Utc>) {
    for effect in effects {
        match &effect.change {
            Change::Raised { kind, episode, at } => {
                ctx.metrics
                    .alarms_raised
                    .get_or_create(&obs::AlarmLabel {
                        alarm: kind.as_str(),
                    })
                    .inc();
                let latency = (committed_at - *at).num_microseconds().unwrap_or(0) as f64 / 1e6;
                ctx.metrics
                    .alarm_to_appeal_seconds
                    .observe(latency.max(0.0));
                let outcome = match effect.outcome {
                    Some(SubmitOutcome::Created) => "opened",
                    Some(SubmitOutcome::Joined) => "joined",
                    Some(SubmitOutcome::Repeated) | None => "repeated",
                };
                tracing::info!(sensor = %effect.sensor.id, manhole = %effect.sensor.manhole, alarm = kind.as_str(), episode, appeal = effect.appeal_number.as_deref().unwrap_or("-"), outcome, "sensor alarm raised");
            }
            Change::Cleared { kind, episode, .. } => {
                ctx.metrics
                    .alarms_cleared
                    .get_or_create(&obs::AlarmLabel {
                        alarm: kind.as_str(),
                    })
                    .inc();
                tracing::info!(sensor = %effect.sensor.id, alarm = kind.as_str(), episode, appeal = effect.appeal_number.as_deref().unwrap_or("-"), "sensor alarm cleared");
            }
        }
    }
}

/// Parses a batch (off the runtime when it is large: ~5 µs a message).
async fn parse_all(
    layout: &Arc<Layout>,
    batch: Vec<Delivery>,
) -> Vec<(Delivery, Result<Parsed, Rejection>)> {
    let parse = |layout: &Layout, batch: Vec<Delivery>| {
        batch
            .into_iter()
            .map(|d| {
                let parsed = match std::str::from_utf8(&d.publish.topic) {
                    Ok(topic) => layout.parse(topic, &d.publish.payload),
                    Err(_) => Err(Rejection {
                        sensor: None,
                        reason: RejectReason::WrongTopic,
                        detail: "the topic is not UTF-8".to_owned(),
                    }),
                };
                (d, parsed)
            })
            .collect::<Vec<_>>()
    };
    if batch.len() < 64 {
        return parse(layout, batch);
    }
    let layout = layout.clone();
    match tokio::task::spawn_blocking(move || parse(&layout, batch)).await {
        Ok(parsed) => parsed,
        // Parsing is total; a panic here is a bug, and the messages are redelivered.
        Err(error) => {
            tracing::error!(%error, "sensor payload parsing panicked");
            Vec::new()
        }
    }
}

/// Sends what acknowledgements fit into rumqttc's request queue, in order.
fn flush_acks(acker: &Acker, unacked: &mut VecDeque<Delivery>) {
    while let Some(delivery) = unacked.front() {
        if !acker.try_ack(delivery) {
            return;
        }
        unacked.pop_front();
    }
}

async fn run_writer(ctx: Ctx, layout: Arc<Layout>, mut rx: mpsc::Receiver<Delivery>, acker: Acker) {
    // Committed but not yet acknowledged (bounded by the broker's in-flight window).
    let mut unacked: VecDeque<Delivery> = VecDeque::new();
    loop {
        flush_acks(&acker, &mut unacked);
        let first = if unacked.is_empty() {
            rx.recv().await
        } else {
            tokio::select! {
                first = rx.recv() => first,
                () = tokio::time::sleep(Duration::from_millis(5)) => continue,
            }
        };
        let Some(first) = first else {
            break;
        };
        let mut batch = Vec::with_capacity(ctx.batch_max.min(1024));
        batch.push(first);
        while batch.len() < ctx.batch_max {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let parsed = parse_all(&layout, batch).await;
        let mut items = Vec::new();
        let mut formats = Vec::new();
        let mut deliveries = Vec::with_capacity(parsed.len());
        for (delivery, result) in parsed {
            let topic = String::from_utf8_lossy(&delivery.publish.topic).into_owned();
            match result {
                Err(rejection) => {
                    let format = layout.route(&topic).map_or(Format::Unknown, |(f, _)| f);
                    ctx.metrics.message(format.as_str(), obs::OUTCOME_REJECTED);
                    ctx.metrics
                        .rejected
                        .get_or_create(&obs::ReasonLabel {
                            reason: rejection.reason.as_str(),
                        })
                        .inc();
                    tracing::warn!(sensor = rejection.sensor.as_deref().unwrap_or("?"), topic = %topic.chars().take(120).collect::<String>(), reason = rejection.reason.as_str(), detail = %rejection.detail, "sensor message rejected");
                    ctx.handle.rejected_seen(RejectedMessage {
                        at: delivery.received_at,
                        sensor: rejection.sensor,
                        topic: topic.chars().take(200).collect(),
                        reason: rejection.reason,
                        detail: rejection.detail,
                        bytes: delivery.publish.payload.len(),
                    });
                }
                Ok(parsed) => match ctx.catalog.lookup(&parsed.sensor) {
                    None => {
                        ctx.metrics
                            .message(parsed.format.as_str(), obs::OUTCOME_UNKNOWN_SENSOR);
                        ctx.handle.unknown_seen(
                            parsed.sensor.label(),
                            &topic,
                            delivery.received_at,
                        );
                    }
                    Some(info) => {
                        items.push(Item {
                            sensor: info.clone(),
                            work: Work::Reading {
                                key: payload::message_key(&info.id, &parsed.reading),
                                reading: parsed.reading,
                                received_at: delivery.received_at,
                                topic,
                            },
                        });
                        formats.push((parsed.format, delivery.received));
                    }
                },
            }
            deliveries.push(delivery);
        }
        if !items.is_empty() {
            let batch_size = items.len();
            let Some(result) = commit(&ctx, Arc::new(items)).await else {
                break;
            };
            let committed_at = Utc::now();
            ctx.metrics.batch_size.observe(batch_size as f64);
            for (outcome, (format, received)) in result.outcomes.iter().zip(&formats) {
                let label = match outcome {
                    Outcome::Applied | Outcome::NoChange => obs::OUTCOME_APPLIED,
                    Outcome::Duplicate => obs::OUTCOME_DUPLICATE,
                    Outcome::Stale => obs::OUTCOME_STALE,
                };
                ctx.metrics.message(format.as_str(), label);
                ctx.metrics
                    .receipt_to_commit_seconds
                    .observe(received.elapsed().as_secs_f64());
            }
            record_effects(&ctx, &result.effects, committed_at);
        }
        unacked.extend(deliveries);
    }
}

async fn run_watchdog(
    ctx: Ctx,
    connection: watch::Receiver<Connection>,
    period: Duration,
    retention: Duration,
) {
    let min_silent = ctx
        .catalog
        .iter()
        .map(|s| s.settings.silent_after)
        .min()
        .unwrap_or(Duration::from_secs(3600));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = std::time::Instant::now();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Silence is judged only while connected, counted from the (re)connection: messages
        // queued on the broker during an outage arrive first.
        let Some(since) = connection.borrow().connected_since else {
            continue;
        };
        let now = Utc::now();
        let before = now - chrono::Duration::from_std(min_silent).unwrap_or(chrono::Duration::MAX);
        let candidates = match store::silence_candidates(&ctx.registry, before).await {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "silence check failed");
                continue;
            }
        };
        let items: Vec<Item> = candidates
            .into_iter()
            .filter_map(|(id, last_seen)| {
                let info = ctx.catalog.get(&SensorId::new(&id).ok()?)?;
                let from = last_seen.map_or(since, |s| s.max(since));
                let due = from + chrono::Duration::from_std(info.settings.silent_after).ok()?;
                (now >= due).then(|| Item {
                    sensor: info.clone(),
                    work: Work::Silence {
                        watch_from: since,
                        now,
                    },
                })
            })
            .collect();
        for chunk in items.chunks(ctx.batch_max.max(1)) {
            let Some(result) = commit(&ctx, Arc::new(chunk.to_vec())).await else {
                return;
            };
            record_effects(&ctx, &result.effects, Utc::now());
        }
        if last_prune.elapsed() >= PRUNE_PERIOD {
            last_prune = std::time::Instant::now();
            let cutoff =
                now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
            match store::prune_keys(&ctx.registry, cutoff).await {
                Ok(n) => tracing::debug!(pruned = n, "old sensor message keys pruned"),
                Err(error) => tracing::warn!(%error, "pruning sensor message keys failed"),
            }
        }
    }
}
