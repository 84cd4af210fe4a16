//! Datasets: IDX (MNIST format), CIFAR-10 binary and ImageFolder trees, loaded into one
//! [`Dataset`] type; seeded splits, augmentation and allocation-free batching.

pub mod augment;
pub mod cifar;
pub mod dataset;
pub mod folder;
pub mod idx;
pub mod read;
pub mod toy;

pub use augment::{Augment, Batcher};
pub use dataset::{DataSplit, Dataset, DatasetFormat, detect_format, load_dir};
