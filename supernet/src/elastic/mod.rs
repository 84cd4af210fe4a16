//! Elastic layers: each holds max-size weights and runs an active slice of them.
//!
//! Gradients flow only into the active slice (slicing is differentiable), so every sub-net
//! trains the weights it shares with all the others.

pub mod bn;
pub mod bn_op;
pub mod conv;
pub mod dw_op;
pub mod dwconv;
pub(crate) mod init;
pub mod pw_op;

pub use bn::{BnMode, ElasticBatchNorm};
pub use conv::ElasticConv;
pub use dwconv::ElasticDepthwise;
