//! The GEMM path equals `conv2d` on the sliced weight: forward and the gradients of x and of
//! the max-size weight.

use super::*;
use crate::elastic::dw_op::tests::{seq, tensor};

fn vals(t: Tensor<4>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

fn max_rel_err(a: Vec<f32>, b: Vec<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0f32, f32::max)
}

const CASES: &[(usize, usize, usize, usize, usize, usize)] = &[
    // (batch, cin, size, cout, max_in, max_out)
    (2, 3, 5, 4, 3, 4),
    (3, 5, 7, 6, 8, 9),
    (4, 16, 6, 24, 16, 32),
    (2, 12, 1, 7, 20, 7),
    (1, 9, 14, 3, 9, 5),
];

#[test]
fn forward_matches_conv2d() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for (i, &(n, cin, hw, cout, mi, mo)) in CASES.iter().enumerate() {
            let x = tensor(seq(n * cin * hw * hw, i as u32), [n, cin, hw, hw], &device);
            let w = tensor(seq(mo * mi, 50 + i as u32), [mo, mi, 1, 1], &device);
            let fast = pointwise_conv2d(x.clone(), w.clone(), cout);
            let slow = pointwise_conv2d_reference(x, w, cout);
            assert_eq!(fast.dims(), [n, cout, hw, hw]);
            let err = max_rel_err(vals(fast), vals(slow));
            assert!(err <= 1e-5, "forward case {i}: {err}");
        }
    }
}

#[test]
fn gradients_match_conv2d() {
    let device = Device::flex().autodiff();
    for (i, &(n, cin, hw, cout, mi, mo)) in CASES.iter().enumerate() {
        let xv = seq(n * cin * hw * hw, 10 + i as u32);
        let wv = seq(mo * mi, 60 + i as u32);
        let uv = seq(n * cout * hw * hw, 110 + i as u32);
        let run = |fast: bool| {
            let x = tensor(xv.clone(), [n, cin, hw, hw], &device).require_grad();
            let w = tensor(wv.clone(), [mo, mi, 1, 1], &device).require_grad();
            let u = tensor(uv.clone(), [n, cout, hw, hw], &device);
            let y = if fast {
                pointwise_conv2d(x.clone(), w.clone(), cout)
            } else {
                pointwise_conv2d_reference(x.clone(), w.clone(), cout)
            };
            let grads = (y * u).sum().backward();
            (vals(x.grad(&grads).unwrap()), vals(w.grad(&grads).unwrap()))
        };
        let (fx, fw) = run(true);
        let (sx, sw) = run(false);
        assert_eq!(fw.len(), mo * mi);
        let ex = max_rel_err(fx, sx);
        let ew = max_rel_err(fw, sw);
        assert!(ex <= 1e-5, "grad x case {i}: {ex}");
        assert!(ew <= 1e-5, "grad w case {i}: {ew}");
    }
}

#[test]
fn a_constant_input_gets_no_gradient() {
    let device = Device::flex().autodiff();
    let x = tensor(seq(2 * 3 * 16, 1), [2, 3, 4, 4], &device);
    let w = tensor(seq(5 * 4, 2), [5, 4, 1, 1], &device).require_grad();
    let grads = pointwise_conv2d(x.clone(), w.clone(), 2).sum().backward();
    let gw = vals(w.grad(&grads).unwrap());
    // rows ≥ 2 and the column ≥ 3 lie outside the active corner
    assert!(
        gw[2 * 4..].iter().all(|&v| v == 0.0) && gw[3] == 0.0,
        "{gw:?}"
    );
    assert!(gw[0] != 0.0);
    assert!(x.grad(&grads).is_none());
}
