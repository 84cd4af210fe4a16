//! Batch norm with batch statistics fused with the activation after it, with a hand-written
//! forward *and* backward for the flex CPU backend.
//!
//! Composed from burn ops, a training-mode BN is a dozen autodiff ops (three means for the
//! mean, a subtraction, a square, three means for the variance, the scale and shift, the
//! activation), each making a fresh tensor and recording its own backward. With the
//! `fused-ops` feature this module registers a backend extension
//! (`#[backend_extension(Flex, Autodiff)]`) that runs the statistics, the normalisation and the
//! activation in three passes over the input and records one backward step (two passes):
//! `grad x = γ·rstd·(gz − mean(gz) − x̂·mean(gz·x̂))`, `grad γ = Σ gz·x̂`, `grad β = Σ gz`, with
//! `gz` the upstream gradient through the activation. γ and β are the layer's max-size vectors;
//! the op reads their first `c` values and returns gradients of the full size (zeros beyond
//! `c`), as slicing them would.
//!
//! Any other backend or dtype falls back to [`batch_norm_act_reference`] (the composed ops).
//!
//! Files: `kernels.rs` (plain-slice loops), `backend.rs` (the extension and its flex
//! implementation), `autodiff.rs` (the recorded backward step), `tests.rs` (both paths agree).

use burn::prelude::*;
use netspec::space::Act;

#[cfg(feature = "fused-ops")]
mod autodiff;
#[cfg(feature = "fused-ops")]
mod backend;
#[cfg_attr(not(feature = "fused-ops"), allow(dead_code))]
mod kernels;
#[cfg(test)]
mod tests;

/// Batch norm of `x` with its batch statistics (biased variance), scaled by the first `c`
/// values of `gamma` and shifted by those of `beta`, then `act` (`None`: no activation).
///
/// Uses the fused flex kernels when the `fused-ops` feature is on and the tensors are f32 on
/// the flex backend (with or without autodiff); otherwise [`batch_norm_act_reference`].
///
/// # Shapes
/// `x: [n, c, h, w]`, `gamma`, `beta`: `[max_c]` with `max_c ≥ c` → `[n, c, h, w]`
pub fn batch_norm_act(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    act: Option<Act>,
) -> Tensor<4> {
    #[cfg(feature = "fused-ops")]
    if backend::supported(&x, &gamma, &beta) {
        return backend::run(x, gamma, beta, epsilon as f32, act);
    }
    batch_norm_act_reference(x, gamma, beta, epsilon, act)
}

/// The composed burn ops [`batch_norm_act`] replaces.
///
/// # Shapes
/// As [`batch_norm_act`].
pub fn batch_norm_act_reference(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    act: Option<Act>,
) -> Tensor<4> {
    let c = x.dims()[1];
    let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1,c,1,1]
    let var = x
        .clone()
        .sub(mean.clone())
        .powi_scalar(2)
        .mean_dim(0)
        .mean_dim(2)
        .mean_dim(3);
    let first = |t: Tensor<1>| {
        if t.dims()[0] == c {
            t
        } else {
            t.slice(s![0..c])
        }
    };
    let scale = first(gamma).div(var.reshape([c]).add_scalar(epsilon).sqrt());
    let shift = first(beta).sub(mean.reshape([c]).mul(scale.clone()));
    let y = x
        .mul(scale.reshape([1, c, 1, 1]))
        .add(shift.reshape([1, c, 1, 1]));
    match act {
        None => y,
        Some(a) => crate::block::activate(y, a),
    }
}

/// Whether [`batch_norm_act`] uses the fused kernels (the `fused-ops` feature).
pub const FUSED_BN_ENABLED: bool = cfg!(feature = "fused-ops");
