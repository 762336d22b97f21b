//! `sitcenter demo`: the demo city. Starts the RTSP simulator serving every
//! camera the site names (good and misbehaving ones alike), then runs the real
//! service against it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{AppError, run};
use crate::config::{ConfigError, ConfigErrors, SiteConfig};
use crate::sim::{RtspSim, SimConfig};

/// What `sitcenter demo` runs (its command line is parsed in `src/cli/`).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The demo site folder.
    pub site: PathBuf,
    /// How many of the site's cameras to run (0 = all). The default fits a
    /// 2-core laptop next to the simulator; see docs/performance.md.
    pub cameras: usize,
    /// Clips the simulated cameras loop (camera i plays clip i mod n): by default the
    /// labelled street scenes the detector is scored on (test-media/labelled).
    pub media: Vec<PathBuf>,
    /// Override `[http] listen`.
    pub listen: Option<std::net::SocketAddr>,
}

/// What the simulator must serve for the cameras of `site`: the port and the
/// highest index used per mount kind (`/cam/7`, `/flaky/1`, …).
pub(crate) fn sim_config_for(
    site: &SiteConfig,
    media: Vec<PathBuf>,
) -> Result<SimConfig, ConfigErrors> {
    let mut ports = BTreeMap::new();
    let mut highest: BTreeMap<String, usize> = BTreeMap::new();
    for camera in &site.cameras {
        let url = &camera.url;
        let mut parts = url.path().trim_start_matches('/').split('/');
        let kind = parts.next().unwrap_or_default().to_owned();
        let index = parts
            .next()
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(0);
        let entry = highest.entry(kind).or_default();
        *entry = (*entry).max(index);
        ports.insert(url.port().unwrap_or(554), camera.id.clone());
    }
    if ports.len() > 1 {
        return Err(ConfigErrors(vec![ConfigError {
            file: site.cameras_file.clone(),
            line: 0,
            column: 0,
            camera: None,
            field: Some("url".to_owned()),
            message: "the demo simulator serves one port, but the cameras use several".to_owned(),
        }]));
    }
    let count = |kind: &str| highest.get(kind).copied().unwrap_or(0);
    Ok(SimConfig {
        port: ports.keys().next().copied().unwrap_or(8554),
        bind: "127.0.0.1".to_owned(),
        cameras: count("cam"),
        media,
        flaky: count("flaky"),
        flaky_period: Duration::from_secs(20),
        stalling: count("stall"),
        stall_after: Duration::from_secs(15),
        corrupt: count("corrupt"),
        refusing: count("refuse"),
        secure: count("secure"),
    })
}

/// One demo user per role, each with a fresh random password printed here (there is no
/// built-in default password; running the demo again prints new ones).
async fn demo_users(settings: &crate::config::RegistrySettings) -> Result<(), AppError> {
    use crate::auth::{Auth, AuthError, Role};
    let registry = crate::registry::Registry::open(
        &settings.database,
        std::sync::Arc::new(crate::registry::SystemClock),
        2,
    )
    .await?;
    let auth = Auth::new(registry.pool().clone(), settings.auth.clone());
    println!("sitcenter demo: users (passwords are new on every start):");
    for role in Role::ALL {
        let name = format!("demo-{}", role.as_str());
        let password: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..16)
                .map(|_| {
                    const ALPHABET: &[u8] =
                        b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
                    char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])
                })
                .collect()
        };
        let added = auth
            .add_user(
                "demo",
                &name,
                &format!("Demo {}", role.as_str()),
                &[*role],
                &password,
            )
            .await;
        let outcome = match added {
            Err(AuthError::UserExists(_)) => auth.set_password("demo", &name, &password).await,
            other => other,
        };
        outcome.map_err(|e| AppError::Auth(e.to_string()))?;
        println!("  {name:<18} {password}   ({})", role.as_str());
    }
    Ok(())
}

pub async fn demo(args: DemoOptions) -> Result<(), AppError> {
    let mut site = crate::config::load_site(&args.site)?;
    if args.cameras > 0 && args.cameras < site.cameras.len() {
        // Keep the misbehaving cameras in the demo whatever the limit: they show
        // what the supervisor does.
        let (odd, good): (Vec<_>, Vec<_>) = site
            .cameras
            .into_iter()
            .partition(|c| !c.url.path().starts_with("/cam/"));
        site.cameras = good
            .into_iter()
            .take(args.cameras.saturating_sub(odd.len()))
            .chain(odd)
            .collect();
    }
    if let Some(listen) = args.listen {
        site.http.listen = listen;
    }
    if let Some(registry) = &site.registry {
        demo_users(registry).await?;
    }
    let sim_config = sim_config_for(&site, args.media)?;
    let port = sim_config.port;
    let sim = tokio::task::spawn_blocking(move || RtspSim::start(sim_config))
        .await
        .map_err(|e| AppError::Serve(std::io::Error::other(e)))??;
    println!(
        "sitcenter demo: {} simulated cameras on rtsp://127.0.0.1:{port}/ (site `{}`)",
        site.cameras.len(),
        site.name
    );
    // Manhole-cover sensors through the real broker (the same one the service subscribes to).
    let sensor_sim_stop = tokio_util::sync::CancellationToken::new();
    let sensor_sim = site.sensors.as_ref().map(|settings| {
        let config = crate::sim::sensors::demo_config(settings);
        println!(
            "sitcenter demo: {} simulated manhole sensors publishing to mqtt://{}:{}/{}/+/up",
            config.sensors.len(),
            config.host,
            config.port,
            config.topic_prefix
        );
        crate::sim::sensors::spawn(config, sensor_sim_stop.clone())
    });
    let result = run(site, None).await;
    sensor_sim_stop.cancel();
    if let Some(task) = sensor_sim
        && let Err(error) = task.await
    {
        tracing::error!(%error, "sensor simulator ended abnormally");
    }
    sim.stop();
    result
}
