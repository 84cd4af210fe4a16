//! Times the parts of a supernet training step (input, forward, backward, optimizer) per
//! sub-net, through the trainer's own step (`supernet::train::train_step`).
//! `cargo run --release -p tierforge-examples --bin step_profile -- [batch] [small]`

use supernet::data::{Augment, Batcher, Dataset};
use supernet::train::optim::Optimizer;
use supernet::train::{Distillation, OptimizerConfig, Step, StepTimes, train_step};
use supernet::{ArchConfig, SearchSpace, Supernet};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let ad = supernet::default_device().autodiff();
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
    // one batch of a fixed pattern (a step's speed does not depend on the pixels)
    let (c, size) = (space.in_channels, space.image_size);
    let images = Dataset {
        images: (0..batch * c * size * size)
            .map(|i| (i * 37 % 251) as u8)
            .collect(),
        labels: (0..batch).map(|i| (i % space.num_classes) as u16).collect(),
        channels: c,
        height: size,
        width: size,
        class_names: (0..space.num_classes).map(|i| i.to_string()).collect(),
    };
    let mut batcher = Batcher::new(vec![0.286], vec![0.353]);
    let idx: Vec<usize> = (0..batch).collect();
    batcher.fill::<rand_chacha::ChaCha8Rng>(&images, &idx, Augment::none(), None);
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
        let step = Step {
            archs: std::slice::from_ref(arch),
            distillation: Distillation::Teacher(None),
            label_smoothing: 0.1,
            lr: 0.01,
            device: &ad,
        };
        let mut times: Vec<StepTimes> = Vec::new();
        for it in 0..6 {
            let (next, out) = train_step(model, &mut opt, &mut batcher, &step)?;
            model = next;
            if it >= 2 {
                times.push(out.times);
            }
        }
        let med = |f: fn(&StepTimes) -> f64| {
            let mut v: Vec<f64> = times.iter().map(|t| f(t) * 1e3).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!(
            "{name:8} params {:>7} MACs {:>6.2}M  input {:5.1} ms  fwd {:7.1} ms  bwd {:7.1} ms  opt {:6.1} ms",
            cost.params,
            cost.macs as f64 / 1e6,
            med(|t| t.input_s),
            med(|t| t.forward_s),
            med(|t| t.backward_s),
            med(|t| t.optimizer_s)
        );
    }
    Ok(())
}
