//! Batch-1 and batch-64 latency of burn (`PlainNet::forward`) vs the fused engine
//! (`runtime::engine::FastNet`), and the largest difference between their logits.
//!
//! ```text
//! cargo run --release -p tierforge-examples --bin engine_bench                      # random weights
//! cargo run --release -p tierforge-examples --bin engine_bench -- --bundle runs/full-bundle
//! ```
//!
//! Without `--bundle`: the min, a middle and the max arch of `SearchSpace::small_for(1, 10, 28)`
//! with random weights. With it: every variant of the bundle. `--iters N` sets the batch-1
//! repetitions (default 300; batch 64 runs N/10).

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use runtime::engine::FastNet;
use runtime::{Bundle, FoldedNet};
use supernet::{ArchConfig, PlainNet, SearchSpace, Supernet, arch_cost};

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    bundle: Option<PathBuf>,
    iters: usize,
}

fn args() -> Res<Args> {
    let mut a = Args {
        bundle: None,
        iters: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--bundle" => a.bundle = Some(it.next().ok_or("--bundle needs a folder")?.into()),
            "--iters" => a.iters = it.next().ok_or("--iters needs a number")?.parse()?,
            other => {
                return Err(
                    format!("unknown argument {other:?} (use --bundle DIR, --iters N)").into(),
                );
            }
        }
    }
    Ok(a)
}

/// Median of `iters` timings of `f`, in ms, after a few warm-up calls.
fn median_ms(iters: usize, mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    for _ in 0..(iters / 10).max(3) {
        f()?;
    }
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

fn input(n: usize, c: usize, r: usize) -> Vec<f32> {
    (0..n * c * r * r)
        .map(|i| ((i as f32) * 0.137).sin())
        .collect()
}

fn burn_forward(net: &PlainNet, x: &[f32], n: usize, dev: &Device) -> Res<Vec<f32>> {
    let (c, r) = (net.space.in_channels, net.arch.resolution);
    let t =
        Tensor::<1>::from_data(TensorData::new(x.to_vec(), [x.len()]), dev).reshape([n, c, r, r]);
    Ok(net
        .forward(t)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?)
}

fn bench(name: &str, net: &PlainNet, iters: usize, dev: &Device) -> Res<()> {
    let fast = FastNet::from_folded(&net.to_folded()?)?;
    let baseline = fast.clone().with_baseline_kernels();
    let (c, r) = (net.space.in_channels, net.arch.resolution);
    let macs = arch_cost(&net.space, &net.arch).macs as f64 / 1e6;
    let mut row = format!("{name:<14} {macs:>5.2} {r:>4}");
    let mut diff = 0f32;
    for (n, iters) in [(1, iters), (64, (iters / 10).max(5))] {
        let x = input(n, c, r);
        let want = burn_forward(net, &x, n, dev)?;
        for got in [fast.forward(&x, n)?, baseline.forward(&x, n)?] {
            diff = got
                .iter()
                .zip(&want)
                .fold(diff, |m, (a, b)| m.max((a - b).abs()));
        }
        let burn = median_ms(iters, || burn_forward(net, &x, n, dev).map(|_| ()))?;
        let mut out = vec![0.0; n * fast.num_classes()];
        let hand = median_ms(iters, || Ok(fast.forward_into(&x, n, &mut out)?))?;
        let base = median_ms(iters, || Ok(baseline.forward_into(&x, n, &mut out)?))?;
        row += &format!(
            " | {burn:>8.3} {hand:>8.3} {base:>8.3} {:>6.1}x",
            burn / hand
        );
    }
    println!("{row} | {diff:.2e} | {}", fast.kernels());
    Ok(())
}

fn main() -> Res<()> {
    let a = args()?;
    let dev = supernet::default_device();
    println!(
        "median ms ({} rayon threads); burn = PlainNet::forward incl. tensor creation and readback;",
        rayon::current_num_threads()
    );
    println!(
        "fast = FastNet on its detected kernels, base = FastNet on the baseline kernels; speedup = burn / fast"
    );
    println!(
        "{:<14} {:>5} {:>4} | {:>8} {:>8} {:>8} {:>7} | {:>8} {:>8} {:>8} {:>7} | max|diff| | fast kernels",
        "variant",
        "MMAC",
        "res",
        "burn b1",
        "fast b1",
        "base b1",
        "speedup",
        "burn b64",
        "fast b64",
        "base b64",
        "speedup"
    );
    match &a.bundle {
        Some(dir) => {
            let bundle = Bundle::open(dir)?;
            let family = bundle.manifest().family().clone();
            for v in bundle.manifest().variants() {
                let bytes = bundle.read_variant(&v.id)?;
                let folded =
                    FoldedNet::from_safetensors(&bytes, &family.search_space, &v.arch, &v.file)?;
                let net = PlainNet::from_folded(&folded, &dev);
                bench(&v.id, &net, a.iters, &dev)?;
            }
        }
        None => {
            let space = SearchSpace::small_for(1, 10, 28);
            let sn = Supernet::new(&space, 1, &dev)?;
            let mid = |v: &[usize]| v[v.len() / 2];
            let archs = [
                ("min", ArchConfig::min(&space)),
                (
                    "mid",
                    ArchConfig::uniform(
                        &space,
                        mid(&space.resolutions),
                        mid(&space.depths),
                        mid(&space.kernel_sizes),
                        mid(&space.expand_ratios),
                    ),
                ),
                ("max", ArchConfig::max(&space)),
            ];
            for (name, arch) in archs {
                let net = PlainNet::extract(&sn, &arch)?.fold();
                bench(name, &net, a.iters, &dev)?;
            }
        }
    }
    Ok(())
}
