//! The backend extension (`#[backend_extension(Flex, Autodiff)]`): the `PointwiseBackend`
//! trait, the check that a call can take the GEMM path, and the flex implementation (the
//! autodiff one is in `autodiff.rs`).

use crate::device::on_flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, Shape, TensorData};

#[backend_extension(Flex, Autodiff)]
pub trait PointwiseBackend: Backend {
    /// 1×1 conv (stride 1, no bias) of `x: [n, cin, h, w]` by the `[active_out, cin]` corner
    /// of `weight: [max_out, max_in, 1, 1]`.
    fn pointwise_conv2d_direct(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        active_out: usize,
    ) -> FloatTensor<Self>;
}

/// f32 on flex (possibly autodiff), a `[max_out, max_in, 1, 1]` weight with `max_in ≥ cin` and
/// `max_out ≥ active_out ≥ 1`.
pub(super) fn supported(x: &Tensor<4>, weight: &Tensor<4>, active_out: usize) -> bool {
    let [_, cin, _, _] = x.dims();
    let [mo, mi, kh, kw] = weight.dims();
    x.dtype() == DType::F32
        && weight.dtype() == DType::F32
        && on_flex(&x.device())
        && on_flex(&weight.device())
        && kh == 1
        && kw == 1
        && cin <= mi
        && (1..=mo).contains(&active_out)
}

pub(super) fn run(x: Tensor<4>, weight: Tensor<4>, active_out: usize) -> Tensor<4> {
    Tensor::from_dispatch(
        <burn::backend::Dispatch as PointwiseBackend>::pointwise_conv2d_direct(
            x.into_dispatch(),
            weight.into_dispatch(),
            active_out,
        ),
    )
}

fn shape_of(t: &FlexTensor) -> Vec<usize> {
    t.layout().shape().as_slice().to_vec()
}

/// `[n, c, h·w]` view of a 4-D tensor (free when contiguous).
pub(super) fn as_3d(x: &FlexTensor) -> FlexTensor {
    let s = shape_of(x);
    let hw: usize = s.iter().skip(2).product();
    x.to_contiguous().reshape(Shape::from(vec![
        s.first().copied().unwrap_or(1),
        s.get(1).copied().unwrap_or(1),
        hw,
    ]))
}

/// The `[rows, cols]` corner of the `[max_out, max_in, 1, 1]` weight, as a contiguous matrix.
pub(super) fn corner(weight: &FlexTensor, rows: usize, cols: usize) -> FlexTensor {
    let s = shape_of(weight);
    let (mo, mi) = (
        s.first().copied().unwrap_or(0),
        s.get(1).copied().unwrap_or(0),
    );
    let w = weight.to_contiguous().reshape(Shape::from(vec![mo, mi]));
    if rows == mo && cols == mi {
        return w;
    }
    let slice = Flex::float_slice(
        w,
        &[
            burn::tensor::Slice::from(0..rows),
            burn::tensor::Slice::from(0..cols),
        ],
    );
    slice.to_contiguous()
}

/// The forward: one GEMM per image (`[cout, cin] × [cin, h·w]`), batched by flex's matmul.
pub(super) fn forward(x: &FlexTensor, weight: &FlexTensor, active_out: usize) -> FlexTensor {
    let s = shape_of(x);
    let w = corner(weight, active_out, s.get(1).copied().unwrap_or(0));
    let y = Flex::float_matmul(w, as_3d(x)); // [n, cout, hw]
    let mut out = s;
    if out.len() > 1 {
        out[1] = active_out;
    }
    y.reshape(Shape::from(out))
}

/// `[max_out, max_in, 1, 1]` zeros holding `g: [rows, cols]` in its corner.
pub(super) fn embed(g: FlexTensor, weight: &FlexTensor) -> FlexTensor {
    let s = shape_of(weight);
    let gs = shape_of(&g);
    let (rows, cols) = (gs[0], gs[1]);
    let (mo, mi) = (s[0], s[1]);
    if rows == mo && cols == mi {
        return g.reshape(Shape::from(s));
    }
    let g = g.to_contiguous();
    let src = g.as_slice::<f32>().unwrap_or(&[]);
    let mut full = vec![0.0f32; mo * mi];
    for (r, row) in src.chunks_exact(cols).enumerate().take(rows) {
        full[r * mi..r * mi + cols].copy_from_slice(row);
    }
    FlexTensor::from_data(TensorData::new(full, s))
}

impl PointwiseBackend for Flex {
    fn pointwise_conv2d_direct(x: FlexTensor, weight: FlexTensor, active_out: usize) -> FlexTensor {
        forward(&x, &weight, active_out)
    }
}
