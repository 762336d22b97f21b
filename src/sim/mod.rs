//! Simulated city cameras over real RTSP (`sitcenter rtsp-sim`), for tests, demos and load runs.
//!
//! # What it owns
//! One `gst-rtsp-server` on a dedicated thread running its own glib `MainContext` + `MainLoop`,
//! serving clips from `test-media/` that are demuxed **once** into memory (H.264 access units,
//! SPS/PPS in front of every IDR) and looped forever. Every mount has its own
//! `RTSPMediaFactory` launching
//! `( appsrc name=src format=time max-buffers=5 ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )`,
//! fed from appsrc's `need-data` with explicit, ever-increasing pts/dts (each loop adds the
//! clip's duration). The appsrc is not live; the server's sinks synchronise on the clock, so
//! every stream is sent in real time (25 fps for our clips).
//!
//! Media are **not shared**: each connection gets its own pipeline, so every client starts at a
//! keyframe and the per-connection clocks of `/flaky` and `/stall` need no bookkeeping. Both RTP
//! over TCP (interleaved) and over UDP are offered.
//!
//! # Mounts (`N` of each kind from [`SimConfig`]; camera `i` of a kind plays `media[(i-1) % len]`)
//! | mount | behaviour |
//! |---|---|
//! | `/cam/{i}` | a good camera, looping its clip |
//! | `/shared/{i}` | the same clip, but all clients of the mount share one media (one payloader, joining mid-GOP): a load generator whose cost per client is the sending only, so that a small machine can serve thousands of client sessions (`cameras` of them, like `/cam`) |
//! | `/flaky/{i}` | like `/cam`, but the server closes the client's connection `flaky_period` after it asked for the stream (DESCRIBE); a reconnect gets a fresh period |
//! | `/stall/{i}` | streams `stall_after` of video after each connection, then sends nothing while keeping the connection (and the RTSP session) open |
//! | `/corrupt/{i}` | RTSP and RTP work, but every slice NAL unit's bytes after its NAL header are a seeded pseudo-random pattern: nothing decodes |
//! | `/refuse/{i}` | DESCRIBE/SETUP/PLAY are answered `401 Unauthorized` whatever the credentials (the factory admits only a role no token has) |
//! | `/secure/{i}` | needs RTSP basic auth `sim` / `sim-secret`; without it `401 Unauthorized` |
//!
//! # What a client sees (measured, GStreamer 1.22, `rtspsrc protocols=tcp`)
//! | mount | client side |
//! |---|---|
//! | `/cam` | 25 fps, the first buffer after `rtph264depay ! h264parse` is a keyframe |
//! | `/flaky` | bus WARNING from rtspsrc "Could not read from resource." (debug: "The server closed the connection."), then **EOS**, no ERROR |
//! | `/stall` | frames stop after `stall_after` (50 frames for 2 s); then nothing on the bus at all, no EOS, no error (over UDP too, at least 12 s; RTCP sender reports keep coming) |
//! | `/corrupt` | RTP and depayloaded access units at 25 fps; `avdec_h264` outputs **no** frame and posts nothing on the bus (its `max-errors` is -1): it only logs "slice type 30 too large at 0", "decode_slice_header error", "no frame!" and the video decoder warns "Failed to send data for decoding" / "Invalid input packet" |
//! | `/refuse` | bus ERROR "Unauthorized" (debug "Unauthorized (401)"), with or without credentials |
//! | `/secure` | without or with wrong credentials: ERROR "Unauthorized" / "Unauthorized (401)"; with `user-id=sim user-pw=sim-secret`: 25 fps |
//! | any, after [`RtspSim::stop`] | WARNING "Could not read from resource." / "The server closed the connection.", then EOS |
//!
//! A mount that does not exist answers 404 ("Not found" on the client bus).
//!
//! # One way in
//! [`RtspSim::start`] → [`RtspSim::url`] / [`RtspSim::mounts`] → [`RtspSim::stop`] (or drop).
//! `sitcenter rtsp-sim` (src/cli/) serves until Ctrl-C. Errors are [`SimError`]. Logs go through `tracing`.

pub(crate) mod clip;
mod error;
mod feeder;
pub mod sensors;
mod server;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

pub use error::SimError;

/// The user name `/secure/*` accepts.
pub const SECURE_USER: &str = server::SECURE_USER;
/// The password `/secure/*` accepts.
pub const SECURE_PASSWORD: &str = server::SECURE_PASSWORD;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// TCP port for RTSP; 0 picks a free (ephemeral) port, see [`RtspSim::port`].
    pub port: u16,
    /// Address to listen on, e.g. `127.0.0.1`.
    pub bind: String,
    /// Number of good cameras, `/cam/1..=cameras`.
    pub cameras: usize,
    /// Clips (H.264 in MP4); camera `i` of each kind plays `media[(i-1) % media.len()]`.
    pub media: Vec<PathBuf>,
    /// Number of `/flaky/{i}` cameras.
    pub flaky: usize,
    /// A flaky camera drops its client this long after the client asked for the stream.
    pub flaky_period: Duration,
    /// Number of `/stall/{i}` cameras.
    pub stalling: usize,
    /// A stalling camera sends this much video per connection, then nothing.
    pub stall_after: Duration,
    /// Number of `/corrupt/{i}` cameras.
    pub corrupt: usize,
    /// Number of `/refuse/{i}` cameras.
    pub refusing: usize,
    /// Number of `/secure/{i}` cameras.
    pub secure: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 8554,
            bind: "127.0.0.1".to_owned(),
            cameras: 16,
            media: vec![PathBuf::from("test-media/synthetic-360p.mp4")],
            flaky: 1,
            flaky_period: Duration::from_secs(10),
            stalling: 1,
            stall_after: Duration::from_secs(5),
            corrupt: 1,
            refusing: 1,
            secure: 1,
        }
    }
}

impl SimConfig {
    fn validate(&self) -> Result<(), SimError> {
        let mut problems = Vec::new();
        if self.media.is_empty() {
            problems.push("`media` lists no clip".to_owned());
        }
        if self.bind.trim().is_empty() {
            problems.push("`bind` is empty".to_owned());
        }
        if self.flaky > 0 && self.flaky_period.is_zero() {
            problems.push("`flaky_period` must be more than 0".to_owned());
        }
        if self.stalling > 0 && self.stall_after.is_zero() {
            problems.push("`stall_after` must be more than 0".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SimError::Config(problems.join("; ")))
        }
    }
}

/// The running simulator. Stop it with [`RtspSim::stop`]; dropping it does the same.
#[derive(Debug)]
pub struct RtspSim {
    port: u16,
    host: String,
    mounts: Vec<String>,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    context: glib::MainContext,
    main_loop: glib::MainLoop,
    thread: JoinHandle<()>,
}

impl RtspSim {
    /// Demux the clips, build every mount and start listening; returns once the port is bound.
    pub fn start(cfg: SimConfig) -> Result<RtspSim, SimError> {
        cfg.validate()?;
        gst::init()?;
        let mounts = server::plan_mounts(&cfg);
        let clips = server::load_clips(&mounts)?;
        let mount_paths: Vec<String> = mounts.iter().map(|m| m.path.clone()).collect();

        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<Ready, SimError>>(1);
        let thread_cfg = cfg.clone();
        let thread = std::thread::Builder::new()
            .name("rtsp-sim".to_owned())
            .spawn(move || serve(thread_cfg, mounts, clips, ready_tx))
            .map_err(|error| SimError::Thread(error.to_string()))?;
        let ready = match ready_rx.recv() {
            Ok(Ok(ready)) => ready,
            Ok(Err(error)) => {
                let _joined = thread.join();
                return Err(error);
            }
            Err(_) => {
                let _joined = thread.join();
                return Err(SimError::Thread(
                    "server thread ended before listening".to_owned(),
                ));
            }
        };
        let host = match cfg.bind.as_str() {
            "0.0.0.0" | "::" | "[::]" => "127.0.0.1".to_owned(),
            bind if bind.contains(':') && !bind.starts_with('[') => format!("[{bind}]"),
            bind => bind.to_owned(),
        };
        tracing::info!(port = ready.port, bind = %cfg.bind, mounts = mount_paths.len(), "RTSP simulator listening");
        Ok(RtspSim {
            port: ready.port,
            host,
            mounts: mount_paths,
            running: Some(Running {
                context: ready.context,
                main_loop: ready.main_loop,
                thread,
            }),
        })
    }

    /// The port the server really listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `rtsp://HOST:PORT{mount}`, e.g. `url("/cam/3")`.
    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://{}:{}{}", self.host, self.port, mount)
    }

    /// Every mount served, in order: cam, shared, flaky, stall, corrupt, refuse, secure.
    pub fn mounts(&self) -> Vec<String> {
        self.mounts.clone()
    }

    /// Stop serving: close every client connection, tear down every media, release the port
    /// and join the server thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let main_loop = running.main_loop.clone();
        // Quit from inside the loop so the cleanup after `run()` sees a consistent state.
        running.context.invoke(move || main_loop.quit());
        if running.thread.join().is_err() {
            tracing::error!("RTSP simulator thread panicked");
        }
        tracing::info!(port = self.port, "RTSP simulator stopped");
    }
}

impl Drop for RtspSim {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Ready {
    port: u16,
    context: glib::MainContext,
    main_loop: glib::MainLoop,
}

/// The server thread: build, listen, report, run until quit, then close everything.
fn serve(
    cfg: SimConfig,
    mounts: Vec<server::Mount>,
    clips: std::collections::HashMap<(PathBuf, bool), std::sync::Arc<clip::Clip>>,
    ready_tx: mpsc::SyncSender<Result<Ready, SimError>>,
) {
    let context = glib::MainContext::new();
    let main_loop = glib::MainLoop::new(Some(&context), false);
    let outcome = context.with_thread_default(|| {
        let server = match server::build_server(&cfg, &mounts, &clips, &context) {
            Ok(server) => server,
            Err(error) => {
                let _sent = ready_tx.send(Err(error));
                return;
            }
        };
        drop(clips);
        let source = match server.create_source(None::<&rtsp::gio::Cancellable>) {
            Ok(source) => source,
            Err(error) => {
                let _sent = ready_tx.send(Err(SimError::Bind {
                    bind: cfg.bind.clone(),
                    port: cfg.port,
                    message: error.to_string(),
                }));
                return;
            }
        };
        // `SourceId::remove` would look in the global default context; destroy the source itself.
        let _source_id = source.attach(Some(&context));
        let port = match u16::try_from(server.bound_port()) {
            Ok(port) => port,
            Err(_) => {
                source.destroy();
                let _sent = ready_tx.send(Err(SimError::Bind {
                    bind: cfg.bind.clone(),
                    port: cfg.port,
                    message: "server reports no bound port".to_owned(),
                }));
                return;
            }
        };
        let ready = Ready {
            port,
            context: context.clone(),
            main_loop: main_loop.clone(),
        };
        if ready_tx.send(Ok(ready)).is_err() {
            source.destroy();
            return;
        }
        main_loop.run();

        // Stop accepting, then close every client: their sessions and media go with them.
        source.destroy();
        drop(source);
        let closed =
            server.client_filter(Some(&mut |_server, _client| rtsp::RTSPFilterResult::Remove));
        tracing::debug!(clients = closed.len(), "RTSP simulator closed its clients");
        drop(closed);
        if let Some(pool) = server.session_pool() {
            let _removed = pool.filter(Some(&mut |_pool, _session| rtsp::RTSPFilterResult::Remove));
        }
        while context.iteration(false) {}
        drop(server);
        while context.iteration(false) {}
    });
    if let Err(error) = outcome {
        tracing::error!(%error, "RTSP simulator could not own its main context");
    }
}
