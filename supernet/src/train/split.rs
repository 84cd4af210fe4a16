//! One training step with its sub-nets split over two workers of the current rayon pool: on
//! a CPU with two cores, one sub-net's ops (small at these sizes) keep one core busy, not two.
//!
//! The step's loss is a sum over sub-nets, so its gradient is the sum of each group's: the two
//! groups run their forwards and backward on their own copy of the model (`fork`: same
//! weights, same parameter ids, their own graph) at the same time, the gradients are summed and
//! the optimizer updates the model once — the same step as [`super::step::train_step`]'s single
//! graph up to float summation order. With in-place distillation the first sub-net (the
//! teacher) forwards first; its detached softmax is every other sub-net's target, so the
//! second group starts after it.
//!
//! Groups are balanced by multiply-accumulates ([`crate::space::arch_cost`]; a teacher's forward
//! counts a third of a step).

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;

use super::loss::{cross_entropy_smooth, distill, teacher_probs};
use super::optim::Optimizer;
use super::parallel::Accumulate;
use super::step::{Distillation, Step, StepOutcome, StepTimes, teacher_loss, to_tensor};
use crate::data::Batcher;
use crate::device::on_flex;
use crate::elastic::BnMode;
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::space::{ArchConfig, arch_cost};

/// Whether [`split_step`] is worth it: at least two sub-nets, at least two pool threads, and
/// the model on the CPU (flex).
pub(crate) fn worth_splitting(step: &Step<'_>) -> bool {
    step.archs.len() >= 2 && rayon::current_num_threads() >= 2 && on_flex(step.device)
}

/// Indices of `step.archs` for the two workers. With in-place distillation the teacher (index
/// 0) is the first group's first sub-net.
fn groups(model: &Supernet, step: &Step<'_>) -> [Vec<usize>; 2] {
    let space = &model.space;
    let teacher_cost = |a: &ArchConfig| match step.distillation {
        Distillation::Teacher(Some(t)) => {
            let max = ArchConfig {
                resolution: a.resolution,
                ..ArchConfig::max(&t.space)
            };
            arch_cost(&t.space, &max).macs as f64 / 3.0
        }
        _ => 0.0,
    };
    let cost: Vec<f64> = step
        .archs
        .iter()
        .map(|a| arch_cost(space, a).macs as f64 + teacher_cost(a))
        .collect();
    let mut order: Vec<usize> = (0..cost.len()).collect();
    let mut out: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
    let mut load = [0.0f64; 2];
    if matches!(step.distillation, Distillation::InPlace) {
        // the second group waits for the teacher's forward (about a third of its step)
        order.remove(0);
        out[0].push(0);
        load = [cost[0], cost[0] / 3.0];
    }
    // longest first, each to the lighter group
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]).then(a.cmp(&b)));
    for i in order {
        let g = usize::from(load[1] < load[0]);
        out[g].push(i);
        load[g] += cost[i];
    }
    for g in &mut out {
        g.sort_unstable();
    }
    out
}

/// What one worker returns.
struct Part {
    grads: GradientsParams,
    loss: f32,
    forward_s: f64,
    backward_s: f64,
}

/// One worker: the loss of its sub-nets (`first`, when given, is the teacher's logits that
/// the worker already computed on `replica`), its backward, the gradients by parameter id.
fn run_part(
    replica: &Supernet,
    archs: &[(&ArchConfig, Tensor<4>)],
    first: Option<Tensor<2>>,
    targets: &Tensor<1, Int>,
    soft: Option<&Tensor<2>>,
    step: &Step<'_>,
) -> Result<Part> {
    let t0 = Instant::now();
    let ls = step.label_smoothing;
    let mut total: Option<Tensor<1>> = first.map(|l| cross_entropy_smooth(l, targets.clone(), ls));
    for (a, x) in archs {
        let logits = replica.forward(x.clone(), a, BnMode::Train);
        let l = match (step.distillation, soft) {
            (Distillation::InPlace, Some(soft)) => distill(logits, soft.clone()),
            (Distillation::InPlace, None) => cross_entropy_smooth(logits, targets.clone(), ls),
            (Distillation::Teacher(teacher), _) => teacher_loss(logits, x, a, targets, teacher, ls),
        };
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    let Some(total) = total else {
        return Ok(Part {
            grads: GradientsParams::new(),
            loss: 0.0,
            forward_s: 0.0,
            backward_s: 0.0,
        });
    };
    let t1 = Instant::now();
    let grads = GradientsParams::from_grads(total.backward(), replica);
    let loss: f32 = total.detach().into_scalar();
    Ok(Part {
        grads,
        loss,
        forward_s: (t1 - t0).as_secs_f64(),
        backward_s: t1.elapsed().as_secs_f64(),
    })
}

/// [`super::step::train_step`] with the sub-nets split over two workers (see the module
/// docs); `train_step` calls it when [`worth_splitting`].
///
/// # Errors
/// As `train_step`: [`Error::InvalidConfig`] for no sub-net, [`Error::Diverged`] for a loss
/// that is not finite (the model is then not updated).
pub(crate) fn split_step(
    model: Supernet,
    optim: &mut Optimizer,
    batcher: &mut Batcher,
    step: &Step<'_>,
) -> Result<(Supernet, StepOutcome)> {
    if step.archs.is_empty() {
        return Err(Error::config("training step", "no sub-net to train"));
    }
    let t0 = Instant::now();
    let mut times = StepTimes::default();
    let [n, c, h, w] = batcher.dims();
    let targets =
        Tensor::<1, Int>::from_data(TensorData::new(batcher.labels().to_vec(), [n]), step.device);
    let inputs: Vec<Tensor<4>> = step
        .archs
        .iter()
        .map(|a| {
            let r = a.resolution;
            to_tensor(batcher.resized(n, c, h, w, r), n, c, r, step.device)
        })
        .collect();
    times.input_s = t0.elapsed().as_secs_f64();
    let [ga, gb] = groups(&model, step);
    let pick = |g: &[usize]| -> Vec<(&ArchConfig, Tensor<4>)> {
        g.iter()
            .map(|&i| (&step.archs[i], inputs[i].clone()))
            .collect()
    };
    let (mut part_a, part_b) = (pick(&ga), pick(&gb));
    // in-place distillation: the teacher forwards first (on the model itself), its softmax is
    // everyone else's target
    let t_first = Instant::now();
    let (first, soft) = match step.distillation {
        Distillation::InPlace => {
            let (a, x) = part_a.remove(0);
            let logits = model.forward(x, a, BnMode::Train);
            let soft = teacher_probs(logits.clone());
            (Some(logits), Some(soft))
        }
        Distillation::Teacher(_) => (None, None),
    };
    let first_s = t_first.elapsed().as_secs_f64();
    let replica = model.clone().fork(step.device);
    let (a, b) = rayon::join(
        || run_part(&model, &part_a, first, &targets, soft.as_ref(), step),
        || run_part(&replica, &part_b, None, &targets, soft.as_ref(), step),
    );
    let (a, b) = (a?, b?);
    let t_sum = Instant::now();
    let loss = a.loss + b.loss;
    times.forward_s = first_s + a.forward_s.max(b.forward_s);
    times.backward_s = a.backward_s.max(b.backward_s);
    if !loss.is_finite() {
        return Err(Error::Diverged { loss });
    }
    let mut grads = a.grads;
    model.visit(&mut Accumulate {
        acc: &mut grads,
        other: b.grads,
        scale: 1.0,
    });
    let model = optim.step(step.lr, model, grads);
    times.optimizer_s = t_sum.elapsed().as_secs_f64();
    Ok((model, StepOutcome { loss, times }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::SearchSpace;
    use crate::train::parallel::tests::{batcher as batch_of, sgd, weights};
    use crate::train::step::serial_step;

    fn batcher() -> Batcher {
        batch_of(0..16)
    }

    fn archs(space: &SearchSpace) -> Vec<ArchConfig> {
        let (max, min) = (ArchConfig::max(space), ArchConfig::min(space));
        let mut mid = max.clone();
        mid.kernel_sizes[0][1] = 3;
        mid.expand_ratios[0][1] = 2;
        vec![max, min, mid]
    }

    /// The split step and the one-graph step give the same loss and the same weights.
    fn check(distillation: Distillation<'_>, space: &SearchSpace, device: &Device) {
        let archs = archs(space);
        let step = Step {
            archs: &archs,
            distillation,
            label_smoothing: 0.1,
            lr: 0.1,
            device,
        };
        let net = Supernet::new(space, 3, device).unwrap();
        let (one, o1) = serial_step(net.clone(), &mut sgd(), &mut batcher(), &step).unwrap();
        let (two, o2) = split_step(net.clone(), &mut sgd(), &mut batcher(), &step).unwrap();
        assert!(
            (o1.loss - o2.loss).abs() < 1e-5,
            "{} vs {}",
            o1.loss,
            o2.loss
        );
        let (w1, w2, w0) = (weights(&one), weights(&two), weights(&net));
        let diff = w1
            .iter()
            .zip(&w2)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let moved = w1
            .iter()
            .zip(&w0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(moved > 1e-3, "the step moved the weights by only {moved}");
        assert!(diff < 1e-5, "split and one-graph steps differ by {diff}");
    }

    #[test]
    fn a_split_sandwich_step_is_the_one_graph_step() {
        let space = SearchSpace::tiny(1, 4, 12);
        check(Distillation::InPlace, &space, &Device::flex().autodiff());
    }

    #[test]
    fn a_split_step_with_a_teacher_is_the_one_graph_step() {
        let space = SearchSpace::tiny(1, 4, 12);
        let device = Device::flex().autodiff();
        let teacher = Supernet::new(&space, 9, &device.clone().inner()).unwrap();
        check(Distillation::Teacher(Some(&teacher)), &space, &device);
        check(Distillation::Teacher(None), &space, &device);
    }

    #[test]
    fn groups_cover_every_subnet_once_and_keep_the_teacher_first() {
        let space = SearchSpace::tiny(1, 4, 12);
        let device = Device::flex().autodiff();
        let net = Supernet::new(&space, 1, &device).unwrap();
        let archs = archs(&space);
        for d in [Distillation::InPlace, Distillation::Teacher(None)] {
            let step = Step {
                archs: &archs,
                distillation: d,
                label_smoothing: 0.0,
                lr: 0.1,
                device: &device,
            };
            let [a, b] = groups(&net, &step);
            let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
            all.sort_unstable();
            assert_eq!(all, vec![0, 1, 2], "{d:?}");
            assert!(!a.is_empty() && !b.is_empty(), "{d:?}: {a:?} {b:?}");
            if matches!(d, Distillation::InPlace) {
                assert_eq!(a[0], 0);
            }
        }
    }
}
