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
/// `optim` updates every weight that got a gradient. Returns the updated model. On a CPU pool of
/// two threads or more the sub-nets run in two groups at once, each with its own backward, and
/// the gradients are summed (`train/split.rs`): the same step up to float summation order.
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
    // on a CPU with two threads or more, the sub-nets run in two groups at once (one sub-net's
    // ops are too small to keep two cores busy): the same step up to float summation order
    if super::split::worth_splitting(step) {
        return super::split::split_step(model, optim, batcher, step);
    }
    serial_step(model, optim, batcher, step)
}

/// [`train_step`] in one graph on the calling thread (its ops still use the rayon pool).
pub(crate) fn serial_step(
    model: Supernet,
    optim: &mut Optimizer,
    batcher: &mut Batcher,
    step: &Step<'_>,
) -> Result<(Supernet, StepOutcome)> {
    let t0 = Instant::now();
    let mut times = StepTimes::default();
    let total = step_loss(&model, batcher, step, &mut times)?;
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

/// The forwards of a step and their summed loss (a graph to call `backward` on): what
/// [`train_step`] and the data-parallel step ([`super::parallel`]) differentiate. Adds the input
/// preparation's time to `times.input_s`.
///
/// # Errors
/// [`Error::InvalidConfig`] when `step.archs` is empty.
pub(crate) fn step_loss(
    model: &Supernet,
    batcher: &mut Batcher,
    step: &Step<'_>,
    times: &mut StepTimes,
) -> Result<Tensor<1>> {
    let [n, c, h, w] = batcher.dims();
    let y =
        Tensor::<1, Int>::from_data(TensorData::new(batcher.labels().to_vec(), [n]), step.device);
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
            let logits = model.forward(input(first.resolution, times), first, BnMode::Train);
            let soft = teacher_probs(logits.clone());
            let mut total = cross_entropy_smooth(logits, y, ls);
            for a in rest {
                let x = input(a.resolution, times);
                total = total + distill(model.forward(x, a, BnMode::Train), soft.clone());
            }
            total
        }
        Distillation::Teacher(teacher) => {
            let mut total: Option<Tensor<1>> = None;
            for a in step.archs {
                let x = input(a.resolution, times);
                let logits = model.forward(x.clone(), a, BnMode::Train);
                let l = teacher_loss(logits, &x, a, &y, teacher, ls);
                total = Some(match total {
                    Some(t) => t + l,
                    None => l,
                });
            }
            total.ok_or_else(|| Error::config("training step", "no sub-net to train"))?
        }
    };
    Ok(total)
}

/// A sub-net's loss under [`Distillation::Teacher`]: label-smoothed cross-entropy against
/// `targets`, plus the distillation loss against the frozen teacher's largest sub-net at the
/// same resolution (when there is a teacher) on the same input `x`.
pub(crate) fn teacher_loss(
    logits: Tensor<2>,
    x: &Tensor<4>,
    arch: &ArchConfig,
    targets: &Tensor<1, Int>,
    teacher: Option<&Supernet>,
    label_smoothing: f64,
) -> Tensor<1> {
    let l = cross_entropy_smooth(logits.clone(), targets.clone(), label_smoothing);
    let Some(t) = teacher else {
        return l;
    };
    let teacher_arch = ArchConfig {
        resolution: arch.resolution,
        ..ArchConfig::max(&t.space)
    };
    let tl = t.forward(x.clone().inner(), &teacher_arch, BnMode::Train);
    let soft = Tensor::<2>::from_inner(burn::tensor::activation::softmax(tl, 1));
    l + distill(logits, soft)
}

/// `[n·c·r·r]` floats as an `[n, c, r, r]` tensor on `device`.
pub(crate) fn to_tensor(x: &[f32], n: usize, c: usize, r: usize, device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(x.to_vec(), [n * c * r * r]), device)
        .reshape([n, c, r, r])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::Augment;
    use crate::space::SearchSpace;
    use crate::train::config::OptimizerConfig;

    use crate::data::toy::toy_dataset;

    fn plain_sgd() -> Optimizer {
        // no momentum carried over and no decay: a weight moves only by its own gradient
        Optimizer::new(OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        })
    }

    struct Fixture {
        space: SearchSpace,
        device: Device,
        batcher: Batcher,
    }

    fn fixture() -> Fixture {
        let space = SearchSpace::tiny(1, 4, 12);
        let data = toy_dataset(16, 12, 4, 0);
        let mut batcher = Batcher::new(vec![0.3], vec![0.3]);
        let idx: Vec<usize> = (0..16).collect();
        batcher.fill::<rand_chacha::ChaCha8Rng>(&data, &idx, Augment::none(), None);
        Fixture {
            space,
            device: Device::flex().autodiff(),
            batcher,
        }
    }

    /// One step of `archs` on a fresh supernet (seed 1); returns it before and after.
    fn one_step(
        f: &mut Fixture,
        archs: &[ArchConfig],
        d: Distillation<'_>,
    ) -> (Supernet, Supernet) {
        let net = Supernet::new(&f.space, 1, &f.device).unwrap();
        let before = net.clone();
        let step = Step {
            archs,
            distillation: d,
            label_smoothing: 0.1,
            lr: 0.1,
            device: &f.device,
        };
        let (after, out) = train_step(net, &mut plain_sgd(), &mut f.batcher, &step).unwrap();
        assert!(out.loss.is_finite() && out.loss > 0.0, "{}", out.loss);
        (before, after)
    }

    fn values<const D: usize>(t: &burn::module::Param<Tensor<D>>) -> Vec<f32> {
        t.val().into_data().try_to_vec::<f32>().unwrap()
    }

    /// The border of each channel's 5×5 depthwise kernel (used by kernel 5 only).
    fn border(w: &[f32]) -> Vec<f32> {
        w.chunks(25)
            .flat_map(|k| {
                (0..25)
                    .filter(|i| i / 5 == 0 || i / 5 == 4 || i % 5 == 0 || i % 5 == 4)
                    .map(|i| k[i])
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn the_smallest_subnet_alone_moves_only_its_own_slice() {
        let mut f = fixture();
        let min = ArchConfig::min(&f.space);
        let (before, after) = one_step(
            &mut f,
            std::slice::from_ref(&min),
            Distillation::Teacher(None),
        );
        // stage 0, block 0: the expand conv's first in·e_min output channels moved, the rest not
        let (b0, a0) = (&before.stages[0][0], &after.stages[0][0]);
        let active = b0.in_channels * min.expand_ratios[0][0];
        let per_row = b0.in_channels;
        let (wb, wa) = (values(&b0.expand.weight), values(&a0.expand.weight));
        let (inside_b, outside_b) = wb.split_at(active * per_row);
        let (inside_a, outside_a) = wa.split_at(active * per_row);
        assert!(!outside_b.is_empty());
        assert_eq!(
            outside_a, outside_b,
            "channels beyond the smallest sub-net moved"
        );
        assert_ne!(
            inside_a, inside_b,
            "the smallest sub-net's own channels did not move"
        );
        // stage 0, block 1 lies beyond the smallest depth: untouched
        let (b1, a1) = (&before.stages[0][1], &after.stages[0][1]);
        assert_eq!(values(&a1.expand.weight), values(&b1.expand.weight));
        assert_eq!(values(&a1.dw.weight), values(&b1.dw.weight));
        assert_eq!(values(&a1.project.weight), values(&b1.project.weight));
    }

    #[test]
    fn a_sandwich_step_trains_the_largest_the_smallest_and_the_random_subnet() {
        let mut f = fixture();
        let (max, min) = (ArchConfig::max(&f.space), ArchConfig::min(&f.space));
        // "random": the largest but with kernel 3 in stage 0's second block, the only sub-net
        // of the three that uses that block's 3×3 transform
        let mut mid = max.clone();
        mid.kernel_sizes[0][1] = 3;
        mid.expand_ratios[0][1] = 2;
        let all = [max.clone(), min.clone(), mid.clone()];
        let (before, sandwich) = one_step(&mut f, &all, Distillation::InPlace);
        let t3 = |n: &Supernet, block: usize| values(&n.stages[0][block].dw.transforms[0]);
        let dw5 = |n: &Supernet| border(&values(&n.stages[0][1].dw.weight));

        // the random sub-net: block 1's 3×3 transform moved, and does not without it
        assert_ne!(t3(&sandwich, 1), t3(&before, 1));
        let (_, no_random) = one_step(&mut f, &all[..2], Distillation::InPlace);
        assert_eq!(t3(&no_random, 1), t3(&before, 1));

        // the smallest: only it runs kernel 3 in block 0
        assert_ne!(t3(&sandwich, 0), t3(&before, 0));
        let (_, no_smallest) = one_step(&mut f, &[max.clone(), mid.clone()], Distillation::InPlace);
        assert_eq!(t3(&no_smallest, 0), t3(&before, 0));

        // the largest: only it runs kernel 5 in block 1 (the border of its 5×5 kernels)
        assert_ne!(dw5(&sandwich), dw5(&before));
        let (_, no_largest) = one_step(&mut f, &[min, mid], Distillation::Teacher(None));
        assert_eq!(dw5(&no_largest), dw5(&before));
    }

    #[test]
    fn repeated_steps_on_one_batch_drive_its_loss_down() {
        let mut f = fixture();
        let archs = [ArchConfig::max(&f.space), ArchConfig::min(&f.space)];
        let mut net = Supernet::new(&f.space, 1, &f.device).unwrap();
        let mut optim = Optimizer::new(OptimizerConfig::Sgd {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.0,
        });
        let mut losses = Vec::new();
        for _ in 0..30 {
            let step = Step {
                archs: &archs,
                distillation: Distillation::InPlace,
                label_smoothing: 0.0,
                lr: 0.05,
                device: &f.device,
            };
            let (next, out) = train_step(net, &mut optim, &mut f.batcher, &step).unwrap();
            net = next;
            losses.push(out.loss);
        }
        assert!(losses[29] < 0.5 * losses[0], "{losses:?}");
    }
}
