//! Wiring ("topology"): builds the stages from a [`SiteConfig`], connects them
//! with bounded queues, runs the HTTP server, applies config reloads and stops
//! everything in order. Stages never spawn each other; this module does.
//!
//! Frame path: cameras → [`Ingest`](crate::ingest::Ingest) → FrameQueue (bounded, drop-oldest,
//! counted per camera) → frame consumer (previews; cameras with detectors go on
//! to the detect queue) → detector workers → event stage → sinks (registry,
//! MQTT) and the recent-events ring. See `node.rs` for every edge's policy.

mod demo;
mod node;
pub(crate) mod registry;
mod reload;
mod sensors;
mod serve;
mod telemetry;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use demo::{DemoOptions, demo};
pub use node::{EventSink, Node};

use crate::config::PipelineTemplates;
use crate::config::SiteConfig;
use crate::ingest::IngestError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("simulated cameras: {0}")]
    Sim(#[from] crate::sim::SimError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigErrors),
    #[error("city layers: {0}")]
    Geo(#[from] crate::geo::GeoError),
    #[error("appeal registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("detector: {0}")]
    Detect(#[from] crate::detect::DetectError),
    #[error("sign-in: {0}")]
    Auth(String),
    #[error("sensors: {0}")]
    Sensors(#[from] crate::sensors::SensorsError),
    #[error("telemetry: {0}")]
    Telemetry(#[from] crate::telemetry::TelemetryError),
}

/// Checks that every pipeline template parses and that the cameras' templates
/// have what their sampling needs (used by `sitcenter validate`).
pub fn check_pipelines(site: &SiteConfig) -> Vec<String> {
    if let Err(error) = gstreamer::init() {
        return vec![format!("GStreamer could not be initialised: {error}")];
    }
    let templates = match PipelineTemplates::load(site.ingest.pipelines_dir.as_deref()) {
        Ok(t) => t,
        Err(error) => return vec![error.to_string()],
    };
    crate::ingest::check_templates(&templates)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

/// Loads the site's model on ONNX Runtime and checks its contract and execution provider,
/// without starting a worker (used by `sitcenter validate`).
pub fn check_detector(site: &SiteConfig) -> Vec<String> {
    let Some(detect) = &site.detect else {
        return Vec::new();
    };
    let config = crate::detect::DetectorConfig {
        provider: detect.provider,
        intra_threads: 1,
        ..crate::detect::DetectorConfig::new(&detect.manifest.manifest_path)
    };
    match config.validate() {
        Ok(_) => Vec::new(),
        Err(error) => vec![format!(
            "{}: [detect] model `{}`: {error}",
            site.dir.join("site.toml").display(),
            detect.model_name
        )],
    }
}

/// Checks what the site connects to (`sitcenter validate`): today the registry's
/// database. Cameras are not contacted: validation must not load the city's network.
pub async fn check_connectivity(site: &SiteConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(registry) = &site.registry
        && let Err(error) = crate::registry::Registry::check_reachable(&registry.database).await
    {
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        problems.push(format!(
            "{}: [registry] database_url: the database does not answer: {message}",
            site.dir.join("site.toml").display()
        ));
    }
    problems
}

/// Runs the service until Ctrl-C / SIGTERM (or `stop` is cancelled): cameras,
/// analysis consumer, HTTP API and UI, config reload.
pub async fn run(site: SiteConfig, stop: Option<CancellationToken>) -> Result<(), AppError> {
    let listener = tokio::net::TcpListener::bind(site.http.listen)
        .await
        .map_err(|source| AppError::Bind {
            addr: site.http.listen,
            source,
        })?;
    let stop = stop.unwrap_or_default();
    let metrics = Arc::new(crate::obs::Metrics::new());
    // The registry first: a database that cannot be reached stops the start
    // before any camera connects.
    let registry = match &site.registry {
        Some(settings) => {
            Some(registry::start(&site, settings, &metrics, stop.child_token()).await?)
        }
        None => None,
    };
    let sensors = match (&site.sensors, &registry) {
        (Some(settings), Some(registry)) => {
            Some(sensors::start(settings, registry, &metrics, stop.child_token()).await?)
        }
        _ => None,
    };
    // Vehicle tracks live in the registry's database; without [registry] there is no stage
    // (config validation says so).
    let telemetry = match (&site.telemetry, &registry) {
        (Some(settings), Some(registry)) => {
            Some(telemetry::start(&site, settings, registry, &metrics, stop.child_token()).await?)
        }
        _ => None,
    };
    let sinks = registry
        .as_ref()
        .filter(|_| site.detect.is_some())
        .map(|r| r.event_sink())
        .into_iter()
        .collect();
    let node = Arc::new(Node::start_with(&site, metrics, true, sinks).await?);
    let addr = listener.local_addr().map_err(AppError::Serve)?;
    tracing::info!(
        site = %site.name,
        cameras = site.cameras.len(),
        "sitcenter is running: web UI and API at http://{addr}/ (metrics at /metrics)"
    );
    println!("sitcenter: web UI at http://{addr}/");

    let reload_now = Arc::new(tokio::sync::Notify::new());
    let mut state = node.api_state(
        &site,
        reload_now.clone(),
        registry.as_ref().map(|r| r.api.clone()),
        registry.as_ref().map(|r| r.session.clone()),
    );
    state.sensors = sensors.as_ref().map(|s| s.stage.handle.clone());
    state.telemetry = telemetry.as_ref().map(|t| t.stage.handle());
    let http_stop = CancellationToken::new();
    let server = {
        let http_stop = http_stop.clone();
        let router = crate::api::router_with(state, &site.http);
        let http = site.http.clone();
        tokio::spawn(async move { serve::serve(listener, router, &http, http_stop).await })
    };
    let reloader = tokio::spawn(reload::watch(
        site.clone(),
        node.clone(),
        registry.as_ref().map(|r| r.city.clone()),
        reload_now,
        stop.clone(),
    ));

    wait_for_signal(&stop).await;
    tracing::info!("shutting down: stopping cameras first");
    stop.cancel();
    if let Err(error) = reloader.await {
        tracing::error!(%error, "config reloader ended abnormally");
    }
    node.stop().await;
    if let Some(sensors) = sensors {
        sensors.stage.stopped().await;
    }
    if let Some(telemetry) = telemetry {
        if let Err(error) = telemetry.watcher.await {
            tracing::error!(%error, "vehicle registry watcher ended abnormally");
        }
        if let Err(error) = telemetry.missed.await {
            tracing::error!(%error, "missed-collection checker ended abnormally");
        }
        telemetry.stage.join().await;
    }
    if let Some(registry) = registry
        && let Err(error) = registry.escalator.await
    {
        tracing::error!(%error, "SLA escalator ended abnormally");
    }
    http_stop.cancel();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(AppError::Serve(error)),
        Err(error) => tracing::error!(%error, "HTTP server task ended abnormally"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or `stop`. A second Ctrl-C exits at once.
async fn wait_for_signal(stop: &CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tokio::spawn(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("second interrupt: exiting now");
                    std::process::exit(130);
                }
            });
        }
        () = terminate => {}
        () = stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests;
