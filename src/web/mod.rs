//! The operator UI: one embedded page (no build step, works offline) that shows
//! the site's cameras on a map drawn from their coordinates, their supervisor
//! states and reasons, counters, and the latest sampled frame of each.
//! [`Previews`] keeps that latest frame per camera.

mod preview;

pub use preview::{PreviewError, Previews};

/// The page served at `/`.
pub const INDEX_HTML: &str = include_str!("index.html");

/// The page's script, served at `/app.js` (no inline script: the CSP forbids it).
pub const APP_JS: &str = include_str!("app.js");
