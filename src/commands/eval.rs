//! `tierforge eval`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use supernet::ArchConfig;
use supernet::data::Batcher;
use supernet::train::{Checkpoint, evaluate, recalibrate_bn};

/// Arguments of `tierforge eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// A run folder or a checkpoint folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// `max`, `min`, or an arch JSON file.
    #[arg(long, default_value = "max")]
    pub arch: String,
    /// Data folder (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Training images used to recalibrate BN.
    #[arg(long, default_value_t = 2000, value_parser = super::calib_parser())]
    pub calib: usize,
    /// Evaluate on at most N test images (at least 1).
    #[arg(long, value_parser = super::bounded(1, u64::MAX))]
    pub limit: Option<usize>,
    /// Where to compute: `gpu` needs a build with `--features supernet/wgpu`.
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tierforge eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let device = supernet::ComputeDevice::from(args.device).device()?;
    let ck = Checkpoint::open(&args.checkpoint)?;
    let space = &ck.state.space;
    let arch = match args.arch.as_str() {
        "max" => ArchConfig::max(space),
        "min" => ArchConfig::min(space),
        f => {
            // a regular, small file (a FIFO would block the reader forever)
            super::read_small_text(std::path::Path::new(f), "--arch")?;
            ArchConfig::load(std::path::Path::new(f), space)?
        }
    };
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| ck.state.data_dir.clone());
    let data = supernet::data::load_dir(&data_dir, ck.state.config.seed).with_context(|| {
        format!(
            "loading data from {} (pass --data to use another folder)",
            data_dir.display()
        )
    })?;
    let model = ck.load_model(&device)?;
    let mut b = Batcher::new(ck.state.mean.clone(), ck.state.std.clone());
    let t0 = std::time::Instant::now();
    recalibrate_bn(&model, &arch, &data.train, &mut b, args.calib, &device);
    let acc = evaluate(&model, &arch, &data.test, &mut b, args.limit, &device);
    let cost = supernet::arch_cost(space, &arch);
    let n = args.limit.unwrap_or(data.test.len()).min(data.test.len());
    if args.json {
        println!(
            "{}",
            serde_json::json!({"arch": arch, "top1": acc, "test_images": n, "params": cost.params, "macs": cost.macs, "seconds": t0.elapsed().as_secs_f64()})
        );
    } else {
        println!(
            "{}: test top-1 {:.2}% on {n} images ({} params, {:.2} M MACs)",
            arch.short_id(),
            100.0 * acc,
            cost.params,
            cost.macs as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}
