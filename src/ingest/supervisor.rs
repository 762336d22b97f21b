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
use super::status::{CameraStatus, Reason, State, now_ms};
use crate::config::CameraConfig;
use crate::obs::CameraMetrics;

enum Outcome {
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
    fn set(&self, state: State, reason: Reason) {
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

    async fn attempt(&self, permit: OwnedSemaphorePermit) -> Outcome {
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
            Taps {
                camera: self.camera.id.clone(),
                status: self.status.clone(),
                camera_metrics: self.metrics.clone(),
                metrics: shared.metrics.clone(),
                ledger: shared.ledger.clone(),
                queue: shared.queue.clone(),
                frame_arrived: frame_arrived.clone(),
            },
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
        let settings = &self.shared.settings;
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
        let counters = &self.status.counters;
        let frames_at_start = counters.frames_decoded.load(Ordering::Relaxed);
        let started = Instant::now();
        let mut permit = Some(permit);
        let mut streaming = false;
        let stall = settings.stall_timeout;
        // A stream that delivers units but no decodable frame for this long is corrupt.
        let undecodable_after = stall.max(self.camera.sampling.interval * 3);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Outcome::Cancelled,
                message = messages.next() => {
                    let Some(message) = message else {
                        return Outcome::Retry { reason: Reason::Pipeline("bus closed".to_owned()), streamed: streaming };
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
                            return classify_error(e, streaming);
                        }
                        gst::MessageView::Eos(_) => {
                            return Outcome::Retry { reason: Reason::EndOfStream, streamed: streaming };
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
                () = frame_arrived.notified(), if !streaming => {
                    streaming = true;
                    permit.take();
                    self.set(State::Streaming, Reason::FirstFrame);
                }
                _ = tick.tick() => {
                    let now = now_ms();
                    let decoded = counters.frames_decoded.load(Ordering::Relaxed) - frames_at_start;
                    if !streaming {
                        if decoded > 0 {
                            streaming = true;
                            permit.take();
                            self.set(State::Streaming, Reason::FirstFrame);
                        } else if started.elapsed() > settings.connect_timeout.max(undecodable_after) {
                            let units = counters.units_received.load(Ordering::Relaxed);
                            let reason = if units > 0 && recent(counters.last_unit_ms.load(Ordering::Relaxed), now, stall) {
                                Reason::Undecodable { seconds: started.elapsed().as_secs(), units_received: units }
                            } else {
                                Reason::ConnectTimeout
                            };
                            return Outcome::Retry { reason, streamed: false };
                        }
                        continue;
                    }
                    let last_unit = counters.last_unit_ms.load(Ordering::Relaxed);
                    let last_frame = counters.last_frame_ms.load(Ordering::Relaxed);
                    if !recent(last_unit, now, stall) {
                        let reason = Reason::NoData { seconds: stall.as_secs() };
                        self.set(State::Stalled, reason.clone());
                        return Outcome::Retry { reason, streamed: true };
                    }
                    if !recent(last_frame, now, undecodable_after) {
                        let reason = Reason::Undecodable {
                            seconds: undecodable_after.as_secs(),
                            units_received: counters.units_received.load(Ordering::Relaxed),
                        };
                        self.set(State::Stalled, reason.clone());
                        return Outcome::Retry { reason, streamed: true };
                    }
                }
            }
        }
    }
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
