use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::domain::{CameraId, Frame, PixelsError};

/// How long a camera stays "watched" after its snapshot was last asked for.
const WATCH_FOR: Duration = Duration::from_secs(60);

/// The latest sampled frame of the cameras somebody is looking at. A frame is
/// kept only for a camera whose snapshot was asked for within the last minute:
/// memory is bounded by what operators watch, not by the size of the city
/// (one 640×640 RGB frame is 1.2 MB; 16,000 of them would be 19 GB). JPEG is
/// encoded only on request.
#[derive(Default)]
pub struct Previews {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    watched: HashMap<CameraId, Instant>,
    latest: HashMap<CameraId, Frame>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Pixels(#[from] PixelsError),
    #[error("JPEG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

impl Previews {
    /// Keeps `frame` if its camera is being watched (called for every frame).
    pub fn put(&self, frame: Frame) {
        let mut inner = self.inner.lock();
        match inner.watched.get(&frame.camera) {
            Some(since) if since.elapsed() <= WATCH_FOR => {
                inner.latest.insert(frame.camera.clone(), frame);
            }
            Some(_) => {
                inner.watched.remove(&frame.camera);
                inner.latest.remove(&frame.camera);
            }
            None => {}
        }
    }

    pub fn remove(&self, id: &CameraId) {
        let mut inner = self.inner.lock();
        inner.watched.remove(id);
        inner.latest.remove(id);
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.watched.clear();
        inner.latest.clear();
    }

    /// Marks `id` as watched and returns its latest frame, if one arrived since.
    pub fn watch(&self, id: &CameraId) -> Option<Frame> {
        let mut inner = self.inner.lock();
        inner.watched.insert(id.clone(), Instant::now());
        inner.latest.get(id).cloned()
    }

    /// Frames currently held (bounded by the cameras being watched).
    pub fn len(&self) -> usize {
        self.inner.lock().latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks `id` as watched and returns its latest frame as JPEG, or `None`
    /// when no frame arrived since it is watched (ask again after its interval).
    pub fn jpeg(&self, id: &CameraId) -> Option<Result<Vec<u8>, PreviewError>> {
        self.watch(id).map(|frame| encode_jpeg(&frame, 80))
    }
}

/// Encodes a packed-RGB frame (rows `stride` bytes apart) as JPEG.
pub fn encode_jpeg(frame: &Frame, quality: u8) -> Result<Vec<u8>, PreviewError> {
    let packed = frame.packed_rgb()?;
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode(
        &packed,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Letterbox;

    fn frame(camera: &str, value: u8) -> Frame {
        gstreamer::init().expect("gst init");
        let (w, h) = (4u32, 2u32);
        let stride = 12; // 4 × 3 bytes, already 4-aligned
        let buffer = gstreamer::Buffer::from_mut_slice(vec![value; stride * h as usize]);
        Frame {
            camera: CameraId::new(camera),
            seq: 0,
            pts: None,
            captured_at: std::time::SystemTime::now(),
            width: w,
            height: h,
            stride,
            letterbox: Letterbox::fit((w, h), (w, h)),
            decode_latency: None,
            received_at: std::time::Instant::now(),
            buffer,
        }
    }

    #[test]
    fn frames_are_kept_only_for_watched_cameras() {
        let previews = Previews::default();
        previews.put(frame("a", 10));
        previews.put(frame("b", 20));
        assert!(previews.is_empty(), "nobody watches: nothing is held");
        assert!(
            previews.jpeg(&CameraId::new("a")).is_none(),
            "no frame since watched"
        );
        previews.put(frame("a", 30));
        previews.put(frame("b", 40));
        assert_eq!(previews.len(), 1);
        let jpeg = previews
            .jpeg(&CameraId::new("a"))
            .expect("a frame")
            .expect("encodes");
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
        previews.remove(&CameraId::new("a"));
        assert!(previews.is_empty());
    }
}
