//! The backend extension (`#[backend_extension(Flex, Autodiff)]`): the `BnActBackend` trait,
//! the check that a call can take the fused kernels, and the flex implementation over plain
//! slices (the autodiff one is in `autodiff.rs`).

use super::kernels::{self, Dims, Stats};
use crate::device::on_flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType, TensorData};
use netspec::space::Act;

#[backend_extension(Flex, Autodiff)]
pub trait BnActBackend: Backend {
    /// Batch norm of `x: [n, c, h, w]` with batch statistics, scaled and shifted by the first
    /// `c` values of `gamma` and `beta`, then `act`.
    fn batch_norm_act_direct(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
        act: Option<Act>,
    ) -> FloatTensor<Self>;
}

/// The tensors are f32 on flex (possibly autodiff), `x` is 4-D and `gamma`, `beta` 1-D with at
/// least `x`'s channels.
pub(super) fn supported(x: &Tensor<4>, gamma: &Tensor<1>, beta: &Tensor<1>) -> bool {
    let c = x.dims()[1];
    x.dtype() == DType::F32
        && gamma.dtype() == DType::F32
        && beta.dtype() == DType::F32
        && on_flex(&x.device())
        && on_flex(&gamma.device())
        && on_flex(&beta.device())
        && gamma.dims()[0] >= c
        && beta.dims()[0] >= c
}

pub(super) fn run(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f32,
    act: Option<Act>,
) -> Tensor<4> {
    Tensor::from_dispatch(
        <burn::backend::Dispatch as BnActBackend>::batch_norm_act_direct(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            epsilon,
            act,
        ),
    )
}

/// The tensor as contiguous f32 (O(1) when it already is; converts or copies otherwise).
pub(super) fn f32_contiguous(t: &FlexTensor) -> FlexTensor {
    let t = if t.dtype() == DType::F32 {
        t.clone()
    } else {
        Flex::float_cast(t.clone(), FloatDType::F32)
    };
    t.to_contiguous()
}

/// The contiguous f32 values of a tensor made by [`f32_contiguous`].
pub(super) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().unwrap_or(&[])
}

pub(super) fn dims(x: &FlexTensor) -> Dims {
    let s = x.layout().shape().as_slice();
    let at = |i: usize| s.get(i).copied().unwrap_or(1);
    Dims {
        n: at(0),
        c: at(1),
        hw: s.iter().skip(2).product(),
    }
}

/// A float tensor of `values` in `like`'s dtype.
pub(super) fn float_tensor(values: Vec<f32>, shape: Vec<usize>, dtype: DType) -> FlexTensor {
    let t = FlexTensor::from_data(TensorData::new(values, shape));
    match dtype {
        DType::F32 => t,
        DType::F64 => Flex::float_cast(t, FloatDType::F64),
        DType::F16 => Flex::float_cast(t, FloatDType::F16),
        DType::BF16 => Flex::float_cast(t, FloatDType::BF16),
        _ => t,
    }
}

/// The forward, with the statistics the backward reuses.
pub(super) fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f32,
    act: Option<Act>,
) -> (FlexTensor, Stats) {
    let d = dims(x);
    let shape = x.layout().shape().as_slice().to_vec();
    let (xc, g, b) = (
        f32_contiguous(x),
        f32_contiguous(gamma),
        f32_contiguous(beta),
    );
    let xs = values(&xc);
    let (gs, bs) = (values(&g), values(&b));
    if xs.len() != d.len() || gs.len() < d.c || bs.len() < d.c {
        // Not a shape this op takes (the Dispatch wrapper checks first): an empty result.
        let empty = Stats {
            mean: Vec::new(),
            rstd: Vec::new(),
        };
        return (float_tensor(vec![0.0; d.len()], shape, x.dtype()), empty);
    }
    let st = kernels::stats(xs, d, epsilon);
    let out = kernels::forward(xs, d, gs, bs, &st, act);
    (float_tensor(out, shape, x.dtype()), st)
}

impl BnActBackend for Flex {
    fn batch_norm_act_direct(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f32,
        act: Option<Act>,
    ) -> FlexTensor {
        forward(&x, &gamma, &beta, epsilon, act).0
    }
}
