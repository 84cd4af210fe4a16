//! The plain (extracted) network: exactly one sub-network's shape, no elastic slicing, BN either
//! kept (as a per-channel scale and shift) or folded into the convs. What ships in a bundle.

use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::block::activate;
use crate::elastic::{BnMode, ElasticBatchNorm};
use crate::error::{Error, Result};
use crate::net::Supernet;
use crate::space::{ArchConfig, SearchSpace};
use crate::weights::{self, StoredTensor};

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
    /// Activation after the layer: None, Some(false) = ReLU, Some(true) = h-swish.
    pub act: Option<bool>,
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
            Some(h) => activate(y, h),
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
            act: Some(false),
        };
        let mut blocks = Vec::new();
        for (s, stage) in net.stages.iter().enumerate() {
            for (b, blk) in stage.iter().take(arch.depths[s]).enumerate() {
                let k = arch.kernel_sizes[s][b];
                let hidden = blk.in_channels * arch.expand_ratios[s][b];
                blocks.push(PlainBlock {
                    expand: PlainConv {
                        weight: d(sliced(blk.expand.weight.val(), hidden, blk.in_channels)),
                        bias: None,
                        bn: Some(bn_of(&blk.expand_bn, hidden)),
                        stride: 1,
                        groups: 1,
                        act: Some(blk.hswish),
                    },
                    dw: PlainConv {
                        weight: d(blk.dw.active_weight(hidden, k)),
                        bias: None,
                        bn: Some(bn_of(&blk.dw_bn, hidden)),
                        stride: blk.stride,
                        groups: hidden,
                        act: Some(blk.hswish),
                    },
                    project: PlainConv {
                        weight: d(sliced(blk.project.weight.val(), blk.out_channels, hidden)),
                        bias: None,
                        bn: Some(bn_of(&blk.project_bn, blk.out_channels)),
                        stride: 1,
                        groups: 1,
                        act: None,
                    },
                    residual: blk.residual(),
                });
            }
        }
        let head = PlainConv {
            weight: d(net.head.weight.val()),
            bias: None,
            bn: Some(bn_of(&net.head_bn, sp.head_channels)),
            stride: 1,
            groups: 1,
            act: Some(true),
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
        let mut v = vec![("stem".to_string(), &self.stem)];
        for (i, b) in self.blocks.iter().enumerate() {
            v.push((format!("blocks.{i}.expand"), &b.expand));
            v.push((format!("blocks.{i}.dw"), &b.dw));
            v.push((format!("blocks.{i}.project"), &b.project));
        }
        v.push(("head".to_string(), &self.head));
        v
    }

    /// Serialises a folded network as safetensors, weights as f32 or (`int8`) per-output-channel
    /// symmetric int8 with an f32 scale per channel (`NAME.weight_scale`). Biases stay f32.
    /// Metadata holds the arch and space JSON so the file describes itself.
    ///
    /// # Errors
    /// If BN is not folded yet.
    pub fn to_safetensors(&self, int8: bool) -> Result<Vec<u8>> {
        let mut m = BTreeMap::new();
        let f = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap_or_default();
        for (name, c) in self.convs() {
            if c.bn.is_some() {
                return Err(Error::config("network", "fold BN before saving"));
            }
            let shape = c.weight.dims().to_vec();
            let w = f(c.weight.clone());
            if int8 {
                let (q, scales) = quantize_per_channel(&w, shape[0]);
                m.insert(format!("{name}.weight"), StoredTensor::I8(q, shape.clone()));
                m.insert(
                    format!("{name}.weight_scale"),
                    StoredTensor::F32(scales, vec![shape[0]]),
                );
            } else {
                m.insert(
                    format!("{name}.weight"),
                    StoredTensor::F32(w, shape.clone()),
                );
            }
            let b = c
                .bias
                .clone()
                .map(|b| b.into_data().try_to_vec::<f32>().unwrap_or_default())
                .unwrap_or_else(|| vec![0.0; shape[0]]);
            m.insert(format!("{name}.bias"), StoredTensor::F32(b, vec![shape[0]]));
        }
        let fw = self.fc_weight.clone();
        let [o, i] = fw.dims();
        let fwv = fw.into_data().try_to_vec::<f32>().unwrap_or_default();
        if int8 {
            let (q, scales) = quantize_per_channel(&fwv, o);
            m.insert("fc.weight".into(), StoredTensor::I8(q, vec![o, i]));
            m.insert("fc.weight_scale".into(), StoredTensor::F32(scales, vec![o]));
        } else {
            m.insert("fc.weight".into(), StoredTensor::F32(fwv, vec![o, i]));
        }
        m.insert(
            "fc.bias".into(),
            StoredTensor::F32(
                self.fc_bias
                    .clone()
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap_or_default(),
                vec![o],
            ),
        );
        let mut meta = BTreeMap::new();
        meta.insert(
            "arch".into(),
            serde_json::to_string(&self.arch).unwrap_or_default(),
        );
        meta.insert(
            "space".into(),
            serde_json::to_string(&self.space).unwrap_or_default(),
        );
        meta.insert("format".into(), "tierforge-plain-v1".into());
        Ok(weights::encode(&m, &meta))
    }

    /// Loads a network written by [`PlainNet::to_safetensors`] (f32 or int8, dequantised to f32),
    /// checking every tensor against the shape `arch` implies. `what` names the file in errors.
    ///
    /// # Errors
    /// Truncated or malformed data, a missing tensor, or a tensor of the wrong shape.
    pub fn from_safetensors(
        bytes: &[u8],
        space: &SearchSpace,
        arch: &ArchConfig,
        what: &str,
        device: &Device,
    ) -> Result<Self> {
        arch.validate(space)?;
        let (mut m, _) = weights::decode(bytes, what)?;
        let bad = |r: String| Error::Data {
            path: what.into(),
            reason: r,
        };
        // Removes tensor `name`, checks its shape, and dequantises it with `name_scale` if int8.
        let take = |m: &mut BTreeMap<String, StoredTensor>,
                    name: &str,
                    shape: &[usize]|
         -> Result<Vec<f32>> {
            let t = m
                .remove(name)
                .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
            if t.shape() != shape {
                return Err(bad(format!(
                    "tensor {name} has shape {:?}, the arch needs {shape:?}",
                    t.shape()
                )));
            }
            Ok(match t {
                StoredTensor::F32(v, _) => v,
                StoredTensor::I8(q, _) => {
                    let mut w: Vec<f32> = q.iter().map(|&x| x as f32).collect();
                    match m.remove(&format!("{name}_scale")) {
                        Some(StoredTensor::F32(sc, ss)) if ss == [shape[0]] => {
                            dequantize(&mut w, &sc)
                        }
                        _ => {
                            return Err(bad(format!(
                                "int8 tensor {name} has no f32 {name}_scale of shape [{}]",
                                shape[0]
                            )));
                        }
                    }
                    w
                }
            })
        };
        let layers = crate::space::layers(space, arch);
        let mut convs = Vec::new();
        let mut names = vec!["stem".to_string()];
        for i in 0..arch.depths.iter().sum::<usize>() {
            names.extend([
                format!("blocks.{i}.expand"),
                format!("blocks.{i}.dw"),
                format!("blocks.{i}.project"),
            ]);
        }
        names.push("head".into());
        for (name, l) in names.iter().zip(&layers) {
            let groups = if l.kind == crate::space::LayerKind::Depthwise {
                l.out_channels
            } else {
                1
            };
            let shape = [l.out_channels, l.in_channels / groups, l.kernel, l.kernel];
            let w = take(&mut m, &format!("{name}.weight"), &shape)?;
            let b = take(&mut m, &format!("{name}.bias"), &[l.out_channels])?;
            let n: usize = shape.iter().product();
            convs.push(PlainConv {
                weight: Tensor::<1>::from_data(TensorData::new(w, [n]), device).reshape(shape),
                bias: Some(Tensor::from_data(
                    TensorData::new(b, [l.out_channels]),
                    device,
                )),
                bn: None,
                stride: l.stride,
                groups,
                act: None,
            });
        }
        let classes = space.num_classes;
        let fw = take(&mut m, "fc.weight", &[classes, space.head_channels])?;
        let fb = take(&mut m, "fc.bias", &[classes])?;
        // activations from the space
        let mut it = convs.into_iter();
        let mut stem = it.next().ok_or_else(|| bad("no stem".into()))?;
        stem.act = Some(false);
        let mut blocks = Vec::new();
        for (s, st) in space.stages.iter().enumerate() {
            let h = st.act == crate::space::Act::Hswish;
            for b in 0..arch.depths[s] {
                let (Some(mut e), Some(mut dw), Some(p)) = (it.next(), it.next(), it.next()) else {
                    return Err(bad("too few blocks".into()));
                };
                e.act = Some(h);
                dw.act = Some(h);
                let cin = if b == 0 { space.stage_in(s) } else { st.width };
                let residual = (if b == 0 { st.stride } else { 1 }) == 1 && cin == st.width;
                blocks.push(PlainBlock {
                    expand: e,
                    dw,
                    project: p,
                    residual,
                });
            }
        }
        let mut head = it.next().ok_or_else(|| bad("no head".into()))?;
        head.act = Some(true);
        Ok(PlainNet {
            space: space.clone(),
            arch: arch.clone(),
            stem,
            blocks,
            head,
            fc_weight: Tensor::<1>::from_data(
                TensorData::new(fw, [classes * space.head_channels]),
                device,
            )
            .reshape([classes, space.head_channels]),
            fc_bias: Tensor::from_data(TensorData::new(fb, [classes]), device),
        })
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

/// Per-row symmetric int8 quantisation of a `[rows, …]` row-major weight: `(q, scales)`.
pub fn quantize_per_channel(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &w[r * per..(r + 1) * per];
        let m = row.iter().fold(0f32, |a, &x| a.max(x.abs()));
        let s = if m > 0.0 { m / 127.0 } else { 1.0 };
        scales.push(s);
        q.extend(
            row.iter()
                .map(|&x| (x / s).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

fn dequantize(w: &mut [f32], scales: &[f32]) {
    let per = w.len() / scales.len().max(1);
    for (r, s) in scales.iter().enumerate() {
        for x in &mut w[r * per..(r + 1) * per] {
            *x *= s;
        }
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
        let dev = Device::flex();
        let sp = SearchSpace::tiny(1, 10, 16);
        let net = Supernet::new(&sp, 11, &dev).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let mut archs = vec![ArchConfig::max(&sp), ArchConfig::min(&sp)];
        archs.extend((0..3).map(|_| ArchConfig::random(&sp, &mut rng)));
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

    #[test]
    fn quantize_roundtrip_error_is_bounded() {
        let w: Vec<f32> = (0..64)
            .map(|i| ((i as f32) * 0.7).sin() * (1 + i / 16) as f32)
            .collect();
        let (q, s) = quantize_per_channel(&w, 4);
        let mut d: Vec<f32> = q.iter().map(|&x| x as f32).collect();
        dequantize(&mut d, &s);
        for r in 0..4 {
            for j in 0..16 {
                assert!((d[r * 16 + j] - w[r * 16 + j]).abs() <= s[r] / 2.0 + 1e-6);
            }
        }
    }
}
