//! The accuracy predictor: validation accuracy of sampled sub-nets (measured after BN
//! recalibration, cached in a JSONL file so an interrupted sampling resumes), an arch encoding,
//! and ridge regression on it, with RMSE and Kendall's τ on held-out sub-nets (out of fold).
//!
//! Encoding: Once-for-All's one-hot part — per stage and block slot, one-hot kernel and one-hot
//! expand ratio (zeros for inactive slots); per stage, one-hot depth; one-hot resolution; in a
//! width-elastic space, per stage, one-hot width (one slot per width multiplier) — then,
//! for [`PredictorModel::SizeRidge`] (the default), the size of the sub-net (log MACs and log
//! folded parameters, scaled to 0..1 over the space's smallest..largest sub-net), two
//! indicators ("is the largest", "is the smallest") and the closeness to either end (the share
//! of genes at the largest's and at the smallest's value, and their squares). These eight are
//! penalised 10⁴× less than the one-hot part, which fits what they do not explain. The sandwich
//! rule trains the two ends every step: in a short run (the demo) accuracy is high near either
//! end and dips in the middle, whatever the size, so closeness matters as much as size.
//!
//! Samples are stratified over log MACs ([`sample_archs`]): uniformly random sub-nets crowd the
//! middle of the size range, so a few dozen of them leave the small and the large end unseen.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

use burn::prelude::Device;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use supernet::data::{Batcher, Dataset};
use supernet::progress::Reporter;
use supernet::train::{evaluate, recalibrate_bn};
use supernet::{ArchConfig, SearchSpace, Supernet, arch_cost};

use crate::error::{Error, Result, write_atomic};

/// `format_version` of `predictor.json` (1: one-hot ridge without a `model` field).
pub const PREDICTOR_FORMAT_VERSION: u32 = 2;

/// Which features the ridge regression sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorModel {
    /// Once-for-All's one-hot encoding alone, every feature penalised alike (format 1's model).
    OneHotRidge,
    /// The one-hot encoding plus size (log MACs, log params) and the two end indicators, the
    /// latter nearly unpenalised (see the module docs).
    #[default]
    SizeRidge,
}

/// Features after the one-hot part in [`PredictorModel::SizeRidge`]: log MACs, log params,
/// "is the largest", "is the smallest", the share of genes at the largest's and at the
/// smallest's value, and their squares.
const SIZE_FEATURES: usize = 8;

/// Penalty of the size features relative to the one-hot part.
const SIZE_PENALTY: f64 = 1e-4;

/// Length of the one-hot part of the encoding for `space`.
pub fn one_hot_len(space: &SearchSpace) -> usize {
    let n = space.stages.len();
    n * space.max_depth() * (space.kernel_sizes.len() + space.expand_ratios.len())
        + n * space.depths.len()
        + space.resolutions.len()
        + width_one_hot_len(space)
}

/// Length of the per-stage one-hot width part (0 in a width-free space).
fn width_one_hot_len(space: &SearchSpace) -> usize {
    if space.has_elastic_width() {
        space.stages.len() * space.width_multipliers.len()
    } else {
        0
    }
}

/// Length of [`encode`]'s vector for `space` and `model`.
pub fn feature_len(space: &SearchSpace, model: PredictorModel) -> usize {
    match model {
        PredictorModel::OneHotRidge => one_hot_len(space),
        PredictorModel::SizeRidge => one_hot_len(space) + SIZE_FEATURES,
    }
}

/// Ridge penalty of each feature of [`encode`] (relative to λ).
pub fn penalties(space: &SearchSpace, model: PredictorModel) -> Vec<f64> {
    let mut p = vec![1.0; one_hot_len(space)];
    p.resize(feature_len(space, model), SIZE_PENALTY);
    p
}

/// `(x − lo) / (hi − lo)`, 0 when the range is empty.
fn unit(x: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo { (x - lo) / (hi - lo) } else { 0.0 }
}

/// The arch encoding of `model` (see the module docs). Values not in the space encode as zeros.
pub fn encode(space: &SearchSpace, model: PredictorModel, arch: &ArchConfig) -> Vec<f64> {
    let mut v = encode_one_hot(space, arch);
    if model == PredictorModel::SizeRidge {
        let (max, min) = (ArchConfig::max(space), ArchConfig::min(space));
        let size = |a: &ArchConfig| {
            let c = arch_cost(space, a);
            (
                (c.macs.max(1) as f64).ln(),
                (c.folded_params.max(1) as f64).ln(),
            )
        };
        let ((m, p), (m_hi, p_hi), (m_lo, p_lo)) = (size(arch), size(&max), size(&min));
        v.push(unit(m, m_lo, m_hi));
        v.push(unit(p, p_lo, p_hi));
        v.push(if *arch == max { 1.0 } else { 0.0 });
        v.push(if *arch == min { 1.0 } else { 0.0 });
        let (near_max, near_min) = closeness(space, arch);
        v.extend([near_max, near_min, near_max * near_max, near_min * near_min]);
    }
    v
}

/// Share of `arch`'s genes equal to the largest sub-net's (over every slot of the largest,
/// inactive ones counting as different) and to the smallest's (over `arch`'s own genes). The
/// sandwich rule trains both ends every step, and a sub-net inherits more of their training
/// the more of their choices it shares: in a short run accuracy dips in the middle of the
/// space, which size alone cannot express.
fn closeness(space: &SearchSpace, arch: &ArchConfig) -> (f64, f64) {
    let (kmax, emax, dmax) = (space.max_kernel(), space.max_expand(), space.max_depth());
    let (kmin, emin, dmin) = (
        space.kernel_sizes[0],
        space.expand_ratios[0],
        space.depths[0],
    );
    let rmax = space.resolutions.last().copied().unwrap_or(arch.resolution);
    let rmin = space.resolutions[0];
    let (mut at_max, mut at_min, mut own) = (0usize, 0usize, 0usize);
    let mut count = |v: usize, hi: usize, lo: usize| {
        at_max += usize::from(v == hi);
        at_min += usize::from(v == lo);
        own += 1;
    };
    count(arch.resolution, rmax, rmin);
    for (s, &d) in arch.depths.iter().enumerate() {
        count(d, dmax, dmin);
        for &k in arch.kernel_sizes.get(s).map_or(&[][..], Vec::as_slice) {
            count(k, kmax, kmin);
        }
        for &e in arch.expand_ratios.get(s).map_or(&[][..], Vec::as_slice) {
            count(e, emax, emin);
        }
    }
    if space.has_elastic_width() {
        for s in 0..space.stages.len() {
            let widths = space.stage_widths(s);
            let (wmin, wmax) = (widths[0], widths[widths.len() - 1]);
            count(arch.stage_width(space, s), wmax, wmin);
        }
    }
    let width_genes = if space.has_elastic_width() {
        space.stages.len()
    } else {
        0
    };
    let max_genes = 1 + space.stages.len() * (1 + 2 * dmax) + width_genes;
    (
        at_max as f64 / max_genes as f64,
        at_min as f64 / own.max(1) as f64,
    )
}

/// Once-for-All's one-hot encoding alone (the first [`one_hot_len`] features of [`encode`]).
pub fn encode_one_hot(space: &SearchSpace, arch: &ArchConfig) -> Vec<f64> {
    let mut v = Vec::with_capacity(one_hot_len(space));
    let one_hot = |v: &mut Vec<f64>, choices: &[usize], x: Option<usize>| {
        v.extend(
            choices
                .iter()
                .map(|c| if Some(*c) == x { 1.0 } else { 0.0 }),
        );
    };
    for s in 0..space.stages.len() {
        for b in 0..space.max_depth() {
            let k = arch.kernel_sizes.get(s).and_then(|ks| ks.get(b)).copied();
            let e = arch.expand_ratios.get(s).and_then(|es| es.get(b)).copied();
            one_hot(&mut v, &space.kernel_sizes, k);
            one_hot(&mut v, &space.expand_ratios, e);
        }
    }
    for s in 0..space.stages.len() {
        one_hot(&mut v, &space.depths, arch.depths.get(s).copied());
    }
    one_hot(&mut v, &space.resolutions, Some(arch.resolution));
    if space.has_elastic_width() {
        for s in 0..space.stages.len() {
            one_hot(
                &mut v,
                &space.stage_widths(s),
                Some(arch.stage_width(space, s)),
            );
        }
    }
    v
}

/// One measured sub-net (a line of `samples.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// The sub-net.
    pub arch: ArchConfig,
    /// Validation top-1, 0..=1.
    pub accuracy: f64,
    /// Validation images it was measured on.
    pub val_images: usize,
    /// Training images BN was recalibrated on.
    pub calib_images: usize,
}

/// How sub-nets are sampled and measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    /// Sub-nets to measure (the largest and the smallest, then seeded random ones). The demo
    /// uses a few dozen; a real run should use ≥ 500 (Once-for-All used 16 000).
    pub samples: usize,
    /// Training images BN is recalibrated on per sub-net.
    pub calib_images: usize,
    /// Validation images each sub-net is measured on.
    pub val_images: usize,
    /// Seed of the arch sequence.
    pub seed: u64,
    /// Where progress goes (a phase "measuring sub-nets", one unit a sub-net). Silent by
    /// default; not part of the options' file form.
    #[serde(skip)]
    pub progress: Reporter,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        SamplingOptions {
            samples: 60,
            calib_images: 500,
            val_images: 1000,
            seed: 42,
            progress: Reporter::silent(),
        }
    }
}

/// The deterministic list of archs to sample: the largest, the smallest, then seeded random
/// archs without repeats, stratified over log MACs: a pool of random archs, and for each of the
/// `n − 2` equal-width bins between the smallest and the largest sub-net's log MACs the unused
/// pool arch nearest the bin's centre. Fewer than `n` only when the space is smaller than `n`.
pub fn sample_archs(space: &SearchSpace, n: usize, seed: u64) -> Vec<ArchConfig> {
    let mut out = ends(space, n);
    let want = n.saturating_sub(out.len());
    if want == 0 {
        return out;
    }
    let log_macs = |a: &ArchConfig| (arch_cost(space, a).macs.max(1) as f64).ln();
    let pool: Vec<(f64, ArchConfig)> = random_archs(space, 40 * want + 100, seed)
        .into_iter()
        .filter(|a| !out.contains(a))
        .map(|a| (log_macs(&a), a))
        .collect();
    let (lo, hi) = (
        log_macs(&ArchConfig::min(space)),
        log_macs(&ArchConfig::max(space)),
    );
    let mut used = vec![false; pool.len()];
    for b in 0..want {
        let centre = lo + (hi - lo) * (b as f64 + 0.5) / want as f64;
        let nearest = pool
            .iter()
            .enumerate()
            .filter(|(i, _)| !used[*i])
            .min_by(|(_, x), (_, y)| (x.0 - centre).abs().total_cmp(&(y.0 - centre).abs()));
        let Some((i, _)) = nearest else { break };
        used[i] = true;
        out.push(pool[i].1.clone());
    }
    out
}

/// The largest and the smallest sub-net (at most `n` of them, without repeats).
fn ends(space: &SearchSpace, n: usize) -> Vec<ArchConfig> {
    let mut out = Vec::with_capacity(2);
    for a in [ArchConfig::max(space), ArchConfig::min(space)] {
        if out.len() < n && !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// Up to `n` seeded, uniformly random archs without repeats (fewer only when the space is
/// smaller): the natural distribution of sub-nets, used to score a predictor on held-out ones.
pub fn random_archs(space: &SearchSpace, n: usize, seed: u64) -> Vec<ArchConfig> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n && tries < 50 * n.max(1) {
        let a = ArchConfig::random(space, &mut rng);
        if seen.insert(a.clone()) {
            out.push(a);
        }
        tries += 1;
    }
    out
}

/// Reads a samples file, skipping a torn last line (an interrupted write).
///
/// # Errors
/// I/O, a malformed line other than the last, or an arch outside `space` (the file belongs to
/// another run: delete it).
pub fn read_samples(path: &Path, space: &SearchSpace) -> Result<Vec<Sample>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, "read", e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Sample>(line) {
            Ok(s) => {
                if s.arch.validate(space).is_err() || !(0.0..=1.0).contains(&s.accuracy) {
                    return Err(Error::Mismatch {
                        path: path.into(),
                        reason: format!(
                            "line {}: the sub-net is not in this checkpoint's search space (or its \
                             accuracy is out of range); delete the file to sample again",
                            i + 1
                        ),
                    });
                }
                out.push(s);
            }
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(source) => {
                return Err(Error::Json {
                    path: path.into(),
                    what: format!("line {}", i + 1),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// Measures the validation accuracy of the archs of [`sample_archs`] that `cache` lacks,
/// appending each result to `cache` as it comes (so an interrupted run resumes), and returns
/// all of them in sampling order.
///
/// # Errors
/// As [`read_samples`], or a write error.
pub fn measure_samples(
    model: &Supernet,
    calib: &Dataset,
    val: &Dataset,
    batcher: &mut Batcher,
    opts: &SamplingOptions,
    cache: &Path,
    device: &Device,
) -> Result<Vec<Sample>> {
    let archs = sample_archs(&model.space, opts.samples, opts.seed);
    let data = MeasureData { calib, val, device };
    measure_archs(model, &data, batcher, &archs, opts, cache)
}

/// What sub-nets are measured on: BN is recalibrated on the first images of `calib`, top-1 is
/// taken on the first images of `val`.
pub struct MeasureData<'a> {
    /// Training images for BN recalibration.
    pub calib: &'a Dataset,
    /// The held-out validation slice.
    pub val: &'a Dataset,
    /// The compute device.
    pub device: &'a Device,
}

/// Measures the validation accuracy of those of `archs` that `cache` lacks measured the same way
/// (a line measured on other image counts is kept but not used; BN recalibrated on
/// `opts.calib_images`, top-1 on `opts.val_images`; `opts.samples` and `opts.seed` are not
/// used), appending each result to `cache` as it comes, and returns all of `archs` in order.
///
/// # Errors
/// As [`read_samples`], or a write error.
pub fn measure_archs(
    model: &Supernet,
    data: &MeasureData<'_>,
    batcher: &mut Batcher,
    archs: &[ArchConfig],
    opts: &SamplingOptions,
    cache: &Path,
) -> Result<Vec<Sample>> {
    let space = &model.space;
    let mut have = read_samples(cache, space)?;
    // rewrite a file with a torn tail so appends start on a fresh line
    if let Ok(text) = std::fs::read_to_string(cache)
        && !text.is_empty()
        && !text.ends_with('\n')
    {
        let body: String = have
            .iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .map(|l| l + "\n")
            .collect();
        write_atomic(cache, body.as_bytes())?;
    }
    // a cached sample counts only when it was measured the way asked now
    let val_n = opts.val_images.min(data.val.len());
    let calib_n = opts.calib_images.min(data.calib.len());
    let same = |s: &Sample, a: &ArchConfig| {
        &s.arch == a && s.val_images == val_n && s.calib_images == calib_n
    };
    let mut todo: Vec<&ArchConfig> = Vec::new();
    for a in archs {
        if !have.iter().any(|s| same(s, a)) && !todo.contains(&a) {
            todo.push(a);
        }
    }
    if !todo.is_empty() {
        if let Some(parent) = cache.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, "create folder", e))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(cache)
            .map_err(|e| Error::io(cache, "open for appending", e))?;
        let bar = opts.progress.phase("measuring sub-nets", todo.len() as u64);
        for arch in todo {
            recalibrate_bn(
                model,
                arch,
                data.calib,
                batcher,
                opts.calib_images,
                data.device,
            );
            let accuracy = evaluate(model, arch, data.val, batcher, Some(val_n), data.device);
            let s = Sample {
                arch: arch.clone(),
                accuracy,
                val_images: val_n,
                calib_images: calib_n,
            };
            let line = serde_json::to_string(&s).map_err(|source| Error::Json {
                path: cache.into(),
                what: "a new sample".into(),
                source,
            })?;
            writeln!(file, "{line}").map_err(|e| Error::io(cache, "append to", e))?;
            bar.message(&format!("last {:.1}%", 100.0 * accuracy));
            bar.advance(1);
            have.push(s);
        }
    }
    // in the order asked, only the requested ones
    Ok(archs
        .iter()
        .filter_map(|a| have.iter().rev().find(|s| same(s, a)).cloned())
        .collect())
}

/// Root-mean-square error.
pub fn rmse(pred: &[f64], truth: &[f64]) -> f64 {
    let n = pred.len().min(truth.len());
    if n == 0 {
        return 0.0;
    }
    (pred
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / n as f64)
        .sqrt()
}

/// Kendall's τ-b rank correlation (ties handled); 1 for identical rankings, −1 for reversed,
/// 0 when either side is constant.
pub fn kendall_tau(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (mut concordant, mut discordant, mut ties_a, mut ties_b) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let da = a[i] - a[j];
            let db = b[i] - b[j];
            if da == 0.0 && db == 0.0 {
                continue;
            } else if da == 0.0 {
                ties_a += 1;
            } else if db == 0.0 {
                ties_b += 1;
            } else if (da > 0.0) == (db > 0.0) {
                concordant += 1;
            } else {
                discordant += 1;
            }
        }
    }
    let n_a = (concordant + discordant + ties_b) as f64;
    let n_b = (concordant + discordant + ties_a) as f64;
    if n_a == 0.0 || n_b == 0.0 {
        return 0.0;
    }
    (concordant - discordant) as f64 / (n_a * n_b).sqrt()
}

/// Solves `a x = b` for a symmetric positive-definite `a` (row-major `p×p`) by Cholesky.
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    let mut y = vec![0.0; p];
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * y[k];
        }
        y[i] = s / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        let mut s = y[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    Some(x)
}

/// Ridge regression with an unpenalised intercept: minimises ‖y − Xw − b‖² + λ‖w‖².
///
/// # Errors
/// No rows, rows of different lengths, or a non-positive λ.
pub fn ridge_fit(x: &[Vec<f64>], y: &[f64], lambda: f64) -> Result<(Vec<f64>, f64)> {
    let p = x.first().map_or(0, Vec::len);
    ridge_fit_weighted(x, y, lambda, &vec![1.0; p])
}

/// Ridge regression with a penalty per feature: minimises ‖y − Xw − b‖² + λ Σ pⱼ wⱼ²
/// (intercept unpenalised).
///
/// # Errors
/// No rows, rows of different lengths than `penalty`, a non-positive λ or a negative penalty.
pub fn ridge_fit_weighted(
    x: &[Vec<f64>],
    y: &[f64],
    lambda: f64,
    penalty: &[f64],
) -> Result<(Vec<f64>, f64)> {
    let n = x.len().min(y.len());
    let p = penalty.len();
    if n == 0
        || x.iter().any(|r| r.len() != p)
        || !(lambda > 0.0)
        || penalty.iter().any(|v| !(*v >= 0.0))
    {
        return Err(Error::Predictor {
            reason: format!(
                "ridge needs ≥ 1 sample of {p} features and λ > 0 (got {n} samples, λ {lambda})"
            ),
        });
    }
    let mut xm = vec![0.0; p];
    for r in &x[..n] {
        for (m, v) in xm.iter_mut().zip(r) {
            *m += v / n as f64;
        }
    }
    let ym = y[..n].iter().sum::<f64>() / n as f64;
    let mut a = vec![0.0; p * p];
    let mut rhs = vec![0.0; p];
    for (r, &t) in x[..n].iter().zip(y) {
        let c: Vec<f64> = r.iter().zip(&xm).map(|(v, m)| v - m).collect();
        for i in 0..p {
            rhs[i] += c[i] * (t - ym);
            for j in 0..=i {
                a[i * p + j] += c[i] * c[j];
            }
        }
    }
    for i in 0..p {
        for j in 0..i {
            a[j * p + i] = a[i * p + j];
        }
        // a feature constant over the rows (centred to zero) keeps a tiny ridge so the system
        // stays positive definite
        a[i * p + i] += lambda * penalty[i].max(1e-9);
    }
    let w = cholesky_solve(&a, &rhs, p).ok_or_else(|| Error::Predictor {
        reason: "the normal equations are not positive definite; raise λ".into(),
    })?;
    let b = ym - w.iter().zip(&xm).map(|(w, m)| w * m).sum::<f64>();
    Ok((w, b))
}

fn dot(w: &[f64], b: f64, x: &[f64]) -> f64 {
    b + x.iter().zip(w).map(|(a, c)| a * c).sum::<f64>()
}

/// Quality of a predictor on held-out sub-nets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorReport {
    /// Measured sub-nets in all.
    pub samples: usize,
    /// Sub-nets each held-out prediction was fitted on (all but one fold).
    pub train: usize,
    /// Sub-nets scored out of fold: every measured one except the largest and the smallest
    /// (always measured, so never predicted).
    pub held_out: usize,
    /// λ chosen by cross-validation on all samples (for the final fit).
    pub lambda: f64,
    /// RMSE of the out-of-fold predictions (accuracy as a 0..1 fraction).
    pub rmse: f64,
    /// RMSE of predicting each fold's training mean, for comparison.
    pub baseline_rmse: f64,
    /// Kendall's τ between out-of-fold predicted and measured accuracy.
    pub kendall_tau: f64,
    /// Folds of the cross-validation (0 in reports of format 1: one seeded split).
    #[serde(default)]
    pub folds: usize,
}

/// `predictor.json`: a fitted ridge predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyPredictor {
    /// [`PREDICTOR_FORMAT_VERSION`].
    pub format_version: u32,
    /// The features it sees.
    pub model: PredictorModel,
    /// The space the encoding belongs to.
    pub space: SearchSpace,
    /// Ridge weights, one per feature of [`encode`].
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
    /// Held-out quality (cross-validated; these weights are fitted on all samples).
    pub report: PredictorReport,
}

const LAMBDAS: [f64; 10] = [1e-3, 3e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0];

/// Folds of the predictor's cross-validation.
const FOLDS: usize = 5;

/// The λ of [`LAMBDAS`] with the lowest 5-fold squared error (rows in the given order, fold =
/// index mod 5); 1.0 for fewer than 10 rows.
fn choose_lambda(x: &[Vec<f64>], y: &[f64], penalty: &[f64]) -> f64 {
    let n = x.len();
    if n < 10 {
        return 1.0;
    }
    let mut best = (f64::INFINITY, 1.0);
    for &lambda in &LAMBDAS {
        let mut se = 0.0;
        for f in 0..FOLDS {
            let (tr, va): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % FOLDS != f);
            let xt: Vec<Vec<f64>> = tr.iter().map(|&i| x[i].clone()).collect();
            let yt: Vec<f64> = tr.iter().map(|&i| y[i]).collect();
            let Ok((w, b)) = ridge_fit_weighted(&xt, &yt, lambda, penalty) else {
                se = f64::INFINITY;
                break;
            };
            se += va
                .iter()
                .map(|&i| (dot(&w, b, &x[i]) - y[i]).powi(2))
                .sum::<f64>();
        }
        if se < best.0 {
            best = (se, lambda);
        }
    }
    best.1
}

/// Out-of-fold predictions: rows are shuffled (seeded) into [`FOLDS`] folds; each fold is
/// predicted by a fit (λ chosen inside the fit's own rows) on the others. Returns
/// `(prediction, training mean)` per row.
fn out_of_fold(x: &[Vec<f64>], y: &[f64], penalty: &[f64], seed: u64) -> Result<Vec<(f64, f64)>> {
    let n = x.len();
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9e37));
    let mut out = vec![(0.0, 0.0); n];
    for f in 0..FOLDS.min(n) {
        let (va, tr): (Vec<usize>, Vec<usize>) = (0..n).partition(|&j| j % FOLDS.min(n) == f);
        let xt: Vec<Vec<f64>> = tr.iter().map(|&j| x[idx[j]].clone()).collect();
        let yt: Vec<f64> = tr.iter().map(|&j| y[idx[j]]).collect();
        let lambda = choose_lambda(&xt, &yt, penalty);
        let (w, b) = ridge_fit_weighted(&xt, &yt, lambda, penalty)?;
        let mean = yt.iter().sum::<f64>() / yt.len().max(1) as f64;
        for &j in &va {
            out[idx[j]] = (dot(&w, b, &x[idx[j]]), mean);
        }
    }
    Ok(out)
}

impl AccuracyPredictor {
    /// [`AccuracyPredictor::fit_model`] with the default model ([`PredictorModel::SizeRidge`]).
    ///
    /// # Errors
    /// As [`AccuracyPredictor::fit_model`].
    pub fn fit(space: &SearchSpace, samples: &[Sample], seed: u64) -> Result<Self> {
        Self::fit_model(space, PredictorModel::default(), samples, seed)
    }

    /// Fits `model` on all `samples` with the λ chosen by 5-fold cross-validation, and reports
    /// the held-out quality of the same procedure out of fold (seeded folds; the largest and the
    /// smallest sub-net are fitted on but not scored: the search uses their measured accuracy).
    ///
    /// # Errors
    /// Fewer than 7 samples, or archs outside `space`.
    pub fn fit_model(
        space: &SearchSpace,
        model: PredictorModel,
        samples: &[Sample],
        seed: u64,
    ) -> Result<Self> {
        if samples.len() < 7 {
            return Err(Error::Predictor {
                reason: format!(
                    "{} measured sub-nets; sample at least 7 (use ≥ 500 for a real run)",
                    samples.len()
                ),
            });
        }
        if let Some(s) = samples.iter().find(|s| s.arch.validate(space).is_err()) {
            return Err(Error::Predictor {
                reason: format!("sample {} is not in the search space", s.arch.short_id()),
            });
        }
        let penalty = penalties(space, model);
        let x: Vec<Vec<f64>> = samples
            .iter()
            .map(|s| encode(space, model, &s.arch))
            .collect();
        let y: Vec<f64> = samples.iter().map(|s| s.accuracy).collect();
        let oof = out_of_fold(&x, &y, &penalty, seed)?;
        let ends = ends(space, 2);
        let scored: Vec<usize> = (0..samples.len())
            .filter(|&i| !ends.contains(&samples[i].arch))
            .collect();
        let pred: Vec<f64> = scored.iter().map(|&i| oof[i].0).collect();
        let base: Vec<f64> = scored.iter().map(|&i| oof[i].1).collect();
        let truth: Vec<f64> = scored.iter().map(|&i| y[i]).collect();
        let lambda = choose_lambda(&x, &y, &penalty);
        let (weights, bias) = ridge_fit_weighted(&x, &y, lambda, &penalty)?;
        let folds = FOLDS.min(samples.len());
        Ok(AccuracyPredictor {
            format_version: PREDICTOR_FORMAT_VERSION,
            model,
            space: space.clone(),
            weights,
            bias,
            report: PredictorReport {
                samples: samples.len(),
                train: samples.len() - samples.len().div_ceil(folds),
                held_out: scored.len(),
                lambda,
                rmse: rmse(&pred, &truth),
                baseline_rmse: rmse(&base, &truth),
                kendall_tau: kendall_tau(&pred, &truth),
                folds,
            },
        })
    }

    /// Predicted accuracy of `arch` (0..=1, clamped).
    pub fn predict(&self, arch: &ArchConfig) -> f64 {
        dot(
            &self.weights,
            self.bias,
            &encode(&self.space, self.model, arch),
        )
        .clamp(0.0, 1.0)
    }

    /// RMSE, mean-only RMSE and Kendall's τ of [`AccuracyPredictor::predict`] on `samples`
    /// (e.g. sub-nets measured apart from the fit), with `mean` the baseline's constant.
    pub fn score_on(&self, samples: &[Sample], mean: f64) -> (f64, f64, f64) {
        let pred: Vec<f64> = samples.iter().map(|s| self.predict(&s.arch)).collect();
        let truth: Vec<f64> = samples.iter().map(|s| s.accuracy).collect();
        (
            rmse(&pred, &truth),
            rmse(&vec![mean; truth.len()], &truth),
            kendall_tau(&pred, &truth),
        )
    }

    /// Reads `predictor.json` and checks it belongs to `space`.
    ///
    /// # Errors
    /// I/O, malformed JSON, a foreign version, or another search space.
    pub fn load(path: &Path, space: &SearchSpace) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let p: AccuracyPredictor = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            what: "accuracy predictor".into(),
            source,
        })?;
        if p.format_version != PREDICTOR_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: p.format_version,
                supported: PREDICTOR_FORMAT_VERSION,
            });
        }
        if &p.space != space || p.weights.len() != feature_len(space, p.model) {
            return Err(Error::Mismatch {
                path: path.into(),
                reason: "the predictor was fitted for another search space; delete it to refit"
                    .into(),
            });
        }
        Ok(p)
    }

    /// Writes `predictor.json` atomically.
    ///
    /// # Errors
    /// I/O.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: path.into(),
            what: "accuracy predictor".into(),
            source,
        })?;
        write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn encoding_has_the_documented_layout() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let a = ArchConfig::min(&sp);
        let f = encode(&sp, PredictorModel::OneHotRidge, &a);
        assert_eq!(f.len(), feature_len(&sp, PredictorModel::OneHotRidge));
        // one kernel + one expand per active block, one depth per stage, one resolution
        let active: usize = a.depths.iter().sum();
        assert_eq!(
            f.iter().sum::<f64>() as usize,
            2 * active + sp.stages.len() + 1
        );
        // the size part: 0 and "smallest" for the smallest, 1 and "largest" for the largest
        let g = encode(&sp, PredictorModel::SizeRidge, &a);
        assert_eq!(g.len(), f.len() + 8);
        assert_eq!(&g[..f.len()], &f[..]);
        // the smallest shares no gene with the largest (every choice is the minimum)
        assert_eq!(&g[f.len()..], &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
        let m = encode(&sp, PredictorModel::SizeRidge, &ArchConfig::max(&sp));
        assert_eq!(&m[f.len()..], &[1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
        let mid = ArchConfig::uniform(&sp, 24, 2, 3, 3);
        let g = encode(&sp, PredictorModel::SizeRidge, &mid);
        assert!(g[f.len()] > 0.2 && g[f.len()] < 0.8, "{:?}", &g[f.len()..]);
        assert_eq!(penalties(&sp, PredictorModel::SizeRidge).len(), g.len());
    }

    #[test]
    fn width_spaces_add_a_one_hot_width_per_stage_at_the_end() {
        let free = SearchSpace::small_for(1, 10, 28);
        let mut sp = free.clone();
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        // small: 3 stages, max depth 3, 2 kernels, 3 expands, 3 depths, 3 resolutions
        assert_eq!(one_hot_len(&free), 3 * 3 * (2 + 3) + 3 * 3 + 3);
        assert_eq!(one_hot_len(&sp), one_hot_len(&free) + 3 * 3);
        // stage widths 16/24/32 at 0.5, 0.75, 1: stage 0 at 12 (slot 1), stage 1 at 12
        // (slot 0), stage 2 full (slot 2)
        let a = ArchConfig::uniform(&sp, 24, 2, 5, 3).with_widths(&sp, [12, 12, 32]);
        let v = encode_one_hot(&sp, &a);
        assert_eq!(v.len(), one_hot_len(&sp));
        let base = one_hot_len(&free);
        assert_eq!(&v[base..], &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        // the part before is the width-free encoding of the same genes
        let same = ArchConfig::uniform(&free, 24, 2, 5, 3);
        assert_eq!(&v[..base], &encode_one_hot(&free, &same)[..]);
        // a width-free space encodes as before: no width slots, nothing narrowed
        assert_eq!(encode_one_hot(&free, &same).len(), base);
        // closeness counts the three width genes: the min is at the min everywhere, the max
        // shares none of them
        let g = encode(&sp, PredictorModel::SizeRidge, &ArchConfig::min(&sp));
        assert_eq!(
            &g[one_hot_len(&sp)..],
            &[0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
        );
        // max with stage 0 narrowed: 1 + 3·(1 + 6) + 3 = 25 genes, 24 at the max's value
        let narrow0 = ArchConfig::max(&sp).with_widths(&sp, [8, 24, 32]);
        let g = encode(&sp, PredictorModel::SizeRidge, &narrow0);
        let near_max = g[one_hot_len(&sp) + 4];
        assert!((near_max - 24.0 / 25.0).abs() < 1e-12, "{near_max}");
    }

    #[test]
    fn stratified_samples_cover_the_size_range() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let log_macs = |a: &ArchConfig| (arch_cost(&sp, a).macs as f64).ln();
        let (lo, hi) = (
            log_macs(&ArchConfig::min(&sp)),
            log_macs(&ArchConfig::max(&sp)),
        );
        let quarter = |v: &[ArchConfig]| -> [usize; 4] {
            let mut q = [0; 4];
            for a in &v[2..] {
                let u = ((log_macs(a) - lo) / (hi - lo) * 4.0).floor() as usize;
                q[u.min(3)] += 1;
            }
            q
        };
        let s = sample_archs(&sp, 42, 7);
        assert_eq!(s.len(), 42);
        assert_eq!(s[0], ArchConfig::max(&sp));
        assert_eq!(s[1], ArchConfig::min(&sp));
        let unique: HashSet<&ArchConfig> = s.iter().collect();
        assert_eq!(unique.len(), 42);
        assert_eq!(s, sample_archs(&sp, 42, 7));
        // ten per quarter of the log-MACs range, where uniform sampling leaves the ends thin
        let q = quarter(&s);
        assert!(q.iter().all(|&c| (8..=12).contains(&c)), "{q:?}");
        let r = quarter(&random_archs(&sp, 42, 7));
        assert!(r[0] + r[3] < 12, "uniform sampling: {r:?}");
    }

    #[test]
    fn kendall_tau_extremes() {
        let a = [0.1, 0.5, 0.3, 0.9, 0.7];
        assert!((kendall_tau(&a, &a) - 1.0).abs() < 1e-12);
        let rev: Vec<f64> = a.iter().map(|x| -x).collect();
        assert!((kendall_tau(&a, &rev) + 1.0).abs() < 1e-12);
        let scaled: Vec<f64> = a.iter().map(|x| 3.0 * x + 1.0).collect();
        assert!((kendall_tau(&a, &scaled) - 1.0).abs() < 1e-12);
        assert_eq!(kendall_tau(&a, &[1.0; 5]), 0.0);
    }

    #[test]
    fn ridge_recovers_a_linear_function_of_the_encoding() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let p = one_hot_len(&sp);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let true_w: Vec<f64> = (0..p).map(|_| rng.random_range(-0.02..0.02)).collect();
        let samples: Vec<Sample> = sample_archs(&sp, 400, 1)
            .into_iter()
            .map(|arch| {
                let f = encode_one_hot(&sp, &arch);
                let acc = 0.7 + f.iter().zip(&true_w).map(|(a, b)| a * b).sum::<f64>();
                Sample {
                    arch,
                    accuracy: acc,
                    val_images: 0,
                    calib_images: 0,
                }
            })
            .collect();
        let pred = AccuracyPredictor::fit(&sp, &samples, 3).unwrap();
        assert_eq!(pred.report.held_out, 398);
        assert!(pred.report.rmse < 2e-3, "{:?}", pred.report);
        assert!(pred.report.kendall_tau > 0.95, "{:?}", pred.report);
        assert!(pred.report.rmse < 0.2 * pred.report.baseline_rmse);
        for s in &samples[..20] {
            assert!((pred.predict(&s.arch) - s.accuracy).abs() < 5e-3);
        }
        // plain ridge with a tiny λ fits the function itself
        let x: Vec<Vec<f64>> = samples
            .iter()
            .map(|s| encode_one_hot(&sp, &s.arch))
            .collect();
        let y: Vec<f64> = samples.iter().map(|s| s.accuracy).collect();
        let (w, b) = ridge_fit(&x, &y, 1e-6).unwrap();
        let fit: Vec<f64> = x
            .iter()
            .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
            .collect();
        assert!(rmse(&fit, &y) < 1e-6);
    }

    /// A family like a short sandwich run's: accuracy rises with log MACs plus small per-gene
    /// effects and measurement noise, and the two ends (trained every step) sit above the
    /// trend. Forty samples, as a demo would measure.
    #[test]
    fn size_model_ranks_held_out_sub_nets_better_than_one_hot() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let gene: Vec<f64> = (0..one_hot_len(&sp))
            .map(|_| rng.random_range(-0.002..0.002))
            .collect();
        let (lo, hi) = (
            (arch_cost(&sp, &ArchConfig::min(&sp)).macs as f64).ln(),
            (arch_cost(&sp, &ArchConfig::max(&sp)).macs as f64).ln(),
        );
        let mut truth = |a: &ArchConfig| {
            let u = unit((arch_cost(&sp, a).macs as f64).ln(), lo, hi);
            let g: f64 = encode_one_hot(&sp, a)
                .iter()
                .zip(&gene)
                .map(|(x, w)| x * w)
                .sum();
            let end = if *a == ArchConfig::min(&sp) || *a == ArchConfig::max(&sp) {
                0.03
            } else {
                0.0
            };
            let noise: f64 = rng.random_range(-0.004..0.004);
            0.8 + 0.06 * u + g + end + noise
        };
        let sample = |a: ArchConfig, acc: f64| Sample {
            arch: a,
            accuracy: acc,
            val_images: 0,
            calib_images: 0,
        };
        let train: Vec<Sample> = sample_archs(&sp, 40, 1)
            .into_iter()
            .map(|a| {
                let t = truth(&a);
                sample(a, t)
            })
            .collect();
        let held: Vec<Sample> = random_archs(&sp, 200, 2)
            .into_iter()
            .filter(|a| !train.iter().any(|s| &s.arch == a))
            .map(|a| {
                let t = truth(&a);
                sample(a, t)
            })
            .collect();
        let mean = train.iter().map(|s| s.accuracy).sum::<f64>() / train.len() as f64;
        let one_hot =
            AccuracyPredictor::fit_model(&sp, PredictorModel::OneHotRidge, &train, 5).unwrap();
        let sized = AccuracyPredictor::fit(&sp, &train, 5).unwrap();
        let (r1, base, t1) = one_hot.score_on(&held, mean);
        let (r2, _, t2) = sized.score_on(&held, mean);
        assert!(
            t2 > 0.6 && t2 > t1 + 0.05,
            "τ one-hot {t1:.3}, sized {t2:.3}"
        );
        assert!(
            r2 < 0.7 * base && r2 < r1,
            "RMSE one-hot {r1:.4}, sized {r2:.4}, mean {base:.4}"
        );
        // the cross-validated report sees the same
        assert!(sized.report.kendall_tau > 0.5, "{:?}", sized.report);
        assert_eq!(sized.report.held_out, 38);
    }

    #[test]
    fn cached_samples_are_reused_only_when_measured_on_the_same_image_counts() {
        let dev = supernet::default_device();
        let sp = SearchSpace::tiny(1, 4, 12);
        let model = Supernet::new(&sp, 4, &dev).unwrap();
        let split = crate::eval::tests::toy_split();
        let data = MeasureData {
            calib: &split.train,
            val: &split.test,
            device: &dev,
        };
        let mut b = Batcher::new(vec![0.2], vec![0.3]);
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("samples.jsonl");
        let archs = [ArchConfig::max(&sp), ArchConfig::min(&sp)];
        let opts = |val_images| SamplingOptions {
            samples: 2,
            calib_images: 32,
            val_images,
            ..SamplingOptions::default()
        };
        let lines = || std::fs::read_to_string(&cache).unwrap().lines().count();
        let first = measure_archs(&model, &data, &mut b, &archs, &opts(8), &cache).unwrap();
        assert_eq!((first.len(), lines()), (2, 2));
        assert!(
            first
                .iter()
                .all(|s| s.val_images == 8 && s.calib_images == 32)
        );
        // the same counts: read back, nothing measured again
        let again = measure_archs(&model, &data, &mut b, &archs, &opts(8), &cache).unwrap();
        assert_eq!((again, lines()), (first.clone(), 2));
        // more images (capped at the 24 the set has): measured again, the old lines kept
        let more = measure_archs(&model, &data, &mut b, &archs, &opts(500), &cache).unwrap();
        assert_eq!(lines(), 4);
        assert!(more.iter().all(|s| s.val_images == 24), "{more:?}");
        assert_eq!(
            measure_archs(&model, &data, &mut b, &archs, &opts(8), &cache).unwrap(),
            first
        );
    }

    #[test]
    fn samples_file_skips_a_torn_last_line() {
        let sp = SearchSpace::tiny(1, 4, 12);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("samples.jsonl");
        let s = Sample {
            arch: ArchConfig::max(&sp),
            accuracy: 0.5,
            val_images: 10,
            calib_images: 10,
        };
        let line = serde_json::to_string(&s).unwrap();
        std::fs::write(&p, format!("{line}\n{}", &line[..line.len() / 2])).unwrap();
        assert_eq!(read_samples(&p, &sp).unwrap(), vec![s.clone()]);
        std::fs::write(&p, format!("{}\n{line}\n", &line[..10])).unwrap();
        assert!(
            read_samples(&p, &sp)
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        let other = SearchSpace::small_for(1, 10, 28);
        std::fs::write(&p, format!("{line}\n")).unwrap();
        assert!(matches!(
            read_samples(&p, &other),
            Err(Error::Mismatch { .. })
        ));
    }
}
