//! Fixtures for tests (this crate's and the CLI's): a tiny bundle with real weights and a toy
//! image set. Not part of the supported API.
//!
//! The bundle holds three variants of a fresh `SearchSpace::tiny(1, 4, 12)` supernet — `max`,
//! `mid` (a mixed arch) and `min` — each with BN recalibrated on toy images, extracted, folded
//! and stored as f32 safetensors. The manifest records no accuracy (the weights are untrained),
//! so selection ranks by MACs; reference latencies are 8 ms × MACs / MACs of `max` on a
//! reference device of score 100, with a 10 ms default budget: a 4×A53 phone (score ~80) gets
//! `mid`, a flagship gets `max`.

use std::path::Path;

use burn::prelude::*;
use supernet::preprocess::resize_bilinear;
use supernet::{ArchConfig, BnMode, PlainNet, SearchSpace, Supernet, arch_cost};

use crate::bundle::{Bundle, BundleWriter};
use crate::error::{Error, Result};
use crate::manifest::{BUNDLE_FORMAT_VERSION, Dtype, Family, ManifestFile, Reference, Variant};
use crate::session::ImageRef;

/// Classes of the tiny family.
pub const TINY_CLASSES: usize = 4;
/// Image size of the tiny family.
pub const TINY_SIZE: usize = 12;
/// Mean of the tiny family's normalisation.
pub const TINY_MEAN: f32 = 0.2;
/// Std of the tiny family's normalisation.
pub const TINY_STD: f32 = 0.3;

/// The tiny family's search space.
pub fn tiny_space() -> SearchSpace {
    SearchSpace::tiny(1, TINY_CLASSES, TINY_SIZE)
}

/// The three archs of the tiny bundle: `max`, `mid`, `min`.
pub fn tiny_archs(space: &SearchSpace) -> Vec<(&'static str, ArchConfig)> {
    let max = ArchConfig::max(space);
    let min = ArchConfig::min(space);
    let (k_lo, k_hi) = (space.kernel_sizes[0], space.max_kernel());
    let (e_lo, e_hi) = (space.expand_ratios[0], space.max_expand());
    let depths: Vec<usize> = (0..space.stages.len())
        .map(|s| {
            if s % 2 == 0 {
                space.max_depth()
            } else {
                space.depths[0]
            }
        })
        .collect();
    let mid = ArchConfig {
        resolution: max.resolution,
        kernel_sizes: depths
            .iter()
            .enumerate()
            .map(|(s, &d)| {
                (0..d)
                    .map(|b| if (s + b) % 2 == 0 { k_hi } else { k_lo })
                    .collect()
            })
            .collect(),
        expand_ratios: depths
            .iter()
            .enumerate()
            .map(|(s, &d)| {
                (0..d)
                    .map(|b| if (s + b) % 2 == 0 { e_lo } else { e_hi })
                    .collect()
            })
            .collect(),
        depths,
    };
    vec![("max", max), ("mid", mid), ("min", min)]
}

/// Grayscale toy images: class `k` has a bright bar on row `(3k + 1) mod size` over seeded
/// noise. Pixels are HWC (= HW, one channel).
#[derive(Debug, Clone, PartialEq)]
pub struct ToySet {
    /// Side of each image.
    pub size: usize,
    /// `n · size²` bytes.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<usize>,
}

impl ToySet {
    /// `n` images of `size`², labels cycling through `classes`, noise from `seed`.
    pub fn new(n: usize, size: usize, classes: usize, seed: u64) -> Self {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        };
        let mut pixels = Vec::with_capacity(n * size * size);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = i % classes.max(1);
            let row = (3 * label + 1) % size;
            for y in 0..size {
                for _ in 0..size {
                    let noise = next() / 4;
                    pixels.push(if y == row { 255 - noise } else { noise });
                }
            }
            labels.push(label);
        }
        ToySet {
            size,
            pixels,
            labels,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`.
    pub fn image(&self, i: usize) -> ImageRef<'_> {
        let n = self.size * self.size;
        ImageRef {
            pixels: &self.pixels[i * n..(i + 1) * n],
            width: self.size,
            height: self.size,
            channels: 1,
        }
    }

    /// All images.
    pub fn images(&self) -> Vec<ImageRef<'_>> {
        (0..self.len()).map(|i| self.image(i)).collect()
    }

    /// The images normalised with the tiny family's mean/std and resized to `r`:
    /// `[n, 1, r, r]` row-major, computed independently of [`crate::Session`].
    pub fn preprocessed(&self, r: usize) -> Vec<f32> {
        let x: Vec<f32> = self
            .pixels
            .iter()
            .map(|&p| (f32::from(p) / 255.0 - TINY_MEAN) / TINY_STD)
            .collect();
        let mut out = Vec::new();
        resize_bilinear(&x, self.len(), 1, self.size, self.size, r, &mut out);
        out
    }
}

/// The tiny bundle and what it was built from.
#[derive(Debug)]
pub struct TinyBundle {
    /// The bundle as written.
    pub bundle: Bundle,
    /// `(variant id, folded network)` in the order `max`, `mid`, `min`.
    pub nets: Vec<(String, PlainNet)>,
    /// The supernet the variants were extracted from (BN as calibrated for the last, `min`).
    pub supernet: Supernet,
}

/// The manifest header of the tiny bundle (no variants).
pub fn tiny_header(version: &str) -> ManifestFile {
    let space = tiny_space();
    ManifestFile {
        format_version: BUNDLE_FORMAT_VERSION,
        bundle_id: "tiny-real".into(),
        bundle_version: version.into(),
        created_by: format!("runtime {} test_support", env!("CARGO_PKG_VERSION")),
        family: Family {
            name: "tiny".into(),
            labels: (0..TINY_CLASSES).map(|k| format!("class-{k}")).collect(),
            in_channels: 1,
            image_size: TINY_SIZE,
            mean: vec![TINY_MEAN],
            std: vec![TINY_STD],
            search_space: space,
        },
        reference: Reference {
            profile_id: "tiny-reference".into(),
            score: 100.0,
        },
        default_latency_budget_ms: 10.0,
        variants: vec![],
        tiers: vec![],
    }
}

/// Recalibrates `net`'s BN for `arch` on toy images (2 batches of 16).
pub fn calibrate(net: &Supernet, arch: &ArchConfig, device: &Device) {
    net.reset_bn_stats();
    let r = arch.resolution;
    for i in 0..2u64 {
        let set = ToySet::new(16, TINY_SIZE, TINY_CLASSES, 100 + i);
        let x = set.preprocessed(r);
        let len = x.len();
        let t = Tensor::<1>::from_data(TensorData::new(x, [len]), device).reshape([16, 1, r, r]);
        let _ = net.forward(
            t,
            arch,
            BnMode::Calibrate {
                momentum: 1.0 / (i as f32 + 1.0),
            },
        );
    }
}

/// Builds the tiny bundle (version `"1"`) in the folder `dir` (which must not exist).
///
/// # Errors
/// Writing the bundle failed.
pub fn tiny_bundle(dir: &Path) -> Result<TinyBundle> {
    tiny_bundle_version(dir, "1")
}

/// As [`tiny_bundle`], with the given bundle version, replacing `dir` if it exists.
///
/// # Errors
/// Writing the bundle failed.
pub fn tiny_bundle_version(dir: &Path, version: &str) -> Result<TinyBundle> {
    let device = supernet::default_device();
    let space = tiny_space();
    let bad = |e: supernet::Error| Error::LoadFailed {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let net = Supernet::new(&space, 7, &device).map_err(bad)?;
    let archs = tiny_archs(&space);
    let max_macs = arch_cost(&space, &archs[0].1).macs.max(1);
    let mut writer = BundleWriter::new(tiny_header(version));
    let mut nets = Vec::new();
    for (id, arch) in archs {
        calibrate(&net, &arch, &device);
        let plain = PlainNet::extract(&net, &arch).map_err(bad)?.fold();
        let bytes = plain.to_safetensors(false).map_err(bad)?;
        let cost = arch_cost(&space, &arch);
        writer.add_variant(
            Variant {
                id: id.into(),
                resolution: arch.resolution,
                arch,
                params: plain.num_params() as u64,
                macs: cost.macs,
                model_bytes: 0,
                dtype: Dtype::F32,
                peak_activation_bytes: cost.peak_activation_elems as u64 * 4,
                test_accuracy: None,
                predicted_accuracy: None,
                latency_ms: 8.0 * cost.macs as f64 / max_macs as f64,
                latency_by_threads: vec![],
                file: format!("{id}.safetensors"),
                sha256: String::new(),
            },
            bytes,
        );
        nets.push((id.to_string(), plain));
    }
    let bundle = writer.overwrite(true).write(dir)?;
    Ok(TinyBundle {
        bundle,
        nets,
        supernet: net,
    })
}
