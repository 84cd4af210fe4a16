//! SGD (Nesterov) and AdamW written over burn's module mapper, so that their state is ours to
//! save in a checkpoint and restore bit-exactly.
//!
//! State is keyed by the parameter's position in the module's visit order (stable for a given
//! search space). Weight decay skips 1-D tensors (BN γ/β, biases) and the kernel transform
//! matrices, whose natural value is the identity.

use std::io::Write;
use std::path::Path;

use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::OptimizerConfig;
use crate::error::{Error, Result};

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
    path: Vec<String>,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
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
        let decay = D >= 2 && !self.path.iter().any(|s| s == "transforms");
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

    /// One update of every parameter that has a gradient.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, mut grads: GradientsParams) -> M {
        self.state.step += 1;
        let mut mapper = StepMapper {
            cfg: self.config,
            lr,
            step: self.state.step,
            grads: &mut grads,
            slots: &mut self.state.slots,
            index: 0,
            path: Vec::new(),
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
