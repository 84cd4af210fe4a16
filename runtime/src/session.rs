//! The inference session: a loaded variant plus its preprocessing.

use netspec::{FoldedNet, InputSpec, prepare_image};

use crate::bundle::Bundle;
use crate::engine::FastNet;
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

pub use netspec::ImageRef;

/// A variant loaded for inference: the fused engine compiled from its weights, and the
/// family's preprocessing.
#[derive(Debug)]
pub struct Session {
    fast: FastNet,
    family: Family,
    variant: Variant,
    buf: Vec<f32>,
    chw: Vec<f32>,
    resized: Vec<f32>,
}

/// Decodes variant bytes (already checksum-verified) and compiles them for the engine.
///
/// # Errors
/// [`Error::LoadFailed`] naming the variant's file when the bytes do not decode into the
/// variant's arch (or hold non-finite values); [`Error::UnsupportedNet`] when the engine
/// cannot run the network.
pub fn load_net(family: &Family, variant: &Variant, bytes: &[u8]) -> Result<FastNet> {
    let net =
        FoldedNet::from_safetensors(bytes, &family.search_space, &variant.arch, &variant.file)
            .map_err(|source| Error::LoadFailed {
                path: variant.file.clone().into(),
                source,
            })?;
    FastNet::from_folded(&net)
}

impl Session {
    /// Wraps a compiled network.
    pub fn new(fast: FastNet, family: Family, variant: Variant) -> Self {
        Session {
            fast,
            family,
            variant,
            buf: Vec::new(),
            chw: Vec::new(),
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
        let fast = load_net(&family, &variant, &bytes).map_err(|e| match e {
            Error::LoadFailed { source, .. } => Error::LoadFailed {
                path: bundle.variant_path(&variant),
                source,
            },
            e => e,
        })?;
        Ok(Session::new(fast, family, variant))
    }

    /// Runs one image on `threads` threads from now on ([`FastNet::with_threads`]; the runtime's
    /// choice is [`crate::inference_threads`]). On an error the session keeps its threads.
    ///
    /// # Errors
    /// [`Error::BadInput`] for 0; [`Error::EngineThreads`] when the threads cannot be started.
    pub fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.fast.set_threads(threads)
    }

    /// Threads one image runs on.
    pub fn threads(&self) -> usize {
        self.fast.threads()
    }

    /// The compiled network.
    pub fn engine(&self) -> &FastNet {
        &self.fast
    }

    /// The loaded variant.
    pub fn variant(&self) -> &Variant {
        &self.variant
    }

    /// The family the variant belongs to.
    pub fn family(&self) -> &Family {
        &self.family
    }

    /// Logits of a batch that is already preprocessed: `[n, c, r, r]` normalised f32, row-major.
    ///
    /// # Errors
    /// A buffer of the wrong length.
    pub fn logits_preprocessed(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        self.fast.forward(x, n)
    }

    /// Preprocesses images (resize to the variant's resolution, normalise with the manifest's
    /// mean/std) into the session's buffer.
    fn preprocess(&mut self, images: &[ImageRef<'_>]) -> Result<()> {
        let spec = InputSpec {
            channels: self.family.in_channels,
            resolution: self.variant.resolution,
            mean: &self.family.mean,
            std: &self.family.std,
        };
        self.buf.clear();
        for (i, im) in images.iter().enumerate() {
            prepare_image(*im, spec, &mut self.chw, &mut self.resized, &mut self.buf).map_err(
                |e| Error::BadInput {
                    reason: match e {
                        netspec::Error::Data { reason, .. } => format!("image {i}: {reason}"),
                        e => format!("image {i}: {e}"),
                    },
                },
            )?;
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

    /// Softmax probabilities of every class for one image (in the order of the family's
    /// labels).
    ///
    /// # Errors
    /// An image with the wrong channel count or byte length.
    pub fn probabilities(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        self.preprocess(&[image])?;
        let buf = std::mem::take(&mut self.buf);
        let logits = self.logits_preprocessed(&buf, 1);
        self.buf = buf;
        let mut p = logits?;
        let max = p.iter().copied().fold(f32::MIN, f32::max);
        let mut z = 0.0;
        for v in &mut p {
            *v = (*v - max).exp();
            z += *v;
        }
        p.iter_mut().for_each(|v| *v /= z);
        Ok(p)
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
