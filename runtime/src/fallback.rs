//! Choosing and loading with fallback: use the cached decision or select, verify and load the
//! chosen file, step down to the next smaller variant when a file is missing, damaged or does
//! not load, and persist the final choice. [`AdaptiveLatency`] steps down when the first
//! measured inferences run over budget.

use std::fmt;

use serde::Serialize;

use crate::bundle::{Bundle, Problem};
use crate::cache::{
    CacheKey, CacheLookup, CachedDecision, DecisionCache, StepDown, StepDownReason,
};
use crate::device::DeviceFacts;
use crate::error::{Error, Result};
use crate::manifest::Variant;
use crate::select::{
    Decision, Policy, next_smaller, predicted_latency_ms, select, shortfall, size_order,
};

/// One variant that failed to verify or load while choosing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FallbackEvent {
    /// The variant id.
    pub variant: String,
    /// Its file name.
    pub file: String,
    /// What went wrong.
    pub problem: Problem,
    /// The full message (naming the file).
    pub message: String,
}

impl fmt::Display for FallbackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "variant `{}` ({}): {}",
            self.variant, self.file, self.message
        )
    }
}

/// A loaded model and how it was chosen.
#[derive(Debug)]
pub struct Loaded<T> {
    /// What the `load` callback returned.
    pub model: T,
    /// The variant loaded.
    pub variant: Variant,
    /// The selector's decision for this device (computed even on a cache hit, for reports).
    pub decision: Decision,
    /// What the cache said before loading.
    pub cache_lookup: CacheLookup,
    /// Variants that failed before this one, in the order tried.
    pub events: Vec<FallbackEvent>,
    /// Set when the final choice could not be persisted (the model is loaded anyway).
    pub cache_error: Option<Error>,
}

impl<T> Loaded<T> {
    /// Whether a cached decision was used as the starting point.
    pub fn from_cache(&self) -> bool {
        matches!(self.cache_lookup, CacheLookup::Hit(_))
    }
}

/// Chooses a variant of `bundle` for `device` (cached decision if valid, else [`select`]),
/// reads and verifies its file and hands it to `load`. On a missing, damaged or unloadable file
/// it steps down to the next smaller variant (and, as a last resort, tries the larger ones,
/// smallest first), recording each failure. The final choice, with its step-downs, is
/// persisted in `cache` when it differs from what was cached.
///
/// # Errors
/// [`Error::InvalidPolicy`] / [`Error::InvalidDevice`] from selection, or
/// [`Error::AllVariantsFailed`] listing each failure when no variant loads.
pub fn choose_and_load<T>(
    bundle: &Bundle,
    device: &DeviceFacts,
    policy: &Policy,
    cache: &DecisionCache,
    load: impl FnMut(&Variant, &[u8]) -> Result<T>,
) -> Result<Loaded<T>> {
    let plan = plan(bundle, device, policy, cache)?;
    load_planned(bundle, device, policy, cache, plan, load)
}

/// The first half of [`choose_and_load`]: the selector's decision and what the cache says,
/// without reading any weights. Split out so callers can time selection apart from loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The selector's decision for this device.
    pub decision: Decision,
    /// The cache key of this bundle, device and policy.
    pub key: CacheKey,
    /// What the cache said.
    pub cache_lookup: CacheLookup,
}

impl Plan {
    /// The variant loading starts at: the cached one when the cache has a valid entry naming
    /// a variant of this bundle, else the selector's choice.
    pub fn start<'a>(&'a self, bundle: &Bundle) -> &'a str {
        match &self.cache_lookup {
            CacheLookup::Hit(d) if bundle.manifest().variant(&d.variant).is_some() => &d.variant,
            _ => &self.decision.chosen,
        }
    }
}

/// Selects a variant of `bundle` for `device` and looks the decision up in `cache` (no file
/// is read but the cache's).
///
/// # Errors
/// [`Error::InvalidPolicy`] / [`Error::InvalidDevice`].
pub fn plan(
    bundle: &Bundle,
    device: &DeviceFacts,
    policy: &Policy,
    cache: &DecisionCache,
) -> Result<Plan> {
    let manifest = bundle.manifest();
    let decision = select(manifest, device, policy)?;
    let key = CacheKey::new(manifest, device, policy);
    let cache_lookup = cache.lookup(&key);
    Ok(Plan {
        decision,
        key,
        cache_lookup,
    })
}

/// The second half of [`choose_and_load`]: verifies and loads from `plan`'s start, stepping
/// down on failure, and persists the final choice.
///
/// # Errors
/// [`Error::AllVariantsFailed`] listing each failure when no variant loads.
pub fn load_planned<T>(
    bundle: &Bundle,
    device: &DeviceFacts,
    policy: &Policy,
    cache: &DecisionCache,
    plan: Plan,
    load: impl FnMut(&Variant, &[u8]) -> Result<T>,
) -> Result<Loaded<T>> {
    let (mut loaded, to_store) = load_unpersisted(bundle, device, policy, plan, load)?;
    if let Some((key, entry)) = to_store {
        loaded.cache_error = cache.store(&key, &entry).err();
    }
    Ok(loaded)
}

/// A decision cache entry still to be written.
pub(crate) type ToStore = (CacheKey, CachedDecision);

/// [`load_planned`] without the cache write: also returns the entry to store, if the cache
/// needs updating (the launcher persists it after timing the load).
pub(crate) fn load_unpersisted<T>(
    bundle: &Bundle,
    device: &DeviceFacts,
    policy: &Policy,
    plan: Plan,
    mut load: impl FnMut(&Variant, &[u8]) -> Result<T>,
) -> Result<(Loaded<T>, Option<ToStore>)> {
    let manifest = bundle.manifest();
    let Plan {
        decision,
        key,
        cache_lookup,
    } = plan;
    let cached = match &cache_lookup {
        CacheLookup::Hit(d) if manifest.variant(&d.variant).is_some() => Some(d.clone()),
        _ => None,
    };
    let start = cached
        .as_ref()
        .map_or(decision.chosen.as_str(), |d| d.variant.as_str());

    // The start, then smaller variants (largest first), then larger ones (smallest first).
    let order = size_order(manifest);
    let pos = order.iter().position(|v| v.id == start).unwrap_or(0);
    let candidates = order[pos..].iter().chain(order[..pos].iter().rev());

    let mut events: Vec<FallbackEvent> = Vec::new();
    for v in candidates {
        let outcome = bundle
            .read_variant(&v.id)
            .map_err(|e| (Problem::of_error(&e), e.to_string()))
            .and_then(|bytes| {
                load(v, &bytes).map_err(|e| {
                    let path = bundle.variant_path(v);
                    let msg = match e {
                        Error::LoadFailed { source, .. } => {
                            format!("{}: does not load: {source}", path.display())
                        }
                        e => format!("{}: does not load: {e}", path.display()),
                    };
                    (Problem::LoadFailed, msg)
                })
            });
        match outcome {
            Err((problem, message)) => events.push(FallbackEvent {
                variant: v.id.clone(),
                file: v.file.clone(),
                problem,
                message,
            }),
            Ok(model) => {
                let to_store = if cached.is_some() && events.is_empty() {
                    None
                } else {
                    let mut step_downs = cached.map(|d| d.step_downs).unwrap_or_default();
                    let tried: Vec<&str> = events
                        .iter()
                        .map(|e| e.variant.as_str())
                        .chain([v.id.as_str()])
                        .collect();
                    for (e, to) in events.iter().zip(tried.iter().skip(1)) {
                        step_downs.push(StepDown {
                            from: e.variant.clone(),
                            to: (*to).to_owned(),
                            reason: StepDownReason::LoadFailed {
                                message: e.message.clone(),
                            },
                        });
                    }
                    let entry = CachedDecision {
                        variant: v.id.clone(),
                        fits: shortfall(manifest, v, device, policy).is_empty(),
                        predicted_latency_ms: predicted_latency_ms(manifest, v, device),
                        step_downs,
                    };
                    Some((key, entry))
                };
                let loaded = Loaded {
                    model,
                    variant: (*v).clone(),
                    decision,
                    cache_lookup,
                    events,
                    cache_error: None,
                };
                return Ok((loaded, to_store));
            }
        }
    }
    Err(Error::AllVariantsFailed {
        dir: bundle.dir().to_path_buf(),
        failures: events,
    })
}

/// Persists a step down from `from` to the next smaller variant because measured latency was
/// over budget; returns the new variant id, or `None` when `from` is already the smallest.
///
/// # Errors
/// [`Error::UnknownVariant`] for an unknown `from`, selection errors for a bad device or
/// policy, or [`Error::Io`] when the cache cannot be written.
pub fn step_down_slow(
    bundle: &Bundle,
    device: &DeviceFacts,
    policy: &Policy,
    cache: &DecisionCache,
    from: &str,
    verdict: &LatencyVerdict,
) -> Result<Option<String>> {
    policy.validate()?;
    device.validate()?;
    bundle.variant(from)?;
    let LatencyVerdict::StepDown {
        median_ms,
        limit_ms,
    } = *verdict
    else {
        return Ok(None);
    };
    let manifest = bundle.manifest();
    let Some(to) = next_smaller(manifest, from) else {
        return Ok(None);
    };
    let key = CacheKey::new(manifest, device, policy);
    let reason = StepDownReason::TooSlow {
        median_ms,
        limit_ms,
    };
    let predicted = predicted_latency_ms(manifest, to, device);
    cache.record_step_down(&key, from, &to.id, predicted, reason)?;
    Ok(Some(to.id.clone()))
}

/// The verdict of [`AdaptiveLatency`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum LatencyVerdict {
    /// Fewer than the window's samples so far.
    Collecting,
    /// The median is within budget × (1 + margin).
    Keep {
        /// Median of the window.
        median_ms: f64,
    },
    /// The median is over budget × (1 + margin): step down (see [`step_down_slow`]).
    StepDown {
        /// Median of the window.
        median_ms: f64,
        /// budget × (1 + margin).
        limit_ms: f64,
    },
}

/// Watches the first `window` measured latencies of a freshly loaded variant and says whether
/// to step down. The verdict is given once the window is full and does not change after.
#[derive(Debug, Clone)]
pub struct AdaptiveLatency {
    limit_ms: f64,
    window: usize,
    samples: Vec<f64>,
    verdict: LatencyVerdict,
}

impl AdaptiveLatency {
    /// Steps down when the median of the first `window` (at least 1) latencies exceeds
    /// `budget_ms × (1 + safety_margin)`.
    pub fn new(budget_ms: f64, safety_margin: f64, window: usize) -> Self {
        AdaptiveLatency {
            limit_ms: budget_ms * (1.0 + safety_margin),
            window: window.max(1),
            samples: Vec::new(),
            verdict: LatencyVerdict::Collecting,
        }
    }

    /// Uses the budget and margin of `decision`.
    pub fn for_decision(decision: &Decision, window: usize) -> Self {
        Self::new(decision.latency_budget_ms, decision.safety_margin, window)
    }

    /// The latency limit.
    pub fn limit_ms(&self) -> f64 {
        self.limit_ms
    }

    /// The verdict so far.
    pub fn verdict(&self) -> LatencyVerdict {
        self.verdict
    }

    /// Feeds one measured latency (non-finite or negative values are ignored) and returns the
    /// verdict.
    pub fn record(&mut self, latency_ms: f64) -> LatencyVerdict {
        if self.verdict != LatencyVerdict::Collecting || !latency_ms.is_finite() || latency_ms < 0.0
        {
            return self.verdict;
        }
        self.samples.push(latency_ms);
        if self.samples.len() >= self.window
            && let Some(median_ms) = device_profiles::bench::median(&self.samples)
        {
            self.verdict = if median_ms > self.limit_ms {
                LatencyVerdict::StepDown {
                    median_ms,
                    limit_ms: self.limit_ms,
                }
            } else {
                LatencyVerdict::Keep { median_ms }
            };
        }
        self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_latency_uses_the_median_once() {
        let mut a = AdaptiveLatency::new(10.0, 0.2, 3);
        assert_eq!(a.record(100.0), LatencyVerdict::Collecting);
        assert_eq!(a.record(f64::NAN), LatencyVerdict::Collecting);
        assert_eq!(a.record(11.0), LatencyVerdict::Collecting);
        // Median of 100, 11, 11.5 = 11.5 ≤ 12: keep, despite the slow first call.
        assert_eq!(a.record(11.5), LatencyVerdict::Keep { median_ms: 11.5 });
        assert_eq!(a.record(1000.0), LatencyVerdict::Keep { median_ms: 11.5 });

        let mut a = AdaptiveLatency::new(10.0, 0.2, 4);
        for x in [13.0, 12.0, 14.0] {
            a.record(x);
        }
        match a.record(1.0) {
            LatencyVerdict::StepDown {
                median_ms,
                limit_ms,
            } => {
                assert!((median_ms - 12.5).abs() < 1e-12);
                assert!((limit_ms - 12.0).abs() < 1e-12);
            }
            v => panic!("{v:?}"),
        }
    }
}
