//! # runtime
//!
//! The on-device half of tierforge: the tiered bundle format (read, write atomically, verify),
//! the selector that picks a variant for a device, the decision cache, and loading with
//! fallback.
//!
//! A bundle is a folder with `manifest.json` ([`ManifestFile`], validated into [`Manifest`]) and
//! one weights file per variant, each with its sha256. On first launch an app opens the bundle,
//! describes the device ([`DeviceFacts`]), and calls [`choose_and_load`], which uses a cached
//! decision when it is still valid, else [`select()`]s the most accurate variant that fits the
//! latency and memory budgets, verifies its file, loads it, steps down on failure, and persists
//! the result.
//!
//! An app does all of that in one call with [`Launcher`]: the device is probed once (≤ 20 ms)
//! and its facts cached by a hardware fingerprint read cheaply from `/proc` and `/sys`, so a
//! warm launch runs no benchmark; [`Launch::predict`] watches the first latencies and steps
//! down when they run over budget; the [`LaunchReport`] says what happened and how long each
//! step took. [`eval::accuracy`] measures a [`Session`]'s accuracy through the same
//! preprocessing an app uses.
//!
//! ```
//! use runtime::{
//!     ArchConfig, BUNDLE_FORMAT_VERSION, Bundle, BundleWriter, DecisionCache, DeviceFacts, Dtype,
//!     Family, ManifestFile, Policy, Reference, SearchSpace, Variant, choose_and_load,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let space = SearchSpace::tiny(1, 2, 16);
//! let variant = |id: &str, arch: ArchConfig, latency_ms: f64, acc: f64| Variant {
//!     id: id.into(),
//!     resolution: arch.resolution,
//!     arch,
//!     params: 1_000,
//!     macs: (latency_ms * 1e6) as u64,
//!     model_bytes: 0, // filled in by the writer
//!     dtype: Dtype::F32,
//!     peak_activation_bytes: 4_096,
//!     test_accuracy: Some(acc),
//!     predicted_accuracy: None,
//!     latency_ms,
//!     latency_by_threads: vec![],
//!     file: format!("{id}.safetensors"),
//!     sha256: String::new(), // filled in by the writer
//! };
//! let header = ManifestFile {
//!     format_version: BUNDLE_FORMAT_VERSION,
//!     bundle_id: "demo".into(),
//!     bundle_version: "1".into(),
//!     created_by: "doc example".into(),
//!     family: Family {
//!         name: "tiny".into(),
//!         labels: vec!["no".into(), "yes".into()],
//!         in_channels: 1,
//!         image_size: 16,
//!         mean: vec![0.5],
//!         std: vec![0.25],
//!         search_space: space.clone(),
//!     },
//!     reference: Reference { profile_id: "host".into(), score: 100.0 },
//!     default_latency_budget_ms: 10.0,
//!     variants: vec![],
//!     tiers: vec![],
//! };
//! let tmp = tempfile::tempdir()?;
//! let mut writer = BundleWriter::new(header);
//! writer.add_variant(variant("large", ArchConfig::max(&space), 4.0, 0.9), b"large weights".to_vec());
//! writer.add_variant(variant("small", ArchConfig::min(&space), 1.0, 0.8), b"small weights".to_vec());
//! writer.write(&tmp.path().join("bundle"))?;
//!
//! // On the phone: a device 8× slower than the reference gets the small variant.
//! let bundle = Bundle::open(tmp.path().join("bundle"))?;
//! let phone = DeviceFacts {
//!     id: "phone".into(),
//!     name: "Some phone".into(),
//!     fingerprint: device_profiles::Fingerprint::from_u64(0x50c4),
//!     score: 12.5,
//!     ram_bytes: Some(4 << 30),
//!     big_cores: 2,
//! };
//! let cache = DecisionCache::new(tmp.path().join("app-data"));
//! let loaded = choose_and_load(&bundle, &phone, &Policy::default(), &cache, |_, bytes| {
//!     Ok(bytes.len()) // a real app builds its network here
//! })?;
//! assert_eq!(loaded.variant.id, "small");
//! println!("{}", loaded.decision); // one line per rejected variant
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod bundle;
pub mod cache;
pub mod device;
pub mod device_cache;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fallback;
pub mod ffi;
pub mod launch;
pub mod manifest;
pub mod select;
pub mod session;

pub use bundle::{Bundle, BundleWriter, Problem, VariantCheck, VerifyReport};
pub use cache::{
    CACHE_FILE_NAME, CACHE_FORMAT_VERSION, CacheKey, CacheLookup, CachedDecision, DecisionCache,
    StepDown, StepDownReason,
};
pub use device::{DeviceFacts, UNKNOWN_RAM_ASSUMED_BYTES};
pub use device_cache::{
    CachedDevice, DEVICE_CACHE_FILE_NAME, DEVICE_CACHE_FORMAT_VERSION, DeviceCache, DeviceLookup,
    hardware_fingerprint,
};
pub use error::{Error, Result};
pub use fallback::{
    AdaptiveLatency, FallbackEvent, LatencyVerdict, Loaded, Plan, choose_and_load, load_planned,
    plan, step_down_slow,
};
pub use launch::{
    CacheStatus, Launch, LaunchOptions, LaunchReport, LaunchTimings, Launcher, set_threads,
    threads_in_force,
};
pub use manifest::{
    BUNDLE_FORMAT_VERSION, Dtype, Family, MANIFEST_FILE_NAME, Manifest, ManifestFile, Reference,
    ThreadLatency, Tier, Variant, check_file_name,
};
pub use netspec::{ArchConfig, FoldedNet, SearchSpace};
pub use select::{
    AccuracySource, Decision, MAX_INFERENCE_THREADS, MIN_THREAD_GAIN, Policy,
    RUNTIME_OVERHEAD_BYTES, RejectReason, Rejection, inference_threads, memory_need_bytes,
    next_smaller, predicted_latency_ms, predicted_latency_ms_at, select, select_excluding,
    shortfall, size_order, smaller_than,
};
pub use session::{ImageRef, Prediction, Session, load_net};
