//! Fixtures: tiny manifests and bundles with fake weights.

use std::path::Path;

use runtime::{
    ArchConfig, BUNDLE_FORMAT_VERSION, Bundle, BundleWriter, DeviceFacts, Dtype, Family,
    ManifestFile, Reference, SearchSpace, Tier, Variant,
};

/// The search space of every fixture.
pub fn space() -> SearchSpace {
    SearchSpace::tiny(1, 3, 16)
}

/// A variant with the given costs (file `<id>.bin`, hash and size filled in by the writer).
pub fn variant(id: &str, macs: u64, accuracy: f64, latency_ms: f64) -> Variant {
    let arch = ArchConfig::min(&space());
    Variant {
        id: id.into(),
        resolution: arch.resolution,
        arch,
        params: macs / 10,
        macs,
        model_bytes: 1,
        dtype: Dtype::F32,
        peak_activation_bytes: macs,
        test_accuracy: Some(accuracy),
        predicted_accuracy: None,
        latency_ms,
        latency_by_threads: vec![],
        file: format!("{id}.bin"),
        sha256: "0".repeat(64),
    }
}

/// A manifest header (no variants) with reference score 10 and a 10 ms default budget.
pub fn header(version: &str) -> ManifestFile {
    let space = space();
    ManifestFile {
        format_version: BUNDLE_FORMAT_VERSION,
        bundle_id: "tiny-family".into(),
        bundle_version: version.into(),
        created_by: "runtime tests".into(),
        family: Family {
            name: "tiny".into(),
            labels: vec!["a".into(), "b".into(), "c".into()],
            in_channels: 1,
            image_size: 16,
            mean: vec![0.5],
            std: vec![0.25],
            search_space: space,
        },
        reference: Reference {
            profile_id: "ref".into(),
            score: 10.0,
        },
        default_latency_budget_ms: 10.0,
        variants: vec![],
        tiers: vec![],
    }
}

/// Three variants: `large` (8 ms on the reference), `medium` (4 ms), `small` (1 ms).
pub fn three() -> Vec<Variant> {
    vec![
        variant("large", 3_000_000, 0.90, 8.0),
        variant("medium", 2_000_000, 0.86, 4.0),
        variant("small", 1_000_000, 0.80, 1.0),
    ]
}

/// Fake weights of a variant.
pub fn weights(id: &str) -> Vec<u8> {
    format!("fake weights of {id} ").repeat(8).into_bytes()
}

/// A writer for the three-variant bundle at `version`, with one tier per variant.
pub fn writer(version: &str) -> BundleWriter {
    let mut h = header(version);
    h.tiers = ["large", "medium", "small"]
        .iter()
        .map(|id| Tier {
            name: format!("tier-{id}"),
            max_latency_ms: 10.0,
            max_model_bytes: 1 << 20,
            max_peak_memory_bytes: 1 << 24,
            variant: (*id).into(),
        })
        .collect();
    let mut w = BundleWriter::new(h);
    for v in three() {
        let bytes = weights(&v.id);
        w.add_variant(v, bytes);
    }
    w
}

/// Writes the three-variant bundle to `dir`.
pub fn write_bundle(dir: &Path, version: &str) -> Bundle {
    writer(version).write(dir).expect("write bundle")
}

/// A device of `score` with 4 GiB of RAM, named `fp`, with a fingerprint of its own per name.
pub fn device(score: f64, fp: &str) -> DeviceFacts {
    let raw = fp
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    DeviceFacts {
        id: format!("dev-{fp}"),
        name: "Test device".into(),
        fingerprint: device_profiles::Fingerprint::from_u64(raw),
        score,
        ram_bytes: Some(4 << 30),
        big_cores: 2,
    }
}

/// Rewrites `manifest.json` in `dir` through `edit` on its JSON value.
pub fn edit_manifest(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}
