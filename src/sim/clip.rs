//! A clip demuxed once into memory: H.264 access units (Annex B byte-stream, SPS/PPS in front of
//! every IDR) with timestamps rebased to start at zero, plus a corrupted twin for `/corrupt/*`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::SimError;

/// Frame duration assumed when neither the buffer nor the caps say (25 fps).
const DEFAULT_FRAME_DURATION: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// How long demuxing one clip may take before we give up (a hung demuxer must not hang start()).
const DEMUX_DEADLINE: Duration = Duration::from_secs(120);

/// One clip, demuxed; cheap to share (`Arc<Clip>`), buffers are refcounted.
#[derive(Debug)]
pub(crate) struct Clip {
    pub(crate) path: PathBuf,
    /// `video/x-h264, stream-format=byte-stream, alignment=au, width, height, framerate, ...`
    pub(crate) caps: gst::Caps,
    /// Access units in decode order; the first one is a keyframe; pts/dts start at zero.
    pub(crate) frames: Vec<gst::Buffer>,
    /// Time from the first frame's pts to the end of the last frame: the loop offset.
    pub(crate) duration: gst::ClockTime,
}

impl Clip {
    /// Demux `path` with `filesrc ! qtdemux ! h264parse config-interval=-1 ! appsink`.
    pub(crate) fn load(path: &Path) -> Result<Clip, SimError> {
        let media_error = |message: String| SimError::Media {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(media_error("no such file".to_owned()));
        }
        let pipeline = gst::Pipeline::new();
        let make = |factory: &str| {
            gst::ElementFactory::make(factory)
                .build()
                .map_err(|error| SimError::Gstreamer(format!("element {factory}: {error}")))
        };
        let filesrc = make("filesrc")?;
        filesrc.set_property("location", path.to_string_lossy().as_ref());
        let demux = make("qtdemux")?;
        let parse = make("h264parse")?;
        parse.set_property("config-interval", -1i32);
        let appsink = gst_app::AppSink::builder()
            .caps(
                &gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            )
            .sync(false)
            .max_buffers(64)
            .build();
        pipeline
            .add_many([&filesrc, &demux, &parse, appsink.upcast_ref()])
            .map_err(|error| SimError::Gstreamer(error.to_string()))?;
        filesrc
            .link(&demux)
            .map_err(|error| SimError::Gstreamer(error.to_string()))?;
        parse
            .link(&appsink)
            .map_err(|error| SimError::Gstreamer(error.to_string()))?;
        let parse_weak = parse.downgrade();
        demux.connect_pad_added(move |_demux, pad| {
            let Some(parse) = parse_weak.upgrade() else {
                return;
            };
            let is_h264 = pad
                .current_caps()
                .and_then(|caps| caps.structure(0).map(|s| s.name() == "video/x-h264"))
                .unwrap_or(false);
            if let Some(sink) = parse.static_pad("sink")
                && is_h264
                && !sink.is_linked()
            {
                // A failure shows up as "no H.264 stream" below.
                let _linked = pad.link(&sink);
            }
        });

        let result = Self::pull_all(&pipeline, &appsink, path);
        // Null on every exit path.
        let _state = pipeline.set_state(gst::State::Null);
        let (caps, raw_frames) = result.map_err(media_error)?;
        Self::from_frames(path, caps, raw_frames).map_err(media_error)
    }

    fn pull_all(
        pipeline: &gst::Pipeline,
        appsink: &gst_app::AppSink,
        path: &Path,
    ) -> Result<(gst::Caps, Vec<gst::Buffer>), String> {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "pipeline refused to start (see the GStreamer error)".to_owned())
            .or_else(|message| bus_error(pipeline).map_or(Err(message), Err))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| "pipeline has no bus".to_owned())?;
        let started = std::time::Instant::now();
        let mut caps = None;
        let mut frames = Vec::new();
        loop {
            if let Some(sample) = appsink.try_pull_sample(gst::ClockTime::from_mseconds(50)) {
                if caps.is_none() {
                    caps = sample.caps().map(|c| c.to_owned());
                }
                if let Some(buffer) = sample.buffer_owned() {
                    frames.push(buffer);
                }
                continue;
            }
            if appsink.is_eos() {
                break;
            }
            if let Some(message) = bus_error_from(&bus) {
                return Err(message);
            }
            if started.elapsed() > DEMUX_DEADLINE {
                return Err(format!(
                    "demuxing {} took longer than {DEMUX_DEADLINE:?}",
                    path.display()
                ));
            }
        }
        let caps = caps.ok_or_else(|| "no H.264 video stream in the file".to_owned())?;
        Ok((caps, frames))
    }

    fn from_frames(
        path: &Path,
        caps: gst::Caps,
        raw_frames: Vec<gst::Buffer>,
    ) -> Result<Clip, String> {
        // Start at the first keyframe so every loop and every connection starts decodable.
        let first_key = raw_frames
            .iter()
            .position(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT))
            .ok_or_else(|| "no keyframe in the H.264 stream".to_owned())?;
        let frame_duration = caps
            .structure(0)
            .and_then(|s| s.get::<gst::Fraction>("framerate").ok())
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .and_then(|f| gst::ClockTime::SECOND.mul_div_floor(f.denom() as u64, f.numer() as u64))
            .unwrap_or(DEFAULT_FRAME_DURATION);
        let base = raw_frames[first_key]
            .dts_or_pts()
            .ok_or_else(|| "first keyframe has no timestamp".to_owned())?;
        let mut frames = Vec::with_capacity(raw_frames.len() - first_key);
        let mut end = gst::ClockTime::ZERO;
        for (index, raw) in raw_frames.into_iter().skip(first_key).enumerate() {
            let mut buffer = raw;
            let fallback = frame_duration * index as u64;
            let pts = raw_pts(&buffer, base).unwrap_or(fallback);
            let dts = buffer.dts().map(|d| d.saturating_sub(base)).unwrap_or(pts);
            let duration = buffer.duration().unwrap_or(frame_duration);
            {
                let b = buffer.make_mut();
                b.set_pts(pts);
                b.set_dts(dts);
                b.set_duration(duration);
            }
            end = end.max(pts + duration);
            frames.push(buffer);
        }
        Ok(Clip {
            path: path.to_path_buf(),
            caps,
            frames,
            duration: end,
        })
    }

    /// A twin of this clip whose slice NAL units (types 1 and 5) are overwritten, after the
    /// one-byte NAL header, by `87 FF` (an impossible slice_type) and then a
    /// pseudo-random pattern from `seed`. Start codes, NAL headers,
    /// SPS/PPS/SEI, sizes, timestamps and flags stay as they were, so parsing, payloading and
    /// RTP work while no slice can be decoded. The pattern has no zero bytes, so it never
    /// forms a start code.
    pub(crate) fn corrupted(&self, seed: u64) -> Result<Clip, SimError> {
        let mut rng = SplitMix64(seed);
        let mut frames = Vec::with_capacity(self.frames.len());
        for original in &self.frames {
            let map = original.map_readable().map_err(|error| SimError::Media {
                path: self.path.clone(),
                message: format!("unreadable buffer: {error}"),
            })?;
            let mut data = map.as_slice().to_vec();
            drop(map);
            scramble_slices(&mut data, &mut rng);
            let mut buffer = gst::Buffer::from_mut_slice(data);
            {
                let b = buffer.make_mut();
                b.set_pts(original.pts());
                b.set_dts(original.dts());
                b.set_duration(original.duration());
                b.set_flags(original.flags());
            }
            frames.push(buffer);
        }
        Ok(Clip {
            path: self.path.clone(),
            caps: self.caps.clone(),
            frames,
            duration: self.duration,
        })
    }
}

fn raw_pts(buffer: &gst::BufferRef, base: gst::ClockTime) -> Option<gst::ClockTime> {
    buffer.pts().map(|p| p.saturating_sub(base))
}

fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    pipeline.bus().and_then(|bus| bus_error_from(&bus))
}

fn bus_error_from(bus: &gst::Bus) -> Option<String> {
    while let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(error) = message.view() {
            let source = message
                .src()
                .map(|s| s.path_string().to_string())
                .unwrap_or_else(|| "(unknown element)".to_owned());
            return Some(format!("{source}: {}", error.error()));
        }
    }
    None
}

/// Overwrite the payload of every coded-slice NAL unit in an Annex B access unit.
pub(crate) fn scramble_slices(data: &mut [u8], rng: &mut SplitMix64) {
    let starts = nal_starts(data);
    for (i, &start) in starts.iter().enumerate() {
        // The NAL ends where the next start code begins; trailing zero bytes before a 4-byte
        // start code belong to that start code.
        let mut end = starts
            .get(i + 1)
            .map(|&next| next - 3)
            .unwrap_or(data.len());
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if start >= end {
            continue;
        }
        let nal_type = data[start] & 0x1f;
        if nal_type == 1 || nal_type == 5 {
            let payload = &mut data[start + 1..end];
            for byte in payload.iter_mut() {
                *byte = rng.nonzero_byte();
            }
            // Random slice headers sometimes parse far enough for the decoder to allocate a
            // picture and show garbage. `87 FF` = bits `1 00001 1111 1...`: first_mb_in_slice 0,
            // then slice_type 30 (valid: 0..=9), so every slice header is rejected before a
            // picture is started. No zero bytes: no start code can appear.
            let prefix = [0x87, 0xff];
            let n = prefix.len().min(payload.len());
            payload[..n].copy_from_slice(&prefix[..n]);
        }
    }
}

/// Offsets of the first byte after each `00 00 01` start code.
fn nal_starts(data: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
}

/// SplitMix64: a tiny, fixed, seeded generator (the corruption pattern must be reproducible).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn nonzero_byte(&mut self) -> u8 {
        match (self.next_u64() >> 56) as u8 {
            0 => 0xa5,
            byte => byte,
        }
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn scrambling_keeps_start_codes_headers_and_non_slice_units() {
        // SPS (7), PPS (8), IDR slice (5) with a 4-byte start code, then a non-IDR slice (1).
        let original: Vec<u8> = vec![
            0, 0, 0, 1, 0x67, 0x42, 0x00, 0x1e, // SPS
            0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, // PPS
            0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x10, 0x20, // IDR
            0, 0, 1, 0x41, 0x9a, 0x02, 0x03, // non-IDR
        ];
        let mut data = original.clone();
        scramble_slices(&mut data, &mut SplitMix64(7));
        assert_eq!(data.len(), original.len());
        assert_eq!(
            data[..20],
            original[..20],
            "start codes, SPS, PPS and IDR header kept"
        );
        assert_eq!(data[21..23], [0x87, 0xff], "slice_type made impossible");
        assert_ne!(data[23..26], original[23..26], "IDR payload scrambled");
        assert_eq!(
            data[26..30],
            original[26..30],
            "3-byte start code and slice header kept"
        );
        assert_eq!(data[30..32], [0x87, 0xff], "slice_type made impossible");
        assert_ne!(data[32..], original[32..], "slice payload scrambled");
        assert_eq!(
            nal_starts(&data),
            nal_starts(&original),
            "no start code created"
        );
    }

    #[test]
    fn the_corruption_pattern_is_the_same_for_the_same_seed() {
        let mut a = SplitMix64(42);
        let mut b = SplitMix64(42);
        let xs: Vec<u8> = (0..64).map(|_| a.nonzero_byte()).collect();
        let ys: Vec<u8> = (0..64).map(|_| b.nonzero_byte()).collect();
        assert_eq!(xs, ys);
        assert!(xs.iter().all(|&x| x != 0));
    }
}
