//! `tierforge qa`: every phone of a catalog, emulated on this host — a matrix, a chart, a verdict.
//!
//! ```text
//! tierforge qa --bundle B [--catalog DIR|FILE ...] [--budget-ms N] [--images K] [--data D]
//!     --out DIR [--no-calibration] [--json]
//! ```
//! For each phone (default: the built-in catalog) the variant is chosen by `runtime::select`
//! with the runtime's default policy (`--budget-ms` overrides the latency budget), then run in
//! a child process (`tierforge qa-child`, hidden) on min(big cores, host cores) threads with its
//! resident memory capped at the phone's memory budget; emulated latency = host median × host
//! score / phone score. Writes `qa.md`, `qa.json`, `qa.svg` and `qa.png` into `--out`, prints
//! the table (or the JSON report with `--json`) on stdout and progress on stderr.
//!
//! Exit status: 0 when every phone passes, [`EXIT_QA_FAILED`] (3) when any phone fails (nothing
//! fits, run killed or failed, latency or memory over budget), 1 on errors.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use device_profiles::{DeviceProfile, catalog};
use runtime::Policy;
use tiers::qa::{self, ChildCommand, ChildRequest, QaOptions};

/// Exit status when at least one phone fails QA.
pub const EXIT_QA_FAILED: u8 = crate::exit::QA_FAILED;

/// Arguments of `tierforge qa`.
#[derive(Debug, Clone, Args)]
pub struct QaArgs {
    /// The bundle folder (the one holding manifest.json).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Phone profiles: catalog folders (every *.json) or single profile files; repeatable.
    /// Default: the built-in catalog.
    #[arg(long, value_name = "DIR|FILE", num_args = 1..)]
    pub catalog: Vec<PathBuf>,
    /// Latency budget per inference in milliseconds (default: the bundle's).
    #[arg(long, value_name = "MS", value_parser = super::parse_budget_ms)]
    pub budget_ms: Option<f64>,
    /// Images per phone (timed one at a time, batch 1).
    #[arg(long, value_name = "K", default_value_t = qa::DEFAULT_IMAGES, value_parser = super::bounded(1, 1_000_000))]
    pub images: usize,
    /// Untimed predictions before timing, per run.
    #[arg(long, value_name = "N", default_value_t = qa::child::DEFAULT_WARMUP, value_parser = super::bounded(0, 1_000_000))]
    pub warmup: usize,
    /// Dataset folder whose test split is used (default: Fashion-MNIST in data/fashion-mnist).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output folder for qa.md, qa.json, qa.svg and qa.png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Skip the latency-model calibration (every variant at 1 and 2 threads).
    #[arg(long)]
    pub no_calibration: bool,
    /// Do not run the phones' launches under CPU quotas (cgroups); scale host latency by the
    /// score ratio instead (what QA falls back to where no cgroup is writable).
    #[arg(long)]
    pub no_emulation: bool,
    /// Budget of each host probe in milliseconds (the runtime's default). Under emulation the
    /// host is probed for at least 400 ms (40 quota periods); a shorter budget is raised and the
    /// report says so.
    #[arg(long, value_name = "MS", default_value_t = device_profiles::probe::DEFAULT_BUDGET_MS)]
    pub probe_ms: u32,
    /// Host probes at the start; the median score is the host score.
    #[arg(long, value_name = "N", default_value_t = qa::DEFAULT_PROBE_RUNS, value_parser = super::bounded(1, 1000))]
    pub probe_runs: usize,
    /// Longest one child run may take, seconds.
    #[arg(long, value_name = "S", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub child_timeout_s: u64,
    /// Print the JSON report on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of the hidden `tierforge qa-child`: one measurement, JSON on stdout.
#[derive(Debug, Clone, Args)]
pub struct QaChildArgs {
    /// The request, from the flags `tiers::qa::ChildRequest::to_args` writes.
    #[command(flatten)]
    pub request: ChildRequest,
}

fn load_profiles(paths: &[PathBuf]) -> Result<Vec<DeviceProfile>> {
    if paths.is_empty() {
        return catalog::builtin().context("cannot read the built-in phone catalog");
    }
    let mut out: Vec<DeviceProfile> = Vec::new();
    for p in paths {
        let more = if p.is_dir() {
            catalog::load_dir(p).with_context(|| format!("cannot read catalog {}", p.display()))?
        } else {
            vec![
                catalog::load_file(p)
                    .with_context(|| format!("cannot read profile {}", p.display()))?,
            ]
        };
        for m in more {
            if out.iter().any(|q| q.id == m.id) {
                bail!("phone `{}` is given twice (in {})", m.id, p.display());
            }
            out.push(m);
        }
    }
    if out.is_empty() {
        bail!("no phone profiles found in the given --catalog paths");
    }
    Ok(out)
}

/// Runs `tierforge qa`.
///
/// # Errors
/// An unreadable bundle, catalog or dataset, an invalid budget, or an unwritable output folder.
/// Failing phones are not errors: they give exit status [`EXIT_QA_FAILED`].
pub fn run(args: QaArgs) -> Result<ExitCode> {
    if args.images == 0 {
        bail!("--images must be at least 1");
    }
    let profiles = load_profiles(&args.catalog)?;
    let data = super::find_fashion_mnist(args.data.as_deref())?;
    let exe = std::env::current_exe().context("cannot locate the tierforge executable")?;
    let mut options = QaOptions::new(
        args.bundle.clone(),
        profiles,
        data,
        args.out.clone(),
        ChildCommand {
            program: exe,
            args: vec!["qa-child".into()],
        },
    );
    options.policy = Policy {
        latency_budget_ms: args.budget_ms,
        ..Policy::default()
    };
    options.images = args.images;
    options.warmup = args.warmup;
    options.probe_budget_ms = args.probe_ms;
    options.probe_runs = args.probe_runs;
    options.child_timeout = Duration::from_secs(args.child_timeout_s);
    options.emulate = !args.no_emulation;
    if args.no_calibration {
        options.calibration_threads.clear();
    }
    let report = qa::run_qa(&options, &mut |line| eprintln!("{line}"))
        .with_context(|| format!("QA of bundle {} failed", args.bundle.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", qa::markdown(&report));
    }
    eprintln!(
        "{}: {} passed, {} failed; report in {}",
        if report.all_pass() { "PASS" } else { "FAIL" },
        report.passed,
        report.failed,
        args.out.display()
    );
    Ok(if report.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_QA_FAILED)
    })
}

/// Runs the hidden `tierforge qa-child`: measures one variant and prints a
/// [`qa::ChildReport`] as JSON.
///
/// # Errors
/// An unreadable bundle, variant or images.
pub fn run_child(args: QaChildArgs) -> Result<ExitCode> {
    let report = qa::measure(&args.request).context("QA measurement failed")?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}
