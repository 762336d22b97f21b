//! Builds the `RTSPServer`: one factory per mount, auth roles, per-connection media with a
//! [`Feeder`], and the timers that drop flaky clients.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

use super::clip::Clip;
use super::feeder::Feeder;
use super::{SimConfig, SimError};

/// The media pipeline every mount serves; `src` is fed by a [`Feeder`].
const LAUNCH: &str = "( appsrc name=src format=time max-buffers=5 ! h264parse \
                      ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
/// Pending connections the listening socket queues (the kernel caps it at `somaxconn`).
const LISTEN_BACKLOG: i32 = 1024;

/// The only credentials `/secure/*` accepts.
pub(crate) const SECURE_USER: &str = "sim";
pub(crate) const SECURE_PASSWORD: &str = "sim-secret";
/// Role of clients without credentials (the auth's default token).
const ROLE_ANONYMOUS: &str = "anonymous";
/// Role of clients that sent `sim:sim-secret`.
const ROLE_SECURE: &str = "sim";
/// Threads serving RTSP clients (requests, media preparation); see `build_server`.
const CLIENT_THREADS: i32 = 4;
/// Seed of the `/corrupt/*` byte pattern.
const CORRUPTION_SEED: u64 = 0x5eed_c0de;

/// How a mount misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Good,
    /// Like `Good`, but every client of the mount shares one media (one payloader): for load
    /// runs where the simulator, not the client, would otherwise run out of CPU.
    Shared,
    Flaky,
    Stall,
    Corrupt,
    Refuse,
    Secure,
}

impl Behaviour {
    fn prefix(self) -> &'static str {
        match self {
            Behaviour::Good => "cam",
            Behaviour::Shared => "shared",
            Behaviour::Flaky => "flaky",
            Behaviour::Stall => "stall",
            Behaviour::Corrupt => "corrupt",
            Behaviour::Refuse => "refuse",
            Behaviour::Secure => "secure",
        }
    }
}

/// One mount to serve.
#[derive(Debug, Clone)]
pub(crate) struct Mount {
    pub(crate) path: String,
    pub(crate) behaviour: Behaviour,
    pub(crate) clip: PathBuf,
}

/// The mounts a config asks for, in a stable order; camera i of a kind plays `media[(i-1) % len]`.
pub(crate) fn plan_mounts(cfg: &SimConfig) -> Vec<Mount> {
    let kinds = [
        (Behaviour::Good, cfg.cameras),
        (Behaviour::Shared, cfg.cameras),
        (Behaviour::Flaky, cfg.flaky),
        (Behaviour::Stall, cfg.stalling),
        (Behaviour::Corrupt, cfg.corrupt),
        (Behaviour::Refuse, cfg.refusing),
        (Behaviour::Secure, cfg.secure),
    ];
    let mut mounts = Vec::new();
    for (behaviour, count) in kinds {
        for i in 1..=count {
            let clip = cfg.media[(i - 1) % cfg.media.len()].clone();
            mounts.push(Mount {
                path: format!("/{}/{i}", behaviour.prefix()),
                behaviour,
                clip,
            });
        }
    }
    mounts
}

/// Demux every distinct clip once (and corrupt it once if a corrupt mount plays it).
pub(crate) fn load_clips(
    mounts: &[Mount],
) -> Result<HashMap<(PathBuf, bool), Arc<Clip>>, SimError> {
    let mut clips: HashMap<(PathBuf, bool), Arc<Clip>> = HashMap::new();
    for mount in mounts {
        let plain_key = (mount.clip.clone(), false);
        if !clips.contains_key(&plain_key) {
            let clip = Clip::load(&mount.clip)?;
            tracing::info!(
                clip = %mount.clip.display(),
                frames = clip.frames.len(),
                duration = %clip.duration,
                "clip demuxed into memory"
            );
            clips.insert(plain_key.clone(), Arc::new(clip));
        }
        let corrupt_key = (mount.clip.clone(), true);
        if mount.behaviour == Behaviour::Corrupt && !clips.contains_key(&corrupt_key) {
            let corrupted = clips[&plain_key].corrupted(CORRUPTION_SEED)?;
            clips.insert(corrupt_key, Arc::new(corrupted));
        }
    }
    Ok(clips)
}

/// Build the server (not yet listening) with every mount, auth and flaky timers.
pub(crate) fn build_server(
    cfg: &SimConfig,
    mounts: &[Mount],
    clips: &HashMap<(PathBuf, bool), Arc<Clip>>,
    context: &glib::MainContext,
) -> Result<rtsp::RTSPServer, SimError> {
    let server = rtsp::RTSPServer::new();
    server.set_address(&cfg.bind);
    server.set_service(&cfg.port.to_string());
    // gst-rtsp-server listens with a backlog of 5 by default: a client storm of hundreds of
    // connects overflows it and the kernel drops SYNs, so connects stall for seconds.
    server.set_backlog(LISTEN_BACKLOG);
    server.set_auth(Some(&make_auth()));
    // By default every client is served on the server's one main-loop thread, and preparing a
    // media (building and prerolling its pipeline) blocks that thread: a storm of 200
    // simultaneous connects made some clients time out. A few pool threads serve clients in
    // parallel.
    if let Some(pool) = server.thread_pool() {
        pool.set_max_threads(CLIENT_THREADS);
    }
    let mount_points = server
        .mount_points()
        .ok_or_else(|| SimError::Gstreamer("RTSP server has no mount points".to_owned()))?;
    for mount in mounts {
        let key = (mount.clip.clone(), mount.behaviour == Behaviour::Corrupt);
        let clip = clips.get(&key).cloned().ok_or_else(|| {
            SimError::Config(format!("clip {} was not loaded", mount.clip.display()))
        })?;
        let factory = make_factory(cfg, mount, clip, context);
        mount_points.add_factory(&mount.path, factory);
    }
    Ok(server)
}

fn make_auth() -> rtsp::RTSPAuth {
    let auth = rtsp::RTSPAuth::new();
    let mut anonymous = rtsp::RTSPToken::builder()
        .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE_ANONYMOUS)
        .build();
    auth.set_default_token(Some(&mut anonymous));
    let secure = rtsp::RTSPToken::builder()
        .field(rtsp::RTSP_TOKEN_MEDIA_FACTORY_ROLE, ROLE_SECURE)
        .build();
    let basic = rtsp::RTSPAuth::make_basic(SECURE_USER, SECURE_PASSWORD);
    auth.add_basic(basic.as_str(), &secure);
    auth
}

/// Give `role` the right to see the mount (`access`; without it the server answers 404, hiding
/// the mount) and, if `construct`, to get the stream (without it: 401 + `WWW-Authenticate`).
fn permit(factory: &rtsp::RTSPMediaFactory, role: &str, construct: bool) {
    let structure = gst::Structure::builder(role)
        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
        .field(rtsp::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, construct)
        .build();
    factory.add_role_from_structure(&structure);
}

/// Frames between the start points of consecutive `/shared/{i}` mounts.
const SHARED_PHASE_STEP: usize = 37;

fn make_factory(
    cfg: &SimConfig,
    mount: &Mount,
    clip: Arc<Clip>,
    context: &glib::MainContext,
) -> rtsp::RTSPMediaFactory {
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(LAUNCH);
    // One media per connection: every client starts at a keyframe, and the per-connection
    // timers of /flaky and /stall are simple. `/shared/*` shares one media among its clients.
    factory.set_shared(mount.behaviour == Behaviour::Shared);
    factory
        .set_protocols(rtsp::gst_rtsp::RTSPLowerTrans::TCP | rtsp::gst_rtsp::RTSPLowerTrans::UDP);
    match mount.behaviour {
        Behaviour::Secure => {
            permit(&factory, ROLE_ANONYMOUS, false);
            permit(&factory, ROLE_SECURE, true);
        }
        Behaviour::Refuse => {
            // Everybody may see it, nobody may play it: 401 whatever the credentials.
            permit(&factory, ROLE_ANONYMOUS, false);
            permit(&factory, ROLE_SECURE, false);
        }
        _ => {
            permit(&factory, ROLE_ANONYMOUS, true);
            permit(&factory, ROLE_SECURE, true);
        }
    }
    let stall_at = (mount.behaviour == Behaviour::Stall).then(|| {
        gst::ClockTime::from_nseconds(cfg.stall_after.as_nanos().min(u64::MAX as u128) as u64)
    });
    let flaky_period = (mount.behaviour == Behaviour::Flaky).then_some(cfg.flaky_period);
    let path = mount.path.clone();
    let context = context.clone();
    factory.connect_media_configure(move |_factory, media| {
        configure_media(media, &clip, stall_at, &path);
        if let Some(period) = flaky_period {
            schedule_drop(period, &path, &context);
        }
    });
    factory
}

/// Attach a fresh [`Feeder`] to the new media's appsrc.
fn configure_media(
    media: &rtsp::RTSPMedia,
    clip: &Arc<Clip>,
    stall_at: Option<gst::ClockTime>,
    path: &str,
) {
    let element = media.element();
    let Some(appsrc) = element
        .downcast_ref::<gst::Bin>()
        .and_then(|bin| bin.by_name("src"))
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
    else {
        tracing::error!(mount = %path, "media has no appsrc named src");
        return;
    };
    appsrc.set_caps(Some(&clip.caps));
    let feeder = Feeder::new(clip.clone(), stall_at, path.to_owned());
    // `/shared/{i}`: each mount starts the clip at another frame, so that the keyframes of
    // the mounts are spread over the GOP like those of real cameras, which are not in
    // phase (37 is prime to the clip's 50-frame GOP: mounts 1–50 take every phase once).
    let feeder = match path
        .strip_prefix("/shared/")
        .and_then(|i| i.parse::<usize>().ok())
    {
        Some(i) => feeder.starting_at(i * SHARED_PHASE_STEP),
        None => feeder,
    };
    let feeder = Mutex::new(feeder);
    appsrc.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |appsrc, _length| match feeder.lock() {
                Ok(mut feeder) => feeder.need_data(appsrc),
                Err(poisoned) => poisoned.into_inner().need_data(appsrc),
            })
            .build(),
    );
    tracing::debug!(mount = %path, "media configured for a new connection");
}

/// Close the connection of the client being served now, `period` from now.
fn schedule_drop(period: std::time::Duration, path: &str, context: &glib::MainContext) {
    // media-configure runs while the server handles this client's DESCRIBE, so the current
    // RTSP context names the client.
    let Some(client) =
        rtsp::RTSPContext::with_current_context(|ctx| ctx.client().map(|c| c.downgrade()))
            .flatten()
    else {
        tracing::warn!(mount = %path, "flaky mount: no current client to drop later");
        return;
    };
    let path = path.to_owned();
    let source = glib::timeout_source_new(period, None, glib::Priority::DEFAULT, move || {
        if let Some(client) = client.upgrade() {
            tracing::info!(mount = %path, "flaky camera drops its client");
            client.close();
        }
        glib::ControlFlow::Break
    });
    source.attach(Some(context));
}
