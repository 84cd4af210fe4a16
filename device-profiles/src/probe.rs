//! The probe: reads what the OS shows about the CPU and RAM, runs the micro-benchmarks, and builds a
//! [`DeviceProfile`]. It never fails: a missing or denied signal is recorded as unknown (`None`, `"unknown"`).

use std::collections::BTreeMap;
use std::path::Path;

use crate::bench;
use crate::cores::{CoreClass, class_of, core_by_name, core_by_part};
use crate::profile::{
    Cpu, CpuCluster, DeviceProfile, FORMAT_VERSION, FigureSource, Figures, IsaFeature,
};
use crate::score::{device_score, tier_class};

/// Default micro-benchmark budget, ms.
pub const DEFAULT_BUDGET_MS: u32 = 20;

/// Options of [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Time budget of the whole probe, ms: the micro-benchmarks get what reading the system leaves (it usually takes
    /// well under a millisecond). Phases may overrun slightly on a loaded device.
    pub budget_ms: u32,
    /// Threads of the multi-thread benchmarks (GEMM and bandwidth, reported for information);
    /// `None`: one thread (the score is one core's speed). The score uses only the single-thread
    /// figures, whatever this is.
    pub threads: Option<usize>,
    /// What each phase reports ([`bench::Statistic::Fastest`] by default; QA's CPU-quota
    /// emulation asks for [`bench::Statistic::Throughput`]).
    pub statistic: bench::Statistic,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            budget_ms: DEFAULT_BUDGET_MS,
            threads: None,
            statistic: bench::Statistic::default(),
        }
    }
}

/// Facts from the `sysinfo` crate (which reads the OS on its own, not through [`SysReader::read_to_string`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemFacts {
    /// Total RAM, bytes.
    pub total_memory_bytes: Option<u64>,
    /// Logical CPUs.
    pub cpu_count: Option<usize>,
    /// CPU brand string (x86 model name).
    pub cpu_brand: Option<String>,
    /// Kernel version.
    pub kernel_version: Option<String>,
}

impl SystemFacts {
    /// Asks `sysinfo` for RAM and CPU facts; anything it cannot tell is `None`.
    pub fn from_sysinfo() -> Self {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_memory(MemoryRefreshKind::nothing().with_ram())
                .with_cpu(CpuRefreshKind::nothing()),
        );
        let cpus = sys.cpus();
        SystemFacts {
            total_memory_bytes: Some(sys.total_memory()).filter(|m| *m > 0),
            cpu_count: Some(cpus.len()).filter(|n| *n > 0),
            cpu_brand: cpus
                .first()
                .map(|c| c.brand().trim().to_string())
                .filter(|b| !b.is_empty()),
            kernel_version: System::kernel_version(),
        }
    }
}

/// Where the probe reads the system from. Tests inject readers that deny some or all paths.
pub trait SysReader {
    /// Contents of a file under `/proc` or `/sys`; `None` when it is missing or cannot be read.
    fn read_to_string(&self, path: &Path) -> Option<String>;

    /// Facts from `sysinfo`; the default asks the real system.
    fn system_facts(&self) -> SystemFacts {
        SystemFacts::from_sysinfo()
    }
}

/// Reads the real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsReader;

impl SysReader for FsReader {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Probes this device with the real file system.
pub fn probe(options: &ProbeOptions) -> DeviceProfile {
    probe_with(options, &FsReader)
}

/// Probes this device, reading `/proc` and `/sys` through `reader`. Never fails.
pub fn probe_with(options: &ProbeOptions, reader: &dyn SysReader) -> DeviceProfile {
    let start = std::time::Instant::now();
    let hw = read_hardware(reader);
    let threads = options.threads.unwrap_or(1).max(1);
    // The budget covers the whole probe: the benchmarks get what the reads above left.
    let budget = std::time::Duration::from_millis(u64::from(options.budget_ms))
        .saturating_sub(start.elapsed());
    let r = bench::run_with(budget, threads, options.statistic);
    let measured = Figures {
        gemm_gflops_1t: r.gemm_gflops_1t,
        gemm_gflops_mt: r.gemm_gflops_mt,
        dwconv_gflops: r.dwconv_gflops,
        mem_bw_gbps: r.mem_bw_gbps,
        bench_ms: r.bench_ms,
        threads: u32::try_from(r.threads).unwrap_or(u32::MAX),
        source: FigureSource::Measured,
    };
    let mut profile = profile_from_hardware(hw, measured);
    profile.id = format!("host-{}", profile.fingerprint());
    profile
}

/// A profile of this device from hardware facts and figures (score and tier derived from them);
/// its `id` is left empty. With zeroed figures it still has the device's fingerprint, which
/// depends on the hardware only: the runtime uses that to recognise a device without measuring.
pub fn profile_from_hardware(hw: Hardware, measured: Figures) -> DeviceProfile {
    let cpu = Cpu {
        clusters: hw.clusters,
        isa: hw.isa,
    };
    let score = device_score(&cpu, &measured);
    DeviceProfile {
        format_version: FORMAT_VERSION,
        id: String::new(),
        name: hw.name,
        soc: hw.soc,
        os: hw.os,
        abi: abi().to_string(),
        cpu,
        ram_bytes: hw.ram_bytes,
        ram_variants_gb: Vec::new(),
        dram: None,
        measured,
        score,
        tier: tier_class(score, hw.ram_bytes),
        notes: None,
        assumptions: Vec::new(),
        sources: Vec::new(),
    }
}

/// The Android ABI name of the target this crate was compiled for.
pub fn abi() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64-v8a",
        "arm" => "armeabi-v7a",
        "x86_64" => "x86_64",
        "x86" => "x86",
        other => other,
    }
}

/// What the probe learns without benchmarking.
#[derive(Debug, Clone, PartialEq)]
pub struct Hardware {
    /// Device name.
    pub name: String,
    /// SoC or CPU model.
    pub soc: String,
    /// OS and kernel.
    pub os: String,
    /// Logical CPUs found.
    pub cpu_count: usize,
    /// Clusters, fastest first.
    pub clusters: Vec<CpuCluster>,
    /// ISA features.
    pub isa: Vec<IsaFeature>,
    /// RAM, bytes.
    pub ram_bytes: Option<u64>,
}

/// Reads CPU, RAM and naming facts through `reader` (no benchmark). Never fails.
pub fn read_hardware(reader: &dyn SysReader) -> Hardware {
    let read = |p: &str| {
        reader
            .read_to_string(Path::new(p))
            .map(|s| s.trim_matches(['\0', '\n', ' ']).to_string())
    };
    let facts = reader.system_facts();
    let cpuinfo = CpuInfo::parse(&read("/proc/cpuinfo").unwrap_or_default());

    // Probe every cpuN individually: listing /sys/devices/system/cpu may be denied, and offline cores are missing
    // from /proc/cpuinfo.
    let present = read("/sys/devices/system/cpu/present")
        .and_then(|s| max_in_cpu_list(&s))
        .map(|m| m + 1);
    let cpu_count = [
        present,
        cpuinfo.blocks.keys().next_back().map(|m| m + 1),
        facts.cpu_count,
        std::thread::available_parallelism().ok().map(|n| n.get()),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(1)
    .clamp(1, 1024);

    let mut per_cpu: Vec<(String, Option<u32>)> = Vec::with_capacity(cpu_count);
    for n in 0..cpu_count {
        let block = cpuinfo.blocks.get(&n);
        let arm = block
            .and_then(|b| {
                Some((
                    parse_hex(b.get("CPU implementer")?)?,
                    parse_hex(b.get("CPU part")?)?,
                ))
            })
            .or_else(|| {
                read(&format!(
                    "/sys/devices/system/cpu/cpu{n}/regs/identification/midr_el1"
                ))
                .and_then(midr)
            });
        let core = match arm {
            Some((imp, part)) => core_by_part(imp, part)
                .map_or_else(|| format!("arm-{imp:#x}-{part:#x}"), |c| c.name.to_string()),
            None => block
                .and_then(|b| b.get("model name"))
                .cloned()
                .or_else(|| cpuinfo.global("model name"))
                .or_else(|| facts.cpu_brand.clone())
                .unwrap_or_else(|| "unknown".to_string()),
        };
        let max_mhz = read(&format!(
            "/sys/devices/system/cpu/cpu{n}/cpufreq/cpuinfo_max_freq"
        ))
        .and_then(|s| s.parse::<u64>().ok())
        .and_then(|khz| u32::try_from(khz / 1000).ok())
        .filter(|mhz| (100..=10_000).contains(mhz));
        per_cpu.push((core, max_mhz));
    }
    let clusters = group_clusters(&per_cpu);

    let ram_bytes = read("/proc/meminfo")
        .and_then(|s| parse_meminfo_total(&s))
        .or(facts.total_memory_bytes)
        .filter(|r| *r >= (64 << 20));

    let soc = cpuinfo
        .global("Hardware")
        .or_else(|| read("/sys/devices/soc0/machine"))
        .or_else(|| cpuinfo.global("model name"))
        .or_else(|| facts.cpu_brand.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    let name = read("/sys/devices/virtual/dmi/id/product_name")
        .or_else(|| read("/proc/device-tree/model"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if soc == "unknown" {
                "unknown device".to_string()
            } else {
                format!("host ({soc})")
            }
        });
    let kernel = read("/proc/sys/kernel/osrelease").or_else(|| facts.kernel_version.clone());
    let os = format!(
        "{} {}",
        std::env::consts::OS,
        kernel.as_deref().unwrap_or("(kernel unknown)")
    );

    Hardware {
        name,
        soc,
        os,
        cpu_count,
        clusters,
        isa: isa_features(&cpuinfo),
        ram_bytes,
    }
}

/// `/proc/cpuinfo`, split into per-processor blocks plus the lines outside any block.
#[derive(Debug, Default)]
struct CpuInfo {
    blocks: BTreeMap<usize, BTreeMap<String, String>>,
    other: BTreeMap<String, String>,
}

impl CpuInfo {
    fn parse(text: &str) -> Self {
        let mut info = CpuInfo::default();
        let mut current: Option<usize> = None;
        for line in text.lines() {
            if line.trim().is_empty() {
                current = None;
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k == "processor"
                && let Ok(n) = v.parse::<usize>()
            {
                current = Some(n);
                info.blocks.entry(n).or_default();
                continue;
            }
            match current.and_then(|n| info.blocks.get_mut(&n)) {
                Some(block) => {
                    block.entry(k).or_insert(v);
                }
                None => {
                    info.other.entry(k).or_insert(v);
                }
            }
        }
        info
    }

    /// A key from outside the blocks, else from the first block that has it.
    fn global(&self, key: &str) -> Option<String> {
        self.other
            .get(key)
            .or_else(|| self.blocks.values().find_map(|b| b.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    }
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()
}

/// (implementer, part) from an ARM MIDR_EL1 value (`0x00000000410fd034`).
fn midr(s: String) -> Option<(u32, u32)> {
    let v = u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok()?;
    Some((((v >> 24) & 0xff) as u32, ((v >> 4) & 0xfff) as u32))
}

/// Largest cpu index in a kernel cpu list (`0-3,6,8-9`).
fn max_in_cpu_list(s: &str) -> Option<usize> {
    s.split(',')
        .filter_map(|part| part.rsplit('-').next()?.trim().parse::<usize>().ok())
        .max()
}

fn parse_meminfo_total(s: &str) -> Option<u64> {
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Groups cpus with the same core type and clock; fastest first (big before little, higher FLOP/cycle, higher clock).
fn group_clusters(per_cpu: &[(String, Option<u32>)]) -> Vec<CpuCluster> {
    let mut clusters: Vec<CpuCluster> = Vec::new();
    for (core, mhz) in per_cpu {
        match clusters
            .iter_mut()
            .find(|c| &c.core == core && c.max_mhz == *mhz)
        {
            Some(c) => c.count += 1,
            None => clusters.push(CpuCluster {
                core: core.clone(),
                count: 1,
                max_mhz: *mhz,
            }),
        }
    }
    clusters.sort_by(|a, b| {
        let key = |c: &CpuCluster| {
            let flop = core_by_name(&c.core).map_or(0.0, |t| t.fp32_flop_per_cycle);
            (
                class_of(&c.core) == Some(CoreClass::Big),
                flop,
                c.max_mhz.unwrap_or(0),
            )
        };
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then(kb.1.total_cmp(&ka.1))
            .then(kb.2.cmp(&ka.2))
    });
    clusters
}

fn isa_features(cpuinfo: &CpuInfo) -> Vec<IsaFeature> {
    let mut isa = Vec::new();
    for key in ["Features", "flags"] {
        for token in cpuinfo.global(key).unwrap_or_default().split_whitespace() {
            let f = match token {
                "asimd" | "neon" => IsaFeature::Neon,
                "asimddp" => IsaFeature::Dotprod,
                "asimdhp" => IsaFeature::Fp16,
                "i8mm" => IsaFeature::I8mm,
                "bf16" => IsaFeature::Bf16,
                "sve" => IsaFeature::Sve,
                "sse4_2" => IsaFeature::Sse42,
                "avx" => IsaFeature::Avx,
                "avx2" => IsaFeature::Avx2,
                "fma" => IsaFeature::Fma,
                "avx512f" => IsaFeature::Avx512f,
                "avx512_vnni" => IsaFeature::Avx512vnni,
                _ => continue,
            };
            isa.push(f);
        }
    }
    isa.extend(detected_isa());
    isa.sort_unstable();
    isa.dedup();
    isa
}

/// Features the CPU reports directly (CPUID / HWCAP), independent of `/proc`.
#[cfg(target_arch = "x86_64")]
fn detected_isa() -> Vec<IsaFeature> {
    let mut v = Vec::new();
    if std::is_x86_feature_detected!("sse4.2") {
        v.push(IsaFeature::Sse42);
    }
    if std::is_x86_feature_detected!("avx") {
        v.push(IsaFeature::Avx);
    }
    if std::is_x86_feature_detected!("avx2") {
        v.push(IsaFeature::Avx2);
    }
    if std::is_x86_feature_detected!("fma") {
        v.push(IsaFeature::Fma);
    }
    if std::is_x86_feature_detected!("avx512f") {
        v.push(IsaFeature::Avx512f);
    }
    if std::is_x86_feature_detected!("avx512vnni") {
        v.push(IsaFeature::Avx512vnni);
    }
    v
}

/// Features the CPU reports directly (HWCAP), independent of `/proc`.
#[cfg(target_arch = "aarch64")]
fn detected_isa() -> Vec<IsaFeature> {
    let mut v = vec![IsaFeature::Neon];
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        v.push(IsaFeature::Dotprod);
    }
    if std::arch::is_aarch64_feature_detected!("fp16") {
        v.push(IsaFeature::Fp16);
    }
    if std::arch::is_aarch64_feature_detected!("i8mm") {
        v.push(IsaFeature::I8mm);
    }
    if std::arch::is_aarch64_feature_detected!("bf16") {
        v.push(IsaFeature::Bf16);
    }
    if std::arch::is_aarch64_feature_detected!("sve") {
        v.push(IsaFeature::Sve);
    }
    v
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detected_isa() -> Vec<IsaFeature> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A fake `/proc` + `/sys`: only the listed paths exist; sysinfo reports nothing.
    struct FakeReader(HashMap<&'static str, String>);

    impl SysReader for FakeReader {
        fn read_to_string(&self, path: &Path) -> Option<String> {
            path.to_str().and_then(|p| self.0.get(p).cloned())
        }
        fn system_facts(&self) -> SystemFacts {
            SystemFacts::default()
        }
    }

    fn arm_block(n: usize, part: &str) -> String {
        format!(
            "processor\t: {n}\nBogoMIPS\t: 52.00\nFeatures\t: fp asimd evtstrm aes crc32 atomics fphp asimdhp asimddp\n\
             CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: {part}\nCPU revision\t: 0\n\n"
        )
    }

    /// A Helio-G85-like phone: cpu0-5 A55 @ 1.8 GHz, cpu6-7 A75 @ 2.0 GHz; cpu7 is offline (not in cpuinfo) but
    /// its MIDR and clock are readable.
    fn fake_phone() -> FakeReader {
        let mut cpuinfo = String::new();
        for n in 0..7 {
            cpuinfo += &arm_block(n, if n < 6 { "0xd05" } else { "0xd0a" });
        }
        cpuinfo += "Hardware\t: MT6769V/CZ\n";
        let mut m = HashMap::new();
        m.insert("/proc/cpuinfo", cpuinfo);
        m.insert(
            "/proc/meminfo",
            "MemTotal:        3795424 kB\nMemFree:  100 kB\n".to_string(),
        );
        m.insert("/sys/devices/system/cpu/present", "0-7\n".to_string());
        m.insert(
            "/sys/devices/system/cpu/cpu7/regs/identification/midr_el1",
            "0x00000000412fd0a1\n".into(),
        );
        m.insert("/proc/device-tree/model", "MT6769V/CZ\0".to_string());
        let paths: [&'static str; 8] = [
            "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu1/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu2/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu3/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu4/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu5/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu6/cpufreq/cpuinfo_max_freq",
            "/sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq",
        ];
        for (n, p) in paths.into_iter().enumerate() {
            m.insert(p, if n < 6 { "1800000\n" } else { "2000000\n" }.to_string());
        }
        FakeReader(m)
    }

    #[test]
    fn reads_clusters_of_a_big_little_phone() {
        let hw = read_hardware(&fake_phone());
        assert!(hw.cpu_count >= 8);
        let a75 = CpuCluster {
            core: "cortex-a75".into(),
            count: 2,
            max_mhz: Some(2000),
        };
        let a55 = CpuCluster {
            core: "cortex-a55".into(),
            count: 6,
            max_mhz: Some(1800),
        };
        assert_eq!(hw.clusters[..2], [a75, a55]);
        assert_eq!(hw.soc, "MT6769V/CZ");
        assert_eq!(hw.ram_bytes, Some(3_795_424 * 1024));
        for f in [IsaFeature::Neon, IsaFeature::Dotprod, IsaFeature::Fp16] {
            assert!(hw.isa.contains(&f), "{:?}", hw.isa);
        }
    }

    #[test]
    fn denied_per_core_clock_is_unknown_not_fatal() {
        let mut r = fake_phone();
        r.0.remove("/sys/devices/system/cpu/cpu6/cpufreq/cpuinfo_max_freq");
        let hw = read_hardware(&r);
        assert!(
            hw.clusters
                .iter()
                .any(|c| c.core == "cortex-a75" && c.max_mhz.is_none() && c.count == 1)
        );
        assert!(
            hw.clusters
                .iter()
                .any(|c| c.core == "cortex-a75" && c.max_mhz == Some(2000) && c.count == 1)
        );
    }

    #[test]
    fn probe_with_everything_denied_still_returns_a_valid_profile() {
        let denied = FakeReader(HashMap::new());
        let p = probe_with(
            &ProbeOptions {
                budget_ms: 10,
                threads: Some(2),
                ..ProbeOptions::default()
            },
            &denied,
        );
        assert_eq!(p.ram_bytes, None);
        assert_eq!(p.soc, "unknown");
        assert!(p.os.contains("(kernel unknown)"), "{}", p.os);
        assert!(
            p.cpu.clusters.iter().all(|c| c.max_mhz.is_none()),
            "{:?}",
            p.cpu.clusters
        );
        assert!(
            p.cpu.clusters.iter().all(|c| c.core == "unknown"),
            "{:?}",
            p.cpu.clusters
        );
        assert!(
            p.measured.gemm_gflops_mt > 0.0 && p.score > 0.0,
            "{:?}",
            p.measured
        );
        // Unknown RAM caps the class at the bottom.
        assert_eq!(p.tier, crate::profile::TierClass::VeryLow);
        assert!(p.validate().is_ok(), "{:?}", p.validate());
        assert!(p.id.starts_with("host-"));
    }

    #[test]
    fn parses_cpu_lists_and_midr() {
        assert_eq!(max_in_cpu_list("0-3,6,8-9\n"), Some(9));
        assert_eq!(max_in_cpu_list("0"), Some(0));
        assert_eq!(max_in_cpu_list("garbage"), None);
        assert_eq!(midr("0x00000000410fd034".into()), Some((0x41, 0xd03)));
        assert_eq!(parse_meminfo_total("MemTotal: 10 kB"), Some(10240));
        assert_eq!(parse_meminfo_total("MemFree: 10 kB"), None);
    }

    #[test]
    fn x86_cpuinfo_gives_model_name_and_flags() {
        let text = "processor\t: 0\nmodel name\t: AMD EPYC 9454\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n\n\
                    processor\t: 1\nmodel name\t: AMD EPYC 9454\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f\n";
        let mut m = HashMap::new();
        m.insert("/proc/cpuinfo", text.to_string());
        let hw = read_hardware(&FakeReader(m));
        assert_eq!(hw.clusters[0].core, "AMD EPYC 9454");
        assert!(hw.clusters[0].count >= 2);
        assert_eq!(hw.soc, "AMD EPYC 9454");
        for f in [
            IsaFeature::Avx2,
            IsaFeature::Fma,
            IsaFeature::Avx512f,
            IsaFeature::Sse42,
        ] {
            assert!(hw.isa.contains(&f));
        }
    }
}
