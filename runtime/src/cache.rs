//! The decision cache: the variant chosen for this device and bundle, persisted as a small JSON
//! file in the app's data folder so later launches skip selection (and keep step-downs).
//!
//! Keyed by the device fingerprint, the bundle id, version and manifest digest, and the policy
//! digest: changing any of them is a miss. A corrupt file is treated as empty and rewritten on
//! the next store. Writes are atomic (temporary file + fsync + rename).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use device_profiles::Fingerprint;

use crate::device::DeviceFacts;
use crate::error::{Error, Result};
use crate::manifest::Manifest;
use crate::select::Policy;

/// The `format_version` of the cache file.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// The cache's file name inside the app data folder.
pub const CACHE_FILE_NAME: &str = "tierforge-decisions.json";

/// What a cached decision is valid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheKey {
    /// [`DeviceFacts::fingerprint`].
    pub device_fingerprint: Fingerprint,
    /// The bundle id (one cache entry per bundle id).
    pub bundle_id: String,
    /// The bundle version.
    pub bundle_version: String,
    /// [`Manifest::digest`]: catches a changed bundle whose version was not bumped.
    pub manifest_digest: String,
    /// [`Policy::digest`].
    pub policy_digest: String,
}

impl CacheKey {
    /// The key for this bundle, device and policy.
    pub fn new(manifest: &Manifest, device: &DeviceFacts, policy: &Policy) -> Self {
        CacheKey {
            device_fingerprint: device.fingerprint,
            bundle_id: manifest.bundle_id().to_owned(),
            bundle_version: manifest.bundle_version().to_owned(),
            manifest_digest: manifest.digest().to_owned(),
            policy_digest: policy.digest(),
        }
    }
}

/// Why a variant was stepped down from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepDownReason {
    /// Its file failed verification or loading.
    LoadFailed {
        /// The error message.
        message: String,
    },
    /// Measured latency was over the budget (see [`crate::AdaptiveLatency`]).
    TooSlow {
        /// Median of the measured latencies.
        median_ms: f64,
        /// The limit it exceeded.
        limit_ms: f64,
    },
}

/// One step down, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDown {
    /// The variant given up.
    pub from: String,
    /// The variant taken instead.
    pub to: String,
    /// Why.
    pub reason: StepDownReason,
}

/// A cached decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedDecision {
    /// The variant to load.
    pub variant: String,
    /// Whether the selector found that it fits the budgets.
    pub fits: bool,
    /// Its predicted latency on the device.
    pub predicted_latency_ms: f64,
    /// Step-downs taken on this device, oldest first.
    pub step_downs: Vec<StepDown>,
}

/// The outcome of [`DecisionCache::lookup`].
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// A decision for exactly this key.
    Hit(CachedDecision),
    /// No cache file, or no entry for this bundle id.
    Miss,
    /// An entry for this bundle id, but for another device, bundle version or policy.
    Stale,
    /// The cache file could not be read or parsed; it will be rewritten on the next store.
    Corrupt {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    format_version: u32,
    entries: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: CacheKey,
    decision: CachedDecision,
}

/// A decision cache in an app data folder (one small JSON file, one entry per bundle id).
#[derive(Debug, Clone)]
pub struct DecisionCache {
    dir: PathBuf,
}

impl DecisionCache {
    /// A cache in `app_data_dir` (created on the first store).
    pub fn new(app_data_dir: impl Into<PathBuf>) -> Self {
        DecisionCache {
            dir: app_data_dir.into(),
        }
    }

    /// The cache file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CACHE_FILE_NAME)
    }

    fn read(&self) -> std::result::Result<Option<CacheFile>, String> {
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file: CacheFile = serde_json::from_str(&text)
            .map_err(|e| format!("{}: malformed: {e}", path.display()))?;
        if file.format_version != CACHE_FORMAT_VERSION {
            return Err(format!(
                "{}: format_version {} (this runtime writes {CACHE_FORMAT_VERSION})",
                path.display(),
                file.format_version
            ));
        }
        Ok(Some(file))
    }

    /// Looks up `key`, telling a miss from a stale or corrupt cache. Never fails.
    pub fn lookup(&self, key: &CacheKey) -> CacheLookup {
        match self.read() {
            Err(reason) => CacheLookup::Corrupt { reason },
            Ok(None) => CacheLookup::Miss,
            Ok(Some(file)) => match file
                .entries
                .into_iter()
                .find(|e| e.key.bundle_id == key.bundle_id)
            {
                None => CacheLookup::Miss,
                Some(e) if e.key == *key => CacheLookup::Hit(e.decision),
                Some(_) => CacheLookup::Stale,
            },
        }
    }

    /// The cached decision for `key`, if there is a valid one.
    pub fn load(&self, key: &CacheKey) -> Option<CachedDecision> {
        match self.lookup(key) {
            CacheLookup::Hit(d) => Some(d),
            _ => None,
        }
    }

    /// Stores `decision` for `key`, replacing any entry for the same bundle id (and a corrupt
    /// file), atomically.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder or file cannot be written.
    pub fn store(&self, key: &CacheKey, decision: &CachedDecision) -> Result<()> {
        let mut file = self.read().ok().flatten().unwrap_or_default();
        file.format_version = CACHE_FORMAT_VERSION;
        file.entries.retain(|e| e.key.bundle_id != key.bundle_id);
        file.entries.push(Entry {
            key: key.clone(),
            decision: decision.clone(),
        });
        let text = serde_json::to_string_pretty(&file).unwrap_or_default();
        write_atomic(&self.dir, CACHE_FILE_NAME, text.as_bytes())
    }

    /// Records that the app stepped down from `from` to `to` on this device, so later launches
    /// start at `to`; returns the decision now stored.
    ///
    /// # Errors
    /// As [`DecisionCache::store`].
    pub fn record_step_down(
        &self,
        key: &CacheKey,
        from: &str,
        to: &str,
        predicted_latency_ms: f64,
        reason: StepDownReason,
    ) -> Result<CachedDecision> {
        let mut d = self.load(key).unwrap_or(CachedDecision {
            variant: from.to_owned(),
            fits: true,
            predicted_latency_ms,
            step_downs: Vec::new(),
        });
        d.step_downs.push(StepDown {
            from: from.to_owned(),
            to: to.to_owned(),
            reason,
        });
        d.variant = to.to_owned();
        d.predicted_latency_ms = predicted_latency_ms;
        self.store(key, &d)?;
        Ok(d)
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

    /// The folder the cache lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fp: &str, version: &str) -> CacheKey {
        // a fingerprint per name, for readable tests
        let raw = fp
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        CacheKey {
            device_fingerprint: Fingerprint::from_u64(raw),
            bundle_id: "b".into(),
            bundle_version: version.into(),
            manifest_digest: "d".into(),
            policy_digest: "p".into(),
        }
    }

    fn decision(v: &str) -> CachedDecision {
        CachedDecision {
            variant: v.into(),
            fits: true,
            predicted_latency_ms: 3.0,
            step_downs: vec![],
        }
    }

    #[test]
    fn store_then_hit_other_keys_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DecisionCache::new(tmp.path().join("app"));
        assert_eq!(c.lookup(&key("fp", "1")), CacheLookup::Miss);
        c.store(&key("fp", "1"), &decision("large")).unwrap();
        assert_eq!(c.load(&key("fp", "1")), Some(decision("large")));
        assert_eq!(c.lookup(&key("fp", "2")), CacheLookup::Stale);
        assert_eq!(c.lookup(&key("other", "1")), CacheLookup::Stale);
        let mut other_bundle = key("fp", "1");
        other_bundle.bundle_id = "c".into();
        assert_eq!(c.lookup(&other_bundle), CacheLookup::Miss);
        // Only the cache file is in the folder: no temporary left.
        assert_eq!(fs::read_dir(c.dir()).unwrap().count(), 1);
    }

    #[test]
    fn step_down_is_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DecisionCache::new(tmp.path());
        c.store(&key("fp", "1"), &decision("large")).unwrap();
        let reason = StepDownReason::TooSlow {
            median_ms: 30.0,
            limit_ms: 20.0,
        };
        c.record_step_down(&key("fp", "1"), "large", "small", 2.0, reason.clone())
            .unwrap();
        let d = c.load(&key("fp", "1")).unwrap();
        assert_eq!(d.variant, "small");
        assert_eq!(
            d.step_downs,
            vec![StepDown {
                from: "large".into(),
                to: "small".into(),
                reason
            }]
        );
        c.clear().unwrap();
        assert_eq!(c.lookup(&key("fp", "1")), CacheLookup::Miss);
    }

    #[test]
    fn wrong_version_is_corrupt_and_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let c = DecisionCache::new(tmp.path());
        fs::write(c.path(), r#"{"format_version": 9, "entries": []}"#).unwrap();
        assert!(matches!(
            c.lookup(&key("fp", "1")),
            CacheLookup::Corrupt { .. }
        ));
        c.store(&key("fp", "1"), &decision("x")).unwrap();
        assert_eq!(c.load(&key("fp", "1")), Some(decision("x")));
    }
}

/// Writes `dir/name` atomically and durably ([`netspec::fsio::write_atomic`]). Nothing already
/// there is lost on failure.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    netspec::fsio::write_atomic(&path, bytes).map_err(|e| Error::io(&path, "write atomically", e))
}
