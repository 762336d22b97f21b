//! Test harness: simulated cameras on an ephemeral port, camera configs, fast
//! ingest settings, bounded waiting, process resource readings.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{CameraConfig, Credentials, IngestSettings, Sampling, SamplingMode, Transport};
use crate::domain::{CameraId, Position};
use crate::sim::{RtspSim, SimConfig};

pub fn media(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("test-media")
        .join(name)
}

/// A simulator config with `cameras` good cameras on an ephemeral port.
pub fn sim_config(cameras: usize) -> SimConfig {
    SimConfig {
        port: 0,
        bind: "127.0.0.1".to_owned(),
        cameras,
        media: vec![media("synthetic-360p.mp4")],
        flaky: 0,
        flaky_period: Duration::from_secs(5),
        stalling: 0,
        stall_after: Duration::from_secs(5),
        corrupt: 0,
        refusing: 0,
        secure: 0,
    }
}

pub fn start_sim(config: SimConfig) -> RtspSim {
    RtspSim::start(config).expect("the RTSP simulator starts")
}

/// Ingest settings scaled down so that tests see every state within seconds.
pub fn fast_settings() -> IngestSettings {
    IngestSettings {
        max_concurrent_connects: 64,
        connect_timeout: Duration::from_secs(8),
        stall_timeout: Duration::from_secs(3),
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_secs(2),
        frame_queue_capacity: 1024,
        analysis_width: 320,
        analysis_height: 320,
        pipelines_dir: None,
        reload_poll: Duration::from_secs(1),
        ..IngestSettings::default()
    }
}

pub fn camera(id: &str, url: &str) -> CameraConfig {
    CameraConfig {
        id: CameraId::new(id),
        name: format!("test camera {id}"),
        url: url::Url::parse(url).expect("test URL"),
        credentials: None,
        location: Position {
            lat: 51.17,
            lon: 71.43,
        },
        address: "Astana, test street 1".to_owned(),
        district: None,
        heading_deg: None,
        detectors: vec![crate::config::DetectorKind::Manholes],
        sampling: Sampling {
            mode: SamplingMode::Keyframes,
            interval: Duration::from_secs(2),
            quiet: None,
        },
        transport: Transport::Tcp,
        pipeline: crate::config::BuiltinPipeline::RtspH264.into(),
        zones: Vec::new(),
        masks: Vec::new(),
        calibration: Vec::new(),
        defined_at: "test".to_owned(),
    }
}

pub fn with_credentials(mut camera: CameraConfig, user: &str, password: &str) -> CameraConfig {
    camera.credentials = Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    });
    camera
}

/// Polls `check` until it returns `Some` or `limit` passes (a bound on waiting,
/// not a speed assertion: the limit is generous).
pub async fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every camera of `ingest` satisfies `check` (false after `limit`).
pub async fn wait_until_all(
    ingest: &crate::ingest::Ingest,
    limit: Duration,
    check: impl Fn(&crate::ingest::CameraSnapshot) -> bool,
) -> bool {
    wait_for(limit, || {
        ingest.snapshots().iter().all(&check).then_some(())
    })
    .await
    .is_some()
}
