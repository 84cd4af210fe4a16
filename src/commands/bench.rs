//! `tierforge bench`: times complete training steps (and optionally inference) exactly as the
//! trainer runs them, so the numbers can be set beside the same supernet in PyTorch
//! (`scripts/torch_supernet.py`, driven by `scripts/bench_vs_pytorch.sh`).
//!
//! The sampled sub-nets come from a fixed seed and are written with `--archs-out` (together with
//! the search space, batch size, loss and optimizer settings) so that the PyTorch side runs the
//! same sub-nets in the same order.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use burn::optim::GradientsParams;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use supernet::data::{Batcher, Dataset};
use supernet::train::loss::{cross_entropy_smooth, distill, teacher_probs};
use supernet::train::optim::Optimizer;
use supernet::train::{Method, OptimizerConfig, TrainConfig};
use supernet::{ArchConfig, BnMode, SearchSpace, Supernet};

/// Arguments of `tierforge bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to time.
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// `tierforge bench <what>`
#[derive(clap::Subcommand, Debug)]
pub enum BenchWhat {
    /// Median time of one complete training step (sandwich or progressive shrinking).
    TrainStep(TrainStepArgs),
    /// Forward of the largest sub-net in eval mode at batch 1 and batch 64.
    Infer(InferArgs),
}

/// `--method`
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BenchMethod {
    /// Sandwich rule: largest (label-smoothed CE) + smallest + random sub-nets distilled from the
    /// largest's detached softmax, one backward.
    Sandwich,
    /// Progressive shrinking's expand phase: sub-nets sampled from the whole space, each with
    /// CE + distillation from the frozen full network.
    Progressive,
}

/// Arguments of `tierforge bench train-step`.
#[derive(clap::Args, Debug)]
pub struct TrainStepArgs {
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Search space: `default`, `small`, `tiny` or a JSON file (1×28×28 images, 10 classes for the
    /// named ones).
    #[arg(long, default_value = "default")]
    pub space: String,
    /// Training method.
    #[arg(long, value_enum, default_value_t = BenchMethod::Sandwich)]
    pub method: BenchMethod,
    /// Seed of the weights, the synthetic images and the sampled sub-nets.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the benchmark definition (space, settings, every step's sub-nets) as JSON.
    #[arg(long)]
    pub archs_out: Option<PathBuf>,
    /// Write the search space as JSON.
    #[arg(long)]
    pub space_out: Option<PathBuf>,
    /// Only write the files asked for; time nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tierforge bench infer`.
#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// Search space: `default`, `small`, `tiny` or a JSON file.
    #[arg(long, default_value = "default")]
    pub space: String,
    /// Timed calls at batch 1 (batch 64 gets a tenth, at least 5).
    #[arg(long, default_value_t = 200)]
    pub iters: usize,
    /// Seed of the weights.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tierforge bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::TrainStep(a) => train_step(a),
        BenchWhat::Infer(a) => infer(a),
    }
}

fn load_space(s: &str) -> anyhow::Result<SearchSpace> {
    Ok(match s {
        "default" => SearchSpace::default_for(1, 10, 28),
        "small" => SearchSpace::small_for(1, 10, 28),
        "tiny" => SearchSpace::tiny(1, 10, 28),
        path => SearchSpace::load(Path::new(path))
            .with_context(|| format!("reading search space {path}"))?,
    })
}

/// Everything the PyTorch side needs to run the same benchmark.
#[derive(Serialize)]
struct BenchSpec<'a> {
    format: &'static str,
    method: &'static str,
    batch: usize,
    warmup: usize,
    steps: usize,
    seed: u64,
    label_smoothing: f64,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    augment_pad: usize,
    augment_hflip: bool,
    space: &'a SearchSpace,
    /// `archs[step]`: the sub-nets of that step, in the order they run.
    archs: &'a [Vec<ArchConfig>],
}

/// Result of `bench train-step`.
#[derive(Serialize)]
struct StepResult {
    side: &'static str,
    method: &'static str,
    space: String,
    batch: usize,
    threads: usize,
    warmup: usize,
    steps: usize,
    subnets_per_step: usize,
    median_ms: f64,
    min_ms: f64,
    mean_ms: f64,
    img_per_s: f64,
    data_ms: f64,
    fwd_ms: f64,
    bwd_ms: f64,
    optim_ms: f64,
    loss_first: f64,
    loss_last: f64,
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        0.5 * (s[m - 1] + s[m])
    }
}

/// Synthetic uint8 images and labels as a dataset (the speed of a step does not depend on the
/// pixels), batched by the trainer's own `Batcher`.
fn synthetic(
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    classes: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Dataset {
    Dataset {
        images: (0..n * c * h * w).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n)
            .map(|_| rng.random_range(0..classes) as u16)
            .collect(),
        channels: c,
        height: h,
        width: w,
        class_names: (0..classes).map(|i| i.to_string()).collect(),
    }
}

fn to_tensor(x: &[f32], n: usize, c: usize, r: usize, device: &Device) -> Tensor<4> {
    Tensor::<1>::from_data(TensorData::new(x.to_vec(), [n * c * r * r]), device)
        .reshape([n, c, r, r])
}

fn train_step(a: TrainStepArgs) -> anyhow::Result<ExitCode> {
    let space = load_space(&a.space)?;
    if a.batch < 2 {
        anyhow::bail!("--batch must be ≥ 2 (batch norm needs it)");
    }
    let cfg = TrainConfig {
        method: match a.method {
            BenchMethod::Sandwich => Method::Sandwich,
            BenchMethod::Progressive => Method::Progressive,
        },
        batch_size: a.batch,
        seed: a.seed,
        ..TrainConfig::default()
    };
    let OptimizerConfig::Sgd {
        lr,
        momentum,
        nesterov,
        weight_decay,
    } = cfg.optimizer
    else {
        anyhow::bail!("the default optimizer is expected to be SGD");
    };
    let method_name = match a.method {
        BenchMethod::Sandwich => "sandwich",
        BenchMethod::Progressive => "progressive",
    };

    // The sub-nets of every step, fixed in advance.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0xbe9c_0a2c);
    let max_arch = ArchConfig::max(&space);
    let min_arch = ArchConfig::min(&space);
    let total_steps = a.warmup + a.steps;
    let archs: Vec<Vec<ArchConfig>> = (0..total_steps)
        .map(|_| match a.method {
            BenchMethod::Sandwich => {
                let mut v = vec![max_arch.clone(), min_arch.clone()];
                for _ in 0..cfg.sandwich_random {
                    v.push(ArchConfig::random(&space, &mut rng));
                }
                v
            }
            BenchMethod::Progressive => (0..cfg.ps_subnets_per_step.max(1))
                .map(|_| ArchConfig::random(&space, &mut rng))
                .collect(),
        })
        .collect();
    if let Some(p) = &a.space_out {
        std::fs::write(p, serde_json::to_vec_pretty(&space)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.archs_out {
        let spec = BenchSpec {
            format: "tierforge-bench-v1",
            method: method_name,
            batch: a.batch,
            warmup: a.warmup,
            steps: a.steps,
            seed: a.seed,
            label_smoothing: cfg.label_smoothing,
            lr,
            momentum,
            nesterov,
            weight_decay,
            augment_pad: cfg.augment.pad,
            augment_hflip: cfg.augment.hflip,
            space: &space,
            archs: &archs,
        };
        std::fs::write(p, serde_json::to_vec_pretty(&spec)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }

    let device = supernet::default_device();
    let ad = device.clone().autodiff();
    let (c, h, w) = (space.in_channels, space.image_size, space.image_size);
    let n = a.batch;
    let ds = synthetic(4 * n, c, h, w, space.num_classes, &mut rng);
    let mut batcher = Batcher::new(vec![0.286], vec![0.353]); // Fashion-MNIST's, any value does

    let mut model = Supernet::new(&space, a.seed, &ad)?;
    let mut optim = Optimizer::new(cfg.optimizer);
    // Progressive shrinking's expand phase: the frozen full network is the teacher (taken when
    // the kernel phase starts). The trainer also sorts the hidden channels once before this
    // phase; a permutation changes no cost, so the bench leaves the order as it is.
    let teacher = (a.method == BenchMethod::Progressive).then(|| model.valid());

    let mut buf = Vec::new();
    let mut resized = Vec::new();
    let mut labels = Vec::new();
    let (mut t_step, mut t_data, mut t_fwd, mut t_bwd, mut t_opt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut losses = Vec::new();
    for (step, step_archs) in archs.iter().enumerate() {
        let t0 = Instant::now();
        let mut data_s = 0.0;
        let td = Instant::now();
        let idx: Vec<usize> = (0..n).map(|b| (step * n + b) % ds.len()).collect();
        let (xb, lb) = batcher.fill(&ds, &idx, cfg.augment, Some(&mut rng));
        buf.clear();
        buf.extend_from_slice(xb);
        labels.clear();
        labels.extend_from_slice(lb);
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), &ad);
        data_s += td.elapsed().as_secs_f64();
        let mut input = |r: usize, dev: &Device, data_s: &mut f64| -> (Vec<f32>, Tensor<4>) {
            let td = Instant::now();
            supernet::preprocess::resize_bilinear(&buf, n, c, h, w, r, &mut resized);
            let xs = resized.clone();
            let x = to_tensor(&xs, n, c, r, dev);
            *data_s += td.elapsed().as_secs_f64();
            (xs, x)
        };
        let total = match a.method {
            BenchMethod::Sandwich => {
                let (_, x) = input(max_arch.resolution, &ad, &mut data_s);
                let logits = model.forward(x, &max_arch, BnMode::Train);
                let soft = teacher_probs(logits.clone());
                let mut total = cross_entropy_smooth(logits, y.clone(), cfg.label_smoothing);
                for arch in &step_archs[1..] {
                    let (_, x) = input(arch.resolution, &ad, &mut data_s);
                    total = total + distill(model.forward(x, arch, BnMode::Train), soft.clone());
                }
                total
            }
            BenchMethod::Progressive => {
                let t = teacher.as_ref().context("no teacher")?;
                let mut total: Option<Tensor<1>> = None;
                for arch in step_archs {
                    let (xs, x) = input(arch.resolution, &ad, &mut data_s);
                    let logits = model.forward(x, arch, BnMode::Train);
                    let mut l =
                        cross_entropy_smooth(logits.clone(), y.clone(), cfg.label_smoothing);
                    let xt = to_tensor(&xs, n, c, arch.resolution, &device);
                    let teacher_arch = ArchConfig {
                        resolution: arch.resolution,
                        ..max_arch.clone()
                    };
                    let tl = t.forward(xt, &teacher_arch, BnMode::Train);
                    let soft = Tensor::<2>::from_inner(burn::tensor::activation::softmax(tl, 1));
                    l = l + distill(logits, soft);
                    total = Some(match total {
                        Some(t) => t + l,
                        None => l,
                    });
                }
                total.context("no sub-net in a step")?
            }
        };
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(total.backward(), &model);
        let lv: f32 = total.detach().into_scalar();
        let t2 = Instant::now();
        model = optim.step(lr, model, grads);
        let t3 = Instant::now();
        losses.push(lv as f64);
        if step >= a.warmup {
            let fwd = (t1 - t0).as_secs_f64() - data_s;
            t_step.push((t3 - t0).as_secs_f64() * 1e3);
            t_data.push(data_s * 1e3);
            t_fwd.push(fwd * 1e3);
            t_bwd.push((t2 - t1).as_secs_f64() * 1e3);
            t_opt.push((t3 - t2).as_secs_f64() * 1e3);
        }
    }
    let med = median(&t_step);
    let res = StepResult {
        side: "tierforge",
        method: method_name,
        space: space.name.clone(),
        batch: n,
        threads: rayon::current_num_threads(),
        warmup: a.warmup,
        steps: a.steps,
        subnets_per_step: archs.first().map_or(0, Vec::len),
        median_ms: med,
        min_ms: t_step.iter().copied().fold(f64::INFINITY, f64::min),
        mean_ms: t_step.iter().sum::<f64>() / t_step.len().max(1) as f64,
        img_per_s: n as f64 / (med / 1e3),
        data_ms: median(&t_data),
        fwd_ms: median(&t_fwd),
        bwd_ms: median(&t_bwd),
        optim_ms: median(&t_opt),
        loss_first: losses.first().copied().unwrap_or(f64::NAN),
        loss_last: losses.last().copied().unwrap_or(f64::NAN),
    };
    if a.json {
        println!("{}", serde_json::to_string(&res)?);
    } else {
        println!(
            "tierforge {} step, space {}, batch {}, {} sub-nets/step, {} thread(s): \
             median {:.1} ms/step ({:.1} img/s), min {:.1} ms \
             [data {:.1} / fwd {:.1} / bwd {:.1} / optim {:.1} ms], loss {:.3} → {:.3}",
            res.method,
            res.space,
            res.batch,
            res.subnets_per_step,
            res.threads,
            res.median_ms,
            res.img_per_s,
            res.min_ms,
            res.data_ms,
            res.fwd_ms,
            res.bwd_ms,
            res.optim_ms,
            res.loss_first,
            res.loss_last
        );
    }
    if !res.loss_last.is_finite() {
        eprintln!("warning: the loss is not finite; the timing may not be representative");
    }
    Ok(ExitCode::SUCCESS)
}

/// Result of `bench infer`.
#[derive(Serialize)]
struct InferResult {
    side: &'static str,
    space: String,
    threads: usize,
    resolution: usize,
    b1_median_ms: f64,
    b64_median_ms: f64,
    b64_img_per_s: f64,
}

fn infer(a: InferArgs) -> anyhow::Result<ExitCode> {
    let space = load_space(&a.space)?;
    let device = supernet::default_device();
    let model = Supernet::new(&space, a.seed, &device)?;
    let arch = ArchConfig::max(&space);
    let (c, r) = (space.in_channels, arch.resolution);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut time = |b: usize, warm: usize, iters: usize| -> f64 {
        let x: Vec<f32> = (0..b * c * r * r)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let mut t = Vec::with_capacity(iters);
        for i in 0..warm + iters {
            let t0 = Instant::now();
            let y = model.forward(to_tensor(&x, b, c, r, &device), &arch, BnMode::Eval);
            let _ = y.into_data();
            if i >= warm {
                t.push(t0.elapsed().as_secs_f64() * 1e3);
            }
        }
        median(&t)
    };
    let b1 = time(1, 20, a.iters.max(1));
    let b64 = time(64, 3, (a.iters / 10).max(5));
    let res = InferResult {
        side: "tierforge",
        space: space.name.clone(),
        threads: rayon::current_num_threads(),
        resolution: r,
        b1_median_ms: b1,
        b64_median_ms: b64,
        b64_img_per_s: 64.0 / (b64 / 1e3),
    };
    if a.json {
        println!("{}", serde_json::to_string(&res)?);
    } else {
        println!(
            "tierforge infer (largest sub-net, eval mode, {}×{r}×{r}), space {}, {} thread(s): \
             batch 1 {:.3} ms, batch 64 {:.2} ms ({:.0} img/s)",
            c, res.space, res.threads, b1, b64, res.b64_img_per_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
