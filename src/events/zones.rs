//! Offence rules on a camera's zones, in normalised image coordinates: a vehicle whose
//! ground-contact point (box bottom-centre) stays in a `no_parking` zone longer than the zone's
//! `max_dwell`, and a person in a `restricted` zone (at night, or always). Each rule fires once
//! per stay; a stay ends when the object is seen outside the zone or its track ends. Pure.

use std::collections::HashMap;
use std::time::Duration;

use crate::domain::{BBox, NightHours};

/// The rule a zone enforces.
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneRule {
    /// A vehicle may not stay longer than `max_dwell`.
    NoParking { max_dwell: Duration },
    /// No person may be inside (only during night hours when `night_only`).
    Restricted { night_only: bool },
}

/// One zone of a camera with its rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSpec {
    pub name: String,
    pub rule: ZoneRule,
    /// Normalised image polygon (0..1, origin top-left).
    pub polygon: Vec<[f64; 2]>,
}

/// Even-odd ray casting; points on an edge count as whichever side the arithmetic gives.
pub fn contains(polygon: &[[f64; 2]], x: f64, y: f64) -> bool {
    let mut inside = false;
    let n = polygon.len();
    for i in 0..n {
        let [xi, yi] = polygon[i];
        let [xj, yj] = polygon[(i + n - 1) % n];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
    }
    inside
}

/// The ground-contact point of a box, normalised by the source size.
pub fn ground_point(bbox: &BBox, source: (u32, u32)) -> (f64, f64) {
    let w = f64::from(source.0.max(1));
    let h = f64::from(source.1.max(1));
    (
        f64::from((bbox.x1 + bbox.x2) / 2.0) / w,
        f64::from(bbox.y2) / h,
    )
}

/// What kind of object a track is, for the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Vehicle,
    Person,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Stay {
    entered: Duration,
    samples: u32,
    fired: bool,
}

/// The stays of one camera's tracks in its zones.
#[derive(Debug, Default)]
pub struct ZoneWatch {
    stays: HashMap<(u64, usize), Stay>,
}

impl ZoneWatch {
    /// One sample of track `track` (`role`) at normalised point `point`, time `now`. Returns
    /// the indexes of the zones whose rule fires now. A person's stay needs `min_samples`
    /// samples inside before it fires (one false detection is not an intrusion).
    #[allow(clippy::too_many_arguments)] // the rules, then one sample's facts, all plain values
    pub fn observe(
        &mut self,
        zones: &[ZoneSpec],
        night: &NightHours,
        min_samples: u32,
        track: u64,
        role: Role,
        point: (f64, f64),
        now: Duration,
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        for (z, zone) in zones.iter().enumerate() {
            let applies = matches!(
                (&zone.rule, role),
                (ZoneRule::NoParking { .. }, Role::Vehicle)
                    | (ZoneRule::Restricted { .. }, Role::Person)
            );
            if !applies {
                continue;
            }
            if !contains(&zone.polygon, point.0, point.1) {
                self.stays.remove(&(track, z));
                continue;
            }
            let stay = self.stays.entry((track, z)).or_insert(Stay {
                entered: now,
                samples: 0,
                fired: false,
            });
            stay.samples += 1;
            if stay.fired {
                continue;
            }
            let breaks = match zone.rule {
                ZoneRule::NoParking { max_dwell } => now.saturating_sub(stay.entered) >= max_dwell,
                ZoneRule::Restricted { night_only } => {
                    stay.samples >= min_samples && (!night_only || night.is_night(now))
                }
            };
            if breaks {
                stay.fired = true;
                fired.push(z);
            }
        }
        fired
    }

    /// Forgets the stays of ended tracks.
    pub fn end_track(&mut self, track: u64) {
        self.stays.retain(|(t, _), _| *t != track);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<[f64; 2]> {
        vec![[0.5, 0.5], [1.0, 0.5], [1.0, 1.0], [0.5, 1.0]]
    }

    fn zones() -> Vec<ZoneSpec> {
        vec![
            ZoneSpec {
                name: "bus stop".into(),
                rule: ZoneRule::NoParking {
                    max_dwell: Duration::from_secs(60),
                },
                polygon: square(),
            },
            ZoneSpec {
                name: "depot".into(),
                rule: ZoneRule::Restricted { night_only: true },
                polygon: vec![[0.0, 0.0], [0.4, 0.0], [0.4, 0.4], [0.0, 0.4]],
            },
        ]
    }

    const NIGHT: NightHours = NightHours {
        start_hour: 22,
        end_hour: 6,
        utc_offset_minutes: 300,
    };

    /// 2026-11-23 at `hour`:00 local (UTC+5).
    fn local(hour: u64) -> Duration {
        Duration::from_secs(1_795_392_000 + hour * 3600 - 5 * 3600)
    }

    #[test]
    fn the_ground_point_is_the_bottom_centre_in_normalised_coordinates() {
        let b = BBox {
            x1: 100.0,
            y1: 50.0,
            x2: 300.0,
            y2: 400.0,
        };
        assert_eq!(ground_point(&b, (800, 800)), (0.25, 0.5));
        assert!(contains(&square(), 0.75, 0.75));
        assert!(!contains(&square(), 0.25, 0.75));
    }

    #[test]
    fn a_car_parked_longer_than_max_dwell_fires_once_per_stay() {
        let mut watch = ZoneWatch::default();
        let z = zones();
        let at = |s: u64| local(12) + Duration::from_secs(s);
        let mut fired = Vec::new();
        for t in (0..=180).step_by(10) {
            fired.push(watch.observe(&z, &NIGHT, 2, 1, Role::Vehicle, (0.7, 0.9), at(t)));
        }
        let firing: Vec<usize> = fired
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.is_empty())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(firing, vec![6], "at 60 s, once");
        // Leaves and comes back: a new stay, which fires again after its own dwell.
        assert!(
            watch
                .observe(&z, &NIGHT, 2, 1, Role::Vehicle, (0.2, 0.9), at(190))
                .is_empty()
        );
        assert!(
            watch
                .observe(&z, &NIGHT, 2, 1, Role::Vehicle, (0.7, 0.9), at(200))
                .is_empty()
        );
        assert_eq!(
            watch.observe(&z, &NIGHT, 2, 1, Role::Vehicle, (0.7, 0.9), at(260)),
            vec![0]
        );
    }

    #[test]
    fn a_car_passing_through_does_not_fire_and_a_person_is_not_parking() {
        let mut watch = ZoneWatch::default();
        let z = zones();
        for t in 0..5 {
            let now = local(12) + Duration::from_secs(t * 10);
            assert!(
                watch
                    .observe(&z, &NIGHT, 2, 1, Role::Vehicle, (0.7, 0.9), now)
                    .is_empty()
            );
            assert!(
                watch
                    .observe(&z, &NIGHT, 2, 2, Role::Person, (0.7, 0.9), now)
                    .is_empty()
            );
        }
    }

    #[test]
    fn a_person_in_a_restricted_zone_fires_at_night_only() {
        let z = zones();
        let mut day = ZoneWatch::default();
        for s in 0..5 {
            let now = local(12) + Duration::from_secs(s);
            assert!(
                day.observe(&z, &NIGHT, 2, 7, Role::Person, (0.2, 0.3), now)
                    .is_empty()
            );
        }
        let mut night = ZoneWatch::default();
        let now = local(23);
        assert!(
            night
                .observe(&z, &NIGHT, 2, 7, Role::Person, (0.2, 0.3), now)
                .is_empty(),
            "one sample is not enough"
        );
        assert_eq!(
            night.observe(
                &z,
                &NIGHT,
                2,
                7,
                Role::Person,
                (0.2, 0.3),
                now + Duration::from_secs(2)
            ),
            vec![1]
        );
        assert!(
            night
                .observe(
                    &z,
                    &NIGHT,
                    2,
                    7,
                    Role::Person,
                    (0.2, 0.3),
                    now + Duration::from_secs(4)
                )
                .is_empty(),
            "once per stay"
        );
    }
}
