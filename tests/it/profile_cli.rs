//! `profile`: this machine and the catalog.

use crate::util::*;

#[test]
fn profile_json_and_catalog() {
    let o = run(&["profile", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // the printed profile is a valid profile file that `select --profile` can read back
    let t = tempfile::tempdir().unwrap();
    let p = t.path().join("me.json");
    std::fs::write(&p, stdout(&o)).unwrap();
    let me = device_profiles::DeviceProfile::from_file(&p).unwrap();
    // its score is the one the model computes from what it printed (spec, else measured
    // figures), its class the one that score and its RAM give
    let score = device_profiles::device_score(&me.cpu, &me.measured);
    assert!(
        (me.score - score).abs() <= 1e-9 * score && score > 0.0,
        "printed {} vs recomputed {score}: {v}",
        me.score
    );
    assert_eq!(
        me.tier,
        device_profiles::tier_class(me.score, me.ram_bytes),
        "{v}"
    );
    let one = v["measured"]["gemm_gflops_1t"].as_f64().unwrap();
    let all = v["measured"]["gemm_gflops_mt"].as_f64().unwrap();
    assert!(one > 0.0 && all >= 0.5 * one, "{v}");

    // the catalog table lists every built-in phone
    let o = run(&["profile", "--catalog"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    let phones = device_profiles::catalog::builtin().unwrap();
    assert!(phones.len() >= 13);
    for phone in &phones {
        assert!(table.contains(&phone.id), "{} missing:\n{table}", phone.id);
    }
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
        // the rate is the batch over the median step time
        let (rate, ms) = (
            v["img_per_s"].as_f64().unwrap(),
            v["median_ms"].as_f64().unwrap(),
        );
        let batch = v["batch"].as_f64().unwrap();
        assert_eq!(batch, 64.0, "{v}");
        assert!(
            ms > 0.0 && (rate * ms / 1e3 - batch).abs() < 1e-6 * batch,
            "{v}"
        );
        // the sandwich trains the largest, the smallest and at least one random sub-net a step
        let subnets = v["subnets_per_step"].as_u64().unwrap();
        assert!(
            if m == "sandwich" {
                subnets >= 3
            } else {
                subnets >= 1
            },
            "{v}"
        );
        assert!(v["loss_first"].as_f64().is_some_and(|l| l > 0.0), "{v}");
    }
}
