//! Local hours of the day (night hours, quiet hours) in a site's fixed UTC offset.

use std::time::Duration;

/// Night as local hours `[start, end)`, wrapping midnight when start > end, in the site's
/// fixed UTC offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NightHours {
    pub start_hour: u32,
    pub end_hour: u32,
    pub utc_offset_minutes: i32,
}

impl Default for NightHours {
    fn default() -> Self {
        // Astana: UTC+5, night 22:00–06:00.
        Self {
            start_hour: 22,
            end_hour: 6,
            utc_offset_minutes: 300,
        }
    }
}

impl NightHours {
    /// Whether `t` (time since the UNIX epoch) is at night, local time.
    pub fn is_night(&self, t: Duration) -> bool {
        let local = t.as_secs() as i64 + i64::from(self.utc_offset_minutes) * 60;
        let hour = (local.rem_euclid(86_400) / 3600) as u32;
        if self.start_hour <= self.end_hour {
            (self.start_hour..self.end_hour).contains(&hour)
        } else {
            hour >= self.start_hour || hour < self.end_hour
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn night_hours_wrap_midnight_in_local_time() {
        assert!(NIGHT.is_night(local(23)));
        assert!(NIGHT.is_night(local(24 + 2)));
        assert!(!NIGHT.is_night(local(12)));
        assert!(!NIGHT.is_night(local(6)));
        assert!(NIGHT.is_night(local(22)));
    }
}
