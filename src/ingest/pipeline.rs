//! Pipeline templates (`pipelines/*.pipeline`) → a configured `gst::Pipeline`.
//!
//! Templates are parsed with `gst::parse::launch`; every per-camera value is set
//! on elements found by name, never spliced into the description.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::error::IngestError;
use crate::config::{CameraConfig, PipelineName, PipelineTemplates, SamplingMode, Transport};

/// Parses every template once and checks the named elements exist: used by
/// `sitcenter validate` and at start-up, before any camera connects.
pub fn check_all(templates: &PipelineTemplates) -> Vec<IngestError> {
    templates
        .names()
        .iter()
        .filter_map(|name| {
            let p = Params {
                width: 64,
                height: 64,
                live: true,
            };
            parse(templates, &PipelineName::new(name), &p).err()
        })
        .collect()
}

/// Per-node parameters of a pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub width: u32,
    pub height: u32,
    /// Live sources drop at the appsink when the consumer lags; replay blocks instead.
    pub live: bool,
}

/// The parts of a built pipeline the supervisor needs.
pub struct Built {
    pub pipeline: gst::Pipeline,
    pub src: gst::Element,
    pub gate: Option<gst::Element>,
    pub sampler: gst::Element,
    pub appsink: gst_app::AppSink,
}

/// Every exit path stops the pipeline: dropping a pipeline that is not in NULL
/// leaks its streaming threads (and GStreamer aborts on it at exit).
impl Drop for Built {
    fn drop(&mut self) {
        if let Err(error) = self.pipeline.set_state(gst::State::Null) {
            tracing::error!(%error, "could not stop a pipeline");
        }
    }
}

fn element(
    pipeline: &gst::Pipeline,
    template: &str,
    name: &'static str,
) -> Result<gst::Element, IngestError> {
    pipeline
        .by_name(name)
        .ok_or_else(|| IngestError::MissingElement {
            template: template.to_owned(),
            element: name,
        })
}

fn parse(
    templates: &PipelineTemplates,
    name: &PipelineName,
    params: &Params,
) -> Result<Built, IngestError> {
    let text = templates.get(name)?;
    let name = name.as_str();
    let parsed = gst::parse::launch(text).map_err(|e| IngestError::TemplateParse {
        template: name.to_owned(),
        message: e.to_string(),
    })?;
    let pipeline = parsed
        .downcast::<gst::Pipeline>()
        .map_err(|_| IngestError::TemplateParse {
            template: name.to_owned(),
            message: "the description is a single element, not a pipeline".to_owned(),
        })?;
    let src = element(&pipeline, name, "src")?;
    let gate = pipeline.by_name("gate");
    let sampler = element(&pipeline, name, "sampler")?;
    let caps = element(&pipeline, name, "caps")?;
    let frames = element(&pipeline, name, "frames")?;
    let appsink =
        frames
            .clone()
            .downcast::<gst_app::AppSink>()
            .map_err(|e| IngestError::WrongElement {
                template: name.to_owned(),
                element: "frames",
                found: e.type_().name().to_owned(),
                expected: "appsink",
            })?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "RGB")
            .field("width", params.width as i32)
            .field("height", params.height as i32)
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    // A small appsink queue as a safety net only: frames are dropped where we
    // count them, in the FrameQueue. Replay must not lose frames: it blocks.
    appsink.set_max_buffers(2);
    appsink.set_drop(params.live);
    appsink.set_sync(false);
    Ok(Built {
        pipeline,
        src,
        gate,
        sampler,
        appsink,
    })
}

/// Builds the pipeline of one camera: template parsed, elements configured.
pub fn build(
    templates: &PipelineTemplates,
    camera: &CameraConfig,
    params: &Params,
    connect_timeout: std::time::Duration,
) -> Result<Built, IngestError> {
    let built = parse(templates, &camera.pipeline, params)?;
    let src = &built.src;
    let location = if camera.url.scheme() == "file" {
        camera
            .url
            .to_file_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|()| camera.url.path().to_owned())
    } else {
        camera.url.as_str().to_owned()
    };
    src.set_property("location", location);
    if src.has_property("protocols") {
        let protocols = match camera.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Auto => "udp+tcp",
        };
        src.set_property_from_str("protocols", protocols);
        let timeout_us = connect_timeout.as_micros().min(u64::MAX as u128) as u64;
        src.set_property("tcp-timeout", timeout_us);
        src.set_property("timeout", timeout_us);
        // Analysis needs no smoothing of arrival jitter beyond a few frames.
        src.set_property("latency", 200u32);
        if let Some(credentials) = &camera.credentials {
            src.set_property("user-id", &credentials.user);
            src.set_property("user-pw", &credentials.password);
        }
    }
    match (camera.sampling.mode, &built.gate) {
        (SamplingMode::Keyframes, Some(gate)) => {
            gate.set_property_from_str("drop-buffer-flags", "delta-unit");
        }
        (SamplingMode::Keyframes, None) => {
            return Err(IngestError::NoKeyframeGate {
                template: camera.pipeline.to_string(),
            });
        }
        (SamplingMode::All, _) => {}
    }
    Ok(built)
}
