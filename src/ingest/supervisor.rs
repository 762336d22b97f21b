//! One `CameraSupervisor` per camera: builds its pipeline, watches its bus and
//! its frame counters, and reconnects with jittered exponential backoff.
//!
//! States: connecting → streaming → (stalled →) backing off → connecting …;
//! failed for what retrying cannot fix (wrong credentials, no such stream,
//! a pipeline that cannot be built). Connection attempts hold a permit of the
//! node-wide connect semaphore until the first frame arrives or the attempt
//! fails, so a city's worth of cameras coming back after a network cut do not
//! storm the network.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::appsink::{self, Taps};
use super::backoff::Backoff;
use super::pipeline::{self, Built};
use super::status::{CameraStatus, now_ms};
use crate::config::CameraConfig;
use crate::domain::{Reason, State};
use crate::obs::CameraMetrics;

pub(super) enum Outcome {
    Cancelled,
    /// Try again after a backoff; `streamed` says whether frames had flowed.
    Retry {
        reason: Reason,
        streamed: bool,
    },
    /// Retrying will not help.
    Fatal(Reason),
}

pub(super) struct CameraSupervisor {
    pub camera: CameraConfig,
    pub shared: Arc<Shared>,
    pub status: Arc<CameraStatus>,
    pub metrics: CameraMetrics,
    pub cancel: CancellationToken,
}

impl CameraSupervisor {
    pub(super) fn set(&self, state: State, reason: Reason) {
        let previous = self.status.set(state, reason.clone());
        self.shared
            .metrics
            .camera_state_changed(Some(previous), Some(state));
        match state {
            State::Failed | State::Stalled => {
                tracing::warn!(camera = %self.camera.id, state = state.as_str(), %reason, "camera state")
            }
            _ => {
                tracing::debug!(camera = %self.camera.id, state = state.as_str(), %reason, "camera state")
            }
        }
    }

    pub async fn run(self) {
        self.shared
            .metrics
            .camera_state_changed(None, Some(State::Connecting));
        let settings = &self.shared.settings;
        let mut backoff = Backoff::new(settings.backoff_initial, settings.backoff_max);
        // The status starts as connecting, with the reason the camera was started for.
        let mut retry_reason: Option<Reason> = None;
        loop {
            if let Some(reason) = retry_reason.take() {
                self.status
                    .counters
                    .reconnects
                    .fetch_add(1, Ordering::Relaxed);
                self.metrics.reconnects.inc();
                self.set(State::Connecting, reason);
            }
            self.status.note_attempt();
            let permit = tokio::select! {
                permit = self.shared.connect_slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break, // the node is shutting down
                },
                () = self.cancel.cancelled() => break,
            };
            match self.attempt(permit).await {
                Outcome::Cancelled => break,
                Outcome::Fatal(why) => {
                    self.set(State::Failed, why);
                    self.cancel.cancelled().await;
                    break;
                }
                Outcome::Retry {
                    reason: why,
                    streamed,
                } => {
                    if streamed {
                        backoff.reset();
                        self.status.reset_attempts();
                    }
                    let delay = backoff.next_delay(&mut rand::rng());
                    self.set(State::BackingOff, why.clone());
                    retry_reason = Some(why);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.cancel.cancelled() => break,
                    }
                }
            }
        }
        let last = self.status.set(State::Failed, Reason::Stopped);
        self.shared.metrics.camera_state_changed(Some(last), None);
    }

    /// The taps through which this camera's frames leave.
    pub(super) fn taps(&self, frame_arrived: Arc<Notify>) -> Taps {
        Taps {
            camera: self.camera.id.clone(),
            status: self.status.clone(),
            camera_metrics: self.metrics.clone(),
            metrics: self.shared.metrics.clone(),
            ledger: self.shared.ledger.clone(),
            queue: self.shared.queue.clone(),
            frame_arrived,
        }
    }

    async fn attempt(&self, permit: OwnedSemaphorePermit) -> Outcome {
        if let Some(pool) = self.shared.pool_for(&self.camera) {
            return self.attempt_shared(permit, pool).await;
        }
        let shared = &self.shared;
        let built = match pipeline::build(
            &shared.templates,
            &self.camera,
            &shared.params,
            shared.settings.connect_timeout,
        ) {
            Ok(built) => built,
            Err(error) => return Outcome::Fatal(Reason::Pipeline(error.to_string())),
        };
        let frame_arrived = Arc::new(Notify::new());
        appsink::install(
            &built,
            &self.camera,
            (shared.params.width, shared.params.height),
            self.taps(frame_arrived.clone()),
        );
        let outcome = self.watch(&built, permit, &frame_arrived).await;
        teardown(built).await;
        outcome
    }

    async fn watch(
        &self,
        built: &Built,
        permit: OwnedSemaphorePermit,
        frame_arrived: &Notify,
    ) -> Outcome {
        let Some(bus) = built.pipeline.bus() else {
            return Outcome::Fatal(Reason::Pipeline("pipeline has no bus".to_owned()));
        };
        let mut messages = bus.stream();
        if let Err(error) = built.pipeline.set_state(gst::State::Playing) {
            // The reason is usually on the bus; take it from there if it is.
            let reason = bus
                .pop_filtered(&[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => Some(classify_error(e, false)),
                    _ => None,
                })
                .unwrap_or(Outcome::Retry {
                    reason: Reason::ConnectionFailed(error.to_string()),
                    streamed: false,
                });
            return reason;
        }
        let mut watchdog = self.watchdog(permit);
        let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Outcome::Cancelled,
                message = messages.next() => {
                    let Some(message) = message else {
                        return Outcome::Retry { reason: Reason::Pipeline("bus closed".to_owned()), streamed: watchdog.streaming };
                    };
                    match message.view() {
                        gst::MessageView::Error(e) => {
                            tracing::debug!(
                                camera = %self.camera.id,
                                element = %e.src().map(|s| s.path_string()).unwrap_or_default(),
                                error = %e.error(),
                                debug = ?e.debug(),
                                "pipeline error"
                            );
                            return classify_error(e, watchdog.streaming);
                        }
                        gst::MessageView::Eos(_) => {
                            return Outcome::Retry { reason: Reason::EndOfStream, streamed: watchdog.streaming };
                        }
                        gst::MessageView::Warning(w) => {
                            tracing::debug!(
                                camera = %self.camera.id,
                                element = %w.src().map(|s| s.path_string()).unwrap_or_default(),
                                warning = %w.error(),
                                "pipeline warning"
                            );
                        }
                        _ => {}
                    }
                }
                () = frame_arrived.notified(), if !watchdog.streaming => self.first_frame(&mut watchdog),
                _ = tick.tick() => {
                    if let Some(outcome) = self.check(&mut watchdog) {
                        return outcome;
                    }
                }
            }
        }
    }

    /// Starts watching a connection attempt that holds `permit`.
    pub(super) fn watchdog(&self, permit: OwnedSemaphorePermit) -> Watchdog {
        let stall = self.shared.settings.stall_timeout;
        Watchdog {
            frames_at_start: self.status.counters.frames_decoded.load(Ordering::Relaxed),
            drops_seen: self.status.counters.frames_dropped.load(Ordering::Relaxed),
            overloaded_at: None,
            started: Instant::now(),
            permit: Some(permit),
            streaming: false,
            stall,
            // A stream that delivers units but no decodable frame for this long is corrupt.
            undecodable_after: stall.max(self.camera.sampling.slowest_interval() * 3),
        }
    }

    /// The first sampled frame arrived: streaming, and the connect permit goes back.
    pub(super) fn first_frame(&self, watchdog: &mut Watchdog) {
        watchdog.streaming = true;
        watchdog.permit.take();
        self.set(State::Streaming, Reason::FirstFrame);
    }

    /// The periodic check: no frame within the connect timeout, no data (stall), or
    /// data but nothing decodes (corrupt). `Some` ends the attempt.
    pub(super) fn check(&self, watchdog: &mut Watchdog) -> Option<Outcome> {
        let settings = &self.shared.settings;
        let counters = &self.status.counters;
        let now = now_ms();
        let stall = watchdog.stall;
        let undecodable_after = watchdog.undecodable_after;
        // Frames of this camera dropped in our own queues: the node is short of decode
        // capacity. That is not the camera's fault and reconnecting would not help.
        let drops = counters.frames_dropped.load(Ordering::Relaxed);
        if drops > watchdog.drops_seen {
            let first = watchdog.overloaded_at.is_none();
            watchdog.drops_seen = drops;
            watchdog.overloaded_at = Some(Instant::now());
            if first && !watchdog.streaming {
                watchdog.permit.take(); // connected: let other cameras connect meanwhile
                self.set(
                    State::Connecting,
                    Reason::Overloaded {
                        frames_dropped: drops,
                    },
                );
            }
        }
        let overloaded = watchdog
            .overloaded_at
            .is_some_and(|at| at.elapsed() <= undecodable_after);
        if overloaded && recent(counters.last_unit_ms.load(Ordering::Relaxed), now, stall) {
            if !watchdog.streaming
                && counters.frames_decoded.load(Ordering::Relaxed) > watchdog.frames_at_start
            {
                self.first_frame(watchdog);
            }
            return None;
        }
        if !watchdog.streaming {
            let decoded =
                counters.frames_decoded.load(Ordering::Relaxed) - watchdog.frames_at_start;
            if decoded > 0 {
                self.first_frame(watchdog);
            } else if watchdog.started.elapsed() > settings.connect_timeout.max(undecodable_after) {
                let units = counters.units_received.load(Ordering::Relaxed);
                let reason = if units > 0
                    && recent(counters.last_unit_ms.load(Ordering::Relaxed), now, stall)
                {
                    Reason::Undecodable {
                        seconds: watchdog.started.elapsed().as_secs(),
                        units_received: units,
                    }
                } else {
                    Reason::ConnectTimeout
                };
                return Some(Outcome::Retry {
                    reason,
                    streamed: false,
                });
            }
            return None;
        }
        let last_unit = counters.last_unit_ms.load(Ordering::Relaxed);
        let last_frame = counters.last_frame_ms.load(Ordering::Relaxed);
        if !recent(last_unit, now, stall) {
            let reason = Reason::NoData {
                seconds: stall.as_secs(),
            };
            self.set(State::Stalled, reason.clone());
            return Some(Outcome::Retry {
                reason,
                streamed: true,
            });
        }
        if !recent(last_frame, now, undecodable_after) {
            let reason = Reason::Undecodable {
                seconds: undecodable_after.as_secs(),
                units_received: counters.units_received.load(Ordering::Relaxed),
            };
            self.set(State::Stalled, reason.clone());
            return Some(Outcome::Retry {
                reason,
                streamed: true,
            });
        }
        None
    }
}

impl Watchdog {
    /// The connect permit, if the attempt still holds it.
    pub(super) fn take_permit(&mut self) -> Option<OwnedSemaphorePermit> {
        self.permit.take()
    }

    /// Moves the attempt's start, and the last overload if any, `by` into the past.
    #[cfg(test)]
    pub(super) fn backdate(&mut self, by: Duration) {
        self.started -= by;
        if let Some(at) = &mut self.overloaded_at {
            *at -= by;
        }
    }
}

/// How often a camera's watchdog looks at its counters.
pub(super) const WATCHDOG_PERIOD: Duration = Duration::from_millis(250);

/// The state of one connection attempt, for its watchdog.
pub(super) struct Watchdog {
    frames_at_start: u64,
    /// `frames_dropped` when last looked at, and when it last grew.
    drops_seen: u64,
    overloaded_at: Option<Instant>,
    started: Instant,
    /// The connect permit, held until the first frame.
    permit: Option<OwnedSemaphorePermit>,
    pub streaming: bool,
    stall: Duration,
    undecodable_after: Duration,
}

fn recent(at_ms: u64, now_ms: u64, within: Duration) -> bool {
    at_ms > 0 && now_ms.saturating_sub(at_ms) <= within.as_millis() as u64
}

/// Maps a pipeline error to what the supervisor does about it.
fn classify_error(error: &gst::message::Error, streaming: bool) -> Outcome {
    let err = error.error();
    let detail = err.message().to_owned();
    let debug = error.debug().map(|d| d.to_string()).unwrap_or_default();
    if let Some(code) = err.kind::<gst::ResourceError>() {
        match code {
            gst::ResourceError::NotAuthorized => return Outcome::Fatal(Reason::Unauthorized),
            gst::ResourceError::NotFound => return Outcome::Fatal(Reason::NotFound),
            _ => {}
        }
    }
    // rtspsrc reports some RTSP status codes only in the message text.
    let lower = format!("{detail} {debug}").to_lowercase();
    if lower.contains("401") || lower.contains("unauthorized") {
        return Outcome::Fatal(Reason::Unauthorized);
    }
    if lower.contains("404") || lower.contains("not found") {
        return Outcome::Fatal(Reason::NotFound);
    }
    if err.kind::<gst::StreamError>().is_some() {
        let reason = if matches!(
            err.kind::<gst::StreamError>(),
            Some(gst::StreamError::Decode)
        ) {
            Reason::DecodeError(detail)
        } else if streaming {
            Reason::ConnectionLost(detail)
        } else {
            Reason::ConnectionFailed(detail)
        };
        return Outcome::Retry {
            reason,
            streamed: streaming,
        };
    }
    if let Some(gst::CoreError::MissingPlugin) = err.kind::<gst::CoreError>() {
        return Outcome::Fatal(Reason::Pipeline(detail));
    }
    let reason = if streaming {
        Reason::ConnectionLost(detail)
    } else {
        Reason::ConnectionFailed(detail)
    };
    Outcome::Retry {
        reason,
        streamed: streaming,
    }
}

/// Stops the pipeline off the async runtime: `set_state(Null)` joins streaming
/// threads and can take a while on a dead network connection.
async fn teardown(built: Built) {
    // `Built`'s Drop sets NULL, also if the runtime shuts down before this runs.
    let joined = tokio::task::spawn_blocking(move || drop(built)).await;
    if let Err(error) = joined {
        tracing::error!(%error, "pipeline teardown panicked");
    }
}
