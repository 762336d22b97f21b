//! HTTP APIs over the appeal registry (one way in: [`router`] with a [`RegistryApiState`]).
//!
//! - `/open311/v2/…`: Open311 GeoReport v2 (services, service definitions, requests GET/POST,
//!   request by id, tokens; `.json` and `.xml`; the spec's error format) — [`open311`].
//! - `/api/v1/…`: the appeals JSON API for the UI (search, one appeal, timeline, evidence,
//!   lifecycle actions) with its OpenAPI document at `/api/v1/openapi.json` — [`appeals`].
//!
//! Handlers only await the registry (PostgreSQL) and do no blocking work. Mounted by [`super::router`]
//! when the node has `[registry]`.

use std::sync::Arc;

use axum::Router;

use super::{appeals, open311};
use crate::auth::Auth;
use crate::config::Open311Config;
use crate::incidents::Intake;
use crate::registry::Registry;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct RegistryApiState {
    pub registry: Registry,
    pub intake: Intake,
    pub open311: Arc<Open311Config>,
    /// API keys of Open311 clients that put `api_key` in the form body.
    pub auth: Auth,
}

/// Both APIs: `/open311/v2` and `/api/v1`.
pub(super) fn router(state: RegistryApiState) -> Router {
    Router::new()
        .merge(open311::router(state.clone()))
        .merge(appeals::router(state))
}
