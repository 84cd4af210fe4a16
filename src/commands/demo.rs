//! `tierforge demo`: the README's main command.

use std::path::PathBuf;
use std::process::ExitCode;

use supernet::train::{TrainConfig, TrainOptions};

/// Arguments of `tierforge demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Output folder.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Fashion-MNIST folder (default: the bundled copy).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Epochs (default from the demo config).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Continue an interrupted demo.
    #[arg(long)]
    pub resume: bool,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The demo's training config: `configs/demo.json`, compiled in (a small, quick family).
pub fn demo_config(seed: u64) -> anyhow::Result<TrainConfig> {
    let mut cfg: TrainConfig = serde_json::from_str(include_str!("../../configs/demo.json"))?;
    cfg.seed = seed;
    cfg.validate()?;
    Ok(cfg)
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = super::find_fashion_mnist(args.data.as_deref())?;
    let mut cfg = demo_config(args.seed)?;
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    }
    let data = supernet::data::load_dir(&dir, cfg.seed)?;
    eprintln!(
        "demo: training a family on {} ({} train / {} test images) into {}",
        dir.display(),
        data.train.len(),
        data.test.len(),
        args.out.display()
    );
    let t0 = std::time::Instant::now();
    let run_dir = args.out.join("train");
    let progress = super::progress::reporter(false);
    let train_opts = TrainOptions {
        progress: progress.clone(),
        ..TrainOptions::default()
    };
    let s = supernet::train::train(&cfg, &data, &run_dir, args.resume, &train_opts)?;
    let train_s = t0.elapsed().as_secs_f64();
    eprintln!(
        "demo: max {:.2}% / min {:.2}% test top-1; slicing the family into tiers",
        100.0 * s.max_acc,
        100.0 * s.min_acc
    );
    let opts = tiers::PipelineOptions {
        seed: args.seed,
        data_dir: Some(dir.clone()),
        progress,
        ..Default::default()
    };
    let tiers = tiers::run_all(&run_dir, &args.out.join("tiers"), &opts)?;
    let total_s = t0.elapsed().as_secs_f64();
    if args.json {
        println!(
            "{}",
            serde_json::json!({"train": s, "tiers": tiers, "train_s": train_s, "total_s": total_s})
        );
    } else {
        println!("max sub-net test top-1: {:.2}%", 100.0 * s.max_acc);
        println!("min sub-net test top-1: {:.2}%", 100.0 * s.min_acc);
        println!();
        println!("{tiers}");
        println!(
            "({} epochs in {:.0} s, tiers in {:.0} s; bundle {}; everything under {})",
            s.epochs,
            train_s,
            total_s - train_s,
            args.out.join("tiers").join("bundle").display(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
