//! The HTTP server's sockets: accepts connections under a cap (a semaphore taken before
//! `accept`, so clients past the cap wait in the kernel's backlog, not in our memory) and a
//! cap per source address (one client cannot take every slot: past it, closed at once), serves
//! each with hyper's HTTP/1.1 connection and a timer, so a client that does not send a whole
//! request header within `[http] header_read_timeout_s` — a slow-header client, or a keep-alive
//! connection left idle — is closed; the router's own 30 s timeout bounds a slow body. Each
//! request carries `ConnectInfo<SocketAddr>` (rate limits, sign-in limits). Stopping: no new
//! connections, open ones finish their request in flight and close (graceful shutdown).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::config::HttpSettings;

/// Serves `router` on `listener` until `stop` is cancelled, then waits for open
/// connections to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    http: &HttpSettings,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(http.max_connections));
    let per_address = Arc::new(PerAddress {
        open: parking_lot::Mutex::new(HashMap::new()),
        max: http.max_connections_per_address,
    });
    let connections = TaskTracker::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(address_slot) = PerAddress::take(&per_address, peer.ip()) else {
            tracing::debug!(%peer, "connection refused: too many open from this address");
            drop(stream);
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, %peer, "TCP_NODELAY not set");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(request)
            },
        );
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let stop = stop.clone();
        connections.spawn(async move {
            let _slots = (permit, address_slot);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_end(peer, result),
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    log_end(peer, connection.await);
                }
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// Open connections per source address; entries exist only while connections are open, so
/// the map holds at most `max_connections` entries.
struct PerAddress {
    open: parking_lot::Mutex<HashMap<IpAddr, usize>>,
    max: usize,
}

/// One open connection from `ip`; released on drop.
struct AddressSlot {
    of: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn take(this: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = this.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= this.max {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            of: this.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.of.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(error) = result {
        // Timeouts, resets and malformed requests are the client's business.
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}
