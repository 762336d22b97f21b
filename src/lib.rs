//! sitcenter: city situational-center video and sensor monitoring.
