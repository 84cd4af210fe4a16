//! The elastic supernet: every sub-network of a [`SearchSpace`] runs on one set of weights.

use burn::module::Param;
use burn::prelude::*;
use rand::SeedableRng;

use crate::block::{MbBlock, permute_bn, remap};
use crate::elastic::{BnMode, ElasticBatchNorm, ElasticConv, init};
use crate::error::{Error, Result};
use crate::space::{ArchConfig, SearchSpace};

/// The once-for-all supernet.
#[derive(Module, Debug)]
pub struct Supernet {
    /// Stem k=3 conv.
    pub stem: ElasticConv,
    /// Stem BN.
    pub stem_bn: ElasticBatchNorm,
    /// `stages[s][b]`: block `b` of stage `s` (max depth blocks per stage).
    pub stages: Vec<Vec<MbBlock>>,
    /// Final 1×1 conv.
    pub head: ElasticConv,
    /// Its BN.
    pub head_bn: ElasticBatchNorm,
    /// Classifier weight `[classes, head_channels]`.
    pub fc_weight: Param<Tensor<2>>,
    /// Classifier bias `[classes]`.
    pub fc_bias: Param<Tensor<1>>,
    /// The search space this supernet was built for.
    #[module(skip)]
    pub space: SearchSpace,
}

impl Supernet {
    /// A freshly initialised supernet, weights drawn from a ChaCha8 RNG seeded with `seed`.
    ///
    /// # Errors
    /// If the space does not validate.
    pub fn new(space: &SearchSpace, seed: u64, device: &Device) -> Result<Self> {
        space.validate()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let stem = ElasticConv::new(
            space.in_channels,
            space.stem_channels,
            3,
            space.stem_stride,
            &mut rng,
            device,
        );
        let mut stages = Vec::new();
        for (s, st) in space.stages.iter().enumerate() {
            let blocks = (0..space.max_depth())
                .map(|b| {
                    let cin = if b == 0 { space.stage_in(s) } else { st.width };
                    let stride = if b == 0 { st.stride } else { 1 };
                    MbBlock::new(
                        cin,
                        st.width,
                        stride,
                        space.max_expand(),
                        &space.kernel_sizes,
                        st.act,
                        &mut rng,
                        device,
                    )
                })
                .collect();
            stages.push(blocks);
        }
        let head = ElasticConv::new(
            space.last_width(),
            space.head_channels,
            1,
            1,
            &mut rng,
            device,
        );
        let fc_weight = init::normal(
            [space.num_classes, space.head_channels],
            0.01,
            &mut rng,
            device,
        );
        Ok(Self {
            stem,
            stem_bn: ElasticBatchNorm::new(space.stem_channels, device),
            stages,
            head,
            head_bn: ElasticBatchNorm::new(space.head_channels, device),
            fc_weight: Param::from_tensor(fc_weight),
            fc_bias: Param::from_tensor(Tensor::zeros([space.num_classes], device)),
            space: space.clone(),
        })
    }

    /// Runs sub-network `arch` (assumed valid: see [`Supernet::try_forward`]): each stage at
    /// its active width (the project convs and their BN write the first `width` channels, the
    /// next expand conv or the head reads them).
    ///
    /// # Shapes
    /// `x: [n, in_channels, arch.resolution, arch.resolution]` → logits `[n, num_classes]`
    pub fn forward(&self, x: Tensor<4>, arch: &ArchConfig, mode: BnMode) -> Tensor<2> {
        let sp = &self.space;
        let mut x = self.stem_bn.forward_act(
            self.stem.forward(x, sp.stem_channels),
            mode,
            Some(crate::space::STEM_ACT),
        );
        for (s, blocks) in self.stages.iter().enumerate() {
            let width = arch.stage_width(sp, s);
            for (b, block) in blocks.iter().take(arch.depths[s]).enumerate() {
                let (k, e) = (arch.kernel_sizes[s][b], arch.expand_ratios[s][b]);
                x = block.forward_width(x, k, e, width, mode);
            }
        }
        let x = self.head_bn.forward_act(
            self.head.forward(x, sp.head_channels),
            mode,
            Some(crate::space::HEAD_ACT),
        );
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([n, c]);
        pooled.matmul(self.fc_weight.val().transpose()) + self.fc_bias.val().unsqueeze_dim(0)
    }

    /// [`Supernet::forward`] after checking the arch and the input shape.
    ///
    /// # Errors
    /// An arch outside the space, or an input of the wrong shape.
    pub fn try_forward(&self, x: Tensor<4>, arch: &ArchConfig, mode: BnMode) -> Result<Tensor<2>> {
        arch.validate(&self.space)?;
        let d = x.dims();
        let want = [
            d[0],
            self.space.in_channels,
            arch.resolution,
            arch.resolution,
        ];
        if d != want || d[0] == 0 {
            return Err(Error::Shape {
                what: "supernet input".into(),
                expected: want.to_vec(),
                got: d.to_vec(),
            });
        }
        Ok(self.forward(x, arch, mode))
    }

    /// Sorts every block's hidden channels by importance (see [`MbBlock::sort_channels`]).
    /// The largest sub-net's function is unchanged.
    pub fn sort_channels(self) -> Self {
        let Supernet {
            stem,
            stem_bn,
            stages,
            head,
            head_bn,
            fc_weight,
            fc_bias,
            space,
        } = self;
        let stages = stages
            .into_iter()
            .map(|bs| bs.into_iter().map(MbBlock::sort_channels).collect())
            .collect();
        Supernet {
            stem,
            stem_bn,
            stages,
            head,
            head_bn,
            fc_weight,
            fc_bias,
            space,
        }
    }

    /// Sorts each stage's output channels by importance, so the first `w` channels that a
    /// narrower width keeps are the most important ones; the full network's function is
    /// unchanged. A stage's channels are written by its blocks' project convs (and BN) and
    /// read by its later blocks' expand convs, the next stage's first expand conv or the head;
    /// importance is the L1 norm of the weights that read a channel (every reader, active or
    /// not). A stage whose first block adds its input at full width (stride 1, equal widths)
    /// shares its channels with the stage (or stem) before it: they get one permutation, of
    /// the summed importance. Does nothing in a space without elastic width.
    pub fn sort_stage_channels(self) -> Self {
        if !self.space.has_elastic_width() {
            return self;
        }
        let n = self.stages.len();
        // channel space 0: the stem's output; 1 + s: stage s's
        let group = channel_groups(&self.space);
        let mut net = self;
        for g in 0..=n {
            let members: Vec<usize> = (0..=n).filter(|&i| group[i] == g).collect();
            if !members.iter().any(|&i| i > 0) {
                continue; // the stem alone is not elastic
            }
            let imp = net.channel_importance(&members);
            let mut order: Vec<usize> = (0..imp.len()).collect();
            order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
            net = net.permute_channel_spaces(&members, &order);
        }
        net
    }

    /// Summed importance of the channels of `spaces` (see [`Supernet::sort_stage_channels`]).
    fn channel_importance(&self, spaces: &[usize]) -> Vec<f32> {
        let mut imp: Vec<f32> = Vec::new();
        let mut add = |v: Vec<f32>| {
            imp.resize(imp.len().max(v.len()), 0.0);
            for (a, b) in imp.iter_mut().zip(v) {
                *a += b;
            }
        };
        for (s, blocks) in self.stages.iter().enumerate() {
            for (b, block) in blocks.iter().enumerate() {
                let reads = if b == 0 { s } else { s + 1 };
                if spaces.contains(&reads) {
                    add(block.input_importance());
                }
            }
        }
        if spaces.contains(&self.stages.len()) {
            let w = self.head.weight.val().detach();
            let v = w.abs().sum_dim(0).sum_dim(2).sum_dim(3);
            let c = v.dims()[1];
            add(v
                .reshape([c])
                .into_data()
                .try_to_vec::<f32>()
                .unwrap_or_default());
        }
        imp
    }

    /// Applies the channel permutation `order` (`order[new] = old`) to every layer that
    /// writes or reads the channel spaces `spaces` (0: the stem's output, 1 + s: stage s's).
    fn permute_channel_spaces(self, spaces: &[usize], order: &[usize]) -> Self {
        let device = self.fc_bias.val().device();
        let ids: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(ids, [order.len()]), &device);
        let Supernet {
            mut stem,
            mut stem_bn,
            stages,
            mut head,
            head_bn,
            fc_weight,
            fc_bias,
            space,
        } = self;
        if spaces.contains(&0) {
            stem.weight = remap(stem.weight, |t| t.select(0, idx.clone()));
            stem_bn = permute_bn(stem_bn, &idx);
        }
        let n = stages.len();
        let stages = stages
            .into_iter()
            .enumerate()
            .map(|(s, blocks)| {
                blocks
                    .into_iter()
                    .enumerate()
                    .map(|(b, mut block)| {
                        let reads = if b == 0 { s } else { s + 1 };
                        if spaces.contains(&reads) {
                            block = block.permute_input(&idx);
                        }
                        if spaces.contains(&(s + 1)) {
                            block = block.permute_output(&idx);
                        }
                        block
                    })
                    .collect()
            })
            .collect();
        if spaces.contains(&n) {
            head.weight = remap(head.weight, |t| t.select(1, idx.clone()));
        }
        Supernet {
            stem,
            stem_bn,
            stages,
            head,
            head_bn,
            fc_weight,
            fc_bias,
            space,
        }
    }

    /// Every BN layer of the network, in order.
    pub fn batch_norms(&self) -> Vec<&ElasticBatchNorm> {
        let mut v = vec![&self.stem_bn];
        for b in self.stages.iter().flatten() {
            v.extend([&b.expand_bn, &b.dw_bn, &b.project_bn]);
        }
        v.push(&self.head_bn);
        v
    }

    /// Resets every BN's running statistics (mean 0, var 1) before a recalibration.
    pub fn reset_bn_stats(&self) {
        for bn in self.batch_norms() {
            let c = bn.max_channels();
            let dev = bn.gamma.val().device();
            bn.running_mean.update(Tensor::zeros([c], &dev));
            bn.running_var.update(Tensor::ones([c], &dev));
        }
    }
}

/// The permutation group of each channel space (0: the stem's output, 1 + s: stage s's): a
/// stage whose first block has a residual at full width shares the group of its input.
fn channel_groups(space: &SearchSpace) -> Vec<usize> {
    let mut group: Vec<usize> = (0..=space.stages.len()).collect();
    for (s, st) in space.stages.iter().enumerate() {
        if st.stride == 1 && space.stage_in(s) == st.width {
            group[s + 1] = group[s];
        }
    }
    group
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::arch_cost;

    fn input(n: usize, c: usize, r: usize, dev: &Device) -> Tensor<4> {
        let len = n * c * r * r;
        let v: Vec<f32> = (0..len).map(|i| ((i as f32) * 0.37).sin()).collect();
        Tensor::<1>::from_data(TensorData::new(v, [len]), dev).reshape([n, c, r, r])
    }

    fn calibrate(net: &Supernet, arch: &ArchConfig, dev: &Device) {
        net.reset_bn_stats();
        for i in 0..3 {
            let x =
                input(8, net.space.in_channels, arch.resolution, dev).add_scalar(i as f32 * 0.1);
            net.forward(
                x,
                arch,
                BnMode::Calibrate {
                    momentum: 1.0 / (i as f32 + 1.0),
                },
            );
        }
    }

    #[test]
    fn every_subnet_runs_with_the_right_shape() {
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 10, 16);
        let net = Supernet::new(&sp, 1, &dev).unwrap();
        for arch in [ArchConfig::max(&sp), ArchConfig::min(&sp)] {
            let y = net
                .try_forward(input(2, 1, arch.resolution, &dev), &arch, BnMode::Train)
                .unwrap();
            assert_eq!(y.dims(), [2, 10]);
        }
        let bad = net.try_forward(input(2, 3, 16, &dev), &ArchConfig::max(&sp), BnMode::Train);
        assert!(bad.unwrap_err().to_string().contains("shape mismatch"));
    }

    #[test]
    fn trainable_params_match_the_cost_model() {
        // The largest sub-net uses every weight except the kernel transform matrices.
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 10, 16);
        let net = Supernet::new(&sp, 1, &dev).unwrap();
        let transforms: usize = net
            .stages
            .iter()
            .flatten()
            .flat_map(|b| b.dw.transforms.iter())
            .map(|t| t.shape().num_elements())
            .sum();
        let bn_running: usize = net.batch_norms().iter().map(|b| 2 * b.max_channels()).sum();
        let c = arch_cost(&sp, &ArchConfig::max(&sp));
        assert_eq!(net.num_params(), c.params + transforms + bn_running);
    }

    #[test]
    fn channel_sorting_leaves_the_full_network_unchanged() {
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 10, 16);
        let net = Supernet::new(&sp, 3, &dev).unwrap();
        let arch = ArchConfig::max(&sp);
        calibrate(&net, &arch, &dev);
        let x = input(4, 1, arch.resolution, &dev);
        let before = net.forward(x.clone(), &arch, BnMode::Eval);
        let imp_before = net.stages[0][0].hidden_importance();
        let net_train_out = net.forward(x.clone(), &arch, BnMode::Train);
        let sorted = net.sort_channels();
        let after = sorted.forward(x.clone(), &arch, BnMode::Eval);
        let t_before = net_train_out.clone();
        let scale: f32 = before.clone().abs().max().into_scalar();
        let diff: f32 = (before.clone() - after).abs().max().into_scalar();
        let tdiff: f32 = (t_before - sorted.forward(x.clone(), &arch, BnMode::Train))
            .abs()
            .max()
            .into_scalar();
        assert!(
            diff < 1e-4 * scale.max(1.0) && tdiff < 1e-4,
            "max diff {diff} (scale {scale}), train-mode diff {tdiff}"
        );
        // Also in train mode (batch statistics).
        let t_after = sorted.forward(x.clone(), &arch, BnMode::Train);
        let imp = sorted.stages[0][0].hidden_importance();
        assert!(imp.windows(2).all(|w| w[0] >= w[1]), "not sorted: {imp:?}");
        let mut a = imp_before.clone();
        a.sort_by(|x, y| y.total_cmp(x));
        assert_eq!(a, imp);
        assert_eq!(t_after.dims(), [4, 10]);
    }

    /// A width-elastic space whose stem and stage 0 share channels (stage 0: stride 1, equal
    /// widths) and whose stages 1 and 2 do too.
    fn linked_width_space() -> SearchSpace {
        let mut sp = SearchSpace::tiny(1, 5, 12);
        sp.stem_channels = 6;
        sp.stages = vec![
            crate::space::StageSpec {
                width: 6,
                stride: 1,
                act: crate::space::Act::Relu,
            },
            crate::space::StageSpec {
                width: 8,
                stride: 2,
                act: crate::space::Act::Hswish,
            },
            crate::space::StageSpec {
                width: 8,
                stride: 1,
                act: crate::space::Act::Hswish,
            },
        ];
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        sp.validate().unwrap();
        sp
    }

    /// Importance of channel space `i` (0 stem, 1 + s stage s), in channel order.
    fn importance(net: &Supernet, spaces: &[usize]) -> Vec<f32> {
        net.channel_importance(spaces)
    }

    #[test]
    fn channel_groups_follow_full_width_residuals() {
        assert_eq!(channel_groups(&linked_width_space()), vec![0, 0, 2, 2]);
        // tiny: stem 4 → 6 stride 2 → 8: nothing shared
        assert_eq!(channel_groups(&SearchSpace::tiny(1, 3, 12)), vec![0, 1, 2]);
    }

    #[test]
    fn stage_sorting_leaves_the_full_network_unchanged_and_orders_importance() {
        let dev = Device::flex();
        let sp = linked_width_space();
        let net = Supernet::new(&sp, 7, &dev).unwrap();
        let arch = ArchConfig::max(&sp);
        calibrate(&net, &arch, &dev);
        let x = input(4, 1, arch.resolution, &dev);
        let eval_before = net.forward(x.clone(), &arch, BnMode::Eval);
        let train_before = net.forward(x.clone(), &arch, BnMode::Train);
        let narrow = ArchConfig::max(&sp).with_multiplier(&sp, 0.5);
        let narrow_before = net.forward(x.clone(), &narrow, BnMode::Train);
        let (g0, g2) = (importance(&net, &[0, 1]), importance(&net, &[2, 3]));
        assert!(
            g0.windows(2).any(|w| w[0] < w[1]) && g2.windows(2).any(|w| w[0] < w[1]),
            "already sorted at init, the test would prove nothing: {g0:?} {g2:?}"
        );
        let sorted = net.sort_stage_channels().sort_channels();
        let eval_after = sorted.forward(x.clone(), &arch, BnMode::Eval);
        let train_after = sorted.forward(x.clone(), &arch, BnMode::Train);
        let scale: f32 = eval_before.clone().abs().max().into_scalar();
        let d_eval: f32 = (eval_before - eval_after).abs().max().into_scalar();
        let d_train: f32 = (train_before - train_after).abs().max().into_scalar();
        assert!(
            d_eval < 1e-4 * scale.max(1.0) && d_train < 1e-4,
            "eval diff {d_eval} (scale {scale}), train diff {d_train}"
        );
        for (spaces, before) in [(&[0, 1][..], g0), (&[2, 3][..], g2)] {
            let after = importance(&sorted, spaces);
            assert!(
                after.windows(2).all(|w| w[0] >= w[1]),
                "{spaces:?}: {after:?}"
            );
            let mut want = before.clone();
            want.sort_by(|a, b| b.total_cmp(a));
            let close = want.iter().zip(&after).all(|(a, b)| (a - b).abs() < 1e-5);
            assert!(close, "{spaces:?}: {want:?} vs {after:?}");
        }
        // a narrowed sub-net now keeps other (the most important) channels
        let narrow_after = sorted.forward(x, &narrow, BnMode::Train);
        let d: f32 = (narrow_before - narrow_after).abs().max().into_scalar();
        assert!(d > 1e-3, "the half-width sub-net did not change: {d}");
    }

    #[test]
    fn stage_sorting_is_a_no_op_without_elastic_width() {
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 4, 12);
        let net = Supernet::new(&sp, 3, &dev).unwrap();
        let w = |n: &Supernet| -> Vec<f32> {
            n.stages[0][0]
                .project
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let before = w(&net);
        assert_eq!(w(&net.sort_stage_channels()), before);
    }

    #[test]
    fn narrowed_subnets_run_at_their_widths() {
        let dev = Device::flex();
        let sp = linked_width_space();
        let net = Supernet::new(&sp, 1, &dev).unwrap();
        let arch = ArchConfig::min(&sp);
        assert_eq!(arch.widths, vec![3, 4, 4]);
        let y = net
            .try_forward(input(2, 1, arch.resolution, &dev), &arch, BnMode::Train)
            .unwrap();
        assert_eq!(y.dims(), [2, 5]);
    }

    #[test]
    fn smaller_kernel_is_the_transformed_centre() {
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 10, 16);
        let net = Supernet::new(&sp, 5, &dev).unwrap();
        let dw = &net.stages[0][0].dw;
        // identity transforms at init: the 3x3 kernel is the centre of the 5x5
        let w5 = dw.active_weight(4, 5);
        let w3 = dw.active_weight(4, 3);
        let centre = w5.slice(s![.., .., 1..4, 1..4]);
        let d: f32 = (centre - w3).abs().max().into_scalar();
        assert!(d < 1e-7);
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;
    use crate::plain::PlainNet;

    fn input(n: usize, r: usize, dev: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..n * r * r).map(|i| ((i as f32) * 0.37).sin()).collect();
        Tensor::<1>::from_data(TensorData::new(v, [n * r * r]), dev).reshape([n, 1, r, r])
    }

    fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn outputs_have_their_shape_differ_by_subnet_and_equal_the_extracted_net() {
        let dev = Device::flex();
        for size in [12usize, 16, 28] {
            let sp = SearchSpace::tiny(1, 4, size);
            let net = Supernet::new(&sp, 1, &dev).unwrap();
            let max = ArchConfig::max(&sp);
            // the largest sub-net but with the smallest kernel: same resolution, other weights
            let small_kernel = ArchConfig::uniform(
                &sp,
                max.resolution,
                sp.max_depth(),
                sp.kernel_sizes[0],
                sp.max_expand(),
            );
            let min = ArchConfig::min(&sp);
            let mut eval = Vec::new();
            for arch in [&max, &small_kernel, &min] {
                let x = input(8, arch.resolution, &dev);
                // calibrate on the batch itself, so eval mode has real statistics
                net.forward(x.clone(), arch, BnMode::Calibrate { momentum: 1.0 });
                for mode in [BnMode::Train, BnMode::Eval] {
                    let y = net.forward(x.clone(), arch, mode);
                    assert_eq!(y.dims(), [8, 4], "size {size} {} {mode:?}", arch.short_id());
                    let v = y.clone().into_data().try_to_vec::<f32>().unwrap();
                    assert!(v.iter().all(|v| v.is_finite()), "{v:?}");
                    if mode == BnMode::Eval {
                        eval.push(y);
                    }
                }
                if arch == &max {
                    // the extracted plain net is the same function
                    let plain = PlainNet::extract(&net, arch).unwrap();
                    let d = max_abs_diff(plain.forward(x.clone()), eval[0].clone());
                    assert!(d < 1e-5, "size {size}: extracted differs by {d}");
                }
            }
            // different active sub-nets compute different functions
            let d = max_abs_diff(eval[0].clone(), eval[1].clone());
            assert!(
                d > 1e-3,
                "size {size}: kernel 3 and kernel 5 agree within {d}"
            );
            // and the same sub-net (the last calibrated) twice is the same function
            let again = net.forward(input(8, min.resolution, &dev), &min, BnMode::Eval);
            assert_eq!(max_abs_diff(again, eval[2].clone()), 0.0);
        }
    }
}

#[cfg(test)]
mod autodiff_tests {
    use super::*;
    use burn::optim::GradientsParams;

    #[test]
    fn a_narrowed_stage_gets_gradients_only_in_its_active_slice() {
        let ad = Device::flex().autodiff();
        let mut sp = SearchSpace::tiny(1, 4, 12);
        sp.width_multipliers = vec![0.5, 1.0];
        let net = Supernet::new(&sp, 1, &ad).unwrap();
        // stage 0 at 3 of 6 channels, stage 1 full
        let arch = ArchConfig::max(&sp).with_widths(&sp, [3, 8]);
        let x = Tensor::<4>::ones([2, 1, 12, 12], &ad).mul_scalar(0.3);
        let loss = net.forward(x, &arch, BnMode::Train).powi_scalar(2).sum();
        let g = GradientsParams::from_grads(loss.backward(), &net);
        let rows = |t: Tensor<4, burn::tensor::Float>, dim: usize| -> Vec<f32> {
            t.abs()
                .sum_dim((dim + 1) % 4)
                .sum_dim((dim + 2) % 4)
                .sum_dim((dim + 3) % 4)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        // the project conv of stage 0's block 0 writes 3 of 6 output channels
        let gp: Tensor<4> = g.get(net.stages[0][0].project.weight.id).unwrap();
        let out = rows(gp, 0);
        assert!(out[..3].iter().all(|&v| v > 0.0), "{out:?}");
        assert!(out[3..].iter().all(|&v| v == 0.0), "{out:?}");
        // stage 1's first expand conv reads those 3 input channels only
        let ge: Tensor<4> = g.get(net.stages[1][0].expand.weight.id).unwrap();
        let inp = rows(ge, 1);
        assert!(inp[..3].iter().all(|&v| v > 0.0), "{inp:?}");
        assert!(inp[3..].iter().all(|&v| v == 0.0), "{inp:?}");
    }

    #[test]
    fn sorting_a_trainable_model_keeps_it_trainable() {
        let ad = Device::flex().autodiff();
        let sp = SearchSpace::tiny(1, 4, 12);
        let net = Supernet::new(&sp, 1, &ad).unwrap().sort_channels();
        let arch = ArchConfig::max(&sp);
        let x = Tensor::<4>::ones([2, 1, 12, 12], &ad);
        let loss = net.forward(x, &arch, BnMode::Train).powi_scalar(2).sum();
        let g = GradientsParams::from_grads(loss.backward(), &net);
        let gw: Option<Tensor<4>> = g.get(net.stages[0][0].expand.weight.id);
        assert!(gw.is_some(), "sorted expand weight got no gradient");
    }
}
