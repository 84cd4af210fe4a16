//! IDX files (the MNIST format), raw or gzip-compressed.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::dataset::{Dataset, FASHION_MNIST_CLASSES};
use super::read;
use crate::error::{Error, Result};

/// Magic of an IDX file of u8 images (3 dims).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic of an IDX file of u8 labels (1 dim).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// The smallest image side we accept: a 0×0 or 1×1 image cannot be resized or learnt from.
pub const MIN_IMAGE_SIDE: usize = super::dataset::MIN_IMAGE_SIDE;
/// The largest image side we accept.
pub const MAX_IMAGE_SIDE: usize = super::dataset::MAX_IMAGE_SIDE;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What an IDX header declares: `count` images of `rows`×`cols` u8 pixels, or `count` u8
/// labels (`rows` = `cols` = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    /// The magic ([`IMAGES_MAGIC`] or [`LABELS_MAGIC`]).
    kind: u32,
    /// Images or labels.
    count: usize,
    /// Rows of an image.
    rows: usize,
    /// Columns of an image.
    cols: usize,
}

impl Header {
    fn len(kind: u32) -> usize {
        if kind == IMAGES_MAGIC { 16 } else { 8 }
    }

    /// Parses and bounds a header of `kind` (a magic), naming `path` in every error.
    fn parse(path: &Path, kind: u32, b: &[u8]) -> Result<Header> {
        let what = if kind == IMAGES_MAGIC {
            "images"
        } else {
            "labels"
        };
        if b.len() < Self::len(kind) {
            return Err(Error::data(
                path,
                format!(
                    "{} bytes: too short for an IDX {what} header ({} bytes)",
                    b.len(),
                    Self::len(kind)
                ),
            ));
        }
        let magic = be_u32(b, 0);
        if magic != kind {
            return Err(Error::data(
                path,
                format!(
                    "wrong magic number 0x{magic:08x}: an IDX {what} file starts with 0x{kind:08x}"
                ),
            ));
        }
        let count = be_u32(b, 4) as usize;
        if kind == LABELS_MAGIC {
            return Ok(Header {
                kind,
                count,
                rows: 1,
                cols: 1,
            });
        }
        let (rows, cols) = (be_u32(b, 8) as usize, be_u32(b, 12) as usize);
        let side = MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE;
        if !side.contains(&rows) || !side.contains(&cols) {
            return Err(Error::data(
                path,
                format!(
                    "the header declares {rows}×{cols} images; image sides must be in \
                     {MIN_IMAGE_SIDE}..={MAX_IMAGE_SIDE} pixels"
                ),
            ));
        }
        Ok(Header {
            kind,
            count,
            rows,
            cols,
        })
    }

    /// Bytes of data after the header.
    fn body_bytes(&self) -> u64 {
        self.count as u64 * self.rows as u64 * self.cols as u64
    }

    fn describe(&self) -> String {
        if self.kind == IMAGES_MAGIC {
            format!("{} images of {}×{}", self.count, self.rows, self.cols)
        } else {
            format!("{} labels", self.count)
        }
    }
}

/// Reads an IDX file of `kind` (raw or gzip), reading no more than its header declares: the
/// header is read and bounded first, then exactly the declared bytes (a gzip stream that holds
/// more or fewer is an error, so a small file that inflates to gigabytes is never read whole).
fn read_idx(path: &Path, kind: u32) -> Result<(Header, Vec<u8>)> {
    let (mut file, file_len) = read::open_regular(path)?;
    let mut magic = [0u8; 2];
    let got = read_full(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    let gz = got == 2 && magic == [0x1f, 0x8b];
    let head = std::io::Cursor::new(magic[..got].to_vec());
    let mut reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            head.chain(file),
        )))
    } else {
        Box::new(head.chain(file))
    };
    let stream_err = |e: std::io::Error| {
        if gz {
            Error::data(path, format!("corrupt or truncated gzip stream: {e}"))
        } else {
            Error::io(path, e)
        }
    };
    let mut header = vec![0u8; Header::len(kind)];
    let got = read_full(&mut reader, &mut header).map_err(stream_err)?;
    let h = Header::parse(path, kind, &header[..got])?;
    let body = h.body_bytes();
    if body > read::MAX_DATA_FILE_BYTES {
        return Err(Error::data(
            path,
            format!(
                "the header declares {} ({body} bytes), more than the {} bytes we read from one \
                 file; split the dataset",
                h.describe(),
                read::MAX_DATA_FILE_BYTES
            ),
        ));
    }
    let have_raw = file_len.saturating_sub(header.len() as u64);
    if !gz && have_raw < body {
        return Err(truncated(path, &h, have_raw));
    }
    let mut out = Vec::with_capacity(body as usize);
    reader
        .by_ref()
        .take(body)
        .read_to_end(&mut out)
        .map_err(stream_err)?;
    if (out.len() as u64) < body {
        return Err(truncated(path, &h, out.len() as u64));
    }
    let mut extra = [0u8; 1];
    if read_full(&mut reader, &mut extra).map_err(stream_err)? > 0 {
        return Err(Error::data(
            path,
            format!(
                "holds more data than its header declares ({}, {body} bytes); the file is not \
                 an IDX {} file or its header is wrong",
                h.describe(),
                if kind == IMAGES_MAGIC {
                    "images"
                } else {
                    "labels"
                }
            ),
        ));
    }
    Ok((h, out))
}

fn truncated(path: &Path, h: &Header, have: u64) -> Error {
    Error::data(
        path,
        format!(
            "truncated: header says {} ({} bytes), file has {have} bytes after the header",
            h.describe(),
            h.body_bytes()
        ),
    )
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Parses an IDX images file held in memory: `(count, rows, cols, pixels)`.
///
/// # Errors
/// Wrong magic, image sides outside [`MIN_IMAGE_SIDE`]..=[`MAX_IMAGE_SIDE`], or a file shorter
/// than its header says.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    let h = Header::parse(path, IMAGES_MAGIC, bytes)?;
    let body = &bytes[16..];
    let need = h.body_bytes();
    if (body.len() as u64) < need {
        return Err(truncated(path, &h, body.len() as u64));
    }
    Ok((h.count, h.rows, h.cols, body[..need as usize].to_vec()))
}

/// Parses an IDX labels file held in memory.
///
/// # Errors
/// Wrong magic or a file shorter than its header says.
pub fn parse_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u16>> {
    let h = Header::parse(path, LABELS_MAGIC, bytes)?;
    let body = &bytes[8..];
    let need = h.body_bytes();
    if (body.len() as u64) < need {
        return Err(truncated(path, &h, body.len() as u64));
    }
    Ok(body[..need as usize]
        .iter()
        .map(|&b| u16::from(b))
        .collect())
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
    let (hi, px) = read_idx(images, IMAGES_MAGIC)?;
    let (n, h, w) = (hi.count, hi.rows, hi.cols);
    if n == 0 {
        return Err(Error::data(
            images,
            "the header declares 0 images: the file holds no images; give it at least one",
        ));
    }
    let (_, lb) = read_idx(labels, LABELS_MAGIC)?;
    let lb: Vec<u16> = lb.into_iter().map(u16::from).collect();
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
    let classes_txt = dir.join("classes.txt");
    let class_names = match classes_txt
        .exists()
        .then(|| read::read_text_bounded(&classes_txt, 1 << 20))
    {
        Some(Err(e)) => return Err(e),
        Some(Ok(t)) => Some(
            t.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
        ),
        None => {
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
        let px: Vec<u8> = (0..3 * 8 * 8).map(|i| i as u8).collect();
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            encode_images(3, 8, 8, &px),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("train-labels-idx1-ubyte"),
            encode_labels(&[0, 1, 2]),
        )
        .unwrap();
        let (tr, te) = load_idx_dir(dir.path()).unwrap();
        assert_eq!(tr.len(), 3);
        assert_eq!(tr.image(1)[0], 64);
        assert!(te.is_none());

        // wrong magic
        let mut bad = encode_images(3, 8, 8, &px);
        bad[3] = 0x01;
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), &bad).unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("wrong magic number 0x00000801") && e.contains("train-images-idx3-ubyte"),
            "{e}"
        );

        // truncated
        let good = encode_images(3, 8, 8, &px);
        std::fs::write(
            dir.path().join("train-images-idx3-ubyte"),
            &good[..good.len() - 5],
        )
        .unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains("3 images of 8×8"),
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

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn hostile_headers_and_streams_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ti = dir.path().join("train-images-idx3-ubyte.gz");
        let tl = dir.path().join("train-labels-idx1-ubyte");
        std::fs::write(&tl, encode_labels(&[0, 1])).unwrap();
        // a small gzip that inflates far beyond what its header declares: not read whole
        let mut bomb = encode_images(2, 8, 8, &[7; 128]);
        bomb.extend(std::iter::repeat_n(0u8, 64 << 20));
        let z = gz(&bomb);
        assert!(z.len() < 1 << 20);
        std::fs::write(&ti, &z).unwrap();
        let t0 = std::time::Instant::now();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("train-images-idx3-ubyte.gz") && e.contains("more data than its header"),
            "{e}"
        );
        assert!(t0.elapsed() < std::time::Duration::from_secs(2));
        // a gzip holding less than declared
        std::fs::write(&ti, gz(&encode_images(2, 8, 8, &[7; 100]))).unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains(".gz"), "{e}");
        // 0×0 images, absurd sizes, 0 images
        for (n, r, c, want) in [
            (2, 0, 0, "0×0 images"),
            (2, 1, 1, "1×1 images"),
            (2, 70000, 8, "70000×8"),
            (0, 8, 8, "0 images"),
            (4_000_000, 4096, 4096, "more than the"),
        ] {
            std::fs::write(&ti, encode_images(n, r, c, &[])).unwrap();
            let e = load_idx_dir(dir.path()).unwrap_err().to_string();
            assert!(
                e.contains("train-images-idx3-ubyte") && e.contains(want),
                "{n} {r} {c}: {e}"
            );
        }
        // a folder where a file should be
        std::fs::remove_file(&ti).unwrap();
        std::fs::create_dir(&ti).unwrap();
        let e = load_idx_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
