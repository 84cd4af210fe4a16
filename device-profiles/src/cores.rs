//! CPU core types: kernel part ids → names, FP32 throughput per cycle and the big/little class.

/// Whether a core type is an efficiency ("little") or a performance ("big") core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoreClass {
    /// In-order efficiency cores (Cortex-A53, A55, A510, A520).
    Little,
    /// Out-of-order performance cores (Cortex-A7x, X-series, and any desktop/server core).
    Big,
}

/// One known core type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoreType {
    /// Canonical name used in profiles, e.g. `cortex-a55`.
    pub name: &'static str,
    /// ARM "CPU implementer" id as shown in `/proc/cpuinfo`.
    pub implementer: u32,
    /// ARM "CPU part" id as shown in `/proc/cpuinfo`.
    pub part: u32,
    /// Peak FP32 FLOP per cycle per core with 128-bit NEON FMA (an FMA counts as 2).
    pub fp32_flop_per_cycle: f64,
    /// Big or little.
    pub class: CoreClass,
}

const ARM: u32 = 0x41;
const QCOM: u32 = 0x51;

const fn core(
    name: &'static str,
    implementer: u32,
    part: u32,
    flop: f64,
    class: CoreClass,
) -> CoreType {
    CoreType {
        name,
        implementer,
        part,
        fp32_flop_per_cycle: flop,
        class,
    }
}

use CoreClass::{Big, Little};

/// The table of known ARM core types (ARM's own part ids, and Qualcomm's Kryo ids that are ARM cores underneath).
///
/// FLOP/cycle: A53/A55/A510/A520 and A57/A72/A73/A75 ≈ 8 (two 64-bit or one 128-bit FMA pipe),
/// A76/A77/A78/A710/A715/A720 ≈ 16 (two 128-bit FMA pipes), X1/X2/X3/X4 ≈ 32 (four 128-bit FMA pipes).
pub const CORE_TYPES: &[CoreType] = &[
    core("cortex-a35", ARM, 0xd04, 4.0, Little),
    core("cortex-a53", ARM, 0xd03, 8.0, Little),
    core("cortex-a55", ARM, 0xd05, 8.0, Little),
    core("cortex-a57", ARM, 0xd07, 8.0, Big),
    core("cortex-a72", ARM, 0xd08, 8.0, Big),
    core("cortex-a73", ARM, 0xd09, 8.0, Big),
    core("cortex-a75", ARM, 0xd0a, 8.0, Big),
    core("cortex-a76", ARM, 0xd0b, 16.0, Big),
    core("neoverse-n1", ARM, 0xd0c, 16.0, Big),
    core("cortex-a77", ARM, 0xd0d, 16.0, Big),
    core("cortex-a78", ARM, 0xd41, 16.0, Big),
    core("cortex-x1", ARM, 0xd44, 32.0, Big),
    core("cortex-a510", ARM, 0xd46, 8.0, Little),
    core("cortex-a710", ARM, 0xd47, 16.0, Big),
    core("cortex-x2", ARM, 0xd48, 32.0, Big),
    core("cortex-a715", ARM, 0xd4d, 16.0, Big),
    core("cortex-x3", ARM, 0xd4e, 32.0, Big),
    core("cortex-a520", ARM, 0xd80, 8.0, Little),
    core("cortex-a720", ARM, 0xd81, 16.0, Big),
    core("cortex-x4", ARM, 0xd82, 32.0, Big),
    // Qualcomm Kryo 2xx/3xx/4xx report their own ids; underneath they are these ARM cores.
    core("cortex-a73", QCOM, 0x800, 8.0, Big),
    core("cortex-a53", QCOM, 0x801, 8.0, Little),
    core("cortex-a75", QCOM, 0x802, 8.0, Big),
    core("cortex-a55", QCOM, 0x803, 8.0, Little),
    core("cortex-a76", QCOM, 0x804, 16.0, Big),
    core("cortex-a55", QCOM, 0x805, 8.0, Little),
];

/// Looks a core up by its `/proc/cpuinfo` implementer and part ids.
pub fn core_by_part(implementer: u32, part: u32) -> Option<&'static CoreType> {
    CORE_TYPES
        .iter()
        .find(|c| c.implementer == implementer && c.part == part)
}

/// Looks a core up by its canonical name (`cortex-a55`); `None` for x86 model names and unknown cores.
pub fn core_by_name(name: &str) -> Option<&'static CoreType> {
    CORE_TYPES.iter().find(|c| c.name == name)
}

/// The class of a core name; `None` for cores not in the table (x86 model names, `unknown`):
/// an unknown core never counts as big.
pub fn class_of(name: &str) -> Option<CoreClass> {
    core_by_name(name).map(|c| c.class)
}

/// Whether `name` is written like a core-type name (lowercase letters, digits and `-`, such as
/// `cortex-a55`) rather than a CPU model string (`AMD EPYC 9454`): such a name must be in
/// [`CORE_TYPES`] or be `unknown`. A probed ARM part that is not in the table
/// (`arm-0x41-0xd99`) is kept as it is: it counts as an unknown core, never as a big one.
pub fn looks_like_core_type(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("arm-0x")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The canonical core-type names, sorted and without repeats (for error messages).
pub fn known_core_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = CORE_TYPES.iter().map(|c| c.name).collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_ids_map_to_cortex_names() {
        assert_eq!(
            core_by_part(0x41, 0xd03).map(|c| c.name),
            Some("cortex-a53")
        );
        assert_eq!(core_by_part(0x41, 0xd4e).map(|c| c.name), Some("cortex-x3"));
        assert_eq!(
            core_by_part(0x51, 0x805).map(|c| c.name),
            Some("cortex-a55")
        );
        assert!(core_by_part(0x41, 0xfff).is_none());
        assert_eq!(class_of("cortex-a510"), Some(CoreClass::Little));
        assert_eq!(class_of("AMD EPYC"), None);
        assert_eq!(class_of("cortex-a5x"), None);
        assert!(looks_like_core_type("cortex-a5x") && !looks_like_core_type("AMD EPYC 9454"));
        assert!(known_core_names().contains(&"cortex-x4"));
    }

    #[test]
    fn names_are_consistent_across_implementers() {
        for c in CORE_TYPES {
            let first = core_by_name(c.name).map(|f| (f.fp32_flop_per_cycle, f.class));
            assert_eq!(first, Some((c.fp32_flop_per_cycle, c.class)), "{}", c.name);
        }
    }
}
