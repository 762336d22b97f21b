//! The shared keyframe decoder pool of the `shared-decoder` backend.
//!
//! A few worker threads, each owning one GStreamer pipeline
//! ([`POOL_PIPELINE`]: `appsrc ! h264parse ! avdec_h264 ! videoconvert ! videoscale
//! add-borders ! capsfilter(RGB, analysis size) ! appsink`), decode the sampled keyframes
//! of every camera of the node. A job is one self-contained keyframe: an Annex B access
//! unit with the camera's SPS and PPS in front of its IDR slices (retina's
//! `FrameFormat::SIMPLE`), so whichever camera the previous job came from, the decoder
//! decodes this one with this camera's parameter sets (an IDR also empties the decoder's
//! reference pictures). Pictures of another size renegotiate the caps downstream.
//!
//! Queue policy: the jobs wait in one bounded queue shared by the workers
//! (`[ingest] decoder_queue_capacity`); when it is full a keyframe is evicted — that of the
//! camera served most recently (the oldest on a tie), so that under overload no camera
//! starves — and counted against its camera (`frames_dropped_total{reason="decoder_queue_full"}`).
//! Each worker's appsrc holds at most two jobs and blocks the worker beyond that, so the
//! only backlog is that queue. Frames leave through [`Taps::deliver`] (FrameQueue, drop
//! oldest) from the appsink callback; a frame is matched to its job by the timestamp
//! the worker gave the job, never by arrival order, so a decoder that holds a picture
//! back (stream with B-frames) cannot attach one camera's picture to another camera.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use parking_lot::{Condvar, Mutex};
use tokio_util::sync::CancellationToken;

use super::appsink::Taps;
use super::error::IngestError;
use crate::domain::{Frame, Letterbox};
use crate::obs::Metrics;

/// One pool worker's pipeline. `max-threads=1`: the pool is the parallelism, and
/// frame threading would hold pictures back by one frame per thread.
pub const POOL_PIPELINE: &str = "appsrc name=src format=time is-live=false block=true \
     max-buffers=2 max-bytes=0 \
     ! h264parse ! avdec_h264 name=decoder max-threads=1 \
     ! videoconvert ! videoscale add-borders=true \
     ! capsfilter name=caps ! appsink name=frames sync=false";

/// Stream-time step between two jobs of a worker (any increasing value would do).
const JOB_STEP: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// Jobs a worker keeps track of between its appsrc and its appsink.
const IN_FLIGHT_MAX: usize = 16;

/// One sampled keyframe of one camera, due for analysis.
pub(crate) struct Keyframe {
    pub taps: Arc<Taps>,
    /// Cancelled when the camera stops: its queued keyframes are skipped.
    pub cancel: CancellationToken,
    /// Annex B: SPS, PPS and the IDR's NAL units.
    pub data: Vec<u8>,
    /// When the last packet of this keyframe arrived.
    pub received_at: Instant,
    /// The camera's stream time of the keyframe.
    pub pts: Duration,
    /// The camera's sequence number of sampled frames.
    pub seq: u64,
}

/// The result of [`DecoderPool::submit`].
pub(crate) enum Submitted {
    Queued,
    /// Queued, and this older keyframe was evicted to make room.
    Evicted(Box<Keyframe>),
    /// The pool is shutting down.
    Closed,
}

struct JobQueue {
    inner: Mutex<Jobs>,
    ready: Condvar,
    capacity: usize,
}

struct Jobs {
    jobs: VecDeque<Keyframe>,
    closed: bool,
}

impl JobQueue {
    /// `None`: closed. `Some(None)`: nothing within `timeout`.
    fn pop(&self, timeout: Duration) -> Option<Option<Keyframe>> {
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock();
        loop {
            if let Some(job) = inner.jobs.pop_front() {
                return Some(Some(job));
            }
            if inner.closed {
                return None;
            }
            if self.ready.wait_until(&mut inner, deadline).timed_out() {
                return Some(inner.jobs.pop_front());
            }
        }
    }
}

/// The node's shared decoders.
pub(crate) struct DecoderPool {
    queue: Arc<JobQueue>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
}

impl DecoderPool {
    /// Builds `workers` decode pipelines (failing here if GStreamer lacks an element)
    /// and starts one thread for each.
    pub fn start(
        workers: usize,
        capacity: usize,
        size: (u32, u32),
        metrics: Arc<Metrics>,
    ) -> Result<Self, IngestError> {
        let queue = Arc::new(JobQueue {
            inner: Mutex::new(Jobs {
                jobs: VecDeque::with_capacity(capacity.min(4096)),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        });
        let mut handles = Vec::new();
        for index in 0..workers.max(1) {
            let decoder = Decoder::build(size, metrics.clone())?;
            let queue = queue.clone();
            let metrics = metrics.clone();
            let handle = std::thread::Builder::new()
                .name(format!("keyframe-decoder-{index}"))
                .spawn(move || work(decoder, &queue, size, &metrics))
                .map_err(|e| IngestError::Pool(format!("cannot start a decoder thread: {e}")))?;
            handles.push(handle);
        }
        Ok(Self {
            queue,
            workers: Mutex::new(handles),
            metrics,
        })
    }

    /// Queues a keyframe without blocking; a full queue evicts its oldest keyframe.
    pub fn submit(&self, job: Keyframe) -> Submitted {
        let mut inner = self.queue.inner.lock();
        if inner.closed {
            return Submitted::Closed;
        }
        let mut evicted = None;
        let mut job_opt = Some(job);
        if inner.jobs.len() >= self.queue.capacity {
            // Fair eviction: the keyframe of the camera served most recently goes (the
            // oldest of those on a tie), so that under overload no camera is starved
            // because its keyframes happen to arrive first in every burst.
            let served =
                |j: &Keyframe| j.taps.status.counters.last_frame_ms.load(Ordering::Relaxed);
            let victim = inner
                .jobs
                .iter()
                .enumerate()
                .max_by_key(|(i, j)| (served(j), std::cmp::Reverse(*i)))
                .map(|(i, j)| (i, served(j)));
            match (victim, &job_opt) {
                (Some((_, queued)), Some(new)) if served(new) > queued => {
                    evicted = job_opt.take();
                }
                (Some((i, _)), _) => evicted = inner.jobs.remove(i),
                _ => {}
            }
        }
        if let Some(job) = job_opt {
            inner.jobs.push_back(job);
        }
        let depth = inner.jobs.len();
        drop(inner);
        self.queue.ready.notify_one();
        self.metrics.decoder_queue_depth.set(depth as i64);
        match evicted {
            Some(old) => Submitted::Evicted(Box::new(old)),
            None => Submitted::Queued,
        }
    }

    /// Stops the workers once the queued keyframes are decoded.
    pub fn stop(&self) {
        self.queue.inner.lock().closed = true;
        self.queue.ready.notify_all();
        let handles = std::mem::take(&mut *self.workers.lock());
        for handle in handles {
            if handle.join().is_err() {
                tracing::error!("a keyframe decoder thread panicked");
            }
        }
    }
}

impl Drop for DecoderPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A job between appsrc and appsink.
struct Pending {
    pts: gst::ClockTime,
    job: Keyframe,
    entered: Instant,
}

/// One worker's pipeline.
struct Decoder {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    in_flight: Arc<Mutex<VecDeque<Pending>>>,
    next_pts: gst::ClockTime,
}

impl Drop for Decoder {
    fn drop(&mut self) {
        if let Err(error) = self.pipeline.set_state(gst::State::Null) {
            tracing::error!(%error, "could not stop a pool decoder");
        }
    }
}

fn pool_error(message: impl std::fmt::Display) -> IngestError {
    IngestError::Pool(message.to_string())
}

impl Decoder {
    fn build(size: (u32, u32), metrics: Arc<Metrics>) -> Result<Self, IngestError> {
        let pipeline = gst::parse::launch(POOL_PIPELINE)
            .map_err(pool_error)?
            .downcast::<gst::Pipeline>()
            .map_err(|_| pool_error("the pool description is not a pipeline"))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| pool_error(format!("no element `{name}`")))
        };
        let appsrc = by_name("src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| pool_error("`src` is not an appsrc"))?;
        let appsink = by_name("frames")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| pool_error("`frames` is not an appsink"))?;
        let decoder = by_name("decoder")?;
        by_name("caps")?.set_property(
            "caps",
            gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .field("width", size.0 as i32)
                .field("height", size.1 as i32)
                .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
                .build(),
        );
        appsrc.set_caps(Some(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        ));
        // The decoded picture's size, from the decoder's output caps. Caps events and
        // buffers travel in order on the one streaming thread, so the size read in the
        // appsink callback is that of the picture being delivered.
        let source: Arc<Mutex<Option<(u32, u32)>>> = Arc::default();
        if let Some(pad) = decoder.static_pad("src") {
            let source = source.clone();
            pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::EventView::Caps(caps)) = info.event().map(|e| e.view())
                    && let Ok(video) = gst_video::VideoInfo::from_caps(caps.caps())
                {
                    *source.lock() = Some((video.width(), video.height()));
                }
                gst::PadProbeReturn::Ok
            });
        }
        let in_flight: Arc<Mutex<VecDeque<Pending>>> = Arc::default();
        {
            let in_flight = in_flight.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let source = *source.lock();
                        deliver(&in_flight, &metrics, source, size, &sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| pool_error(format!("the pool decoder does not start: {e}")))?;
        Ok(Self {
            pipeline,
            appsrc,
            in_flight,
            next_pts: gst::ClockTime::ZERO,
        })
    }

    /// Hands one keyframe to the pipeline; blocks while two are already waiting in it.
    fn decode(&mut self, mut job: Keyframe) -> Result<(), gst::FlowError> {
        let pts = self.next_pts;
        self.next_pts += JOB_STEP;
        // The keyframe's bytes move into the buffer: no copy.
        let bytes = std::mem::take(&mut job.data);
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(pts);
            b.set_dts(pts);
            b.set_duration(JOB_STEP);
        }
        {
            let mut in_flight = self.in_flight.lock();
            if in_flight.len() == IN_FLIGHT_MAX {
                in_flight.pop_front();
            }
            in_flight.push_back(Pending {
                pts,
                job,
                entered: Instant::now(),
            });
        }
        self.appsrc.push_buffer(buffer).map(|_| ())
    }

    /// The first error on the pipeline's bus, if any.
    fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let message = bus.pop_filtered(&[gst::MessageType::Error])?;
        match message.view() {
            gst::MessageView::Error(e) => Some(format!(
                "{}: {}",
                e.src().map(|s| s.path_string()).unwrap_or_default(),
                e.error()
            )),
            _ => None,
        }
    }

    /// Jobs that never came out (the decoder failed on them or was rebuilt).
    fn abandon_in_flight(&self, metrics: &Metrics) {
        let abandoned = self.in_flight.lock().drain(..).count();
        metrics.decoder_failures.inc_by(abandoned as u64);
    }
}

fn work(mut decoder: Decoder, queue: &JobQueue, size: (u32, u32), metrics: &Arc<Metrics>) {
    while let Some(next) = queue.pop(Duration::from_millis(500)) {
        if let Some(job) = next {
            metrics
                .decoder_queue_depth
                .set(queue.inner.lock().jobs.len() as i64);
            if !job.cancel.is_cancelled()
                && let Err(flow) = decoder.decode(job)
            {
                tracing::warn!(?flow, "pool decoder refused a keyframe");
            }
        }
        if let Some(error) = decoder.error() {
            tracing::error!(%error, "pool decoder failed: rebuilding it");
            decoder.abandon_in_flight(metrics);
            drop(decoder);
            decoder = loop {
                match Decoder::build(size, metrics.clone()) {
                    Ok(d) => break d,
                    Err(error) => {
                        tracing::error!(%error, "cannot rebuild a pool decoder; retrying in 1 s");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            };
        }
    }
    // Closed: let what was pushed come out, then stop.
    if decoder.appsrc.end_of_stream().is_ok()
        && let Some(bus) = decoder.pipeline.bus()
    {
        let _eos = bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(5),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
    }
}

/// Runs on the worker pipeline's streaming thread: matches the picture to its job by
/// timestamp and hands the frame to the camera's taps.
fn deliver(
    in_flight: &Mutex<VecDeque<Pending>>,
    metrics: &Metrics,
    source: Option<(u32, u32)>,
    size: (u32, u32),
    sample: &gst::Sample,
) {
    let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps()) else {
        return;
    };
    let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
        return;
    };
    let Some(pts) = buffer.pts() else {
        return;
    };
    let pending = {
        let mut in_flight = in_flight.lock();
        let Some(i) = in_flight.iter().position(|p| p.pts == pts) else {
            return;
        };
        // Jobs pushed before this one will not come out any more: the decoder gave up
        // on them (undecodable data).
        let failed = in_flight.drain(..i).count();
        if failed > 0 {
            metrics.decoder_failures.inc_by(failed as u64);
        }
        in_flight.pop_front()
    };
    let Some(Pending { job, entered, .. }) = pending else {
        return;
    };
    if job.cancel.is_cancelled() {
        return;
    }
    let decode_latency = entered.elapsed();
    metrics
        .decode_latency_seconds
        .observe(decode_latency.as_secs_f64());
    let source = source.unwrap_or(size);
    let frame = Frame {
        camera: job.taps.camera.clone(),
        seq: job.seq,
        pts: Some(job.pts),
        captured_at: SystemTime::now(),
        width: info.width(),
        height: info.height(),
        stride: info.stride()[0] as usize,
        letterbox: Letterbox::fit(source, size),
        decode_latency: Some(decode_latency),
        received_at: job.received_at,
        buffer,
    };
    job.taps.deliver(frame);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CameraId;
    use crate::domain::Reason;
    use crate::ingest::status::CameraStatus;
    use crate::queue::DropLedger;
    use crate::queue::FrameQueue;
    use crate::sim::clip::Clip;

    fn keyframes(clip: &Clip) -> Vec<Vec<u8>> {
        clip.frames
            .iter()
            .filter(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
            .map(|b| b.map_readable().expect("readable").as_slice().to_vec())
            .collect()
    }

    struct Bench {
        metrics: Arc<Metrics>,
        queue: Arc<FrameQueue>,
    }

    impl Bench {
        fn new() -> Self {
            Self {
                metrics: Arc::new(Metrics::new()),
                queue: Arc::new(FrameQueue::new(1024)),
            }
        }

        fn taps(&self, camera: &str) -> Arc<Taps> {
            let id = CameraId::new(camera);
            Arc::new(Taps {
                camera: id.clone(),
                status: Arc::new(CameraStatus::new(Reason::Started)),
                camera_metrics: self.metrics.camera(&id),
                metrics: self.metrics.clone(),
                ledger: Arc::new(DropLedger::new(self.metrics.clone())),
                queue: self.queue.clone(),
                frame_arrived: Arc::default(),
            })
        }

        /// Decodes `jobs` one at a time through a one-worker pool; the frames delivered.
        fn run(&self, jobs: Vec<(Arc<Taps>, Vec<u8>)>, expected: usize) -> Vec<Frame> {
            let pool = DecoderPool::start(1, 64, (320, 320), self.metrics.clone()).expect("pool");
            let cancel = CancellationToken::new();
            for (seq, (taps, data)) in jobs.into_iter().enumerate() {
                let queued = pool.submit(Keyframe {
                    taps,
                    cancel: cancel.clone(),
                    data,
                    received_at: Instant::now(),
                    pts: Duration::from_secs(seq as u64),
                    seq: seq as u64,
                });
                assert!(matches!(queued, Submitted::Queued));
            }
            let mut frames = Vec::new();
            while frames.len() < expected {
                let batch = self
                    .queue
                    .pop_batch(64, Duration::from_secs(30))
                    .expect("open");
                if batch.is_empty() {
                    break; // bounded wait: the assertion below reports what is missing
                }
                frames.extend(batch);
            }
            pool.stop();
            frames
        }
    }

    fn pixels(frame: &Frame) -> Vec<u8> {
        frame
            .buffer
            .map_readable()
            .expect("readable")
            .as_slice()
            .to_vec()
    }

    #[test]
    fn keyframes_of_cameras_with_different_parameter_sets_decode_as_if_each_had_its_own_decoder() {
        gst::init().expect("gst init");
        let small = Clip::load(&crate::test_util::media("synthetic-360p.mp4")).expect("360p");
        let large = Clip::load(&crate::test_util::media("synthetic-720p.mp4")).expect("720p");
        let corrupt = small.corrupted(7).expect("corrupt twin");
        let (small_keys, large_keys) = (keyframes(&small), keyframes(&large));
        let corrupt_keys = keyframes(&corrupt);
        assert!(small_keys.len() >= 3 && large_keys.len() >= 3);

        // Reference: camera A's keyframes alone in a decoder.
        let alone = Bench::new();
        let a = alone.taps("a");
        let reference = alone.run(
            small_keys.iter().map(|k| (a.clone(), k.clone())).collect(),
            small_keys.len(),
        );
        assert_eq!(reference.len(), small_keys.len());

        // Mixed: A, a corrupt keyframe of C, B (another size, other SPS/PPS), A, …
        let mixed = Bench::new();
        let (a, b, c) = (mixed.taps("a"), mixed.taps("b"), mixed.taps("c"));
        let mut jobs = Vec::new();
        for i in 0..small_keys.len() {
            jobs.push((a.clone(), small_keys[i].clone()));
            jobs.push((c.clone(), corrupt_keys[i % corrupt_keys.len()].clone()));
            jobs.push((b.clone(), large_keys[i % large_keys.len()].clone()));
        }
        let frames = mixed.run(jobs, 2 * small_keys.len());
        let of = |camera: &str| -> Vec<&Frame> {
            frames
                .iter()
                .filter(|f| f.camera.as_str() == camera)
                .collect()
        };
        assert!(of("c").is_empty(), "a corrupt keyframe produced a frame");
        assert_eq!(of("a").len(), small_keys.len());
        assert_eq!(of("b").len(), small_keys.len());
        for frame in of("b") {
            assert_eq!(
                (frame.letterbox.source_width, frame.letterbox.source_height),
                (1280, 720)
            );
        }
        for (frame, alone) in of("a").into_iter().zip(&reference) {
            assert_eq!(
                (frame.letterbox.source_width, frame.letterbox.source_height),
                (640, 360)
            );
            assert_eq!(
                frame.seq % 3,
                0,
                "A's jobs are every third: seq {}",
                frame.seq
            );
            assert!(
                pixels(frame) == pixels(alone),
                "camera A's keyframe {} decoded differently next to other cameras",
                frame.seq / 3
            );
        }
    }

    #[test]
    fn a_full_decoder_queue_evicts_the_oldest_keyframe() {
        gst::init().expect("gst init");
        let bench = Bench::new();
        let taps = bench.taps("a");
        let pool = DecoderPool {
            queue: Arc::new(JobQueue {
                inner: Mutex::new(Jobs {
                    jobs: VecDeque::new(),
                    closed: false,
                }),
                ready: Condvar::new(),
                capacity: 2,
            }),
            workers: Mutex::new(Vec::new()), // no worker: nothing is taken out
            metrics: bench.metrics.clone(),
        };
        let job = |seq: u64| Keyframe {
            taps: taps.clone(),
            cancel: CancellationToken::new(),
            data: vec![0, 0, 0, 1],
            received_at: Instant::now(),
            pts: Duration::ZERO,
            seq,
        };
        assert!(matches!(pool.submit(job(0)), Submitted::Queued));
        assert!(matches!(pool.submit(job(1)), Submitted::Queued));
        match pool.submit(job(2)) {
            Submitted::Evicted(old) => assert_eq!(old.seq, 0),
            _ => panic!("expected the oldest keyframe to be evicted"),
        }
        pool.stop();
        assert!(matches!(pool.submit(job(3)), Submitted::Closed));
    }

    #[test]
    fn a_full_decoder_queue_evicts_the_keyframe_of_the_camera_served_most_recently() {
        gst::init().expect("gst init");
        let bench = Bench::new();
        let (starved, served) = (bench.taps("starved"), bench.taps("served"));
        served
            .status
            .counters
            .last_frame_ms
            .store(crate::ingest::status::now_ms(), Ordering::Relaxed);
        let pool = DecoderPool {
            queue: Arc::new(JobQueue {
                inner: Mutex::new(Jobs {
                    jobs: VecDeque::new(),
                    closed: false,
                }),
                ready: Condvar::new(),
                capacity: 2,
            }),
            workers: Mutex::new(Vec::new()),
            metrics: bench.metrics.clone(),
        };
        let job = |taps: &Arc<Taps>, seq: u64| Keyframe {
            taps: taps.clone(),
            cancel: CancellationToken::new(),
            data: vec![0, 0, 0, 1],
            received_at: Instant::now(),
            pts: Duration::ZERO,
            seq,
        };
        // The starved camera's keyframe is the oldest, yet the served camera's goes.
        assert!(matches!(pool.submit(job(&starved, 0)), Submitted::Queued));
        assert!(matches!(pool.submit(job(&served, 1)), Submitted::Queued));
        match pool.submit(job(&starved, 2)) {
            Submitted::Evicted(old) => assert_eq!(old.taps.camera.as_str(), "served"),
            _ => panic!("expected an eviction"),
        }
        // A new keyframe of a camera served more recently than anything queued is dropped itself.
        match pool.submit(job(&served, 3)) {
            Submitted::Evicted(old) => assert_eq!(old.seq, 3),
            _ => panic!("expected an eviction"),
        }
        pool.stop();
    }
}
