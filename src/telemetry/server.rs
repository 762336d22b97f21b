//! The tracker-facing servers: Wialon IPS and Teltonika over TCP, OsmAnd over HTTP.
//!
//! One task per connection behind a semaphore (`max_connections`, taken *before* accept, so
//! excess trackers wait in the kernel's backlog). Each connection reads into a buffer bounded
//! by `max_packet_bytes`, answers every packet in the protocol's own terms, and hands its
//! fixes to [`Core::take`], which awaits room in the store queue: under overload we stop
//! reading, TCP pushes back to the tracker, and no fix is dropped.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Core;
use super::fix::{Protocol, RejectReason, Rejection};
use super::{osmand, teltonika, wialon};

/// Accepts until `stop`; each connection runs `serve` on its own task.
pub(super) async fn accept_loop<F, Fut>(
    listener: TcpListener,
    protocol: Protocol,
    core: Arc<Core>,
    limit: Arc<Semaphore>,
    stop: CancellationToken,
    serve: F,
) where
    F: Fn(Arc<Core>, TcpStream, SocketAddr) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let permit = tokio::select! {
            () = stop.cancelled() => return,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(protocol = protocol.as_str(), %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let core = core.clone();
        let serve = serve.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            core.metrics
                .connections
                .get_or_create(&crate::obs::ProtocolLabel {
                    protocol: protocol.as_str(),
                })
                .inc();
            tokio::select! {
                () = stop.cancelled() => {}
                () = serve(core.clone(), stream, peer) => {}
            }
            core.metrics
                .connections
                .get_or_create(&crate::obs::ProtocolLabel {
                    protocol: protocol.as_str(),
                })
                .dec();
            drop(permit);
        });
    }
}

/// Reads more bytes into `buf` (bounded by the caller); `false` on EOF, error or idle timeout.
async fn fill(core: &Core, stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match tokio::time::timeout(core.settings.idle_timeout, stream.read(&mut chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => false,
        Ok(Ok(n)) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

pub(super) async fn wialon_connection(core: Arc<Core>, mut stream: TcpStream, peer: SocketAddr) {
    let max = core.settings.max_packet_bytes;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut device = None;
    // While a line is longer than allowed we skip to its end.
    let mut skipping = false;
    loop {
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            if std::mem::take(&mut skipping) {
                continue;
            }
            let answer = wialon_line(&core, &line, &mut device, peer).await;
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
        if buf.len() > max {
            let who = device
                .as_ref()
                .map(|d: &Arc<super::Device>| d.entry.id.clone());
            core.reject(
                Protocol::Wialon,
                who.as_deref(),
                peer,
                &Rejection::new(RejectReason::TooLong, format!("line over {max} bytes")),
            );
            buf.clear();
            skipping = true;
            if stream.write_all(b"#AD#-1\r\n").await.is_err() {
                return;
            }
        }
        if !fill(&core, &mut stream, &mut buf).await {
            return;
        }
    }
}

async fn wialon_line(
    core: &Core,
    line: &[u8],
    device: &mut Option<Arc<super::Device>>,
    peer: SocketAddr,
) -> String {
    let who = device.as_ref().map(|d| d.entry.id.clone());
    let packet = match wialon::parse(line) {
        Ok(p) => p,
        Err(e) => {
            core.reject(Protocol::Wialon, who.as_deref(), peer, &e.rejection);
            return wialon::error_answer(&e);
        }
    };
    match packet {
        wialon::Packet::Login { imei, password } => {
            let Some(found) = core.device(&imei) else {
                core.reject(
                    Protocol::Wialon,
                    Some(&imei),
                    peer,
                    &Rejection::new(
                        RejectReason::UnknownDevice,
                        "IMEI not in the vehicle registry",
                    ),
                );
                *device = None;
                return wialon::LOGIN_REFUSED.to_owned();
            };
            if !super::password_ok(&found, password.as_deref()) {
                core.reject(
                    Protocol::Wialon,
                    Some(&found.entry.id),
                    peer,
                    &Rejection::new(RejectReason::WrongPassword, "login password does not match"),
                );
                *device = None;
                return wialon::LOGIN_WRONG_PASSWORD.to_owned();
            }
            *device = Some(found);
            wialon::LOGIN_OK.to_owned()
        }
        wialon::Packet::Ping => wialon::PING_ANSWER.to_owned(),
        other => {
            let Some(d) = device.clone() else {
                core.reject(
                    Protocol::Wialon,
                    None,
                    peer,
                    &Rejection::new(RejectReason::NotLoggedIn, "data before a successful login"),
                );
                return match other {
                    wialon::Packet::Short(_) => "#ASD#-1\r\n".to_owned(),
                    wialon::Packet::BlackBox(_) => "#AB#0\r\n".to_owned(),
                    _ => "#AD#-1\r\n".to_owned(),
                };
            };
            match other {
                wialon::Packet::Short(fix) => {
                    core.take(Protocol::Wialon, &d, fix, peer).await;
                    wialon::ok_answer(wialon::Kind::Short, 1)
                }
                wialon::Packet::Data(fix) => {
                    core.take(Protocol::Wialon, &d, fix, peer).await;
                    wialon::ok_answer(wialon::Kind::Data, 1)
                }
                wialon::Packet::BlackBox(fixes) => {
                    let mut n = 0;
                    for fix in fixes {
                        match fix {
                            Ok(fix) => {
                                n += 1;
                                core.take(Protocol::Wialon, &d, fix, peer).await;
                            }
                            Err(r) => core.reject(Protocol::Wialon, Some(&d.entry.id), peer, &r),
                        }
                    }
                    wialon::ok_answer(wialon::Kind::BlackBox, n)
                }
                wialon::Packet::Login { .. } | wialon::Packet::Ping => String::new(),
            }
        }
    }
}

pub(super) async fn teltonika_connection(core: Arc<Core>, mut stream: TcpStream, peer: SocketAddr) {
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    // The IMEI greeting.
    let device = loop {
        match teltonika::imei(&buf) {
            Ok(teltonika::Framed::Incomplete) => {
                if !fill(&core, &mut stream, &mut buf).await {
                    return;
                }
            }
            Ok(teltonika::Framed::Unit { consumed, value }) => {
                buf.drain(..consumed);
                match core.device(&value) {
                    Some(d) => {
                        if stream.write_all(&teltonika::IMEI_ACCEPTED).await.is_err() {
                            return;
                        }
                        break d;
                    }
                    None => {
                        core.reject(
                            Protocol::Teltonika,
                            Some(&value),
                            peer,
                            &Rejection::new(
                                RejectReason::UnknownDevice,
                                "IMEI not in the vehicle registry",
                            ),
                        );
                        stream.write_all(&teltonika::IMEI_REFUSED).await.ok();
                        return;
                    }
                }
            }
            Err(r) => {
                core.reject(Protocol::Teltonika, None, peer, &r);
                stream.write_all(&teltonika::IMEI_REFUSED).await.ok();
                return;
            }
        }
    };
    let id = device.entry.id.clone();
    loop {
        match teltonika::packet(&buf) {
            Ok(teltonika::Framed::Incomplete) => {
                if buf.len() > core.settings.max_packet_bytes + 12 {
                    core.reject(
                        Protocol::Teltonika,
                        Some(&id),
                        peer,
                        &Rejection::new(RejectReason::TooLong, "packet over max_packet_bytes"),
                    );
                    return;
                }
                if !fill(&core, &mut stream, &mut buf).await {
                    return;
                }
            }
            Ok(teltonika::Framed::Unit { consumed, value }) => {
                buf.drain(..consumed);
                let mut n = 0u32;
                for record in value.records {
                    n += 1;
                    match record {
                        Ok(fix) => core.take(Protocol::Teltonika, &device, fix, peer).await,
                        Err(r) => core.reject(Protocol::Teltonika, Some(&id), peer, &r),
                    }
                }
                if stream.write_all(&teltonika::ack(n)).await.is_err() {
                    return;
                }
            }
            Err((r, Some(skip))) => {
                core.reject(Protocol::Teltonika, Some(&id), peer, &r);
                buf.drain(..skip.min(buf.len()));
                if stream.write_all(&teltonika::ack(0)).await.is_err() {
                    return;
                }
            }
            Err((r, None)) => {
                // The stream cannot be resynchronised: close, the tracker reconnects.
                core.reject(Protocol::Teltonika, Some(&id), peer, &r);
                return;
            }
        }
    }
}

#[derive(Clone)]
pub(super) struct OsmandState {
    pub core: Arc<Core>,
}

/// `GET|POST /` (and any path: Traccar Client lets users append one): one OsmAnd report.
pub(super) async fn osmand_report(
    State(state): State<OsmandState>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let core = &state.core;
    let mut params = query.unwrap_or_default();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form && !body.is_empty() {
        match std::str::from_utf8(&body) {
            Ok(text) => {
                if !params.is_empty() {
                    params.push('&');
                }
                params.push_str(text);
            }
            Err(_) => {
                let r = Rejection::new(RejectReason::Malformed, "form body is not UTF-8");
                core.reject(Protocol::Osmand, None, peer, &r);
                return (StatusCode::BAD_REQUEST, r.to_string()).into_response();
            }
        }
    }
    let report = match osmand::parse(&params, chrono::Utc::now()) {
        Ok(r) => r,
        Err(r) => {
            core.reject(Protocol::Osmand, None, peer, &r);
            return (StatusCode::BAD_REQUEST, r.to_string()).into_response();
        }
    };
    let Some(device) = core.device(&report.device) else {
        let r = Rejection::new(
            RejectReason::UnknownDevice,
            "id not in the vehicle registry",
        );
        core.reject(Protocol::Osmand, Some(&report.device), peer, &r);
        return (StatusCode::FORBIDDEN, r.to_string()).into_response();
    };
    core.take(Protocol::Osmand, &device, report.fix, peer).await;
    StatusCode::OK.into_response()
}
