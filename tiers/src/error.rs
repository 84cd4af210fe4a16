//! The crate's error type: one enum with structured fields; every message names the file (or
//! the thing) and the fix.

use std::path::PathBuf;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while slicing a family into tiers.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What we tried (`read`, `write`, `create folder`, …).
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (or one JSON line) did not parse.
    #[error("{}: malformed JSON ({what}): {source}; fix or delete the file", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Which document: `tier spec`, `latency table`, line number of a JSONL file, …
        what: String,
        /// The parser's error (names the field).
        #[source]
        source: serde_json::Error,
    },
    /// A file written by another version of tierforge.
    #[error(
        "{}: format_version {found} is not supported (this build reads {supported}); \
         regenerate the file with this tierforge",
        path.display()
    )]
    FormatVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A tier spec that fails validation.
    #[error("{origin}: invalid tier spec: `{field}` {reason}")]
    InvalidSpec {
        /// Where the spec came from (a path, or `built-in`).
        origin: String,
        /// The offending field, e.g. `tiers[1].max_latency_ms`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// A device profile id that is not in the catalog.
    #[error(
        "unknown device profile `{id}` (in {origin}); use one of the catalog ids: {}",
        available.join(", ")
    )]
    UnknownProfile {
        /// The id asked for.
        id: String,
        /// Where it was named.
        origin: String,
        /// The ids there are.
        available: Vec<String>,
    },
    /// Something from the supernet crate failed (checkpoint, data, extraction).
    #[error("{context}")]
    Supernet {
        /// What we were doing.
        context: String,
        /// The cause.
        #[source]
        source: supernet::Error,
    },
    /// Something from the runtime crate failed (writing or opening a bundle).
    #[error("{context}")]
    Runtime {
        /// What we were doing.
        context: String,
        /// The cause.
        #[source]
        source: runtime::Error,
    },
    /// The device-profile catalog could not be read.
    #[error("reading the device-profile catalog")]
    Profiles {
        /// The cause.
        #[source]
        source: device_profiles::Error,
    },
    /// A file that belongs to another search space (or another host) than the one at hand.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What does not match, and the fix.
        reason: String,
    },
    /// The latency table has no entry for an op (it was measured for another space).
    #[error(
        "the latency table has no entry for {op}; measure it again for this search space \
         (delete latency_lut.json)"
    )]
    MissingLatency {
        /// The op, as `kind cin→cout @size k stride act`.
        op: String,
    },
    /// The accuracy predictor cannot be fitted.
    #[error("cannot fit the accuracy predictor: {reason}")]
    Predictor {
        /// Why, and the fix.
        reason: String,
    },
    /// No architecture of the space meets a tier's constraints.
    #[error(
        "no sub-net satisfies tier `{tier}`: {reason}; loosen the tier's budgets in the tier spec"
    )]
    NoFeasibleArch {
        /// The tier.
        tier: String,
        /// The smallest sub-net's figures against the budgets.
        reason: String,
    },
    /// A search result that does not fit the checkpoint or the bundle being built.
    #[error("{}: {reason}", path.display())]
    BadSearch {
        /// The search file.
        path: PathBuf,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// The output folder holds something that is not a tierforge bundle, which writing the
    /// bundle would replace.
    #[error(
        "{}: {found}, not a tierforge bundle (no manifest.json); writing the bundle would \
         replace it: pass --force to replace it, or choose another --out",
        path.display()
    )]
    NotABundle {
        /// The output folder.
        path: PathBuf,
        /// What is there (`a file`, `a folder with 3 entries`, `a symbolic link`).
        found: String,
    },
    /// A flag or option has a value outside its range.
    #[error("{flag} {value}: {allowed}")]
    OutOfRange {
        /// The flag, e.g. `--tolerance-pt`.
        flag: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        allowed: &'static str,
    },
    /// A chart could not be drawn.
    #[error("drawing {what}: {reason}")]
    Draw {
        /// Which chart.
        what: &'static str,
        /// plotters' message.
        reason: String,
    },
    /// A plot could not be encoded.
    #[error("{}: cannot encode the plot: {source}", path.display())]
    Plot {
        /// The image file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
    pub(crate) fn supernet(context: impl Into<String>, source: impl Into<supernet::Error>) -> Self {
        Error::Supernet {
            context: context.into(),
            source: source.into(),
        }
    }
    pub(crate) fn runtime(context: impl Into<String>, source: runtime::Error) -> Self {
        Error::Runtime {
            context: context.into(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically and durably (temp file beside it, fsync, rename, fsync of
/// the folder: [`netspec::fsio::write_atomic`]), so readers never see half a file.
pub(crate) fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    netspec::fsio::write_atomic(path, bytes).map_err(|e| Error::io(path, "write atomically", e))
}
