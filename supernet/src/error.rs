//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `supernet`: bad configs, bad data files, I/O.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An invalid search space or arch, or a malformed weights file (from `netspec`).
    #[error(transparent)]
    Spec(#[from] netspec::Error),
    /// A config (search space, arch, training config) failed validation.
    #[error("invalid {what}: {reason}")]
    InvalidConfig {
        /// Which config (e.g. "arch", "search space").
        what: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A JSON file could not be parsed.
    #[error("{}: malformed JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the field and the line).
        #[source]
        source: serde_json::Error,
    },
    /// An I/O error on a named file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file has the wrong format (magic, counts, sizes).
    #[error("{}: {reason}", path.display())]
    Data {
        /// The file or folder.
        path: PathBuf,
        /// What was expected and what was found.
        reason: String,
    },
    /// A file has an unsupported `format_version`.
    #[error("{}: format_version {found} is not supported (this build reads {supported}); upgrade tierforge or regenerate the file", path.display())]
    FormatVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A tensor had an unexpected shape.
    #[error("shape mismatch for {what}: expected {expected:?}, got {got:?}")]
    Shape {
        /// Which tensor.
        what: String,
        /// The expected shape.
        expected: Vec<usize>,
        /// The actual shape.
        got: Vec<usize>,
    },
    /// A checkpoint or weight file could not be loaded.
    #[error("{}: cannot load weights: {reason}", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The training loss became NaN or infinite: the learning rate is too high for this run.
    #[error("the training loss became {loss}: lower optimizer.lr")]
    Diverged {
        /// The loss.
        loss: f32,
    },
}

/// Shorthand for `Result<T, supernet::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            what,
            reason: reason.into(),
        }
    }
    #[cfg_attr(not(feature = "train"), allow(dead_code))]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    #[allow(dead_code)]
    pub(crate) fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
