//! IDX files (the MNIST format), raw or gzip-compressed.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::dataset::{Dataset, FASHION_MNIST_CLASSES};
use crate::error::{Error, Result};

/// Magic of an IDX file of u8 images (3 dims).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 labels (1 dim).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a whole file, gunzipping it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("corrupt or truncated gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parses an IDX images file: `(count, rows, cols, pixels)`.
///
/// # Errors
/// Wrong magic or a file shorter than its header says.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    if bytes.len() < 16 {
        return Err(Error::data(
            path,
            format!(
                "{} bytes: too short for an IDX images header (16 bytes)",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08x}: an IDX images file starts with 0x{IMAGES_MAGIC:08x}"
            ),
        ));
    }
    let (n, r, c) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    let need = n
        .checked_mul(r)
        .and_then(|x| x.checked_mul(c))
        .unwrap_or(usize::MAX);
    if bytes.len() - 16 < need {
        return Err(Error::data(
            path,
            format!(
                "truncated: header says {n} images of {r}×{c} ({need} bytes), file has {} bytes of pixels",
                bytes.len() - 16
            ),
        ));
    }
    Ok((n, r, c, bytes[16..16 + need].to_vec()))
}

/// Parses an IDX labels file.
///
/// # Errors
/// Wrong magic or a file shorter than its header says.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u16>> {
    if bytes.len() < 8 {
        return Err(Error::data(
            path,
            format!(
                "{} bytes: too short for an IDX labels header (8 bytes)",
                bytes.len()
            ),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(Error::data(
            path,
            format!(
                "wrong magic number 0x{magic:08x}: an IDX labels file starts with 0x{LABELS_MAGIC:08x}"
            ),
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() - 8 < n {
        return Err(Error::data(
            path,
            format!(
                "truncated: header says {n} labels, file has {}",
                bytes.len() - 8
            ),
        ));
    }
    Ok(bytes[8..8 + n].iter().map(|&b| b as u16).collect())
}

/// Loads one images + labels pair into a dataset.
///
/// # Errors
/// Parse errors, or counts that disagree.
pub fn load_pair(
    images: &Path,
    labels: &Path,
    class_names: Option<Vec<String>>,
) -> Result<Dataset> {
    let (n, h, w, px) = parse_images(images, &read_maybe_gz(images)?)?;
    let lb = parse_labels(labels, &read_maybe_gz(labels)?)?;
    if lb.len() != n {
        return Err(Error::data(
            labels,
            format!(
                "{} labels but {} has {n} images",
                lb.len(),
                images.display()
            ),
        ));
    }
    let max = lb.iter().copied().max().unwrap_or(0) as usize;
    let class_names =
        class_names.unwrap_or_else(|| (0..=max.max(1)).map(|i| i.to_string()).collect());
    let ds = Dataset {
        images: px,
        labels: lb,
        channels: 1,
        height: h,
        width: w,
        class_names,
    };
    ds.validate(labels)?;
    Ok(ds)
}

fn find(dir: &Path, names: &[String], split: &[&str], kind: &str) -> Option<PathBuf> {
    names
        .iter()
        .filter(|n| {
            n.contains(kind)
                && split
                    .iter()
                    .any(|s| n.starts_with(s) || n.contains(&format!("-{s}")))
        })
        .min()
        .map(|n| dir.join(n))
}

/// Loads a folder of IDX files: `train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
/// and optionally `t10k-…` (or `test-…`) for the test set. Class names come from `classes.txt`
/// (one per line) when present; Fashion-MNIST's names when the folder is named like it.
///
/// # Errors
/// Missing training files (named), or any parse error.
pub fn load_idx_dir(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let ti = find(dir, &names, &["train"], "idx3-ubyte");
    let tl = find(dir, &names, &["train"], "idx1-ubyte");
    let (ti, tl) = match (ti, tl) {
        (Some(a), Some(b)) => (a, b),
        _ => {
            return Err(Error::data(
                dir,
                "IDX folder needs train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]",
            ));
        }
    };
    let class_names = match std::fs::read_to_string(dir.join("classes.txt")) {
        Ok(t) => Some(
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        ),
        Err(_) => {
            let lower = dir.to_string_lossy().to_lowercase();
            lower.contains("fashion").then(|| {
                FASHION_MNIST_CLASSES
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            })
        }
    };
    let train = load_pair(&ti, &tl, class_names.clone())?;
    let vi = find(dir, &names, &["t10k", "test"], "idx3-ubyte");
    let vl = find(dir, &names, &["t10k", "test"], "idx1-ubyte");
    let test = match (vi, vl) {
        (Some(a), Some(b)) => {
            let mut t = load_pair(&a, &b, Some(train.class_names.clone()))?;
            if t.height != train.height || t.width != train.width {
                return Err(Error::data(
                    a,
                    format!(
                        "test images are {}×{}, train {}×{}",
                        t.height, t.width, train.height, train.width
                    ),
                ));
            }
            t.class_names = train.class_names.clone();
            Some(t)
        }
        _ => None,
    };
    Ok((train, test))
}

/// Writes an IDX images file (used by tests and tools that make small datasets).
pub fn encode_images(n: usize, h: usize, w: usize, px: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(16 + px.len());
    for v in [IMAGES_MAGIC, n as u32, h as u32, w as u32] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(px);
    b
}

/// Writes an IDX labels file.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + labels.len());
    b.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let px: Vec<u8> = (0..3 * 4 * 4).map(|i| i as u8).collect();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            encode_images(3, 4, 4, &px),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode_labels(&[0, 1, 2]),
        )
        .unwrap();
        let (tr, te) = load_idx_dir(dir.path()).unwrap();
        assert_eq!(tr.len(), 3);
        assert_eq!(tr.image(1)[0], 16);
        assert!(te.is_none());

        // wrong magic
        let mut bad = encode_images(3, 4, 4, &px);
        bad[3] = 0x01;
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), &bad).unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("wrong magic number 0x00000801") && e.contains("train-images-idx3-ubyte"),
            "{e}"
        );

        // truncated
        let good = encode_images(3, 4, 4, &px);
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            &good[..good.len() - 5],
        )
        .unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains("3 images of 4×4"),
            "{e}"
        );

        // count mismatch
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), &good).unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode_labels(&[0, 1]),
        )
        .unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("2 labels but"), "{e}");
    }
}
