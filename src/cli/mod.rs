//! The command line (clap): what each subcommand takes, turned into the library's option
//! types. Binary edge only: the library never sees clap.

pub mod decode_floor;
pub mod registry;
pub mod rtsp_sim;
pub mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sitcenter::app::DemoOptions;
use sitcenter::config::SamplingMode;
use sitcenter::qa::{Minimum, ReplayOptions};

#[derive(Parser)]
#[command(
    name = "sitcenter",
    version,
    about = "City situational-center video and sensor monitoring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the service for a site folder (site.toml + cameras.toml).
    Run {
        /// The site folder.
        #[arg(long, default_value = "camera-configs/demo")]
        site: PathBuf,
        /// Override `[http] listen` from site.toml.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// The demo city: simulated RTSP cameras flowing through the real pipeline, with the web UI.
    Demo(DemoArgs),
    /// Check a site's configuration, pipeline templates and database; print every error at once.
    Validate {
        /// Site folders to check.
        #[arg(required = true)]
        sites: Vec<PathBuf>,
    },
    /// QA: run recorded footage through the same pipeline, faster than real time.
    Replay(ReplayArgs),
    /// Serve test media as simulated RTSP cameras on 127.0.0.1.
    RtspSim(rtsp_sim::RtspSimArgs),
    /// Benchmark floor: CPU to decode and letterbox just a clip's keyframes (JSON on stdout).
    DecodeFloor(decode_floor::DecodeFloorArgs),
    /// Users (people who sign in) of a site's registry.
    User(user::UserArgs),
    /// API keys (machine clients) of a site's registry.
    Key(user::KeyArgs),
    /// Apply the registry's database migrations as its owner (and make the service login a
    /// member of the service role).
    Migrate(registry::MigrateArgs),
    /// The registry's own checks: `verify` recomputes hash chains, states and numbers.
    Registry(registry::RegistryArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The demo site folder.
    #[arg(long, default_value = "camera-configs/demo")]
    pub site: PathBuf,
    /// How many of the site's cameras to run (0 = all). The default fits a
    /// 2-core laptop next to the simulator; see docs/performance.md.
    #[arg(long, default_value_t = 60)]
    pub cameras: usize,
    /// Clips the simulated cameras loop (camera i plays clip i mod n): by default the
    /// labelled street scenes the detector is scored on (test-media/labelled).
    #[arg(
        long,
        default_values = [
            "test-media/labelled/manhole-day.mp4",
            "test-media/labelled/dump-overcast.mp4",
            "test-media/labelled/sidewalk-snow.mp4",
            "test-media/labelled/night.mp4",
        ]
    )]
    pub media: Vec<PathBuf>,
    /// Override `[http] listen`.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

impl From<DemoArgs> for DemoOptions {
    fn from(args: DemoArgs) -> Self {
        Self {
            site: args.site,
            cameras: args.cameras,
            media: args.media,
            listen: args.listen,
        }
    }
}

/// `sitcenter replay --mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// Decode every frame.
    All,
    /// Decode keyframes only, as live cameras do.
    Keyframes,
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// A video file, or a folder of them (.mp4, .mov, .mkv, .avi).
    pub input: PathBuf,
    /// `all` decodes every frame; `keyframes` only keyframes (as live cameras do).
    #[arg(long, value_enum, default_value_t = Mode::All)]
    pub mode: Mode,
    /// Analyse at most one frame per this many seconds of footage (0 = every frame).
    #[arg(long, default_value_t = 0.0)]
    pub interval_s: f64,
    /// The model to run: its manifest (`models/<name>/model.toml`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A second model to compare against (`--model` is the candidate); needs labels.
    #[arg(long, requires = "model")]
    pub baseline: Option<PathBuf>,
    /// Ground truth (docs/labels.md): a labels file for a single video, or a folder with
    /// `<video stem>.labels.json` files. Default: labels files beside the videos.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Fail (exit 3) when a class's recall is below this: `0.8` for every class or
    /// `CLASS=0.8` for one (repeatable; a class entry wins over the general one).
    #[arg(long = "min-recall", value_name = "[CLASS=]R")]
    pub min_recall: Vec<Minimum>,
    /// Fail (exit 3) when a class's precision is below this; same form as --min-recall.
    #[arg(long = "min-precision", value_name = "[CLASS=]P")]
    pub min_precision: Vec<Minimum>,
    /// How much worse than the baseline a figure may be before it counts as a regression.
    #[arg(long, default_value_t = 0.02)]
    pub tolerance: f64,
    /// Frames per inference call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// ONNX Runtime threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl From<ReplayArgs> for ReplayOptions {
    fn from(args: ReplayArgs) -> Self {
        Self {
            input: args.input,
            mode: match args.mode {
                Mode::All => SamplingMode::All,
                Mode::Keyframes => SamplingMode::Keyframes,
            },
            interval_s: args.interval_s,
            model: args.model,
            baseline: args.baseline,
            labels: args.labels,
            min_recall: args.min_recall,
            min_precision: args.min_precision,
            tolerance: args.tolerance,
            batch: args.batch,
            threads: args.threads,
            report: args.report,
        }
    }
}
