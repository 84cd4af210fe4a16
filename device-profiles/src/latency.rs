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
//! A one-thread latency measured (or predicted) on one device moves to another in proportion to
//! their speeds ([`predict_ms`]). On `T` threads it is divided by [`thread_speedup`]: Amdahl's
//! law with the net's **parallel fraction** measured on the calibration host at 1 and 2 threads
//! ([`parallel_fraction`]; for tierforge's variants the bundle writer's `latency_by_threads`)
//! times [`PARALLEL_BRIDGE`], the x86→ARM factor fitted on public multi-thread measurements, over
//! the [`effective_cores`] the threads land on. [`predict_ms_at`] is the two together: the one
//! prediction the selector, `tierforge latency` and QA call. Work cut into one equal part per
//! thread (ncnn, the engine's stage parts) waits for the slowest core it reaches
//! ([`equal_split_cores`]): threads past a big cluster onto little cores can make it slower.
//!
//! How far off it may be: BENCHMARKS.md reports the share of held-out public measurements within
//! ±25% and the median error. The model knows nothing of thermal throttling, of a phone's governor
//! keeping clocks low, or of caches: a net whose weights do not fit a little core's L2 runs
//! slower than the model says.

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

/// A net's parallel fraction on an ARM device over its parallel fraction on the calibration host
/// (both from the latencies at 1 and `T` threads, [`parallel_fraction`]): the median over public
/// ncnn measurements on 2–4 cores of one cluster, with ncnn's own 1- and 2-thread latencies on the
/// host (`cargo run --release -p device-profiles --example fit_latency_model`). One figure: per
/// core class (0.96 in-order, 0.95 out-of-order), per core type, an affine map of the host's
/// fraction, `cores^alpha` or an overhead per added thread predicted held-out devices no better
/// (69–75% within ±25%, median 13.7–16.4%, against 74% and 13.9%; one fraction for every net:
/// 60%, 22%). What is left is one factor per device (memory system, governor): the measured
/// 4-thread speed-up of Cortex-A53 boards runs from 1.55 to 2.66 (BENCHMARKS.md).
pub const PARALLEL_BRIDGE: f64 = 0.956;

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

/// The share of a net's one-thread time that `n` threads split (Amdahl's law, inverted): from its
/// latency `ms_1` at one thread and `ms_n` at `n` threads, `(1 − ms_n / ms_1) / (1 − 1 / n)`,
/// clamped to [0, 1] (a net that ran slower on more threads has none). 0 when `n` < 2 or a latency
/// is not positive.
pub fn parallel_fraction(ms_1: f64, ms_n: f64, n: usize) -> f64 {
    if n < 2 || !(ms_1 > 0.0 && ms_n > 0.0) {
        return 0.0;
    }
    ((1.0 - ms_n / ms_1) / (1.0 - 1.0 / n as f64)).clamp(0.0, 1.0)
}

/// How many cores' worth of speed `threads` threads get on `cpu` when they **share the work
/// dynamically** (each takes the next unit when it is free, as the probe's multi-thread GEMM does):
/// threads fill the fastest cluster first, then the next, each core counted at its speed over the
/// fastest core's (unknown cores as the fastest). At least 1. A device known only by its count of
/// big cores gets `threads` itself (each big core taken at the fastest core's speed).
///
/// Work split into equal parts up front (ncnn's OpenMP static schedule, the engine's stage parts)
/// waits for the slowest core instead: [`equal_split_cores`].
pub fn effective_cores(cpu: &Cpu, threads: usize) -> f64 {
    let placed = place_threads(cpu, threads);
    placed
        .iter()
        .map(|&(relative, take)| take as f64 * relative)
        .sum::<f64>()
        .max(1.0)
}

/// How many cores' worth of speed `threads` threads get on `cpu` when the work is **split into
/// equal parts**, one per thread (ncnn's OpenMP static schedule; the engine's stage parts): the
/// threads land as in [`effective_cores`] (fastest cluster first) and the part on the slowest core
/// they reach decides, so it is the threads placed × that core's speed over the fastest core's.
/// At least 1. Threads beyond the big cluster then cost time when a little core is less than
/// `big / threads` as fast: on a 4 + 4 SoC whose little cores run at 0.3 of the big ones, 8 threads
/// get 2.4 cores' worth against 4 on the big cluster alone (public ncnn runs on all cores of
/// RK3588 and Snapdragon 8 Gen 2 are 1.8–2.3× slower than on their big clusters; BENCHMARKS.md).
pub fn equal_split_cores(cpu: &Cpu, threads: usize) -> f64 {
    let placed = place_threads(cpu, threads);
    let count: usize = placed.iter().map(|p| p.1).sum();
    let slowest = placed.iter().map(|p| p.0).fold(1.0, f64::min);
    (count as f64 * slowest).max(1.0)
}

/// Where `threads` threads land on `cpu`, fastest cluster first: (core speed over the fastest
/// core's, threads on cores of that speed) for each cluster that gets a thread; threads beyond the
/// cores get none. Unknown cores count as the fastest.
fn place_threads(cpu: &Cpu, threads: usize) -> Vec<(f64, usize)> {
    let mut speeds: Vec<(f64, u32)> = cpu
        .clusters
        .iter()
        .map(|c| {
            let speed = c.max_mhz.and_then(|mhz| core_speed(&c.core, mhz));
            (speed.unwrap_or(f64::INFINITY), c.count)
        })
        .collect();
    speeds.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top = speeds
        .iter()
        .map(|s| s.0)
        .find(|s| s.is_finite())
        .unwrap_or(1.0);
    let mut left = threads.max(1);
    let mut placed = Vec::new();
    for (speed, count) in speeds {
        let take = left.min(count as usize);
        if take > 0 {
            placed.push((speed.min(top) / top, take));
        }
        left -= take;
    }
    placed
}

/// Speed-up of one image on `cores` effective cores ([`effective_cores`]) over one thread, for a
/// net with `parallel_fraction` measured on the calibration host: Amdahl's law
/// `1 / ((1 − q) + q / cores)` with `q = PARALLEL_BRIDGE × parallel_fraction`. 1 for one core or
/// a net with nothing parallel.
pub fn thread_speedup(parallel_fraction: f64, cores: f64) -> f64 {
    amdahl_speedup(PARALLEL_BRIDGE * parallel_fraction, cores)
}

/// Amdahl's law: the speed-up on `cores` cores of work whose share `q` (clamped to [0, 1]) is
/// split evenly, at least 1 core.
pub fn amdahl_speedup(q: f64, cores: f64) -> f64 {
    let q = q.clamp(0.0, 1.0);
    1.0 / ((1.0 - q) + q / cores.max(1.0))
}

/// The one latency prediction: a latency of `reference_ms` on a device of score
/// `reference_score` becomes `reference_ms × reference_score / device_score` on a device of
/// score `device_score` (both one thread, batch 1). Scores are clamped to a tiny positive value,
/// so the result is finite for finite inputs.
pub fn predict_ms(reference_ms: f64, reference_score: f64, device_score: f64) -> f64 {
    reference_ms * reference_score.max(1e-9) / device_score.max(1e-9)
}

/// [`predict_ms`] on `cores` effective cores: divided by [`thread_speedup`] of the net's
/// `parallel_fraction` (as the calibration host measured it).
pub fn predict_ms_at(
    reference_ms: f64,
    reference_score: f64,
    device_score: f64,
    parallel_fraction: f64,
    cores: f64,
) -> f64 {
    predict_ms(reference_ms, reference_score, device_score)
        / thread_speedup(parallel_fraction, cores)
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
        assert_eq!(effective_cores(&c, 1), 1.0);
        assert_eq!(effective_cores(&c, 2), 2.0);
        let little =
            core_speed("cortex-a55", 2000).unwrap() / core_speed("cortex-a76", 2000).unwrap();
        assert!((effective_cores(&c, 3) - (2.0 + little)).abs() < 1e-12);
        assert_eq!(effective_cores(&c, 100), effective_cores(&c, 8));
        assert_eq!(effective_cores(&cpu(&[("AMD EPYC", 2, 2000)]), 2), 2.0);
    }

    #[test]
    fn equal_parts_wait_for_the_slowest_core() {
        let c = cpu(&[("cortex-a76", 2, 2000), ("cortex-a55", 6, 2000)]);
        let little =
            core_speed("cortex-a55", 2000).unwrap() / core_speed("cortex-a76", 2000).unwrap();
        assert_eq!(equal_split_cores(&c, 1), 1.0);
        assert_eq!(equal_split_cores(&c, 2), 2.0);
        // 4 threads: 2 on the A76s, 2 on the A55s, every part waits for an A55
        assert!((equal_split_cores(&c, 4) - 4.0 * little).abs() < 1e-12);
        assert!(equal_split_cores(&c, 4) < effective_cores(&c, 4));
        assert_eq!(equal_split_cores(&c, 100), equal_split_cores(&c, 8));
        // a 2 + 6 phone (A76 2.2 GHz, A55 1.8 GHz): 8 equal parts lose to the 2 big cores
        let phone = cpu(&[("cortex-a76", 2, 2200), ("cortex-a55", 6, 1800)]);
        assert!(equal_split_cores(&phone, 8) < 2.0);
        assert!(effective_cores(&phone, 8) > 3.0);
        // one core type at two clocks (a 1 + 3 big cluster): the lower clock decides
        let prime = cpu(&[("cortex-a76", 1, 2840), ("cortex-a76", 3, 2420)]);
        assert!((equal_split_cores(&prime, 4) - 4.0 * 2420.0 / 2840.0).abs() < 1e-12);
        assert!((effective_cores(&prime, 4) - (1.0 + 3.0 * 2420.0 / 2840.0)).abs() < 1e-12);
        // one cluster: the same as effective_cores
        let one = cpu(&[("cortex-a53", 4, 1500)]);
        assert_eq!(equal_split_cores(&one, 4), effective_cores(&one, 4));
        assert_eq!(equal_split_cores(&cpu(&[("AMD EPYC", 2, 2000)]), 2), 2.0);
    }

    #[test]
    fn amdahl_round_trips_and_bounds() {
        // a net that took 10 ms on one thread and 6 ms on two: 80% of it split
        let p = parallel_fraction(10.0, 6.0, 2);
        assert!((p - 0.8).abs() < 1e-12, "{p}");
        assert_eq!(parallel_fraction(10.0, 12.0, 2), 0.0, "slower on two");
        assert_eq!(parallel_fraction(10.0, 4.0, 2), 1.0, "clamped");
        assert_eq!(parallel_fraction(10.0, 5.0, 1), 0.0);
        assert_eq!(thread_speedup(0.0, 4.0), 1.0);
        assert_eq!(thread_speedup(0.8, 1.0), 1.0);
        let q = PARALLEL_BRIDGE * 0.8;
        let four = thread_speedup(0.8, 4.0);
        assert!((four - 1.0 / (1.0 - q + q / 4.0)).abs() < 1e-12, "{four}");
        assert!(four > thread_speedup(0.8, 2.0) && four < 4.0);
        let at = predict_ms_at(2.0, 100.0, 400.0, 0.8, 4.0);
        assert!((at - 0.5 / four).abs() < 1e-12);
    }

    #[test]
    fn predict_scales_inversely_with_score() {
        assert!((predict_ms(2.0, 100.0, 400.0) - 0.5).abs() < 1e-12);
        assert!(predict_ms(2.0, 100.0, 0.0).is_finite());
    }
}
