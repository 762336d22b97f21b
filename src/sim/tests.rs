//! Real-RTSP tests of the simulator (filled in below).
