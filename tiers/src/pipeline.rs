//! The whole slicing pipeline over a checkpoint: latency table → accuracy predictor → search →
//! bundle, with every intermediate file in one output folder:
//!
//! ```text
//! OUT/search/latency_lut.json   per-op latencies of this host (measured once, reused)
//! OUT/search/samples.jsonl      measured sub-nets (appended as they come; resumable)
//! OUT/search/predictor.json     the fitted accuracy predictor
//! OUT/search/finalists.jsonl    each tier's best candidates, measured after the search
//! OUT/search/search.json        chosen sub-net per tier, Pareto fronts, quality figures
//! OUT/search/pareto.{svg,png}   the Pareto plot
//! OUT/bundle/                   manifest.json + one safetensors file per variant
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use supernet::data::{Batcher, DataSplit};
use supernet::progress::Reporter;
use supernet::train::Checkpoint;

use crate::bundle::{BundleOptions, BundleSources, BundleSummary, FamilyInfo, build_bundle};
use crate::error::{Error, Result};
use crate::eval::ExtractOptions;
use crate::latency::{LatencyLut, TimingOptions, validate};
use crate::pareto::write_plots;
use crate::predictor::{
    AccuracyPredictor, MeasureData, PredictorReport, SamplingOptions, measure_archs,
    measure_samples,
};
use crate::search::{
    Candidate, SearchOptions, SearchResult, apply_measured, choose_measured, finalists,
    search_with_measured,
};
use crate::spec::{ProfileRef, TierSpec};
use supernet::ArchConfig;

/// File names inside the search folder.
pub mod files {
    /// The latency table.
    pub const LUT: &str = "latency_lut.json";
    /// Measured sub-nets.
    pub const SAMPLES: &str = "samples.jsonl";
    /// The fitted predictor.
    pub const PREDICTOR: &str = "predictor.json";
    /// The search result.
    pub const SEARCH: &str = "search.json";
    /// Measured finalists.
    pub const FINALISTS: &str = "finalists.jsonl";
}

/// Options of the pipeline (and of its two halves, [`run_search`] and [`run_bundle`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineOptions {
    /// Sub-nets measured for the accuracy predictor (demo: a few dozen; real runs ≥ 500).
    pub samples: usize,
    /// Seed of sampling, the validation split and the search.
    pub seed: u64,
    /// Also write int8 variants (dtype `int8`) beside the f32 ones.
    pub int8: bool,
    /// Data folder (default: the one the checkpoint was trained on).
    pub data_dir: Option<PathBuf>,
    /// Tier spec file (default: [`TierSpec::default_spec`]).
    pub tier_spec: Option<PathBuf>,
    /// Training images BN is recalibrated on for each predictor sample.
    pub sample_calib_images: usize,
    /// Validation images each predictor sample is measured on (at most the held-out slice).
    /// The default, 5 000, is all of Fashion-MNIST's slice: on 1 000 images a sub-net's top-1
    /// moves by ≈ 1 pt, as much as the gaps between the sub-nets the predictor must rank (the
    /// demo's held-out τ went from 0.39 to 0.57 on the same checkpoint), for ≈ 0.4 s more per
    /// sample.
    pub val_images: usize,
    /// Fraction of the training set held out as the predictor's validation set.
    pub val_fraction: f64,
    /// Training images BN is recalibrated on before extracting a variant.
    pub calib_images: usize,
    /// Evaluate variants on at most this many test images (None: all).
    pub test_limit: Option<usize>,
    /// Random archs timed to validate the latency table (0: skip).
    pub lut_validation_archs: usize,
    /// How ops are timed.
    pub timing: TimingOptions,
    /// Evolutionary search knobs (its seed is replaced by `seed`).
    pub search: SearchOptions,
    /// After the search, each tier's this many fittest candidates are measured again on
    /// `finalist_val_images` validation images (BN recalibrated on `calib_images`) and the
    /// tiers chosen again, up to [`FINALIST_ROUNDS`] times while a tier's top candidates
    /// include ones not measured so (0: off). As many validation images as a sample's (all of
    /// the held-out slice by default) and BN recalibrated on 4× as many images: a tier's
    /// winner is the best of several, and on 1 000 images the noise (≈ 1 pt) is as large as
    /// the gaps.
    #[serde(default)]
    pub finalists: usize,
    /// Validation images each finalist is measured on.
    #[serde(default)]
    pub finalist_val_images: usize,
    /// Where progress goes: the stages' phases and a note as each stage starts and ends.
    /// Silent by default; not part of the options' file form.
    #[serde(skip)]
    pub progress: Reporter,
    /// Tiers whose sub-net comes from a fine-tuned run (tier name, run folder), e.g. written
    /// by `tierforge train --arch TIER_ARCH --init-from FAMILY_RUN`; the rest come from the
    /// family checkpoint.
    #[serde(default)]
    pub tier_checkpoints: Vec<(String, PathBuf)>,
    /// Replace the bundle folder even when it holds something that is not a bundle.
    pub force: bool,
    /// Where the supernet's sub-nets are measured, BN recalibrated and variants evaluated (the
    /// latency table is always timed on this host's CPU with the shipped engine).
    #[serde(default)]
    pub device: supernet::ComputeDevice,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            samples: 60,
            seed: 42,
            int8: true,
            data_dir: None,
            tier_spec: None,
            sample_calib_images: 500,
            val_images: 5000,
            val_fraction: 1.0 / 12.0,
            calib_images: 2000,
            test_limit: None,
            lut_validation_archs: 10,
            timing: TimingOptions::default(),
            search: SearchOptions::default(),
            finalists: 6,
            finalist_val_images: 5000,
            progress: Reporter::silent(),
            tier_checkpoints: Vec::new(),
            force: false,
            device: supernet::ComputeDevice::Cpu,
        }
    }
}

/// The device `opts.device` names.
fn compute_device(opts: &PipelineOptions) -> Result<burn::prelude::Device> {
    opts.device
        .device()
        .map_err(|e| Error::supernet("`--device`", e))
}

/// Most rounds of finalist measurement ([`PipelineOptions::finalists`]).
pub const FINALIST_ROUNDS: usize = 3;

fn say(opts: &PipelineOptions, msg: impl fmt::Display) {
    opts.progress.note(&msg.to_string());
}

fn open(checkpoint: &Path, opts: &PipelineOptions) -> Result<(Checkpoint, DataSplit)> {
    let ck = Checkpoint::open(checkpoint).map_err(|e| {
        Error::supernet(
            format!("opening the checkpoint {}", checkpoint.display()),
            e,
        )
    })?;
    let dir = opts
        .data_dir
        .clone()
        .unwrap_or_else(|| ck.state.data_dir.clone());
    let data = supernet::data::load_dir(&dir, ck.state.config.seed).map_err(|e| {
        Error::supernet(
            format!("loading the data the checkpoint was trained on from {} (pass another data folder to use it)", dir.display()),
            e,
        )
    })?;
    Ok((ck, data))
}

fn spec_of(opts: &PipelineOptions) -> Result<TierSpec> {
    match &opts.tier_spec {
        Some(p) => TierSpec::load(p),
        None => TierSpec::default_spec(),
    }
}

/// The predictor's data: (BN-recalibration images, the held-out validation slice), a seeded
/// split of the training set (`opts.val_fraction`, `opts.seed`).
pub fn predictor_split(
    train: &supernet::data::Dataset,
    opts: &PipelineOptions,
) -> (supernet::data::Dataset, supernet::data::Dataset) {
    train.split(opts.val_fraction, opts.seed ^ 0xacc)
}

/// Latency table → accuracy predictor → search, writing everything into `out_dir` (see the
/// module docs). Reuses the table and the measured samples found there.
///
/// # Errors
/// Checkpoint, data, tier spec, file and search errors, each naming its file.
pub fn run_search(
    checkpoint: &Path,
    out_dir: &Path,
    opts: &PipelineOptions,
) -> Result<SearchResult> {
    let spec = spec_of(opts)?;
    let (ck, data) = open(checkpoint, opts)?;
    let space = ck.state.space.clone();
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, "create folder", e))?;

    say(
        opts,
        format!("latency table: {}", out_dir.join(files::LUT).display()),
    );
    let lut = LatencyLut::load_or_measure(&out_dir.join(files::LUT), &space, &opts.timing)?;
    let validation = if opts.lut_validation_archs > 0 {
        let v = validate(
            &lut,
            &space,
            opts.lut_validation_archs,
            opts.seed,
            &opts.timing,
        )?;
        say(
            opts,
            format!(
                "latency table: {} ops, host score {:.0}, overhead {:.3} ms; median error {:.1}% over {} archs",
                lut.len(),
                lut.host().score,
                lut.overhead_ms(),
                100.0 * v.median_rel_error,
                v.checks.len()
            ),
        );
        Some(v)
    } else {
        None
    };

    let device = compute_device(opts)?;
    let model = ck
        .load_model(&device)
        .map_err(|e| Error::supernet(format!("loading the supernet of {}", ck.dir.display()), e))?;
    let (calib, val) = predictor_split(&data.train, opts);
    let sampling = SamplingOptions {
        samples: opts.samples,
        calib_images: opts.sample_calib_images,
        val_images: opts.val_images,
        seed: opts.seed,
        progress: opts.progress.clone(),
    };
    let mut batcher = Batcher::new(ck.state.mean.clone(), ck.state.std.clone());
    let samples = measure_samples(
        &model,
        &calib,
        &val,
        &mut batcher,
        &sampling,
        &out_dir.join(files::SAMPLES),
        &device,
    )?;
    let predictor = AccuracyPredictor::fit(&space, &samples, opts.seed)?;
    predictor.save(&out_dir.join(files::PREDICTOR))?;
    let r = &predictor.report;
    say(
        opts,
        format!(
            "accuracy predictor: {} sub-nets, held-out ({}-fold) RMSE {:.2} pt (mean-only {:.2} pt), Kendall τ {:.3}",
            r.samples,
            r.folds,
            100.0 * r.rmse,
            100.0 * r.baseline_rmse,
            r.kendall_tau
        ),
    );

    let search_opts = SearchOptions {
        seed: opts.seed,
        ..opts.search.clone()
    };
    let measured: Vec<(ArchConfig, f64)> = samples
        .iter()
        .map(|s| (s.arch.clone(), s.accuracy))
        .collect();
    let (mut result, mut archive) =
        search_with_measured(&space, &spec, &predictor, &lut, &search_opts, &measured)?;
    let data = MeasureData {
        calib: &calib,
        val: &val,
        device: &device,
    };
    let final_sampling = SamplingOptions {
        calib_images: opts.calib_images,
        val_images: opts.finalist_val_images,
        ..sampling.clone()
    };
    let finals = Finals {
        model: &model,
        data: &data,
        sampling: &final_sampling,
        cache: &out_dir.join(files::FINALISTS),
        lut: &lut,
    };
    let n = measure_finalists(
        &finals,
        &mut batcher,
        &mut result,
        &mut archive,
        opts.finalists,
    )?;
    if n > 0 {
        say(
            opts,
            format!("finalists: {n} of the tiers' best candidates measured; tiers chosen again"),
        );
    }
    result.latency_validation = validation;
    say(
        opts,
        format!(
            "search: {} sub-nets evaluated in {:.2} s",
            result.evaluated, result.seconds
        ),
    );
    result.save(&out_dir.join(files::SEARCH))?;
    write_plots(out_dir, &result, &archive)?;
    Ok(result)
}

/// What finalists are measured with.
struct Finals<'a> {
    model: &'a supernet::Supernet,
    data: &'a MeasureData<'a>,
    sampling: &'a SamplingOptions,
    cache: &'a Path,
    lut: &'a LatencyLut,
}

/// Measures each tier's `k` fittest candidates that lack a finalist measurement (predictor
/// samples included: they were measured on fewer images) and chooses the tiers again, for at
/// most [`FINALIST_ROUNDS`] rounds, then chooses among measured sub-nets only; returns how many
/// sub-nets it measured.
fn measure_finalists(
    f: &Finals<'_>,
    batcher: &mut Batcher,
    result: &mut SearchResult,
    archive: &mut [Candidate],
    k: usize,
) -> Result<usize> {
    let host_score = f.lut.host().score;
    let mut done: Vec<ArchConfig> = Vec::new();
    for _ in 0..FINALIST_ROUNDS {
        let mut todo: Vec<ArchConfig> = Vec::new();
        for t in &result.tiers {
            for c in finalists(archive, &t.tier, host_score, k) {
                if !done.contains(&c.arch) && !todo.contains(&c.arch) {
                    todo.push(c.arch.clone());
                }
            }
        }
        if todo.is_empty() {
            break;
        }
        let got = measure_archs(f.model, f.data, batcher, &todo, f.sampling, f.cache)?;
        done.extend(todo);
        let pairs: Vec<(ArchConfig, f64)> = got.into_iter().map(|s| (s.arch, s.accuracy)).collect();
        apply_measured(result, archive, &pairs, f.lut)?;
    }
    if k > 0 {
        choose_measured(result, archive, f.lut)?;
    }
    Ok(done.len())
}

/// The search file inside `search`, which may be the file itself or its folder.
pub fn search_file(search: &Path) -> PathBuf {
    if search.is_dir() {
        search.join(files::SEARCH)
    } else {
        search.to_path_buf()
    }
}

/// Builds the bundle at `out` from the checkpoint and the search at `search` (a folder written
/// by [`run_search`], or its `search.json`).
///
/// # Errors
/// Checkpoint, data, search-file, extraction and writer errors.
pub fn run_bundle(
    checkpoint: &Path,
    search: &Path,
    out: &Path,
    opts: &PipelineOptions,
) -> Result<BundleSummary> {
    if !opts.force {
        crate::bundle::check_output_folder(out)?;
    }
    let search_path = search_file(search);
    let result = SearchResult::load(&search_path)?;
    let (ck, data) = open(checkpoint, opts)?;
    let device = compute_device(opts)?;
    let model = ck
        .load_model(&device)
        .map_err(|e| Error::supernet(format!("loading the supernet of {}", ck.dir.display()), e))?;
    let mut fine_tuned = Vec::new();
    for (tier, dir) in &opts.tier_checkpoints {
        let fck = supernet::train::Checkpoint::open(dir)
            .map_err(|e| Error::supernet(format!("tier `{tier}`'s checkpoint"), e))?;
        let arch = result
            .tiers
            .iter()
            .find(|t| &t.tier.name == tier)
            .map(|t| &t.candidate.arch);
        if let (Some(want), Some(got)) = (arch, fck.state.config.standalone_arch.as_ref())
            && want != got
        {
            return Err(Error::BadSearch {
                path: fck.dir.clone(),
                reason: format!(
                    "this run fine-tuned arch {} but tier `{tier}` chose {}; fine-tune the \
                     tier's own arch (`tierforge train --arch`, the arch from {})",
                    got.short_id(),
                    want.short_id(),
                    search_path.display()
                ),
            });
        }
        let m = fck.load_model(&device).map_err(|e| {
            Error::supernet(format!("loading the supernet of {}", fck.dir.display()), e)
        })?;
        fine_tuned.push((tier.clone(), m));
    }
    let bundle_id = data
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| ck.state.space.name.clone());
    let family = FamilyInfo {
        bundle_id,
        labels: ck.state.class_names.clone(),
        mean: ck.state.mean.clone(),
        std: ck.state.std.clone(),
    };
    let bopts = BundleOptions {
        extract: ExtractOptions {
            calib_images: opts.calib_images,
            test_limit: opts.test_limit,
            int8: opts.int8,
        },
        progress: opts.progress.clone(),
        replace_anything: opts.force,
        ..BundleOptions::default()
    };
    say(
        opts,
        format!(
            "bundle: extracting {} tiers into {}",
            result.tiers.len(),
            out.display()
        ),
    );
    let sources = BundleSources {
        model: &model,
        fine_tuned: &fine_tuned,
        family: &family,
        train: &data.train,
        test: &data.test,
        search: &result,
        search_path: &search_path,
    };
    build_bundle(&sources, out, &bopts, &device)
}

/// One row of the tier table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierRow {
    /// Tier name.
    pub tier: String,
    /// Variant id in the bundle.
    pub variant: String,
    /// Arch short id.
    pub arch: String,
    /// MACs per image.
    pub macs: u64,
    /// Stored parameters.
    pub params: u64,
    /// f32 file bytes.
    pub bytes_f32: u64,
    /// int8 file bytes.
    pub bytes_int8: Option<u64>,
    /// Predicted accuracy.
    pub predicted_accuracy: f64,
    /// Validation accuracy measured in the supernet (a predictor sample or a finalist).
    #[serde(default)]
    pub val_accuracy: Option<f64>,
    /// Test top-1 of the f32 file.
    pub test_top1_f32: f64,
    /// Test top-1 of the int8 file.
    pub test_top1_int8: Option<f64>,
    /// Predicted latency on the tier's target device, ms.
    pub latency_ms: f64,
    /// The target device.
    pub device: String,
}

/// What [`run_all`] did; `Display` prints the tier table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineSummary {
    /// One row per tier.
    pub rows: Vec<TierRow>,
    /// The reference device of the bundle's latencies.
    pub reference: ProfileRef,
    /// Median relative error of the latency table on random archs.
    pub lut_median_rel_error: Option<f64>,
    /// The accuracy predictor's held-out quality.
    pub predictor: PredictorReport,
    /// Search seconds (predictor and table ready).
    pub search_seconds: f64,
    /// The search folder.
    pub search_dir: PathBuf,
    /// The bundle folder.
    pub bundle_dir: PathBuf,
    /// The bundle's warnings (real files over budget).
    pub warnings: Vec<String>,
}

/// Joins a search result and a bundle summary into table rows.
pub fn tier_rows(search: &SearchResult, bundle: &BundleSummary) -> Vec<TierRow> {
    search
        .tiers
        .iter()
        .filter_map(|t| {
            let v = bundle
                .variants
                .iter()
                .find(|v| v.tiers.contains(&t.tier.name))?;
            Some(TierRow {
                tier: t.tier.name.clone(),
                variant: v.id.clone(),
                arch: v.arch.short_id(),
                macs: v.costs.macs,
                params: v.costs.params,
                bytes_f32: v.bytes_f32,
                bytes_int8: v.bytes_int8,
                predicted_accuracy: t.candidate.predicted_accuracy,
                val_accuracy: t.candidate.measured_accuracy,
                test_top1_f32: v.test_top1_f32,
                test_top1_int8: v.test_top1_int8,
                latency_ms: t.target_latency_ms,
                device: t.tier.profile.id.clone(),
            })
        })
        .collect()
}

impl fmt::Display for PipelineSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<10} {:<34} {:>7} {:>8} {:>9} {:>9} {:>7} {:>7} {:>7} {:>7} {:>9}  device",
            "tier",
            "arch",
            "MMACs",
            "params",
            "f32 B",
            "int8 B",
            "pred%",
            "val%",
            "f32%",
            "int8%",
            "lat ms"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<10} {:<34} {:>7.2} {:>8} {:>9} {:>9} {:>7.2} {:>7} {:>7.2} {:>7} {:>9.3}  {}",
                r.tier,
                r.arch,
                r.macs as f64 / 1e6,
                r.params,
                r.bytes_f32,
                r.bytes_int8.map_or("-".into(), |b| b.to_string()),
                100.0 * r.predicted_accuracy,
                r.val_accuracy
                    .map_or("-".into(), |a| format!("{:.2}", 100.0 * a)),
                100.0 * r.test_top1_f32,
                r.test_top1_int8
                    .map_or("-".into(), |a| format!("{:.2}", 100.0 * a)),
                r.latency_ms,
                r.device
            )?;
        }
        write!(
            f,
            "latency table error (median) {}; predictor RMSE {:.2} pt, Kendall τ {:.3} ({} sub-nets); search {:.2} s\nbundle: {}",
            self.lut_median_rel_error
                .map_or("-".into(), |e| format!("{:.1}%", 100.0 * e)),
            100.0 * self.predictor.rmse,
            self.predictor.kendall_tau,
            self.predictor.samples,
            self.search_seconds,
            self.bundle_dir.display()
        )?;
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

/// Runs the whole pipeline: [`run_search`] into `out_dir/search`, then [`run_bundle`] into
/// `out_dir/bundle`, and returns the tier table.
///
/// # Errors
/// As [`run_search`] and [`run_bundle`].
pub fn run_all(
    checkpoint: &Path,
    out_dir: &Path,
    opts: &PipelineOptions,
) -> Result<PipelineSummary> {
    let search_dir = out_dir.join("search");
    let bundle_dir = out_dir.join("bundle");
    let result = run_search(checkpoint, &search_dir, opts)?;
    let bundle = run_bundle(checkpoint, &search_dir, &bundle_dir, opts)?;
    Ok(PipelineSummary {
        rows: tier_rows(&result, &bundle),
        reference: result.reference.clone(),
        lut_median_rel_error: result
            .latency_validation
            .as_ref()
            .map(|v| v.median_rel_error),
        predictor: result.predictor.clone(),
        search_seconds: result.seconds,
        search_dir,
        bundle_dir,
        warnings: bundle.warnings,
    })
}
