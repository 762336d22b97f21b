//! The shared keyframe decoder pool driven directly, without cameras or RTSP: what
//! `sitcenter decode-floor` (src/cli/decode_floor.rs) measures the decode floor with — the
//! same [`DecoderPool`] as live cameras' keyframes go through, the same FrameQueue.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use tokio_util::sync::CancellationToken;

use super::appsink::Taps;
use super::error::IngestError;
use super::pool::{DecoderPool, Keyframe};
use super::status::CameraStatus;
use crate::domain::{CameraId, Reason};
use crate::obs::Metrics;
use crate::queue::{DropLedger, FrameQueue};

/// The keyframes of an H.264 clip in MP4, each with its SPS/PPS (as the simulator sends them).
pub fn clip_keyframes(media: &Path) -> Result<Vec<Vec<u8>>, IngestError> {
    gst::init()?;
    let clip = crate::sim::clip::Clip::load(media).map_err(|e| IngestError::Replay {
        file: media.display().to_string(),
        element: "clip".to_owned(),
        message: e.to_string(),
    })?;
    let keyframes: Vec<Vec<u8>> = clip
        .frames
        .iter()
        .filter(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
        .filter_map(|b| b.map_readable().ok().map(|m| m.as_slice().to_vec()))
        .collect();
    if keyframes.is_empty() {
        return Err(IngestError::Pool(format!(
            "{} has no keyframe",
            media.display()
        )));
    }
    Ok(keyframes)
}

/// A decoder pool of its own, decoding keyframes of one pseudo-camera into a FrameQueue.
pub struct StandaloneDecoders {
    pool: DecoderPool,
    taps: Arc<Taps>,
    queue: Arc<FrameQueue>,
    cancel: CancellationToken,
}

impl StandaloneDecoders {
    /// `workers` decoders with a queue of `capacity` keyframes, scaling to `size` RGB.
    pub fn start(workers: usize, capacity: usize, size: (u32, u32)) -> Result<Self, IngestError> {
        gst::init()?;
        let metrics = Arc::new(Metrics::new());
        let queue = Arc::new(FrameQueue::new(1024));
        let camera = CameraId::new("floor");
        let taps = Arc::new(Taps {
            camera: camera.clone(),
            status: Arc::new(CameraStatus::new(Reason::Started)),
            camera_metrics: metrics.camera(&camera),
            metrics: metrics.clone(),
            ledger: Arc::new(DropLedger::new(metrics.clone())),
            queue: queue.clone(),
            frame_arrived: Arc::default(),
        });
        let pool = DecoderPool::start(workers, capacity, size, metrics)?;
        Ok(Self {
            pool,
            taps,
            queue,
            cancel: CancellationToken::new(),
        })
    }

    /// Hands keyframe number `seq` to the pool (dropped and counted if its queue is full).
    pub fn submit(&self, data: Vec<u8>, seq: u64) {
        let _submitted = self.pool.submit(Keyframe {
            taps: self.taps.clone(),
            cancel: self.cancel.clone(),
            data,
            received_at: Instant::now(),
            pts: Duration::from_secs(seq * 2),
            seq,
        });
    }

    /// Frames that came out, waiting up to `wait` for the first one.
    pub fn take(&self, wait: Duration) -> u64 {
        self.queue
            .pop_batch(1024, wait)
            .map_or(0, |batch| batch.len() as u64)
    }

    pub fn stop(self) {
        self.pool.stop();
    }
}
