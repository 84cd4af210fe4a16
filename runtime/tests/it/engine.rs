//! The fused engine against burn's tensor path (`supernet::PlainNet::forward`) on the same
//! extracted weights: every kernel kind, both kernel copies, batches of 1 and 3, f32 and int8.

use burn::prelude::*;
use netspec::FoldedNet;
use runtime::Error;
use runtime::engine::FastNet;
use supernet::{ArchConfig, BnMode, PlainNet, SearchSpace, Supernet};

fn input(n: usize, c: usize, r: usize, phase: f32) -> Vec<f32> {
    (0..n * c * r * r)
        .map(|i| ((i as f32) * 0.137 + phase).sin() * 1.5)
        .collect()
}

fn tensor(x: &[f32], n: usize, c: usize, r: usize, dev: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(x.to_vec(), [x.len()]), dev).reshape([n, c, r, r])
}

/// A random-weight supernet with BN recalibrated for `arch` (so folded biases are far from
/// zero and activations stay in a sane range), then `arch` extracted (not folded).
fn extracted(net: &Supernet, arch: &ArchConfig, dev: &Device) -> PlainNet {
    let (c, r) = (net.space.in_channels, arch.resolution);
    net.reset_bn_stats();
    for i in 0..3 {
        let x = input(8, c, r, i as f32);
        let _ = net.forward(
            tensor(&x, 8, c, r, dev),
            arch,
            BnMode::Calibrate {
                momentum: 1.0 / (i as f32 + 1.0),
            },
        );
    }
    PlainNet::extract(net, arch).unwrap()
}

fn burn_logits(net: &PlainNet, x: &[f32], n: usize, dev: &Device) -> Vec<f32> {
    let (c, r) = (net.space.in_channels, net.arch.resolution);
    net.forward(tensor(x, n, c, r, dev))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn fast(net: &PlainNet) -> FastNet {
    FastNet::from_folded(&net.to_folded().unwrap()).unwrap()
}

/// Max |fast − burn| over batches of 1 and 3 and both kernel copies, checked against
/// 1e-4 × max(1, |logits|∞).
fn assert_matches(net: &PlainNet, dev: &Device) -> f32 {
    let detected = fast(net);
    let baseline = detected.clone().with_baseline_kernels();
    let (c, r) = (net.space.in_channels, net.arch.resolution);
    let mut worst = 0f32;
    for (n, fast) in [
        (1, &detected),
        (3, &detected),
        (1, &baseline),
        (3, &baseline),
    ] {
        let x = input(n, c, r, 0.3);
        let want = burn_logits(net, &x, n, dev);
        let got = fast.forward(&x, n).unwrap();
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "{} {} n={n}: max |diff| {diff} at logit scale {scale}\nfast {got:?}\nburn {want:?}",
            net.arch.short_id(),
            fast.kernels()
        );
        // not a degenerate net: the logits differ between classes and between images
        let spread = want.iter().fold(0f32, |m, v| m.max((v - want[0]).abs()));
        assert!(spread > 1e-3, "degenerate logits {want:?}");
        worst = worst.max(diff);
    }
    worst
}

/// What an arch exercises: (kernel, stride, residual, hswish) per block.
fn features(net: &PlainNet) -> Vec<(usize, usize, bool, bool)> {
    net.blocks
        .iter()
        .map(|b| {
            (
                b.dw.weight.dims()[2],
                b.dw.stride,
                b.residual,
                b.dw.act == Some(netspec::Act::Hswish),
            )
        })
        .collect()
}

#[test]
fn matches_burn_on_default_space_archs() {
    let dev = Device::flex();
    let space = SearchSpace::default_for(1, 10, 28);
    let sn = Supernet::new(&space, 3, &dev).unwrap();
    let mut mixed = ArchConfig::max(&space);
    mixed.resolution = 24;
    for (s, ks) in mixed.kernel_sizes.iter_mut().enumerate() {
        for (b, k) in ks.iter_mut().enumerate() {
            *k = space.kernel_sizes[(s + b) % space.kernel_sizes.len()];
        }
    }
    for (s, es) in mixed.expand_ratios.iter_mut().enumerate() {
        for (b, e) in es.iter_mut().enumerate() {
            *e = space.expand_ratios[(s * 2 + b) % space.expand_ratios.len()];
        }
    }
    mixed.validate(&space).unwrap();
    let archs = [
        ArchConfig::min(&space),
        ArchConfig::uniform(&space, 24, 3, 5, 4),
        ArchConfig::max(&space),
        mixed,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for arch in &archs {
        let net = extracted(&sn, arch, &dev).fold();
        seen.extend(features(&net));
        assert_matches(&net, &dev);
    }
    // the archs above cover every kernel kind the engine has
    for k in [3, 5, 7] {
        assert!(seen.iter().any(|f| f.0 == k), "no k={k} in {seen:?}");
    }
    for s in [1, 2] {
        assert!(seen.iter().any(|f| f.1 == s), "no stride {s}");
    }
    for v in [false, true] {
        assert!(seen.iter().any(|f| f.2 == v), "no residual={v}");
        assert!(seen.iter().any(|f| f.3 == v), "no hswish={v}");
    }
}

#[test]
fn matches_burn_on_small_and_rgb_spaces() {
    let dev = Device::flex();
    let small = SearchSpace::small_for(1, 10, 28);
    let sn = Supernet::new(&small, 5, &dev).unwrap();
    for arch in [ArchConfig::min(&small), ArchConfig::max(&small)] {
        assert_matches(&extracted(&sn, &arch, &dev).fold(), &dev);
    }
    // three input channels and odd sizes (tiny: resolutions 13 and 17)
    let rgb = SearchSpace::tiny(3, 4, 17);
    let sn = Supernet::new(&rgb, 6, &dev).unwrap();
    for arch in [ArchConfig::min(&rgb), ArchConfig::max(&rgb)] {
        assert_matches(&extracted(&sn, &arch, &dev).fold(), &dev);
    }
}

#[test]
fn int8_round_trip_matches_burn_on_the_same_dequantised_net() {
    let dev = Device::flex();
    let space = SearchSpace::small_for(1, 10, 28);
    let sn = Supernet::new(&space, 8, &dev).unwrap();
    let arch = ArchConfig::uniform(&space, 24, 2, 5, 3);
    let folded = extracted(&sn, &arch, &dev).fold();
    let bytes = folded.to_safetensors(true).unwrap();
    let q = PlainNet::from_safetensors(&bytes, &space, &arch, "q.safetensors", &dev).unwrap();
    assert_matches(&q, &dev);
    // the engine built straight from the decoded file equals the one built via burn
    let direct = FastNet::from_folded(
        &FoldedNet::from_safetensors(&bytes, &space, &arch, "q.safetensors").unwrap(),
    )
    .unwrap();
    let x = input(1, 1, arch.resolution, 0.0);
    assert_eq!(
        direct.forward(&x, 1).unwrap(),
        fast(&q).forward(&x, 1).unwrap()
    );
    // and the int8 net really differs from the f32 one (the comparison above is not vacuous)
    let a = fast(&q).forward(&x, 1).unwrap();
    let b = fast(&folded).forward(&x, 1).unwrap();
    assert!(a.iter().zip(&b).any(|(a, b)| (a - b).abs() > 1e-6));
}

#[test]
fn unfolded_net_cannot_be_exported_and_a_broken_one_is_rejected_by_layer() {
    let dev = Device::flex();
    let space = SearchSpace::tiny(1, 3, 16);
    let sn = Supernet::new(&space, 1, &dev).unwrap();
    let net = PlainNet::extract(&sn, &ArchConfig::min(&space)).unwrap();
    let e = net.to_folded().unwrap_err().to_string();
    assert!(e.contains("fold"), "{e}");
    let mut folded = net.fold().to_folded().unwrap();
    assert!(FastNet::from_folded(&folded).is_ok());
    // a depthwise conv whose groups do not match its channels
    folded.blocks[0].dw.groups = 1;
    match FastNet::from_folded(&folded) {
        Err(Error::UnsupportedNet { layer, .. }) => assert_eq!(layer, "blocks.0.dw"),
        other => panic!("expected UnsupportedNet, got {other:?}"),
    }
    // a classifier of the wrong size
    let mut folded = PlainNet::extract(&sn, &ArchConfig::max(&space))
        .unwrap()
        .fold()
        .to_folded()
        .unwrap();
    folded.fc_weight.pop();
    match FastNet::from_folded(&folded) {
        Err(Error::UnsupportedNet { layer, .. }) => assert_eq!(layer, "fc"),
        other => panic!("expected UnsupportedNet, got {other:?}"),
    }
}

#[test]
fn bad_input_lengths_are_errors() {
    let dev = Device::flex();
    let space = SearchSpace::tiny(1, 3, 16);
    let sn = Supernet::new(&space, 1, &dev).unwrap();
    let arch = ArchConfig::max(&space);
    let fast = fast(&PlainNet::extract(&sn, &arch).unwrap().fold());
    let one = fast.input_len(1);
    assert_eq!(one, 16 * 16);
    for (len, n) in [
        (one - 1, 1),
        (one + 1, 1),
        (2 * one, 1),
        (one, 2),
        (0, 0),
        (one, 0),
    ] {
        let x = vec![0.1; len];
        assert!(
            matches!(fast.forward(&x, n), Err(Error::BadInput { .. })),
            "len {len} n {n}"
        );
    }
    let x = vec![0.1; 2 * one];
    let mut out = vec![0.0; 5];
    assert!(matches!(
        fast.forward_into(&x, 2, &mut out),
        Err(Error::BadInput { .. })
    ));
    let mut out = vec![0.0; 6];
    fast.forward_into(&x, 2, &mut out).unwrap();
    assert_eq!(out[..3], out[3..]);
}

#[test]
fn batches_split_over_a_pool_and_one_engine_shared_by_threads_match_one_by_one() {
    let dev = Device::flex();
    let space = SearchSpace::small_for(1, 10, 28);
    let sn = Supernet::new(&space, 2, &dev).unwrap();
    let arch = ArchConfig::max(&space);
    let fast = fast(&extracted(&sn, &arch, &dev).fold());
    let n = 7;
    let x = input(n, 1, arch.resolution, 1.0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    let batched = pool.install(|| fast.forward(&x, n)).unwrap();
    let img = fast.input_len(1);
    let one_by_one: Vec<Vec<f32>> = (0..n)
        .map(|i| fast.forward(&x[i * img..(i + 1) * img], 1).unwrap())
        .collect();
    for i in 0..n {
        assert_eq!(
            one_by_one[i][..],
            batched[i * 10..(i + 1) * 10],
            "image {i}"
        );
    }
    // one engine shared by plain threads (each with its own scratch) gives the same logits
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (fast, x) = (&fast, &x);
                s.spawn(move || fast.forward(&x[i * img..(i + 1) * img], 1).unwrap())
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), one_by_one[i], "thread {i}");
        }
    });
}
