use std::sync::Arc;
use std::time::Duration;

use crate::ingest::{FrameQueue, Ingest, State};
use crate::obs::Metrics;
use crate::test_util::*;

/// Starts `n` cameras, waits until all stream, then removes them all.
async fn cycle(ingest: &Ingest, sim: &crate::sim::RtspSim, n: usize) {
    ingest
        .apply(
            (1..=n)
                .map(|i| camera(&format!("c{i}"), &sim.url(&format!("/cam/{i}"))))
                .collect(),
        )
        .await;
    let streaming = wait_for(Duration::from_secs(60), || {
        ingest
            .snapshots()
            .iter()
            .all(|c| c.state == State::Streaming && c.frames_decoded >= 2)
            .then_some(())
    })
    .await;
    assert!(streaming.is_some(), "{:?}", ingest.snapshots());
    let report = ingest.apply(Vec::new()).await;
    assert_eq!(report.removed.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_every_camera_returns_threads_and_memory_to_the_baseline() {
    let sim = start_sim(sim_config(30));
    let queue = Arc::new(FrameQueue::new(64));
    let metrics = Arc::new(Metrics::new());
    let ingest =
        Ingest::new(fast_settings(), queue.clone(), metrics.clone(), true).expect("ingest");
    let consumer = {
        let queue = queue.clone();
        std::thread::spawn(
            move || while queue.pop_batch(64, Duration::from_millis(100)).is_some() {},
        )
    };
    // The first cycle loads plugins and fills allocator pools: measure after it.
    cycle(&ingest, &sim, 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_base, threads_base) = rss_and_threads();

    for _ in 0..3 {
        cycle(&ingest, &sim, 30).await;
    }
    // Streaming threads exit asynchronously after NULL; give them a moment.
    let settled = wait_for(Duration::from_secs(10), || {
        let (_, threads) = rss_and_threads();
        (threads <= threads_base).then_some(())
    })
    .await;
    let (rss, threads) = rss_and_threads();
    assert!(settled.is_some(), "threads {threads_base} → {threads}");
    // Three more cycles of 30 cameras (each ~4 MB while it runs) may not leave
    // more than a few MB behind: a per-camera leak would show as ≥ 90 × leak.
    let growth_mb = (rss as f64 - rss_base as f64) / 1e6;
    assert!(
        growth_mb < 8.0,
        "RSS grew by {growth_mb:.1} MB after 90 camera runs"
    );
    assert!(
        !metrics.encode().contains("camera=\"c1\""),
        "removed cameras keep metric series"
    );

    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}
