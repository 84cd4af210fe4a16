//! Elastic batch norm: statistics and affine parameters of the first `c` channels.

use burn::module::{Param, RunningState};
use burn::prelude::*;
use netspec::space::Act;

/// How batch norm behaves in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BnMode {
    /// Normalise with batch statistics; running statistics untouched (sub-nets get their own
    /// statistics by recalibration, as in Once-for-All and BigNAS).
    Train,
    /// Normalise with batch statistics and blend them into the running statistics:
    /// `running = (1 - momentum)·running + momentum·batch`. Recalibration uses
    /// `momentum = 1/(i+1)` for batch `i`, an exact running average.
    Calibrate {
        /// Weight of this batch.
        momentum: f32,
    },
    /// Normalise with the running statistics.
    Eval,
}

/// Batch norm over `max_channels`, running on the first `c` channels of its input.
#[derive(Module, Debug)]
pub struct ElasticBatchNorm {
    /// Scale γ, `[max_channels]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift β, `[max_channels]`.
    pub beta: Param<Tensor<1>>,
    /// Running mean, `[max_channels]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance, `[max_channels]`.
    pub running_var: RunningState<Tensor<1>>,
    /// ε added to the variance.
    pub epsilon: f64,
}

impl ElasticBatchNorm {
    /// γ = 1, β = 0, running mean 0, running var 1.
    pub fn new(max_channels: usize, device: &Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([max_channels], device)),
            beta: Param::from_tensor(Tensor::zeros([max_channels], device)),
            running_mean: RunningState::new(Tensor::zeros([max_channels], device)),
            running_var: RunningState::new(Tensor::ones([max_channels], device)),
            epsilon: 1e-5,
        }
    }

    /// Maximum channels.
    pub fn max_channels(&self) -> usize {
        self.gamma.shape().dims::<1>()[0]
    }

    fn slice1(t: Tensor<1>, c: usize, max: usize) -> Tensor<1> {
        if c == max { t } else { t.slice(s![0..c]) }
    }

    /// The (scale, shift) that this layer applies per channel in [`BnMode::Eval`]:
    /// `y = x·scale + shift`. Used to fold BN into the preceding conv.
    pub fn eval_scale_shift(&self, c: usize) -> (Tensor<1>, Tensor<1>) {
        let max = self.max_channels();
        let mean = Self::slice1(self.running_mean.value_sync(), c, max);
        let var = Self::slice1(self.running_var.value_sync(), c, max);
        let gamma = Self::slice1(self.gamma.val(), c, max);
        let beta = Self::slice1(self.beta.val(), c, max);
        let scale = gamma.div(var.add_scalar(self.epsilon).sqrt());
        let shift = beta.sub(mean.mul(scale.clone()));
        (scale, shift)
    }

    /// Normalises `x` over its `c` channels, then applies `act` (`None`: none). In
    /// [`BnMode::Train`] this is one fused op with its own backward
    /// ([`super::bn_op::batch_norm_act`]); the other modes compose burn ops.
    ///
    /// # Shapes
    /// `x: [n, c, h, w]` → `[n, c, h, w]`, `c ≤ max_channels`
    pub fn forward_act(&self, x: Tensor<4>, mode: BnMode, act: Option<Act>) -> Tensor<4> {
        if mode == BnMode::Train {
            return super::bn_op::batch_norm_act(
                x,
                self.gamma.val(),
                self.beta.val(),
                self.epsilon,
                act,
            );
        }
        let y = self.forward_composed(x, mode);
        match act {
            None => y,
            Some(a) => crate::block::activate(y, a),
        }
    }

    /// Normalises `x` over its `c` channels ([`ElasticBatchNorm::forward_act`] without an
    /// activation).
    ///
    /// # Shapes
    /// `x: [n, c, h, w]` → `[n, c, h, w]`, `c ≤ max_channels`
    pub fn forward(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        self.forward_act(x, mode, None)
    }

    /// The composed burn ops of every mode.
    fn forward_composed(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let max = self.max_channels();
        let (scale, shift) = match mode {
            BnMode::Eval => self.eval_scale_shift(c),
            BnMode::Train | BnMode::Calibrate { .. } => {
                let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1,c,1,1]
                let centered = x.clone().sub(mean.clone());
                let var = centered.powi_scalar(2).mean_dim(0).mean_dim(2).mean_dim(3);
                let mean = mean.reshape([c]);
                let var = var.reshape([c]);
                if let BnMode::Calibrate { momentum } = mode {
                    let count = (n * h * w) as f32;
                    let unbiased = var
                        .clone()
                        .detach()
                        .mul_scalar(count / (count - 1.0).max(1.0));
                    let m = momentum;
                    let rm = self.running_mean.value_sync();
                    let rv = self.running_var.value_sync();
                    let dev = rm.device();
                    let old_m = Self::slice1(rm.clone(), c, max);
                    let old_v = Self::slice1(rv.clone(), c, max);
                    let new_m = old_m
                        .mul_scalar(1.0 - m)
                        .add(mean.clone().detach().to_device(&dev).mul_scalar(m));
                    let new_v = old_v
                        .mul_scalar(1.0 - m)
                        .add(unbiased.to_device(&dev).mul_scalar(m));
                    let (rm, rv) = if c == max {
                        (new_m, new_v)
                    } else {
                        (
                            rm.slice_assign(s![0..c], new_m),
                            rv.slice_assign(s![0..c], new_v),
                        )
                    };
                    self.running_mean.update(rm.detach());
                    self.running_var.update(rv.detach());
                }
                let gamma = Self::slice1(self.gamma.val(), c, max);
                let beta = Self::slice1(self.beta.val(), c, max);
                let scale = gamma.div(var.add_scalar(self.epsilon).sqrt());
                let shift = beta.sub(mean.mul(scale.clone()));
                (scale, shift)
            }
        };
        x.mul(scale.reshape([1, c, 1, 1]))
            .add(shift.reshape([1, c, 1, 1]))
    }
}
