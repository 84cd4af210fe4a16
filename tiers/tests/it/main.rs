//! End to end over a tiny generated dataset: train one epoch, then latency table → predictor →
//! search → bundle → verify.

use supernet::SearchSpace;
use supernet::train::{TrainConfig, trainer::TrainOptions};

#[test]
fn run_all_builds_a_verified_bundle_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("toy");
    fixtures::write_toy_idx(&data_dir, 160, 12, 4).unwrap();
    let data = supernet::data::load_dir(&data_dir, 1).unwrap();
    let cfg = TrainConfig {
        seed: 1,
        epochs: 1,
        batch_size: 32,
        sandwich_random: 1,
        warmup_epochs: 0.0,
        calib_images: 64,
        eval_limit: Some(40),
        space: Some(SearchSpace::tiny(1, 4, 12)),
        ..TrainConfig::default()
    };
    let run = tmp.path().join("run");
    supernet::train::train(
        &cfg,
        &data,
        &run,
        false,
        &TrainOptions {
            keep_checkpoints: 1,
            ..TrainOptions::default()
        },
    )
    .unwrap();

    let out = tmp.path().join("slice");
    let opts = tiers::PipelineOptions {
        samples: 10,
        seed: 3,
        int8: true,
        data_dir: Some(data_dir.clone()),
        sample_calib_images: 32,
        val_images: 32,
        val_fraction: 0.25,
        calib_images: 64,
        test_limit: None,
        lut_validation_archs: 2,
        timing: tiers::TimingOptions {
            runs: 3,
            min_run_us: 50.0,
        },
        search: tiers::SearchOptions {
            population: 20,
            generations: 5,
            ..Default::default()
        },
        ..tiers::PipelineOptions::default()
    };
    let summary = tiers::run_all(&run, &out, &opts).unwrap();
    let table = summary.to_string();
    assert_eq!(summary.rows.len(), 4, "{table}");
    assert!(
        table.contains("very-low") && table.contains("flagship"),
        "{table}"
    );
    for f in [
        "latency_lut.json",
        "samples.jsonl",
        "predictor.json",
        "search.json",
        "pareto.svg",
        "pareto.png",
    ] {
        assert!(out.join("search").join(f).is_file(), "{f} missing");
    }
    // the PNG has real (anti-aliased) text: grey edge pixels, which bare shapes lack
    let png = image::open(out.join("search/pareto.png"))
        .unwrap()
        .to_rgb8();
    let edges = png
        .pixels()
        .filter(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2] && (90..170).contains(&p.0[0]))
        .count();
    assert!(
        edges > 500,
        "{edges} anti-aliased grey pixels: no text drawn?"
    );
    let samples = std::fs::read_to_string(out.join("search/samples.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 10);

    // the bundle verifies, loads, and its accuracies re-measure exactly
    let check = tiers::verify_bundle(&summary.bundle_dir, Some(&data.test)).unwrap();
    assert!(check.is_ok(1e-9), "{check}");
    let bundle = runtime::Bundle::open(&summary.bundle_dir).unwrap();
    let m = bundle.manifest();
    assert_eq!(m.tiers().len(), 4);
    assert!(m.variants().iter().any(|v| v.dtype == runtime::Dtype::Int8));
    assert_eq!(m.reference().profile_id, "samsung-galaxy-a01-core");
    for t in m.tiers() {
        let v = m.variant(&t.variant).unwrap();
        assert!(v.model_bytes <= t.max_model_bytes, "{t:?}");
        runtime::Session::open(&bundle, &v.id).unwrap();
    }

    // a damaged file fails verification
    let victim = bundle.variant_path(&m.variants()[0]);
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    assert!(
        !tiers::verify_bundle(&summary.bundle_dir, None)
            .unwrap()
            .report
            .is_ok()
    );

    // a second run reuses the table and the samples (more samples: only the new ones measured)
    let lut_before = std::fs::read_to_string(out.join("search/latency_lut.json")).unwrap();
    let more = tiers::PipelineOptions {
        samples: 12,
        ..opts
    };
    let r = tiers::run_search(&run, &out.join("search"), &more).unwrap();
    assert_eq!(r.predictor.samples, 12);
    let after = std::fs::read_to_string(out.join("search/samples.jsonl")).unwrap();
    assert!(after.starts_with(&samples));
    assert_eq!(
        lut_before,
        std::fs::read_to_string(out.join("search/latency_lut.json")).unwrap()
    );
}
