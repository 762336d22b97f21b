//! MQTT publisher of detection events, for scale-out (other nodes, city systems): every event
//! as JSON (evidence by path, never the JPEG bytes) on `<prefix>/<site>/events/<camera>`, QoS 1.
//!
//! Two tasks: one only polls the rumqttc event loop (reconnecting with backoff 1 → 30 s), one
//! publishes. Publishing waits when rumqttc's request queue is full (broker away): the wait
//! backs up into the event stage, and from there into counted frame drops. Ends when its
//! input closes: pending publishes go out, then a disconnect.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::MqttSettings;
use crate::domain::DetectionEvent;

/// Publishes at most this many requests ahead of the network.
const REQUEST_CAPACITY: usize = 64;
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long the publisher waits for the last messages to leave at shutdown.
const FLUSH_GRACE: Duration = Duration::from_secs(5);

/// The topic of `camera`'s events.
pub fn topic(settings: &MqttSettings, site: &str, camera: &str) -> String {
    format!("{}/{site}/events/{camera}", settings.topic_prefix)
}

/// Starts the publisher; it ends after `events` is closed and drained.
pub fn spawn(
    settings: &MqttSettings,
    site: &str,
    mut events: mpsc::Receiver<Arc<DetectionEvent>>,
) -> JoinHandle<()> {
    let client_id = settings
        .client_id
        .clone()
        .unwrap_or_else(|| format!("sitcenter-{site}-{}", std::process::id()));
    let mut options = MqttOptions::new(client_id, settings.host.clone(), settings.port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    let stop = CancellationToken::new();
    let poller = {
        let stop = stop.clone();
        let broker = format!("{}:{}", settings.host, settings.port);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let polled = tokio::select! {
                    () = stop.cancelled() => return,
                    polled = eventloop.poll() => polled,
                };
                match polled {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
                    Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        tracing::info!(%broker, "MQTT event publisher connected");
                        backoff = Duration::from_secs(1);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%broker, %error, retry_in_s = backoff.as_secs(), "MQTT event publisher: connection failed");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
            }
        })
    };
    let settings = settings.clone();
    let site = site.to_owned();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let payload = match serde_json::to_vec(&*event) {
                Ok(p) => p,
                Err(error) => {
                    tracing::error!(event = %event.id, %error, "event not serialisable for MQTT");
                    continue;
                }
            };
            let topic = topic(&settings, &site, event.camera.as_str());
            if let Err(error) = client
                .publish(&topic, QoS::AtLeastOnce, false, payload)
                .await
            {
                tracing::error!(%topic, %error, "MQTT event publisher stopped: client closed");
                break;
            }
        }
        if client.disconnect().await.is_err() {
            tracing::debug!("MQTT client already closed");
        }
        if tokio::time::timeout(FLUSH_GRACE, poller).await.is_err() {
            tracing::warn!(
                "MQTT event publisher: broker unreachable at shutdown; unsent events dropped"
            );
            stop.cancel();
        }
    })
}
