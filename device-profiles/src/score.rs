//! Capability score and tier class.
//!
//! The score is a weighted geometric mean of three rates, each divided by a reference phone's rate, times 100:
//!
//! ```text
//! score = 100 · (gemm_gflops_mt / 40)^0.6 · (dwconv_gflops / 10)^0.3 · (mem_bw_gbps / 3)^0.1
//! ```
//!
//! The reference (score 100) is roughly a 4× Cortex-A53 @ 2.0 GHz phone (Helio A22, the Redmi 6A scores 109). GEMM dominates because the
//! 1×1 convolutions of a MobileNet-style net are GEMMs; depthwise convolutions are the second largest cost and are
//! bound by loads more than by FLOP; bandwidth matters for the weights and activations that do not fit the cache,
//! but it gets a small weight because the 8 MiB probe buffer sits in the L3 cache of larger CPUs (so the measured
//! figure is partly cache bandwidth, and it is the noisiest of the three on a busy device).
//! Because each term is a power, doubling every rate doubles the score, and a phone with 4× the compute and 4× the
//! bandwidth scores 4× higher.
//!
//! The tier class is the lower of the class the score earns and the class the RAM allows. RAM thresholds sit at 80%
//! of the marketed sizes, because a phone reports less than it is sold with (a "6 GB" phone shows ~5.4 GB).

use crate::profile::{Figures, TierClass};

/// Reference multi-thread GEMM rate (score 100), GFLOP/s.
pub const REF_GEMM_GFLOPS: f64 = 40.0;
/// Reference depthwise 3×3 rate, GFLOP/s.
pub const REF_DWCONV_GFLOPS: f64 = 10.0;
/// Reference memory read bandwidth, GB/s.
pub const REF_MEM_BW_GBPS: f64 = 3.0;
/// Weight of the GEMM term.
pub const WEIGHT_GEMM: f64 = 0.6;
/// Weight of the depthwise term.
pub const WEIGHT_DWCONV: f64 = 0.3;
/// Weight of the bandwidth term.
pub const WEIGHT_MEM_BW: f64 = 0.1;

/// Smallest rate used in the score, so that an unmeasured (zero) figure gives a tiny score instead of zero or NaN.
const FLOOR: f64 = 1e-3;

/// The capability score of a set of figures (see the module docs for the formula).
pub fn capability_score(f: &Figures) -> f64 {
    let term = |x: f64, reference: f64, weight: f64| (x.max(FLOOR) / reference).powf(weight);
    100.0
        * term(f.gemm_gflops_mt, REF_GEMM_GFLOPS, WEIGHT_GEMM)
        * term(f.dwconv_gflops, REF_DWCONV_GFLOPS, WEIGHT_DWCONV)
        * term(f.mem_bw_gbps, REF_MEM_BW_GBPS, WEIGHT_MEM_BW)
}

/// Lowest score of each class above `very-low`: `low`, `mid`, `high`, `flagship`.
pub const SCORE_THRESHOLDS: [f64; 4] = [120.0, 200.0, 350.0, 520.0];

const GIB: f64 = (1u64 << 30) as f64;

/// Lowest reported RAM of each class above `very-low`: 80% of 3, 4, 6 and 8 GiB (marketed sizes).
pub const RAM_THRESHOLDS_BYTES: [u64; 4] = [
    (0.8 * 3.0 * GIB) as u64,
    (0.8 * 4.0 * GIB) as u64,
    (0.8 * 6.0 * GIB) as u64,
    (0.8 * 8.0 * GIB) as u64,
];

const CLASSES: [TierClass; 5] = [
    TierClass::VeryLow,
    TierClass::Low,
    TierClass::Mid,
    TierClass::High,
    TierClass::Flagship,
];

/// The class a score alone earns.
pub fn score_class(score: f64) -> TierClass {
    CLASSES[SCORE_THRESHOLDS.iter().filter(|t| score >= **t).count()]
}

/// The highest class the RAM allows; unknown RAM allows only `very-low`.
pub fn ram_class(ram_bytes: Option<u64>) -> TierClass {
    let Some(ram) = ram_bytes else {
        return TierClass::VeryLow;
    };
    CLASSES[RAM_THRESHOLDS_BYTES.iter().filter(|t| ram >= **t).count()]
}

/// The tier class of a device: the lower of [`score_class`] and [`ram_class`].
pub fn tier_class(score: f64, ram_bytes: Option<u64>) -> TierClass {
    score_class(score).min(ram_class(ram_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::FigureSource;

    fn figures(g: f64, d: f64, b: f64) -> Figures {
        Figures {
            gemm_gflops_1t: g / 4.0,
            gemm_gflops_mt: g,
            dwconv_gflops: d,
            mem_bw_gbps: b,
            bench_ms: 0.0,
            threads: 4,
            source: FigureSource::Estimated,
        }
    }

    #[test]
    fn reference_scores_100_and_score_is_homogeneous() {
        let s = capability_score(&figures(
            REF_GEMM_GFLOPS,
            REF_DWCONV_GFLOPS,
            REF_MEM_BW_GBPS,
        ));
        assert!((s - 100.0).abs() < 1e-9, "{s}");
        let s4 = capability_score(&figures(
            4.0 * REF_GEMM_GFLOPS,
            4.0 * REF_DWCONV_GFLOPS,
            4.0 * REF_MEM_BW_GBPS,
        ));
        assert!((s4 - 400.0).abs() < 1e-9, "{s4}");
        // Only GEMM doubled: 2^0.6.
        let sg = capability_score(&figures(
            2.0 * REF_GEMM_GFLOPS,
            REF_DWCONV_GFLOPS,
            REF_MEM_BW_GBPS,
        ));
        assert!((sg - 100.0 * 2f64.powf(0.6)).abs() < 1e-9, "{sg}");
        assert!(capability_score(&figures(0.0, 0.0, 0.0)) > 0.0);
    }

    #[test]
    fn tier_is_capped_by_ram_with_margins() {
        let gb = |x: f64| Some((x * 1e9) as u64);
        // A "6 GB" phone that reports 5.4 GB still counts as 6 GB.
        assert_eq!(ram_class(gb(5.4)), TierClass::High);
        assert_eq!(ram_class(gb(1.8)), TierClass::VeryLow);
        assert_eq!(ram_class(gb(2.8)), TierClass::Low);
        assert_eq!(ram_class(None), TierClass::VeryLow);
        assert_eq!(tier_class(1000.0, gb(3.6)), TierClass::Mid);
        assert_eq!(tier_class(50.0, gb(11.0)), TierClass::VeryLow);
        assert_eq!(tier_class(700.0, gb(7.4)), TierClass::Flagship);
    }
}
