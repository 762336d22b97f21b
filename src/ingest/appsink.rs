//! Probes and appsink callbacks: the only code that runs on GStreamer's
//! streaming threads. None of it blocks: counters are atomics and the frame
//! goes into the FrameQueue with a non-blocking push.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::pipeline::Built;
use super::status::{CameraStatus, now_ms};
use crate::config::{CameraConfig, Sampling, SamplingMode};
use crate::domain::{CameraId, Frame, Letterbox};
use crate::obs::{CameraMetrics, Metrics};
use crate::queue::{DropLedger, FrameQueue, Pushed};

/// What the streaming-thread code of one camera shares.
pub(crate) struct Taps {
    pub camera: CameraId,
    pub status: Arc<CameraStatus>,
    pub camera_metrics: CameraMetrics,
    pub metrics: Arc<Metrics>,
    pub ledger: Arc<DropLedger>,
    pub queue: Arc<FrameQueue>,
    /// Woken on every delivered frame (the supervisor waits on it for the first).
    pub frame_arrived: Arc<Notify>,
}

impl Taps {
    /// Counts a sampled frame and hands it to the FrameQueue without blocking: the
    /// last step of both backends.
    pub(super) fn deliver(&self, frame: Frame) {
        let counters = &self.status.counters;
        counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
        counters.last_frame_ms.store(now_ms(), Ordering::Relaxed);
        self.camera_metrics.frames_decoded.inc();
        self.metrics
            .keyframe_to_frame_seconds
            .observe(frame.received_at.elapsed().as_secs_f64());
        match self.queue.push(frame) {
            Pushed::Queued => {}
            Pushed::Evicted(old) => {
                self.ledger
                    .dropped(&old.camera, crate::obs::DROP_QUEUE_FULL);
                tracing::debug!(camera = %old.camera, "frame queue full: dropped the oldest frame");
            }
            Pushed::Closed(_) => {}
        }
        self.metrics.frame_queue_depth.set(self.queue.len() as i64);
        self.frame_arrived.notify_one();
    }
}

/// Lets through at most one buffer per interval of stream time; the interval is the
/// camera's, or its quiet-hours one while those last (by the wall clock).
pub(super) struct IntervalGate {
    sampling: Sampling,
    next_due: Mutex<Option<Duration>>,
}

impl IntervalGate {
    pub(super) fn new(sampling: Sampling) -> Self {
        Self {
            sampling,
            next_due: Mutex::new(None),
        }
    }

    /// Whether the buffer at stream time `t` is due, with the interval in effect now.
    pub(super) fn admit(&self, t: Duration) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.admit_with(t, self.sampling.interval_at(now))
    }

    /// Whether the buffer at stream time `t` is due for analysis. Due times
    /// follow a fixed grid (`interval` apart), so the rate does not drift; a
    /// little slack (a twentieth of the interval, at most 50 ms) keeps timestamp
    /// jitter from skipping a whole GOP when keyframes come exactly an interval
    /// apart. A gap or a jump back in stream time restarts the grid.
    pub(super) fn admit_with(&self, t: Duration, interval: Duration) -> bool {
        let slack = (interval / 20).min(Duration::from_millis(50));
        let mut next_due = self.next_due.lock();
        match *next_due {
            // Early, but not before the previous grid point: skip it. (Anything
            // earlier than that means stream time went back: restart the grid.)
            Some(due) if t + slack < due && t + interval + slack >= due => false,
            Some(due) if t + slack >= due && t < due + interval => {
                *next_due = Some(due + interval);
                true
            }
            _ => {
                *next_due = Some(t + interval);
                true
            }
        }
    }
}

/// Decoder-entry instants by PTS, to measure decode latency.
#[derive(Default)]
struct InFlight {
    entries: Mutex<VecDeque<(Option<gst::ClockTime>, Instant)>>,
}

const IN_FLIGHT_MAX: usize = 64;

impl InFlight {
    fn enter(&self, pts: Option<gst::ClockTime>) {
        let mut e = self.entries.lock();
        if e.len() == IN_FLIGHT_MAX {
            e.pop_front();
        }
        e.push_back((pts, Instant::now()));
    }

    /// The instant the unit with `pts` entered the decoder.
    fn leave(&self, pts: Option<gst::ClockTime>) -> Option<Instant> {
        let mut e = self.entries.lock();
        let i = e.iter().position(|(p, _)| *p == pts)?;
        let (_, at) = e.remove(i)?;
        // Anything older than the matched frame will never come out.
        e.drain(..i);
        Some(at)
    }
}

/// Installs the counters, the sampling gate and the appsink callbacks.
pub(super) fn install(built: &Built, camera: &CameraConfig, analysis_size: (u32, u32), taps: Taps) {
    let taps = Arc::new(taps);
    let in_flight = Arc::new(InFlight::default());
    let gate = Arc::new(IntervalGate::new(camera.sampling));

    // Units received: every encoded unit reaching the gate (before delta units are dropped).
    let count_at = built.gate.as_ref().unwrap_or(&built.sampler);
    if let Some(pad) = count_at.static_pad("sink") {
        let taps = taps.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            taps.status
                .counters
                .units_received
                .fetch_add(1, Ordering::Relaxed);
            taps.status
                .counters
                .last_unit_ms
                .store(now_ms(), Ordering::Relaxed);
            taps.camera_metrics.frames_received.inc();
            gst::PadProbeReturn::Ok
        });
    }

    // The analysis interval: before the decoder when only keyframes are decoded,
    // after it when every frame is.
    let interval_at = match (camera.sampling.mode, &built.gate) {
        (SamplingMode::Keyframes, Some(gate)) => gate,
        _ => &built.sampler,
    };
    if let Some(pad) = interval_at.static_pad("src") {
        let gate = gate.clone();
        let in_flight = in_flight.clone();
        let started = Instant::now();
        let keyframe_gate = camera.sampling.mode == SamplingMode::Keyframes;
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let t = buffer
                .pts()
                .map_or_else(|| started.elapsed(), |p| Duration::from_nanos(p.nseconds()));
            if !gate.admit(t) {
                // Handled: the bindings consume the buffer (Drop would print a
                // GStreamer-CRITICAL per buffer on core 1.22).
                return gst::PadProbeReturn::Handled;
            }
            if keyframe_gate {
                in_flight.enter(buffer.pts());
            }
            gst::PadProbeReturn::Ok
        });
    }
    if camera.sampling.mode == SamplingMode::All
        && let Some(pad) = built.gate.as_ref().and_then(|g| g.static_pad("src"))
    {
        let in_flight = in_flight.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(buffer) = info.buffer() {
                in_flight.enter(buffer.pts());
            }
            gst::PadProbeReturn::Ok
        });
    }

    // The source picture size, from the decoder's output caps: with the analysis
    // size it gives the letterbox that maps boxes back to source pixels.
    let letterbox: Arc<Mutex<Option<Letterbox>>> = Arc::default();
    if let Some(pad) = built.sampler.static_pad("sink") {
        let letterbox = letterbox.clone();
        let target = analysis_size;
        pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::EventView::Caps(caps)) = info.event().map(|e| e.view())
                && let Ok(source) = gst_video::VideoInfo::from_caps(caps.caps())
            {
                *letterbox.lock() = Some(Letterbox::fit((source.width(), source.height()), target));
            }
            gst::PadProbeReturn::Ok
        });
    }

    let seq = Arc::new(AtomicU64::new(0));
    built.appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let source = *letterbox.lock();
                deliver(&taps, &in_flight, &seq, source, &sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn deliver(
    taps: &Taps,
    in_flight: &InFlight,
    seq: &AtomicU64,
    letterbox: Option<Letterbox>,
    sample: &gst::Sample,
) {
    let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps()) else {
        return;
    };
    let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
        return;
    };
    let entered = in_flight.leave(buffer.pts());
    let decode_latency = entered.map(|at| at.elapsed());
    if let Some(latency) = decode_latency {
        taps.metrics
            .decode_latency_seconds
            .observe(latency.as_secs_f64());
    }
    let frame = Frame {
        camera: taps.camera.clone(),
        seq: seq.fetch_add(1, Ordering::Relaxed),
        pts: buffer.pts().map(|p| Duration::from_nanos(p.nseconds())),
        captured_at: SystemTime::now(),
        width: info.width(),
        height: info.height(),
        stride: info.stride()[0] as usize,
        letterbox: letterbox.unwrap_or_else(|| {
            Letterbox::fit((info.width(), info.height()), (info.width(), info.height()))
        }),
        decode_latency,
        received_at: entered.unwrap_or_else(Instant::now),
        buffer,
    };
    taps.deliver(frame);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuietHours;
    use crate::domain::NightHours;

    fn gate_every(interval: Duration) -> IntervalGate {
        IntervalGate::new(Sampling {
            interval,
            ..Sampling::default()
        })
    }

    #[test]
    fn quiet_hours_lengthen_the_interval_only_while_they_last() {
        let sampling = Sampling {
            interval: Duration::from_secs(2),
            quiet: Some(QuietHours {
                hours: NightHours {
                    start_hour: 22,
                    end_hour: 6,
                    utc_offset_minutes: 300,
                },
                interval: Duration::from_secs(10),
            }),
            ..Sampling::default()
        };
        let at_local = |h: u64| Duration::from_secs(86_400 * 20_000 + h * 3600 - 5 * 3600);
        assert_eq!(sampling.interval_at(at_local(23)), Duration::from_secs(10));
        assert_eq!(sampling.interval_at(at_local(3)), Duration::from_secs(10));
        assert_eq!(sampling.interval_at(at_local(6)), Duration::from_secs(2));
        assert_eq!(sampling.interval_at(at_local(14)), Duration::from_secs(2));
        assert_eq!(sampling.peak_interval(), Duration::from_secs(2));
        assert_eq!(sampling.slowest_interval(), Duration::from_secs(10));

        // The gate follows: every 2 s by day, every 10 s by night, on the same stream.
        let gate = IntervalGate::new(sampling);
        let day = (0..100)
            .filter(|i| gate.admit_with(Duration::from_millis(i * 200), Duration::from_secs(2)))
            .count();
        let night = (100..200)
            .filter(|i| gate.admit_with(Duration::from_millis(i * 200), Duration::from_secs(10)))
            .count();
        assert_eq!((day, night), (10, 2));
    }

    #[test]
    fn the_interval_gate_admits_one_unit_per_interval_of_stream_time() {
        let gate = gate_every(Duration::from_secs(2));
        let admitted: Vec<u64> = (0..50)
            .map(|i| i * 200) // a unit every 200 ms for 10 s
            .filter(|ms| gate.admit(Duration::from_millis(*ms)))
            .collect();
        assert_eq!(admitted, [0, 2000, 4000, 6000, 8000]);
    }

    #[test]
    fn the_interval_gate_tolerates_jitter_on_keyframes_exactly_one_interval_apart() {
        let gate = gate_every(Duration::from_secs(2));
        let times = [0, 1999, 3998, 6001];
        let admitted = times
            .iter()
            .filter(|ms| gate.admit(Duration::from_millis(**ms)))
            .count();
        assert_eq!(admitted, 4);
    }

    #[test]
    fn the_interval_gate_keeps_its_rate_at_25_fps() {
        let gate = gate_every(Duration::from_secs(2));
        let admitted = (0..25 * 59)
            .filter(|i| gate.admit(Duration::from_millis(i * 40)))
            .count();
        assert_eq!(admitted, 30, "one frame per 2 s: 0, 2, …, 58 s");
    }

    #[test]
    fn the_interval_gate_keeps_its_rate_when_frames_do_not_fall_on_the_grid() {
        // Live RTSP: the first frame arrives at an arbitrary offset (here 58.7 ms),
        // so a frame just inside the slack is admitted and the next one must not be.
        let gate = gate_every(Duration::from_secs(2));
        let admitted: Vec<u64> = (0..495) // up to 19.8 s
            .map(|i| 58_700 + i * 40_000) // microseconds
            .filter(|us| gate.admit(Duration::from_micros(*us)))
            .collect();
        assert_eq!(admitted.len(), 10, "{admitted:?}");
    }

    #[test]
    fn an_interval_of_zero_admits_every_frame() {
        let gate = gate_every(Duration::ZERO);
        assert!((0..100).all(|i| gate.admit(Duration::from_millis(i * 40))));
    }

    #[test]
    fn the_interval_gate_restarts_when_stream_time_jumps_back() {
        let gate = gate_every(Duration::from_secs(2));
        assert!(gate.admit(Duration::from_secs(100)));
        assert!(gate.admit(Duration::from_secs(0)));
    }
}
