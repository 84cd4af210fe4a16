//! `tierforge bundle`: build a tiered bundle from a checkpoint and a search, or verify one.
//!
//! ```text
//! tierforge bundle --checkpoint RUN --search SEARCH_DIR --out BUNDLE [--int8]
//! tierforge bundle verify BUNDLE [--test [--data DIR]]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

/// Arguments of `tierforge bundle`: `verify BUNDLE`, or the build arguments.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct BundleArgs {
    /// `verify BUNDLE`: check a bundle instead of building one.
    #[command(subcommand)]
    pub action: Option<BundleAction>,
    /// Building a bundle (present exactly when no subcommand is given: clap requires
    /// `--checkpoint`, `--search` and `--out` then, and refuses them beside `verify`).
    #[command(flatten)]
    pub build: Option<BuildArgs>,
}

/// Arguments of `tierforge bundle --checkpoint RUN --search DIR --out BUNDLE`.
#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// A run folder or a checkpoint folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The folder `tierforge search --out` wrote (or its search.json).
    #[arg(long)]
    pub search: PathBuf,
    /// The bundle folder to write: replaced only if it is empty or holds a tierforge bundle.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace `--out` even if it holds something that is not a tierforge bundle.
    #[arg(long)]
    pub force: bool,
    /// Also write int8 variants (per-channel symmetric weights, dtype `int8`) beside the f32 ones.
    #[arg(long)]
    pub int8: bool,
    /// Data folder (default: the one the checkpoint was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluate variants on at most N test images (default: all).
    #[arg(long, value_parser = super::bounded(1, u64::MAX))]
    pub test_limit: Option<usize>,
    /// Training images BN is recalibrated on before extraction.
    #[arg(long, default_value_t = 2000, value_parser = super::calib_parser())]
    pub calib: usize,
    /// A tier's sub-net from its own fine-tuned run instead of the family checkpoint:
    /// `TIER=RUN_DIR` (repeatable), RUN_DIR written by
    /// `tierforge train --arch TIER_ARCH.json --init-from FAMILY_RUN`.
    #[arg(long = "tier-checkpoint", value_name = "TIER=RUN_DIR", value_parser = parse_tier_checkpoint)]
    pub tier_checkpoint: Vec<(String, PathBuf)>,
    /// Where sub-nets are evaluated and BN recalibrated: `gpu` needs a build with
    /// `--features supernet/wgpu` (the latency table is always timed on this CPU).
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// clap's parser for `--tier-checkpoint TIER=RUN_DIR`.
fn parse_tier_checkpoint(s: &str) -> Result<(String, PathBuf), String> {
    s.split_once('=')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .map(|(tier, dir)| (tier.to_string(), PathBuf::from(dir)))
        .ok_or_else(|| format!("expected TIER=RUN_DIR, e.g. very-low=runs/ft-very-low, not {s:?}"))
}

/// Subcommands of `tierforge bundle`.
#[derive(clap::Subcommand, Debug)]
pub enum BundleAction {
    /// Verify every file of a bundle (size, sha256, loads into its arch); exit 5 when it is damaged.
    Verify(VerifyArgs),
}

/// Arguments of `tierforge bundle verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// Also re-measure each variant's test top-1 and compare it with the manifest.
    #[arg(long)]
    pub test: bool,
    /// Data folder for --test (default: the bundled Fashion-MNIST).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Largest accepted difference of re-measured and manifest accuracy, in percentage points
    /// (a number in 0..=100).
    #[arg(long, default_value_t = 0.5, value_parser = parse_tolerance)]
    pub tolerance_pt: f64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_tolerance(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number; give percentage points, e.g. 0.5"))?;
    if v.is_finite() && (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s} must be a number of percentage points in 0..=100, e.g. 0.5"
        ))
    }
}

/// Runs `tierforge bundle`.
pub fn run(args: BundleArgs) -> anyhow::Result<ExitCode> {
    match (args.action, args.build) {
        (Some(BundleAction::Verify(v)), _) => verify(v),
        (None, Some(b)) => build(b),
        // clap requires the build arguments when no subcommand is given; kept as an error, not
        // a panic, should a clap upgrade ever let it through
        (None, None) => anyhow::bail!(
            "tierforge bundle needs --checkpoint, --search and --out (or `bundle verify BUNDLE`)"
        ),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let BuildArgs {
        checkpoint,
        search,
        out,
        ..
    } = &args;
    let opts = tiers::PipelineOptions {
        tier_checkpoints: args.tier_checkpoint.clone(),
        int8: args.int8,
        data_dir: args.data.clone(),
        test_limit: args.test_limit,
        calib_images: args.calib,
        force: args.force,
        progress: super::progress::reporter(false),
        device: args.device.into(),
        ..tiers::PipelineOptions::default()
    };
    let summary = tiers::run_bundle(checkpoint, search, out, &opts)
        .with_context(|| format!("building the bundle {}", out.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<34} {:>9} {:>9} {:>7} {:>7} {:>7}  tiers",
        "variant", "arch", "f32 B", "int8 B", "pred%", "f32%", "int8%"
    );
    for v in &summary.variants {
        println!(
            "{:<10} {:<34} {:>9} {:>9} {:>7.2} {:>7.2} {:>7}  {}",
            v.id,
            v.arch.short_id(),
            v.bytes_f32,
            v.bytes_int8.map_or("-".into(), |b| b.to_string()),
            100.0 * v.predicted_accuracy,
            100.0 * v.test_top1_f32,
            v.test_top1_int8
                .map_or("-".into(), |a| format!("{:.2}", 100.0 * a)),
            v.tiers.join(",")
        );
    }
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "wrote bundle {} v{} to {}",
        summary.bundle_id,
        summary.bundle_version,
        summary.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let test = if args.test {
        let dir = super::find_fashion_mnist(args.data.as_deref())?;
        let data = supernet::data::load_dir(&dir, 0)
            .with_context(|| format!("loading the test set from {}", dir.display()))?;
        Some(data.test)
    } else {
        None
    };
    let check = tiers::verify_bundle(&args.bundle, test.as_ref())
        .with_context(|| format!("verifying {}", args.bundle.display()))?;
    let tolerance = args.tolerance_pt / 100.0;
    let ok = check.is_ok(tolerance);
    let failures = check.accuracy_failures(tolerance);
    if args.json {
        println!(
            "{}",
            serde_json::json!({"ok": ok, "report": check.report, "remeasured": check.remeasured, "failures": failures})
        );
    } else {
        println!("{check}");
        for f in &failures {
            println!("  {f}");
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::BUNDLE_DAMAGED)
    })
}
