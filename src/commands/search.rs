//! `tierforge search`: latency table → accuracy predictor → evolutionary search per tier.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `tierforge search`.
#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// A run folder or a checkpoint folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Tier spec JSON (default: the built-in four tiers, very-low to flagship).
    #[arg(long)]
    pub tiers: Option<PathBuf>,
    /// Output folder: latency_lut.json, samples.jsonl, predictor.json, search.json, pareto.svg/png.
    /// Re-running into the same folder reuses the latency table and the measured sub-nets.
    #[arg(long)]
    pub out: PathBuf,
    /// Sub-nets measured for the accuracy predictor (use ≥ 500 for a real run).
    #[arg(long, default_value_t = 60)]
    pub samples: usize,
    /// Seed of sampling and search.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Validation images each predictor sample is measured on (at most the held-out slice,
    /// a twelfth of the training set). Fewer is faster and noisier: on 1 000 images a
    /// sub-net's top-1 moves by ≈ 1 pt, as much as the gaps the predictor must rank.
    #[arg(long, default_value_t = tiers::PipelineOptions::default().val_images, value_parser = super::bounded(100, 1_000_000))]
    pub val_images: usize,
    /// Data folder (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where sub-nets are evaluated and BN recalibrated: `gpu` needs a build with
    /// `--features supernet/wgpu` (the latency table is always timed on this CPU).
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Print search.json on stdout instead of the tier table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `tierforge search`.
pub fn run(args: SearchArgs) -> anyhow::Result<ExitCode> {
    let opts = tiers::PipelineOptions {
        samples: args.samples,
        seed: args.seed,
        val_images: args.val_images,
        data_dir: args.data.clone(),
        tier_spec: args.tiers.clone(),
        progress: super::progress::reporter(false),
        device: args.device.into(),
        ..tiers::PipelineOptions::default()
    };
    let result = tiers::run_search(&args.checkpoint, &args.out, &opts).with_context(|| {
        format!(
            "searching tiers for {} into {}",
            args.checkpoint.display(),
            args.out.display()
        )
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{result}");
        println!(
            "wrote {} and pareto.svg/png; next: tierforge bundle --checkpoint {} --search {} --out BUNDLE",
            args.out.join(tiers::pipeline::files::SEARCH).display(),
            args.checkpoint.display(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
