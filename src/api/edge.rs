//! The HTTP edge in front of every route (the socket side — header-read timeout, idle
//! keep-alive, connection cap — is `app/serve.rs`):
//!
//! - a `Host` allow-list against DNS rebinding: IP literals and `localhost` always, names only
//!   when listed in `[http] allowed_hosts`;
//! - the request target checked before routing: no NUL byte, valid UTF-8 and bounded length in
//!   the path and in every query parameter (400 naming the parameter, never a database error);
//! - per-address and per-identity rate limits on state-changing requests (GCRA via `governor`);
//! - unknown paths answered in each API's own error format (GeoReport v2 under `/open311`).

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;

use super::appeals_error::AppealsApiError;
use crate::auth::Identity;
use crate::config::HttpSettings;

/// Longest request target (path and query) accepted.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Keys each limiter keeps before old ones are trimmed (bounded memory whatever the callers).
const MAX_LIMITER_KEYS: usize = 100_000;

/// What the edge checks, shared by its middlewares.
pub(crate) struct Edge {
    allowed_hosts: Vec<String>,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_identity: DefaultKeyedRateLimiter<String>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Edge {
    pub(crate) fn new(http: &HttpSettings) -> Arc<Self> {
        Arc::new(Self {
            allowed_hosts: http.allowed_hosts.clone(),
            by_address: RateLimiter::keyed(per_minute(http.writes_per_minute_per_address)),
            by_identity: RateLimiter::keyed(per_minute(http.writes_per_minute_per_key)),
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        if host.starts_with('[') {
            // An IPv6 literal: a rebinding attack needs a name.
            return true;
        }
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok() || name == "localhost" || self.allowed_hosts.contains(&name)
    }
}

/// An error in the error format of the API the path belongs to.
pub(super) fn error_for(path: &str, status: StatusCode, message: String) -> Response {
    if path.starts_with("/open311/") {
        super::open311::error_response(path, status, message)
    } else if path.starts_with("/api/v1/") {
        AppealsApiError::Refused(status, message).into_response()
    } else {
        (status, axum::Json(json!({ "error": message }))).into_response()
    }
}

/// Refuses a request whose `Host` is not allowed, or whose path or query carries a NUL
/// byte, invalid UTF-8 or an over-long value — before any routing, handler or database.
pub(super) async fn check_request(
    State(edge): State<Arc<Edge>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let host = request
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_owned())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if let Some(host) = host
        && !edge.host_allowed(&host)
    {
        tracing::warn!(host = %host.escape_debug(), "request for a host not in [http] allowed_hosts refused");
        return error_for(
            &path,
            StatusCode::MISDIRECTED_REQUEST,
            "this host name is not served here (see [http] allowed_hosts)".into(),
        );
    }
    if let Err((status, message)) = check_target(&request) {
        return error_for(&path, status, message);
    }
    next.run(request).await
}

/// [`check_target`] on raw bytes (fuzzing): bytes that are not a URI at all are refused
/// earlier, by hyper.
pub(super) fn check_target_bytes(target: &[u8]) -> bool {
    let Ok(uri) = axum::http::Uri::try_from(target) else {
        return false;
    };
    let Ok(request) = Request::builder().uri(uri).body(axum::body::Body::empty()) else {
        return false;
    };
    check_target(&request).is_ok()
}

fn check_target(request: &Request) -> Result<(), (StatusCode, String)> {
    let uri = request.uri();
    let target_len = uri.path().len() + uri.query().map_or(0, str::len);
    if target_len > MAX_TARGET_BYTES {
        return Err((
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target_len} bytes; at most {MAX_TARGET_BYTES}"),
        ));
    }
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "the path is not valid UTF-8".to_owned(),
            )
        })?;
    if path.contains('\0') {
        return Err((
            StatusCode::BAD_REQUEST,
            "the path contains a NUL byte".to_owned(),
        ));
    }
    for pair in uri.query().unwrap_or("").split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |raw: &str| {
            let spaced = raw.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8()
                .map(|s| s.into_owned())
        };
        let name = decode(name).map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "a query parameter name is not valid UTF-8".to_owned(),
            )
        })?;
        let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        let value = decode(value).map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                format!("query parameter `{shown}` is not valid UTF-8"),
            )
        })?;
        if name.contains('\0') || value.contains('\0') {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("query parameter `{shown}` contains a NUL byte"),
            ));
        }
    }
    Ok(())
}

/// Rate limits on state-changing requests: per source address, and per signed-in user or
/// API key (the identity `policy::authorize` found). Reads are not limited here.
pub(super) async fn limit_writes(
    State(edge): State<Arc<Edge>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    if edge.by_address.len() > MAX_LIMITER_KEYS {
        edge.by_address.retain_recent();
    }
    if edge.by_identity.len() > MAX_LIMITER_KEYS {
        edge.by_identity.retain_recent();
    }
    let now = DefaultClock::default().now();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip());
    let identity = request.extensions().get::<Identity>().map(Identity::actor);
    let verdicts = [
        address.map(|a| edge.by_address.check_key(&a)),
        identity.map(|i| edge.by_identity.check_key(&i)),
    ];
    for verdict in verdicts.into_iter().flatten() {
        if let Err(not_until) = verdict {
            let wait = not_until.wait_time_from(now).as_secs().max(1);
            let mut response = error_for(
                request.uri().path(),
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many changes from this client; retry in {wait} s"),
            );
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    }
    next.run(request).await
}

/// Unknown paths: 404 in the error format of the API the path belongs to.
pub(super) async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    let shown: String = path.chars().filter(|c| !c.is_control()).take(200).collect();
    error_for(
        path,
        StatusCode::NOT_FOUND,
        format!("no resource `{shown}`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(hosts: &[&str]) -> Arc<Edge> {
        let mut http = HttpSettings::new(SocketAddr::from(([127, 0, 0, 1], 8080)));
        http.allowed_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
        Edge::new(&http)
    }

    #[test]
    fn ip_literals_and_localhost_pass_and_names_only_when_listed() {
        let edge = edge(&["sitcenter.astana.kz"]);
        for ok in [
            "127.0.0.1:8080",
            "10.1.2.3",
            "[::1]:8080",
            "localhost:8080",
            "LOCALHOST",
            "sitcenter.astana.kz",
            "Sitcenter.Astana.KZ.:443",
        ] {
            assert!(edge.host_allowed(ok), "{ok}");
        }
        for refused in ["evil.example", "sitcenter.astana.kz.evil.example:80", ""] {
            assert!(!edge.host_allowed(refused), "{refused}");
        }
    }

    fn request(target: &str) -> Request {
        Request::builder()
            .uri(target)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn nul_bytes_and_invalid_utf8_in_the_target_are_refused_naming_the_parameter() {
        assert!(check_target(&request("/open311/v2/requests.json?status=open")).is_ok());
        let (status, message) =
            check_target(&request("/api/v1/appeals?text=a%00b")).expect_err("NUL in query");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("`text`"), "{message}");
        let (_, message) =
            check_target(&request("/api/v1/appeals/109%00")).expect_err("NUL in path");
        assert!(message.contains("path"), "{message}");
        let (_, message) =
            check_target(&request("/api/v1/appeals?district=%ff%fe")).expect_err("bad UTF-8");
        assert!(message.contains("`district`"), "{message}");
        let long = format!("/api/v1/appeals?text={}", "a".repeat(MAX_TARGET_BYTES));
        let (status, _) = check_target(&request(&long)).expect_err("too long");
        assert_eq!(status, StatusCode::URI_TOO_LONG);
    }
}

#[cfg(test)]
mod corpus_tests {
    /// Every file of `fuzz/corpus/request_input/` runs through the edge's parsers; its name
    /// says what must come out: `ok-…` accepted, `reject-…` refused.
    #[test]
    fn the_fuzz_corpus_of_request_input_gives_the_outcome_each_file_names() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/request_input");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let data = std::fs::read(entry.path()).expect("corpus file");
            let accepted = super::super::parse_client_input(&data);
            if name.starts_with("ok-") {
                assert!(accepted, "{name} was refused");
            } else if name.starts_with("reject-") {
                assert!(!accepted, "{name} was accepted");
            }
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} corpus files");
    }
}
