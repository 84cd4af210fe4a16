//! Elastic dense / pointwise convolution: max-size weight, active input and output channels.

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use rand::Rng;

/// A k×k convolution (no bias) whose weight is `[max_out, max_in, k, k]`; a call runs
/// `weight[..active_out, ..active_in]`, `active_in` being the input's channel count.
#[derive(Module, Debug)]
pub struct ElasticConv {
    /// `[max_out, max_in, k, k]`
    pub weight: Param<Tensor<4>>,
    /// Kernel size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

impl ElasticConv {
    /// Kaiming-normal (fan-out) initialised conv.
    pub fn new<R: Rng + ?Sized>(
        max_in: usize,
        max_out: usize,
        kernel: usize,
        stride: usize,
        rng: &mut R,
        device: &Device,
    ) -> Self {
        let std = (2.0 / (max_out * kernel * kernel) as f32).sqrt();
        let w = super::init::normal([max_out, max_in, kernel, kernel], std, rng, device);
        Self {
            weight: Param::from_tensor(w),
            kernel,
            stride,
        }
    }

    /// Maximum (input, output) channels.
    pub fn max_channels(&self) -> (usize, usize) {
        let [o, i, _, _] = self.weight.shape().dims();
        (i, o)
    }

    /// The active weight slice `[active_out, active_in, k, k]`.
    pub fn active_weight(&self, active_in: usize, active_out: usize) -> Tensor<4> {
        let w = self.weight.val();
        let (mi, mo) = self.max_channels();
        if active_in == mi && active_out == mo {
            w
        } else {
            w.slice(s![0..active_out, 0..active_in, .., ..])
        }
    }

    /// Runs the conv on the active slice.
    ///
    /// # Shapes
    /// `x: [n, active_in, h, w]` → `[n, active_out, ⌈h/stride⌉, ⌈w/stride⌉]`
    pub fn forward(&self, x: Tensor<4>, active_out: usize) -> Tensor<4> {
        if self.kernel == 1 && self.stride == 1 {
            // batched GEMMs with their own backward (the `fused-ops` feature), reading the
            // active corner of the max-size weight: `pw_op`
            return super::pw_op::pointwise_conv2d(x, self.weight.val(), active_out);
        }
        let cin = x.dims()[1];
        let w = self.active_weight(cin, active_out);
        let p = self.kernel / 2;
        conv2d(
            x,
            w,
            None,
            ConvOptions::new([self.stride; 2], [p, p], [1, 1], 1),
        )
    }
}
