//! Scenario tests for the whole frame path against real RTSP (the simulator on
//! an ephemeral port) and real GStreamer pipelines. Named for what they show.

mod cameras;
mod detection;
mod overload;
mod restart;
