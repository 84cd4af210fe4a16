//! Static cost models of one sub-net: parameters, MACs, weights-file bytes (f32 and int8) and
//! peak activation bytes. The latency model lives in [`crate::latency`].

use netspec::{DType, FOLDED_FORMAT, conv_names};
use serde::{Deserialize, Serialize};
use supernet::{ArchConfig, LayerKind, SearchSpace, arch_cost, layers};

/// Bytes per f32.
const F32: u64 = 4;

/// Every static cost of one sub-net, for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    /// Parameters stored after BN folding (what the weights file holds).
    pub params: u64,
    /// Trainable parameters of the unfolded network (conv weights, BN γ/β, classifier).
    pub trainable_params: u64,
    /// Multiply-accumulates per image.
    pub macs: u64,
    /// Size of the f32 weights file (safetensors), computed by [`model_bytes`].
    pub model_bytes_f32: u64,
    /// Size of the int8 weights file (safetensors), computed by [`model_bytes`].
    pub model_bytes_int8: u64,
    /// Peak activation memory for one image, f32.
    pub peak_activation_bytes: u64,
}

impl Costs {
    /// Peak memory of an f32 inference: weights + peak activations (the runtime adds its own
    /// fixed overhead, `runtime::RUNTIME_OVERHEAD_BYTES`, on top).
    pub fn peak_memory_bytes(&self) -> u64 {
        self.model_bytes_f32 + self.peak_activation_bytes
    }
}

/// All static costs of `arch` (which must belong to `space`).
pub fn costs(space: &SearchSpace, arch: &ArchConfig) -> Costs {
    let c = arch_cost(space, arch);
    Costs {
        params: c.folded_params as u64,
        trainable_params: c.params as u64,
        macs: c.macs,
        model_bytes_f32: model_bytes(space, arch, false),
        model_bytes_int8: model_bytes(space, arch, true),
        peak_activation_bytes: c.peak_activation_elems as u64 * F32,
    }
}

/// Size in bytes of the safetensors file `PlainNet::to_safetensors(int8)` writes for `arch`,
/// computed without building the network: the data bytes (f32: 4 per folded parameter; int8:
/// 1 per weight, an f32 scale per output channel, f32 biases) plus the exact JSON header
/// (tensor names, dtypes, shapes, offsets, and the arch and space as metadata), padded to 8
/// bytes as the encoder does. Checked against real files in the tests.
pub fn model_bytes(space: &SearchSpace, arch: &ArchConfig, int8: bool) -> u64 {
    use std::collections::BTreeMap;
    let ls = layers(space, arch);
    // name -> (dtype, shape, bytes), sorted by name like the encoder
    let mut tensors: BTreeMap<String, (DType, Vec<usize>, u64)> = BTreeMap::new();
    let add_weight = |tensors: &mut BTreeMap<String, (DType, Vec<usize>, u64)>,
                      name: &str,
                      shape: Vec<usize>| {
        let n: usize = shape.iter().product();
        let o = shape[0];
        if int8 {
            tensors.insert(format!("{name}.weight"), (DType::I8, shape, n as u64));
            tensors.insert(
                format!("{name}.weight_scale"),
                (DType::F32, vec![o], F32 * o as u64),
            );
        } else {
            tensors.insert(
                format!("{name}.weight"),
                (DType::F32, shape, F32 * n as u64),
            );
        }
        tensors.insert(
            format!("{name}.bias"),
            (DType::F32, vec![o], F32 * o as u64),
        );
    };
    // the convs (every layer but the pool and the classifier) in file order
    let mut conv_names = conv_names(arch).into_iter();
    for l in &ls {
        let name = match l.kind {
            LayerKind::Pool => continue,
            LayerKind::Linear => "fc".to_string(),
            _ => conv_names.next().unwrap_or_default(),
        };
        let shape = match l.kind {
            LayerKind::Linear => vec![l.out_channels, l.in_channels],
            LayerKind::Depthwise => vec![l.out_channels, 1, l.kernel, l.kernel],
            _ => vec![l.out_channels, l.in_channels, l.kernel, l.kernel],
        };
        add_weight(&mut tensors, &name, shape);
    }
    let mut header = serde_json::Map::new();
    let mut meta = BTreeMap::new();
    meta.insert("arch", serde_json::to_string(arch).unwrap_or_default());
    meta.insert("space", serde_json::to_string(space).unwrap_or_default());
    meta.insert("format", FOLDED_FORMAT.to_string());
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(meta).unwrap_or_default(),
    );
    let mut off = 0u64;
    for (name, (dtype, shape, n)) in tensors {
        header.insert(
            name,
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let h = serde_json::to_vec(&header)
        .map(|v| v.len() as u64)
        .unwrap_or(0);
    8 + h.next_multiple_of(8) + off
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::Device;
    use rand::SeedableRng;
    use supernet::{PlainNet, Supernet};

    #[test]
    fn model_bytes_estimate_matches_real_files() {
        let dev = Device::flex();
        for sp in [
            SearchSpace::tiny(1, 4, 12),
            SearchSpace::small_for(1, 10, 28),
        ] {
            let net = Supernet::new(&sp, 3, &dev).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            let mut archs = vec![ArchConfig::max(&sp), ArchConfig::min(&sp)];
            archs.extend((0..3).map(|_| ArchConfig::random(&sp, &mut rng)));
            for arch in archs {
                let p = PlainNet::extract(&net, &arch).unwrap().fold();
                for int8 in [false, true] {
                    let real = p.to_safetensors(int8).unwrap().len() as f64;
                    let est = model_bytes(&sp, &arch, int8) as f64;
                    assert_eq!(est, real, "{} int8={int8}", arch.short_id());
                }
            }
        }
    }

    #[test]
    fn costs_are_ordered() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let big = costs(&sp, &ArchConfig::max(&sp));
        let small = costs(&sp, &ArchConfig::min(&sp));
        assert!(big.macs > small.macs && big.params > small.params);
        assert!(big.model_bytes_int8 < big.model_bytes_f32);
        assert!(big.peak_memory_bytes() > small.peak_memory_bytes());
    }
}
