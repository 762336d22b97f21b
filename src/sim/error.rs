//! The simulator's error type.

use std::path::PathBuf;

/// Everything that can go wrong starting or running the simulated cameras.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// `gstreamer::init()` failed (no GStreamer installation, broken registry).
    #[error("GStreamer could not be initialised: {0}")]
    Init(#[from] gstreamer::glib::Error),

    /// The configuration asks for something impossible (no clip, an empty bind address, ...).
    #[error("invalid simulator configuration: {0}")]
    Config(String),

    /// A clip could not be read or demuxed into H.264 access units.
    #[error("clip {path}: {message}", path = path.display())]
    Media {
        /// The clip as configured.
        path: PathBuf,
        /// What went wrong, with the GStreamer element path where there is one.
        message: String,
    },

    /// A GStreamer element needed by the simulator is not installed or could not be built.
    #[error("GStreamer element or pipeline: {0}")]
    Gstreamer(String),

    /// The RTSP server could not listen (port taken, bad address).
    #[error("RTSP server could not listen on {bind}:{port}: {message}")]
    Bind {
        /// The address asked for.
        bind: String,
        /// The port asked for (0 = ephemeral).
        port: u16,
        /// GStreamer's reason.
        message: String,
    },

    /// The server thread could not be spawned or died before it was listening.
    #[error("RTSP simulator thread: {0}")]
    Thread(String),

    /// Waiting for Ctrl-C failed (CLI only).
    #[error("waiting for Ctrl-C: {0}")]
    Signal(#[from] std::io::Error),
}
