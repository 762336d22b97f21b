//! Starting the appeal registry stage: city layers (R-trees) from the site folder,
//! incident rules, the PostgreSQL registry (migrations at start-up), the SLA
//! escalator, and the Open311 + appeals APIs mounted beside the camera API.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::api::{RegistryApiState, SessionState};
use crate::auth::Auth;
use crate::config::IncidentsConfig;
use crate::config::{RegistrySettings, SiteConfig};
use crate::geo::CityHandle;
use crate::incidents::Intake;
use crate::obs::Metrics;
use crate::registry::{Registry, SystemClock};

pub(super) struct RegistryStage {
    /// What the registry APIs serve from.
    pub api: RegistryApiState,
    /// Sign-in (on the registry's database).
    pub session: SessionState,
    registry: Registry,
    intake: Intake,
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
    let registry = Registry::open(
        &settings.database,
        Arc::new(SystemClock),
        crate::registry::DEFAULT_POOL_SIZE,
    )
    .await?
    .with_metrics(metrics.registry.clone());
    let auth = Auth::new(registry.pool().clone(), settings.auth.clone());
    let api = RegistryApiState {
        registry: registry.clone(),
        intake: intake.clone(),
        open311: Arc::new(settings.open311.clone()),
        auth: auth.clone(),
    };
    let session = SessionState {
        auth,
        secure_cookies: settings
            .auth
            .secure_cookies
            .unwrap_or(!site.http.listen.ip().is_loopback()),
    };
    let escalator = tokio::spawn(
        registry
            .clone()
            .run_escalator(settings.escalation_period, stop),
    );
    tracing::info!(site = %site.name, "appeal registry connected; Open311 at /open311/v2, appeals API at /api/v1");
    Ok(RegistryStage {
        api,
        session,
        registry,
        intake,
        escalator,
        city,
    })
}

impl RegistryStage {
    /// The registry and the incident rules, for stages that submit observations.
    pub fn parts(&self) -> (&Registry, &Intake) {
        (&self.registry, &self.intake)
    }

    /// The registry as an event sink: each detection event becomes an [`Observation`]
    /// (camera place, category, evidence by reference) submitted to the registry, which opens
    /// an appeal or joins an open one. Submissions are idempotent per event id.
    ///
    /// [`Observation`]: crate::domain::Observation
    pub fn event_sink(&self) -> super::EventSink {
        let (tx, rx) = tokio::sync::mpsc::channel(super::node::SINK_CAPACITY);
        super::EventSink {
            name: "registry",
            events: tx,
            task: tokio::spawn(submit_events(
                self.registry.clone(),
                self.intake.clone(),
                rx,
            )),
        }
    }
}

/// Attempts per event before giving up (1 + 2 + 4 + 8 + 16 + 30 s of waiting in between).
const SUBMIT_ATTEMPTS: u32 = 6;

/// Submits every event until the channel closes (shutdown drains it first).
pub(crate) async fn submit_events(
    registry: Registry,
    intake: Intake,
    mut events: tokio::sync::mpsc::Receiver<Arc<crate::domain::DetectionEvent>>,
) {
    while let Some(event) = events.recv().await {
        let observation = crate::events::to_observation(&event);
        let plan = match intake.plan(&observation) {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(event = %event.id, category = %event.category, %error, "detection event not registered: no rule for it");
                continue;
            }
        };
        // Submissions are idempotent per event (source_ref), so a failed one is retried with
        // backoff (the wait backs pressure up the event path) before it is given up and logged.
        let mut delay = std::time::Duration::from_secs(1);
        for attempt in 1..=SUBMIT_ATTEMPTS {
            match registry.submit(&observation, &plan).await {
                Ok(submission) => {
                    tracing::info!(event = %event.id, number = %submission.number, outcome = ?submission.outcome, "detection event registered");
                    break;
                }
                Err(error) if attempt < SUBMIT_ATTEMPTS => {
                    tracing::warn!(event = %event.id, %error, attempt, retry_in_s = delay.as_secs(), "detection event not registered yet");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
                Err(error) => {
                    tracing::error!(event = %event.id, source_ref = %observation.source_ref, %error, "detection event not registered after retries (its evidence stays on disk and in /api/events)");
                }
            }
        }
    }
}
