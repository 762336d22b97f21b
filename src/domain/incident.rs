use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An appeal category code such as `open_manhole` (lowercase ASCII, digits and `_`, 1–64 chars).
///
/// Categories are configurable (see `config::IncidentsConfig`), so this is a checked code, not
/// an enum.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("category code `{0}` is not valid: use 1-64 lowercase letters, digits or `_`")]
pub struct CategoryError(pub String);

impl Category {
    pub fn new(code: &str) -> Result<Self, CategoryError> {
        let ok = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(code.to_owned()))
        } else {
            Err(CategoryError(code.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = CategoryError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<Category> for String {
    fn from(value: Category) -> Self {
        value.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not a valid {}; expected one of: {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum! {
    /// Where an observation or appeal came from.
    Source {
        Camera = "camera",
        Sensor = "sensor",
        Vehicle = "vehicle",
        Operator = "operator",
        Citizen = "citizen",
    }
}

str_enum! {
    /// An appeal's lifecycle state (see docs/registry.md for the transitions).
    Status {
        Detected = "detected",
        AwaitingConfirmation = "awaiting_confirmation",
        Confirmed = "confirmed",
        Rejected = "rejected",
        Assigned = "assigned",
        InProgress = "in_progress",
        Resolved = "resolved",
        Closed = "closed",
    }
}

str_enum! {
    /// Why an inspector rejected an appeal.
    RejectReason {
        FalsePositive = "false_positive",
        Duplicate = "duplicate",
        OutOfScope = "out_of_scope",
        InsufficientEvidence = "insufficient_evidence",
        AlreadyHandled = "already_handled",
    }
}

impl Status {
    /// Open appeals can absorb duplicate observations and can be escalated.
    pub const fn is_open(self) -> bool {
        !matches!(self, Status::Rejected | Status::Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_codes_reject_spaces_and_capitals() {
        assert!(Category::new("open_manhole").is_ok());
        assert!(Category::new("Open manhole").is_err());
        assert!(Category::new("").is_err());
    }

    #[test]
    fn status_round_trips_through_text() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(*status));
        }
        assert!("open".parse::<Status>().is_err());
    }
}

/// A piece of evidence, stored by reference (the image lives in object storage, the reading is
/// small JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// `image`, `video`, `sensor_reading`, `gps_track`, `document`, `note`.
    pub kind: String,
    /// Where the artefact lives (e.g. `s3://evidence/ast-0001/2026-11-23T09:00:00Z.jpg`).
    #[serde(default)]
    pub uri: Option<String>,
    /// Small structured payload (sensor reading, detection box and score).
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

/// One observation of a problem at a place: a confirmed detection, a sensor alarm episode, a
/// vehicle event, an operator's or a citizen's report. It opens an appeal or joins an open one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub category: Category,
    pub source: Source,
    /// Idempotency key, unique per real-world observation (e.g. `sensor:MH-S-17:episode:4`,
    /// `camera:ast-0001:det:8812`): submitting it twice records it once.
    pub source_ref: String,
    pub position: crate::domain::Position,
    /// Placement uncertainty in metres, when known (camera without calibration: wide).
    #[serde(default)]
    pub uncertainty_m: Option<f64>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Who reports it: a camera id, sensor id, operator login, or citizen contact.
    pub actor: String,
    pub observed_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub evidence: Vec<EvidenceRef>,
}
