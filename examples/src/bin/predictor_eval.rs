//! The accuracy predictor before and after, on one trained family, in one run: the same
//! held-out sub-nets (seeded, uniformly random, never fitted on) scored by
//!
//! - `before`: Once-for-All's one-hot ridge fitted on uniformly random samples (format 1);
//! - `after`: the size-aware ridge fitted on samples stratified over log MACs (the default);
//! - and the two crossings, to tell the sampling's share from the model's.
//!
//! ```text
//! cargo run --release -p tierforge-examples --bin predictor_eval -- --checkpoint RUN
//!     [--out DIR] [--samples N] [--held-out M] [--seed S] [--data D] [--val-images V]
//! ```
//! Every measured sub-net is cached in `DIR/measured.jsonl` (default `runs/predictor-eval`), so
//! a second run measures nothing. Prints one line per (model, sampling) with Kendall's τ, the
//! RMSE and the RMSE of predicting the training mean on the held-out sub-nets, and the
//! predictor's own cross-validated report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use supernet::ArchConfig;
use supernet::data::Batcher;
use supernet::train::Checkpoint;
use tiers::predictor::{
    AccuracyPredictor, MeasureData, PredictorModel, Sample, SamplingOptions, measure_archs,
    random_archs, sample_archs,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    checkpoint: PathBuf,
    out: PathBuf,
    samples: usize,
    held_out: usize,
    seed: u64,
    data: Option<PathBuf>,
    val_images: usize,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        checkpoint: PathBuf::new(),
        out: PathBuf::from("runs/predictor-eval"),
        samples: 60,
        held_out: 100,
        seed: 42,
        data: None,
        val_images: tiers::PipelineOptions::default().val_images,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--checkpoint" => a.checkpoint = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--samples" => a.samples = value()?.parse().context("--samples: a count")?,
            "--held-out" => a.held_out = value()?.parse().context("--held-out: a count")?,
            "--seed" => a.seed = value()?.parse().context("--seed: an integer")?,
            "--data" => a.data = Some(value()?.into()),
            "--val-images" => a.val_images = value()?.parse().context("--val-images: a count")?,
            other => bail!("unknown flag {other}; see the file's docs for the flags"),
        }
    }
    if a.checkpoint.as_os_str().is_empty() {
        bail!("--checkpoint RUN is required (a run folder, e.g. runs/demo/train)");
    }
    Ok(a)
}

fn run() -> Result<ExitCode> {
    let a = parse()?;
    let ck = Checkpoint::open(&a.checkpoint)
        .with_context(|| format!("opening {}", a.checkpoint.display()))?;
    let dir = a.data.clone().unwrap_or_else(|| ck.state.data_dir.clone());
    let data = supernet::data::load_dir(&dir, ck.state.config.seed)
        .with_context(|| format!("loading {}", dir.display()))?;
    let device = supernet::default_device();
    let model = ck.load_model(&device)?;
    let space = model.space.clone();
    let popts = tiers::PipelineOptions {
        seed: a.seed,
        ..tiers::PipelineOptions::default()
    };
    let (calib, val) = tiers::pipeline::predictor_split(&data.train, &popts);
    let sampling = SamplingOptions {
        samples: a.samples,
        calib_images: popts.sample_calib_images,
        val_images: a.val_images,
        seed: a.seed,
        ..SamplingOptions::default()
    };
    // the old sampling: the two ends, then uniformly random sub-nets
    let ends = [ArchConfig::max(&space), ArchConfig::min(&space)];
    let mut uniform: Vec<ArchConfig> = ends.to_vec();
    uniform.extend(
        random_archs(&space, a.samples + 2, a.seed)
            .into_iter()
            .filter(|x| !ends.contains(x)),
    );
    uniform.truncate(a.samples);
    let stratified = sample_archs(&space, a.samples, a.seed);
    let held: Vec<ArchConfig> = random_archs(&space, a.held_out + 2 * a.samples, a.seed + 1000)
        .into_iter()
        .filter(|x| !ends.contains(x) && !uniform.contains(x) && !stratified.contains(x))
        .take(a.held_out)
        .collect();
    let mut all = uniform.clone();
    all.extend(stratified.iter().cloned());
    all.extend(held.iter().cloned());
    std::fs::create_dir_all(&a.out)?;
    let cache = a.out.join("measured.jsonl");
    let mut batcher = Batcher::new(ck.state.mean.clone(), ck.state.std.clone());
    let t0 = Instant::now();
    let md = MeasureData {
        calib: &calib,
        val: &val,
        device: &device,
    };
    let measured = measure_archs(&model, &md, &mut batcher, &all, &sampling, &cache)?;
    eprintln!(
        "{} sub-nets measured or read from {} in {:.1} s ({} val images each)",
        measured.len(),
        cache.display(),
        t0.elapsed().as_secs_f64(),
        a.val_images
    );
    let pick = |archs: &[ArchConfig]| -> Vec<Sample> {
        archs
            .iter()
            .filter_map(|x| measured.iter().find(|s| &s.arch == x).cloned())
            .collect()
    };
    let held_s = pick(&held);
    let accs: Vec<f64> = held_s.iter().map(|s| s.accuracy).collect();
    let (lo, hi) = accs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    println!(
        "checkpoint {}, seed {}, {} training sub-nets per predictor, {} held-out random sub-nets \
         (val top-1 {:.2}–{:.2}%)",
        a.checkpoint.display(),
        a.seed,
        a.samples,
        held_s.len(),
        100.0 * lo,
        100.0 * hi
    );
    println!(
        "{:<8} {:<13} {:<11} {:>8} {:>9} {:>11} {:>9} {:>10}",
        "", "model", "sampling", "τ", "RMSE pt", "mean RMSE", "CV τ", "CV RMSE pt"
    );
    for (label, model_kind, sampling_name, train) in [
        ("before", PredictorModel::OneHotRidge, "uniform", &uniform),
        ("", PredictorModel::OneHotRidge, "stratified", &stratified),
        ("", PredictorModel::SizeRidge, "uniform", &uniform),
        (
            "after",
            PredictorModel::SizeRidge,
            "stratified",
            &stratified,
        ),
    ] {
        let train_s = pick(train);
        let p = AccuracyPredictor::fit_model(&space, model_kind, &train_s, a.seed)?;
        let mean = train_s.iter().map(|s| s.accuracy).sum::<f64>() / train_s.len() as f64;
        let (rmse, base, tau) = p.score_on(&held_s, mean);
        println!(
            "{:<8} {:<13} {:<11} {:>8.3} {:>9.2} {:>11.2} {:>9.3} {:>10.2}",
            label,
            format!("{model_kind:?}"),
            sampling_name,
            tau,
            100.0 * rmse,
            100.0 * base,
            p.report.kendall_tau,
            100.0 * p.report.rmse
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
