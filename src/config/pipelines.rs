//! The pipeline template list (`pipelines/*.pipeline`): the built-in templates compiled into
//! the binary, overridden or extended by the files of `[ingest] pipelines_dir`. Config
//! validates each camera's `pipeline` against this list; `ingest` parses the texts into
//! GStreamer pipelines.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A template the binary carries (`pipelines/<name>.pipeline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinPipeline {
    /// RTSP H.264: the default for `rtsp://` cameras, and the one the shared-decoder
    /// backend replaces for cameras over TCP sampling keyframes.
    RtspH264,
    RtspH265,
    /// MP4/MOV files with H.264 (the default for `file://` cameras and QA replay).
    FileH264,
    /// Any container and codec `decodebin` can read (QA replay of other files).
    FileAny,
}

impl BuiltinPipeline {
    pub const ALL: [BuiltinPipeline; 4] = [
        BuiltinPipeline::RtspH264,
        BuiltinPipeline::RtspH265,
        BuiltinPipeline::FileH264,
        BuiltinPipeline::FileAny,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            BuiltinPipeline::RtspH264 => "rtsp-h264",
            BuiltinPipeline::RtspH265 => "rtsp-h265",
            BuiltinPipeline::FileH264 => "file-h264",
            BuiltinPipeline::FileAny => "file-any",
        }
    }

    const fn text(self) -> &'static str {
        match self {
            BuiltinPipeline::RtspH264 => include_str!("../../pipelines/rtsp-h264.pipeline"),
            BuiltinPipeline::RtspH265 => include_str!("../../pipelines/rtsp-h265.pipeline"),
            BuiltinPipeline::FileH264 => include_str!("../../pipelines/file-h264.pipeline"),
            BuiltinPipeline::FileAny => include_str!("../../pipelines/file-any.pipeline"),
        }
    }
}

/// A camera's `pipeline`: a built-in template, or one only `pipelines_dir` has. Parsed once
/// at load; nothing downstream compares template names as strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PipelineName {
    Builtin(BuiltinPipeline),
    Custom(String),
}

impl PipelineName {
    pub fn new(name: &str) -> Self {
        BuiltinPipeline::ALL
            .into_iter()
            .find(|b| b.as_str() == name)
            .map_or_else(|| Self::Custom(name.to_owned()), Self::Builtin)
    }

    pub fn as_str(&self) -> &str {
        match self {
            PipelineName::Builtin(b) => b.as_str(),
            PipelineName::Custom(name) => name,
        }
    }
}

impl From<BuiltinPipeline> for PipelineName {
    fn from(b: BuiltinPipeline) -> Self {
        Self::Builtin(b)
    }
}

impl fmt::Display for PipelineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("cannot read pipeline templates in {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("no pipeline template named `{0}`")]
    Unknown(String),
}

/// Template texts by name (comment lines removed).
#[derive(Debug, Clone)]
pub struct PipelineTemplates {
    by_name: BTreeMap<String, String>,
}

impl PipelineTemplates {
    /// The built-in templates, overridden or extended by `*.pipeline` files in `dir`.
    pub fn load(dir: Option<&Path>) -> Result<Self, TemplatesError> {
        let mut by_name: BTreeMap<String, String> = BuiltinPipeline::ALL
            .iter()
            .map(|b| (b.as_str().to_owned(), strip_comments(b.text())))
            .collect();
        if let Some(dir) = dir {
            let unreadable = |source| TemplatesError::Dir {
                dir: dir.to_path_buf(),
                source,
            };
            for entry in std::fs::read_dir(dir).map_err(unreadable)?.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "pipeline")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                {
                    let text = std::fs::read_to_string(&path).map_err(unreadable)?;
                    by_name.insert(stem.to_owned(), strip_comments(&text));
                }
            }
        }
        Ok(Self { by_name })
    }

    /// The names available with `dir` (the built-in ones when it cannot be read; the
    /// validator reports that separately).
    pub fn names_in(dir: Option<&Path>) -> Vec<String> {
        Self::load(dir)
            .or_else(|_| Self::load(None))
            .map(|t| t.names())
            .unwrap_or_default()
    }

    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    pub fn get(&self, name: &PipelineName) -> Result<&str, TemplatesError> {
        self.by_name
            .get(name.as_str())
            .map(String::as_str)
            .ok_or_else(|| TemplatesError::Unknown(name.to_string()))
    }
}

fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_parse_to_their_variant_and_others_stay_custom() {
        for b in BuiltinPipeline::ALL {
            assert_eq!(PipelineName::new(b.as_str()), PipelineName::Builtin(b));
        }
        assert_eq!(
            PipelineName::new("vendor-mjpeg"),
            PipelineName::Custom("vendor-mjpeg".into())
        );
        let t = PipelineTemplates::load(None).expect("builtin");
        assert_eq!(t.names().len(), BuiltinPipeline::ALL.len());
        assert!(matches!(
            t.get(&PipelineName::new("vendor-mjpeg")),
            Err(TemplatesError::Unknown(n)) if n == "vendor-mjpeg"
        ));
    }
}
