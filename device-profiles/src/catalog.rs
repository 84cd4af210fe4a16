//! The catalog of real phones, from very low-end (2 GB, 4× Cortex-A53) to flagships, with estimated figures.
//!
//! Entries live in `device-profiles/catalog/*.json`, one file per phone, and are also compiled into the library
//! ([`builtin`]) so no file is needed at run time. Estimated figures follow [`estimate_figures`]: the latency model's
//! speed of the CPU (fitted on public measurements of real phones) times the calibration host's figures, and a
//! fraction of the DRAM's theoretical bandwidth. `tierforge profile estimate SPEC.json` writes an entry.

use std::path::Path;

use crate::error::{Error, Result};
use crate::profile::{Cpu, DeviceProfile, Dram, FigureSource, Figures};

/// Fraction of the DRAM's theoretical bandwidth a multi-thread read reaches (a public Cortex-A53 measurement reached
/// about 40%: 6.9 GB/s on four cores). Reported only: the score does not use bandwidth.
pub const MEM_BW_EFFICIENCY: f64 = 0.40;

/// Estimated figures of a CPU and DRAM, as the probe would report them if the device ran the probe's kernels as it
/// runs networks: single-thread GEMM and depthwise = the calibration host's × the [latency model](crate::latency)'s
/// speed of the fastest core; multi-thread GEMM = that × [`crate::latency::thread_speedup`] of a fully parallel
/// op on [`crate::latency::effective_cores`] of all cores;
/// bandwidth = theoretical × [`MEM_BW_EFFICIENCY`]; threads = all cores. `None` when a core type or clock is unknown.
pub fn estimate_figures(cpu: &Cpu, dram: &Dram) -> Option<Figures> {
    let speed = crate::latency::spec_speed(cpu)?;
    let cal = crate::latency::CALIBRATION;
    let gemm_1t = cal.gemm_gflops_1t * speed;
    Some(Figures {
        gemm_gflops_1t: gemm_1t,
        gemm_gflops_mt: gemm_1t * all_core_gemm_speedup(cpu),
        dwconv_gflops: cal.dwconv_gflops_1t * speed,
        mem_bw_gbps: dram.theoretical_gbps() * MEM_BW_EFFICIENCY,
        bench_ms: 0.0,
        threads: cpu.core_count(),
        source: FigureSource::Estimated,
    })
}

/// Speed-up of a GEMM (all of it split over threads) on every core of `cpu`, by the latency model.
pub fn all_core_gemm_speedup(cpu: &Cpu) -> f64 {
    let cores = crate::latency::effective_cores(cpu, cpu.core_count() as usize);
    crate::latency::thread_speedup(1.0, cores)
}

/// The catalog files compiled into the library: (file name, contents).
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    (
        "google-pixel-6a.json",
        include_str!("../catalog/google-pixel-6a.json"),
    ),
    (
        "google-pixel-8.json",
        include_str!("../catalog/google-pixel-8.json"),
    ),
    ("nokia-g21.json", include_str!("../catalog/nokia-g21.json")),
    (
        "samsung-galaxy-a01-core.json",
        include_str!("../catalog/samsung-galaxy-a01-core.json"),
    ),
    (
        "samsung-galaxy-a03-core.json",
        include_str!("../catalog/samsung-galaxy-a03-core.json"),
    ),
    (
        "samsung-galaxy-a12.json",
        include_str!("../catalog/samsung-galaxy-a12.json"),
    ),
    (
        "samsung-galaxy-a13.json",
        include_str!("../catalog/samsung-galaxy-a13.json"),
    ),
    (
        "samsung-galaxy-a15.json",
        include_str!("../catalog/samsung-galaxy-a15.json"),
    ),
    (
        "samsung-galaxy-a23-5g.json",
        include_str!("../catalog/samsung-galaxy-a23-5g.json"),
    ),
    (
        "samsung-galaxy-s23.json",
        include_str!("../catalog/samsung-galaxy-s23.json"),
    ),
    (
        "vivo-x90-pro.json",
        include_str!("../catalog/vivo-x90-pro.json"),
    ),
    ("xiaomi-14.json", include_str!("../catalog/xiaomi-14.json")),
    (
        "xiaomi-redmi-6a.json",
        include_str!("../catalog/xiaomi-redmi-6a.json"),
    ),
    (
        "xiaomi-redmi-9a.json",
        include_str!("../catalog/xiaomi-redmi-9a.json"),
    ),
    (
        "xiaomi-redmi-note-11.json",
        include_str!("../catalog/xiaomi-redmi-note-11.json"),
    ),
    (
        "xiaomi-redmi-note-9.json",
        include_str!("../catalog/xiaomi-redmi-note-9.json"),
    ),
];

/// Parses the built-in catalog, sorted by id.
///
/// # Errors
/// The first entry that fails to parse or validate (its origin is `catalog/<file>`), or a duplicate id.
pub fn builtin() -> Result<Vec<DeviceProfile>> {
    let mut profiles = Vec::with_capacity(BUILTIN_FILES.len());
    for (file, text) in BUILTIN_FILES {
        profiles.push((
            format!("catalog/{file}"),
            DeviceProfile::from_json_str(text, &format!("catalog/{file}"))?,
        ));
    }
    finish(profiles)
}

/// The built-in entry with this id, if any.
///
/// # Errors
/// As [`builtin`].
pub fn builtin_by_id(id: &str) -> Result<Option<DeviceProfile>> {
    Ok(builtin()?.into_iter().find(|p| p.id == id))
}

/// Reads and validates one profile file.
///
/// # Errors
/// As [`DeviceProfile::from_file`].
pub fn load_file(path: impl AsRef<Path>) -> Result<DeviceProfile> {
    DeviceProfile::from_file(path)
}

/// Reads and validates every `*.json` file in a directory (not recursive), sorted by id.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed, the first file that fails, or a duplicate id.
pub fn load_dir(dir: impl AsRef<Path>) -> Result<Vec<DeviceProfile>> {
    let dir = dir.as_ref();
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "json") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut profiles = Vec::with_capacity(paths.len());
    for path in paths {
        let profile = DeviceProfile::from_file(&path)?;
        profiles.push((path.display().to_string(), profile));
    }
    finish(profiles)
}

fn finish(mut profiles: Vec<(String, DeviceProfile)>) -> Result<Vec<DeviceProfile>> {
    profiles.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    for pair in profiles.windows(2) {
        if pair[0].1.id == pair[1].1.id {
            return Err(Error::DuplicateId {
                origin: pair[1].0.clone(),
                id: pair[1].1.id.clone(),
            });
        }
    }
    Ok(profiles.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_the_catalog_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        let from_dir = load_dir(&dir).unwrap();
        let builtin = builtin().unwrap();
        assert_eq!(
            from_dir, builtin,
            "catalog/*.json and BUILTIN_FILES differ: add new files to BUILTIN_FILES"
        );
        assert!(builtin.len() >= 12);
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let (file, text) = BUILTIN_FILES[0];
        std::fs::write(dir.path().join(file), text).unwrap();
        std::fs::write(dir.path().join("copy.json"), text).unwrap();
        let e = load_dir(dir.path()).unwrap_err();
        assert!(
            matches!(&e, Error::DuplicateId { origin, .. } if origin.ends_with(file) || origin.ends_with("copy.json")),
            "{e}"
        );
    }
}
