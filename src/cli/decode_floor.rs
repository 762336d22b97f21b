//! `sitcenter decode-floor`: the CPU cost of decoding and letterboxing just the sampled
//! keyframes, with nothing received — the floor that a camera's ingest cost is measured
//! against (docs/performance.md).
//!
//! The keyframes of a clip (each with its SPS/PPS, as the simulator sends them) go through
//! the same decoder pool as live cameras' keyframes ([`StandaloneDecoders`]); after a
//! warm-up of [`WARM_UP_PER_DECODER`] keyframes per decoder, the process's CPU time over the
//! run divided by the keyframes decoded is the cost per keyframe, and that divided by the
//! sampling interval the cost per camera-second. Two ways to feed them:
//!
//! - back to back (default): as fast as the pool decodes them — the lowest cost a keyframe
//!   can have, every cache warm;
//! - at a rate (`--rate`, keyframes per second, for `--seconds`): as N cameras would send
//!   them (N ÷ interval per second), released every `--tick-ms` (default: the receive
//!   threads' tick, as they release them; longer: in bursts). On the 2-core VM a keyframe
//!   decoded between idle gaps costs more CPU than one decoded back to back
//!   (docs/performance.md), so a live node is compared with both.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use sitcenter::config::{
    DEFAULT_DECODER_QUEUE_CAPACITY, DEFAULT_RECEIVE_TICK_MS, default_decoder_workers,
};
use sitcenter::ingest::{IngestError, StandaloneDecoders, clip_keyframes};

/// `sitcenter decode-floor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DecodeFloorArgs {
    /// H.264 clip in MP4 whose keyframes are decoded.
    #[arg(long, default_value = "test-media/synthetic-360p.mp4")]
    pub media: PathBuf,
    /// Keyframes to decode (the clip's keyframes, repeated).
    #[arg(long, default_value_t = 1000)]
    pub keyframes: usize,
    /// Pool decoders (0: as many as a node starts by default, `[ingest] decoder_workers`).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Analysis size (letterboxed RGB), as `[ingest] analysis_width/height`.
    #[arg(long, default_value_t = 640)]
    pub width: u32,
    #[arg(long, default_value_t = 640)]
    pub height: u32,
    /// Sampling interval, to turn the cost per keyframe into a cost per camera-second.
    #[arg(long, default_value_t = 2.0)]
    pub interval_s: f64,
    /// Keyframes per second, spread evenly over `--seconds` (0: back to back, `--keyframes`).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// How long to decode at `--rate`.
    #[arg(long, default_value_t = 15.0)]
    pub seconds: f64,
    /// How often keyframes are released at `--rate`, in ms (default: the receive threads'
    /// default tick; longer: in bursts).
    #[arg(long, default_value_t = DEFAULT_RECEIVE_TICK_MS as u64)]
    pub tick_ms: u64,
}

/// Keyframes each decoder decodes before the measurement starts. The first keyframe of a
/// decoder pays for opening the codec, allocating the pipeline's buffers and compiling
/// videoconvert's ORC code (≈ 35 ms on the 2-core VM, 25 keyframes' worth); a live node is
/// measured after its start-up, so the floor is measured warm too.
const WARM_UP_PER_DECODER: usize = 2;

/// What `decode-floor` measured (printed as JSON).
#[derive(Debug, Clone, Serialize)]
pub struct DecodeFloorReport {
    pub media: String,
    pub distinct_keyframes: usize,
    /// Decoded before the measurement (not counted in it).
    pub warm_up_keyframes: usize,
    pub keyframes_submitted: usize,
    pub frames_delivered: u64,
    pub workers: usize,
    pub width: u32,
    pub height: u32,
    pub cpu_s: f64,
    pub wall_s: f64,
    pub cpu_ms_per_keyframe: f64,
    pub cpu_ms_per_camera_second: f64,
    /// Keyframes per second asked for (0: back to back).
    pub rate: f64,
}

/// CPU seconds (user + system) this process has used.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // /proc counts in USER_HZ, which the Linux ABI fixes at 100 on the platforms we run on.
    Some(ticks / 100.0)
}

/// Decodes `args.keyframes` keyframes of `args.media` through a decoder pool.
pub fn run(args: &DecodeFloorArgs) -> Result<DecodeFloorReport, IngestError> {
    let keyframes = clip_keyframes(&args.media)?;
    let workers = match args.workers {
        0 => default_decoder_workers(),
        n => n,
    };
    // At a rate, the live default queue: keyframes released on one tick wait there.
    let capacity = if args.rate > 0.0 {
        DEFAULT_DECODER_QUEUE_CAPACITY
    } else {
        4 * workers
    };
    let pool = StandaloneDecoders::start(workers, capacity, (args.width, args.height))?;
    let mut delivered = 0u64;
    // Counts frames into `count` until it reaches `target`, or nothing came for 5 s (a
    // keyframe that produced no frame: the counts show it; never wait forever).
    let collect = |count: &mut u64, target: u64| {
        while *count < target {
            match pool.take(Duration::from_secs(5)) {
                0 => break,
                got => *count += got,
            }
        }
    };
    let paced = args.rate > 0.0;
    let total = if paced {
        (args.rate * args.seconds).round().max(1.0) as usize
    } else {
        args.keyframes
    };
    let submit = |i: usize| pool.submit(keyframes[i % keyframes.len()].clone(), i as u64);
    let warm_up = WARM_UP_PER_DECODER * workers;
    (0..warm_up).for_each(submit);
    collect(&mut 0, warm_up as u64);
    let started = Instant::now();
    let cpu_before = process_cpu_seconds().unwrap_or(0.0);
    for i in 0..total {
        if paced {
            // Released on the tick it falls due, with the others due by then.
            let due = started + Duration::from_secs_f64(i as f64 / args.rate);
            while Instant::now() < due {
                std::thread::sleep(Duration::from_millis(args.tick_ms.max(1)));
                delivered += pool.take(Duration::ZERO);
            }
        } else {
            // Keep a few keyframes per decoder in flight, never more than the pool queue holds.
            collect(&mut delivered, (i + 1).saturating_sub(2 * workers) as u64);
        }
        submit(warm_up + i);
    }
    collect(&mut delivered, total as u64);
    let cpu_s = process_cpu_seconds().unwrap_or(0.0) - cpu_before;
    let wall_s = started.elapsed().as_secs_f64();
    pool.stop();
    let per_keyframe = cpu_s * 1000.0 / (delivered.max(1) as f64);
    Ok(DecodeFloorReport {
        media: args.media.display().to_string(),
        distinct_keyframes: keyframes.len(),
        warm_up_keyframes: warm_up,
        keyframes_submitted: total,
        frames_delivered: delivered,
        workers,
        width: args.width,
        height: args.height,
        cpu_s,
        wall_s,
        cpu_ms_per_keyframe: per_keyframe,
        cpu_ms_per_camera_second: per_keyframe / args.interval_s.max(1e-3),
        rate: args.rate.max(0.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(keyframes: usize, rate: f64, seconds: f64) -> DecodeFloorArgs {
        DecodeFloorArgs {
            media: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-media/synthetic-360p.mp4"),
            keyframes,
            workers: 2,
            width: 320,
            height: 320,
            interval_s: 2.0,
            rate,
            seconds,
            tick_ms: 10,
        }
    }

    #[test]
    fn back_to_back_and_at_a_rate_every_keyframe_is_decoded_and_costed() {
        let report = run(&args(12, 0.0, 0.0)).expect("back to back");
        // The warm-up keyframes are decoded first and counted apart.
        assert_eq!(
            (
                report.warm_up_keyframes,
                report.keyframes_submitted,
                report.frames_delivered
            ),
            (2 * WARM_UP_PER_DECODER, 12, 12)
        );
        assert_eq!(
            report.cpu_ms_per_camera_second * 2.0,
            report.cpu_ms_per_keyframe
        );

        // 20 keyframes per second for 0.6 s: 12 keyframes, released over (not before) 0.55 s,
        // on the receive tick and in bursts of 0.2 s, by the node's default decoders.
        for tick_ms in [10, 200] {
            let mut paced = args(0, 20.0, 0.6);
            paced.tick_ms = tick_ms;
            paced.workers = 0;
            let report = run(&paced).expect("at a rate");
            assert_eq!(
                (report.keyframes_submitted, report.frames_delivered),
                (12, 12),
                "tick {tick_ms} ms"
            );
            // The last keyframe falls due at 0.55 s and leaves on the first tick after it.
            let released = 550_u64.div_ceil(tick_ms) * tick_ms;
            assert!(
                report.wall_s * 1000.0 >= released as f64,
                "12 keyframes at 20/s were decoded in {:.3} s, before {released} ms (tick {tick_ms} ms)",
                report.wall_s
            );
            assert_eq!(report.rate, 20.0);
            assert_eq!(report.workers, default_decoder_workers());
        }
    }

    #[test]
    fn a_clip_that_does_not_exist_is_named() {
        let mut missing = args(1, 0.0, 0.0);
        missing.media = PathBuf::from("test-media/no-such-clip.mp4");
        let error = run(&missing).expect_err("no clip").to_string();
        assert!(error.contains("no-such-clip.mp4"), "{error}");
    }
}
