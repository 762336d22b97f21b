//! Ingest with real parts: admission control against simulated cameras.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::Ingest;
use super::status::{CameraStatus, now_ms};
use super::supervisor::{CameraSupervisor, Outcome};
use crate::config::RtspBackend;
use crate::domain::{Reason, State};
use crate::obs::Metrics;
use crate::queue::FrameQueue;
use crate::test_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_beyond_the_decode_budget_are_refused_and_admitted_once_capacity_frees() {
    let sim = start_sim(sim_config(3));
    let mut settings = fast_settings();
    // Each camera samples a keyframe every 2 s at 2 ms: 1 ms/s; the budget holds two.
    settings.keyframe_decode_ms = 2.0;
    settings.decode_budget_ms_per_s = 2.5;
    let queue = Arc::new(FrameQueue::new(64));
    let metrics = Arc::new(Metrics::new());
    let ingest = Ingest::new(settings, queue.clone(), metrics.clone(), true).expect("ingest");
    let consumer = {
        let queue = queue.clone();
        std::thread::spawn(
            move || while queue.pop_batch(64, Duration::from_millis(200)).is_some() {},
        )
    };
    let cameras: Vec<_> = (1..=3)
        .map(|i| camera(&format!("cam-{i}"), &sim.url(&format!("/cam/{i}"))))
        .collect();
    ingest.apply(cameras.clone()).await;

    let refused = ingest
        .snapshot(&crate::domain::CameraId::new("cam-3"))
        .expect("cam-3 is listed");
    assert_eq!(refused.state, State::Refused);
    assert!(
        matches!(refused.reason, Reason::OverCapacity { needs_ms_per_s, .. } if (needs_ms_per_s - 1.0).abs() < 1e-9),
        "{:?}",
        refused.reason
    );
    assert!(
        refused.reason_text.contains("over capacity"),
        "{}",
        refused.reason_text
    );
    let text = metrics.encode();
    assert!(
        text.contains("sitcenter_cameras{state=\"refused\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sitcenter_decode_admitted_ms_per_s 2"),
        "{text}"
    );
    assert!(
        wait_for(Duration::from_secs(60), || {
            let all = ingest.snapshots();
            all.iter()
                .filter(|c| c.id.as_str() != "cam-3")
                .all(|c| c.state == State::Streaming)
                .then_some(())
        })
        .await
        .is_some(),
        "{:?}",
        ingest.snapshots()
    );

    // Removing an admitted camera frees its share: the refused one starts.
    let report = ingest.apply(cameras[1..].to_vec()).await;
    assert_eq!(report.removed.len(), 1);
    let admitted = wait_for(Duration::from_secs(60), || {
        ingest
            .snapshot(&crate::domain::CameraId::new("cam-3"))
            .filter(|c| c.state == State::Streaming)
    })
    .await;
    assert!(admitted.is_some(), "{:?}", ingest.snapshots());
    assert!(
        metrics
            .encode()
            .contains("sitcenter_cameras{state=\"refused\"} 0")
    );

    // A restart racing a reload that removes the camera cannot bring it back, in either order.
    let cam2 = crate::domain::CameraId::new("cam-2");
    let (_, _) = tokio::join!(ingest.restart(&cam2), ingest.apply(cameras[2..].to_vec()));
    assert!(ingest.snapshot(&cam2).is_none(), "{:?}", ingest.snapshots());
    ingest.shutdown().await;
    // After the shutdown nothing starts again: not a restart, not a late reload.
    assert!(!ingest.restart(&crate::domain::CameraId::new("cam-3")).await);
    let late = ingest.apply(cameras.clone()).await;
    assert!(late.added.is_empty(), "{late:?}");
    assert!(ingest.is_empty());
    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}

/// The watchdog's verdict on a camera whose keyframes our own decoder queue drops
/// (the node is short of decode capacity): `overloaded`, session kept, connect permit
/// freed — not reconnected as undecodable. Once the drops stop, a camera that still
/// decodes nothing is undecodable again.
#[tokio::test]
async fn a_camera_starved_by_our_own_queues_is_overloaded_not_reconnected() {
    let mut settings = fast_settings();
    settings.rtsp_backend = RtspBackend::Pipeline; // no decoder pool needed for the verdict
    settings.max_concurrent_connects = 1;
    let queue = Arc::new(FrameQueue::new(4));
    let ingest = Ingest::new(settings, queue, Arc::new(Metrics::new()), true).expect("ingest");
    let shared = ingest.shared.clone();
    let config = camera("cam-1", "rtsp://127.0.0.1:9/unused");
    let status = Arc::new(CameraStatus::new(Reason::Started));
    shared
        .ledger
        .register(&config.id, status.counters.frames_dropped.clone());
    let supervisor = CameraSupervisor {
        metrics: shared.metrics.camera(&config.id),
        camera: config.clone(),
        shared: shared.clone(),
        status: status.clone(),
        cancel: CancellationToken::new(),
    };
    let permit = shared
        .connect_slots
        .clone()
        .acquire_owned()
        .await
        .expect("permit");
    let mut watchdog = supervisor.watchdog(permit);
    // Connected a minute ago; access units keep arriving; nothing has been decoded.
    watchdog.backdate(Duration::from_secs(60));
    let counters = &status.counters;
    counters.units_received.store(1500, Ordering::Relaxed);
    counters.last_unit_ms.store(now_ms(), Ordering::Relaxed);

    shared
        .ledger
        .dropped(&config.id, crate::obs::DROP_DECODER_QUEUE_FULL);
    assert!(supervisor.check(&mut watchdog).is_none(), "session kept");
    let snapshot = status.snapshot(&config);
    assert_eq!(snapshot.state, State::Connecting);
    assert_eq!(snapshot.reason, Reason::Overloaded { frames_dropped: 1 });
    assert!(
        snapshot.reason_text.contains("overloaded"),
        "{}",
        snapshot.reason_text
    );
    assert_eq!(
        shared.connect_slots.available_permits(),
        1,
        "an overloaded camera does not hold the connect slot"
    );

    // A frame gets through: streaming, with the overload still in the status counters.
    counters.frames_decoded.fetch_add(1, Ordering::Relaxed);
    counters.last_frame_ms.store(now_ms(), Ordering::Relaxed);
    assert!(supervisor.check(&mut watchdog).is_none());
    assert_eq!(status.snapshot(&config).state, State::Streaming);
    assert_eq!(status.snapshot(&config).frames_dropped, 1);

    // The drops stopped long ago and still nothing decodes: that is the stream's fault.
    watchdog.backdate(Duration::from_secs(60));
    counters
        .last_frame_ms
        .store(now_ms() - 60_000, Ordering::Relaxed);
    counters.last_unit_ms.store(now_ms(), Ordering::Relaxed);
    match supervisor.check(&mut watchdog) {
        Some(Outcome::Retry {
            reason: Reason::Undecodable { .. },
            streamed: true,
        }) => {}
        _ => panic!("expected a reconnect for an undecodable stream"),
    }
    ingest.shutdown().await;
}
