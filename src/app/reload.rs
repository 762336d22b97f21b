//! Config reload: the cameras file (and secrets file) are re-read when they
//! change on disk, on SIGHUP, or on `POST /api/reload`. A broken file is
//! reported with every error and the running cameras stay as they are. The
//! city's GeoJSON layers (when the registry runs) are reloaded the same way;
//! layers that do not load leave the previous ones in place. The detection model
//! is reloaded when its manifest or ONNX file changes (or on a forced reload);
//! a model that does not load leaves the running detector in place and its error
//! in `/api/detect`.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::config::SiteConfig;
use crate::geo::CityHandle;

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stamps(site: &SiteConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    (
        modified(&site.cameras_file),
        site.secrets_file.as_deref().and_then(modified),
    )
}

/// The newest modification time of the site's `*.geojson` layers.
fn layers_stamp(site: &SiteConfig) -> Option<SystemTime> {
    std::fs::read_dir(&site.dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "geojson"))
        .filter_map(|e| modified(&e.path()))
        .max()
}

async fn reload_layers(city: &Arc<CityHandle>) {
    let city = city.clone();
    match tokio::task::spawn_blocking(move || city.reload()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "city layers reload refused; the previous layers stay in use")
        }
        Err(error) => tracing::error!(%error, "city layers reload task failed"),
    }
}

pub(super) async fn watch(
    site: SiteConfig,
    node: Arc<Node>,
    city: Option<Arc<CityHandle>>,
    reload_now: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut layers_seen = layers_stamp(&site);
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut seen = stamps(&site);
    let mut poll = tokio::time::interval(site.ingest.reload_poll);
    loop {
        let forced = tokio::select! {
            () = stop.cancelled() => return,
            _ = poll.tick() => false,
            () = reload_now.notified() => true,
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
        };
        if let Some(city) = &city {
            let layers_now = layers_stamp(&site);
            if forced || layers_now != layers_seen {
                layers_seen = layers_now;
                reload_layers(city).await;
            }
        }
        node.reload_detector(forced).await;
        let now = stamps(&site);
        if !forced && now == seen {
            continue;
        }
        seen = now;
        let loaded = {
            let site = site.clone();
            tokio::task::spawn_blocking(move || crate::config::reload_cameras(&site)).await
        };
        match loaded {
            Ok(Ok(cameras)) => {
                let report = node.apply_cameras(cameras).await;
                for id in report.removed.iter().chain(&report.restarted) {
                    node.previews.remove(id);
                }
                // `apply` logs what changed.
                tracing::info!(path = %site.cameras_file.display(), "configuration reloaded");
            }
            Ok(Err(errors)) => {
                for error in &errors.0 {
                    tracing::error!(%error, "configuration reload refused; cameras keep running as they were");
                }
            }
            Err(error) => tracing::error!(%error, "configuration reload task failed"),
        }
    }
}
