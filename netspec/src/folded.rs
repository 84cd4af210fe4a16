//! The folded network: one sub-net's weights with batch norm folded into the convs, as plain
//! `f32` buffers — what a bundle's variant file holds, what the trainer writes and the phone's
//! engine reads. No tensor library.
//!
//! Tensor names in the file: `stem`, `blocks.{i}.expand`, `blocks.{i}.dw`, `blocks.{i}.project`
//! (blocks numbered across stages), `head`, each with `.weight` `[out, in/groups, k, k]` and
//! `.bias` `[out]`; `fc.weight` `[classes, head_channels]` and `fc.bias`. An int8 file stores
//! each weight as I8 with a per-output-channel f32 `NAME.weight_scale`; biases stay f32.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::quant::{dequantize_per_channel, quantize_per_channel};
use crate::space::{Act, ArchConfig, HEAD_ACT, LayerKind, STEM_ACT, SearchSpace, layers};
use crate::weights::{self, StoredTensor};

/// The `format` metadata value of a variant file.
pub const FOLDED_FORMAT: &str = "tierforge-plain-v1";

/// One conv layer with BN folded in.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedConv {
    /// Weights, row-major `shape`.
    pub weight: Vec<f32>,
    /// `[out, in / groups, k, k]`.
    pub shape: [usize; 4],
    /// `[out]`.
    pub bias: Vec<f32>,
    /// Stride.
    pub stride: usize,
    /// Groups (the channel count for a depthwise conv).
    pub groups: usize,
    /// Activation after the layer, if any.
    pub act: Option<Act>,
}

impl FoldedConv {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.shape[0]
    }
    /// Kernel size (square).
    pub fn kernel(&self) -> usize {
        self.shape[2]
    }
}

/// One inverted-residual block.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedBlock {
    /// 1×1 expand.
    pub expand: FoldedConv,
    /// Depthwise k×k.
    pub dw: FoldedConv,
    /// 1×1 project (no activation).
    pub project: FoldedConv,
    /// Adds the block's input to its output.
    pub residual: bool,
}

/// A standalone, BN-folded network of one [`ArchConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedNet {
    /// The space the arch belongs to.
    pub space: SearchSpace,
    /// The arch.
    pub arch: ArchConfig,
    /// Stem (dense k×k).
    pub stem: FoldedConv,
    /// Active blocks in order.
    pub blocks: Vec<FoldedBlock>,
    /// Head 1×1.
    pub head: FoldedConv,
    /// Classifier `[classes, head_channels]`, row-major.
    pub fc_weight: Vec<f32>,
    /// Classifier bias `[classes]`.
    pub fc_bias: Vec<f32>,
}

/// The names of `arch`'s conv layers in file order: stem, each block's expand/dw/project, head.
pub fn conv_names(arch: &ArchConfig) -> Vec<String> {
    let mut names = vec!["stem".to_string()];
    for i in 0..arch.depths.iter().sum::<usize>() {
        names.extend([
            format!("blocks.{i}.expand"),
            format!("blocks.{i}.dw"),
            format!("blocks.{i}.project"),
        ]);
    }
    names.push("head".into());
    names
}

/// Names a network's conv layers in file order — `stem`, `blocks.{i}.expand`, `blocks.{i}.dw`,
/// `blocks.{i}.project`, `head` — for any layer type (the folded net's and the trainer's).
pub fn name_layers<'a, T>(
    stem: &'a T,
    blocks: impl IntoIterator<Item = [&'a T; 3]>,
    head: &'a T,
) -> Vec<(String, &'a T)> {
    let mut v = vec![("stem".to_string(), stem)];
    for (i, [expand, dw, project]) in blocks.into_iter().enumerate() {
        v.push((format!("blocks.{i}.expand"), expand));
        v.push((format!("blocks.{i}.dw"), dw));
        v.push((format!("blocks.{i}.project"), project));
    }
    v.push(("head".to_string(), head));
    v
}

impl FoldedNet {
    /// `(name, layer)` for every conv, in file order.
    pub fn convs(&self) -> Vec<(String, &FoldedConv)> {
        name_layers(
            &self.stem,
            self.blocks.iter().map(|b| [&b.expand, &b.dw, &b.project]),
            &self.head,
        )
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.fc_bias.len()
    }

    /// Stored parameters: weights + one bias per channel, and the classifier.
    pub fn num_params(&self) -> usize {
        self.convs()
            .iter()
            .map(|(_, c)| c.weight.len() + c.bias.len())
            .sum::<usize>()
            + self.fc_weight.len()
            + self.fc_bias.len()
    }

    /// Checks every layer against the shape `arch` implies in `space`, and that every value is
    /// finite.
    ///
    /// # Errors
    /// [`Error::Network`] naming the layer.
    pub fn validate(&self) -> Result<()> {
        self.arch.validate(&self.space)?;
        let specs = layers(&self.space, &self.arch);
        let convs = self.convs();
        if specs.len() != convs.len() {
            return Err(net_err(
                "blocks",
                format!("{} conv layers, the arch has {}", convs.len(), specs.len()),
            ));
        }
        for ((name, c), l) in convs.iter().zip(&specs) {
            let groups = if l.kind == LayerKind::Depthwise {
                l.out_channels
            } else {
                1
            };
            let want = [l.out_channels, l.in_channels / groups, l.kernel, l.kernel];
            if c.shape != want || c.groups != groups || c.stride != l.stride {
                return Err(net_err(
                    name,
                    format!(
                        "shape {:?} groups {} stride {}; the arch needs {want:?} groups {groups} stride {}",
                        c.shape, c.groups, c.stride, l.stride
                    ),
                ));
            }
            if c.weight.len() != want.iter().product::<usize>() || c.bias.len() != want[0] {
                return Err(net_err(name, "data does not match the shape"));
            }
            check_finite(name, "weight", &c.weight)?;
            check_finite(name, "bias", &c.bias)?;
        }
        let classes = self.space.num_classes;
        if self.fc_weight.len() != classes * self.space.head_channels
            || self.fc_bias.len() != classes
        {
            return Err(net_err(
                "fc",
                format!(
                    "{} weights and {} biases; the space needs {classes}×{} and {classes}",
                    self.fc_weight.len(),
                    self.fc_bias.len(),
                    self.space.head_channels
                ),
            ));
        }
        check_finite("fc", "weight", &self.fc_weight)?;
        check_finite("fc", "bias", &self.fc_bias)
    }

    /// Serialises the network as safetensors: weights as f32, or (`int8`) per-output-channel
    /// symmetric int8 with an f32 scale per channel. Metadata holds the arch and the space, so
    /// the file describes itself.
    pub fn to_safetensors(&self, int8: bool) -> Vec<u8> {
        let mut m = BTreeMap::new();
        let mut put = |name: &str, w: &[f32], shape: Vec<usize>| {
            if int8 {
                let (q, scales) = quantize_per_channel(w, shape[0]);
                let rows = shape[0];
                m.insert(format!("{name}.weight"), StoredTensor::I8(q, shape));
                m.insert(
                    format!("{name}.weight_scale"),
                    StoredTensor::F32(scales, vec![rows]),
                );
            } else {
                m.insert(
                    format!("{name}.weight"),
                    StoredTensor::F32(w.to_vec(), shape),
                );
            }
        };
        for (name, c) in self.convs() {
            put(&name, &c.weight, c.shape.to_vec());
        }
        let classes = self.fc_bias.len();
        put(
            "fc",
            &self.fc_weight,
            vec![classes, self.fc_weight.len() / classes.max(1)],
        );
        for (name, c) in self.convs() {
            m.insert(
                format!("{name}.bias"),
                StoredTensor::F32(c.bias.clone(), vec![c.bias.len()]),
            );
        }
        m.insert(
            "fc.bias".into(),
            StoredTensor::F32(self.fc_bias.clone(), vec![classes]),
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
        meta.insert("format".into(), FOLDED_FORMAT.into());
        weights::encode(&m, &meta)
    }

    /// Loads a network written by [`FoldedNet::to_safetensors`] (f32 or int8, dequantised to
    /// f32), checking every tensor against the shape `arch` implies and every value for being
    /// finite. `what` names the file in errors.
    ///
    /// # Errors
    /// [`Error::Data`] naming the file and the tensor: truncated or malformed data, a missing
    /// or unexpected tensor, a wrong shape, a NaN or infinite value; [`Error::InvalidConfig`]
    /// for an arch outside `space`.
    pub fn from_safetensors(
        bytes: &[u8],
        space: &SearchSpace,
        arch: &ArchConfig,
        what: &str,
    ) -> Result<Self> {
        arch.validate(space)?;
        let (mut m, _) = weights::decode(bytes, what)?;
        let bad = |r: String| Error::data(what, r);
        let specs = layers(space, arch);
        let names = conv_names(arch);
        let mut convs = Vec::with_capacity(names.len());
        for (name, l) in names.iter().zip(&specs) {
            let groups = if l.kind == LayerKind::Depthwise {
                l.out_channels
            } else {
                1
            };
            let shape = [l.out_channels, l.in_channels / groups, l.kernel, l.kernel];
            let weight = take(&mut m, &format!("{name}.weight"), &shape, what)?;
            let bias = take(&mut m, &format!("{name}.bias"), &[l.out_channels], what)?;
            convs.push(FoldedConv {
                weight,
                shape,
                bias,
                stride: l.stride,
                groups,
                act: None,
            });
        }
        let classes = space.num_classes;
        let fc_weight = take(&mut m, "fc.weight", &[classes, space.head_channels], what)?;
        let fc_bias = take(&mut m, "fc.bias", &[classes], what)?;
        if let Some(extra) = m.keys().next() {
            return Err(bad(format!(
                "unexpected tensor {extra}: the file does not belong to arch {}",
                arch.short_id()
            )));
        }
        // Activations and residuals from the space.
        let mut it = convs.into_iter();
        let mut stem = it.next().ok_or_else(|| bad("no stem".into()))?;
        stem.act = Some(STEM_ACT);
        let mut blocks = Vec::new();
        for (s, st) in space.stages.iter().enumerate() {
            for b in 0..arch.depths[s] {
                let (Some(mut expand), Some(mut dw), Some(project)) =
                    (it.next(), it.next(), it.next())
                else {
                    return Err(bad("too few blocks".into()));
                };
                expand.act = Some(st.act);
                dw.act = Some(st.act);
                blocks.push(FoldedBlock {
                    expand,
                    dw,
                    project,
                    residual: block_has_residual(space, arch, s, b),
                });
            }
        }
        let mut head = it.next().ok_or_else(|| bad("no head".into()))?;
        head.act = Some(HEAD_ACT);
        Ok(FoldedNet {
            space: space.clone(),
            arch: arch.clone(),
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
        })
    }
}

/// Whether block `b` of stage `s` of `arch` adds its input (see
/// [`ArchConfig::block_has_residual`]: stride 1 and equal widths, at full width and active).
pub fn block_has_residual(space: &SearchSpace, arch: &ArchConfig, s: usize, b: usize) -> bool {
    arch.block_has_residual(space, s, b)
}

fn net_err(layer: &str, reason: impl Into<String>) -> Error {
    Error::Network {
        layer: layer.to_string(),
        reason: reason.into(),
    }
}

fn check_finite(layer: &str, what: &str, v: &[f32]) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(net_err(
            layer,
            format!("{what}[{i}] is {}: the weights are damaged", v[i]),
        )),
    }
}

/// Removes tensor `name`, checks its shape and finiteness, and dequantises it with
/// `name_scale` if int8.
fn take(
    m: &mut BTreeMap<String, StoredTensor>,
    name: &str,
    shape: &[usize],
    what: &str,
) -> Result<Vec<f32>> {
    let bad = |r: String| Error::data(what, r);
    let t = m
        .remove(name)
        .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
    if t.shape() != shape {
        return Err(bad(format!(
            "tensor {name} has shape {:?}, the arch needs {shape:?}",
            t.shape()
        )));
    }
    let v = match t {
        StoredTensor::F32(v, _) => v,
        StoredTensor::I8(q, _) => match m.remove(&format!("{name}_scale")) {
            Some(StoredTensor::F32(sc, ss)) if ss == [shape[0]] => {
                if let Some(i) = sc.iter().position(|s| !s.is_finite()) {
                    return Err(bad(format!(
                        "tensor {name}_scale[{i}] is {}: the weights are damaged",
                        sc[i]
                    )));
                }
                dequantize_per_channel(&q, &sc)
            }
            _ => {
                return Err(bad(format!(
                    "int8 tensor {name} has no f32 {name}_scale of shape [{}]",
                    shape[0]
                )));
            }
        },
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!(
            "tensor {name}[{i}] is {}: the weights are damaged (re-export the bundle)",
            v[i]
        )));
    }
    Ok(v)
}
