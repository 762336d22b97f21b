//! Live state of the fleet: the device registry (IMEI → vehicle, hot-swappable), each
//! vehicle's latest position and liveness, and an R-tree of live positions.
//!
//! The fix filter lives here: duplicates (same vehicle and timestamp, remembered for the last
//! `RECENT` fixes), fixes worse than the HDOP/accuracy limits, fixes from the future, and
//! impossible jumps (implied speed above the type's limit from the previous live fix) are
//! refused with a reason. A fix older than the live one is *late*: it goes to the track, the
//! live position does not move back.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use serde::Serialize;

use super::fix::{Fix, Protocol, RejectReason, Rejection};
use crate::config::{TelemetrySettings, VehicleEntry, VehicleTypeSettings};
use crate::domain::Position;

/// Timestamps remembered per vehicle for duplicate detection.
const RECENT: usize = 1024;
/// Below this speed (km/h) a vehicle counts as standing.
const STANDING_KMH: f64 = 3.0;

/// A tracker known to the registry.
#[derive(Clone, Debug)]
pub struct Device {
    pub entry: VehicleEntry,
    pub kind: VehicleTypeSettings,
}

/// The device registry, by login id (IMEI or OsmAnd id).
#[derive(Debug, Default)]
pub struct Devices {
    by_imei: HashMap<String, Arc<Device>>,
}

impl Devices {
    pub fn build(settings: &TelemetrySettings, vehicles: &[VehicleEntry]) -> Self {
        let by_imei = vehicles
            .iter()
            .filter_map(|v| {
                let kind = settings.types.get(&v.kind)?.clone();
                Some((
                    v.imei.clone(),
                    Arc::new(Device {
                        entry: v.clone(),
                        kind,
                    }),
                ))
            })
            .collect();
        Self { by_imei }
    }

    pub fn get(&self, imei: &str) -> Option<Arc<Device>> {
        self.by_imei.get(imei).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_imei.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_imei.is_empty()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Device>> {
        self.by_imei.values()
    }
}

/// A vehicle's liveness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    NeverSeen,
    Moving,
    Stopped,
    /// Standing with the engine on past the type's `idle_after`.
    Idle,
    /// Nothing received past the type's `silent_after`.
    Silent,
    OffRoute,
}

impl State {
    pub const ALL: [State; 6] = [
        State::NeverSeen,
        State::Moving,
        State::Stopped,
        State::Idle,
        State::Silent,
        State::OffRoute,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            State::NeverSeen => "never_seen",
            State::Moving => "moving",
            State::Stopped => "stopped",
            State::Idle => "idle",
            State::Silent => "silent",
            State::OffRoute => "off_route",
        }
    }
}

/// What the map shows of one vehicle.
#[derive(Clone, Debug, Serialize)]
pub struct LiveVehicle {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub depot: Option<String>,
    pub route: Option<String>,
    pub state: State,
    pub at: Option<DateTime<Utc>>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f64>,
    pub course_deg: Option<f64>,
    pub ignition: Option<bool>,
    pub protocol: Option<Protocol>,
    /// When we last received anything from it (a late fix counts).
    pub last_received: Option<DateTime<Utc>>,
}

#[derive(Debug)]
struct VehicleLive {
    view: LiveVehicle,
    recent: BTreeSet<i64>,
    /// Since when it has been standing (for idle).
    standing_since: Option<DateTime<Utc>>,
}

type Point = GeomWithData<[f64; 2], String>;

/// What became of an accepted fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Newest fix of the vehicle: the live position moved.
    Live,
    /// Older than the live position: track only.
    Late,
}

/// Limits of the fix filter.
#[derive(Clone, Copy, Debug)]
pub struct Filter {
    pub max_hdop: f64,
    pub max_accuracy_m: f64,
    pub future_tolerance: chrono::Duration,
}

impl Filter {
    pub fn from_settings(s: &TelemetrySettings) -> Self {
        Self {
            max_hdop: s.max_hdop,
            max_accuracy_m: s.max_accuracy_m,
            future_tolerance: chrono::Duration::from_std(s.future_tolerance)
                .unwrap_or(chrono::Duration::minutes(5)),
        }
    }
}

/// Every vehicle's live state and the R-tree of live positions.
#[derive(Debug, Default)]
pub struct Fleet {
    vehicles: HashMap<String, VehicleLive>,
    tree: RTree<Point>,
}

fn key(p: Position) -> [f64; 2] {
    [p.lon, p.lat]
}

impl Fleet {
    /// Registers every device (new ones as never seen); vehicles gone from the registry go.
    pub fn sync(&mut self, devices: &Devices) {
        let mut keep = std::collections::HashSet::new();
        for d in devices.all() {
            keep.insert(d.entry.id.clone());
            let v = self
                .vehicles
                .entry(d.entry.id.clone())
                .or_insert_with(|| VehicleLive {
                    view: LiveVehicle {
                        id: d.entry.id.clone(),
                        kind: d.entry.kind.clone(),
                        depot: None,
                        route: None,
                        state: State::NeverSeen,
                        at: None,
                        lat: None,
                        lon: None,
                        speed_kmh: None,
                        course_deg: None,
                        ignition: None,
                        protocol: None,
                        last_received: None,
                    },
                    recent: BTreeSet::new(),
                    standing_since: None,
                });
            v.view.kind = d.entry.kind.clone();
            v.view.depot = d.entry.depot.clone();
            v.view.route = d.entry.route.clone();
        }
        let gone: Vec<String> = self
            .vehicles
            .keys()
            .filter(|id| !keep.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(v) = self.vehicles.remove(&id)
                && let (Some(lat), Some(lon)) = (v.view.lat, v.view.lon)
            {
                self.tree
                    .remove(&Point::new(key(Position::new(lat, lon)), id));
            }
        }
    }

    /// Filters and applies one fix of `device`.
    pub fn accept(
        &mut self,
        device: &Device,
        fix: &Fix,
        protocol: Protocol,
        filter: &Filter,
        now: DateTime<Utc>,
    ) -> Result<Taken, Rejection> {
        if fix.at > now + filter.future_tolerance {
            return Err(Rejection::new(
                RejectReason::BadTime,
                format!("fix time {} is ahead of ours ({now})", fix.at),
            ));
        }
        if fix.position.lat == 0.0 && fix.position.lon == 0.0 {
            return Err(Rejection::new(
                RejectReason::BadPosition,
                "(0, 0): no GPS fix",
            ));
        }
        if let Some(h) = fix.hdop
            && h > filter.max_hdop
        {
            return Err(Rejection::new(
                RejectReason::Inaccurate,
                format!("HDOP {h} above {}", filter.max_hdop),
            ));
        }
        if let Some(a) = fix.accuracy_m
            && a > filter.max_accuracy_m
        {
            return Err(Rejection::new(
                RejectReason::Inaccurate,
                format!("accuracy {a} m above {} m", filter.max_accuracy_m),
            ));
        }
        let Some(v) = self.vehicles.get_mut(&device.entry.id) else {
            return Err(Rejection::new(
                RejectReason::UnknownDevice,
                "vehicle left the registry",
            ));
        };
        let ms = fix.at.timestamp_millis();
        if v.recent.contains(&ms) {
            return Err(Rejection::new(
                RejectReason::Duplicate,
                format!("fix at {} already taken", fix.at),
            ));
        }
        let previous = match (v.view.at, v.view.lat, v.view.lon) {
            (Some(at), Some(lat), Some(lon)) => Some((at, Position::new(lat, lon))),
            _ => None,
        };
        let taken = match previous {
            Some((at, _)) if fix.at < at => Taken::Late,
            _ => Taken::Live,
        };
        if taken == Taken::Live
            && let Some((at, position)) = previous
        {
            let dt = (fix.at - at).num_milliseconds() as f64 / 1000.0;
            let d = position.distance_m(&fix.position);
            // A jump within a second is measured over one second (clock jitter).
            let kmh = d / dt.max(1.0) * 3.6;
            if kmh > device.kind.max_speed_kmh && d > 50.0 {
                return Err(Rejection::new(
                    RejectReason::ImpossibleJump,
                    format!(
                        "{d:.0} m in {dt:.1} s ({kmh:.0} km/h, limit {})",
                        device.kind.max_speed_kmh
                    ),
                ));
            }
        }
        v.recent.insert(ms);
        if v.recent.len() > RECENT {
            v.recent.pop_first();
        }
        v.view.last_received = Some(now);
        if taken == Taken::Live {
            if let (Some(lat), Some(lon)) = (v.view.lat, v.view.lon) {
                self.tree.remove(&Point::new(
                    key(Position::new(lat, lon)),
                    device.entry.id.clone(),
                ));
            }
            self.tree
                .insert(Point::new(key(fix.position), device.entry.id.clone()));
            let standing = fix.speed_kmh.is_some_and(|s| s < STANDING_KMH);
            v.standing_since = match (standing, v.standing_since) {
                (true, Some(since)) => Some(since),
                (true, None) => Some(fix.at),
                (false, _) => None,
            };
            v.view.at = Some(fix.at);
            v.view.lat = Some(fix.position.lat);
            v.view.lon = Some(fix.position.lon);
            v.view.speed_kmh = fix.speed_kmh;
            v.view.course_deg = fix.course_deg;
            v.view.ignition = fix.ignition.or(v.view.ignition);
            v.view.protocol = Some(protocol);
            if matches!(v.view.state, State::NeverSeen | State::Silent) {
                v.view.state = if standing {
                    State::Stopped
                } else {
                    State::Moving
                };
            }
        }
        Ok(taken)
    }

    /// Re-evaluates liveness at `now`; returns the vehicles whose state changed.
    /// `off_route` answers whether a vehicle at a position is off its route.
    pub fn check(
        &mut self,
        devices: &Devices,
        now: DateTime<Utc>,
        off_route: &dyn Fn(&Device, Position) -> bool,
    ) -> Vec<LiveVehicle> {
        let mut changed = Vec::new();
        for d in devices.all() {
            let Some(v) = self.vehicles.get_mut(&d.entry.id) else {
                continue;
            };
            let state = match (v.view.last_received, v.view.lat, v.view.lon) {
                (None, _, _) | (_, None, _) | (_, _, None) => State::NeverSeen,
                (Some(seen), Some(lat), Some(lon)) => {
                    let silent = chrono::Duration::from_std(d.kind.silent_after)
                        .unwrap_or(chrono::Duration::minutes(1));
                    let idle = chrono::Duration::from_std(d.kind.idle_after)
                        .unwrap_or(chrono::Duration::minutes(10));
                    if now - seen > silent {
                        State::Silent
                    } else if off_route(d, Position::new(lat, lon)) {
                        State::OffRoute
                    } else if let Some(since) = v.standing_since {
                        let engine_on = v.view.ignition == Some(true);
                        let last = v.view.at.unwrap_or(since);
                        if engine_on && last - since >= idle {
                            State::Idle
                        } else {
                            State::Stopped
                        }
                    } else {
                        State::Moving
                    }
                }
            };
            if state != v.view.state {
                v.view.state = state;
                changed.push(v.view.clone());
            }
        }
        changed
    }

    pub fn get(&self, id: &str) -> Option<LiveVehicle> {
        self.vehicles.get(id).map(|v| v.view.clone())
    }

    pub fn all(&self) -> Vec<LiveVehicle> {
        let mut list: Vec<LiveVehicle> = self.vehicles.values().map(|v| v.view.clone()).collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub fn count_by_state(&self) -> HashMap<State, i64> {
        let mut counts = HashMap::new();
        for v in self.vehicles.values() {
            *counts.entry(v.view.state).or_insert(0) += 1;
        }
        counts
    }

    /// Vehicles within `radius_m` of `at`, nearest first (R-tree, then exact distance).
    pub fn near(&self, at: Position, radius_m: f64) -> Vec<(LiveVehicle, f64)> {
        // Degrees of latitude per metre; longitude degrees shrink by cos(lat).
        let dlat = radius_m / 111_320.0;
        let dlon = dlat / at.lat.to_radians().cos().abs().max(0.01);
        let envelope = rstar::AABB::from_corners(
            [at.lon - dlon, at.lat - dlat],
            [at.lon + dlon, at.lat + dlat],
        );
        let mut found: Vec<(LiveVehicle, f64)> = self
            .tree
            .locate_in_envelope(&envelope)
            .filter_map(|p| {
                let pos = Position::new(p.geom()[1], p.geom()[0]);
                let d = at.distance_m(&pos);
                (d <= radius_m)
                    .then(|| self.vehicles.get(&p.data).map(|v| (v.view.clone(), d)))
                    .flatten()
            })
            .collect();
        found.sort_by(|a, b| a.1.total_cmp(&b.1));
        found
    }
}
