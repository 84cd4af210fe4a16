//! Evaluation: BN recalibration for a sub-net, then top-1 accuracy.

use burn::prelude::*;

use crate::data::{Augment, Batcher, Dataset};
use crate::elastic::BnMode;
use crate::net::Supernet;
use crate::space::ArchConfig;

/// Batch size used for recalibration and evaluation.
pub const EVAL_BATCH: usize = 250;

/// Resets and re-estimates every BN's running statistics for `arch` on the first `n` images of
/// `ds` (no augmentation): an exact average over the batches.
pub fn recalibrate_bn(
    model: &Supernet,
    arch: &ArchConfig,
    ds: &Dataset,
    batcher: &mut Batcher,
    n: usize,
    device: &Device,
) {
    model.reset_bn_stats();
    let n = n.min(ds.len());
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let idx: Vec<usize> = (0..n).collect();
    for (i, chunk) in idx.chunks(EVAL_BATCH).enumerate() {
        if chunk.len() < 2 {
            break;
        }
        batcher.fill::<rand_chacha::ChaCha8Rng>(ds, chunk, Augment::none(), None);
        let x = batcher
            .resized(chunk.len(), c, h, w, arch.resolution)
            .to_vec();
        let x = Tensor::<1>::from_data(
            TensorData::new(x, [chunk.len() * c * arch.resolution * arch.resolution]),
            device,
        )
        .reshape([chunk.len(), c, arch.resolution, arch.resolution]);
        let _ = model.forward(
            x,
            arch,
            BnMode::Calibrate {
                momentum: 1.0 / (i as f32 + 1.0),
            },
        );
    }
}

/// Top-1 accuracy (0..1) of `arch` on the first `limit` images of `ds`, BN in eval mode.
pub fn evaluate(
    model: &Supernet,
    arch: &ArchConfig,
    ds: &Dataset,
    batcher: &mut Batcher,
    limit: Option<usize>,
    device: &Device,
) -> f64 {
    top1(ds, batcher, limit, arch.resolution, device, |x| {
        model.forward(x, arch, BnMode::Eval)
    })
}

/// Top-1 accuracy (0..1) of `forward` on the first `limit` images of `ds` (all when `None`),
/// normalised by `batcher` and resized to `resolution`, in batches of [`EVAL_BATCH`]. The one
/// evaluation loop of the supernet and of extracted networks.
pub fn top1(
    ds: &Dataset,
    batcher: &mut Batcher,
    limit: Option<usize>,
    resolution: usize,
    device: &Device,
    forward: impl Fn(Tensor<4>) -> Tensor<2>,
) -> f64 {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    let (c, h, w) = (ds.channels, ds.height, ds.width);
    let r = resolution;
    let idx: Vec<usize> = (0..n).collect();
    let mut correct = 0usize;
    for chunk in idx.chunks(EVAL_BATCH) {
        let (_, labels) = batcher.fill::<rand_chacha::ChaCha8Rng>(ds, chunk, Augment::none(), None);
        let labels = labels.to_vec();
        let x = batcher.resized(chunk.len(), c, h, w, r).to_vec();
        let x = Tensor::<1>::from_data(TensorData::new(x, [chunk.len() * c * r * r]), device)
            .reshape([chunk.len(), c, r, r]);
        let pred = forward(x).argmax(1).reshape([chunk.len()]);
        let pred: Vec<i64> = pred
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap_or_default();
        correct += pred.iter().zip(&labels).filter(|(p, l)| p == l).count();
    }
    correct as f64 / n.max(1) as f64
}
