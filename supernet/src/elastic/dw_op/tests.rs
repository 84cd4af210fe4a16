//! Both paths agree: forward, gradients, composition with the elastic layer's ops, a whole
//! supernet; the direct kernels against naive loops.

use super::geom::Geom;
use super::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// Test hook: route [`depthwise_conv2d`] to the reference path on this thread.
    pub(super) static FORCE_REFERENCE: Cell<bool> = const { Cell::new(false) };
}

/// Direct forwards run in this process (the flex implementation counts them; the backend may
/// run an op on another thread than the caller's).
pub(super) static DIRECT_FORWARDS: AtomicUsize = AtomicUsize::new(0);
/// Direct backward steps run in this process.
pub(super) static DIRECT_BACKWARDS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn seq(len: usize, seed: u32) -> Vec<f32> {
    // Deterministic pseudo-random values in [-1, 1).
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20_000) as f32 / 10_000.0 - 1.0
        })
        .collect()
}

pub(crate) fn tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::<4>::from_data(burn::tensor::TensorData::new(values, shape), device)
}

/// Max abs difference ≤ `tol · max(1, |b|)` element-wise.
fn assert_close_tol(a: Tensor<4>, b: Tensor<4>, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a = a.into_data().try_to_vec::<f32>().unwrap();
    let b = b.into_data().try_to_vec::<f32>().unwrap();
    for (x, y) in a.iter().zip(&b) {
        let err = (x - y).abs();
        assert!(err <= tol * y.abs().max(1.0), "{what}: {x} vs {y}");
    }
}

fn assert_close(a: Tensor<4>, b: Tensor<4>, what: &str) {
    assert_close_tol(a, b, 1e-4, what);
}

const CASES: &[(usize, usize, usize, usize, usize)] = &[
    // (batch, channels, size, k, stride)
    (1, 3, 7, 3, 1),
    (3, 5, 7, 3, 2),
    (1, 4, 14, 5, 1),
    (3, 2, 14, 5, 2),
    (3, 3, 7, 7, 1),
    (1, 6, 14, 7, 2),
    (3, 4, 9, 7, 2),
    (1, 2, 5, 7, 1),
    (3, 3, 13, 3, 2),
    (1, 1, 1, 3, 1),
];

#[test]
fn forward_matches_conv2d() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
            let x = tensor(seq(n * c * hw * hw, i as u32), [n, c, hw, hw], &device);
            let w = tensor(seq(c * k * k, 100 + i as u32), [c, 1, k, k], &device);
            let fast = depthwise_conv2d(x.clone(), w.clone(), s);
            let slow = depthwise_conv2d_reference(x, w, s);
            assert_close(fast, slow, &format!("forward {n}x{c}x{hw} k{k} s{s}"));
        }
    }
}

#[test]
fn kernels_match_naive_loops() {
    for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
        let Some(g) = Geom::new(&[n, c, hw, hw], &[c, 1, k, k], s) else {
            panic!("geometry");
        };
        let x = seq(n * c * hw * hw, i as u32);
        let w = seq(c * k * k, 7 + i as u32);
        let naive = kernels::naive_forward(&g, &x, &w);
        #[cfg(feature = "fast-dw")]
        {
            let fast = kernels::forward(&g, &x, &w);
            let max = fast
                .iter()
                .zip(&naive)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(max <= 1e-5, "case {i}: {max}");
        }
        assert_eq!(naive.len(), n * c * hw.div_ceil(s) * hw.div_ceil(s));
    }
}

#[test]
fn gradients_match_conv2d() {
    let device = Device::flex().autodiff();
    for (i, &(n, c, hw, k, s)) in CASES.iter().enumerate() {
        let xv = seq(n * c * hw * hw, 30 + i as u32);
        let wv = seq(c * k * k, 60 + i as u32);
        let oh = hw.div_ceil(s);
        let upstream = seq(n * c * oh * oh, 90 + i as u32);
        let run = |fast: bool| {
            let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
            let w = tensor(wv.clone(), [c, 1, k, k], &device).require_grad();
            // A non-uniform upstream gradient: loss = Σ y ⊙ u.
            let u = tensor(upstream.clone(), [n, c, oh, oh], &device);
            let y = if fast {
                depthwise_conv2d(x.clone(), w.clone(), s)
            } else {
                depthwise_conv2d_reference(x.clone(), w.clone(), s)
            };
            let grads = (y * u).sum().backward();
            let gx = x.grad(&grads).unwrap();
            let gw = w.grad(&grads).unwrap();
            (gx, gw)
        };
        let (gx_fast, gw_fast) = run(true);
        let (gx_slow, gw_slow) = run(false);
        let what = format!("{n}x{c}x{hw} k{k} s{s}");
        assert_close(gx_fast, gx_slow, &format!("grad x {what}"));
        assert_close(gw_fast, gw_slow, &format!("grad w {what}"));
    }
}

#[test]
fn gradient_flows_into_only_one_input() {
    // Only w requires grad (x constant), then only x.
    let device = Device::flex().autodiff();
    let (n, c, hw, k, s) = (3, 4, 7, 5, 2);
    let xv = seq(n * c * hw * hw, 1);
    let wv = seq(c * k * k, 2);
    let grads_of = |fast: bool, x_grad: bool| {
        let mut x = tensor(xv.clone(), [n, c, hw, hw], &device);
        let mut w = tensor(wv.clone(), [c, 1, k, k], &device);
        if x_grad {
            x = x.require_grad();
        } else {
            w = w.require_grad();
        }
        let y = if fast {
            depthwise_conv2d(x.clone(), w.clone(), s)
        } else {
            depthwise_conv2d_reference(x.clone(), w.clone(), s)
        };
        let grads = (y.clone() * y).sum().backward();
        if x_grad {
            assert!(w.grad(&grads).is_none());
            x.grad(&grads).unwrap()
        } else {
            assert!(x.grad(&grads).is_none());
            w.grad(&grads).unwrap()
        }
    };
    assert_close(grads_of(true, true), grads_of(false, true), "x only");
    assert_close(grads_of(true, false), grads_of(false, false), "w only");
}

#[test]
fn composes_with_slicing_and_matmul() {
    // The ElasticDepthwise pattern: a sliced, transformed weight and a chained op.
    let device = Device::flex().autodiff();
    let (n, c, hw) = (2, 6, 14);
    let big = tensor(seq(8 * 49, 5), [8, 1, 7, 7], &device).require_grad();
    let t = Tensor::<2>::from_data(
        burn::tensor::TensorData::new(seq(25 * 25, 6), [25, 25]),
        &device,
    )
    .require_grad();
    let xv = seq(n * c * hw * hw, 7);
    let run = |fast: bool| {
        let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
        let w = big
            .clone()
            .slice(s![0..c, .., 1..6, 1..6])
            .reshape([c, 25])
            .matmul(t.clone())
            .reshape([c, 1, 5, 5]);
        let y = if fast {
            depthwise_conv2d(x.clone(), w, 1)
        } else {
            depthwise_conv2d_reference(x.clone(), w, 1)
        };
        let y = depthwise_conv2d_reference(
            burn::tensor::activation::relu(y),
            big.clone().slice(s![0..c, .., 2..5, 2..5]),
            2,
        );
        let grads = y.powi_scalar(2).sum().backward();
        (
            x.grad(&grads).unwrap(),
            big.grad(&grads).unwrap(),
            t.grad(&grads).unwrap(),
        )
    };
    let (a_x, a_big, a_t) = run(true);
    let (b_x, b_big, b_t) = run(false);
    // Large magnitudes (squared chain of 25-tap convs): relative tolerance.
    assert_close_tol(a_x, b_x, 1e-5, "x");
    assert_close_tol(a_big, b_big, 1e-5, "big weight");
    let a_t = a_t.into_data().try_to_vec::<f32>().unwrap();
    let b_t = b_t.into_data().try_to_vec::<f32>().unwrap();
    for (a, b) in a_t.iter().zip(&b_t) {
        assert!(
            (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
            "transform grad {a} vs {b}"
        );
    }
}

#[cfg(feature = "fast-dw")]
#[test]
fn fast_path_is_taken_on_flex() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        let x = Tensor::<4>::zeros([2, 3, 7, 7], &device);
        let w = Tensor::<4>::zeros([3, 1, 5, 5], &device);
        assert!(backend::supported(&x, &w, 2), "{device:?}");
        // Not a depthwise shape: the reference path.
        let w4 = Tensor::<4>::zeros([3, 2, 5, 5], &device);
        assert!(!backend::supported(&x, &w4, 1));
        let even = Tensor::<4>::zeros([3, 1, 4, 4], &device);
        assert!(!backend::supported(&x, &even, 1));
    }
}

/// A whole supernet (kernels 3/5/7, strides 1/2, sliced channels): the loss, the input
/// gradient and every depthwise weight gradient agree between the two paths.
#[test]
fn supernet_gradients_match_reference() {
    use crate::elastic::BnMode;
    use crate::net::Supernet;
    use crate::space::{ArchConfig, SearchSpace};
    use rand::SeedableRng;

    let ad = Device::flex().autodiff();
    let sp = SearchSpace::default_for(1, 10, 28);
    let net = match Supernet::new(&sp, 5, &ad) {
        Ok(net) => net,
        Err(e) => panic!("{e}"),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let mut archs = vec![ArchConfig::max(&sp), ArchConfig::min(&sp)];
    for _ in 0..2 {
        archs.push(ArchConfig::sample_from(
            &sp,
            &mut rng,
            &sp.resolutions,
            &sp.depths,
            &sp.kernel_sizes,
            &sp.expand_ratios,
            &sp.width_multipliers,
        ));
    }
    for arch in &archs {
        let r = arch.resolution;
        let xv = seq(3 * r * r, r as u32);
        let run = |reference: bool| {
            FORCE_REFERENCE.with(|f| f.set(reference));
            let x = tensor(xv.clone(), [3, 1, r, r], &ad).require_grad();
            let logits = net.forward(x.clone(), arch, BnMode::Train);
            let loss = (logits.clone() * logits).sum();
            let lv: f32 = loss.clone().into_scalar();
            let grads = loss.backward();
            FORCE_REFERENCE.with(|f| f.set(false));
            let dw: Vec<Tensor<4>> = net
                .stages
                .iter()
                .flatten()
                .filter_map(|b| b.dw.weight.val().grad(&grads))
                .collect();
            (lv, x.grad(&grads).unwrap(), dw)
        };
        let (l_fast, gx_fast, dw_fast) = run(false);
        let (l_ref, gx_ref, dw_ref) = run(true);
        assert!(
            (l_fast - l_ref).abs() <= 1e-4 * l_ref.abs().max(1.0),
            "{l_fast} vs {l_ref}"
        );
        assert_close_tol(gx_fast, gx_ref, 1e-4, "input grad");
        assert_eq!(dw_fast.len(), dw_ref.len());
        assert!(!dw_fast.is_empty());
        for (a, b) in dw_fast.into_iter().zip(dw_ref) {
            assert_close_tol(a, b, 1e-4, "dw weight grad");
        }
    }
}

/// The flag tells the truth: with it, a forward and a backward on flex run the direct kernels
/// (counted); without it, nothing ever does.
#[test]
fn the_flag_says_whether_flex_runs_the_direct_kernels() {
    let device = Device::flex().autodiff();
    let count = || {
        (
            DIRECT_FORWARDS.load(Ordering::SeqCst),
            DIRECT_BACKWARDS.load(Ordering::SeqCst),
        )
    };
    let before = count();
    let x = tensor(seq(2 * 3 * 7 * 7, 1), [2, 3, 7, 7], &device).require_grad();
    let w = tensor(seq(3 * 25, 2), [3, 1, 5, 5], &device).require_grad();
    let grads = depthwise_conv2d(x.clone(), w, 2).sum().backward();
    assert!(x.grad(&grads).is_some());
    let after = count();
    // other tests may run the kernels at the same time: the counts only grow
    let ran = (after.0 > before.0, after.1 > before.1);
    assert_eq!(
        ran,
        (FAST_DW_ENABLED, FAST_DW_ENABLED),
        "{before:?} -> {after:?}"
    );
}
