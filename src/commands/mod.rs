//! One file per subcommand.

pub mod bench;
pub mod bundle;
pub mod demo;
pub mod eval;
pub mod profile;
pub mod qa;
pub mod search;
pub mod select;
pub mod train;

use std::path::{Path, PathBuf};

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
