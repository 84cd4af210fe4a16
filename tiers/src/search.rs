//! Evolutionary search per tier (Once-for-All's): a seeded population of feasible sub-nets,
//! mutation and crossover, constraint rejection, fitness = predicted accuracy.
//!
//! Every evaluated sub-net goes into one archive shared by all tiers, and each tier finally
//! takes the fittest archived sub-net that meets its budgets (fitness: the measured validation
//! accuracy where there is one, else the predicted). So a tier that is at least as loose as
//! another in every budget never gets a lower fitness, and the Pareto fronts (fitness vs MACs,
//! vs latency) come from everything the search saw. Tiers without a latency budget get one
//! sized to the family first ([`TierSpec::with_sized_latency`]). [`finalists`] and
//! [`apply_measured`] let a caller measure each tier's best candidates and choose again.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use supernet::{ArchConfig, SearchSpace};

use crate::cost::{Costs, costs};
use crate::error::{Error, Result, write_atomic};
use crate::host::HostInfo;
use crate::latency::{LatencyLut, LatencyValidation};
use crate::predictor::{AccuracyPredictor, PredictorReport};
use crate::spec::{ProfileRef, TierConstraint, TierSpec, TierSpecFile};

/// `format_version` of `search.json`.
pub const SEARCH_FORMAT_VERSION: u32 = 1;

/// Knobs of the evolutionary search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchOptions {
    /// Population size.
    pub population: usize,
    /// Generations.
    pub generations: usize,
    /// Fraction of the population kept as parents each generation.
    pub parent_fraction: f64,
    /// Fraction of the children made by mutation (the rest by crossover).
    pub mutation_fraction: f64,
    /// Probability that a mutation re-draws each gene.
    pub mutation_prob: f64,
    /// Seed (ChaCha8).
    pub seed: u64,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            population: 100,
            generations: 40,
            parent_fraction: 0.25,
            mutation_fraction: 0.5,
            mutation_prob: 0.1,
            seed: 42,
        }
    }
}

/// One evaluated sub-net.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The sub-net.
    pub arch: ArchConfig,
    /// `arch.short_id()`.
    pub id: String,
    /// Predicted accuracy, 0..=1.
    pub predicted_accuracy: f64,
    /// Measured validation accuracy, where it was measured (a predictor sample or a finalist).
    #[serde(default)]
    pub measured_accuracy: Option<f64>,
    /// Static costs.
    pub costs: Costs,
    /// Predicted latency on the latency table's host, ms.
    pub host_latency_ms: f64,
    /// Predicted latency on the spec's reference profile, ms.
    pub reference_latency_ms: f64,
}

impl Candidate {
    /// What the search ranks by: the measured accuracy if any, else the predicted.
    pub fn fitness(&self) -> f64 {
        self.measured_accuracy.unwrap_or(self.predicted_accuracy)
    }

    /// Whether it meets `tier`'s budgets (latency translated with `host_score`).
    pub fn fits(&self, tier: &TierConstraint, host_score: f64) -> bool {
        self.host_latency_ms <= tier.host_latency_budget_ms(host_score)
            && self.costs.model_bytes_f32 <= tier.max_model_bytes
            && self.costs.peak_memory_bytes() <= tier.max_peak_memory_bytes
    }
}

/// Scores archs: predicted accuracy, costs and latency, memoised.
pub struct Evaluator<'a> {
    space: &'a SearchSpace,
    predictor: &'a AccuracyPredictor,
    lut: &'a LatencyLut,
    reference_score: f64,
    seen: HashMap<ArchConfig, Candidate>,
    measured: HashMap<ArchConfig, f64>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator over `space`, latencies on a reference device of score `reference_score`.
    pub fn new(
        space: &'a SearchSpace,
        predictor: &'a AccuracyPredictor,
        lut: &'a LatencyLut,
        reference_score: f64,
    ) -> Self {
        Evaluator {
            space,
            predictor,
            lut,
            reference_score,
            seen: HashMap::new(),
            measured: HashMap::new(),
        }
    }

    /// Uses measured accuracies for these archs instead of the predictor's (a measurement beats
    /// a prediction), and puts them in the archive.
    ///
    /// # Errors
    /// As [`Evaluator::eval`].
    pub fn with_measured(mut self, measured: &[(ArchConfig, f64)]) -> Result<Self> {
        self.measured = measured.iter().cloned().collect();
        for (a, _) in measured {
            self.eval(a)?;
        }
        Ok(self)
    }

    /// Scores `arch`.
    ///
    /// # Errors
    /// A latency table without an op the arch runs.
    pub fn eval(&mut self, arch: &ArchConfig) -> Result<Candidate> {
        if let Some(c) = self.seen.get(arch) {
            return Ok(c.clone());
        }
        let host_latency_ms = self.lut.predict_host_ms(self.space, arch)?;
        let c = Candidate {
            arch: arch.clone(),
            id: arch.short_id(),
            predicted_accuracy: self.predictor.predict(arch),
            measured_accuracy: self.measured.get(arch).copied(),
            costs: costs(self.space, arch),
            host_latency_ms,
            reference_latency_ms: host_latency_ms * self.lut.scale_to(self.reference_score),
        };
        self.seen.insert(arch.clone(), c.clone());
        Ok(c)
    }

    /// Everything evaluated so far.
    pub fn archive(&self) -> impl Iterator<Item = &Candidate> {
        self.seen.values()
    }
}

/// A genome: every slot's kernel and expand, active or not, so a depth mutation can wake a
/// slot with the genes it had; and each stage's width (the full widths in a width-free space,
/// whose genomes then draw, mutate and cross exactly as before widths existed).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Genome {
    resolution: usize,
    depths: Vec<usize>,
    kernels: Vec<Vec<usize>>,
    expands: Vec<Vec<usize>>,
    widths: Vec<usize>,
}

impl Genome {
    fn random(space: &SearchSpace, rng: &mut ChaCha8Rng) -> Self {
        let n = space.stages.len();
        let d = space.max_depth();
        let pick = |v: &[usize], rng: &mut ChaCha8Rng| v.choose(rng).copied().unwrap_or(1);
        let mut g = Genome {
            resolution: pick(&space.resolutions, rng),
            depths: (0..n).map(|_| pick(&space.depths, rng)).collect(),
            kernels: (0..n)
                .map(|_| (0..d).map(|_| pick(&space.kernel_sizes, rng)).collect())
                .collect(),
            expands: (0..n)
                .map(|_| (0..d).map(|_| pick(&space.expand_ratios, rng)).collect())
                .collect(),
            widths: space.stages.iter().map(|s| s.width).collect(),
        };
        if space.has_elastic_width() {
            for (s, w) in g.widths.iter_mut().enumerate() {
                *w = pick(&space.stage_widths(s), rng);
            }
        }
        g
    }

    fn of(space: &SearchSpace, a: &ArchConfig) -> Self {
        let d = space.max_depth();
        let pad = |v: &Vec<usize>, fill: usize| {
            let mut v = v.clone();
            v.resize(d, fill);
            v
        };
        Genome {
            resolution: a.resolution,
            depths: a.depths.clone(),
            kernels: a
                .kernel_sizes
                .iter()
                .map(|v| pad(v, space.kernel_sizes[0]))
                .collect(),
            expands: a
                .expand_ratios
                .iter()
                .map(|v| pad(v, space.expand_ratios[0]))
                .collect(),
            widths: (0..space.stages.len())
                .map(|s| a.stage_width(space, s))
                .collect(),
        }
    }

    fn arch(&self, space: &SearchSpace) -> ArchConfig {
        let widths = self.widths.clone();
        ArchConfig {
            resolution: self.resolution,
            depths: self.depths.clone(),
            kernel_sizes: self
                .kernels
                .iter()
                .zip(&self.depths)
                .map(|(k, &d)| k[..d.min(k.len())].to_vec())
                .collect(),
            expand_ratios: self
                .expands
                .iter()
                .zip(&self.depths)
                .map(|(e, &d)| e[..d.min(e.len())].to_vec())
                .collect(),
            widths: Vec::new(),
        }
        .with_widths(space, widths)
    }

    fn mutate(&self, space: &SearchSpace, p: f64, rng: &mut ChaCha8Rng) -> Self {
        let mut g = self.clone();
        let redraw = |x: &mut usize, choices: &[usize], rng: &mut ChaCha8Rng| {
            if rng.random_bool(p.clamp(0.0, 1.0)) {
                *x = choices.choose(rng).copied().unwrap_or(*x);
            }
        };
        redraw(&mut g.resolution, &space.resolutions, rng);
        for d in &mut g.depths {
            redraw(d, &space.depths, rng);
        }
        for k in g.kernels.iter_mut().flatten() {
            redraw(k, &space.kernel_sizes, rng);
        }
        for e in g.expands.iter_mut().flatten() {
            redraw(e, &space.expand_ratios, rng);
        }
        if space.has_elastic_width() {
            for (s, w) in g.widths.iter_mut().enumerate() {
                redraw(w, &space.stage_widths(s), rng);
            }
        }
        g
    }

    fn crossover(&self, other: &Genome, rng: &mut ChaCha8Rng) -> Self {
        let mut g = self.clone();
        if rng.random_bool(0.5) {
            g.resolution = other.resolution;
        }
        for (a, b) in g.depths.iter_mut().zip(&other.depths) {
            if rng.random_bool(0.5) {
                *a = *b;
            }
        }
        for (ra, rb) in g
            .kernels
            .iter_mut()
            .zip(&other.kernels)
            .chain(g.expands.iter_mut().zip(&other.expands))
        {
            for (a, b) in ra.iter_mut().zip(rb) {
                if rng.random_bool(0.5) {
                    *a = *b;
                }
            }
        }
        // a width-free space's widths are the same in every genome: no draws for them
        if g.widths != other.widths {
            for (a, b) in g.widths.iter_mut().zip(&other.widths) {
                if rng.random_bool(0.5) {
                    *a = *b;
                }
            }
        }
        g
    }
}

fn describe_misfit(c: &Candidate, t: &TierConstraint, host_score: f64) -> String {
    format!(
        "even the smallest sub-net {} needs {:.2} ms on {} (budget {:.2}), {} bytes of weights \
         (budget {}) and {} bytes of peak memory (budget {})",
        c.id,
        c.host_latency_ms * host_score / t.profile.score,
        t.profile.id,
        t.max_latency_ms.unwrap_or(f64::INFINITY),
        c.costs.model_bytes_f32,
        t.max_model_bytes,
        c.costs.peak_memory_bytes(),
        t.max_peak_memory_bytes
    )
}

/// Evolves a population under `tier`'s budgets; every evaluated arch lands in `ev`'s archive.
/// Returns the best feasible candidate this run found.
///
/// # Errors
/// [`Error::NoFeasibleArch`] when no sub-net fits, or a latency-table gap.
pub fn evolve(
    ev: &mut Evaluator<'_>,
    tier: &TierConstraint,
    opts: &SearchOptions,
    rng: &mut ChaCha8Rng,
) -> Result<Candidate> {
    let space = ev.space;
    let host_score = ev.lut.host().score;
    let pop_n = opts.population.max(2);
    let mut pop: Vec<(Genome, Candidate)> = Vec::with_capacity(pop_n);
    let min = ev.eval(&ArchConfig::min(space))?;
    if min.fits(tier, host_score) {
        pop.push((Genome::of(space, &min.arch), min.clone()));
    }
    let mut tries = 0;
    while pop.len() < pop_n && tries < 50 * pop_n {
        tries += 1;
        let g = Genome::random(space, rng);
        let c = ev.eval(&g.arch(space))?;
        if c.fits(tier, host_score) {
            pop.push((g, c));
        }
    }
    if pop.is_empty() {
        return Err(Error::NoFeasibleArch {
            tier: tier.name.clone(),
            reason: describe_misfit(&min, tier, host_score),
        });
    }
    let by_fitness = |a: &(Genome, Candidate), b: &(Genome, Candidate)| {
        b.1.fitness()
            .total_cmp(&a.1.fitness())
            .then(a.1.host_latency_ms.total_cmp(&b.1.host_latency_ms))
    };
    let n_parents = ((pop_n as f64 * opts.parent_fraction).round() as usize).clamp(1, pop_n);
    let n_mut = ((pop_n - n_parents.min(pop_n)) as f64 * opts.mutation_fraction).round() as usize;
    for _ in 0..opts.generations {
        pop.sort_by(by_fitness);
        pop.truncate(n_parents);
        let parents: Vec<Genome> = pop.iter().map(|(g, _)| g.clone()).collect();
        let mut children = Vec::with_capacity(pop_n);
        let mut attempts = 0;
        while children.len() < pop_n - parents.len() && attempts < 20 * pop_n {
            attempts += 1;
            let a = &parents[rng.random_range(0..parents.len())];
            let g = if children.len() < n_mut {
                a.mutate(space, opts.mutation_prob, rng)
            } else {
                let b = &parents[rng.random_range(0..parents.len())];
                a.crossover(b, rng)
            };
            let c = ev.eval(&g.arch(space))?;
            if c.fits(tier, host_score) {
                children.push((g, c));
            }
        }
        pop.extend(children);
    }
    pop.sort_by(by_fitness);
    Ok(pop[0].1.clone())
}

/// The cheapest-first Pareto front of `cands` in (cost, fitness): each point is fitter than
/// every cheaper one.
pub fn pareto_front<'c>(
    cands: impl IntoIterator<Item = &'c Candidate>,
    cost: impl Fn(&Candidate) -> f64,
) -> Vec<Candidate> {
    let mut v: Vec<&Candidate> = cands.into_iter().collect();
    v.sort_by(|a, b| {
        cost(a)
            .total_cmp(&cost(b))
            .then(b.fitness().total_cmp(&a.fitness()))
            .then(a.id.cmp(&b.id))
    });
    let mut out: Vec<Candidate> = Vec::new();
    for c in v {
        if out.last().is_none_or(|l| c.fitness() > l.fitness()) {
            out.push(c.clone());
        }
    }
    out
}

/// The sub-net chosen for one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierChoice {
    /// The tier.
    pub tier: TierConstraint,
    /// The chosen sub-net.
    pub candidate: Candidate,
    /// Its predicted latency on the tier's target device, ms.
    pub target_latency_ms: f64,
}

/// `search.json`: what a search found, and what it was run with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchResult {
    /// [`SEARCH_FORMAT_VERSION`].
    pub format_version: u32,
    /// The search space.
    pub space: SearchSpace,
    /// The tier spec searched.
    pub spec: TierSpecFile,
    /// The reference device of `reference_latency_ms`.
    pub reference: ProfileRef,
    /// The host of the latency table.
    pub host: HostInfo,
    /// Search options.
    pub options: SearchOptions,
    /// One choice per tier, in spec order.
    pub tiers: Vec<TierChoice>,
    /// Pareto front, predicted accuracy vs MACs.
    pub pareto_macs: Vec<Candidate>,
    /// Pareto front, predicted accuracy vs reference latency.
    pub pareto_latency: Vec<Candidate>,
    /// The accuracy predictor's held-out quality.
    pub predictor: PredictorReport,
    /// The latency table's check against measured forwards, if run.
    pub latency_validation: Option<LatencyValidation>,
    /// Sub-nets evaluated.
    pub evaluated: usize,
    /// Seconds the search took (predictor and table ready).
    pub seconds: f64,
}

impl std::fmt::Display for SearchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<10} {:<34} {:>7} {:>8} {:>9} {:>9} {:>7} {:>9} {:>9}  device",
            "tier", "arch", "MMACs", "params", "f32 B", "int8 B", "pred%", "lat ms", "ref ms"
        )?;
        for t in &self.tiers {
            let c = &t.candidate;
            writeln!(
                f,
                "{:<10} {:<34} {:>7.2} {:>8} {:>9} {:>9} {:>7.2} {:>9.3} {:>9.3}  {}",
                t.tier.name,
                c.id,
                c.costs.macs as f64 / 1e6,
                c.costs.params,
                c.costs.model_bytes_f32,
                c.costs.model_bytes_int8,
                100.0 * c.predicted_accuracy,
                t.target_latency_ms,
                c.reference_latency_ms,
                t.tier.profile.id
            )?;
        }
        let p = &self.predictor;
        write!(
            f,
            "reference {} (score {:.0}); host score {:.0}; latency table error (median) {}; \
             predictor RMSE {:.2} pt, Kendall τ {:.3} ({} sub-nets); {} sub-nets searched in {:.2} s",
            self.reference.id,
            self.reference.score,
            self.host.score,
            self.latency_validation
                .as_ref()
                .map_or("-".into(), |v| format!(
                    "{:.1}%",
                    100.0 * v.median_rel_error
                )),
            100.0 * p.rmse,
            p.kendall_tau,
            p.samples,
            self.evaluated,
            self.seconds
        )
    }
}

impl SearchResult {
    /// Reads `search.json`.
    ///
    /// # Errors
    /// I/O, malformed JSON, or a foreign version.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let r: SearchResult = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            what: "search result".into(),
            source,
        })?;
        if r.format_version != SEARCH_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: r.format_version,
                supported: SEARCH_FORMAT_VERSION,
            });
        }
        Ok(r)
    }

    /// Writes `search.json` atomically.
    ///
    /// # Errors
    /// I/O.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|source| Error::Json {
            path: path.into(),
            what: "search result".into(),
            source,
        })?;
        write_atomic(path, text.as_bytes())
    }
}

/// Searches every tier of `spec` and picks each tier's sub-net from the shared archive.
/// Returns the result and the archive (every evaluated sub-net, sorted by id, for plots).
///
/// # Errors
/// [`Error::NoFeasibleArch`] naming the first tier nothing fits, or a latency-table gap.
pub fn search(
    space: &SearchSpace,
    spec: &TierSpec,
    predictor: &AccuracyPredictor,
    lut: &LatencyLut,
    opts: &SearchOptions,
) -> Result<(SearchResult, Vec<Candidate>)> {
    search_with_measured(space, spec, predictor, lut, opts, &[])
}

/// [`search`], where the sub-nets measured for the predictor keep their measured accuracy (and
/// so compete with their true value: the predictor is a ridge fit and can rank the extremes of
/// the family wrongly).
///
/// # Errors
/// As [`search`].
pub fn search_with_measured(
    space: &SearchSpace,
    spec: &TierSpec,
    predictor: &AccuracyPredictor,
    lut: &LatencyLut,
    opts: &SearchOptions,
    measured: &[(ArchConfig, f64)],
) -> Result<(SearchResult, Vec<Candidate>)> {
    let t0 = Instant::now();
    let mut ev =
        Evaluator::new(space, predictor, lut, spec.reference.score).with_measured(measured)?;
    let host_score = lut.host().score;
    let lo = ev.eval(&ArchConfig::min(space))?.host_latency_ms;
    let hi = ev.eval(&ArchConfig::max(space))?.host_latency_ms;
    let sized = spec.with_sized_latency(lo, hi, host_score);
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    for tier in &sized.tiers {
        evolve(&mut ev, tier, opts, &mut rng)?;
    }
    let mut archive: Vec<Candidate> = ev.archive().cloned().collect();
    archive.sort_by(|a, b| a.id.cmp(&b.id));
    let mut result = SearchResult {
        format_version: SEARCH_FORMAT_VERSION,
        space: space.clone(),
        spec: spec.to_file(),
        reference: spec.reference.clone(),
        host: lut.host().clone(),
        options: opts.clone(),
        tiers: Vec::new(),
        pareto_macs: Vec::new(),
        pareto_latency: Vec::new(),
        predictor: predictor.report.clone(),
        latency_validation: None,
        evaluated: ev.seen.len(),
        seconds: 0.0,
    };
    choose(&mut result, &sized, &archive, lut)?;
    result.seconds = t0.elapsed().as_secs_f64();
    Ok((result, archive))
}

/// Each tier's fittest feasible sub-net of `archive` into `result.tiers`, and the Pareto fronts.
fn choose(
    result: &mut SearchResult,
    spec: &TierSpec,
    archive: &[Candidate],
    lut: &LatencyLut,
) -> Result<()> {
    let host_score = lut.host().score;
    let mut tiers = Vec::with_capacity(spec.tiers.len());
    for tier in &spec.tiers {
        let best = finalists(archive, tier, host_score, 1)
            .into_iter()
            .next()
            .cloned()
            .ok_or_else(|| Error::NoFeasibleArch {
                tier: tier.name.clone(),
                reason: "nothing in the archive fits".into(),
            })?;
        tiers.push(TierChoice {
            target_latency_ms: best.host_latency_ms * lut.scale_to(tier.profile.score),
            tier: tier.clone(),
            candidate: best,
        });
    }
    result.tiers = tiers;
    result.pareto_macs = pareto_front(archive, |c| c.costs.macs as f64);
    result.pareto_latency = pareto_front(archive, |c| c.reference_latency_ms);
    Ok(())
}

/// The `k` fittest candidates of `archive` that fit `tier`, fittest first (ties: the faster,
/// then by id).
pub fn finalists<'c>(
    archive: &'c [Candidate],
    tier: &TierConstraint,
    host_score: f64,
    k: usize,
) -> Vec<&'c Candidate> {
    let mut v: Vec<&Candidate> = archive
        .iter()
        .filter(|c| c.fits(tier, host_score))
        .collect();
    v.sort_by(|a, b| {
        b.fitness()
            .total_cmp(&a.fitness())
            .then(a.host_latency_ms.total_cmp(&b.host_latency_ms))
            .then(a.id.cmp(&b.id))
    });
    v.truncate(k);
    v
}

/// Chooses every tier of `result` again among the measured candidates of `archive` only (a tier
/// none of them fits keeps the choice over all), so no tier rests on a prediction alone.
///
/// # Errors
/// As [`apply_measured`].
pub fn choose_measured(
    result: &mut SearchResult,
    archive: &[Candidate],
    lut: &LatencyLut,
) -> Result<()> {
    let measured: Vec<Candidate> = archive
        .iter()
        .filter(|c| c.measured_accuracy.is_some())
        .cloned()
        .collect();
    let host_score = lut.host().score;
    let previous = result.tiers.clone();
    let spec = TierSpec {
        reference: result.reference.clone(),
        tiers: previous.iter().map(|t| t.tier.clone()).collect(),
    };
    choose(result, &spec, archive, lut)?;
    for (t, old) in result.tiers.iter_mut().zip(previous) {
        if let Some(best) = finalists(&measured, &t.tier, host_score, 1)
            .into_iter()
            .next()
        {
            t.target_latency_ms = best.host_latency_ms * lut.scale_to(t.tier.profile.score);
            t.candidate = best.clone();
        } else {
            *t = old;
        }
    }
    Ok(())
}

/// Records measured accuracies in `archive` and chooses every tier of `result` again (from its
/// sized tiers), so a measured finalist competes with its true value.
///
/// # Errors
/// [`Error::NoFeasibleArch`] if a tier lost every candidate (cannot happen for an archive the
/// search returned).
pub fn apply_measured(
    result: &mut SearchResult,
    archive: &mut [Candidate],
    measured: &[(ArchConfig, f64)],
    lut: &LatencyLut,
) -> Result<()> {
    for c in archive.iter_mut() {
        if let Some((_, acc)) = measured.iter().find(|(a, _)| a == &c.arch) {
            c.measured_accuracy = Some(*acc);
        }
    }
    let spec = TierSpec {
        reference: result.reference.clone(),
        tiers: result.tiers.iter().map(|t| t.tier.clone()).collect(),
    };
    choose(result, &spec, archive, lut)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::latency::{OpKind, all_ops};
    use crate::predictor::{PredictorModel, Sample, encode, sample_archs};
    use crate::spec::{TierFile, default_file};
    use proptest::prelude::*;

    /// A synthetic table: 0.1 ns per MAC plus 0.5 µs per op (close to the real host), score 200.
    pub(crate) fn fake_lut(space: &SearchSpace) -> LatencyLut {
        let entries = all_ops(space).into_iter().map(|k| {
            let o = (k.in_size / k.stride.max(1)).max(1);
            let work = match k.kind {
                OpKind::Conv | OpKind::Pointwise => {
                    o * o * k.in_channels * k.out_channels * k.kernel * k.kernel
                }
                OpKind::Depthwise => o * o * k.out_channels * k.kernel * k.kernel,
                _ => k.in_channels * k.in_size * k.in_size,
            };
            (k, 1e-7 * work as f64 + 0.0005)
        });
        LatencyLut::from_parts(HostInfo::named("test", 200.0), 0.01, entries)
    }

    /// A predictor that likes big nets (accuracy grows with log MACs) plus noise-free arch terms.
    pub(crate) fn fake_predictor(space: &SearchSpace) -> AccuracyPredictor {
        let samples: Vec<Sample> = sample_archs(space, 300, 5)
            .into_iter()
            .map(|arch| {
                let m = costs(space, &arch).macs as f64;
                let f = encode(space, PredictorModel::OneHotRidge, &arch);
                let acc = 0.5 + 0.03 * m.ln() + 0.001 * f.iter().take(7).sum::<f64>();
                Sample {
                    arch,
                    accuracy: acc.clamp(0.0, 1.0),
                    val_images: 0,
                    calib_images: 0,
                }
            })
            .collect();
        AccuracyPredictor::fit(space, &samples, 1).unwrap()
    }

    fn spec_with(tiers: Vec<(f64, u64, u64)>) -> TierSpec {
        let mut f = default_file();
        f.tiers = tiers
            .into_iter()
            .enumerate()
            .map(|(i, (ms, model, peak))| TierFile {
                name: format!("t{i}"),
                profile: "samsung-galaxy-a01-core".into(),
                max_latency_ms: Some(ms),
                max_model_bytes: model,
                max_peak_memory_bytes: peak,
            })
            .collect();
        TierSpec::try_from_file(f, "test").unwrap()
    }

    #[test]
    fn the_pareto_front_keeps_exactly_the_points_no_cheaper_one_beats() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let arch = ArchConfig::min(&sp);
        let c = |id: &str, cost: f64, acc: f64| Candidate {
            arch: arch.clone(),
            id: id.into(),
            predicted_accuracy: acc,
            measured_accuracy: None,
            costs: costs(&sp, &arch),
            host_latency_ms: cost,
            reference_latency_ms: cost,
        };
        let cands = [
            c("b", 1.0, 0.5),
            c("dominated", 2.0, 0.4),
            c("tie-low", 2.0, 0.55),
            c("d", 2.0, 0.6),
            c("equal", 3.0, 0.6),
            c("e", 4.0, 0.7),
            c("a", 0.5, 0.3),
        ];
        let front = pareto_front(&cands, |c| c.reference_latency_ms);
        let ids: Vec<&str> = front.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "d", "e"]);
        assert!(pareto_front(&Vec::<Candidate>::new(), |c| c.host_latency_ms).is_empty());
    }

    #[test]
    fn genomes_stay_in_a_width_space_and_reach_every_width() {
        let mut sp = SearchSpace::small_for(1, 10, 28);
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut seen = vec![std::collections::BTreeSet::new(); sp.stages.len()];
        let mut g = Genome::random(&sp, &mut rng);
        for i in 0..300 {
            let other = Genome::random(&sp, &mut rng);
            g = if i % 2 == 0 {
                g.mutate(&sp, 0.3, &mut rng)
            } else {
                g.crossover(&other, &mut rng)
            };
            for x in [&g, &other] {
                let a = x.arch(&sp);
                a.validate(&sp).unwrap();
                // canonical: a genome at full width is the arch without widths
                assert!(a.widths.is_empty() || a.widths != vec![16, 24, 32]);
                assert_eq!(Genome::of(&sp, &a).arch(&sp), a);
                for (s, set) in seen.iter_mut().enumerate() {
                    set.insert(a.stage_width(&sp, s));
                }
            }
        }
        for (s, set) in seen.iter().enumerate() {
            assert_eq!(set.iter().copied().collect::<Vec<_>>(), sp.stage_widths(s));
        }
        // a width-free space's genomes never narrow
        let free = SearchSpace::small_for(1, 10, 28);
        let g = Genome::random(&free, &mut rng).mutate(&free, 1.0, &mut rng);
        assert!(g.arch(&free).widths.is_empty());
    }

    #[test]
    fn search_on_a_width_space_finds_narrowed_tiers_within_budget() {
        let mut sp = SearchSpace::small_for(1, 10, 28);
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        let lut = fake_lut(&sp);
        let pred = fake_predictor(&sp);
        let spec = TierSpec::default_spec().unwrap();
        let (r, archive) = search(&sp, &spec, &pred, &lut, &SearchOptions::default()).unwrap();
        assert!(archive.iter().any(|c| !c.arch.widths.is_empty()));
        for c in &r.tiers {
            c.candidate.arch.validate(&sp).unwrap();
            assert!(c.candidate.fits(&c.tier, lut.host().score));
        }
        // the smallest tier's budget starts at the smallest sub-net, which is narrowed
        assert!(!ArchConfig::min(&sp).widths.is_empty());
    }

    #[test]
    fn search_is_seeded_and_respects_budgets() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let lut = fake_lut(&sp);
        let pred = fake_predictor(&sp);
        let spec = TierSpec::default_spec().unwrap();
        let opts = SearchOptions::default();
        // (its speed is reported by `tierforge search`, "search: N sub-nets evaluated in S s",
        // not asserted: a timed unit test fails on a loaded machine)
        let (r, archive) = search(&sp, &spec, &pred, &lut, &opts).unwrap();
        assert_eq!(archive.len(), r.evaluated);
        let (r2, _) = search(&sp, &spec, &pred, &lut, &opts).unwrap();
        assert_eq!(r.tiers, r2.tiers);
        for c in &r.tiers {
            assert!(c.candidate.fits(&c.tier, lut.host().score));
            let budget = c.tier.max_latency_ms.unwrap();
            assert!(c.target_latency_ms <= budget + 1e-9);
        }
        // fronts are monotone
        for f in [&r.pareto_macs, &r.pareto_latency] {
            assert!(f.windows(2).all(|w| w[1].fitness() > w[0].fitness()));
        }
        let tight = spec_with(vec![(0.001, 10, 10)]);
        let e = search(&sp, &tight, &pred, &lut, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("t0") && e.contains("loosen"), "{e}");
    }

    /// The tiers of the built-in spec (no latency budgets: sized to the family) on a family
    /// whose accuracy grows with size: four steps, each a different sub-net, fitness rising.
    #[test]
    fn sized_tiers_spread_over_the_family() {
        let sp = SearchSpace::small_for(1, 10, 28);
        let lut = fake_lut(&sp);
        let pred = fake_predictor(&sp);
        let spec = TierSpec::default_spec().unwrap();
        assert!(spec.tiers.iter().all(|t| t.max_latency_ms.is_none()));
        let opts = SearchOptions {
            population: 40,
            generations: 10,
            ..SearchOptions::default()
        };
        let (r, mut archive) = search(&sp, &spec, &pred, &lut, &opts).unwrap();
        let distinct = |r: &SearchResult| {
            let mut ids: Vec<&str> = r.tiers.iter().map(|t| t.candidate.id.as_str()).collect();
            ids.dedup();
            ids.len()
        };
        assert_eq!(distinct(&r), 4, "{r}");
        assert!(
            r.tiers
                .windows(2)
                .all(|w| w[1].candidate.fitness() > w[0].candidate.fitness()),
            "{r}"
        );
        // the last tier's budget is the largest sub-net's latency on its phone: it gets it
        assert_eq!(r.tiers[3].candidate.arch, ArchConfig::max(&sp));
        let host = lut.host().score;
        for t in &r.tiers {
            let budget = t.tier.max_latency_ms.unwrap();
            assert!(t.target_latency_ms <= budget * (1.0 + 1e-9), "{r}");
        }
        // a measurement that sinks the mid tier's choice moves that tier to another sub-net,
        // and the result still never gets worse with a looser tier
        let mut r2 = r.clone();
        let sunk = r.tiers[2].candidate.arch.clone();
        apply_measured(&mut r2, &mut archive, &[(sunk.clone(), 0.01)], &lut).unwrap();
        assert_ne!(r2.tiers[2].candidate.arch, sunk);
        // restricted to measured sub-nets: the tiers the one measured sub-net fits take it,
        // the two below it keep their choice
        let mut r3 = r2.clone();
        choose_measured(&mut r3, &archive, &lut).unwrap();
        assert_eq!(r3.tiers[2].candidate.arch, sunk, "{r3}");
        assert_eq!(r3.tiers[3].candidate.arch, sunk, "{r3}");
        assert_eq!(r3.tiers[..2], r2.tiers[..2]);
        assert!(
            archive
                .iter()
                .any(|c| c.arch == sunk && c.measured_accuracy == Some(0.01))
        );
        for w in r2.tiers.windows(2) {
            assert!(w[1].candidate.fitness() >= w[0].candidate.fitness());
        }
        let top = finalists(&archive, &r2.tiers[2].tier, host, 3);
        assert_eq!(top.len(), 3);
        assert_eq!(top[0].arch, r2.tiers[2].candidate.arch);
        assert!(top.windows(2).all(|w| w[0].fitness() >= w[1].fitness()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]
        #[test]
        fn chosen_archs_fit_and_looser_tiers_are_never_worse(
            budgets in proptest::collection::vec((0.2f64..6.0, 60_000u64..1_000_000, 150_000u64..2_000_000), 2..5),
            seed in 0u64..1000,
        ) {
            let sp = SearchSpace::small_for(1, 10, 28);
            let lut = fake_lut(&sp);
            let pred = fake_predictor(&sp);
            let spec = spec_with(budgets);
            let opts = SearchOptions { population: 30, generations: 8, seed, ..SearchOptions::default() };
            let host = lut.host().score;
            match search(&sp, &spec, &pred, &lut, &opts) {
                Ok((r, _)) => {
                    for a in &r.tiers {
                        prop_assert!(a.candidate.fits(&a.tier, host));
                        for b in &r.tiers {
                            if a.tier.is_looser_or_equal(&b.tier, host) {
                                prop_assert!(a.candidate.fitness() >= b.candidate.fitness());
                            }
                        }
                    }
                }
                Err(Error::NoFeasibleArch { .. }) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
