//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use crate::fallback::FallbackEvent;

/// Everything that can go wrong in `runtime`: a bad or newer bundle, a damaged weights file, a
/// failed write, an invalid policy or device.
///
/// Every message names the file involved and says how to fix it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A weights file passed its checksum but does not decode into its variant's arch (a
    /// bundle written by an incompatible tierforge, or weights damaged before hashing).
    #[error("{}: cannot load the weights: {source}; rebuild the bundle with this tierforge version", path.display())]
    LoadFailed {
        /// The file.
        path: PathBuf,
        /// What the decoder found.
        source: netspec::Error,
    },
    /// An input given to a session does not fit the model.
    #[error("bad input: {reason}")]
    BadInput {
        /// What is wrong.
        reason: String,
    },
    /// A network the fast engine ([`crate::engine::FastNet`]) cannot compile: BN not folded, or
    /// a layer whose shape does not fit an extracted network.
    #[error("cannot compile the network for the fast engine: `{layer}`: {reason}")]
    UnsupportedNet {
        /// The layer, e.g. `blocks.2.dw` (`stem`, `head`, `fc`).
        layer: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// An I/O error on a named file or folder.
    #[error("{}: cannot {action}: {source}; check that the path exists and is readable/writable", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done ("read", "write", "rename into place", ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `manifest.json` is missing from a bundle folder.
    #[error("{}: no manifest.json here; is this a tierforge bundle folder? (build one with `tierforge bundle`)", dir.display())]
    NoManifest {
        /// The folder that was opened.
        dir: PathBuf,
    },
    /// A JSON file could not be parsed.
    #[error("{}: malformed JSON at `{field}`: {source}; fix that field or regenerate the file", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where in the document, e.g. `variants[1].latency_ms` (`<top level>` at the root).
        field: String,
        /// The parser's message.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest was written by a newer tierforge than this runtime understands.
    #[error("{}: format_version {found} was written by a newer tierforge (this runtime reads up to {supported}); upgrade the runtime", path.display())]
    NewerFormat {
        /// The manifest.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The manifest has a `format_version` older than any this runtime reads (or none).
    #[error("{}: format_version {found} is not supported (this runtime reads {supported}); rebuild the bundle with `tierforge bundle`", path.display())]
    UnsupportedFormat {
        /// The manifest.
        path: PathBuf,
        /// The version in the file (0 when absent).
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The manifest parsed but its contents are inconsistent.
    #[error("{}: invalid manifest: {field}: {reason}; fix the manifest or rebuild the bundle", path.display())]
    InvalidManifest {
        /// The manifest (or `<in memory>` for one being written).
        path: PathBuf,
        /// The field at fault, e.g. `variants[2].sha256`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A variant's file name is not a plain name inside the bundle.
    #[error("{}: variant `{variant}` has file name {file:?}, which {reason}; a file must be a plain name inside the bundle folder (e.g. `small.safetensors`)", path.display())]
    BadFileName {
        /// The manifest.
        path: PathBuf,
        /// The variant id.
        variant: String,
        /// The offending name.
        file: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A variant's arch does not belong to the family's search space.
    #[error("{}: variant `{variant}`: its arch does not fit the family's search space; rebuild the bundle from the same supernet", path.display())]
    InvalidArch {
        /// The manifest.
        path: PathBuf,
        /// The variant id.
        variant: String,
        /// The search space's complaint.
        #[source]
        source: netspec::Error,
    },
    /// The family's search space is invalid.
    #[error("{}: family.search_space is invalid; rebuild the bundle from a valid supernet checkpoint", path.display())]
    InvalidSpace {
        /// The manifest.
        path: PathBuf,
        /// The search space's complaint.
        #[source]
        source: netspec::Error,
    },
    /// A variant id that the manifest does not list.
    #[error("{}: no variant `{id}` in this bundle (it has: {}); pick one of those", dir.display(), available.join(", "))]
    UnknownVariant {
        /// The bundle folder.
        dir: PathBuf,
        /// The id asked for.
        id: String,
        /// The ids the manifest lists.
        available: Vec<String>,
    },
    /// A variant's weights file is missing.
    #[error("{}: weights file of variant `{variant}` is missing; re-copy the whole bundle folder", path.display())]
    MissingFile {
        /// The expected file.
        path: PathBuf,
        /// The variant id.
        variant: String,
    },
    /// A bundle file that is not a regular file (a link, folder, FIFO or device).
    #[error("{}: is a {kind}, not a regular file; a bundle holds only regular files inside its folder — re-copy the bundle (without links)", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
        /// What it is instead (`symbolic link`, `folder`, `FIFO`, …).
        kind: &'static str,
    },
    /// A weights file is shorter than the manifest says: it was cut off while copying.
    #[error("{}: weights file of variant `{variant}` is truncated: {found_bytes} of {expected_bytes} bytes, so its sha256 cannot match; re-copy the bundle", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The variant id.
        variant: String,
        /// `model_bytes` from the manifest.
        expected_bytes: u64,
        /// The size on disk.
        found_bytes: u64,
    },
    /// A weights file is longer than the manifest says.
    #[error("{}: weights file of variant `{variant}` has {found_bytes} bytes but the manifest says {expected_bytes}, so its sha256 cannot match; re-copy the bundle", path.display())]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// The variant id.
        variant: String,
        /// `model_bytes` from the manifest.
        expected_bytes: u64,
        /// The size on disk.
        found_bytes: u64,
    },
    /// A weights file's content does not match its sha256 in the manifest.
    #[error("{}: weights file of variant `{variant}` is corrupt: sha256 is {actual}, the manifest says {expected}; re-copy the bundle", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// The variant id.
        variant: String,
        /// The sha256 from the manifest.
        expected: String,
        /// The sha256 of the file.
        actual: String,
    },
    /// The writer's target exists and overwriting was not asked for.
    #[error("{}: already exists; choose another folder or allow overwriting (`--force`)", path.display())]
    TargetExists {
        /// The target folder.
        path: PathBuf,
    },
    /// The writer's target path cannot hold a bundle.
    #[error("{}: cannot write a bundle here: {reason}", path.display())]
    InvalidTarget {
        /// The target.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// A selection policy with out-of-range values.
    #[error("invalid selection policy: {field} = {value}: {reason}")]
    InvalidPolicy {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range.
        reason: &'static str,
    },
    /// Device facts with out-of-range values.
    #[error(
        "invalid device facts for `{device}`: {field}: {reason}; re-run the device probe or fix the profile"
    )]
    InvalidDevice {
        /// The device id.
        device: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The caller excluded every variant of a bundle from selection.
    #[error("bundle `{bundle_id}`: every variant is excluded ({}); nothing left to choose — clear the exclusions or re-copy the bundle", excluded.join(", "))]
    AllExcluded {
        /// The bundle id.
        bundle_id: String,
        /// The excluded ids.
        excluded: Vec<String>,
    },
    /// The inference thread pool could not be sized (it exists already: rayon's global pool is
    /// created once per process).
    #[error(
        "cannot use {requested} inference threads: {reason}; {in_force} threads are in force (set the count before the first inference, or with RAYON_NUM_THREADS)"
    )]
    Threads {
        /// The count asked for.
        requested: usize,
        /// The pool's size.
        in_force: usize,
        /// rayon's message.
        reason: String,
    },
    /// The engine's own thread pool for one image could not be started (the OS refused a
    /// thread).
    #[error(
        "cannot start {requested} threads for one image's inference: {source}; ask for fewer threads (1 runs on the calling thread)"
    )]
    EngineThreads {
        /// The count asked for.
        requested: usize,
        /// rayon's error.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// Every variant of a bundle failed to verify or load.
    #[error("{}: no variant could be loaded:{}; re-copy the bundle (and check the runtime matches the bundle)", dir.display(), FailureList(failures))]
    AllVariantsFailed {
        /// The bundle folder.
        dir: PathBuf,
        /// One entry per variant tried, in the order tried.
        failures: Vec<FallbackEvent>,
    },
}

/// Shorthand for `Result<T, runtime::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// Whether this error means a weights file is missing or damaged (as opposed to a bad
    /// manifest, a bad argument or an I/O failure elsewhere).
    pub fn is_damaged_file(&self) -> bool {
        matches!(
            self,
            Error::MissingFile { .. }
                | Error::NotRegularFile { .. }
                | Error::LoadFailed { .. }
                | Error::Truncated { .. }
                | Error::SizeMismatch { .. }
                | Error::ChecksumMismatch { .. }
        )
    }
}

/// Formats fallback failures as one indented line each.
struct FailureList<'a>(&'a [FallbackEvent]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}
