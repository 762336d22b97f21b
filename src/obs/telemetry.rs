//! Telemetry-stage metrics (`sitcenter_telemetry_*`). Labels are protocols, reasons and
//! liveness states — a handful of series, never per vehicle (per-vehicle detail is in
//! `/api/vehicles` and the recent-rejection list `/api/telemetry/rejected`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

/// Handles cloned into the telemetry stage's tasks.
#[derive(Clone)]
pub struct TelemetryMetrics {
    /// `telemetry_fixes_total{protocol}`: fixes accepted (live or late).
    pub fixes: Family<ProtocolLabel, Counter>,
    /// `telemetry_fixes_late_total{protocol}`: accepted fixes older than the live position
    /// (black box, reordering): into the track, not the live map.
    pub late: Family<ProtocolLabel, Counter>,
    /// `telemetry_rejected_total{protocol,reason}`: packets or fixes refused.
    pub rejected: Family<RejectLabels, Counter>,
    /// `telemetry_connections{protocol}`: open tracker connections.
    pub connections: Family<ProtocolLabel, Gauge>,
    /// `telemetry_queue_depth`: fixes waiting for PostgreSQL.
    pub queue_depth: Gauge,
    /// `telemetry_backpressure_seconds_total`: time connections waited on a full queue.
    pub backpressure_micros: Counter,
    /// `telemetry_batch_size`: fixes per INSERT.
    pub batch_size: Histogram,
    /// `telemetry_store_failures_total`: failed inserts (retried, nothing dropped).
    pub store_failures: Counter,
    /// `telemetry_vehicles{state}`: vehicles by liveness state.
    pub vehicles: Family<StateLabel, Gauge>,
    /// `telemetry_vehicle_events_total{state}`: transitions into a state.
    pub events: Family<StateLabel, Counter>,
}

impl std::fmt::Debug for TelemetryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TelemetryMetrics")
    }
}

impl Default for TelemetryMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TelemetryMetrics {
    pub fn new() -> Self {
        Self {
            fixes: Family::default(),
            late: Family::default(),
            rejected: Family::default(),
            connections: Family::default(),
            queue_depth: Gauge::default(),
            backpressure_micros: Counter::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 15)),
            store_failures: Counter::default(),
            vehicles: Family::default(),
            events: Family::default(),
        }
    }

    pub fn fix(&self, protocol: &'static str, late: bool) {
        self.fixes.get_or_create(&ProtocolLabel { protocol }).inc();
        if late {
            self.late.get_or_create(&ProtocolLabel { protocol }).inc();
        }
    }

    pub fn reject(&self, protocol: &'static str, reason: &'static str) {
        self.rejected
            .get_or_create(&RejectLabels { protocol, reason })
            .inc();
    }

    pub fn rejected_count(&self, protocol: &'static str, reason: &'static str) -> u64 {
        self.rejected
            .get_or_create(&RejectLabels { protocol, reason })
            .get()
    }

    pub fn fix_count(&self, protocol: &'static str) -> u64 {
        self.fixes.get_or_create(&ProtocolLabel { protocol }).get()
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "telemetry_fixes",
            "GPS fixes accepted, by protocol",
            self.fixes.clone(),
        );
        registry.register(
            "telemetry_fixes_late",
            "Accepted fixes older than the vehicle's live position (black box, reordering)",
            self.late.clone(),
        );
        registry.register(
            "telemetry_rejected",
            "GPS packets or fixes refused, by protocol and reason",
            self.rejected.clone(),
        );
        registry.register(
            "telemetry_connections",
            "Open tracker connections, by protocol",
            self.connections.clone(),
        );
        registry.register(
            "telemetry_queue_depth",
            "Fixes waiting to be written to PostgreSQL",
            self.queue_depth.clone(),
        );
        registry.register(
            "telemetry_backpressure_micros",
            "Microseconds tracker connections waited on a full fix queue",
            self.backpressure_micros.clone(),
        );
        registry.register(
            "telemetry_batch_size",
            "Fixes per INSERT into the track store",
            self.batch_size.clone(),
        );
        registry.register(
            "telemetry_store_failures",
            "Failed track inserts (retried; nothing dropped)",
            self.store_failures.clone(),
        );
        registry.register(
            "telemetry_vehicles",
            "Vehicles by liveness state (moving, stopped, idle, silent, off_route, never_seen)",
            self.vehicles.clone(),
        );
        registry.register(
            "telemetry_vehicle_events",
            "Vehicle liveness transitions, by the state entered",
            self.events.clone(),
        );
    }
}
