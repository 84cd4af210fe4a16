//! The fused op equals the composed burn ops: forward and the gradients of x, γ and β, for
//! every activation, with γ and β longer than the active channels.

use super::*;
use crate::elastic::dw_op::tests::{seq, tensor};

fn tensor1(values: Vec<f32>, device: &Device) -> Tensor<1> {
    let n = values.len();
    Tensor::<1>::from_data(burn::tensor::TensorData::new(values, [n]), device)
}

fn max_rel_err(a: Vec<f32>, b: Vec<f32>) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1.0))
        .fold(0.0f32, f32::max)
}

fn vals<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

const CASES: &[(usize, usize, usize, usize)] = &[
    // (batch, channels, size, max channels)
    (2, 3, 5, 3),
    (4, 5, 7, 8),
    (3, 16, 6, 24),
    (8, 2, 1, 2),
    (2, 7, 14, 7),
];

const ACTS: [Option<Act>; 3] = [None, Some(Act::Relu), Some(Act::Hswish)];

#[test]
fn forward_matches_the_composed_ops() {
    for device in [Device::flex(), Device::flex().autodiff()] {
        for (i, &(n, c, hw, max)) in CASES.iter().enumerate() {
            for act in ACTS {
                // x spread over [-4, 4] around an offset, so hard swish sees all three pieces
                let xv: Vec<f32> = seq(n * c * hw * hw, i as u32)
                    .iter()
                    .map(|v| 4.0 * v + 0.3)
                    .collect();
                let x = tensor(xv, [n, c, hw, hw], &device);
                let g = tensor1(
                    seq(max, 40 + i as u32).iter().map(|v| 1.0 + v).collect(),
                    &device,
                );
                let b = tensor1(seq(max, 80 + i as u32), &device);
                let fast = batch_norm_act(x.clone(), g.clone(), b.clone(), 1e-5, act);
                let slow = batch_norm_act_reference(x, g, b, 1e-5, act);
                assert_eq!(fast.dims(), [n, c, hw, hw]);
                let err = max_rel_err(vals(fast), vals(slow));
                assert!(err <= 1e-5, "forward {n}x{c}x{hw} max {max} {act:?}: {err}");
            }
        }
    }
}

#[test]
fn gradients_match_the_composed_ops() {
    let device = Device::flex().autodiff();
    for (i, &(n, c, hw, max)) in CASES.iter().enumerate() {
        for act in ACTS {
            let xv: Vec<f32> = seq(n * c * hw * hw, 10 + i as u32)
                .iter()
                .map(|v| 4.0 * v - 0.2)
                .collect();
            let gv: Vec<f32> = seq(max, 50 + i as u32).iter().map(|v| 1.0 + v).collect();
            let bv = seq(max, 90 + i as u32);
            let upstream = seq(n * c * hw * hw, 130 + i as u32);
            let run = |fast: bool| {
                let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
                let g = tensor1(gv.clone(), &device).require_grad();
                let b = tensor1(bv.clone(), &device).require_grad();
                let u = tensor(upstream.clone(), [n, c, hw, hw], &device);
                let y = if fast {
                    batch_norm_act(x.clone(), g.clone(), b.clone(), 1e-5, act)
                } else {
                    batch_norm_act_reference(x.clone(), g.clone(), b.clone(), 1e-5, act)
                };
                let grads = (y * u).sum().backward();
                (
                    vals(x.grad(&grads).unwrap()),
                    vals(g.grad(&grads).unwrap()),
                    vals(b.grad(&grads).unwrap()),
                )
            };
            let (fx, fg, fb) = run(true);
            let (sx, sg, sb) = run(false);
            assert_eq!(fg.len(), max);
            assert!(
                fg[c..].iter().all(|&v| v == 0.0),
                "γ beyond c got a gradient"
            );
            let what = format!("{n}x{c}x{hw} max {max} {act:?}");
            let ex = max_rel_err(fx, sx);
            let eg = max_rel_err(fg, sg);
            let eb = max_rel_err(fb, sb);
            assert!(ex <= 1e-5, "grad x {what}: {ex}");
            assert!(eg <= 1e-5, "grad γ {what}: {eg}");
            assert!(eb <= 1e-5, "grad β {what}: {eb}");
        }
    }
}

#[test]
fn only_the_inputs_that_need_it_get_a_gradient() {
    let device = Device::flex().autodiff();
    let (n, c, hw) = (3, 4, 5);
    let x = tensor(seq(n * c * hw * hw, 1), [n, c, hw, hw], &device);
    let g = tensor1(vec![1.5; c], &device).require_grad();
    let b = tensor1(vec![0.1; c], &device);
    let y = batch_norm_act(x.clone(), g.clone(), b, 1e-5, Some(Act::Relu));
    let grads = y.sum().backward();
    assert!(g.grad(&grads).is_some());
    assert!(x.grad(&grads).is_none());
}
