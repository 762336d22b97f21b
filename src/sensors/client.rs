//! The MQTT 5 subscriber (rumqttc `v5`): persistent session (`clean_start = false` + session
//! expiry), manual acknowledgements, `receive_maximum` as the back-pressure window, optional
//! `$share/<group>/` subscriptions, reconnect with jittered backoff (1 → 30 s), shutdown.
//!
//! The poll task only polls: every publish goes with its connection *generation* into a
//! bounded channel whose capacity is above the broker's in-flight window, so the send does not
//! wait for QoS 1 traffic; the broker stops sending when `receive_maximum` messages are
//! unacknowledged — that is the back-pressure, and nothing is dropped. [`Acker`] acknowledges
//! a message only if it arrived on the current connection: after a reconnect the broker
//! redelivers what was not acknowledged, and the copy is acknowledged instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, RetainForwardRule};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SensorMqttSettings;
use crate::obs::SensorMetrics;

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// One received message.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub publish: Publish,
    /// Which connection it came on (acks are only valid on that one).
    pub generation: u64,
    pub received_at: DateTime<Utc>,
    pub received: Instant,
}

/// The subscriber's connection state, for silence detection and the API.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connection {
    /// Since when the current connection is up; `None` while disconnected.
    pub connected_since: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Whether the broker resumed our session on the last connect.
    pub session_present: bool,
    /// Whether the broker acknowledged every subscription on this connection.
    pub subscribed: bool,
}

/// Acknowledges committed messages.
#[derive(Clone, Debug)]
pub(crate) struct Acker {
    client: AsyncClient,
    generation: Arc<AtomicU64>,
    metrics: SensorMetrics,
}

impl Acker {
    /// Queues the acknowledgement of a committed message without waiting: `false` when
    /// rumqttc's request queue is full (try again after letting the poll task run — waiting
    /// here could deadlock with a poll task waiting for the writer to take deliveries).
    pub fn try_ack(&self, delivery: &Delivery) -> bool {
        if delivery.publish.qos == QoS::AtMostOnce {
            return true;
        }
        if delivery.generation != self.generation.load(Ordering::Acquire) {
            self.metrics.acks_skipped.inc();
            return true;
        }
        self.client.try_ack(&delivery.publish).is_ok()
    }
}

pub(crate) struct Subscriber {
    pub acker: Acker,
    pub connection: watch::Receiver<Connection>,
    pub task: JoinHandle<()>,
}

/// The filters to subscribe to, with the shared-subscription prefix when configured.
pub(crate) fn subscription_filters(
    settings: &SensorMqttSettings,
    filters: &[String],
) -> Vec<Filter> {
    filters
        .iter()
        .map(|f| {
            let path = match &settings.share_group {
                Some(group) => format!("$share/{group}/{f}"),
                None => f.clone(),
            };
            let mut filter = Filter::new(path, QoS::AtLeastOnce);
            // Retained messages only on a new subscription, not on every reconnect.
            filter.retain_forward_rule = RetainForwardRule::OnNewSubscribe;
            filter
        })
        .collect()
}

fn options(settings: &SensorMqttSettings) -> MqttOptions {
    let mut options = MqttOptions::new(
        settings.client_id.clone(),
        settings.host.clone(),
        settings.port,
    );
    options
        .set_keep_alive(settings.keep_alive)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(
            u32::try_from(settings.session_expiry.as_secs()).unwrap_or(u32::MAX),
        ))
        .set_receive_maximum(Some(settings.receive_maximum))
        .set_max_packet_size(Some(settings.max_packet_bytes))
        .set_manual_acks(true)
        .set_connection_timeout(10);
    if let Some(c) = &settings.credentials {
        options.set_credentials(c.user.clone(), c.password.clone());
    }
    options
}

/// Capacity of the delivery channel for `settings`: the in-flight window plus room for QoS 0.
pub(crate) fn channel_capacity(settings: &SensorMqttSettings) -> usize {
    usize::from(settings.receive_maximum) + 256
}

/// Starts the subscriber. It ends when `stop` is cancelled (after a DISCONNECT).
pub(crate) fn spawn(
    settings: &SensorMqttSettings,
    filters: Vec<Filter>,
    deliveries: mpsc::Sender<Delivery>,
    metrics: SensorMetrics,
    stop: CancellationToken,
) -> Subscriber {
    // Acks go through rumqttc's request channel: room for a whole window of them.
    let (client, mut eventloop) = AsyncClient::new(options(settings), channel_capacity(settings));
    let generation = Arc::new(AtomicU64::new(0));
    let (state_tx, state_rx) = watch::channel(Connection::default());
    let acker = Acker {
        client: client.clone(),
        generation: generation.clone(),
        metrics: metrics.clone(),
    };
    let broker = format!("{}:{}", settings.host, settings.port);
    let client_id = settings.client_id.clone();
    let task = tokio::spawn(async move {
        let mut backoff = BACKOFF_MIN;
        let mut redelivery_seen = false;
        loop {
            let polled = tokio::select! {
                () = stop.cancelled() => break,
                polled = eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    let now = generation.fetch_add(1, Ordering::AcqRel) + 1;
                    backoff = BACKOFF_MIN;
                    redelivery_seen = false;
                    metrics.connections.inc();
                    metrics.connected.set(1);
                    state_tx.send_replace(Connection {
                        connected_since: Some(Utc::now()),
                        last_error: None,
                        session_present: ack.session_present,
                        // A resumed session keeps its subscriptions on the broker.
                        subscribed: ack.session_present,
                    });
                    tracing::info!(%broker, client_id, session_present = ack.session_present, generation = now, "sensor subscriber connected");
                    // Subscribing again is harmless (retained copies only on a new one).
                    if let Err(error) = client.try_subscribe_many(filters.clone()) {
                        tracing::error!(%broker, %error, "sensor subscriber could not subscribe");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let failed: Vec<String> = ack
                        .return_codes
                        .iter()
                        .filter(|c| {
                            !matches!(
                                c,
                                rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                            )
                        })
                        .map(|c| format!("{c:?}"))
                        .collect();
                    if failed.is_empty() {
                        state_tx.send_modify(|c| c.subscribed = true);
                        tracing::info!(%broker, "sensor subscriptions acknowledged");
                    } else {
                        tracing::error!(%broker, ?failed, "the broker refused sensor subscriptions");
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if publish.dup {
                        metrics.redelivered.inc();
                        if !redelivery_seen {
                            redelivery_seen = true;
                            tracing::info!(%broker, "the broker is redelivering unacknowledged sensor messages (counted in sitcenter_sensor_redelivered_total)");
                        }
                    }
                    let delivery = Delivery {
                        publish,
                        generation: generation.load(Ordering::Acquire),
                        received_at: Utc::now(),
                        received: Instant::now(),
                    };
                    tokio::select! {
                        () = stop.cancelled() => break,
                        sent = deliveries.send(delivery) => if sent.is_err() { break },
                    }
                }
                Ok(Event::Incoming(Packet::Disconnect(d))) => {
                    tracing::warn!(%broker, reason = ?d.reason_code, "the broker disconnected the sensor subscriber");
                }
                Ok(_) => {}
                Err(error) => {
                    metrics.connected.set(0);
                    metrics.connection_errors.inc();
                    state_tx.send_replace(Connection {
                        connected_since: None,
                        last_error: Some(error.to_string()),
                        session_present: false,
                        subscribed: false,
                    });
                    // Equal jitter: 50-100 % of the backoff.
                    let wait = backoff.mul_f64(rand::random_range(0.5..=1.0));
                    tracing::warn!(%broker, %error, retry_in_ms = wait.as_millis() as u64, "sensor subscriber: connection failed");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        metrics.connected.set(0);
        // Say goodbye (the session stays on the broker for session_expiry).
        if client.try_disconnect().is_ok() {
            let _flushed = tokio::time::timeout(Duration::from_secs(2), async {
                while let Ok(event) = eventloop.poll().await {
                    if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        tracing::info!(%broker, "sensor subscriber stopped");
    });
    Subscriber {
        acker,
        connection: state_rx,
        task,
    }
}
