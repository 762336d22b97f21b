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
            stall_at,
            stalled_logged: false,
            mount,
        }
    }

    /// The `need-data` callback: push the next access unit, or nothing when stalled (the
    /// appsrc streaming thread then waits, the RTSP connection stays open and silent).
    pub(crate) fn need_data(&mut self, appsrc: &gst_app::AppSrc) {
        let Some(frame) = self.clip.frames.get(self.next) else {
            return;
        };
        let pts = frame.pts().map(|p| p + self.loop_offset);
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
            b.set_dts(frame.dts().map(|d| d + self.loop_offset));
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
