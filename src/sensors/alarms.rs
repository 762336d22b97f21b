//! The per-sensor state machine: one alarm *episode* per kind however many messages say so.
//! Pure (time is passed in), so every rule is tested without clocks, brokers or databases.
//!
//! - Ordering: a reading applies only when `(ts, seq)` is above the latest applied one; a
//!   repeat, a retained copy or an older reading arriving late changes nothing (`Stale`).
//! - Cover: `open`, or a tilt at/past the type's `tilt_alarm_deg` (or `tilted` with no angle)
//!   raises it; `closed` below the threshold clears it.
//! - Flooding: the `flooding` flag, or a water level at/past the type's `flood_level_cm`.
//! - Battery low: at/below `battery_low_pct`; cleared at/above `battery_ok_pct` (hysteresis).
//! - Silent: nothing applied for the type's `silent_after`, counted from the later of the last
//!   message and the moment the subscriber (re)connected; any applied reading clears it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::SensorTypeSettings;
use crate::domain::{CoverState, SensorReading};

/// The alarms a sensor can raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// Cover opened or tilted: an `open_manhole` appeal.
    Cover,
    /// A `flooding` appeal.
    Flooding,
    /// A `sensor_maintenance` ticket.
    BatteryLow,
    /// A `sensor_maintenance` ticket.
    Silent,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 4] = [
        AlarmKind::Cover,
        AlarmKind::Flooding,
        AlarmKind::BatteryLow,
        AlarmKind::Silent,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlarmKind::Cover => "cover",
            AlarmKind::Flooding => "flooding",
            AlarmKind::BatteryLow => "battery_low",
            AlarmKind::Silent => "silent",
        }
    }
}

/// One alarm episode of one kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// 1, 2, …: part of the observation's idempotency key.
    pub number: u32,
    pub active: bool,
    pub since: DateTime<Utc>,
    #[serde(default)]
    pub cleared_at: Option<DateTime<Utc>>,
    /// The appeal the episode opened or joined.
    #[serde(default)]
    pub appeal_id: Option<i64>,
    #[serde(default)]
    pub appeal_number: Option<String>,
}

/// What is stored per sensor (`sensor_state.state`, JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SensorState {
    /// The latest applied reading; its `(ts, seq)` is the ordering high-water mark.
    #[serde(default)]
    pub reading: Option<SensorReading>,
    #[serde(default)]
    pub alarms: BTreeMap<AlarmKind, Episode>,
}

/// A change an applied reading or a silence check made.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Raised {
        kind: AlarmKind,
        episode: u32,
        at: DateTime<Utc>,
    },
    Cleared {
        kind: AlarmKind,
        episode: u32,
        at: DateTime<Utc>,
        appeal_id: Option<i64>,
    },
}

/// What a reading did.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Applied(Vec<Change>),
    /// Not newer than the latest applied reading: no effect.
    Stale,
}

impl SensorState {
    pub fn is_active(&self, kind: AlarmKind) -> bool {
        self.alarms.get(&kind).is_some_and(|e| e.active)
    }

    /// Starts an episode unless one is active.
    fn raise(&mut self, kind: AlarmKind, at: DateTime<Utc>, changes: &mut Vec<Change>) {
        if self.is_active(kind) {
            return;
        }
        let number = self.alarms.get(&kind).map_or(1, |e| e.number + 1);
        self.alarms.insert(
            kind,
            Episode {
                number,
                active: true,
                since: at,
                cleared_at: None,
                appeal_id: None,
                appeal_number: None,
            },
        );
        changes.push(Change::Raised {
            kind,
            episode: number,
            at,
        });
    }

    fn clear(&mut self, kind: AlarmKind, at: DateTime<Utc>, changes: &mut Vec<Change>) {
        if let Some(e) = self.alarms.get_mut(&kind)
            && e.active
        {
            e.active = false;
            e.cleared_at = Some(at);
            changes.push(Change::Cleared {
                kind,
                episode: e.number,
                at,
                appeal_id: e.appeal_id,
            });
        }
    }

    /// Applies `reading` under its type's thresholds.
    pub fn apply(&mut self, reading: &SensorReading, t: &SensorTypeSettings) -> Verdict {
        if let Some(last) = &self.reading
            && (reading.ts, reading.seq) <= (last.ts, last.seq)
        {
            return Verdict::Stale;
        }
        let at = reading.ts;
        let mut changes = Vec::new();
        self.clear(AlarmKind::Silent, at, &mut changes);
        if cover_alarm(reading, t) {
            self.raise(AlarmKind::Cover, at, &mut changes);
        } else {
            self.clear(AlarmKind::Cover, at, &mut changes);
        }
        let flooding = reading.flooding == Some(true)
            || matches!((reading.water_level_cm, t.flood_level_cm), (Some(level), Some(limit)) if level >= limit);
        if flooding {
            self.raise(AlarmKind::Flooding, at, &mut changes);
        } else {
            self.clear(AlarmKind::Flooding, at, &mut changes);
        }
        match reading.battery_pct {
            Some(b) if b <= t.battery_low_pct => {
                self.raise(AlarmKind::BatteryLow, at, &mut changes);
            }
            Some(b) if b >= t.battery_ok_pct => {
                self.clear(AlarmKind::BatteryLow, at, &mut changes);
            }
            _ => {}
        }
        self.reading = Some(reading.clone());
        Verdict::Applied(changes)
    }

    /// Raises `Silent` when nothing was applied for the type's `silent_after`, counted from
    /// the later of `last_seen` (receipt of the last applied message) and `watch_from`.
    pub fn check_silence(
        &mut self,
        last_seen: Option<DateTime<Utc>>,
        watch_from: DateTime<Utc>,
        now: DateTime<Utc>,
        t: &SensorTypeSettings,
    ) -> Option<Change> {
        let from = last_seen.map_or(watch_from, |seen| seen.max(watch_from));
        let silent_after =
            chrono::Duration::from_std(t.silent_after).unwrap_or(chrono::Duration::MAX);
        if now < from + silent_after || self.is_active(AlarmKind::Silent) {
            return None;
        }
        let mut changes = Vec::new();
        self.raise(AlarmKind::Silent, now, &mut changes);
        changes.pop()
    }
}

fn cover_alarm(r: &SensorReading, t: &SensorTypeSettings) -> bool {
    match (r.state, r.tilt_deg) {
        (CoverState::Open, _) => true,
        (_, Some(tilt)) => tilt >= t.tilt_alarm_deg,
        (CoverState::Tilted, None) => true,
        (CoverState::Closed, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn kind() -> SensorTypeSettings {
        SensorTypeSettings {
            heartbeat: Duration::from_secs(60),
            silent_after: Duration::from_secs(180),
            tilt_alarm_deg: 15.0,
            battery_low_pct: 20.0,
            battery_ok_pct: 30.0,
            flood_level_cm: Some(40.0),
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + s, 0).expect("time")
    }

    fn reading(seq: u64, at: i64, state: CoverState) -> SensorReading {
        SensorReading {
            seq,
            ts: t(at),
            state,
            tilt_deg: None,
            water_level_cm: None,
            flooding: None,
            temperature_c: None,
            battery_pct: Some(90.0),
            rssi_dbm: None,
            snr_db: None,
            firmware: None,
        }
    }

    fn raised(v: &Verdict) -> Vec<AlarmKind> {
        match v {
            Verdict::Applied(changes) => changes
                .iter()
                .filter_map(|c| match c {
                    Change::Raised { kind, .. } => Some(*kind),
                    Change::Cleared { .. } => None,
                })
                .collect(),
            Verdict::Stale => Vec::new(),
        }
    }

    #[test]
    fn an_open_cover_raises_one_episode_however_often_it_is_reported() {
        let mut s = SensorState::default();
        assert_eq!(
            raised(&s.apply(&reading(1, 0, CoverState::Open), &kind())),
            vec![AlarmKind::Cover]
        );
        for seq in 2..50 {
            assert_eq!(
                raised(&s.apply(&reading(seq, seq as i64, CoverState::Open), &kind())),
                vec![]
            );
        }
        assert_eq!(s.alarms[&AlarmKind::Cover].number, 1);
    }

    #[test]
    fn open_then_tilted_is_the_same_episode_and_closing_clears_it() {
        let mut s = SensorState::default();
        s.apply(&reading(1, 0, CoverState::Open), &kind());
        assert_eq!(
            raised(&s.apply(&reading(2, 1, CoverState::Tilted), &kind())),
            vec![]
        );
        let v = s.apply(&reading(3, 2, CoverState::Closed), &kind());
        assert!(
            matches!(&v, Verdict::Applied(c) if matches!(c.as_slice(), [Change::Cleared { kind: AlarmKind::Cover, episode: 1, .. }])),
            "{v:?}"
        );
        assert!(!s.is_active(AlarmKind::Cover));
        // A new opening is a new episode.
        s.apply(&reading(4, 3, CoverState::Open), &kind());
        assert_eq!(s.alarms[&AlarmKind::Cover].number, 2);
    }

    #[test]
    fn an_older_or_repeated_reading_changes_nothing() {
        let mut s = SensorState::default();
        s.apply(&reading(5, 10, CoverState::Closed), &kind());
        assert_eq!(
            s.apply(&reading(5, 10, CoverState::Open), &kind()),
            Verdict::Stale
        );
        assert_eq!(
            s.apply(&reading(4, 9, CoverState::Open), &kind()),
            Verdict::Stale
        );
        assert!(!s.is_active(AlarmKind::Cover));
        // A sensor that restarted its sequence but whose clock moved on is newer.
        assert_eq!(
            raised(&s.apply(&reading(1, 11, CoverState::Open), &kind())),
            vec![AlarmKind::Cover]
        );
    }

    #[test]
    fn a_tilt_counts_from_the_type_threshold_whatever_the_state_says() {
        let mut s = SensorState::default();
        let mut r = reading(1, 0, CoverState::Tilted);
        r.tilt_deg = Some(10.0);
        assert_eq!(raised(&s.apply(&r, &kind())), vec![]);
        let mut r = reading(2, 1, CoverState::Closed);
        r.tilt_deg = Some(15.0);
        assert_eq!(raised(&s.apply(&r, &kind())), vec![AlarmKind::Cover]);
    }

    #[test]
    fn flooding_by_flag_or_level_and_battery_with_hysteresis() {
        let mut s = SensorState::default();
        let mut r = reading(1, 0, CoverState::Closed);
        r.water_level_cm = Some(45.0);
        r.battery_pct = Some(19.0);
        assert_eq!(
            raised(&s.apply(&r, &kind())),
            vec![AlarmKind::Flooding, AlarmKind::BatteryLow]
        );
        let mut r = reading(2, 1, CoverState::Closed);
        r.battery_pct = Some(25.0);
        s.apply(&r, &kind());
        assert!(
            s.is_active(AlarmKind::BatteryLow),
            "25 % is below battery_ok_pct"
        );
        assert!(!s.is_active(AlarmKind::Flooding));
        let mut r = reading(3, 2, CoverState::Closed);
        r.battery_pct = Some(100.0);
        r.flooding = Some(true);
        s.apply(&r, &kind());
        assert!(!s.is_active(AlarmKind::BatteryLow));
        assert!(s.is_active(AlarmKind::Flooding));
    }

    #[test]
    fn silence_counts_per_type_from_the_later_of_last_message_and_reconnect() {
        let mut s = SensorState::default();
        let k = kind();
        // Seen at 0, watching since 0: silent at 180 s, not before.
        assert_eq!(s.check_silence(Some(t(0)), t(0), t(179), &k), None);
        // The subscriber reconnected at 100: the clock restarts there.
        assert_eq!(s.check_silence(Some(t(0)), t(100), t(200), &k), None);
        assert!(matches!(
            s.check_silence(Some(t(0)), t(0), t(180), &k),
            Some(Change::Raised {
                kind: AlarmKind::Silent,
                ..
            })
        ));
        assert_eq!(
            s.check_silence(Some(t(0)), t(0), t(500), &k),
            None,
            "one episode"
        );
        // A slower type is not silent yet.
        let mut slow = SensorState::default();
        let slow_kind = SensorTypeSettings {
            silent_after: Duration::from_secs(3600),
            ..kind()
        };
        assert_eq!(
            slow.check_silence(Some(t(0)), t(0), t(500), &slow_kind),
            None
        );
        // A reading clears it.
        let v = s.apply(&reading(1, 600, CoverState::Closed), &k);
        assert!(
            matches!(&v, Verdict::Applied(c) if matches!(c.as_slice(), [Change::Cleared { kind: AlarmKind::Silent, .. }])),
            "{v:?}"
        );
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let mut s = SensorState::default();
        s.apply(&reading(1, 0, CoverState::Open), &kind());
        let text = serde_json::to_string(&s).expect("json");
        let back: SensorState = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, s);
        assert_eq!(
            serde_json::from_str::<SensorState>("{}").expect("empty"),
            SensorState::default()
        );
    }
}
