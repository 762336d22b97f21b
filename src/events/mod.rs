//! Detection events: analysed frames → per-camera tracks (temporal confirmation) and zone rules
//! → [`DetectionEvent`](crate::domain::DetectionEvent)s with evidence → sinks.
//!
//! - Consumes: [`AnalysedFrame`](crate::detect::AnalysedFrame)s (a frame and its detections,
//!   possibly none) from the detector workers, over a bounded channel.
//! - Produces: events to the recent-events ring (`/api/events`) and to every sink (appeal
//!   registry, MQTT) over bounded channels.
//! - Queue policy: after detection nothing is dropped: the stage blocks on its sinks, so a slow
//!   sink slows the detector, whose FrameQueue drops (counted) instead.
//!
//! Files, one concern each: `track.rs` (matching, confirmation, forgetting; pure),
//! `zones.rs` (no-parking dwell and restricted-at-night rules; pure), `rules.rs` (what each
//! camera's classes and zones mean), `stage.rs` (the thread that runs them), `evidence.rs`
//! (JPEGs with the box drawn, files), `recent.rs` (ring for the API), `observation.rs` (event →
//! registry observation), `mqtt.rs` (publisher).

mod evidence;
mod mqtt;
mod observation;
mod recent;
mod rules;
mod stage;
mod track;
mod zones;

pub use evidence::EvidenceWriter;
pub use mqtt::spawn as spawn_mqtt;
pub use observation::to_observation;
pub use recent::RecentEvents;
pub use rules::RuleBook;
pub use stage::{EventStage, StageSettings};

pub use zones::{Role, contains};
