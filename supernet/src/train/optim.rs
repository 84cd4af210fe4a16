//! SGD (Nesterov) and AdamW written over burn's module mapper, so that their state is ours to
//! save in a checkpoint and restore bit-exactly.
//!
//! State is keyed by the parameter's position in the module's visit order (stable for a given
//! search space). Weight decay skips 1-D tensors (BN γ/β, biases) and the parameters the model
//! names as exempt by their kind ([`DecayExempt`]): the supernet's kernel transform matrices,
//! whose natural value is the identity, not zero.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use burn::module::{ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::OptimizerConfig;
use crate::error::{Error, Result};
use crate::net::Supernet;

/// A model names the parameters of at least two dimensions that weight decay must leave alone,
/// by what they are (1-D ones are never decayed).
pub trait DecayExempt {
    /// The exempt parameters.
    fn decay_exempt(&self) -> HashSet<ParamId>;
}

/// The kernel transform matrices of every depthwise layer.
impl DecayExempt for Supernet {
    fn decay_exempt(&self) -> HashSet<ParamId> {
        self.stages
            .iter()
            .flatten()
            .flat_map(|b| b.dw.kernel_transform_ids())
            .collect()
    }
}

/// Per-parameter buffers: SGD keeps one (momentum), AdamW two (first, second moments).
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    /// Steps taken (AdamW's bias correction).
    pub step: u64,
    /// `slots[i]`: buffers of the i-th float parameter in visit order (flattened).
    pub slots: Vec<Option<Vec<Tensor<1>>>>,
}

/// The optimizer: config plus state.
#[derive(Debug, Clone)]
pub struct Optimizer {
    /// Hyper-parameters.
    pub config: OptimizerConfig,
    /// Buffers.
    pub state: OptimizerState,
}

struct StepMapper<'a> {
    cfg: OptimizerConfig,
    lr: f64,
    step: u64,
    grads: &'a mut GradientsParams,
    slots: &'a mut Vec<Option<Vec<Tensor<1>>>>,
    index: usize,
    exempt: HashSet<ParamId>,
}

impl ModuleMapper for StepMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let i = self.index;
        self.index += 1;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, None);
        }
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let shape = tensor.dims();
        let n: usize = shape.iter().product();
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner().reshape([n]);
        let g = grad.reshape([n]);
        let decay = D >= 2 && !self.exempt.contains(&id);
        let lr = self.lr;
        let new_p = match self.cfg {
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                weight_decay,
                ..
            } => {
                let g = if decay && weight_decay > 0.0 {
                    g + p.clone().mul_scalar(weight_decay)
                } else {
                    g
                };
                let buf = match self.slots[i].take() {
                    Some(mut b) if momentum > 0.0 => b.remove(0).mul_scalar(momentum) + g.clone(),
                    _ => g.clone(),
                };
                let upd = if nesterov {
                    g + buf.clone().mul_scalar(momentum)
                } else {
                    buf.clone()
                };
                self.slots[i] = Some(vec![buf]);
                p - upd.mul_scalar(lr)
            }
            OptimizerConfig::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
                ..
            } => {
                let (m, v) = match self.slots[i].take() {
                    Some(mut b) if b.len() == 2 => {
                        let v = b.remove(1);
                        let m = b.remove(0);
                        (
                            m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1),
                            v.mul_scalar(beta2) + g.clone().powi_scalar(2).mul_scalar(1.0 - beta2),
                        )
                    }
                    _ => (
                        g.clone().mul_scalar(1.0 - beta1),
                        g.clone().powi_scalar(2).mul_scalar(1.0 - beta2),
                    ),
                };
                let t = self.step as i32;
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                let upd = m
                    .clone()
                    .div_scalar(bc1)
                    .div(v.clone().div_scalar(bc2).sqrt().add_scalar(epsilon));
                let p = if decay && weight_decay > 0.0 {
                    p.clone() - p.mul_scalar(lr * weight_decay)
                } else {
                    p
                };
                self.slots[i] = Some(vec![m, v]);
                p - upd.mul_scalar(lr)
            }
        };
        let new_p = Tensor::<D>::from_inner(new_p.reshape(shape));
        let new_p = if require_grad {
            new_p.require_grad()
        } else {
            new_p
        };
        Param::from_mapped_value(id, new_p, mapper)
    }
}

impl Optimizer {
    /// A fresh optimizer.
    pub fn new(config: OptimizerConfig) -> Self {
        Optimizer {
            config,
            state: OptimizerState::default(),
        }
    }

    /// One update of every parameter that has a gradient; weight decay skips 1-D parameters and
    /// those `module` names in [`DecayExempt::decay_exempt`].
    pub fn step<M: Module + DecayExempt>(
        &mut self,
        lr: f64,
        module: M,
        mut grads: GradientsParams,
    ) -> M {
        self.state.step += 1;
        let exempt = module.decay_exempt();
        let mut mapper = StepMapper {
            cfg: self.config,
            lr,
            step: self.state.step,
            grads: &mut grads,
            slots: &mut self.state.slots,
            index: 0,
            exempt,
        };
        module.map(&mut mapper)
    }

    /// Forgets all buffers (used when channels are re-sorted).
    pub fn reset(&mut self) {
        self.state = OptimizerState::default();
    }

    /// Writes the state to `path` (a JSON header line, then little-endian f32s).
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn save(&self, path: &Path) -> Result<()> {
        #[derive(Serialize)]
        struct Header<'a> {
            config: &'a OptimizerConfig,
            step: u64,
            slots: Vec<Option<Vec<usize>>>,
        }
        let mut data: Vec<u8> = Vec::new();
        let mut slots = Vec::new();
        for s in &self.state.slots {
            match s {
                None => slots.push(None),
                Some(bufs) => {
                    let mut lens = Vec::new();
                    for b in bufs {
                        let v =
                            b.clone()
                                .into_data()
                                .try_to_vec::<f32>()
                                .map_err(|e| Error::Load {
                                    path: path.into(),
                                    reason: format!("cannot read a buffer: {e:?}"),
                                })?;
                        lens.push(v.len());
                        for x in v {
                            data.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                    slots.push(Some(lens));
                }
            }
        }
        let header = serde_json::to_string(&Header {
            config: &self.config,
            step: self.state.step,
            slots,
        })
        .map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        f.write_all(header.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.write_all(&data))
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(path, e))
    }

    /// Reads a state written by [`Optimizer::save`], onto `device`.
    ///
    /// # Errors
    /// I/O, a malformed header, or a truncated file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        #[derive(Deserialize)]
        struct Header {
            config: OptimizerConfig,
            step: u64,
            slots: Vec<Option<Vec<usize>>>,
        }
        let bytes = crate::data::read::read_bounded(path, crate::data::read::MAX_DATA_FILE_BYTES)?;
        let nl = bytes
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| Error::Load {
                path: path.into(),
                reason: "no header line: not an optimizer state file".into(),
            })?;
        let h: Header = serde_json::from_slice(&bytes[..nl]).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        let mut at = nl + 1;
        let mut slots = Vec::new();
        for s in h.slots {
            match s {
                None => slots.push(None),
                Some(lens) => {
                    let mut bufs = Vec::new();
                    for n in lens {
                        let end = n
                            .checked_mul(4)
                            .and_then(|b| b.checked_add(at))
                            .unwrap_or(usize::MAX);
                        if end > bytes.len() {
                            return Err(Error::Load {
                                path: path.into(),
                                reason: "truncated optimizer state".into(),
                            });
                        }
                        let v: Vec<f32> = bytes[at..end]
                            .chunks_exact(4)
                            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                        at = end;
                        bufs.push(Tensor::<1>::from_data(TensorData::new(v, [n]), device));
                    }
                    slots.push(Some(bufs));
                }
            }
        }
        Ok(Optimizer {
            config: h.config,
            state: OptimizerState {
                step: h.step,
                slots,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two parameters: a 2-D one (decayed) and a 1-D one (never decayed).
    #[derive(Module, Debug)]
    struct Toy {
        w: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
        /// 2-D but exempt (like a kernel transform).
        t: Param<Tensor<2>>,
    }

    impl DecayExempt for Toy {
        fn decay_exempt(&self) -> HashSet<ParamId> {
            HashSet::from([self.t.id])
        }
    }

    fn toy(device: &Device) -> Toy {
        let p2 = |v: Vec<f32>| {
            let n = v.len();
            Param::from_tensor(Tensor::<2>::from_data(TensorData::new(v, [1, n]), device))
        };
        Toy {
            w: p2(vec![1.0, -2.0]),
            b: Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(vec![0.5f32], [1]),
                device,
            )),
            t: p2(vec![3.0]),
        }
    }

    fn values<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
        p.val().into_data().try_to_vec::<f32>().unwrap()
    }

    /// `steps` updates on the loss ½·Σp² (so each gradient is the parameter itself); the
    /// values of `w`, `b` and `t` after each.
    fn descend(config: OptimizerConfig, lr: f64, steps: usize) -> Vec<[Vec<f32>; 3]> {
        let ad = Device::flex().autodiff();
        let mut m = toy(&ad);
        let mut opt = Optimizer::new(config);
        let mut out = Vec::new();
        for _ in 0..steps {
            let half_sq = |x: Tensor<1>| x.powi_scalar(2).sum().mul_scalar(0.5);
            let loss = half_sq(m.w.val().reshape([2]))
                + half_sq(m.b.val())
                + half_sq(m.t.val().reshape([1]));
            let g = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(lr, m, g);
            out.push([values(&m.w), values(&m.b), values(&m.t)]);
        }
        out
    }

    /// `want[step]` = `[w₀, w₁, b, t]` after that step, within 1e-5.
    fn assert_steps(got: &[[Vec<f32>; 3]], want: &[[f64; 4]]) {
        assert_eq!(got.len(), want.len());
        for (s, (g, w)) in got.iter().zip(want).enumerate() {
            let g: Vec<f32> = g.concat();
            let close = g.iter().zip(w).all(|(g, w)| (*g as f64 - w).abs() < 1e-5);
            assert!(
                close && g.len() == 4,
                "step {}: got {g:?}, want {w:?}",
                s + 1
            );
        }
    }

    /// PyTorch's `torch.optim.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)`:
    /// `g = ∇ + λ·p` (2-D, not exempt), `buf = g` at the first step and `μ·buf + g` after,
    /// `p ← p − lr·(g + μ·buf)`. By hand for w₀ = 1, ∇ = w:
    /// step 1: g = 1.01, buf = 1.01, p = 1 − 0.1·(1.01 + 0.909) = 0.8081;
    /// step 2: g = 1.01·0.8081 = 0.816181, buf = 0.909 + 0.816181 = 1.725181,
    ///         p = 0.8081 − 0.1·(0.816181 + 1.5526629) = 0.57121561;
    /// step 3: p = 0.321859673. The 1-D b (0.5) and the exempt t (3) follow the same rule
    /// without the λ term: b = 0.405, 0.28755, 0.1636605; t = 2.43, 1.7253, 0.981963.
    #[test]
    fn sgd_nesterov_matches_pytorch_by_hand() {
        let got = descend(
            OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.01,
            },
            0.1,
            3,
        );
        let want = [
            [0.8081, -1.6162, 0.405, 2.43],
            [0.57121561, -1.14243122, 0.28755, 1.7253],
            [0.321859673, -0.643719347, 0.1636605, 0.981963],
        ];
        assert_steps(&got, &want);
    }

    /// PyTorch's `torch.optim.AdamW(lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)`:
    /// `p ← p − lr·λ·p` (2-D, not exempt), `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε)`. By hand for w₀ = 1, g = w:
    /// step 1: p = 0.99, m̂ = 1, v̂ = 1, p = 0.99 − 0.1/(1 + 1e-8) = 0.890000001;
    /// step 2: g = 0.89, p = 0.8811, m = 0.179, v = 0.0017911, m̂ = 0.942105, v̂ = 0.895998,
    ///         p = 0.8811 − 0.1·0.942105/0.946572 = 0.781571857;
    /// step 3: p = 0.675101223. For w₀ = −2 step 1 is −1.98 + 0.1 = −1.88.
    #[test]
    fn adamw_matches_pytorch_by_hand() {
        let got = descend(
            OptimizerConfig::Adamw {
                lr: 0.1,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.1,
            },
            0.1,
            3,
        );
        let want = [
            [0.890000001, -1.88, 0.400000002, 2.9],
            [0.781571857, -1.76140895, 0.301187424, 2.80010271],
            [0.675101223, -1.64436868, 0.204871256, 2.70038152],
        ];
        assert_steps(&got, &want);
    }

    #[test]
    fn the_supernet_exempts_exactly_its_kernel_transforms() {
        let net = Supernet::new(&crate::SearchSpace::tiny(1, 4, 12), 1, &Device::flex()).unwrap();
        let exempt = net.decay_exempt();
        let transforms: Vec<ParamId> = net
            .stages
            .iter()
            .flatten()
            .flat_map(|b| b.dw.transforms.iter().map(|t| t.id))
            .collect();
        assert!(!transforms.is_empty());
        assert_eq!(exempt, transforms.into_iter().collect::<HashSet<_>>());
        let b0 = &net.stages[0][0];
        for id in [b0.dw.weight.id, b0.expand.weight.id, net.fc_weight.id] {
            assert!(!exempt.contains(&id));
        }
    }
}
