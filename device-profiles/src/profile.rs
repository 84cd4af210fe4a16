//! The device profile: what a device is (CPU, RAM, ISA) and how fast it is (measured or estimated figures).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cores::{CoreClass, class_of, core_by_name, known_core_names, looks_like_core_type};
use crate::error::{Error, Result};
use crate::fingerprint::Fingerprint;
use crate::score::{device_score, tier_class};

/// The profile file format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// RAM assumed by [`DeviceProfile::memory_budget_bytes`] when the probe could not read it: 1 GiB, the low end.
pub const UNKNOWN_RAM_ASSUMED_BYTES: u64 = 1 << 30;

/// Relative tolerance between a stored score and the score recomputed from the stored figures.
pub const SCORE_TOLERANCE: f64 = 0.01;

/// A device profile, as stored in `device-profiles/catalog/*.json` and as returned by [`crate::probe()`].
///
/// Read files with [`DeviceProfile::from_file`] or [`DeviceProfile::from_json_str`], which check the
/// `format_version` first and then [`validate`](DeviceProfile::validate) the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Must equal [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Stable id: lowercase letters, digits and `-` (`samsung-galaxy-a03-core`; probed hosts: `host-<fingerprint>`).
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// System on chip (`Unisoc SC9863A`), or the CPU model on a PC; `unknown` when not found.
    pub soc: String,
    /// Operating system and version (`android 11 (go edition)`, `linux 6.8.0`).
    pub os: String,
    /// Android ABI of the userland (`arm64-v8a`, `armeabi-v7a`, `x86_64`).
    pub abi: String,
    /// CPU clusters and ISA features.
    pub cpu: Cpu,
    /// RAM as the OS reports it (`MemTotal`), bytes; `None` when unknown.
    pub ram_bytes: Option<u64>,
    /// Marketed RAM variants of the model, GB (catalog entries; `ram_bytes` is one of them as reported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ram_variants_gb: Vec<u32>,
    /// DRAM interface (catalog entries), from which the bandwidth estimate is derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dram: Option<Dram>,
    /// Performance figures, measured by the probe or estimated for catalog phones.
    pub measured: Figures,
    /// Capability score from [`crate::score::capability_score`]; must match `measured`.
    pub score: f64,
    /// Tier class from [`crate::score::tier_class`]; must match `score` and `ram_bytes`.
    pub tier: TierClass,
    /// Free-form notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// How estimated figures were derived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assumptions: Vec<String>,
    /// Public sources of the facts (spec pages, SoC lists).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// CPU description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Clusters, fastest first.
    pub clusters: Vec<CpuCluster>,
    /// ISA features that matter for inference kernels.
    pub isa: Vec<IsaFeature>,
}

impl Cpu {
    /// Total number of cores.
    pub fn core_count(&self) -> u32 {
        self.clusters.iter().map(|c| c.count).sum()
    }

    /// Theoretical FP32 peak of all cores, GFLOP/s (Σ count × GHz × FLOP/cycle); `None` when a cluster's core type
    /// or clock is unknown.
    pub fn peak_gflops(&self) -> Option<f64> {
        self.clusters.iter().map(CpuCluster::peak_gflops).sum()
    }

    /// Theoretical FP32 peak of the fastest single core, GFLOP/s; `None` when unknown.
    pub fn peak_gflops_1t(&self) -> Option<f64> {
        let per_core: Option<Vec<f64>> = self
            .clusters
            .iter()
            .map(|c| c.peak_gflops().map(|p| p / f64::from(c.count)))
            .collect();
        per_core?.into_iter().reduce(f64::max)
    }
}

/// The largest device profile file we read.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// Reads a profile or spec file: a regular file of at most [`MAX_PROFILE_BYTES`] (a FIFO or a
/// device cannot block the reader).
pub(crate) fn read_small_file(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() || meta.len() > MAX_PROFILE_BYTES {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "not a regular file of at most {MAX_PROFILE_BYTES} bytes (a folder, FIFO, \
                 device or a huge file); pass a device profile JSON file"
            ),
        )));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(io)?, MAX_PROFILE_BYTES),
        &mut text,
    )
    .map_err(io)?;
    Ok(text)
}

/// A group of identical cores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuCluster {
    /// Core type: `cortex-a53` … (see [`crate::cores::CORE_TYPES`]), an x86 model name, or `unknown`.
    pub core: String,
    /// Number of cores.
    pub count: u32,
    /// Maximum clock, MHz; `None` when unknown.
    pub max_mhz: Option<u32>,
}

impl CpuCluster {
    /// Theoretical FP32 peak of the cluster, GFLOP/s; `None` when the core type or clock is unknown.
    pub fn peak_gflops(&self) -> Option<f64> {
        let flop = core_by_name(&self.core)?.fp32_flop_per_cycle;
        Some(f64::from(self.count) * f64::from(self.max_mhz?) / 1000.0 * flop)
    }
}

/// DRAM interface of a phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dram {
    /// Memory type (`LPDDR4X`).
    pub kind: String,
    /// Transfer rate, MT/s (`3733` for LPDDR4X-3733).
    pub transfer_mts: u32,
    /// Total bus width, bits (`32` for 2 × 16-bit channels).
    pub bus_bits: u32,
}

impl Dram {
    /// Theoretical bandwidth, GB/s: MT/s × bus bytes.
    pub fn theoretical_gbps(&self) -> f64 {
        f64::from(self.transfer_mts) * f64::from(self.bus_bits) / 8.0 / 1000.0
    }
}

/// ISA features relevant to inference kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum IsaFeature {
    /// ARM Advanced SIMD (`asimd`).
    Neon,
    /// ARM int8 dot product (`asimddp`): A55/A75 and newer.
    Dotprod,
    /// ARM FP16 arithmetic (`asimdhp`): A55/A75 and newer.
    Fp16,
    /// ARM int8 matrix multiply (`i8mm`).
    I8mm,
    /// ARM BF16.
    Bf16,
    /// ARM scalable vectors.
    Sve,
    /// x86 SSE4.2.
    #[serde(rename = "sse4.2")]
    Sse42,
    /// x86 AVX.
    Avx,
    /// x86 AVX2.
    Avx2,
    /// x86 FMA3.
    Fma,
    /// x86 AVX-512 foundation.
    Avx512f,
    /// x86 AVX-512 VNNI (int8 dot product).
    Avx512vnni,
}

impl IsaFeature {
    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        match self {
            IsaFeature::Neon => "neon",
            IsaFeature::Dotprod => "dotprod",
            IsaFeature::Fp16 => "fp16",
            IsaFeature::I8mm => "i8mm",
            IsaFeature::Bf16 => "bf16",
            IsaFeature::Sve => "sve",
            IsaFeature::Sse42 => "sse4.2",
            IsaFeature::Avx => "avx",
            IsaFeature::Avx2 => "avx2",
            IsaFeature::Fma => "fma",
            IsaFeature::Avx512f => "avx512f",
            IsaFeature::Avx512vnni => "avx512vnni",
        }
    }
}

/// Performance figures of a device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// FP32 GEMM rate on one thread (the fastest core), GFLOP/s.
    pub gemm_gflops_1t: f64,
    /// FP32 GEMM rate on all `threads`, GFLOP/s.
    pub gemm_gflops_mt: f64,
    /// Depthwise 3×3 convolution rate on all `threads`, GFLOP/s.
    pub dwconv_gflops: f64,
    /// Memory read bandwidth on all `threads`, GB/s (10⁹ bytes per second).
    pub mem_bw_gbps: f64,
    /// Wall time of the micro-benchmarks, ms (0 for estimates).
    pub bench_ms: f64,
    /// Threads used for the multi-thread figures.
    pub threads: u32,
    /// Whether the figures were measured or estimated.
    pub source: FigureSource,
}

/// Where figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FigureSource {
    /// Measured by [`crate::probe()`] on the device.
    Measured,
    /// Estimated from public specifications (catalog phones).
    Estimated,
}

/// Device class, lowest to highest; ordered so `min` gives the weaker class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TierClass {
    /// 1–2 GB, 4–8 in-order cores.
    VeryLow,
    /// ~3 GB or weak CPU.
    Low,
    /// 4 GB, a pair of A75/A76-class cores.
    Mid,
    /// 6 GB, several A7x cores.
    High,
    /// 8 GB+, X-series cores.
    Flagship,
}

impl TierClass {
    /// The name used in profile files (`very-low` … `flagship`).
    pub fn as_str(self) -> &'static str {
        match self {
            TierClass::VeryLow => "very-low",
            TierClass::Low => "low",
            TierClass::Mid => "mid",
            TierClass::High => "high",
            TierClass::Flagship => "flagship",
        }
    }
}

impl std::fmt::Display for TierClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl DeviceProfile {
    /// Parses and validates a profile from JSON text; `origin` (a path or a label) prefixes every error.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON or a schema mismatch (the source names the field),
    /// [`Error::MissingFormatVersion`] / [`Error::UnsupportedFormatVersion`] before anything else is checked,
    /// [`Error::InvalidField`] when [`validate`](Self::validate) fails.
    pub fn from_json_str(text: &str, origin: &str) -> Result<Self> {
        let json_err = |source: serde_json::Error| Error::Json {
            origin: origin.to_string(),
            line: source.line(),
            column: source.column(),
            source,
        };
        // The version is checked first, so that a future file gets "unsupported version", not "unknown field".
        let value: serde_json::Value = serde_json::from_str(text).map_err(json_err)?;
        match value.get("format_version") {
            None => {
                return Err(Error::MissingFormatVersion {
                    origin: origin.to_string(),
                    supported: FORMAT_VERSION,
                });
            }
            Some(v) if v.as_u64() != Some(u64::from(FORMAT_VERSION)) => {
                return Err(Error::UnsupportedFormatVersion {
                    origin: origin.to_string(),
                    found: v.to_string(),
                    supported: FORMAT_VERSION,
                });
            }
            Some(_) => {}
        }
        // Parse the text again (not the Value) so errors carry line and column.
        let profile: DeviceProfile = serde_json::from_str(text).map_err(json_err)?;
        profile.validate_as(origin)?;
        Ok(profile)
    }

    /// Reads, parses and validates a profile file (a regular file of at most
    /// [`MAX_PROFILE_BYTES`]).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, otherwise as [`from_json_str`](Self::from_json_str) with the path
    /// as origin.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = read_small_file(path)?;
        Self::from_json_str(&text, &path.display().to_string())
    }

    /// Pretty JSON text of the profile.
    ///
    /// # Errors
    /// [`Error::Serialize`] (not expected for a validated profile).
    pub fn to_json_pretty(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| Error::Serialize {
            id: self.id.clone(),
            source,
        })
    }

    /// Checks every field: version, id syntax, non-empty clusters with positive counts, plausible clocks, finite and
    /// non-negative figures, and a `score` and `tier` that match the figures and RAM.
    ///
    /// # Errors
    /// [`Error::UnsupportedFormatVersion`] or [`Error::InvalidField`] naming the first bad field.
    pub fn validate(&self) -> Result<()> {
        self.validate_as(&format!("profile `{}`", self.id))
    }

    fn validate_as(&self, origin: &str) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(Error::InvalidField {
                origin: origin.to_string(),
                field: field.to_string(),
                reason,
            })
        };
        if self.format_version != FORMAT_VERSION {
            return Err(Error::UnsupportedFormatVersion {
                origin: origin.to_string(),
                found: self.format_version.to_string(),
                supported: FORMAT_VERSION,
            });
        }
        if self.id.is_empty()
            || !self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return bad(
                "id",
                format!(
                    "`{}` must be non-empty lowercase letters, digits and `-`",
                    self.id
                ),
            );
        }
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if self.cpu.clusters.is_empty() {
            return bad("cpu.clusters", "must list at least one cluster".into());
        }
        for (i, c) in self.cpu.clusters.iter().enumerate() {
            if c.core.trim().is_empty() {
                return bad(
                    &format!("cpu.clusters[{i}].core"),
                    "must not be empty (use `unknown`)".into(),
                );
            }
            if c.core != "unknown"
                && looks_like_core_type(&c.core)
                && core_by_name(&c.core).is_none()
            {
                return bad(
                    &format!("cpu.clusters[{i}].core"),
                    format!(
                        "unknown core type `{}`; use one of {}, `unknown`, or the CPU's model \
                         name as /proc/cpuinfo gives it",
                        c.core,
                        known_core_names().join(", ")
                    ),
                );
            }
            if c.count == 0 || c.count > 1024 {
                return bad(
                    &format!("cpu.clusters[{i}].count"),
                    format!("{} is not in 1..=1024", c.count),
                );
            }
            if let Some(mhz) = c.max_mhz
                && !(100..=10_000).contains(&mhz)
            {
                return bad(
                    &format!("cpu.clusters[{i}].max_mhz"),
                    format!("{mhz} MHz is not in 100..=10000"),
                );
            }
        }
        if let Some(d) = &self.dram
            && (d.transfer_mts == 0 || d.bus_bits == 0 || d.kind.trim().is_empty())
        {
            return bad(
                "dram",
                "kind must be named and transfer_mts, bus_bits must be positive".into(),
            );
        }
        if let Some(ram) = self.ram_bytes
            && ram < (64 << 20)
        {
            return bad("ram_bytes", format!("{ram} bytes is below 64 MiB"));
        }
        let m = &self.measured;
        for (field, v) in [
            ("measured.gemm_gflops_1t", m.gemm_gflops_1t),
            ("measured.gemm_gflops_mt", m.gemm_gflops_mt),
            ("measured.dwconv_gflops", m.dwconv_gflops),
            ("measured.mem_bw_gbps", m.mem_bw_gbps),
            ("measured.bench_ms", m.bench_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, format!("{v} must be finite and >= 0"));
            }
        }
        if m.threads == 0 {
            return bad("measured.threads", "must be at least 1".into());
        }
        let want = device_score(&self.cpu, m);
        if !self.score.is_finite() || (self.score - want).abs() > SCORE_TOLERANCE * want {
            return bad(
                "score",
                format!(
                    "{} does not match the score the latency model gives this CPU and `measured`, {want:.1} \
                     (regenerate it with `tierforge profile estimate`)",
                    self.score
                ),
            );
        }
        let want_tier = tier_class(self.score, self.ram_bytes);
        if self.tier != want_tier {
            return bad(
                "tier",
                format!(
                    "`{}` does not match score and RAM, which give `{want_tier}`",
                    self.tier
                ),
            );
        }
        Ok(())
    }

    /// Total number of cores.
    pub fn core_count(&self) -> u32 {
        self.cpu.core_count()
    }

    /// Cores of the fastest cluster type(s): all cores that are not little (in-order) cores when the CPU mixes both;
    /// all cores on a uniform CPU. When core types are unknown, clusters clocked at ≥ 75% of the fastest count.
    pub fn big_core_count(&self) -> u32 {
        let clusters = &self.cpu.clusters;
        let known = clusters.iter().all(|c| core_by_name(&c.core).is_some());
        let big: u32 = clusters
            .iter()
            .filter(|c| class_of(&c.core) == Some(CoreClass::Big))
            .map(|c| c.count)
            .sum();
        if big > 0 {
            // unknown cores beside known big ones are not counted as big
            return big;
        }
        if known {
            return self.core_count();
        }
        match clusters.iter().filter_map(|c| c.max_mhz).max() {
            Some(top) if clusters.iter().all(|c| c.max_mhz.is_some()) => clusters
                .iter()
                .filter(|c| {
                    c.max_mhz
                        .is_some_and(|m| f64::from(m) >= 0.75 * f64::from(top))
                })
                .map(|c| c.count)
                .sum(),
            _ => self.core_count(),
        }
    }

    /// Bytes the app may use: `fraction` (clamped to 0..=1) of the reported RAM, or of
    /// [`UNKNOWN_RAM_ASSUMED_BYTES`] when the RAM is unknown.
    pub fn memory_budget_bytes(&self, fraction: f64) -> u64 {
        let ram = self.ram_bytes.unwrap_or(UNKNOWN_RAM_ASSUMED_BYTES) as f64;
        let f = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        (ram * f) as u64
    }

    /// Theoretical FP32 peak of all cores, GFLOP/s; see [`Cpu::peak_gflops`].
    pub fn peak_gflops(&self) -> Option<f64> {
        self.cpu.peak_gflops()
    }

    /// Theoretical FP32 peak of the fastest core, GFLOP/s; see [`Cpu::peak_gflops_1t`].
    pub fn peak_gflops_1t(&self) -> Option<f64> {
        self.cpu.peak_gflops_1t()
    }

    /// Stable hardware fingerprint (see [`Fingerprint`]).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> DeviceProfile {
        let measured = Figures {
            gemm_gflops_1t: 5.0,
            gemm_gflops_mt: 18.0,
            dwconv_gflops: 3.0,
            mem_bw_gbps: 3.0,
            bench_ms: 0.0,
            threads: 8,
            source: FigureSource::Estimated,
        };
        let cpu = Cpu {
            clusters: vec![
                CpuCluster {
                    core: "cortex-a75".into(),
                    count: 2,
                    max_mhz: Some(2000),
                },
                CpuCluster {
                    core: "cortex-a55".into(),
                    count: 6,
                    max_mhz: Some(1800),
                },
            ],
            isa: vec![IsaFeature::Neon, IsaFeature::Dotprod],
        };
        let score = device_score(&cpu, &measured);
        DeviceProfile {
            format_version: FORMAT_VERSION,
            id: "test-phone".into(),
            name: "Test phone".into(),
            soc: "Test SoC".into(),
            os: "android 13".into(),
            abi: "arm64-v8a".into(),
            cpu,
            ram_bytes: Some(3_600_000_000),
            ram_variants_gb: vec![4],
            dram: None,
            measured,
            score,
            tier: tier_class(score, Some(3_600_000_000)),
            notes: None,
            assumptions: vec![],
            sources: vec![],
        }
    }

    #[test]
    fn helpers_on_a_big_little_phone() {
        let p = sample();
        assert_eq!(p.core_count(), 8);
        assert_eq!(p.big_core_count(), 2);
        // 2 × 2.0 × 8 + 6 × 1.8 × 8
        assert!((p.peak_gflops().unwrap_or(0.0) - 118.4).abs() < 1e-9);
        assert!((p.peak_gflops_1t().unwrap_or(0.0) - 16.0).abs() < 1e-9);
        assert_eq!(p.memory_budget_bytes(0.5), 1_800_000_000);
        assert_eq!(p.memory_budget_bytes(7.0), 3_600_000_000);
    }

    #[test]
    fn big_cores_of_uniform_and_unknown_cpus() {
        let mut p = sample();
        p.cpu.clusters = vec![
            CpuCluster {
                core: "cortex-a55".into(),
                count: 4,
                max_mhz: Some(1600),
            },
            CpuCluster {
                core: "cortex-a55".into(),
                count: 4,
                max_mhz: Some(1200),
            },
        ];
        assert_eq!(p.big_core_count(), 8);
        p.cpu.clusters = vec![
            CpuCluster {
                core: "unknown".into(),
                count: 2,
                max_mhz: Some(3000),
            },
            CpuCluster {
                core: "unknown".into(),
                count: 4,
                max_mhz: Some(1800),
            },
        ];
        assert_eq!(p.big_core_count(), 2);
        p.cpu.clusters[1].max_mhz = None;
        assert_eq!(p.big_core_count(), 6);
        assert_eq!(p.peak_gflops(), None);
        p.ram_bytes = None;
        assert_eq!(p.memory_budget_bytes(0.25), UNKNOWN_RAM_ASSUMED_BYTES / 4);
    }

    #[test]
    fn validate_rejects_inconsistent_score_and_bad_counts() {
        let p = sample();
        assert!(p.validate().is_ok());
        let mut q = p.clone();
        q.score *= 1.5;
        let e = q.validate().map(|_| ()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidField { field, .. } if field == "score"),
            "{e}"
        );
        let mut q = p.clone();
        q.cpu.clusters[1].count = 0;
        let e = q.validate().unwrap_err().to_string();
        assert!(e.contains("cpu.clusters[1].count"), "{e}");
        let mut q = p.clone();
        q.tier = TierClass::Flagship;
        assert!(q.validate().unwrap_err().to_string().contains("`tier`"));
        let mut q = p;
        q.id = "Has Space".into();
        assert!(q.validate().unwrap_err().to_string().contains("`id`"));
    }

    #[test]
    fn json_round_trip() {
        let p = sample();
        let text = p.to_json_pretty().unwrap();
        assert!(
            text.contains(&format!("\"tier\": \"{}\"", p.tier)),
            "{text}"
        );
        let back = DeviceProfile::from_json_str(&text, "round-trip").unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn fingerprint_ignores_figures_and_tracks_hardware() {
        let p = sample();
        let mut q = p.clone();
        q.measured.gemm_gflops_mt *= 2.0;
        q.name = "renamed".into();
        q.os = "android 14".into();
        q.ram_bytes = Some(3_600_000_000 - (50 << 20)); // same 256 MiB bucket (13.41 → 13.22)
        assert_eq!(p.fingerprint(), q.fingerprint());
        let mut r = p.clone();
        r.cpu.clusters[1].count = 4;
        assert_ne!(p.fingerprint(), r.fingerprint());
        let mut r = p.clone();
        r.ram_bytes = Some(5_400_000_000);
        assert_ne!(p.fingerprint(), r.fingerprint());
        let mut r = p.clone();
        r.cpu.clusters[0].core = "cortex-a76".into();
        assert_ne!(p.fingerprint(), r.fingerprint());
    }
}
