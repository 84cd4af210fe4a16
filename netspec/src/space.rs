//! The search space (what may vary) and [`ArchConfig`] (one sub-network of it), with exact
//! parameter and MAC counts.

use std::path::Path;

#[cfg(feature = "sample")]
use rand::Rng;
#[cfg(feature = "sample")]
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format_version` this build reads and writes for search spaces and arch files.
pub const SPACE_FORMAT_VERSION: u32 = 1;

/// Largest kernel size a space may hold.
pub const MAX_KERNEL: usize = 11;
/// Largest expand ratio.
pub const MAX_EXPAND: usize = 12;
/// Largest stage depth.
pub const MAX_DEPTH: usize = 16;
/// Largest input resolution (and dataset image size).
pub const MAX_RESOLUTION: usize = 512;
/// Most stages.
pub const MAX_STAGES: usize = 10;
/// Widest layer (stem, stage or head channels).
pub const MAX_WIDTH: usize = 4096;
/// Most classes.
pub const MAX_CLASSES: usize = 100_000;

/// Largest search-space or arch file read (a real one is a few KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a small JSON config: a regular file (checked before opening, so a FIFO cannot block),
/// at most [`MAX_CONFIG_BYTES`].
fn read_config_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::data(
            path,
            "is not a regular file (a folder, FIFO or device); pass a JSON file",
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| Error::io(path, e))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::data(
            path,
            format!(
                "is larger than {MAX_CONFIG_BYTES} bytes; a search space or arch file is a few KB"
            ),
        ));
    }
    Ok(text)
}

/// An activation: the one type for it in the workspace (search space, supernet, plain and
/// folded networks, latency table, engine). A layer without one holds `None` in an
/// `Option<Act>`.
///
/// Files write it in lowercase (`"relu"`, `"hswish"`); [`act_or_none`] reads and writes an
/// `Option<Act>` as one string with `"none"` for no activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    /// max(0, x)
    Relu,
    /// x · relu6(x + 3) / 6 (MobileNetV3)
    Hswish,
}

impl Act {
    /// The name files use: `relu` or `hswish`.
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Relu => "relu",
            Act::Hswish => "hswish",
        }
    }
}

impl std::fmt::Display for Act {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The activation after the stem (every space).
pub const STEM_ACT: Act = Act::Relu;
/// The activation after the 1×1 head conv (every space).
pub const HEAD_ACT: Act = Act::Hswish;

/// Serde for an `Option<Act>` stored as one string: `"none"`, `"relu"` or `"hswish"` (the
/// latency table's `act` field). Use with `#[serde(with = "netspec::space::act_or_none")]`.
pub mod act_or_none {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::Act;

    const NAMES: &[&str] = &["none", "relu", "hswish"];

    /// Writes `None` as `"none"`, an activation by its name.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(act: &Option<Act>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(act.map_or("none", Act::as_str))
    }

    /// Reads `"none"` as `None`, `"relu"` / `"hswish"` as that activation.
    ///
    /// # Errors
    /// Any other string, or not a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Act>, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "none" => Ok(None),
            "relu" => Ok(Some(Act::Relu)),
            "hswish" => Ok(Some(Act::Hswish)),
            other => Err(D::Error::unknown_variant(other, NAMES)),
        }
    }
}

/// One stage of inverted-residual blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Output channels of every block in the stage.
    pub width: usize,
    /// Stride of the stage's first block (1 or 2).
    pub stride: usize,
    /// Activation used in the stage.
    pub act: Act,
}

/// The elastic search space: a MobileNetV3-like backbone whose kernel size, expand ratio, depth
/// and input resolution vary.
///
/// Stored as JSON (`deny_unknown_fields`, `format_version` checked); load it with
/// [`SearchSpace::load`], which validates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpace {
    /// File format version, [`SPACE_FORMAT_VERSION`].
    pub format_version: u32,
    /// A name for reports.
    pub name: String,
    /// Input channels (1 for grayscale, 3 for RGB).
    pub in_channels: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Native image size of the dataset (square), e.g. 28.
    pub image_size: usize,
    /// Stem conv output channels.
    pub stem_channels: usize,
    /// Stem conv stride.
    pub stem_stride: usize,
    /// Stages of inverted-residual blocks.
    pub stages: Vec<StageSpec>,
    /// Channels of the final 1×1 conv before pooling.
    pub head_channels: usize,
    /// Elastic depthwise kernel sizes (odd), e.g. [3, 5, 7].
    pub kernel_sizes: Vec<usize>,
    /// Elastic expand ratios, e.g. [3, 4, 6].
    pub expand_ratios: Vec<usize>,
    /// Elastic stage depths, e.g. [2, 3, 4].
    pub depths: Vec<usize>,
    /// Elastic input resolutions, e.g. [20, 24, 28].
    pub resolutions: Vec<usize>,
}

impl SearchSpace {
    /// The default space for a dataset of `in_channels` × `image_size`² images and `num_classes`.
    ///
    /// Widths are chosen so the largest sub-net stays near 1 MB of f32 weights and trains on two
    /// cores in reasonable time (stem stride 2: the cheapest lever for speed).
    pub fn default_for(in_channels: usize, num_classes: usize, image_size: usize) -> Self {
        let resolutions = if image_size >= 32 {
            vec![24, 28, 32]
        } else if image_size >= 28 {
            vec![20, 24, 28]
        } else {
            vec![image_size]
        };
        SearchSpace {
            format_version: SPACE_FORMAT_VERSION,
            name: "mbv3-small-elastic".into(),
            in_channels,
            num_classes,
            image_size,
            stem_channels: 16,
            stem_stride: 2,
            stages: vec![
                StageSpec {
                    width: 16,
                    stride: 1,
                    act: Act::Relu,
                },
                StageSpec {
                    width: 24,
                    stride: 2,
                    act: Act::Relu,
                },
                StageSpec {
                    width: 32,
                    stride: 2,
                    act: Act::Hswish,
                },
                StageSpec {
                    width: 40,
                    stride: 1,
                    act: Act::Hswish,
                },
            ],
            head_channels: 128,
            kernel_sizes: vec![3, 5, 7],
            expand_ratios: vec![3, 4, 6],
            depths: vec![2, 3, 4],
            resolutions,
        }
    }

    /// The demo's small space: the same backbone with narrower stages, kernels {3, 5}, expand
    /// {2, 3, 4} and depth {1, 2, 3}, so a family trains in minutes on two cores.
    pub fn small_for(in_channels: usize, num_classes: usize, image_size: usize) -> Self {
        let mut s = Self::default_for(in_channels, num_classes, image_size);
        s.name = "mbv3-small-elastic-demo".into();
        s.stem_channels = 12;
        s.stages = vec![
            StageSpec {
                width: 16,
                stride: 1,
                act: Act::Relu,
            },
            StageSpec {
                width: 24,
                stride: 2,
                act: Act::Relu,
            },
            StageSpec {
                width: 32,
                stride: 2,
                act: Act::Hswish,
            },
        ];
        s.head_channels = 96;
        s.kernel_sizes = vec![3, 5];
        s.expand_ratios = vec![2, 3, 4];
        s.depths = vec![1, 2, 3];
        s
    }

    /// A tiny space for tests and smoke runs (few channels, depth ≤ 2).
    pub fn tiny(in_channels: usize, num_classes: usize, image_size: usize) -> Self {
        SearchSpace {
            format_version: SPACE_FORMAT_VERSION,
            name: "tiny".into(),
            in_channels,
            num_classes,
            image_size,
            stem_channels: 4,
            stem_stride: 2,
            stages: vec![
                StageSpec {
                    width: 6,
                    stride: 2,
                    act: Act::Relu,
                },
                StageSpec {
                    width: 8,
                    stride: 1,
                    act: Act::Hswish,
                },
            ],
            head_channels: 16,
            kernel_sizes: vec![3, 5],
            expand_ratios: vec![2, 3],
            depths: vec![1, 2],
            resolutions: vec![image_size.saturating_sub(4).max(4), image_size],
        }
    }

    /// Reads and validates a search space JSON file.
    ///
    /// # Errors
    /// I/O errors, malformed JSON (the message names the field), an unsupported
    /// `format_version`, or a failed [`SearchSpace::validate`].
    pub fn load(path: &Path) -> Result<Self> {
        let text = read_config_text(path)?;
        let space: SearchSpace = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        if space.format_version != SPACE_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: space.format_version,
                supported: SPACE_FORMAT_VERSION,
            });
        }
        space.validate()?;
        Ok(space)
    }

    /// Checks every field for sane values.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the field and the fix.
    pub fn validate(&self) -> Result<()> {
        let bad = |r: String| Err(Error::config("search space", r));
        if !(1..=4).contains(&self.in_channels) {
            return bad(format!(
                "in_channels must be 1..=4, got {}",
                self.in_channels
            ));
        }
        if self.num_classes < 2 {
            return bad(format!("num_classes must be ≥ 2, got {}", self.num_classes));
        }
        if self.stages.is_empty() {
            return bad("stages must not be empty".into());
        }
        for (i, s) in self.stages.iter().enumerate() {
            if s.width == 0 || !(1..=2).contains(&s.stride) {
                return bad(format!("stages[{i}]: width must be > 0 and stride 1 or 2"));
            }
        }
        if self.stem_channels == 0
            || self.head_channels == 0
            || !(1..=2).contains(&self.stem_stride)
        {
            return bad("stem_channels and head_channels must be > 0, stem_stride 1 or 2".into());
        }
        for (name, v) in [
            ("kernel_sizes", &self.kernel_sizes),
            ("expand_ratios", &self.expand_ratios),
            ("depths", &self.depths),
            ("resolutions", &self.resolutions),
        ] {
            if v.is_empty() {
                return bad(format!("{name} must not be empty"));
            }
            if v.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!("{name} must be strictly increasing, got {v:?}"));
            }
            if v[0] == 0 {
                return bad(format!("{name} must be > 0, got {v:?}"));
            }
        }
        for (name, v, max) in [
            ("kernel_sizes", &self.kernel_sizes, MAX_KERNEL),
            ("expand_ratios", &self.expand_ratios, MAX_EXPAND),
            ("depths", &self.depths, MAX_DEPTH),
            ("resolutions", &self.resolutions, MAX_RESOLUTION),
        ] {
            if let Some(x) = v.iter().find(|&&x| x > max) {
                return bad(format!(
                    "{name}: {x} is over the limit of {max}; use values in 1..={max}"
                ));
            }
        }
        if self.stages.len() > MAX_STAGES {
            return bad(format!(
                "{} stages; at most {MAX_STAGES} are supported",
                self.stages.len()
            ));
        }
        for (name, w) in self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("stages[{i}].width"), s.width))
            .chain([
                ("stem_channels".to_string(), self.stem_channels),
                ("head_channels".to_string(), self.head_channels),
            ])
        {
            if w > MAX_WIDTH {
                return bad(format!(
                    "{name} = {w} is over the limit of {MAX_WIDTH} channels"
                ));
            }
        }
        if !(1..=MAX_CLASSES).contains(&self.num_classes)
            || !(1..=MAX_RESOLUTION).contains(&self.image_size)
        {
            return bad(format!(
                "num_classes must be 2..={MAX_CLASSES} and image_size 1..={MAX_RESOLUTION}, got {} and {}",
                self.num_classes, self.image_size
            ));
        }
        if self.kernel_sizes.iter().any(|k| k % 2 == 0) {
            return bad(format!(
                "kernel_sizes must be odd, got {:?}",
                self.kernel_sizes
            ));
        }
        if *self.resolutions.last().unwrap_or(&0) > 4 * self.image_size.max(1) {
            return bad("resolutions larger than 4× image_size make no sense".into());
        }
        Ok(())
    }

    /// The largest kernel size.
    pub fn max_kernel(&self) -> usize {
        self.kernel_sizes.last().copied().unwrap_or(3)
    }
    /// The largest expand ratio.
    pub fn max_expand(&self) -> usize {
        self.expand_ratios.last().copied().unwrap_or(1)
    }
    /// The largest stage depth.
    pub fn max_depth(&self) -> usize {
        self.depths.last().copied().unwrap_or(1)
    }
    /// Input channels of stage `s`.
    pub fn stage_in(&self, s: usize) -> usize {
        if s == 0 {
            self.stem_channels
        } else {
            self.stages[s - 1].width
        }
    }
    /// Width feeding the head.
    pub fn last_width(&self) -> usize {
        self.stages
            .last()
            .map(|s| s.width)
            .unwrap_or(self.stem_channels)
    }
}

/// One sub-network of a [`SearchSpace`]: its input resolution and, per stage, the depth and the
/// kernel size and expand ratio of each active block.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchConfig {
    /// Input resolution (square).
    pub resolution: usize,
    /// Active blocks per stage.
    pub depths: Vec<usize>,
    /// Kernel size per active block, `kernel_sizes[s].len() == depths[s]`.
    pub kernel_sizes: Vec<Vec<usize>>,
    /// Expand ratio per active block, `expand_ratios[s].len() == depths[s]`.
    pub expand_ratios: Vec<Vec<usize>>,
}

impl ArchConfig {
    /// The largest sub-net.
    pub fn max(space: &SearchSpace) -> Self {
        Self::uniform(
            space,
            *space.resolutions.last().unwrap_or(&space.image_size),
            space.max_depth(),
            space.max_kernel(),
            space.max_expand(),
        )
    }

    /// The smallest sub-net.
    pub fn min(space: &SearchSpace) -> Self {
        Self::uniform(
            space,
            space.resolutions[0],
            space.depths[0],
            space.kernel_sizes[0],
            space.expand_ratios[0],
        )
    }

    /// Every stage at depth `d`, every block with kernel `k` and expand `e`.
    pub fn uniform(space: &SearchSpace, resolution: usize, d: usize, k: usize, e: usize) -> Self {
        let n = space.stages.len();
        ArchConfig {
            resolution,
            depths: vec![d; n],
            kernel_sizes: vec![vec![k; d]; n],
            expand_ratios: vec![vec![e; d]; n],
        }
    }

    /// A uniformly random sub-net, from the choices given (each a subset of the space's).
    #[cfg(feature = "sample")]
    pub fn sample_from<R: Rng + ?Sized>(
        space: &SearchSpace,
        rng: &mut R,
        resolutions: &[usize],
        depths: &[usize],
        kernels: &[usize],
        expands: &[usize],
    ) -> Self {
        let n = space.stages.len();
        let mut arch = ArchConfig {
            resolution: *resolutions.choose(rng).unwrap_or(&space.image_size),
            depths: Vec::with_capacity(n),
            kernel_sizes: Vec::with_capacity(n),
            expand_ratios: Vec::with_capacity(n),
        };
        for _ in 0..n {
            let d = *depths.choose(rng).unwrap_or(&1);
            arch.depths.push(d);
            arch.kernel_sizes
                .push((0..d).map(|_| *kernels.choose(rng).unwrap_or(&3)).collect());
            arch.expand_ratios
                .push((0..d).map(|_| *expands.choose(rng).unwrap_or(&1)).collect());
        }
        arch
    }

    /// A uniformly random sub-net of the whole space.
    #[cfg(feature = "sample")]
    pub fn random<R: Rng + ?Sized>(space: &SearchSpace, rng: &mut R) -> Self {
        Self::sample_from(
            space,
            rng,
            &space.resolutions,
            &space.depths,
            &space.kernel_sizes,
            &space.expand_ratios,
        )
    }

    /// Checks that this arch belongs to `space`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] saying which field is off and what the space allows.
    pub fn validate(&self, space: &SearchSpace) -> Result<()> {
        let bad = |r: String| Err(Error::config("arch", r));
        let n = space.stages.len();
        if !space.resolutions.contains(&self.resolution) {
            return bad(format!(
                "resolution {} is not in the search space's {:?}",
                self.resolution, space.resolutions
            ));
        }
        if self.depths.len() != n || self.kernel_sizes.len() != n || self.expand_ratios.len() != n {
            return bad(format!(
                "depths, kernel_sizes and expand_ratios need one entry per stage ({n} stages), got {}, {}, {}",
                self.depths.len(),
                self.kernel_sizes.len(),
                self.expand_ratios.len()
            ));
        }
        for s in 0..n {
            let d = self.depths[s];
            if !space.depths.contains(&d) {
                return bad(format!("depths[{s}] = {d} is not in {:?}", space.depths));
            }
            if self.kernel_sizes[s].len() != d || self.expand_ratios[s].len() != d {
                return bad(format!(
                    "stage {s}: depth {d} needs {d} kernel sizes and {d} expand ratios, got {} and {}",
                    self.kernel_sizes[s].len(),
                    self.expand_ratios[s].len()
                ));
            }
            for (b, k) in self.kernel_sizes[s].iter().enumerate() {
                if !space.kernel_sizes.contains(k) {
                    return bad(format!(
                        "kernel_sizes[{s}][{b}] = {k} is not in {:?}",
                        space.kernel_sizes
                    ));
                }
            }
            for (b, e) in self.expand_ratios[s].iter().enumerate() {
                if !space.expand_ratios.contains(e) {
                    return bad(format!(
                        "expand_ratios[{s}][{b}] = {e} is not in {:?}",
                        space.expand_ratios
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads an arch JSON file and validates it against `space`.
    ///
    /// # Errors
    /// I/O, malformed JSON (naming the field), or a failed [`ArchConfig::validate`].
    pub fn load(path: &Path, space: &SearchSpace) -> Result<Self> {
        let text = read_config_text(path)?;
        let arch: ArchConfig = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            source,
        })?;
        arch.validate(space).map_err(|e| match e {
            Error::InvalidConfig { reason, .. } => Error::Data {
                path: path.into(),
                reason: format!("invalid arch: {reason}"),
            },
            e => e,
        })?;
        Ok(arch)
    }

    /// A short human-readable id, e.g. `r28-d4444-k7777…-e6666…`.
    pub fn short_id(&self) -> String {
        let mut s = format!("r{}-d", self.resolution);
        for d in &self.depths {
            s.push_str(&d.to_string());
        }
        s.push_str("-k");
        for ks in &self.kernel_sizes {
            for k in ks {
                s.push_str(&k.to_string());
            }
        }
        s.push_str("-e");
        for es in &self.expand_ratios {
            for e in es {
                s.push_str(&e.to_string());
            }
        }
        s
    }
}

/// Kind of a layer, for cost models and latency look-up tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// Dense k×k conv (the stem).
    Conv,
    /// 1×1 conv.
    Pointwise,
    /// Depthwise k×k conv.
    Depthwise,
    /// Global average pool.
    Pool,
    /// Fully connected classifier.
    Linear,
}

/// One layer of a concrete sub-network, with its shapes: the unit of cost models.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerSpec {
    /// What kind of op.
    pub kind: LayerKind,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input spatial size (square).
    pub in_size: usize,
    /// Output spatial size (square).
    pub out_size: usize,
    /// Kernel size (1 for pointwise, pool and linear).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Whether BN follows (its affine parameters count; it folds into the conv for inference).
    pub bn: bool,
    /// The activation that follows, if any.
    pub act: Option<Act>,
}

impl LayerSpec {
    /// Trainable parameters: weights, plus BN's γ/β or a bias.
    pub fn params(&self) -> usize {
        let w = match self.kind {
            LayerKind::Conv | LayerKind::Pointwise => {
                self.in_channels * self.out_channels * self.kernel * self.kernel
            }
            LayerKind::Depthwise => self.out_channels * self.kernel * self.kernel,
            LayerKind::Pool => 0,
            LayerKind::Linear => self.in_channels * self.out_channels + self.out_channels,
        };
        w + if self.bn { 2 * self.out_channels } else { 0 }
    }
    /// Parameters after BN folding (weights + one bias per output channel).
    pub fn folded_params(&self) -> usize {
        match self.kind {
            LayerKind::Pool => 0,
            LayerKind::Linear => self.params(),
            _ => self.params() - if self.bn { self.out_channels } else { 0 },
        }
    }
    /// Multiply-accumulates.
    pub fn macs(&self) -> u64 {
        let o = (self.out_size * self.out_size) as u64;
        match self.kind {
            LayerKind::Conv | LayerKind::Pointwise => {
                o * (self.in_channels * self.out_channels * self.kernel * self.kernel) as u64
            }
            LayerKind::Depthwise => o * (self.out_channels * self.kernel * self.kernel) as u64,
            LayerKind::Pool => (self.in_size * self.in_size * self.in_channels) as u64,
            LayerKind::Linear => (self.in_channels * self.out_channels) as u64,
        }
    }
    /// Elements of the output activation (per image).
    pub fn out_elems(&self) -> usize {
        self.out_channels * self.out_size * self.out_size
    }
    /// Elements of the input activation (per image).
    pub fn in_elems(&self) -> usize {
        self.in_channels * self.in_size * self.in_size
    }
}

/// Spatial output size of a conv with padding k/2.
pub fn conv_out(size: usize, stride: usize) -> usize {
    size.div_ceil(stride)
}

/// The concrete layers of `arch` in execution order.
pub fn layers(space: &SearchSpace, arch: &ArchConfig) -> Vec<LayerSpec> {
    let mut out = Vec::new();
    let mut size = arch.resolution;
    let s1 = conv_out(size, space.stem_stride);
    out.push(LayerSpec {
        kind: LayerKind::Conv,
        in_channels: space.in_channels,
        out_channels: space.stem_channels,
        in_size: size,
        out_size: s1,
        kernel: 3,
        stride: space.stem_stride,
        bn: true,
        act: Some(STEM_ACT),
    });
    size = s1;
    for (s, stage) in space.stages.iter().enumerate() {
        for b in 0..arch.depths[s] {
            let cin = if b == 0 {
                space.stage_in(s)
            } else {
                stage.width
            };
            let stride = if b == 0 { stage.stride } else { 1 };
            let hidden = cin * arch.expand_ratios[s][b];
            let k = arch.kernel_sizes[s][b];
            let o = conv_out(size, stride);
            out.push(LayerSpec {
                kind: LayerKind::Pointwise,
                in_channels: cin,
                out_channels: hidden,
                in_size: size,
                out_size: size,
                kernel: 1,
                stride: 1,
                bn: true,
                act: Some(stage.act),
            });
            out.push(LayerSpec {
                kind: LayerKind::Depthwise,
                in_channels: hidden,
                out_channels: hidden,
                in_size: size,
                out_size: o,
                kernel: k,
                stride,
                bn: true,
                act: Some(stage.act),
            });
            out.push(LayerSpec {
                kind: LayerKind::Pointwise,
                in_channels: hidden,
                out_channels: stage.width,
                in_size: o,
                out_size: o,
                kernel: 1,
                stride: 1,
                bn: true,
                act: None,
            });
            size = o;
        }
    }
    out.push(LayerSpec {
        kind: LayerKind::Pointwise,
        in_channels: space.last_width(),
        out_channels: space.head_channels,
        in_size: size,
        out_size: size,
        kernel: 1,
        stride: 1,
        bn: true,
        act: Some(HEAD_ACT),
    });
    out.push(LayerSpec {
        kind: LayerKind::Pool,
        in_channels: space.head_channels,
        out_channels: space.head_channels,
        in_size: size,
        out_size: 1,
        kernel: size,
        stride: 1,
        bn: false,
        act: None,
    });
    out.push(LayerSpec {
        kind: LayerKind::Linear,
        in_channels: space.head_channels,
        out_channels: space.num_classes,
        in_size: 1,
        out_size: 1,
        kernel: 1,
        stride: 1,
        bn: false,
        act: None,
    });
    out
}

/// Exact costs of one sub-net.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchCost {
    /// Trainable parameters (conv weights, BN γ/β, classifier), as in the unfolded network.
    pub params: usize,
    /// Parameters after BN folding (what an inference file stores).
    pub folded_params: usize,
    /// Multiply-accumulates for one image.
    pub macs: u64,
    /// Peak activation elements for one image: max over layers of input + output
    /// (+ the block input kept for a residual).
    pub peak_activation_elems: usize,
}

/// Exact params, MACs and peak activation for `arch`.
pub fn arch_cost(space: &SearchSpace, arch: &ArchConfig) -> ArchCost {
    let ls = layers(space, arch);
    let params = ls.iter().map(LayerSpec::params).sum();
    let folded_params = ls.iter().map(LayerSpec::folded_params).sum();
    let macs = ls.iter().map(LayerSpec::macs).sum();
    // Inside a block the block input stays alive for the residual: count it on the inner layers.
    let mut peak = 0usize;
    let mut block_in = 0usize;
    for l in &ls {
        if l.kind == LayerKind::Pointwise && l.act.is_some() && l.out_channels > l.in_channels {
            block_in = l.in_elems();
        }
        peak = peak.max(l.in_elems() + l.out_elems() + block_in);
        if l.kind == LayerKind::Pointwise && l.act.is_none() {
            block_in = 0;
        }
    }
    ArchCost {
        params,
        folded_params,
        macs,
        peak_activation_elems: peak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "sample")]
    use rand::SeedableRng;

    #[test]
    fn config_files_must_be_small_regular_files() {
        let dir = std::env::temp_dir().join(format!("netspec-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = SearchSpace::load(&dir).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; (MAX_CONFIG_BYTES + 10) as usize]).unwrap();
        let e = SearchSpace::load(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        let sp = SearchSpace::tiny(1, 3, 16);
        let e = ArchConfig::load(&dir, &sp).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn max_min_costs_are_ordered_and_exact() {
        let sp = SearchSpace::default_for(1, 10, 28);
        sp.validate().unwrap();
        let cmax = arch_cost(&sp, &ArchConfig::max(&sp));
        let cmin = arch_cost(&sp, &ArchConfig::min(&sp));
        assert!(cmax.params > 3 * cmin.params, "{cmax:?} {cmin:?}");
        assert!(cmax.macs > 5 * cmin.macs);
        // stem: 1*16*9 weights + 32 BN; stride 2: 14x14 out -> 14*14*144 MACs
        let l = layers(&sp, &ArchConfig::max(&sp));
        assert_eq!(l[0].params(), 16 * 9 + 32);
        assert_eq!(l[0].macs(), 14 * 14 * 144);
        // classifier
        let fc = l.last().unwrap();
        assert_eq!(fc.params(), 128 * 10 + 10);
    }

    #[cfg(feature = "sample")]
    #[test]
    fn random_archs_validate_and_bad_ones_do_not() {
        let sp = SearchSpace::default_for(1, 10, 28);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..50 {
            ArchConfig::random(&sp, &mut rng).validate(&sp).unwrap();
        }
        let mut a = ArchConfig::max(&sp);
        a.kernel_sizes[1][0] = 4;
        let e = a.validate(&sp).unwrap_err().to_string();
        assert!(e.contains("kernel_sizes[1][0] = 4"), "{e}");
        let mut a = ArchConfig::max(&sp);
        a.depths[0] = 3;
        assert!(
            a.validate(&sp)
                .unwrap_err()
                .to_string()
                .contains("stage 0: depth 3")
        );
        let mut a = ArchConfig::max(&sp);
        a.resolution = 30;
        assert!(a.validate(&sp).is_err());
    }

    #[cfg(feature = "sample")]
    #[test]
    fn same_seed_same_arch() {
        let sp = SearchSpace::default_for(3, 10, 32);
        let a = ArchConfig::random(&sp, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let b = ArchConfig::random(&sp, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a, b);
    }

    #[test]
    fn bad_space_rejected() {
        let mut sp = SearchSpace::default_for(1, 10, 28);
        sp.kernel_sizes = vec![3, 4];
        assert!(sp.validate().unwrap_err().to_string().contains("odd"));
        let mut sp = SearchSpace::default_for(1, 10, 28);
        sp.depths = vec![3, 2];
        assert!(
            sp.validate()
                .unwrap_err()
                .to_string()
                .contains("increasing")
        );
    }
}
