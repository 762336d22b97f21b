//! Config reload: the cameras file (and secrets file) are re-read when they
//! change on disk, on SIGHUP, or on `POST /api/reload`. A broken file is
//! reported with every error and the running cameras stay as they are.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::config::SiteConfig;

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn stamps(site: &SiteConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    (
        modified(&site.cameras_file),
        site.secrets_file.as_deref().and_then(modified),
    )
}

pub(super) async fn watch(
    site: SiteConfig,
    node: Arc<Node>,
    reload_now: Arc<Notify>,
    stop: CancellationToken,
) {
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
                let report = node.ingest.apply(cameras).await;
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
