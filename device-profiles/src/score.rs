//! Capability score and tier class.
//!
//! The score is one core's speed on the scale where a Cortex-A53 core at 2.0 GHz (the Helio A22 class of entry
//! phones; the Redmi 6A) scores 100. One core is the yardstick: the engine runs a small net's image on one thread,
//! and what more threads add is modelled on top ([`crate::latency::thread_speedup`] over the big cores). The
//! speed comes from the [latency model](crate::latency): from the core types and clocks when they are known (catalog
//! phones, recognised ARM cores), else from the probe's single-thread GEMM and depthwise rates:
//!
//! ```text
//! score = 100 · speed / speed(Cortex-A53 @ 2.0 GHz)
//! measured speed = (gemm_gflops_1t / 26.7)^0.7 · (dwconv_gflops / 9.35)^0.3     (1.0 = the calibration host)
//! ```
//!
//! Doubling every rate doubles the score. Multi-thread and bandwidth figures are reported but do not count: a
//! multi-thread figure halves when another process holds a core, and batch-1 inference runs on one thread.
//!
//! The tier class is the lower of the class the score earns and the class the RAM allows. RAM thresholds sit at 80%
//! of the marketed sizes, because a phone reports less than it is sold with (a "6 GB" phone shows ~5.4 GB).

use crate::latency::{device_speed, measured_speed, score_of_speed};
use crate::profile::{Cpu, Figures, TierClass};

/// The capability score of a set of measured figures (single-thread GEMM and depthwise; see the module docs).
pub fn capability_score(f: &Figures) -> f64 {
    score_of_speed(measured_speed(f))
}

/// The capability score of a device: from its spec when every core type and clock is known, else from `figures`
/// ([`crate::latency::device_speed`]).
pub fn device_score(cpu: &Cpu, figures: &Figures) -> f64 {
    score_of_speed(device_speed(cpu, figures).value)
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
    use crate::latency::CALIBRATION;
    use crate::profile::FigureSource;

    fn figures(g: f64, d: f64) -> Figures {
        Figures {
            gemm_gflops_1t: g,
            gemm_gflops_mt: 4.0 * g,
            dwconv_gflops: d,
            mem_bw_gbps: 3.0,
            bench_ms: 0.0,
            threads: 4,
            source: FigureSource::Measured,
        }
    }

    #[test]
    fn score_is_homogeneous_and_ignores_multi_thread_figures() {
        let (g, d) = (CALIBRATION.gemm_gflops_1t, CALIBRATION.dwconv_gflops_1t);
        let s = capability_score(&figures(g, d));
        let s4 = capability_score(&figures(4.0 * g, 4.0 * d));
        assert!((s4 / s - 4.0).abs() < 1e-9, "{s} {s4}");
        // Only GEMM doubled: 2^0.7.
        let sg = capability_score(&figures(2.0 * g, d));
        assert!((sg / s - 2f64.powf(0.7)).abs() < 1e-9, "{sg}");
        let mut more_threads = figures(g, d);
        more_threads.gemm_gflops_mt *= 3.0;
        more_threads.mem_bw_gbps *= 3.0;
        assert_eq!(capability_score(&more_threads), s);
        assert!(capability_score(&figures(0.0, 0.0)) > 0.0);
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
