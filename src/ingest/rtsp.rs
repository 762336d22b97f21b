//! The `shared-decoder` backend's receive side: one camera's RTSP session with
//! `retina` on the tokio runtime (no thread per camera), RTP over TCP depacketized into
//! access units. Delta units are counted and dropped as they arrive; a keyframe that the
//! analysis interval lets through is moved (not copied) into the shared
//! [`DecoderPool`](super::pool::DecoderPool) with its SPS/PPS in front.
//!
//! Reads are batched: after taking what has arrived, a session leaves its socket alone
//! for `[ingest] receive_batch_ms`, so that one read takes what the kernel buffered
//! meanwhile instead of one task wake-up per RTP packet (docs/performance.md).
//!
//! retina puts no timeout on DESCRIBE, SETUP or PLAY: each gets
//! `[ingest] connect_timeout_s` here. The supervisor's connect semaphore limits how many
//! sessions are between connecting and their first frame (gst-rtsp-server's default
//! listen backlog is 5; see docs/performance.md).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use retina::client::{
    PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat};
use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::appsink::IntervalGate;
use super::pool::{DecoderPool, Keyframe, Submitted};
use super::status::now_ms;
use super::supervisor::{CameraSupervisor, Outcome, WATCHDOG_PERIOD};
use crate::domain::Reason;

/// Maps a retina error to what the supervisor does about it.
fn classify(error: &retina::Error, request: &str, streaming: bool) -> Outcome {
    match error.status_code() {
        Some(401) => return Outcome::Fatal(Reason::Unauthorized),
        Some(404) => return Outcome::Fatal(Reason::NotFound),
        _ => {}
    }
    // The first line says what happened; the rest is connection context.
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let detail = format!("{request}: {first}");
    Outcome::Retry {
        reason: if streaming {
            Reason::ConnectionLost(detail)
        } else {
            Reason::ConnectionFailed(detail)
        },
        streamed: streaming,
    }
}

fn timed_out(request: &str, limit: Duration) -> Outcome {
    Outcome::Retry {
        reason: Reason::ConnectionFailed(format!(
            "{request}: no answer within {:.1} s",
            limit.as_secs_f64()
        )),
        streamed: false,
    }
}

/// Runs one RTSP request under the connect timeout.
macro_rules! request {
    ($name:literal, $limit:expr, $future:expr) => {
        match tokio::time::timeout($limit, $future).await {
            Err(_) => return timed_out($name, $limit),
            Ok(Err(error)) => return classify(&error, $name, false),
            Ok(Ok(value)) => value,
        }
    };
}

/// How long a stopped session may take to send its TEARDOWN and get the answer.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(2);
/// How long a connect permit stays taken after a failed attempt closed its connection,
/// so that the server has seen the close before the next attempt connects.
const CONNECT_SETTLE: Duration = Duration::from_millis(50);

impl CameraSupervisor {
    /// One connection attempt with retina, watched by the same watchdog as a pipeline.
    /// Returns after the session is torn down (TEARDOWN answered, or
    /// [`TEARDOWN_LIMIT`]), as a pipeline attempt returns after `set_state(Null)`.
    pub(super) async fn attempt_shared(
        &self,
        permit: OwnedSemaphorePermit,
        pool: Arc<DecoderPool>,
    ) -> Outcome {
        let group = Arc::new(retina::client::SessionGroup::default());
        let (outcome, permit) = self.session(permit, pool, group.clone()).await;
        if tokio::time::timeout(TEARDOWN_LIMIT, group.await_teardown())
            .await
            .is_err()
        {
            tracing::debug!(camera = %self.camera.id, "no answer to TEARDOWN");
        }
        if permit.is_some() {
            tokio::time::sleep(CONNECT_SETTLE).await;
        }
        outcome
    }

    /// The session itself; gives back the connect permit if no frame arrived.
    async fn session(
        &self,
        permit: OwnedSemaphorePermit,
        pool: Arc<DecoderPool>,
        group: Arc<retina::client::SessionGroup>,
    ) -> (Outcome, Option<OwnedSemaphorePermit>) {
        let mut watchdog = self.watchdog(permit);
        let outcome = self.stream(&mut watchdog, pool, group).await;
        (outcome, watchdog.take_permit())
    }

    async fn stream(
        &self,
        watchdog: &mut super::supervisor::Watchdog,
        pool: Arc<DecoderPool>,
        group: Arc<retina::client::SessionGroup>,
    ) -> Outcome {
        let limit = self.shared.settings.connect_timeout;
        let creds = self
            .camera
            .credentials
            .as_ref()
            .map(|c| retina::client::Credentials {
                username: c.user.clone(),
                password: c.password.clone(),
            });
        let options = SessionOptions::default()
            .session_group(group)
            .creds(creds)
            .user_agent("sitcenter".to_owned());
        let mut session = request!(
            "DESCRIBE",
            limit,
            Session::describe(self.camera.url.clone(), options)
        );
        let Some(video) = session
            .streams()
            .iter()
            .position(|s| s.media() == "video" && s.encoding_name() == "h264")
        else {
            return Outcome::Fatal(Reason::Pipeline(
                "the camera offers no H.264 video stream (choose another pipeline template)"
                    .to_owned(),
            ));
        };
        let setup = SetupOptions::default()
            .transport(Transport::Tcp(TcpTransportOptions::default()))
            .frame_format(FrameFormat::SIMPLE);
        request!("SETUP", limit, session.setup(video, setup));
        let playing = request!("PLAY", limit, session.play(PlayOptions::default()));
        let demuxed = match playing.demuxed() {
            Ok(demuxed) => demuxed,
            Err(error) => return classify(&error, "PLAY", false),
        };
        let mut demuxed = std::pin::pin!(demuxed);

        let frame_arrived = Arc::new(Notify::new());
        let mut keyframes = Keyframes {
            taps: Arc::new(self.taps(frame_arrived.clone())),
            gate: IntervalGate::new(self.camera.sampling),
            pool,
            seq: 0,
        };
        let pace = self.shared.settings.receive_batch;
        let mut tick = tokio::time::interval(WATCHDOG_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Created once: a fresh `cancelled()` per frame would register a waiter 25 times a second.
        let cancelled = self.cancel.cancelled();
        let mut cancelled = std::pin::pin!(cancelled);
        loop {
            tokio::select! {
                () = &mut cancelled => return Outcome::Cancelled,
                item = demuxed.next() => {
                    if let Some(outcome) = self.take(item, &mut keyframes, watchdog.streaming) {
                        return outcome;
                    }
                    if pace.is_zero() {
                        continue;
                    }
                    // Take what else has arrived, then let the socket fill for `pace`:
                    // one read per period instead of a wake-up per RTP packet.
                    while let Some(item) = demuxed.next().now_or_never() {
                        if let Some(outcome) = self.take(item, &mut keyframes, watchdog.streaming) {
                            return outcome;
                        }
                    }
                    tokio::select! {
                        () = &mut cancelled => return Outcome::Cancelled,
                        () = tokio::time::sleep(pace) => {}
                    }
                }
                () = frame_arrived.notified(), if !watchdog.streaming => self.first_frame(watchdog),
                _ = tick.tick() => {
                    if let Some(outcome) = self.check(watchdog) {
                        return outcome;
                    }
                }
            }
        }
    }
}

/// Where a session's due keyframes go.
struct Keyframes {
    taps: Arc<super::appsink::Taps>,
    gate: IntervalGate,
    pool: Arc<DecoderPool>,
    seq: u64,
}

impl CameraSupervisor {
    /// One item from the session: delta units are counted and dropped, a due keyframe
    /// goes to the pool. `Some` ends the session.
    fn take(
        &self,
        item: Option<Result<CodecItem, retina::Error>>,
        keyframes: &mut Keyframes,
        streaming: bool,
    ) -> Option<Outcome> {
        let frame = match item {
            None => {
                return Some(Outcome::Retry {
                    reason: Reason::EndOfStream,
                    streamed: streaming,
                });
            }
            Some(Err(error)) => return Some(classify(&error, "stream", streaming)),
            Some(Ok(CodecItem::VideoFrame(frame))) => frame,
            Some(Ok(_)) => return None,
        };
        let counters = &self.status.counters;
        counters.units_received.fetch_add(1, Ordering::Relaxed);
        counters.last_unit_ms.store(now_ms(), Ordering::Relaxed);
        self.metrics.frames_received.inc();
        if !frame.is_random_access_point() {
            return None; // a delta unit: dropped here, never copied again
        }
        let t = Duration::from_secs_f64(frame.timestamp().elapsed_secs().max(0.0));
        if !keyframes.gate.admit(t) {
            return None;
        }
        let job = Keyframe {
            taps: keyframes.taps.clone(),
            cancel: self.cancel.clone(),
            received_at: Instant::now(),
            pts: t,
            seq: keyframes.seq,
            data: frame.into_data(),
        };
        keyframes.seq += 1;
        match keyframes.pool.submit(job) {
            Submitted::Queued => None,
            Submitted::Evicted(old) => {
                self.shared
                    .ledger
                    .dropped(&old.taps.camera, crate::obs::DROP_DECODER_QUEUE_FULL);
                tracing::debug!(camera = %old.taps.camera, "decoder queue full: dropped the oldest keyframe");
                None
            }
            Submitted::Closed => Some(Outcome::Cancelled),
        }
    }
}
