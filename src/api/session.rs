//! Sign-in over HTTP and the admin's management of users and keys:
//! `POST /api/auth/login|logout|language`, `GET /api/auth/me`, `/api/admin/users…`,
//! `/api/admin/keys…`. The session token travels only in an `HttpOnly`, `SameSite=Strict`
//! cookie (`Secure` unless the node serves plain HTTP on loopback); the CSRF token is given
//! to the page in the sign-in answer.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Auth, AuthError, Identity, Role, SESSION_COOKIE, Scope};

/// What the sign-in routes share.
#[derive(Clone)]
pub struct SessionState {
    pub auth: Auth,
    /// `Secure` on the session cookie.
    pub secure_cookies: bool,
}

/// Largest sign-in or admin body accepted.
const BODY_LIMIT: usize = 16 * 1024;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn from_auth(e: AuthError) -> Response {
    match e {
        AuthError::BadCredentials => error(StatusCode::UNAUTHORIZED, e.to_string()),
        AuthError::Throttled { retry_after_s } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after_s.to_string())],
            Json(json!({ "error": e.to_string() })),
        )
            .into_response(),
        AuthError::Invalid(_) | AuthError::UserExists(_) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        AuthError::UnknownUser(_) => error(StatusCode::NOT_FOUND, e.to_string()),
        other => {
            tracing::error!(error = %other, "sign-in store failed");
            error(StatusCode::SERVICE_UNAVAILABLE, "sign-in is unavailable")
        }
    }
}

async fn json_body<T: serde::de::DeserializeOwned>(request: Request) -> Result<T, Response> {
    let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| error(StatusCode::PAYLOAD_TOO_LARGE, "the body is too large"))?;
    serde_json::from_slice(&bytes).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    user: String,
    password: String,
}

fn me(identity: &Identity) -> serde_json::Value {
    match identity {
        Identity::User {
            name,
            roles,
            language,
            csrf,
            ..
        } => json!({ "user": name, "roles": roles, "language": language, "csrf": csrf }),
        Identity::Key { name, scopes, .. } => json!({ "key": name, "scopes": scopes }),
    }
}

async fn login(State(state): State<SessionState>, jar: CookieJar, request: Request) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let body: Login = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let session = match state
        .auth
        .sign_in(&body.user, &body.password, address)
        .await
    {
        Ok(s) => s,
        Err(e) => return from_auth(e),
    };
    let cookie = Cookie::build((SESSION_COOKIE, session.token.clone()))
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Strict)
        .build();
    (jar.add(cookie), Json(me(&session.identity))).into_response()
}

async fn logout(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    jar: CookieJar,
) -> Response {
    if let Some(cookie) = jar.get(SESSION_COOKIE)
        && let Err(e) = state.auth.sign_out(cookie.value(), &identity.actor()).await
    {
        return from_auth(e);
    }
    (
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        StatusCode::NO_CONTENT,
    )
        .into_response()
}

async fn whoami(Extension(identity): Extension<Identity>) -> Json<serde_json::Value> {
    Json(me(&identity))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Language {
    language: String,
}

async fn language(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    request: Request,
) -> Response {
    let body: Language = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Identity::User { name, .. } = &identity else {
        return error(StatusCode::FORBIDDEN, "keys have no language");
    };
    match state.auth.set_language(name, &body.language).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_auth(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    #[serde(default)]
    display_name: String,
    roles: Vec<String>,
    password: String,
}

fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    names.iter().map(|r| Role::parse(r)).collect()
}

async fn users(State(state): State<SessionState>) -> Response {
    match state.auth.users().await {
        Ok(users) => Json(users).into_response(),
        Err(e) => from_auth(e),
    }
}

async fn add_user(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    request: Request,
) -> Response {
    let body: NewUser = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let roles = match parse_roles(&body.roles) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match state
        .auth
        .add_user(
            &identity.actor(),
            &body.name,
            &body.display_name,
            &roles,
            &body.password,
        )
        .await
    {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(e) => from_auth(e),
    }
}

async fn disable_user(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
) -> Response {
    match state.auth.disable(&identity.actor(), &name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_auth(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Password {
    password: String,
}

async fn set_password(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let body: Password = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match state
        .auth
        .set_password(&identity.actor(), &name, &body.password)
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_auth(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Roles {
    roles: Vec<String>,
}

async fn set_roles(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let body: Roles = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let roles = match parse_roles(&body.roles) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match state.auth.set_roles(&identity.actor(), &name, &roles).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_auth(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<String>,
}

async fn keys(State(state): State<SessionState>) -> Response {
    match state.auth.keys().await {
        Ok(keys) => Json(keys).into_response(),
        Err(e) => from_auth(e),
    }
}

async fn add_key(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    request: Request,
) -> Response {
    let body: NewKey = match json_body(request).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let scopes: Result<Vec<Scope>, _> = body.scopes.iter().map(|s| Scope::parse(s)).collect();
    let scopes = match scopes {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match state
        .auth
        .add_key(&identity.actor(), &body.name, &scopes)
        .await
    {
        // The key is shown this once; only its hash is kept.
        Ok(key) => (StatusCode::CREATED, Json(json!({ "key": key }))).into_response(),
        Err(e) => from_auth(e),
    }
}

async fn revoke_key(
    State(state): State<SessionState>,
    Extension(identity): Extension<Identity>,
    Path(id): Path<String>,
) -> Response {
    match state.auth.revoke_key(&identity.actor(), &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_auth(e),
    }
}

pub(super) fn router(state: SessionState) -> Router {
    Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(whoami))
        .route("/api/auth/language", post(language))
        .route("/api/admin/users", get(users).post(add_user))
        .route("/api/admin/users/{name}/disable", post(disable_user))
        .route("/api/admin/users/{name}/password", post(set_password))
        .route("/api/admin/users/{name}/roles", post(set_roles))
        .route("/api/admin/keys", get(keys).post(add_key))
        .route("/api/admin/keys/{id}/revoke", post(revoke_key))
        .with_state(state)
}
