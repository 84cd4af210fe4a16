//! Extraction and evaluation of one sub-net: recalibrate BN on training images, extract the
//! plain network, fold BN, encode the weights file (f32 and int8), reload each file and measure
//! its test top-1.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use supernet::data::{Batcher, Dataset};
use supernet::train::recalibrate_bn;
use supernet::{ArchConfig, PlainNet, Supernet};

use crate::error::{Error, Result};

/// Top-1 accuracy (0..1) of a plain network on the first `limit` images of `ds` (all when
/// `None`), resized to the network's resolution exactly as the supernet's evaluation does.
pub fn evaluate_plain(
    net: &PlainNet,
    ds: &Dataset,
    batcher: &mut Batcher,
    limit: Option<usize>,
    device: &Device,
) -> f64 {
    supernet::train::eval::top1(ds, batcher, limit, net.arch.resolution, device, |x| {
        net.forward(x)
    })
}

/// Recalibrates BN of `model` for `arch` on the first `calib_images` of `calib`, extracts the
/// plain network and folds BN.
///
/// # Errors
/// An arch outside the model's space.
pub fn extract_folded(
    model: &Supernet,
    arch: &ArchConfig,
    calib: &Dataset,
    batcher: &mut Batcher,
    calib_images: usize,
    device: &Device,
) -> Result<PlainNet> {
    arch.validate(&model.space).map_err(|e| {
        Error::supernet(
            format!(
                "sub-net {} does not belong to the checkpoint's space",
                arch.short_id()
            ),
            e,
        )
    })?;
    recalibrate_bn(model, arch, calib, batcher, calib_images, device);
    Ok(PlainNet::extract(model, arch)
        .map_err(|e| Error::supernet(format!("extracting {}", arch.short_id()), e))?
        .fold())
}

/// How to extract and evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractOptions {
    /// Training images BN is recalibrated on (the design's ~2000).
    pub calib_images: usize,
    /// Evaluate on at most this many test images (None: all).
    pub test_limit: Option<usize>,
    /// Also encode and evaluate the int8 file.
    pub int8: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            calib_images: 2000,
            test_limit: None,
            int8: true,
        }
    }
}

/// One extracted, evaluated sub-net with its weights files.
#[derive(Debug, Clone)]
pub struct Extracted {
    /// The sub-net.
    pub arch: ArchConfig,
    /// The f32 safetensors file.
    pub f32_bytes: Vec<u8>,
    /// The int8 file, when asked for.
    pub int8_bytes: Option<Vec<u8>>,
    /// Test top-1 of the f32 file, reloaded.
    pub test_top1_f32: f64,
    /// Test top-1 of the int8 file, reloaded.
    pub test_top1_int8: Option<f64>,
    /// Test images measured.
    pub test_images: usize,
}

/// Recalibrates, extracts and folds `arch`, encodes its weights (f32, and int8 if asked), and
/// measures each file's test top-1 after reloading it with `PlainNet::from_safetensors`.
///
/// # Errors
/// An arch outside the model's space, or a file that does not reload (a defect).
pub fn extract_and_evaluate(
    model: &Supernet,
    arch: &ArchConfig,
    train: &Dataset,
    test: &Dataset,
    batcher: &mut Batcher,
    opts: &ExtractOptions,
    device: &Device,
) -> Result<Extracted> {
    let net = extract_folded(model, arch, train, batcher, opts.calib_images, device)?;
    let space = &model.space;
    let encode = |int8: bool| {
        net.to_safetensors(int8)
            .map_err(|e| Error::supernet(format!("encoding {}", arch.short_id()), e))
    };
    let reload_and_eval = |bytes: &[u8], what: &str, batcher: &mut Batcher| -> Result<f64> {
        let re = PlainNet::from_safetensors(bytes, space, arch, what, device).map_err(|e| {
            Error::supernet(
                format!("reloading the {what} weights of {}", arch.short_id()),
                e,
            )
        })?;
        Ok(evaluate_plain(&re, test, batcher, opts.test_limit, device))
    };
    let f32_bytes = encode(false)?;
    let test_top1_f32 = reload_and_eval(&f32_bytes, "f32", batcher)?;
    let (int8_bytes, test_top1_int8) = if opts.int8 {
        let b = encode(true)?;
        let acc = reload_and_eval(&b, "int8", batcher)?;
        (Some(b), Some(acc))
    } else {
        (None, None)
    };
    Ok(Extracted {
        arch: arch.clone(),
        f32_bytes,
        int8_bytes,
        test_top1_f32,
        test_top1_int8,
        test_images: opts.test_limit.unwrap_or(test.len()).min(test.len()),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use supernet::data::DataSplit;
    use supernet::train::evaluate;

    pub(crate) fn toy_split() -> DataSplit {
        DataSplit {
            train: fixtures::toy_dataset(64, 12, 4, 0),
            test: fixtures::toy_dataset(24, 12, 4, 1000),
            format: supernet::data::DatasetFormat::Idx,
            root: "toy".into(),
        }
    }

    #[test]
    fn plain_net_accuracy_equals_the_supernets() {
        let dev = supernet::default_device();
        let sp = supernet::SearchSpace::tiny(1, 4, 12);
        let model = Supernet::new(&sp, 4, &dev).unwrap();
        let data = toy_split();
        let mut b = Batcher::new(vec![0.2], vec![0.3]);
        for arch in [ArchConfig::max(&sp), ArchConfig::min(&sp)] {
            let e = extract_and_evaluate(
                &model,
                &arch,
                &data.train,
                &data.test,
                &mut b,
                &ExtractOptions {
                    calib_images: 64,
                    test_limit: None,
                    int8: true,
                },
                &dev,
            )
            .unwrap();
            // the supernet, recalibrated the same way, agrees with the reloaded f32 file
            recalibrate_bn(&model, &arch, &data.train, &mut b, 64, &dev);
            let want = evaluate(&model, &arch, &data.test, &mut b, None, &dev);
            assert!(
                (e.test_top1_f32 - want).abs() < 1e-9,
                "{} vs {want}",
                e.test_top1_f32
            );
            assert!(e.int8_bytes.as_ref().unwrap().len() < e.f32_bytes.len());
            assert!(e.test_top1_int8.is_some());
            assert_eq!(e.test_images, 24);
        }
    }
}
