//! A catalog profile from a phone's spec: how a user adds a phone (`tierforge profile estimate SPEC.json`).
//!
//! A spec is a catalog profile without `measured`, `score` and `tier` (a full catalog file is accepted too: those
//! three are recomputed). Every cluster must name a known core type ([`crate::cores::CORE_TYPES`]) and a clock, and
//! the DRAM must be named: the figures come from the [latency model](crate::latency) and the DRAM's bandwidth.

use std::path::Path;

use serde::Deserialize;

use crate::catalog::{MEM_BW_EFFICIENCY, estimate_figures};
use crate::cores::{core_by_name, known_core_names};
use crate::error::{Error, Result};
use crate::latency::{CALIBRATION, core_model};
use crate::profile::{Cpu, DeviceProfile, Dram, FORMAT_VERSION, read_small_file};
use crate::score::{device_score, tier_class};

/// Highest clock a spec may give, MHz (no phone core runs above 5 GHz).
pub const MAX_SPEC_MHZ: u32 = 5000;
/// Most cores a spec's cluster may have.
pub const MAX_SPEC_CORES: u32 = 64;

/// A phone's spec, as written by a user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSpec {
    /// Must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Stable id: lowercase letters, digits and `-`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// System on chip.
    pub soc: String,
    /// Operating system and version.
    pub os: String,
    /// Android ABI of the userland.
    pub abi: String,
    /// CPU clusters (known core types, with clocks) and ISA features.
    pub cpu: Cpu,
    /// RAM as the OS reports it, bytes (a JSON number, so that a negative value gets an error naming it).
    pub ram_bytes: serde_json::Number,
    /// Marketed RAM variants, GB.
    #[serde(default)]
    pub ram_variants_gb: Vec<u32>,
    /// DRAM interface.
    pub dram: Dram,
    /// Free-form notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Assumptions of the spec's own facts (e.g. how `ram_bytes` was derived); the estimate adds its own.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Public sources of the facts.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Ignored (recomputed), so that a catalog file can be estimated again.
    #[serde(default)]
    pub measured: Option<serde_json::Value>,
    /// Ignored (recomputed).
    #[serde(default)]
    pub score: Option<serde_json::Value>,
    /// Ignored (recomputed).
    #[serde(default)]
    pub tier: Option<serde_json::Value>,
}

/// The source line every estimate names.
const MODEL_SOURCE: &str =
    "Latency model fitted on ncnn's and Paddle-Lite's public benchmark tables";

/// Prefixes of the assumption lines the estimate writes (and of older estimates' lines), which are replaced.
const MODEL_LINES: &[&str] = &[
    "Speed",
    "Multi-thread",
    "Bandwidth",
    "FP32 FLOP/cycle",
    "Peak =",
    "GEMM =",
    "Depthwise",
    "Memory bandwidth",
];

/// Parses a spec from JSON text and estimates its profile; `origin` prefixes every error.
///
/// # Errors
/// [`Error::Json`] for malformed JSON or unknown fields, [`Error::UnsupportedFormatVersion`],
/// [`Error::InvalidField`] naming the field for an unknown core type (listing the known ones), zero or too many
/// cores, a missing clock or one over [`MAX_SPEC_MHZ`], a RAM size that is not a positive whole number of bytes.
pub fn estimate_json_str(text: &str, origin: &str) -> Result<DeviceProfile> {
    let spec: PhoneSpec = serde_json::from_str(text).map_err(|source| Error::Json {
        origin: origin.to_string(),
        line: source.line(),
        column: source.column(),
        source,
    })?;
    estimate(spec, origin)
}

/// Reads a spec file (a regular file of at most [`crate::profile::MAX_PROFILE_BYTES`]) and estimates its profile.
///
/// # Errors
/// [`Error::Io`] when it cannot be read, else as [`estimate_json_str`] with the path as origin.
pub fn estimate_file(path: impl AsRef<Path>) -> Result<DeviceProfile> {
    let path = path.as_ref();
    let text = read_small_file(path)?;
    estimate_json_str(&text, &path.display().to_string())
}

/// Estimates the profile of a parsed spec.
///
/// # Errors
/// As [`estimate_json_str`].
pub fn estimate(spec: PhoneSpec, origin: &str) -> Result<DeviceProfile> {
    let bad = |field: String, reason: String| Error::InvalidField {
        origin: origin.to_string(),
        field,
        reason,
    };
    if spec.format_version != FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            origin: origin.to_string(),
            found: spec.format_version.to_string(),
            supported: FORMAT_VERSION,
        });
    }
    if spec.cpu.clusters.is_empty() {
        return Err(bad(
            "cpu.clusters".into(),
            "must list at least one cluster".into(),
        ));
    }
    for (i, c) in spec.cpu.clusters.iter().enumerate() {
        if core_by_name(&c.core).is_none() {
            return Err(bad(
                format!("cpu.clusters[{i}].core"),
                format!(
                    "unknown core type `{}`; an estimate needs one of: {}",
                    c.core,
                    known_core_names().join(", ")
                ),
            ));
        }
        if c.count == 0 || c.count > MAX_SPEC_CORES {
            return Err(bad(
                format!("cpu.clusters[{i}].count"),
                format!("{} cores is not in 1..={MAX_SPEC_CORES}", c.count),
            ));
        }
        match c.max_mhz {
            None => {
                return Err(bad(
                    format!("cpu.clusters[{i}].max_mhz"),
                    "an estimate needs the cluster's maximum clock in MHz".into(),
                ));
            }
            Some(mhz) if !(100..=MAX_SPEC_MHZ).contains(&mhz) => {
                return Err(bad(
                    format!("cpu.clusters[{i}].max_mhz"),
                    format!(
                        "{mhz} MHz is not in 100..={MAX_SPEC_MHZ} (no phone core runs above 5 GHz)"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let ram_bytes = spec.ram_bytes.as_u64().ok_or_else(|| {
        bad(
            "ram_bytes".into(),
            format!("{} is not a positive whole number of bytes", spec.ram_bytes),
        )
    })?;
    let d = &spec.dram;
    if d.transfer_mts == 0 || d.bus_bits == 0 || d.kind.trim().is_empty() {
        return Err(bad(
            "dram".into(),
            "kind must be named and transfer_mts, bus_bits must be positive".into(),
        ));
    }
    let measured = estimate_figures(&spec.cpu, d).ok_or_else(|| {
        bad(
            "cpu.clusters".into(),
            "every cluster needs a known core type and clock".into(),
        )
    })?;
    let score = device_score(&spec.cpu, &measured);
    let mut assumptions: Vec<String> = spec
        .assumptions
        .into_iter()
        .filter(|a| !MODEL_LINES.iter().any(|p| a.starts_with(p)))
        .collect();
    assumptions.extend(model_assumptions(&spec.cpu, d));
    let mut sources: Vec<String> = spec
        .sources
        .into_iter()
        .filter(|s| !s.starts_with("Arm Software Optimization Guides"))
        .collect();
    if !sources.iter().any(|s| s.starts_with(MODEL_SOURCE)) {
        sources.push(format!(
            "{MODEL_SOURCE} (device-profiles/data/public_latency/SOURCES.md)"
        ));
    }
    let profile = DeviceProfile {
        format_version: FORMAT_VERSION,
        id: spec.id,
        name: spec.name,
        soc: spec.soc,
        os: spec.os,
        abi: spec.abi,
        cpu: spec.cpu,
        ram_bytes: Some(ram_bytes),
        ram_variants_gb: spec.ram_variants_gb,
        dram: Some(spec.dram),
        measured,
        score,
        tier: tier_class(score, Some(ram_bytes)),
        notes: spec.notes,
        assumptions,
        sources,
    };
    profile.validate()?;
    Ok(profile)
}

/// The lines that say how an estimate was derived.
fn model_assumptions(cpu: &Cpu, dram: &Dram) -> Vec<String> {
    let mut out = Vec::new();
    for c in &cpu.clusters {
        if let (Some(m), Some(mhz)) = (core_model(&c.core), c.max_mhz) {
            out.push(format!(
                "Speed of one {} at {:.2} GHz = {:.4} per GHz x {:.2} GHz = {:.3} of one calibration-host core ({}; \
                 speed per GHz {}).",
                c.core,
                f64::from(mhz) / 1000.0,
                m.speed_per_ghz,
                f64::from(mhz) / 1000.0,
                m.speed_per_ghz * f64::from(mhz) / 1000.0,
                CALIBRATION.cpu,
                m.basis
            ));
        }
    }
    out.push(format!(
        "Speed = the fastest core's; single-thread GEMM and depthwise figures = calibration host's ({} and {} GFLOP/s) x \
         speed. Fitted on public ncnn fp32 measurements of MobileNet-class nets; see BENCHMARKS.md \"The device model\" \
         for the held-out error. Thermal throttling is not modelled.",
        CALIBRATION.gemm_gflops_1t, CALIBRATION.dwconv_gflops_1t
    ));
    out.push(format!(
        "Multi-thread GEMM = single-thread x {:.2} (Amdahl over {} cores, each at its speed over the fastest; informational: \
         the runtime chooses the threads of one image per variant).",
        crate::catalog::all_core_gemm_speedup(cpu),
        cpu.core_count()
    ));
    out.push(format!(
        "Bandwidth = {MEM_BW_EFFICIENCY} x theoretical {}-{} x {}-bit = {MEM_BW_EFFICIENCY} x {:.1} GB/s (informational).",
        dram.kind,
        dram.transfer_mts,
        dram.bus_bits,
        dram.theoretical_gbps()
    ));
    out
}
