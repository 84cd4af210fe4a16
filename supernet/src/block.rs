//! The elastic inverted-residual (MBConv) block.

use burn::prelude::*;
use burn::tensor::activation::{hard_swish, relu};
use rand::Rng;

use crate::elastic::{BnMode, ElasticBatchNorm, ElasticConv, ElasticDepthwise};
use crate::space::Act;

/// Applies an activation.
pub(crate) fn activate(x: Tensor<4>, act: Act) -> Tensor<4> {
    match act {
        Act::Relu => relu(x),
        Act::Hswish => hard_swish(x),
    }
}

/// 1×1 expand → k×k depthwise → 1×1 project, BN after each, activation after the first two,
/// residual when stride is 1 and channels match. Elastic in kernel size and expand ratio.
#[derive(Module, Debug)]
pub struct MbBlock {
    /// 1×1, `in → in·max_expand`.
    pub expand: ElasticConv,
    /// BN after expand.
    pub expand_bn: ElasticBatchNorm,
    /// Depthwise k×k.
    pub dw: ElasticDepthwise,
    /// BN after depthwise.
    pub dw_bn: ElasticBatchNorm,
    /// 1×1, `hidden → out`.
    pub project: ElasticConv,
    /// BN after project.
    pub project_bn: ElasticBatchNorm,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Stride of the depthwise conv.
    pub stride: usize,
    /// The activation after expand and depthwise (the stage's).
    #[module(skip)]
    pub act: Act,
}

impl MbBlock {
    /// A new block with max-size weights.
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        max_expand: usize,
        kernel_sizes: &[usize],
        act: Act,
        rng: &mut R,
        device: &Device,
    ) -> Self {
        let hidden = in_channels * max_expand;
        Self {
            expand: ElasticConv::new(in_channels, hidden, 1, 1, rng, device),
            expand_bn: ElasticBatchNorm::new(hidden, device),
            dw: ElasticDepthwise::new(hidden, kernel_sizes, stride, rng, device),
            dw_bn: ElasticBatchNorm::new(hidden, device),
            project: ElasticConv::new(hidden, out_channels, 1, 1, rng, device),
            project_bn: ElasticBatchNorm::new(out_channels, device),
            in_channels,
            out_channels,
            stride,
            act,
        }
    }

    /// Whether the block at full width adds its input to its output.
    pub fn residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }

    /// Whether the block adds its input when it reads `active_in` channels and writes
    /// `active_out`: it has a residual at full width and the two are equal
    /// (`netspec::ArchConfig::block_has_residual`).
    pub fn active_residual(&self, active_in: usize, active_out: usize) -> bool {
        self.residual() && active_in == active_out
    }

    /// Runs the block at full output width with kernel `k` and expand ratio `e`.
    ///
    /// # Shapes
    /// `x: [n, in, h, w]` → `[n, out, ⌈h/stride⌉, ⌈w/stride⌉]`
    pub fn forward(&self, x: Tensor<4>, k: usize, e: usize, mode: BnMode) -> Tensor<4> {
        self.forward_width(x, k, e, self.out_channels, mode)
    }

    /// Runs the block with kernel `k`, expand ratio `e` and `active_out` output channels; the
    /// input's channel count is the active input width, the hidden width `active_in · e`.
    ///
    /// # Shapes
    /// `x: [n, active_in, h, w]` → `[n, active_out, ⌈h/stride⌉, ⌈w/stride⌉]`
    pub fn forward_width(
        &self,
        x: Tensor<4>,
        k: usize,
        e: usize,
        active_out: usize,
        mode: BnMode,
    ) -> Tensor<4> {
        let active_in = x.dims()[1];
        let hidden = active_in * e;
        let act = Some(self.act);
        let h = self
            .expand_bn
            .forward_act(self.expand.forward(x.clone(), hidden), mode, act);
        let h = self.dw_bn.forward_act(self.dw.forward(h, k), mode, act);
        let y = self
            .project_bn
            .forward(self.project.forward(h, active_out), mode);
        if self.active_residual(active_in, active_out) {
            y + x
        } else {
            y
        }
    }

    /// Importance of each hidden channel: L1 norm of the project weights that read it (OFA's
    /// channel sorting criterion).
    pub fn hidden_importance(&self) -> Vec<f32> {
        let w = self.project.weight.val().detach(); // [out, hidden, 1, 1]
        let imp = w.abs().sum_dim(0).sum_dim(2).sum_dim(3); // [1, hidden, 1, 1]
        let n = imp.dims()[1];
        imp.reshape([n])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    /// Reorders the hidden channels by decreasing importance, so the first `in·e` channels that
    /// a smaller expand ratio keeps are the most important ones. The block's function is
    /// unchanged (a permutation of the hidden channels).
    pub fn sort_channels(self) -> Self {
        let imp = self.hidden_importance();
        let mut order: Vec<usize> = (0..imp.len()).collect();
        order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
        self.permute_hidden(&order)
    }

    /// Applies a permutation of the hidden channels (`order[new] = old`).
    pub fn permute_hidden(self, order: &[usize]) -> Self {
        let device = self.project.weight.val().device();
        let idx: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [order.len()]), &device);
        let MbBlock {
            expand,
            expand_bn,
            dw,
            dw_bn,
            project,
            project_bn,
            in_channels,
            out_channels,
            stride,
            act,
        } = self;
        let expand = ElasticConv {
            weight: remap(expand.weight, |t| t.select(0, idx.clone())),
            ..expand
        };
        let dw = ElasticDepthwise {
            weight: remap(dw.weight, |t| t.select(0, idx.clone())),
            ..dw
        };
        let project = ElasticConv {
            weight: remap(project.weight, |t| t.select(1, idx.clone())),
            ..project
        };
        let expand_bn = permute_bn(expand_bn, &idx);
        let dw_bn = permute_bn(dw_bn, &idx);
        MbBlock {
            expand,
            expand_bn,
            dw,
            dw_bn,
            project,
            project_bn,
            in_channels,
            out_channels,
            stride,
            act,
        }
    }
}

impl MbBlock {
    /// L1 norm of the expand weights that read each input channel: the importance of the
    /// channel the block reads (`[max_in]`).
    pub fn input_importance(&self) -> Vec<f32> {
        let w = self.expand.weight.val().detach(); // [hidden, in, 1, 1]
        let imp = w.abs().sum_dim(0).sum_dim(2).sum_dim(3); // [1, in, 1, 1]
        let n = imp.dims()[1];
        imp.reshape([n])
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    /// Permutes the channels the block reads (`order[new] = old`): the expand conv's input.
    pub fn permute_input(self, idx: &Tensor<1, Int>) -> Self {
        let expand = ElasticConv {
            weight: remap(self.expand.weight, |t| t.select(1, idx.clone())),
            ..self.expand
        };
        MbBlock { expand, ..self }
    }

    /// Permutes the channels the block writes (`order[new] = old`): the project conv's output
    /// and its BN.
    pub fn permute_output(self, idx: &Tensor<1, Int>) -> Self {
        let project = ElasticConv {
            weight: remap(self.project.weight, |t| t.select(0, idx.clone())),
            ..self.project
        };
        let project_bn = permute_bn(self.project_bn, idx);
        MbBlock {
            project,
            project_bn,
            ..self
        }
    }
}

/// Maps a parameter's value, keeping its id and its require-grad flag.
pub(crate) fn remap<const D: usize>(
    p: burn::module::Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> burn::module::Param<Tensor<D>> {
    p.map(|t| {
        if t.is_require_grad() {
            // Work on the inner (non-autodiff) tensor so the result is a fresh leaf.
            Tensor::from_inner(f(t.inner())).require_grad()
        } else {
            f(t)
        }
    })
}

pub(crate) fn permute_bn(bn: ElasticBatchNorm, idx: &Tensor<1, Int>) -> ElasticBatchNorm {
    use burn::module::RunningState;
    let rm = bn.running_mean.value_sync().select(0, idx.clone());
    let rv = bn.running_var.value_sync().select(0, idx.clone());
    ElasticBatchNorm {
        gamma: remap(bn.gamma, |t| t.select(0, idx.clone())),
        beta: remap(bn.beta, |t| t.select(0, idx.clone())),
        running_mean: RunningState::new(rm),
        running_var: RunningState::new(rv),
        epsilon: bn.epsilon,
    }
}
