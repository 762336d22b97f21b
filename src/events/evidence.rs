//! Evidence for an event: the analysed frame as JPEG with the event's box drawn, and a clean
//! copy, written under the evidence dir as `<camera>/<event id>.jpg` and
//! `<camera>/<event id>.clean.jpg`. Runs on the event stage's thread, never the detector's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::{BBox, Evidence, Frame, PixelsError};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Pixels(#[from] PixelsError),
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
    #[error("{}: cannot write evidence: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Box colour: saturated yellow, visible on streets and unlike the tiny model's red/blue.
const BOX_RGB: [u8; 3] = [255, 221, 0];
const JPEG_QUALITY: u8 = 85;

/// Writes evidence files under one directory.
#[derive(Debug, Clone)]
pub struct EvidenceWriter {
    dir: PathBuf,
}

/// A file-name-safe form of an id.
pub fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Draws a 2-pixel rectangle for `bbox` (source pixels), mapped into the analysis frame.
pub fn draw_box(pixels: &mut [u8], width: u32, height: u32, frame: &Frame, bbox: &BBox) {
    let lb = &frame.letterbox;
    let to_analysis = |x: f32, y: f32| {
        (
            x * lb.scale + lb.pad_x as f32,
            y * lb.scale + lb.pad_y as f32,
        )
    };
    let (ax1, ay1) = to_analysis(bbox.x1, bbox.y1);
    let (ax2, ay2) = to_analysis(bbox.x2, bbox.y2);
    let clamp = |v: f32, max: u32| (v.round().max(0.0) as u32).min(max.saturating_sub(1));
    let (x1, y1, x2, y2) = (
        clamp(ax1, width),
        clamp(ay1, height),
        clamp(ax2 - 1.0, width),
        clamp(ay2 - 1.0, height),
    );
    let mut put = |x: u32, y: u32| {
        let i = (y as usize * width as usize + x as usize) * 3;
        if let Some(px) = pixels.get_mut(i..i + 3) {
            px.copy_from_slice(&BOX_RGB);
        }
    };
    for t in 0..2u32 {
        for x in x1..=x2 {
            put(x, (y1 + t).min(y2));
            put(x, y2.saturating_sub(t).max(y1));
        }
        for y in y1..=y2 {
            put((x1 + t).min(x2), y);
            put(x2.saturating_sub(t).max(x1), y);
        }
    }
}

fn jpeg(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, EvidenceError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode(
        pixels,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), EvidenceError> {
    let error = |source| EvidenceError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(error)?;
    }
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("jpg.part");
    std::fs::write(&tmp, bytes).map_err(error)?;
    std::fs::rename(&tmp, path).map_err(error)
}

impl EvidenceWriter {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Encodes and stores the evidence of event `id` on camera `camera`.
    pub fn write(
        &self,
        camera: &str,
        id: &str,
        frame: &Frame,
        bbox: &BBox,
    ) -> Result<Evidence, EvidenceError> {
        let clean_pixels = frame.packed_rgb()?;
        let mut annotated_pixels = clean_pixels.clone();
        draw_box(
            &mut annotated_pixels,
            frame.width,
            frame.height,
            frame,
            bbox,
        );
        let clean = jpeg(&clean_pixels, frame.width, frame.height)?;
        let annotated = jpeg(&annotated_pixels, frame.width, frame.height)?;
        let folder = self.dir.join(safe_name(camera));
        let name = safe_name(id);
        let annotated_path = folder.join(format!("{name}.jpg"));
        let clean_path = folder.join(format!("{name}.clean.jpg"));
        write(&annotated_path, &annotated)?;
        write(&clean_path, &clean)?;
        Ok(Evidence {
            annotated_path,
            clean_path,
            letterbox: frame.letterbox,
            annotated_jpeg: Arc::from(annotated),
            clean_jpeg: Arc::from(clean),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CameraId, Letterbox};

    #[test]
    fn the_box_is_drawn_where_the_source_box_maps_in_the_analysis_frame() {
        gstreamer::init().expect("gst init");
        // Source 128×64 letterboxed into 64×64: scale 0.5, pad_y 16.
        let (w, h) = (64u32, 64u32);
        let frame = Frame {
            camera: CameraId::new("c"),
            seq: 0,
            pts: None,
            captured_at: std::time::SystemTime::now(),
            width: w,
            height: h,
            stride: 192,
            letterbox: Letterbox::fit((128, 64), (64, 64)),
            decode_latency: None,
            received_at: std::time::Instant::now(),
            buffer: gstreamer::Buffer::from_mut_slice(vec![0u8; 192 * 64]),
        };
        let mut pixels = frame.packed_rgb().expect("readable");
        let bbox = BBox {
            x1: 20.0,
            y1: 20.0,
            x2: 60.0,
            y2: 40.0,
        };
        draw_box(&mut pixels, w, h, &frame, &bbox);
        let at = |x: usize, y: usize| &pixels[(y * 64 + x) * 3..(y * 64 + x) * 3 + 3];
        assert_eq!(
            at(10, 26),
            &BOX_RGB,
            "top-left corner: (20·0.5, 20·0.5 + 16)"
        );
        assert_eq!(at(20, 26), &BOX_RGB, "top edge");
        assert_eq!(at(20, 30), &[0, 0, 0], "inside stays clean");
        assert_eq!(at(5, 5), &[0, 0, 0]);
        let dir = tempfile::tempdir().expect("tempdir");
        let evidence = EvidenceWriter::new(dir.path())
            .write("c/1", "ev 1", &frame, &bbox)
            .expect("written");
        assert!(evidence.annotated_path.ends_with("c_1/ev_1.jpg"));
        assert_eq!(
            std::fs::read(&evidence.clean_path).expect("file")[..2],
            [0xFF, 0xD8]
        );
    }
}
