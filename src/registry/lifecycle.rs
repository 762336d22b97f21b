//! The appeal lifecycle: which action moves an appeal from which status to which. The database
//! enforces the same table (`allowed_transitions`); this copy gives callers a clear error first.

use serde::{Deserialize, Serialize};

use crate::domain::{RejectReason, Status};

/// Who confirmed that the problem is solved (an appeal is closed only after that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmer {
    Reporter,
    Inspector,
}

impl Confirmer {
    pub const fn as_str(self) -> &'static str {
        match self {
            Confirmer::Reporter => "reporter",
            Confirmer::Inspector => "inspector",
        }
    }
}

/// A change an inspector, dispatcher, executor or reporter asks for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// The inspector confirms a detection (or a citizen's classification).
    Confirm,
    /// The inspector rejects it (false positive, duplicate, …).
    Reject { reason: RejectReason },
    /// Route to an executor body (again, to reassign).
    Assign {
        body_id: String,
        #[serde(default)]
        body_name: Option<String>,
    },
    /// The executor started work.
    Start,
    /// An intermediate SLA stage is reached (e.g. `fenced`).
    ReachStage { stage: String },
    /// The executor reports the problem solved.
    Resolve,
    /// Closed after confirmation by the reporter or the inspector.
    Close { confirmed_by: Confirmer },
    /// Not solved after all.
    Reopen,
    /// A note in the timeline; no status change.
    Comment,
}

impl Action {
    /// (event kind, statuses it may start from (empty = any open or closed), target status).
    pub(crate) fn rule(&self) -> (&'static str, &'static [Status], Option<Status>) {
        use Status::*;
        match self {
            Action::Confirm => (
                "confirmed",
                &[Detected, AwaitingConfirmation],
                Some(Confirmed),
            ),
            Action::Reject { .. } => (
                "rejected",
                &[Detected, AwaitingConfirmation],
                Some(Rejected),
            ),
            Action::Assign { .. } => (
                "assigned",
                &[Confirmed, Assigned, InProgress],
                Some(Assigned),
            ),
            Action::Start => ("started", &[Assigned], Some(InProgress)),
            Action::ReachStage { .. } => ("stage_reached", &[Assigned, InProgress], None),
            Action::Resolve => ("resolved", &[Assigned, InProgress], Some(Resolved)),
            Action::Close { .. } => ("closed", &[Resolved], Some(Closed)),
            Action::Reopen => ("reopened", &[Resolved, Closed], Some(Assigned)),
            Action::Comment => ("comment", &[], None),
        }
    }

    pub fn name(&self) -> &'static str {
        self.rule().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appeal_cannot_be_closed_before_it_is_resolved() {
        let (_, from, to) = Action::Close {
            confirmed_by: Confirmer::Reporter,
        }
        .rule();
        assert_eq!(from, &[Status::Resolved]);
        assert_eq!(to, Some(Status::Closed));
    }

    #[test]
    fn actions_parse_from_tagged_json() {
        let a: Action = serde_json::from_str(r#"{"action":"reject","reason":"false_positive"}"#)
            .expect("valid");
        assert_eq!(
            a,
            Action::Reject {
                reason: RejectReason::FalsePositive
            }
        );
        assert!(serde_json::from_str::<Action>(r#"{"action":"reject","reason":"meh"}"#).is_err());
    }
}
