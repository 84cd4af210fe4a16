//! Training the supernet once: sandwich rule with in-place distillation (BigNAS) or
//! progressive shrinking (Once-for-All), with checkpoints and `--resume`.

pub mod checkpoint;
pub mod checksum;
pub mod config;
pub mod eval;
pub mod loss;
pub mod optim;
pub mod parallel;
pub mod sampling;
pub mod schedule;
mod split;
pub mod step;
pub mod trainer;

pub use checkpoint::{Checkpoint, TrainState};
pub use config::{
    MIN_CALIB_IMAGES, Method, OptimizerConfig, ResolutionSchedule, SandwichSchedule, TrainConfig,
};
pub use eval::{evaluate, recalibrate_bn};
pub use step::{Distillation, Step, StepOutcome, StepTimes, train_step};
pub use trainer::{EpochMetrics, TrainOptions, TrainSummary, train};
