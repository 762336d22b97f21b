//! Who may do what: people's roles and machine clients' key scopes.

use std::fmt;

macro_rules! named {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|r| r.as_str() == text).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|r| r.as_str()).collect();
                    format!(concat!("unknown ", $what, " `{}` (known: {})"), text, known.join(", "))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named! {
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

named! {
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
