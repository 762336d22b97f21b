//! Ground truth for replayed footage: `sitcenter-labels/1` JSON files (format in
//! docs/labels.md), one per clip, boxes for every frame in source pixels.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::BBox;

/// The only format version this build reads.
pub const FORMAT: &str = "sitcenter-labels/1";

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("cannot read the labels {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: PathBuf,
        field: String,
        message: String,
    },
}

/// Unknown top-level fields (`generator`, `notes`, …) are ignored, as docs/labels.md says.
#[derive(Debug, Deserialize)]
struct RawLabels {
    format: String,
    #[serde(default)]
    video: Option<String>,
    width: u32,
    height: u32,
    fps: f64,
    classes: Vec<String>,
    frames: Vec<RawFrame>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrame {
    frame: u64,
    #[serde(default)]
    pts_ms: Option<f64>,
    boxes: Vec<RawBox>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBox {
    class: String,
    #[serde(rename = "box")]
    bbox: [f32; 4],
    /// Optional object identity across frames (ignored by the scoring).
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<serde_json::Value>,
}

/// One ground-truth object in one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    pub class: String,
    pub bbox: BBox,
}

/// A clip's ground truth, looked up by presentation time.
#[derive(Debug)]
pub struct Labels {
    pub file: PathBuf,
    pub video: Option<String>,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub classes: Vec<String>,
    frames: HashMap<u64, Vec<Truth>>,
}

impl Labels {
    pub fn load(file: &Path) -> Result<Self, LabelsError> {
        let text = std::fs::read_to_string(file).map_err(|source| LabelsError::Read {
            file: file.to_owned(),
            source,
        })?;
        Self::parse(file, &text)
    }

    pub fn parse(file: &Path, text: &str) -> Result<Self, LabelsError> {
        let raw: RawLabels = serde_json::from_str(text).map_err(|e| LabelsError::Syntax {
            file: file.to_owned(),
            line: e.line(),
            column: e.column(),
            message: {
                let text = e.to_string();
                text.rsplit_once(" at line ")
                    .map_or(text.clone(), |(message, _)| message.to_owned())
            },
        })?;
        let invalid = |field: String, message: String| LabelsError::Invalid {
            file: file.to_owned(),
            field,
            message,
        };
        if raw.format != FORMAT {
            return Err(invalid(
                "format".into(),
                format!("`{}` is not supported (expected `{FORMAT}`)", raw.format),
            ));
        }
        if !(raw.fps.is_finite() && raw.fps > 0.0) {
            return Err(invalid(
                "fps".into(),
                format!("must be > 0, got {}", raw.fps),
            ));
        }
        if raw.width == 0 || raw.height == 0 {
            return Err(invalid("width/height".into(), "must be > 0".into()));
        }
        let mut frames = HashMap::with_capacity(raw.frames.len());
        for (i, frame) in raw.frames.into_iter().enumerate() {
            let mut truths = Vec::with_capacity(frame.boxes.len());
            for (j, b) in frame.boxes.into_iter().enumerate() {
                let field = || format!("frames[{i}].boxes[{j}]");
                if !raw.classes.contains(&b.class) {
                    return Err(invalid(
                        field(),
                        format!("class `{}` is not in `classes`", b.class),
                    ));
                }
                let [x1, y1, x2, y2] = b.bbox;
                if !(b.bbox.iter().all(|v| v.is_finite()) && x1 < x2 && y1 < y2) {
                    return Err(invalid(
                        field(),
                        format!(
                            "box {:?} is not [x1, y1, x2, y2] with x1 < x2, y1 < y2",
                            b.bbox
                        ),
                    ));
                }
                truths.push(Truth {
                    class: b.class,
                    bbox: BBox { x1, y1, x2, y2 },
                });
            }
            if let Some(pts) = frame.pts_ms {
                let expected = frame.frame as f64 * 1000.0 / raw.fps;
                if (pts - expected).abs() > 500.0 / raw.fps {
                    return Err(invalid(
                        format!("frames[{i}].pts_ms"),
                        format!(
                            "{pts} does not match frame {} at {} fps ({expected:.1} ms)",
                            frame.frame, raw.fps
                        ),
                    ));
                }
            }
            if frames.insert(frame.frame, truths).is_some() {
                return Err(invalid(
                    format!("frames[{i}].frame"),
                    format!("frame {} is listed twice", frame.frame),
                ));
            }
        }
        Ok(Self {
            file: file.to_owned(),
            video: raw.video,
            width: raw.width,
            height: raw.height,
            fps: raw.fps,
            classes: raw.classes,
            frames,
        })
    }

    /// The frame index a presentation time falls on.
    pub fn frame_at(&self, pts: Duration) -> u64 {
        (pts.as_secs_f64() * self.fps).round().max(0.0) as u64
    }

    /// The truth for the frame shown at `pts`; `None` when that frame is not labelled.
    pub fn at(&self, pts: Duration) -> Option<&[Truth]> {
        self.frames.get(&self.frame_at(pts)).map(Vec::as_slice)
    }

    pub fn labelled_frames(&self) -> usize {
        self.frames.len()
    }
}

/// The labels of `video`: `<stem>.labels.json` or `<name>.labels.json` in `dir` (the
/// video's own folder when `None`).
pub fn beside(video: &Path, dir: Option<&Path>) -> Option<PathBuf> {
    let dir = dir.or_else(|| video.parent())?;
    let name = video.file_name()?.to_string_lossy().into_owned();
    let stem = video.file_stem()?.to_string_lossy().into_owned();
    [
        dir.join(format!("{stem}.labels.json")),
        dir.join(format!("{name}.labels.json")),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "format": "sitcenter-labels/1", "video": "a.mp4", "width": 640, "height": 360, "fps": 25,
  "generator": "by hand", "notes": "ignored",
  "classes": ["manhole_open", "car"],
  "frames": [
    {"frame": 0, "pts_ms": 0, "boxes": [{"class": "manhole_open", "box": [10, 20, 50, 40]}]},
    {"frame": 1, "pts_ms": 40, "boxes": []}
  ]
}"#;

    #[test]
    fn frames_are_found_by_presentation_time() {
        let labels = Labels::parse(Path::new("a.labels.json"), GOOD).expect("valid");
        assert_eq!(labels.at(Duration::from_millis(0)).map(<[_]>::len), Some(1));
        assert_eq!(
            labels.at(Duration::from_millis(41)).map(<[_]>::len),
            Some(0)
        );
        assert!(labels.at(Duration::from_millis(80)).is_none());
        assert_eq!(labels.labelled_frames(), 2);
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let broken = GOOD.replace("\"fps\": 25,", "\"fps\": 25");
        let e = Labels::parse(Path::new("a.labels.json"), &broken).expect_err("broken");
        let text = e.to_string();
        assert_eq!(text, "a.labels.json:3:3: expected `,` or `}`");
    }

    #[test]
    fn unknown_classes_and_inverted_boxes_name_the_field() {
        let e = Labels::parse(
            Path::new("a.labels.json"),
            &GOOD.replace("\"class\": \"manhole_open\"", "\"class\": \"tank\""),
        )
        .expect_err("unknown class");
        assert_eq!(
            e.to_string(),
            "a.labels.json: frames[0].boxes[0]: class `tank` is not in `classes`"
        );
        let e = Labels::parse(
            Path::new("a.labels.json"),
            &GOOD.replace("[10, 20, 50, 40]", "[50, 20, 10, 40]"),
        )
        .expect_err("inverted");
        assert!(e.to_string().contains("frames[0].boxes[0]: box"), "{e}");
    }

    #[test]
    fn a_pts_that_contradicts_the_frame_index_is_refused() {
        let e = Labels::parse(
            Path::new("a.labels.json"),
            &GOOD.replace("\"pts_ms\": 40", "\"pts_ms\": 400"),
        )
        .expect_err("bad pts");
        assert!(e.to_string().contains("frames[1].pts_ms"), "{e}");
    }
}
