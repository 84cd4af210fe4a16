//! The backend extension (`#[backend_extension(Flex, Autodiff)]`): the `DepthwiseBackend`
//! trait, the check that a call can take the direct kernels, and the flex implementation over
//! plain slices (the autodiff one is in `autodiff.rs`).

use super::geom::Geom;
use super::{kernels, options};
use crate::device::on_flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

#[backend_extension(Flex, Autodiff)]
pub trait DepthwiseBackend: Backend {
    /// Depthwise conv2d, padding `k/2`, no bias.
    fn depthwise_conv2d_direct(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self>;
}

/// The tensors are f32 on flex (possibly autodiff) and the shapes are a depthwise conv.
pub(super) fn supported(x: &Tensor<4>, w: &Tensor<4>, stride: usize) -> bool {
    x.dtype() == DType::F32
        && w.dtype() == DType::F32
        && on_flex(&x.device())
        && on_flex(&w.device())
        && Geom::new(&x.dims(), &w.dims(), stride).is_some()
}

pub(super) fn run(x: Tensor<4>, w: Tensor<4>, stride: usize) -> Tensor<4> {
    Tensor::from_dispatch(
        <burn::backend::Dispatch as DepthwiseBackend>::depthwise_conv2d_direct(
            x.into_dispatch(),
            w.into_dispatch(),
            stride,
        ),
    )
}

/// The tensor with a contiguous layout (O(1) when it already is; copies otherwise).
fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn geom(x: &FlexTensor, w: &FlexTensor, stride: usize) -> Option<Geom> {
    if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return None;
    }
    Geom::new(
        x.layout().shape().as_slice(),
        w.layout().shape().as_slice(),
        stride,
    )
}

/// Size of dimension `i` (1 when absent; only used on fallback paths).
pub(super) fn dim(t: &FlexTensor, i: usize) -> usize {
    t.layout().shape().as_slice().get(i).copied().unwrap_or(1)
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Direct forward; `None` for an unsupported dtype or shape.
fn forward(x: &FlexTensor, w: &FlexTensor, stride: usize) -> Option<FlexTensor> {
    let g = geom(x, w, stride)?;
    let (x, w) = (contiguous(x), contiguous(w));
    let xs = x.as_slice::<f32>()?;
    let ws = w.as_slice::<f32>()?;
    if xs.len() != g.planes() * g.h * g.w || ws.len() != g.c * g.k * g.k {
        return None;
    }
    let out = kernels::forward(&g, xs, ws);
    Some(flex_tensor(out, [g.n, g.c, g.oh, g.ow]))
}

/// Direct backward; `None` for an unsupported dtype or shape.
pub(super) fn backward(
    x: &FlexTensor,
    w: &FlexTensor,
    gy: &FlexTensor,
    stride: usize,
    need_x: bool,
    need_w: bool,
) -> Option<(Option<FlexTensor>, Option<FlexTensor>)> {
    let g = geom(x, w, stride)?;
    if gy.dtype() != DType::F32 || gy.layout().shape().as_slice() != [g.n, g.c, g.oh, g.ow] {
        return None;
    }
    let (x, w, gy) = (contiguous(x), contiguous(w), contiguous(gy));
    let xs = x.as_slice::<f32>()?;
    let ws = w.as_slice::<f32>()?;
    let gys = gy.as_slice::<f32>()?;
    if xs.len() != g.planes() * g.h * g.w
        || ws.len() != g.c * g.k * g.k
        || gys.len() != g.planes() * g.oh * g.ow
    {
        return None;
    }
    let (gx, gw) = kernels::backward(&g, xs, ws, gys, need_x, need_w);
    Some((
        need_x.then(|| flex_tensor(gx, [g.n, g.c, g.h, g.w])),
        need_w.then(|| flex_tensor(gw, [g.c, 1, g.k, g.k])),
    ))
}

impl DepthwiseBackend for Flex {
    fn depthwise_conv2d_direct(x: FlexTensor, w: FlexTensor, stride: usize) -> FlexTensor {
        match forward(&x, &w, stride) {
            Some(out) => {
                #[cfg(test)]
                super::tests::DIRECT_FORWARDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                out
            }
            None => {
                let (c, k) = (dim(&w, 0), dim(&w, 2));
                Flex::conv2d(x, w, None, options(stride, k, c))
            }
        }
    }
}
