//! The training config (JSON, validated).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Augment;
use crate::error::{Error, Result};
use crate::space::SearchSpace;

/// `format_version` of training configs.
pub const TRAIN_FORMAT_VERSION: u32 = 1;

/// How the supernet is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// BigNAS sandwich rule: largest + smallest + N random sub-nets per step, the children
    /// distilled from the largest's detached logits.
    Sandwich,
    /// OFA progressive shrinking: full net → elastic kernel → elastic depth → elastic expand,
    /// distilled from the frozen full net; channels sorted before the expand phase.
    Progressive,
    /// One fixed sub-net (`standalone_arch`) trained alone with the same recipe: the baseline a
    /// family tier is compared with.
    Standalone,
}

/// Which children a sandwich step trains besides the largest sub-net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SandwichSchedule {
    /// The smallest and `sandwich_random` random sub-nets every step (BigNAS).
    #[default]
    Full,
    /// One child per step, alternating the smallest and a random sub-net: about half the cost
    /// of `Full` with one random child, and the middle of the family still gets trained.
    Alternate,
}

/// The optimizer and its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// SGD with (Nesterov) momentum, PyTorch semantics.
    Sgd {
        /// Peak learning rate.
        lr: f64,
        /// Momentum.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay (not on BN, biases or kernel transforms).
        weight_decay: f64,
    },
    /// AdamW (decoupled weight decay).
    Adamw {
        /// Peak learning rate.
        lr: f64,
        /// β₁.
        beta1: f64,
        /// β₂.
        beta2: f64,
        /// ε.
        epsilon: f64,
        /// Decoupled weight decay (not on BN, biases or kernel transforms).
        weight_decay: f64,
    },
}

impl OptimizerConfig {
    /// Sets the peak learning rate.
    pub fn set_lr(&mut self, value: f64) {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adamw { lr, .. } => *lr = value,
        }
    }

    /// Peak learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { lr, .. } | OptimizerConfig::Adamw { lr, .. } => *lr,
        }
    }
}

/// Everything a training run needs besides the data; stored in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// [`TRAIN_FORMAT_VERSION`].
    pub format_version: u32,
    /// Seed of every random choice (weights, data order, augmentation, sampled sub-nets).
    pub seed: u64,
    /// Epochs over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Sandwich rule or progressive shrinking.
    pub method: Method,
    /// Random sub-nets per sandwich step (besides the largest and the smallest).
    pub sandwich_random: usize,
    /// Which children a sandwich step trains.
    pub sandwich_schedule: SandwichSchedule,
    /// Sub-nets sampled per progressive-shrinking step.
    pub ps_subnets_per_step: usize,
    /// Fractions of all steps for the four PS phases (full, kernel, depth, expand).
    pub ps_phases: [f64; 4],
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Linear warm-up, in epochs (may be fractional).
    pub warmup_epochs: f64,
    /// Label smoothing of the largest sub-net's cross-entropy.
    pub label_smoothing: f64,
    /// Augmentation.
    pub augment: Augment,
    /// Use only the first N training images (None: all).
    pub train_limit: Option<usize>,
    /// Evaluate on at most N test images per epoch (None: all).
    pub eval_limit: Option<usize>,
    /// Training images used to recalibrate BN before each evaluation.
    pub calib_images: usize,
    /// Search space; None: the default for the dataset's shape.
    pub space: Option<SearchSpace>,
    /// The sub-net trained by [`Method::Standalone`].
    pub standalone_arch: Option<crate::space::ArchConfig>,
    /// Start from this checkpoint's weights (a run folder or a checkpoint folder) instead of
    /// random ones. With [`Method::Standalone`] this fine-tunes one sub-net of a trained family
    /// and distils from the family's largest sub-net (frozen): a short post-extraction
    /// fine-tune. The search space must be the checkpoint's.
    pub init_from: Option<std::path::PathBuf>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            format_version: TRAIN_FORMAT_VERSION,
            seed: 42,
            epochs: 10,
            batch_size: 64,
            method: Method::Sandwich,
            sandwich_random: 2,
            sandwich_schedule: SandwichSchedule::Full,
            ps_subnets_per_step: 2,
            ps_phases: [0.25, 0.25, 0.25, 0.25],
            optimizer: OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 4e-5,
            },
            warmup_epochs: 0.3,
            label_smoothing: 0.1,
            augment: Augment::default(),
            train_limit: None,
            eval_limit: None,
            calib_images: 2000,
            space: None,
            standalone_arch: None,
            init_from: None,
        }
    }
}

impl TrainConfig {
    /// Reads and validates a config file.
    ///
    /// # Errors
    /// I/O, malformed JSON (naming the field), wrong version, or a failed validation.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let cfg: TrainConfig = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        if cfg.format_version != TRAIN_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: cfg.format_version,
                supported: TRAIN_FORMAT_VERSION,
            });
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |r: &str| Err(Error::config("training config", r.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be ≥ 1");
        }
        if self.batch_size < 2 {
            return bad("batch_size must be ≥ 2 (batch norm needs it)");
        }
        if !(self.optimizer.lr() > 0.0 && self.optimizer.lr() < 10.0) {
            return bad("optimizer.lr must be in (0, 10)");
        }
        if !(0.0..1.0).contains(&self.label_smoothing) {
            return bad("label_smoothing must be in [0, 1)");
        }
        let s: f64 = self.ps_phases.iter().sum();
        if self.ps_phases.iter().any(|&p| p < 0.0) || (s - 1.0).abs() > 1e-6 {
            return bad("ps_phases must be 4 non-negative fractions summing to 1");
        }
        if self.calib_images < self.batch_size.min(2) {
            return bad("calib_images must be ≥ 2");
        }
        if let Some(sp) = &self.space {
            sp.validate()?;
            if let Some(a) = &self.standalone_arch {
                a.validate(sp)?;
            }
        }
        if self.method == Method::Standalone && self.standalone_arch.is_none() {
            return bad("method \"standalone\" needs standalone_arch (an arch JSON object)");
        }
        Ok(())
    }
}
