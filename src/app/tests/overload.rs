use std::sync::Arc;
use std::time::Duration;

use crate::domain::State;
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::queue::FrameQueue;
use crate::test_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_consumer_the_queue_stays_bounded_and_every_drop_is_counted_per_camera() {
    let sim = start_sim(sim_config(4));
    let queue = Arc::new(FrameQueue::new(3));
    let metrics = Arc::new(Metrics::new());
    let mut settings = fast_settings();
    settings.frame_queue_capacity = 3;
    let ingest = Ingest::new(settings, queue.clone(), metrics.clone(), true).expect("ingest");
    let mut cameras: Vec<_> = (1..=4)
        .map(|i| camera(&format!("c{i}"), &sim.url(&format!("/cam/{i}"))))
        .collect();
    for c in &mut cameras {
        // Every keyframe: 0.5 frames/s per camera, nobody consuming.
        c.sampling.interval = Duration::from_millis(500);
    }
    ingest.apply(cameras).await;
    let overloaded = wait_for(Duration::from_secs(60), || {
        let s = ingest.snapshots();
        (s.iter()
            .all(|c| c.state == State::Streaming && c.frames_decoded >= 4))
        .then_some(())
    })
    .await;
    assert!(overloaded.is_some(), "{:?}", ingest.snapshots());
    // Stop the frames (cameras go to backing off) so the counters hold still.
    sim.stop();
    let quiet = wait_until_all(&ingest, Duration::from_secs(30), |c| {
        c.state != State::Streaming
    })
    .await;
    assert!(quiet, "{:?}", ingest.snapshots());

    assert_eq!(queue.len(), 3, "the queue holds its capacity, no more");
    let text = metrics.encode();
    let counter = |name: &str, camera: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("camera=\"{camera}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut decoded = 0;
    let mut dropped = 0;
    for i in 1..=4 {
        let id = format!("c{i}");
        decoded += counter("sitcenter_frames_decoded_total", &id);
        dropped += counter("sitcenter_frames_dropped_total", &id);
    }
    let queued = queue.pop_batch(10, Duration::ZERO).map_or(0, |b| b.len()) as u64;
    assert_eq!(
        decoded,
        dropped + queued,
        "every frame is either queued or counted as dropped"
    );
    assert!(dropped >= 13, "dropped {dropped}");
    assert!(text.contains("reason=\"queue_full\""));
    let per_camera: u64 = ingest.snapshots().iter().map(|c| c.frames_dropped).sum();
    assert_eq!(per_camera, dropped, "status and metrics agree");
    ingest.shutdown().await;
}
