//! Real-RTSP tests of the simulator: a real `RTSPServer` on an ephemeral port, real `rtspsrc`
//! clients, frames counted per camera. No mocks, no sleeps-as-assertions: bounded waits with
//! generous deadlines; rates are checked in media time exactly and in wall time loosely.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{RtspSim, SECURE_PASSWORD, SECURE_USER, SimConfig, SimError};

const DEADLINE: Duration = Duration::from_secs(60);

fn media(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test-media")
        .join(name)
}

/// Only the mounts a test asks for, on an ephemeral port.
fn config() -> SimConfig {
    SimConfig {
        port: 0,
        bind: "127.0.0.1".to_owned(),
        cameras: 0,
        media: vec![media("synthetic-360p.mp4")],
        flaky: 0,
        flaky_period: Duration::from_secs(10),
        stalling: 0,
        stall_after: Duration::from_secs(5),
        corrupt: 0,
        refusing: 0,
        secure: 0,
    }
}

#[derive(Debug, Default)]
struct Stats {
    frames: u64,
    first_is_keyframe: Option<bool>,
    first_pts: Option<gst::ClockTime>,
    last_pts: Option<gst::ClockTime>,
}

/// What the client's bus said.
#[derive(Debug, Clone, PartialEq)]
enum BusEvent {
    Error(String),
    Warning(String),
    Eos,
}

/// `rtspsrc ! rtph264depay ! h264parse [! avdec_h264] ! appsink`, counting what reaches the
/// appsink and (with `decode`) what enters the decoder.
struct Client {
    pipeline: gst::Pipeline,
    stats: Arc<Mutex<Stats>>,
    into_decoder: Arc<Mutex<u64>>,
}

impl Client {
    fn start(url: &str, credentials: Option<(&str, &str)>, decode: bool) -> Client {
        gst::init().expect("gstreamer init");
        let decoder = if decode { "! avdec_h264 name=dec " } else { "" };
        let description = format!(
            "rtspsrc name=src protocols=tcp latency=200 ! rtph264depay ! h264parse {decoder}\
             ! appsink name=sink sync=false max-buffers=100 drop=true"
        );
        let pipeline = gst::parse::launch(&description)
            .expect("client pipeline parses")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let src = pipeline.by_name("src").expect("rtspsrc");
        src.set_property("location", url);
        if let Some((user, password)) = credentials {
            src.set_property("user-id", user);
            src.set_property("user-pw", password);
        }
        let stats = Arc::new(Mutex::new(Stats::default()));
        let sink = pipeline
            .by_name("sink")
            .expect("appsink")
            .downcast::<gst_app::AppSink>()
            .expect("an appsink");
        let sink_stats = stats.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let mut stats = sink_stats.lock().expect("stats lock");
                    stats.frames += 1;
                    if let Some(buffer) = sample.buffer() {
                        if stats.first_is_keyframe.is_none() {
                            stats.first_is_keyframe =
                                Some(!buffer.flags().contains(gst::BufferFlags::DELTA_UNIT));
                            stats.first_pts = buffer.pts();
                        }
                        stats.last_pts = buffer.pts();
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        let into_decoder = Arc::new(Mutex::new(0u64));
        if let Some(dec) = pipeline.by_name("dec") {
            let counter = into_decoder.clone();
            dec.static_pad("sink").expect("decoder sink pad").add_probe(
                gst::PadProbeType::BUFFER,
                move |_pad, _info| {
                    *counter.lock().expect("counter lock") += 1;
                    gst::PadProbeReturn::Ok
                },
            );
        }
        pipeline
            .set_state(gst::State::Playing)
            .expect("client pipeline starts");
        Client {
            pipeline,
            stats,
            into_decoder,
        }
    }

    fn frames(&self) -> u64 {
        self.stats.lock().expect("stats lock").frames
    }

    fn decoder_input(&self) -> u64 {
        *self.into_decoder.lock().expect("counter lock")
    }

    /// Wait (bounded) until `cond` holds; panics with `what` on timeout.
    fn wait_until(&self, what: &str, mut cond: impl FnMut(&Client) -> bool) {
        let started = Instant::now();
        while !cond(self) {
            if let Some(BusEvent::Error(error)) = self.next_event(Duration::ZERO) {
                panic!("{what}: client error {error}");
            }
            assert!(started.elapsed() < DEADLINE, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The next error, warning or EOS on the client's bus within `timeout`.
    fn next_event(&self, timeout: Duration) -> Option<BusEvent> {
        let bus = self.pipeline.bus().expect("bus");
        let message = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
            &[
                gst::MessageType::Error,
                gst::MessageType::Warning,
                gst::MessageType::Eos,
            ],
        )?;
        Some(match message.view() {
            gst::MessageView::Error(e) => {
                BusEvent::Error(format!("{} ({:?})", e.error(), e.debug()))
            }
            gst::MessageView::Warning(w) => {
                BusEvent::Warning(format!("{} ({:?})", w.error(), w.debug()))
            }
            _ => BusEvent::Eos,
        })
    }

    /// Collect bus events until one matches, or the deadline.
    fn wait_for_event(&self, matches: impl Fn(&BusEvent) -> bool) -> Vec<BusEvent> {
        let started = Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < DEADLINE {
            if let Some(event) = self.next_event(Duration::from_millis(200)) {
                let done = matches(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
        }
        panic!("no matching bus event before the deadline; saw {seen:?}");
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _state = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn fifty_cameras_each_deliver_25_fps_starting_with_a_keyframe() {
    const CAMERAS: usize = 50;
    const WINDOW: Duration = Duration::from_secs(6);
    let sim = RtspSim::start(SimConfig {
        cameras: CAMERAS,
        ..config()
    })
    .expect("simulator starts");
    let clients: Vec<Client> = (1..=CAMERAS)
        .map(|i| Client::start(&sim.url(&format!("/cam/{i}")), None, false))
        .collect();
    for (i, client) in clients.iter().enumerate() {
        client.wait_until(&format!("first frame from /cam/{}", i + 1), |c| {
            c.frames() > 0
        });
    }
    let before: Vec<u64> = clients.iter().map(Client::frames).collect();
    let window_start = Instant::now();
    std::thread::sleep(WINDOW);
    let elapsed = window_start.elapsed().as_secs_f64();
    let mut wall_rates = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let stats = client.stats.lock().expect("stats lock");
        let mount = format!("/cam/{}", i + 1);
        assert_eq!(
            stats.first_is_keyframe,
            Some(true),
            "{mount} starts with a keyframe"
        );
        let received = stats.frames - before[i];
        assert!(received > 0, "{mount} stalled: no frame in {WINDOW:?}");
        // Media time: frames are exactly 40 ms apart.
        let span = stats
            .last_pts
            .zip(stats.first_pts)
            .map(|(last, first)| (last - first).seconds_f64())
            .expect("timestamps");
        let media_rate = (stats.frames - 1) as f64 / span;
        assert!(
            (media_rate - 25.0).abs() < 0.5,
            "{mount}: {media_rate:.2} fps in media time"
        );
        // Wall time: real-time pacing (an unpaced server would send hundreds per second).
        let wall_rate = received as f64 / elapsed;
        assert!(
            (10.0..=50.0).contains(&wall_rate),
            "{mount}: {wall_rate:.1} fps in wall time"
        );
        wall_rates.push(wall_rate);
    }
    let min = wall_rates.iter().cloned().fold(f64::MAX, f64::min);
    let max = wall_rates.iter().cloned().fold(0.0, f64::max);
    let mean = wall_rates.iter().sum::<f64>() / wall_rates.len() as f64;
    eprintln!(
        "{CAMERAS} cameras, wall-clock fps over {elapsed:.1} s: min {min:.2} mean {mean:.2} max {max:.2}"
    );
    for client in &clients {
        while let Some(event) = client.next_event(Duration::ZERO) {
            assert!(
                !matches!(event, BusEvent::Error(_)),
                "client error: {event:?}"
            );
        }
    }
}

#[test]
fn secure_camera_plays_with_credentials_and_answers_401_without() {
    let sim = RtspSim::start(SimConfig {
        secure: 1,
        ..config()
    })
    .expect("simulator starts");
    let url = sim.url("/secure/1");

    let anonymous = Client::start(&url, None, false);
    let events = anonymous.wait_for_event(|e| matches!(e, BusEvent::Error(_)));
    let error = format!("{:?}", events.last());
    assert!(error.contains("Unauthorized (401)"), "{error}");
    assert_eq!(anonymous.frames(), 0);

    let wrong = Client::start(&url, Some((SECURE_USER, "wrong")), false);
    let events = wrong.wait_for_event(|e| matches!(e, BusEvent::Error(_)));
    let error = format!("{:?}", events.last());
    assert!(error.contains("Unauthorized (401)"), "{error}");

    let authorised = Client::start(&url, Some((SECURE_USER, SECURE_PASSWORD)), false);
    authorised.wait_until("frames with credentials", |c| c.frames() >= 25);
}

#[test]
fn refusing_camera_answers_unauthorized_even_with_credentials() {
    let sim = RtspSim::start(SimConfig {
        refusing: 1,
        ..config()
    })
    .expect("simulator starts");
    for credentials in [None, Some((SECURE_USER, SECURE_PASSWORD))] {
        let client = Client::start(&sim.url("/refuse/1"), credentials, false);
        let events = client.wait_for_event(|e| matches!(e, BusEvent::Error(_)));
        let error = format!("{:?}", events.last());
        assert!(
            error.to_lowercase().contains("unauthorized"),
            "credentials {credentials:?}: {error}"
        );
        assert_eq!(client.frames(), 0);
    }
}

#[test]
fn flaky_camera_closes_the_connection_within_its_period() {
    let period = Duration::from_secs(2);
    let sim = RtspSim::start(SimConfig {
        flaky: 1,
        flaky_period: period,
        ..config()
    })
    .expect("simulator starts");
    let client = Client::start(&sim.url("/flaky/1"), None, false);
    client.wait_until("first frame", |c| c.frames() > 0);
    let connected = Instant::now();
    let events = client.wait_for_event(|e| *e == BusEvent::Eos);
    let lost_after = connected.elapsed();
    eprintln!("flaky: client saw {events:?} after {lost_after:?}");
    assert!(
        events.iter().any(
            |e| matches!(e, BusEvent::Warning(w) if w.contains("server closed the connection"))
        ),
        "{events:?}"
    );
    assert!(
        lost_after < period + Duration::from_secs(20),
        "{lost_after:?}"
    );

    // A reconnect gets a fresh stream.
    let again = Client::start(&sim.url("/flaky/1"), None, false);
    again.wait_until("frames after reconnecting", |c| c.frames() > 0);
}

#[test]
fn stalling_camera_goes_silent_after_stall_after_and_keeps_the_connection() {
    let stall_after = Duration::from_secs(2);
    let sim = RtspSim::start(SimConfig {
        stalling: 1,
        stall_after,
        ..config()
    })
    .expect("simulator starts");
    let client = Client::start(&sim.url("/stall/1"), None, false);
    client.wait_until("first frame", |c| c.frames() > 0);
    // Wait until the count stops moving for 3 s.
    let mut last = client.frames();
    let mut still_since = Instant::now();
    client.wait_until("the stream to go silent", |c| {
        let now = c.frames();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
        still_since.elapsed() > Duration::from_secs(3)
    });
    let frames = client.frames();
    eprintln!("stall: {frames} frames, then silence");
    assert!(
        (25..=55).contains(&frames),
        "about 2 s at 25 fps (50 frames) expected, got {frames}"
    );
    // Silence: no error, no EOS, the connection stays open.
    assert_eq!(client.next_event(Duration::from_secs(2)), None);
    assert_eq!(client.frames(), frames);
}

#[test]
fn corrupt_camera_delivers_rtp_but_avdec_h264_outputs_no_frame() {
    let sim = RtspSim::start(SimConfig {
        corrupt: 1,
        ..config()
    })
    .expect("simulator starts");
    let url = sim.url("/corrupt/1");
    let parsed = Client::start(&url, None, false);
    let decoded = Client::start(&url, None, true);
    parsed.wait_until("access units over RTP", |c| c.frames() >= 75);
    decoded.wait_until("access units into the decoder", |c| c.decoder_input() >= 75);
    assert_eq!(
        decoded.frames(),
        0,
        "avdec_h264 must not output a picture from garbage slices"
    );
    // avdec_h264 (max-errors=-1) logs each failure but posts nothing on the bus.
    if let Some(event) = decoded.next_event(Duration::ZERO) {
        eprintln!("corrupt: decoder client bus said {event:?}");
    }
}

#[test]
fn a_corrupt_clip_is_a_clear_start_error() {
    let error = RtspSim::start(SimConfig {
        cameras: 1,
        media: vec![media("corrupt.mp4")],
        ..config()
    })
    .expect_err("corrupt.mp4 cannot be served");
    let text = error.to_string();
    assert!(matches!(error, SimError::Media { .. }), "{text}");
    assert!(text.contains("corrupt.mp4"), "{text}");
    assert!(text.contains("no playable streams"), "{text}");
}

#[test]
fn a_missing_clip_is_a_clear_start_error() {
    let error = RtspSim::start(SimConfig {
        cameras: 1,
        media: vec![media("no-such-clip.mp4")],
        ..config()
    })
    .expect_err("missing clip");
    assert!(
        error.to_string().contains("no-such-clip.mp4: no such file"),
        "{error}"
    );
}

#[test]
fn stop_closes_clients_and_the_same_port_can_be_bound_again() {
    let sim = RtspSim::start(SimConfig {
        cameras: 2,
        ..config()
    })
    .expect("simulator starts");
    let port = sim.port();
    assert_ne!(port, 0);
    let client = Client::start(&sim.url("/cam/1"), None, false);
    client.wait_until("first frame", |c| c.frames() > 0);
    sim.stop();
    let events = client.wait_for_event(|e| matches!(e, BusEvent::Eos | BusEvent::Error(_)));
    eprintln!("stop: client saw {events:?}");

    let again = RtspSim::start(SimConfig {
        port,
        cameras: 2,
        ..config()
    })
    .expect("a new simulator binds the same port");
    assert_eq!(again.port(), port);
    let client = Client::start(&again.url("/cam/2"), None, false);
    client.wait_until("frames from the restarted simulator", |c| c.frames() > 0);
    drop(again);
    let taken = std::net::TcpListener::bind(("127.0.0.1", port));
    assert!(taken.is_ok(), "port {port} is free after drop: {taken:?}");
}

#[test]
fn mounts_and_urls_follow_the_config() {
    let sim = RtspSim::start(SimConfig {
        cameras: 2,
        flaky: 1,
        stalling: 1,
        corrupt: 1,
        refusing: 1,
        secure: 1,
        ..config()
    })
    .expect("simulator starts");
    assert_eq!(
        sim.mounts(),
        [
            "/cam/1",
            "/cam/2",
            "/shared/1",
            "/shared/2",
            "/flaky/1",
            "/stall/1",
            "/corrupt/1",
            "/refuse/1",
            "/secure/1"
        ]
    );
    assert_eq!(
        sim.url("/cam/2"),
        format!("rtsp://127.0.0.1:{}/cam/2", sim.port())
    );
}

fn process_threads_and_rss_kib() -> (usize, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse::<u64>().ok())
            .expect("status field")
    };
    (field("Threads:") as usize, field("VmRSS:"))
}

/// Load check, run alone: `cargo test --release --lib -- --ignored --nocapture two_hundred`.
/// `SIM_LOAD_CAMERAS` overrides the count.
#[test]
#[ignore = "load run: 200 RTSP clients in this process; run alone in release"]
fn two_hundred_cameras_hold_for_a_minute() {
    let cameras: usize = std::env::var("SIM_LOAD_CAMERAS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    const WINDOW: Duration = Duration::from_secs(60);
    let sim = RtspSim::start(SimConfig {
        cameras,
        media: vec![media("synthetic-360p.mp4"), media("vtest-360p.mp4")],
        ..config()
    })
    .expect("simulator starts");
    let clients: Vec<Client> = (1..=cameras)
        .map(|i| Client::start(&sim.url(&format!("/cam/{i}")), None, false))
        .collect();
    for (i, client) in clients.iter().enumerate() {
        client.wait_until(&format!("first frame from /cam/{}", i + 1), |c| {
            c.frames() > 0
        });
    }
    let before: Vec<u64> = clients.iter().map(Client::frames).collect();
    let started = Instant::now();
    std::thread::sleep(WINDOW);
    let elapsed = started.elapsed().as_secs_f64();
    let rates: Vec<f64> = clients
        .iter()
        .zip(&before)
        .map(|(c, b)| (c.frames() - b) as f64 / elapsed)
        .collect();
    let holding = rates.iter().filter(|&&r| r > 20.0).count();
    let min = rates.iter().cloned().fold(f64::MAX, f64::min);
    let max = rates.iter().cloned().fold(0.0, f64::max);
    let (threads, rss) = process_threads_and_rss_kib();
    eprintln!(
        "{holding}/{cameras} streams above 20 fps over {elapsed:.0} s; min {min:.2} max {max:.2} fps; \
         process: {threads} threads, {} MiB RSS (server + clients)",
        rss / 1024
    );
    assert_eq!(holding, cameras, "rates: {rates:?}");
}

/// Resource check, run alone (it reads process-wide counters):
/// `cargo test --lib -- --ignored --nocapture baseline`.
#[test]
#[ignore = "reads process-wide thread/RSS counters; run alone"]
fn stop_returns_threads_and_memory_to_baseline() {
    let cycle = |port: u16| -> u16 {
        let sim = RtspSim::start(SimConfig {
            port,
            cameras: 20,
            ..config()
        })
        .expect("simulator starts");
        let clients: Vec<Client> = (1..=20)
            .map(|i| Client::start(&sim.url(&format!("/cam/{i}")), None, false))
            .collect();
        for client in &clients {
            client.wait_until("first frame", |c| c.frames() > 0);
        }
        let port = sim.port();
        sim.stop();
        drop(clients);
        port
    };
    // Warm-up: plugin loading, GStreamer's global thread pools.
    let port = cycle(0);
    std::thread::sleep(Duration::from_secs(1));
    let (base_threads, base_rss) = process_threads_and_rss_kib();
    eprintln!("baseline after warm-up: {base_threads} threads, {base_rss} KiB RSS");
    let rounds: usize = std::env::var("SIM_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for round in 1..=rounds {
        cycle(port);
        // Idle pool threads of glib/GStreamer end on their own; wait (bounded) for them.
        let started = Instant::now();
        let (mut threads, mut rss) = process_threads_and_rss_kib();
        while threads > base_threads && started.elapsed() < DEADLINE {
            std::thread::sleep(Duration::from_millis(200));
            (threads, rss) = process_threads_and_rss_kib();
        }
        eprintln!(
            "after round {round}: {threads} threads, {rss} KiB RSS (waited {:?})",
            started.elapsed()
        );
        assert!(
            threads <= base_threads,
            "threads leak: {threads} > {base_threads}"
        );
        assert!(
            rss < base_rss + 32 * 1024,
            "RSS grew by {} KiB",
            rss - base_rss
        );
    }
}
