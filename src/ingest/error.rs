/// Errors of the ingest layer. Runtime trouble with a camera is not an error
/// here: it becomes a state with a [`Reason`](crate::domain::Reason).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("GStreamer could not be initialised: {0}")]
    Init(#[from] gstreamer::glib::Error),
    #[error(transparent)]
    Templates(#[from] crate::config::TemplatesError),
    #[error("pipeline template `{template}` does not parse: {message}")]
    TemplateParse { template: String, message: String },
    #[error("pipeline template `{template}` has no element named `{element}`")]
    MissingElement {
        template: String,
        element: &'static str,
    },
    #[error(
        "pipeline template `{template}`: element `{element}` is a {found}, expected {expected}"
    )]
    WrongElement {
        template: String,
        element: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error(
        "pipeline template `{template}` cannot sample keyframes: it has no `gate` element before the decoder"
    )]
    NoKeyframeGate { template: String },
    #[error("the shared keyframe decoder pool: {0}")]
    Pool(String),
    #[error("replay of {file} failed in {element}: {message}")]
    Replay {
        file: String,
        element: String,
        message: String,
    },
}
