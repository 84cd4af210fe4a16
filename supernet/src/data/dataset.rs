//! The one in-memory dataset type, and format detection for a data folder.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The smallest image side any loader accepts (a 0×0 or 1×1 image cannot be resized or
/// learnt from; every other image would be shrunk to it).
pub const MIN_IMAGE_SIDE: usize = 8;
/// The largest image side any loader accepts.
pub const MAX_IMAGE_SIDE: usize = 4096;

/// Images as u8 `[n, channels, height, width]` (CHW per image) with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Pixels, `n · channels · height · width` bytes.
    pub images: Vec<u8>,
    /// One label per image, `< class_names.len()`.
    pub labels: Vec<u16>,
    /// Channels (1 or 3).
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Class names, index = label.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let l = self.image_len();
        &self.images[i * l..(i + 1) * l]
    }
    /// The images at `idx`, as a new dataset.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let mut images = Vec::with_capacity(idx.len() * self.image_len());
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset {
            images,
            labels,
            ..self.clone_meta()
        }
    }
    /// The first `n` images.
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }
    fn clone_meta(&self) -> Dataset {
        Dataset {
            images: Vec::new(),
            labels: Vec::new(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            class_names: self.class_names.clone(),
        }
    }
    /// Seeded split into (train, validation) with `val_fraction` of the images in validation.
    pub fn split(&self, val_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let nv = ((self.len() as f64) * val_fraction).round() as usize;
        let (v, t) = idx.split_at(nv.min(self.len()));
        (self.subset(t), self.subset(v))
    }
    /// Per-channel mean and standard deviation of pixels / 255.
    pub fn mean_std(&self) -> (Vec<f32>, Vec<f32>) {
        let plane = self.height * self.width;
        let mut sum = vec![0f64; self.channels];
        let mut sq = vec![0f64; self.channels];
        for i in 0..self.len() {
            let img = self.image(i);
            for c in 0..self.channels {
                for &p in &img[c * plane..(c + 1) * plane] {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = (self.len() * plane).max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| ((q / n - (m as f64) * (m as f64)).max(1e-12).sqrt()) as f32)
            .collect();
        (mean, std)
    }
    /// Checks internal consistency.
    ///
    /// # Errors
    /// Sizes that disagree or labels out of range, naming `path`.
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.images.len() != self.len() * self.image_len() {
            return Err(Error::data(
                path,
                format!(
                    "{} pixel bytes for {} images of {}×{}×{}",
                    self.images.len(),
                    self.len(),
                    self.channels,
                    self.height,
                    self.width
                ),
            ));
        }
        if let Some(&l) = self
            .labels
            .iter()
            .find(|&&l| l as usize >= self.class_names.len())
        {
            return Err(Error::data(
                path,
                format!("label {l} ≥ number of classes {}", self.class_names.len()),
            ));
        }
        Ok(())
    }
}

/// Train and test sets of a data folder.
#[derive(Debug, Clone)]
pub struct DataSplit {
    /// Training images.
    pub train: Dataset,
    /// Test images (from the folder's test files; or a seeded 1/6 of the images if it has none).
    pub test: Dataset,
    /// The detected format.
    pub format: DatasetFormat,
    /// The folder.
    pub root: PathBuf,
}

/// The on-disk formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    /// MNIST-style IDX files (four files, `.gz` or raw).
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// One sub-folder per class with PNG/JPEG files (optionally under `train/` and `test/`).
    ImageFolder,
}

/// Detects the format of a data folder from its contents.
///
/// # Errors
/// A missing folder, or one in no known format (the message lists what was looked for).
pub fn detect_format(dir: &Path) -> Result<DatasetFormat> {
    let entries: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if entries
        .iter()
        .any(|n| n.contains("idx3-ubyte") || n.contains("idx1-ubyte"))
    {
        return Ok(DatasetFormat::Idx);
    }
    if entries
        .iter()
        .any(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
        || dir.join("cifar-10-batches-bin").is_dir()
    {
        return Ok(DatasetFormat::Cifar10);
    }
    let has_dirs = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .any(|e| e.path().is_dir());
    if has_dirs {
        return Ok(DatasetFormat::ImageFolder);
    }
    Err(Error::data(
        dir,
        "no dataset found: expected IDX files (*-images-idx3-ubyte[.gz], *-labels-idx1-ubyte[.gz]), \
         CIFAR-10 binary batches (data_batch_N.bin, test_batch.bin) or an ImageFolder tree (one folder per class)",
    ))
}

/// Loads the train and test sets of a folder in any supported format.
///
/// # Errors
/// Detection errors and each loader's errors (they name the file and what was expected).
pub fn load_dir(dir: &Path, seed: u64) -> Result<DataSplit> {
    let format = detect_format(dir)?;
    let (train, test) = match format {
        DatasetFormat::Idx => super::idx::load_idx_dir(dir)?,
        DatasetFormat::Cifar10 => super::cifar::load_cifar_dir(dir)?,
        DatasetFormat::ImageFolder => super::folder::load_image_folder(dir)?,
    };
    let (train, test) = match test {
        Some(t) => (train, t),
        None => train.split(1.0 / 6.0, seed ^ 0x7e57),
    };
    if train.is_empty() {
        return Err(Error::data(
            dir,
            "the dataset has no training images; add training images to the folder",
        ));
    }
    if test.is_empty() {
        return Err(Error::data(
            dir,
            format!(
                "the dataset has no test images ({} training images, too few to split off a \
                 test set); add test files or more training images",
                train.len()
            ),
        ));
    }
    Ok(DataSplit {
        train,
        test,
        format,
        root: dir.to_path_buf(),
    })
}

/// Names of Fashion-MNIST's classes.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
