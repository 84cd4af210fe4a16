//! `tierforge train`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use supernet::train::{Method, TrainConfig, TrainOptions};

/// Arguments of `tierforge train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Data folder (IDX, CIFAR-10 binary or ImageFolder; detected from its contents).
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder for checkpoints, metrics and the summary.
    #[arg(long)]
    pub out: PathBuf,
    /// Training config JSON (see configs/); flags below override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training method.
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// Train only this sub-net (an arch JSON file), from scratch: the standalone baseline.
    #[arg(long)]
    pub arch: Option<PathBuf>,
    /// Start from a trained run's weights (run or checkpoint folder); with `--arch` this
    /// fine-tunes that sub-net of the family, distilling from its largest sub-net.
    #[arg(long)]
    pub init_from: Option<PathBuf>,
    /// Learning rate (overrides the config's optimizer.lr), e.g. 0.01 for a fine-tune.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Use only the first N training images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Evaluate on at most N test images per epoch.
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Continue from the run folder's last checkpoint (a damaged one is an error).
    #[arg(long, conflicts_with = "force")]
    pub resume: bool,
    /// With `--resume`: if the last checkpoint is damaged, continue from the newest intact
    /// earlier one.
    #[arg(long, requires = "resume")]
    pub resume_previous: bool,
    /// Start a new run in an `--out` folder that already holds one (its checkpoints and
    /// metrics are replaced).
    #[arg(long)]
    pub force: bool,
    /// Where to train: `gpu` needs a build with `--features supernet/wgpu`; the checkpoint is
    /// the same either way (a GPU run resumes and extracts on the CPU).
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Data-parallel replicas: each batch split into this many equal shards, one per device
    /// (`--device gpu`: the first N GPUs; CPU: N threads), gradients averaged before the update.
    #[arg(long, default_value_t = 1, value_parser = super::bounded(1, 64))]
    pub replicas: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `--method`
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum MethodArg {
    /// Sandwich rule + in-place distillation (BigNAS).
    Sandwich,
    /// Progressive shrinking (Once-for-All).
    Progressive,
    /// One sub-net alone (`--arch FILE`): the from-scratch baseline.
    Standalone,
}

/// Builds the config from a file and flags.
pub fn resolve_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut cfg = match &args.config {
        Some(p) => TrainConfig::load(p)?,
        None => TrainConfig::default(),
    };
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    if let Some(s) = args.seed {
        cfg.seed = s;
    }
    if let Some(m) = args.method {
        cfg.method = match m {
            MethodArg::Sandwich => Method::Sandwich,
            MethodArg::Progressive => Method::Progressive,
            MethodArg::Standalone => Method::Standalone,
        };
    }
    if let Some(p) = &args.arch {
        let text = super::read_small_text(p, "--arch")?;
        let arch: supernet::ArchConfig = serde_json::from_str(&text)
            .with_context(|| format!("{}: not an arch JSON file", p.display()))?;
        cfg.standalone_arch = Some(arch);
        cfg.method = Method::Standalone;
    }
    if args.init_from.is_some() {
        cfg.init_from = args.init_from.clone();
    }
    if let Some(lr) = args.lr {
        cfg.optimizer.set_lr(lr);
    }
    if args.train_limit.is_some() {
        cfg.train_limit = args.train_limit;
    }
    if args.eval_limit.is_some() {
        cfg.eval_limit = args.eval_limit;
    }
    cfg.validate().with_context(|| match &args.config {
        Some(p) => format!(
            "the training config from {} and the flags (--epochs, --lr, --train-limit, …)",
            p.display()
        ),
        None => "the training config from the flags (--epochs, --lr, --train-limit, …)".into(),
    })?;
    Ok(cfg)
}

/// What a training run writes into its folder (so a folder holding any of them is a run).
const RUN_FILES: [&str; 3] = ["checkpoints", "metrics.jsonl", "summary.json"];

/// Refuses to start a new run over an existing one unless `--force`; with `--force`, clears
/// the old run's files (only those `train` writes) once the data has loaded.
fn check_out_folder(args: &TrainArgs) -> anyhow::Result<()> {
    let out = &args.out;
    if let Ok(m) = std::fs::metadata(out) {
        if !m.is_dir() {
            anyhow::bail!(
                "--out {}: exists and is not a folder; pass a new or existing run folder",
                out.display()
            );
        }
    }
    if args.resume {
        return Ok(());
    }
    let found: Vec<&str> = RUN_FILES
        .into_iter()
        .filter(|f| std::fs::symlink_metadata(out.join(f)).is_ok())
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    if !args.force {
        anyhow::bail!(
            "--out {}: holds a training run ({}); pass --resume to continue it, --force to start \
             a new run over it (its checkpoints are replaced), or choose another --out",
            out.display(),
            found.join(", ")
        );
    }
    Ok(())
}

fn clear_old_run(out: &std::path::Path) -> anyhow::Result<()> {
    for f in RUN_FILES {
        let p = out.join(f);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(_) => continue,
        }
        .with_context(|| format!("--force: removing {}", p.display()))?;
    }
    Ok(())
}

/// Runs `tierforge train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let cfg = resolve_config(&args)?;
    check_out_folder(&args)?;
    let data = supernet::data::load_dir(&args.data, cfg.seed)
        .with_context(|| format!("loading data from {}", args.data.display()))?;
    eprintln!(
        "data: {} ({:?}), {} train / {} test images of {}×{}×{}, {} classes",
        data.root.display(),
        data.format,
        data.train.len(),
        data.test.len(),
        data.train.channels,
        data.train.height,
        data.train.width,
        data.train.class_names.len()
    );
    if args.force {
        clear_old_run(&args.out)?;
    }
    let opts = TrainOptions {
        progress: super::progress::reporter(args.quiet),
        resume_previous: args.resume_previous,
        device: args.device.into(),
        replicas: args.replicas,
        ..Default::default()
    };
    let s = supernet::train::train(&cfg, &data, &args.out, args.resume, &opts)
        .with_context(|| format!("training into {}", args.out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!(
            "trained {} epochs ({:?}) in {:.0} s, {:.0} img/s: max sub-net {:.2}%, min sub-net {:.2}% test top-1\ncheckpoint: {}",
            s.epochs,
            s.method,
            s.train_s,
            s.img_per_s,
            100.0 * s.max_acc,
            100.0 * s.min_acc,
            s.checkpoint.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
