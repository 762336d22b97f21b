//! What the registry returns: appeals with their SLA clocks, timeline events, evidence.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;

use super::RegistryError;
use crate::domain::{Position, Source, Status};

/// One SLA stage of one appeal, with its clock as of the registry clock's "now".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeadlineView {
    pub stage: String,
    pub due_at: DateTime<Utc>,
    pub reached_at: Option<DateTime<Utc>>,
    /// Reached, or the appeal is resolved/closed/rejected.
    pub met: bool,
    pub escalated: bool,
    pub overdue: bool,
    /// Minutes left until `due_at` (negative when past due).
    pub remaining_minutes: i64,
}

/// The current state of an appeal (derived from its event log).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppealView {
    pub number: String,
    #[serde(skip)]
    pub id: i64,
    pub category: String,
    pub source: Source,
    pub status: Status,
    pub position: Position,
    pub address: Option<String>,
    pub description: Option<String>,
    pub district: Option<String>,
    pub body_id: Option<String>,
    pub body_name: Option<String>,
    pub asset_id: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub registered_by: String,
    pub updated_at: DateTime<Utc>,
    pub evidence_count: i32,
    pub last_evidence_at: Option<DateTime<Utc>>,
    pub deadlines: Vec<DeadlineView>,
}

pub(super) const APPEAL_COLUMNS: &str = "a.id, a.reg_number, a.category, a.source, a.lat, a.lon, \
    a.address, a.description, a.district, s.body_id, s.body_name, a.asset_id, a.registered_at, \
    a.registered_by, s.status, s.updated_at, s.evidence_count, s.last_evidence_at";

fn bad(column: &str, value: &str) -> RegistryError {
    RegistryError::Invalid {
        number: String::new(),
        message: format!("stored {column} `{value}` is not recognised"),
    }
}

impl AppealView {
    pub(super) fn from_row(row: &Row) -> Result<Self, RegistryError> {
        let source: String = row.try_get(3)?;
        let status: String = row.try_get(14)?;
        Ok(Self {
            id: row.try_get(0)?,
            number: row.try_get(1)?,
            category: row.try_get(2)?,
            source: source.parse().map_err(|_| bad("source", &source))?,
            position: Position::new(row.try_get(4)?, row.try_get(5)?),
            address: row.try_get(6)?,
            description: row.try_get(7)?,
            district: row.try_get(8)?,
            body_id: row.try_get(9)?,
            body_name: row.try_get(10)?,
            asset_id: row.try_get(11)?,
            registered_at: row.try_get(12)?,
            registered_by: row.try_get(13)?,
            status: status.parse().map_err(|_| bad("status", &status))?,
            updated_at: row.try_get(15)?,
            evidence_count: row.try_get(16)?,
            last_evidence_at: row.try_get(17)?,
            deadlines: Vec::new(),
        })
    }

    /// The resolution deadline (the last SLA stage).
    pub fn final_deadline(&self) -> Option<&DeadlineView> {
        self.deadlines.last()
    }
}

/// One entry of an appeal's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    pub seq: i32,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub reason: Option<String>,
    pub data: serde_json::Value,
}

/// One piece of evidence, stored by reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceView {
    pub id: i64,
    pub source: String,
    pub source_ref: String,
    pub actor: String,
    pub observed_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub position: Position,
    pub uncertainty_m: Option<f64>,
    pub items: serde_json::Value,
}

/// What happened to a submitted observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmitOutcome {
    /// A new appeal was registered.
    Created,
    /// It joined an open appeal as more evidence.
    Joined,
    /// This `source_ref` was recorded before; nothing changed.
    Repeated,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Submission {
    pub outcome: SubmitOutcome,
    pub number: String,
    #[serde(skip)]
    pub appeal_id: i64,
}

/// An SLA stage that became overdue and was escalated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Escalation {
    pub number: String,
    pub category: String,
    pub stage: String,
    pub due_at: DateTime<Utc>,
    pub escalated_at: DateTime<Utc>,
}

/// Search filter for appeals; every field optional.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppealFilter {
    pub status: Option<Status>,
    pub category: Option<String>,
    /// Any of these categories (Open311's comma-separated `service_code`); empty = any.
    #[serde(skip)]
    pub categories: Vec<String>,
    pub source: Option<Source>,
    pub body_id: Option<String>,
    pub district: Option<String>,
    pub registered_from: Option<DateTime<Utc>>,
    pub registered_to: Option<DateTime<Utc>>,
    /// Only appeals that are not closed or rejected.
    #[serde(default)]
    pub open_only: bool,
    /// Only closed or rejected appeals.
    #[serde(default)]
    pub closed_only: bool,
    /// Only appeals with an overdue, unreached stage.
    #[serde(default)]
    pub overdue_only: bool,
    /// Free-text search in the address and description.
    pub text: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}
