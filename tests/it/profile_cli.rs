//! `profile`: this machine and the catalog.

use crate::util::*;

#[test]
fn profile_json_and_catalog() {
    let o = run(&["profile", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["score"].as_f64().unwrap() > 0.0, "{v}");
    assert!(
        v["measured"]["gemm_gflops_mt"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    // the printed profile is a valid profile file that `select --profile` can read back
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("me.json");
    std::fs::write(&p, stdout(&o)).unwrap();
    device_profiles::DeviceProfile::from_file(&p).unwrap();

    let o = run(&["profile", "--catalog"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.lines().count() >= 13, "{table}");
    assert!(table.contains("cortex") || table.contains("a53"), "{table}");
}

#[test]
fn demo_config_matches_the_committed_file() {
    let committed = supernet::train::TrainConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/demo.json"
    )))
    .unwrap();
    let full = supernet::train::TrainConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/fmnist-full.json"
    )))
    .unwrap();
    assert_eq!(committed.space, full.space);
    assert_eq!(
        committed.space,
        Some(supernet::SearchSpace::small_for(1, 10, 28))
    );
    assert_eq!(committed.epochs, 2);
}

#[test]
fn bench_train_step_reports_a_rate_for_both_methods() {
    for m in ["sandwich", "progressive"] {
        let o = run(&[
            "bench",
            "train-step",
            "--space",
            "tiny",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--method",
            m,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        assert_eq!(v["method"], m);
        assert!(
            v["img_per_s"].as_f64().unwrap() > 0.0 && v["median_ms"].as_f64().unwrap() > 0.0,
            "{v}"
        );
    }
}
