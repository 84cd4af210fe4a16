//! Predictions through the runtime (HWC u8 → resize → normalise → loaded weights) equal the
//! extracted network's and the supernet's on the same preprocessed input, for every variant.

use burn::prelude::*;
use fixtures::{TINY_CLASSES, TINY_SIZE, ToySet, calibrate, tiny_bundle};
use runtime::{Session, eval};
use supernet::BnMode;

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a })
        .0
}

/// Top-1 minus top-2 of a row.
fn margin(row: &[f32]) -> f32 {
    let mut s = row.to_vec();
    s.sort_by(|a, b| b.total_cmp(a));
    s[0] - s[1]
}

#[test]
fn session_predictions_equal_the_networks_argmax_for_every_variant() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = tiny_bundle(&tmp.path().join("bundle")).unwrap();
    let set = ToySet::new(24, TINY_SIZE, TINY_CLASSES, 9);
    let images = set.images();
    let device = supernet::default_device();
    let mut compared_with_supernet = 0;
    for (id, plain) in &tiny.nets {
        let mut session = Session::open(&tiny.bundle, id).unwrap();
        // the fused engine runs; its logits are compared with burn's below
        assert!(
            ["avx2+fma", "baseline"].contains(&session.engine().kernels()),
            "{id}"
        );
        let r = session.variant().resolution;
        let preds = session.predict_batch(&images).unwrap();

        let x = set.preprocessed(r);
        let t = Tensor::<1>::from_data(TensorData::new(x.clone(), [x.len()]), &device).reshape([
            set.len(),
            1,
            r,
            r,
        ]);
        let plain_logits: Vec<f32> = plain
            .forward(t.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // The session on the same preprocessed floats gives the same logits.
        let session_logits = session.logits_preprocessed(&x, set.len()).unwrap();
        for (a, b) in session_logits.iter().zip(&plain_logits) {
            assert!((a - b).abs() < 1e-5, "{id}: {a} vs {b}");
        }
        calibrate(&tiny.supernet, &plain.arch, &device);
        let super_logits: Vec<f32> = tiny
            .supernet
            .forward(t, &plain.arch, BnMode::Eval)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut correct = 0;
        for (i, p) in preds.iter().enumerate() {
            let row = &plain_logits[i * TINY_CLASSES..(i + 1) * TINY_CLASSES];
            assert_eq!(p.class, argmax(row), "{id}: image {i}");
            assert_eq!(p.label, format!("class-{}", p.class));
            let srow = &super_logits[i * TINY_CLASSES..(i + 1) * TINY_CLASSES];
            for (a, b) in row.iter().zip(srow) {
                assert!((a - b).abs() < 1e-4, "{id}: folded {a} vs supernet {b}");
            }
            // Folding BN may reorder near-ties; compare where the supernet's answer is clear.
            if margin(srow) > 1e-4 {
                assert_eq!(p.class, argmax(srow), "{id}: image {i}");
                compared_with_supernet += 1;
            }
            correct += usize::from(p.class == set.labels[i]);
        }
        let acc = eval::accuracy(&mut session, &images, &set.labels).unwrap();
        assert!(
            (acc - correct as f64 / set.len() as f64).abs() < 1e-12,
            "{id}"
        );
    }
    assert!(compared_with_supernet > 24, "{compared_with_supernet}");
}

#[test]
fn accuracy_rejects_mismatched_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let tiny = tiny_bundle(&tmp.path().join("bundle")).unwrap();
    let mut s = Session::open(&tiny.bundle, "min").unwrap();
    let set = ToySet::new(3, TINY_SIZE, TINY_CLASSES, 1);
    let e = eval::accuracy(&mut s, &set.images(), &[0, 1]).unwrap_err();
    assert!(e.to_string().contains("one label per image"), "{e}");
    assert!(eval::accuracy(&mut s, &[], &[]).is_err());
}
