//! Model output → candidates → NMS → boxes in source pixels. Pure: no I/O, no ort.

use crate::domain::{BBox, Letterbox};

use crate::config::OutputLayout;

/// One box before or after NMS, in model-input (analysis) pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub class: usize,
    pub score: f32,
    pub bbox: BBox,
}

impl Candidate {
    /// The box in source pixels, letterbox removed and clamped to the picture.
    pub fn to_source(&self, letterbox: &Letterbox) -> BBox {
        let (x1, y1) = letterbox.to_source(self.bbox.x1, self.bbox.y1);
        let (x2, y2) = letterbox.to_source(self.bbox.x2, self.bbox.y2);
        BBox { x1, y1, x2, y2 }
    }
}

/// Decodes one image's output and applies NMS, reusing its scratch space between calls.
#[derive(Debug, Clone)]
pub struct Decoder {
    layout: OutputLayout,
    thresholds: Vec<f32>,
    iou_threshold: f32,
    max_detections: usize,
    best_score: Vec<f32>,
    best_class: Vec<u32>,
    candidates: Vec<Candidate>,
}

/// The output of one image did not have the size its layout implies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("output of {got} values does not fit layout {layout:?} with {classes} classes")]
pub struct OutputSizeError {
    pub got: usize,
    pub layout: OutputLayout,
    pub classes: usize,
}

impl Decoder {
    pub fn new(
        layout: OutputLayout,
        thresholds: Vec<f32>,
        iou_threshold: f32,
        max_detections: usize,
    ) -> Self {
        Self {
            layout,
            thresholds,
            iou_threshold,
            max_detections,
            best_score: Vec::new(),
            best_class: Vec::new(),
            candidates: Vec::new(),
        }
    }

    /// Decodes one image's output (`[4 + C, A]` or `[N, 6]`, row-major, batch dimension
    /// removed) and returns the boxes kept by NMS, best first, at most `max_detections`.
    pub fn decode(&mut self, output: &[f32]) -> Result<&[Candidate], OutputSizeError> {
        self.candidates.clear();
        match self.layout {
            OutputLayout::Yolo => self.candidates_yolo(output)?,
            OutputLayout::EndToEnd => self.candidates_end_to_end(output)?,
        }
        nms(
            &mut self.candidates,
            self.iou_threshold,
            self.max_detections,
        );
        Ok(&self.candidates)
    }

    fn size_error(&self, got: usize) -> OutputSizeError {
        OutputSizeError {
            got,
            layout: self.layout,
            classes: self.thresholds.len(),
        }
    }

    /// YOLOv8 head: channel-major `[4 + C, A]`. Each anchor keeps its best class among the
    /// classes whose own threshold it passes (one label per anchor, as Ultralytics does with
    /// `multi_label=False`). Scanned class row by class row so memory is read in order.
    fn candidates_yolo(&mut self, output: &[f32]) -> Result<(), OutputSizeError> {
        let channels = 4 + self.thresholds.len();
        if output.is_empty() || !output.len().is_multiple_of(channels) {
            return Err(self.size_error(output.len()));
        }
        let anchors = output.len() / channels;
        self.best_score.clear();
        self.best_score.resize(anchors, f32::NEG_INFINITY);
        self.best_class.clear();
        self.best_class.resize(anchors, u32::MAX);
        for (class, &threshold) in self.thresholds.iter().enumerate() {
            let row = &output[(4 + class) * anchors..(5 + class) * anchors];
            for ((score, best), best_class) in row
                .iter()
                .zip(self.best_score.iter_mut())
                .zip(self.best_class.iter_mut())
            {
                if *score >= threshold && *score > *best {
                    *best = *score;
                    *best_class = class as u32;
                }
            }
        }
        let (cx, rest) = output.split_at(anchors);
        let (cy, rest) = rest.split_at(anchors);
        let (w, rest) = rest.split_at(anchors);
        let h = &rest[..anchors];
        for (a, &class) in self.best_class.iter().enumerate() {
            if class == u32::MAX {
                continue;
            }
            let (half_w, half_h) = (w[a] * 0.5, h[a] * 0.5);
            self.candidates.push(Candidate {
                class: class as usize,
                score: self.best_score[a],
                bbox: BBox {
                    x1: cx[a] - half_w,
                    y1: cy[a] - half_h,
                    x2: cx[a] + half_w,
                    y2: cy[a] + half_h,
                },
            });
        }
        Ok(())
    }

    /// End-to-end export: rows `x1, y1, x2, y2, score, class`. Rows with an unknown class,
    /// a non-finite value or a score under the class's threshold (padding rows score 0) are
    /// skipped.
    fn candidates_end_to_end(&mut self, output: &[f32]) -> Result<(), OutputSizeError> {
        if !output.len().is_multiple_of(6) {
            return Err(self.size_error(output.len()));
        }
        for row in output.chunks_exact(6) {
            if !row.iter().all(|v| v.is_finite()) || row[5] < 0.0 {
                continue;
            }
            let class = row[5] as usize;
            let Some(&threshold) = self.thresholds.get(class) else {
                continue;
            };
            if row[4] < threshold {
                continue;
            }
            self.candidates.push(Candidate {
                class,
                score: row[4],
                bbox: BBox {
                    x1: row[0],
                    y1: row[1],
                    x2: row[2],
                    y2: row[3],
                },
            });
        }
        Ok(())
    }
}

/// Class-aware greedy NMS: sort by score (best first, ties in input order), keep a box unless a kept box of the
/// same class overlaps it by more than `iou_threshold`; stop at `max_detections`.
/// O(n log n + n·k) for k kept boxes.
pub fn nms(candidates: &mut Vec<Candidate>, iou_threshold: f32, max_detections: usize) {
    // Stable: equal scores keep their anchor order, so results do not depend on the sort.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept = 0;
    for i in 0..candidates.len() {
        if kept == max_detections {
            break;
        }
        let candidate = candidates[i];
        let suppressed = candidates[..kept]
            .iter()
            .any(|k| k.class == candidate.class && k.bbox.iou(&candidate.bbox) > iou_threshold);
        if !suppressed {
            candidates[kept] = candidate;
            kept += 1;
        }
    }
    candidates.truncate(kept);
}

/// The same greedy NMS without sorting: repeatedly take the best remaining box and drop the
/// ones it suppresses. O(n²); the baseline `nms` is measured against (benches/detect.rs)
/// and checked against (tests below).
pub fn nms_repeated_max(
    candidates: &[Candidate],
    iou_threshold: f32,
    max_detections: usize,
) -> Vec<Candidate> {
    let mut alive: Vec<bool> = vec![true; candidates.len()];
    let mut kept = Vec::new();
    while kept.len() < max_detections {
        // The first of equal scores, as the stable sort in `nms` orders them.
        let best = candidates
            .iter()
            .enumerate()
            .filter(|(i, _)| alive[*i])
            .reduce(|best, next| {
                if next.1.score.total_cmp(&best.1.score).is_gt() {
                    next
                } else {
                    best
                }
            });
        let Some((best_index, best)) = best else {
            break;
        };
        let best = *best;
        alive[best_index] = false;
        for (i, c) in candidates.iter().enumerate() {
            if alive[i] && c.class == best.class && c.bbox.iou(&best.bbox) > iou_threshold {
                alive[i] = false;
            }
        }
        kept.push(best);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(class: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> Candidate {
        Candidate {
            class,
            score,
            bbox: BBox { x1, y1, x2, y2 },
        }
    }

    /// Builds a YOLO `[4 + C, A]` output from per-anchor (cx, cy, w, h, scores).
    fn yolo_output(anchors: &[([f32; 4], Vec<f32>)]) -> Vec<f32> {
        let classes = anchors[0].1.len();
        let a = anchors.len();
        let mut out = vec![0.0; (4 + classes) * a];
        for (i, (bx, scores)) in anchors.iter().enumerate() {
            for (c, v) in bx.iter().chain(scores.iter()).enumerate() {
                out[c * a + i] = *v;
            }
        }
        out
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_only_the_best() {
        let mut c = vec![
            cand(0, 0.6, 0.0, 0.0, 10.0, 10.0),
            cand(0, 0.9, 1.0, 1.0, 11.0, 11.0),
            cand(0, 0.8, 50.0, 50.0, 60.0, 60.0),
        ];
        nms(&mut c, 0.5, 10);
        assert_eq!(c.iter().map(|c| c.score).collect::<Vec<_>>(), [0.9, 0.8]);
    }

    #[test]
    fn overlapping_boxes_of_different_classes_are_both_kept() {
        let mut c = vec![
            cand(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            cand(1, 0.8, 0.0, 0.0, 10.0, 10.0),
        ];
        nms(&mut c, 0.5, 10);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn nms_stops_at_max_detections() {
        let mut c: Vec<_> = (0..20)
            .map(|i| {
                cand(
                    0,
                    i as f32 / 20.0,
                    i as f32 * 20.0,
                    0.0,
                    i as f32 * 20.0 + 10.0,
                    10.0,
                )
            })
            .collect();
        nms(&mut c, 0.5, 3);
        assert_eq!(
            c.iter().map(|c| c.score).collect::<Vec<_>>(),
            [0.95, 0.9, 0.85]
        );
    }

    #[test]
    fn iou_exactly_at_the_threshold_is_not_suppressed() {
        // Two 10x10 boxes sharing half their width: IoU = 50 / 150 = 1/3.
        let mut c = vec![
            cand(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            cand(0, 0.8, 5.0, 0.0, 15.0, 10.0),
        ];
        let iou = c[0].bbox.iou(&c[1].bbox);
        nms(&mut c, iou, 10);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn sorted_nms_agrees_with_the_repeated_max_baseline() {
        // Deterministic pseudo-random boxes, several classes, heavy overlap.
        let mut state = 0x2545_f491_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 10_000) as f32 / 10_000.0
        };
        let boxes: Vec<_> = (0..500)
            .map(|_| {
                let (x, y, s) = (next() * 200.0, next() * 200.0, 5.0 + next() * 40.0);
                cand((next() * 3.0) as usize, next(), x, y, x + s, y + s)
            })
            .collect();
        let expected = nms_repeated_max(&boxes, 0.45, 300);
        let mut got = boxes.clone();
        nms(&mut got, 0.45, 300);
        assert!(
            got == expected,
            "sorted NMS kept {} boxes, the baseline {}",
            got.len(),
            expected.len()
        );
        assert!(
            got.len() > 10 && got.len() < 500,
            "the case exercises suppression"
        );
    }

    #[test]
    fn yolo_output_uses_per_class_thresholds_and_the_best_passing_class() {
        let out = yolo_output(&[
            ([10.0, 10.0, 4.0, 4.0], vec![0.55, 0.2]), // class 0 passes 0.5
            ([30.0, 30.0, 4.0, 4.0], vec![0.3, 0.65]), // class 1 under its 0.7
            ([50.0, 50.0, 4.0, 4.0], vec![0.6, 0.75]), // both pass: best is class 1
            ([70.0, 70.0, 4.0, 4.0], vec![0.45, 0.9]), // class 1 passes, class 0 not
        ]);
        let mut d = Decoder::new(OutputLayout::Yolo, vec![0.5, 0.7], 0.5, 100);
        let got = d.decode(&out).expect("well-formed").to_vec();
        assert_eq!(
            got,
            [
                cand(1, 0.9, 68.0, 68.0, 72.0, 72.0),
                cand(1, 0.75, 48.0, 48.0, 52.0, 52.0),
                cand(0, 0.55, 8.0, 8.0, 12.0, 12.0),
            ]
        );
    }

    #[test]
    fn an_all_zero_yolo_output_yields_nothing() {
        let mut d = Decoder::new(OutputLayout::Yolo, vec![0.25; 80], 0.45, 300);
        assert!(
            d.decode(&vec![0.0; 84 * 8400])
                .expect("well-formed")
                .is_empty()
        );
    }

    #[test]
    fn a_yolo_output_of_the_wrong_size_is_an_error() {
        let mut d = Decoder::new(OutputLayout::Yolo, vec![0.25; 2], 0.45, 300);
        assert_eq!(
            d.decode(&[0.0; 7]).expect_err("must fail"),
            OutputSizeError {
                got: 7,
                layout: OutputLayout::Yolo,
                classes: 2
            }
        );
        assert!(d.decode(&[]).is_err());
    }

    #[test]
    fn end_to_end_rows_are_thresholded_and_bad_rows_skipped() {
        let out = [
            1.0,
            2.0,
            3.0,
            4.0,
            0.9,
            1.0, // kept
            1.0,
            2.0,
            3.0,
            4.0,
            0.4,
            0.0, // under class 0's 0.5
            1.0,
            2.0,
            3.0,
            4.0,
            0.9,
            7.0, // unknown class
            f32::NAN,
            2.0,
            3.0,
            4.0,
            0.9,
            0.0, // not finite
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0, // padding
        ];
        let mut d = Decoder::new(OutputLayout::EndToEnd, vec![0.5, 0.5], 0.45, 300);
        assert_eq!(
            d.decode(&out).expect("well-formed"),
            [cand(1, 0.9, 1.0, 2.0, 3.0, 4.0)]
        );
        assert!(d.decode(&out[..5]).is_err());
    }

    #[test]
    fn boxes_map_back_through_the_letterbox_to_source_pixels() {
        // 1280x720 into 640x640: scale 0.5, 140 rows of padding on top.
        let lb = Letterbox::fit((1280, 720), (640, 640));
        let c = cand(0, 0.9, 100.0, 140.0, 200.0, 240.0);
        assert_eq!(
            c.to_source(&lb),
            BBox {
                x1: 200.0,
                y1: 0.0,
                x2: 400.0,
                y2: 200.0
            }
        );
        // A box reaching into the padding is clamped to the picture.
        let edge = cand(0, 0.9, -5.0, 100.0, 700.0, 600.0);
        assert_eq!(
            edge.to_source(&lb),
            BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 1280.0,
                y2: 720.0
            }
        );
    }
}
