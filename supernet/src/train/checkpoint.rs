//! Checkpoints: one folder per epoch, written into a temp folder and renamed into place, plus a
//! `latest` pointer replaced atomically. A crash at any moment leaves every earlier checkpoint
//! intact.

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
}

/// A checkpoint folder on disk.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The epoch folder (holding `model.bpk`, `optim.bin`, `state.json`, maybe `teacher.bpk`).
    pub dir: PathBuf,
    /// Its state.
    pub state: TrainState,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
        let tmp = root.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        save_model(model, &tmp.join("model.bpk"))?;
        if let Some(t) = teacher {
            save_model(t, &tmp.join("teacher.bpk"))?;
        }
        optim.save(&tmp.join("optim.bin"))?;
        let js = serde_json::to_vec_pretty(state).map_err(|source| Error::Json {
            path: tmp.join("state.json"),
            source,
        })?;
        write_atomic(&tmp.join("state.json"), &js)?;
        let dst = root.join(&name);
        if dst.exists() {
            let _ = std::fs::remove_dir_all(&dst);
        }
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        if let Ok(d) = std::fs::File::open(&root) {
            let _ = d.sync_all();
        }
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
        epochs.sort();
        while epochs.len() > keep.max(1) {
            let old = epochs.remove(0);
            let _ = std::fs::remove_dir_all(old);
        }
        Ok(dst)
    }

    /// Opens a checkpoint: a run folder (its `checkpoints/latest`), a `checkpoints` folder, or an
    /// epoch folder.
    ///
    /// # Errors
    /// Nothing there, or a malformed / newer `state.json`.
    pub fn open(path: &Path) -> Result<Checkpoint> {
        let dir = if path.join("state.json").is_file() {
            path.to_path_buf()
        } else {
            let root = if path.join("latest").is_file() {
                path.to_path_buf()
            } else {
                Self::root(path)
            };
            let latest = root.join("latest");
            let name = std::fs::read_to_string(&latest).map_err(|e| Error::Data {
                path: path.into(),
                reason: format!(
                    "no checkpoint here ({}: {e}); pass a run folder written by `tierforge train`",
                    latest.display()
                ),
            })?;
            root.join(name.trim())
        };
        let sp = dir.join("state.json");
        let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
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
        Ok(Checkpoint { dir, state })
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

/// Saves supernet weights (burnpack, bit-exact) to `path` via a temp file.
///
/// # Errors
/// I/O errors.
pub fn save_model(model: &Supernet, path: &Path) -> Result<()> {
    let tmp = path.with_extension("bpk.tmp");
    model.clone().save_file(&tmp).map_err(|e| Error::Load {
        path: tmp.clone(),
        reason: format!("cannot write: {e:?}"),
    })?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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
        reason: format!("{e:?}"),
    })
}
