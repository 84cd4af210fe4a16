//! The selector: which variant of a bundle a device should run.
//!
//! Rule: the most accurate variant whose predicted latency (with a safety margin) fits the
//! latency budget and whose memory need fits the device's memory budget; if none fits, the
//! smallest. Deterministic: ties are broken by MACs, then id.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::device::DeviceFacts;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, Variant, hex};

/// Memory a loaded model costs beyond its weights and activations (runtime, allocator, input
/// buffers): 16 MiB.
pub const RUNTIME_OVERHEAD_BYTES: u64 = 16 << 20;

/// How to choose: budgets and margins. `Policy::default()` is the recommended one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Latency budget per inference; `None` uses the manifest's `default_latency_budget_ms`.
    pub latency_budget_ms: Option<f64>,
    /// Share of the device's RAM the model may use (weights + peak activations +
    /// [`RUNTIME_OVERHEAD_BYTES`]); default 0.25.
    pub memory_fraction: f64,
    /// Predicted latency × (1 + margin) must fit the budget; default 0.15.
    pub safety_margin: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            latency_budget_ms: None,
            memory_fraction: 0.25,
            safety_margin: 0.15,
        }
    }
}

impl Policy {
    /// Checks the ranges: budget > 0, fraction in (0, 1], margin in [0, 10].
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(b) = self.latency_budget_ms
            && !(b.is_finite() && b > 0.0)
        {
            return Err(Error::InvalidPolicy {
                field: "latency_budget_ms",
                value: b,
                reason: "must be a positive number of milliseconds",
            });
        }
        let f = self.memory_fraction;
        if !(f.is_finite() && f > 0.0 && f <= 1.0) {
            return Err(Error::InvalidPolicy {
                field: "memory_fraction",
                value: f,
                reason: "must be in (0, 1]",
            });
        }
        let m = self.safety_margin;
        if !(m.is_finite() && (0.0..=10.0).contains(&m)) {
            return Err(Error::InvalidPolicy {
                field: "safety_margin",
                value: m,
                reason: "must be in [0, 10]",
            });
        }
        Ok(())
    }

    /// The latency budget in force for `manifest`.
    pub fn latency_budget_ms(&self, manifest: &Manifest) -> f64 {
        self.latency_budget_ms
            .unwrap_or(manifest.default_latency_budget_ms())
    }

    /// The memory budget on `device`: its RAM × `memory_fraction`.
    pub fn memory_budget_bytes(&self, device: &DeviceFacts) -> u64 {
        // f64 → u64 `as` saturates; RAM sizes are far below 2^53.
        (device.effective_ram_bytes() as f64 * self.memory_fraction) as u64
    }

    /// A short hash of everything that shapes a decision besides the bundle and the device
    /// (this policy, the overhead constant and the runtime version): part of the cache key.
    pub fn digest(&self) -> String {
        let text = format!(
            "{:?}|{:x}|{:x}|{}|{}",
            self.latency_budget_ms.map(f64::to_bits),
            self.memory_fraction.to_bits(),
            self.safety_margin.to_bits(),
            RUNTIME_OVERHEAD_BYTES,
            env!("CARGO_PKG_VERSION"),
        );
        hex(&Sha256::digest(text.as_bytes())[..8])
    }
}

/// What ranks variants by accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccuracySource {
    /// Every variant has a measured `test_accuracy`.
    Test,
    /// Every variant has `test_accuracy` or else `predicted_accuracy`.
    Predicted,
    /// Some variant has neither: MACs stand in for accuracy (more is better).
    Macs,
}

impl AccuracySource {
    /// The source usable for all variants of `manifest`.
    pub fn of(manifest: &Manifest) -> Self {
        let vs = manifest.variants();
        if vs.iter().all(|v| v.test_accuracy.is_some()) {
            AccuracySource::Test
        } else if vs
            .iter()
            .all(|v| v.test_accuracy.or(v.predicted_accuracy).is_some())
        {
            AccuracySource::Predicted
        } else {
            AccuracySource::Macs
        }
    }

    /// The accuracy of `v` under this source (`None` for [`AccuracySource::Macs`]).
    pub fn accuracy(self, v: &Variant) -> Option<f64> {
        match self {
            AccuracySource::Test => v.test_accuracy,
            AccuracySource::Predicted => v.test_accuracy.or(v.predicted_accuracy),
            AccuracySource::Macs => None,
        }
    }

    fn rank(self, v: &Variant) -> f64 {
        self.accuracy(v).unwrap_or(v.macs as f64)
    }
}

/// Most threads the runtime runs one image on (tierforge's nets are small: past four cores the
/// joins cost more than the parts save).
pub const MAX_INFERENCE_THREADS: usize = 4;

/// Each thread beyond the first must cut the predicted latency by at least this share, or the
/// runtime does not take it (a thread that saves 3% costs a core's energy and competes with the
/// app's own threads).
pub const MIN_THREAD_GAIN: f64 = 0.10;

/// Threads one image of `variant` runs on, on `device`: the most, up to the device's big cores and
/// [`MAX_INFERENCE_THREADS`], where each added thread cuts the predicted latency
/// ([`predicted_latency_ms_at`]) by at least [`MIN_THREAD_GAIN`]. A variant whose reference
/// latency did not fall from 1 to 2 threads when the bundle was built (a tiny net, or a bundle
/// without `latency_by_threads`) runs on 1; the engine splits a stage only where its work pays.
pub fn inference_threads(variant: &Variant, device: &DeviceFacts) -> usize {
    let p = variant.parallel_fraction();
    let most = device.big_cores.clamp(1, MAX_INFERENCE_THREADS);
    let speedup = |t: usize| device_profiles::latency::thread_speedup(p, t as f64);
    let mut chosen = 1;
    for t in 2..=most {
        if speedup(t) * (1.0 - MIN_THREAD_GAIN) >= speedup(chosen) {
            chosen = t;
        } else {
            break;
        }
    }
    chosen
}

/// Latency of `variant` predicted on `device` at the runtime's own thread count
/// ([`inference_threads`]); see [`predicted_latency_ms_at`].
pub fn predicted_latency_ms(manifest: &Manifest, variant: &Variant, device: &DeviceFacts) -> f64 {
    predicted_latency_ms_at(
        manifest,
        variant,
        device,
        inference_threads(variant, device),
    )
}

/// Latency of `variant` predicted on `device` at `threads` threads, by the latency model
/// ([`device_profiles::latency::predict_ms_at`]): the one-thread reference latency moved to the
/// device in proportion to the scores (one core's speed), divided by the speed-up the variant's
/// parallel fraction ([`Variant::parallel_fraction`]) gives on that many of the device's big cores
/// (more threads than big cores count as the big cores).
pub fn predicted_latency_ms_at(
    manifest: &Manifest,
    variant: &Variant,
    device: &DeviceFacts,
    threads: usize,
) -> f64 {
    let cores = threads.clamp(1, device.big_cores.max(1));
    device_profiles::latency::predict_ms_at(
        variant.latency_ms,
        manifest.reference().score,
        device.score,
        variant.parallel_fraction(),
        cores as f64,
    )
}

fn one_thread() -> usize {
    1
}

/// Memory `variant` needs when loaded: weights + peak activations + [`RUNTIME_OVERHEAD_BYTES`].
pub fn memory_need_bytes(variant: &Variant) -> u64 {
    variant
        .model_bytes
        .saturating_add(variant.peak_activation_bytes)
        .saturating_add(RUNTIME_OVERHEAD_BYTES)
}

/// Why `variant` does not fit `device` under `policy` (memory first, then latency); empty when
/// it fits. Assumes a validated policy and device.
pub fn shortfall(
    manifest: &Manifest,
    variant: &Variant,
    device: &DeviceFacts,
    policy: &Policy,
) -> Vec<RejectReason> {
    let budget_ms = policy.latency_budget_ms(manifest);
    let margin = policy.safety_margin;
    let mem_budget = policy.memory_budget_bytes(device);
    let mut out = Vec::new();
    let need = memory_need_bytes(variant);
    if need > mem_budget {
        out.push(RejectReason::TooBig {
            need_bytes: need,
            budget_bytes: mem_budget,
        });
    }
    let predicted = predicted_latency_ms(manifest, variant, device);
    if predicted * (1.0 + margin) > budget_ms {
        out.push(RejectReason::TooSlow {
            predicted_ms: predicted,
            budget_ms,
            margin,
        });
    }
    out
}

/// "Larger first" order: MACs, then model bytes, descending; ties by id ascending.
fn by_size_desc(a: &Variant, b: &Variant) -> Ordering {
    b.macs
        .cmp(&a.macs)
        .then(b.model_bytes.cmp(&a.model_bytes))
        .then_with(|| a.id.cmp(&b.id))
}

/// All variants, largest first (MACs, then model bytes; ties by id).
pub fn size_order(manifest: &Manifest) -> Vec<&Variant> {
    let mut vs: Vec<&Variant> = manifest.variants().iter().collect();
    vs.sort_by(|a, b| by_size_desc(a, b));
    vs
}

/// The variants smaller than `id` in [`size_order`], largest first (empty for an unknown id).
pub fn smaller_than<'m>(manifest: &'m Manifest, id: &str) -> Vec<&'m Variant> {
    let order = size_order(manifest);
    match order.iter().position(|v| v.id == id) {
        Some(i) => order[i + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// The next smaller variant after `id`, if any: where to step down to.
pub fn next_smaller<'m>(manifest: &'m Manifest, id: &str) -> Option<&'m Variant> {
    smaller_than(manifest, id).into_iter().next()
}

/// Why a variant was not chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// Predicted latency × (1 + margin) is over the budget.
    TooSlow {
        /// Predicted latency on this device, without the margin.
        predicted_ms: f64,
        /// The latency budget.
        budget_ms: f64,
        /// The safety margin applied.
        margin: f64,
    },
    /// Weights + activations + overhead are over the memory budget.
    TooBig {
        /// What the variant needs.
        need_bytes: u64,
        /// The device's memory budget.
        budget_bytes: u64,
    },
    /// It fits, but the chosen variant ranks higher.
    LessAccurate {
        /// Its accuracy (`None` when MACs rank the variants).
        accuracy: Option<f64>,
        /// The chosen variant's accuracy.
        chosen_accuracy: Option<f64>,
    },
    /// The caller excluded it (e.g. its file failed to load before).
    Excluded,
}

/// One variant not chosen, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// The variant id.
    pub variant: String,
    /// Why.
    pub reason: RejectReason,
}

/// The selector's answer, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The bundle id.
    pub bundle_id: String,
    /// The bundle version.
    pub bundle_version: String,
    /// The device id.
    pub device_id: String,
    /// The chosen variant id.
    pub chosen: String,
    /// Whether it fits both budgets (false: nothing fit, the smallest was taken).
    pub fits: bool,
    /// Its predicted latency on the device (without the margin), at [`Decision::threads`].
    pub predicted_latency_ms: f64,
    /// Threads one image of it runs on ([`inference_threads`]); 1 in decisions cached before
    /// the runtime chose.
    #[serde(default = "one_thread")]
    pub threads: usize,
    /// Its memory need.
    pub memory_bytes: u64,
    /// The latency budget used.
    pub latency_budget_ms: f64,
    /// The safety margin used.
    pub safety_margin: f64,
    /// The device's memory budget.
    pub memory_budget_bytes: u64,
    /// What ranked the variants.
    pub accuracy_source: AccuracySource,
    /// The chosen variant's accuracy, if known.
    pub accuracy: Option<f64>,
    /// Why the chosen variant does not fit (empty when `fits`).
    pub shortfall: Vec<RejectReason>,
    /// Every other variant and why it was not chosen, largest first.
    pub reasons: Vec<Rejection>,
    /// Where to step down to if the chosen file fails: the smaller variants, largest first.
    pub fallback_order: Vec<String>,
}

/// Chooses a variant of `manifest` for `device` under `policy`.
///
/// # Errors
/// [`Error::InvalidPolicy`] or [`Error::InvalidDevice`] for out-of-range inputs.
pub fn select(manifest: &Manifest, device: &DeviceFacts, policy: &Policy) -> Result<Decision> {
    select_excluding(manifest, device, policy, &[])
}

/// As [`select`], never choosing a variant listed in `excluded` (nor listing it in the
/// fallback order).
///
/// # Errors
/// As [`select`], and [`Error::AllExcluded`] when every variant is excluded.
pub fn select_excluding(
    manifest: &Manifest,
    device: &DeviceFacts,
    policy: &Policy,
    excluded: &[&str],
) -> Result<Decision> {
    policy.validate()?;
    device.validate()?;
    let budget_ms = policy.latency_budget_ms(manifest);
    let margin = policy.safety_margin;
    let mem_budget = policy.memory_budget_bytes(device);
    let source = AccuracySource::of(manifest);

    let order = size_order(manifest);
    let is_excluded = |v: &Variant| excluded.contains(&v.id.as_str());
    let shortfall = |v: &Variant| shortfall(manifest, v, device, policy);

    let candidates: Vec<&Variant> = order.iter().copied().filter(|v| !is_excluded(v)).collect();
    let best_fitting = candidates
        .iter()
        .copied()
        .filter(|v| shortfall(v).is_empty())
        .min_by(|a, b| {
            source
                .rank(b)
                .total_cmp(&source.rank(a))
                .then(a.macs.cmp(&b.macs))
                .then_with(|| a.id.cmp(&b.id))
        });
    let (chosen, fits) = match best_fitting {
        Some(v) => (v, true),
        // `candidates` is in size order, so the last is the smallest.
        None => match candidates.last() {
            Some(v) => (*v, false),
            None => {
                return Err(Error::AllExcluded {
                    bundle_id: manifest.bundle_id().to_owned(),
                    excluded: excluded.iter().map(|s| (*s).to_owned()).collect(),
                });
            }
        },
    };

    let mut reasons = Vec::new();
    for v in &order {
        if v.id == chosen.id {
            continue;
        }
        let reason = if is_excluded(v) {
            RejectReason::Excluded
        } else if let Some(r) = shortfall(v).into_iter().next() {
            r
        } else {
            RejectReason::LessAccurate {
                accuracy: source.accuracy(v),
                chosen_accuracy: source.accuracy(chosen),
            }
        };
        reasons.push(Rejection {
            variant: v.id.clone(),
            reason,
        });
    }
    let fallback_order = smaller_than(manifest, &chosen.id)
        .into_iter()
        .filter(|v| !is_excluded(v))
        .map(|v| v.id.clone())
        .collect();

    Ok(Decision {
        bundle_id: manifest.bundle_id().to_owned(),
        bundle_version: manifest.bundle_version().to_owned(),
        device_id: device.id.clone(),
        chosen: chosen.id.clone(),
        fits,
        predicted_latency_ms: predicted_latency_ms(manifest, chosen, device),
        threads: inference_threads(chosen, device),
        memory_bytes: memory_need_bytes(chosen),
        latency_budget_ms: budget_ms,
        safety_margin: margin,
        memory_budget_bytes: mem_budget,
        accuracy_source: source,
        accuracy: source.accuracy(chosen),
        shortfall: if fits { Vec::new() } else { shortfall(chosen) },
        reasons,
        fallback_order,
    })
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::TooSlow {
                predicted_ms,
                budget_ms,
                margin,
            } => write!(
                f,
                "too slow: predicted {predicted_ms:.2} ms (+{:.0}% margin = {:.2} ms) is over the budget of {budget_ms:.2} ms",
                margin * 100.0,
                predicted_ms * (1.0 + margin)
            ),
            RejectReason::TooBig {
                need_bytes,
                budget_bytes,
            } => write!(
                f,
                "too big: needs {} (weights + activations + runtime) but the memory budget is {}",
                mib(*need_bytes),
                mib(*budget_bytes)
            ),
            RejectReason::LessAccurate {
                accuracy: Some(a),
                chosen_accuracy: Some(c),
            } => write!(
                f,
                "fits, but less accurate: {:.2}% vs {:.2}% for the chosen one",
                a * 100.0,
                c * 100.0
            ),
            RejectReason::LessAccurate { .. } => write!(
                f,
                "fits, but ranks lower (no accuracy in the manifest: fewer or equal MACs)"
            ),
            RejectReason::Excluded => {
                write!(f, "excluded (it failed to load or was stepped down from)")
            }
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bundle {} v{} on {}: chose `{}`",
            self.bundle_id, self.bundle_version, self.device_id, self.chosen
        )?;
        if let Some(a) = self.accuracy {
            write!(f, " (accuracy {:.2}%)", a * 100.0)?;
        }
        if self.fits {
            writeln!(
                f,
                ": predicted {:.2} ms (+{:.0}% margin) within {:.2} ms, memory {} within {}",
                self.predicted_latency_ms,
                self.safety_margin * 100.0,
                self.latency_budget_ms,
                mib(self.memory_bytes),
                mib(self.memory_budget_bytes)
            )?;
        } else {
            writeln!(f, ": NOTHING FITS, so the smallest variant was taken")?;
            for r in &self.shortfall {
                writeln!(f, "  `{}` (chosen): {r}", self.chosen)?;
            }
        }
        for r in &self.reasons {
            writeln!(f, "  `{}`: {}", r.variant, r.reason)?;
        }
        if self.fallback_order.is_empty() {
            write!(f, "fallback order: none (this is the smallest variant)")
        } else {
            write!(f, "fallback order: {}", self.fallback_order.join(" → "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;

    fn device(score: f64, ram_bytes: u64) -> DeviceFacts {
        DeviceFacts {
            id: "dev".into(),
            name: "Dev".into(),
            fingerprint: device_profiles::Fingerprint::from_u64(0xf0),
            score,
            ram_bytes: Some(ram_bytes),
            big_cores: 4,
        }
    }

    #[test]
    fn fast_device_gets_large_slow_device_gets_small() {
        let m = Manifest::try_from(sample()).unwrap();
        let p = Policy::default();
        // Reference score 10: large takes 8 ms there; budget 10 ms with 15% margin.
        let d = select(&m, &device(10.0, 4 << 30), &p).unwrap();
        assert_eq!((d.chosen.as_str(), d.fits), ("large", true));
        assert_eq!(d.fallback_order, vec!["small".to_string()]);
        assert!(matches!(
            d.reasons[0].reason,
            RejectReason::LessAccurate { .. }
        ));
        // Score 5: large predicted 16 ms → too slow; small 4 ms fits.
        let d = select(&m, &device(5.0, 4 << 30), &p).unwrap();
        assert_eq!((d.chosen.as_str(), d.fits), ("small", true));
        assert!(d.fallback_order.is_empty());
        match &d.reasons[0].reason {
            RejectReason::TooSlow {
                predicted_ms,
                budget_ms,
                ..
            } => {
                assert!((predicted_ms - 16.0).abs() < 1e-9);
                assert!((budget_ms - 10.0).abs() < 1e-9);
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn threads_are_chosen_per_variant_and_device() {
        let mut mf = sample();
        // large: 8 ms at one thread on the reference, 5 ms at two: 75% of it splits
        let large = mf.variants.iter_mut().find(|v| v.id == "large").unwrap();
        large.latency_by_threads = vec![
            crate::ThreadLatency {
                threads: 1,
                ms: 8.0,
            },
            crate::ThreadLatency {
                threads: 2,
                ms: 5.0,
            },
        ];
        // small: a tiny net, slower on two threads than on one
        let small = mf.variants.iter_mut().find(|v| v.id == "small").unwrap();
        small.latency_by_threads = vec![
            crate::ThreadLatency {
                threads: 1,
                ms: small.latency_ms,
            },
            crate::ThreadLatency {
                threads: 2,
                ms: small.latency_ms * 1.05,
            },
        ];
        let m = Manifest::try_from(mf).unwrap();
        let large = m.variants().iter().find(|v| v.id == "large").unwrap();
        let small = m.variants().iter().find(|v| v.id == "small").unwrap();
        assert!((large.parallel_fraction() - 0.75).abs() < 1e-12);
        assert_eq!(small.parallel_fraction(), 0.0);
        let mut one_core = device(5.0, 4 << 30);
        one_core.big_cores = 1;
        let four_cores = device(5.0, 4 << 30);
        // the tiny net runs on one thread whatever the cores; the large one on all four big
        // cores (each added thread saves ≥ 10%: Amdahl with 0.75 × the bridge)
        assert_eq!(inference_threads(small, &four_cores), 1);
        assert_eq!(inference_threads(large, &one_core), 1);
        assert_eq!(inference_threads(large, &four_cores), 4);
        let mut eight_cores = four_cores.clone();
        eight_cores.big_cores = 8;
        assert_eq!(
            inference_threads(large, &eight_cores),
            MAX_INFERENCE_THREADS
        );
        // score 5 = half the reference: 16 ms on one thread, / the speed-up on four
        let q = device_profiles::latency::PARALLEL_BRIDGE * 0.75;
        let four = 16.0 * ((1.0 - q) + q / 4.0);
        assert!((predicted_latency_ms(&m, large, &one_core) - 16.0).abs() < 1e-9);
        assert!((predicted_latency_ms(&m, large, &four_cores) - four).abs() < 1e-9);
        // asked for more threads than big cores: predicted at the big cores
        assert!((predicted_latency_ms_at(&m, large, &one_core, 4) - 16.0).abs() < 1e-9);
        let p = Policy {
            latency_budget_ms: Some(12.0),
            ..Policy::default()
        };
        // 16 × 1.15 does not fit 12 on one core; 7.4 × 1.15 does on four
        let d = select(&m, &four_cores, &p).unwrap();
        assert_eq!((d.chosen.as_str(), d.threads), ("large", 4));
        assert!((d.predicted_latency_ms - four).abs() < 1e-9);
        assert_ne!(select(&m, &one_core, &p).unwrap().chosen, "large");
    }

    #[test]
    fn margin_is_applied() {
        let m = Manifest::try_from(sample()).unwrap();
        // large: 8 ms on reference; ×1.15 = 9.2 ≤ 10 fits; with margin 0.3: 10.4 > 10.
        let d = select(&m, &device(10.0, 4 << 30), &Policy::default()).unwrap();
        assert_eq!(d.chosen, "large");
        let p = Policy {
            safety_margin: 0.3,
            ..Policy::default()
        };
        assert_eq!(
            select(&m, &device(10.0, 4 << 30), &p).unwrap().chosen,
            "small"
        );
    }

    #[test]
    fn memory_budget_and_nothing_fits() {
        let m = Manifest::try_from(sample()).unwrap();
        // 32 MiB RAM × 0.25 = 8 MiB < 16 MiB overhead: nothing fits → smallest, flagged.
        let d = select(&m, &device(100.0, 32 << 20), &Policy::default()).unwrap();
        assert_eq!((d.chosen.as_str(), d.fits), ("small", false));
        assert!(matches!(d.shortfall[..], [RejectReason::TooBig { .. }]));
        let text = d.to_string();
        assert!(
            text.contains("NOTHING FITS") && text.contains("too big"),
            "{text}"
        );
    }

    #[test]
    fn explicit_budget_overrides_manifest_and_exclusion_works() {
        let m = Manifest::try_from(sample()).unwrap();
        let p = Policy {
            latency_budget_ms: Some(100.0),
            ..Policy::default()
        };
        let d = select(&m, &device(1.0, 4 << 30), &p).unwrap();
        assert_eq!(d.chosen, "large");
        let d = select_excluding(&m, &device(1.0, 4 << 30), &p, &["large"]).unwrap();
        assert_eq!(d.chosen, "small");
        assert_eq!(d.reasons[0].reason, RejectReason::Excluded);
        let e = select_excluding(&m, &device(1.0, 4 << 30), &p, &["large", "small"]).unwrap_err();
        assert!(matches!(e, Error::AllExcluded { .. }), "{e:?}");
    }

    #[test]
    fn accuracy_source_falls_back_to_macs() {
        let mut f = sample();
        // Without accuracies the proxy is MACs: large (3000) wins where it fits.
        for v in &mut f.variants {
            v.test_accuracy = None;
        }
        let m = Manifest::try_from(f.clone()).unwrap();
        assert_eq!(AccuracySource::of(&m), AccuracySource::Macs);
        assert_eq!(
            select(&m, &device(10.0, 4 << 30), &Policy::default())
                .unwrap()
                .chosen,
            "large"
        );
        // Predicted accuracy that favours small: small wins even though large fits.
        f.variants[0].predicted_accuracy = Some(0.5);
        f.variants[1].predicted_accuracy = Some(0.6);
        let m = Manifest::try_from(f).unwrap();
        assert_eq!(AccuracySource::of(&m), AccuracySource::Predicted);
        assert_eq!(
            select(&m, &device(10.0, 4 << 30), &Policy::default())
                .unwrap()
                .chosen,
            "small"
        );
    }

    #[test]
    fn bad_policy_rejected() {
        let m = Manifest::try_from(sample()).unwrap();
        for p in [
            Policy {
                memory_fraction: 0.0,
                ..Policy::default()
            },
            Policy {
                safety_margin: -0.1,
                ..Policy::default()
            },
            Policy {
                latency_budget_ms: Some(f64::NAN),
                ..Policy::default()
            },
        ] {
            let e = select(&m, &device(1.0, 1 << 30), &p).unwrap_err();
            assert!(matches!(e, Error::InvalidPolicy { .. }), "{e:?}");
        }
        assert_ne!(
            Policy::default().digest(),
            Policy {
                safety_margin: 0.2,
                ..Policy::default()
            }
            .digest()
        );
    }

    #[test]
    fn display_has_one_line_per_rejection() {
        let m = Manifest::try_from(sample()).unwrap();
        let d = select(&m, &device(5.0, 4 << 30), &Policy::default()).unwrap();
        let text = d.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + d.reasons.len() + 1, "{text}");
        assert!(
            lines[1].contains("`large`: too slow: predicted 16.00 ms"),
            "{text}"
        );
    }
}
