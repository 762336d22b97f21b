//! `sitcenter registry verify`: recomputes, outside the database, what its triggers maintain —
//! each appeal's hash chain (migration V4), the state projection, the gap-free numbers — and
//! reports every break. Nothing here trusts a function stored in the database: the rows are read
//! as text by PostgreSQL's own casts and hashed here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Registry, RegistryError};

/// Appeals read per round trip.
const CHUNK: i64 = 500;
/// Problems listed in a report, at most (the count goes on).
const MAX_LISTED: usize = 1000;

/// What [`Registry::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub appeals: u64,
    pub events: u64,
    /// Every break found, at most [`MAX_LISTED`] of them (see `problem_count`).
    pub problems: Vec<String>,
    pub problem_count: u64,
    /// SHA-256 over every appeal's last event hash, in appeal order: publish it (e.g. daily)
    /// to notice a history rewritten together with its hashes.
    pub head: String,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, message: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(message);
        }
    }
}

/// One field as the chain encodes it: `<octets>:<text>;`, NULL as `-;`.
fn field(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        None => out.extend_from_slice(b"-;"),
        Some(v) => {
            out.extend_from_slice(v.len().to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(v.as_bytes());
            out.push(b';');
        }
    }
}

fn micros(t: DateTime<Utc>) -> String {
    t.timestamp_micros().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The projection the log implies, replayed as the `appeal_events_apply` trigger does.
#[derive(Debug, PartialEq)]
struct Projection {
    status: Option<String>,
    last_seq: i32,
    evidence_count: i32,
    body_id: Option<String>,
    body_name: Option<String>,
    last_evidence_at: Option<DateTime<Utc>>,
}

impl Registry {
    /// Recomputes every appeal's hash chain and state projection and checks that registration
    /// numbers are gap-free per year. Reads only; bounded memory (appeals in chunks).
    pub async fn verify(&self) -> Result<VerifyReport, RegistryError> {
        let client = self.pool.get().await?;
        // The text form of floats that the chain was computed with.
        client.batch_execute("SET extra_float_digits = 1").await?;
        let mut report = VerifyReport::default();
        let mut heads = Sha256::new();
        let mut after = 0_i64;
        loop {
            let appeals = client
                .query(
                    "SELECT a.id, a.reg_number, a.category, a.source, a.lat::text, a.lon::text, \
                       a.address, a.description, a.district, a.body_id, a.body_name, a.asset_id, \
                       a.registered_at, a.registered_by, a.dedup_radius_m::text, \
                       a.dedup_window_s::text, \
                       s.status, s.last_seq, s.evidence_count, s.body_id, s.body_name, \
                       s.last_evidence_at \
                     FROM appeals a LEFT JOIN appeal_state s ON s.appeal_id = a.id \
                     WHERE a.id > $1 ORDER BY a.id LIMIT $2",
                    &[&after, &CHUNK],
                )
                .await?;
            let Some(last) = appeals.last() else { break };
            let (first_id, last_id): (i64, i64) = (appeals[0].try_get(0)?, last.try_get(0)?);
            after = last_id;
            let mut deadlines: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
            for d in client
                .query(
                    "SELECT appeal_id, stage, ordinal::text, due_at FROM appeal_deadlines \
                     WHERE appeal_id BETWEEN $1 AND $2 ORDER BY appeal_id, ordinal, stage",
                    &[&first_id, &last_id],
                )
                .await?
            {
                let out = deadlines.entry(d.try_get(0)?).or_default();
                field(out, Some(d.try_get(1)?));
                field(out, Some(d.try_get(2)?));
                field(out, Some(&micros(d.try_get(3)?)));
            }
            let events = client
                .query(
                    "SELECT e.appeal_id, e.seq, e.at, e.recorded_at, e.actor, e.kind, \
                       e.from_status, e.to_status, e.reason, e.data::text, e.prev_hash, e.hash, \
                       e.data ->> 'body_id', e.data ? 'body_id', e.data ->> 'body_name', \
                       (e.data ->> 'observed_at')::timestamptz, \
                       v.id::text, v.appeal_id::text, v.source, v.source_ref, v.actor, \
                       v.observed_at, v.recorded_at, v.lat::text, v.lon::text, \
                       v.uncertainty_m::text, v.items::text \
                     FROM appeal_events e \
                     LEFT JOIN evidence v ON e.kind = 'evidence_added' \
                       AND v.id = (e.data ->> 'evidence_id')::bigint \
                     WHERE e.appeal_id BETWEEN $1 AND $2 ORDER BY e.appeal_id, e.seq",
                    &[&first_id, &last_id],
                )
                .await?;
            let mut by_appeal: BTreeMap<i64, Vec<&tokio_postgres::Row>> = BTreeMap::new();
            for e in &events {
                by_appeal.entry(e.try_get(0)?).or_default().push(e);
            }
            for a in &appeals {
                report.appeals += 1;
                let id: i64 = a.try_get(0)?;
                let number: String = a.try_get(1)?;
                let mut genesis = b"appeal;".to_vec();
                field(&mut genesis, Some(&id.to_string()));
                for i in 1..=11 {
                    field(&mut genesis, a.try_get::<_, Option<&str>>(i)?);
                }
                field(&mut genesis, Some(&micros(a.try_get(12)?)));
                for i in 13..=15 {
                    field(&mut genesis, a.try_get::<_, Option<&str>>(i)?);
                }
                genesis.extend_from_slice(deadlines.get(&id).map_or(&[][..], Vec::as_slice));
                let mut prev = Sha256::digest(&genesis).to_vec();
                let mut replay = Projection {
                    status: None,
                    last_seq: 0,
                    evidence_count: 0,
                    body_id: a.try_get(9)?,
                    body_name: a.try_get(10)?,
                    last_evidence_at: None,
                };
                let log = by_appeal.remove(&id).unwrap_or_default();
                for e in log {
                    report.events += 1;
                    let seq: i32 = e.try_get(1)?;
                    if seq != replay.last_seq + 1 {
                        report.problem(format!(
                            "{number}: event seq {seq} follows {}",
                            replay.last_seq
                        ));
                    }
                    let stored_prev: Vec<u8> = e.try_get(10)?;
                    let stored_hash: Vec<u8> = e.try_get(11)?;
                    if stored_prev != prev {
                        report.problem(format!(
                            "{number}: event {seq} does not chain to the one before it \
                             (history before it was changed, or an event is missing)"
                        ));
                    }
                    let mut message = b"event;".to_vec();
                    field(&mut message, Some(&id.to_string()));
                    field(&mut message, Some(&seq.to_string()));
                    field(&mut message, Some(&micros(e.try_get(2)?)));
                    field(&mut message, Some(&micros(e.try_get(3)?)));
                    for i in 4..=9 {
                        field(&mut message, e.try_get::<_, Option<&str>>(i)?);
                    }
                    let kind: &str = e.try_get(5)?;
                    let evidence = if kind == "evidence_added" {
                        evidence_input(e)?
                    } else {
                        None
                    };
                    field(&mut message, evidence.as_deref());
                    let mut hasher = Sha256::new();
                    hasher.update(&stored_prev);
                    hasher.update(&message);
                    let hash = hasher.finalize().to_vec();
                    if hash != stored_hash {
                        report.problem(format!(
                            "{number}: event {seq} ({kind}) was altered after it was recorded"
                        ));
                    }
                    prev = stored_hash;
                    replay.last_seq = seq;
                    if let Some(to) = e.try_get::<_, Option<String>>(7)? {
                        replay.status = Some(to);
                    }
                    if let Some(body) = e.try_get::<_, Option<String>>(12)? {
                        replay.body_id = Some(body);
                    }
                    if e.try_get::<_, bool>(13)? {
                        replay.body_name = e.try_get(14)?;
                    }
                    if kind == "evidence_added" {
                        replay.evidence_count += 1;
                        let observed: Option<DateTime<Utc>> = e.try_get(15)?;
                        replay.last_evidence_at = replay.last_evidence_at.max(observed);
                    }
                }
                heads.update(&prev);
                let stored = Projection {
                    status: a.try_get(16)?,
                    last_seq: a.try_get::<_, Option<i32>>(17)?.unwrap_or(0),
                    evidence_count: a.try_get::<_, Option<i32>>(18)?.unwrap_or(0),
                    body_id: a.try_get(19)?,
                    body_name: a.try_get(20)?,
                    last_evidence_at: a.try_get(21)?,
                };
                if stored != replay {
                    report.problem(format!(
                        "{number}: the state {stored:?} is not what its log gives: {replay:?}"
                    ));
                }
            }
        }
        for row in client
            .query(
                "SELECT y.year, y.appeals, y.lowest, y.highest, c.last_seq FROM \
                   (SELECT reg_year AS year, count(*) AS appeals, min(reg_seq) AS lowest, \
                           max(reg_seq) AS highest FROM appeals GROUP BY reg_year) y \
                 FULL JOIN appeal_counters c ON c.year = y.year ORDER BY 1",
                &[],
            )
            .await?
        {
            let year: Option<i32> = row.try_get(0)?;
            let count: Option<i64> = row.try_get(1)?;
            let lowest: Option<i32> = row.try_get(2)?;
            let highest: Option<i32> = row.try_get(3)?;
            let counter: Option<i32> = row.try_get(4)?;
            let gap_free = count.is_some_and(|n| Some(n) == highest.map(i64::from))
                && lowest == Some(1)
                && counter == highest;
            if !gap_free {
                report.problem(format!(
                    "registration numbers of {}: {} appeals numbered {}..{} but the counter \
                     stands at {} (numbers are missing or were rewritten)",
                    year.map_or("?".to_owned(), |y| y.to_string()),
                    count.unwrap_or(0),
                    lowest.unwrap_or(0),
                    highest.unwrap_or(0),
                    counter.unwrap_or(0),
                ));
            }
        }
        report.head = hex(&heads.finalize());
        Ok(report)
    }
}

/// The evidence row of an `evidence_added` event as the chain encodes it (`None`: no row).
fn evidence_input(e: &tokio_postgres::Row) -> Result<Option<String>, RegistryError> {
    let Some(id) = e.try_get::<_, Option<&str>>(16)? else {
        return Ok(None);
    };
    let mut out = b"evidence;".to_vec();
    field(&mut out, Some(id));
    for i in 17..=20 {
        field(&mut out, e.try_get::<_, Option<&str>>(i)?);
    }
    field(&mut out, Some(&micros(e.try_get(21)?)));
    field(&mut out, Some(&micros(e.try_get(22)?)));
    for i in 23..=26 {
        field(&mut out, e.try_get::<_, Option<&str>>(i)?);
    }
    // Every field is text from the database: the bytes are UTF-8.
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}
