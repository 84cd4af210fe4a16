//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `netspec`: an invalid space or arch, a malformed file.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config (search space, arch) failed validation.
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
    /// A data or weights file has the wrong format (sizes, shapes, names).
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
    /// A folded network cannot be built or saved as asked.
    #[error("network layer {layer}: {reason}")]
    Network {
        /// The layer (`stem`, `blocks.3.dw`, `fc`, …).
        layer: String,
        /// What is wrong.
        reason: String,
    },
}

/// Shorthand for `Result<T, netspec::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            what,
            reason: reason.into(),
        }
    }
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
