//! A bundle from a real training checkpoint, for benchmarks (BENCHMARKS.md, "Runtime start-up"). Ignored by
//! default; run with
//!
//! ```text
//! TIERFORGE_CHECKPOINT=runs/full/checkpoints/epoch-0010 TIERFORGE_IDX_DIR=/tmp/fmnist-raw \
//! TIERFORGE_BUNDLE_OUT=/tmp/bench-bundle \
//!   cargo test --release -p runtime --test it real_bundle -- --ignored --nocapture
//! ```
//! `TIERFORGE_IDX_DIR` holds the uncompressed IDX files (`train-images-idx3-ubyte`, …;
//! `gunzip -k` the Fashion-MNIST ones). Three variants (max, a middle arch, min) are extracted
//! with BN recalibrated on 2000 training images, folded, evaluated through the runtime's
//! [`Session`] on the test set (recorded as `test_accuracy`), and timed at batch 1 on this
//! machine (recorded as `latency_ms`, with this machine's probed score as the reference).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use fixtures::ToySet;
use runtime::{
    ArchConfig, BUNDLE_FORMAT_VERSION, BundleWriter, Dtype, Family, ManifestFile, Reference,
    SearchSpace, Session, Variant, eval, load_net,
};
use supernet::{BnMode, PlainNet, Supernet, arch_cost};

fn read_idx(dir: &Path, split: &str, limit: usize) -> ToySet {
    let images = std::fs::read(dir.join(format!("{split}-images-idx3-ubyte"))).unwrap();
    let labels = std::fs::read(dir.join(format!("{split}-labels-idx1-ubyte"))).unwrap();
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let (n, h, w) = (be(&images[4..]), be(&images[8..]), be(&images[12..]));
    assert_eq!(h, w);
    let n = n.min(limit);
    ToySet {
        size: h,
        pixels: images[16..16 + n * h * w].to_vec(),
        labels: labels[8..8 + n].iter().map(|&l| usize::from(l)).collect(),
    }
}

/// Normalised and resized images `[n, 1, r, r]`.
fn preprocessed(
    set: &ToySet,
    range: std::ops::Range<usize>,
    mean: f32,
    std: f32,
    r: usize,
) -> Vec<f32> {
    let px = set.size * set.size;
    let x: Vec<f32> = set.pixels[range.start * px..range.end * px]
        .iter()
        .map(|&p| (f32::from(p) / 255.0 - mean) / std)
        .collect();
    let mut out = Vec::new();
    supernet::preprocess::resize_bilinear(&x, range.len(), 1, set.size, set.size, r, &mut out);
    out
}

#[test]
#[ignore = "needs a checkpoint and data: see the module docs"]
fn real_bundle_from_checkpoint() {
    let (Ok(ck), Ok(data), Ok(out)) = (
        std::env::var("TIERFORGE_CHECKPOINT"),
        std::env::var("TIERFORGE_IDX_DIR"),
        std::env::var("TIERFORGE_BUNDLE_OUT"),
    ) else {
        eprintln!("set TIERFORGE_CHECKPOINT, TIERFORGE_IDX_DIR and TIERFORGE_BUNDLE_OUT");
        return;
    };
    let test_limit: usize = std::env::var("TIERFORGE_TEST_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let ck = PathBuf::from(ck);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("state.json")).unwrap()).unwrap();
    let space: SearchSpace = serde_json::from_value(state["space"].clone()).unwrap();
    let mean = state["mean"][0].as_f64().unwrap() as f32;
    let std = state["std"][0].as_f64().unwrap() as f32;
    let labels: Vec<String> = serde_json::from_value(state["class_names"].clone()).unwrap();
    let device = supernet::default_device();
    let net = Supernet::new(&space, 0, &device)
        .unwrap()
        .try_load_file(ck.join("model.bpk"))
        .unwrap();
    let data = PathBuf::from(data);
    let train = read_idx(&data, "train", 2000);
    let test = read_idx(&data, "t10k", test_limit);
    let host = device_profiles::probe(&device_profiles::ProbeOptions::default());
    eprintln!("host {} score {:.1}", host.id, host.score);

    let family = Family {
        name: space.name.clone(),
        labels,
        in_channels: 1,
        image_size: space.image_size,
        mean: vec![mean],
        std: vec![std],
        search_space: space.clone(),
    };
    let mid_res = space.resolutions[space.resolutions.len() / 2];
    let mid_d = space.depths[space.depths.len() / 2];
    let mid_e = space.expand_ratios[space.expand_ratios.len() / 2];
    let archs = [
        ("max", ArchConfig::max(&space)),
        (
            "mid",
            ArchConfig::uniform(&space, mid_res, mid_d, space.max_kernel(), mid_e),
        ),
        ("min", ArchConfig::min(&space)),
    ];
    let mut writer = BundleWriter::new(ManifestFile {
        format_version: BUNDLE_FORMAT_VERSION,
        bundle_id: "fashion-mnist-bench".into(),
        bundle_version: format!("ck-{}", state["global_step"]),
        created_by: "runtime tests/it/real_bundle.rs".into(),
        family: family.clone(),
        reference: Reference {
            profile_id: host.id.clone(),
            score: host.score,
        },
        default_latency_budget_ms: 10.0,
        variants: vec![],
        tiers: vec![],
    });
    let images = test.images();
    for (id, arch) in archs {
        let r = arch.resolution;
        let t = Instant::now();
        net.reset_bn_stats();
        for (i, start) in (0..train.len()).step_by(250).enumerate() {
            let end = (start + 250).min(train.len());
            let x = preprocessed(&train, start..end, mean, std, r);
            let len = x.len();
            let x = Tensor::<1>::from_data(TensorData::new(x, [len]), &device).reshape([
                end - start,
                1,
                r,
                r,
            ]);
            let _ = net.forward(
                x,
                &arch,
                BnMode::Calibrate {
                    momentum: 1.0 / (i as f32 + 1.0),
                },
            );
        }
        let plain = PlainNet::extract(&net, &arch).unwrap().fold();
        let bytes = plain.to_safetensors(false).unwrap();
        let cost = arch_cost(&space, &arch);
        let mut variant = Variant {
            id: id.into(),
            resolution: r,
            arch: arch.clone(),
            params: plain.num_params() as u64,
            macs: cost.macs,
            model_bytes: bytes.len() as u64,
            dtype: Dtype::F32,
            peak_activation_bytes: cost.peak_activation_elems as u64 * 4,
            test_accuracy: None,
            predicted_accuracy: None,
            latency_ms: 1.0,
            latency_by_threads: vec![],
            file: format!("{id}.safetensors"),
            sha256: String::new(),
        };
        let loaded = load_net(&family, &variant, &bytes).unwrap();
        let mut session = Session::new(loaded, family.clone(), variant.clone());
        let acc = eval::accuracy(&mut session, &images, &test.labels).unwrap();
        // The supernet itself on the same preprocessed test images, for comparison.
        let mut correct = 0;
        for start in (0..test.len()).step_by(250) {
            let end = (start + 250).min(test.len());
            let x = preprocessed(&test, start..end, mean, std, r);
            let len = x.len();
            let x = Tensor::<1>::from_data(TensorData::new(x, [len]), &device).reshape([
                end - start,
                1,
                r,
                r,
            ]);
            let pred: Vec<i64> = net
                .forward(x, &arch, BnMode::Eval)
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap();
            correct += pred
                .iter()
                .zip(&test.labels[start..end])
                .filter(|(p, l)| **p as usize == **l)
                .count();
        }
        let super_acc = correct as f64 / test.len() as f64;
        for &image in images.iter().take(5) {
            session.predict(image).unwrap();
        }
        let mut times: Vec<f64> = (0..40)
            .map(|i| {
                let t = Instant::now();
                session.predict(images[i % images.len()]).unwrap();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        variant.test_accuracy = Some(acc);
        variant.latency_ms = times[times.len() / 2];
        eprintln!(
            "{id}: r={r} params {} MACs {} bytes {} | runtime acc {:.4} supernet acc {:.4} | batch-1 {:.3} ms | built in {:.1} s",
            variant.params,
            variant.macs,
            bytes.len(),
            acc,
            super_acc,
            variant.latency_ms,
            t.elapsed().as_secs_f64()
        );
        assert!(
            (acc - super_acc).abs() < 0.005,
            "{id}: {acc} vs {super_acc}"
        );
        writer.add_variant(variant, bytes);
    }
    let b = writer.overwrite(true).write(Path::new(&out)).unwrap();
    eprintln!("wrote {}", b.dir().display());
}
