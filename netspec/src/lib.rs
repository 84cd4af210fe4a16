//! # netspec
//!
//! What the trainer and the phone share, with no tensor library: the once-for-all search space
//! ([`SearchSpace`]) and its sub-nets ([`ArchConfig`]) with exact parameter, MAC and
//! peak-activation counts; the BN-folded network a bundle ships ([`FoldedNet`]) and its weights
//! codec (safetensors, F32 or per-channel I8); int8 (de)quantisation; and image preprocessing
//! ([`preprocess::prepare_image`]: an app's u8 image of any size → the network's input).
//!
//! `supernet` (training, extraction) and `runtime` (the phone) both build on it; nothing here
//! depends on burn. Random sub-net sampling is behind the feature `sample`.
//!
//! ```
//! use netspec::{ArchConfig, SearchSpace, arch_cost};
//! let space = SearchSpace::default_for(1, 10, 28);
//! let largest = arch_cost(&space, &ArchConfig::max(&space));
//! let smallest = arch_cost(&space, &ArchConfig::min(&space));
//! assert!(largest.macs > smallest.macs);
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod folded;
pub mod fsio;
pub mod preprocess;
pub mod quant;
pub mod space;
pub mod weights;

pub use error::{Error, Result};
pub use folded::{
    FOLDED_FORMAT, FoldedBlock, FoldedConv, FoldedNet, block_has_residual, conv_names, name_layers,
};
pub use preprocess::{ImageRef, InputSpec, prepare_image};
pub use quant::{dequantize_per_channel, quantize_per_channel};
pub use space::{
    Act, ArchConfig, ArchCost, HEAD_ACT, LayerKind, LayerSpec, SPACE_FORMAT_VERSION, STEM_ACT,
    SearchSpace, StageSpec, arch_cost, layers,
};
pub use weights::{DType, StoredTensor};
