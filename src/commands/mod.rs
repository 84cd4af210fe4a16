//! One file per subcommand.

pub mod bench;
pub mod bundle;
pub mod demo;
pub mod eval;
pub mod latency;
pub mod profile;
pub mod progress;
pub mod qa;
pub mod search;
pub mod select;
pub mod train;

use std::path::{Path, PathBuf};

/// The largest batch a command accepts (`--batch`): bigger ones exhaust memory.
pub const MAX_BATCH: u64 = 4096;

/// A clap parser for a whole number in `min..=max`; clap's error names the flag and the range.
pub fn bounded(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(min..=max)
}

/// clap's parser for a latency budget in milliseconds (`--budget-ms`): a positive, finite number
/// (the same range `runtime::Policy::validate` checks, refused at parse time with the flag named).
pub fn parse_budget_ms(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give milliseconds, e.g. 20"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!(
            "{s} must be a positive number of milliseconds, e.g. 20"
        ))
    }
}

/// The largest JSON file a flag may name (arch, profile, facts).
pub const MAX_SMALL_FILE_BYTES: u64 = 1 << 20;

/// Reads a small text file named by `flag` after checking it is a regular file (a FIFO would
/// block forever) of at most [`MAX_SMALL_FILE_BYTES`].
///
/// # Errors
/// A missing file, a folder, FIFO or device, a larger file, or text that is not UTF-8 (each
/// naming the flag and the file).
pub fn read_small_text(path: &Path, flag: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot read it: {e}", path.display()))?;
    if !meta.is_file() {
        anyhow::bail!(
            "{flag} {}: not a regular file (a folder, FIFO or device); pass a JSON file",
            path.display()
        );
    }
    if meta.len() > MAX_SMALL_FILE_BYTES {
        anyhow::bail!(
            "{flag} {}: {} bytes, more than the {MAX_SMALL_FILE_BYTES} bytes such a file may hold",
            path.display(),
            meta.len()
        );
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SMALL_FILE_BYTES).read_to_end(&mut bytes))
        .map_err(|e| anyhow::anyhow!("{flag} {}: cannot read it: {e}", path.display()))?;
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{flag} {}: not UTF-8 text", path.display()))
}

/// A clap parser for `--calib`: at least [`supernet::train::MIN_CALIB_IMAGES`] images (batch
/// norm cannot be recalibrated on fewer).
pub fn calib_parser() -> clap::builder::RangedU64ValueParser<usize> {
    bounded(supernet::train::MIN_CALIB_IMAGES as u64, 10_000_000)
}

/// Where the bundled Fashion-MNIST lives: the repo's `data/fashion-mnist`, the shared folder
/// beside the checkout, or Debian's `dataset-fashion-mnist` package.
pub fn find_fashion_mnist(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        PathBuf::from("data/fashion-mnist"),
        here.join("data/fashion-mnist"),
        here.join("../shared/data/fashion-mnist"),
        PathBuf::from("/usr/share/datasets/fashion-mnist"),
    ];
    candidates
        .iter()
        .find(|p| p.join("train-images-idx3-ubyte.gz").is_file() || p.join("train-images-idx3-ubyte").is_file())
        .cloned()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Fashion-MNIST not found (looked in data/fashion-mnist, ../shared/data/fashion-mnist and \
                 /usr/share/datasets/fashion-mnist): pass --data DIR or `apt-get install dataset-fashion-mnist`"
            )
        })
}

/// `--device`: where training, evaluation and the search's sub-net measurements run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceArg {
    /// burn's flex CPU backend.
    #[default]
    Cpu,
    /// The first GPU (wgpu: Vulkan, Metal or DX12); needs a build with `--features supernet/wgpu`.
    Gpu,
}

impl From<DeviceArg> for supernet::ComputeDevice {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => supernet::ComputeDevice::Cpu,
            DeviceArg::Gpu => supernet::ComputeDevice::Gpu,
        }
    }
}
