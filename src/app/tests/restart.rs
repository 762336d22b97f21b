use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::domain::State;
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::queue::FrameQueue;
use crate::test_util::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_simulator_is_reconnected_within_the_backoff_bound() {
    let settings = fast_settings();
    let queue = Arc::new(FrameQueue::new(4096));
    let ingest = Ingest::new(
        settings.clone(),
        queue.clone(),
        Arc::new(Metrics::new()),
        true,
    )
    .expect("ingest");
    let sim = start_sim(sim_config(10));
    let port = sim.port();
    ingest
        .apply(
            (1..=10)
                .map(|i| camera(&format!("c{i}"), &sim.url(&format!("/cam/{i}"))))
                .collect(),
        )
        .await;
    let all = |state: State| {
        let ingest = &ingest;
        move || {
            ingest
                .snapshots()
                .iter()
                .all(|c| c.state == state)
                .then_some(())
        }
    };
    assert!(
        wait_for(Duration::from_secs(60), all(State::Streaming))
            .await
            .is_some(),
        "{:?}",
        ingest.snapshots()
    );

    // Kill the cameras' server: every camera notices and starts backing off.
    sim.stop();
    let none_streaming = wait_until_all(&ingest, Duration::from_secs(30), |c| {
        c.state != State::Streaming
    })
    .await;
    assert!(none_streaming, "{:?}", ingest.snapshots());
    // Let them fail a few times so the backoff grows to its cap.
    tokio::time::sleep(settings.backoff_max * 3).await;

    let mut config = sim_config(10);
    config.port = port;
    let restarted_at = Instant::now();
    let sim = start_sim(config);
    // Bound: one full backoff (the cap) plus one connection attempt.
    let bound = settings.backoff_max + settings.connect_timeout;
    let back = wait_for(bound, all(State::Streaming)).await;
    let elapsed = restarted_at.elapsed();
    assert!(
        back.is_some(),
        "not all cameras back within {bound:?}: {:?}",
        ingest
            .snapshots()
            .iter()
            .map(|c| (c.id.to_string(), c.state, c.reason_text.clone()))
            .collect::<Vec<_>>()
    );
    for camera in ingest.snapshots() {
        assert!(camera.reconnects >= 1, "{}", camera.id);
    }
    tracing::info!(?elapsed, "all cameras reconnected");

    ingest.shutdown().await;
    queue.close();
    sim.stop();
}
