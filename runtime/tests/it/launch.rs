//! Launching a real (tiny) bundle: cold and warm, and every fault on the way.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use device_profiles::{FsReader, SysReader, SystemFacts, probe_with};
use fixtures::{TINY_CLASSES, TINY_SIZE, ToySet, tiny_bundle, tiny_bundle_version};
use runtime::{
    CacheStatus, DEVICE_CACHE_FILE_NAME, Error, LaunchOptions, Launcher, Problem, size_order,
};

use crate::common::edit_manifest;

/// A launcher on `app` whose probe is quick (2 ms) and counted.
fn launcher(app: &Path) -> (Launcher, Arc<AtomicUsize>) {
    let probes = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&probes);
    let l = Launcher::new(app)
        .with_options(LaunchOptions {
            pick_budget_ms: 2,
            latency_window: 0,
            ..LaunchOptions::default()
        })
        .with_probe(move |o, r| {
            count.fetch_add(1, Ordering::SeqCst);
            probe_with(o, r)
        });
    (l, probes)
}

fn toy() -> ToySet {
    ToySet::new(8, TINY_SIZE, TINY_CLASSES, 1)
}

#[test]
fn cold_then_warm_launch_uses_both_caches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app");
    let (l, probes) = launcher(&app);

    let mut cold = l.launch(&dir).unwrap();
    let r = cold.report().clone();
    assert!(r.probed && !r.is_warm(), "{r}");
    assert_eq!(r.device_cache, CacheStatus::Miss);
    assert_eq!(r.decision_cache, CacheStatus::Miss);
    assert!(r.timings.probe_ms.is_some());
    assert_eq!(r.variant, r.decision.chosen);
    assert!(r.fallback_events.is_empty());
    assert!(app.join(DEVICE_CACHE_FILE_NAME).is_file());
    assert!(app.join(runtime::CACHE_FILE_NAME).is_file());
    let set = toy();
    let p = cold.predict(set.image(0)).unwrap();
    assert!(p.class < TINY_CLASSES);
    assert!(cold.report().timings.first_predict_ms.is_some());
    assert_eq!(probes.load(Ordering::SeqCst), 1);

    // Warm: no probe, both caches hit, same variant, same answer.
    let (l2, probes2) = launcher(&app);
    let mut warm = l2.launch(&dir).unwrap();
    let w = warm.report().clone();
    assert!(w.is_warm(), "{w}");
    assert_eq!(probes2.load(Ordering::SeqCst), 0, "warm launch probed");
    assert_eq!(w.timings.probe_ms, None);
    assert_eq!(w.device, r.device);
    assert_eq!(w.variant, r.variant);
    assert_eq!(warm.predict(set.image(0)).unwrap(), p);
    // The report serialises (the example prints it with --json).
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["device_cache"]["status"], "hit");

    // Cleared caches: cold again.
    l2.clear_caches().unwrap();
    let again = l2.launch(&dir).unwrap();
    assert!(again.report().probed);
    assert_eq!(probes2.load(Ordering::SeqCst), 1);
}

#[test]
fn corrupt_device_cache_profiles_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app");
    let (l, probes) = launcher(&app);
    l.launch(&dir).unwrap();
    fs::write(
        app.join(DEVICE_CACHE_FILE_NAME),
        b"{\"format_version\": 1, \"dev",
    )
    .unwrap();
    let r = l.launch(&dir).unwrap().report().clone();
    assert!(r.probed);
    assert!(
        matches!(r.device_cache, CacheStatus::Corrupt { .. }),
        "{:?}",
        r.device_cache
    );
    assert_eq!(probes.load(Ordering::SeqCst), 2);
    // Rewritten: the next launch is warm.
    assert!(l.launch(&dir).unwrap().report().is_warm());
    // A corrupt decision cache: re-select, no probe.
    fs::write(app.join(runtime::CACHE_FILE_NAME), b"garbage").unwrap();
    let r = l.launch(&dir).unwrap().report().clone();
    assert!(!r.probed && r.device_cache.is_hit());
    assert!(matches!(r.decision_cache, CacheStatus::Corrupt { .. }));
    assert_eq!(probes.load(Ordering::SeqCst), 2);
}

#[test]
fn corrupt_chosen_file_falls_back_and_still_predicts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let tiny = tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app");
    let (l, _) = launcher(&app);
    let chosen = l.launch(&dir).unwrap().report().variant.clone();
    let order: Vec<String> = size_order(tiny.bundle.manifest())
        .iter()
        .map(|v| v.id.clone())
        .collect();
    let file = dir.join(format!("{chosen}.safetensors"));
    let mut bytes = fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(&file, bytes).unwrap();

    // Warm launch: the cached variant fails its checksum; the next one loads and predicts.
    let mut launch = l.launch(&dir).unwrap();
    let r = launch.report().clone();
    assert_eq!(r.start_variant, chosen);
    assert_eq!(r.fallback_events.len(), 1, "{r}");
    assert_eq!(r.fallback_events[0].variant, chosen);
    assert_eq!(r.fallback_events[0].problem, Problem::ChecksumMismatch);
    assert_ne!(r.variant, chosen);
    let pos = order.iter().position(|id| *id == chosen).unwrap();
    let expected = order
        .get(pos + 1)
        .or_else(|| order.get(pos.wrapping_sub(1)))
        .unwrap();
    assert_eq!(&r.variant, expected, "steps down to the next smaller one");
    let set = toy();
    assert!(launch.predict(set.image(3)).unwrap().class < TINY_CLASSES);
    // Persisted: the next launch starts at the variant that loads.
    let r = l.launch(&dir).unwrap().report().clone();
    assert_eq!(r.start_variant, *expected);
    assert!(r.fallback_events.is_empty());
}

#[test]
fn every_variant_gone_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    for id in ["max", "mid", "min"] {
        fs::remove_file(dir.join(format!("{id}.safetensors"))).unwrap();
    }
    let (l, _) = launcher(&tmp.path().join("app"));
    let e = l.launch(&dir).unwrap_err();
    match &e {
        Error::AllVariantsFailed { failures, .. } => {
            assert_eq!(failures.len(), 3);
            assert!(failures.iter().all(|f| f.problem == Problem::Missing));
        }
        e => panic!("{e:?}"),
    }
    let msg = e.to_string();
    for id in ["max", "mid", "min"] {
        assert!(msg.contains(&format!("{id}.safetensors")), "{msg}");
    }
    assert!(
        msg.contains("no variant could be loaded") && msg.contains("re-copy"),
        "{msg}"
    );
}

#[test]
fn newer_manifest_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    edit_manifest(&dir, |v| {
        v["format_version"] = 2.into();
        v["a_field_from_the_future"] = true.into();
    });
    let (l, probes) = launcher(&tmp.path().join("app"));
    let e = l.launch(&dir).unwrap_err();
    assert!(matches!(e, Error::NewerFormat { found: 2, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("manifest.json") && msg.contains("upgrade the runtime"),
        "{msg}"
    );
    assert_eq!(
        probes.load(Ordering::SeqCst),
        0,
        "nothing runs before the manifest is read"
    );
}

#[test]
fn changed_bundle_reselects_without_probing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app");
    let (l, probes) = launcher(&app);
    l.launch(&dir).unwrap();
    tiny_bundle_version(&dir, "2").unwrap();
    let r = l.launch(&dir).unwrap().report().clone();
    assert!(r.device_cache.is_hit() && !r.probed);
    assert!(matches!(r.decision_cache, CacheStatus::Stale { .. }), "{r}");
    assert_eq!(r.bundle_version, "2");
    assert_eq!(probes.load(Ordering::SeqCst), 1);
    assert!(l.launch(&dir).unwrap().report().is_warm());
}

/// The real system, except that `/proc/meminfo` reports `mem_kib` of RAM.
struct OtherRam {
    mem_kib: u64,
}

impl SysReader for OtherRam {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        if path == Path::new("/proc/meminfo") {
            return Some(format!("MemTotal: {} kB\n", self.mem_kib));
        }
        FsReader.read_to_string(path)
    }
    fn system_facts(&self) -> SystemFacts {
        SystemFacts {
            total_memory_bytes: Some(self.mem_kib * 1024),
            ..SystemFacts::from_sysinfo()
        }
    }
}

#[test]
fn changed_device_probes_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app");
    let opts = LaunchOptions {
        pick_budget_ms: 2,
        latency_window: 0,
        ..LaunchOptions::default()
    };
    let small = Launcher::new(&app)
        .with_options(opts.clone())
        .with_reader(OtherRam { mem_kib: 2 << 20 });
    let r1 = small.launch(&dir).unwrap().report().clone();
    assert!(r1.probed);
    assert!(small.launch(&dir).unwrap().report().is_warm());
    let big = Launcher::new(&app)
        .with_options(opts)
        .with_reader(OtherRam { mem_kib: 8 << 20 });
    let r2 = big.launch(&dir).unwrap().report().clone();
    assert!(r2.probed, "{r2}");
    assert!(matches!(r2.device_cache, CacheStatus::Stale { .. }), "{r2}");
    assert!(
        matches!(r2.decision_cache, CacheStatus::Stale { .. }),
        "{r2}"
    );
    assert_ne!(r1.hardware_fingerprint, r2.hardware_fingerprint);
    assert_eq!(r2.device.ram_bytes, Some(8 << 30));
}

#[test]
fn a_slow_variant_steps_down_after_the_window_and_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    // A device the selector thinks is infinitely fast (so it starts at `max`), and a budget no
    // real prediction meets.
    let app = tmp.path().join("app");
    let l = Launcher::new(&app)
        .with_options(LaunchOptions {
            pick_budget_ms: 2,
            latency_window: 2,
            policy: runtime::Policy {
                latency_budget_ms: Some(1e-6),
                ..runtime::Policy::default()
            },
            ..LaunchOptions::default()
        })
        .with_probe(|o, r| {
            let mut p = probe_with(o, r);
            p.score = 1e12;
            p
        });
    let mut launch = l.launch(&dir).unwrap();
    assert_eq!(launch.report().variant, "max");
    let set = toy();
    launch.predict(set.image(0)).unwrap();
    launch.predict(set.image(1)).unwrap();
    let r = launch.report().clone();
    assert_eq!(r.latency_step_downs.len(), 1, "{r}");
    assert_eq!(
        (r.latency_step_downs[0].from.as_str(), r.variant.as_str()),
        ("max", "mid")
    );
    assert_eq!(launch.session().variant().id, "mid");
    launch.predict(set.image(2)).unwrap();
    // The next launch starts where the last one ended up.
    assert_eq!(l.launch(&dir).unwrap().report().start_variant, "mid");
}

#[test]
fn the_thread_pool_is_process_wide() {
    let n = runtime::threads_in_force(); // creates the pool if no test did yet
    let e = runtime::set_threads(n + 1).unwrap_err();
    assert!(
        matches!(e, Error::Threads { in_force, .. } if in_force == n),
        "{e:?}"
    );
    assert!(e.to_string().contains("before the first inference"), "{e}");
}
