//! Data-parallel training: one step's batch split into shards, each shard's forwards and
//! backward on its own device (or, on the CPU, its own thread), the gradients averaged on the
//! first device by our own code, then one optimizer update.
//!
//! burn 0.22 has an all-reduce (`burn::tensor::distributed`), but only the cubecl backends (wgpu,
//! cuda) implement it; the flex CPU backend's is `unimplemented!()`. Averaging here works on every
//! backend: the gradients are moved to the first device and summed there, which on N GPUs costs
//! one copy per replica (fine for nets of a few hundred thousand weights; an all-reduce would
//! overlap it with the backward).
//!
//! Batch norm uses each shard's own batch statistics, as PyTorch's `DistributedDataParallel`
//! does without `SyncBatchNorm`, so N shards of B/N images are not the same step as one batch of
//! B: they are the same step as one device summing the N shards' losses in one graph, which
//! the tests check.

use std::time::Instant;

use burn::module::{ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

use super::optim::Optimizer;
use super::step::{Distillation, Step, StepOutcome, StepTimes, step_loss, train_step};
use crate::data::Batcher;
use crate::error::{Error, Result};
use crate::net::Supernet;

/// One replica of a data-parallel step: where it runs and the shard of the batch it gets.
pub struct Shard<'a> {
    /// The replica's autodiff device (on the CPU, every shard can name the same device: each
    /// shard then runs on its own thread).
    pub device: Device,
    /// The shard's images and labels (filled by [`Batcher::fill`]).
    pub batcher: &'a mut Batcher,
}

/// A data-parallel [`super::step::train_step`]: every shard runs `step`'s sub-nets on its own
/// copy of `model` on its own device and thread; the gradients are averaged on `step.device`
/// (the device `model` lives on) and `optim` updates the model once. With one shard on
/// `step.device` this is `train_step` exactly. The reported loss is the shards' mean.
///
/// # Errors
/// [`Error::InvalidConfig`] when `shards` or `step.archs` is empty, [`Error::Diverged`] when
/// a shard's loss is not finite (the model is then not updated).
pub fn data_parallel_step(
    model: Supernet,
    optim: &mut Optimizer,
    shards: &mut [Shard<'_>],
    step: &Step<'_>,
) -> Result<(Supernet, StepOutcome)> {
    if shards.is_empty() {
        return Err(Error::config(
            "data-parallel step",
            "no shard: give at least one device",
        ));
    }
    if let [one] = shards
        && one.device == *step.device
    {
        return train_step(model, optim, one.batcher, step);
    }
    let replicas: Vec<Result<ShardResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter_mut()
            .map(|shard| {
                let replica = model.clone().fork(&shard.device);
                scope.spawn(move || shard_gradients(replica, shard, step))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let t_sum = Instant::now();
    let n = replicas.len();
    let scale = 1.0 / n as f32;
    let mut times = StepTimes::default();
    let mut loss = 0.0f32;
    let mut grads = GradientsParams::new();
    for r in replicas {
        let r = r?;
        loss += r.loss * scale;
        times.input_s += r.times.input_s / n as f64;
        times.forward_s += r.times.forward_s / n as f64;
        times.backward_s += r.times.backward_s / n as f64;
        model.visit(&mut Accumulate {
            acc: &mut grads,
            other: r.grads.to_device(step.device, &model),
            scale,
        });
    }
    let model = optim.step(step.lr, model, grads);
    // the shards' parts are their means (they ran at the same time); averaging the gradients
    // counts as part of the update
    times.optimizer_s = t_sum.elapsed().as_secs_f64();
    Ok((model, StepOutcome { loss, times }))
}

struct ShardResult {
    grads: GradientsParams,
    loss: f32,
    times: StepTimes,
}

fn shard_gradients(
    replica: Supernet,
    shard: &mut Shard<'_>,
    step: &Step<'_>,
) -> Result<ShardResult> {
    // a frozen teacher on another device is copied there (once a step: the model's replica is
    // too); on the model's own device the shard borrows it
    let moved_teacher = match step.distillation {
        Distillation::Teacher(Some(t)) if shard.device != *step.device => {
            Some(t.clone().fork(&shard.device.clone().inner()))
        }
        _ => None,
    };
    let local = Step {
        distillation: match (step.distillation, &moved_teacher) {
            (Distillation::Teacher(_), Some(t)) => Distillation::Teacher(Some(t)),
            (d, _) => d,
        },
        device: &shard.device,
        ..*step
    };
    let mut times = StepTimes::default();
    let t0 = Instant::now();
    let total = step_loss(&replica, shard.batcher, &local, &mut times)?;
    let t1 = Instant::now();
    times.forward_s = (t1 - t0).as_secs_f64() - times.input_s;
    let grads = GradientsParams::from_grads(total.backward(), &replica);
    let loss: f32 = total.detach().into_scalar();
    times.backward_s = t1.elapsed().as_secs_f64();
    if !loss.is_finite() {
        return Err(Error::Diverged { loss });
    }
    Ok(ShardResult { grads, loss, times })
}

/// Moves every float parameter's gradient from `other` into `acc`, multiplied by `scale` and
/// added to what `acc` holds.
pub(super) struct Accumulate<'a> {
    /// Where the sums go.
    pub(super) acc: &'a mut GradientsParams,
    /// The gradients to add.
    pub(super) other: GradientsParams,
    /// Their weight.
    pub(super) scale: f32,
}

impl ModuleVisitor for Accumulate<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        add_grad::<D>(self.acc, &mut self.other, param.id, self.scale);
    }
}

fn add_grad<const D: usize>(
    acc: &mut GradientsParams,
    other: &mut GradientsParams,
    id: ParamId,
    scale: f32,
) {
    let Some(g) = other.remove::<D>(id) else {
        return;
    };
    // one replica: its gradients as they are (the plain step, bit for bit)
    let g = if scale == 1.0 { g } else { g.mul_scalar(scale) };
    let sum = match acc.remove::<D>(id) {
        Some(a) => a + g,
        None => g,
    };
    acc.register(id, sum);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::Augment;
    use crate::data::toy::toy_dataset;
    use crate::space::{ArchConfig, SearchSpace};
    use crate::train::config::OptimizerConfig;

    /// SGD-Nesterov with decay, as the trainer runs it.
    pub(crate) fn sgd() -> Optimizer {
        Optimizer::new(OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 1e-4,
        })
    }

    /// The toy images `idx` (of 16) batched.
    pub(crate) fn batcher(idx: std::ops::Range<usize>) -> Batcher {
        let data = toy_dataset(16, 12, 4, 0);
        let mut b = Batcher::new(vec![0.3], vec![0.3]);
        let idx: Vec<usize> = idx.collect();
        b.fill::<rand_chacha::ChaCha8Rng>(&data, &idx, Augment::none(), None);
        b
    }

    /// Every float weight of `net`, in visit order.
    pub(crate) fn weights(net: &Supernet) -> Vec<f32> {
        struct All(Vec<f32>);
        impl ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0.extend(p.val().into_data().iter::<f32>());
            }
        }
        let mut all = All(Vec::new());
        net.visit(&mut all);
        all.0
    }

    fn setup() -> (SearchSpace, Device, Vec<ArchConfig>) {
        let space = SearchSpace::tiny(1, 4, 12);
        let archs = vec![ArchConfig::max(&space), ArchConfig::min(&space)];
        (space, Device::flex().autodiff(), archs)
    }

    /// A sandwich step of `archs` (largest first) at lr 0.1.
    fn sandwich<'a>(archs: &'a [ArchConfig], device: &'a Device) -> Step<'a> {
        Step {
            archs,
            distillation: Distillation::InPlace,
            label_smoothing: 0.1,
            lr: 0.1,
            device,
        }
    }

    /// The largest absolute difference of two nets' weights.
    fn max_diff(a: &Supernet, b: &Supernet) -> f32 {
        weights(a)
            .iter()
            .zip(&weights(b))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max)
    }

    #[test]
    fn one_shard_is_the_single_device_step_exactly() {
        let (space, device, archs) = setup();
        let step = sandwich(&archs, &device);
        let net = Supernet::new(&space, 3, &device).unwrap();
        let (single, s_out) =
            train_step(net.clone(), &mut sgd(), &mut batcher(0..16), &step).unwrap();
        let mut b = batcher(0..16);
        let mut shards = [Shard {
            device: device.clone(),
            batcher: &mut b,
        }];
        let (dp, d_out) = data_parallel_step(net.clone(), &mut sgd(), &mut shards, &step).unwrap();
        assert_eq!(s_out.loss, d_out.loss);
        assert_eq!(weights(&single), weights(&dp));
        assert_ne!(weights(&single), weights(&net), "the step moved nothing");
    }

    #[test]
    fn two_shards_on_two_threads_equal_one_device_summing_both_shards() {
        let (space, device, archs) = setup();
        let step = sandwich(&archs, &device);
        let net = Supernet::new(&space, 5, &device).unwrap();

        // one device, one graph: the mean of the two shards' losses, one backward
        let mut t = StepTimes::default();
        let (mut b0, mut b1) = (batcher(0..8), batcher(8..16));
        let l0 = step_loss(&net, &mut b0, &step, &mut t).unwrap();
        let l1 = step_loss(&net, &mut b1, &step, &mut t).unwrap();
        let total = (l0 + l1).mul_scalar(0.5);
        let grads = GradientsParams::from_grads(total.backward(), &net);
        let want_loss: f32 = total.into_scalar();
        let want = sgd().step(0.1, net.clone(), grads);

        let (mut b0, mut b1) = (batcher(0..8), batcher(8..16));
        let mut shards = [
            Shard {
                device: device.clone(),
                batcher: &mut b0,
            },
            Shard {
                device: device.clone(),
                batcher: &mut b1,
            },
        ];
        let (got, out) = data_parallel_step(net.clone(), &mut sgd(), &mut shards, &step).unwrap();
        assert!(
            (out.loss - want_loss).abs() < 1e-5,
            "{} vs {want_loss}",
            out.loss
        );
        let moved = max_diff(&want, &net);
        let diff = max_diff(&want, &got);
        assert!(moved > 1e-3, "the step moved the weights by only {moved}");
        assert!(
            diff < 1e-5,
            "data-parallel and single-device steps differ by {diff}"
        );

        // and it is not simply the full batch of 16 in one shard (BN statistics are per shard)
        let (full, _) = train_step(net, &mut sgd(), &mut batcher(0..16), &step).unwrap();
        let d_full = max_diff(&full, &got);
        assert!(d_full > 1e-5, "{d_full}");
    }

    #[test]
    fn no_shard_is_an_error() {
        let (space, device, archs) = setup();
        let step = sandwich(&archs, &device);
        let net = Supernet::new(&space, 1, &device).unwrap();
        let e = data_parallel_step(net, &mut sgd(), &mut [], &step).unwrap_err();
        assert!(e.to_string().contains("no shard"), "{e}");
    }
}
