//! The device cache: what the probe measured on this device, persisted in the app's data folder
//! so that later launches skip the micro-benchmark.
//!
//! An entry is valid for one hardware fingerprint (computed from cheap reads of `/proc` and
//! `/sys`, no benchmark: see [`hardware_fingerprint`]), one runtime version and one probe
//! thread count. A changed device, a runtime upgrade or another thread count makes it stale; a
//! corrupt file is reported as such and rewritten by the next [`DeviceCache::store`]. Writes
//! are atomic (temporary file + fsync + rename).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use device_profiles::probe::{Hardware, read_hardware};
use device_profiles::{FigureSource, Figures, Fingerprint, SysReader};
use serde::{Deserialize, Serialize};

use crate::device::DeviceFacts;
use crate::error::{Error, Result};

/// The `format_version` of the device cache file.
pub const DEVICE_CACHE_FORMAT_VERSION: u32 = 1;

/// The device cache's file name inside the app data folder.
pub const DEVICE_CACHE_FILE_NAME: &str = "tierforge-device.json";

/// The hardware fingerprint of this device from cheap reads only (CPU, RAM, SoC, ISA; no
/// micro-benchmark); files and reports write it as 16 hex digits.
///
/// It equals `device_profiles::probe_with(_, reader).fingerprint()`: both hash the same
/// [`read_hardware`] output with [`Fingerprint::of`], which ignores every measured number.
pub fn hardware_fingerprint(reader: &dyn SysReader) -> Fingerprint {
    fingerprint_of_hardware(read_hardware(reader))
}

/// [`Fingerprint::of`] a profile built from `hw` with no measurements.
pub fn fingerprint_of_hardware(hw: Hardware) -> Fingerprint {
    let unmeasured = Figures {
        gemm_gflops_1t: 0.0,
        gemm_gflops_mt: 0.0,
        dwconv_gflops: 0.0,
        mem_bw_gbps: 0.0,
        bench_ms: 0.0,
        threads: 0,
        source: FigureSource::Measured,
    };
    Fingerprint::of(&device_profiles::probe::profile_from_hardware(
        hw, unmeasured,
    ))
}

/// A cached device: the facts the selector needs and the figures they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedDevice {
    /// [`hardware_fingerprint`] when the probe ran (16 hex digits in the file).
    pub hardware_fingerprint: Fingerprint,
    /// The runtime version that probed (the benchmark may change between versions).
    pub runtime_version: String,
    /// Threads the probe's multi-thread benchmarks were asked to use (`None`: all).
    pub probe_threads: Option<usize>,
    /// What the selector uses.
    pub facts: DeviceFacts,
    /// The probe's measurements.
    pub measured: Figures,
    /// When the probe ran, seconds since the Unix epoch.
    pub probed_at_unix_s: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceCacheFile {
    format_version: u32,
    device: CachedDevice,
}

/// The outcome of [`DeviceCache::lookup`].
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceLookup {
    /// Facts for exactly this device, runtime and thread count.
    Hit(CachedDevice),
    /// No cache file.
    Miss,
    /// Facts for another device, runtime version or thread count.
    Stale {
        /// What differs.
        reason: String,
    },
    /// The file could not be read, parsed or validated; it will be rewritten on the next store.
    Corrupt {
        /// Why.
        reason: String,
    },
}

/// The device cache in an app data folder (one small JSON file).
#[derive(Debug, Clone)]
pub struct DeviceCache {
    dir: PathBuf,
}

impl DeviceCache {
    /// A cache in `app_data_dir` (created on the first store).
    pub fn new(app_data_dir: impl Into<PathBuf>) -> Self {
        DeviceCache {
            dir: app_data_dir.into(),
        }
    }

    /// The cache file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(DEVICE_CACHE_FILE_NAME)
    }

    /// The folder the cache lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks up the facts for the device with `hardware_fingerprint`, probed with
    /// `probe_threads`. Never fails.
    pub fn lookup(
        &self,
        hardware_fingerprint: Fingerprint,
        probe_threads: Option<usize>,
    ) -> DeviceLookup {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return DeviceLookup::Miss,
            Err(e) => {
                return DeviceLookup::Corrupt {
                    reason: format!("{}: {e}", path.display()),
                };
            }
        };
        let file: DeviceCacheFile = match serde_json::from_str(&text) {
            Ok(f) => f,
            Err(e) => {
                return DeviceLookup::Corrupt {
                    reason: format!("{}: malformed: {e}", path.display()),
                };
            }
        };
        if file.format_version != DEVICE_CACHE_FORMAT_VERSION {
            return DeviceLookup::Corrupt {
                reason: format!(
                    "{}: format_version {} (this runtime writes {DEVICE_CACHE_FORMAT_VERSION})",
                    path.display(),
                    file.format_version
                ),
            };
        }
        let d = file.device;
        if let Err(e) = d.facts.validate() {
            return DeviceLookup::Corrupt {
                reason: format!("{}: {e}", path.display()),
            };
        }
        let reason = if d.hardware_fingerprint != hardware_fingerprint {
            format!(
                "hardware changed (fingerprint {} → {hardware_fingerprint})",
                d.hardware_fingerprint
            )
        } else if d.runtime_version != env!("CARGO_PKG_VERSION") {
            format!(
                "probed by runtime {} (this is {})",
                d.runtime_version,
                env!("CARGO_PKG_VERSION")
            )
        } else if d.probe_threads != probe_threads {
            format!(
                "probed with {:?} threads (now {:?})",
                d.probe_threads, probe_threads
            )
        } else {
            return DeviceLookup::Hit(d);
        };
        DeviceLookup::Stale { reason }
    }

    /// Stores `device`, replacing the file atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder or file cannot be written.
    pub fn store(&self, device: &CachedDevice) -> Result<()> {
        let file = DeviceCacheFile {
            format_version: DEVICE_CACHE_FORMAT_VERSION,
            device: device.clone(),
        };
        let text = serde_json::to_string_pretty(&file).unwrap_or_default();
        crate::cache::write_atomic(&self.dir, DEVICE_CACHE_FILE_NAME, text.as_bytes())
    }

    /// Removes the cache file (absent is fine).
    ///
    /// # Errors
    /// [`Error::Io`] when it exists and cannot be removed.
    pub fn clear(&self) -> Result<()> {
        match fs::remove_file(self.path()) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(Error::io(self.path(), "remove", e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use device_profiles::{FsReader, ProbeOptions, probe_with};

    fn fp(v: u64) -> Fingerprint {
        Fingerprint::try_from(format!("{v:016x}")).unwrap()
    }

    fn cached(f: Fingerprint) -> CachedDevice {
        CachedDevice {
            hardware_fingerprint: f,
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            probe_threads: None,
            facts: DeviceFacts {
                id: "host".into(),
                name: "Host".into(),
                fingerprint: f,
                score: 100.0,
                ram_bytes: Some(4 << 30),
                big_cores: 2,
            },
            measured: Figures {
                gemm_gflops_1t: 1.0,
                gemm_gflops_mt: 2.0,
                dwconv_gflops: 1.0,
                mem_bw_gbps: 3.0,
                bench_ms: 5.0,
                threads: 2,
                source: FigureSource::Measured,
            },
            probed_at_unix_s: 1,
        }
    }

    #[test]
    fn cheap_fingerprint_equals_the_probed_one() {
        let probed = probe_with(
            &ProbeOptions {
                budget_ms: 2,
                threads: Some(1),
                ..ProbeOptions::default()
            },
            &FsReader,
        );
        assert_eq!(hardware_fingerprint(&FsReader), probed.fingerprint());
        assert_eq!(
            DeviceFacts::from(&probed).fingerprint,
            hardware_fingerprint(&FsReader)
        );
    }

    #[test]
    fn hit_stale_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DeviceCache::new(tmp.path().join("app"));
        assert_eq!(c.lookup(fp(1), None), DeviceLookup::Miss);
        c.store(&cached(fp(1))).unwrap();
        assert_eq!(c.lookup(fp(1), None), DeviceLookup::Hit(cached(fp(1))));
        assert!(matches!(c.lookup(fp(2), None), DeviceLookup::Stale { .. }));
        assert!(matches!(
            c.lookup(fp(1), Some(1)),
            DeviceLookup::Stale { .. }
        ));
        assert_eq!(fs::read_dir(c.dir()).unwrap().count(), 1, "temporary left");

        // the fingerprint is written as 16 hex digits; anything else is a corrupt file
        let text = fs::read_to_string(c.path()).unwrap();
        assert!(
            text.contains("\"hardware_fingerprint\": \"0000000000000001\""),
            "{text}"
        );
        fs::write(
            c.path(),
            text.replacen("\"0000000000000001\"", "\"not hex\"", 1),
        )
        .unwrap();
        assert!(matches!(
            c.lookup(fp(1), None),
            DeviceLookup::Corrupt { .. }
        ));
        fs::write(c.path(), "{ not json").unwrap();
        assert!(matches!(
            c.lookup(fp(1), None),
            DeviceLookup::Corrupt { .. }
        ));
        let mut bad = cached(fp(1));
        bad.facts.score = -1.0;
        c.store(&bad).unwrap();
        assert!(matches!(
            c.lookup(fp(1), None),
            DeviceLookup::Corrupt { .. }
        ));
        c.store(&cached(fp(1))).unwrap();
        assert!(matches!(c.lookup(fp(1), None), DeviceLookup::Hit(_)));
        c.clear().unwrap();
        c.clear().unwrap();
        assert_eq!(c.lookup(fp(1), None), DeviceLookup::Miss);
    }
}
