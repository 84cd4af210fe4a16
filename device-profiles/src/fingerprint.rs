//! A stable device fingerprint for caching decisions.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::profile::DeviceProfile;

/// RAM is rounded to this granularity before hashing, so small boot-to-boot differences do not change the value.
pub const RAM_ROUNDING_BYTES: u64 = 256 << 20;

/// A 64-bit FNV-1a hash of the hardware identity of a device: ABI, SoC, every cluster's core type and count, the
/// ISA features and the RAM rounded to [`RAM_ROUNDING_BYTES`].
///
/// It excludes every measured number, the name, the id and the OS, so it stays the same across runs of the probe on
/// one device, and changes when the CPU model, the core count or the RAM change. FNV-1a is written out here (not
/// `std::hash`) so the value is the same across Rust versions. It serializes as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// A fingerprint with this raw value (for tests and for values read elsewhere).
    pub const fn from_u64(v: u64) -> Self {
        Fingerprint(v)
    }

    /// The raw 64-bit value.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// Computes the fingerprint of a profile.
    pub fn of(profile: &DeviceProfile) -> Self {
        let mut h = Fnv::new();
        h.field("abi", &profile.abi);
        h.field("soc", &profile.soc);
        for c in &profile.cpu.clusters {
            h.field("core", &c.core);
            h.field("count", &c.count.to_string());
        }
        let mut isa: Vec<&str> = profile.cpu.isa.iter().map(|f| f.as_str()).collect();
        isa.sort_unstable();
        isa.dedup();
        for f in isa {
            h.field("isa", f);
        }
        let ram = profile.ram_bytes.map_or_else(
            || "unknown".to_string(),
            |r| ((r + RAM_ROUNDING_BYTES / 2) / RAM_ROUNDING_BYTES).to_string(),
        );
        h.field("ram_256mib", &ram);
        Fingerprint(h.0)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> String {
        f.to_string()
    }
}

/// A fingerprint string that is not 1 to 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFingerprint(String);

impl fmt::Display for BadFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fingerprint {:?} is not 1 to 16 hex digits (tierforge writes 16, e.g. \"0123456789abcdef\")",
            self.0
        )
    }
}

impl std::error::Error for BadFingerprint {}

impl TryFrom<String> for Fingerprint {
    type Error = BadFingerprint;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadFingerprint(s));
        }
        u64::from_str_radix(&s, 16)
            .map(Fingerprint)
            .map_err(|_| BadFingerprint(s))
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// Key, value and separators, so that ("ab","c") and ("a","bc") differ.
    fn field(&mut self, key: &str, value: &str) {
        self.bytes(key.as_bytes());
        self.bytes(&[0x1f]);
        self.bytes(value.as_bytes());
        self.bytes(&[0x1e]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vector() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c.
        let mut h = Fnv::new();
        h.bytes(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn display_round_trips() {
        let f = Fingerprint(0x0123_4567_89ab_cdef);
        assert_eq!(f.to_string(), "0123456789abcdef");
        assert_eq!(Fingerprint::try_from(f.to_string()), Ok(f));
        for bad in ["", "fp", "+1", "0123456789abcdef0", " 12"] {
            let e = Fingerprint::try_from(bad.to_string()).unwrap_err();
            assert!(e.to_string().contains("hex digits"), "{bad:?}: {e}");
        }
        assert_eq!(Fingerprint::try_from("F".to_string()), Ok(Fingerprint(15)));
    }
}
