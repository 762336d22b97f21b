//! Issue 4 groundwork: what it costs to *receive* H.264 over RTSP, per camera, three ways.
//!
//! - `gst`: one GStreamer pipeline per camera,
//!   `rtspsrc protocols=tcp ! rtph264depay ! h264parse ! fakesink` (today's ingest minus decode);
//! - `gst-tuned`: the same with rtspsrc set for analysis-only streams
//!   ([`GST_TUNED_PROPERTIES`]: no jitterbuffer latency, no clock slaving, no retransmission
//!   requests, no RTCP);
//! - `retina`: the `retina` async RTSP client, one task per camera on a tokio runtime with
//!   2 worker threads, TCP interleaved, frames depacketized into access units; at most
//!   [`RETINA_STARTS_AT_ONCE`] sessions between connect and PLAY at a time.
//!
//! Every (variant, camera count) runs in its own child process (this executable again), so
//! CPU, RSS and thread counts are those of the measuring process alone, net of the same
//! process before any camera. The simulated cameras come from `sitcenter rtsp-sim`, started
//! once from `target/release/sitcenter` (`cargo build --release --bin sitcenter` first) with
//! the repository root as working directory, and shared by all runs.
//!
//! Settings (environment):
//! - `INGEST_CAMERAS` camera counts, default `50,200`;
//! - `INGEST_VARIANTS` default `gst,gst-tuned,retina`;
//! - `INGEST_WINDOW_S` measuring window in seconds, default 20;
//! - `INGEST_SIM_BIN` simulator binary, default `sitcenter` next to this bench's `deps/`.
//!
//! `cargo bench --bench ingest_receive` prints a Markdown table (docs/performance.md).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::{Deserialize, Serialize};

const CHILD_ENV: &str = "INGEST_RECEIVE_CHILD";
const RESULT_PREFIX: &str = "INGEST_RECEIVE_RESULT ";
/// The simulator's frame rate and GOP (test-media/synthetic-360p.mp4).
const FPS: f64 = 25.0;
const GOP: f64 = 50.0;
/// How long every camera gets to deliver its first keyframe.
const START_LIMIT: Duration = Duration::from_secs(60);
/// Time after the last camera starts delivering before the window opens.
const SETTLE: Duration = Duration::from_secs(3);
/// Retina sessions between connect and PLAY at once. Started all at once, 52–88 of 200
/// sessions hung in DESCRIBE with no error (retina sets no timeout there; the simulator's
/// gst-rtsp-server listens with a backlog of 5, its default).
const RETINA_STARTS_AT_ONCE: usize = 4;
/// rtspsrc 1.22 properties for `gst-tuned`. rtspsrc has no property that removes its
/// rtpbin/rtpjitterbuffer; these make the jitterbuffer pass packets straight through.
const GST_TUNED_PROPERTIES: &str =
    "latency=0 buffer-mode=none do-retransmission=false do-rtcp=false";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Variant {
    Gst,
    GstTuned,
    Retina,
}

impl Variant {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "gst" => Some(Self::Gst),
            "gst-tuned" => Some(Self::GstTuned),
            "retina" => Some(Self::Retina),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Gst => "gst",
            Self::GstTuned => "gst-tuned",
            Self::Retina => "retina",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Self::Gst => "(a) GStreamer rtspsrc, defaults",
            Self::GstTuned => "(b) GStreamer rtspsrc, tuned",
            Self::Retina => "(c) retina, tokio 2 workers",
        }
    }
}

/// Frames and keyframes one camera has delivered so far.
#[derive(Default)]
struct CameraCounters {
    frames: AtomicU64,
    keyframes: AtomicU64,
    /// How far a retina session got: 0 DESCRIBE sent, 1 SETUP sent, 2 PLAY sent, 3 playing.
    stage: AtomicU64,
    /// The first error this camera reported, if any.
    error_opt: Mutex<Option<String>>,
}

impl CameraCounters {
    fn count(&self, keyframe: bool) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        if keyframe {
            self.keyframes.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn record_error(&self, error: String) {
        let mut slot = self.error_opt.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(error);
    }

    fn error(&self) -> Option<String> {
        self.error_opt
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// CPU time, resident memory and threads of this process.
#[derive(Clone, Copy)]
struct ProcSample {
    cpu_s: f64,
    rss_bytes: u64,
    threads: u64,
}

fn clock_ticks_per_second() -> Result<f64, String> {
    let output = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .map_err(|e| format!("getconf CLK_TCK: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("getconf CLK_TCK printed no number: {e}"))
}

fn proc_sample(ticks_per_second: f64) -> Result<ProcSample, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // Fields after the command name, which may itself contain spaces and parentheses.
    let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let tick = |index: usize| -> Result<f64, String> {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| format!("/proc/self/stat has no field {index}"))
    };
    // utime and stime are fields 14 and 15 of stat(5); index 0 here is field 3 (state).
    let cpu_s = (tick(11)? + tick(12)?) / ticks_per_second;
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("/proc/self/status has no {name}"))
    };
    Ok(ProcSample {
        cpu_s,
        rss_bytes: field("VmRSS:")? * 1024,
        threads: field("Threads:")?,
    })
}

/// What one child process measured.
#[derive(Serialize, Deserialize)]
struct Measurement {
    variant: String,
    cameras: usize,
    window_s: f64,
    start_s: f64,
    cpu_ms_per_camera_second: f64,
    base_rss_mb: f64,
    base_threads: u64,
    rss_mb_per_camera: f64,
    threads_per_camera: f64,
    /// Fewest frames of one camera in the window, divided by 25 fps × window.
    min_frames_ratio: f64,
    /// All frames in the window over cameras × 25 fps × window.
    total_frames_ratio: f64,
    min_keyframes: u64,
    expected_keyframes: f64,
    cameras_with_errors: usize,
    first_error_opt: Option<String>,
}

/// One variant's cameras, kept alive while measured.
enum Cameras {
    Gst(Vec<gst::Pipeline>),
    /// The runtime owns the sessions' tasks; dropping it ends them.
    Retina {
        _runtime: tokio::runtime::Runtime,
    },
}

impl Drop for Cameras {
    fn drop(&mut self) {
        // GStreamer elements must reach NULL before their last reference goes.
        if let Cameras::Gst(pipelines) = self {
            for pipeline in pipelines.iter() {
                if let Err(e) = pipeline.set_state(gst::State::Null) {
                    eprintln!("stopping {}: {e}", pipeline.name());
                }
            }
        }
    }
}

fn start_gst(
    port: u16,
    tuned: bool,
    counters: &[Arc<CameraCounters>],
) -> Result<Vec<gst::Pipeline>, String> {
    let extra = if tuned { GST_TUNED_PROPERTIES } else { "" };
    let mut pipelines = Vec::with_capacity(counters.len());
    for (index, camera) in counters.iter().enumerate() {
        let description = format!(
            "rtspsrc location=rtsp://127.0.0.1:{port}/cam/{} protocols=tcp {extra} \
             ! rtph264depay ! h264parse name=parse ! fakesink",
            index + 1
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| format!("{description}: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "parse::launch gave no pipeline".to_owned())?;
        let parse = pipeline
            .by_name("parse")
            .ok_or_else(|| "no h264parse in the pipeline".to_owned())?;
        let src_pad = parse
            .static_pad("src")
            .ok_or_else(|| "h264parse has no src pad".to_owned())?;
        let camera_counters = Arc::clone(camera);
        src_pad.add_probe(gst::PadProbeType::BUFFER, move |_pad, info| {
            if let Some(buffer) = info.buffer() {
                camera_counters.count(!buffer.flags().contains(gst::BufferFlags::DELTA_UNIT));
            }
            gst::PadProbeReturn::Ok
        });
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("camera {}: set_state(Playing): {e}", index + 1))?;
        pipelines.push(pipeline);
    }
    Ok(pipelines)
}

/// Moves every pipeline's bus messages out (so they do not pile up) and records errors.
fn drain_buses(pipelines: &[gst::Pipeline], counters: &[Arc<CameraCounters>]) {
    for (pipeline, camera) in pipelines.iter().zip(counters) {
        let Some(bus) = pipeline.bus() else { continue };
        while let Some(message) = bus.pop() {
            if let gst::MessageView::Error(error) = message.view() {
                let source = message
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                camera.record_error(format!("{source}: {}", error.error()));
            }
        }
    }
}

async fn receive_with_retina(
    url: url::Url,
    camera: Arc<CameraCounters>,
    starts: Arc<tokio::sync::Semaphore>,
) -> Result<(), String> {
    use retina::client::{
        PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions, Transport,
    };
    use retina::codec::CodecItem;

    let start_permit = starts
        .acquire_owned()
        .await
        .map_err(|e| format!("start permit: {e}"))?;
    let mut session = Session::describe(url, SessionOptions::default())
        .await
        .map_err(|e| format!("DESCRIBE: {e}"))?;
    let video = session
        .streams()
        .iter()
        .position(|s| s.media() == "video" && s.encoding_name() == "h264")
        .ok_or_else(|| "no H.264 video stream in the SDP".to_owned())?;
    camera.stage.store(1, Ordering::Relaxed);
    let transport = Transport::Tcp(TcpTransportOptions::default());
    session
        .setup(video, SetupOptions::default().transport(transport))
        .await
        .map_err(|e| format!("SETUP: {e}"))?;
    camera.stage.store(2, Ordering::Relaxed);
    let playing = session
        .play(PlayOptions::default())
        .await
        .map_err(|e| format!("PLAY: {e}"))?;
    camera.stage.store(3, Ordering::Relaxed);
    drop(start_permit);
    let demuxed = playing.demuxed().map_err(|e| format!("demuxed: {e}"))?;
    let mut demuxed = std::pin::pin!(demuxed);
    while let Some(item) = demuxed.next().await {
        if let CodecItem::VideoFrame(frame) = item.map_err(|e| format!("stream: {e}"))? {
            camera.count(frame.is_random_access_point());
        }
    }
    Err("stream ended".to_owned())
}

fn start_retina(
    port: u16,
    counters: &[Arc<CameraCounters>],
    runtime: &tokio::runtime::Runtime,
) -> Result<(), String> {
    let starts = Arc::new(tokio::sync::Semaphore::new(RETINA_STARTS_AT_ONCE));
    for (index, camera) in counters.iter().enumerate() {
        let address = format!("rtsp://127.0.0.1:{port}/cam/{}", index + 1);
        let url = url::Url::parse(&address).map_err(|e| format!("{address}: {e}"))?;
        let camera = Arc::clone(camera);
        let starts = Arc::clone(&starts);
        runtime.spawn(async move {
            if let Err(error) = receive_with_retina(url, Arc::clone(&camera), starts).await {
                camera.record_error(error);
            }
        });
    }
    Ok(())
}

fn snapshot(counters: &[Arc<CameraCounters>]) -> Vec<(u64, u64)> {
    counters
        .iter()
        .map(|c| {
            (
                c.frames.load(Ordering::Relaxed),
                c.keyframes.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Waits `duration`, draining GStreamer buses once a second.
fn wait(cameras: &Cameras, counters: &[Arc<CameraCounters>], duration: Duration) {
    let deadline = Instant::now() + duration;
    loop {
        if let Cameras::Gst(pipelines) = cameras {
            drain_buses(pipelines, counters);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
}

/// Runs one variant with `camera_count` cameras in this process and measures it.
fn measure(
    variant: Variant,
    camera_count: usize,
    port: u16,
    window: Duration,
) -> Result<Measurement, String> {
    let ticks_per_second = clock_ticks_per_second()?;
    let counters: Vec<Arc<CameraCounters>> = (0..camera_count)
        .map(|_| Arc::new(CameraCounters::default()))
        .collect();
    // The fixed cost each approach has before any camera: GStreamer initialised (plugin
    // registry loaded), or the tokio runtime with its 2 workers running.
    let runtime_opt = match variant {
        Variant::Gst | Variant::GstTuned => {
            gst::init().map_err(|e| format!("gst::init: {e}"))?;
            None
        }
        Variant::Retina => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?,
        ),
    };
    std::thread::sleep(Duration::from_millis(500));
    let base = proc_sample(ticks_per_second)?;

    let started = Instant::now();
    let cameras = match runtime_opt {
        None => Cameras::Gst(start_gst(port, variant == Variant::GstTuned, &counters)?),
        Some(runtime) => {
            start_retina(port, &counters, &runtime)?;
            Cameras::Retina { _runtime: runtime }
        }
    };
    loop {
        wait(&cameras, &counters, Duration::from_millis(200));
        let waiting: Vec<usize> = counters
            .iter()
            .enumerate()
            .filter(|(_, c)| c.keyframes.load(Ordering::Relaxed) == 0)
            .map(|(i, _)| i + 1)
            .collect();
        if waiting.is_empty() {
            break;
        }
        if started.elapsed() > START_LIMIT {
            let first_error = counters
                .iter()
                .enumerate()
                .find_map(|(i, c)| c.error().map(|e| format!("camera {}: {e}", i + 1)))
                .unwrap_or_else(|| "no error reported".to_owned());
            let mut stuck_stages = [0usize; 4];
            let mut stuck_frames = 0;
            for &camera in &waiting {
                let counters = &counters[camera - 1];
                stuck_frames += counters.frames.load(Ordering::Relaxed);
                let stage = counters.stage.load(Ordering::Relaxed) as usize;
                stuck_stages[stage.min(3)] += 1;
            }
            let stages = match variant {
                Variant::Retina => format!(
                    "; retina stages of those: {} in DESCRIBE, {} in SETUP, {} in PLAY, \
                     {} playing, {stuck_frames} frames among them",
                    stuck_stages[0], stuck_stages[1], stuck_stages[2], stuck_stages[3]
                ),
                Variant::Gst | Variant::GstTuned => String::new(),
            };
            return Err(format!(
                "{} of {camera_count} cameras delivered no keyframe within {:?} \
                 (first: /cam/{}){stages}; first error: {first_error}",
                waiting.len(),
                START_LIMIT,
                waiting[0]
            ));
        }
    }
    let start_s = started.elapsed().as_secs_f64();
    wait(&cameras, &counters, SETTLE);

    let before = proc_sample(ticks_per_second)?;
    let frames_before = snapshot(&counters);
    let window_started = Instant::now();
    wait(&cameras, &counters, window);
    let after = proc_sample(ticks_per_second)?;
    let frames_after = snapshot(&counters);
    let window_s = window_started.elapsed().as_secs_f64();

    let deltas: Vec<(u64, u64)> = frames_before
        .iter()
        .zip(&frames_after)
        .map(|(b, a)| (a.0 - b.0, a.1 - b.1))
        .collect();
    let expected_frames = FPS * window_s;
    let cameras_f = camera_count as f64;
    let min_frames = deltas.iter().map(|d| d.0).min().unwrap_or(0);
    let total_frames: u64 = deltas.iter().map(|d| d.0).sum();
    let errors: Vec<String> = counters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.error().map(|e| format!("camera {}: {e}", i + 1)))
        .collect();
    let measurement = Measurement {
        variant: variant.name().to_owned(),
        cameras: camera_count,
        window_s,
        start_s,
        cpu_ms_per_camera_second: (after.cpu_s - before.cpu_s) * 1000.0 / (cameras_f * window_s),
        base_rss_mb: base.rss_bytes as f64 / 1e6,
        base_threads: base.threads,
        rss_mb_per_camera: (after.rss_bytes as f64 - base.rss_bytes as f64) / 1e6 / cameras_f,
        threads_per_camera: (after.threads as f64 - base.threads as f64) / cameras_f,
        min_frames_ratio: min_frames as f64 / expected_frames,
        total_frames_ratio: total_frames as f64 / (expected_frames * cameras_f),
        min_keyframes: deltas.iter().map(|d| d.1).min().unwrap_or(0),
        expected_keyframes: window_s * FPS / GOP,
        cameras_with_errors: errors.len(),
        first_error_opt: errors.into_iter().next(),
    };
    drop(cameras);
    Ok(measurement)
}

/// Child process: `INGEST_RECEIVE_CHILD=<variant> <cameras> <port> <window_s>`.
fn child(spec: &str) -> ExitCode {
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let parsed = match parts.as_slice() {
        [variant, cameras, port, window] => Variant::parse(variant).zip(
            cameras
                .parse::<usize>()
                .ok()
                .zip(port.parse::<u16>().ok())
                .zip(window.parse::<f64>().ok()),
        ),
        _ => None,
    };
    let Some((variant, ((cameras, port), window_s))) = parsed else {
        eprintln!("{CHILD_ENV}={spec:?} is not `<variant> <cameras> <port> <window_s>`");
        return ExitCode::from(64);
    };
    match measure(variant, cameras, port, Duration::from_secs_f64(window_s)) {
        Ok(measurement) => match serde_json::to_string(&measurement) {
            Ok(json) => {
                println!("{RESULT_PREFIX}{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("serialising the result: {e}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("{} with {cameras} cameras: {error}", variant.name());
            ExitCode::FAILURE
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn simulator_binary() -> Result<PathBuf, String> {
    if let Ok(path) = std::env::var("INGEST_SIM_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    // target/release/deps/ingest_receive-HASH → target/release/sitcenter
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("sitcenter"))
        .ok_or_else(|| format!("{} has no grandparent", exe.display()))?;
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(format!(
            "{} not found: run `cargo build --release --bin sitcenter` or set INGEST_SIM_BIN",
            candidate.display()
        ))
    }
}

/// The simulator process; killed when dropped.
struct Simulator(Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Err(e) = self.0.kill() {
            eprintln!("stopping the simulator: {e}");
        }
        // Reap it; its exit status after kill says nothing.
        let _status = self.0.wait();
    }
}

fn start_simulator(cameras: usize) -> Result<(Simulator, u16), String> {
    let binary = simulator_binary()?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("finding a free port: {e}"))?
        .port();
    let child = Command::new(&binary)
        .args(["rtsp-sim", "--port", &port.to_string()])
        .args(["--cameras", &cameras.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let simulator = Simulator(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(format!("the simulator never listened on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok((simulator, port))
}

fn run_child(
    variant: Variant,
    cameras: usize,
    port: u16,
    window_s: f64,
) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let output = Command::new(exe)
        .env(
            CHILD_ENV,
            format!("{} {cameras} {port} {window_s}", variant.name()),
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
    {
        Some(json) => serde_json::from_str(json).map_err(|e| format!("child result: {e}")),
        None => Err(format!(
            "child exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

fn orchestrate() -> Result<(), String> {
    let camera_counts: Vec<usize> = env_or("INGEST_CAMERAS", "50,200")
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .map_err(|e| format!("INGEST_CAMERAS {n:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let variants: Vec<Variant> = env_or("INGEST_VARIANTS", "gst,gst-tuned,retina")
        .split(',')
        .map(|v| Variant::parse(v.trim()).ok_or_else(|| format!("unknown variant {v:?}")))
        .collect::<Result<_, _>>()?;
    let window_s: f64 = env_or("INGEST_WINDOW_S", "20")
        .parse()
        .map_err(|e| format!("INGEST_WINDOW_S: {e}"))?;
    let most = camera_counts.iter().copied().max().unwrap_or(0);
    let (_simulator, port) = start_simulator(most)?;
    eprintln!("rtsp-sim serving {most} cameras on port {port}");

    let mut results: BTreeMap<(usize, Variant), Result<Measurement, String>> = BTreeMap::new();
    for &cameras in &camera_counts {
        for &variant in &variants {
            eprintln!("measuring {} with {cameras} cameras…", variant.name());
            let result = run_child(variant, cameras, port, window_s);
            if let Err(error) = &result {
                eprintln!("  failed: {error}");
            }
            results.insert((cameras, variant), result);
        }
    }

    println!(
        "| cameras | receiver | CPU ms per camera-second | RSS per camera (MB) | \
         threads per camera | frames, fewest of one camera / expected | frames, all / expected | \
         keyframes, fewest of one camera (expected) | fixed cost before cameras | \
         time until all deliver (s) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|");
    for ((cameras, variant), result) in &results {
        match result {
            Ok(m) => println!(
                "| {cameras} | {} | {:.2} | {:.2} | {:.2} | {:.1} % | {:.1} % | {} ({:.1}) | \
                 {:.1} MB, {} threads | {:.1} |",
                variant.description(),
                m.cpu_ms_per_camera_second,
                m.rss_mb_per_camera,
                m.threads_per_camera,
                m.min_frames_ratio * 100.0,
                m.total_frames_ratio * 100.0,
                m.min_keyframes,
                m.expected_keyframes,
                m.base_rss_mb,
                m.base_threads,
                m.start_s,
            ),
            Err(error) => println!(
                "| {cameras} | {} | failed: {} | | | | | | | |",
                variant.description(),
                error.replace('|', "/")
            ),
        }
    }
    for ((cameras, variant), result) in &results {
        if let Ok(m) = result
            && let Some(error) = &m.first_error_opt
        {
            println!(
                "\n{} with {cameras} cameras: {} cameras reported errors; first: {error}",
                variant.name(),
                m.cameras_with_errors
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    // Test runners list or run every target (`cargo test --all-targets`, nextest's
    // `--list`): this is a benchmark of minutes, run only by `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return ExitCode::SUCCESS;
    }
    match orchestrate() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ingest_receive: {error}");
            ExitCode::FAILURE
        }
    }
}
