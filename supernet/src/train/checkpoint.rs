//! Checkpoints: one folder per epoch, written into a temp folder and renamed into place, plus a
//! `latest` pointer replaced atomically. A crash at any moment leaves every earlier checkpoint
//! intact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::optim::Optimizer;
use crate::data::DatasetFormat;
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::space::SearchSpace;

/// `format_version` of `state.json`.
pub const CHECKPOINT_FORMAT_VERSION: u32 = 1;

/// What a checkpoint records besides weights: enough to resume exactly and to evaluate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// [`CHECKPOINT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The run's config.
    pub config: TrainConfig,
    /// The resolved search space.
    pub space: SearchSpace,
    /// Epochs completed.
    pub epochs_done: usize,
    /// Optimizer steps taken.
    pub global_step: usize,
    /// Total steps of the run.
    pub total_steps: usize,
    /// Whether the channels have been sorted (progressive shrinking, expand phase).
    pub channels_sorted: bool,
    /// The state of the run's RNG stream for the next epoch (ChaCha8).
    pub rng: rand_chacha::ChaCha8Rng,
    /// Normalisation mean per channel.
    pub mean: Vec<f32>,
    /// Normalisation std per channel.
    pub std: Vec<f32>,
    /// Class names.
    pub class_names: Vec<String>,
    /// Data folder the run trained on.
    pub data_dir: PathBuf,
    /// Its format.
    pub data_format: DatasetFormat,
    /// Training seconds so far (across resumes).
    pub elapsed_s: f64,
    /// SHA-256 (hex) of each file of the checkpoint folder (`model.bpk`, `optim.bin`,
    /// `teacher.bpk`), checked when the checkpoint is opened; empty in checkpoints written
    /// before checksums existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files_sha256: BTreeMap<String, String>,
}

/// Files of a checkpoint folder that carry a checksum.
const CHECKSUMMED: [&str; 3] = ["model.bpk", "optim.bin", "teacher.bpk"];

/// The longest `latest` pointer we read.
const MAX_LATEST_BYTES: u64 = 64;
/// The largest `state.json` we read.
const MAX_STATE_BYTES: u64 = 16 << 20;

/// Whether `name` is a plain checkpoint folder name (`epoch-` and digits): the only thing a
/// `latest` pointer may name, so it can never lead out of the run folder.
fn is_epoch_name(name: &str) -> bool {
    name.strip_prefix("epoch-")
        .is_some_and(|d| !d.is_empty() && d.len() <= 9 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The epoch folders of a checkpoints root, newest first (real folders only, not links).
fn epoch_dirs(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_epoch_name)
        })
        .collect();
    v.sort();
    v.reverse();
    v
}

/// A checkpoint folder on disk.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The epoch folder (holding `model.bpk`, `optim.bin`, `state.json`, maybe `teacher.bpk`).
    pub dir: PathBuf,
    /// Its state.
    pub state: TrainState,
}

/// [`netspec::fsio::write_atomic`] with this crate's error.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    netspec::fsio::write_atomic(path, bytes).map_err(|e| Error::io(path, e))
}

impl Checkpoint {
    /// Folder holding all checkpoints of a run.
    pub fn root(run_dir: &Path) -> PathBuf {
        run_dir.join("checkpoints")
    }

    /// Writes a checkpoint for `state.epochs_done` and points `latest` at it. Keeps the newest
    /// `keep` epoch folders.
    ///
    /// # Errors
    /// I/O errors naming the file; nothing earlier is touched on failure.
    pub fn write(
        run_dir: &Path,
        state: &TrainState,
        model: &Supernet,
        optim: &Optimizer,
        teacher: Option<&Supernet>,
        keep: usize,
    ) -> Result<PathBuf> {
        let root = Self::root(run_dir);
        std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
        let name = format!("epoch-{:04}", state.epochs_done);
        // a fixed name, so a half-written folder of a killed run is removed by the next write
        let tmp = root.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        save_model(model, &tmp.join("model.bpk"))?;
        if let Some(t) = teacher {
            save_model(t, &tmp.join("teacher.bpk"))?;
        }
        optim.save(&tmp.join("optim.bin"))?;
        let mut state = state.clone();
        state.files_sha256.clear();
        for f in CHECKSUMMED {
            let p = tmp.join(f);
            if p.exists() {
                state
                    .files_sha256
                    .insert(f.to_string(), super::checksum::sha256_file(&p)?);
            }
        }
        let js = serde_json::to_vec_pretty(&state).map_err(|source| Error::Json {
            path: tmp.join("state.json"),
            source,
        })?;
        write_atomic(&tmp.join("state.json"), &js)?;
        let dst = root.join(&name);
        if dst.exists() {
            let _ = std::fs::remove_dir_all(&dst);
        }
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        netspec::fsio::sync_dir(&root).map_err(|e| Error::io(&root, e))?;
        write_atomic(&root.join("latest"), name.as_bytes())?;
        // prune old epochs (never the one just written)
        let mut epochs: Vec<PathBuf> = std::fs::read_dir(&root)
            .map_err(|e| Error::io(&root, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("epoch-"))
            })
            .collect();
        epochs.retain(|p| p != &dst);
        epochs.sort();
        while epochs.len() + 1 > keep.max(1) && !epochs.is_empty() {
            let old = epochs.remove(0);
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(dst)
    }

    /// Opens a checkpoint: a run folder (its `checkpoints/latest`), a `checkpoints` folder, or an
    /// epoch folder. Every file's checksum is checked.
    ///
    /// # Errors
    /// Nothing there, a `latest` pointer that is not a plain `epoch-NNNN` name or names a
    /// missing folder, a malformed / newer `state.json`, or a file whose checksum differs
    /// (each error names the file).
    pub fn open(path: &Path) -> Result<Checkpoint> {
        if path.join("state.json").is_file() {
            return Self::open_epoch(path);
        }
        let root = if path.join("latest").exists() {
            path.to_path_buf()
        } else {
            Self::root(path)
        };
        let latest = root.join("latest");
        if !latest.exists() {
            return Err(Error::Data {
                path: path.into(),
                reason: format!(
                    "no checkpoint here ({} does not exist); pass a run folder written by \
                     `tierforge train`",
                    latest.display()
                ),
            });
        }
        let name = crate::data::read::read_text_bounded(&latest, MAX_LATEST_BYTES)?;
        let name = name.trim();
        if !is_epoch_name(name) {
            return Err(Error::Data {
                path: latest,
                reason: format!(
                    "names {name:?}, not a checkpoint folder of this run (epoch-NNNN); the \
                     pointer is damaged: write the newest epoch folder's name into it"
                ),
            });
        }
        let dir = root.join(name);
        let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Err(Error::Data {
                path: dir,
                reason: format!(
                    "{} names this checkpoint folder, which is missing (or not a folder); \
                     restore it, or pass --resume-previous to continue from the newest intact \
                     earlier checkpoint",
                    latest.display()
                ),
            });
        }
        Self::open_epoch(&dir)
    }

    /// Finds the checkpoint to resume a run from.
    ///
    /// # Errors
    /// `Ok(None)` only when the run has no checkpoint at all (no `latest`, no epoch folder);
    /// a damaged one is an error naming the file, never "none".
    pub fn find(run_dir: &Path) -> Result<Option<Checkpoint>> {
        let root = Self::root(run_dir);
        let latest = root.join("latest");
        if std::fs::symlink_metadata(&latest).is_err() {
            if let Some(d) = epoch_dirs(&root).first() {
                return Err(Error::Data {
                    path: latest,
                    reason: format!(
                        "is missing but {} exists; pass --resume-previous to continue from the \
                         newest intact checkpoint",
                        d.display()
                    ),
                });
            }
            return Ok(None);
        }
        Self::open(run_dir).map(Some)
    }

    /// The newest epoch folder of the run that opens and whose checksums match (for
    /// `--resume-previous`), with the reasons the newer ones were skipped.
    ///
    /// # Errors
    /// No intact checkpoint at all.
    pub fn open_newest_intact(run_dir: &Path) -> Result<(Checkpoint, Vec<Error>)> {
        let root = Self::root(run_dir);
        let mut skipped = Vec::new();
        for d in epoch_dirs(&root) {
            match Self::open_epoch(&d) {
                Ok(ck) => return Ok((ck, skipped)),
                Err(e) => skipped.push(e),
            }
        }
        Err(Error::Data {
            path: root,
            reason: format!(
                "no intact checkpoint to resume from ({} damaged); start a new run with --force",
                skipped.len()
            ),
        })
    }

    /// Points the run's `latest` at this checkpoint (after `--resume-previous` chose it over a
    /// damaged newer one).
    ///
    /// # Errors
    /// I/O errors naming the file.
    pub fn make_latest(&self) -> Result<()> {
        let (Some(root), Some(name)) = (self.dir.parent(), self.dir.file_name()) else {
            return Err(Error::Data {
                path: self.dir.clone(),
                reason: "a checkpoint folder has a parent and a name".into(),
            });
        };
        write_atomic(&root.join("latest"), name.to_string_lossy().as_bytes())
    }

    /// Opens one epoch folder and checks its files' checksums.
    fn open_epoch(dir: &Path) -> Result<Checkpoint> {
        let sp = dir.join("state.json");
        let text = crate::data::read::read_text_bounded(&sp, MAX_STATE_BYTES)?;
        let state: TrainState = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: sp.clone(),
            source,
        })?;
        if state.format_version != CHECKPOINT_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: sp,
                found: state.format_version,
                supported: CHECKPOINT_FORMAT_VERSION,
            });
        }
        for (f, want) in &state.files_sha256 {
            if !CHECKSUMMED.contains(&f.as_str()) {
                return Err(Error::Data {
                    path: sp,
                    reason: format!("files_sha256 names {f:?}, not a checkpoint file"),
                });
            }
            let p = dir.join(f);
            let got = super::checksum::sha256_file(&p)?;
            if &got != want {
                return Err(Error::Load {
                    path: p,
                    reason: format!(
                        "the file is damaged: its sha256 is {got}, {} records {want}; restore \
                         it, or resume with --resume-previous",
                        sp.display()
                    ),
                });
            }
        }
        Ok(Checkpoint {
            dir: dir.to_path_buf(),
            state,
        })
    }

    /// Loads the supernet weights onto `device`.
    ///
    /// # Errors
    /// A missing or corrupt `model.bpk`.
    pub fn load_model(&self, device: &Device) -> Result<Supernet> {
        load_model(&self.state.space, &self.dir.join("model.bpk"), device)
    }

    /// Loads the frozen teacher (progressive shrinking), if the checkpoint has one.
    ///
    /// # Errors
    /// A corrupt `teacher.bpk`.
    pub fn load_teacher(&self, device: &Device) -> Result<Option<Supernet>> {
        let p = self.dir.join("teacher.bpk");
        if p.exists() {
            load_model(&self.state.space, &p, device).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Loads the optimizer state onto `device` (the inner, non-autodiff device).
    ///
    /// # Errors
    /// A missing or corrupt `optim.bin`.
    pub fn load_optimizer(&self, device: &Device) -> Result<Optimizer> {
        Optimizer::load(&self.dir.join("optim.bin"), device)
    }
}

/// Saves supernet weights (burnpack, bit-exact) to `path` durably: a temp file beside it,
/// fsynced, renamed over `path`, the folder fsynced.
///
/// # Errors
/// I/O errors.
pub fn save_model(model: &Supernet, path: &Path) -> Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    model.clone().save_file(&tmp).map_err(|e| Error::Load {
        path: tmp.clone(),
        reason: format!("cannot write: {e}"),
    })?;
    netspec::fsio::sync_file(&tmp).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    netspec::fsio::sync_dir(dir.unwrap_or(Path::new("."))).map_err(|e| Error::io(path, e))
}

/// Loads supernet weights for `space` from `path`.
///
/// # Errors
/// A missing or corrupt file, or weights of another shape.
pub fn load_model(space: &SearchSpace, path: &Path, device: &Device) -> Result<Supernet> {
    if !path.is_file() {
        return Err(Error::Load {
            path: path.into(),
            reason: "file not found".into(),
        });
    }
    let fresh = Supernet::new(space, 0, device)?;
    fresh.try_load_file(path).map_err(|e| Error::Load {
        path: path.into(),
        reason: format!("{e}; the file is damaged or from another search space"),
    })
}
