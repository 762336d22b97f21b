//! Starting the manhole-cover sensor stage: the sensor registry resolved on the registry
//! stage's city layers, the MQTT subscriber, writer and watchdog (its handle goes into the
//! API state for `/api/sensors`).

use tokio_util::sync::CancellationToken;

use super::AppError;
use super::registry::RegistryStage;
use crate::config::SensorsSettings;
use crate::obs::Metrics;
use crate::sensors::SensorsStage;

pub(super) struct SensorsRunning {
    pub stage: SensorsStage,
}

pub(super) async fn start(
    settings: &SensorsSettings,
    registry: &RegistryStage,
    metrics: &Metrics,
    stop: CancellationToken,
) -> Result<SensorsRunning, AppError> {
    let (store, intake) = registry.parts();
    let city = registry.city.current();
    let stage = SensorsStage::start(
        settings,
        &city,
        store.clone(),
        intake.clone(),
        metrics.sensors.clone(),
        stop,
    )
    .await?;
    Ok(SensorsRunning { stage })
}
