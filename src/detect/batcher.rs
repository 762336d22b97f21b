//! Cross-camera batching: up to `max_batch` frames from the FrameQueue, or whatever arrived
//! within `max_wait` of the first frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::Frame;
use crate::queue::FrameQueue;

/// Size/time batching policy over the shared FrameQueue.
pub struct Batcher {
    queue: Arc<FrameQueue>,
    max_batch: usize,
    max_wait: Duration,
    idle_wait: Duration,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max_batch", &self.max_batch)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

/// What the batcher handed out.
#[derive(Debug)]
pub enum Batch {
    /// 1..=max_batch frames, possibly from several cameras.
    Frames(Vec<Frame>),
    /// No frame arrived within the idle wait; call again.
    Idle,
    /// The queue is closed and drained: the worker is done.
    Closed,
}

impl Batcher {
    /// `idle_wait` bounds how long one call waits for a first frame (so the caller can notice
    /// shutdown); `max_wait` how long a partial batch waits for more frames once started.
    pub fn new(
        queue: Arc<FrameQueue>,
        max_batch: usize,
        max_wait: Duration,
        idle_wait: Duration,
    ) -> Self {
        Self {
            queue,
            max_batch: max_batch.max(1),
            max_wait,
            idle_wait,
        }
    }

    pub fn next_batch(&self) -> Batch {
        let mut frames = match self.queue.pop_batch(self.max_batch, self.idle_wait) {
            None => return Batch::Closed,
            Some(frames) if frames.is_empty() => return Batch::Idle,
            Some(frames) => frames,
        };
        let deadline = Instant::now() + self.max_wait;
        while frames.len() < self.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.queue.pop_batch(self.max_batch - frames.len(), left) {
                // Closed: hand out what we have; the next call reports Closed.
                None => break,
                Some(more) => frames.extend(more),
            }
        }
        Batch::Frames(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CameraId, Letterbox};

    fn frame(camera: &str, seq: u64) -> Frame {
        Frame {
            camera: CameraId::new(camera),
            seq,
            pts: None,
            captured_at: std::time::SystemTime::now(),
            width: 1,
            height: 1,
            stride: 3,
            letterbox: Letterbox::fit((1, 1), (1, 1)),
            decode_latency: None,
            received_at: std::time::Instant::now(),
            buffer: gstreamer::Buffer::with_size(3).expect("allocate"),
        }
    }

    fn cameras(batch: Batch) -> Vec<String> {
        match batch {
            Batch::Frames(frames) => frames
                .iter()
                .map(|f| format!("{}#{}", f.camera.as_str(), f.seq))
                .collect(),
            other => panic!("expected frames, got {other:?}"),
        }
    }

    #[test]
    fn a_batch_is_cut_at_max_batch_across_cameras_in_arrival_order() {
        gstreamer::init().expect("gst init");
        let queue = Arc::new(FrameQueue::new(16));
        for (cam, seq) in [("a", 0), ("b", 0), ("a", 1), ("c", 0), ("b", 1)] {
            queue.push(frame(cam, seq));
        }
        let batcher = Batcher::new(queue, 4, Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(cameras(batcher.next_batch()), ["a#0", "b#0", "a#1", "c#0"]);
    }

    #[test]
    fn a_partial_batch_is_released_after_max_wait() {
        gstreamer::init().expect("gst init");
        let queue = Arc::new(FrameQueue::new(16));
        queue.push(frame("a", 0));
        queue.push(frame("b", 0));
        let batcher = Batcher::new(queue, 8, Duration::from_millis(5), Duration::from_secs(60));
        assert_eq!(cameras(batcher.next_batch()), ["a#0", "b#0"]);
    }

    #[test]
    fn an_empty_queue_is_idle_and_a_closed_one_ends_after_draining() {
        gstreamer::init().expect("gst init");
        let queue = Arc::new(FrameQueue::new(16));
        let batcher = Batcher::new(queue.clone(), 8, Duration::from_secs(60), Duration::ZERO);
        assert!(matches!(batcher.next_batch(), Batch::Idle));
        queue.push(frame("a", 0));
        queue.close();
        assert_eq!(
            cameras(batcher.next_batch()),
            ["a#0"],
            "closing does not lose queued frames"
        );
        assert!(matches!(batcher.next_batch(), Batch::Closed));
    }
}
