//! A camera's supervisor state and the reason it is in it: written by ingest, read by
//! metrics, the API and the UI.

use serde::Serialize;

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
