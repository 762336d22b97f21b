//! Ingest with real parts: admission control against simulated cameras.

use std::sync::Arc;
use std::time::Duration;

use super::{FrameQueue, Ingest, Reason, State};
use crate::obs::Metrics;
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

    ingest.shutdown().await;
    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}
