//! Stepping down when a file is missing, damaged, unloadable, or too slow.

use std::fs;

use runtime::{
    AdaptiveLatency, CacheKey, DecisionCache, Error, LatencyVerdict, Policy, Problem,
    StepDownReason, choose_and_load, step_down_slow,
};

use crate::common::{device, weights, write_bundle};

#[test]
fn corrupt_chosen_file_steps_down_and_is_persisted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let b = write_bundle(&dir, "1");
    let mut bytes = fs::read(dir.join("large.bin")).unwrap();
    bytes[0] ^= 1;
    fs::write(dir.join("large.bin"), bytes).unwrap();

    let cache = DecisionCache::new(tmp.path().join("app"));
    let dev = device(10.0, "fp");
    let mut loaded_ids = Vec::new();
    let l = choose_and_load(&b, &dev, &Policy::default(), &cache, |v, bytes| {
        loaded_ids.push(v.id.clone());
        assert_eq!(
            bytes,
            weights(&v.id).as_slice(),
            "only verified bytes are loaded"
        );
        Ok(v.id.clone())
    })
    .unwrap();
    assert_eq!(l.decision.chosen, "large");
    assert_eq!(
        (l.variant.id.as_str(), l.model.as_str()),
        ("medium", "medium")
    );
    assert_eq!(
        loaded_ids,
        ["medium"],
        "the corrupt file never reaches the loader"
    );
    assert_eq!(l.events.len(), 1);
    assert_eq!(l.events[0].variant, "large");
    assert_eq!(l.events[0].problem, Problem::ChecksumMismatch);
    assert!(l.events[0].message.contains("large.bin"));

    // Persisted with the step-down.
    let key = CacheKey::new(b.manifest(), &dev, &Policy::default());
    let cached = cache.load(&key).unwrap();
    assert_eq!(cached.variant, "medium");
    assert_eq!(cached.step_downs.len(), 1);
    assert_eq!(
        (
            cached.step_downs[0].from.as_str(),
            cached.step_downs[0].to.as_str()
        ),
        ("large", "medium")
    );
    assert!(
        matches!(&cached.step_downs[0].reason, StepDownReason::LoadFailed { message } if message.contains("sha256"))
    );

    // The next launch starts at medium, with no failure.
    let l = choose_and_load(&b, &dev, &Policy::default(), &cache, |v, _| {
        Ok(v.id.clone())
    })
    .unwrap();
    assert!(l.from_cache() && l.events.is_empty());
    assert_eq!(l.model, "medium");
}

#[test]
fn unloadable_file_steps_down() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write_bundle(&tmp.path().join("bundle"), "1");
    let cache = DecisionCache::new(tmp.path().join("app"));
    let l = choose_and_load(
        &b,
        &device(10.0, "fp"),
        &Policy::default(),
        &cache,
        |v, _| {
            if v.id == "small" {
                Ok(())
            } else {
                Err(runtime::Error::LoadFailed {
                    path: v.file.clone().into(),
                    source: netspec::Error::Data {
                        path: v.file.clone().into(),
                        reason: format!("arch mismatch in {}", v.id),
                    },
                })
            }
        },
    )
    .unwrap();
    assert_eq!(l.variant.id, "small");
    let tried: Vec<_> = l
        .events
        .iter()
        .map(|e| (e.variant.as_str(), e.problem))
        .collect();
    assert_eq!(
        tried,
        vec![
            ("large", Problem::LoadFailed),
            ("medium", Problem::LoadFailed)
        ]
    );
    assert!(l.events[1].message.contains("arch mismatch in medium"));
    let cached = cache
        .load(&CacheKey::new(
            b.manifest(),
            &device(10.0, "fp"),
            &Policy::default(),
        ))
        .unwrap();
    let steps: Vec<_> = cached
        .step_downs
        .iter()
        .map(|s| (s.from.as_str(), s.to.as_str()))
        .collect();
    assert_eq!(steps, vec![("large", "medium"), ("medium", "small")]);
}

#[test]
fn smaller_failing_falls_back_to_larger_as_last_resort() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let b = write_bundle(&dir, "1");
    fs::remove_file(dir.join("small.bin")).unwrap();
    // Score 2: large 40 ms, medium 20 ms, small 5 ms → small chosen; its file is gone.
    let cache = DecisionCache::new(tmp.path().join("app"));
    let l = choose_and_load(
        &b,
        &device(2.0, "fp"),
        &Policy::default(),
        &cache,
        |_, _| Ok(()),
    )
    .unwrap();
    assert_eq!(l.decision.chosen, "small");
    assert_eq!(l.variant.id, "medium");
    assert_eq!(l.events[0].problem, Problem::Missing);
    let cached = cache
        .load(&CacheKey::new(
            b.manifest(),
            &device(2.0, "fp"),
            &Policy::default(),
        ))
        .unwrap();
    assert!(
        !cached.fits,
        "medium is over budget on this device and the cache says so"
    );
}

#[test]
fn all_files_gone_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let b = write_bundle(&dir, "1");
    for f in ["large.bin", "medium.bin", "small.bin"] {
        fs::remove_file(dir.join(f)).unwrap();
    }
    let cache = DecisionCache::new(tmp.path().join("app"));
    let e = choose_and_load(
        &b,
        &device(10.0, "fp"),
        &Policy::default(),
        &cache,
        |_, _| Ok(()),
    )
    .unwrap_err();
    match &e {
        Error::AllVariantsFailed { failures, .. } => {
            let ids: Vec<_> = failures.iter().map(|f| f.variant.as_str()).collect();
            assert_eq!(ids, ["large", "medium", "small"]);
            assert!(failures.iter().all(|f| f.problem == Problem::Missing));
        }
        e => panic!("{e:?}"),
    }
    let msg = e.to_string();
    for f in [
        "large.bin",
        "medium.bin",
        "small.bin",
        "no variant could be loaded",
    ] {
        assert!(msg.contains(f), "{f} missing from: {msg}");
    }
    assert_eq!(msg.lines().count(), 4, "one line per failure: {msg}");
    assert!(!cache.path().exists(), "a failure is not persisted");
}

#[test]
fn slow_first_inferences_step_down_and_persist() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write_bundle(&tmp.path().join("bundle"), "1");
    let cache = DecisionCache::new(tmp.path().join("app"));
    let dev = device(10.0, "fp");
    let p = Policy::default();
    let l = choose_and_load(&b, &dev, &p, &cache, |_, _| Ok(())).unwrap();
    assert_eq!(l.variant.id, "large");

    // Budget 10 ms, margin 15%: limit 11.5 ms; the device is slower than predicted.
    let mut watch = AdaptiveLatency::for_decision(&l.decision, 5);
    let mut verdict = LatencyVerdict::Collecting;
    for ms in [14.0, 13.0, 30.0, 12.5, 13.5] {
        verdict = watch.record(ms);
    }
    assert_eq!(
        verdict,
        LatencyVerdict::StepDown {
            median_ms: 13.5,
            limit_ms: 10.0 * 1.15
        }
    );
    let to = step_down_slow(&b, &dev, &p, &cache, "large", &verdict).unwrap();
    assert_eq!(to.as_deref(), Some("medium"));

    let l = choose_and_load(&b, &dev, &p, &cache, |_, _| Ok(())).unwrap();
    assert!(l.from_cache());
    assert_eq!(l.variant.id, "medium");
    let cached = cache.load(&CacheKey::new(b.manifest(), &dev, &p)).unwrap();
    assert!(
        matches!(cached.step_downs[..], [ref s] if matches!(s.reason, StepDownReason::TooSlow { .. }))
    );

    // A Keep verdict or the smallest variant: nothing to do.
    let keep = LatencyVerdict::Keep { median_ms: 1.0 };
    assert_eq!(
        step_down_slow(&b, &dev, &p, &cache, "medium", &keep).unwrap(),
        None
    );
    assert_eq!(
        step_down_slow(&b, &dev, &p, &cache, "small", &verdict).unwrap(),
        None
    );
}
