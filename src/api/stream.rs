//! Live updates for the UI over Server-Sent Events: `GET /api/stream`.
//!
//! One [`LiveHub`] per node tails the registry's event log (`appeal_events`, in id order, once a
//! second and only while someone listens) and broadcasts each change; every client reads
//! from a bounded ring of [`CLIENT_BUFFER`] events. A client that falls further behind gets a
//! `lagged` event and refetches what it shows, instead of the node buffering without bound.
//! Because the log is in PostgreSQL, a change made through any node reaches every node's
//! clients.

use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::registry::{ChangeView, Registry};

/// Events one client may fall behind by before it is told to refetch.
pub(super) const CLIENT_BUFFER: usize = 256;
/// How often the log is read while someone listens.
const TAIL_PERIOD: Duration = Duration::from_secs(1);
/// Events read per period at most (the rest next period).
const TAIL_BATCH: i64 = 500;

/// The node's broadcaster of registry changes.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<Arc<ChangeView>>,
}

impl LiveHub {
    /// Starts tailing `registry` (on the current runtime) until the hub is dropped.
    pub fn start(registry: Registry) -> Self {
        let (sender, _) = broadcast::channel(CLIENT_BUFFER);
        let inner = Arc::new(Inner { sender });
        tokio::spawn(tail(Arc::downgrade(&inner), registry));
        Self { inner }
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeView>> {
        self.inner.sender.subscribe()
    }
}

async fn tail(hub: Weak<Inner>, registry: Registry) {
    let mut ticker = tokio::time::interval(TAIL_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // `None` until someone listens: nobody to tell, nothing to read.
    let mut last: Option<i64> = None;
    loop {
        ticker.tick().await;
        let Some(inner) = hub.upgrade() else { return };
        if inner.sender.receiver_count() == 0 {
            last = None;
            continue;
        }
        let after = match last {
            Some(id) => id,
            None => match registry.last_change_id().await {
                Ok(id) => {
                    last = Some(id);
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "live updates: cannot read the registry");
                    continue;
                }
            },
        };
        match registry.changes_since(after, TAIL_BATCH).await {
            Ok(changes) => {
                for change in changes {
                    last = Some(change.id);
                    // No receiver left is not an error: the next tick sees it.
                    let _receivers = inner.sender.send(Arc::new(change));
                }
            }
            Err(error) => tracing::warn!(%error, "live updates: cannot read the registry"),
        }
    }
}

pub(super) fn router(hub: LiveHub) -> Router {
    Router::new()
        .route("/api/stream", get(stream))
        .with_state(hub)
}

async fn stream(State(hub): State<LiveHub>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = hub.subscribe();
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(change) => Event::default()
                .event("appeal")
                .json_data(&*change)
                .unwrap_or_else(|_| Event::default().event("lagged")),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(missed.to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), receiver))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
