//! Elastic depthwise convolution with Once-for-All kernel transform matrices.

use burn::module::Param;
use burn::prelude::*;
use rand::Rng;

/// A depthwise conv whose weight is `[max_channels, 1, k_max, k_max]`.
///
/// A smaller kernel `k` is the centre of the next larger (already transformed) kernel times a
/// learned `k²×k²` transform matrix shared by all channels of the layer (OFA §3.2, "elastic
/// kernel size"); the matrices start as the identity.
#[derive(Module, Debug)]
pub struct ElasticDepthwise {
    /// `[max_channels, 1, k_max, k_max]`
    pub weight: Param<Tensor<4>>,
    /// `transforms[i]`: `[k_i², k_i²]` for `kernel_sizes[i]`, `i < len - 1`.
    pub transforms: Vec<Param<Tensor<2>>>,
    /// The elastic kernel sizes, increasing.
    pub kernel_sizes: Vec<usize>,
    /// Stride.
    pub stride: usize,
}

impl ElasticDepthwise {
    /// A new layer, Kaiming-normal weights, identity transforms.
    pub fn new<R: Rng + ?Sized>(
        max_channels: usize,
        kernel_sizes: &[usize],
        stride: usize,
        rng: &mut R,
        device: &Device,
    ) -> Self {
        let kmax = *kernel_sizes.last().unwrap_or(&3);
        let std = (2.0 / (kmax * kmax) as f32).sqrt();
        let w = super::init::normal([max_channels, 1, kmax, kmax], std, rng, device);
        let transforms = kernel_sizes[..kernel_sizes.len().saturating_sub(1)]
            .iter()
            .map(|&k| Param::from_tensor(Tensor::<2>::eye(k * k, device)))
            .collect();
        Self {
            weight: Param::from_tensor(w),
            transforms,
            kernel_sizes: kernel_sizes.to_vec(),
            stride,
        }
    }

    /// The ids of the kernel transform matrices: parameters whose natural value is the identity
    /// (weight decay must not pull them to zero).
    pub fn kernel_transform_ids(&self) -> impl Iterator<Item = burn::module::ParamId> + '_ {
        self.transforms.iter().map(|t| t.id)
    }

    /// Maximum channels.
    pub fn max_channels(&self) -> usize {
        self.weight.shape().dims::<4>()[0]
    }

    /// The effective `[channels, 1, k, k]` weight for kernel `k` (after the transforms).
    ///
    /// # Panics
    /// If `k` is not one of the layer's kernel sizes (validate the arch first).
    pub fn active_weight(&self, channels: usize, k: usize) -> Tensor<4> {
        let mut w = self.weight.val();
        if channels != self.max_channels() {
            w = w.slice(s![0..channels, .., .., ..]);
        }
        let mut cur = *self.kernel_sizes.last().unwrap_or(&k);
        for i in (0..self.transforms.len()).rev() {
            let ks = self.kernel_sizes[i];
            if ks < k {
                break;
            }
            let off = (cur - ks) / 2;
            w = w.slice(s![.., .., off..off + ks, off..off + ks]);
            w = w
                .reshape([channels, ks * ks])
                .matmul(self.transforms[i].val())
                .reshape([channels, 1, ks, ks]);
            cur = ks;
        }
        assert_eq!(
            cur, k,
            "kernel size {k} is not elastic here: {:?}",
            self.kernel_sizes
        );
        w
    }

    /// Runs the active kernel on all channels of `x`.
    ///
    /// # Shapes
    /// `x: [n, c, h, w]` → `[n, c, ⌈h/stride⌉, ⌈w/stride⌉]`
    pub fn forward(&self, x: Tensor<4>, k: usize) -> Tensor<4> {
        let c = x.dims()[1];
        let w = self.active_weight(c, k);
        // Direct flex kernels with the `fast-dw` feature (the default), otherwise (and on any
        // other backend) `conv2d` with groups = c: `dw_op::depthwise_conv2d_reference`.
        super::dw_op::depthwise_conv2d(x, w, self.stride)
    }
}
