//! The FrameQueue: the bounded hand-off from GStreamer streaming threads to
//! analysis. Policy: [`WhenFull::DropOldest`] — a push never blocks a camera's
//! streaming thread; when full, the oldest frame is evicted and handed back to
//! the caller, who counts it against that frame's camera.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::domain::Frame;

/// What a queue does when it is full (named after Vector's `WhenFull`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Evict the oldest item to make room: the live pre-detection edge.
    DropOldest,
    /// Wait for room: QA replay, where every frame of the footage must be analysed
    /// and the file source can simply be slowed down.
    Block,
}

pub struct FrameQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
    room: Condvar,
    capacity: usize,
    policy: WhenFull,
}

struct Inner {
    frames: VecDeque<Frame>,
    closed: bool,
}

/// The result of a push.
#[derive(Debug)]
pub enum Pushed {
    Queued,
    /// Queued, and this (older) frame was evicted to make room.
    Evicted(Frame),
    /// The queue is closed (shutting down): the frame was not queued.
    Closed(Frame),
}

impl FrameQueue {
    /// A live queue: [`WhenFull::DropOldest`].
    pub fn new(capacity: usize) -> Self {
        Self::with_policy(capacity, WhenFull::DropOldest)
    }

    pub fn with_policy(capacity: usize, policy: WhenFull) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Mutex::new(Inner {
                frames: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity,
            policy,
        }
    }

    pub fn policy(&self) -> WhenFull {
        self.policy
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.inner.lock().frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// With [`WhenFull::DropOldest`] never blocks (beyond the short critical
    /// section); with [`WhenFull::Block`] waits for room.
    pub fn push(&self, frame: Frame) -> Pushed {
        let mut inner = self.inner.lock();
        if self.policy == WhenFull::Block {
            while inner.frames.len() >= self.capacity && !inner.closed {
                self.room.wait(&mut inner);
            }
        }
        if inner.closed {
            return Pushed::Closed(frame);
        }
        let evicted = if inner.frames.len() >= self.capacity {
            inner.frames.pop_front()
        } else {
            None
        };
        inner.frames.push_back(frame);
        drop(inner);
        self.ready.notify_one();
        match evicted {
            Some(old) => Pushed::Evicted(old),
            None => Pushed::Queued,
        }
    }

    /// Takes up to `max` frames, waiting up to `timeout` for the first one.
    /// Returns an empty batch on timeout, and `None` once closed and drained.
    pub fn pop_batch(&self, max: usize, timeout: Duration) -> Option<Vec<Frame>> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        while inner.frames.is_empty() {
            if inner.closed {
                return None;
            }
            if self.ready.wait_until(&mut inner, deadline).timed_out() {
                break;
            }
        }
        let n = inner.frames.len().min(max.max(1));
        let batch = inner.frames.drain(..n).collect();
        drop(inner);
        self.room.notify_all();
        Some(batch)
    }

    /// Stops accepting frames and wakes consumers; queued frames can still be taken.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_all();
        self.room.notify_all();
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
            width: 2,
            height: 2,
            stride: 6,
            letterbox: Letterbox::fit((2, 2), (2, 2)),
            decode_latency: None,
            received_at: std::time::Instant::now(),
            buffer: gstreamer::Buffer::with_size(12).expect("allocate"),
        }
    }

    #[test]
    fn a_full_queue_evicts_the_oldest_frame_and_returns_it() {
        gstreamer::init().expect("gst init");
        let q = FrameQueue::new(2);
        assert!(matches!(q.push(frame("a", 0)), Pushed::Queued));
        assert!(matches!(q.push(frame("b", 0)), Pushed::Queued));
        match q.push(frame("c", 0)) {
            Pushed::Evicted(old) => assert_eq!(old.camera.as_str(), "a"),
            other => panic!("expected an eviction, got {other:?}"),
        }
        let batch = q.pop_batch(10, Duration::ZERO).expect("open");
        let cams: Vec<_> = batch.iter().map(|f| f.camera.as_str().to_owned()).collect();
        assert_eq!(cams, ["b", "c"]);
    }

    #[test]
    fn a_closed_queue_refuses_frames_and_ends_consumers_once_drained() {
        gstreamer::init().expect("gst init");
        let q = FrameQueue::new(4);
        q.push(frame("a", 0));
        q.close();
        assert!(matches!(q.push(frame("a", 1)), Pushed::Closed(_)));
        assert_eq!(q.pop_batch(4, Duration::ZERO).map(|b| b.len()), Some(1));
        assert!(q.pop_batch(4, Duration::from_millis(1)).is_none());
    }

    #[test]
    fn a_blocking_queue_holds_the_producer_until_a_consumer_makes_room() {
        gstreamer::init().expect("gst init");
        let q = std::sync::Arc::new(FrameQueue::with_policy(1, WhenFull::Block));
        q.push(frame("a", 0));
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || matches!(q.push(frame("a", 1)), Pushed::Queued))
        };
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let batch = q.pop_batch(1, Duration::from_secs(30)).expect("open");
            seen.extend(batch.into_iter().map(|f| f.seq));
        }
        assert!(
            producer.join().expect("producer"),
            "second frame was not queued"
        );
        assert_eq!(seen, [0, 1], "nothing lost, order kept");
    }

    #[test]
    fn pop_batch_waits_for_a_producer_on_another_thread() {
        gstreamer::init().expect("gst init");
        let q = std::sync::Arc::new(FrameQueue::new(4));
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                q.push(frame("x", 7));
            })
        };
        let batch = q.pop_batch(1, Duration::from_secs(30)).expect("open");
        producer.join().expect("producer");
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].seq, 7);
    }
}
