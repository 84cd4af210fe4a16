//! Training the supernet once: sandwich rule with in-place distillation (BigNAS) or
//! progressive shrinking (Once-for-All), with checkpoints and `--resume`.

pub mod checkpoint;
pub mod checksum;
pub mod config;
pub mod eval;
pub mod loss;
pub mod optim;
pub mod schedule;
pub mod trainer;

pub use checkpoint::{Checkpoint, TrainState};
pub use config::{MIN_CALIB_IMAGES, Method, OptimizerConfig, SandwichSchedule, TrainConfig};
pub use eval::{evaluate, recalibrate_bn};
pub use trainer::{EpochMetrics, TrainSummary, train};
