//! Pointwise (1×1, stride 1, no bias) convolution on the active corner of a max-size weight,
//! with a hand-written backward for the flex CPU backend.
//!
//! burn-flex runs a 1×1 conv's forward as a GEMM already, but its gradients go through the
//! generic paths: the input gradient through `conv_transpose` (GEMM + col2im), the weight
//! gradient through a conv over swapped batch and channel dims (copies and im2col), and the
//! elastic layer's slice of the max-size weight adds a slice op whose backward writes a
//! zero-filled max-size tensor. With the `fused-ops` feature this module registers a backend
//! extension (`#[backend_extension(Flex, Autodiff)]`) whose forward and backward are batched
//! GEMMs on the NCHW data (flex's strided matmul, no transposing copies): `y = W·xₙ`,
//! `grad x = Wᵀ·gyₙ`, `grad W = Σₙ gyₙ·xₙᵀ`, written into the corner of a max-size gradient.
//!
//! Any other backend or dtype falls back to [`pointwise_conv2d_reference`].
//!
//! Files: `backend.rs` (the extension and its flex implementation), `autodiff.rs` (the
//! recorded backward step), `tests.rs` (both paths agree).

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "fused-ops")]
mod autodiff;
#[cfg(feature = "fused-ops")]
mod backend;
#[cfg(test)]
mod tests;

/// A 1×1 conv of `x` by `weight[..active_out, ..cin]`, `cin` being `x`'s channels.
///
/// Uses the GEMM path when the `fused-ops` feature is on and the tensors are f32 on the flex
/// backend (with or without autodiff); otherwise [`pointwise_conv2d_reference`].
///
/// # Shapes
/// `x: [n, cin, h, w]`, `weight: [max_out, max_in, 1, 1]` (`cin ≤ max_in`,
/// `active_out ≤ max_out`) → `[n, active_out, h, w]`
pub fn pointwise_conv2d(x: Tensor<4>, weight: Tensor<4>, active_out: usize) -> Tensor<4> {
    #[cfg(feature = "fused-ops")]
    if backend::supported(&x, &weight, active_out) {
        return backend::run(x, weight, active_out);
    }
    pointwise_conv2d_reference(x, weight, active_out)
}

/// The composed burn ops [`pointwise_conv2d`] replaces: slice the weight, `conv2d`.
///
/// # Shapes
/// As [`pointwise_conv2d`].
pub fn pointwise_conv2d_reference(x: Tensor<4>, weight: Tensor<4>, active_out: usize) -> Tensor<4> {
    let cin = x.dims()[1];
    let [mo, mi, _, _] = weight.dims();
    let w = if cin == mi && active_out == mo {
        weight
    } else {
        weight.slice(s![0..active_out, 0..cin, .., ..])
    };
    conv2d(x, w, None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
}

/// Whether [`pointwise_conv2d`] uses the GEMM path (the `fused-ops` feature).
pub const FUSED_PW_ENABLED: bool = cfg!(feature = "fused-ops");
