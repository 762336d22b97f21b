//! HTTP APIs over the appeal registry (one way in: [`router`] with a [`RegistryApiState`]).
//!
//! - `/open311/v2/…`: Open311 GeoReport v2 (services, service definitions, requests GET/POST,
//!   request by id, tokens; `.json` and `.xml`; the spec's error format) — [`open311`].
//! - `/api/v1/…`: the appeals JSON API for the UI (search, one appeal, timeline, evidence,
//!   lifecycle actions) with its OpenAPI document at `/api/v1/openapi.json` — [`appeals`].
//!
//! Handlers only await the registry (PostgreSQL) and do no blocking work. Mount with
//! `Router::merge(api::registry_api::router(state))` beside the rest of the HTTP API.

use std::sync::Arc;

use axum::Router;

use super::{appeals, open311};
use crate::incidents::Intake;
use crate::registry::Registry;

/// Open311 settings (TOML-ready: `jurisdiction_id = "astana.kz"`, `api_keys = ["…"]`).
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Open311Config {
    /// The `jurisdiction_id` this endpoint serves (requests naming another get a 404 error);
    /// `None` accepts any or none.
    pub jurisdiction_id: Option<String>,
    /// API keys allowed to POST requests; empty = no key required.
    pub api_keys: Vec<String>,
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct RegistryApiState {
    pub registry: Registry,
    pub intake: Intake,
    pub open311: Arc<Open311Config>,
}

/// Both APIs: `/open311/v2` and `/api/v1`.
pub fn router(state: RegistryApiState) -> Router {
    Router::new()
        .merge(open311::router(state.clone()))
        .merge(appeals::router(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open311_settings_read_from_toml_and_refuse_unknown_keys() {
        let cfg: Open311Config =
            toml::from_str("jurisdiction_id = \"astana.kz\"\napi_keys = [\"k1\"]\n")
                .expect("valid");
        assert_eq!(cfg.jurisdiction_id.as_deref(), Some("astana.kz"));
        assert_eq!(cfg.api_keys, vec!["k1".to_owned()]);
        assert_eq!(
            toml::from_str::<Open311Config>("").expect("empty"),
            Open311Config::default()
        );
        let err = toml::from_str::<Open311Config>("api_key = \"k\"\n").expect_err("unknown key");
        assert!(err.to_string().contains("api_key"), "{err}");
    }
}
