use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Reason, State};
use crate::ingest::Ingest;
use crate::obs::Metrics;
use crate::queue::FrameQueue;
use crate::test_util::*;

fn ingest(settings: crate::config::IngestSettings) -> (Ingest, Arc<FrameQueue>, Arc<Metrics>) {
    let queue = Arc::new(FrameQueue::new(settings.frame_queue_capacity));
    let metrics = Arc::new(Metrics::new());
    let ingest = Ingest::new(settings, queue.clone(), metrics.clone(), true).expect("ingest");
    (ingest, queue, metrics)
}

/// Drains the queue on a thread, as analysis would, so nothing is dropped.
fn drain(queue: Arc<FrameQueue>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut n = 0;
        while let Some(batch) = queue.pop_batch(64, Duration::from_millis(200)) {
            n += batch.len() as u64;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_cameras_all_deliver_sampled_frames_at_the_configured_rate() {
    let sim = start_sim(sim_config(50));
    let (ingest, queue, metrics) = ingest(fast_settings());
    let consumer = drain(queue.clone());
    let cameras: Vec<_> = (1..=50)
        .map(|i| camera(&format!("cam-{i:02}"), &sim.url(&format!("/cam/{i}"))))
        .collect();
    ingest.apply(cameras).await;

    let all_streaming = wait_for(Duration::from_secs(60), || {
        ingest
            .snapshots()
            .iter()
            .all(|c| c.state == State::Streaming)
            .then_some(())
    })
    .await;
    let states: Vec<_> = ingest
        .snapshots()
        .iter()
        .filter(|c| c.state != State::Streaming)
        .map(|c| format!("{}: {:?} {}", c.id, c.state, c.reason_text))
        .collect();
    assert!(all_streaming.is_some(), "not streaming: {states:?}");

    // Count each camera's sampled frames over a window: the clip has a keyframe
    // every 2 s (GOP 50 at 25 fps) and the cameras sample one every 2 s.
    let before: Vec<u64> = ingest
        .snapshots()
        .iter()
        .map(|c| c.frames_decoded)
        .collect();
    let window = Duration::from_secs(12);
    tokio::time::sleep(window).await;
    let after = ingest.snapshots();
    for (camera, before) in after.iter().zip(before) {
        let got = camera.frames_decoded - before;
        assert!(
            (5..=7).contains(&got),
            "{}: {got} sampled frames in {window:?}, expected 6 ± 1",
            camera.id
        );
        assert!(
            camera.units_received > camera.frames_decoded * 40,
            "{}: all frames must be received, only keyframes decoded",
            camera.id
        );
        assert_eq!(camera.reconnects, 0, "{}", camera.id);
        assert_eq!(camera.frames_dropped, 0, "{}", camera.id);
    }
    let text = metrics.encode();
    assert!(
        text.contains("sitcenter_frames_decoded_total{camera=\"cam-50\"}"),
        "{text}"
    );
    assert!(
        text.contains("sitcenter_cameras{state=\"streaming\"} 50"),
        "{text}"
    );

    ingest.shutdown().await;
    queue.close();
    let consumed = consumer.join().expect("consumer");
    assert!(consumed >= 50 * 6);
    sim.stop();
}

fn reasons(snapshot: &crate::ingest::CameraSnapshot) -> Vec<Reason> {
    snapshot.history.iter().map(|t| t.reason.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_cameras_end_in_the_right_states_with_the_right_reasons() {
    let mut config = sim_config(1);
    config.flaky = 1;
    config.flaky_period = Duration::from_secs(4);
    config.stalling = 1;
    config.stall_after = Duration::from_secs(3);
    config.corrupt = 1;
    config.refusing = 1;
    config.secure = 1;
    let sim = start_sim(config);
    let (ingest, queue, _metrics) = ingest(fast_settings());
    let consumer = drain(queue.clone());
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }; // closed again: nothing listens there
    ingest
        .apply(vec![
            camera("good", &sim.url("/cam/1")),
            camera("flaky", &sim.url("/flaky/1")),
            camera("stall", &sim.url("/stall/1")),
            camera("corrupt", &sim.url("/corrupt/1")),
            camera("refuse", &sim.url("/refuse/1")),
            with_credentials(
                camera("secure-ok", &sim.url("/secure/1")),
                "sim",
                "sim-secret",
            ),
            camera("secure-no-creds", &sim.url("/secure/1")),
            camera("dead", &format!("rtsp://127.0.0.1:{dead_port}/cam/1")),
        ])
        .await;

    let snapshot = |id: &str| {
        ingest
            .snapshot(&crate::domain::CameraId::new(id))
            .expect("camera exists")
    };
    // Wait until every misbehaviour has shown itself at least once.
    let seen = wait_for(Duration::from_secs(60), || {
        let flaky = snapshot("flaky");
        let stall = snapshot("stall");
        let corrupt = snapshot("corrupt");
        let dead = snapshot("dead");
        let done = flaky.reconnects >= 1
            && flaky.frames_decoded > 0
            && reasons(&stall)
                .iter()
                .any(|r| matches!(r, Reason::NoData { .. }))
            && reasons(&corrupt)
                .iter()
                .any(|r| matches!(r, Reason::Undecodable { .. } | Reason::DecodeError(_)))
            && snapshot("refuse").state == State::Failed
            && snapshot("secure-no-creds").state == State::Failed
            && dead.reconnects >= 2;
        done.then_some(())
    })
    .await;
    let all: Vec<_> = ingest
        .snapshots()
        .into_iter()
        .map(|c| {
            format!(
                "{}: {:?} {} {:?}",
                c.id,
                c.state,
                c.reason_text,
                reasons(&c)
            )
        })
        .collect();
    assert!(seen.is_some(), "{all:#?}");

    assert_eq!(snapshot("good").state, State::Streaming, "{all:#?}");
    assert_eq!(snapshot("secure-ok").state, State::Streaming, "{all:#?}");
    assert_eq!(snapshot("refuse").reason, Reason::Unauthorized, "{all:#?}");
    assert_eq!(
        snapshot("secure-no-creds").reason,
        Reason::Unauthorized,
        "{all:#?}"
    );
    let flaky = snapshot("flaky");
    assert!(
        reasons(&flaky).iter().any(|r| matches!(
            r,
            Reason::ConnectionLost(_) | Reason::EndOfStream | Reason::NoData { .. }
        )),
        "{all:#?}"
    );
    let stall = snapshot("stall");
    assert!(
        stall.history.iter().any(|t| t.state == State::Stalled),
        "{all:#?}"
    );
    let corrupt = snapshot("corrupt");
    assert_eq!(corrupt.frames_decoded, 0, "{all:#?}");
    assert!(corrupt.units_received > 0, "{all:#?}");
    let dead = snapshot("dead");
    assert!(
        reasons(&dead)
            .iter()
            .any(|r| matches!(r, Reason::ConnectionFailed(_))),
        "{all:#?}"
    );
    assert_eq!(dead.frames_decoded, 0);

    ingest.shutdown().await;
    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_restart_only_the_cameras_that_changed() {
    let sim = start_sim(sim_config(3));
    let (ingest, queue, _metrics) = ingest(fast_settings());
    let consumer = drain(queue.clone());
    let a = camera("a", &sim.url("/cam/1"));
    let b = camera("b", &sim.url("/cam/2"));
    let c = camera("c", &sim.url("/cam/3"));
    ingest.apply(vec![a.clone(), b.clone()]).await;
    let streaming = wait_until_all(&ingest, Duration::from_secs(30), |s| {
        s.state == State::Streaming
    })
    .await;
    assert!(streaming, "{:?}", ingest.snapshots());
    let a_since = ingest.snapshot(&a.id).expect("a").since;

    let mut b_changed = b.clone();
    b_changed.sampling.interval = Duration::from_secs(4);
    let report = ingest.apply(vec![a.clone(), b_changed, c.clone()]).await;
    assert_eq!(report.added, std::slice::from_ref(&c.id));
    assert_eq!(report.restarted, std::slice::from_ref(&b.id));
    assert_eq!(report.unchanged, 1);
    assert_eq!(
        ingest.snapshot(&a.id).expect("a").since,
        a_since,
        "a was touched"
    );
    let b_history = ingest.snapshot(&b.id).expect("b").history;
    assert_eq!(b_history[0].reason, Reason::Restarted, "{b_history:?}");

    let report = ingest.apply(vec![c.clone()]).await;
    assert_eq!(report.removed, [a.id.clone(), b.id.clone()]);
    assert_eq!(ingest.len(), 1);

    ingest.shutdown().await;
    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cameras_stream_over_udp_as_well_as_tcp() {
    let sim = start_sim(sim_config(2));
    let (ingest, queue, _metrics) = ingest(fast_settings());
    let consumer = drain(queue.clone());
    let mut udp = camera("udp", &sim.url("/cam/1"));
    udp.transport = crate::config::Transport::Udp;
    let mut auto = camera("auto", &sim.url("/cam/2"));
    auto.transport = crate::config::Transport::Auto;
    ingest.apply(vec![udp, auto]).await;
    let streaming = wait_until_all(&ingest, Duration::from_secs(30), |c| {
        c.state == State::Streaming && c.frames_decoded >= 2
    })
    .await;
    assert!(streaming, "{:?}", ingest.snapshots());
    ingest.shutdown().await;
    queue.close();
    consumer.join().expect("consumer");
    sim.stop();
}

/// A server that accepts TCP connections and never answers (a camera network
/// coming back half-alive); it records how many connections are open at once.
struct BlackHole {
    port: u16,
    max_open: Arc<std::sync::atomic::AtomicUsize>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl BlackHole {
    fn start() -> Self {
        use std::io::Read;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        {
            let (max_open, accepted) = (max_open.clone(), accepted.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                    max_open.fetch_max(now, Ordering::SeqCst);
                    let open = open.clone();
                    std::thread::spawn(move || {
                        let mut stream = stream;
                        let mut sink = [0u8; 1024];
                        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        Self {
            port,
            max_open,
            accepted,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_connection_attempts_never_exceed_the_cap() {
    use std::sync::atomic::Ordering;
    let hole = BlackHole::start();
    let mut settings = fast_settings();
    settings.max_concurrent_connects = 2;
    settings.connect_timeout = Duration::from_secs(1);
    let (ingest, _queue, _metrics) = ingest(settings);
    ingest
        .apply(
            (1..=8)
                .map(|i| {
                    camera(
                        &format!("c{i}"),
                        &format!("rtsp://127.0.0.1:{}/cam/{i}", hole.port),
                    )
                })
                .collect(),
        )
        .await;
    // Long enough for every camera to have tried at least once through 2 slots.
    let all_tried = wait_for(Duration::from_secs(60), || {
        (hole.accepted.load(Ordering::SeqCst) >= 12).then_some(())
    })
    .await;
    let max_open = hole.max_open.load(Ordering::SeqCst);
    assert!(
        all_tried.is_some(),
        "only {} attempts",
        hole.accepted.load(Ordering::SeqCst)
    );
    assert!(
        max_open <= 2,
        "{max_open} connection attempts at once with a cap of 2"
    );
    assert!(
        ingest
            .snapshots()
            .iter()
            .all(|c| c.state != State::Streaming),
        "nothing can stream from a black hole"
    );
    ingest.shutdown().await;
}
