//! Simulated manhole-cover sensors publishing our JSON payload through a real MQTT broker
//! (`sitcenter demo`, tests, the load benchmark): every sensor sends a heartbeat each period
//! of its type (phases spread so the load is even), and a scenario opens, tilts and closes
//! covers, floods a manhole, empties a battery or silences a sensor at given times.
//!
//! One publisher connection (MQTT 5, QoS 1, its own client id); publishing waits when
//! rumqttc's request queue is full, so a slow broker slows the simulator instead of losing
//! messages.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use chrono::Utc;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::domain::{CoverState, SensorId, SensorPayload, SensorReading};

/// One simulated sensor.
#[derive(Clone, Debug)]
pub struct SimSensor {
    pub id: SensorId,
    pub heartbeat: Duration,
}

/// What happens to a sensor in a scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SimAction {
    Open,
    Tilt(f64),
    Close,
    Flood(f64),
    Drain,
    /// Battery at this percentage from now on.
    Battery(f64),
    /// Publishes nothing more.
    Silence,
}

#[derive(Clone, Debug)]
pub struct SimStep {
    /// From the simulator's start.
    pub after: Duration,
    pub sensor: SensorId,
    pub action: SimAction,
}

#[derive(Clone, Debug)]
pub struct SensorSimConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    /// Messages go to `<topic_prefix>/<sensor id>/up`.
    pub topic_prefix: String,
    pub sensors: Vec<SimSensor>,
    pub scenario: Vec<SimStep>,
}

/// A simulated sensor's own state.
#[derive(Clone, Debug)]
struct Device {
    seq: u64,
    state: CoverState,
    tilt_deg: f64,
    water_level_cm: f64,
    battery_pct: f64,
    silent: bool,
}

impl Device {
    fn new(index: usize) -> Self {
        Self {
            seq: 0,
            state: CoverState::Closed,
            tilt_deg: 0.0,
            water_level_cm: 2.0 + (index % 7) as f64,
            battery_pct: 60.0 + (index % 40) as f64,
            silent: false,
        }
    }

    fn apply(&mut self, action: SimAction) {
        match action {
            SimAction::Open => {
                self.state = CoverState::Open;
                self.tilt_deg = 90.0;
            }
            SimAction::Tilt(deg) => {
                self.state = CoverState::Tilted;
                self.tilt_deg = deg;
            }
            SimAction::Close => {
                self.state = CoverState::Closed;
                self.tilt_deg = 0.0;
            }
            SimAction::Flood(level) => self.water_level_cm = level,
            SimAction::Drain => self.water_level_cm = 3.0,
            SimAction::Battery(pct) => self.battery_pct = pct,
            SimAction::Silence => self.silent = true,
        }
    }

    fn next_reading(&mut self) -> SensorReading {
        self.seq += 1;
        SensorReading {
            seq: self.seq,
            ts: Utc::now(),
            state: self.state,
            tilt_deg: Some(self.tilt_deg),
            water_level_cm: Some(self.water_level_cm),
            flooding: Some(self.water_level_cm >= 40.0),
            temperature_c: Some(-3.5),
            battery_pct: Some(self.battery_pct),
            rssi_dbm: Some(-97.0),
            snr_db: Some(6.5),
            firmware: Some("2.3.1".to_owned()),
        }
    }
}

/// The JSON payload of `reading` (our schema).
pub fn payload(sensor: &SensorId, reading: &SensorReading) -> Vec<u8> {
    serde_json::to_vec(&SensorPayload::from_reading(sensor, reading)).unwrap_or_default()
}

/// The own-format topic of `sensor`.
pub fn topic(prefix: &str, sensor: &SensorId) -> String {
    format!("{prefix}/{sensor}/up")
}

/// A publisher connection: the client and its polling task (reconnecting every second).
pub fn connect(
    host: &str,
    port: u16,
    client_id: &str,
    credentials: Option<(String, String)>,
    stop: CancellationToken,
) -> (AsyncClient, JoinHandle<()>) {
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let broker = format!("{host}:{port}");
    let poller = tokio::spawn(async move {
        loop {
            let polled = tokio::select! {
                () = stop.cancelled() => return,
                polled = eventloop.poll() => polled,
            };
            match polled {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%broker, %error, "sensor simulator: broker connection failed; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    });
    (client, poller)
}

/// Runs the simulator until `stop`.
pub fn spawn(config: SensorSimConfig, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (client, poller) = connect(
            &config.host,
            config.port,
            &config.client_id,
            config.credentials.clone(),
            stop.clone(),
        );
        let start = Instant::now();
        let mut devices: Vec<Device> = (0..config.sensors.len()).map(Device::new).collect();
        let index: HashMap<&SensorId, usize> = config
            .sensors
            .iter()
            .enumerate()
            .map(|(i, s)| (&s.id, i))
            .collect();
        // Heartbeats: phase i/n of each sensor's period.
        let n = config.sensors.len().max(1) as f64;
        let mut due: BinaryHeap<Reverse<(Instant, usize)>> = config
            .sensors
            .iter()
            .enumerate()
            .map(|(i, s)| Reverse((start + s.heartbeat.mul_f64(i as f64 / n), i)))
            .collect();
        let mut steps = config.scenario.clone();
        steps.sort_by_key(|s| s.after);
        let mut steps = steps.into_iter().peekable();
        tracing::info!(sensors = config.sensors.len(), broker = %format!("{}:{}", config.host, config.port), "sensor simulator started");
        loop {
            let next_beat = due.peek().map(|Reverse((at, _))| *at);
            let next_step = steps.peek().map(|s| start + s.after);
            let Some(wake) = [next_beat, next_step].into_iter().flatten().min() else {
                break;
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep_until(wake) => {}
            }
            let now = Instant::now();
            let mut publish: Vec<usize> = Vec::new();
            while let Some(step) = steps.next_if(|s| start + s.after <= now) {
                if let Some(&i) = index.get(&step.sensor) {
                    devices[i].apply(step.action);
                    tracing::info!(sensor = %step.sensor, action = ?step.action, "sensor simulator: scenario step");
                    publish.push(i);
                }
            }
            while let Some(Reverse((at, i))) = due.peek().copied() {
                if at > now {
                    break;
                }
                due.pop();
                due.push(Reverse((at + config.sensors[i].heartbeat, i)));
                publish.push(i);
            }
            for i in publish {
                if devices[i].silent {
                    continue;
                }
                let sensor = &config.sensors[i].id;
                let reading = devices[i].next_reading();
                let sent = client
                    .publish(
                        topic(&config.topic_prefix, sensor),
                        QoS::AtLeastOnce,
                        false,
                        payload(sensor, &reading),
                    )
                    .await;
                if sent.is_err() {
                    tracing::warn!("sensor simulator: MQTT client closed");
                    return;
                }
            }
        }
        if client.try_disconnect().is_err() {
            tracing::debug!("sensor simulator: client already closed");
        }
        let _ended = tokio::time::timeout(Duration::from_secs(2), poller).await;
    })
}

/// The demo's simulator for `settings`: every sensor of the registry heartbeating at its
/// type's period; a few covers opened (and two closed again), one tilted, a flood that
/// drains, a dead battery, and one silent sensor (the first of the shortest-heartbeat type).
pub fn demo_config(settings: &crate::config::SensorsSettings) -> SensorSimConfig {
    let sensors: Vec<SimSensor> = settings
        .sensors
        .iter()
        .filter_map(|s| {
            Some(SimSensor {
                id: s.id.clone(),
                heartbeat: settings.types.get(&s.kind)?.heartbeat,
            })
        })
        .collect();
    let shortest = sensors.iter().map(|s| s.heartbeat).min();
    let silent = sensors
        .iter()
        .rev()
        .find(|s| Some(s.heartbeat) == shortest)
        .map(|s| s.id.clone());
    let at = |i: usize| {
        sensors
            .get(i * 97 % sensors.len().max(1))
            .map(|s| s.id.clone())
    };
    let secs = Duration::from_secs;
    let mut scenario = Vec::new();
    let mut step = |after: Duration, sensor: Option<SensorId>, action| {
        if let Some(sensor) = sensor {
            scenario.push(SimStep {
                after,
                sensor,
                action,
            });
        }
    };
    step(secs(20), at(1), SimAction::Open);
    step(secs(150), at(1), SimAction::Close);
    step(secs(35), at(2), SimAction::Tilt(35.0));
    step(secs(50), at(3), SimAction::Open);
    step(secs(200), at(3), SimAction::Close);
    step(secs(65), at(4), SimAction::Open);
    step(secs(40), at(5), SimAction::Flood(62.0));
    step(secs(240), at(5), SimAction::Drain);
    step(secs(10), at(6), SimAction::Battery(4.0));
    step(Duration::ZERO, silent, SimAction::Silence);
    SensorSimConfig {
        host: settings.mqtt.host.clone(),
        port: settings.mqtt.port,
        client_id: format!("{}-simulator", settings.mqtt.client_id),
        credentials: settings
            .mqtt
            .credentials
            .as_ref()
            .map(|c| (c.user.clone(), c.password.clone())),
        topic_prefix: settings.topic_prefix.clone(),
        sensors,
        scenario,
    }
}
