//! A benchmark, not a test: forward and forward+backward at training shapes, direct kernels
//! against the reference path.
//! `cargo test --release -p supernet dw_op::timing -- --ignored --nocapture`

#[cfg(feature = "fast-dw")]
use super::geom::Geom;
use super::tests::{seq, tensor};
use super::*;

/// Timing of forward / forward+backward at training shapes, fast vs reference:
/// (see the file's first lines for the command)
#[test]
#[ignore]
fn timing() {
    use std::time::Instant;
    let device = Device::flex().autodiff();
    for &(n, c, hw, k, s) in &[
        (64, 32, 14, 3, 1),
        (64, 64, 14, 5, 1),
        (64, 128, 7, 7, 1),
        (64, 64, 14, 7, 2),
        (64, 128, 14, 3, 2),
    ] {
        let xv = seq(n * c * hw * hw, 1);
        let wv = seq(c * k * k, 2);
        for fast in [false, true] {
            let reps = 20;
            let mut t_fwd = Vec::new();
            let mut t_all = Vec::new();
            for _ in 0..reps {
                let x = tensor(xv.clone(), [n, c, hw, hw], &device).require_grad();
                let w = tensor(wv.clone(), [c, 1, k, k], &device).require_grad();
                let t0 = Instant::now();
                let y = if fast {
                    depthwise_conv2d(x.clone(), w.clone(), s)
                } else {
                    depthwise_conv2d_reference(x.clone(), w.clone(), s)
                };
                let y = y.sum();
                let _ = y.clone().into_data();
                let t1 = Instant::now();
                let grads = y.backward();
                let _ = x.grad(&grads).map(|g| g.into_data());
                let t2 = Instant::now();
                t_fwd.push((t1 - t0).as_secs_f64() * 1e3);
                t_all.push((t2 - t1).as_secs_f64() * 1e3);
            }
            if fast {
                #[cfg(feature = "fast-dw")]
                {
                    let Some(g) = Geom::new(&[n, c, hw, hw], &[c, 1, k, k], s) else {
                        panic!("geometry");
                    };
                    let gy = seq(g.planes() * g.oh * g.ow, 3);
                    let mut kf = Vec::new();
                    let mut kb = Vec::new();
                    for _ in 0..reps {
                        let t0 = Instant::now();
                        std::hint::black_box(kernels::forward(&g, &xv, &wv));
                        let t1 = Instant::now();
                        std::hint::black_box(kernels::backward(&g, &xv, &wv, &gy, true, true));
                        kf.push((t1 - t0).as_secs_f64() * 1e3);
                        kb.push(t1.elapsed().as_secs_f64() * 1e3);
                    }
                    kf.sort_by(f64::total_cmp);
                    kb.sort_by(f64::total_cmp);
                    println!(
                        "    kernels only: fwd {:.2} ms (min {:.2}), bwd {:.2} ms (min {:.2})",
                        kf[reps / 2],
                        kf[0],
                        kb[reps / 2],
                        kb[0]
                    );
                }
            }
            t_fwd.sort_by(f64::total_cmp);
            t_all.sort_by(f64::total_cmp);
            println!(
                "{n}x{c}x{hw} k{k} s{s} {}: fwd {:.2} ms (min {:.2}), bwd {:.2} ms (min {:.2}) (median of {reps})",
                if fast { "fast" } else { "ref " },
                t_fwd[reps / 2],
                t_fwd[0],
                t_all[reps / 2],
                t_all[0]
            );
        }
    }
}
