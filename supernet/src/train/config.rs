//! The training config (JSON, validated).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::Augment;
use crate::error::{Error, Result};
use crate::space::SearchSpace;

/// `format_version` of training configs.
pub const TRAIN_FORMAT_VERSION: u32 = 1;

/// Fewest images batch norm can be recalibrated on (`calib_images`, and every `--calib`).
pub const MIN_CALIB_IMAGES: usize = 2;
/// Most epochs a config may ask for.
pub const MAX_EPOCHS: usize = 10_000;
/// Largest `batch_size` (a bigger batch exhausts memory before it trains).
pub const MAX_BATCH_SIZE: usize = 4096;
/// Most sub-nets a step may train (`sandwich_random`, `ps_subnets_per_step`).
pub const MAX_SUBNETS_PER_STEP: usize = 16;
/// Largest augmentation padding, in pixels.
pub const MAX_AUGMENT_PAD: usize = 64;

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

/// Which input resolution a sandwich step's sub-nets run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionSchedule {
    /// The largest sub-net at the largest resolution, the smallest at the smallest, random
    /// children at random ones (BigNAS's and AlphaNet's sandwich).
    #[default]
    Ends,
    /// One random resolution per step for every sub-net of the step (Once-for-All's elastic
    /// resolution): the largest and the smallest sub-net's choices are trained at every
    /// resolution. In a short run `Ends` leaves both ends specialised to their own resolution
    /// (the smallest loses ≈ 8 pt at the largest resolution after the 2-epoch demo), so
    /// everything between them trails the smallest.
    PerStep,
    /// The largest sub-net at the largest resolution (the teacher stays what the flagship
    /// runs), every other sub-net of the step at one random resolution.
    ChildrenPerStep,
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
    /// Which resolution a sandwich step's sub-nets run at.
    pub resolution_schedule: ResolutionSchedule,
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
            resolution_schedule: ResolutionSchedule::Ends,
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
    /// Reads and validates a config file (at most 1 MiB, a regular file).
    ///
    /// # Errors
    /// I/O, malformed JSON (naming the field), wrong version, or a failed validation; each
    /// names `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = crate::data::read::read_text_bounded(path, 1 << 20)?;
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
        cfg.validate().map_err(|e| Error::Data {
            path: path.into(),
            reason: format!("{e}; fix that field in this file"),
        })?;
        Ok(cfg)
    }

    /// Checks the values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |r: String| Err(Error::config("training config", r));
        if !(1..=MAX_EPOCHS).contains(&self.epochs) {
            return bad(format!(
                "epochs = {} must be in 1..={MAX_EPOCHS}",
                self.epochs
            ));
        }
        if !(2..=MAX_BATCH_SIZE).contains(&self.batch_size) {
            return bad(format!(
                "batch_size = {} must be in 2..={MAX_BATCH_SIZE} (batch norm needs 2)",
                self.batch_size
            ));
        }
        let lr = self.optimizer.lr();
        if !(lr.is_finite() && lr > 0.0 && lr < 10.0) {
            return bad(format!(
                "optimizer.lr = {lr} must be a number in (0, 10), e.g. 0.1"
            ));
        }
        let unit = |name: &str, v: f64| -> Result<()> {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                bad(format!("{name} = {v} must be in [0, 1)"))
            }
        };
        match self.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                ..
            } => {
                unit("optimizer.momentum", momentum)?;
                unit("optimizer.weight_decay", weight_decay)?;
            }
            OptimizerConfig::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => {
                unit("optimizer.beta1", beta1)?;
                unit("optimizer.beta2", beta2)?;
                unit("optimizer.weight_decay", weight_decay)?;
                if !(epsilon > 0.0 && epsilon < 1.0) {
                    return bad(format!(
                        "optimizer.epsilon = {epsilon} must be in (0, 1), e.g. 1e-8"
                    ));
                }
            }
        }
        if !(self.warmup_epochs.is_finite()
            && self.warmup_epochs >= 0.0
            && self.warmup_epochs <= self.epochs as f64)
        {
            return bad(format!(
                "warmup_epochs = {} must be in [0, epochs = {}]",
                self.warmup_epochs, self.epochs
            ));
        }
        unit("label_smoothing", self.label_smoothing)?;
        let s: f64 = self.ps_phases.iter().sum();
        if self.ps_phases.iter().any(|&p| p.is_nan() || p < 0.0)
            || s.is_nan()
            || (s - 1.0).abs() > 1e-6
        {
            return bad(format!(
                "ps_phases = {:?} must be 4 non-negative fractions summing to 1",
                self.ps_phases
            ));
        }
        if self.sandwich_random > MAX_SUBNETS_PER_STEP {
            return bad(format!(
                "sandwich_random = {} must be in 0..={MAX_SUBNETS_PER_STEP}",
                self.sandwich_random
            ));
        }
        if !(1..=MAX_SUBNETS_PER_STEP).contains(&self.ps_subnets_per_step) {
            return bad(format!(
                "ps_subnets_per_step = {} must be in 1..={MAX_SUBNETS_PER_STEP}",
                self.ps_subnets_per_step
            ));
        }
        if self.augment.pad > MAX_AUGMENT_PAD {
            return bad(format!(
                "augment.pad = {} must be in 0..={MAX_AUGMENT_PAD}",
                self.augment.pad
            ));
        }
        if self.calib_images < MIN_CALIB_IMAGES {
            return bad(format!(
                "calib_images = {} must be ≥ {MIN_CALIB_IMAGES}",
                self.calib_images
            ));
        }
        for (name, v) in [
            ("train_limit", self.train_limit),
            ("eval_limit", self.eval_limit),
        ] {
            if v == Some(0) {
                return bad(format!(
                    "{name} = 0: give at least 1 image, or leave it out"
                ));
            }
        }
        if let Some(sp) = &self.space {
            sp.validate()?;
            if let Some(a) = &self.standalone_arch {
                a.validate(sp)?;
            }
        }
        if self.method == Method::Standalone && self.standalone_arch.is_none() {
            return bad(
                "method \"standalone\" needs standalone_arch (an arch JSON object)".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_values_name_the_field_and_the_range() {
        let cases: Vec<(&str, Box<dyn Fn(&mut TrainConfig)>)> = vec![
            ("epochs = 0", Box::new(|c| c.epochs = 0)),
            ("epochs = 99999999", Box::new(|c| c.epochs = 99_999_999)),
            ("batch_size = 100000", Box::new(|c| c.batch_size = 100_000)),
            (
                "optimizer.lr = NaN",
                Box::new(|c| c.optimizer.set_lr(f64::NAN)),
            ),
            ("optimizer.lr = -1", Box::new(|c| c.optimizer.set_lr(-1.0))),
            (
                "optimizer.momentum = 5",
                Box::new(|c| {
                    if let OptimizerConfig::Sgd { momentum, .. } = &mut c.optimizer {
                        *momentum = 5.0;
                    }
                }),
            ),
            ("warmup_epochs = -1", Box::new(|c| c.warmup_epochs = -1.0)),
            (
                "warmup_epochs = inf",
                Box::new(|c| c.warmup_epochs = f64::INFINITY),
            ),
            (
                "label_smoothing = NaN",
                Box::new(|c| c.label_smoothing = f64::NAN),
            ),
            ("calib_images = 0", Box::new(|c| c.calib_images = 0)),
            (
                "ps_phases",
                Box::new(|c| c.ps_phases = [f64::NAN, 0.5, 0.5, 0.0]),
            ),
            ("train_limit = 0", Box::new(|c| c.train_limit = Some(0))),
            ("augment.pad = 1000", Box::new(|c| c.augment.pad = 1000)),
        ];
        for (want, f) in cases {
            let mut c = TrainConfig::default();
            f(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        TrainConfig::default().validate().unwrap();
    }

    #[test]
    fn the_width_demo_config_is_the_demo_with_width_multipliers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let demo = TrainConfig::load(&root.join("configs/demo.json")).unwrap();
        let width = TrainConfig::load(&root.join("configs/width-demo.json")).unwrap();
        let (d, w) = (demo.space.clone().unwrap(), width.space.clone().unwrap());
        assert_eq!(d.width_multipliers, vec![1.0]);
        assert_eq!(w.width_multipliers, vec![0.5, 0.75, 1.0]);
        assert_eq!(
            SearchSpace {
                name: d.name.clone(),
                width_multipliers: d.width_multipliers.clone(),
                ..w.clone()
            },
            d
        );
        assert_eq!(
            TrainConfig {
                space: demo.space.clone(),
                ..width
            },
            demo
        );
    }

    #[test]
    fn a_bad_file_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cfg.json");
        std::fs::write(&p, r#"{"format_version": 1, "warmup_epochs": -1}"#).unwrap();
        let e = TrainConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("cfg.json") && e.contains("warmup_epochs = -1"),
            "{e}"
        );
    }
}
