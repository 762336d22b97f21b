//! Sensor-stage metrics (`sitcenter_sensor_*`). Labels are formats, outcomes, reasons and
//! alarm kinds — a handful of series, never per sensor (the per-sensor detail of a rejection is
//! in `/api/sensors/rejected`, unknown sensors in `/api/sensors/unknown`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What became of one message (`outcome` label).
pub const OUTCOME_APPLIED: &str = "applied";
/// Already committed (same idempotency key): QoS 1 redelivery, repeats, retained copies.
pub const OUTCOME_DUPLICATE: &str = "duplicate";
/// Older than the sensor's latest applied reading (reordering, late retained copies).
pub const OUTCOME_STALE: &str = "stale";
pub const OUTCOME_REJECTED: &str = "rejected";
pub const OUTCOME_UNKNOWN_SENSOR: &str = "unknown_sensor";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub format: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlarmLabel {
    pub alarm: &'static str,
}

/// Handles cloned into the sensor stage's tasks.
#[derive(Clone)]
pub struct SensorMetrics {
    /// `sensor_messages_total{format,outcome}`.
    pub messages: Family<MessageLabels, Counter>,
    /// `sensor_messages_rejected_total{reason}`.
    pub rejected: Family<ReasonLabel, Counter>,
    /// `sensor_unknown_sensors`: distinct unknown sensor ids seen since start.
    pub unknown_sensors: Gauge,
    /// `sensor_alarms_raised_total{alarm}` / `sensor_alarms_cleared_total{alarm}`.
    pub alarms_raised: Family<AlarmLabel, Counter>,
    pub alarms_cleared: Family<AlarmLabel, Counter>,
    /// `sensor_batch_size`: messages per PostgreSQL transaction.
    pub batch_size: Histogram,
    /// `sensor_commit_seconds`: one batch's transaction, retries included.
    pub commit_seconds: Histogram,
    /// `sensor_receipt_to_commit_seconds`: from receipt off the socket to the commit.
    pub receipt_to_commit_seconds: Histogram,
    /// `sensor_alarm_to_appeal_seconds`: from the sensor's own timestamp of the reading that
    /// raised an alarm to the committed appeal (includes the sensor's clock offset).
    pub alarm_to_appeal_seconds: Histogram,
    /// `sensor_mqtt_connected`: 1 while the subscriber holds a broker connection.
    pub connected: Gauge,
    /// `sensor_mqtt_connections_total`: accepted connections (ConnAck), reconnects included.
    pub connections: Counter,
    /// `sensor_mqtt_connection_errors_total`.
    pub connection_errors: Counter,
    /// `sensor_redelivered_total`: messages the broker marked DUP (QoS 1 redelivery).
    pub redelivered: Counter,
    /// `sensor_acks_skipped_total`: acks not sent because the connection changed meanwhile
    /// (the broker redelivers those messages; they are then duplicates).
    pub acks_skipped: Counter,
    /// `sensor_commit_failures_total`: failed batch transactions (retried; nothing is acked).
    pub commit_failures: Counter,
}

impl std::fmt::Debug for SensorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SensorMetrics")
    }
}

impl Default for SensorMetrics {
    fn default() -> Self {
        Self {
            messages: Family::default(),
            rejected: Family::default(),
            unknown_sensors: Gauge::default(),
            alarms_raised: Family::default(),
            alarms_cleared: Family::default(),
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            receipt_to_commit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            alarm_to_appeal_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            connected: Gauge::default(),
            connections: Counter::default(),
            connection_errors: Counter::default(),
            redelivered: Counter::default(),
            acks_skipped: Counter::default(),
            commit_failures: Counter::default(),
        }
    }
}

impl SensorMetrics {
    pub fn message(&self, format: &'static str, outcome: &'static str) {
        self.messages
            .get_or_create(&MessageLabels { format, outcome })
            .inc();
    }

    pub fn count(&self, format: &'static str, outcome: &'static str) -> u64 {
        self.messages
            .get_or_create(&MessageLabels { format, outcome })
            .get()
    }

    pub fn rejected_count(&self, reason: &'static str) -> u64 {
        self.rejected.get_or_create(&ReasonLabel { reason }).get()
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "sensor_messages",
            "Sensor messages by payload format and outcome (applied, duplicate, stale, rejected, unknown_sensor)",
            self.messages.clone(),
        );
        registry.register(
            "sensor_messages_rejected",
            "Sensor messages rejected, by reason (wrong_topic, too_large, not_json, missing_field, wrong_type, …)",
            self.rejected.clone(),
        );
        registry.register(
            "sensor_unknown_sensors",
            "Distinct sensor ids heard from but not in the sensor registry",
            self.unknown_sensors.clone(),
        );
        registry.register(
            "sensor_alarms_raised",
            "Alarm episodes started, by alarm",
            self.alarms_raised.clone(),
        );
        registry.register(
            "sensor_alarms_cleared",
            "Alarm episodes ended, by alarm",
            self.alarms_cleared.clone(),
        );
        registry.register(
            "sensor_batch_size",
            "Sensor messages per PostgreSQL transaction",
            self.batch_size.clone(),
        );
        registry.register(
            "sensor_commit_seconds",
            "Time of one sensor batch's transaction, retries included",
            self.commit_seconds.clone(),
        );
        registry.register(
            "sensor_receipt_to_commit_seconds",
            "From a sensor message's receipt to the commit of its effect",
            self.receipt_to_commit_seconds.clone(),
        );
        registry.register(
            "sensor_alarm_to_appeal_seconds",
            "From the sensor timestamp of an alarm reading to its committed appeal",
            self.alarm_to_appeal_seconds.clone(),
        );
        registry.register(
            "sensor_mqtt_connected",
            "1 while the sensor subscriber is connected to the broker",
            self.connected.clone(),
        );
        registry.register(
            "sensor_mqtt_connections",
            "Broker connections accepted (reconnects included)",
            self.connections.clone(),
        );
        registry.register(
            "sensor_mqtt_connection_errors",
            "Broker connection failures",
            self.connection_errors.clone(),
        );
        registry.register(
            "sensor_redelivered",
            "Sensor messages the broker redelivered (DUP flag)",
            self.redelivered.clone(),
        );
        registry.register(
            "sensor_acks_skipped",
            "Acks not sent because the connection changed between receipt and commit",
            self.acks_skipped.clone(),
        );
        registry.register(
            "sensor_commit_failures",
            "Failed sensor batch transactions (retried, nothing acked)",
            self.commit_failures.clone(),
        );
    }
}
