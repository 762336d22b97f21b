use std::collections::HashMap;

use parking_lot::Mutex;

use crate::domain::{CameraId, Frame};

/// The latest sampled frame of each camera (one frame each: bounded by the
/// number of cameras). JPEG is encoded only when somebody asks.
#[derive(Default)]
pub struct Previews {
    latest: Mutex<HashMap<CameraId, Frame>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("the frame buffer cannot be read")]
    Map,
    #[error("the frame is smaller than its size says")]
    Short,
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

impl Previews {
    pub fn put(&self, frame: Frame) {
        self.latest.lock().insert(frame.camera.clone(), frame);
    }

    pub fn remove(&self, id: &CameraId) {
        self.latest.lock().remove(id);
    }

    pub fn clear(&self) {
        self.latest.lock().clear();
    }

    pub fn get(&self, id: &CameraId) -> Option<Frame> {
        self.latest.lock().get(id).cloned()
    }

    /// The latest frame of `id` as JPEG, or `None` when none arrived yet.
    pub fn jpeg(&self, id: &CameraId) -> Option<Result<Vec<u8>, PreviewError>> {
        self.get(id).map(|frame| encode_jpeg(&frame, 80))
    }
}

/// Encodes a packed-RGB frame (rows `stride` bytes apart) as JPEG.
pub fn encode_jpeg(frame: &Frame, quality: u8) -> Result<Vec<u8>, PreviewError> {
    let map = frame.buffer.map_readable().map_err(|_| PreviewError::Map)?;
    let (w, h) = (frame.width as usize, frame.height as usize);
    let row = w * 3;
    if frame.stride < row || map.len() < frame.stride * (h.saturating_sub(1)) + row {
        return Err(PreviewError::Short);
    }
    let mut packed = Vec::with_capacity(row * h);
    for y in 0..h {
        packed.extend_from_slice(&map[y * frame.stride..y * frame.stride + row]);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode(
        &packed,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
