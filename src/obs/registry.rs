//! Appeal registry metrics (names are the Prometheus series names, without the `sitcenter_`
//! prefix).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry as MetricsRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategorySource {
    pub category: String,
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub category: String,
    pub stage: String,
}

#[derive(Debug, Clone)]
pub struct RegistryMetrics {
    /// `appeals_registered_total{category,source}`: new appeals.
    pub registered: Family<CategorySource, Counter>,
    /// `observations_joined_total{category,source}`: observations that joined an open appeal.
    pub joined: Family<CategorySource, Counter>,
    /// `observations_repeated_total`: an already-recorded observation submitted again.
    pub repeated: Counter,
    /// `appeal_transitions_total{status}`: lifecycle transitions by target status.
    pub transitions: Family<StatusLabel, Counter>,
    /// `appeal_escalations_total{category,stage}`: overdue SLA stages escalated.
    pub escalations: Family<StageLabel, Counter>,
    /// `appeal_stages_overdue`: overdue, unreached stages of open appeals at the last check.
    pub overdue: Gauge,
    /// `registry_submit_duration_seconds`: one observation's transaction, retries included.
    pub submit_seconds: Histogram,
}

impl Default for RegistryMetrics {
    fn default() -> Self {
        Self {
            registered: Family::default(),
            joined: Family::default(),
            repeated: Counter::default(),
            transitions: Family::default(),
            escalations: Family::default(),
            overdue: Gauge::default(),
            submit_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
        }
    }
}

impl RegistryMetrics {
    pub fn register(&self, registry: &mut MetricsRegistry) {
        registry.register(
            "appeals_registered",
            "New appeals registered",
            self.registered.clone(),
        );
        registry.register(
            "observations_joined",
            "Observations that joined an open appeal as evidence",
            self.joined.clone(),
        );
        registry.register(
            "observations_repeated",
            "Observations submitted again with a known source_ref (recorded once)",
            self.repeated.clone(),
        );
        registry.register(
            "appeal_transitions",
            "Appeal lifecycle transitions by target status",
            self.transitions.clone(),
        );
        registry.register(
            "appeal_escalations",
            "Overdue SLA stages escalated",
            self.escalations.clone(),
        );
        registry.register(
            "appeal_stages_overdue",
            "Overdue, unreached SLA stages of open appeals at the last check",
            self.overdue.clone(),
        );
        registry.register(
            "registry_submit_duration_seconds",
            "Time to record one observation (transaction and retries)",
            self.submit_seconds.clone(),
        );
    }
}
