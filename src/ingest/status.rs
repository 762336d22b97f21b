//! Per-camera lifecycle: [`State`] with the [`Reason`] it is in that state, the
//! counters the supervisor keeps, and a short history of transitions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::Serialize;

use crate::domain::CameraId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Opening the stream; waiting for the first sampled frame.
    Connecting,
    /// Sampled frames arrive.
    Streaming,
    /// Connected but nothing arrived for the stall timeout; about to reconnect.
    Stalled,
    /// Waiting before the next attempt.
    BackingOff,
    /// Given up until the config changes or an operator restarts it.
    Failed,
    /// Not started: admitting it would exceed the node's decode budget.
    Refused,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Connecting,
        State::Streaming,
        State::Stalled,
        State::BackingOff,
        State::Failed,
        State::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Streaming => "streaming",
            State::Stalled => "stalled",
            State::BackingOff => "backing_off",
            State::Failed => "failed",
            State::Refused => "refused",
        }
    }
}

/// Why a camera is in its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum Reason {
    /// First start.
    Started,
    /// Restarted by config reload or operator.
    Restarted,
    /// The first sampled frame arrived.
    FirstFrame,
    /// The camera refused or the network could not reach it.
    ConnectionFailed(String),
    /// The camera closed the connection or it broke while streaming.
    ConnectionLost(String),
    /// No sampled frame within the connect timeout.
    ConnectTimeout,
    /// The camera demands credentials we do not have (RTSP 401).
    Unauthorized,
    /// The stream does not exist on the camera (RTSP 404).
    NotFound,
    /// The stream ended.
    EndOfStream,
    /// No data at all arrived for this many seconds.
    NoData { seconds: u64 },
    /// Data arrives but no frame could be decoded for this many seconds.
    Undecodable { seconds: u64, units_received: u64 },
    /// The decoder reported an error (corrupt stream).
    DecodeError(String),
    /// The pipeline could not be built or started (config or installation problem).
    Pipeline(String),
    /// Removed (or the node stopped).
    Stopped,
    /// Connected, but this node dropped the camera's sampled frames for lack of decode
    /// capacity (its queues were full); the connection is kept.
    Overloaded { frames_dropped: u64 },
    /// Admission control: the node's decode budget is spent by cameras admitted before.
    OverCapacity {
        /// CPU ms per second this camera would need for decoding.
        needs_ms_per_s: f64,
        /// What is left of `[ingest] decode_budget_ms_per_s`.
        left_ms_per_s: f64,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Started => f.write_str("started"),
            Reason::Restarted => f.write_str("restarted"),
            Reason::FirstFrame => f.write_str("first frame received"),
            Reason::ConnectionFailed(d) => write!(f, "connection failed: {d}"),
            Reason::ConnectionLost(d) => write!(f, "connection lost: {d}"),
            Reason::ConnectTimeout => f.write_str("no frame within the connect timeout"),
            Reason::Unauthorized => {
                f.write_str("unauthorized: the camera refused our credentials (RTSP 401)")
            }
            Reason::NotFound => f.write_str("stream not found on the camera (RTSP 404)"),
            Reason::EndOfStream => f.write_str("end of stream"),
            Reason::NoData { seconds } => write!(f, "stalled: no data for {seconds} s"),
            Reason::Undecodable {
                seconds,
                units_received,
            } => write!(
                f,
                "corrupt stream: {units_received} units received but no frame decoded in {seconds} s"
            ),
            Reason::DecodeError(d) => write!(f, "decode error: {d}"),
            Reason::Pipeline(d) => write!(f, "pipeline error: {d}"),
            Reason::Stopped => f.write_str("stopped"),
            Reason::Overloaded { frames_dropped } => write!(
                f,
                "node overloaded: {frames_dropped} sampled frames dropped in its queues before analysis; waiting for capacity"
            ),
            Reason::OverCapacity {
                needs_ms_per_s,
                left_ms_per_s,
            } => write!(
                f,
                "over capacity: needs {needs_ms_per_s:.2} ms/s of decoding, {left_ms_per_s:.2} ms/s of the node's decode budget left"
            ),
        }
    }
}

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
    /// Frames evicted from the FrameQueue (overload).
    pub frames_dropped: AtomicU64,
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

/// Charges a frame evicted from the FrameQueue to the camera it came from (which
/// may not be the camera whose push evicted it), in its status and its metric.
pub struct DropLedger {
    metrics: std::sync::Arc<crate::obs::Metrics>,
    statuses:
        parking_lot::RwLock<std::collections::HashMap<CameraId, std::sync::Arc<CameraStatus>>>,
}

impl DropLedger {
    pub fn new(metrics: std::sync::Arc<crate::obs::Metrics>) -> Self {
        Self {
            metrics,
            statuses: parking_lot::RwLock::default(),
        }
    }

    pub fn register(&self, id: &CameraId, status: std::sync::Arc<CameraStatus>) {
        self.statuses.write().insert(id.clone(), status);
    }

    pub fn unregister(&self, id: &CameraId) {
        self.statuses.write().remove(id);
    }

    pub fn dropped(&self, camera: &CameraId, reason: &'static str) {
        if let Some(status) = self.statuses.read().get(camera) {
            status
                .counters
                .frames_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.frame_dropped(camera, reason);
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
