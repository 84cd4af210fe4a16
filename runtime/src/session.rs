//! The inference session: a loaded variant plus its preprocessing.

use burn::prelude::*;
use supernet::PlainNet;
use supernet::preprocess::resize_bilinear;

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::manifest::{Family, Variant};

/// One prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Class index.
    pub class: usize,
    /// Class label from the manifest.
    pub label: String,
    /// Softmax probability of that class.
    pub probability: f32,
}

/// An image in memory: `height × width × channels` u8, interleaved (HWC), as apps hold bitmaps.
#[derive(Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    /// Pixels, `height · width · channels` bytes.
    pub pixels: &'a [u8],
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
    /// Channels (1 or 3).
    pub channels: usize,
}

/// A variant loaded for inference.
#[derive(Debug)]
pub struct Session {
    net: PlainNet,
    /// The fused CPU engine compiled from `net` (None: a net it does not take, or
    /// [`Session::use_burn`]); inference runs on it when present.
    fast: Option<crate::engine::FastNet>,
    family: Family,
    variant: Variant,
    device: Device,
    buf: Vec<f32>,
    resized: Vec<f32>,
}

/// Parses variant bytes (already checksum-verified) into a network. `what` names the file in errors.
///
/// # Errors
/// A file that does not decode into the variant's arch.
pub fn load_net(
    family: &Family,
    variant: &Variant,
    bytes: &[u8],
    device: &Device,
) -> std::result::Result<PlainNet, String> {
    PlainNet::from_safetensors(
        bytes,
        &family.search_space,
        &variant.arch,
        &variant.file,
        device,
    )
    .map_err(|e| e.to_string())
}

impl Session {
    /// Wraps an already loaded network.
    pub fn new(net: PlainNet, family: Family, variant: Variant) -> Self {
        let fast = crate::engine::FastNet::from_plain(&net).ok();
        Session {
            net,
            fast,
            family,
            variant,
            device: supernet::default_device(),
            buf: Vec::new(),
            resized: Vec::new(),
        }
    }

    /// Verifies and loads variant `id` of `bundle`.
    ///
    /// # Errors
    /// Unknown id, a missing/corrupt file (checksum), or a file that does not match its arch.
    pub fn open(bundle: &Bundle, id: &str) -> Result<Self> {
        let variant = bundle.variant(id)?.clone();
        let bytes = bundle.read_variant(id)?;
        let family = bundle.manifest().family().clone();
        let device = supernet::default_device();
        let net =
            load_net(&family, &variant, &bytes, &device).map_err(|message| Error::LoadFailed {
                path: bundle.variant_path(&variant),
                message,
            })?;
        Ok(Session::new(net, family, variant))
    }

    /// Runs inference through burn's tensor ops (`PlainNet::forward`) instead of the fused
    /// engine: for comparisons and benchmarks.
    pub fn use_burn(mut self) -> Self {
        self.fast = None;
        self
    }

    /// Which inference path runs: `"fast"` (the fused engine) or `"burn"`.
    pub fn engine(&self) -> &'static str {
        if self.fast.is_some() { "fast" } else { "burn" }
    }

    /// The loaded variant.
    pub fn variant(&self) -> &Variant {
        &self.variant
    }

    /// The network.
    pub fn net(&self) -> &PlainNet {
        &self.net
    }

    /// Logits of a batch that is already preprocessed: `[n, c, r, r]` normalised f32, row-major.
    ///
    /// # Errors
    /// A buffer of the wrong length.
    pub fn logits_preprocessed(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let c = self.family.in_channels;
        let r = self.variant.resolution;
        if x.len() != n * c * r * r || n == 0 {
            return Err(Error::BadInput {
                reason: format!("expected {n}×{c}×{r}×{r} floats, got {}", x.len()),
            });
        }
        if let Some(f) = &self.fast {
            return f.forward(x, n);
        }
        let t = Tensor::<1>::from_data(TensorData::new(x.to_vec(), [x.len()]), &self.device)
            .reshape([n, c, r, r]);
        Ok(self
            .net
            .forward(t)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default())
    }

    /// Preprocesses images (resize to the variant's resolution, normalise with the manifest's
    /// mean/std) into the session's buffer.
    fn preprocess(&mut self, images: &[ImageRef<'_>]) -> Result<()> {
        let c = self.family.in_channels;
        let r = self.variant.resolution;
        self.buf.clear();
        let mut chw = Vec::new();
        for (i, im) in images.iter().enumerate() {
            if im.channels != c
                || im.pixels.len() != im.width * im.height * im.channels
                || im.width == 0
                || im.height == 0
            {
                return Err(Error::BadInput {
                    reason: format!(
                        "image {i}: {}×{}×{} with {} bytes; this model takes {c}-channel images (HWC u8)",
                        im.height,
                        im.width,
                        im.channels,
                        im.pixels.len()
                    ),
                });
            }
            chw.clear();
            chw.resize(c * im.width * im.height, 0.0);
            let plane = im.width * im.height;
            for ch in 0..c {
                let (m, s) = (
                    self.family.mean[ch.min(self.family.mean.len() - 1)],
                    self.family.std[ch.min(self.family.std.len() - 1)],
                );
                for p in 0..plane {
                    chw[ch * plane + p] = (im.pixels[p * c + ch] as f32 / 255.0 - m) / s;
                }
            }
            resize_bilinear(&chw, 1, c, im.height, im.width, r, &mut self.resized);
            self.buf.extend_from_slice(&self.resized);
        }
        Ok(())
    }

    /// Classifies a batch of images.
    ///
    /// # Errors
    /// An image with the wrong channel count or byte length.
    pub fn predict_batch(&mut self, images: &[ImageRef<'_>]) -> Result<Vec<Prediction>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        self.preprocess(images)?;
        let buf = std::mem::take(&mut self.buf);
        let logits = self.logits_preprocessed(&buf, images.len());
        self.buf = buf;
        let logits = logits?;
        let k = self.family.labels.len();
        Ok(logits
            .chunks(k)
            .map(|row| {
                let (class, &max) = row
                    .iter()
                    .enumerate()
                    .fold((0, &f32::MIN), |a, b| if b.1 > a.1 { b } else { a });
                let z: f32 = row.iter().map(|v| (v - max).exp()).sum();
                Prediction {
                    class,
                    label: self.family.labels[class].clone(),
                    probability: 1.0 / z,
                }
            })
            .collect())
    }

    /// Classifies one image.
    ///
    /// # Errors
    /// See [`Session::predict_batch`].
    pub fn predict(&mut self, image: ImageRef<'_>) -> Result<Prediction> {
        let mut v = self.predict_batch(&[image])?;
        v.pop().ok_or_else(|| Error::BadInput {
            reason: "no prediction".into(),
        })
    }
}
