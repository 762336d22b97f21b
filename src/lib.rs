//! sitcenter: city situational-center video and sensor monitoring.
//!
//! - `domain`: values that cross modules (positions, categories, statuses).
//! - `geo`: city layers (districts, bodies, manholes, collection points, cameras) in R-trees.
//! - `incidents`: categories → responsible body kind, SLA stages, dedup rules (TOML config).
//! - `registry`: the appeal registry in PostgreSQL (append-only events, registration numbers).
//! - `api`: HTTP APIs (Open311 GeoReport v2, appeals JSON API + OpenAPI document).

pub mod api;
pub mod domain;
pub mod geo;
pub mod incidents;
pub mod registry;
