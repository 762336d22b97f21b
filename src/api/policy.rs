//! Who may call what: one table, every route × role (docs/security.md shows the same
//! table), checked by one middleware on every matched route. A route with no row is refused
//! for everyone (fail closed) and fails `api::policy_tests`.
//!
//! Identity comes from the session cookie (people), or from an API key — `Authorization:
//! Bearer sk_…` or Open311's `api_key` query parameter (machine clients). A cookie session's
//! state-changing request must also carry its CSRF token in `X-CSRF-Token` and, when the
//! browser sends `Origin`, come from this host.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde_json::json;

use crate::auth::{Auth, CSRF_HEADER, Identity, Role, SESSION_COOKIE, Scope};

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (the UI shell, health, Open311 reads, sign-in).
    Public,
    /// Any signed-in person, whatever their role.
    SignedIn,
    /// A person with one of these roles, or a key with this scope.
    Roles(&'static [Role], Option<Scope>),
    /// Open311 POST: a key with `open311:write` (in `api_key` or `Authorization`), or an
    /// inspector or supervisor; the handler checks it, since GeoReport v2 clients put
    /// `api_key` in the form body.
    Open311Post,
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

use Access::{Open311Post, Public, Roles, SignedIn};
use Role::{Admin, Dispatcher, Inspector, Qa, Supervisor};

const OPERATORS: &[Role] = &[Inspector, Dispatcher, Supervisor];
const REVIEWERS: &[Role] = &[Inspector, Supervisor];
const EVENT_READERS: &[Role] = &[Inspector, Supervisor, Qa, Admin];
const WATCHERS: &[Role] = &[Inspector, Dispatcher, Supervisor, Admin];
const ADMINS: &[Role] = &[Admin];
const SUPERVISORS: &[Role] = &[Supervisor];
const EXECUTION: &[Role] = &[Dispatcher, Supervisor];
const QUALITY: &[Role] = &[Supervisor, Qa];

const fn rule(method: Method, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

/// Every route of `api::router` and who may call it.
pub const POLICY: &[Rule] = &[
    rule(Method::GET, "/", Public),
    rule(Method::GET, "/assets/{file}", Public),
    rule(Method::GET, "/api/city/layers/{name}", SignedIn),
    rule(Method::GET, "/api/stream", SignedIn),
    rule(Method::POST, "/api/review/claim", Roles(REVIEWERS, None)),
    rule(Method::POST, "/api/review/release", Roles(REVIEWERS, None)),
    rule(
        Method::POST,
        "/api/review/{number}/verdict",
        Roles(REVIEWERS, None),
    ),
    rule(Method::GET, "/api/review/stats", Roles(QUALITY, None)),
    rule(Method::GET, "/api/review/export", Roles(QUALITY, None)),
    rule(Method::GET, "/api/evidence/{id}/{item}", SignedIn),
    rule(Method::GET, "/health", Public),
    rule(
        Method::GET,
        "/metrics",
        Roles(&[Admin, Qa], Some(Scope::MetricsRead)),
    ),
    rule(Method::GET, "/api/site", SignedIn),
    rule(Method::GET, "/api/cameras", SignedIn),
    rule(Method::GET, "/api/cameras/{id}", SignedIn),
    rule(
        Method::GET,
        "/api/cameras/{id}/snapshot.jpg",
        Roles(WATCHERS, None),
    ),
    rule(
        Method::POST,
        "/api/cameras/{id}/restart",
        Roles(ADMINS, None),
    ),
    rule(Method::POST, "/api/reload", Roles(ADMINS, None)),
    rule(
        Method::GET,
        "/api/events",
        Roles(EVENT_READERS, Some(Scope::EventsRead)),
    ),
    rule(
        Method::GET,
        "/api/events/{id}/evidence.jpg",
        Roles(EVENT_READERS, Some(Scope::EventsRead)),
    ),
    rule(
        Method::GET,
        "/api/events/{id}/clean.jpg",
        Roles(EVENT_READERS, Some(Scope::EventsRead)),
    ),
    rule(Method::GET, "/api/detect", SignedIn),
    rule(Method::GET, "/api/sensors", SignedIn),
    rule(Method::GET, "/api/sensors/alarms", Roles(WATCHERS, None)),
    rule(Method::GET, "/api/sensors/unknown", Roles(WATCHERS, None)),
    rule(Method::GET, "/api/sensors/rejected", Roles(WATCHERS, None)),
    rule(Method::GET, "/api/sensors/{id}", Roles(WATCHERS, None)),
    rule(Method::GET, "/api/vehicles", Roles(EXECUTION, None)),
    rule(Method::GET, "/api/vehicles/stream", Roles(EXECUTION, None)),
    rule(Method::GET, "/api/vehicles/near", Roles(EXECUTION, None)),
    rule(Method::GET, "/api/vehicles/{id}", Roles(EXECUTION, None)),
    rule(
        Method::GET,
        "/api/vehicles/{id}/track",
        Roles(EXECUTION, None),
    ),
    rule(Method::GET, "/api/routes", Roles(EXECUTION, None)),
    rule(Method::GET, "/api/routes/{id}/day", Roles(EXECUTION, None)),
    rule(Method::GET, "/api/telemetry", Roles(EXECUTION, None)),
    rule(
        Method::GET,
        "/api/telemetry/rejected",
        Roles(EXECUTION, None),
    ),
    rule(Method::POST, "/api/auth/login", Public),
    rule(Method::POST, "/api/auth/logout", SignedIn),
    rule(Method::GET, "/api/auth/me", SignedIn),
    rule(Method::POST, "/api/auth/language", SignedIn),
    rule(Method::GET, "/api/admin/users", Roles(ADMINS, None)),
    rule(Method::POST, "/api/admin/users", Roles(ADMINS, None)),
    rule(
        Method::POST,
        "/api/admin/users/{name}/disable",
        Roles(ADMINS, None),
    ),
    rule(
        Method::POST,
        "/api/admin/users/{name}/password",
        Roles(ADMINS, None),
    ),
    rule(
        Method::POST,
        "/api/admin/users/{name}/roles",
        Roles(ADMINS, None),
    ),
    rule(Method::GET, "/api/admin/keys", Roles(ADMINS, None)),
    rule(Method::POST, "/api/admin/keys", Roles(ADMINS, None)),
    rule(
        Method::POST,
        "/api/admin/keys/{id}/revoke",
        Roles(ADMINS, None),
    ),
    rule(Method::GET, "/open311/v2/{file}", Public),
    rule(Method::POST, "/open311/v2/{file}", Open311Post),
    rule(Method::GET, "/open311/v2/services/{file}", Public),
    rule(Method::GET, "/open311/v2/requests/{file}", Public),
    rule(Method::GET, "/open311/v2/tokens/{file}", Public),
    rule(Method::GET, "/api/v1/openapi.json", Public),
    rule(Method::GET, "/api/v1/services", SignedIn),
    rule(Method::GET, "/api/v1/appeals", SignedIn),
    rule(Method::POST, "/api/v1/appeals", Roles(REVIEWERS, None)),
    rule(Method::GET, "/api/v1/appeals/{number}", SignedIn),
    rule(Method::GET, "/api/v1/appeals/{number}/timeline", SignedIn),
    rule(Method::GET, "/api/v1/appeals/{number}/evidence", SignedIn),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/confirm",
        Roles(REVIEWERS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/reject",
        Roles(REVIEWERS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/assign",
        Roles(OPERATORS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/start",
        Roles(EXECUTION, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/stage",
        Roles(OPERATORS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/resolve",
        Roles(REVIEWERS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/close",
        Roles(SUPERVISORS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/reopen",
        Roles(SUPERVISORS, None),
    ),
    rule(
        Method::POST,
        "/api/v1/appeals/{number}/comment",
        Roles(OPERATORS, None),
    ),
];

/// The row for `method` on the route `path` (a route pattern, as axum matched it).
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    POLICY
        .iter()
        .find(|r| r.path == path && r.method == *method)
}

/// Whether `identity` may call a route with `access` (`Open311Post` is decided later).
pub fn allows(access: Access, identity: Option<&Identity>) -> bool {
    match access {
        Access::Public | Access::Open311Post => true,
        Access::SignedIn => matches!(identity, Some(Identity::User { .. })),
        Access::Roles(roles, scope) => identity.is_some_and(|id| {
            roles.iter().any(|r| id.has_role(*r)) || scope.is_some_and(|s| id.has_scope(s))
        }),
    }
}

/// How the request proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Cookie,
    Key,
    /// A trusted reverse proxy's identity header (`[registry.auth] proxy_header`).
    Proxy,
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn query_key(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "api_key")
        .map(|(_, v)| v.into_owned())
}

/// `Origin`, when present, must name the host the request was sent to (no cross-site
/// state change with a cookie, whatever the CSRF token).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    url::Url::parse(origin).is_ok_and(|u| {
        let with_port = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_owned(),
        };
        with_port.eq_ignore_ascii_case(host)
    })
}

async fn identify(
    auth: &Auth,
    jar: &CookieJar,
    headers: &HeaderMap,
    query: Option<&str>,
    peer: Option<std::net::IpAddr>,
) -> Result<Option<(Identity, Via)>, Response> {
    let unavailable = |error: crate::auth::AuthError| {
        tracing::error!(%error, "identity lookup failed");
        refuse(StatusCode::SERVICE_UNAVAILABLE, "sign-in is unavailable")
    };
    if let Some(proxy) = &auth.settings().proxy
        && let Some(value) = headers.get(proxy.header.as_str())
    {
        // Believed only from a listed proxy; from anyone else the header is ignored (the
        // proxy is expected to strip it from what clients send).
        if peer.is_some_and(|ip| proxy.addresses.contains(&ip)) {
            let name = value.to_str().unwrap_or_default().trim();
            return match auth.proxy_user(name).await.map_err(unavailable)? {
                Some(identity) => Ok(Some((identity, Via::Proxy))),
                None => Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "the proxy named no enabled user of this registry",
                )),
            };
        }
        tracing::warn!(peer = ?peer, header = %proxy.header, "identity header from an address that is not a listed proxy: ignored");
    }
    if let Some(raw) = bearer(headers)
        .map(str::to_owned)
        .or_else(|| query_key(query))
    {
        return match auth.key(&raw).await.map_err(unavailable)? {
            Some(identity) => Ok(Some((identity, Via::Key))),
            None => Err(refuse(StatusCode::UNAUTHORIZED, "the API key is not valid")),
        };
    }
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        return Ok(auth
            .session(cookie.value())
            .await
            .map_err(unavailable)?
            .map(|identity| (identity, Via::Cookie)));
    }
    Ok(None)
}

/// The middleware: finds the route's row, establishes the identity, checks the row, CSRF
/// and origin, and hands the identity to the handler (`Extension<Identity>`).
pub async fn authorize(
    State(auth): State<Option<Auth>>,
    matched: MatchedPath,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let Some(rule) = rule_for(&method, matched.as_str()) else {
        tracing::error!(method = %method, route = matched.as_str(), "route without a policy row: refused");
        return refuse(StatusCode::FORBIDDEN, "this route has no access policy");
    };
    let identity = match &auth {
        Some(auth) => match identify(
            auth,
            &jar,
            request.headers(),
            request.uri().query(),
            request
                .extensions()
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        )
        .await
        {
            Ok(found) => found,
            Err(response) => return response,
        },
        None => None,
    };
    if !allows(rule.access, identity.as_ref().map(|(id, _)| id)) {
        return match (&identity, &auth) {
            (_, None) => refuse(
                StatusCode::FORBIDDEN,
                "sign-in needs [registry] in site.toml; this route is closed without it",
            ),
            (None, _) => refuse(StatusCode::UNAUTHORIZED, "sign in first"),
            (Some(_), _) => refuse(StatusCode::FORBIDDEN, "your role may not do this"),
        };
    }
    let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && !same_origin(request.headers()) {
        return refuse(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    if let Some((identity, via)) = identity {
        // A proxy's identity rides on the browser like a cookie: its writes must say where
        // they come from.
        if changes_state && via == Via::Proxy && !request.headers().contains_key(header::ORIGIN) {
            return refuse(StatusCode::FORBIDDEN, "cross-site request refused");
        }
        if changes_state && via == Via::Cookie {
            let sent = request
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let Identity::User { csrf, .. } = &identity else {
                return refuse(StatusCode::FORBIDDEN, "CSRF token missing or wrong");
            };
            let equal: bool =
                subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes()).into();
            if !equal {
                return refuse(StatusCode::FORBIDDEN, "CSRF token missing or wrong");
            }
        }
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}
