//! The plain (extracted) network: exactly one sub-network's shape, no elastic slicing, BN either
//! kept (as a per-channel scale and shift) or folded into the convs. What ships in a bundle.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::block::activate;
use crate::elastic::{BnMode, ElasticBatchNorm};
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::space::{Act, ArchConfig, HEAD_ACT, STEM_ACT, SearchSpace};
use netspec::{FoldedBlock, FoldedConv, FoldedNet};

/// A conv layer of a plain network.
#[derive(Debug, Clone)]
pub struct PlainConv {
    /// `[out, in/groups, k, k]`
    pub weight: Tensor<4>,
    /// `[out]`, present once BN is folded.
    pub bias: Option<Tensor<1>>,
    /// BN as `(scale, shift)` per channel, until folded.
    pub bn: Option<(Tensor<1>, Tensor<1>)>,
    /// Stride.
    pub stride: usize,
    /// Groups (channels for depthwise).
    pub groups: usize,
    /// Activation after the layer, if any.
    pub act: Option<Act>,
}

impl PlainConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let k = self.weight.dims()[2];
        let opts = ConvOptions::new([self.stride; 2], [k / 2, k / 2], [1, 1], self.groups);
        let mut y = conv2d(x, self.weight.clone(), self.bias.clone(), opts);
        if let Some((s, b)) = &self.bn {
            let c = s.dims()[0];
            y = y
                .mul(s.clone().reshape([1, c, 1, 1]))
                .add(b.clone().reshape([1, c, 1, 1]));
        }
        match self.act {
            Some(a) => activate(y, a),
            None => y,
        }
    }

    fn fold(self) -> Self {
        match self.bn {
            None => self,
            Some((s, b)) => {
                let o = s.dims()[0];
                let bias = match self.bias {
                    Some(old) => Some(old.mul(s.clone()).add(b)),
                    None => Some(b),
                };
                let weight = self.weight.mul(s.reshape([o, 1, 1, 1]));
                PlainConv {
                    weight,
                    bias,
                    bn: None,
                    ..self
                }
            }
        }
    }
}

/// One inverted-residual block.
#[derive(Debug, Clone)]
pub struct PlainBlock {
    /// 1×1 expand.
    pub expand: PlainConv,
    /// Depthwise.
    pub dw: PlainConv,
    /// 1×1 project.
    pub project: PlainConv,
    /// Adds the input.
    pub residual: bool,
}

/// A standalone network of one [`ArchConfig`].
#[derive(Debug, Clone)]
pub struct PlainNet {
    /// The space the arch belongs to.
    pub space: SearchSpace,
    /// The arch.
    pub arch: ArchConfig,
    /// Stem.
    pub stem: PlainConv,
    /// Active blocks in order.
    pub blocks: Vec<PlainBlock>,
    /// Head 1×1.
    pub head: PlainConv,
    /// Classifier `[classes, head]`.
    pub fc_weight: Tensor<2>,
    /// Classifier bias.
    pub fc_bias: Tensor<1>,
}

fn bn_of(bn: &ElasticBatchNorm, c: usize) -> (Tensor<1>, Tensor<1>) {
    bn.eval_scale_shift(c)
}

fn sliced(w: Tensor<4>, o: usize, i: usize) -> Tensor<4> {
    w.slice(s![0..o, 0..i, .., ..])
}

impl PlainNet {
    /// Copies `arch`'s active slices (after kernel transforms) out of `net`, with its BN in eval
    /// form (recalibrate the supernet for `arch` first). The result computes exactly what
    /// `net.forward(x, arch, BnMode::Eval)` computes.
    ///
    /// # Errors
    /// An arch outside the supernet's space.
    pub fn extract(net: &Supernet, arch: &ArchConfig) -> Result<Self> {
        let sp = &net.space;
        arch.validate(sp)?;
        let d = |t: Tensor<4>| t.detach();
        let stem = PlainConv {
            weight: d(net.stem.weight.val()),
            bias: None,
            bn: Some(bn_of(&net.stem_bn, sp.stem_channels)),
            stride: net.stem.stride,
            groups: 1,
            act: Some(STEM_ACT),
        };
        let mut blocks = Vec::new();
        for (s, stage) in net.stages.iter().enumerate() {
            let width = arch.stage_width(sp, s);
            for (b, blk) in stage.iter().take(arch.depths[s]).enumerate() {
                let k = arch.kernel_sizes[s][b];
                let cin = arch.block_in(sp, s, b);
                let hidden = cin * arch.expand_ratios[s][b];
                blocks.push(PlainBlock {
                    expand: PlainConv {
                        weight: d(sliced(blk.expand.weight.val(), hidden, cin)),
                        bias: None,
                        bn: Some(bn_of(&blk.expand_bn, hidden)),
                        stride: 1,
                        groups: 1,
                        act: Some(blk.act),
                    },
                    dw: PlainConv {
                        weight: d(blk.dw.active_weight(hidden, k)),
                        bias: None,
                        bn: Some(bn_of(&blk.dw_bn, hidden)),
                        stride: blk.stride,
                        groups: hidden,
                        act: Some(blk.act),
                    },
                    project: PlainConv {
                        weight: d(sliced(blk.project.weight.val(), width, hidden)),
                        bias: None,
                        bn: Some(bn_of(&blk.project_bn, width)),
                        stride: 1,
                        groups: 1,
                        act: None,
                    },
                    residual: arch.block_has_residual(sp, s, b),
                });
            }
        }
        let head = PlainConv {
            weight: d(sliced(
                net.head.weight.val(),
                sp.head_channels,
                arch.last_width(sp),
            )),
            bias: None,
            bn: Some(bn_of(&net.head_bn, sp.head_channels)),
            stride: 1,
            groups: 1,
            act: Some(HEAD_ACT),
        };
        Ok(PlainNet {
            space: sp.clone(),
            arch: arch.clone(),
            stem,
            blocks,
            head,
            fc_weight: net.fc_weight.val().detach(),
            fc_bias: net.fc_bias.val().detach(),
        })
    }

    /// Folds every BN into its conv (weight × scale, bias = shift).
    pub fn fold(self) -> Self {
        PlainNet {
            stem: self.stem.fold(),
            blocks: self
                .blocks
                .into_iter()
                .map(|b| PlainBlock {
                    expand: b.expand.fold(),
                    dw: b.dw.fold(),
                    project: b.project.fold(),
                    residual: b.residual,
                })
                .collect(),
            head: self.head.fold(),
            ..self
        }
    }

    /// Logits.
    ///
    /// # Shapes
    /// `x: [n, in_channels, r, r]` → `[n, classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for b in &self.blocks {
            let y = b.project.forward(b.dw.forward(b.expand.forward(x.clone())));
            x = if b.residual { y + x } else { y };
        }
        let x = self.head.forward(x);
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([n, c]);
        pooled.matmul(self.fc_weight.clone().transpose()) + self.fc_bias.clone().unsqueeze_dim(0)
    }

    /// [`PlainNet::forward`] after checking the input shape.
    ///
    /// # Errors
    /// An input of the wrong shape.
    pub fn try_forward(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let d = x.dims();
        let r = self.arch.resolution;
        let want = [d[0], self.space.in_channels, r, r];
        if d != want || d[0] == 0 {
            return Err(Error::Shape {
                what: "network input".into(),
                expected: want.to_vec(),
                got: d.to_vec(),
            });
        }
        Ok(self.forward(x))
    }

    fn convs(&self) -> Vec<(String, &PlainConv)> {
        netspec::name_layers(
            &self.stem,
            self.blocks.iter().map(|b| [&b.expand, &b.dw, &b.project]),
            &self.head,
        )
    }

    /// The network as plain buffers (BN must be folded): what a variant file holds and what
    /// the runtime's engine is built from.
    ///
    /// # Errors
    /// If BN is not folded yet, or a tensor cannot be read.
    pub fn to_folded(&self) -> Result<FoldedNet> {
        let f4 = |name: &str, t: &Tensor<4>| -> Result<Vec<f32>> {
            t.clone().into_data().try_into_vec::<f32>().map_err(|e| {
                Error::config("network", format!("{name}: cannot read the weights: {e:?}"))
            })
        };
        let conv = |name: &str, c: &PlainConv| -> Result<FoldedConv> {
            if c.bn.is_some() {
                return Err(Error::config("network", "fold BN before saving"));
            }
            let shape = c.weight.dims();
            let bias = match &c.bias {
                Some(b) => b.clone().into_data().try_into_vec::<f32>().map_err(|e| {
                    Error::config("network", format!("{name}: cannot read the bias: {e:?}"))
                })?,
                None => vec![0.0; shape[0]],
            };
            Ok(FoldedConv {
                weight: f4(name, &c.weight)?,
                shape,
                bias,
                stride: c.stride,
                groups: c.groups,
                act: c.act,
            })
        };
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, b) in self.blocks.iter().enumerate() {
            blocks.push(FoldedBlock {
                expand: conv(&format!("blocks.{i}.expand"), &b.expand)?,
                dw: conv(&format!("blocks.{i}.dw"), &b.dw)?,
                project: conv(&format!("blocks.{i}.project"), &b.project)?,
                residual: b.residual,
            });
        }
        let read = |name: &str, v: burn::tensor::TensorData| {
            v.try_into_vec::<f32>()
                .map_err(|e| Error::config("network", format!("{name}: cannot read: {e:?}")))
        };
        Ok(FoldedNet {
            space: self.space.clone(),
            arch: self.arch.clone(),
            stem: conv("stem", &self.stem)?,
            blocks,
            head: conv("head", &self.head)?,
            fc_weight: read("fc.weight", self.fc_weight.clone().into_data())?,
            fc_bias: read("fc.bias", self.fc_bias.clone().into_data())?,
        })
    }

    /// A burn network from plain buffers (the inverse of [`PlainNet::to_folded`]).
    pub fn from_folded(net: &FoldedNet, device: &Device) -> Self {
        let conv = |c: &FoldedConv| {
            let n = c.weight.len();
            PlainConv {
                weight: Tensor::<1>::from_data(TensorData::new(c.weight.clone(), [n]), device)
                    .reshape(c.shape),
                bias: Some(Tensor::from_data(
                    TensorData::new(c.bias.clone(), [c.bias.len()]),
                    device,
                )),
                bn: None,
                stride: c.stride,
                groups: c.groups,
                act: c.act,
            }
        };
        let classes = net.fc_bias.len();
        PlainNet {
            space: net.space.clone(),
            arch: net.arch.clone(),
            stem: conv(&net.stem),
            blocks: net
                .blocks
                .iter()
                .map(|b| PlainBlock {
                    expand: conv(&b.expand),
                    dw: conv(&b.dw),
                    project: conv(&b.project),
                    residual: b.residual,
                })
                .collect(),
            head: conv(&net.head),
            fc_weight: Tensor::<1>::from_data(
                TensorData::new(net.fc_weight.clone(), [net.fc_weight.len()]),
                device,
            )
            .reshape([classes, net.fc_weight.len() / classes.max(1)]),
            fc_bias: Tensor::from_data(TensorData::new(net.fc_bias.clone(), [classes]), device),
        }
    }

    /// Serialises a folded network as safetensors (see [`FoldedNet::to_safetensors`]).
    ///
    /// # Errors
    /// If BN is not folded yet.
    pub fn to_safetensors(&self, int8: bool) -> Result<Vec<u8>> {
        Ok(self.to_folded()?.to_safetensors(int8))
    }

    /// Loads a network written by [`PlainNet::to_safetensors`] (f32 or int8, dequantised to f32),
    /// checking every tensor against the shape `arch` implies. `what` names the file in errors.
    ///
    /// # Errors
    /// Truncated or malformed data, a missing tensor, a tensor of the wrong shape, or a value
    /// that is not finite.
    pub fn from_safetensors(
        bytes: &[u8],
        space: &SearchSpace,
        arch: &ArchConfig,
        what: &str,
        device: &Device,
    ) -> Result<Self> {
        let folded = FoldedNet::from_safetensors(bytes, space, arch, what)?;
        Ok(Self::from_folded(&folded, device))
    }

    /// Stored parameters (after folding: weights + one bias per channel).
    pub fn num_params(&self) -> usize {
        let mut n: usize = self
            .convs()
            .iter()
            .map(|(_, c)| c.weight.shape().num_elements() + c.weight.dims()[0])
            .sum();
        n += self.fc_weight.shape().num_elements() + self.fc_bias.shape().num_elements();
        n
    }
}

/// Used by tests and tools: the supernet's own output for `arch` in eval mode.
pub fn supernet_eval(net: &Supernet, x: Tensor<4>, arch: &ArchConfig) -> Tensor<2> {
    net.forward(x, arch, BnMode::Eval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn input(n: usize, c: usize, r: usize, dev: &Device) -> Tensor<4> {
        let len = n * c * r * r;
        let v: Vec<f32> = (0..len).map(|i| ((i as f32) * 0.13).sin()).collect();
        Tensor::<1>::from_data(TensorData::new(v, [len]), dev).reshape([n, c, r, r])
    }

    #[test]
    fn extracted_equals_supernet_before_and_after_folding_and_after_reload() {
        let sp = SearchSpace::tiny(1, 10, 16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut archs = vec![ArchConfig::max(&sp), ArchConfig::min(&sp)];
        archs.extend((0..3).map(|_| ArchConfig::random(&sp, &mut rng)));
        check_extraction(&sp, archs);
    }

    #[test]
    fn narrowed_archs_extract_to_physically_narrower_networks() {
        // stem 6 and stage 0 (6, stride 1) share a residual at full width; stage 1 is 8 wide
        let mut sp = SearchSpace::tiny(1, 10, 16);
        sp.stem_channels = 6;
        sp.stages[0].stride = 1;
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        sp.validate().unwrap();
        let max = ArchConfig::max(&sp);
        // stage 0 narrowed: its first block loses the residual the full width has
        let s0 = max.clone().with_widths(&sp, [3, 8]);
        assert!(max.block_has_residual(&sp, 0, 0) && !s0.block_has_residual(&sp, 0, 0));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut archs = vec![
            s0,
            max.clone().with_widths(&sp, [6, 4]),
            ArchConfig::min(&sp),
        ];
        archs.extend((0..3).map(|_| ArchConfig::random(&sp, &mut rng)));
        assert!(archs.iter().all(|a| !a.widths.is_empty()), "{archs:?}");
        check_extraction(&sp, archs.clone());
        // the min's folded file is physically smaller than the max's
        let dev = Device::flex();
        let net = Supernet::new(&sp, 11, &dev).unwrap();
        let bytes = |a: &ArchConfig| {
            let p = PlainNet::extract(&net, a).unwrap().fold();
            (p.num_params(), p.to_safetensors(false).unwrap().len())
        };
        let narrow = max.clone().with_multiplier(&sp, 0.5);
        let ((pn, bn), (pf, bf)) = (bytes(&narrow), bytes(&max));
        assert_eq!(pn, crate::space::arch_cost(&sp, &narrow).folded_params);
        assert!(pn < pf && bn < bf, "{pn} {bn} vs {pf} {bf}");
    }

    /// Extraction equals the supernet's eval output before and after folding and after a
    /// reload, for each arch of `space`.
    fn check_extraction(sp: &SearchSpace, archs: Vec<ArchConfig>) {
        let dev = Device::flex();
        let sp = sp.clone();
        let net = Supernet::new(&sp, 11, &dev).unwrap();
        for arch in archs {
            let r = arch.resolution;
            net.reset_bn_stats();
            for i in 0..3 {
                net.forward(
                    input(8, 1, r, &dev).mul_scalar(1.0 + i as f32),
                    &arch,
                    BnMode::Calibrate {
                        momentum: 1.0 / (i as f32 + 1.0),
                    },
                );
            }
            let x = input(4, 1, r, &dev);
            let want = supernet_eval(&net, x.clone(), &arch);
            let p = PlainNet::extract(&net, &arch).unwrap();
            let d1: f32 = (p.forward(x.clone()) - want.clone())
                .abs()
                .max()
                .into_scalar();
            let folded = p.fold();
            let d2: f32 = (folded.forward(x.clone()) - want.clone())
                .abs()
                .max()
                .into_scalar();
            let bytes = folded.to_safetensors(false).unwrap();
            let re = PlainNet::from_safetensors(&bytes, &sp, &arch, "v.safetensors", &dev).unwrap();
            let d3: f32 = (re.forward(x.clone()) - want.clone())
                .abs()
                .max()
                .into_scalar();
            assert!(
                d1 < 1e-4 && d2 < 1e-4 && d3 < 1e-4,
                "{}: {d1} {d2} {d3}",
                arch.short_id()
            );
            assert_eq!(
                re.num_params(),
                crate::space::arch_cost(&sp, &arch).folded_params
            );
            // int8 is close but not exact, and the file is smaller
            let q = folded.to_safetensors(true).unwrap();
            assert!(q.len() < bytes.len());
            let rq = PlainNet::from_safetensors(&q, &sp, &arch, "q.safetensors", &dev).unwrap();
            let scale: f32 = want.clone().abs().max().into_scalar();
            let d4: f32 = (rq.forward(x) - want).abs().max().into_scalar();
            assert!(d4 < 0.1 * scale.max(1e-3), "{d4} vs {scale}");
            // wrong arch for the file
            let other = ArchConfig::max(&sp);
            if other != arch {
                assert!(
                    PlainNet::from_safetensors(&bytes, &sp, &other, "v.safetensors", &dev).is_err()
                );
            }
        }
    }
}
