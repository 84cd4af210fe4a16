//! The latency model: how fast a device runs a network, relative to one core of the calibration host.
//!
//! Every latency tierforge prints about a device comes from here: the selector, the search, the
//! bundle writer, QA and `tierforge latency` call [`predict_ms`].
//!
//! A device's **speed** is how many times faster one of its cores runs a convolutional network
//! than one core of the calibration host ([`CALIBRATION`]). It comes from one of two bases:
//!
//! - [`SpeedBasis::Spec`]: every cluster's core type and clock are known (catalog phones, and
//!   ARM devices the probe recognises). Speed = the fastest cluster's
//!   [`CoreModel::speed_per_ghz`] × GHz, where `speed_per_ghz` was fitted per core type on public
//!   fp32 measurements of MobileNet-class nets on real ARM phones and boards (ncnn's benchmark
//!   table), bridged to the calibration host by running the same nets with the same framework
//!   there (`device-profiles/data/public_latency/`, BENCHMARKS.md "The device model").
//! - [`SpeedBasis::Measured`]: otherwise (x86 hosts, unknown ARM parts, QA's emulated phones).
//!   Speed = the probe's single-thread GEMM and depthwise rates over the calibration host's
//!   ([`measured_speed`]), weighted 0.7 / 0.3 like the op mix of the family's nets.
//!
//! The capability **score** is the speed on the scale where one Cortex-A53 core at 2.0 GHz
//! (the Helio A22 class of entry phones) scores 100 ([`score_of_speed`]).
//!
//! A latency measured (or predicted) on one device moves to another in proportion to their
//! speeds ([`predict_ms`]): the engine runs one image on one thread, so one core's speed is the
//! yardstick. [`thread_speedup`] models what more threads give a framework that splits one
//! image's convolutions over cores (fitted on the same public data); tierforge's engine does not
//! yet, so the runtime runs one image on one thread and predicts at one thread.
//!
//! How far off it may be: BENCHMARKS.md reports the share of held-out public measurements within
//! ±25% and the median error. The model knows nothing of thermal throttling, of a phone's governor
//! keeping clocks low, or of caches: a net whose weights do not fit a little core's L2 runs
//! slower than the model says.

use crate::cores::{CoreClass, core_by_name};
use crate::profile::{Cpu, Figures};

/// The host the model is calibrated on: its probe figures define speed 1.0 in measured mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The host's CPU, as /proc/cpuinfo names it.
    pub cpu: &'static str,
    /// Its single-thread GEMM rate from the probe ([`crate::bench`]), GFLOP/s.
    pub gemm_gflops_1t: f64,
    /// Its single-thread depthwise 3×3 rate from the probe, GFLOP/s.
    pub dwconv_gflops_1t: f64,
}

/// The calibration host: the CI machine kind this project is built on (2 vCPUs of an AMD EPYC,
/// Zen 2, family 23 model 49, 2.25 GHz nominal), the probe's mean over 10 fresh processes with
/// `scripts/probe_stability.sh` on 2026-12-02. ncnn's host latencies
/// (`data/public_latency/ncnn_host.csv`) were measured on the same machine.
pub const CALIBRATION: Calibration = Calibration {
    cpu: "AMD EPYC (Zen 2, family 23 model 49), 2 vCPUs",
    gemm_gflops_1t: 26.7,
    dwconv_gflops_1t: 9.35,
};

/// Weight of the GEMM rate in [`measured_speed`] (the depthwise rate gets the rest).
pub const GEMM_WEIGHT: f64 = 0.7;

/// The fitted figures of one core type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreModel {
    /// Canonical core name (`cortex-a53`).
    pub core: &'static str,
    /// Speed of one core at 1 GHz relative to one calibration-host core.
    pub speed_per_ghz: f64,
    /// How the figure was obtained: `fit: …` (public fp32 measurements of this core type, or
    /// fp16 ones divided by ncnn's fitted fp16 gain), or `no public measurement: …` and how it
    /// was derived from a measured core.
    pub basis: &'static str,
}

const fn m(core: &'static str, speed_per_ghz: f64, basis: &'static str) -> CoreModel {
    CoreModel {
        core,
        speed_per_ghz,
        basis,
    }
}

/// Fitted speed per GHz for each core type in [`crate::cores::CORE_TYPES`].
///
/// Regenerate with `cargo run --release -p device-profiles --example fit_latency_model` (it prints
/// this table and the validation on held-out devices).
pub const CORE_MODELS: &[CoreModel] = &[
    m(
        "cortex-a35",
        0.0404,
        "no public measurement: cortex-a53 x 0.7 (half its NEON width)",
    ),
    m("cortex-a53", 0.0577, "fit: ncnn fp32, 7 devices"),
    m(
        "cortex-a55",
        0.0548,
        "fit: ncnn fp16 / 1.93 (ncnn's fp16 gain), 5 devices",
    ),
    m("cortex-a57", 0.0814, "fit: ncnn fp32, 1 device"),
    m("cortex-a72", 0.0855, "fit: ncnn fp32, 2 devices"),
    m("cortex-a73", 0.0720, "fit: ncnn fp32, 4 devices"),
    m("cortex-a75", 0.1013, "fit: Paddle-Lite fp32, 2 devices"),
    m("cortex-a76", 0.1915, "fit: Paddle-Lite fp32, 4 devices"),
    m(
        "neoverse-n1",
        0.1915,
        "no public measurement: taken as cortex-a76 (the same core)",
    ),
    m("cortex-a77", 0.2223, "fit: Paddle-Lite fp32, 1 device"),
    m("cortex-a78", 0.2153, "fit: ncnn fp16 / 1.93, 1 device"),
    m(
        "cortex-x1",
        0.2447,
        "no public measurement: between cortex-a78 and cortex-x4 by generation (1/4)",
    ),
    m(
        "cortex-a510",
        0.0548,
        "no public measurement: taken as cortex-a55 (conservative)",
    ),
    m(
        "cortex-a710",
        0.2153,
        "no public measurement: taken as cortex-a78",
    ),
    m(
        "cortex-x2",
        0.2741,
        "no public measurement: between cortex-a78 and cortex-x4 by generation (2/4)",
    ),
    m(
        "cortex-a715",
        0.2153,
        "no public measurement: taken as cortex-a78",
    ),
    m(
        "cortex-x3",
        0.3035,
        "no public measurement: between cortex-a78 and cortex-x4 by generation (3/4)",
    ),
    m(
        "cortex-a520",
        0.0548,
        "no public measurement: taken as cortex-a55 (conservative)",
    ),
    m("cortex-a720", 0.2595, "fit: ncnn fp16 / 1.93, 1 device"),
    m("cortex-x4", 0.3329, "fit: ncnn fp16 / 1.93, 1 device"),
];

/// Fraction of a core that each added thread contributes when one image's convolutions are split
/// over the cores of a cluster (fitted on public multi-thread measurements), by core class.
pub const THREAD_EFFICIENCY_LITTLE: f64 = 0.436;
/// See [`THREAD_EFFICIENCY_LITTLE`]; out-of-order cores.
pub const THREAD_EFFICIENCY_BIG: f64 = 0.368;

/// The fitted model of a core type; `None` for names not in [`CORE_MODELS`].
pub fn core_model(core: &str) -> Option<&'static CoreModel> {
    CORE_MODELS.iter().find(|c| c.core == core)
}

/// Speed of one `core` at `mhz` relative to one calibration-host core; `None` for unknown cores.
pub fn core_speed(core: &str, mhz: u32) -> Option<f64> {
    core_model(core).map(|c| c.speed_per_ghz * f64::from(mhz) / 1000.0)
}

/// Speed of the fastest core of `cpu` from its spec; `None` unless every cluster's core type and
/// clock are known.
pub fn spec_speed(cpu: &Cpu) -> Option<f64> {
    let speeds: Option<Vec<f64>> = cpu
        .clusters
        .iter()
        .map(|c| core_speed(&c.core, c.max_mhz?))
        .collect();
    speeds?.into_iter().reduce(f64::max)
}

/// Speed from the probe's single-thread figures: (GEMM / calibration GEMM)^0.7 ·
/// (depthwise / calibration depthwise)^0.3. Zero figures count as a tiny speed, never zero.
pub fn measured_speed(f: &Figures) -> f64 {
    let ratio = |x: f64, cal: f64| (x.max(1e-6) / cal).max(1e-9);
    ratio(f.gemm_gflops_1t, CALIBRATION.gemm_gflops_1t).powf(GEMM_WEIGHT)
        * ratio(f.dwconv_gflops, CALIBRATION.dwconv_gflops_1t).powf(1.0 - GEMM_WEIGHT)
}

/// Where a speed comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeedBasis {
    /// Core types and clocks ([`spec_speed`]).
    Spec,
    /// The probe's figures ([`measured_speed`]).
    Measured,
}

impl SpeedBasis {
    /// `spec` or `measured`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpeedBasis::Spec => "spec",
            SpeedBasis::Measured => "measured",
        }
    }
}

/// A device's speed and its basis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Speed {
    /// One core's speed relative to one calibration-host core.
    pub value: f64,
    /// Where it comes from.
    pub basis: SpeedBasis,
}

/// The speed of a device: from its spec when every cluster is a known core type with a known
/// clock, else from its figures.
pub fn device_speed(cpu: &Cpu, figures: &Figures) -> Speed {
    match spec_speed(cpu) {
        Some(value) => Speed {
            value,
            basis: SpeedBasis::Spec,
        },
        None => Speed {
            value: measured_speed(figures),
            basis: SpeedBasis::Measured,
        },
    }
}

/// The speed that scores 100: one Cortex-A53 core at 2.0 GHz.
pub fn reference_speed() -> f64 {
    core_speed("cortex-a53", 2000).unwrap_or(1.0)
}

/// The capability score of a speed: 100 × speed / [`reference_speed`].
pub fn score_of_speed(speed: f64) -> f64 {
    100.0 * speed / reference_speed()
}

/// The speed of a capability score (inverse of [`score_of_speed`]).
pub fn speed_of_score(score: f64) -> f64 {
    score * reference_speed() / 100.0
}

/// Speed-up of one image's inference on `threads` threads over one thread, for a framework that
/// splits each convolution over the cores: threads fill the fastest cluster first, then the next;
/// each added core counts [`THREAD_EFFICIENCY_BIG`] (or `_LITTLE`) × its speed over the fastest
/// core's. Unknown cores count as the fastest cluster's kind. At least 1.
pub fn thread_speedup(cpu: &Cpu, threads: usize) -> f64 {
    let mut clusters: Vec<(f64, u32, CoreClass)> = cpu
        .clusters
        .iter()
        .map(|c| {
            let speed = c
                .max_mhz
                .and_then(|mhz| core_speed(&c.core, mhz))
                .unwrap_or(1.0);
            let class = core_by_name(&c.core).map_or(CoreClass::Big, |t| t.class);
            (speed, c.count, class)
        })
        .collect();
    clusters.sort_by(|a, b| b.0.total_cmp(&a.0));
    let Some(&(top, _, _)) = clusters.first() else {
        return 1.0;
    };
    let mut left = threads.max(1);
    let mut gain = 0.0;
    let mut first = true;
    for (speed, count, class) in clusters {
        for _ in 0..count {
            if left == 0 {
                break;
            }
            left -= 1;
            let efficiency = match class {
                CoreClass::Little => THREAD_EFFICIENCY_LITTLE,
                CoreClass::Big => THREAD_EFFICIENCY_BIG,
            };
            gain += if first { 1.0 } else { efficiency * speed / top };
            first = false;
        }
    }
    gain.max(1.0)
}

/// The one latency prediction: a latency of `reference_ms` on a device of score
/// `reference_score` becomes `reference_ms × reference_score / device_score` on a device of
/// score `device_score` (both one thread, batch 1). Scores are clamped to a tiny positive value,
/// so the result is finite for finite inputs.
pub fn predict_ms(reference_ms: f64, reference_score: f64, device_score: f64) -> f64 {
    reference_ms * reference_score.max(1e-9) / device_score.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cores::CORE_TYPES;
    use crate::profile::{CpuCluster, FigureSource};

    fn cpu(clusters: &[(&str, u32, u32)]) -> Cpu {
        Cpu {
            clusters: clusters
                .iter()
                .map(|&(core, count, mhz)| CpuCluster {
                    core: core.into(),
                    count,
                    max_mhz: Some(mhz),
                })
                .collect(),
            isa: vec![],
        }
    }

    #[test]
    fn every_core_type_has_a_model() {
        for t in CORE_TYPES {
            assert!(core_model(t.name).is_some(), "{} has no CoreModel", t.name);
        }
    }

    #[test]
    fn speed_follows_the_fastest_cluster_and_the_clock() {
        let a53 = cpu(&[("cortex-a53", 4, 2000)]);
        assert!((score_of_speed(spec_speed(&a53).unwrap()) - 100.0).abs() < 1e-9);
        let slow = cpu(&[("cortex-a53", 4, 1000)]);
        assert!((spec_speed(&slow).unwrap() * 2.0 - spec_speed(&a53).unwrap()).abs() < 1e-12);
        let big_little = cpu(&[("cortex-a76", 2, 2000), ("cortex-a55", 6, 1800)]);
        assert_eq!(
            spec_speed(&big_little),
            core_speed("cortex-a76", 2000),
            "the fastest core decides"
        );
        let unknown = cpu(&[("AMD EPYC", 2, 2000)]);
        assert_eq!(spec_speed(&unknown), None);
    }

    #[test]
    fn measured_speed_is_one_on_the_calibration_figures() {
        let mut f = Figures {
            gemm_gflops_1t: CALIBRATION.gemm_gflops_1t,
            gemm_gflops_mt: 0.0,
            dwconv_gflops: CALIBRATION.dwconv_gflops_1t,
            mem_bw_gbps: 0.0,
            bench_ms: 0.0,
            threads: 1,
            source: FigureSource::Measured,
        };
        assert!((measured_speed(&f) - 1.0).abs() < 1e-12);
        f.gemm_gflops_1t /= 4.0;
        f.dwconv_gflops /= 4.0;
        assert!((measured_speed(&f) - 0.25).abs() < 1e-12);
        f.gemm_gflops_1t = 0.0;
        assert!(measured_speed(&f) > 0.0);
    }

    #[test]
    fn threads_fill_the_fastest_cluster_first() {
        let c = cpu(&[("cortex-a76", 2, 2000), ("cortex-a55", 6, 2000)]);
        assert_eq!(thread_speedup(&c, 1), 1.0);
        let two = thread_speedup(&c, 2);
        assert!((two - (1.0 + THREAD_EFFICIENCY_BIG)).abs() < 1e-12, "{two}");
        let three = thread_speedup(&c, 3);
        let little =
            core_speed("cortex-a55", 2000).unwrap() / core_speed("cortex-a76", 2000).unwrap();
        assert!(
            (three - two - THREAD_EFFICIENCY_LITTLE * little).abs() < 1e-12,
            "{three}"
        );
        assert_eq!(thread_speedup(&c, 100), thread_speedup(&c, 8));
    }

    #[test]
    fn predict_scales_inversely_with_score() {
        assert!((predict_ms(2.0, 100.0, 400.0) - 0.5).abs() < 1e-12);
        assert!(predict_ms(2.0, 100.0, 0.0).is_finite());
    }
}
