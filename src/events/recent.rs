//! The most recent events, for `/api/events` and the UI: a bounded ring (the oldest event
//! leaves the view; the registry and MQTT sinks are where nothing is lost).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::domain::DetectionEvent;

#[derive(Debug)]
pub struct RecentEvents {
    capacity: usize,
    events: Mutex<VecDeque<Arc<DetectionEvent>>>,
}

impl RecentEvents {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            events: Mutex::new(VecDeque::new()),
        }
    }

    pub fn push(&self, event: Arc<DetectionEvent>) {
        let mut events = self.events.lock();
        if events.len() == self.capacity {
            events.pop_front();
        }
        events.push_back(event);
    }

    /// Newest first.
    pub fn list(&self) -> Vec<Arc<DetectionEvent>> {
        self.events.lock().iter().rev().cloned().collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<DetectionEvent>> {
        self.events.lock().iter().find(|e| e.id == id).cloned()
    }

    pub fn len(&self) -> usize {
        self.events.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
