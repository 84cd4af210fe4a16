//! [`DeviceFacts`]: what the runtime needs to know about the device it runs on.

use serde::{Deserialize, Serialize};

use device_profiles::Fingerprint;

use crate::error::{Error, Result};

/// RAM assumed when a device reports `ram_bytes == 0` (unknown): 1 GiB, a low-end phone.
pub const UNKNOWN_RAM_ASSUMED_BYTES: u64 = 1 << 30;

/// The runtime's view of a device: enough to predict latency and memory headroom, and to key
/// cached decisions.
///
/// Built from a device profile (probed on the device or taken from the catalog) or read as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFacts {
    /// Profile id, e.g. `pixel-3a` or `host`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Stable fingerprint of the hardware (SoC, cores, RAM class); a change invalidates cached
    /// decisions.
    pub fingerprint: Fingerprint,
    /// Capability score: higher is faster; latency scales as `1 / score`. Same scale as the
    /// manifest's `reference.score`.
    pub score: f64,
    /// Total RAM in bytes as the OS reports it; `None` when unknown (then
    /// [`UNKNOWN_RAM_ASSUMED_BYTES`] is assumed). Files that write 0 for unknown (older caches)
    /// read as `None`.
    #[serde(default, deserialize_with = "zero_is_unknown")]
    pub ram_bytes: Option<u64>,
    /// Number of big (performance) cores.
    pub big_cores: usize,
}

impl DeviceFacts {
    /// RAM used for memory budgets: `ram_bytes`, or [`UNKNOWN_RAM_ASSUMED_BYTES`] when unknown.
    pub fn effective_ram_bytes(&self) -> u64 {
        self.ram_bytes.unwrap_or(UNKNOWN_RAM_ASSUMED_BYTES)
    }

    /// Checks that the facts can drive a selection.
    ///
    /// # Errors
    /// [`Error::InvalidDevice`] when the score is not positive and finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.score.is_finite() && self.score > 0.0) {
            return Err(Error::InvalidDevice {
                device: self.id.clone(),
                field: "score",
                reason: format!("must be a positive finite number, got {}", self.score),
            });
        }
        Ok(())
    }
}

/// `ram_bytes` as older files wrote it: 0 (or null, or absent) means unknown.
fn zero_is_unknown<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u64>, D::Error> {
    let v: Option<u64> = serde::Deserialize::deserialize(d)?;
    Ok(v.filter(|b| *b > 0))
}

impl From<&device_profiles::DeviceProfile> for DeviceFacts {
    fn from(p: &device_profiles::DeviceProfile) -> Self {
        DeviceFacts {
            id: p.id.clone(),
            name: p.name.clone(),
            fingerprint: p.fingerprint(),
            score: p.score,
            ram_bytes: p.ram_bytes.filter(|b| *b > 0),
            big_cores: p.big_core_count() as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> DeviceFacts {
        DeviceFacts {
            id: "phone".into(),
            name: "Phone".into(),
            fingerprint: Fingerprint::from_u64(0xf0),
            score: 2.0,
            ram_bytes: None,
            big_cores: 2,
        }
    }

    #[test]
    fn unknown_ram_is_assumed_low_end() {
        assert_eq!(facts().effective_ram_bytes(), UNKNOWN_RAM_ASSUMED_BYTES);
        let f = DeviceFacts {
            ram_bytes: Some(4 << 30),
            ..facts()
        };
        assert_eq!(f.effective_ram_bytes(), 4 << 30);
        // an older cache file that wrote 0 for unknown
        let old: DeviceFacts = serde_json::from_str(
            r#"{"id":"p","name":"P","fingerprint":"f","score":1.0,"ram_bytes":0,"big_cores":1}"#,
        )
        .unwrap();
        assert_eq!(old.ram_bytes, None);
        let json = serde_json::to_string(&facts()).unwrap();
        assert!(json.contains(r#""ram_bytes":null"#), "{json}");
    }

    #[test]
    fn bad_score_or_fingerprint_rejected() {
        facts().validate().unwrap();
        let e = DeviceFacts {
            score: 0.0,
            ..facts()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("score"), "{e}");
        // a fingerprint is typed: a blank or non-hex one is refused when the facts are read
        let mut json = serde_json::to_value(facts()).unwrap();
        assert_eq!(json["fingerprint"], "00000000000000f0");
        json["fingerprint"] = " ".into();
        let e = serde_json::from_value::<DeviceFacts>(json).unwrap_err();
        assert!(e.to_string().contains("fingerprint"), "{e}");
    }
}
