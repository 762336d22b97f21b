//! The operator UI: the single-page app built from `ui/` (Vite + TypeScript, MapLibre GL) and
//! embedded in the binary from `ui/dist/` (committed; `assets.rs` checks it matches its
//! sources), so the node serves it offline with nothing fetched at run time. [`Previews`] keeps
//! the latest sampled frame per camera for the camera wall.

mod assets;
#[cfg(test)]
mod i18n_tests;
mod preview;

pub use assets::{Asset, asset};
pub use preview::{PreviewError, Previews};
