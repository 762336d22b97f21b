//! Raw TOML → validated [`IncidentsConfig`], every problem reported at once.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::BodyKind;
use crate::domain::Category;

/// Built-in categories and deadlines (`src/config/incidents.toml`).
pub const DEFAULT_INCIDENTS_TOML: &str = include_str!("incidents.toml");

const DEFAULT_ASSET_RADIUS_M: f64 = 30.0;
const MAX_RADIUS_M: f64 = 5_000.0;

#[derive(Debug, thiserror::Error)]
#[error("incidents config `{source_name}` is not valid:\n  - {}", problems.join("\n  - "))]
pub struct IncidentsConfigError {
    pub source_name: String,
    pub problems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dedup: RawDedup,
    #[serde(default)]
    category: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDedup {
    radius_m: f64,
    window: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    code: String,
    name: String,
    #[serde(default)]
    group: Option<String>,
    body_kind: BodyKind,
    #[serde(default)]
    asset: Option<AssetKind>,
    #[serde(default)]
    asset_radius_m: Option<f64>,
    stages: Vec<RawStage>,
    #[serde(default)]
    dedup_radius_m: Option<f64>,
    #[serde(default)]
    dedup_window: Option<String>,
    #[serde(default = "public_default")]
    public: bool,
}

const fn public_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    within: String,
}

/// Which point layer decides the responsible body for a category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    Manhole,
    CollectionPoint,
}

/// Observations of one category within `radius_m` and `window` of an open appeal join it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DedupRule {
    pub radius_m: f64,
    pub window: Duration,
}

/// One SLA stage: `name` must be reached within `within` of registration.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SlaStage {
    pub name: String,
    #[serde(serialize_with = "ser_minutes", rename = "within_minutes")]
    pub within: Duration,
}

fn ser_minutes<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs() / 60)
}

#[derive(Clone, Debug, PartialEq)]
pub struct CategoryConfig {
    pub code: Category,
    pub name: String,
    pub group: Option<String>,
    pub body_kind: BodyKind,
    pub asset: Option<AssetKind>,
    pub asset_radius_m: f64,
    pub stages: Vec<SlaStage>,
    pub dedup: DedupRule,
    /// Offered to citizens (Open311 services and requests); `false` for internal tickets such
    /// as sensor maintenance, which still appear in the appeals API for inspectors.
    pub public: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IncidentsConfig {
    pub dedup: DedupRule,
    pub categories: Vec<CategoryConfig>,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        match Self::from_toml_str("built-in default", DEFAULT_INCIDENTS_TOML) {
            Ok(cfg) => cfg,
            // The default file is covered by a test; this is unreachable in a tested build.
            Err(e) => panic!("{e}"),
        }
    }
}

/// Parse `"90s"`, `"20m"`, `"3h"`, `"7d"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like \"20m\", \"3h\" or \"7d\""))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` has an unknown unit; use s, m, h or d")),
    };
    if secs == 0 {
        return Err(format!("`{text}` must be longer than zero"));
    }
    Ok(Duration::from_secs(secs))
}

fn check_radius(what: &str, r: f64, problems: &mut Vec<String>) {
    if !(r.is_finite() && r > 0.0 && r <= MAX_RADIUS_M) {
        problems.push(format!(
            "{what} = {r} must be between 0 and {MAX_RADIUS_M} metres"
        ));
    }
}

impl IncidentsConfig {
    pub fn from_toml_str(source_name: &str, text: &str) -> Result<Self, IncidentsConfigError> {
        let fail = |problems| IncidentsConfigError {
            source_name: source_name.to_owned(),
            problems,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| fail(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        check_radius("dedup.radius_m", raw.dedup.radius_m, &mut problems);
        let window = parse_duration(&raw.dedup.window)
            .map_err(|e| problems.push(format!("dedup.window: {e}")))
            .unwrap_or(Duration::from_secs(3600));
        let dedup = DedupRule {
            radius_m: raw.dedup.radius_m,
            window,
        };
        let mut seen = HashSet::new();
        let mut categories = Vec::new();
        for (i, c) in raw.category.into_iter().enumerate() {
            let at = format!("category #{} (`{}`)", i + 1, c.code);
            let code = match Category::new(&c.code) {
                Ok(code) => code,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            if !seen.insert(c.code.clone()) {
                problems.push(format!("{at}: code appears more than once"));
            }
            if c.stages.is_empty() {
                problems.push(format!("{at}: needs at least one SLA stage"));
            }
            let mut stages = Vec::new();
            for s in c.stages {
                match parse_duration(&s.within) {
                    Ok(within) => stages.push(SlaStage {
                        name: s.name,
                        within,
                    }),
                    Err(e) => problems.push(format!("{at}: stage `{}`: {e}", s.name)),
                }
            }
            if stages.windows(2).any(|w| w[1].within <= w[0].within) {
                problems.push(format!("{at}: stage deadlines must increase"));
            }
            let mut names = HashSet::new();
            if stages.iter().any(|s| !names.insert(s.name.clone())) {
                problems.push(format!("{at}: stage names must be unique"));
            }
            let asset_radius_m = c.asset_radius_m.unwrap_or(DEFAULT_ASSET_RADIUS_M);
            check_radius(
                &format!("{at}: asset_radius_m"),
                asset_radius_m,
                &mut problems,
            );
            if let Some(r) = c.dedup_radius_m {
                check_radius(&format!("{at}: dedup_radius_m"), r, &mut problems);
            }
            let radius_m = c.dedup_radius_m.unwrap_or(dedup.radius_m);
            let window = match c.dedup_window.as_deref().map(parse_duration) {
                None => dedup.window,
                Some(Ok(w)) => w,
                Some(Err(e)) => {
                    problems.push(format!("{at}: dedup_window: {e}"));
                    dedup.window
                }
            };
            categories.push(CategoryConfig {
                code,
                name: c.name,
                group: c.group,
                body_kind: c.body_kind,
                asset: c.asset,
                asset_radius_m,
                stages,
                dedup: DedupRule { radius_m, window },
                public: c.public,
            });
        }
        if categories.is_empty() && problems.is_empty() {
            problems.push("no [[category]] defined".into());
        }
        if problems.is_empty() {
            Ok(Self { dedup, categories })
        } else {
            Err(fail(problems))
        }
    }

    pub fn load(path: &std::path::Path) -> Result<Self, IncidentsConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| IncidentsConfigError {
            source_name: name.clone(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        Self::from_toml_str(&name, &text)
    }

    pub fn category(&self, code: &str) -> Option<&CategoryConfig> {
        self.categories.iter().find(|c| c.code.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_default_has_the_regulated_deadlines() {
        let cfg = IncidentsConfig::from_toml_str("default", DEFAULT_INCIDENTS_TOML)
            .expect("valid default");
        let manhole = cfg.category("open_manhole").expect("open_manhole");
        let stages: Vec<(&str, u64)> = manhole
            .stages
            .iter()
            .map(|s| (s.name.as_str(), s.within.as_secs() / 60))
            .collect();
        assert_eq!(stages, vec![("fenced", 180), ("closed", 24 * 60)]);
        let lift = cfg.category("elevator_stuck").expect("elevator_stuck");
        assert_eq!(lift.stages[0].within, Duration::from_secs(20 * 60));
        assert_eq!(manhole.asset, Some(AssetKind::Manhole));
        assert_eq!(manhole.dedup.radius_m, 30.0);
        assert_eq!(lift.dedup.radius_m, cfg.dedup.radius_m);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            [dedup]
            radius_m = -3
            window = "5 weeks"
            [[category]]
            code = "Bad Code"
            name = "x"
            body_kind = "utility_service"
            stages = [{ name = "a", within = "1h" }]
            [[category]]
            code = "late"
            name = "y"
            body_kind = "utility_service"
            stages = [{ name = "a", within = "3h" }, { name = "b", within = "2h" }, { name = "c", within = "0m" }]
        "#;
        let err = IncidentsConfig::from_toml_str("test.toml", text).expect_err("invalid");
        let msg = err.to_string();
        assert_eq!(err.problems.len(), 5, "{msg}");
        for part in [
            "dedup.radius_m",
            "dedup.window",
            "Bad Code",
            "must increase",
            "longer than zero",
        ] {
            assert!(msg.contains(part), "`{part}` missing from: {msg}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_their_location() {
        let text = "[dedup]\nradius_m = 10.0\nwindow = \"1h\"\nradius = 3\n";
        let err = IncidentsConfig::from_toml_str("t.toml", text).expect_err("unknown key");
        assert!(err.to_string().contains("radius"), "{err}");
        assert!(err.to_string().contains("line 4"), "{err}");
    }

    #[test]
    fn durations_parse_in_seconds_minutes_hours_and_days() {
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(10_800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("3 hours").is_err());
        assert!(parse_duration("h").is_err());
    }
}
