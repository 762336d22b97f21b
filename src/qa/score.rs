//! Scoring detections against ground truth: per-class precision, recall and F1 at the
//! model's own score thresholds, and average precision at IoU 0.5 (PASCAL VOC 2010+
//! all-point interpolation), from which mAP@0.5 is the mean over classes with truth.
//!
//! Matching is greedy per frame and class, highest score first: a detection is a true
//! positive when its best still-unmatched truth box overlaps it by IoU ≥ 0.5. Because
//! the order is by score, the matches of the detections above a threshold are the same
//! whatever lies below it, so one matching pass serves every threshold.

use std::collections::BTreeMap;

use serde::Serialize;

use super::labels::Truth;
use crate::domain::BBox;

/// The overlap that makes a detection a match.
pub const IOU_MATCH: f32 = 0.5;

/// A detection as the scorer sees it.
#[derive(Clone, Debug)]
pub struct Scored {
    pub class: String,
    pub score: f32,
    pub bbox: BBox,
}

#[derive(Debug, Default, Clone)]
struct ClassTally {
    truths: u64,
    /// `(score, true positive)` of every detection, at any score.
    detections: Vec<(f32, bool)>,
}

/// Accumulates frames of one model on one or more clips.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    classes: BTreeMap<String, ClassTally>,
    pub frames: u64,
}

impl Tally {
    /// Counts only these classes (the ones both the model and the labels know).
    pub fn new(classes: impl IntoIterator<Item = String>) -> Self {
        Self {
            classes: classes
                .into_iter()
                .map(|c| (c, ClassTally::default()))
                .collect(),
            frames: 0,
        }
    }

    /// Adds one labelled frame.
    pub fn add_frame(&mut self, truths: &[Truth], detections: &[Scored]) {
        self.frames += 1;
        for (class, tally) in &mut self.classes {
            let gt: Vec<&BBox> = truths
                .iter()
                .filter(|t| &t.class == class)
                .map(|t| &t.bbox)
                .collect();
            tally.truths += gt.len() as u64;
            let mut dets: Vec<&Scored> = detections.iter().filter(|d| &d.class == class).collect();
            dets.sort_by(|a, b| b.score.total_cmp(&a.score));
            let mut taken = vec![false; gt.len()];
            for d in dets {
                let best = gt
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !taken[*i])
                    .map(|(i, g)| (i, d.bbox.iou(g)))
                    .filter(|(_, iou)| *iou >= IOU_MATCH)
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                if let Some((i, _)) = best {
                    taken[i] = true;
                }
                tally.detections.push((d.score, best.is_some()));
            }
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.frames += other.frames;
        for (class, theirs) in &other.classes {
            let ours = self.classes.entry(class.clone()).or_default();
            ours.truths += theirs.truths;
            ours.detections.extend_from_slice(&theirs.detections);
        }
    }

    /// The figures, with each class counted at `threshold(class)`.
    pub fn summary(&self, threshold: impl Fn(&str) -> f32) -> Summary {
        let classes: BTreeMap<String, ClassScore> = self
            .classes
            .iter()
            .map(|(name, t)| (name.clone(), ClassScore::of(t, threshold(name))))
            .collect();
        let aps: Vec<f64> = classes.values().filter_map(|c| c.ap50).collect();
        Summary {
            frames: self.frames,
            map50: (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64),
            classes,
        }
    }
}

/// One class's figures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ClassScore {
    pub threshold: f32,
    pub truths: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    /// `None` when nothing was detected (no denominator).
    pub precision: Option<f64>,
    /// `None` when the class never appears in the truth.
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Average precision at IoU 0.5 over all scores; `None` without truth.
    pub ap50: Option<f64>,
}

impl ClassScore {
    fn of(t: &ClassTally, threshold: f32) -> Self {
        let kept = t.detections.iter().filter(|(s, _)| *s >= threshold);
        let (tp, fp) = kept.fold(
            (0u64, 0u64),
            |(tp, fp), (_, hit)| {
                if *hit { (tp + 1, fp) } else { (tp, fp + 1) }
            },
        );
        let precision = (tp + fp > 0).then(|| tp as f64 / (tp + fp) as f64);
        let recall = (t.truths > 0).then(|| tp as f64 / t.truths as f64);
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        Self {
            threshold,
            truths: t.truths,
            true_positives: tp,
            false_positives: fp,
            false_negatives: t.truths.saturating_sub(tp),
            precision,
            recall,
            f1,
            ap50: (t.truths > 0).then(|| average_precision(&t.detections, t.truths)),
        }
    }
}

/// A model's figures over a set of frames.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub frames: u64,
    /// Mean of the classes' AP@0.5 (classes with truth only).
    pub map50: Option<f64>,
    pub classes: BTreeMap<String, ClassScore>,
}

/// All-point interpolated area under the precision/recall curve.
pub fn average_precision(detections: &[(f32, bool)], truths: u64) -> f64 {
    if truths == 0 {
        return 0.0;
    }
    let mut sorted = detections.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut points = Vec::with_capacity(sorted.len());
    let (mut tp, mut fp) = (0u64, 0u64);
    for (_, hit) in sorted {
        if hit {
            tp += 1;
        } else {
            fp += 1;
        }
        points.push((tp as f64 / truths as f64, tp as f64 / (tp + fp) as f64));
    }
    // Precision envelope: the best precision at any recall at or beyond this one.
    for i in (0..points.len().saturating_sub(1)).rev() {
        points[i].1 = points[i].1.max(points[i + 1].1);
    }
    let mut ap = 0.0;
    let mut previous_recall = 0.0;
    for (recall, precision) in points {
        ap += (recall - previous_recall) * precision;
        previous_recall = recall;
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32) -> BBox {
        BBox { x1, y1, x2, y2 }
    }

    fn truth(class: &str, bbox: BBox) -> Truth {
        Truth {
            class: class.into(),
            bbox,
        }
    }

    fn det(class: &str, score: f32, bbox: BBox) -> Scored {
        Scored {
            class: class.into(),
            score,
            bbox,
        }
    }

    #[test]
    fn a_perfect_detector_scores_one_everywhere() {
        let mut t = Tally::new(["car".to_owned()]);
        for i in 0..5 {
            let x = i as f32 * 10.0;
            t.add_frame(
                &[truth("car", b(x, 0.0, x + 20.0, 20.0))],
                &[det("car", 0.9, b(x + 1.0, 0.0, x + 21.0, 20.0))],
            );
        }
        let s = t.summary(|_| 0.5);
        let car = &s.classes["car"];
        assert_eq!(
            (car.true_positives, car.false_positives, car.false_negatives),
            (5, 0, 0)
        );
        assert_eq!(
            (car.precision, car.recall, car.f1),
            (Some(1.0), Some(1.0), Some(1.0))
        );
        assert_eq!(s.map50, Some(1.0));
    }

    #[test]
    fn a_duplicate_is_a_false_positive_and_a_poor_overlap_does_not_match() {
        let mut t = Tally::new(["dump".to_owned()]);
        t.add_frame(
            &[truth("dump", b(0.0, 0.0, 10.0, 10.0))],
            &[
                det("dump", 0.9, b(0.0, 0.0, 10.0, 10.0)),
                det("dump", 0.8, b(0.0, 0.0, 10.0, 9.0)),
                det("dump", 0.7, b(50.0, 50.0, 60.0, 60.0)),
            ],
        );
        t.add_frame(
            &[truth("dump", b(0.0, 0.0, 10.0, 10.0))],
            // IoU 1/3: not a match.
            &[det("dump", 0.9, b(5.0, 0.0, 15.0, 10.0))],
        );
        let d = &t.summary(|_| 0.5).classes["dump"];
        assert_eq!(
            (d.true_positives, d.false_positives, d.false_negatives),
            (1, 3, 1)
        );
        assert_eq!(d.precision, Some(0.25));
        assert_eq!(d.recall, Some(0.5));
    }

    #[test]
    fn the_threshold_only_moves_the_operating_point_not_the_matches() {
        let mut t = Tally::new(["person".to_owned()]);
        t.add_frame(
            &[truth("person", b(0.0, 0.0, 10.0, 30.0))],
            &[det("person", 0.3, b(0.0, 0.0, 10.0, 30.0))],
        );
        let low = &t.summary(|_| 0.25).classes["person"];
        let high = &t.summary(|_| 0.5).classes["person"];
        assert_eq!(low.recall, Some(1.0));
        assert_eq!(high.recall, Some(0.0));
        assert_eq!(high.precision, None, "nothing kept: precision is undefined");
        assert_eq!(low.ap50, high.ap50);
    }

    #[test]
    fn classes_are_scored_separately() {
        let mut t = Tally::new(["car".to_owned(), "bin".to_owned()]);
        t.add_frame(
            &[truth("car", b(0.0, 0.0, 10.0, 10.0))],
            &[det("bin", 0.9, b(0.0, 0.0, 10.0, 10.0))],
        );
        let s = t.summary(|_| 0.5);
        assert_eq!(s.classes["car"].recall, Some(0.0));
        assert_eq!(s.classes["bin"].precision, Some(0.0));
        assert_eq!(s.classes["bin"].recall, None);
        assert_eq!(s.map50, Some(0.0), "only classes with truth count");
    }

    #[test]
    fn average_precision_follows_the_precision_envelope() {
        // Ranked hit, miss, hit over 2 truths: recall 0.5 at precision 1, then 1.0 at 2/3.
        let ap = average_precision(&[(0.9, true), (0.8, false), (0.7, true)], 2);
        assert!((ap - (0.5 * 1.0 + 0.5 * (2.0 / 3.0))).abs() < 1e-9, "{ap}");
        assert_eq!(average_precision(&[], 3), 0.0);
        assert_eq!(average_precision(&[(0.5, true)], 2), 0.5);
    }

    #[test]
    fn merged_tallies_equal_one_tally_over_all_frames() {
        let frame = |x: f32| {
            (
                vec![truth("car", b(x, 0.0, x + 10.0, 10.0))],
                vec![
                    det("car", 0.6, b(x, 0.0, x + 10.0, 10.0)),
                    det("car", 0.4, b(90.0, 90.0, 99.0, 99.0)),
                ],
            )
        };
        let mut all = Tally::new(["car".to_owned()]);
        let mut a = Tally::new(["car".to_owned()]);
        let mut c = Tally::new(["car".to_owned()]);
        for (i, x) in [0.0, 20.0, 40.0].into_iter().enumerate() {
            let (t, d) = frame(x);
            all.add_frame(&t, &d);
            if i == 0 {
                a.add_frame(&t, &d)
            } else {
                c.add_frame(&t, &d)
            }
        }
        a.merge(&c);
        assert_eq!(a.summary(|_| 0.5), all.summary(|_| 0.5));
    }
}
