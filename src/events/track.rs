//! Per-camera tracks: detections of one sample are matched to existing tracks by class and
//! IoU (centre distance as fallback), tracks are confirmed once an object persisted, and
//! forgotten when it has been gone long enough. Pure and deterministic: time is passed in
//! (seconds on any fixed origin, e.g. since the UNIX epoch).

use std::sync::Arc;
use std::time::Duration;

use crate::config::TrackerSettings;
use crate::domain::BBox;

/// One tracked object.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub id: u64,
    pub class: Arc<str>,
    /// Latest box (source pixels).
    pub bbox: BBox,
    /// Latest score.
    pub score: f32,
    pub first_seen: Duration,
    pub last_seen: Duration,
    pub hits: u32,
    /// Persisted long enough (see [`TrackerSettings`]).
    pub confirmed: bool,
    /// An event was already raised for this object (or a remembered one).
    pub alerted: bool,
}

/// What one sample did to the tracks.
#[derive(Debug, Default, PartialEq)]
pub struct Update {
    /// For each input detection, the id of the track it joined or started.
    pub assigned: Vec<u64>,
    /// Tracks that became confirmed with this sample.
    pub confirmed: Vec<u64>,
    /// Tracks dropped or forgotten at this sample.
    pub ended: Vec<u64>,
}

/// Forgotten confirmed objects remembered when `realert` is off, per camera.
const MAX_REMEMBERED: usize = 64;

/// The tracks of one camera.
#[derive(Debug, Default)]
pub struct CameraTracker {
    tracks: Vec<Track>,
    remembered: Vec<(Arc<str>, BBox)>,
    next_id: u64,
}

fn centre(b: &BBox) -> (f32, f32) {
    ((b.x1 + b.x2) / 2.0, (b.y1 + b.y2) / 2.0)
}

fn matches(track_box: &BBox, det: &BBox, s: &TrackerSettings) -> Option<(u8, f32)> {
    let iou = track_box.iou(det);
    if iou >= s.iou_match {
        return Some((0, -iou));
    }
    let (tx, ty) = centre(track_box);
    let (dx, dy) = centre(det);
    let dist = ((tx - dx).powi(2) + (ty - dy).powi(2)).sqrt();
    let diag = (track_box.width().powi(2) + track_box.height().powi(2)).sqrt();
    (diag > 0.0 && dist <= s.centre_match * diag).then_some((1, dist))
}

impl CameraTracker {
    pub fn track(&self, id: u64) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }

    pub fn track_mut(&mut self, id: u64) -> Option<&mut Track> {
        self.tracks.iter_mut().find(|t| t.id == id)
    }

    /// Takes one analysed sample at time `now`: `detections` are every (class, box, score) of
    /// that frame, possibly none (a sample with nothing still advances time).
    pub fn update(
        &mut self,
        now: Duration,
        detections: &[(Arc<str>, BBox, f32)],
        s: &TrackerSettings,
    ) -> Update {
        let mut update = Update {
            assigned: vec![0; detections.len()],
            ..Update::default()
        };
        // Greedy matching, strongest detections first; a track takes one detection per sample.
        let mut order: Vec<usize> = (0..detections.len()).collect();
        order.sort_by(|&a, &b| detections[b].2.total_cmp(&detections[a].2));
        let mut taken = vec![false; self.tracks.len()];
        for i in order {
            let (class, bbox, score) = &detections[i];
            let best = self
                .tracks
                .iter()
                .enumerate()
                .filter(|(k, t)| !taken[*k] && t.class == *class)
                .filter_map(|(k, t)| matches(&t.bbox, bbox, s).map(|m| (k, m)))
                .min_by(|a, b| a.1.0.cmp(&b.1.0).then(a.1.1.total_cmp(&b.1.1)));
            match best {
                Some((k, _)) => {
                    taken[k] = true;
                    let t = &mut self.tracks[k];
                    t.bbox = *bbox;
                    t.score = *score;
                    t.last_seen = now;
                    t.hits += 1;
                    update.assigned[i] = t.id;
                }
                None => {
                    self.next_id += 1;
                    let remembered = self
                        .remembered
                        .iter()
                        .any(|(c, b)| c == class && matches(b, bbox, s).is_some());
                    self.tracks.push(Track {
                        id: self.next_id,
                        class: class.clone(),
                        bbox: *bbox,
                        score: *score,
                        first_seen: now,
                        last_seen: now,
                        hits: 1,
                        confirmed: false,
                        alerted: remembered,
                    });
                    taken.push(true);
                    update.assigned[i] = self.next_id;
                }
            }
        }
        for t in &mut self.tracks {
            if !t.confirmed
                && t.hits >= s.min_hits
                && t.last_seen.saturating_sub(t.first_seen) >= s.confirm
            {
                t.confirmed = true;
                update.confirmed.push(t.id);
            }
        }
        let remembered = &mut self.remembered;
        self.tracks.retain(|t| {
            let gone = now.saturating_sub(t.last_seen);
            let keep = if t.confirmed {
                gone <= s.forget
            } else {
                gone <= s.max_gap
            };
            if !keep {
                update.ended.push(t.id);
                if t.confirmed && !s.realert {
                    if remembered.len() == MAX_REMEMBERED {
                        remembered.remove(0);
                    }
                    remembered.push((t.class.clone(), t.bbox));
                }
            }
            keep
        });
        update
    }

    /// Active tracks (for the gauge).
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32, y: f32) -> BBox {
        BBox {
            x1: x,
            y1: y,
            x2: x + 20.0,
            y2: y + 20.0,
        }
    }

    fn det(class: &str, bbox: BBox) -> (Arc<str>, BBox, f32) {
        (Arc::from(class), bbox, 0.9)
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn settings() -> TrackerSettings {
        TrackerSettings {
            confirm: s(4),
            min_hits: 3,
            max_gap: s(5),
            forget: s(30),
            realert: true,
            ..TrackerSettings::default()
        }
    }

    #[test]
    fn a_single_sample_flicker_never_confirms() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        let first = tracker.update(s(0), &[det("dump", b(10.0, 10.0))], &cfg);
        assert!(first.confirmed.is_empty());
        for t in 1..20 {
            let u = tracker.update(s(t * 2), &[], &cfg);
            assert!(u.confirmed.is_empty());
        }
        assert!(
            tracker.is_empty(),
            "the flicker's track was dropped after max_gap"
        );
    }

    #[test]
    fn an_object_that_persists_over_the_confirmation_time_is_confirmed_once() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        let mut confirmed = Vec::new();
        for t in 0..10 {
            let u = tracker.update(s(t * 2), &[det("dump", b(10.0, 10.0))], &cfg);
            confirmed.extend(u.confirmed);
        }
        assert_eq!(
            confirmed,
            vec![1],
            "confirmed at the third sample, and only once"
        );
    }

    #[test]
    fn enough_hits_but_too_short_a_span_is_not_confirmed() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        for ms in [0, 500, 1000, 1500] {
            let u = tracker.update(
                Duration::from_millis(ms),
                &[det("dump", b(10.0, 10.0))],
                &cfg,
            );
            assert!(u.confirmed.is_empty());
        }
    }

    #[test]
    fn the_same_object_moving_slightly_keeps_its_track() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        let mut ids = Vec::new();
        for t in 0..6 {
            let u = tracker.update(s(t), &[det("car", b(10.0 + 3.0 * t as f32, 10.0))], &cfg);
            ids.extend(u.assigned);
        }
        assert!(ids.iter().all(|&id| id == 1), "{ids:?}");
        // A jump beyond IoU but within half a diagonal is still the same object (fallback).
        let u = tracker.update(s(6), &[det("car", b(37.0, 16.0))], &cfg);
        assert_eq!(u.assigned, vec![1]);
    }

    #[test]
    fn two_objects_of_the_same_class_get_two_tracks() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        let mut confirmed = Vec::new();
        for t in 0..5 {
            let u = tracker.update(
                s(t * 2),
                &[det("dump", b(10.0, 10.0)), det("dump", b(200.0, 200.0))],
                &cfg,
            );
            assert_eq!(u.assigned.len(), 2);
            assert_ne!(u.assigned[0], u.assigned[1]);
            confirmed.extend(u.confirmed);
        }
        confirmed.sort_unstable();
        assert_eq!(confirmed, vec![1, 2]);
        assert_eq!(tracker.len(), 2);
    }

    #[test]
    fn a_different_class_at_the_same_place_is_another_track() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        let u = tracker.update(
            s(0),
            &[det("dump", b(10.0, 10.0)), det("car", b(10.0, 10.0))],
            &cfg,
        );
        assert_ne!(u.assigned[0], u.assigned[1]);
    }

    #[test]
    fn a_short_absence_keeps_a_confirmed_track_and_a_long_one_ends_it() {
        let mut tracker = CameraTracker::default();
        let cfg = settings();
        for t in 0..4 {
            tracker.update(s(t * 2), &[det("dump", b(10.0, 10.0))], &cfg);
        }
        assert!(tracker.track(1).is_some_and(|t| t.confirmed));
        // Gone for 20 s (< forget), back: same track, nothing new to confirm.
        let u = tracker.update(s(26), &[det("dump", b(11.0, 10.0))], &cfg);
        assert_eq!((u.assigned.clone(), u.confirmed.clone()), (vec![1], vec![]));
        // Gone for longer than forget: the track ends; the object back is a new track.
        let u = tracker.update(s(60), &[], &cfg);
        assert_eq!(u.ended, vec![1]);
        let u = tracker.update(s(61), &[det("dump", b(10.0, 10.0))], &cfg);
        assert_eq!(u.assigned, vec![2]);
        assert!(tracker.track(2).is_some_and(|t| !t.alerted), "realert on");
    }

    #[test]
    fn without_realert_a_forgotten_object_coming_back_stays_silent() {
        let mut tracker = CameraTracker::default();
        let cfg = TrackerSettings {
            realert: false,
            ..settings()
        };
        for t in 0..4 {
            tracker.update(s(t * 2), &[det("dump", b(10.0, 10.0))], &cfg);
        }
        tracker.update(s(100), &[], &cfg);
        assert!(tracker.is_empty());
        let u = tracker.update(s(101), &[det("dump", b(12.0, 10.0))], &cfg);
        assert!(
            tracker.track(u.assigned[0]).is_some_and(|t| t.alerted),
            "remembered as already alerted"
        );
    }
}
