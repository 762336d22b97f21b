//! The [`DropLedger`]: charges a dropped frame to the camera it came from (which may not
//! be the camera whose push evicted it), in that camera's own counter and in the
//! `frames_dropped{camera,reason}` metric.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::domain::CameraId;
use crate::obs::Metrics;

pub struct DropLedger {
    metrics: Arc<Metrics>,
    counters: RwLock<HashMap<CameraId, Arc<AtomicU64>>>,
}

impl DropLedger {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            counters: RwLock::default(),
        }
    }

    /// From now on, drops of `id`'s frames also count in `dropped` (its status counter).
    pub fn register(&self, id: &CameraId, dropped: Arc<AtomicU64>) {
        self.counters.write().insert(id.clone(), dropped);
    }

    pub fn unregister(&self, id: &CameraId) {
        self.counters.write().remove(id);
    }

    /// Counts one of `camera`'s frames dropped for `reason` (a `DROP_*` label of `obs`).
    pub fn dropped(&self, camera: &CameraId, reason: &'static str) {
        if let Some(counter) = self.counters.read().get(camera) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.frame_dropped(camera, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_counts_against_the_registered_camera_and_only_it() {
        let ledger = DropLedger::new(Arc::new(Metrics::new()));
        let a = CameraId::new("a");
        let b = CameraId::new("b");
        let counter = Arc::new(AtomicU64::new(0));
        ledger.register(&a, counter.clone());
        ledger.dropped(&a, crate::obs::DROP_QUEUE_FULL);
        ledger.dropped(&b, crate::obs::DROP_QUEUE_FULL);
        assert_eq!(counter.load(Ordering::Relaxed), 1);
        ledger.unregister(&a);
        ledger.dropped(&a, crate::obs::DROP_QUEUE_FULL);
        assert_eq!(counter.load(Ordering::Relaxed), 1);
    }
}
