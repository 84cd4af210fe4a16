//! `tierforge bench`: times complete training steps (the trainer's own
//! [`supernet::train::train_step`]) and inference, so the numbers can be set beside the same
//! supernet in PyTorch (`scripts/torch_supernet.py`, driven by `scripts/bench_vs_pytorch.sh`).
//!
//! The sampled sub-nets come from a fixed seed and are written with `--archs-out` (together with
//! the search space, batch size, loss and optimizer settings) so that the PyTorch side runs the
//! same sub-nets in the same order.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use runtime::engine::FastNet;
use runtime::{Bundle, FoldedNet, Variant};
use serde::Serialize;
use supernet::data::{Batcher, Dataset};
use supernet::train::optim::Optimizer;
use supernet::train::sampling::{PsPhase, Sampler, sample_in_phase};
use supernet::train::{Distillation, Method, OptimizerConfig, Step, TrainConfig, train_step};
use supernet::{ArchConfig, BnMode, PlainNet, SearchSpace, Supernet};

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
    /// Forward of the largest sub-net in eval mode at batch 1 and batch 64, or (`--bundle`) of
    /// every variant of a bundle at each `--batch`.
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
    /// Images per step (2..=4096: batch norm needs two).
    #[arg(long, default_value_t = 64, value_parser = super::bounded(2, super::MAX_BATCH))]
    pub batch: usize,
    /// Timed steps (the median is reported; at least 1).
    #[arg(long, default_value_t = 20, value_parser = super::bounded(1, 1_000_000))]
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
///
/// Without `--bundle`: the largest sub-net of a freshly initialised supernet (`--space`), batch 1
/// and 64, one JSON object (what `scripts/bench_vs_pytorch.sh` reads).
///
/// With `--bundle DIR`: every variant of the bundle, loaded as an app loads it, timed at each
/// `--batch` from a preprocessed f32 NCHW buffer to logits (`Vec<f32>`), one JSON line per
/// (engine, variant, batch). The input is the first Fashion-MNIST test images preprocessed as the
/// runtime does (the manifest's mean/std, bilinear resize to the variant's resolution);
/// `--dump-inputs DIR` writes them and the reference logits as `.npy` for
/// `scripts/peers_infer.py` (ONNX Runtime and PyTorch on the same weights).
#[derive(clap::Args, Debug)]
pub struct InferArgs {
    /// Search space: `default`, `small`, `tiny` or a JSON file (without `--bundle`).
    #[arg(long, default_value = "default")]
    pub space: String,
    /// Time every variant of this bundle instead of a supernet sub-net.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Batch sizes to time (`--bundle` only), comma-separated, each in 1..=4096.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,64",
        requires = "bundle",
        value_parser = super::bounded(1, super::MAX_BATCH)
    )]
    pub batch: Vec<usize>,
    /// Only these variant ids (`--bundle` only), comma-separated; default: all.
    #[arg(long, value_delimiter = ',', requires = "bundle")]
    pub variants: Vec<String>,
    /// Engines to time (`--bundle` only), comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = DEFAULT_ENGINES,
        requires = "bundle"
    )]
    pub engine: Vec<EngineKind>,
    /// Timed calls at batch 1. Without `--bundle`, batch 64 gets a tenth (at least 5); with it,
    /// batch B gets iters·6/B (between min(5, iters) and iters).
    #[arg(long, default_value_t = 200, value_parser = super::bounded(1, 10_000_000))]
    pub iters: usize,
    /// Untimed calls first at batch 1 (`--bundle` only; batch B gets warmup·6/B, between
    /// min(2, warmup) and warmup).
    #[arg(long, default_value_t = 10, requires = "bundle")]
    pub warmup: usize,
    /// Seed of the weights (without `--bundle`).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// IDX folder whose test images are the input (`--bundle` only; default: the repo's
    /// Fashion-MNIST, else a synthetic pattern).
    #[arg(long, requires = "bundle")]
    pub data: Option<PathBuf>,
    /// Use a deterministic synthetic pattern as the input, not test images (`--bundle` only).
    #[arg(long, requires = "bundle", conflicts_with = "data")]
    pub synthetic: bool,
    /// Write the inputs (`input-rR.npy`, `[N, C, R, R]` f32), the burn engine's logits of the
    /// first N images (`logits-ID.npy`) and an index (`inputs.json`) to this folder
    /// (`--bundle` only; N = the largest batch).
    #[arg(long, requires = "bundle")]
    pub dump_inputs: Option<PathBuf>,
    /// Only write `--dump-inputs`; time nothing.
    #[arg(long, requires = "dump_inputs")]
    pub dry_run: bool,
    /// Print JSON on stdout (one object; one line per engine × variant × batch with `--bundle`).
    #[arg(long)]
    pub json: bool,
}

/// Runs `tierforge bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::TrainStep(a) => bench_train_step(a),
        BenchWhat::Infer(a) => match a.bundle.clone() {
            Some(dir) => infer_bundle(&dir, &a),
            None => infer(a),
        },
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
    device_profiles::bench::median(v).unwrap_or(f64::NAN)
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

fn bench_train_step(a: TrainStepArgs) -> anyhow::Result<ExitCode> {
    let space = load_space(&a.space)?;
    // The sub-nets of every step are drawn first, then the synthetic images, from one stream.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed ^ 0xbe9c_0a2c);
    let plan = StepPlan::new(&a, &space, &mut rng)?;
    plan.write_files(&a, &space)?;
    if a.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let t = plan.time(&a, &space, &mut rng)?;
    let med = median(&t.step);
    let res = StepResult {
        side: "tierforge",
        method: plan.method_name,
        space: space.name.clone(),
        batch: a.batch,
        threads: rayon::current_num_threads(),
        warmup: a.warmup,
        steps: a.steps,
        subnets_per_step: plan.archs.first().map_or(0, Vec::len),
        median_ms: med,
        min_ms: t.step.iter().copied().fold(f64::INFINITY, f64::min),
        mean_ms: t.step.iter().sum::<f64>() / t.step.len().max(1) as f64,
        img_per_s: a.batch as f64 / (med / 1e3),
        data_ms: median(&t.data),
        fwd_ms: median(&t.forward),
        bwd_ms: median(&t.backward),
        optim_ms: median(&t.optimizer),
        loss_first: t.losses.first().copied().unwrap_or(f64::NAN),
        loss_last: t.losses.last().copied().unwrap_or(f64::NAN),
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
    Ok(ExitCode::SUCCESS)
}

/// What `bench train-step` runs: the trainer's configuration for the method, its SGD settings
/// and the sub-nets of every step, fixed in advance.
struct StepPlan {
    cfg: TrainConfig,
    /// (lr, momentum, nesterov, weight decay) of the default optimizer.
    sgd: (f64, f64, bool, f64),
    method_name: &'static str,
    /// `archs[step]`: the sub-nets of that step, in the order they run.
    archs: Vec<Vec<ArchConfig>>,
}

/// Per-step times (ms) of the timed steps, and the loss of every step.
#[derive(Default)]
struct StepTimes {
    step: Vec<f64>,
    data: Vec<f64>,
    forward: Vec<f64>,
    backward: Vec<f64>,
    optimizer: Vec<f64>,
    losses: Vec<f64>,
}

impl StepPlan {
    /// The plan of `a` over `space`, its sub-nets drawn from `rng` by the trainer's own
    /// sampling.
    fn new(
        a: &TrainStepArgs,
        space: &SearchSpace,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> anyhow::Result<Self> {
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
        let max_arch = ArchConfig::max(space);
        let min_arch = ArchConfig::min(space);
        let total_steps = a.warmup + a.steps;
        let sampler = Sampler::new(&cfg, space, (&max_arch, &min_arch), total_steps);
        let archs: Vec<Vec<ArchConfig>> = (0..total_steps)
            .map(|step| match a.method {
                BenchMethod::Sandwich => sampler.archs(step, rng),
                // the second half of the expand phase: sub-nets from the whole space
                BenchMethod::Progressive => (0..cfg.ps_subnets_per_step.max(1))
                    .map(|_| sample_in_phase(space, PsPhase::Expand, 1.0, rng))
                    .collect(),
            })
            .collect();
        Ok(StepPlan {
            cfg,
            sgd: (lr, momentum, nesterov, weight_decay),
            method_name,
            archs,
        })
    }

    /// Writes `--space-out` and `--archs-out` (the definition the PyTorch side runs).
    fn write_files(&self, a: &TrainStepArgs, space: &SearchSpace) -> anyhow::Result<()> {
        if let Some(p) = &a.space_out {
            std::fs::write(p, serde_json::to_vec_pretty(space)?)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if let Some(p) = &a.archs_out {
            let (lr, momentum, nesterov, weight_decay) = self.sgd;
            let spec = BenchSpec {
                format: "tierforge-bench-v1",
                method: self.method_name,
                batch: a.batch,
                warmup: a.warmup,
                steps: a.steps,
                seed: a.seed,
                label_smoothing: self.cfg.label_smoothing,
                lr,
                momentum,
                nesterov,
                weight_decay,
                augment_pad: self.cfg.augment.pad,
                augment_hflip: self.cfg.augment.hflip,
                space,
                archs: &self.archs,
            };
            std::fs::write(p, serde_json::to_vec_pretty(&spec)?)
                .with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    }

    /// Runs every step with the trainer's own `train_step` on synthetic images; the steps after
    /// the warm-up are timed.
    fn time(
        &self,
        a: &TrainStepArgs,
        space: &SearchSpace,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> anyhow::Result<StepTimes> {
        let cfg = &self.cfg;
        let ad = supernet::default_device().autodiff();
        let (c, h, w) = (space.in_channels, space.image_size, space.image_size);
        let n = a.batch;
        let ds = synthetic(4 * n, c, h, w, space.num_classes, rng);
        let mut batcher = Batcher::new(vec![0.286], vec![0.353]); // Fashion-MNIST's, any value does

        let mut model = Supernet::new(space, a.seed, &ad)?;
        let mut optim = Optimizer::new(cfg.optimizer);
        // Progressive shrinking's expand phase: the frozen full network is the teacher (taken
        // when the kernel phase starts). The trainer also sorts the hidden channels once before
        // this phase; a permutation changes no cost, so the bench leaves the order as it is.
        let teacher = (a.method == BenchMethod::Progressive).then(|| model.valid());
        let distillation = match a.method {
            BenchMethod::Sandwich => Distillation::InPlace,
            BenchMethod::Progressive => Distillation::Teacher(teacher.as_ref()),
        };
        let mut t = StepTimes::default();
        for (step, step_archs) in self.archs.iter().enumerate() {
            let t0 = Instant::now();
            let idx: Vec<usize> = (0..n).map(|b| (step * n + b) % ds.len()).collect();
            batcher.fill(&ds, &idx, cfg.augment, Some(&mut *rng));
            let fill_s = t0.elapsed().as_secs_f64();
            let spec = Step {
                archs: step_archs,
                distillation,
                label_smoothing: cfg.label_smoothing,
                lr: self.sgd.0,
                device: &ad,
            };
            // the trainer's own step: forwards, losses, backward, optimizer update
            let (next, out) = train_step(model, &mut optim, &mut batcher, &spec)
                .with_context(|| format!("step {step}"))?;
            model = next;
            let step_s = t0.elapsed().as_secs_f64();
            t.losses.push(out.loss as f64);
            if step >= a.warmup {
                t.step.push(step_s * 1e3);
                t.data.push((fill_s + out.times.input_s) * 1e3);
                t.forward.push(out.times.forward_s * 1e3);
                t.backward.push(out.times.backward_s * 1e3);
                t.optimizer.push(out.times.optimizer_s * 1e3);
            }
        }
        Ok(t)
    }
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

// ---------------------------------------------------------------------------------------------
// `bench infer --bundle`: every variant of a bundle, per engine and batch size.
// ---------------------------------------------------------------------------------------------

/// The engines `--engine` defaults to.
const DEFAULT_ENGINES: &str = "burn,fast";

/// An inference engine that `bench infer --bundle` can time.
///
/// To add one: a variant here, its name in [`EngineKind::name`], its construction from the
/// loaded session in [`EngineKind::build`] (a type implementing [`InferEngine`]), and
/// optionally its name in [`DEFAULT_ENGINES`]. `scripts/bench_vs_peers.sh` picks up every
/// engine from the JSON lines (`"engine"`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// burn's tensor path (`supernet::PlainNet::forward` on the flex backend), built from the
    /// same decoded weights.
    Burn,
    /// The runtime's fused engine `runtime::engine::FastNet`.
    Fast,
}

impl EngineKind {
    fn name(self) -> &'static str {
        match self {
            EngineKind::Burn => "burn",
            EngineKind::Fast => "fast",
        }
    }

    /// Builds the engine for one decoded variant (not timed).
    fn build(self, net: &FoldedNet, id: &str) -> anyhow::Result<Box<dyn InferEngine>> {
        Ok(match self {
            EngineKind::Burn => Box::new(BurnEngine(PlainNet::from_folded(
                net,
                &supernet::default_device(),
            ))),
            EngineKind::Fast => Box::new(FastEngine(
                FastNet::from_folded(net)
                    .with_context(|| format!("building the fast engine for variant {id}"))?,
            )),
        })
    }
}

/// One engine, built for one variant: logits of a preprocessed `[n, c, r, r]` f32 batch.
trait InferEngine {
    /// `n · classes` logits, row-major.
    fn logits(&self, x: &[f32], n: usize) -> anyhow::Result<Vec<f32>>;
}

/// burn's tensor path: copy into a tensor, forward, copy the logits out.
struct BurnEngine(PlainNet);

impl InferEngine for BurnEngine {
    fn logits(&self, x: &[f32], n: usize) -> anyhow::Result<Vec<f32>> {
        let (c, r) = (self.0.space.in_channels, self.0.arch.resolution);
        let t = Tensor::<1>::from_data(
            TensorData::new(x.to_vec(), [x.len()]),
            &supernet::default_device(),
        )
        .reshape([n, c, r, r]);
        Ok(self
            .0
            .try_forward(t)?
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?)
    }
}

/// The fused engine: NHWC kernels over plain buffers, output allocated per call.
struct FastEngine(FastNet);

impl InferEngine for FastEngine {
    fn logits(&self, x: &[f32], n: usize) -> anyhow::Result<Vec<f32>> {
        Ok(self.0.forward(x, n)?)
    }
}

/// One line of `bench infer --bundle --json`.
#[derive(Serialize)]
struct VariantInferResult {
    #[serde(rename = "impl")]
    implementation: &'static str,
    engine: &'static str,
    bundle_id: String,
    variant: String,
    dtype: serde_json::Value,
    resolution: usize,
    macs: u64,
    batch: usize,
    threads: usize,
    warmup: usize,
    iters: usize,
    median_ms: f64,
    min_ms: f64,
    img_per_s: f64,
    /// Where the input came from: `fashion-mnist-t10k` (or the `--data` folder's test set) or
    /// `synthetic`.
    input: String,
    /// Sum of the logits of the last timed call.
    logits_checksum: f64,
    /// Logits of the first image.
    logits_head: Vec<f32>,
    /// Largest |difference| from the burn engine's logits of the same images at the largest batch.
    max_abs_diff_vs_burn: f64,
}

/// Timed (or warm-up) calls at batch 1 scaled for batch `b`: `count·6/b`, between
/// `min(floor, count)` and `count`, so that every batch size runs for a similar time.
/// `scripts/peers_infer.py` uses the same rule.
fn scaled_count(count: usize, b: usize, floor: usize) -> usize {
    (count.saturating_mul(6) / b.max(1)).clamp(floor.min(count), count)
}

/// The first `n` images (cycled if the set is smaller) of the input set as u8 CHW, with what
/// they are.
struct RawImages {
    pixels: Vec<u8>,
    channels: usize,
    height: usize,
    width: usize,
    source: String,
}

/// A deterministic pattern: smooth gradients plus a per-image bar, in 0..=255.
fn synthetic_images(n: usize, c: usize, size: usize) -> RawImages {
    let mut pixels = Vec::with_capacity(n * c * size * size);
    for i in 0..n {
        for ch in 0..c {
            for y in 0..size {
                for x in 0..size {
                    let bar = if (y + i) % size == size / 2 { 120 } else { 0 };
                    let v = (x * 7 + y * 3 + i * 11 + ch * 29) % 136 + bar;
                    pixels.push(v.min(255) as u8);
                }
            }
        }
    }
    RawImages {
        pixels,
        channels: c,
        height: size,
        width: size,
        source: "synthetic".into(),
    }
}

/// The first `n` test images of an IDX folder (`t10k-images-idx3-ubyte[.gz]`).
fn test_images(dir: &Path, n: usize) -> anyhow::Result<RawImages> {
    let pick = |stem: &str| {
        [format!("{stem}.gz"), stem.to_string()]
            .into_iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    };
    let (Some(images), Some(labels)) = (
        pick("t10k-images-idx3-ubyte"),
        pick("t10k-labels-idx1-ubyte"),
    ) else {
        anyhow::bail!(
            "{}: no t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz] there; pass \
             --data with an IDX folder that has a test set, or --synthetic",
            dir.display()
        );
    };
    let ds = supernet::data::idx::load_pair(&images, &labels, None)
        .with_context(|| format!("reading the test images in {}", dir.display()))?;
    if ds.is_empty() {
        anyhow::bail!("{}: the test set is empty", images.display());
    }
    let mut pixels = Vec::with_capacity(n * ds.image_len());
    for i in 0..n {
        pixels.extend_from_slice(ds.image(i % ds.len()));
    }
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "idx".into());
    Ok(RawImages {
        pixels,
        channels: ds.channels,
        height: ds.height,
        width: ds.width,
        source: format!("{name}-t10k"),
    })
}

/// The runtime's preprocessing (`Session::predict_batch`): `netspec`'s normalisation
/// `(p/255 − mean)/std` per channel, then bilinear resize to `r`. Output `[n, c, r, r]`.
fn preprocess(raw: &RawImages, n: usize, mean: &[f32], std: &[f32], r: usize) -> Vec<f32> {
    let (c, h, w) = (raw.channels, raw.height, raw.width);
    let il = c * h * w;
    let mut out = Vec::with_capacity(n * c * r * r);
    let mut chw = vec![0.0f32; il];
    let mut resized = Vec::new();
    for img in raw.pixels.chunks_exact(il).take(n) {
        supernet::preprocess::normalize_u8(img, c, mean, std, &mut chw);
        supernet::preprocess::resize_bilinear(&chw, 1, c, h, w, r, &mut resized);
        out.extend_from_slice(&resized);
    }
    out
}

/// Writes a little-endian f32 array as NumPy `.npy` (format 1.0).
fn write_npy(path: &Path, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_s = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_s}, }}");
    // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    let hl = u16::try_from(header.len()).context("npy header too long")?;
    bytes.extend_from_slice(&hl.to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A variant id as a file-name part.
fn file_part(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

/// Times `warmup + iters` calls; returns the per-call ms and the last call's logits.
fn time_engine(
    engine: &dyn InferEngine,
    x: &[f32],
    n: usize,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f32>)> {
    let mut times = Vec::with_capacity(iters);
    let mut last = Vec::new();
    for i in 0..warmup + iters {
        let t0 = Instant::now();
        let y = engine.logits(x, n)?;
        let dt = t0.elapsed().as_secs_f64() * 1e3;
        if i >= warmup {
            times.push(dt);
        }
        last = y;
    }
    Ok((times, last))
}

fn infer_bundle(dir: &Path, a: &InferArgs) -> anyhow::Result<ExitCode> {
    let bundle = Bundle::open(dir).with_context(|| {
        format!(
            "opening the bundle {} (build one with `cargo run --release -- demo`, or pass the \
             folder that holds manifest.json)",
            dir.display()
        )
    })?;
    let manifest = bundle.manifest();
    let family = manifest.family();
    if a.batch.is_empty() {
        anyhow::bail!("--batch needs sizes ≥ 1, e.g. --batch 1,64");
    }
    if family.mean.is_empty() || family.std.is_empty() {
        anyhow::bail!(
            "{}: the family has no mean/std for preprocessing; rebuild the bundle",
            dir.join(runtime::MANIFEST_FILE_NAME).display()
        );
    }
    let variants: Vec<&Variant> = if a.variants.is_empty() {
        manifest.variants().iter().collect()
    } else {
        a.variants
            .iter()
            .map(|id| bundle.variant(id).map_err(anyhow::Error::from))
            .collect::<anyhow::Result<_>>()?
    };
    let n_max = a.batch.iter().copied().max().unwrap_or(1);
    let raw = input_images(a, family.in_channels, family.image_size, n_max)?;
    // Inputs per resolution, shared by every variant of that resolution.
    let mut inputs: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    for v in &variants {
        inputs
            .entry(v.resolution)
            .or_insert_with(|| preprocess(&raw, n_max, &family.mean, &family.std, v.resolution));
    }
    if let Some(d) = &a.dump_inputs {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        for (r, x) in &inputs {
            write_npy(
                &d.join(format!("input-r{r}.npy")),
                &[n_max, family.in_channels, *r, *r],
                x,
            )?;
        }
    }
    let mut engines: Vec<EngineKind> = Vec::new();
    for &e in &a.engine {
        if !engines.contains(&e) {
            engines.push(e);
        }
    }
    let bench = BundleBench {
        a,
        dir,
        bundle: &bundle,
        engines,
        raw,
        inputs,
        n_max,
        threads: rayon::current_num_threads(),
    };
    let mut index_variants = Vec::new();
    let mut failures = 0usize;
    for v in &variants {
        let r = bench.variant(v)?;
        failures += r.failures;
        index_variants.push(r.index);
    }
    if let Some(d) = &a.dump_inputs {
        bench.write_index(d, index_variants)?;
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::CHECK_FAILED)
    })
}

/// The input of `bench infer --bundle`: `--synthetic`, else the test images of `--data` (or the
/// repo's Fashion-MNIST) when their channels match the family, else a synthetic pattern (with
/// a note; an explicit `--data` that does not fit is an error).
fn input_images(
    a: &InferArgs,
    c: usize,
    image_size: usize,
    n_max: usize,
) -> anyhow::Result<RawImages> {
    if a.synthetic {
        return Ok(synthetic_images(n_max, c, image_size));
    }
    let found = match &a.data {
        Some(d) => Ok(d.clone()),
        None => super::find_fashion_mnist(None),
    };
    Ok(match found.and_then(|d| test_images(&d, n_max)) {
        Ok(r) if r.channels == c => r,
        Ok(r) if a.data.is_some() => anyhow::bail!(
            "the images in {} have {} channel(s), the bundle's family takes {c}; pass \
             another --data or --synthetic",
            a.data.as_deref().unwrap_or(Path::new("?")).display(),
            r.channels
        ),
        Err(e) if a.data.is_some() => return Err(e),
        other => {
            let why = match other {
                Ok(r) => format!("the test images have {} channel(s), not {c}", r.channels),
                Err(e) => format!("{e:#}"),
            };
            eprintln!("note: using a synthetic input ({why})");
            synthetic_images(n_max, c, image_size)
        }
    })
}

/// What every variant of `bench infer --bundle` is timed with.
struct BundleBench<'a> {
    a: &'a InferArgs,
    dir: &'a Path,
    bundle: &'a Bundle,
    /// The engines asked for, each once.
    engines: Vec<EngineKind>,
    /// The input images.
    raw: RawImages,
    /// The preprocessed first `n_max` images per resolution.
    inputs: BTreeMap<usize, Vec<f32>>,
    /// The largest batch.
    n_max: usize,
    /// Threads of the pool in force.
    threads: usize,
}

/// What timing one variant found.
struct VariantBench {
    /// (engine, batch) pairs whose logits differ from burn's.
    failures: usize,
    /// The variant's entry in `inputs.json`.
    index: serde_json::Value,
}

impl BundleBench<'_> {
    /// Decodes variant `v`, computes burn's reference logits (written with `--dump-inputs`) and,
    /// unless `--dry-run`, times every engine at every batch against them.
    fn variant(&self, v: &Variant) -> anyhow::Result<VariantBench> {
        let (a, dir) = (self.a, self.dir);
        let family = self.bundle.manifest().family();
        // the decoded weights: burn's tensor path gives the reference logits; every engine is
        // built from the same weights
        let bytes = self
            .bundle
            .read_variant(&v.id)
            .with_context(|| format!("loading variant {} of {}", v.id, dir.display()))?;
        let folded = FoldedNet::from_safetensors(&bytes, &family.search_space, &v.arch, &v.file)
            .with_context(|| format!("decoding variant {} of {}", v.id, dir.display()))?;
        let x_all = self
            .inputs
            .get(&v.resolution)
            .context("no input for the variant's resolution")?;
        let reference = EngineKind::Burn
            .build(&folded, &v.id)?
            .logits(x_all, self.n_max)
            .with_context(|| format!("running variant {}", v.id))?;
        let stem = file_part(&v.id);
        if let Some(d) = &a.dump_inputs {
            write_npy(
                &d.join(format!("logits-{stem}.npy")),
                &[self.n_max, family.labels.len()],
                &reference,
            )?;
        }
        let index = serde_json::json!({
            "id": v.id,
            "file": v.file,
            "sha256": v.sha256,
            "dtype": v.dtype,
            "resolution": v.resolution,
            "arch": v.arch,
            "macs": v.macs,
            "input": format!("input-r{}.npy", v.resolution),
            "logits": format!("logits-{stem}.npy"),
        });
        let mut failures = 0;
        if !a.dry_run {
            for &kind in &self.engines {
                let engine = (kind, kind.build(&folded, &v.id)?);
                for &b in &a.batch {
                    let res = self.time(v, &engine, b, &reference)?;
                    let diff = res.max_abs_diff_vs_burn;
                    if diff.is_nan() || diff > 1e-3 * (1.0 + max_abs(&reference)) {
                        failures += 1;
                        eprintln!(
                            "warning: engine {} differs from burn on variant {} batch {b} by \
                             {diff:.3e}",
                            res.engine, v.id
                        );
                    }
                    self.print(&res)?;
                }
            }
        }
        Ok(VariantBench { failures, index })
    }

    /// Times `engine` (built for variant `v`) at batch `b` and compares its logits with
    /// `reference` (burn's, of the first `n_max` images).
    fn time(
        &self,
        v: &Variant,
        (kind, engine): &(EngineKind, Box<dyn InferEngine>),
        b: usize,
        reference: &[f32],
    ) -> anyhow::Result<VariantInferResult> {
        let family = self.bundle.manifest().family();
        let (c, classes) = (family.in_channels, family.labels.len());
        let x_all = self
            .inputs
            .get(&v.resolution)
            .context("no input for the variant's resolution")?;
        let x = &x_all[..b * c * v.resolution * v.resolution];
        let warmup = scaled_count(self.a.warmup, b, 2);
        let iters = scaled_count(self.a.iters, b, 5);
        let (times, y) = time_engine(engine.as_ref(), x, b, warmup, iters)
            .with_context(|| format!("engine {} on variant {}", kind.name(), v.id))?;
        let diff = max_abs_diff(&y, &reference[..b * classes]);
        let med = median(&times);
        Ok(VariantInferResult {
            implementation: "tierforge",
            engine: kind.name(),
            bundle_id: self.bundle.manifest().bundle_id().to_string(),
            variant: v.id.clone(),
            dtype: serde_json::to_value(v.dtype)?,
            resolution: v.resolution,
            macs: v.macs,
            batch: b,
            threads: self.threads,
            warmup,
            iters,
            median_ms: med,
            min_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
            img_per_s: b as f64 / (med / 1e3),
            input: self.raw.source.clone(),
            logits_checksum: y.iter().map(|&v| f64::from(v)).sum(),
            logits_head: y.iter().take(classes).copied().collect(),
            max_abs_diff_vs_burn: diff,
        })
    }

    /// One JSON line (`--json`) or one text line.
    fn print(&self, res: &VariantInferResult) -> anyhow::Result<()> {
        if self.a.json {
            println!("{}", serde_json::to_string(res)?);
        } else {
            println!(
                "tierforge/{:<5} {:<16} {:>5} r{:<3} batch {:>3}, {} thread(s): median \
                 {:>8.3} ms ({:>8.0} img/s), min {:.3} ms, |Δ burn| {:.1e}",
                res.engine,
                res.variant,
                res.dtype.as_str().unwrap_or("?"),
                res.resolution,
                res.batch,
                res.threads,
                res.median_ms,
                res.img_per_s,
                res.min_ms,
                res.max_abs_diff_vs_burn
            );
        }
        Ok(())
    }

    /// Writes `inputs.json` (the inputs, the reference logits and the settings) into `d`.
    fn write_index(&self, d: &Path, variants: Vec<serde_json::Value>) -> anyhow::Result<()> {
        let (a, dir) = (self.a, self.dir);
        let manifest = self.bundle.manifest();
        let family = manifest.family();
        let index = serde_json::json!({
            "format": "tierforge-bench-inputs-v1",
            "bundle": dir.canonicalize().unwrap_or(dir.to_path_buf()),
            "bundle_id": manifest.bundle_id(),
            "input": self.raw.source,
            "n": self.n_max,
            "batches": a.batch,
            "iters": a.iters,
            "warmup": a.warmup,
            "in_channels": family.in_channels,
            "num_classes": family.labels.len(),
            "mean": family.mean,
            "std": family.std,
            "search_space": family.search_space,
            "variants": variants,
        });
        let p = d.join("inputs.json");
        std::fs::write(&p, serde_json::to_vec_pretty(&index)?)
            .with_context(|| format!("writing {}", p.display()))?;
        eprintln!("wrote inputs, reference logits and {}", p.display());
        Ok(())
    }
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().map(|x| f64::from(x.abs())).fold(0.0, f64::max)
}
