//! Vehicle GPS telemetry: trackers → fixes → live fleet (R-tree) and day-partitioned tracks
//! in PostgreSQL; liveness per vehicle type (docs/telemetry.md).
//!
//! Consumes Wialon IPS 2.0 and Teltonika Codec 8/8E over TCP, OsmAnd over HTTP on its own
//! port (`wialon.rs`, `teltonika.rs`, `osmand.rs`: strict, pure parsers; `json.rs` is the MQTT
//! schema); produces the live fleet (`live.rs`), tracks (`store.rs`) and liveness events.
//!
//! One way in: [`TelemetryStage::start`] → a [`TelemetryHandle`] for the API.
//!
//! Tasks and queues:
//! - one accept loop per protocol, one task per connection behind a semaphore
//!   (`max_connections`); every packet answered in the protocol's terms (`server.rs`);
//! - [`Core::take`]: the fix filter and live update under one short lock, then an awaited
//!   send into the bounded store queue (`queue_capacity`): full → the connection stops
//!   reading (TCP back-pressure), nothing dropped;
//! - the writer: up to `batch_max` fixes per INSERT, retried with backoff on failure;
//! - the watchdog: liveness (silent / idle / off route / moving / stopped) once a second,
//!   transitions broadcast to `/api/vehicles/stream` and counted.

mod collection;
mod error;
mod fix;
pub mod json;
mod live;
pub mod osmand;
mod server;
mod store;
pub mod teltonika;
pub mod wialon;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use collection::{PointState, PointStatus, Stop};
pub use error::TelemetryError;
pub use fix::{Fix, Protocol, RejectReason, Rejection};
pub use live::{Device, Devices, LiveVehicle, State};
pub use store::{TrackPoint, TrackStore};

use crate::config::{TelemetrySettings, VehicleEntry};
use crate::domain::Position;
use crate::obs::{StateLabel, TelemetryMetrics};
use live::{Filter, Fleet, Taken};
use store::Row;

/// Recent rejections kept for `/api/telemetry/rejected`.
const RECENT_REJECTIONS: usize = 500;
/// Live updates buffered per stream subscriber; a slower one skips ahead (`lagged`).
const UPDATES_CAPACITY: usize = 8192;
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// A refused packet or fix, as `/api/telemetry/rejected` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedPacket {
    pub at: DateTime<Utc>,
    pub protocol: Protocol,
    /// Vehicle id, or the login id a tracker sent when it is not registered.
    pub device: Option<String>,
    pub peer: String,
    pub reason: RejectReason,
    pub detail: String,
}

/// What the connections share.
pub(crate) struct Core {
    settings: TelemetrySettings,
    devices: RwLock<Arc<Devices>>,
    fleet: Mutex<Fleet>,
    filter: Filter,
    metrics: TelemetryMetrics,
    queue: mpsc::Sender<Row>,
    updates: broadcast::Sender<LiveVehicle>,
    rejected: Mutex<VecDeque<RejectedPacket>>,
    route_points: HashMap<String, Vec<(String, Position)>>,
}

fn password_ok(device: &Device, sent: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    match (&device.entry.password, sent) {
        (None, _) => true,
        (Some(want), Some(got)) => bool::from(want.0.as_bytes().ct_eq(got.as_bytes())),
        (Some(_), None) => false,
    }
}

impl Core {
    fn device(&self, imei: &str) -> Option<Arc<Device>> {
        self.devices.read().get(imei)
    }

    /// Counts, logs (with device, peer and reason) and lists one refusal.
    fn reject(
        &self,
        protocol: Protocol,
        device: Option<&str>,
        peer: SocketAddr,
        rejection: &Rejection,
    ) {
        self.metrics
            .reject(protocol.as_str(), rejection.reason.as_str());
        // Filter refusals are routine (debug); broken packets are worth a warning.
        match rejection.reason {
            RejectReason::Duplicate | RejectReason::ImpossibleJump | RejectReason::Inaccurate => {
                tracing::debug!(protocol = protocol.as_str(), device, %peer, reason = rejection.reason.as_str(), detail = %rejection.detail, "fix refused")
            }
            _ => {
                tracing::warn!(protocol = protocol.as_str(), device, %peer, reason = rejection.reason.as_str(), detail = %rejection.detail, "packet refused")
            }
        }
        let mut list = self.rejected.lock();
        if list.len() == RECENT_REJECTIONS {
            list.pop_back();
        }
        list.push_front(RejectedPacket {
            at: Utc::now(),
            protocol,
            device: device.map(str::to_owned),
            peer: peer.to_string(),
            reason: rejection.reason,
            detail: rejection.detail.clone(),
        });
    }

    /// Filters a fix, updates the live fleet and queues it for the track store (waiting for
    /// room: back-pressure).
    async fn take(&self, protocol: Protocol, device: &Device, fix: Fix, peer: SocketAddr) {
        let now = Utc::now();
        let verdict = {
            let mut fleet = self.fleet.lock();
            let verdict = fleet.accept(device, &fix, protocol, &self.filter, now);
            if verdict == Ok(Taken::Live)
                && let Some(view) = fleet.get(&device.entry.id)
            {
                // No receivers is fine (nobody is watching the map).
                self.updates.send(view).ok();
            }
            verdict
        };
        let late = match verdict {
            Ok(Taken::Live) => fix.black_box,
            Ok(Taken::Late) => true,
            Err(r) => {
                self.reject(protocol, Some(&device.entry.id), peer, &r);
                return;
            }
        };
        self.metrics.fix(protocol.as_str(), late);
        let row = Row {
            vehicle: device.entry.id.clone(),
            fix,
            late,
            protocol,
            received_at: now,
        };
        match self.queue.try_send(row) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(row)) => {
                let started = Instant::now();
                // Closed only at shutdown, when the fix has nowhere to go anyway.
                self.queue.send(row).await.ok();
                self.metrics
                    .backpressure_micros
                    .inc_by(started.elapsed().as_micros() as u64);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
        self.metrics
            .queue_depth
            .set((self.queue.max_capacity() - self.queue.capacity()) as i64);
    }

    fn off_route(&self, device: &Device, at: Position) -> bool {
        let Some(points) = device
            .entry
            .route
            .as_ref()
            .and_then(|r| self.route_points.get(r))
        else {
            return false;
        };
        !points.is_empty()
            && points
                .iter()
                .all(|(_, p)| p.distance_m(&at) > self.settings.off_route_m)
    }
}

/// `/api/routes`: one route.
#[derive(Clone, Debug, Serialize)]
pub struct RouteView {
    pub id: String,
    pub start: String,
    pub end: String,
    pub points: usize,
    pub vehicles: Vec<String>,
}

fn route_vehicles(devices: &Devices, route: &str) -> Vec<String> {
    let mut v: Vec<String> = devices
        .all()
        .filter(|d| d.entry.route.as_deref() == Some(route) && d.kind.collects)
        .map(|d| d.entry.id.clone())
        .collect();
    v.sort();
    v
}

/// The running stage: its tasks and the handle.
pub struct TelemetryStage {
    handle: TelemetryHandle,
    tasks: Vec<JoinHandle<()>>,
    /// Where each server listens (the configured port may be 0 in tests).
    pub addresses: HashMap<Protocol, SocketAddr>,
}

/// What the API reads.
#[derive(Clone)]
pub struct TelemetryHandle {
    core: Arc<Core>,
    store: Arc<TrackStore>,
}

impl std::fmt::Debug for TelemetryHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelemetryHandle")
    }
}

/// `/api/telemetry`.
#[derive(Clone, Debug, Serialize)]
pub struct TelemetrySummary {
    pub vehicles: usize,
    pub by_state: std::collections::BTreeMap<&'static str, i64>,
    pub fixes: std::collections::BTreeMap<&'static str, u64>,
    pub rejected: std::collections::BTreeMap<String, u64>,
    pub listening: std::collections::BTreeMap<&'static str, Option<String>>,
}

impl TelemetryStage {
    /// Binds every configured server (a bind failure is an error before anything runs),
    /// then starts the writer, watchdog and accept loops. `route_points` are the collection
    /// points of each route (for off-route), resolved by the caller from the city layers.
    pub async fn start(
        settings: &TelemetrySettings,
        pool: deadpool_postgres::Pool,
        route_points: HashMap<String, Vec<(String, Position)>>,
        metrics: TelemetryMetrics,
        stop: CancellationToken,
    ) -> Result<Self, TelemetryError> {
        let bind = |protocol: Protocol, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| TelemetryError::Bind {
                    protocol: protocol.as_str(),
                    addr,
                    source,
                })
        };
        let mut listeners = Vec::new();
        for (protocol, addr) in [
            (Protocol::Wialon, settings.wialon_listen),
            (Protocol::Teltonika, settings.teltonika_listen),
            (Protocol::Osmand, settings.osmand_listen),
        ] {
            if let Some(addr) = addr {
                listeners.push((protocol, bind(protocol, addr).await?));
            }
        }
        let (queue, rx) = mpsc::channel(settings.queue_capacity);
        let devices = Devices::build(settings, &settings.vehicles);
        let mut fleet = Fleet::default();
        fleet.sync(&devices);
        let core = Arc::new(Core {
            settings: settings.clone(),
            devices: RwLock::new(Arc::new(devices)),
            fleet: Mutex::new(fleet),
            filter: Filter::from_settings(settings),
            metrics,
            queue,
            updates: broadcast::channel(UPDATES_CAPACITY).0,
            rejected: Mutex::new(VecDeque::new()),
            route_points,
        });
        let store = Arc::new(TrackStore::new(pool));
        let mut tasks = vec![
            tokio::spawn(writer(
                rx,
                store.clone(),
                core.metrics.clone(),
                settings.batch_max,
                stop.clone(),
            )),
            tokio::spawn(watchdog(core.clone(), stop.clone())),
        ];
        let limit = Arc::new(Semaphore::new(settings.max_connections));
        let mut addresses = HashMap::new();
        for (protocol, listener) in listeners {
            if let Ok(addr) = listener.local_addr() {
                addresses.insert(protocol, addr);
            }
            tracing::info!(protocol = protocol.as_str(), address = ?listener.local_addr().ok(), "telemetry server listening");
            let (core, limit, stop) = (core.clone(), limit.clone(), stop.clone());
            tasks.push(match protocol {
                Protocol::Wialon => tokio::spawn(server::accept_loop(
                    listener,
                    protocol,
                    core,
                    limit,
                    stop,
                    server::wialon_connection,
                )),
                Protocol::Teltonika => tokio::spawn(server::accept_loop(
                    listener,
                    protocol,
                    core,
                    limit,
                    stop,
                    server::teltonika_connection,
                )),
                Protocol::Osmand | Protocol::Mqtt => {
                    let app = axum::Router::new()
                        .fallback(server::osmand_report)
                        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
                        .with_state(server::OsmandState { core });
                    tokio::spawn(async move {
                        let served = axum::serve(
                            listener,
                            app.into_make_service_with_connect_info::<SocketAddr>(),
                        )
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                        if let Err(error) = served {
                            tracing::error!(%error, "OsmAnd server stopped");
                        }
                    })
                }
            });
        }
        Ok(Self {
            handle: TelemetryHandle { core, store },
            tasks,
            addresses,
        })
    }

    pub fn handle(&self) -> TelemetryHandle {
        self.handle.clone()
    }

    /// Waits for the tasks after the stop token fired; the writer drains the queue first.
    pub async fn join(self) {
        drop(self.handle);
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "telemetry task failed");
            }
        }
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Row>,
    store: Arc<TrackStore>,
    metrics: TelemetryMetrics,
    batch_max: usize,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(batch_max);
    loop {
        let got = tokio::select! {
            n = rx.recv_many(&mut batch, batch_max) => n,
            // At stop: take nothing new, write what is queued, then end.
            () = stop.cancelled(), if !rx.is_closed() => {
                rx.close();
                continue;
            }
        };
        if got == 0 {
            break;
        }
        metrics.batch_size.observe(batch.len() as f64);
        let mut wait = RETRY_MIN;
        loop {
            match store.insert(&batch).await {
                Ok(_) => break,
                Err(error) => {
                    metrics.store_failures.inc();
                    tracing::error!(%error, fixes = batch.len(), "track insert failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(RETRY_MAX);
                }
            }
        }
        batch.clear();
        metrics.queue_depth.set(rx.len() as i64);
    }
}

async fn watchdog(core: Arc<Core>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let devices = core.devices.read().clone();
        let (changed, counts) = {
            let mut fleet = core.fleet.lock();
            let changed = fleet.check(&devices, Utc::now(), &|d, p| core.off_route(d, p));
            (changed, fleet.count_by_state())
        };
        for v in changed {
            core.metrics
                .events
                .get_or_create(&StateLabel {
                    state: v.state.as_str(),
                })
                .inc();
            tracing::info!(vehicle = %v.id, state = v.state.as_str(), "vehicle state changed");
            core.updates.send(v).ok();
        }
        for state in State::ALL {
            core.metrics
                .vehicles
                .get_or_create(&StateLabel {
                    state: state.as_str(),
                })
                .set(counts.get(&state).copied().unwrap_or(0));
        }
    }
}

/// Category of the appeal raised for a collection point missed by its route.
pub const CATEGORY_WASTE_NOT_COLLECTED: &str = "waste_not_collected";

impl TelemetryHandle {
    /// Raises one appeal (`waste_not_collected`) per point of `route` missed on `day`, through
    /// the registry's observation path; idempotent per (route, day, point): a second call (or
    /// a restart) records nothing new. Returns each missed point with its submission.
    pub async fn raise_missed(
        &self,
        route: &str,
        day: chrono::NaiveDate,
        registry: &crate::registry::Registry,
        intake: &crate::incidents::Intake,
    ) -> Result<Vec<(String, crate::registry::Submission)>, String> {
        let Some(points) = self
            .route_day(route, day)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(Vec::new());
        };
        let category = crate::domain::Category::new(CATEGORY_WASTE_NOT_COLLECTED)
            .map_err(|e| e.to_string())?;
        let vehicles = route_vehicles(&self.core.devices.read(), route);
        let mut missed = Vec::new();
        for p in points.iter().filter(|p| p.state == PointState::Missed) {
            let obs = crate::domain::Observation {
                category: category.clone(),
                source: crate::domain::Source::Vehicle,
                source_ref: format!("vehicle:route:{route}:{day}:{}", p.point),
                position: Position::new(p.lat, p.lon),
                uncertainty_m: Some(self.core.settings.served_radius_m),
                address: None,
                description: Some(format!(
                    "Collection point {} of route {route} was not served on {day} (vehicles: {})",
                    p.point,
                    vehicles.join(", ")
                )),
                actor: format!("route:{route}"),
                observed_at: Utc::now(),
                // The day's tracks are the evidence: where to replay them.
                evidence: vec![crate::domain::EvidenceRef {
                    kind: "gps_track".into(),
                    uri: Some(format!("/api/routes/{route}/day?date={day}")),
                    data: Some(serde_json::json!({
                        "route": route, "date": day.to_string(), "point": p.point,
                        "vehicles": vehicles,
                    })),
                }],
            };
            let plan = intake.plan(&obs).map_err(|e| e.to_string())?;
            let submission = registry
                .submit(&obs, &plan)
                .await
                .map_err(|e| e.to_string())?;
            missed.push((p.point.clone(), submission));
        }
        Ok(missed)
    }

    /// Every vehicle, by id.
    pub fn live(&self) -> Vec<LiveVehicle> {
        self.core.fleet.lock().all()
    }

    pub fn vehicle(&self, id: &str) -> Option<LiveVehicle> {
        self.core.fleet.lock().get(id)
    }

    /// Vehicles within `radius_m` of a point, nearest first.
    pub fn near(&self, at: Position, radius_m: f64) -> Vec<(LiveVehicle, f64)> {
        self.core.fleet.lock().near(at, radius_m)
    }

    /// Live position and state changes, as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveVehicle> {
        self.core.updates.subscribe()
    }

    /// A vehicle's stored track in `[from, to)`.
    pub async fn track(
        &self,
        vehicle: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TrackPoint>, TelemetryError> {
        self.store.track(vehicle, from, to, limit).await
    }

    /// Recent refusals, newest first.
    pub fn rejected(&self) -> Vec<RejectedPacket> {
        self.core.rejected.lock().iter().cloned().collect()
    }

    pub fn summary(&self) -> TelemetrySummary {
        let m = &self.core.metrics;
        let by_state = {
            let counts = self.core.fleet.lock().count_by_state();
            State::ALL
                .iter()
                .map(|s| (s.as_str(), counts.get(s).copied().unwrap_or(0)))
                .collect()
        };
        let mut rejected = std::collections::BTreeMap::new();
        for p in Protocol::ALL {
            for r in RejectReason::ALL {
                let n = m.rejected_count(p.as_str(), r.as_str());
                if n > 0 {
                    rejected.insert(format!("{}:{}", p.as_str(), r.as_str()), n);
                }
            }
        }
        let s = &self.core.settings;
        TelemetrySummary {
            vehicles: self.core.devices.read().len(),
            by_state,
            fixes: Protocol::ALL
                .iter()
                .map(|p| (p.as_str(), m.fix_count(p.as_str())))
                .collect(),
            rejected,
            listening: [
                ("wialon", s.wialon_listen),
                ("teltonika", s.teltonika_listen),
                ("osmand", s.osmand_listen),
            ]
            .into_iter()
            .map(|(k, a)| (k, a.map(|a| a.to_string())))
            .collect(),
        }
    }

    /// Every route with its window and vehicles.
    pub fn routes(&self) -> Vec<RouteView> {
        let devices = self.core.devices.read().clone();
        self.core
            .settings
            .routes
            .iter()
            .map(|(name, r)| RouteView {
                id: name.clone(),
                start: format!("{:02}:{:02}", r.start_s / 3600, r.start_s / 60 % 60),
                end: format!("{:02}:{:02}", r.end_s / 3600, r.end_s / 60 % 60),
                points: r.points.len(),
                vehicles: route_vehicles(&devices, name),
            })
            .collect()
    }

    /// The collection points of a route on a local day: served / late / missed / pending,
    /// from the stored tracks of the route's vehicles. `None`: no such route.
    pub async fn route_day(
        &self,
        route: &str,
        day: chrono::NaiveDate,
    ) -> Result<Option<Vec<PointStatus>>, TelemetryError> {
        let s = &self.core.settings;
        let Some(r) = s.routes.get(route) else {
            return Ok(None);
        };
        let points = self
            .core
            .route_points
            .get(route)
            .cloned()
            .unwrap_or_default();
        let midnight = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default()
            - chrono::Duration::minutes(i64::from(s.utc_offset_minutes));
        let start = midnight + chrono::Duration::seconds(i64::from(r.start_s));
        let end = midnight + chrono::Duration::seconds(i64::from(r.end_s));
        // Late service counts until the end of the local day.
        let until = midnight + chrono::Duration::days(1);
        let devices = self.core.devices.read().clone();
        let radius = s.stop_radius_m;
        let min_stop = s.stop_min.as_secs() as i64;
        let mut stops = Vec::new();
        for vehicle in route_vehicles(&devices, route) {
            let track = self.store.track(&vehicle, start, until, 200_000).await?;
            stops.extend(collection::stops(&vehicle, &track, radius, min_stop));
        }
        Ok(Some(collection::route_day(
            &points,
            &stops,
            s.served_radius_m,
            s.served_min.as_secs() as i64,
            end,
            Utc::now(),
        )))
    }

    /// Swaps in a re-read vehicle registry (hot reload); connections of removed devices
    /// keep their session until they reconnect, new fixes of removed vehicles are refused.
    pub fn replace_vehicles(&self, vehicles: &[VehicleEntry]) {
        let devices = Devices::build(&self.core.settings, vehicles);
        self.core.fleet.lock().sync(&devices);
        *self.core.devices.write() = Arc::new(devices);
        tracing::info!(vehicles = vehicles.len(), "vehicle registry reloaded");
    }
}
