//! Starting the appeal registry stage: city layers (R-trees) from the site folder,
//! incident rules, the PostgreSQL registry (migrations at start-up), the SLA
//! escalator, and the Open311 + appeals APIs mounted beside the camera API.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::api::registry_api::{self, RegistryApiState};
use crate::config::{RegistrySettings, SiteConfig};
use crate::geo::CityHandle;
use crate::incidents::{IncidentsConfig, Intake};
use crate::obs::Metrics;
use crate::registry::{Registry, SystemClock};

pub(super) struct RegistryStage {
    pub router: axum::Router,
    pub escalator: JoinHandle<()>,
    /// The city's layers, reloaded by the config watcher.
    pub city: Arc<CityHandle>,
}

pub(super) async fn start(
    site: &SiteConfig,
    settings: &RegistrySettings,
    metrics: &Metrics,
    stop: CancellationToken,
) -> Result<RegistryStage, AppError> {
    let dir = site.dir.clone();
    let city = tokio::task::spawn_blocking(move || CityHandle::load(&dir))
        .await
        .map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
    let rules = settings
        .incidents
        .clone()
        .unwrap_or_else(|| Arc::new(IncidentsConfig::default()));
    let city = Arc::new(city);
    let intake = Intake::new(rules, city.clone());
    let registry = Registry::connect(&settings.database_url, Arc::new(SystemClock)).await?;
    metrics.register_with(|r| registry.register_metrics(r));
    let router = registry_api::router(RegistryApiState {
        registry: registry.clone(),
        intake,
        open311: Arc::new(settings.open311.clone()),
    });
    let escalator = tokio::spawn(registry.run_escalator(settings.escalation_period, stop));
    tracing::info!(site = %site.name, "appeal registry connected; Open311 at /open311/v2, appeals API at /api/v1");
    Ok(RegistryStage {
        router,
        escalator,
        city,
    })
}
