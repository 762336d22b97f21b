//! The files as written: serde structs with spans, unknown keys refused.
//! Defaults live here as `const fn`s; `validate.rs` turns these into [`super::SiteConfig`].

use serde::Deserialize;
use toml::Spanned;

/// `site.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSiteFile {
    pub site: RawSite,
    #[serde(default)]
    pub ingest: RawIngest,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub registry: Option<RawRegistry>,
    #[serde(default)]
    pub detect: Option<RawDetect>,
    #[serde(default)]
    pub sensors: Option<super::sensors::RawSensors>,
    #[serde(default)]
    pub telemetry: Option<super::telemetry::RawTelemetry>,
}

/// `[detect]`: models, which model classes serve each detector, inference and tracking
/// settings, evidence and event outputs. Absent = no detection (frames feed the previews only).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDetect {
    /// Model name → manifest path (relative to the site folder, else to the repo's `models/`).
    pub models: Spanned<std::collections::BTreeMap<String, Spanned<String>>>,
    /// Detector name (as cameras list them) → model and classes.
    pub detectors: Spanned<std::collections::BTreeMap<String, Spanned<RawDetectorRoute>>>,
    #[serde(default)]
    pub provider: Option<Spanned<String>>,
    #[serde(default)]
    pub max_batch: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_wait_ms: Option<Spanned<u32>>,
    #[serde(default)]
    pub workers: Option<Spanned<u32>>,
    #[serde(default)]
    pub intra_threads: Option<Spanned<u32>>,
    #[serde(default)]
    pub queue_capacity: Option<Spanned<u32>>,
    #[serde(default)]
    pub confirm_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub confirm_min_samples: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_gap_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub forget_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub realert: Option<bool>,
    #[serde(default)]
    pub iou_match: Option<Spanned<f32>>,
    #[serde(default)]
    pub night_start_hour: Option<Spanned<u32>>,
    #[serde(default)]
    pub night_end_hour: Option<Spanned<u32>>,
    #[serde(default)]
    pub evidence_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub parking_category: Option<Spanned<String>>,
    #[serde(default)]
    pub restricted_category: Option<Spanned<String>>,
    #[serde(default)]
    pub recent_events: Option<Spanned<u32>>,
    #[serde(default)]
    pub mqtt: Option<RawMqtt>,
}

/// `[detect.detectors.<name>]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDetectorRoute {
    pub model: Spanned<String>,
    /// Hazard classes (`manholes`, `dumps`).
    #[serde(default)]
    pub classes: Vec<Spanned<String>>,
    /// `offences`: classes checked against `no_parking` zones.
    #[serde(default)]
    pub vehicle_classes: Vec<Spanned<String>>,
    /// `offences`: classes checked against `restricted` zones.
    #[serde(default)]
    pub person_classes: Vec<Spanned<String>>,
}

/// `[detect.mqtt]`: publish events to an MQTT broker.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMqtt {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub topic_prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// `[registry]`: the appeal registry (PostgreSQL) and its APIs. Absent = none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegistry {
    pub database_url: Spanned<String>,
    // The logins and timeouts: see `database.rs`.
    #[serde(default)]
    pub owner_credentials: Option<Spanned<String>>,
    #[serde(default)]
    pub service_credentials: Option<Spanned<String>>,
    #[serde(default)]
    pub service_user: Option<Spanned<String>>,
    #[serde(default)]
    pub migrate_at_start: Option<bool>,
    #[serde(default)]
    pub statement_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub lock_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub idle_in_transaction_timeout_s: Option<Spanned<f64>>,
    #[serde(default)]
    pub incidents_file: Option<Spanned<String>>,
    #[serde(default = "default_escalation_period_s")]
    pub escalation_period_s: Spanned<f64>,
    #[serde(default)]
    pub open311: super::Open311Config,
    #[serde(default)]
    pub auth: super::auth::RawAuth,
}

fn default_escalation_period_s() -> Spanned<f64> {
    unspanned(30.0)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSite {
    pub name: Spanned<String>,
    #[serde(default)]
    pub city: Option<String>,
    pub bounds: Spanned<RawBounds>,
    #[serde(default)]
    pub cameras_file: Option<Spanned<String>>,
    #[serde(default)]
    pub secrets_file: Option<Spanned<String>>,
    #[serde(default)]
    pub utc_offset_minutes: Option<Spanned<i32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBounds {
    pub south: f64,
    pub west: f64,
    pub north: f64,
    pub east: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIngest {
    #[serde(default = "default_max_concurrent_connects")]
    pub max_concurrent_connects: Spanned<u32>,
    #[serde(default = "default_connect_timeout_s")]
    pub connect_timeout_s: Spanned<f64>,
    #[serde(default = "default_stall_timeout_s")]
    pub stall_timeout_s: Spanned<f64>,
    #[serde(default = "default_backoff_initial_s")]
    pub backoff_initial_s: Spanned<f64>,
    #[serde(default = "default_backoff_max_s")]
    pub backoff_max_s: Spanned<f64>,
    #[serde(default = "default_frame_queue_capacity")]
    pub frame_queue_capacity: Spanned<u32>,
    #[serde(default = "default_analysis_size")]
    pub analysis_width: Spanned<u32>,
    #[serde(default = "default_analysis_size")]
    pub analysis_height: Spanned<u32>,
    #[serde(default)]
    pub pipelines_dir: Option<Spanned<String>>,
    #[serde(default = "default_reload_poll_s")]
    pub reload_poll_s: Spanned<f64>,
    #[serde(default = "default_rtsp_backend")]
    pub rtsp_backend: Spanned<String>,
    #[serde(default)]
    pub decoder_workers: Option<Spanned<u32>>,
    #[serde(default = "default_decoder_queue_capacity")]
    pub decoder_queue_capacity: Spanned<u32>,
    #[serde(default)]
    pub decode_budget_ms_per_s: Option<Spanned<f64>>,
    #[serde(default = "default_keyframe_decode_ms")]
    pub keyframe_decode_ms: Spanned<f64>,
    #[serde(default = "default_receive_batch_ms")]
    pub receive_batch_ms: Spanned<u32>,
    #[serde(default = "default_receive_tick_ms")]
    pub receive_tick_ms: Spanned<u32>,
    #[serde(default)]
    pub receive_threads: Option<Spanned<u32>>,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_concurrent_connects: default_max_concurrent_connects(),
            connect_timeout_s: default_connect_timeout_s(),
            stall_timeout_s: default_stall_timeout_s(),
            backoff_initial_s: default_backoff_initial_s(),
            backoff_max_s: default_backoff_max_s(),
            frame_queue_capacity: default_frame_queue_capacity(),
            analysis_width: default_analysis_size(),
            analysis_height: default_analysis_size(),
            pipelines_dir: None,
            reload_poll_s: default_reload_poll_s(),
            rtsp_backend: default_rtsp_backend(),
            decoder_workers: None,
            decoder_queue_capacity: default_decoder_queue_capacity(),
            decode_budget_ms_per_s: None,
            keyframe_decode_ms: default_keyframe_decode_ms(),
            receive_batch_ms: default_receive_batch_ms(),
            receive_tick_ms: default_receive_tick_ms(),
            receive_threads: None,
        }
    }
}

fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
fn default_max_concurrent_connects() -> Spanned<u32> {
    unspanned(32)
}
fn default_connect_timeout_s() -> Spanned<f64> {
    unspanned(10.0)
}
fn default_stall_timeout_s() -> Spanned<f64> {
    unspanned(10.0)
}
fn default_backoff_initial_s() -> Spanned<f64> {
    unspanned(1.0)
}
fn default_backoff_max_s() -> Spanned<f64> {
    unspanned(30.0)
}
fn default_frame_queue_capacity() -> Spanned<u32> {
    unspanned(256)
}
fn default_analysis_size() -> Spanned<u32> {
    unspanned(640)
}
fn default_reload_poll_s() -> Spanned<f64> {
    unspanned(5.0)
}
fn default_rtsp_backend() -> Spanned<String> {
    unspanned("shared-decoder".to_owned())
}
fn default_decoder_queue_capacity() -> Spanned<u32> {
    unspanned(crate::config::DEFAULT_DECODER_QUEUE_CAPACITY as u32)
}
fn default_keyframe_decode_ms() -> Spanned<f64> {
    unspanned(crate::config::DEFAULT_KEYFRAME_DECODE_MS)
}
fn default_receive_batch_ms() -> Spanned<u32> {
    unspanned(crate::config::DEFAULT_RECEIVE_BATCH_MS)
}
fn default_receive_tick_ms() -> Spanned<u32> {
    unspanned(crate::config::DEFAULT_RECEIVE_TICK_MS)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    #[serde(default)]
    pub header_read_timeout_s: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_connections: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_connections_per_address: Option<Spanned<u32>>,
    #[serde(default)]
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub writes_per_minute_per_address: Option<Spanned<u32>>,
    #[serde(default)]
    pub writes_per_minute_per_key: Option<Spanned<u32>>,
    /// A raster tile server for the UI's maps (`https://tiles.example/{z}/{x}/{y}.png`);
    /// without it the maps draw the site's own layers only.
    #[serde(default)]
    pub map_tiles_url: Option<Spanned<String>>,
}

impl Default for RawHttp {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            header_read_timeout_s: None,
            max_connections: None,
            max_connections_per_address: None,
            allowed_hosts: None,
            writes_per_minute_per_address: None,
            writes_per_minute_per_key: None,
            map_tiles_url: None,
        }
    }
}

impl RawHttp {
    /// The `listen` address, or an error naming it.
    pub(crate) fn http_listen(
        &self,
        collector: &mut super::error::Collector,
    ) -> Option<std::net::SocketAddr> {
        let listen = self.listen.get_ref();
        match listen.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                collector.push(
                    Some(self.listen.span()),
                    None,
                    Some("http.listen"),
                    format!("`{listen}` is not an address:port such as 127.0.0.1:8080"),
                );
                None
            }
        }
    }
}

fn default_listen() -> Spanned<String> {
    unspanned("127.0.0.1:8080".to_owned())
}

/// `[defaults]` of `cameras.toml`: what a camera gets when it does not say.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    #[serde(default)]
    pub detectors: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub sampling: Option<RawSampling>,
    #[serde(default)]
    pub transport: Option<Spanned<String>>,
    #[serde(default)]
    pub pipeline: Option<Spanned<String>>,
}

/// One `[[camera]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCamera {
    pub id: Spanned<String>,
    pub name: Spanned<String>,
    pub url: Spanned<String>,
    #[serde(default)]
    pub credentials: Option<Spanned<String>>,
    pub lat: Spanned<f64>,
    pub lon: Spanned<f64>,
    pub address: Spanned<String>,
    #[serde(default)]
    pub district: Option<String>,
    #[serde(default)]
    pub heading_deg: Option<Spanned<f64>>,
    #[serde(default)]
    pub detectors: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub sampling: Option<RawSampling>,
    #[serde(default)]
    pub transport: Option<Spanned<String>>,
    #[serde(default)]
    pub pipeline: Option<Spanned<String>>,
    #[serde(default)]
    pub zone: Vec<RawZone>,
    #[serde(default)]
    pub mask: Vec<RawMask>,
    #[serde(default)]
    pub calibration: Vec<RawCalibrationPoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSampling {
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    #[serde(default)]
    pub interval_s: Option<Spanned<f64>>,
    /// `[from, to)` local hours of the quiet period.
    #[serde(default)]
    pub quiet_hours: Option<Spanned<Vec<u32>>>,
    #[serde(default)]
    pub quiet_interval_s: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub polygon: Spanned<Vec<[f64; 2]>>,
    /// `no_parking` only: how long a vehicle may stay before it is an offence (default 300).
    #[serde(default)]
    pub max_dwell_s: Option<Spanned<f64>>,
    /// `restricted` only: whether a person inside is an offence only at night (default true).
    #[serde(default)]
    pub night_only: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMask {
    pub polygon: Spanned<Vec<[f64; 2]>>,
}

/// An image point (normalised 0..1) and where it lies on the map.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCalibrationPoint {
    pub image: Spanned<[f64; 2]>,
    pub map: Spanned<[f64; 2]>,
}

/// `secrets.toml`: `[credentials.<key>] user = "…" password = "…"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecretsFile {
    #[serde(default)]
    pub credentials: std::collections::BTreeMap<String, RawCredential>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for RawCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawCredential(redacted)")
    }
}
