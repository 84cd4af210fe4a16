//! Depthwise 2D convolution (`groups = channels`, weight `[C, 1, k, k]`, padding `k/2`,
//! dilation 1, no bias) with a hand-written forward *and* backward for the flex CPU backend.
//!
//! burn-flex computes the depthwise input gradient through a generic `conv_transpose3d`, which
//! dominated a training step. With the `fast-dw` feature, this module registers a backend
//! extension (`#[backend_extension(Flex, Autodiff)]`, burn's `extension` feature): the flex
//! implementation runs direct NCHW stencil loops (see `kernels.rs`), one `(n, c)` plane per
//! rayon task on the current pool, compiled for the CPU's SIMD level through `pulp` (AVX2 on
//! x86-64), and the `Autodiff<Flex, C>` implementation records its own backward step (grad x
//! and grad w by direct loops, both in one pass over the planes). Results match `conv2d` up to
//! float summation order (≈1e-6 relative), deterministically.
//!
//! Any other backend (cuda / wgpu features), dtype, or shape falls back to
//! [`depthwise_conv2d_reference`], i.e. `burn::tensor::module::conv2d` with `groups = C`.
//!
//! Files: `geom.rs` (the shapes the direct kernels take), `kernels.rs` (the plain-slice loops),
//! `backend.rs` (the backend extension and its flex implementation), `autodiff.rs` (the
//! recorded backward step), `tests.rs` (both paths agree), `timing.rs` (an ignored benchmark).

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "fast-dw")]
mod autodiff;
#[cfg(feature = "fast-dw")]
mod backend;
mod geom;
#[cfg_attr(not(feature = "fast-dw"), allow(dead_code))]
mod kernels;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod timing;

/// `x: [n, c, h, w]`, `w: [c, 1, k, k]` (k odd) → `[n, c, ⌈h/stride⌉, ⌈w/stride⌉]`.
///
/// Uses the direct flex kernels when the `fast-dw` feature is on and the tensors live on the
/// flex backend (with or without autodiff); otherwise [`depthwise_conv2d_reference`].
pub fn depthwise_conv2d(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    #[cfg(test)]
    if tests::FORCE_REFERENCE.with(|f| f.get()) {
        return depthwise_conv2d_reference(x, w, stride);
    }
    #[cfg(feature = "fast-dw")]
    if backend::supported(&x, &w, stride) {
        return backend::run(x, w, stride);
    }
    depthwise_conv2d_reference(x, w, stride)
}

/// The generic path: `conv2d` with `groups = C`, padding `k/2`, no bias.
pub fn depthwise_conv2d_reference(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    let c = x.dims()[1];
    let k = w.dims()[2];
    conv2d(x, w, None, options(stride, k, c))
}

/// The conv2d options of a depthwise conv: padding `k/2`, `groups = c`.
fn options(stride: usize, k: usize, c: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [k / 2, k / 2], [1, 1], c)
}

/// Whether [`depthwise_conv2d`] uses the direct kernels (the `fast-dw` feature).
pub const FAST_DW_ENABLED: bool = cfg!(feature = "fast-dw");
