//! Device profiles for tierforge: the profile schema, a probe (sysinfo + micro-benchmarks of at most ~20 ms), a
//! capability score and a catalog of real phones.
//!
//! - [`DeviceProfile`]: what a device is (SoC, CPU clusters, ISA, RAM) and how fast it is ([`Figures`]: FP32 GEMM on
//!   one and all threads, depthwise 3×3 convolution on one thread, memory read bandwidth), with its score and
//!   [`TierClass`]. Files carry a checked `format_version` and reject unknown fields ([`DeviceProfile::from_file`]).
//! - [`probe()`]: reads sysinfo, `/proc/cpuinfo`, `/proc/meminfo` and each `cpuN`'s `cpuinfo_max_freq`, maps ARM part
//!   ids to core names ([`cores`]), runs the micro-benchmarks ([`bench`](mod@bench)), and never fails: what it cannot read is
//!   recorded as unknown. Reads go through a [`SysReader`], so tests can deny `/proc` and `/sys`.
//! - [`latency`]: the one latency model: a device's one-core speed relative to the calibration host, from its core
//!   types and clocks (fitted on public measurements of real ARM devices) or from the probe's single-thread figures,
//!   and [`latency::predict_ms`], which every latency tierforge prints about a device goes through.
//! - [`score`]: the capability score (speed on the scale where one Cortex-A53 core at 2.0 GHz scores 100) and the
//!   tier class:
//!
//!   ```text
//!   tier  = min(class of score [120, 200, 350, 520], class of RAM [80% of 3, 4, 6, 8 GiB])
//!   ```
//! - [`catalog`]: 16 phones from the Galaxy A01 Core (4× A53, 2 GB) to the Xiaomi 14 (Snapdragon 8 Gen 3), compiled
//!   in ([`catalog::builtin`]) and loadable from `device-profiles/catalog/` ([`catalog::load_dir`]); their figures are
//!   estimates from the latency model ([`estimate`], `tierforge profile estimate SPEC.json`).
//! - [`Fingerprint`]: a stable hash of the hardware (no measured numbers) for caching decisions per device.
//!
//! ```
//! use device_profiles::{catalog, probe, ProbeOptions, TierClass};
//!
//! let phones = catalog::builtin()?;
//! let a03 = phones.iter().find(|p| p.id == "samsung-galaxy-a03-core").expect("in the catalog");
//! assert_eq!(a03.tier, TierClass::VeryLow);
//! assert_eq!(a03.big_core_count(), 8); // 8 × Cortex-A55: uniform
//! assert!(a03.memory_budget_bytes(0.25) < 600 << 20);
//!
//! let host = probe(&ProbeOptions { budget_ms: 10, ..ProbeOptions::default() });
//! assert!(host.measured.gemm_gflops_1t > 0.0);
//! assert_eq!(host.fingerprint(), probe(&ProbeOptions::default()).fingerprint());
//! # Ok::<(), device_profiles::Error>(())
//! ```
#![warn(missing_docs)]

pub mod bench;
pub mod catalog;
pub mod cores;
pub mod error;
pub mod estimate;
pub mod fingerprint;
pub mod latency;
pub mod probe;
pub mod profile;
pub mod score;
pub mod table;

pub use error::{Error, Result};
pub use fingerprint::Fingerprint;
pub use probe::{FsReader, ProbeOptions, SysReader, SystemFacts, probe, probe_with};
pub use profile::{
    Cpu, CpuCluster, DeviceProfile, Dram, FORMAT_VERSION, FigureSource, Figures, IsaFeature,
    TierClass,
};
pub use score::{capability_score, device_score, tier_class};
