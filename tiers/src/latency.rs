//! The search's latency table: a per-op look-up table measured on this host (batch 1, one thread)
//! **with the engine that ships** (`runtime::engine::FastNet::stage_times`: each op is a stage of
//! a real compiled network), keyed like Once-for-All's (op kind, input channels, output channels,
//! input size, kernel, stride — plus the activation that follows), a fixed per-inference overhead
//! (preprocessing and the call, against whole engine inferences), and the move to a phone by the
//! latency model (`device_profiles::latency::predict_ms`: host score / profile score). A table of
//! format 1 (timed with burn's ops) is measured again.
//!
//! The table is cached as JSON (`latency_lut.json`) so each op is measured once per host; ops a
//! new search space needs are measured and added on the next [`LatencyLut::load_or_measure`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use supernet::{Act, ArchConfig, LayerKind, LayerSpec, PlainNet, SearchSpace, Supernet, layers};

use crate::error::{Error, Result, write_atomic};
use crate::host::HostInfo;

/// `format_version` of `latency_lut.json`.
pub const LUT_FORMAT_VERSION: u32 = 2;

/// The kind of a timed op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// Dense k×k conv (the stem).
    Conv,
    /// 1×1 conv.
    Pointwise,
    /// Depthwise k×k conv.
    Depthwise,
    /// Global average pool.
    Pool,
    /// Fully connected classifier.
    Linear,
    /// Residual addition.
    Add,
}

/// The key of one look-up-table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpKey {
    /// Op kind.
    pub kind: OpKind,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input spatial size (square).
    pub in_size: usize,
    /// Kernel size (1 for pointwise, pool, linear and add).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Activation that follows (`"none"`, `"relu"` or `"hswish"` in the file).
    #[serde(with = "supernet::space::act_or_none")]
    pub act: Option<Act>,
}

impl std::fmt::Display for OpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {}→{} @{} k{} s{} {}",
            self.kind,
            self.in_channels,
            self.out_channels,
            self.in_size,
            self.kernel,
            self.stride,
            self.act.map_or("none", Act::as_str)
        )
    }
}

fn key_of(l: &LayerSpec) -> OpKey {
    let kind = match l.kind {
        LayerKind::Conv => OpKind::Conv,
        LayerKind::Pointwise => OpKind::Pointwise,
        LayerKind::Depthwise => OpKind::Depthwise,
        LayerKind::Pool => OpKind::Pool,
        LayerKind::Linear => OpKind::Linear,
    };
    let kernel = if kind == OpKind::Pool { 1 } else { l.kernel };
    OpKey {
        kind,
        in_channels: l.in_channels,
        out_channels: l.out_channels,
        in_size: l.in_size,
        kernel,
        stride: l.stride,
        act: l.act,
    }
}

/// The ops `PlainNet::forward` runs for `arch`, in order: one per entry of
/// [`supernet::layers`] (with its activation) plus a residual add per residual block.
pub fn ops(space: &SearchSpace, arch: &ArchConfig) -> Vec<OpKey> {
    let ls = layers(space, arch);
    let mut out = Vec::with_capacity(ls.len() + 8);
    let mut i = 0;
    if let Some(stem) = ls.get(i) {
        out.push(key_of(stem));
        i += 1;
    }
    for s in 0..space.stages.len() {
        for b in 0..arch.depths.get(s).copied().unwrap_or(0) {
            let (Some(e), Some(d), Some(p)) = (ls.get(i), ls.get(i + 1), ls.get(i + 2)) else {
                break;
            };
            out.push(key_of(e));
            out.push(key_of(d));
            out.push(key_of(p));
            if arch.block_has_residual(space, s, b) {
                out.push(OpKey {
                    kind: OpKind::Add,
                    in_channels: p.out_channels,
                    out_channels: p.out_channels,
                    in_size: p.out_size,
                    kernel: 1,
                    stride: 1,
                    act: None,
                });
            }
            i += 3;
        }
    }
    // head, pool, classifier
    for l in &ls[i.min(ls.len())..] {
        out.push(key_of(l));
    }
    out
}

/// The max-depth uniform archs of `space`, one per (resolution, kernel, expand ratio, width
/// pattern): together they visit every op any arch of `space` can run. A width-free space has
/// one width pattern (full); a width-elastic one has one per ordered pair (a, b) of width
/// multipliers, the stages alternating a, b, a, … — so every pair of adjacent stage widths,
/// which fixes a stage's first block (its input is the previous stage's width), occurs at
/// every stage boundary, and every width at every stage.
pub fn uniform_max_depth_archs(space: &SearchSpace) -> Vec<ArchConfig> {
    let d = space.max_depth();
    let patterns = width_patterns(space);
    let mut out = Vec::new();
    for &r in &space.resolutions {
        for &k in &space.kernel_sizes {
            for &e in &space.expand_ratios {
                for widths in &patterns {
                    out.push(
                        ArchConfig::uniform(space, r, d, k, e).with_widths(space, widths.clone()),
                    );
                }
            }
        }
    }
    out
}

/// The stage widths of [`uniform_max_depth_archs`]: full only in a width-free space, else for
/// each ordered pair of multipliers (a, b) the stages at a, b, a, … (without repeats).
fn width_patterns(space: &SearchSpace) -> Vec<Vec<usize>> {
    let n = space.stages.len();
    let full: Vec<usize> = space.stages.iter().map(|s| s.width).collect();
    if !space.has_elastic_width() {
        return vec![full];
    }
    let m = &space.width_multipliers;
    let mut out: Vec<Vec<usize>> = Vec::new();
    for &a in m.iter().rev() {
        for &b in m.iter().rev() {
            let w: Vec<usize> = (0..n)
                .map(|s| space.active_width(s, if s % 2 == 0 { a } else { b }))
                .collect();
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// Every op any arch of `space` can run (the table a search over `space` needs).
pub fn all_ops(space: &SearchSpace) -> BTreeSet<OpKey> {
    uniform_max_depth_archs(space)
        .iter()
        .flat_map(|a| ops(space, a))
        .collect()
}

/// `arch` extracted from `net`, BN folded, compiled by the runtime's engine; `None` when any
/// step fails (an arch outside the space).
fn engine_of(net: &Supernet, arch: &ArchConfig) -> Option<runtime::engine::FastNet> {
    let plain = PlainNet::extract(net, arch).ok()?.fold();
    let folded = plain.to_folded().ok()?;
    runtime::engine::FastNet::from_folded(&folded).ok()
}

/// A seeded `[c, r, r]` input.
fn random_input(c: usize, r: usize) -> Vec<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x1a7e);
    (0..c * r * r)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect()
}

/// The engine's stage times in network order: stem, then each block's expand, depthwise and
/// project, then head, then pool + classifier (the order of [`ops`] without `Add` and `Linear`).
fn stage_sequence(t: &runtime::engine::StageTimes) -> Vec<f64> {
    let mut v = vec![t.stem_ms];
    for b in &t.blocks {
        v.extend([b.expand_ms, b.depthwise_ms, b.project_ms]);
    }
    v.extend([t.head_ms, t.pool_fc_ms]);
    v
}

/// One app inference of `arch` with the engine, as `runtime::Session::predict` runs it: a u8
/// image of the space's native size normalised and resized to the arch's resolution, then the
/// network; on the calling thread. Milliseconds (median, see [`TimingOptions`]).
pub fn measure_engine_inference(
    net: &Supernet,
    arch: &ArchConfig,
    opts: &TimingOptions,
) -> Option<f64> {
    let engine = engine_of(net, arch)?;
    let sp = &net.space;
    let (c, n0, r) = (sp.in_channels, sp.image_size, arch.resolution);
    let pixels: Vec<u8> = (0..c * n0 * n0).map(|i| (i * 37 % 251) as u8).collect();
    let mut chw = vec![0f32; pixels.len()];
    let mut resized = Vec::new();
    let mut logits = vec![0f32; sp.num_classes];
    let mut ok = true;
    let ms = time_ms(opts, || {
        supernet::preprocess::normalize_u8(&pixels, c, &[0.5], &[0.25], &mut chw);
        supernet::preprocess::resize_bilinear(&chw, 1, c, n0, n0, r, &mut resized);
        ok &= engine.forward_into(&resized, 1, &mut logits).is_ok();
    });
    ok.then_some(ms)
}

/// How ops and forwards are timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingOptions {
    /// Timed runs per op; the median is kept.
    pub runs: usize,
    /// Each run repeats the op until it took about this long (µs), then divides.
    pub min_run_us: f64,
}

impl Default for TimingOptions {
    fn default() -> Self {
        TimingOptions {
            runs: 7,
            min_run_us: 300.0,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    device_profiles::bench::median(v).unwrap_or(0.0)
}

/// Median milliseconds of `f` over `opts.runs` runs, after two warm-up calls.
fn time_ms(opts: &TimingOptions, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once_us = t.elapsed().as_secs_f64() * 1e6;
    let reps = ((opts.min_run_us / once_us.max(1.0)).ceil() as usize).clamp(1, 200);
    let mut samples: Vec<f64> = (0..opts.runs.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        })
        .collect();
    median(&mut samples)
}

/// Times one app inference through the runtime's own path ([`runtime::Session::predict`]: a u8
/// image of the family's native size, resized, normalised, the network, softmax) with the
/// engine splitting one image over each of `threads` ([`runtime::Session::set_threads`], as the
/// runtime runs it). Milliseconds per count, in the order given. The counts are timed in
/// [`THREAD_ROUNDS`] interleaved rounds and each keeps its fastest round's median
/// ([`TimingOptions`]), so a noisy moment on the host hits every count alike instead of
/// inventing a gain. This is what the bundle writer stores per thread count, so the selector
/// predicts what the runtime runs. The session is left at its own thread count.
pub fn measure_session_threads(
    session: &mut runtime::Session,
    threads: &[usize],
    opts: &TimingOptions,
) -> Vec<f64> {
    let (c, n) = (session.family().in_channels, session.family().image_size);
    let pixels: Vec<u8> = (0..c * n * n).map(|i| (i * 37 % 251) as u8).collect();
    let image = runtime::ImageRef {
        pixels: &pixels,
        width: n,
        height: n,
        channels: c,
    };
    let own = session.threads();
    let round = TimingOptions {
        runs: opts.runs.div_ceil(THREAD_ROUNDS).max(1),
        ..opts.clone()
    };
    let mut best = vec![f64::INFINITY; threads.len()];
    for _ in 0..THREAD_ROUNDS {
        for (k, &t) in threads.iter().enumerate() {
            // a count the pool cannot start is timed at the session's own count
            let _ = session.set_threads(t.max(1));
            let ms = time_ms(&round, || {
                drop(session.predict(image));
            });
            best[k] = best[k].min(ms);
        }
    }
    let _ = session.set_threads(own);
    best
}

/// Random sub-nets [`LatencyLut::calibrate_overhead`] times besides the largest, the smallest
/// and a middle one.
pub const OVERHEAD_RANDOM_ARCHS: usize = 6;

/// Rounds [`measure_session_threads`] interleaves.
pub const THREAD_ROUNDS: usize = 3;

/// One measured op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutEntry {
    /// The op.
    #[serde(flatten)]
    pub key: OpKey,
    /// Median milliseconds, batch 1, one thread.
    pub ms: f64,
}

/// `latency_lut.json` as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LutFile {
    /// [`LUT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The host.
    pub host: HostInfo,
    /// Fixed cost per inference beyond the listed ops (allocation, reshapes), ms.
    pub overhead_ms: f64,
    /// The measured ops.
    pub entries: Vec<LutEntry>,
}

/// The latency look-up table of this host (validated, indexed).
#[derive(Debug, Clone)]
pub struct LatencyLut {
    host: HostInfo,
    overhead_ms: f64,
    table: HashMap<OpKey, f64>,
}

impl LatencyLut {
    /// Measures every op `space` needs, the host score and the fixed overhead (from the largest,
    /// smallest and a middle sub-net of `space`). Takes a few seconds.
    pub fn measure(space: &SearchSpace, opts: &TimingOptions) -> Self {
        let mut lut = LatencyLut {
            host: HostInfo::probe_default(),
            overhead_ms: 0.0,
            table: HashMap::new(),
        };
        lut.measure_missing(space, opts);
        lut.calibrate_overhead(space, opts);
        lut
    }

    /// A table from given parts (for tests, or a table measured elsewhere).
    pub fn from_parts(
        host: HostInfo,
        overhead_ms: f64,
        entries: impl IntoIterator<Item = (OpKey, f64)>,
    ) -> Self {
        LatencyLut {
            host,
            overhead_ms,
            table: entries.into_iter().collect(),
        }
    }

    /// Measures the ops of `space` the table lacks with the engine that ships
    /// ([`runtime::engine::FastNet::stage_times`]): every max-depth uniform arch of `space` that
    /// holds a missing op is built (random weights, BN folded), compiled by the engine and timed
    /// stage by stage; each op gets the median of its stage's times. The engine fuses the
    /// residual addition into the project conv and the pool into the classifier, so `Add` and
    /// `Linear` entries are 0. Returns how many ops it measured.
    pub fn measure_missing(&mut self, space: &SearchSpace, opts: &TimingOptions) -> usize {
        let missing: BTreeSet<OpKey> = all_ops(space)
            .into_iter()
            .filter(|k| !self.table.contains_key(k))
            .collect();
        if missing.is_empty() {
            return 0;
        }
        let device = supernet::default_device();
        let Ok(net) = Supernet::new(space, 1, &device) else {
            return 0;
        };
        let reps = (opts.runs * 5).max(21);
        let mut samples: BTreeMap<OpKey, Vec<f64>> = BTreeMap::new();
        for arch in uniform_max_depth_archs(space) {
            let keys = ops(space, &arch);
            if !keys.iter().any(|k| missing.contains(k)) {
                continue;
            }
            let Some(t) = engine_of(&net, &arch).and_then(|e| {
                let x = random_input(space.in_channels, arch.resolution);
                e.stage_times(&x, reps).ok()
            }) else {
                continue;
            };
            let mut stage = stage_sequence(&t).into_iter();
            for k in keys {
                let ms = match k.kind {
                    OpKind::Add | OpKind::Linear => 0.0,
                    _ => stage.next().unwrap_or(0.0),
                };
                if missing.contains(&k) {
                    samples.entry(k).or_default().push(ms);
                }
            }
        }
        let n = samples.len();
        self.table
            .extend(samples.into_iter().map(|(k, mut v)| (k, median(&mut v))));
        n
    }

    /// Sets the fixed overhead to the median of (engine inference − sum of ops) over the
    /// largest, smallest and a middle sub-net and [`OVERHEAD_RANDOM_ARCHS`] seeded random ones
    /// (clamped at 0): what a prediction adds for the preprocessing and the call itself. (With
    /// the three alone, the demo's width space got 0.000, 0.002 and 0.006 ms in three runs on
    /// a loaded host, and a median error of 13.6%, 10.4% and 4.8%.)
    pub fn calibrate_overhead(&mut self, space: &SearchSpace, opts: &TimingOptions) {
        let device = supernet::default_device();
        let mid = ArchConfig::uniform(
            space,
            space.resolutions[space.resolutions.len() / 2],
            space.depths[space.depths.len() / 2],
            space.kernel_sizes[space.kernel_sizes.len() / 2],
            space.expand_ratios[space.expand_ratios.len() / 2],
        )
        .with_multiplier(
            space,
            space.width_multipliers[space.width_multipliers.len() / 2],
        );
        let mut archs = vec![ArchConfig::max(space), ArchConfig::min(space), mid];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x0e7d);
        archs.extend((0..OVERHEAD_RANDOM_ARCHS).map(|_| ArchConfig::random(space, &mut rng)));
        let Ok(net) = Supernet::new(space, 1, &device) else {
            return;
        };
        let mut gaps: Vec<f64> = archs
            .iter()
            .filter_map(|a| {
                let measured = measure_engine_inference(&net, a, opts)?;
                let sum = self.ops_ms(space, a).ok()?;
                Some(measured - sum)
            })
            .collect();
        self.overhead_ms = median(&mut gaps).max(0.0);
    }

    /// Loads the table at `path` if it is there (measuring and adding what `space` needs that it
    /// lacks), else measures it; writes it back when anything changed.
    ///
    /// # Errors
    /// A malformed or foreign-version file (the message says to delete it), or a write error.
    pub fn load_or_measure(path: &Path, space: &SearchSpace, opts: &TimingOptions) -> Result<Self> {
        let stale =
            path.is_file() && Self::file_version(path).is_some_and(|v| v < LUT_FORMAT_VERSION);
        let mut lut = if path.is_file() && !stale {
            Self::load(path)?
        } else {
            let lut = Self::measure(space, opts);
            lut.save(path)?;
            return Ok(lut);
        };
        if lut.measure_missing(space, opts) > 0 {
            lut.calibrate_overhead(space, opts);
            lut.save(path)?;
        }
        Ok(lut)
    }

    /// The `format_version` of a table file, when it has one.
    fn file_version(path: &Path) -> Option<u32> {
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("format_version")?
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
    }

    /// Reads a table.
    ///
    /// # Errors
    /// I/O, malformed JSON, or a `format_version` this build does not read.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let file: LutFile = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.into(),
            what: "latency table".into(),
            source,
        })?;
        if file.format_version != LUT_FORMAT_VERSION {
            return Err(Error::FormatVersion {
                path: path.into(),
                found: file.format_version,
                supported: LUT_FORMAT_VERSION,
            });
        }
        if !(file.host.score.is_finite() && file.host.score > 0.0)
            || file
                .entries
                .iter()
                .any(|e| !(e.ms.is_finite() && e.ms >= 0.0))
        {
            return Err(Error::Mismatch {
                path: path.into(),
                reason: "host score or an entry's ms is not a finite positive number; delete the \
                         file to measure the table again"
                    .into(),
            });
        }
        Ok(LatencyLut {
            host: file.host,
            overhead_ms: file.overhead_ms.max(0.0),
            table: file.entries.into_iter().map(|e| (e.key, e.ms)).collect(),
        })
    }

    /// Writes the table (sorted, atomically).
    ///
    /// # Errors
    /// I/O.
    pub fn save(&self, path: &Path) -> Result<()> {
        let sorted: BTreeMap<OpKey, f64> = self.table.iter().map(|(k, v)| (*k, *v)).collect();
        let file = LutFile {
            format_version: LUT_FORMAT_VERSION,
            host: self.host.clone(),
            overhead_ms: self.overhead_ms,
            entries: sorted
                .into_iter()
                .map(|(key, ms)| LutEntry { key, ms })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|source| Error::Json {
            path: path.into(),
            what: "latency table".into(),
            source,
        })?;
        write_atomic(path, text.as_bytes())
    }

    /// The host the table was measured on.
    pub fn host(&self) -> &HostInfo {
        &self.host
    }
    /// The fixed overhead per inference, ms.
    pub fn overhead_ms(&self) -> f64 {
        self.overhead_ms
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }
    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    fn ops_ms(&self, space: &SearchSpace, arch: &ArchConfig) -> Result<f64> {
        ops(space, arch)
            .iter()
            .map(|k| {
                self.table
                    .get(k)
                    .copied()
                    .ok_or_else(|| Error::MissingLatency { op: k.to_string() })
            })
            .sum()
    }

    /// Predicted latency of `arch` on this host (batch 1, one thread), ms: the sum of its ops
    /// plus the fixed overhead.
    ///
    /// # Errors
    /// [`Error::MissingLatency`] when the table was measured for another space.
    pub fn predict_host_ms(&self, space: &SearchSpace, arch: &ArchConfig) -> Result<f64> {
        Ok(self.ops_ms(space, arch)? + self.overhead_ms)
    }

    /// Predicted latency of `arch` on a device of capability score `profile_score`:
    /// host latency × (host score / profile score).
    ///
    /// # Errors
    /// As [`LatencyLut::predict_host_ms`].
    pub fn predict_ms(
        &self,
        space: &SearchSpace,
        arch: &ArchConfig,
        profile_score: f64,
    ) -> Result<f64> {
        Ok(self.predict_host_ms(space, arch)? * self.scale_to(profile_score))
    }

    /// The factor from host latency to a device of score `profile_score`
    /// ([`device_profiles::latency::predict_ms`]).
    pub fn scale_to(&self, profile_score: f64) -> f64 {
        device_profiles::latency::predict_ms(1.0, self.host.score, profile_score)
    }
}

/// Predicted vs measured latency of one arch on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyCheck {
    /// Arch short id.
    pub arch: String,
    /// Predicted, ms.
    pub predicted_ms: f64,
    /// Measured `PlainNet::forward`, batch 1, one thread, ms.
    pub measured_ms: f64,
    /// |predicted − measured| / measured.
    pub rel_error: f64,
}

/// The result of [`validate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyValidation {
    /// One check per arch.
    pub checks: Vec<LatencyCheck>,
    /// Median relative error.
    pub median_rel_error: f64,
}

/// Compares the table's predictions with whole engine inferences of `n` random archs (seeded; a
/// freshly initialised supernet: weights do not change the time).
///
/// # Errors
/// A missing table entry, or an arch the supernet rejects.
pub fn validate(
    lut: &LatencyLut,
    space: &SearchSpace,
    n: usize,
    seed: u64,
    opts: &TimingOptions,
) -> Result<LatencyValidation> {
    let device = supernet::default_device();
    let net = Supernet::new(space, seed, &device)
        .map_err(|e| Error::supernet("building a supernet to time", e))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x7a11);
    let mut checks = Vec::with_capacity(n);
    for _ in 0..n {
        let arch = ArchConfig::random(space, &mut rng);
        let measured_ms =
            measure_engine_inference(&net, &arch, opts).ok_or_else(|| Error::Mismatch {
                path: "latency validation".into(),
                reason: format!("the engine cannot run arch {}", arch.short_id()),
            })?;
        let predicted_ms = lut.predict_host_ms(space, &arch)?;
        checks.push(LatencyCheck {
            arch: arch.short_id(),
            predicted_ms,
            measured_ms,
            rel_error: (predicted_ms - measured_ms).abs() / measured_ms.max(1e-9),
        });
    }
    let mut errs: Vec<f64> = checks.iter().map(|c| c.rel_error).collect();
    Ok(LatencyValidation {
        median_rel_error: median(&mut errs),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_cover_layers_and_residuals() {
        let sp = SearchSpace::tiny(1, 4, 12);
        let arch = ArchConfig::max(&sp);
        let o = ops(&sp, &arch);
        let n_layers = layers(&sp, &arch).len();
        // tiny: stage 0 (4→6, stride 2): residual only in block 1; stage 1 (6→8): block 1.
        assert_eq!(o.len(), n_layers + 2);
        assert_eq!(o[0].act, Some(Act::Relu));
        assert_eq!(o[o.len() - 3].act, Some(Act::Hswish), "the head");
        assert!(
            o[o.len() - 2..].iter().all(|k| k.act.is_none()),
            "pool and classifier"
        );
        assert!(o.iter().filter(|k| k.kind == OpKind::Add).count() == 2);
        let all = all_ops(&sp);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let a = ArchConfig::random(&sp, &mut rng);
            assert!(ops(&sp, &a).iter().all(|k| all.contains(k)));
        }
    }

    #[test]
    fn width_patterns_cover_every_op_of_a_width_space() {
        let mut sp = SearchSpace::tiny(1, 4, 12);
        assert_eq!(width_patterns(&sp), vec![vec![6, 8]]);
        sp.width_multipliers = vec![0.5, 0.75, 1.0];
        // tiny widths 6, 8 → [3, 5, 6] and [4, 6, 8]: every ordered pair of multipliers
        let p = width_patterns(&sp);
        assert_eq!(p.len(), 9);
        assert_eq!(p[0], vec![6, 8]);
        assert!(p.contains(&vec![3, 8]) && p.contains(&vec![6, 4]));
        let all = all_ops(&sp);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        for _ in 0..200 {
            let a = ArchConfig::random(&sp, &mut rng);
            for k in ops(&sp, &a) {
                assert!(all.contains(&k), "{} lacks {k}", a.short_id());
            }
        }
        // stage 1 (8 wide, stride 1) reads stage 0 (6): no residual at full width, and none
        // when both are at 6 either
        let a = ArchConfig::max(&sp).with_widths(&sp, [6, 6]);
        let adds = ops(&sp, &a)
            .iter()
            .filter(|k| k.kind == OpKind::Add)
            .count();
        assert_eq!(adds, 2, "only each stage's second block adds");
    }

    #[test]
    fn lut_entries_keep_the_act_names_files_use() {
        let text = r#"{"kind":"pointwise","in_channels":4,"out_channels":8,"in_size":6,"kernel":1,"stride":1,"act":"none","ms":0.5}"#;
        for (name, act) in [
            ("none", None),
            ("relu", Some(Act::Relu)),
            ("hswish", Some(Act::Hswish)),
        ] {
            let line = text.replace("\"none\"", &format!("\"{name}\""));
            let e: LutEntry = serde_json::from_str(&line).unwrap();
            assert_eq!(e.key.act, act, "{line}");
            assert_eq!(serde_json::to_string(&e).unwrap(), line);
        }
        let bad = text.replace("\"none\"", "\"gelu\"");
        let e = serde_json::from_str::<LutEntry>(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("gelu"), "{e}");
    }

    #[test]
    fn lut_measures_saves_loads_and_predicts() {
        let sp = SearchSpace::tiny(1, 4, 12);
        let opts = TimingOptions {
            runs: 3,
            min_run_us: 50.0,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency_lut.json");
        let lut = LatencyLut::load_or_measure(&path, &sp, &opts).unwrap();
        assert!(path.is_file());
        assert_eq!(lut.len(), all_ops(&sp).len());
        let again = LatencyLut::load_or_measure(&path, &sp, &opts).unwrap();
        let big = again.predict_host_ms(&sp, &ArchConfig::max(&sp)).unwrap();
        let small = again.predict_host_ms(&sp, &ArchConfig::min(&sp)).unwrap();
        assert!(big > small && small > 0.0, "{big} {small}");
        // a device with half the host's score is twice as slow
        let half = again.host().score / 2.0;
        let slow = again.predict_ms(&sp, &ArchConfig::max(&sp), half).unwrap();
        assert!((slow - 2.0 * big).abs() < 1e-9);
        // another space needs more entries, which load_or_measure adds
        let other = SearchSpace::tiny(1, 4, 16);
        assert!(
            again
                .predict_host_ms(&other, &ArchConfig::max(&other))
                .is_err()
        );
        let grown = LatencyLut::load_or_measure(&path, &other, &opts).unwrap();
        assert!(
            grown
                .predict_host_ms(&other, &ArchConfig::max(&other))
                .is_ok()
        );
        let v = validate(&grown, &other, 2, 3, &opts).unwrap();
        assert_eq!(v.checks.len(), 2);
        // each check is its prediction against its measurement, the summary their median
        for c in &v.checks {
            assert!(c.predicted_ms > 0.0 && c.measured_ms > 0.0, "{c:?}");
            let want = (c.predicted_ms - c.measured_ms).abs() / c.measured_ms;
            assert!((c.rel_error - want).abs() < 1e-12, "{c:?}");
        }
        let errors: Vec<f64> = v.checks.iter().map(|c| c.rel_error).collect();
        assert_eq!(
            Some(v.median_rel_error),
            device_profiles::bench::median(&errors)
        );
    }
}
