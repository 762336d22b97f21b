//! Feeds one media's `appsrc` from a [`Clip`] in memory, looping forever with ever-increasing
//! timestamps; a stalling camera stops feeding after its limit.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::clip::Clip;

/// Per-connection feeding state (each client gets its own media, so its own feeder).
pub(crate) struct Feeder {
    clip: Arc<Clip>,
    next: usize,
    loop_offset: gst::ClockTime,
    /// Stream time of the frame the feeder started at, subtracted from every timestamp.
    start_base: gst::ClockTime,
    /// Stop feeding once the stream time reaches this (a stalled camera).
    stall_at: Option<gst::ClockTime>,
    stalled_logged: bool,
    mount: String,
}

impl Feeder {
    pub(crate) fn new(clip: Arc<Clip>, stall_at: Option<gst::ClockTime>, mount: String) -> Self {
        Feeder {
            clip,
            next: 0,
            loop_offset: gst::ClockTime::ZERO,
            start_base: gst::ClockTime::ZERO,
            stall_at,
            stalled_logged: false,
            mount,
        }
    }

    /// Starts the clip at frame `first` (modulo its length), re-timed to begin at zero:
    /// keyframes then come at another phase than those of a feeder that starts at 0.
    /// The first frames may be delta frames (clients join such a stream mid-GOP).
    pub(crate) fn starting_at(mut self, first: usize) -> Self {
        if let Some(frame) = self.clip.frames.get(first % self.clip.frames.len().max(1)) {
            self.next = first % self.clip.frames.len();
            self.start_base = frame.dts().or(frame.pts()).unwrap_or(gst::ClockTime::ZERO);
        }
        self
    }

    /// The `need-data` callback: push the next access unit, or nothing when stalled (the
    /// appsrc streaming thread then waits, the RTSP connection stays open and silent).
    pub(crate) fn need_data(&mut self, appsrc: &gst_app::AppSrc) {
        let Some(frame) = self.clip.frames.get(self.next) else {
            return;
        };
        let pts = frame
            .pts()
            .map(|p| (p + self.loop_offset).saturating_sub(self.start_base));
        if let (Some(limit), Some(pts)) = (self.stall_at, pts)
            && pts >= limit
        {
            if !self.stalled_logged {
                self.stalled_logged = true;
                tracing::debug!(mount = %self.mount, at = %pts, "simulated camera stalls");
            }
            return;
        }
        let mut buffer = frame.copy();
        {
            let b = buffer.make_mut();
            b.set_pts(pts);
            b.set_dts(
                frame
                    .dts()
                    .map(|d| (d + self.loop_offset).saturating_sub(self.start_base)),
            );
        }
        self.next += 1;
        if self.next == self.clip.frames.len() {
            self.next = 0;
            self.loop_offset += self.clip.duration;
        }
        if let Err(error) = appsrc.push_buffer(buffer) {
            // Flushing/shutting down: expected when the client goes away.
            tracing::trace!(mount = %self.mount, %error, "appsrc refused a buffer");
        }
    }
}

#[cfg(test)]
mod tests {
    use gstreamer::prelude::*;

    use super::*;

    /// Ten 40 ms frames, a keyframe every fifth (the test clips' shape, shortened).
    fn clip() -> Arc<Clip> {
        gst::init().expect("gstreamer");
        let frames = (0u64..10)
            .map(|i| {
                let mut buffer = gst::Buffer::from_slice(vec![i as u8]);
                let b = buffer.make_mut();
                b.set_pts(gst::ClockTime::from_mseconds(i * 40));
                b.set_dts(gst::ClockTime::from_mseconds(i * 40));
                if i % 5 != 0 {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
                buffer
            })
            .collect();
        Arc::new(Clip {
            path: "test".into(),
            caps: gst::Caps::new_empty_simple("video/x-h264"),
            frames,
            duration: gst::ClockTime::from_mseconds(400),
        })
    }

    /// (first byte, pts in ms, keyframe) of the next `n` buffers the feeder pushes.
    fn pushed(feeder: &mut Feeder, n: usize) -> Vec<(u8, u64, bool)> {
        let appsrc = gst_app::AppSrc::builder().build();
        let sink = gst_app::AppSink::builder().sync(false).build();
        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([appsrc.upcast_ref::<gst::Element>(), sink.upcast_ref()])
            .expect("add");
        appsrc.link(&sink).expect("link");
        pipeline.set_state(gst::State::Playing).expect("play");
        let out = (0..n)
            .map(|_| {
                feeder.need_data(&appsrc);
                let sample = sink
                    .try_pull_sample(gst::ClockTime::from_seconds(5))
                    .expect("a buffer");
                let buffer = sample.buffer().expect("buffer");
                let byte = buffer.map_readable().expect("map")[0];
                let pts = buffer.pts().expect("pts").mseconds();
                (
                    byte,
                    pts,
                    !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
                )
            })
            .collect();
        pipeline.set_state(gst::State::Null).expect("stop");
        out
    }

    #[test]
    fn a_feeder_started_mid_clip_is_retimed_from_zero_and_shifts_the_keyframe_phase() {
        let mut from_start = Feeder::new(clip(), None, "/shared/a".to_owned());
        let keyframes_at =
            |v: &[(u8, u64, bool)]| -> Vec<u64> { v.iter().filter(|f| f.2).map(|f| f.1).collect() };
        assert_eq!(keyframes_at(&pushed(&mut from_start, 12)), [0, 200, 400]);

        let mut shifted = Feeder::new(clip(), None, "/shared/b".to_owned()).starting_at(13);
        let frames = pushed(&mut shifted, 12);
        // Frame 3 of the clip first, at time zero; the loop continues seamlessly.
        assert_eq!(frames[0], (3, 0, false));
        assert_eq!(frames[7], (0, 280, true));
        assert_eq!(keyframes_at(&frames), [80, 280]);
    }
}
