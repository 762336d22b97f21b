//! One GPS fix as every protocol decodes it, and why a packet or a fix was refused.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Position;

/// A position report from a tracker, protocol-independent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fix {
    /// When the tracker took the fix (its GPS clock, UTC).
    pub at: DateTime<Utc>,
    pub position: Position,
    pub speed_kmh: Option<f64>,
    /// 0..360, clockwise from north.
    pub course_deg: Option<f64>,
    pub altitude_m: Option<f64>,
    pub satellites: Option<u8>,
    pub hdop: Option<f64>,
    /// Horizontal accuracy in metres, when the device says (OsmAnd, our JSON).
    pub accuracy_m: Option<f64>,
    /// Engine on (Teltonika IO 239, Wialon `ign` param or input 1, OsmAnd `ignition`).
    pub ignition: Option<bool>,
    /// Stored in the tracker's black box and sent late (Wialon `#B#`, Teltonika records
    /// older than the newest of their packet are not flagged: the pipeline decides by time).
    pub black_box: bool,
}

/// Which protocol a fix came in by (a metric label and a column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Wialon,
    Teltonika,
    Osmand,
    Mqtt,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [
        Protocol::Wialon,
        Protocol::Teltonika,
        Protocol::Osmand,
        Protocol::Mqtt,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Wialon => "wialon",
            Protocol::Teltonika => "teltonika",
            Protocol::Osmand => "osmand",
            Protocol::Mqtt => "mqtt",
        }
    }
}

/// Why a packet (or one fix of it) was refused: a metric label, logged with the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not the protocol's framing or field layout.
    Malformed,
    /// CRC mismatch.
    Checksum,
    /// A date/time that does not exist or is far in the future.
    BadTime,
    /// Coordinates missing, out of range or (0, 0).
    BadPosition,
    /// Speed, course or altitude not a number or out of range.
    BadMotion,
    /// Longer than the configured maximum.
    TooLong,
    /// IMEI / id not in the device registry.
    UnknownDevice,
    /// Wrong device password.
    WrongPassword,
    /// Data before a successful login.
    NotLoggedIn,
    /// Unsupported protocol version or codec.
    Unsupported,
    /// Same vehicle, same timestamp as a fix already taken.
    Duplicate,
    /// Implies a speed above the vehicle type's limit from the fix before.
    ImpossibleJump,
    /// HDOP or accuracy worse than the configured limit.
    Inaccurate,
}

impl RejectReason {
    pub const ALL: [RejectReason; 13] = [
        RejectReason::Malformed,
        RejectReason::Checksum,
        RejectReason::BadTime,
        RejectReason::BadPosition,
        RejectReason::BadMotion,
        RejectReason::TooLong,
        RejectReason::UnknownDevice,
        RejectReason::WrongPassword,
        RejectReason::NotLoggedIn,
        RejectReason::Unsupported,
        RejectReason::Duplicate,
        RejectReason::ImpossibleJump,
        RejectReason::Inaccurate,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Checksum => "checksum",
            RejectReason::BadTime => "bad_time",
            RejectReason::BadPosition => "bad_position",
            RejectReason::BadMotion => "bad_motion",
            RejectReason::TooLong => "too_long",
            RejectReason::UnknownDevice => "unknown_device",
            RejectReason::WrongPassword => "wrong_password",
            RejectReason::NotLoggedIn => "not_logged_in",
            RejectReason::Unsupported => "unsupported",
            RejectReason::Duplicate => "duplicate",
            RejectReason::ImpossibleJump => "impossible_jump",
            RejectReason::Inaccurate => "inaccurate",
        }
    }
}

/// A refusal with what a log line needs: the reason and a detail naming the field or offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// CRC-16/ARC (poly 0x8005 reflected, init 0): what Wialon IPS 2.0 calls CRC16 and
/// Teltonika calls CRC-16/IBM.
pub(crate) fn crc16_arc(bytes: &[u8]) -> u16 {
    const ARC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_ARC);
    ARC.checksum(bytes)
}
