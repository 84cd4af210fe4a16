//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, checking or writing device profiles.
///
/// The probe itself never fails: a missing or denied signal is recorded as unknown in the profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read `{}`", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid JSON, or does not match the profile schema (unknown field, missing field, wrong type).
    ///
    /// serde_json's message (the source) names the field and the line and column.
    #[error("{origin}: malformed device profile at line {line}, column {column}")]
    Json {
        /// Where the text came from (a file path or a label).
        origin: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// 1-based column of the error (0 when unknown).
        column: usize,
        /// serde_json's error, which names the offending field.
        #[source]
        source: serde_json::Error,
    },
    /// The profile has no `format_version` field.
    #[error("{origin}: missing field `format_version` (this build reads version {supported})")]
    MissingFormatVersion {
        /// Where the text came from.
        origin: String,
        /// The version this build reads.
        supported: u32,
    },
    /// The profile's `format_version` is not one this build reads.
    #[error(
        "{origin}: field `format_version` is {found}, but this build reads version {supported} only"
    )]
    UnsupportedFormatVersion {
        /// Where the text came from.
        origin: String,
        /// The value found in the file, as JSON text.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
    /// A field parsed but holds a value that is not allowed.
    #[error("{origin}: field `{field}`: {reason}")]
    InvalidField {
        /// Where the profile came from.
        origin: String,
        /// The field, as a JSON path (`cpu.clusters[0].count`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two catalog entries share one `id`.
    #[error("{origin}: duplicate profile id `{id}`")]
    DuplicateId {
        /// The second file that uses the id.
        origin: String,
        /// The id.
        id: String,
    },
    /// A profile could not be turned into JSON.
    #[error("cannot serialize device profile `{id}`")]
    Serialize {
        /// The profile's id.
        id: String,
        /// serde_json's error.
        #[source]
        source: serde_json::Error,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
