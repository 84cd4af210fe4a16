//! Properties of the selector.

use proptest::prelude::*;
use runtime::{
    DeviceFacts, Manifest, ManifestFile, Policy, Variant, memory_need_bytes, predicted_latency_ms,
    select,
};

use crate::common::{header, variant};

/// One variant's free parameters: MACs, accuracy, reference latency, model bytes.
type Raw = (u64, f64, f64, u64);

fn raw_variant() -> impl Strategy<Value = Raw> {
    (
        1_000u64..50_000_000,
        0.05f64..0.99,
        0.05f64..200.0,
        1_000u64..400_000_000,
    )
}

fn build(raws: &[Raw], with_accuracy: bool) -> Manifest {
    let mut file: ManifestFile = header("1");
    for (i, (macs, acc, lat, bytes)) in raws.iter().enumerate() {
        let mut v = variant(&format!("v{i}"), *macs, *acc, *lat);
        v.model_bytes = *bytes;
        v.peak_activation_bytes = macs / 4;
        if !with_accuracy {
            v.test_accuracy = None;
        }
        file.variants.push(v);
    }
    Manifest::try_from(file).expect("valid generated manifest")
}

/// A "Pareto" family: accuracy, latency and bytes all grow with MACs (what search produces).
fn pareto(raws: &[Raw]) -> Vec<Raw> {
    let mut macs: Vec<u64> = raws.iter().map(|r| r.0).collect();
    let mut acc: Vec<f64> = raws.iter().map(|r| r.1).collect();
    let mut lat: Vec<f64> = raws.iter().map(|r| r.2).collect();
    let mut bytes: Vec<u64> = raws.iter().map(|r| r.3).collect();
    macs.sort_unstable();
    acc.sort_by(f64::total_cmp);
    lat.sort_by(f64::total_cmp);
    bytes.sort_unstable();
    (0..raws.len())
        .map(|i| (macs[i], acc[i], lat[i], bytes[i]))
        .collect()
}

fn dev(score: f64, ram_bytes: u64) -> DeviceFacts {
    DeviceFacts {
        id: "d".into(),
        name: "d".into(),
        fingerprint: device_profiles::Fingerprint::from_u64(0xf0),
        score,
        ram_bytes: Some(ram_bytes),
        big_cores: 4,
    }
}

fn fits(m: &Manifest, v: &Variant, d: &DeviceFacts, p: &Policy) -> bool {
    let budget = p.latency_budget_ms.unwrap_or(m.default_latency_budget_ms());
    predicted_latency_ms(m, v, d) * (1.0 + p.safety_margin) <= budget
        && memory_need_bytes(v) <= (d.effective_ram_bytes() as f64 * p.memory_fraction) as u64
}

fn accuracy(m: &Manifest, id: &str) -> f64 {
    m.variant(id)
        .and_then(|v| v.test_accuracy)
        .unwrap_or(f64::NAN)
}

fn policy() -> impl Strategy<Value = Policy> {
    (prop::option::of(0.5f64..100.0), 0.05f64..1.0, 0.0f64..0.5).prop_map(|(b, f, m)| Policy {
        latency_budget_ms: b,
        memory_fraction: f,
        safety_margin: m,
    })
}

fn device_pair() -> impl Strategy<Value = (DeviceFacts, DeviceFacts)> {
    (
        0.1f64..100.0,
        1.0f64..20.0,
        64u64 << 20..8u64 << 30,
        0u64..8u64 << 30,
    )
        .prop_map(|(s, k, ram, extra)| (dev(s, ram), dev(s * k, ram + extra)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// On a Pareto family a more capable device never gets a less accurate variant.
    #[test]
    fn more_capable_never_gets_less_accurate(
        raws in prop::collection::vec(raw_variant(), 1..7),
        (weak, strong) in device_pair(),
        p in policy(),
    ) {
        let m = build(&pareto(&raws), true);
        let dw = select(&m, &weak, &p).unwrap();
        let ds = select(&m, &strong, &p).unwrap();
        prop_assert!(accuracy(&m, &ds.chosen) >= accuracy(&m, &dw.chosen),
            "weak got {} ({}), strong got {} ({})", dw.chosen, accuracy(&m, &dw.chosen), ds.chosen, accuracy(&m, &ds.chosen));
        prop_assert!(ds.fits || !dw.fits);
    }

    /// On any family: when the weaker device finds a fitting variant, the stronger one does
    /// too, and one at least as accurate.
    #[test]
    fn more_capable_keeps_fitting(
        raws in prop::collection::vec(raw_variant(), 1..7),
        (weak, strong) in device_pair(),
        p in policy(),
    ) {
        let m = build(&raws, true);
        let dw = select(&m, &weak, &p).unwrap();
        let ds = select(&m, &strong, &p).unwrap();
        if dw.fits {
            prop_assert!(ds.fits);
            prop_assert!(accuracy(&m, &ds.chosen) >= accuracy(&m, &dw.chosen));
        }
    }

    /// When some variant fits, the choice fits (never breaks a budget) and is the most accurate
    /// fitting one; when none fits, it is the smallest, flagged.
    #[test]
    fn choice_respects_budgets_or_is_smallest(
        raws in prop::collection::vec(raw_variant(), 1..7),
        (d, _) in device_pair(),
        p in policy(),
        with_accuracy in any::<bool>(),
    ) {
        let m = build(&raws, with_accuracy);
        let dec = select(&m, &d, &p).unwrap();
        let chosen = m.variant(&dec.chosen).unwrap();
        let fitting: Vec<&Variant> = m.variants().iter().filter(|v| fits(&m, v, &d, &p)).collect();
        if fitting.is_empty() {
            prop_assert!(!dec.fits);
            prop_assert!(!dec.shortfall.is_empty());
            let smallest = m.variants().iter()
                .min_by(|a, b| a.macs.cmp(&b.macs).then(a.model_bytes.cmp(&b.model_bytes)).then(a.id.cmp(&b.id)))
                .unwrap();
            prop_assert_eq!(&dec.chosen, &smallest.id);
        } else {
            prop_assert!(dec.fits);
            prop_assert!(fits(&m, chosen, &d, &p));
            let budget = p.latency_budget_ms.unwrap_or(m.default_latency_budget_ms());
            prop_assert!(dec.predicted_latency_ms * (1.0 + p.safety_margin) <= budget);
            prop_assert!(dec.memory_bytes <= dec.memory_budget_bytes);
            let rank = |v: &Variant| if with_accuracy { v.test_accuracy.unwrap() } else { v.macs as f64 };
            let best = fitting.iter().map(|v| rank(v)).fold(f64::MIN, f64::max);
            prop_assert_eq!(rank(chosen), best);
        }
        // Every other variant has exactly one reason, and the display has one line each.
        prop_assert_eq!(dec.reasons.len(), m.variants().len() - 1);
        let text = dec.to_string();
        for r in &dec.reasons {
            let tag = format!("`{}`: ", r.variant);
            prop_assert_eq!(text.lines().filter(|l| l.contains(&tag)).count(), 1);
        }
    }

    /// The order of variants in the manifest does not change the decision.
    #[test]
    fn deterministic_under_reordering(
        raws in prop::collection::vec(raw_variant(), 1..7),
        (d, _) in device_pair(),
        p in policy(),
        seed in any::<u64>(),
    ) {
        let m = build(&raws, true);
        let mut file = m.as_file().clone();
        // A seeded rotation + reversal of the variant list.
        let n = file.variants.len();
        file.variants.rotate_left((seed as usize) % n);
        if seed % 2 == 1 {
            file.variants.reverse();
        }
        let shuffled = Manifest::try_from(file).unwrap();
        prop_assert_eq!(select(&m, &d, &p).unwrap(), select(&shuffled, &d, &p).unwrap());
    }
}

#[test]
fn ties_are_broken_by_id() {
    // Identical variants apart from their ids: the first id wins, whatever the order.
    let mut file = header("1");
    for id in ["b", "a", "c"] {
        file.variants.push(variant(id, 1_000, 0.5, 1.0));
    }
    let m = Manifest::try_from(file).unwrap();
    let d = select(&m, &dev(10.0, 4 << 30), &Policy::default()).unwrap();
    assert_eq!(d.chosen, "a");
    assert_eq!(d.fallback_order, ["b", "c"]);
}
