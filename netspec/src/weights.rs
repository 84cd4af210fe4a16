//! A small safetensors codec (F32 and I8 tensors), used for the bundle's variant files.
//! [`DType`] names the element types; the header's `dtype` strings are parsed into it.
//!
//! The format: an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..}}`, then the data.
//! Files written here load in Python's `safetensors` too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DType {
    /// 32-bit float, little-endian.
    F32,
    /// Signed 8-bit integer.
    I8,
}

/// One stored tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredTensor {
    /// f32 data and shape.
    F32(Vec<f32>, Vec<usize>),
    /// i8 data and shape.
    I8(Vec<i8>, Vec<usize>),
}

impl StoredTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            StoredTensor::F32(_, s) | StoredTensor::I8(_, s) => s,
        }
    }
    fn nbytes(&self) -> usize {
        match self {
            StoredTensor::F32(v, _) => 4 * v.len(),
            StoredTensor::I8(v, _) => v.len(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    dtype: DType,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

/// Encodes named tensors (sorted by name) with string metadata.
pub fn encode(
    tensors: &BTreeMap<String, StoredTensor>,
    metadata: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(metadata).unwrap_or_default(),
        );
    }
    let mut off = 0;
    for (name, t) in tensors {
        let n = t.nbytes();
        let dtype = match t {
            StoredTensor::F32(..) => DType::F32,
            StoredTensor::I8(..) => DType::I8,
        };
        let e = Entry {
            dtype,
            shape: t.shape().to_vec(),
            data_offsets: [off, off + n],
        };
        header.insert(name.clone(), serde_json::to_value(e).unwrap_or_default());
        off += n;
    }
    let mut h = serde_json::to_vec(&header).unwrap_or_default();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + off);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for t in tensors.values() {
        match t {
            StoredTensor::F32(v, _) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            StoredTensor::I8(v, _) => out.extend(v.iter().map(|&x| x as u8)),
        }
    }
    out
}

/// Decodes a safetensors buffer. `what` names the file in errors.
///
/// # Errors
/// A truncated buffer, a malformed header, an unsupported dtype, or offsets that disagree with
/// the shapes.
pub fn decode(
    bytes: &[u8],
    what: &str,
) -> Result<(BTreeMap<String, StoredTensor>, BTreeMap<String, String>)> {
    let bad = |r: String| Error::Data {
        path: what.into(),
        reason: r,
    };
    if bytes.len() < 8 {
        return Err(bad(format!(
            "{} bytes: too short for a safetensors file",
            bytes.len()
        )));
    }
    let hl = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8])) as usize;
    if hl > bytes.len() - 8 {
        return Err(bad(format!(
            "truncated: header says {hl} bytes, file has {}",
            bytes.len() - 8
        )));
    }
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + hl])
            .map_err(|e| bad(format!("malformed safetensors header: {e}")))?;
    let data = &bytes[8 + hl..];
    let mut out = BTreeMap::new();
    let mut meta = BTreeMap::new();
    for (name, v) in header {
        if name == "__metadata__" {
            meta = serde_json::from_value(v)
                .map_err(|e| bad(format!("malformed __metadata__: {e}")))?;
            continue;
        }
        let e: Entry = serde_json::from_value(v).map_err(|e| {
            bad(format!(
                "tensor {name}: {e} (this build reads F32 and I8 tensors written by tierforge)"
            ))
        })?;
        let [b, end] = e.data_offsets;
        if end > data.len() || b > end {
            return Err(bad(format!(
                "truncated: tensor {name} needs bytes {b}..{end}, data has {}",
                data.len()
            )));
        }
        let Some(n) = e
            .shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= data.len())
        else {
            return Err(bad(format!(
                "tensor {name}: shape {:?} needs more bytes than the file has",
                e.shape
            )));
        };
        let raw = &data[b..end];
        let t = match e.dtype {
            DType::F32 if raw.len() == 4 * n => StoredTensor::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                e.shape,
            ),
            DType::I8 if raw.len() == n => {
                StoredTensor::I8(raw.iter().map(|&x| x as i8).collect(), e.shape)
            }
            DType::F32 | DType::I8 => {
                return Err(bad(format!(
                    "tensor {name}: {} bytes for shape {:?}",
                    raw.len(),
                    e.shape
                )));
            }
        };
        out.insert(name, t);
    }
    Ok((out, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_truncation() {
        let mut m = BTreeMap::new();
        m.insert(
            "a".to_string(),
            StoredTensor::F32(vec![1.0, -2.5, 3.0], vec![3]),
        );
        m.insert(
            "b".to_string(),
            StoredTensor::I8(vec![-127, 0, 5, 9], vec![2, 2]),
        );
        let mut meta = BTreeMap::new();
        meta.insert("arch".to_string(), "{}".to_string());
        let bytes = encode(&m, &meta);
        let (m2, meta2) = decode(&bytes, "x.safetensors").unwrap();
        assert_eq!(m, m2);
        assert_eq!(meta, meta2);
        let e = decode(&bytes[..bytes.len() - 3], "x.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.safetensors") && e.contains("truncated"),
            "{e}"
        );
        assert!(decode(&bytes[..4], "x").is_err());
    }
}
