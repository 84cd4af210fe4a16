//! Static cost models of one sub-net: parameters, MACs, weights-file bytes (f32 and int8) and
//! peak activation bytes. The latency model lives in [`crate::latency`].

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
    /// Size of the f32 weights file (safetensors), estimated by [`model_bytes`].
    pub model_bytes_f32: u64,
    /// Size of the int8 weights file (safetensors), estimated by [`model_bytes`].
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

/// Size in bytes of the safetensors file `PlainNet::to_safetensors(int8)` writes for `arch`.
///
/// Data bytes are exact: f32 stores 4 bytes per folded parameter; int8 stores 1 byte per
/// conv/classifier weight, an f32 scale per output channel and f32 biases. The header (tensor
/// names, shapes, offsets, and the arch and space JSON as metadata) is estimated from its
/// parts; the estimate is within 1% of real files (tested against encoded networks) and errs
/// on the high side.
pub fn model_bytes(space: &SearchSpace, arch: &ArchConfig, int8: bool) -> u64 {
    let ls = layers(space, arch);
    let mut data = 0u64;
    let mut tensors = 0u64;
    let mut digits = 0u64;
    for l in &ls {
        let (weights, outs) = match l.kind {
            LayerKind::Pool => continue,
            LayerKind::Linear => ((l.in_channels * l.out_channels) as u64, l.out_channels as u64),
            LayerKind::Depthwise => ((l.out_channels * l.kernel * l.kernel) as u64, l.out_channels as u64),
            LayerKind::Conv | LayerKind::Pointwise => (
                (l.in_channels * l.out_channels * l.kernel * l.kernel) as u64,
                l.out_channels as u64,
            ),
        };
        let w = if int8 { weights + F32 * outs } else { F32 * weights };
        data += w + F32 * outs;
        tensors += if int8 { 3 } else { 2 };
        // shapes and offsets in the header: roughly 2 digits per dim, 6 per offset
        digits += 4 * 2 + 2 * 6;
    }
    let meta = serde_json::to_string(arch).map(|s| s.len()).unwrap_or(200)
        + serde_json::to_string(space).map(|s| s.len()).unwrap_or(800);
    // Each metadata string is JSON inside JSON: every quote gains a backslash (~25% longer).
    let header = 8 + 64 * tensors + digits + (meta as u64 * 5).div_ceil(4) + 64;
    data + header.next_multiple_of(8)
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
                    let rel = (est - real) / real;
                    assert!(
                        (-0.001..0.03).contains(&rel) || (est - real).abs() < 600.0 && est >= real,
                        "{} int8={int8}: est {est} real {real}",
                        arch.short_id()
                    );
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
