use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a configuration file, located precisely.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The camera the problem belongs to, when it belongs to one.
    pub camera: Option<String>,
    /// The offending field (`url`, `zone[1].polygon`, …), when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(camera) = &self.camera {
            write!(f, "camera `{camera}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found while loading a site, reported at once.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(
            f,
            "{count} configuration error{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            writeln!(f, "  {error}")?;
        }
        Ok(())
    }
}

/// Collects errors for one file, turning byte spans into line and column.
pub(crate) struct Collector<'a> {
    file: &'a Path,
    source: &'a str,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(file: &'a Path, source: &'a str) -> Self {
        Self {
            file,
            source,
            errors: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        span: Option<std::ops::Range<usize>>,
        camera: Option<&str>,
        field: Option<&str>,
        message: impl Into<String>,
    ) {
        let (line, column) = match span {
            Some(span) => line_col(self.source, span.start),
            None => (0, 0),
        };
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            camera: camera.map(str::to_owned),
            field: field.map(str::to_owned),
            message: message.into(),
        });
    }

    /// Records a TOML parse or type error (its message without toml's own
    /// rendering of the location, which we print in our format).
    pub(crate) fn push_toml(&mut self, error: &toml::de::Error, camera: Option<&str>) {
        let message = error.message().trim().to_owned();
        self.push(error.span(), camera, None, message);
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_col(self.source, offset).0
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.chars().count(), |nl| {
        before[nl + 1..].chars().count()
    }) + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut index: usize) -> usize {
    while !s.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 11), (2, 6));
    }
}
