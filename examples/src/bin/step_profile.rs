//! Times the parts of a supernet training step (forward, backward, optimizer) per sub-net.
//! `cargo run --release -p tierforge-examples --bin step_profile -- [batch]`

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use supernet::train::OptimizerConfig;
use supernet::train::loss::cross_entropy_smooth;
use supernet::train::optim::Optimizer;
use supernet::{ArchConfig, BnMode, SearchSpace, Supernet};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let dev = supernet::default_device();
    let ad = dev.clone().autodiff();
    let space = match std::env::args().nth(2).as_deref() {
        Some("small") => SearchSpace::small_for(1, 10, 28),
        _ => SearchSpace::default_for(1, 10, 28),
    };
    let mut model = Supernet::new(&space, 1, &ad)?;
    let mut opt = Optimizer::new(OptimizerConfig::Sgd {
        lr: 0.05,
        momentum: 0.9,
        nesterov: true,
        weight_decay: 4e-5,
    });
    let archs = [
        ("max", ArchConfig::max(&space)),
        ("min", ArchConfig::min(&space)),
        (
            "max-k3",
            ArchConfig::uniform(&space, 28, space.max_depth(), 3, space.max_expand()),
        ),
    ];
    for (name, arch) in &archs {
        let cost = supernet::arch_cost(&space, arch);
        let r = arch.resolution;
        let x = Tensor::<4>::random(
            [batch, 1, r, r],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &ad,
        );
        let y = Tensor::<1, Int>::from_data(
            TensorData::new(
                (0..batch as i64).map(|i| i % 10).collect::<Vec<_>>(),
                [batch],
            ),
            &ad,
        );
        let (mut tf, mut tb, mut to) = (Vec::new(), Vec::new(), Vec::new());
        for it in 0..6 {
            let t0 = Instant::now();
            let loss = cross_entropy_smooth(
                model.forward(x.clone(), arch, BnMode::Train),
                y.clone(),
                0.1,
            );
            let _ = ad.sync();
            let t1 = Instant::now();
            let g = GradientsParams::from_grads(loss.backward(), &model);
            let _ = ad.sync();
            let t2 = Instant::now();
            model = opt.step(0.01, model, g);
            let _: f32 = loss.into_scalar();
            let t3 = Instant::now();
            if it >= 2 {
                tf.push((t1 - t0).as_secs_f64() * 1e3);
                tb.push((t2 - t1).as_secs_f64() * 1e3);
                to.push((t3 - t2).as_secs_f64() * 1e3);
            }
        }
        let med = |mut v: Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!(
            "{name:8} params {:>7} MACs {:>6.2}M  fwd {:7.1} ms  bwd {:7.1} ms  opt {:6.1} ms",
            cost.params,
            cost.macs as f64 / 1e6,
            med(tf),
            med(tb),
            med(to)
        );
    }
    Ok(())
}
