//! HTTP (axum).
//!
//! The appeal registry's APIs (mount [`registry_api::router`]):
//! - [`open311`]: Open311 GeoReport v2 under `/open311/v2` (JSON and XML).
//! - [`appeals`]: the appeals JSON API under `/api/v1` with its OpenAPI document.

pub mod appeals;
mod appeals_error;
pub mod open311;
pub mod registry_api;
#[cfg(test)]
mod registry_api_tests;
