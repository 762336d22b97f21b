//! Who may do what: people's roles and machine clients' key scopes.

use crate::config::named_enum;

named_enum! {
    /// A person's role (a user may have several).
    Role ("role") {
        /// Reviews detections: confirm, reject, reclassify; marks fenced/resolved on inspection.
        Inspector = "inspector",
        /// Vehicles and routes; assigns executors.
        Dispatcher = "dispatcher",
        /// Everything operators do, escalations, reopening, closing.
        Supervisor = "supervisor",
        /// Replay reports, model metrics; reads the registry.
        Qa = "qa",
        /// Users, cameras, reload, restart.
        Admin = "admin",
    }
}

named_enum! {
    /// What an API key (a machine client, never a person) may do.
    Scope ("scope") {
        /// File Open311 requests (citizen apps, the mayor's site).
        Open311Write = "open311:write",
        /// Publish sensor readings over HTTP.
        SensorsWrite = "sensors:write",
        /// Send vehicle telemetry over HTTP.
        TelemetryWrite = "telemetry:write",
        /// Read detection events and their evidence (city systems).
        EventsRead = "events:read",
        /// Scrape `/metrics` (Prometheus).
        MetricsRead = "metrics:read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_parse_their_own_names_only() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(*r));
        }
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Ok(*s));
        }
        assert!(Role::parse("root").is_err());
        assert!(Scope::parse("open311").is_err());
    }
}
