//! Pass/fail of a replay: minimum precision/recall per class (given on the command line)
//! and whether a candidate model regresses against a baseline.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;

use super::score::Summary;

/// `--min-recall 0.8` (every class) or `--min-recall manhole_open=0.9` (one class);
/// repeatable, a class entry overrides the general one.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    pub class: Option<String>,
    pub value: f64,
}

impl FromStr for Minimum {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (class, value) = match s.split_once('=') {
            Some((class, value)) if !class.trim().is_empty() => {
                (Some(class.trim().to_owned()), value)
            }
            Some(_) => return Err(format!("`{s}`: the class before `=` is empty")),
            None => (None, s),
        };
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("`{s}`: expected a number in 0..=1 or CLASS=NUMBER"))?;
        if !(0.0..=1.0).contains(&value) {
            return Err(format!("`{s}`: {value} is outside 0..=1"));
        }
        Ok(Self { class, value })
    }
}

/// The minimum that applies to `class`, if any.
pub fn minimum_for(minimums: &[Minimum], class: &str) -> Option<f64> {
    minimums
        .iter()
        .find(|m| m.class.as_deref() == Some(class))
        .or_else(|| minimums.iter().find(|m| m.class.is_none()))
        .map(|m| m.value)
}

/// One figure below its minimum, or worse than the baseline's.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Shortfall {
    pub class: String,
    pub metric: &'static str,
    pub value: Option<f64>,
    /// The minimum, or the baseline's figure minus the tolerance.
    pub required: f64,
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.value.map_or("—".to_owned(), |v| format!("{v:.3}"));
        write!(
            f,
            "{} {} {value} < {:.3}",
            self.class, self.metric, self.required
        )
    }
}

/// Classes whose precision or recall is under the minimums. A class with truth but no
/// detections has precision 0 for this purpose; a class without truth has no recall check.
pub fn below_minimums(
    summary: &Summary,
    min_precision: &[Minimum],
    min_recall: &[Minimum],
) -> Vec<Shortfall> {
    let mut out = Vec::new();
    for (class, score) in &summary.classes {
        if let Some(required) = minimum_for(min_recall, class)
            && let Some(recall) = score.recall
            && recall < required
        {
            out.push(Shortfall {
                class: class.clone(),
                metric: "recall",
                value: Some(recall),
                required,
            });
        }
        if let Some(required) = minimum_for(min_precision, class) {
            let precision = score.precision.or((score.truths > 0).then_some(0.0));
            if let Some(precision) = precision
                && precision < required
            {
                out.push(Shortfall {
                    class: class.clone(),
                    metric: "precision",
                    value: Some(precision),
                    required,
                });
            }
        }
    }
    out
}

/// Where `candidate` is worse than `baseline` by more than `tolerance`: per class
/// precision, recall and AP@0.5, and mAP@0.5 overall (classes both models score).
pub fn regressions(candidate: &Summary, baseline: &Summary, tolerance: f64) -> Vec<Shortfall> {
    let mut out = Vec::new();
    let mut check = |class: &str, metric: &'static str, new: Option<f64>, old: Option<f64>| {
        if let Some(old) = old {
            let new_or_zero = new.unwrap_or(0.0);
            if new_or_zero < old - tolerance {
                out.push(Shortfall {
                    class: class.to_owned(),
                    metric,
                    value: new,
                    required: old - tolerance,
                });
            }
        }
    };
    let shared: BTreeMap<_, _> = candidate
        .classes
        .iter()
        .filter_map(|(c, s)| baseline.classes.get(c).map(|b| (c, (s, b))))
        .collect();
    for (class, (new, old)) in shared {
        check(class, "precision", new.precision, old.precision);
        check(class, "recall", new.recall, old.recall);
        check(class, "ap50", new.ap50, old.ap50);
    }
    check("all", "map50", candidate.map50, baseline.map50);
    out
}

#[cfg(test)]
mod tests {
    use super::super::score::ClassScore;
    use super::*;

    /// `(class, precision, recall, ap50)`.
    type Row<'a> = (&'a str, Option<f64>, Option<f64>, Option<f64>);

    fn summary(classes: &[Row<'_>]) -> Summary {
        Summary {
            frames: 10,
            map50: None,
            classes: classes
                .iter()
                .map(|(name, p, r, ap)| {
                    (
                        (*name).to_owned(),
                        ClassScore {
                            threshold: 0.5,
                            truths: u64::from(r.is_some()) * 10,
                            true_positives: 0,
                            false_positives: 0,
                            false_negatives: 0,
                            precision: *p,
                            recall: *r,
                            f1: None,
                            ap50: *ap,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn minimums_parse_globally_and_per_class() {
        assert_eq!(
            "0.8".parse::<Minimum>(),
            Ok(Minimum {
                class: None,
                value: 0.8
            })
        );
        let per_class: Minimum = "dump=0.5".parse().expect("valid");
        assert_eq!(per_class.class.as_deref(), Some("dump"));
        assert!("1.5".parse::<Minimum>().is_err());
        assert!("=0.5".parse::<Minimum>().is_err());
        assert!("car=x".parse::<Minimum>().is_err());
        let all = [per_class, "0.9".parse().expect("valid")];
        assert_eq!(minimum_for(&all, "dump"), Some(0.5));
        assert_eq!(minimum_for(&all, "car"), Some(0.9));
    }

    #[test]
    fn classes_under_their_minimums_are_named() {
        let s = summary(&[
            ("car", Some(0.95), Some(0.7), None),
            ("bin", None, Some(0.0), None),
            ("person", Some(0.2), None, None),
        ]);
        let short = below_minimums(
            &s,
            &["0.5".parse().expect("valid")],
            &["0.8".parse().expect("valid")],
        );
        let names: Vec<String> = short.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "bin recall 0.000 < 0.800",
                "bin precision 0.000 < 0.500",
                "car recall 0.700 < 0.800",
                "person precision 0.200 < 0.500",
            ]
        );
    }

    #[test]
    fn a_drop_beyond_the_tolerance_is_a_regression_and_within_it_is_not() {
        let old = summary(&[("car", Some(0.9), Some(0.9), Some(0.85))]);
        let slightly = summary(&[("car", Some(0.89), Some(0.9), Some(0.85))]);
        assert!(regressions(&slightly, &old, 0.02).is_empty());
        let worse = summary(&[("car", Some(0.9), Some(0.6), Some(0.85))]);
        let r = regressions(&worse, &old, 0.02);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].metric, "recall");
        assert!(
            regressions(&old, &worse, 0.02).is_empty(),
            "better is not a regression"
        );
    }
}
