//! Tier specs: what each device tier may spend. A JSON file ([`TierSpecFile`], plain serde,
//! unknown fields rejected, `format_version` checked) validated into a [`TierSpec`] whose
//! device profiles are resolved against the phone catalog.
//!
//! ```json
//! {
//!   "format_version": 1,
//!   "reference_profile": "samsung-galaxy-a01-core",
//!   "tiers": [
//!     { "name": "very-low", "profile": "samsung-galaxy-a01-core", "max_latency_ms": 4.0,
//!       "max_model_bytes": 150000, "max_peak_memory_bytes": 400000 }
//!   ]
//! }
//! ```
//!
//! A tier without `max_latency_ms` gets a budget sized to the family: the search spreads the
//! unset budgets between the smallest and the largest sub-net's predicted latency on each
//! tier's phone ([`TierSpec::with_sized_latency`]).

use std::path::Path;

use device_profiles::DeviceProfile;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format_version` this build reads and writes.
pub const TIER_SPEC_FORMAT_VERSION: u32 = 1;

/// A tier spec file as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpecFile {
    /// [`TIER_SPEC_FORMAT_VERSION`].
    pub format_version: u32,
    /// Catalog id of the device every variant's `latency_ms` in the bundle refers to.
    pub reference_profile: String,
    /// The tiers, from the weakest to the strongest (any order is accepted).
    pub tiers: Vec<TierFile>,
}

/// One tier as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierFile {
    /// Unique name, e.g. `low`.
    pub name: String,
    /// Catalog id of the tier's target device, on which `max_latency_ms` holds.
    pub profile: String,
    /// Latency limit of one image (batch 1) on the target device; absent: sized to the family
    /// ([`TierSpec::with_sized_latency`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// Limit on the f32 weights file.
    pub max_model_bytes: u64,
    /// Limit on weights + peak activations of one f32 inference.
    pub max_peak_memory_bytes: u64,
}

/// A device profile reduced to what the search needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRef {
    /// Catalog id.
    pub id: String,
    /// Marketing name.
    pub name: String,
    /// Capability score.
    pub score: f64,
}

impl From<&DeviceProfile> for ProfileRef {
    fn from(p: &DeviceProfile) -> Self {
        ProfileRef {
            id: p.id.clone(),
            name: p.name.clone(),
            score: p.score,
        }
    }
}

/// A validated tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierConstraint {
    /// Name.
    pub name: String,
    /// Target device.
    pub profile: ProfileRef,
    /// Latency limit on the target device, ms; `None` until sized to the family
    /// ([`TierSpec::with_sized_latency`], which the search applies first). An unsized tier
    /// has no latency limit.
    pub max_latency_ms: Option<f64>,
    /// f32 weights-file limit, bytes.
    pub max_model_bytes: u64,
    /// Weights + peak activations limit, bytes.
    pub max_peak_memory_bytes: u64,
}

impl TierConstraint {
    /// The latency budget translated to the host of a latency table whose score is
    /// `host_score` (a device k× slower than the host gets 1/k of the budget there); infinite
    /// for a tier not sized yet.
    pub fn host_latency_budget_ms(&self, host_score: f64) -> f64 {
        self.max_latency_ms.map_or(f64::INFINITY, |ms| {
            ms * self.profile.score / host_score.max(1e-9)
        })
    }

    /// Whether `self` is at least as loose as `other` in every budget (given the host score).
    pub fn is_looser_or_equal(&self, other: &TierConstraint, host_score: f64) -> bool {
        self.host_latency_budget_ms(host_score) >= other.host_latency_budget_ms(host_score)
            && self.max_model_bytes >= other.max_model_bytes
            && self.max_peak_memory_bytes >= other.max_peak_memory_bytes
    }
}

/// A validated tier spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierSpec {
    /// The device the bundle's latencies refer to.
    pub reference: ProfileRef,
    /// The tiers, in file order.
    pub tiers: Vec<TierConstraint>,
}

impl TierSpec {
    /// The built-in spec: four tiers from very-low-end phones to flagships, latencies on each
    /// tier's typical phone, budgets sized for the demo's search space
    /// (`SearchSpace::small_for(1, 10, 28)`; see [`default_file`]).
    ///
    /// # Errors
    /// Only if the built-in catalog fails to parse (a build defect).
    pub fn default_spec() -> Result<Self> {
        Self::try_from_file(default_file(), "built-in tier spec")
    }

    /// Reads and validates a tier spec file.
    ///
    /// # Errors
    /// I/O, malformed JSON (naming the field), an unsupported `format_version`, or a failed
    /// validation (see [`TierSpec::try_from_file`]).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let file: TierSpecFile = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            what: "tier spec".into(),
            source,
        })?;
        if file.format_version != TIER_SPEC_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: file.format_version,
                supported: TIER_SPEC_FORMAT_VERSION,
            });
        }
        Self::try_from_file(file, &path.display().to_string())
    }

    /// Validates `file` (`origin` names it in errors): the version; at least one tier; unique,
    /// non-empty names; positive finite latency budgets; non-zero byte budgets; every profile
    /// id in the catalog.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`], [`Error::FormatVersion`], [`Error::UnknownProfile`] or
    /// [`Error::Profiles`].
    pub fn try_from_file(file: TierSpecFile, origin: &str) -> Result<Self> {
        let bad = |field: String, reason: &str| Error::InvalidSpec {
            origin: origin.into(),
            field,
            reason: reason.into(),
        };
        if file.format_version != TIER_SPEC_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: origin.into(),
                found: file.format_version,
                supported: TIER_SPEC_FORMAT_VERSION,
            });
        }
        if file.tiers.is_empty() {
            return Err(bad("tiers".into(), "must list at least one tier"));
        }
        let catalog =
            device_profiles::catalog::builtin().map_err(|source| Error::Profiles { source })?;
        let find = |id: &str| -> Result<ProfileRef> {
            catalog
                .iter()
                .find(|p| p.id == id)
                .map(ProfileRef::from)
                .ok_or_else(|| Error::UnknownProfile {
                    id: id.into(),
                    origin: origin.into(),
                    available: catalog.iter().map(|p| p.id.clone()).collect(),
                })
        };
        let reference = find(&file.reference_profile)?;
        let mut tiers: Vec<TierConstraint> = Vec::with_capacity(file.tiers.len());
        for (i, t) in file.tiers.into_iter().enumerate() {
            if t.name.trim().is_empty() {
                return Err(bad(format!("tiers[{i}].name"), "must not be empty"));
            }
            if tiers.iter().any(|o| o.name == t.name) {
                return Err(bad(format!("tiers[{i}].name"), "must be unique"));
            }
            if t.max_latency_ms
                .is_some_and(|ms| !(ms.is_finite() && ms > 0.0))
            {
                return Err(bad(
                    format!("tiers[{i}].max_latency_ms"),
                    "must be a positive number of milliseconds",
                ));
            }
            if t.max_model_bytes == 0 {
                return Err(bad(format!("tiers[{i}].max_model_bytes"), "must be > 0"));
            }
            if t.max_peak_memory_bytes == 0 {
                return Err(bad(
                    format!("tiers[{i}].max_peak_memory_bytes"),
                    "must be > 0",
                ));
            }
            tiers.push(TierConstraint {
                profile: find(&t.profile)?,
                name: t.name,
                max_latency_ms: t.max_latency_ms,
                max_model_bytes: t.max_model_bytes,
                max_peak_memory_bytes: t.max_peak_memory_bytes,
            });
        }
        Ok(TierSpec { reference, tiers })
    }

    /// The spec with every tier that has no latency budget given one sized to the family:
    /// with `lo_ms` and `hi_ms` the smallest and the largest sub-net's predicted latency on the
    /// latency table's host (of score `host_score`), the i-th of n tiers (0-based, file order:
    /// weakest first) gets `lo · (hi/lo)^((i+1)/n)` there — geometric steps from just above the
    /// smallest sub-net to the largest, which fits the last tier — translated to its own phone.
    /// Tiers with a budget keep it.
    pub fn with_sized_latency(&self, lo_ms: f64, hi_ms: f64, host_score: f64) -> TierSpec {
        let n = self.tiers.len().max(1) as f64;
        let (lo, hi) = (lo_ms.max(1e-9), hi_ms.max(lo_ms).max(1e-9));
        let mut out = self.clone();
        for (i, t) in out.tiers.iter_mut().enumerate() {
            if t.max_latency_ms.is_none() {
                let host_ms = lo * (hi / lo).powf((i as f64 + 1.0) / n);
                // a hair over, so the largest sub-net fits the last tier after the round trip
                let ms = host_ms * host_score / t.profile.score.max(1e-9) * (1.0 + 1e-9);
                t.max_latency_ms = Some(ms);
            }
        }
        out
    }

    /// The spec as a file.
    pub fn to_file(&self) -> TierSpecFile {
        TierSpecFile {
            format_version: TIER_SPEC_FORMAT_VERSION,
            reference_profile: self.reference.id.clone(),
            tiers: self
                .tiers
                .iter()
                .map(|t| TierFile {
                    name: t.name.clone(),
                    profile: t.profile.id.clone(),
                    max_latency_ms: t.max_latency_ms,
                    max_model_bytes: t.max_model_bytes,
                    max_peak_memory_bytes: t.max_peak_memory_bytes,
                })
                .collect(),
        }
    }
}

/// The built-in spec as a file (see [`TierSpec::default_spec`]).
///
/// Four tiers, each on its typical phone: a 2 GB Cortex-A53 phone (Galaxy A01 Core), a Helio
/// G25 phone (Redmi 9A), a 2023 mid-range phone (Galaxy A15) and a flagship (Xiaomi 14). No
/// tier fixes a latency budget: the search sizes them to the family's own latency range
/// ([`TierSpec::with_sized_latency`]), so any family gets four steps from small to large. The
/// byte and peak-memory caps (the demo's small space has f32 files of 43–270 KB) keep the two
/// low tiers' variants small enough for a 2 GB phone's app.
pub fn default_file() -> TierSpecFile {
    let t = |name: &str, profile: &str, model: u64, peak: u64| TierFile {
        name: name.into(),
        profile: profile.into(),
        max_latency_ms: None,
        max_model_bytes: model,
        max_peak_memory_bytes: peak,
    };
    TierSpecFile {
        format_version: TIER_SPEC_FORMAT_VERSION,
        reference_profile: "samsung-galaxy-a01-core".into(),
        tiers: vec![
            t("very-low", "samsung-galaxy-a01-core", 150_000, 250_000),
            t("low", "xiaomi-redmi-9a", 250_000, 400_000),
            t("mid", "samsung-galaxy-a15", 1_000_000, 2_000_000),
            t("flagship", "xiaomi-14", 4_000_000, 8_000_000),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_valid_and_roundtrips() {
        let s = TierSpec::default_spec().unwrap();
        assert!(s.tiers.len() >= 4);
        let back = TierSpec::try_from_file(s.to_file(), "x").unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn unset_latency_budgets_are_spread_over_the_family_range() {
        let mut f = default_file();
        f.tiers[1].max_latency_ms = Some(7.0);
        let s = TierSpec::try_from_file(f, "x").unwrap();
        assert!(
            s.tiers
                .iter()
                .all(|t| t.host_latency_budget_ms(200.0).is_infinite() || t.name == "low")
        );
        let host = 200.0;
        let sized = s.with_sized_latency(0.1, 1.6, host);
        assert_eq!(sized.tiers[1].max_latency_ms, Some(7.0));
        // on the host: 0.1 · 16^(1/4) = 0.2, then 16^(3/4) → 0.8, 16^1 → 1.6 (just over)
        let on_host: Vec<f64> = sized
            .tiers
            .iter()
            .map(|t| t.host_latency_budget_ms(host))
            .collect();
        assert!((on_host[0] - 0.2).abs() < 1e-9, "{on_host:?}");
        assert!((on_host[2] - 0.8).abs() < 1e-9, "{on_host:?}");
        assert!(on_host[3] >= 1.6 && on_host[3] < 1.6 + 1e-6, "{on_host:?}");
        // in ms on each tier's own phone: a phone k× slower than the host gets k× the host ms
        let t0 = &sized.tiers[0];
        let phone_ms = t0.max_latency_ms.unwrap();
        assert!((phone_ms - 0.2 * host / t0.profile.score).abs() < 1e-6);
        // sizing is idempotent and the sized file round-trips
        assert_eq!(sized.with_sized_latency(5.0, 50.0, host), sized);
        assert_eq!(
            TierSpec::try_from_file(sized.to_file(), "y").unwrap(),
            sized
        );
    }

    #[test]
    fn bad_specs_are_rejected_with_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.json");
        let mut v = serde_json::to_value(default_file()).unwrap();
        v["tiers"][0]["max_latency_msec"] = 1.0.into();
        // the default leaves latency budgets to the search
        assert!(v["tiers"][0].get("max_latency_ms").is_none());
        std::fs::write(&p, v.to_string()).unwrap();
        let e = TierSpec::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("max_latency_msec") && e.contains("t.json"),
            "{e}"
        );

        let mut f = default_file();
        f.format_version = 9;
        std::fs::write(&p, serde_json::to_string(&f).unwrap()).unwrap();
        assert!(matches!(
            TierSpec::load(&p),
            Err(Error::FormatVersion { found: 9, .. })
        ));

        let cases: Vec<(&str, Box<dyn Fn(&mut TierSpecFile)>)> = vec![
            (
                "tiers[1].name",
                Box::new(|f| f.tiers[1].name = f.tiers[0].name.clone()),
            ),
            (
                "tiers[0].max_latency_ms",
                Box::new(|f| f.tiers[0].max_latency_ms = Some(-1.0)),
            ),
            (
                "tiers[2].max_model_bytes",
                Box::new(|f| f.tiers[2].max_model_bytes = 0),
            ),
            (
                "nokia-3310",
                Box::new(|f| f.tiers[0].profile = "nokia-3310".into()),
            ),
            ("at least one tier", Box::new(|f| f.tiers.clear())),
        ];
        for (want, edit) in cases {
            let mut f = default_file();
            edit(&mut f);
            let e = TierSpec::try_from_file(f, "spec.json")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(want) && e.contains("spec.json"),
                "want {want}: {e}"
            );
        }
    }
}
