//! The accuracy predictor: validation accuracy of sampled sub-nets (measured after BN
//! recalibration, cached in a JSONL file so an interrupted sampling resumes), an arch encoding,
//! and ridge regression on it, with RMSE and Kendall's τ on held-out sub-nets.
//!
//! Encoding (as Once-for-All's): per stage and block slot, one-hot kernel and one-hot expand
//! ratio (zeros for inactive slots); per stage, one-hot depth; one-hot resolution.

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
use supernet::{ArchConfig, SearchSpace, Supernet};

use crate::error::{Error, Result, write_atomic};

/// `format_version` of `predictor.json`.
pub const PREDICTOR_FORMAT_VERSION: u32 = 1;

/// Length of [`encode`]'s vector for `space`.
pub fn feature_len(space: &SearchSpace) -> usize {
    let n = space.stages.len();
    n * space.max_depth() * (space.kernel_sizes.len() + space.expand_ratios.len())
        + n * space.depths.len()
        + space.resolutions.len()
}

/// The arch encoding (see the module docs). Values not in the space encode as zeros.
pub fn encode(space: &SearchSpace, arch: &ArchConfig) -> Vec<f64> {
    let mut v = Vec::with_capacity(feature_len(space));
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
/// archs without repeats (fewer than `n` only when the space is smaller than `n`).
pub fn sample_archs(space: &SearchSpace, n: usize, seed: u64) -> Vec<ArchConfig> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut push = |a: ArchConfig, out: &mut Vec<ArchConfig>| {
        if out.len() < n && seen.insert(a.clone()) {
            out.push(a);
        }
    };
    push(ArchConfig::max(space), &mut out);
    push(ArchConfig::min(space), &mut out);
    let mut tries = 0;
    while out.len() < n && tries < 50 * n.max(1) {
        push(ArchConfig::random(space, &mut rng), &mut out);
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
    let archs = sample_archs(space, opts.samples, opts.seed);
    let todo: Vec<&ArchConfig> = archs
        .iter()
        .filter(|a| !have.iter().any(|s| &s.arch == *a))
        .collect();
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
        let val_n = opts.val_images.min(val.len());
        for arch in todo {
            recalibrate_bn(model, arch, calib, batcher, opts.calib_images, device);
            let accuracy = evaluate(model, arch, val, batcher, Some(val_n), device);
            let s = Sample {
                arch: arch.clone(),
                accuracy,
                val_images: val_n,
                calib_images: opts.calib_images.min(calib.len()),
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
    // in sampling order, only the requested ones
    Ok(archs
        .iter()
        .filter_map(|a| have.iter().find(|s| &s.arch == a).cloned())
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
    let n = x.len().min(y.len());
    let p = x.first().map_or(0, Vec::len);
    if n == 0 || x.iter().any(|r| r.len() != p) || !(lambda > 0.0) {
        return Err(Error::Predictor {
            reason: format!(
                "ridge needs ≥ 1 sample of equal-length features and λ > 0 (got {n} samples, λ {lambda})"
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
        a[i * p + i] += lambda;
    }
    let w = cholesky_solve(&a, &rhs, p).ok_or_else(|| Error::Predictor {
        reason: "the normal equations are not positive definite; raise λ".into(),
    })?;
    let b = ym - w.iter().zip(&xm).map(|(w, m)| w * m).sum::<f64>();
    Ok((w, b))
}

/// Quality of a predictor on held-out sub-nets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorReport {
    /// Measured sub-nets in all.
    pub samples: usize,
    /// Used to fit (for the held-out figures).
    pub train: usize,
    /// Held out.
    pub held_out: usize,
    /// λ chosen by cross-validation on the training part.
    pub lambda: f64,
    /// RMSE on the held-out sub-nets (accuracy as a 0..1 fraction).
    pub rmse: f64,
    /// RMSE of always predicting the training mean, for comparison.
    pub baseline_rmse: f64,
    /// Kendall's τ between predicted and measured accuracy on the held-out sub-nets.
    pub kendall_tau: f64,
}

/// `predictor.json`: a fitted ridge predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyPredictor {
    /// [`PREDICTOR_FORMAT_VERSION`].
    pub format_version: u32,
    /// The space the encoding belongs to.
    pub space: SearchSpace,
    /// Ridge weights, one per feature of [`encode`].
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
    /// Held-out quality (fitted on a split; these weights are then refitted on all samples).
    pub report: PredictorReport,
}

const LAMBDAS: [f64; 9] = [1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];

fn choose_lambda(x: &[Vec<f64>], y: &[f64]) -> f64 {
    let n = x.len();
    if n < 10 {
        return 1.0;
    }
    let folds = 5;
    let mut best = (f64::INFINITY, 1.0);
    for &lambda in &LAMBDAS {
        let mut se = 0.0;
        for f in 0..folds {
            let (mut xt, mut yt, mut xv, mut yv) = (vec![], vec![], vec![], vec![]);
            for i in 0..n {
                if i % folds == f {
                    xv.push(x[i].clone());
                    yv.push(y[i]);
                } else {
                    xt.push(x[i].clone());
                    yt.push(y[i]);
                }
            }
            let Ok((w, b)) = ridge_fit(&xt, &yt, lambda) else {
                se = f64::INFINITY;
                break;
            };
            for (r, t) in xv.iter().zip(&yv) {
                let p = b + r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
                se += (p - t) * (p - t);
            }
        }
        if se < best.0 {
            best = (se, lambda);
        }
    }
    best.1
}

impl AccuracyPredictor {
    /// Fits on `samples`: holds out `held_out_fraction` of them (seeded) to report RMSE and
    /// Kendall's τ, then refits on all with the λ chosen by 5-fold cross-validation.
    ///
    /// # Errors
    /// Fewer than 4 samples, or archs outside `space`.
    pub fn fit(
        space: &SearchSpace,
        samples: &[Sample],
        held_out_fraction: f64,
        seed: u64,
    ) -> Result<Self> {
        if samples.len() < 4 {
            return Err(Error::Predictor {
                reason: format!(
                    "{} measured sub-nets; sample at least 4 (use ≥ 500 for a real run)",
                    samples.len()
                ),
            });
        }
        if let Some(s) = samples.iter().find(|s| s.arch.validate(space).is_err()) {
            return Err(Error::Predictor {
                reason: format!("sample {} is not in the search space", s.arch.short_id()),
            });
        }
        let x: Vec<Vec<f64>> = samples.iter().map(|s| encode(space, &s.arch)).collect();
        let y: Vec<f64> = samples.iter().map(|s| s.accuracy).collect();
        let mut idx: Vec<usize> = (0..samples.len()).collect();
        idx.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x9e37));
        let n_out = ((samples.len() as f64 * held_out_fraction).round() as usize)
            .clamp(2, samples.len() - 2);
        let (out, tr) = idx.split_at(n_out);
        let pick = |ix: &[usize]| -> (Vec<Vec<f64>>, Vec<f64>) {
            (
                ix.iter().map(|&i| x[i].clone()).collect(),
                ix.iter().map(|&i| y[i]).collect(),
            )
        };
        let (xt, yt) = pick(tr);
        let (xo, yo) = pick(out);
        let lambda = choose_lambda(&xt, &yt);
        let (w, b) = ridge_fit(&xt, &yt, lambda)?;
        let pred: Vec<f64> = xo
            .iter()
            .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
            .collect();
        let mean = yt.iter().sum::<f64>() / yt.len() as f64;
        let report = PredictorReport {
            samples: samples.len(),
            train: tr.len(),
            held_out: out.len(),
            lambda,
            rmse: rmse(&pred, &yo),
            baseline_rmse: rmse(&vec![mean; yo.len()], &yo),
            kendall_tau: kendall_tau(&pred, &yo),
        };
        let lambda_all = choose_lambda(&x, &y);
        let (weights, bias) = ridge_fit(&x, &y, lambda_all)?;
        Ok(AccuracyPredictor {
            format_version: PREDICTOR_FORMAT_VERSION,
            space: space.clone(),
            weights,
            bias,
            report,
        })
    }

    /// Predicted accuracy of `arch` (0..=1, clamped).
    pub fn predict(&self, arch: &ArchConfig) -> f64 {
        let f = encode(&self.space, arch);
        (self.bias + f.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>()).clamp(0.0, 1.0)
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
        if &p.space != space || p.weights.len() != feature_len(space) {
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
        let f = encode(&sp, &a);
        assert_eq!(f.len(), feature_len(&sp));
        // one kernel + one expand per active block, one depth per stage, one resolution
        let active: usize = a.depths.iter().sum();
        assert_eq!(
            f.iter().sum::<f64>() as usize,
            2 * active + sp.stages.len() + 1
        );
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
        let p = feature_len(&sp);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let true_w: Vec<f64> = (0..p).map(|_| rng.random_range(-0.02..0.02)).collect();
        let samples: Vec<Sample> = sample_archs(&sp, 400, 1)
            .into_iter()
            .map(|arch| {
                let f = encode(&sp, &arch);
                let acc = 0.7 + f.iter().zip(&true_w).map(|(a, b)| a * b).sum::<f64>();
                Sample {
                    arch,
                    accuracy: acc,
                    val_images: 0,
                    calib_images: 0,
                }
            })
            .collect();
        let pred = AccuracyPredictor::fit(&sp, &samples, 0.2, 3).unwrap();
        assert!(pred.report.rmse < 2e-3, "{:?}", pred.report);
        assert!(pred.report.kendall_tau > 0.95, "{:?}", pred.report);
        assert!(pred.report.rmse < 0.2 * pred.report.baseline_rmse);
        for s in &samples[..20] {
            assert!((pred.predict(&s.arch) - s.accuracy).abs() < 5e-3);
        }
        // plain ridge with a tiny λ fits the function itself
        let x: Vec<Vec<f64>> = samples.iter().map(|s| encode(&sp, &s.arch)).collect();
        let y: Vec<f64> = samples.iter().map(|s| s.accuracy).collect();
        let (w, b) = ridge_fit(&x, &y, 1e-6).unwrap();
        let fit: Vec<f64> = x
            .iter()
            .map(|r| b + r.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())
            .collect();
        assert!(rmse(&fit, &y) < 1e-6);
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
