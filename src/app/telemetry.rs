//! Starting the vehicle telemetry stage: its routes' collection points resolved on the
//! registry stage's city layers (for off-route), the tracker servers, the track writer on the
//! registry's pool, and a watcher that hot-reloads the vehicle file (on change or SIGHUP).

use std::collections::HashMap;
use std::path::Path;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use super::AppError;
use super::registry::RegistryStage;
use crate::config::{SiteConfig, TelemetrySettings};
use crate::domain::Position;
use crate::obs::Metrics;
use crate::telemetry::{TelemetryHandle, TelemetryStage};

pub(super) struct TelemetryRunning {
    pub stage: TelemetryStage,
    pub watcher: tokio::task::JoinHandle<()>,
    pub missed: tokio::task::JoinHandle<()>,
}

pub(super) async fn start(
    site: &SiteConfig,
    settings: &TelemetrySettings,
    registry: &RegistryStage,
    metrics: &Metrics,
    stop: CancellationToken,
) -> Result<TelemetryRunning, AppError> {
    let city = registry.city.current();
    let points: HashMap<&str, Position> = city
        .collection_points()
        .iter()
        .map(|p| (p.id.as_str(), p.position))
        .collect();
    let mut route_points = HashMap::new();
    for (name, route) in &settings.routes {
        let resolved: Vec<(String, Position)> = route
            .points
            .iter()
            .filter_map(|id| {
                let found = points.get(id.as_str()).map(|p| (id.clone(), *p));
                if found.is_none() {
                    tracing::warn!(route = %name, point = %id, "route names a collection point the city layers do not have");
                }
                found
            })
            .collect();
        route_points.insert(name.clone(), resolved);
    }
    let (store, _) = registry.parts();
    let stage = TelemetryStage::start(
        settings,
        store.pool().clone(),
        route_points,
        metrics.telemetry.clone(),
        stop.clone(),
    )
    .await?;
    let watcher = tokio::spawn(watch_vehicles(
        site.clone(),
        settings.clone(),
        stage.handle(),
        stop.clone(),
    ));
    let (registry_handle, intake) = registry.parts();
    let missed = tokio::spawn(raise_missed_points(
        settings.clone(),
        stage.handle(),
        registry_handle.clone(),
        intake.clone(),
        stop,
    ));
    Ok(TelemetryRunning {
        stage,
        watcher,
        missed,
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Re-reads the vehicle file when it (or the secrets file) changes, or on SIGHUP; a broken
/// file is reported with every error and the running registry stays.
async fn watch_vehicles(
    site: SiteConfig,
    settings: TelemetrySettings,
    handle: TelemetryHandle,
    stop: CancellationToken,
) {
    let stamps = || {
        (
            modified(&settings.vehicles_file),
            site.secrets_file.as_deref().and_then(modified),
        )
    };
    let mut seen = stamps();
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(site.ingest.reload_poll);
    loop {
        let forced = tokio::select! {
            () = stop.cancelled() => return,
            _ = poll.tick() => false,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        let now = stamps();
        if !forced && now == seen {
            continue;
        }
        seen = now;
        match crate::config::reload_vehicles(&settings, site.secrets_file.as_deref()) {
            Ok(vehicles) => handle.replace_vehicles(&vehicles),
            Err(errors) => {
                tracing::error!(%errors, "vehicle registry reload refused; the previous registry stays in use")
            }
        }
    }
}

/// Once a minute: each route whose window ended today (local time) and was not yet checked
/// gets its missed points raised as appeals (idempotent per route, day and point, so a
/// restart that checks again records nothing new).
async fn raise_missed_points(
    settings: TelemetrySettings,
    handle: TelemetryHandle,
    registry: crate::registry::Registry,
    intake: crate::incidents::Intake,
    stop: CancellationToken,
) {
    let mut done = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let local =
            chrono::Utc::now() + chrono::Duration::minutes(i64::from(settings.utc_offset_minutes));
        let day = local.date_naive();
        let now_s = chrono::Timelike::num_seconds_from_midnight(&local);
        done.retain(|(_, d): &(String, chrono::NaiveDate)| *d == day);
        for (name, route) in &settings.routes {
            if now_s <= route.end_s || done.contains(&(name.clone(), day)) {
                continue;
            }
            match handle.raise_missed(name, day, &registry, &intake).await {
                Ok(missed) => {
                    tracing::info!(route = %name, %day, missed = missed.len(), "route checked after its end");
                    done.insert((name.clone(), day));
                }
                Err(error) => {
                    tracing::error!(route = %name, %error, "missed collection points not raised; retrying")
                }
            }
        }
    }
}
