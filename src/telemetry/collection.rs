//! Stops from a track, robust to GPS jitter, and the collection-point status of a route's day.
//!
//! A stop is a run of fixes that stay within `radius` of where the run began; one fix outside
//! (a jitter spike) does not end it, two in a row do. A collection point is *served* by a stop
//! of at least `served_min` within `served_radius` of it; served after the route's end it is
//! *late*; not served when the route's window has ended it is *missed*; else *pending*.
//! Pure: tracks in, statuses out.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::store::TrackPoint;
use crate::domain::Position;

/// A place a vehicle stood.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stop {
    pub vehicle: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
}

impl Stop {
    pub fn position(&self) -> Position {
        Position::new(self.lat, self.lon)
    }

    pub fn seconds(&self) -> i64 {
        (self.to - self.from).num_seconds()
    }
}

/// Stops of one vehicle's track (in time order) lasting at least `min_s`.
pub fn stops(vehicle: &str, track: &[TrackPoint], radius_m: f64, min_s: i64) -> Vec<Stop> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < track.len() {
        let anchor = track[i].position();
        let (mut sum_lat, mut sum_lon, mut n) = (track[i].lat, track[i].lon, 1.0);
        let mut last = i;
        let mut j = i + 1;
        while j < track.len() {
            let inside = |k: usize| track[k].position().distance_m(&anchor) <= radius_m;
            if inside(j) {
                sum_lat += track[j].lat;
                sum_lon += track[j].lon;
                n += 1.0;
                last = j;
                j += 1;
            } else if j + 1 < track.len() && inside(j + 1) {
                // A lone spike: skip it, the stop goes on.
                j += 1;
            } else {
                break;
            }
        }
        let stop = Stop {
            vehicle: vehicle.to_owned(),
            from: track[i].at,
            to: track[last].at,
            lat: sum_lat / n,
            lon: sum_lon / n,
        };
        if stop.seconds() >= min_s {
            out.push(stop);
        }
        i = last + 1;
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointState {
    Served,
    Late,
    Missed,
    Pending,
}

/// One collection point of a route's day.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointStatus {
    pub point: String,
    pub lat: f64,
    pub lon: f64,
    pub state: PointState,
    pub served_at: Option<DateTime<Utc>>,
    pub served_by: Option<String>,
}

/// The status of each point given the day's stops of the route's vehicles.
pub fn route_day(
    points: &[(String, Position)],
    stops: &[Stop],
    served_radius_m: f64,
    served_min_s: i64,
    window_end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<PointStatus> {
    points
        .iter()
        .map(|(id, at)| {
            let first = stops
                .iter()
                .filter(|s| {
                    s.seconds() >= served_min_s && s.position().distance_m(at) <= served_radius_m
                })
                .min_by_key(|s| s.from);
            // Served when the stop had lasted long enough.
            let served_at = first.map(|s| s.from + chrono::Duration::seconds(served_min_s));
            let state = match served_at {
                Some(t) if t <= window_end => PointState::Served,
                Some(_) => PointState::Late,
                None if now > window_end => PointState::Missed,
                None => PointState::Pending,
            };
            PointStatus {
                point: id.clone(),
                lat: at.lat,
                lon: at.lon,
                state,
                served_at,
                served_by: first.map(|s| s.vehicle.clone()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_764_568_800 + s, 0).expect("time")
    }

    fn point(s: i64, lat: f64, lon: f64) -> TrackPoint {
        TrackPoint {
            at: t(s),
            lat,
            lon,
            speed_kmh: None,
            course_deg: None,
            ignition: None,
            late: false,
        }
    }

    /// Drives 0 → A, stands 90 s at A with ±5 m jitter and one 80 m spike, drives on, passes B
    /// without stopping, stands 30 s at C.
    fn track() -> Vec<TrackPoint> {
        let mut out = Vec::new();
        for k in 0..10 {
            out.push(point(k * 5, 51.100 + k as f64 * 0.0004, 71.40));
        }
        let a = (51.104, 71.40);
        for k in 0..19 {
            let jitter = if k % 2 == 0 { 0.00004 } else { -0.00004 };
            let lat = if k == 9 { a.0 + 0.0007 } else { a.0 + jitter };
            out.push(point(50 + k * 5, lat, a.1));
        }
        for k in 0..10 {
            out.push(point(145 + k * 5, 51.105 + k as f64 * 0.0004, 71.40));
        }
        for k in 0..7 {
            out.push(point(200 + k * 5, 51.110, 71.40));
        }
        out
    }

    #[test]
    fn jitter_and_one_spike_make_one_stop_not_several() {
        let s = stops("t1", &track(), 30.0, 20);
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].seconds(), 90);
        assert!(s[0].position().distance_m(&Position::new(51.104, 71.40)) < 10.0);
    }

    #[test]
    fn points_are_served_late_missed_or_pending_by_the_stops() {
        let s = stops("t1", &track(), 30.0, 20);
        let points = vec![
            ("A".to_owned(), Position::new(51.104, 71.40)),
            ("B".to_owned(), Position::new(51.107, 71.40)),
            ("C".to_owned(), Position::new(51.110, 71.40)),
        ];
        let after = route_day(&points, &s, 30.0, 60, t(150), t(1000));
        let states: Vec<_> = after.iter().map(|p| p.state).collect();
        // C's stop is 30 s, shorter than 60 s: not served.
        assert_eq!(
            states,
            [PointState::Served, PointState::Missed, PointState::Missed]
        );
        let during = route_day(&points, &s, 30.0, 20, t(100), t(90));
        let states: Vec<_> = during.iter().map(|p| p.state).collect();
        assert_eq!(
            states,
            [PointState::Served, PointState::Pending, PointState::Late]
        );
        assert_eq!(during[0].served_by.as_deref(), Some("t1"));
    }
}
