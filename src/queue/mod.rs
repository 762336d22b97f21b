//! The node's channel types, shared by ingest, detect and the wiring: the bounded
//! [`FrameQueue`] with its named [`WhenFull`] policy, and the [`DropLedger`] that charges
//! every dropped frame to its camera. A leaf: it imports only `domain` and `obs`.

mod frames;
mod ledger;

pub use frames::{FrameQueue, Pushed, WhenFull};
pub use ledger::DropLedger;
