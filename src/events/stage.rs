//! The event stage: analysed frames → per-camera tracks and zone stays → [`DetectionEvent`]s
//! with evidence. One OS thread (JPEG encoding is CPU work); it blocks on its input and on its
//! sinks, so pressure goes back to the detector and from there to the FrameQueue's counted
//! drops. Nothing after detection is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::evidence::EvidenceWriter;
use super::recent::RecentEvents;
use super::rules::{CameraRules, RuleBook};
use super::track::CameraTracker;
use super::zones::{Role, ZoneRule, ZoneWatch, ground_point};
use crate::config::TrackerSettings;
use crate::detect::AnalysedFrame;
use crate::domain::NightHours;
use crate::domain::{CameraId, Detection, DetectionEvent, EventKind, Frame};
use crate::obs::{DetectMetrics, EventLabels};

/// Settings of the event stage.
#[derive(Debug, Clone)]
pub struct StageSettings {
    pub tracking: TrackerSettings,
    pub night: NightHours,
}

#[derive(Default)]
struct CameraState {
    tracker: CameraTracker,
    zones: ZoneWatch,
}

/// Tracks and rules of every camera; [`EventStage::process`] is deterministic given its input.
pub struct EventStage {
    settings: StageSettings,
    rules: Arc<RuleBook>,
    cameras: HashMap<CameraId, CameraState>,
    evidence: EvidenceWriter,
    metrics: DetectMetrics,
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn event_id(camera: &CameraId, track: u64, first_seen: Duration, zone: Option<usize>) -> String {
    let mut id = format!("{}-t{track}-{}", camera.as_str(), first_seen.as_millis());
    if let Some(z) = zone {
        id.push_str(&format!("-z{z}"));
    }
    super::evidence::safe_name(&id)
}

impl EventStage {
    pub fn new(
        settings: StageSettings,
        rules: Arc<RuleBook>,
        evidence: EvidenceWriter,
        metrics: DetectMetrics,
    ) -> Self {
        Self {
            settings,
            rules,
            cameras: HashMap::new(),
            evidence,
            metrics,
        }
    }

    fn tracks_active(&self) -> usize {
        self.cameras.values().map(|c| c.tracker.len()).sum()
    }

    /// One analysed frame in, the events it completes out (with evidence).
    pub fn process(&mut self, analysed: AnalysedFrame) -> Vec<DetectionEvent> {
        let AnalysedFrame { frame, detections } = analysed;
        let Some(rules) = self.rules.get(&frame.camera) else {
            // Removed on reload, or not analysed: forget its tracks.
            self.cameras.remove(&frame.camera);
            return Vec::new();
        };
        let now = since_epoch(frame.captured_at);
        let source = (frame.letterbox.source_width, frame.letterbox.source_height);
        let kept: Vec<&Detection> = detections
            .iter()
            .filter(|d| rules.wants(&d.class) && !rules.masked(&d.bbox, source))
            .collect();
        let observed: Vec<_> = kept
            .iter()
            .map(|d| (d.class.clone(), d.bbox, d.score))
            .collect();
        let state = self.cameras.entry(frame.camera.clone()).or_default();
        let update = state
            .tracker
            .update(now, &observed, &self.settings.tracking);
        for ended in &update.ended {
            state.zones.end_track(*ended);
        }
        let mut pending: Vec<(
            u64,
            &Detection,
            EventKind,
            crate::domain::Category,
            Option<usize>,
        )> = Vec::new();
        // Hazards: a track confirmed now (and not already alerted) is an event.
        for id in &update.confirmed {
            let Some(track) = state.tracker.track_mut(*id) else {
                continue;
            };
            if !rules.hazards.contains(&*track.class) || track.alerted {
                continue;
            }
            track.alerted = true;
            // Hazard classes raise a category (checked when the config loads).
            if let Some(i) = update.assigned.iter().position(|t| t == id)
                && let Some(category) = kept[i].category.clone()
            {
                pending.push((*id, kept[i], EventKind::Hazard, category, None));
            }
        }
        // Offences: zone rules on vehicles and persons.
        if !rules.zones.is_empty() {
            for (i, d) in kept.iter().enumerate() {
                let role = if rules.vehicles.contains(&*d.class) {
                    Role::Vehicle
                } else if rules.persons.contains(&*d.class) {
                    Role::Person
                } else {
                    continue;
                };
                let track = update.assigned[i];
                let fired = state.zones.observe(
                    &rules.zones,
                    &self.settings.night,
                    self.settings.tracking.min_hits,
                    track,
                    role,
                    ground_point(&d.bbox, source),
                    now,
                );
                for z in fired {
                    let category = match rules.zones[z].rule {
                        ZoneRule::NoParking { .. } => rules.parking_category.clone(),
                        ZoneRule::Restricted { .. } => rules.restricted_category.clone(),
                    };
                    pending.push((track, d, EventKind::Offence, category, Some(z)));
                }
            }
        }
        let events = pending
            .into_iter()
            .filter_map(|(track, d, kind, category, zone)| {
                let t = self
                    .cameras
                    .get(&frame.camera)?
                    .tracker
                    .track(track)?
                    .clone();
                Some(self.event(&frame, &rules, &t, d, kind, category, zone))
            })
            .collect();
        self.metrics.tracks_active.set(self.tracks_active() as i64);
        events
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        frame: &Frame,
        rules: &CameraRules,
        track: &super::track::Track,
        d: &Detection,
        kind: EventKind,
        category: crate::domain::Category,
        zone: Option<usize>,
    ) -> DetectionEvent {
        let id = event_id(&frame.camera, track.id, track.first_seen, zone);
        let evidence = match self
            .evidence
            .write(frame.camera.as_str(), &id, frame, &d.bbox)
        {
            Ok(evidence) => Some(evidence),
            Err(error) => {
                self.metrics.evidence_failures.inc();
                tracing::error!(camera = frame.camera.as_str(), event = %id, %error, "event evidence not stored");
                None
            }
        };
        self.metrics
            .events
            .get_or_create(&EventLabels {
                kind: kind.as_str(),
                class: d.class.to_string(),
            })
            .inc();
        // From the keyframe's arrival from the camera (before decoding) to this event.
        self.metrics
            .frame_to_event_seconds
            .observe(frame.received_at.elapsed().as_secs_f64());
        let event = DetectionEvent {
            id,
            camera: frame.camera.clone(),
            position: rules.position,
            address: rules.address.clone(),
            kind,
            class: d.class.clone(),
            category,
            zone: zone.map(|z| rules.zones[z].name.clone()),
            score: d.score,
            bbox: d.bbox,
            model: d.model.clone(),
            threshold: d.threshold,
            track: track.id,
            first_seen: UNIX_EPOCH + track.first_seen,
            last_seen: UNIX_EPOCH + track.last_seen,
            at: frame.captured_at,
            evidence,
        };
        tracing::info!(event = %event.id, camera = event.camera.as_str(), kind = kind.as_str(), class = %event.class, category = %event.category, score = event.score, "detection event");
        event
    }

    /// Runs until `input` is closed and drained (the detector workers ended), then returns;
    /// dropping `sinks` lets each sink finish. Every event goes to `recent` and to every sink
    /// with a blocking send.
    pub fn run(
        mut self,
        mut input: mpsc::Receiver<AnalysedFrame>,
        recent: Arc<RecentEvents>,
        sinks: Vec<mpsc::Sender<Arc<DetectionEvent>>>,
    ) {
        let mut sinks = sinks;
        while let Some(analysed) = input.blocking_recv() {
            for event in self.process(analysed) {
                let event = Arc::new(event);
                recent.push(event.clone());
                sinks.retain(|sink| {
                    let delivered = sink.blocking_send(event.clone()).is_ok();
                    if !delivered {
                        tracing::error!("an event sink ended early; it gets no more events");
                    }
                    delivered
                });
            }
        }
        // Tracks flush: unconfirmed tracks are not events, confirmed ones were sent already.
        self.metrics.tracks_active.set(0);
        tracing::debug!("event stage drained");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DetectorRoute, Zone};
    use crate::domain::{BBox, Category, Letterbox, ModelRef};

    const T0: u64 = 1_795_392_000; // 2026-11-23 00:00 UTC = 05:00 in Astana (UTC+5)

    fn detect_settings() -> crate::config::DetectSettings {
        let manifest =
            crate::config::ModelManifest::load(std::path::Path::new("models/tiny/model.toml"))
                .expect("tiny manifest");
        let mut detectors = std::collections::BTreeMap::new();
        detectors.insert(
            crate::config::DetectorKind::Offences,
            DetectorRoute {
                model: "tiny".into(),
                classes: vec![],
                vehicle_classes: vec!["car".into()],
                person_classes: vec!["person".into()],
            },
        );
        crate::config::DetectSettings {
            model_name: "tiny".into(),
            manifest,
            detectors,
            provider: crate::config::ExecutionProvider::Cpu,
            max_batch: 1,
            max_wait: Duration::ZERO,
            workers: 1,
            intra_threads: 1,
            queue_capacity: 1,
            tracking: TrackerSettings {
                min_hits: 2,
                ..TrackerSettings::default()
            },
            night: NightHours::default(),
            evidence_dir: "unused".into(),
            parking_category: Category::new("parking_violation").expect("code"),
            restricted_category: Category::new("restricted_area").expect("code"),
            recent_events: 10,
            mqtt: None,
        }
    }

    fn stage(dir: &std::path::Path) -> EventStage {
        stage_with(dir, Vec::new())
    }

    fn stage_with(dir: &std::path::Path, masks: Vec<Vec<[f64; 2]>>) -> EventStage {
        let detect = detect_settings();
        let mut camera = crate::test_util::camera("c1", "rtsp://127.0.0.1:9/x");
        camera.detectors = vec![crate::config::DetectorKind::Offences];
        camera.masks = masks;
        let zone = |name: &str, kind: crate::config::ZoneKind, polygon: Vec<[f64; 2]>| Zone {
            name: name.into(),
            kind,
            polygon,
            max_dwell: Duration::from_secs(60),
            night_only: true,
        };
        camera.zones = vec![
            zone(
                "bus stop",
                crate::config::ZoneKind::NoParking,
                vec![[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]],
            ),
            zone(
                "depot",
                crate::config::ZoneKind::Restricted,
                vec![[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]],
            ),
        ];
        let rules = Arc::new(RuleBook::new(&[camera], &detect));
        let metrics = crate::obs::Metrics::new();
        EventStage::new(
            StageSettings {
                tracking: detect.tracking.clone(),
                night: detect.night,
            },
            rules,
            EvidenceWriter::new(dir),
            metrics.detect.clone(),
        )
    }

    fn sample(secs: u64, found: &[(&str, BBox)]) -> AnalysedFrame {
        gstreamer::init().expect("gst init");
        let captured_at = UNIX_EPOCH + Duration::from_secs(T0 + secs);
        let model = Arc::new(ModelRef {
            name: "m".into(),
            version: "1".into(),
        });
        AnalysedFrame {
            frame: Frame {
                camera: CameraId::new("c1"),
                seq: secs,
                pts: None,
                captured_at,
                width: 64,
                height: 64,
                stride: 192,
                letterbox: Letterbox::fit((100, 100), (64, 64)),
                decode_latency: None,
                received_at: std::time::Instant::now(),
                buffer: gstreamer::Buffer::from_mut_slice(vec![0u8; 192 * 64]),
            },
            detections: found
                .iter()
                .map(|(class, bbox)| Detection {
                    camera: CameraId::new("c1"),
                    seq: secs,
                    ts: captured_at,
                    pts: None,
                    class: Arc::from(*class),
                    category: Some(Category::new("open_manhole").expect("code")),
                    score: 0.9,
                    threshold: 0.5,
                    bbox: *bbox,
                    model: model.clone(),
                })
                .collect(),
        }
    }

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox { x1, y1, x2, y2 }
    }

    #[test]
    fn a_car_parked_in_a_no_parking_zone_past_its_dwell_is_one_parking_offence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut stage = stage(dir.path());
        let car = b(60.0, 60.0, 80.0, 90.0); // ground point (0.7, 0.9): in the bus stop
        let mut events = Vec::new();
        for s in (0..=150).step_by(10) {
            events.extend(stage.process(sample(s, &[("car", car)])));
        }
        assert_eq!(events.len(), 1, "{events:?}");
        let e = &events[0];
        assert_eq!(
            (e.kind, e.category.as_str(), e.zone.as_deref()),
            (EventKind::Offence, "parking_violation", Some("bus stop"))
        );
        assert_eq!(e.at, UNIX_EPOCH + Duration::from_secs(T0 + 60));
        assert!(
            e.evidence
                .as_ref()
                .is_some_and(|ev| ev.annotated_path.is_file())
        );
    }

    #[test]
    fn a_person_in_a_restricted_zone_is_an_offence_at_night_and_nothing_by_day() {
        let dir = tempfile::tempdir().expect("tempdir");
        let person = b(10.0, 10.0, 20.0, 40.0); // ground point (0.15, 0.4): in the depot
        // 05:00 local is night (22–06).
        let mut night = stage(dir.path());
        let mut events = Vec::new();
        for s in 0..4 {
            events.extend(night.process(sample(s * 2, &[("person", person)])));
        }
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].category.as_str(), "restricted_area");
        // 12:00 local: nothing.
        let mut day = stage(dir.path());
        for s in 0..4 {
            assert!(
                day.process(sample(7 * 3600 + s * 2, &[("person", person)]))
                    .is_empty()
            );
        }
        // A detection inside a mask is ignored.
        let mask = vec![[0.0, 0.0], [0.3, 0.0], [0.3, 0.5], [0.0, 0.5]];
        let mut masked = stage_with(dir.path(), vec![mask]);
        for s in 0..4 {
            assert!(
                masked
                    .process(sample(s * 2, &[("person", person)]))
                    .is_empty()
            );
        }
        // A class the camera does not analyse is ignored.
        let mut other = stage(dir.path());
        for s in 0..4 {
            assert!(other.process(sample(s * 2, &[("dog", person)])).is_empty());
        }
    }
}
