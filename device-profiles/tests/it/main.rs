//! Integration tests of the public API: reading profile files, the catalog, and the probe.

use std::error::Error as _;
use std::path::Path;

use device_profiles::{
    DeviceProfile, Error, ProbeOptions, SysReader, SystemFacts, TierClass, catalog, probe,
    probe_with,
};

/// The error and its sources, joined like anyhow's `{:#}`.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s += &format!(": {c}");
        cur = c.source();
    }
    s
}

fn sample_text() -> String {
    catalog::BUILTIN_FILES[0].1.to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn unknown_field_error_names_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let text = sample_text().replacen("\"ram_bytes\"", "\"ram_gigabytes\": 2,\n  \"ram_bytes\"", 1);
    let path = write(dir.path(), "typo.json", &text);
    let e = DeviceProfile::from_file(&path).unwrap_err();
    let msg = chain(&e);
    assert!(matches!(e, Error::Json { line, .. } if line > 0), "{msg}");
    assert!(msg.contains("typo.json"), "{msg}");
    assert!(msg.contains("unknown field `ram_gigabytes`"), "{msg}");
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    let mut v: serde_json::Value = serde_json::from_str(&sample_text()).unwrap();
    v["measured"].as_object_mut().unwrap().remove("mem_bw_gbps");
    let e = DeviceProfile::from_json_str(&v.to_string(), "x.json").unwrap_err();
    assert!(
        chain(&e).contains("missing field `mem_bw_gbps`"),
        "{}",
        chain(&e)
    );

    let mut v: serde_json::Value = serde_json::from_str(&sample_text()).unwrap();
    v["cpu"]["clusters"][0]["count"] = serde_json::json!("four");
    let e = DeviceProfile::from_json_str(&v.to_string(), "x.json").unwrap_err();
    assert!(
        chain(&e).contains("invalid type: string \"four\""),
        "{}",
        chain(&e)
    );

    let mut v: serde_json::Value = serde_json::from_str(&sample_text()).unwrap();
    v["tier"] = serde_json::json!("ultra");
    let e = DeviceProfile::from_json_str(&v.to_string(), "x.json").unwrap_err();
    assert!(
        chain(&e).contains("unknown variant `ultra`"),
        "{}",
        chain(&e)
    );
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = DeviceProfile::from_json_str("{\n  \"format_version\": 1,\n  \"id\": }", "broken.json")
        .unwrap_err();
    let msg = chain(&e);
    assert!(
        msg.starts_with("broken.json: malformed device profile at line 3"),
        "{msg}"
    );
}

#[test]
fn unknown_or_missing_format_version_is_rejected_first() {
    let future = sample_text().replacen("\"format_version\": 1", "\"format_version\": 2", 1) + ""; // the rest would parse; the version check comes first
    let e = DeviceProfile::from_json_str(&future, "future.json").unwrap_err();
    assert!(
        matches!(&e, Error::UnsupportedFormatVersion { found, supported: 1, .. } if found == "2"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("future.json: field `format_version` is 2"),
        "{e}"
    );

    // A future file with new fields still reports the version, not the unknown field.
    let mut v: serde_json::Value = serde_json::from_str(&future).unwrap();
    v["gpu"] = serde_json::json!({"name": "Mali"});
    let e = DeviceProfile::from_json_str(&v.to_string(), "future.json").unwrap_err();
    assert!(matches!(e, Error::UnsupportedFormatVersion { .. }), "{e}");

    let mut v: serde_json::Value = serde_json::from_str(&sample_text()).unwrap();
    v.as_object_mut().unwrap().remove("format_version");
    let e = DeviceProfile::from_json_str(&v.to_string(), "old.json").unwrap_err();
    assert!(matches!(e, Error::MissingFormatVersion { .. }), "{e}");
    assert!(
        e.to_string().contains("missing field `format_version`"),
        "{e}"
    );
}

#[test]
fn missing_file_is_an_io_error_with_the_path() {
    let e = catalog::load_file("/nonexistent/phone.json").unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/phone.json"), "{e}");
}

#[test]
fn catalog_spans_very_low_to_flagship_and_scores_follow_peak_compute() {
    let phones = catalog::builtin().unwrap();
    assert!(phones.len() >= 12, "{}", phones.len());
    for p in &phones {
        p.validate().unwrap();
        assert!(
            p.ram_bytes.is_some() && !p.sources.is_empty() && !p.assumptions.is_empty(),
            "{}",
            p.id
        );
        assert!(p.peak_gflops().is_some(), "{}", p.id);
    }
    let weakest = phones
        .iter()
        .min_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap();
    let flagship = phones
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score))
        .unwrap();
    assert_eq!(weakest.tier, TierClass::VeryLow);
    assert_eq!(flagship.tier, TierClass::Flagship);
    assert!(
        weakest.cpu.clusters.iter().all(|c| c.core == "cortex-a53"),
        "{:?}",
        weakest.cpu
    );
    assert!(weakest.ram_bytes.unwrap() < 2 << 30);
    let score_ratio = flagship.score / weakest.score;
    let peak_ratio = flagship.peak_gflops().unwrap() / weakest.peak_gflops().unwrap();
    // Roughly the ratio of peak compute: bandwidth (weight 0.2) grows a bit faster than compute across the range.
    assert!(
        (0.75..=1.35).contains(&(score_ratio / peak_ratio)),
        "score ratio {score_ratio:.2} vs peak ratio {peak_ratio:.2}"
    );
    // Every class appears.
    for t in [
        TierClass::VeryLow,
        TierClass::Low,
        TierClass::Mid,
        TierClass::High,
        TierClass::Flagship,
    ] {
        assert!(phones.iter().any(|p| p.tier == t), "no {t} phone");
    }
}

#[test]
fn catalog_big_cores_and_memory_budget() {
    let s23 = catalog::builtin_by_id("samsung-galaxy-s23")
        .unwrap()
        .unwrap();
    assert_eq!(s23.big_core_count(), 5); // X3 + 2 A715 + 2 A710; the 3 A510 are little
    let a03 = catalog::builtin_by_id("samsung-galaxy-a03-core")
        .unwrap()
        .unwrap();
    assert_eq!(a03.big_core_count(), 8); // all A55: uniform
    let g85 = catalog::builtin_by_id("xiaomi-redmi-note-9")
        .unwrap()
        .unwrap();
    assert_eq!(g85.big_core_count(), 2);
    assert!(a03.memory_budget_bytes(0.25) < g85.memory_budget_bytes(0.25));
    assert!(catalog::builtin_by_id("no-such-phone").unwrap().is_none());
}

struct Denied;

impl SysReader for Denied {
    fn read_to_string(&self, _path: &Path) -> Option<String> {
        None
    }
    fn system_facts(&self) -> SystemFacts {
        SystemFacts::default()
    }
}

#[test]
fn probe_survives_unreadable_proc_and_sys() {
    let p = probe_with(
        &ProbeOptions {
            budget_ms: 10,
            threads: None,
        },
        &Denied,
    );
    p.validate().unwrap();
    assert_eq!(p.ram_bytes, None);
    assert!(p.cpu.clusters.iter().all(|c| c.max_mhz.is_none()));
    assert!(p.measured.gemm_gflops_1t > 0.0);
    // Written and read back like any profile.
    let back = DeviceProfile::from_json_str(&p.to_json_pretty().unwrap(), "probe.json").unwrap();
    assert_eq!(back.fingerprint(), p.fingerprint());
}

#[test]
fn host_probe_is_valid_and_its_fingerprint_is_stable() {
    let a = probe(&ProbeOptions {
        budget_ms: 5,
        threads: Some(1),
    });
    let b = probe(&ProbeOptions::default());
    a.validate().unwrap();
    b.validate().unwrap();
    assert_eq!(
        a.fingerprint(),
        b.fingerprint(),
        "fingerprint must not depend on measurements or options"
    );
    assert_eq!(a.id, b.id);
    assert!(b.ram_bytes.is_some(), "this host exposes /proc/meminfo");
    let usable = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        b.core_count() as usize >= usable,
        "{} cores listed, {usable} usable",
        b.core_count()
    );
}
