//! One training step: the sub-nets' forwards and losses, one backward, one optimizer update.
//! The trainer runs it, and `tierforge bench train-step` times it.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::loss::{cross_entropy_smooth, distill, teacher_probs};
use super::optim::Optimizer;
use crate::data::Batcher;
use crate::elastic::BnMode;
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::space::ArchConfig;

/// Where a step's sub-nets get their soft targets from.
#[derive(Debug, Clone, Copy)]
pub enum Distillation<'a> {
    /// The sandwich rule (BigNAS): the first sub-net learns from the labels (label-smoothed
    /// cross-entropy), every other one from the first one's detached softmax.
    InPlace,
    /// Every sub-net learns from the labels and, when there is one, from a frozen teacher: the
    /// teacher's largest sub-net at the student's resolution (progressive shrinking, fine-tunes).
    Teacher(Option<&'a Supernet>),
}

/// What one step trains, besides the model, the optimizer and the batch.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The sub-nets, in the order they run (with [`Distillation::InPlace`] the first is the
    /// teacher: the largest).
    pub archs: &'a [ArchConfig],
    /// Soft targets.
    pub distillation: Distillation<'a>,
    /// Label smoothing of the cross-entropy terms.
    pub label_smoothing: f64,
    /// Learning rate of this step.
    pub lr: f64,
    /// The model's (autodiff) device.
    pub device: &'a Device,
}

/// Wall time of a step's parts, in seconds. On an asynchronous device (a GPU) work queued in the
/// forward can finish during the backward; the sum is exact, since reading the loss waits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Resizing the batch to each sub-net's resolution and making the input tensors.
    pub input_s: f64,
    /// The forwards and the loss (the teacher's forward included), without `input_s`.
    pub forward_s: f64,
    /// The backward pass and reading the loss.
    pub backward_s: f64,
    /// The optimizer update.
    pub optimizer_s: f64,
}

impl StepTimes {
    /// The whole step.
    pub fn total_s(&self) -> f64 {
        self.input_s + self.forward_s + self.backward_s + self.optimizer_s
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// The summed loss of the step's sub-nets (before the update).
    pub loss: f32,
    /// Where the time went.
    pub times: StepTimes,
}

/// One training step on the batch `batcher` holds (filled by [`Batcher::fill`]): every sub-net of
/// `step` forwards its input in BN training mode, the losses are summed, one backward pass, and
/// `optim` updates every weight that got a gradient. Returns the updated model.
///
/// # Errors
/// [`Error::InvalidConfig`] when `step.archs` is empty, [`Error::Diverged`] when the loss is not
/// finite (the model is then not updated).
pub fn train_step(
    model: Supernet,
    optim: &mut Optimizer,
    batcher: &mut Batcher,
    step: &Step<'_>,
) -> Result<(Supernet, StepOutcome)> {
    let t0 = Instant::now();
    let mut times = StepTimes::default();
    let [n, c, h, w] = batcher.dims();
    let y = Tensor::<1, Int>::from_data(TensorData::new(batcher.labels().to_vec(), [n]), step.device);
    let mut input = |r: usize, times: &mut StepTimes| {
        let t = Instant::now();
        let x = to_tensor(batcher.resized(n, c, h, w, r), n, c, r, step.device);
        times.input_s += t.elapsed().as_secs_f64();
        x
    };
    let ls = step.label_smoothing;
    let total = match step.distillation {
        Distillation::InPlace => {
            let (first, rest) = step
                .archs
                .split_first()
                .ok_or_else(|| Error::config("training step", "no sub-net to train"))?;
            let logits = model.forward(input(first.resolution, &mut times), first, BnMode::Train);
            let soft = teacher_probs(logits.clone());
            let mut total = cross_entropy_smooth(logits, y, ls);
            for a in rest {
                let x = input(a.resolution, &mut times);
                total = total + distill(model.forward(x, a, BnMode::Train), soft.clone());
            }
            total
        }
        Distillation::Teacher(teacher) => {
            let mut total: Option<Tensor<1>> = None;
            for a in step.archs {
                let x = input(a.resolution, &mut times);
                let logits = model.forward(x.clone(), a, BnMode::Train);
                let mut l = cross_entropy_smooth(logits.clone(), y.clone(), ls);
                if let Some(t) = teacher {
                    let teacher_arch = ArchConfig {
                        resolution: a.resolution,
                        ..ArchConfig::max(&t.space)
                    };
                    let tl = t.forward(x.inner(), &teacher_arch, BnMode::Train);
                    let soft = Tensor::<2>::from_inner(burn::tensor::activation::softmax(tl, 1));
                    l = l + distill(logits, soft);
                }
                total = Some(match total {
                    Some(t) => t + l,
                    None => l,
                });
            }
            total.ok_or_else(|| Error::config("training step", "no sub-net to train"))?
        }
    };
    let t1 = Instant::now();
    times.forward_s = (t1 - t0).as_secs_f64() - times.input_s;
    let grads = GradientsParams::from_grads(total.backward(), &model);
    let loss: f32 = total.detach().into_scalar();
    let t2 = Instant::now();
    times.backward_s = (t2 - t1).as_secs_f64();
    if !loss.is_finite() {
        return Err(Error::Diverged { loss });
    }
    let model = optim.step(step.lr, model, grads);
    times.optimizer_s = t2.elapsed().as_secs_f64();
    Ok((model, StepOutcome { loss, times }))
}

/// `[n·c·r·r]` floats as an `[n, c, r, r]` tensor on `device`.
fn to_tensor(x: &[f32], n: usize, c: usize, r: usize, device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(x.to_vec(), [n * c * r * r]), device)
        .reshape([n, c, r, r])
}
