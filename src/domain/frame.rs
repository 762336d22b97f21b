use std::time::{Duration, Instant, SystemTime};

use super::CameraId;

/// How the source picture was fitted into the analysis size (scaled, then padded
/// with borders): enough to map a box in analysis pixels back to source pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    pub source_width: u32,
    pub source_height: u32,
    /// Analysis pixels per source pixel.
    pub scale: f32,
    pub pad_x: u32,
    pub pad_y: u32,
}

impl Letterbox {
    /// The letterbox that fits `source` into `target` keeping the aspect ratio,
    /// centred, as GStreamer's `videoscale add-borders=true` does.
    pub fn fit(source: (u32, u32), target: (u32, u32)) -> Self {
        let (sw, sh) = (source.0.max(1), source.1.max(1));
        let scale = (target.0 as f32 / sw as f32).min(target.1 as f32 / sh as f32);
        let scaled_w = (sw as f32 * scale).round() as u32;
        let scaled_h = (sh as f32 * scale).round() as u32;
        Self {
            source_width: sw,
            source_height: sh,
            scale,
            pad_x: target.0.saturating_sub(scaled_w) / 2,
            pad_y: target.1.saturating_sub(scaled_h) / 2,
        }
    }

    /// Maps a point in analysis pixels back to source pixels.
    pub fn to_source(&self, x: f32, y: f32) -> (f32, f32) {
        (
            ((x - self.pad_x as f32) / self.scale).clamp(0.0, self.source_width as f32),
            ((y - self.pad_y as f32) / self.scale).clamp(0.0, self.source_height as f32),
        )
    }
}

/// One sampled frame: decoded, scaled and converted to packed RGB at the analysis
/// size inside the GStreamer pipeline. The pixels stay in the GStreamer buffer
/// (reference counted, never copied on the way out of ingest).
#[derive(Clone, Debug)]
pub struct Frame {
    pub camera: CameraId,
    /// Per-camera sequence number of sampled frames, from 0 at each (re)connection.
    pub seq: u64,
    /// Stream time of the frame (presentation timestamp).
    pub pts: Option<Duration>,
    /// Wall-clock time the frame left the pipeline.
    pub captured_at: SystemTime,
    pub width: u32,
    pub height: u32,
    /// Bytes per row of `buffer` (GStreamer pads rows to 4 bytes).
    pub stride: usize,
    pub letterbox: Letterbox,
    /// From the unit entering the decoder to the frame leaving the pipeline.
    pub decode_latency: Option<Duration>,
    /// When the encoded keyframe of this frame arrived from the camera (shared-decoder
    /// backend: its last RTP packet; pipeline backend: when it reached the keyframe
    /// gate), so that keyframe → frame → detection latency can be measured end to end.
    pub received_at: Instant,
    pub buffer: gstreamer::Buffer,
}

/// Why a frame's pixels could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PixelsError {
    /// The buffer cannot be mapped for reading.
    #[error("the frame buffer cannot be read")]
    Map,
    /// The buffer is smaller than `stride`, `width` and `height` say.
    #[error("the frame is smaller than its size says")]
    Short,
}

impl Frame {
    /// The pixels as packed RGB rows, the row padding removed (GStreamer pads rows to 4
    /// bytes). Shared by the UI snapshots and the event evidence.
    pub fn packed_rgb(&self) -> Result<Vec<u8>, PixelsError> {
        let map = self.buffer.map_readable().map_err(|_| PixelsError::Map)?;
        let (w, h) = (self.width as usize, self.height as usize);
        let row = w * 3;
        if self.stride < row || map.len() < self.stride * h.saturating_sub(1) + row {
            return Err(PixelsError::Short);
        }
        let mut packed = Vec::with_capacity(row * h);
        for y in 0..h {
            packed.extend_from_slice(&map[y * self.stride..y * self.stride + row]);
        }
        Ok(packed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_of_a_wide_picture_pads_top_and_bottom() {
        let lb = Letterbox::fit((640, 360), (640, 640));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 140));
        assert_eq!(lb.to_source(320.0, 140.0 + 180.0), (320.0, 180.0));
    }

    #[test]
    fn letterbox_of_a_tall_picture_pads_left_and_right() {
        let lb = Letterbox::fit((360, 720), (640, 640));
        assert_eq!(lb.pad_y, 0);
        assert_eq!(lb.pad_x, 160);
        let (x, y) = lb.to_source(160.0, 640.0);
        assert!((x - 0.0).abs() < 0.01 && (y - 720.0).abs() < 0.01);
    }
}
