//! The track store: fixes into the day-partitioned `vehicle_fix` table (migration
//! V6__telemetry_tracks.sql), a batch per INSERT (`unnest` of column arrays), duplicates
//! ignored by the primary key (vehicle, time); a vehicle's day read back in time order.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::error::TelemetryError;
use super::fix::{Fix, Protocol};
use crate::domain::Position;

/// A fix on its way to PostgreSQL.
#[derive(Clone, Debug)]
pub struct Row {
    pub vehicle: String,
    pub fix: Fix,
    pub late: bool,
    pub protocol: Protocol,
    pub received_at: DateTime<Utc>,
}

/// One point of a stored track.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrackPoint {
    pub at: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f32>,
    pub course_deg: Option<f32>,
    pub ignition: Option<bool>,
    pub late: bool,
}

impl TrackPoint {
    pub fn position(&self) -> Position {
        Position::new(self.lat, self.lon)
    }
}

#[derive(Debug)]
pub struct TrackStore {
    pool: Pool,
    days: parking_lot::Mutex<HashSet<NaiveDate>>,
}

impl TrackStore {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            days: parking_lot::Mutex::new(HashSet::new()),
        }
    }

    /// Writes a batch; returns how many rows were new (duplicates are ignored).
    pub async fn insert(&self, rows: &[Row]) -> Result<u64, TelemetryError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let client = self.pool.get().await?;
        let needed: Vec<NaiveDate> = {
            let known = self.days.lock();
            let mut days: Vec<NaiveDate> = rows
                .iter()
                .map(|r| r.fix.at.date_naive())
                .filter(|d| !known.contains(d))
                .collect();
            days.sort_unstable();
            days.dedup();
            days
        };
        for day in needed {
            client
                .execute("SELECT telemetry_ensure_day($1)", &[&day])
                .await?;
            self.days.lock().insert(day);
        }
        let n = rows.len();
        let mut vehicle = Vec::with_capacity(n);
        let mut at = Vec::with_capacity(n);
        let mut lat = Vec::with_capacity(n);
        let mut lon = Vec::with_capacity(n);
        let mut speed = Vec::with_capacity(n);
        let mut course = Vec::with_capacity(n);
        let mut alt = Vec::with_capacity(n);
        let mut sats = Vec::with_capacity(n);
        let mut hdop = Vec::with_capacity(n);
        let mut acc = Vec::with_capacity(n);
        let mut ign = Vec::with_capacity(n);
        let mut late = Vec::with_capacity(n);
        let mut proto = Vec::with_capacity(n);
        let mut recv = Vec::with_capacity(n);
        for r in rows {
            vehicle.push(r.vehicle.as_str());
            at.push(r.fix.at);
            lat.push(r.fix.position.lat);
            lon.push(r.fix.position.lon);
            speed.push(r.fix.speed_kmh.map(|v| v as f32));
            course.push(r.fix.course_deg.map(|v| v as f32));
            alt.push(r.fix.altitude_m.map(|v| v as f32));
            sats.push(r.fix.satellites.map(i16::from));
            hdop.push(r.fix.hdop.map(|v| v as f32));
            acc.push(r.fix.accuracy_m.map(|v| v as f32));
            ign.push(r.fix.ignition);
            late.push(r.late);
            proto.push(r.protocol.as_str());
            recv.push(r.received_at);
        }
        let inserted = client
            .execute(
                "INSERT INTO vehicle_fix (vehicle_id, at, lat, lon, speed_kmh, course_deg, \
                 altitude_m, satellites, hdop, accuracy_m, ignition, late, protocol, received_at) \
                 SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], \
                 $5::real[], $6::real[], $7::real[], $8::int2[], $9::real[], $10::real[], \
                 $11::bool[], $12::bool[], $13::text[], $14::timestamptz[]) \
                 ON CONFLICT (vehicle_id, at) DO NOTHING",
                &[
                    &vehicle, &at, &lat, &lon, &speed, &course, &alt, &sats, &hdop, &acc, &ign,
                    &late, &proto, &recv,
                ],
            )
            .await?;
        Ok(inserted)
    }

    /// A vehicle's fixes in `[from, to)`, in time order (at most `limit`).
    pub async fn track(
        &self,
        vehicle: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<TrackPoint>, TelemetryError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT at, lat, lon, speed_kmh, course_deg, ignition, late FROM vehicle_fix \
                 WHERE vehicle_id = $1 AND at >= $2 AND at < $3 ORDER BY at LIMIT $4",
                &[&vehicle, &from, &to, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| TrackPoint {
                at: r.get(0),
                lat: r.get(1),
                lon: r.get(2),
                speed_kmh: r.get(3),
                course_deg: r.get(4),
                ignition: r.get(5),
                late: r.get(6),
            })
            .collect())
    }
}
