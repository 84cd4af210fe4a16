//! The decision cache through `choose_and_load`.

use std::fs;

use runtime::{CacheKey, CacheLookup, DecisionCache, Policy, choose_and_load};

use crate::common::{device, write_bundle};

fn ok_len(_: &runtime::Variant, bytes: &[u8]) -> runtime::Result<usize> {
    Ok(bytes.len())
}

#[test]
fn first_launch_selects_and_caches_then_hits() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write_bundle(&tmp.path().join("bundle"), "1");
    let cache = DecisionCache::new(tmp.path().join("app"));
    let dev = device(10.0, "fp-a");
    let first = choose_and_load(&b, &dev, &Policy::default(), &cache, ok_len).unwrap();
    assert_eq!(first.variant.id, "large");
    assert_eq!(first.cache_lookup, CacheLookup::Miss);
    assert!(first.cache_error.is_none());
    let second = choose_and_load(&b, &dev, &Policy::default(), &cache, ok_len).unwrap();
    assert!(second.from_cache());
    assert_eq!(second.variant.id, "large");
}

#[test]
fn corrupt_cache_is_ignored_and_rewritten() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write_bundle(&tmp.path().join("bundle"), "1");
    let app = tmp.path().join("app");
    fs::create_dir_all(&app).unwrap();
    let cache = DecisionCache::new(&app);
    fs::write(
        cache.path(),
        b"{\"format_version\": 1, \"entries\": [ {\"key\": tru",
    )
    .unwrap();
    let dev = device(10.0, "fp-a");
    let key = CacheKey::new(b.manifest(), &dev, &Policy::default());
    assert!(matches!(cache.lookup(&key), CacheLookup::Corrupt { .. }));

    let loaded = choose_and_load(&b, &dev, &Policy::default(), &cache, ok_len).unwrap();
    assert!(matches!(loaded.cache_lookup, CacheLookup::Corrupt { .. }));
    assert_eq!(loaded.variant.id, "large");
    let hit = cache.load(&key).expect("rewritten");
    assert_eq!(hit.variant, "large");
    // Valid JSON now.
    let _: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(cache.path()).unwrap()).unwrap();
}

#[test]
fn changed_bundle_version_or_device_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = DecisionCache::new(tmp.path().join("app"));
    let b1 = write_bundle(&tmp.path().join("b1"), "1");
    let dev = device(10.0, "fp-a");
    choose_and_load(&b1, &dev, &Policy::default(), &cache, ok_len).unwrap();
    let k1 = CacheKey::new(b1.manifest(), &dev, &Policy::default());
    assert!(cache.load(&k1).is_some());

    // Same bundle id, new version.
    let b2 = write_bundle(&tmp.path().join("b2"), "2");
    let k2 = CacheKey::new(b2.manifest(), &dev, &Policy::default());
    assert_eq!(cache.lookup(&k2), CacheLookup::Stale);
    let l = choose_and_load(&b2, &dev, &Policy::default(), &cache, ok_len).unwrap();
    assert!(!l.from_cache());
    assert!(cache.load(&k2).is_some());
    assert!(
        cache.load(&k1).is_none(),
        "the entry for the old version was replaced"
    );

    // Another device (slower, other fingerprint): miss, and a new selection.
    let slow = device(5.0, "fp-b");
    let kb = CacheKey::new(b2.manifest(), &slow, &Policy::default());
    assert_eq!(cache.lookup(&kb), CacheLookup::Stale);
    let l = choose_and_load(&b2, &slow, &Policy::default(), &cache, ok_len).unwrap();
    assert!(!l.from_cache());
    assert_eq!(l.variant.id, "medium");

    // Another policy: miss too.
    let p = Policy {
        latency_budget_ms: Some(1000.0),
        ..Policy::default()
    };
    assert_eq!(
        cache.lookup(&CacheKey::new(b2.manifest(), &slow, &p)),
        CacheLookup::Stale
    );
}

#[test]
fn cache_write_failure_does_not_prevent_loading() {
    let tmp = tempfile::tempdir().unwrap();
    let b = write_bundle(&tmp.path().join("bundle"), "1");
    // The "app data folder" is a file: the cache cannot be written.
    let not_a_dir = tmp.path().join("file");
    fs::write(&not_a_dir, b"x").unwrap();
    let cache = DecisionCache::new(&not_a_dir);
    let l = choose_and_load(&b, &device(10.0, "fp"), &Policy::default(), &cache, ok_len).unwrap();
    assert_eq!(l.variant.id, "large");
    assert!(l.cache_error.is_some());
}
