//! `sitcenter rtsp-sim`: simulated cameras served until Ctrl-C.

use std::path::PathBuf;
use std::time::Duration;

use sitcenter::sim::{RtspSim, SECURE_PASSWORD, SECURE_USER, SimConfig};

/// Serve simulated RTSP cameras (good, flaky, stalling, corrupt, refusing, password-protected).
#[derive(Debug, Clone, clap::Args)]
pub struct RtspSimArgs {
    /// TCP port for RTSP (0 = any free port).
    #[arg(long, default_value_t = 8554)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Number of good cameras, served at /cam/1 ... /cam/N.
    #[arg(long, default_value_t = 16)]
    pub cameras: usize,
    /// Clip(s) to loop; camera i of each kind plays clip (i-1) mod count. Repeat the flag.
    #[arg(long = "media", default_value = "test-media/synthetic-360p.mp4")]
    pub media: Vec<PathBuf>,
    /// Number of /flaky/i cameras (drop the connection every --flaky-period).
    #[arg(long, default_value_t = 1)]
    pub flaky: usize,
    /// How long a flaky camera keeps a client: `10`, `10s`, `1500ms`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub flaky_period: Duration,
    /// Number of /stall/i cameras (silent after --stall-after, connection kept open).
    #[arg(long, default_value_t = 1)]
    pub stalling: usize,
    /// How much video a stalling camera sends per connection: `5`, `5s`, `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub stall_after: Duration,
    /// Number of /corrupt/i cameras (RTP flows, H.264 slices are garbage).
    #[arg(long, default_value_t = 1)]
    pub corrupt: usize,
    /// Number of /refuse/i cameras (401 Unauthorized to everyone).
    #[arg(long, default_value_t = 1)]
    pub refusing: usize,
    /// Number of /secure/i cameras (basic auth sim / sim-secret).
    #[arg(long, default_value_t = 1)]
    pub secure: usize,
}

impl From<RtspSimArgs> for SimConfig {
    fn from(args: RtspSimArgs) -> Self {
        SimConfig {
            port: args.port,
            bind: args.bind,
            cameras: args.cameras,
            media: args.media,
            flaky: args.flaky,
            flaky_period: args.flaky_period,
            stalling: args.stalling,
            stall_after: args.stall_after,
            corrupt: args.corrupt,
            refusing: args.refusing,
            secure: args.secure,
        }
    }
}

/// Starts the simulator, prints every URL (one per line on stdout), serves until Ctrl-C.
pub fn run(args: RtspSimArgs) -> anyhow::Result<()> {
    let sim = RtspSim::start(args.into())?;
    for mount in sim.mounts() {
        println!("{}", sim.url(&mount));
    }
    eprintln!(
        "rtsp-sim: serving {} mounts on port {}; /secure/* needs {SECURE_USER}:{SECURE_PASSWORD}; Ctrl-C stops",
        sim.mounts().len(),
        sim.port(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(tokio::signal::ctrl_c())?;
    sim.stop();
    Ok(())
}

/// `10`, `10s`, `1.5s`, `1500ms` → Duration.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 10, 10s or 1500ms)"))?;
    Duration::try_from_secs_f64(value * scale)
        .map_err(|_| format!("`{text}` is not a non-negative duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_seconds_and_milliseconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1").is_err());
    }
}
