//! Names a site's files choose from, parsed once at load into enums: a misspelt kind is a
//! config error at its line, never a silent fallback downstream.

/// A closed set of names written in files and APIs: the enum (serialised as its names), `ALL`,
/// `as_str`, `parse` with an error naming the known names, and `Display`. Used for config
/// kinds here and for roles and scopes in `auth`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident ($what:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses `text`, or says what is known.
            pub fn parse(text: &str) -> Result<Self, String> {
                Self::ALL.iter().copied().find(|k| k.as_str() == text).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
                    format!(concat!("unknown ", $what, " `{}` (known: {})"), text, known.join(", "))
                })
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

named_enum! {
    /// A detector a camera may list (`detectors = [...]`); each is routed to model classes
    /// in `[detect.detectors.<name>]`.
    DetectorKind ("detector") {
        /// Open manholes (hazard, confirmed over time).
        Manholes = "manholes",
        /// Illegal dumps (hazard, confirmed over time).
        Dumps = "dumps",
        /// Vehicles and people checked against the camera's zones.
        Offences = "offences",
    }
}

named_enum! {
    /// The rule a camera zone enforces (`[[camera.zone]] kind`).
    ZoneKind ("zone kind") {
        /// A vehicle may not stay longer than `max_dwell_s`.
        NoParking = "no_parking",
        /// No person inside (at night, or always).
        Restricted = "restricted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_a_misspelling_names_the_known_ones() {
        for k in DetectorKind::ALL {
            assert_eq!(DetectorKind::parse(k.as_str()), Ok(*k));
        }
        for k in ZoneKind::ALL {
            assert_eq!(ZoneKind::parse(k.as_str()), Ok(*k));
        }
        assert_eq!(
            ZoneKind::parse("no-parking"),
            Err("unknown zone kind `no-parking` (known: no_parking, restricted)".to_owned())
        );
        assert_eq!(
            DetectorKind::parse("manhole"),
            Err("unknown detector `manhole` (known: manholes, dumps, offences)".to_owned())
        );
    }
}
