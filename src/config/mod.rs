//! Configuration: a site folder (`camera-configs/<site>/`) holding `site.toml`
//! (node settings) and `cameras.toml` (the cameras), plus an optional secrets file.
//!
//! One way in: [`load_site`] parses, validates and returns a [`SiteConfig`], or
//! every problem at once as [`ConfigErrors`], each with file, line, column, camera
//! and field. Raw serde structs live in `raw.rs`; checks in `validate.rs`.
//! Credentials are resolved here and never printed (their `Debug` is redacted).

mod auth;
mod bounds;
mod camera;
mod credentials;
mod database;
mod detect;
mod error;
mod incidents;
mod kinds;
mod model;
mod open311;
mod pipelines;
mod raw;
mod sensors;
mod telemetry;
mod tracking;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use auth::{AuthSettings, ProxyIdentity};
pub use credentials::CREDENTIALS_ENV_PREFIX;
pub use database::RegistryDatabase;
pub use error::{ConfigError, ConfigErrors};
pub use incidents::{AssetKind, CategoryConfig, IncidentsConfig, parse_duration};
pub(crate) use kinds::named_enum;
pub use kinds::{DetectorKind, ZoneKind};
pub use model::{ClassSpec, ExecutionProvider, ManifestError, ModelManifest, OutputLayout};
pub use open311::Open311Config;
pub use pipelines::{BuiltinPipeline, PipelineName, PipelineTemplates, TemplatesError};
pub use sensors::{
    ChirpstackFields, ChirpstackSettings, SensorEntry, SensorMqttSettings, SensorTypeSettings,
    SensorsSettings,
};
pub use telemetry::{
    DevicePassword, RouteSettings, TelemetryMqttSettings, TelemetrySettings, VehicleEntry,
    VehicleTypeSettings, reload_vehicles,
};
pub use tracking::TrackerSettings;

use crate::domain::{CameraId, Position};

/// Default of `[site] utc_offset_minutes`: Astana, UTC+5.
pub const DEFAULT_UTC_OFFSET_MINUTES: i32 = 300;

/// Loads and validates the site in `dir`: `site.toml`, the cameras file it names
/// (default `cameras.toml`) and its secrets file, if any.
pub fn load_site(dir: &Path) -> Result<SiteConfig, ConfigErrors> {
    validate::load_site(dir)
}

/// Loads only the cameras file of an already loaded site (used by config reload).
pub fn reload_cameras(site: &SiteConfig) -> Result<Vec<CameraConfig>, ConfigErrors> {
    validate::reload_cameras(site)
}

#[derive(Debug, Clone)]
pub struct SiteConfig {
    pub name: String,
    pub city: Option<String>,
    pub dir: PathBuf,
    pub cameras_file: PathBuf,
    pub secrets_file: Option<PathBuf>,
    pub bounds: Bounds,
    /// The site's local time: `[site] utc_offset_minutes` (night hours, quiet hours).
    pub utc_offset_minutes: i32,
    pub ingest: IngestSettings,
    pub http: HttpSettings,
    /// The appeal registry and its APIs; `None` runs ingest and the camera API only.
    pub registry: Option<RegistrySettings>,
    /// Detection, tracking and event outputs; `None` runs no detector.
    pub detect: Option<DetectSettings>,
    /// Manhole-cover sensors over MQTT (`[sensors]`); `None` runs no sensor stage.
    pub sensors: Option<SensorsSettings>,
    /// Vehicle GPS telemetry (`[telemetry]`); `None` runs no telemetry stage.
    pub telemetry: Option<TelemetrySettings>,
    pub cameras: Vec<CameraConfig>,
}

/// `[detect]` of `site.toml`. See docs/configuration.md.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectSettings {
    /// The model every detector uses (one model per node for now).
    pub model_name: String,
    /// Its manifest, read and validated at load (the ONNX file is checked when it starts).
    pub manifest: crate::config::ModelManifest,
    /// Detector → model classes.
    pub detectors: std::collections::BTreeMap<DetectorKind, DetectorRoute>,
    pub provider: crate::config::ExecutionProvider,
    pub max_batch: usize,
    pub max_wait: Duration,
    /// Detector threads (each owns a session).
    pub workers: usize,
    /// ONNX Runtime compute threads per worker.
    pub intra_threads: usize,
    /// Frames waiting for detection (drop-oldest, counted per camera).
    pub queue_capacity: usize,
    pub tracking: crate::config::TrackerSettings,
    pub night: crate::domain::NightHours,
    pub evidence_dir: PathBuf,
    pub parking_category: crate::domain::Category,
    pub restricted_category: crate::domain::Category,
    /// Events kept for `/api/events`.
    pub recent_events: usize,
    pub mqtt: Option<MqttSettings>,
}

/// Which classes of the model serve one detector name.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorRoute {
    pub model: String,
    /// Hazard classes, confirmed over time (`manholes`, `dumps`).
    pub classes: Vec<String>,
    /// `offences`: classes checked against `no_parking` zones.
    pub vehicle_classes: Vec<String>,
    /// `offences`: classes checked against `restricted` zones.
    pub person_classes: Vec<String>,
}

/// `[detect.mqtt]`
#[derive(Debug, Clone, PartialEq)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    /// Events go to `<topic_prefix>/<site>/events/<camera>`.
    pub topic_prefix: String,
    pub client_id: Option<String>,
}

/// `[registry]` of `site.toml`. See docs/configuration.md.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrySettings {
    /// The database and its two logins (`database.rs`).
    pub database: RegistryDatabase,
    /// Categories, SLA stages and dedup rules; built-in defaults when `None`.
    pub incidents: Option<std::sync::Arc<crate::config::IncidentsConfig>>,
    pub escalation_period: Duration,
    pub open311: Open311Config,
    /// Sessions and sign-in limits (`[registry.auth]`).
    pub auth: AuthSettings,
}

/// The site's extent; every camera must lie inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

impl Bounds {
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.south..=self.north).contains(&lat) && (self.west..=self.east).contains(&lon)
    }
}

/// `[ingest]` of `site.toml`. See docs/configuration.md for each setting.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSettings {
    pub max_concurrent_connects: usize,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub frame_queue_capacity: usize,
    pub analysis_width: u32,
    pub analysis_height: u32,
    pub pipelines_dir: Option<PathBuf>,
    pub reload_poll: Duration,
    /// How RTSP H.264 cameras over TCP are received and decoded.
    pub rtsp_backend: RtspBackend,
    /// Threads of the shared keyframe decoder pool (each owns one GStreamer decode pipeline).
    pub decoder_workers: usize,
    /// Keyframes waiting for a pool decoder; when full the oldest is dropped and counted.
    pub decoder_queue_capacity: usize,
    /// CPU time per second the node grants to decoding sampled frames (admission control).
    pub decode_budget_ms_per_s: f64,
    /// Measured CPU cost of decoding and scaling one sampled keyframe, in milliseconds.
    pub keyframe_decode_ms: f64,
    /// shared-decoder sessions read their socket at most once per this period and take
    /// everything that arrived meanwhile in one read (zero: read as packets arrive).
    pub receive_batch: Duration,
    /// Camera supervisors run on `receive_threads` threads driven in ticks of this
    /// period (zero: on the node's main runtime).
    pub receive_tick: Duration,
    pub receive_threads: usize,
}

/// Default of `[ingest] receive_batch_ms`: −29 % receive CPU at N = 100 against 100 ms
/// (docs/performance.md, "Receiving alone"); 500, the most allowed, saves more but leaves
/// a high-bitrate stream the least room in its socket buffer.
pub const DEFAULT_RECEIVE_BATCH_MS: u32 = 250;
/// Default of `[ingest] receive_tick_ms`.
pub const DEFAULT_RECEIVE_TICK_MS: u32 = 10;

/// The default number of receive threads: one per four cores, at least one, at most 8.
pub fn default_receive_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() / 4)
        .clamp(1, 8)
}

/// Default of `[ingest] keyframe_decode_ms`: a 360p keyframe decoded and letterboxed to
/// 640×640 RGB on the reference machine (docs/performance.md, decode floor), with margin.
pub const DEFAULT_KEYFRAME_DECODE_MS: f64 = 2.0;
/// Default of `[ingest] decoder_queue_capacity`.
pub const DEFAULT_DECODER_QUEUE_CAPACITY: usize = 256;
/// Share of the decoder workers' time the default decode budget grants.
pub const DEFAULT_DECODE_UTILISATION: f64 = 0.8;

/// The default number of pool decoders: the machine's cores, at most 8.
pub fn default_decoder_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8)
}

/// The default decode budget for `workers` decoders.
pub fn default_decode_budget_ms_per_s(workers: usize) -> f64 {
    workers as f64 * 1000.0 * DEFAULT_DECODE_UTILISATION
}

/// `[ingest] rtsp_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RtspBackend {
    /// retina (async RTSP on the tokio runtime) + a shared pool of keyframe decoders:
    /// for `rtsp-h264` cameras over TCP sampling keyframes. Others use a pipeline each.
    SharedDecoder,
    /// One GStreamer pipeline per camera for every camera (the issue 2 baseline).
    Pipeline,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_concurrent_connects: 32,
            connect_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            frame_queue_capacity: 256,
            analysis_width: 640,
            analysis_height: 640,
            pipelines_dir: None,
            reload_poll: Duration::from_secs(5),
            rtsp_backend: RtspBackend::SharedDecoder,
            decoder_workers: default_decoder_workers(),
            decoder_queue_capacity: DEFAULT_DECODER_QUEUE_CAPACITY,
            decode_budget_ms_per_s: default_decode_budget_ms_per_s(default_decoder_workers()),
            keyframe_decode_ms: DEFAULT_KEYFRAME_DECODE_MS,
            receive_batch: Duration::from_millis(DEFAULT_RECEIVE_BATCH_MS.into()),
            receive_tick: Duration::from_millis(DEFAULT_RECEIVE_TICK_MS.into()),
            receive_threads: default_receive_threads(),
        }
    }
}

/// `[http]`: where the node listens and the limits of its HTTP edge (docs/security.md).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// A connection must send a request's whole header within this long, and an idle
    /// keep-alive connection is closed after it.
    pub header_read_timeout: Duration,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections from one address at most; more are closed at once.
    pub max_connections_per_address: usize,
    /// Host names (besides IP literals and `localhost`) accepted in the `Host` header.
    pub allowed_hosts: Vec<String>,
    /// State-changing requests per minute from one address (anonymous or not).
    pub writes_per_minute_per_address: u32,
    /// State-changing requests per minute by one signed-in user or API key.
    pub writes_per_minute_per_key: u32,
    /// `[http] map_tiles_url`: raster tiles under the UI's maps (`None`: the site's own layers).
    pub map_tiles_url: Option<url::Url>,
}

pub const DEFAULT_HEADER_READ_TIMEOUT_S: u32 = 10;
pub const DEFAULT_MAX_CONNECTIONS: u32 = 2048;
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: u32 = 256;
pub const DEFAULT_WRITES_PER_MINUTE_PER_ADDRESS: u32 = 600;
pub const DEFAULT_WRITES_PER_MINUTE_PER_KEY: u32 = 6000;

impl HttpSettings {
    /// The defaults of every limit, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            header_read_timeout: Duration::from_secs(DEFAULT_HEADER_READ_TIMEOUT_S.into()),
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as usize,
            allowed_hosts: Vec::new(),
            writes_per_minute_per_address: DEFAULT_WRITES_PER_MINUTE_PER_ADDRESS,
            writes_per_minute_per_key: DEFAULT_WRITES_PER_MINUTE_PER_KEY,
            map_tiles_url: None,
        }
    }
}

/// One camera, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraConfig {
    pub id: CameraId,
    pub name: String,
    /// The stream address, without credentials.
    pub url: url::Url,
    pub credentials: Option<Credentials>,
    pub location: Position,
    pub address: String,
    pub district: Option<String>,
    pub heading_deg: Option<f64>,
    pub detectors: Vec<DetectorKind>,
    pub sampling: Sampling,
    pub transport: Transport,
    /// Name of the pipeline template (`pipelines/<name>.pipeline`).
    pub pipeline: PipelineName,
    pub zones: Vec<Zone>,
    pub masks: Vec<Vec<[f64; 2]>>,
    pub calibration: Vec<CalibrationPoint>,
    /// `file:line` of the camera's table, for messages.
    pub defined_at: String,
}

impl CameraConfig {
    /// Whether two versions of a camera differ in anything but where they are
    /// written: a config reload restarts only the cameras for which this is false.
    pub fn same_settings(&self, other: &Self) -> bool {
        let mut a = self.clone();
        a.defined_at.clear();
        let mut b = other.clone();
        b.defined_at.clear();
        a == b
    }
}

/// User and password for a camera, from the secrets file or the environment.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

/// What the pipeline decodes and how often a frame goes to analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub mode: SamplingMode,
    /// At most one frame per interval leaves the pipeline.
    pub interval: Duration,
    /// A longer interval for part of the day (e.g. yards at night), by policy.
    pub quiet: Option<QuietHours>,
}

/// `sampling.quiet_hours` and `sampling.quiet_interval_s`: local hours during which a
/// camera is analysed less often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuietHours {
    /// From (inclusive) and to (exclusive) local hour, with the site's UTC offset.
    pub hours: crate::domain::NightHours,
    pub interval: Duration,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            mode: SamplingMode::Keyframes,
            interval: Duration::from_secs(2),
            quiet: None,
        }
    }
}

impl Sampling {
    /// The interval in effect at `now` (time since the UNIX epoch).
    pub fn interval_at(&self, now: Duration) -> Duration {
        match &self.quiet {
            Some(quiet) if quiet.hours.is_night(now) => quiet.interval,
            _ => self.interval,
        }
    }

    /// The shortest interval of the day: what admission control charges, so that an
    /// admitted camera fits at every hour.
    pub fn peak_interval(&self) -> Duration {
        self.quiet
            .map_or(self.interval, |q| q.interval.min(self.interval))
    }

    /// The longest interval of the day: how long the watchdog may wait for a frame.
    pub fn slowest_interval(&self) -> Duration {
        self.quiet
            .map_or(self.interval, |q| q.interval.max(self.interval))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingMode {
    /// Delta frames are dropped before the decoder: only keyframes are decoded.
    Keyframes,
    /// Every frame is decoded and the interval applied after decoding (the
    /// approach of NVRs such as Frigate; our baseline).
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
    /// UDP first, TCP when UDP gets nothing (rtspsrc's default behaviour).
    Auto,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub name: String,
    pub kind: ZoneKind,
    /// Image polygon in normalised coordinates (0..1, origin top-left).
    pub polygon: Vec<[f64; 2]>,
    /// `no_parking`: how long a vehicle may stay (`max_dwell_s`, default 300 s).
    pub max_dwell: Duration,
    /// `restricted`: a person inside is an offence only during the night hours (default true).
    pub night_only: bool,
}

impl Zone {
    pub const DEFAULT_MAX_DWELL: Duration = Duration::from_secs(300);
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationPoint {
    /// Normalised image coordinates.
    pub image: [f64; 2],
    /// `[lat, lon]`.
    pub map: [f64; 2],
}

#[cfg(test)]
mod tests;
