//! Per-camera lifecycle: [`State`] with the [`Reason`] it is in that state, the
//! counters the supervisor keeps, and a short history of transitions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

use crate::domain::{CameraId, Reason, State};

#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub at: SystemTime,
    pub state: State,
    pub reason: Reason,
}

/// Lock-free counters updated from streaming threads.
#[derive(Debug, Default)]
pub struct Counters {
    /// Encoded units (access units) received from the camera.
    pub units_received: AtomicU64,
    /// Sampled frames decoded and handed to the FrameQueue.
    pub frames_decoded: AtomicU64,
    /// Frames evicted from the FrameQueue or the decoder pool's queue (overload); shared
    /// with the [`DropLedger`](crate::queue::DropLedger).
    pub frames_dropped: Arc<AtomicU64>,
    pub reconnects: AtomicU64,
    /// Milliseconds since the UNIX epoch of the last received unit / decoded frame.
    pub last_unit_ms: AtomicU64,
    pub last_frame_ms: AtomicU64,
}

/// What the API and tests see of one camera.
#[derive(Debug, Clone, Serialize)]
pub struct CameraSnapshot {
    pub id: CameraId,
    pub name: String,
    pub state: State,
    pub reason: Reason,
    pub reason_text: String,
    pub since: SystemTime,
    pub attempts: u64,
    pub units_received: u64,
    pub frames_decoded: u64,
    pub frames_dropped: u64,
    pub reconnects: u64,
    pub last_frame_age_s: Option<f64>,
    pub history: Vec<Transition>,
    pub lat: f64,
    pub lon: f64,
    pub address: String,
}

const HISTORY: usize = 32;

/// The shared status of one camera: written by its supervisor, read by the API.
#[derive(Debug)]
pub struct CameraStatus {
    pub counters: Counters,
    inner: Mutex<StatusInner>,
}

#[derive(Debug)]
struct StatusInner {
    state: State,
    reason: Reason,
    since: SystemTime,
    attempts: u64,
    history: VecDeque<Transition>,
}

impl CameraStatus {
    /// The current state alone (cheaper than a snapshot).
    pub fn state(&self) -> State {
        self.inner.lock().state
    }

    /// A camera about to connect for the first time, for `reason`.
    pub fn new(reason: Reason) -> Self {
        let now = SystemTime::now();
        Self {
            counters: Counters::default(),
            inner: Mutex::new(StatusInner {
                state: State::Connecting,
                reason: reason.clone(),
                since: now,
                attempts: 0,
                history: VecDeque::from([Transition {
                    at: now,
                    state: State::Connecting,
                    reason,
                }]),
            }),
        }
    }

    /// Records a transition; returns the previous state.
    pub fn set(&self, state: State, reason: Reason) -> State {
        let now = SystemTime::now();
        let mut inner = self.inner.lock();
        let previous = inner.state;
        inner.state = state;
        inner.reason = reason.clone();
        inner.since = now;
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back(Transition {
            at: now,
            state,
            reason,
        });
        previous
    }

    pub fn note_attempt(&self) {
        self.inner.lock().attempts += 1;
    }

    pub fn reset_attempts(&self) {
        self.inner.lock().attempts = 0;
    }

    pub fn snapshot(&self, camera: &crate::config::CameraConfig) -> CameraSnapshot {
        let inner = self.inner.lock();
        let c = &self.counters;
        let last_frame_ms = c.last_frame_ms.load(Ordering::Relaxed);
        CameraSnapshot {
            id: camera.id.clone(),
            name: camera.name.clone(),
            state: inner.state,
            reason: inner.reason.clone(),
            reason_text: inner.reason.to_string(),
            since: inner.since,
            attempts: inner.attempts,
            units_received: c.units_received.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            last_frame_age_s: (last_frame_ms > 0)
                .then(|| now_ms().saturating_sub(last_frame_ms) as f64 / 1000.0),
            history: inner.history.iter().cloned().collect(),
            lat: camera.location.lat,
            lon: camera.location.lon,
            address: camera.address.clone(),
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
