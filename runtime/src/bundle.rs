//! A tiered bundle on disk: [`Bundle`] (open, read a variant's weights with its checksum
//! verified, verify everything) and [`BundleWriter`] (write one atomically).

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE_NAME, Manifest, ManifestFile, Variant, check_structure, hex};

/// An opened bundle: its folder and validated manifest. Weights are read only on demand, by
/// [`Bundle::read_variant`], which verifies them first.
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Opens the bundle in `dir`: reads and validates `manifest.json` (no weights file is read).
    ///
    /// # Errors
    /// [`Error::NoManifest`], [`Error::Io`], [`Error::Json`], [`Error::NewerFormat`] and the
    /// validation errors of [`Manifest::validate_at`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let path = dir.join(MANIFEST_FILE_NAME);
        let text = match open_regular(&path) {
            Ok(f) => read_bounded(f, &path, MAX_MANIFEST_BYTES)?,
            Err(Error::MissingFile { .. }) => return Err(Error::NoManifest { dir }),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(text).map_err(|e| {
            Error::io(
                &path,
                "read",
                io::Error::new(io::ErrorKind::InvalidData, e.utf8_error()),
            )
        })?;
        let manifest = Manifest::from_json_str(&text, &path)?;
        Ok(Bundle { dir, manifest })
    }

    /// The bundle folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The variant with this id.
    ///
    /// # Errors
    /// [`Error::UnknownVariant`] listing the ids there are.
    pub fn variant(&self, id: &str) -> Result<&Variant> {
        self.manifest
            .variant(id)
            .ok_or_else(|| Error::UnknownVariant {
                dir: self.dir.clone(),
                id: id.to_owned(),
                available: self
                    .manifest
                    .variants()
                    .iter()
                    .map(|v| v.id.clone())
                    .collect(),
            })
    }

    /// Where `variant`'s weights file is (its name is validated to be plain, so it is inside
    /// the bundle folder).
    pub fn variant_path(&self, variant: &Variant) -> PathBuf {
        self.dir.join(&variant.file)
    }

    /// Reads the weights of variant `id` and verifies their size and sha256 before returning
    /// them.
    ///
    /// # Errors
    /// [`Error::UnknownVariant`], [`Error::MissingFile`], [`Error::Truncated`],
    /// [`Error::SizeMismatch`], [`Error::ChecksumMismatch`] (each naming the file), or
    /// [`Error::Io`].
    pub fn read_variant(&self, id: &str) -> Result<Vec<u8>> {
        let v = self.variant(id)?;
        self.read_checked(v)
    }

    fn read_checked(&self, v: &Variant) -> Result<Vec<u8>> {
        let path = self.variant_path(v);
        let file = open_regular(&path).map_err(|e| match e {
            Error::MissingFile { path, .. } => Error::MissingFile {
                path,
                variant: v.id.clone(),
            },
            e => e,
        })?;
        let meta = file.metadata().map_err(|e| Error::io(&path, "stat", e))?;
        check_size(&path, v, meta.len())?;
        // Never more than the manifest's size (+1 to notice growth): memory stays bounded.
        let bytes = read_bounded(file, &path, v.model_bytes)?;
        // The file may have changed between stat and read.
        check_size(&path, v, bytes.len() as u64)?;
        let actual = hex(&Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(&v.sha256) {
            return Err(Error::ChecksumMismatch {
                path,
                variant: v.id.clone(),
                expected: v.sha256.to_ascii_lowercase(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Verifies every variant's file: a regular file inside the bundle (no link, folder or
    /// FIFO), its size and its sha256. The manifest's schema, version and file names were
    /// checked by [`Bundle::open`]. [`Bundle::verify_weights`] also decodes the weights.
    pub fn verify(&self) -> VerifyReport {
        self.verify_with(|_, _| Ok(()))
    }

    /// [`Bundle::verify`], and each file that passed decodes into its arch with finite weights
    /// and compiles for the engine: what loading it on a phone would find.
    pub fn verify_weights(&self) -> VerifyReport {
        let family = self.manifest.family().clone();
        self.verify_with(|v, bytes| crate::session::load_net(&family, v, bytes).map(|_| ()))
    }

    /// As [`Bundle::verify`], then runs `check` on each file that passed (e.g. "do these
    /// weights load into this arch").
    pub fn verify_with(
        &self,
        mut check: impl FnMut(&Variant, &[u8]) -> Result<()>,
    ) -> VerifyReport {
        let mut variants = Vec::new();
        for v in self.manifest.variants() {
            let (problem, message) = match self.read_checked(v) {
                Ok(bytes) => match check(v, &bytes) {
                    Ok(()) => (None, None),
                    Err(e) => (
                        Some(Problem::LoadFailed),
                        Some(format!(
                            "{}: does not load into variant `{}`'s arch: {}",
                            self.variant_path(v).display(),
                            v.id,
                            match e {
                                Error::LoadFailed { source, .. } => source.to_string(),
                                e => e.to_string(),
                            }
                        )),
                    ),
                },
                Err(e) => (Some(Problem::of_error(&e)), Some(e.to_string())),
            };
            variants.push(VariantCheck {
                id: v.id.clone(),
                file: v.file.clone(),
                expected_bytes: v.model_bytes,
                problem,
                message,
            });
        }
        let listed: Vec<&str> = self
            .manifest
            .variants()
            .iter()
            .map(|v| v.file.as_str())
            .collect();
        let mut unlisted_files: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != MANIFEST_FILE_NAME && !listed.contains(&n.as_str()))
            .collect();
        unlisted_files.sort();
        VerifyReport {
            dir: self.dir.clone(),
            bundle_id: self.manifest.bundle_id().to_owned(),
            bundle_version: self.manifest.bundle_version().to_owned(),
            format_version: self.manifest.as_file().format_version,
            variants,
            unlisted_files,
        }
    }
}

/// Largest `manifest.json` a bundle may have (a real one is a few KB).
pub const MAX_MANIFEST_BYTES: u64 = 8 << 20;

/// Opens `path` for reading only if it is a regular file, not following a symbolic link and
/// never blocking (a FIFO or device is refused before it is opened).
///
/// # Errors
/// [`Error::MissingFile`] (with an empty variant id) when absent, [`Error::NotRegularFile`],
/// or [`Error::Io`].
pub(crate) fn open_regular(path: &Path) -> Result<File> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::MissingFile {
                path: path.into(),
                variant: String::new(),
            });
        }
        Err(e) => return Err(Error::io(path, "stat", e)),
    };
    let kind = file_kind(&meta.file_type());
    if kind != "regular file" {
        return Err(Error::NotRegularFile {
            path: path.into(),
            kind,
        });
    }
    let mut opts = fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW | O_NONBLOCK: a file swapped for a link or FIFO after the check above
        // fails or returns at once instead of blocking.
        opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| Error::io(path, "open", e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    if !meta.is_file() {
        return Err(Error::NotRegularFile {
            path: path.into(),
            kind: file_kind(&meta.file_type()),
        });
    }
    Ok(file)
}

fn file_kind(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_block_device() || t.is_char_device() {
            return "device";
        }
    }
    if t.is_symlink() {
        "symbolic link"
    } else if t.is_dir() {
        "folder"
    } else if t.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// Reads at most `limit + 1` bytes of `file` (so a file longer than `limit` is noticed
/// without reading it whole).
fn read_bounded(file: File, path: &Path, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(usize::try_from(limit.min(64 << 20)).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "read", e))?;
    if bytes.len() as u64 > limit {
        return Err(Error::io(
            path,
            "read",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the file is larger than {limit} bytes"),
            ),
        ));
    }
    Ok(bytes)
}

fn check_size(path: &Path, v: &Variant, found: u64) -> Result<()> {
    if found < v.model_bytes {
        return Err(Error::Truncated {
            path: path.into(),
            variant: v.id.clone(),
            expected_bytes: v.model_bytes,
            found_bytes: found,
        });
    }
    if found > v.model_bytes {
        return Err(Error::SizeMismatch {
            path: path.into(),
            variant: v.id.clone(),
            expected_bytes: v.model_bytes,
            found_bytes: found,
        });
    }
    Ok(())
}

/// What is wrong with one variant's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The file is not there.
    Missing,
    /// Shorter than the manifest says.
    Truncated,
    /// Longer than the manifest says.
    SizeMismatch,
    /// Right size, wrong sha256.
    ChecksumMismatch,
    /// Could not be read.
    Unreadable,
    /// Verified, but the caller's load check failed.
    LoadFailed,
}

impl Problem {
    pub(crate) fn of_error(e: &Error) -> Self {
        match e {
            Error::MissingFile { .. } => Problem::Missing,
            Error::Truncated { .. } => Problem::Truncated,
            Error::SizeMismatch { .. } => Problem::SizeMismatch,
            Error::ChecksumMismatch { .. } => Problem::ChecksumMismatch,
            _ => Problem::Unreadable,
        }
    }
}

/// The result of checking one variant's file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantCheck {
    /// The variant id.
    pub id: String,
    /// Its file name.
    pub file: String,
    /// The size the manifest gives.
    pub expected_bytes: u64,
    /// What is wrong, if anything.
    pub problem: Option<Problem>,
    /// The full message (naming the file and the fix), if something is wrong.
    pub message: Option<String>,
}

/// The result of [`Bundle::verify`]: one entry per variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The bundle folder.
    pub dir: PathBuf,
    /// The bundle id.
    pub bundle_id: String,
    /// The bundle version.
    pub bundle_version: String,
    /// The manifest's format version.
    pub format_version: u32,
    /// One check per variant, in manifest order.
    pub variants: Vec<VariantCheck>,
    /// Files in the folder the manifest does not list (harmless, reported for tidiness).
    pub unlisted_files: Vec<String>,
}

impl VerifyReport {
    /// Whether every variant passed.
    pub fn is_ok(&self) -> bool {
        self.variants.iter().all(|c| c.problem.is_none())
    }
    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &VariantCheck> {
        self.variants.iter().filter(|c| c.problem.is_some())
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "bundle {} v{} (format {}) at {}",
            self.bundle_id,
            self.bundle_version,
            self.format_version,
            self.dir.display()
        )?;
        for c in &self.variants {
            match &c.message {
                None => writeln!(
                    f,
                    "  ok    {} ({}, {} bytes, sha256 ok)",
                    c.id, c.file, c.expected_bytes
                )?,
                Some(m) => writeln!(f, "  FAIL  {}: {m}", c.id)?,
            }
        }
        if !self.unlisted_files.is_empty() {
            writeln!(
                f,
                "  note: files not in the manifest: {}",
                self.unlisted_files.join(", ")
            )?;
        }
        let failed = self.failures().count();
        if failed == 0 {
            write!(f, "all {} variants verified", self.variants.len())
        } else {
            write!(f, "{failed} of {} variants FAILED", self.variants.len())
        }
    }
}

/// Where a variant's weights come from when writing.
#[derive(Debug, Clone)]
enum Payload {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Writes a bundle atomically: everything goes into a temporary folder beside the target, is
/// fsynced, then renamed into place. An existing target is replaced only with
/// [`BundleWriter::overwrite`], and then only after the new bundle is complete: the old one is
/// renamed aside, the new one renamed in, and the old one removed. On any failure the target is
/// left as it was and the temporary folder is removed.
///
/// `sha256` and `model_bytes` of every variant are filled in from the bytes written.
#[derive(Debug, Clone)]
pub struct BundleWriter {
    manifest: ManifestFile,
    payloads: Vec<(String, Payload)>,
    overwrite: bool,
}

impl BundleWriter {
    /// Starts a bundle from `manifest`: its header (family, reference, budget, tiers) is kept;
    /// add the variants with [`BundleWriter::add_variant`] or
    /// [`BundleWriter::add_variant_file`] (a variant already in `manifest` has no weights and
    /// makes [`BundleWriter::write`] fail).
    pub fn new(manifest: ManifestFile) -> Self {
        BundleWriter {
            manifest,
            payloads: Vec::new(),
            overwrite: false,
        }
    }

    /// Adds a variant whose weights are `weights`.
    pub fn add_variant(&mut self, variant: Variant, weights: Vec<u8>) -> &mut Self {
        self.payloads
            .push((variant.id.clone(), Payload::Bytes(weights)));
        self.manifest.variants.push(variant);
        self
    }

    /// Adds a variant whose weights are copied from the file at `source` when writing.
    pub fn add_variant_file(&mut self, variant: Variant, source: impl Into<PathBuf>) -> &mut Self {
        self.payloads
            .push((variant.id.clone(), Payload::File(source.into())));
        self.manifest.variants.push(variant);
        self
    }

    /// Allows replacing an existing bundle at the target (default: refuse).
    pub fn overwrite(&mut self, yes: bool) -> &mut Self {
        self.overwrite = yes;
        self
    }

    /// Writes the bundle to the folder `target` and returns it opened.
    ///
    /// # Errors
    /// [`Error::InvalidTarget`], [`Error::TargetExists`], [`Error::InvalidManifest`] (a variant
    /// without weights, or any other validation failure), [`Error::BadFileName`], or
    /// [`Error::Io`] (the target is then untouched).
    pub fn write(&self, target: &Path) -> Result<Bundle> {
        let manifest_path = target.join(MANIFEST_FILE_NAME);
        let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Err(Error::InvalidTarget {
                path: target.into(),
                reason: "it has no final folder name (give e.g. `out/bundle`)",
            });
        };
        // Check names (in `check_structure`) and structure before touching the disk: a bad name
        // must never be joined to a path. Sizes and hashes are not known yet, so give placeholders.
        let mut pre = self.manifest.clone();
        for v in &mut pre.variants {
            v.model_bytes = v.model_bytes.max(1);
        }
        check_structure(&pre, &manifest_path)?;
        for (i, v) in self.manifest.variants.iter().enumerate() {
            let n = self.payloads.iter().filter(|(id, _)| *id == v.id).count();
            if n != 1 {
                return Err(Error::InvalidManifest {
                    path: manifest_path,
                    field: format!("variants[{i}]"),
                    reason: format!(
                        "variant `{}` has {n} weight payloads; add each variant once with add_variant",
                        v.id
                    ),
                });
            }
        }

        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let exists = target.symlink_metadata().is_ok();
        if exists {
            if !self.overwrite {
                return Err(Error::TargetExists {
                    path: target.into(),
                });
            }
            if !target.is_dir() {
                return Err(Error::InvalidTarget {
                    path: target.into(),
                    reason: "it exists and is not a folder; remove it first",
                });
            }
        }
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, "create folder", e))?;

        let tmp = TempDir::create(&parent, &name, "tmp")?;
        let mut file = self.manifest.clone();
        for v in &mut file.variants {
            let payload = self
                .payloads
                .iter()
                .find(|(id, _)| *id == v.id)
                .map(|(_, p)| p)
                .ok_or_else(|| Error::InvalidManifest {
                    path: manifest_path.clone(),
                    field: "variants".into(),
                    reason: format!("variant `{}` has no weights", v.id),
                })?;
            let (len, sha) = write_payload(&tmp.path.join(&v.file), payload)?;
            v.model_bytes = len;
            v.sha256 = sha;
        }
        let manifest = Manifest::validate_at(file, &manifest_path)?;
        write_synced(
            &tmp.path.join(MANIFEST_FILE_NAME),
            manifest.to_json_pretty().as_bytes(),
        )?;
        sync_dir(&tmp.path)?;

        if exists {
            let aside = TempDir::reserve(&parent, &name, "old");
            fs::rename(target, &aside)
                .map_err(|e| Error::io(target, "move the old bundle aside", e))?;
            if let Err(e) = fs::rename(&tmp.path, target) {
                // Put the old bundle back; the new one is removed with `tmp`.
                let _ = fs::rename(&aside, target);
                return Err(Error::io(target, "rename the new bundle into place", e));
            }
            tmp.disarm();
            // The new bundle is in place; a leftover old folder is only clutter.
            let _ = fs::remove_dir_all(&aside);
        } else {
            fs::rename(&tmp.path, target)
                .map_err(|e| Error::io(target, "rename the new bundle into place", e))?;
            tmp.disarm();
        }
        sync_dir(&parent)?;
        Ok(Bundle {
            dir: target.to_path_buf(),
            manifest,
        })
    }
}

/// Writes `payload` to `dest`, fsyncs it, and returns its length and sha256.
fn write_payload(dest: &Path, payload: &Payload) -> Result<(u64, String)> {
    match payload {
        Payload::Bytes(bytes) => {
            write_synced(dest, bytes)?;
            Ok((bytes.len() as u64, hex(&Sha256::digest(bytes))))
        }
        Payload::File(src) => {
            let mut input = File::open(src).map_err(|e| Error::io(src, "read weights from", e))?;
            let mut out = File::create(dest).map_err(|e| Error::io(dest, "create", e))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut len = 0u64;
            loop {
                let n = input
                    .read(&mut buf)
                    .map_err(|e| Error::io(src, "read weights from", e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| Error::io(dest, "write", e))?;
                len += n as u64;
            }
            out.sync_all().map_err(|e| Error::io(dest, "fsync", e))?;
            Ok((len, hex(&hasher.finalize())))
        }
    }
}

/// Creates `path` with `bytes` and fsyncs it ([`netspec::fsio::write_synced`]).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    netspec::fsio::write_synced(path, bytes).map_err(|e| Error::io(path, "write", e))
}

/// Fsyncs a folder so a rename inside it is durable ([`netspec::fsio::sync_dir`]).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    netspec::fsio::sync_dir(dir).map_err(|e| Error::io(dir, "fsync folder", e))
}

/// A unique hidden name beside a target ([`netspec::fsio::sibling_name`]).
pub(crate) fn sibling_name(parent: &Path, name: &str, tag: &str) -> PathBuf {
    netspec::fsio::sibling_name(parent, name, tag)
}

/// A temporary folder removed on drop unless disarmed.
struct TempDir {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl TempDir {
    fn create(parent: &Path, name: &str, tag: &str) -> Result<Self> {
        let path = sibling_name(parent, name, tag);
        fs::create_dir(&path).map_err(|e| Error::io(&path, "create temporary folder", e))?;
        Ok(TempDir {
            path,
            armed: std::cell::Cell::new(true),
        })
    }
    fn reserve(parent: &Path, name: &str, tag: &str) -> PathBuf {
        sibling_name(parent, name, tag)
    }
    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;

    fn writer() -> BundleWriter {
        let mut file = sample();
        let variants = std::mem::take(&mut file.variants);
        let mut w = BundleWriter::new(file);
        for v in variants {
            let bytes = format!("weights of {}", v.id).into_bytes();
            w.add_variant(v, bytes);
        }
        w
    }

    #[test]
    fn write_open_read_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("b");
        let written = writer().write(&target).unwrap();
        let b = Bundle::open(&target).unwrap();
        assert_eq!(b.manifest(), written.manifest());
        assert_eq!(b.read_variant("small").unwrap(), b"weights of small");
        let v = b.variant("small").unwrap();
        assert_eq!(v.model_bytes, 16);
        assert_eq!(v.sha256, hex(&Sha256::digest(b"weights of small")));
        assert!(b.verify().is_ok());
        // Nothing but the bundle is left beside it.
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b")]);
    }

    #[test]
    fn unknown_variant_lists_the_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let b = writer().write(&tmp.path().join("b")).unwrap();
        let e = b.read_variant("huge").unwrap_err().to_string();
        assert!(e.contains("huge") && e.contains("large, small"), "{e}");
    }

    #[test]
    fn refuses_existing_target_unless_overwrite() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("b");
        writer().write(&target).unwrap();
        let e = writer().write(&target).unwrap_err();
        assert!(matches!(e, Error::TargetExists { .. }), "{e:?}");
        let mut w = writer();
        w.manifest.bundle_version = "2".into();
        w.overwrite(true).write(&target).unwrap();
        assert_eq!(
            Bundle::open(&target).unwrap().manifest().bundle_version(),
            "2"
        );
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "old copy left behind"
        );
    }

    #[test]
    fn bad_names_and_missing_weights_write_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = writer();
        w.manifest.variants[0].file = "../escape".into();
        let e = w.write(&tmp.path().join("b")).unwrap_err();
        assert!(matches!(e, Error::BadFileName { .. }), "{e:?}");
        let mut w = writer();
        w.payloads.pop();
        let e = w.write(&tmp.path().join("b")).unwrap_err().to_string();
        assert!(e.contains("0 weight payloads"), "{e}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn target_without_name_is_rejected() {
        let e = writer().write(Path::new("..")).unwrap_err();
        assert!(matches!(e, Error::InvalidTarget { .. }), "{e:?}");
    }
}
