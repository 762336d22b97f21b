use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::{BBox, CameraId, Category, ModelRef, Position};

/// Whether an event is a hazard on the street or somebody's offence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A static hazard (open manhole, dump) confirmed over several samples.
    Hazard,
    /// A zone rule broken (car parked in a no-parking zone, person in a restricted zone at night).
    Offence,
}

impl EventKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Hazard => "hazard",
            EventKind::Offence => "offence",
        }
    }
}

/// The evidence of an event: the analysed frame as JPEG with the box drawn, and a clean copy.
/// Files under the evidence dir with stable names; the bytes stay in memory for the API.
#[derive(Clone, Debug, Serialize)]
pub struct Evidence {
    pub annotated_path: PathBuf,
    pub clean_path: PathBuf,
    /// How the source frame was fitted into the evidence image (boxes are in source pixels):
    /// the UI maps a box onto the image with it to draw its zoomed crop.
    #[serde(skip)]
    pub letterbox: crate::domain::Letterbox,
    #[serde(skip)]
    pub annotated_jpeg: Arc<[u8]>,
    #[serde(skip)]
    pub clean_jpeg: Arc<[u8]>,
}

/// One confirmed detection event (hazard confirmed over time, or an offence rule fired).
#[derive(Clone, Debug, Serialize)]
pub struct DetectionEvent {
    /// `<camera>-<track>-<first seen ms>`: unique, stable, usable in file names and URLs.
    pub id: String,
    pub camera: CameraId,
    /// The camera's location and address (where the appeal is placed).
    pub position: Position,
    pub address: String,
    pub kind: EventKind,
    /// The detected class (`manhole_open`, `car`…).
    #[serde(serialize_with = "arc_str")]
    pub class: Arc<str>,
    /// The appeal category the event raises (`open_manhole`, `parking_violation`…).
    pub category: Category,
    /// Zone rule that fired, for offences.
    pub zone: Option<String>,
    pub score: f32,
    /// Box in source (camera) pixels, from the sample that triggered the event.
    pub bbox: BBox,
    #[serde(serialize_with = "arc_model")]
    pub model: Arc<ModelRef>,
    /// The class's score threshold the detections passed.
    pub threshold: f32,
    /// Per-camera track id.
    pub track: u64,
    #[serde(with = "system_time_ms")]
    pub first_seen: SystemTime,
    #[serde(with = "system_time_ms")]
    pub last_seen: SystemTime,
    /// Time the event fired (the triggering sample's time).
    #[serde(with = "system_time_ms")]
    pub at: SystemTime,
    pub evidence: Option<Evidence>,
}

fn arc_str<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

fn arc_model<S: serde::Serializer>(v: &Arc<ModelRef>, s: S) -> Result<S::Ok, S::Error> {
    (**v).serialize(s)
}

mod system_time_ms {
    use std::time::SystemTime;

    pub fn serialize<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let dt: chrono::DateTime<chrono::Utc> = (*t).into();
        s.serialize_str(&dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }
}

impl Serialize for BBox {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.x1, self.y1, self.x2, self.y2].serialize(s)
    }
}

impl Serialize for ModelRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ModelRef", 2)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("version", &self.version)?;
        st.end()
    }
}
