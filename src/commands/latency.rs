//! `tierforge latency`: the predicted latency of every variant of a bundle on one device.
//!
//! ```text
//! tierforge latency --bundle B --profile P [--threads N] [--json]
//! ```
//! `P` is a catalog phone's id or a device profile file. The prediction is the selector's own
//! ([`runtime::predicted_latency_ms`]); without `--threads` it is made at the runtime's own thread
//! choice ([`runtime::inference_threads`]). JSON: `[{"variant", "threads", "predicted_ms"}]`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use runtime::{Bundle, DeviceFacts, inference_threads, predicted_latency_ms_at, size_order};

/// Arguments of `tierforge latency`.
#[derive(Debug, Clone, Args)]
pub struct LatencyArgs {
    /// The bundle folder (the one holding manifest.json).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// A catalog phone's id (`tierforge profile --catalog` lists them) or a device profile file.
    #[arg(long, value_name = "ID|FILE")]
    pub profile: String,
    /// Inference threads to predict at (default: the runtime's own choice per variant,
    /// [`runtime::inference_threads`]). Threads beyond the device's big cores count as its big
    /// cores.
    #[arg(long, value_name = "N", value_parser = super::bounded(1, 1024))]
    pub threads: Option<usize>,
    /// Print JSON (for machines).
    #[arg(long)]
    pub json: bool,
}

/// One row of the output.
#[derive(Debug, serde::Serialize)]
struct Row {
    variant: String,
    threads: usize,
    predicted_ms: f64,
}

/// Runs `tierforge latency`.
///
/// # Errors
/// An unreadable or invalid bundle, an unknown phone id, an unreadable or invalid profile file.
pub fn run(args: LatencyArgs) -> Result<ExitCode> {
    let bundle = Bundle::open(&args.bundle)
        .with_context(|| format!("cannot open bundle {}", args.bundle.display()))?;
    let (device, name) = load_device(&args.profile)?;
    let manifest = bundle.manifest();
    let rows: Vec<Row> = size_order(manifest)
        .into_iter()
        .map(|v| {
            let threads = args
                .threads
                .unwrap_or_else(|| inference_threads(v, &device));
            Row {
                variant: v.id.clone(),
                threads,
                predicted_ms: predicted_latency_ms_at(manifest, v, &device, threads),
            }
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{name} (score {:.0}); bundle reference {} (score {:.0})",
        device.score,
        manifest.reference().profile_id,
        manifest.reference().score
    )?;
    writeln!(
        out,
        "{:<24} {:>7} {:>13}",
        "variant", "threads", "predicted ms"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<24} {:>7} {:>13.3}",
            r.variant, r.threads, r.predicted_ms
        )?;
    }
    match args.threads {
        None => writeln!(
            out,
            "(threads: the runtime's own choice per variant, from its 1- and 2-thread reference \
             latency and the device's {} big cores)",
            device.big_cores
        )?,
        Some(t) if t > device.big_cores.max(1) => writeln!(
            out,
            "(asked for {t} threads: the device has {} big cores, so the prediction counts those)",
            device.big_cores
        )?,
        Some(_) => {}
    }
    writeln!(
        out,
        "(predicted by the latency model: reference latency x reference score / device score; \
         BENCHMARKS.md \"The device model\" gives its error on public measurements)"
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A catalog phone by id, or a profile file.
fn load_device(profile: &str) -> Result<(DeviceFacts, String)> {
    if let Some(p) = device_profiles::catalog::builtin_by_id(profile)
        .context("the built-in phone catalog is invalid")?
    {
        return Ok((DeviceFacts::from(&p), p.name));
    }
    let path = std::path::Path::new(profile);
    if !path.exists() {
        let ids: Vec<String> = device_profiles::catalog::builtin()
            .map(|c| c.into_iter().map(|p| p.id).collect())
            .unwrap_or_default();
        anyhow::bail!(
            "--profile {profile}: neither a catalog phone nor a file; catalog ids: {}",
            ids.join(", ")
        );
    }
    let facts = super::select::load_facts_json(path)?;
    let name = facts.name.clone();
    Ok((facts, name))
}
