//! Building a tiered bundle from a checkpoint and a search result (extract each tier's sub-net,
//! evaluate its f32 and int8 files on the test set, write `manifest.json` and one safetensors
//! file per variant through `runtime::BundleWriter`), and verifying one.

use std::path::{Path, PathBuf};

use burn::prelude::Device;
use runtime::{
    Bundle, BundleWriter, Dtype, Family, ManifestFile, Reference, Tier, Variant, VerifyReport,
};
use serde::{Deserialize, Serialize};
use supernet::data::{Batcher, Dataset};
use supernet::progress::Reporter;
use supernet::{ArchConfig, Supernet};

use crate::cost::{Costs, costs};
use crate::error::{Error, Result};
use crate::eval::{ExtractOptions, extract_and_evaluate};
use crate::search::SearchResult;

/// What a bundle is built with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleOptions {
    /// Extraction (BN calibration images, test limit, int8 variants or not).
    pub extract: ExtractOptions,
    /// Bundle id (default: the data folder's name, else the space's name).
    pub bundle_id: Option<String>,
    /// Default latency budget in the manifest (default: the largest tier budget).
    pub default_latency_budget_ms: Option<f64>,
    /// Replace an existing bundle at the target.
    pub overwrite: bool,
    /// Replace the target even when it is not a tierforge bundle (`--force`); without it, see
    /// [`check_output_folder`].
    pub replace_anything: bool,
    /// Where progress goes (phases "extracting variants" and "timing variants"). Silent by
    /// default; not part of the options' file form.
    #[serde(skip)]
    pub progress: Reporter,
    /// Thread counts at which each variant's app inference is timed on this host (through
    /// `runtime::Session`, the path the runtime runs) and stored, scaled to the reference device,
    /// as the manifest's `latency_ms` (1 thread) and `latency_by_threads`; counts above this
    /// host's cores are dropped. Empty: keep the search's table-based prediction.
    pub latency_threads: Vec<usize>,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            extract: ExtractOptions::default(),
            bundle_id: None,
            default_latency_budget_ms: None,
            overwrite: true,
            replace_anything: false,
            progress: Reporter::silent(),
            latency_threads: vec![1, 2, 4],
        }
    }
}

/// What the checkpoint contributes to a bundle besides weights.
#[derive(Debug, Clone)]
pub struct FamilyInfo {
    /// Bundle id.
    pub bundle_id: String,
    /// Class names.
    pub labels: Vec<String>,
    /// Normalisation mean per channel.
    pub mean: Vec<f32>,
    /// Normalisation std per channel.
    pub std: Vec<f32>,
}

/// One variant written into the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltVariant {
    /// Variant id (the first tier that chose the arch; `-int8` for the int8 twin).
    pub id: String,
    /// The tiers that chose this arch.
    pub tiers: Vec<String>,
    /// The sub-net.
    pub arch: ArchConfig,
    /// Static costs (estimated file sizes; the real ones are below).
    pub costs: Costs,
    /// Predicted accuracy.
    pub predicted_accuracy: f64,
    /// Test top-1 of the f32 file.
    pub test_top1_f32: f64,
    /// Test top-1 of the int8 file.
    pub test_top1_int8: Option<f64>,
    /// Test images measured.
    pub test_images: usize,
    /// Real f32 file size.
    pub bytes_f32: u64,
    /// Real int8 file size.
    pub bytes_int8: Option<u64>,
    /// Predicted latency on the reference device (the search's look-up table), ms.
    pub reference_latency_ms: f64,
    /// Measured on this host through the runtime's inference path and scaled to the reference
    /// device, per thread count (empty when not measured): what the manifest stores.
    #[serde(default)]
    pub measured_reference_ms: Vec<runtime::ThreadLatency>,
}

/// What [`build_bundle`] wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BundleSummary {
    /// The bundle folder.
    pub dir: PathBuf,
    /// Bundle id and version.
    pub bundle_id: String,
    /// Bundle version (a hash of the weights: changes whenever they do).
    pub bundle_version: String,
    /// One entry per distinct arch (its int8 twin, if any, is described in the same entry).
    pub variants: Vec<BuiltVariant>,
    /// Budget overruns of the real files (the search used estimates), one line each.
    pub warnings: Vec<String>,
}

/// The manifest's family section.
fn runtime_family(space: &supernet::SearchSpace, family: &FamilyInfo) -> Family {
    Family {
        name: space.name.clone(),
        labels: family.labels.clone(),
        in_channels: space.in_channels,
        image_size: space.image_size,
        mean: family.mean.clone(),
        std: family.std.clone(),
        search_space: space.clone(),
    }
}

/// `wanted` thread counts this host can run (1 ..= its cores), ascending, unique.
fn latency_threads(wanted: &[usize]) -> Vec<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut t: Vec<usize> = wanted
        .iter()
        .copied()
        .filter(|&t| t >= 1 && t <= cores)
        .collect();
    t.sort_unstable();
    t.dedup();
    t
}

/// 64-bit FNV-1a, for a reproducible bundle version.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Checks that writing a bundle to `out` replaces nothing a user made: `out` must be absent,
/// an empty folder, or a folder holding a tierforge bundle (`manifest.json`).
///
/// # Errors
/// [`Error::NotABundle`] naming what is there and the fix (`--force`).
pub fn check_output_folder(out: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let not = |found: String| {
        Err(Error::NotABundle {
            path: out.into(),
            found,
        })
    };
    if meta.file_type().is_symlink() {
        return not("a symbolic link".into());
    }
    if !meta.is_dir() {
        return not("a file".into());
    }
    let entries = std::fs::read_dir(out)
        .map_err(|e| Error::io(out, "list", e))?
        .count();
    if entries == 0 {
        return Ok(());
    }
    let manifest = std::fs::symlink_metadata(out.join("manifest.json"));
    if manifest.is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    not(format!("a folder with {entries} entries"))
}

/// What a bundle is built from: the checkpoint's supernet and family, its data, and a search.
#[derive(Debug, Clone, Copy)]
pub struct BundleSources<'a> {
    /// The checkpoint's supernet.
    pub model: &'a Supernet,
    /// Tier name → a model that tier takes its sub-net from instead (e.g. a
    /// `tierforge train --arch … --init-from` run).
    pub fine_tuned: &'a [(String, Supernet)],
    /// Bundle id, labels and normalisation.
    pub family: &'a FamilyInfo,
    /// Training images (BN recalibration).
    pub train: &'a Dataset,
    /// Test images (each file's test top-1).
    pub test: &'a Dataset,
    /// The search result whose tiers the bundle ships.
    pub search: &'a SearchResult,
    /// The file `search` was read from (named in errors).
    pub search_path: &'a Path,
}

/// One distinct arch the search chose, with the tiers that chose it.
#[derive(Debug, Clone)]
struct ArchGroup {
    /// Variant id: the first tier that chose the arch.
    id: String,
    arch: ArchConfig,
    tiers: Vec<String>,
    predicted_accuracy: f64,
    reference_latency_ms: f64,
}

/// The extracted variants: one [`BuiltVariant`] per arch, the manifest entries with their file
/// bytes (f32, then the int8 twin), and the bundle version hashed from those bytes.
struct Extracted {
    built: Vec<BuiltVariant>,
    payloads: Vec<(Variant, Vec<u8>)>,
    version: u64,
}

/// Builds the bundle at `out` from `src`: extracts each tier's sub-net once (tiers that chose
/// the same arch share a variant), evaluates it, times it through the runtime when
/// `opts.latency_threads` asks, and writes the f32 variants (and int8 twins, dtype `int8`, when
/// `opts.extract.int8`). Tiers named in `src.fine_tuned` take their sub-net from that model.
///
/// # Errors
/// [`Error::BadSearch`] when the search belongs to another search space, or a fine-tuned model
/// names a tier the search does not have or has another space; extraction errors, or the
/// writer's errors (target exists without `overwrite`, I/O).
pub fn build_bundle(
    src: &BundleSources<'_>,
    out: &Path,
    opts: &BundleOptions,
    device: &Device,
) -> Result<BundleSummary> {
    if !opts.replace_anything {
        check_output_folder(out)?;
    }
    check_sources(src)?;
    let groups = arch_groups(src)?;
    let mut ex = extract_variants(src, groups, opts, device)?;
    time_variants(src, &mut ex, opts)?;
    let (tiers, warnings) = manifest_tiers(src, &ex.built)?;
    let bundle_version = format!("{:016x}", ex.version);
    let default_budget = opts.default_latency_budget_ms.unwrap_or_else(|| {
        src.search
            .tiers
            .iter()
            .filter_map(|t| t.tier.max_latency_ms)
            .fold(0.0, f64::max)
    });
    let header = ManifestFile {
        format_version: runtime::BUNDLE_FORMAT_VERSION,
        bundle_id: src.family.bundle_id.clone(),
        bundle_version: bundle_version.clone(),
        created_by: format!("tierforge {}", env!("CARGO_PKG_VERSION")),
        family: runtime_family(&src.model.space, src.family),
        reference: Reference {
            profile_id: src.search.reference.id.clone(),
            score: src.search.reference.score,
        },
        default_latency_budget_ms: default_budget,
        variants: vec![],
        tiers,
    };
    let mut writer = BundleWriter::new(header);
    writer.overwrite(opts.overwrite);
    for (v, bytes) in ex.payloads {
        writer.add_variant(v, bytes);
    }
    writer
        .write(out)
        .map_err(|e| Error::runtime(format!("writing the bundle to {}", out.display()), e))?;
    Ok(BundleSummary {
        dir: out.into(),
        bundle_id: src.family.bundle_id.clone(),
        bundle_version,
        variants: ex.built,
        warnings,
    })
}

/// The search and every fine-tuned model belong to the checkpoint's space; every fine-tuned
/// tier is a tier of the search; the search has tiers.
fn check_sources(src: &BundleSources<'_>) -> Result<()> {
    let space = &src.model.space;
    let bad = |reason: String| Error::BadSearch {
        path: src.search_path.into(),
        reason,
    };
    for (tier, m) in src.fine_tuned {
        if !src.search.tiers.iter().any(|t| &t.tier.name == tier) {
            return Err(bad(format!(
                "a fine-tuned checkpoint was given for tier `{tier}`, which the search does \
                 not have (tiers: {})",
                src.search
                    .tiers
                    .iter()
                    .map(|t| t.tier.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if &m.space != space {
            return Err(bad(format!(
                "the fine-tuned checkpoint of tier `{tier}` has another search space than \
                 the family's"
            )));
        }
    }
    if &src.search.space != space {
        return Err(bad(
            "the search ran over another search space than the checkpoint's; run \
             `tierforge search` with this checkpoint"
                .into(),
        ));
    }
    if src.search.tiers.is_empty() {
        return Err(bad("the search result has no tiers".into()));
    }
    Ok(())
}

/// The distinct archs of the search's tiers, in tier order, each validated against the space.
fn arch_groups(src: &BundleSources<'_>) -> Result<Vec<ArchGroup>> {
    let mut groups: Vec<ArchGroup> = Vec::new();
    for t in &src.search.tiers {
        t.candidate.arch.validate(&src.model.space).map_err(|e| {
            Error::supernet(
                format!("{}: tier {}'s arch", src.search_path.display(), t.tier.name),
                e,
            )
        })?;
        match groups.iter_mut().find(|g| g.arch == t.candidate.arch) {
            Some(g) => g.tiers.push(t.tier.name.clone()),
            None => groups.push(ArchGroup {
                id: t.tier.name.clone(),
                arch: t.candidate.arch.clone(),
                tiers: vec![t.tier.name.clone()],
                predicted_accuracy: t.candidate.predicted_accuracy,
                reference_latency_ms: t.candidate.reference_latency_ms,
            }),
        }
    }
    Ok(groups)
}

/// Extracts, recalibrates, folds and evaluates each group's sub-net (from its fine-tuned model
/// when one of its tiers has one), and makes its manifest entries.
fn extract_variants(
    src: &BundleSources<'_>,
    groups: Vec<ArchGroup>,
    opts: &BundleOptions,
    device: &Device,
) -> Result<Extracted> {
    let space = &src.model.space;
    let mut batcher = Batcher::new(src.family.mean.clone(), src.family.std.clone());
    let bar = opts
        .progress
        .phase("extracting variants", groups.len() as u64);
    let mut ex = Extracted {
        built: Vec::with_capacity(groups.len()),
        payloads: Vec::new(),
        version: 0xcbf2_9ce4_8422_2325u64,
    };
    for g in groups {
        bar.message(&g.id);
        let source = src
            .fine_tuned
            .iter()
            .find(|(t, _)| g.tiers.contains(t))
            .map_or(src.model, |(_, m)| m);
        let e = extract_and_evaluate(
            source,
            &g.arch,
            src.train,
            src.test,
            &mut batcher,
            &opts.extract,
            device,
        )?;
        let c = costs(space, &g.arch);
        let variant = |id: String, dtype: Dtype, acc: f64| Variant {
            file: format!("{id}.safetensors"),
            id,
            resolution: g.arch.resolution,
            arch: g.arch.clone(),
            params: c.params,
            macs: c.macs,
            model_bytes: 0,
            dtype,
            peak_activation_bytes: c.peak_activation_bytes,
            test_accuracy: Some(acc),
            predicted_accuracy: Some(g.predicted_accuracy),
            latency_ms: g.reference_latency_ms.max(1e-6),
            latency_by_threads: vec![],
            sha256: String::new(),
        };
        ex.version = fnv1a(ex.version, &e.f32_bytes);
        ex.payloads.push((
            variant(g.id.clone(), Dtype::F32, e.test_top1_f32),
            e.f32_bytes.clone(),
        ));
        if let (Some(b), Some(acc)) = (&e.int8_bytes, e.test_top1_int8) {
            ex.version = fnv1a(ex.version, b);
            ex.payloads.push((
                variant(format!("{}-int8", g.id), Dtype::Int8, acc),
                b.clone(),
            ));
        }
        ex.built.push(BuiltVariant {
            id: g.id,
            tiers: g.tiers,
            arch: g.arch,
            costs: c,
            predicted_accuracy: g.predicted_accuracy,
            test_top1_f32: e.test_top1_f32,
            test_top1_int8: e.test_top1_int8,
            test_images: e.test_images,
            bytes_f32: e.f32_bytes.len() as u64,
            bytes_int8: e.int8_bytes.as_ref().map(|b| b.len() as u64),
            reference_latency_ms: g.reference_latency_ms,
            measured_reference_ms: vec![],
        });
        bar.advance(1);
    }
    Ok(ex)
}

/// Times every variant file as the runtime will run it (`runtime::Session`, the engine split over
/// each of `opts.latency_threads` this host can run; [`crate::latency::measure_session_threads`]), scaled to the search's reference device: the
/// manifest's `latency_by_threads`, and `latency_ms` from the one-thread figure.
fn time_variants(src: &BundleSources<'_>, ex: &mut Extracted, opts: &BundleOptions) -> Result<()> {
    let threads = latency_threads(&opts.latency_threads);
    if threads.is_empty() {
        return Ok(());
    }
    let fam = runtime_family(&src.model.space, src.family);
    let host = crate::HostInfo::probe_default();
    let to_reference =
        device_profiles::latency::predict_ms(1.0, host.score, src.search.reference.score);
    let timing = crate::latency::TimingOptions {
        runs: 9,
        min_run_us: 3000.0,
    };
    let bar = opts
        .progress
        .phase("timing variants", ex.payloads.len() as u64);
    for (v, bytes) in ex.payloads.iter_mut() {
        bar.message(&v.id);
        let net = runtime::load_net(&fam, v, bytes)
            .map_err(|e| Error::runtime(format!("timing variant {}", v.id), e))?;
        let mut session = runtime::Session::new(net, fam.clone(), v.clone());
        let ms = crate::latency::measure_session_threads(&mut session, &threads, &timing);
        v.latency_by_threads = threads
            .iter()
            .zip(ms)
            .map(|(&t, ms)| runtime::ThreadLatency {
                threads: t,
                ms: (ms * to_reference).max(1e-6),
            })
            .collect();
        if let Some(one) = v.latency_by_threads.first().filter(|t| t.threads == 1) {
            v.latency_ms = one.ms;
        }
        if let Some(b) = ex.built.iter_mut().find(|b| b.id == v.id) {
            b.measured_reference_ms = v.latency_by_threads.clone();
        }
        bar.advance(1);
    }
    Ok(())
}

/// The manifest's tiers, each naming its built variant, and one warning per tier whose real
/// f32 file (or peak memory) is over the tier's budget (the search used estimates).
///
/// # Errors
/// [`Error::BadSearch`] for a tier without a built variant.
fn manifest_tiers(
    src: &BundleSources<'_>,
    built: &[BuiltVariant],
) -> Result<(Vec<Tier>, Vec<String>)> {
    let mut warnings = Vec::new();
    let mut tiers = Vec::with_capacity(src.search.tiers.len());
    for t in &src.search.tiers {
        let Some(v) = built.iter().find(|b| b.tiers.contains(&t.tier.name)) else {
            return Err(Error::BadSearch {
                path: src.search_path.into(),
                reason: format!(
                    "tier {} has no variant among the built ones; run `tierforge search` again",
                    t.tier.name
                ),
            });
        };
        let peak = v.bytes_f32 + v.costs.peak_activation_bytes;
        if v.bytes_f32 > t.tier.max_model_bytes || peak > t.tier.max_peak_memory_bytes {
            warnings.push(format!(
                "tier {}: the real f32 file of {} is {} bytes (peak {}), over the budget {} (peak {})",
                t.tier.name,
                v.id,
                v.bytes_f32,
                peak,
                t.tier.max_model_bytes,
                t.tier.max_peak_memory_bytes
            ));
        }
        let Some(max_latency_ms) = t.tier.max_latency_ms else {
            return Err(Error::BadSearch {
                path: src.search_path.into(),
                reason: format!(
                    "tier {} has no latency budget (the search sizes unset budgets); run \
                     `tierforge search` again",
                    t.tier.name
                ),
            });
        };
        tiers.push(Tier {
            name: t.tier.name.clone(),
            max_latency_ms,
            max_model_bytes: t.tier.max_model_bytes,
            max_peak_memory_bytes: t.tier.max_peak_memory_bytes,
            variant: v.id.clone(),
        });
    }
    Ok((tiers, warnings))
}

/// A re-measured test accuracy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remeasured {
    /// Variant id.
    pub id: String,
    /// What the manifest says.
    pub manifest: Option<f64>,
    /// What we measured now, through the runtime's inference path (`runtime::Session`, the
    /// engine named in `engine`), from the u8 test images as an app passes them.
    pub measured: f64,
    /// Test images measured.
    pub images: usize,
    /// The kernels the runtime engine ran (`avx2+fma` or `baseline` in JSON).
    pub engine: runtime::engine::Isa,
}

/// The result of [`verify_bundle`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BundleCheck {
    /// Files, sizes, sha256 and the load check of every variant.
    pub report: VerifyReport,
    /// Re-measured accuracies (empty unless asked for; only variants whose file verified).
    pub remeasured: Vec<Remeasured>,
}

impl BundleCheck {
    /// Whether every file verified and loaded, and every re-measured accuracy is within
    /// `tolerance` (a 0..1 fraction) of the manifest's.
    pub fn is_ok(&self, tolerance: f64) -> bool {
        self.report.is_ok() && self.accuracy_failures(tolerance).is_empty()
    }

    /// One `FAIL` line per re-measured variant whose accuracy is more than `tolerance` (a 0..1
    /// fraction; NaN or negative fails everything) from the manifest's, or that the manifest
    /// gives no accuracy for.
    pub fn accuracy_failures(&self, tolerance: f64) -> Vec<String> {
        self.remeasured
            .iter()
            .filter_map(|r| match r.manifest {
                None => Some(format!(
                    "FAIL  {}: measured {:.2}% test top-1 on {} images, but the manifest \
                     records no test accuracy to compare with",
                    r.id,
                    100.0 * r.measured,
                    r.images
                )),
                Some(m) if (m - r.measured).abs() <= tolerance => None,
                Some(m) => Some(format!(
                    "FAIL  {}: measured {:.2}% test top-1 on {} images, the manifest says \
                     {:.2}% (a difference of {:.2} points, tolerance {:.2}); rebuild the \
                     bundle or pass the dataset it was built from",
                    r.id,
                    100.0 * r.measured,
                    r.images,
                    100.0 * m,
                    100.0 * (m - r.measured).abs(),
                    100.0 * tolerance
                )),
            })
            .collect()
    }
}

impl std::fmt::Display for BundleCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.report)?;
        for r in &self.remeasured {
            write!(
                f,
                "\n  test top-1 {}: manifest {} measured {:.2}% on {} images (runtime, {} engine)",
                r.id,
                r.manifest
                    .map_or("-".into(), |m| format!("{:.2}%", 100.0 * m)),
                100.0 * r.measured,
                r.images,
                r.engine
            )?;
        }
        Ok(())
    }
}

/// Verifies the bundle at `path`: every file's presence, size and sha256, and that it loads
/// into its arch (`PlainNet::from_safetensors`); with `remeasure_test`, also re-measures each
/// verified variant's top-1 on that test set (preprocessed with the family's mean and std).
///
/// # Errors
/// A bundle that does not open (no or invalid manifest), or a test set of another shape.
pub fn verify_bundle(path: &Path, remeasure_test: Option<&Dataset>) -> Result<BundleCheck> {
    let bundle = Bundle::open(path)
        .map_err(|e| Error::runtime(format!("opening the bundle {}", path.display()), e))?;
    let family = bundle.manifest().family().clone();
    let report = bundle.verify_weights();
    let mut remeasured = Vec::new();
    if let Some(ds) = remeasure_test {
        if ds.channels != family.in_channels {
            return Err(Error::Mismatch {
                path: path.into(),
                reason: format!(
                    "the test set has {} channels, the bundle's family {}; pass the dataset the bundle was built from",
                    ds.channels, family.in_channels
                ),
            });
        }
        // HWC u8 images, as an app holds them (the dataset stores CHW)
        let (c, h, w) = (ds.channels, ds.height, ds.width);
        let plane = h * w;
        let hwc: Vec<u8> = ds
            .images
            .chunks(c * plane)
            .flat_map(|im| supernet::preprocess::chw_to_hwc(im, c, h, w))
            .collect();
        let images: Vec<runtime::ImageRef<'_>> = hwc
            .chunks(c * plane)
            .map(|pixels| runtime::ImageRef {
                pixels,
                width: w,
                height: h,
                channels: c,
            })
            .collect();
        let labels: Vec<usize> = ds.labels.iter().map(|&l| usize::from(l)).collect();
        for check in report.variants.iter().filter(|c| c.problem.is_none()) {
            let Ok(v) = bundle.variant(&check.id) else {
                continue;
            };
            let Ok(bytes) = bundle.read_variant(&v.id) else {
                continue;
            };
            let Ok(net) = runtime::load_net(&family, v, &bytes) else {
                continue;
            };
            let mut session = runtime::Session::new(net, family.clone(), v.clone());
            let measured = runtime::eval::accuracy(&mut session, &images, &labels)
                .map_err(|e| Error::runtime(format!("re-measuring {}", v.id), e))?;
            remeasured.push(Remeasured {
                id: v.id.clone(),
                manifest: v.test_accuracy,
                measured,
                images: ds.len(),
                engine: session.engine().kernels(),
            });
        }
    }
    Ok(BundleCheck { report, remeasured })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::tests::{fake_lut, fake_predictor};
    use crate::search::{SearchOptions, search};
    use crate::spec::TierSpec;

    /// What a test bundle is built from: a fresh tiny supernet, toy data, and a search over the
    /// tiny space (fake table and predictor) whose four tiers take `min`, `min`, `max`, `max`.
    struct Inputs {
        model: Supernet,
        family: FamilyInfo,
        train: Dataset,
        test: Dataset,
        search: SearchResult,
        search_path: PathBuf,
    }

    impl Inputs {
        fn new() -> Self {
            let space = fixtures::tiny_space();
            let device = supernet::default_device();
            let opts = SearchOptions {
                population: 12,
                generations: 2,
                ..SearchOptions::default()
            };
            let spec = TierSpec::default_spec().unwrap();
            let (mut search, _) = search(
                &space,
                &spec,
                &fake_predictor(&space),
                &fake_lut(&space),
                &opts,
            )
            .unwrap();
            assert_eq!(search.tiers.len(), 4);
            let (min, max) = (ArchConfig::min(&space), ArchConfig::max(&space));
            for (t, arch) in search.tiers.iter_mut().zip([&min, &min, &max, &max]) {
                t.candidate.arch = arch.clone();
            }
            let size = fixtures::TINY_SIZE;
            Inputs {
                model: Supernet::new(&space, 7, &device).unwrap(),
                family: FamilyInfo {
                    bundle_id: "test".into(),
                    labels: (0..fixtures::TINY_CLASSES).map(|k| k.to_string()).collect(),
                    mean: vec![fixtures::TINY_MEAN],
                    std: vec![fixtures::TINY_STD],
                },
                train: fixtures::toy_dataset(32, size, fixtures::TINY_CLASSES, 0),
                test: fixtures::toy_dataset(8, size, fixtures::TINY_CLASSES, 1000),
                search,
                search_path: PathBuf::from("runs/x/search.json"),
            }
        }

        fn sources<'a>(&'a self, fine_tuned: &'a [(String, Supernet)]) -> BundleSources<'a> {
            BundleSources {
                model: &self.model,
                fine_tuned,
                family: &self.family,
                train: &self.train,
                test: &self.test,
                search: &self.search,
                search_path: &self.search_path,
            }
        }
    }

    fn options() -> BundleOptions {
        BundleOptions {
            extract: ExtractOptions {
                calib_images: 16,
                test_limit: Some(8),
                int8: false,
            },
            latency_threads: vec![],
            ..BundleOptions::default()
        }
    }

    /// The f32 file `extract_and_evaluate` makes of `arch` from `model` with [`options`].
    fn extract_f32(model: &Supernet, arch: &ArchConfig, inputs: &Inputs) -> Vec<u8> {
        let mut batcher = Batcher::new(inputs.family.mean.clone(), inputs.family.std.clone());
        extract_and_evaluate(
            model,
            arch,
            &inputs.train,
            &inputs.test,
            &mut batcher,
            &options().extract,
            &supernet::default_device(),
        )
        .unwrap()
        .f32_bytes
    }

    #[test]
    fn tiers_that_share_an_arch_share_one_variant() {
        let inputs = Inputs::new();
        let groups = arch_groups(&inputs.sources(&[])).unwrap();
        let names = |i: usize| inputs.search.tiers[i].tier.name.clone();
        let got: Vec<(String, Vec<String>)> = groups
            .iter()
            .map(|g| (g.id.clone(), g.tiers.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (names(0), vec![names(0), names(1)]),
                (names(2), vec![names(2), names(3)]),
            ]
        );
    }

    #[test]
    fn a_fine_tuned_tier_is_taken_from_its_own_run_and_every_tier_names_its_variant() {
        let inputs = Inputs::new();
        let space = &inputs.model.space;
        let fine = Supernet::new(space, 8, &supernet::default_device()).unwrap();
        let flagship = inputs.search.tiers[3].tier.name.clone();
        let fine_tuned = vec![(flagship.clone(), fine)];
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("bundle");
        let summary = build_bundle(
            &inputs.sources(&fine_tuned),
            &out,
            &options(),
            &supernet::default_device(),
        )
        .unwrap();
        assert_eq!(summary.variants.len(), 2, "{summary:?}");
        let bundle = Bundle::open(&out).unwrap();
        let max = ArchConfig::max(space);
        // the `max` group holds the fine-tuned tier: its file is the fine-tuned run's sub-net
        let max_id = &inputs.search.tiers[2].tier.name;
        let shipped = bundle.read_variant(max_id).unwrap();
        assert_eq!(shipped, extract_f32(&fine_tuned[0].1, &max, &inputs));
        assert_ne!(shipped, extract_f32(&inputs.model, &max, &inputs));
        // the other group comes from the family's supernet
        let min_id = &inputs.search.tiers[0].tier.name;
        assert_eq!(
            bundle.read_variant(min_id).unwrap(),
            extract_f32(&inputs.model, &ArchConfig::min(space), &inputs)
        );
        let tiers: Vec<(&str, &str)> = bundle
            .manifest()
            .tiers()
            .iter()
            .map(|t| (t.name.as_str(), t.variant.as_str()))
            .collect();
        let names: Vec<&str> = inputs
            .search
            .tiers
            .iter()
            .map(|t| t.tier.name.as_str())
            .collect();
        assert_eq!(
            tiers,
            [
                (names[0], min_id.as_str()),
                (names[1], min_id.as_str()),
                (names[2], max_id.as_str()),
                (names[3], max_id.as_str()),
            ]
        );
    }

    #[test]
    fn a_tier_without_a_built_variant_is_a_bad_search_naming_the_file() {
        let inputs = Inputs::new();
        let src = inputs.sources(&[]);
        let space = &inputs.model.space;
        let built = |id: &str, tiers: &[usize]| BuiltVariant {
            id: id.into(),
            tiers: tiers
                .iter()
                .map(|&i| inputs.search.tiers[i].tier.name.clone())
                .collect(),
            arch: ArchConfig::min(space),
            costs: costs(space, &ArchConfig::min(space)),
            predicted_accuracy: 0.5,
            test_top1_f32: 0.5,
            test_top1_int8: None,
            test_images: 8,
            bytes_f32: 100,
            bytes_int8: None,
            reference_latency_ms: 1.0,
            measured_reference_ms: vec![],
        };
        let (tiers, _) = manifest_tiers(&src, &[built("a", &[0, 1]), built("b", &[2, 3])]).unwrap();
        assert_eq!(tiers.len(), 4);
        let missing = &inputs.search.tiers[2].tier.name;
        match manifest_tiers(&src, &[built("a", &[0, 1]), built("b", &[3])]) {
            Err(Error::BadSearch { path, reason }) => {
                assert_eq!(path, inputs.search_path);
                assert!(
                    reason.contains(&format!("tier {missing} has no variant")),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_search_over_another_space_is_refused_before_anything_is_extracted() {
        let mut inputs = Inputs::new();
        inputs.search.space = supernet::SearchSpace::tiny(1, fixtures::TINY_CLASSES + 1, 12);
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("bundle");
        let e = build_bundle(
            &inputs.sources(&[]),
            &out,
            &options(),
            &supernet::default_device(),
        )
        .unwrap_err();
        match &e {
            Error::BadSearch { path, reason } => {
                assert_eq!(path, &inputs.search_path);
                assert!(reason.contains("another search space"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("runs/x/search.json"), "{e}");
        assert!(!out.exists());
        // a fine-tuned model over another space is refused too
        let inputs = Inputs::new();
        let other = supernet::SearchSpace::tiny(1, fixtures::TINY_CLASSES + 1, 12);
        let fine = vec![(
            inputs.search.tiers[0].tier.name.clone(),
            Supernet::new(&other, 1, &supernet::default_device()).unwrap(),
        )];
        let e = check_sources(&inputs.sources(&fine))
            .unwrap_err()
            .to_string();
        assert!(e.contains("another search space"), "{e}");
    }
}
