//! # tiers
//!
//! Slices a trained once-for-all supernet into per-device-tier variants and writes them into a
//! tiered bundle:
//!
//! - [`cost`]: params, MACs, weights-file bytes (f32 and int8) and peak activation bytes;
//! - [`latency`]: a per-op latency table measured on this host (batch 1, one thread), cached as
//!   `latency_lut.json`, plus a per-profile scale (host score / profile score);
//! - [`predictor`]: validation accuracy of sampled sub-nets (cached, resumable) and a ridge
//!   regression on Once-for-All's arch encoding, with RMSE and Kendall's τ on held-out sub-nets;
//! - [`spec`]: tier specs (JSON) with latency, model-size and peak-memory budgets;
//! - [`search`]: evolutionary search per tier, Pareto fronts, and [`pareto`] plots;
//! - [`eval`] and [`bundle`]: extract → BN recalibrate → fold → (int8) → evaluate → bundle,
//!   and [`verify_bundle`];
//! - [`pipeline::run_all`]: all of it over a checkpoint.
//!
//! ```
//! use supernet::{ArchConfig, SearchSpace};
//! use tiers::{TierSpec, cost::costs};
//!
//! let space = SearchSpace::small_for(1, 10, 28);
//! let big = costs(&space, &ArchConfig::max(&space));
//! let small = costs(&space, &ArchConfig::min(&space));
//! assert!(big.macs > small.macs && big.model_bytes_int8 < big.model_bytes_f32);
//! let spec = TierSpec::default_spec()?;
//! assert!(spec.tiers.len() >= 4);
//! # Ok::<(), tiers::Error>(())
//! ```
#![warn(missing_docs)]

pub mod bundle;
pub mod cost;
pub mod error;
pub mod eval;
pub mod host;
pub mod latency;
pub mod pareto;
pub mod pipeline;
mod plot;
pub mod predictor;
pub mod qa;
pub mod search;
pub mod spec;

pub use bundle::{
    BuiltVariant, BundleCheck, BundleOptions, BundleSources, BundleSummary, build_bundle,
    check_output_folder, verify_bundle,
};
pub use cost::{Costs, costs, model_bytes};
pub use error::{Error, Result};
pub use eval::{ExtractOptions, Extracted, evaluate_plain, extract_and_evaluate, extract_folded};
pub use host::HostInfo;
pub use latency::{LatencyLut, LatencyValidation, OpKey, TimingOptions};
pub use pipeline::{PipelineOptions, PipelineSummary, TierRow, run_all, run_bundle, run_search};
pub use predictor::{AccuracyPredictor, PredictorReport, Sample, SamplingOptions, kendall_tau};
pub use search::{
    Candidate, SearchOptions, SearchResult, TierChoice, search, search_with_measured,
};
pub use spec::{TierConstraint, TierSpec, TierSpecFile};
