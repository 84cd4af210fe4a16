//! # supernet
//!
//! The once-for-all search space ([`SearchSpace`], [`ArchConfig`]), exact cost counting, the
//! elastic supernet whose sub-networks share one set of max-size weights, and (feature `train`)
//! data loading and the trainers (sandwich rule with in-place distillation, or OFA progressive
//! shrinking).
//!
//! ```
//! use supernet::{ArchConfig, SearchSpace, arch_cost};
//! let space = SearchSpace::default_for(1, 10, 28);
//! let largest = arch_cost(&space, &ArchConfig::max(&space));
//! let smallest = arch_cost(&space, &ArchConfig::min(&space));
//! assert!(largest.macs > smallest.macs);
//! ```
#![warn(missing_docs)]

pub mod error;
/// Image preprocessing (from `netspec`, shared with the runtime).
pub use netspec::preprocess;
/// The search space and archs with exact costs (from `netspec`, shared with the runtime).
pub use netspec::space;
/// The variant weights codec (from `netspec`, shared with the runtime).
pub use netspec::weights;
pub use netspec::{FoldedNet, quantize_per_channel};

pub use error::{Error, Result};
pub use space::{
    Act, ArchConfig, ArchCost, HEAD_ACT, LayerKind, LayerSpec, SPACE_FORMAT_VERSION, STEM_ACT,
    SearchSpace, StageSpec, arch_cost, layers,
};
pub mod block;
pub mod elastic;
pub mod net;
pub mod progress;
pub use elastic::BnMode;
pub use net::Supernet;
#[cfg(feature = "train")]
pub mod data;
#[cfg(feature = "train")]
pub mod train;

pub mod device;
pub use device::{ComputeDevice, default_device};
pub mod plain;
pub use plain::PlainNet;
