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
    /// Elastic width multipliers of every stage, e.g. [0.5, 0.75, 1.0] (strictly increasing,
    /// each in (0, 1], the last 1.0): stage `s` at multiplier `m` has
    /// [`SearchSpace::active_width`] output channels. A file without the field means `[1.0]`
    /// (no elastic width), and `[1.0]` is not written, so width-free files keep their bytes.
    #[serde(
        default = "full_width_only",
        skip_serializing_if = "is_full_width_only"
    )]
    pub width_multipliers: Vec<f64>,
}

/// `[1.0]`: the width multipliers of a space without elastic width.
pub fn full_width_only() -> Vec<f64> {
    vec![1.0]
}

/// Whether `m` is exactly `[1.0]` (not written to files).
fn is_full_width_only(m: &[f64]) -> bool {
    m == [1.0]
}

/// Active output channels of a stage of `width` channels at multiplier `m`: `width·m` rounded
/// to the nearest integer (halves away from zero), at least 1. No rounding to a multiple of 8
/// (MobileNet's `make_divisible`): the demo's 16-channel stage at 0.75 would round back to 16,
/// and the engine pads channels to 8 itself, so the exact count keeps the choices distinct and
/// the parameter counts honest.
pub fn scaled_width(width: usize, m: f64) -> usize {
    ((width as f64 * m).round() as usize).max(1)
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
            width_multipliers: full_width_only(),
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
            width_multipliers: full_width_only(),
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
        self.validate_width_multipliers()
    }

    /// The width part of [`SearchSpace::validate`].
    fn validate_width_multipliers(&self) -> Result<()> {
        let bad = |r: String| Err(Error::config("search space", r));
        let m = &self.width_multipliers;
        if m.is_empty() {
            return bad(
                "width_multipliers must not be empty; leave the field out (or write [1.0]) for no \
                 elastic width"
                    .into(),
            );
        }
        if m.iter().any(|x| !(x.is_finite() && *x > 0.0 && *x <= 1.0)) {
            return bad(format!(
                "width_multipliers must each be in (0, 1], got {m:?}; e.g. [0.5, 0.75, 1.0]"
            ));
        }
        if m.windows(2).any(|w| w[0] >= w[1]) {
            return bad(format!(
                "width_multipliers must be strictly increasing, got {m:?}"
            ));
        }
        if m.last() != Some(&1.0) {
            return bad(format!(
                "width_multipliers must end with 1.0 (the full width), got {m:?}"
            ));
        }
        for (i, st) in self.stages.iter().enumerate() {
            if let Some(x) = m.iter().find(|&&x| (st.width as f64 * x).round() < 1.0) {
                return bad(format!(
                    "width_multipliers: stages[{i}] (width {}) at {x} rounds to 0 channels; \
                     use multipliers ≥ {:.3} or a wider stage",
                    st.width,
                    0.5 / st.width as f64
                ));
            }
            let ws = self.stage_widths(i);
            if ws.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!(
                    "width_multipliers {m:?} give stages[{i}] (width {}) the widths {ws:?}, \
                     which repeat; use fewer multipliers or a wider stage",
                    st.width
                ));
            }
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
    /// Input channels of stage `s` at full width (the supernet's max size; a sub-net's are
    /// [`ArchConfig::stage_in`]).
    pub fn stage_in(&self, s: usize) -> usize {
        if s == 0 {
            self.stem_channels
        } else {
            self.stages[s - 1].width
        }
    }
    /// Whether stage widths are elastic (more than one width multiplier).
    pub fn has_elastic_width(&self) -> bool {
        self.width_multipliers.len() > 1
    }
    /// Output channels of stage `s` at width multiplier `m` ([`scaled_width`]).
    pub fn active_width(&self, s: usize, m: f64) -> usize {
        scaled_width(self.stages[s].width, m)
    }
    /// The widths stage `s` may have, one per width multiplier, increasing; the last is the
    /// full width.
    pub fn stage_widths(&self, s: usize) -> Vec<usize> {
        self.width_multipliers
            .iter()
            .map(|&m| self.active_width(s, m))
            .collect()
    }
    /// Width feeding the head at full width (the supernet's max size; a sub-net's is
    /// [`ArchConfig::last_width`]).
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
    /// Active output channels per stage, each one of [`SearchSpace::stage_widths`]; empty
    /// means every stage at full width (and is what a full-width arch holds and writes, so
    /// files of width-free spaces keep their bytes). Read it through
    /// [`ArchConfig::stage_width`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub widths: Vec<usize>,
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

    /// The smallest sub-net (the smallest width multiplier too).
    pub fn min(space: &SearchSpace) -> Self {
        let arch = Self::uniform(
            space,
            space.resolutions[0],
            space.depths[0],
            space.kernel_sizes[0],
            space.expand_ratios[0],
        );
        arch.with_widths(
            space,
            (0..space.stages.len()).map(|s| space.stage_widths(s)[0]),
        )
    }

    /// This arch with stage widths `widths` (one per stage), stored in canonical form: empty
    /// when every stage is at full width, so equal networks are equal archs.
    pub fn with_widths(
        mut self,
        space: &SearchSpace,
        widths: impl IntoIterator<Item = usize>,
    ) -> Self {
        let widths: Vec<usize> = widths.into_iter().collect();
        let full = widths.len() == space.stages.len()
            && widths
                .iter()
                .zip(&space.stages)
                .all(|(w, st)| *w == st.width);
        self.widths = if full { Vec::new() } else { widths };
        self
    }

    /// Every stage at width multiplier `m` (rounded as [`SearchSpace::active_width`]).
    pub fn with_multiplier(self, space: &SearchSpace, m: f64) -> Self {
        let widths: Vec<usize> = (0..space.stages.len())
            .map(|s| space.active_width(s, m))
            .collect();
        self.with_widths(space, widths)
    }

    /// Active output channels of stage `s`: `widths[s]`, or the stage's full width when
    /// `widths` is empty.
    pub fn stage_width(&self, space: &SearchSpace, s: usize) -> usize {
        self.widths.get(s).copied().unwrap_or(space.stages[s].width)
    }

    /// Active input channels of stage `s`: the stem's for stage 0 (the stem is not elastic),
    /// else the previous stage's active width.
    pub fn stage_in(&self, space: &SearchSpace, s: usize) -> usize {
        if s == 0 {
            space.stem_channels
        } else {
            self.stage_width(space, s - 1)
        }
    }

    /// Active width feeding the head (the last stage's).
    pub fn last_width(&self, space: &SearchSpace) -> usize {
        match space.stages.len() {
            0 => space.stem_channels,
            n => self.stage_width(space, n - 1),
        }
    }

    /// Active input channels of block `b` of stage `s`.
    pub fn block_in(&self, space: &SearchSpace, s: usize, b: usize) -> usize {
        if b == 0 {
            self.stage_in(space, s)
        } else {
            self.stage_width(space, s)
        }
    }

    /// Whether block `b` of stage `s` adds its input to its output: the full-width block has
    /// a residual (stride 1, equal widths) and its active input and output widths are equal.
    /// Narrowing never adds a skip the full network does not have; it removes one where the
    /// stage's first block reads a wider (or narrower) previous stage.
    pub fn block_has_residual(&self, space: &SearchSpace, s: usize, b: usize) -> bool {
        let st = &space.stages[s];
        let full_in = if b == 0 { space.stage_in(s) } else { st.width };
        let stride = if b == 0 { st.stride } else { 1 };
        stride == 1
            && full_in == st.width
            && self.block_in(space, s, b) == self.stage_width(space, s)
    }

    /// Every stage at depth `d`, every block with kernel `k` and expand `e`.
    pub fn uniform(space: &SearchSpace, resolution: usize, d: usize, k: usize, e: usize) -> Self {
        let n = space.stages.len();
        ArchConfig {
            resolution,
            depths: vec![d; n],
            kernel_sizes: vec![vec![k; d]; n],
            expand_ratios: vec![vec![e; d]; n],
            widths: Vec::new(),
        }
    }

    /// A uniformly random sub-net, from the choices given (each a subset of the space's).
    /// Stage widths are drawn, one multiplier per stage after every other gene, only when
    /// `multipliers` holds more than one (so a width-free space draws what it drew before
    /// widths existed); a single multiplier sets every stage to it.
    #[cfg(feature = "sample")]
    pub fn sample_from<R: Rng + ?Sized>(
        space: &SearchSpace,
        rng: &mut R,
        resolutions: &[usize],
        depths: &[usize],
        kernels: &[usize],
        expands: &[usize],
        multipliers: &[f64],
    ) -> Self {
        let n = space.stages.len();
        let mut arch = ArchConfig {
            resolution: *resolutions.choose(rng).unwrap_or(&space.image_size),
            depths: Vec::with_capacity(n),
            kernel_sizes: Vec::with_capacity(n),
            expand_ratios: Vec::with_capacity(n),
            widths: Vec::new(),
        };
        for _ in 0..n {
            let d = *depths.choose(rng).unwrap_or(&1);
            arch.depths.push(d);
            arch.kernel_sizes
                .push((0..d).map(|_| *kernels.choose(rng).unwrap_or(&3)).collect());
            arch.expand_ratios
                .push((0..d).map(|_| *expands.choose(rng).unwrap_or(&1)).collect());
        }
        match multipliers {
            [] => arch,
            [m] => arch.with_multiplier(space, *m),
            ms => {
                let widths: Vec<usize> = (0..n)
                    .map(|s| space.active_width(s, *ms.choose(rng).unwrap_or(&1.0)))
                    .collect();
                arch.with_widths(space, widths)
            }
        }
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
            &space.width_multipliers,
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
        if !self.widths.is_empty() && self.widths.len() != n {
            return bad(format!(
                "widths needs one entry per stage ({n} stages) or none (every stage at full \
                 width), got {}",
                self.widths.len()
            ));
        }
        for (s, w) in self.widths.iter().enumerate() {
            let allowed = space.stage_widths(s);
            if !allowed.contains(w) {
                return bad(format!(
                    "widths[{s}] = {w} is not one of stage {s}'s widths {allowed:?} (its width \
                     {} × width_multipliers {:?})",
                    space.stages[s].width, space.width_multipliers
                ));
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
        // a file may list full widths; hold them in canonical form (empty)
        let widths = arch.widths.clone();
        Ok(if widths.is_empty() {
            arch
        } else {
            arch.with_widths(space, widths)
        })
    }

    /// A short human-readable id, e.g. `r28-d4444-k7777…-e6666…`; an arch with a narrowed
    /// stage ends with its stage widths, e.g. `…-w8.24.16`.
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
        if !self.widths.is_empty() {
            let ws: Vec<String> = self.widths.iter().map(usize::to_string).collect();
            s.push_str("-w");
            s.push_str(&ws.join("."));
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
        let width = arch.stage_width(space, s);
        for b in 0..arch.depths[s] {
            let cin = arch.block_in(space, s, b);
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
                out_channels: width,
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
        in_channels: arch.last_width(space),
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

    /// A width-free space as files have it (before width multipliers existed).
    const OLD_SPACE: &str = r#"{
  "format_version": 1,
  "name": "tiny",
  "in_channels": 1,
  "num_classes": 3,
  "image_size": 12,
  "stem_channels": 4,
  "stem_stride": 2,
  "stages": [
    {
      "width": 6,
      "stride": 2,
      "act": "relu"
    },
    {
      "width": 8,
      "stride": 1,
      "act": "hswish"
    }
  ],
  "head_channels": 16,
  "kernel_sizes": [
    3,
    5
  ],
  "expand_ratios": [
    2,
    3
  ],
  "depths": [
    1,
    2
  ],
  "resolutions": [
    8,
    12
  ]
}"#;

    #[test]
    fn old_space_and_arch_files_parse_without_widths_and_keep_their_bytes() {
        let sp: SearchSpace = serde_json::from_str(OLD_SPACE).unwrap();
        assert_eq!(sp.width_multipliers, vec![1.0]);
        assert!(!sp.has_elastic_width());
        sp.validate().unwrap();
        assert_eq!(sp, SearchSpace::tiny(1, 3, 12));
        assert_eq!(serde_json::to_string_pretty(&sp).unwrap(), OLD_SPACE);
        let old_arch = r#"{"resolution":12,"depths":[2,1],"kernel_sizes":[[5,3],[3]],"expand_ratios":[[3,2],[2]]}"#;
        let a: ArchConfig = serde_json::from_str(old_arch).unwrap();
        assert!(a.widths.is_empty());
        a.validate(&sp).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), old_arch);
        assert_eq!(a.stage_width(&sp, 1), 8);
        // the largest arch of a width space is written without widths too, and its id is
        // the width-free one
        let mut wsp = sp.clone();
        wsp.width_multipliers = vec![0.5, 1.0];
        let max = ArchConfig::max(&wsp);
        assert_eq!(max, ArchConfig::max(&sp));
        assert!(!serde_json::to_string(&max).unwrap().contains("widths"));
        assert_eq!(max.short_id(), "r12-d22-k5555-e3333");
        // a width space writes its multipliers and reads them back
        let text = serde_json::to_string(&wsp).unwrap();
        assert!(text.contains(r#""width_multipliers":[0.5,1.0]"#), "{text}");
        assert_eq!(serde_json::from_str::<SearchSpace>(&text).unwrap(), wsp);
    }

    fn width_space() -> SearchSpace {
        let mut sp = SearchSpace::tiny(1, 3, 12);
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        sp
    }

    #[test]
    fn width_multipliers_are_validated() {
        let sp = width_space();
        sp.validate().unwrap();
        // tiny: widths 6 and 8; 0.75 · 6 = 4.5 rounds up
        assert_eq!(sp.stage_widths(0), vec![3, 5, 6]);
        assert_eq!(sp.stage_widths(1), vec![4, 6, 8]);
        let err = |m: Vec<f64>| {
            let mut s = SearchSpace::tiny(1, 3, 12);
            s.width_multipliers = m;
            s.validate().unwrap_err().to_string()
        };
        let e = err(vec![]);
        assert!(e.contains("width_multipliers must not be empty"), "{e}");
        let e = err(vec![0.75, 0.5, 1.0]);
        assert!(e.contains("strictly increasing"), "{e}");
        let e = err(vec![0.5, 0.75]);
        assert!(e.contains("must end with 1.0"), "{e}");
        let e = err(vec![0.0, 1.0]);
        assert!(e.contains("each be in (0, 1]"), "{e}");
        let e = err(vec![0.5, 1.5]);
        assert!(e.contains("each be in (0, 1]"), "{e}");
        let e = err(vec![f64::NAN, 1.0]);
        assert!(e.contains("each be in (0, 1]"), "{e}");
        // 6 · 0.05 = 0.3 channels
        let e = err(vec![0.05, 1.0]);
        assert!(
            e.contains("stages[0] (width 6) at 0.05 rounds to 0 channels"),
            "{e}"
        );
        // 6 · 0.9 = 5.4 → 5 and 6 · 0.95 = 5.7 → 6 = the full width
        let e = err(vec![0.9, 0.95, 1.0]);
        assert!(
            e.contains("stages[0] (width 6) the widths [5, 6, 6], which repeat"),
            "{e}"
        );
    }

    #[test]
    fn arch_widths_are_validated_and_canonical() {
        let sp = width_space();
        let min = ArchConfig::min(&sp);
        assert_eq!(min.widths, vec![3, 4]);
        min.validate(&sp).unwrap();
        assert_eq!(min.short_id(), "r8-d11-k33-e22-w3.4");
        // full widths listed are the same arch as none listed
        let full = ArchConfig::max(&sp).with_widths(&sp, [6, 8]);
        assert!(full.widths.is_empty());
        assert_eq!(full, ArchConfig::max(&sp));
        let mut a = ArchConfig::max(&sp);
        a.widths = vec![4, 8];
        let e = a.validate(&sp).unwrap_err().to_string();
        assert!(
            e.contains("widths[0] = 4 is not one of stage 0's widths [3, 5, 6]"),
            "{e}"
        );
        a.widths = vec![5];
        let e = a.validate(&sp).unwrap_err().to_string();
        assert!(e.contains("one entry per stage (2 stages)"), "{e}");
        // a width-free space allows only the full widths
        let mut b = ArchConfig::max(&sp);
        b.widths = vec![3, 8];
        b.validate(&sp).unwrap();
        assert!(b.validate(&SearchSpace::tiny(1, 3, 12)).is_err());
    }

    #[test]
    fn narrowed_costs_match_a_count_by_hand() {
        // tiny (stem 4 s2, stage 0: 6 s2 relu, stage 1: 8 s1 hswish, head 16, 3 classes),
        // depth 1 and 2, kernels 3/5, expand 2, resolution 12; stage 0 at 3, stage 1 at 6.
        let sp = width_space();
        let arch = ArchConfig {
            resolution: 12,
            depths: vec![1, 2],
            kernel_sizes: vec![vec![3], vec![5, 3]],
            expand_ratios: vec![vec![2], vec![2, 2]],
            widths: vec![3, 6],
        };
        arch.validate(&sp).unwrap();
        let ls = layers(&sp, &arch);
        let shape: Vec<(usize, usize, usize)> = ls
            .iter()
            .map(|l| (l.in_channels, l.out_channels, l.out_size))
            .collect();
        assert_eq!(
            shape,
            vec![
                (1, 4, 6),   // stem 12 → 6
                (4, 8, 6),   // s0b0 expand: stem 4 × 2
                (8, 8, 3),   // dw stride 2
                (8, 3, 3),   // project to the active 3
                (3, 6, 3),   // s1b0 expand reads stage 0's 3 channels
                (6, 6, 3),   // dw
                (6, 6, 3),   // project to 6
                (6, 12, 3),  // s1b1 expand 6 × 2
                (12, 12, 3), // dw
                (12, 6, 3),  // project
                (6, 16, 3),  // head reads stage 1's 6 channels
                (16, 16, 1), // pool
                (16, 3, 1),  // fc
            ]
        );
        // params: weights + BN γ/β (2 per out channel) + fc with bias
        let params = (4 * 9 + 8) // stem
            + (4 * 8 + 16) + (8 * 9 + 16) + (8 * 3 + 6) // s0b0
            + (3 * 6 + 12) + (6 * 25 + 12) + (6 * 6 + 12) // s1b0, k5
            + (6 * 12 + 24) + (12 * 9 + 24) + (12 * 6 + 12) // s1b1
            + (6 * 16 + 32) // head
            + (16 * 3 + 3); // fc
        let macs = 36 * 4 * 9 // stem at 6×6
            + 36 * 32 + 9 * 8 * 9 + 9 * 24 // s0b0: expand at 6×6, dw and project at 3×3
            + 9 * (18 + 6 * 25 + 36)
            + 9 * (72 + 12 * 9 + 72)
            + 9 * 96 // head
            + 9 * 16 // pool
            + 48; // fc
        let c = arch_cost(&sp, &arch);
        assert_eq!(c.params, params);
        assert_eq!(c.macs, macs as u64);
        // folding drops one BN vector per conv: stem 4, blocks 8+8+3, 6+6+6, 12+12+6, head 16
        assert_eq!(c.folded_params, params - (4 + 19 + 18 + 30 + 16));
        // residuals: s1b0 is stride 1 and 6 == 8 at full width, but reads 3 channels here
        assert!(!arch.block_has_residual(&sp, 1, 0));
        assert!(arch.block_has_residual(&sp, 1, 1));
        assert!(!arch.block_has_residual(&sp, 0, 0));
        let same = arch.clone().with_widths(&sp, [6, 6]);
        assert!(
            !same.block_has_residual(&sp, 1, 0),
            "6 → 6 but no skip at full width"
        );
    }

    #[cfg(feature = "sample")]
    #[test]
    fn random_archs_draw_widths_only_in_a_width_space() {
        let sp = width_space();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let a = ArchConfig::random(&sp, &mut rng);
            a.validate(&sp).unwrap();
            assert!(
                a.widths.is_empty() || a.widths != vec![6, 8],
                "not canonical"
            );
            seen.insert(a.stage_width(&sp, 0));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 5, 6]);
        // a width-free space draws the same archs as it did before widths existed: the
        // genes come first and no width is drawn
        let free = SearchSpace::tiny(1, 3, 12);
        let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..20 {
            let a = ArchConfig::random(&free, &mut r1);
            let w = ArchConfig::random(&sp, &mut r2);
            assert!(a.widths.is_empty());
            assert_eq!(
                (&a.resolution, &a.depths, &a.kernel_sizes, &a.expand_ratios),
                (&w.resolution, &w.depths, &w.kernel_sizes, &w.expand_ratios)
            );
            // keep the streams aligned: the width space drew two more choices
            r1 = r2.clone();
        }
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
