//! CIFAR-10 binary batches (`data_batch_1.bin` … `data_batch_5.bin`, `test_batch.bin`).

use std::path::Path;

use super::dataset::Dataset;
use super::read::{MAX_DATA_FILE_BYTES, read_bounded, read_text_bounded};
use crate::error::{Error, Result};

const REC: usize = 1 + 3 * 32 * 32;

/// Parses one CIFAR-10 binary batch file.
///
/// # Errors
/// A size that is not a whole number of 3073-byte records, or a label > 9.
pub fn parse_batch(path: &Path, bytes: &[u8], out: &mut Dataset) -> Result<()> {
    if bytes.is_empty() || bytes.len() % REC != 0 {
        return Err(Error::data(
            path,
            format!(
                "{} bytes is not a whole number of CIFAR-10 records ({REC} bytes: 1 label + 3×32×32 pixels)",
                bytes.len()
            ),
        ));
    }
    for rec in bytes.chunks_exact(REC) {
        if rec[0] > 9 {
            return Err(Error::data(
                path,
                format!("label {} > 9 in a CIFAR-10 record", rec[0]),
            ));
        }
        out.labels.push(rec[0] as u16);
        out.images.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

/// Loads a CIFAR-10 binary folder (or its `cifar-10-batches-bin/` sub-folder).
///
/// # Errors
/// No `data_batch_*.bin` files, or a parse error naming the file.
pub fn load_cifar_dir(dir: &Path) -> Result<(Dataset, Option<Dataset>)> {
    let dir = if dir.join("cifar-10-batches-bin").is_dir() {
        dir.join("cifar-10-batches-bin")
    } else {
        dir.to_path_buf()
    };
    let meta = dir.join("batches.meta.txt");
    let names: Vec<String> = match meta.exists().then(|| read_text_bounded(&meta, 1 << 20)) {
        Some(Err(e)) => return Err(e),
        Some(Ok(t)) => t
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        None => [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    };
    let empty = || Dataset {
        images: vec![],
        labels: vec![],
        channels: 3,
        height: 32,
        width: 32,
        class_names: names.clone(),
    };
    let mut train = empty();
    let mut found = 0;
    for i in 1..=5 {
        let p = dir.join(format!("data_batch_{i}.bin"));
        if p.exists() {
            let b = read_bounded(&p, MAX_DATA_FILE_BYTES)?;
            parse_batch(&p, &b, &mut train)?;
            found += 1;
        }
    }
    if found == 0 {
        return Err(Error::data(
            &dir,
            "no CIFAR-10 training batches (data_batch_1.bin … data_batch_5.bin)",
        ));
    }
    let tp = dir.join("test_batch.bin");
    let test = if tp.exists() {
        let mut t = empty();
        let b = read_bounded(&tp, MAX_DATA_FILE_BYTES)?;
        parse_batch(&tp, &b, &mut t)?;
        Some(t)
    } else {
        None
    };
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_reject() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Vec::new();
        for l in 0..4u8 {
            b.push(l);
            b.extend(std::iter::repeat_n(l * 10, 3072));
        }
        std::fs::write(dir.path().join("data_batch_1.bin"), &b).unwrap();
        let (tr, te) = load_cifar_dir(dir.path()).unwrap();
        assert_eq!(
            (tr.len(), tr.channels, tr.labels[3], tr.image(2)[0]),
            (4, 3, 3, 20)
        );
        assert!(te.is_none());
        std::fs::write(dir.path().join("data_batch_1.bin"), &b[..100]).unwrap();
        let e = load_cifar_dir(dir.path()).unwrap_err().to_string();
        assert!(e.contains("whole number of CIFAR-10 records"), "{e}");
    }
}
