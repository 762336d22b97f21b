//! sitcenter: city situational-center video and sensor monitoring.
//!
//! | module | owns |
//! |---|---|
//! | [`sim`] | simulated RTSP cameras over `test-media/` (`sitcenter rtsp-sim`) |

pub mod sim;
