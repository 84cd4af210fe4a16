//! `manifest.json`: the schema of a tiered bundle ([`ManifestFile`], plain serde) and its
//! validated form ([`Manifest`]).
//!
//! A bundle is a folder holding `manifest.json` and one weights file per variant. The manifest
//! describes the model family, every variant (its arch, costs, accuracy, latency on a reference
//! device, file name and sha256) and the tiers the variants were built for.

use std::collections::BTreeSet;
use std::path::Path;

use netspec::{ArchConfig, SearchSpace};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Largest variant file a manifest may declare (1 GiB; real variants are well under 10 MB).
pub const MAX_VARIANT_BYTES: u64 = 1 << 30;

/// The `format_version` this runtime reads and writes.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;

/// The manifest's file name inside a bundle folder.
pub const MANIFEST_FILE_NAME: &str = "manifest.json";

/// `manifest.json` exactly as stored: plain serde, unknown fields rejected.
///
/// Turn it into a [`Manifest`] (`Manifest::try_from`) before using it; that checks every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// [`BUNDLE_FORMAT_VERSION`]; a reader refuses newer versions.
    pub format_version: u32,
    /// A stable id of the bundle (the model family and its purpose), e.g. `fashion-mnist`.
    pub bundle_id: String,
    /// The bundle's version; any change invalidates cached decisions on devices.
    pub bundle_version: String,
    /// The tool and version that wrote the bundle, e.g. `tierforge 0.1.0`.
    pub created_by: String,
    /// What every variant computes.
    pub family: Family,
    /// The device on which `latency_ms` of each variant was measured or predicted.
    pub reference: Reference,
    /// Latency budget per inference when the app does not give one.
    pub default_latency_budget_ms: f64,
    /// The variants, in any order.
    pub variants: Vec<Variant>,
    /// The tiers the variants were built for (informational: selection works per device).
    pub tiers: Vec<Tier>,
}

/// The model family: input format, labels and the search space its variants come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Family {
    /// A name for reports.
    pub name: String,
    /// Class names, `labels.len() == search_space.num_classes`.
    pub labels: Vec<String>,
    /// Input channels (1 grayscale, 3 RGB).
    pub in_channels: usize,
    /// Native image size (square) the family was trained on.
    pub image_size: usize,
    /// Per-channel mean subtracted from inputs scaled to 0..1.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation inputs are divided by.
    pub std: Vec<f32>,
    /// The search space every variant's arch belongs to.
    pub search_space: SearchSpace,
}

/// The reference device of the latency figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The device profile id, e.g. `host-epyc-2c`.
    pub profile_id: String,
    /// Its capability score (same scale as [`crate::DeviceFacts::score`]).
    pub score: f64,
}

/// Storage type of a variant's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit floats.
    F32,
    /// Per-channel symmetric int8 with stored scales.
    Int8,
}

/// One variant: an extracted sub-network and its weights file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Unique id inside the bundle, e.g. `small`.
    pub id: String,
    /// The sub-network.
    pub arch: ArchConfig,
    /// Input resolution (equals `arch.resolution`).
    pub resolution: usize,
    /// Parameters stored (after BN folding).
    pub params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Size of the weights file in bytes (filled in by [`crate::BundleWriter`]); a reader
    /// uses it to tell a truncated file from a corrupt one.
    pub model_bytes: u64,
    /// Storage type of the weights.
    pub dtype: Dtype,
    /// Peak activation memory for one image, in bytes.
    pub peak_activation_bytes: u64,
    /// Top-1 accuracy on the test set, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Accuracy predicted by the accuracy predictor, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_accuracy: Option<f64>,
    /// Latency of one image (batch 1, one thread) on the reference device.
    pub latency_ms: f64,
    /// Latency of one image (batch 1) on the reference device at several inference thread
    /// counts, ascending by `threads`; empty in bundles that only know `latency_ms`. The
    /// selector uses the entry for the device's thread count (see [`Variant::latency_ms_at`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub latency_by_threads: Vec<ThreadLatency>,
    /// The weights file: a plain name inside the bundle folder, never a path.
    pub file: String,
    /// sha256 of the weights file, 64 hex digits (filled in by [`crate::BundleWriter`]).
    pub sha256: String,
}

/// Reference-device latency of a variant at one inference thread count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadLatency {
    /// Inference threads (≥ 1).
    pub threads: usize,
    /// Latency of one image, ms.
    pub ms: f64,
}

impl Variant {
    /// Reference-device latency when inference runs on `threads` threads: the entry of
    /// [`Variant::latency_by_threads`] with the most threads not above `threads` (a device
    /// with more cores than were measured gets the figure for the most threads measured),
    /// else [`Variant::latency_ms`] (one thread).
    pub fn latency_ms_at(&self, threads: usize) -> f64 {
        self.latency_by_threads
            .iter()
            .filter(|t| t.threads <= threads.max(1))
            .max_by_key(|t| t.threads)
            .map_or(self.latency_ms, |t| t.ms)
    }

    /// The share of one image's work that more threads split, from the reference latencies at
    /// 1 and 2 threads the bundle writer measured (Amdahl's law,
    /// [`device_profiles::latency::parallel_fraction`]); 0 without a 2-thread figure. This is
    /// what the latency model needs from `latency_by_threads`: a tiny net that did not speed up
    /// on 2 threads gets 0, and runs on one.
    pub fn parallel_fraction(&self) -> f64 {
        let two = self.latency_by_threads.iter().find(|t| t.threads == 2);
        two.map_or(0.0, |t| {
            device_profiles::latency::parallel_fraction(self.latency_ms_at(1), t.ms, 2)
        })
    }
}

/// A tier: the constraints a variant was searched under, and the variant chosen for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Tier name, e.g. `low`.
    pub name: String,
    /// Latency limit on the tier's target device.
    pub max_latency_ms: f64,
    /// Weights size limit.
    pub max_model_bytes: u64,
    /// Peak memory limit (weights + activations).
    pub max_peak_memory_bytes: u64,
    /// The id of the variant built for this tier.
    pub variant: String,
}

/// A validated manifest: every invariant of [`ManifestFile`] checked (see
/// [`Manifest::validate_at`]). Immutable.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    file: ManifestFile,
    digest: String,
}

impl Manifest {
    /// Reads and validates `manifest.json` at `path`.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Json`] (naming the field), [`Error::NewerFormat`],
    /// [`Error::UnsupportedFormat`] or any validation error of [`Manifest::validate_at`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates manifest JSON; `path` only names the file in errors.
    ///
    /// The `format_version` is checked before the strict parse, so a newer manifest with new
    /// fields reports "newer tierforge" rather than an unknown field.
    ///
    /// # Errors
    /// As [`Manifest::load`], without I/O.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self> {
        #[derive(Deserialize)]
        struct VersionProbe {
            format_version: Option<serde_json::Value>,
        }
        let probe: VersionProbe =
            serde_json::from_str(text).map_err(|e| json_error(text, path, e))?;
        match probe
            .format_version
            .as_ref()
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v > u64::from(BUNDLE_FORMAT_VERSION) => {
                return Err(Error::NewerFormat {
                    path: path.into(),
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                    supported: BUNDLE_FORMAT_VERSION,
                });
            }
            Some(v) if v < u64::from(BUNDLE_FORMAT_VERSION) => {
                return Err(Error::UnsupportedFormat {
                    path: path.into(),
                    found: u32::try_from(v).unwrap_or(0),
                    supported: BUNDLE_FORMAT_VERSION,
                });
            }
            Some(_) => {}
            // Absent: report that. Present but not an integer: the strict parse names it.
            None if probe.format_version.is_none() => {
                return Err(Error::UnsupportedFormat {
                    path: path.into(),
                    found: 0,
                    supported: BUNDLE_FORMAT_VERSION,
                });
            }
            None => {}
        }
        let file: ManifestFile =
            serde_json::from_str(text).map_err(|e| json_error(text, path, e))?;
        Self::validate_at(file, path)
    }

    /// Checks every invariant of `file`; `path` only names the file in errors.
    ///
    /// Checked: the format version; non-empty ids and names; the search space and each arch
    /// against it; labels, mean and std against the space; positive finite budgets, scores and
    /// latencies; accuracies in 0..=1; non-empty, unique variant ids; plain, unique file names
    /// (see [`check_file_name`]); sha256 of 64 hex digits; tiers naming existing variants.
    ///
    /// # Errors
    /// [`Error::NewerFormat`], [`Error::UnsupportedFormat`], [`Error::InvalidManifest`],
    /// [`Error::BadFileName`], [`Error::InvalidSpace`] or [`Error::InvalidArch`].
    pub fn validate_at(file: ManifestFile, path: &Path) -> Result<Self> {
        check_structure(&file, path)?;
        for (i, v) in file.variants.iter().enumerate() {
            if !is_sha256_hex(&v.sha256) {
                return Err(invalid(
                    path,
                    format!("variants[{i}].sha256"),
                    format!("`{}` is not 64 hex digits", v.sha256),
                ));
            }
        }
        let digest = hex(&Sha256::digest(
            serde_json::to_vec(&file).unwrap_or_default(),
        ));
        Ok(Manifest { file, digest })
    }

    /// The manifest as stored.
    pub fn as_file(&self) -> &ManifestFile {
        &self.file
    }
    /// The manifest as stored, by value.
    pub fn into_file(self) -> ManifestFile {
        self.file
    }
    /// The bundle id.
    pub fn bundle_id(&self) -> &str {
        &self.file.bundle_id
    }
    /// The bundle version.
    pub fn bundle_version(&self) -> &str {
        &self.file.bundle_version
    }
    /// The model family.
    pub fn family(&self) -> &Family {
        &self.file.family
    }
    /// The reference device of the latency figures.
    pub fn reference(&self) -> &Reference {
        &self.file.reference
    }
    /// The default latency budget.
    pub fn default_latency_budget_ms(&self) -> f64 {
        self.file.default_latency_budget_ms
    }
    /// All variants (never empty).
    pub fn variants(&self) -> &[Variant] {
        &self.file.variants
    }
    /// The variant with this id.
    pub fn variant(&self, id: &str) -> Option<&Variant> {
        self.file.variants.iter().find(|v| v.id == id)
    }
    /// The tiers.
    pub fn tiers(&self) -> &[Tier] {
        &self.file.tiers
    }
    /// sha256 (hex) of the manifest's canonical JSON: changes whenever any field changes.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// The manifest as pretty JSON, as written to `manifest.json`.
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail; NaN is rejected by
        // validation (serde_json would write it as null).
        serde_json::to_string_pretty(&self.file).unwrap_or_default()
    }
}

impl TryFrom<ManifestFile> for Manifest {
    type Error = Error;
    fn try_from(file: ManifestFile) -> Result<Self> {
        Manifest::validate_at(file, Path::new("<in memory manifest>"))
    }
}

/// An [`Error::Json`] naming the field the parser stopped in.
pub(crate) fn json_error(text: &str, path: &Path, source: serde_json::Error) -> Error {
    let field = json_path_at(text, source.line(), source.column());
    Error::Json {
        path: path.into(),
        field,
        source,
    }
}

/// The JSON path (`a.b[2].c`) of the value at 1-based `line` and `column` in `text`: a small
/// scanner that tracks object keys and array indexes up to that position, so errors can name
/// the field even where the parser's message does not (invalid types and values).
pub(crate) fn json_path_at(text: &str, line: usize, column: usize) -> String {
    enum Frame {
        Object { key: Option<String>, in_value: bool },
        Array { index: usize },
    }
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let end = (line_start + column).min(text.len());
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                None => {}
            },
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key = Some(text.get(start..i.min(text.len())).unwrap_or("?").to_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = String::new();
    for f in &stack {
        match f {
            Frame::Object { key: Some(k), .. } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
        }
    }
    if out.is_empty() {
        "<top level>".into()
    } else {
        out
    }
}

fn invalid(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidManifest {
        path: path.into(),
        field: field.into(),
        reason: reason.into(),
    }
}

fn positive(path: &Path, field: String, x: f64) -> Result<()> {
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(invalid(
            path,
            field,
            format!("must be a positive finite number, got {x}"),
        ))
    }
}

fn fraction(path: &Path, field: String, x: Option<f64>) -> Result<()> {
    match x {
        Some(a) if !(a.is_finite() && (0.0..=1.0).contains(&a)) => {
            Err(invalid(path, field, format!("must be in 0..=1, got {a}")))
        }
        _ => Ok(()),
    }
}

/// Everything but the sha256 format (the writer checks this before it has hashed the files):
/// the format version, the family, the reference and budget, every variant, every tier.
pub(crate) fn check_structure(file: &ManifestFile, path: &Path) -> Result<()> {
    if file.format_version > BUNDLE_FORMAT_VERSION {
        return Err(Error::NewerFormat {
            path: path.into(),
            found: file.format_version,
            supported: BUNDLE_FORMAT_VERSION,
        });
    }
    if file.format_version < BUNDLE_FORMAT_VERSION {
        return Err(Error::UnsupportedFormat {
            path: path.into(),
            found: file.format_version,
            supported: BUNDLE_FORMAT_VERSION,
        });
    }
    for (field, value) in [
        ("bundle_id", &file.bundle_id),
        ("bundle_version", &file.bundle_version),
        ("family.name", &file.family.name),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(path, field, "must not be empty"));
        }
    }
    check_family(&file.family, path)?;
    positive(path, "reference.score".into(), file.reference.score)?;
    positive(
        path,
        "default_latency_budget_ms".into(),
        file.default_latency_budget_ms,
    )?;
    if file.variants.is_empty() {
        return Err(invalid(path, "variants", "must list at least one variant"));
    }
    let mut ids = BTreeSet::new();
    let mut files = BTreeSet::new();
    for (i, v) in file.variants.iter().enumerate() {
        check_variant(i, v, &file.family.search_space, path)?;
        if !ids.insert(v.id.as_str()) {
            return Err(invalid(
                path,
                format!("variants[{i}].id"),
                format!("`{}` is used by two variants; ids must be unique", v.id),
            ));
        }
        if !files.insert(v.file.as_str()) {
            return Err(invalid(
                path,
                format!("variants[{i}].file"),
                format!(
                    "`{}` is used by two variants; each needs its own file",
                    v.file
                ),
            ));
        }
    }
    check_tiers(&file.tiers, &ids, path)
}

/// The family: a valid search space, and labels, channels, image size, mean and std that
/// agree with it.
fn check_family(fam: &Family, path: &Path) -> Result<()> {
    let space = &fam.search_space;
    space.validate().map_err(|source| Error::InvalidSpace {
        path: path.into(),
        source,
    })?;
    if fam.labels.len() != space.num_classes {
        return Err(invalid(
            path,
            "family.labels",
            format!(
                "has {} labels but the search space has {} classes",
                fam.labels.len(),
                space.num_classes
            ),
        ));
    }
    if fam.in_channels != space.in_channels {
        return Err(invalid(
            path,
            "family.in_channels",
            format!(
                "is {} but the search space has {}",
                fam.in_channels, space.in_channels
            ),
        ));
    }
    if fam.image_size != space.image_size {
        return Err(invalid(
            path,
            "family.image_size",
            format!(
                "is {} but the search space has {}",
                fam.image_size, space.image_size
            ),
        ));
    }
    for (field, v) in [("family.mean", &fam.mean), ("family.std", &fam.std)] {
        if v.len() != fam.in_channels {
            return Err(invalid(
                path,
                field,
                format!(
                    "needs one value per input channel ({}), got {}",
                    fam.in_channels,
                    v.len()
                ),
            ));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(invalid(path, field, "values must be finite"));
        }
    }
    if fam.std.iter().any(|s| *s <= 0.0) {
        return Err(invalid(path, "family.std", "values must be > 0"));
    }
    Ok(())
}

/// Variant `i` on its own: id, file name, arch (in `space`, at its resolution), size,
/// latencies and accuracies.
fn check_variant(i: usize, v: &Variant, space: &SearchSpace, path: &Path) -> Result<()> {
    if v.id.trim().is_empty() {
        return Err(invalid(
            path,
            format!("variants[{i}].id"),
            "must not be empty",
        ));
    }
    if v.id.chars().any(char::is_control) || v.id.len() > 128 {
        return Err(invalid(
            path,
            format!("variants[{i}].id"),
            format!(
                "{:?} holds a control character or is over 128 bytes; use letters, digits, `-` and `_`",
                v.id.chars().take(40).collect::<String>()
            ),
        ));
    }
    check_file_name(&v.file).map_err(|reason| Error::BadFileName {
        path: path.into(),
        variant: v.id.clone(),
        file: v.file.clone(),
        reason,
    })?;
    v.arch
        .validate(space)
        .map_err(|source| Error::InvalidArch {
            path: path.into(),
            variant: v.id.clone(),
            source,
        })?;
    if v.resolution != v.arch.resolution {
        return Err(invalid(
            path,
            format!("variants[{i}].resolution"),
            format!(
                "is {} but arch.resolution is {}",
                v.resolution, v.arch.resolution
            ),
        ));
    }
    // Bounded so that a damaged manifest cannot make a reader allocate gigabytes.
    if v.model_bytes == 0 || v.model_bytes > MAX_VARIANT_BYTES {
        return Err(invalid(
            path,
            format!("variants[{i}].model_bytes"),
            format!(
                "is {}; a variant file has 1..={MAX_VARIANT_BYTES} bytes — rebuild the bundle",
                v.model_bytes
            ),
        ));
    }
    positive(path, format!("variants[{i}].latency_ms"), v.latency_ms)?;
    for (j, t) in v.latency_by_threads.iter().enumerate() {
        positive(
            path,
            format!("variants[{i}].latency_by_threads[{j}].ms"),
            t.ms,
        )?;
        let prev = j.checked_sub(1).map(|p| v.latency_by_threads[p].threads);
        if t.threads == 0 || prev.is_some_and(|p| p >= t.threads) {
            return Err(invalid(
                path,
                format!("variants[{i}].latency_by_threads[{j}].threads"),
                "must be ≥ 1 and strictly ascending",
            ));
        }
    }
    fraction(
        path,
        format!("variants[{i}].test_accuracy"),
        v.test_accuracy,
    )?;
    fraction(
        path,
        format!("variants[{i}].predicted_accuracy"),
        v.predicted_accuracy,
    )?;
    Ok(())
}

/// Each tier: a unique non-empty name, a positive budget, and a variant among `ids`.
fn check_tiers(tiers: &[Tier], ids: &BTreeSet<&str>, path: &Path) -> Result<()> {
    let mut tier_names = BTreeSet::new();
    for (i, t) in tiers.iter().enumerate() {
        if t.name.trim().is_empty() || !tier_names.insert(t.name.as_str()) {
            return Err(invalid(
                path,
                format!("tiers[{i}].name"),
                format!("`{}` must be non-empty and unique", t.name),
            ));
        }
        positive(path, format!("tiers[{i}].max_latency_ms"), t.max_latency_ms)?;
        if !ids.contains(t.variant.as_str()) {
            return Err(invalid(
                path,
                format!("tiers[{i}].variant"),
                format!("`{}` is not the id of any variant", t.variant),
            ));
        }
    }
    Ok(())
}

/// Checks that `name` is a plain file name inside a bundle folder.
///
/// Rejected: empty names, `.`/`..`, anything with a path separator (`/`, `\`) or a drive or
/// stream colon, absolute paths, hidden names (leading `.`), control characters (NUL
/// included), names over 255 bytes, and `manifest.json` itself.
///
/// # Errors
/// A short reason, used in [`Error::BadFileName`].
pub fn check_file_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name == "." || name.split(['/', '\\']).any(|c| c == "..") {
        return Err("refers to a parent folder");
    }
    if name.contains('/') || name.contains('\\') || Path::new(name).is_absolute() {
        return Err("is a path, not a plain name");
    }
    if name.contains(':') {
        return Err("contains a colon (drive or stream name)");
    }
    if name.chars().any(char::is_control) {
        return Err("contains a control character (NUL or similar)");
    }
    if name.starts_with('.') {
        return Err("is a hidden name");
    }
    if name.len() > 255 {
        return Err("is longer than 255 bytes");
    }
    if name == MANIFEST_FILE_NAME {
        return Err("is the manifest's own name");
    }
    Ok(())
}

pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small valid manifest over the tiny search space, with three variants.
    pub(crate) fn sample() -> ManifestFile {
        let space = SearchSpace::tiny(1, 3, 16);
        let mk = |id: &str, arch: ArchConfig, macs: u64, acc: f64, lat: f64| Variant {
            id: id.into(),
            resolution: arch.resolution,
            arch,
            params: macs / 10,
            macs,
            model_bytes: 100,
            dtype: Dtype::F32,
            peak_activation_bytes: 1000,
            test_accuracy: Some(acc),
            predicted_accuracy: None,
            latency_ms: lat,
            latency_by_threads: vec![],
            file: format!("{id}.safetensors"),
            sha256: "0".repeat(64),
        };
        ManifestFile {
            format_version: BUNDLE_FORMAT_VERSION,
            bundle_id: "tiny-family".into(),
            bundle_version: "1".into(),
            created_by: "test".into(),
            family: Family {
                name: "tiny".into(),
                labels: vec!["a".into(), "b".into(), "c".into()],
                in_channels: 1,
                image_size: 16,
                mean: vec![0.5],
                std: vec![0.25],
                search_space: space.clone(),
            },
            reference: Reference {
                profile_id: "ref".into(),
                score: 10.0,
            },
            default_latency_budget_ms: 10.0,
            variants: vec![
                mk("large", ArchConfig::max(&space), 3000, 0.9, 8.0),
                mk("small", ArchConfig::min(&space), 1000, 0.8, 2.0),
            ],
            tiers: vec![Tier {
                name: "low".into(),
                max_latency_ms: 5.0,
                max_model_bytes: 1000,
                max_peak_memory_bytes: 10_000,
                variant: "small".into(),
            }],
        }
    }

    #[test]
    fn sample_is_valid_and_round_trips() {
        let m = Manifest::try_from(sample()).unwrap();
        let back = Manifest::from_json_str(&m.to_json_pretty(), Path::new("m.json")).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.variant("small").unwrap().macs, 1000);
        assert!(m.variant("medium").is_none());
    }

    #[test]
    fn file_names_must_be_plain() {
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "dir/file",
            "a\\b",
            "C:\\w",
            "C:w",
            ".hidden",
            "nul\0byte",
            "manifest.json",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["small.safetensors", "v1-int8.bin", "x"] {
            assert_eq!(check_file_name(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn latency_at_a_thread_count_takes_the_nearest_measured_below() {
        let mut v = sample().variants.remove(0);
        assert_eq!(
            v.latency_ms_at(4),
            v.latency_ms,
            "no table: the one-thread figure"
        );
        v.latency_by_threads = vec![
            ThreadLatency {
                threads: 1,
                ms: 3.0,
            },
            ThreadLatency {
                threads: 2,
                ms: 2.0,
            },
        ];
        assert_eq!(v.latency_ms_at(0), 3.0);
        assert_eq!(v.latency_ms_at(1), 3.0);
        assert_eq!(v.latency_ms_at(2), 2.0);
        assert_eq!(
            v.latency_ms_at(8),
            2.0,
            "more cores than measured: most threads measured"
        );
        v.latency_by_threads.remove(0);
        assert_eq!(
            v.latency_ms_at(1),
            v.latency_ms,
            "below every entry: latency_ms"
        );
        // round trip through JSON keeps the table; an empty one is not written
        let json = serde_json::to_string(&v).unwrap();
        assert!(json.contains("latency_by_threads"), "{json}");
        let back: Variant = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        v.latency_by_threads.clear();
        assert!(
            !serde_json::to_string(&v)
                .unwrap()
                .contains("latency_by_threads")
        );
    }

    #[test]
    fn each_invariant_is_checked() {
        type Edit = Box<dyn Fn(&mut ManifestFile)>;
        let cases: Vec<(&str, Edit)> = vec![
            ("variants", Box::new(|m| m.variants.clear())),
            (
                "ids must be unique",
                Box::new(|m| m.variants[1].id = "large".into()),
            ),
            (
                "not the id of any variant",
                Box::new(|m| m.tiers[0].variant = "nope".into()),
            ),
            (
                "64 hex digits",
                Box::new(|m| m.variants[0].sha256 = "abc".into()),
            ),
            (
                "64 hex digits",
                Box::new(|m| m.variants[0].sha256 = "g".repeat(64)),
            ),
            (
                "3 classes",
                Box::new(|m| {
                    m.family.labels.pop();
                }),
            ),
            (
                "does not fit the family",
                Box::new(|m| m.variants[0].arch.depths[0] = 9),
            ),
            (
                "arch.resolution",
                Box::new(|m| m.variants[0].resolution = 99),
            ),
            (
                "0..=1",
                Box::new(|m| m.variants[0].test_accuracy = Some(1.5)),
            ),
            (
                "positive finite",
                Box::new(|m| m.variants[0].latency_ms = f64::NAN),
            ),
            ("positive finite", Box::new(|m| m.reference.score = 0.0)),
            (
                "strictly ascending",
                Box::new(|m| {
                    m.variants[0].latency_by_threads = vec![
                        ThreadLatency {
                            threads: 2,
                            ms: 1.0,
                        },
                        ThreadLatency {
                            threads: 1,
                            ms: 2.0,
                        },
                    ]
                }),
            ),
            (
                "latency_by_threads[0].ms",
                Box::new(|m| {
                    m.variants[0].latency_by_threads = vec![ThreadLatency {
                        threads: 1,
                        ms: -1.0,
                    }]
                }),
            ),
            (
                "two variants",
                Box::new(|m| m.variants[1].file = m.variants[0].file.clone()),
            ),
            (
                "a path",
                Box::new(|m| m.variants[1].file = "/etc/passwd".into()),
            ),
            ("newer tierforge", Box::new(|m| m.format_version = 2)),
        ];
        for (want, f) in cases {
            let mut m = sample();
            f(&mut m);
            let e = Manifest::try_from(m).expect_err(want).to_string();
            assert!(e.contains(want), "want {want:?} in {e}");
        }
    }

    #[test]
    fn newer_version_is_reported_before_unknown_fields() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["format_version"] = 7.into();
        v["some_future_field"] = true.into();
        let e = Manifest::from_json_str(&v.to_string(), Path::new("b/manifest.json")).unwrap_err();
        assert!(matches!(e, Error::NewerFormat { found: 7, .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("b/manifest.json") && msg.contains("upgrade the runtime"),
            "{msg}"
        );
    }

    #[test]
    fn missing_version_and_unknown_field_are_named() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v.as_object_mut().unwrap().remove("format_version");
        let e = Manifest::from_json_str(&v.to_string(), Path::new("m.json")).unwrap_err();
        assert!(
            matches!(e, Error::UnsupportedFormat { found: 0, .. }),
            "{e:?}"
        );

        let mut v = serde_json::to_value(sample()).unwrap();
        v["variants"][0]["latency_msec"] = 1.0.into();
        let e = Manifest::from_json_str(&v.to_string(), Path::new("m.json")).unwrap_err();
        assert!(e.to_string().contains("latency_msec"), "{e}");
    }

    #[test]
    fn json_errors_name_the_field() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["variants"][1]["latency_ms"] = "fast".into();
        let text = serde_json::to_string_pretty(&v).unwrap();
        let e = Manifest::from_json_str(&text, Path::new("m.json")).unwrap_err();
        match &e {
            Error::Json { field, .. } => assert_eq!(field, "variants[1].latency_ms"),
            e => panic!("{e:?}"),
        }
        // On one line too, and for a nested object.
        v["variants"][1]["latency_ms"] = 2.0.into();
        v["family"]["search_space"]["stem_stride"] = (-1).into();
        let e = Manifest::from_json_str(&v.to_string(), Path::new("m.json")).unwrap_err();
        assert!(
            e.to_string().contains("`family.search_space.stem_stride`"),
            "{e}"
        );
        // Syntax errors still point somewhere sensible.
        let e = Manifest::from_json_str("{\"bundle_id\": ", Path::new("m.json")).unwrap_err();
        assert!(
            e.to_string()
                .contains("m.json: malformed JSON at `bundle_id`"),
            "{e}"
        );
    }

    #[test]
    fn dtype_is_lowercase_in_json() {
        assert_eq!(serde_json::to_string(&Dtype::Int8).unwrap(), "\"int8\"");
        assert_eq!(
            serde_json::from_str::<Dtype>("\"f32\"").unwrap(),
            Dtype::F32
        );
        assert!(serde_json::from_str::<Dtype>("\"f16\"").is_err());
    }

    #[test]
    fn hex_is_lowercase_and_complete() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
    }
}
