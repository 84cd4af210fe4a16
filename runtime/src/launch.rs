//! App start-up in one call: open the bundle, know the device (probe once, then cached), pick
//! a variant (decision cached), load it with fallback, and predict — with a report of what
//! happened and how long each step took.
//!
//! A **cold** launch (nothing cached) computes the hardware fingerprint from cheap reads of
//! `/proc` and `/sys`, runs the probe's micro-benchmark (the pick — fingerprint, probe,
//! selection — within [`LaunchOptions::pick_budget_ms`]), selects, loads, and then persists the
//! device facts ([`DeviceCache`]) and the decision ([`DecisionCache`]). A **warm** launch computes only the fingerprint, reads both caches and
//! loads: no benchmark. A changed device (fingerprint), runtime version or probe thread count
//! re-probes; a changed bundle (id, version or manifest digest) or policy re-selects; a corrupt
//! cache file is reported, ignored and rewritten.
//!
//! # Threads
//! A single image runs on the threads the runtime chose for the loaded variant on this device
//! ([`crate::inference_threads`]: 1 for a net too small to gain, up to the big cores where
//! splitting its stages pays), on the engine's own pool for that count
//! ([`crate::engine::FastNet::with_threads`]), at most [`LaunchOptions::threads`] when given. A
//! batch is split over rayon's **global** pool, one per process, sized on first use and never
//! resized. [`set_threads`] (or [`LaunchOptions::threads`]) sizes it, and only works before the
//! first batch or probe of the process; later it returns [`Error::Threads`] (the launcher then
//! records a note in the report and goes on with the pool in force). The probe's multi-thread
//! figures (reported, not scored: the score is one core's speed) use the same count, so the
//! cached device facts are keyed by it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use device_profiles::{DeviceProfile, Fingerprint, FsReader, ProbeOptions, SysReader};
use serde::Serialize;

use crate::bundle::Bundle;
use crate::cache::{CacheLookup, DecisionCache, StepDown, StepDownReason};
use crate::device::DeviceFacts;
use crate::device_cache::{CachedDevice, DeviceCache, DeviceLookup, hardware_fingerprint};
use crate::error::{Error, Result};
use crate::fallback::{
    AdaptiveLatency, FallbackEvent, LatencyVerdict, load_unpersisted, plan, step_down_slow,
};
use crate::select::{Decision, Policy};
use crate::session::{ImageRef, Prediction, Session, load_net};

/// Sizes rayon's global thread pool, which batched inference uses (process-wide;
/// see the [module docs](self)). `0` means rayon's default (one thread per logical CPU, or
/// `RAYON_NUM_THREADS`).
///
/// # Errors
/// [`Error::Threads`] when the pool already exists (something ran in parallel before).
pub fn set_threads(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| Error::Threads {
            requested: threads,
            in_force: rayon::current_num_threads(),
            reason: e.to_string(),
        })
}

/// Threads of the pool inference runs on (creates the global pool if needed).
pub fn threads_in_force() -> usize {
    rayon::current_num_threads()
}

/// Part of [`LaunchOptions::pick_budget_ms`] kept back from the probe for selection and for the
/// probe's own overrun on a loaded device, ms.
pub const PICK_RESERVE_MS: f64 = 2.0;

/// How to launch. `LaunchOptions::default()` is the recommended one.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchOptions {
    /// Selection budgets and margins.
    pub policy: Policy,
    /// Time budget of a cold pick, ms (default 20): fingerprint + cache read + probe +
    /// selection. The probe's micro-benchmark gets what the fingerprint and the cache read
    /// left, less [`PICK_RESERVE_MS`] (at least 1 ms). Writing the caches comes after the load
    /// and is not part of it.
    pub pick_budget_ms: u32,
    /// Inference and probe threads: the most one image may run on (the runtime's choice is
    /// capped by it) and the size of the batch pool (`None`: the runtime's choice for one image;
    /// the batch pool as it is, all CPUs by default).
    pub threads: Option<usize>,
    /// Single-image predictions watched after loading: when their median is over the latency
    /// budget (+ margin), the launch steps down to the next smaller variant and persists that
    /// (see [`AdaptiveLatency`]). 0 turns the watch off. Default 5.
    pub latency_window: usize,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            policy: Policy::default(),
            pick_budget_ms: device_profiles::probe::DEFAULT_BUDGET_MS,
            threads: None,
            latency_window: 5,
        }
    }
}

/// What a cache said at launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CacheStatus {
    /// Valid for this device and bundle: used.
    Hit,
    /// Nothing cached.
    Miss,
    /// Cached for another device, bundle, policy, runtime or thread count: replaced.
    Stale {
        /// What differs, when known.
        reason: Option<String>,
    },
    /// The file was unreadable or malformed: ignored and rewritten.
    Corrupt {
        /// Why.
        reason: String,
    },
}

impl CacheStatus {
    /// Whether the cache was used.
    pub fn is_hit(&self) -> bool {
        matches!(self, CacheStatus::Hit)
    }
}

impl From<&CacheLookup> for CacheStatus {
    fn from(l: &CacheLookup) -> Self {
        match l {
            CacheLookup::Hit(_) => CacheStatus::Hit,
            CacheLookup::Miss => CacheStatus::Miss,
            CacheLookup::Stale => CacheStatus::Stale { reason: None },
            CacheLookup::Corrupt { reason } => CacheStatus::Corrupt {
                reason: reason.clone(),
            },
        }
    }
}

impl fmt::Display for CacheStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheStatus::Hit => write!(f, "hit"),
            CacheStatus::Miss => write!(f, "miss"),
            CacheStatus::Stale { reason: None } => write!(f, "stale"),
            CacheStatus::Stale { reason: Some(r) } => write!(f, "stale ({r})"),
            CacheStatus::Corrupt { reason } => write!(f, "corrupt ({reason})"),
        }
    }
}

/// Wall times of the launch steps, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LaunchTimings {
    /// `Bundle::open`: read and validate `manifest.json` (0 when given an open bundle).
    pub open_ms: f64,
    /// Cheap hardware reads + fingerprint.
    pub fingerprint_ms: f64,
    /// Reading the device cache.
    pub device_cache_ms: f64,
    /// The probe (micro-benchmark); `None` when the cached facts were used.
    pub probe_ms: Option<f64>,
    /// Selection + decision-cache lookup.
    pub select_ms: f64,
    /// The pick: fingerprint + device cache + probe + select (no bundle open, no load).
    pub pick_ms: f64,
    /// Read + sha256 + decode of the weights (and of any variant that failed before).
    pub load_ms: f64,
    /// Writing the device facts and the decision to the caches (atomic, fsynced), after the
    /// load; 0 on a warm launch.
    pub persist_ms: f64,
    /// The first prediction after loading (preprocess + forward); `None` until
    /// [`Launch::predict`] runs.
    pub first_predict_ms: Option<f64>,
    /// Open → loaded and persisted (excludes the first prediction).
    pub total_ms: f64,
}

/// What a launch did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchReport {
    /// The bundle id.
    pub bundle_id: String,
    /// The bundle version.
    pub bundle_version: String,
    /// The device facts used (probed or cached).
    pub device: DeviceFacts,
    /// The cheap hardware fingerprint the device cache is keyed by.
    pub hardware_fingerprint: Fingerprint,
    /// Whether the micro-benchmark ran.
    pub probed: bool,
    /// What the device cache said.
    pub device_cache: CacheStatus,
    /// What the decision cache said.
    pub decision_cache: CacheStatus,
    /// The selector's decision on this device (computed on a cache hit too).
    pub decision: Decision,
    /// The variant loading started at (the cached one on a hit, else the selector's).
    pub start_variant: String,
    /// The variant loaded now (after any fallback or latency step-down).
    pub variant: String,
    /// Variants whose files failed to verify or load, in the order tried.
    pub fallback_events: Vec<FallbackEvent>,
    /// Step-downs taken after loading because predictions ran over budget.
    pub latency_step_downs: Vec<StepDown>,
    /// Threads one image of the loaded variant runs on (the runtime's choice,
    /// [`crate::inference_threads`], at most [`LaunchOptions::threads`]).
    pub threads: usize,
    /// Non-fatal problems: a thread count that could not be applied, a cache that could not be
    /// written.
    pub notes: Vec<String>,
    /// Step times.
    pub timings: LaunchTimings,
}

impl LaunchReport {
    /// Whether both caches were used (a warm launch: no probe, no fresh selection).
    pub fn is_warm(&self) -> bool {
        !self.probed && self.device_cache.is_hit() && self.decision_cache.is_hit()
    }
}

/// What a launch knows about the device before it picks.
struct KnownDevice {
    /// The cheap hardware fingerprint.
    fingerprint: Fingerprint,
    /// The facts the selector uses (cached or just probed).
    facts: DeviceFacts,
    /// What the device cache said.
    cache_status: CacheStatus,
    /// Facts to cache after the load (a probe ran).
    to_store: Option<CachedDevice>,
    fingerprint_time: std::time::Duration,
    cache_time: std::time::Duration,
    probe_time: Option<std::time::Duration>,
}

impl KnownDevice {
    /// Fingerprint, cache lookup and probe together.
    fn time(&self) -> std::time::Duration {
        self.fingerprint_time + self.cache_time + self.probe_time.unwrap_or_default()
    }
}

/// `facts` as a later launch reads them back from the cache (serde_json's float parsing may
/// differ in the last bit), so cold and warm launches decide on the same numbers.
fn as_stored(facts: DeviceFacts) -> DeviceFacts {
    serde_json::to_string(&facts)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(facts)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl fmt::Display for LaunchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.timings;
        writeln!(
            f,
            "{} launch of bundle {} v{}: variant `{}` on {} (score {:.1}, {} threads)",
            if self.is_warm() { "warm" } else { "cold" },
            self.bundle_id,
            self.bundle_version,
            self.variant,
            self.device.id,
            self.device.score,
            self.threads
        )?;
        writeln!(
            f,
            "  device cache {}, decision cache {}, probed: {}",
            self.device_cache,
            self.decision_cache,
            if self.probed { "yes" } else { "no" }
        )?;
        let probe = t
            .probe_ms
            .map_or_else(|| "skipped".to_string(), |p| format!("{p:.3} ms"));
        writeln!(
            f,
            "  open {:.3} ms | fingerprint {:.3} ms | device cache {:.3} ms | probe {probe} | select {:.3} ms",
            t.open_ms, t.fingerprint_ms, t.device_cache_ms, t.select_ms
        )?;
        let first = t
            .first_predict_ms
            .map_or_else(|| "-".to_string(), |p| format!("{p:.3} ms"));
        write!(
            f,
            "  pick {:.3} ms | load {:.3} ms | persist {:.3} ms | total {:.3} ms | first predict {first}",
            t.pick_ms, t.load_ms, t.persist_ms, t.total_ms
        )?;
        for e in &self.fallback_events {
            write!(f, "\n  fell back from {e}")?;
        }
        for s in &self.latency_step_downs {
            write!(f, "\n  stepped down `{}` → `{}` (too slow)", s.from, s.to)?;
        }
        for n in &self.notes {
            write!(f, "\n  note: {n}")?;
        }
        Ok(())
    }
}

/// Probes a device: given the options and the reader the launcher uses.
pub type ProbeFn = dyn Fn(&ProbeOptions, &dyn SysReader) -> DeviceProfile + Send + Sync;

/// Launches bundles for an app whose data folder is `app_dir` (both caches live there).
pub struct Launcher {
    app_dir: PathBuf,
    options: LaunchOptions,
    reader: Box<dyn SysReader + Send + Sync>,
    probe: Box<ProbeFn>,
}

impl fmt::Debug for Launcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launcher")
            .field("app_dir", &self.app_dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Launcher {
    /// A launcher with the default options, reading the real `/proc` and `/sys` and probing
    /// with [`device_profiles::probe_with`].
    pub fn new(app_dir: impl Into<PathBuf>) -> Self {
        Launcher {
            app_dir: app_dir.into(),
            options: LaunchOptions::default(),
            reader: Box::new(FsReader),
            probe: Box::new(|o, r| device_profiles::probe_with(o, r)),
        }
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: LaunchOptions) -> Self {
        self.options = options;
        self
    }

    /// Replaces where hardware facts are read from (tests, emulation).
    pub fn with_reader(mut self, reader: impl SysReader + Send + Sync + 'static) -> Self {
        self.reader = Box::new(reader);
        self
    }

    /// Replaces the probe (tests, emulation of another device).
    pub fn with_probe(
        mut self,
        probe: impl Fn(&ProbeOptions, &dyn SysReader) -> DeviceProfile + Send + Sync + 'static,
    ) -> Self {
        self.probe = Box::new(probe);
        self
    }

    /// The options.
    pub fn options(&self) -> &LaunchOptions {
        &self.options
    }

    /// The app data folder.
    pub fn app_dir(&self) -> &Path {
        &self.app_dir
    }

    /// The device cache.
    pub fn device_cache(&self) -> DeviceCache {
        DeviceCache::new(&self.app_dir)
    }

    /// The decision cache.
    pub fn decision_cache(&self) -> DecisionCache {
        DecisionCache::new(&self.app_dir)
    }

    /// Removes both caches, so the next launch is cold.
    ///
    /// # Errors
    /// [`Error::Io`] when a cache file exists and cannot be removed.
    pub fn clear_caches(&self) -> Result<()> {
        self.device_cache().clear()?;
        self.decision_cache().clear()
    }

    /// Opens the bundle in `bundle_dir` and launches it (see [`Launcher::launch_bundle`]).
    ///
    /// # Errors
    /// Those of [`Bundle::open`] (no manifest, a newer `format_version`, an invalid manifest)
    /// and of [`Launcher::launch_bundle`].
    pub fn launch(&self, bundle_dir: impl AsRef<Path>) -> Result<Launch> {
        let t0 = Instant::now();
        let bundle = Bundle::open(bundle_dir)?;
        let open = t0.elapsed();
        let mut launch = self.launch_from(bundle, t0)?;
        launch.report.timings.open_ms = ms(open);
        Ok(launch)
    }

    /// Knows the device (cached facts, else a probe), picks a variant (cached decision, else
    /// selection), and loads it, stepping down past damaged or unloadable files.
    ///
    /// # Errors
    /// [`Error::InvalidPolicy`], [`Error::InvalidDevice`] (a probe that returned unusable
    /// facts), or [`Error::AllVariantsFailed`] listing every file that failed. Cache and
    /// thread problems are not errors: they are noted in the report.
    pub fn launch_bundle(&self, bundle: Bundle) -> Result<Launch> {
        self.launch_from(bundle, Instant::now())
    }

    fn launch_from(&self, bundle: Bundle, t0: Instant) -> Result<Launch> {
        let opts = &self.options;
        opts.policy.validate()?;
        let mut notes = Vec::new();
        // Asking the pool its size would create it: try to size it first.
        if let Some(n) = opts.threads
            && let Err(e) = set_threads(n)
            && threads_in_force() != n
        {
            notes.push(e.to_string());
        }
        let known = self.know_device()?;

        // The pick.
        let t = Instant::now();
        let decisions = self.decision_cache();
        let plan = plan(&bundle, &known.facts, &opts.policy, &decisions)?;
        let select_time = t.elapsed();
        let decision_cache = CacheStatus::from(&plan.cache_lookup);
        let start_variant = plan.start(&bundle).to_owned();
        let pick = known.time() + select_time;

        // The load.
        let t = Instant::now();
        let family = bundle.manifest().family().clone();
        let (loaded, decision_to_store) =
            load_unpersisted(&bundle, &known.facts, &opts.policy, plan, |v, bytes| {
                load_net(&family, v, bytes)
            })?;
        let session = self.with_chosen_threads(
            Session::new(loaded.model, family, loaded.variant),
            &known.facts,
            &mut notes,
        );
        let load_time = t.elapsed();

        // Persist what was learnt (a failure costs a probe or a selection next time, no more).
        let t = Instant::now();
        if let Some(entry) = &known.to_store
            && let Err(e) = self.device_cache().store(entry)
        {
            notes.push(format!("device facts not cached: {e}"));
        }
        if let Some((key, entry)) = decision_to_store
            && let Err(e) = decisions.store(&key, &entry)
        {
            notes.push(format!("decision not cached: {e}"));
        }
        let persist_time = t.elapsed();

        let timings = LaunchTimings {
            open_ms: 0.0,
            fingerprint_ms: ms(known.fingerprint_time),
            device_cache_ms: ms(known.cache_time),
            probe_ms: known.probe_time.map(ms),
            select_ms: ms(select_time),
            pick_ms: ms(pick),
            load_ms: ms(load_time),
            persist_ms: ms(persist_time),
            first_predict_ms: None,
            total_ms: ms(t0.elapsed()),
        };
        let report = LaunchReport {
            bundle_id: bundle.manifest().bundle_id().to_owned(),
            bundle_version: bundle.manifest().bundle_version().to_owned(),
            device: known.facts.clone(),
            hardware_fingerprint: known.fingerprint,
            probed: known.probe_time.is_some(),
            device_cache: known.cache_status,
            decision_cache,
            decision: loaded.decision.clone(),
            start_variant,
            variant: session.variant().id.clone(),
            fallback_events: loaded.events,
            latency_step_downs: Vec::new(),
            threads: session.threads(),
            notes,
            timings,
        };
        let watch = (opts.latency_window > 0)
            .then(|| AdaptiveLatency::for_decision(&loaded.decision, opts.latency_window));
        Ok(Launch {
            session,
            report,
            bundle,
            device: known.facts,
            policy: opts.policy.clone(),
            decisions,
            watch,
            window: opts.latency_window,
            threads_cap: opts.threads,
        })
    }

    /// The device: its cheap fingerprint, then the cached facts for it or, on a miss, a probe
    /// within what is left of the pick budget (the facts to cache are returned, not written).
    ///
    /// # Errors
    /// [`Error::InvalidDevice`] when the probe's facts cannot drive a selection.
    fn know_device(&self) -> Result<KnownDevice> {
        let opts = &self.options;
        let t = Instant::now();
        let fingerprint = hardware_fingerprint(self.reader.as_ref());
        let fingerprint_time = t.elapsed();

        let t = Instant::now();
        let lookup = self.device_cache().lookup(fingerprint, opts.threads);
        let cache_time = t.elapsed();
        let status = match lookup {
            DeviceLookup::Hit(d) => {
                return Ok(KnownDevice {
                    fingerprint,
                    facts: d.facts,
                    cache_status: CacheStatus::Hit,
                    to_store: None,
                    fingerprint_time,
                    cache_time,
                    probe_time: None,
                });
            }
            DeviceLookup::Stale { reason } => CacheStatus::Stale {
                reason: Some(reason),
            },
            DeviceLookup::Corrupt { reason } => CacheStatus::Corrupt { reason },
            DeviceLookup::Miss => CacheStatus::Miss,
        };
        let left_ms =
            f64::from(opts.pick_budget_ms) - ms(fingerprint_time + cache_time) - PICK_RESERVE_MS;
        let t = Instant::now();
        let profile = (self.probe)(
            &ProbeOptions {
                // Saturating float → int: negative or NaN becomes 0, then at least 1.
                budget_ms: (left_ms.floor() as u32).max(1),
                threads: opts.threads,
                ..ProbeOptions::default()
            },
            self.reader.as_ref(),
        );
        let probe_time = t.elapsed();
        let facts = as_stored(DeviceFacts::from(&profile));
        facts.validate()?;
        let to_store = CachedDevice {
            hardware_fingerprint: fingerprint,
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            probe_threads: opts.threads,
            facts: facts.clone(),
            measured: profile.measured,
            probed_at_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        Ok(KnownDevice {
            fingerprint,
            facts,
            cache_status: status,
            to_store: Some(to_store),
            fingerprint_time,
            cache_time,
            probe_time: Some(probe_time),
        })
    }
}

impl Launcher {
    /// `session` on the runtime's thread count for its variant on `device`
    /// ([`crate::inference_threads`], at most [`LaunchOptions::threads`]); on one thread, with a
    /// note, when those threads cannot be started.
    fn with_chosen_threads(
        &self,
        session: Session,
        device: &DeviceFacts,
        notes: &mut Vec<String>,
    ) -> Session {
        chosen_threads(session, device, self.options.threads, notes)
    }
}

/// See [`Launcher::with_chosen_threads`].
fn chosen_threads(
    mut session: Session,
    device: &DeviceFacts,
    cap: Option<usize>,
    notes: &mut Vec<String>,
) -> Session {
    let chosen = crate::select::inference_threads(session.variant(), device);
    let threads = cap.map_or(chosen, |c| chosen.min(c.max(1)));
    if let Err(e) = session.set_threads(threads) {
        notes.push(format!(
            "one image runs on {} thread(s), not {threads}: {e}",
            session.threads()
        ));
    }
    session
}

/// A launched app: the loaded [`Session`], the [`LaunchReport`], and the latency watch.
#[derive(Debug)]
pub struct Launch {
    session: Session,
    report: LaunchReport,
    bundle: Bundle,
    device: DeviceFacts,
    policy: Policy,
    decisions: DecisionCache,
    watch: Option<AdaptiveLatency>,
    window: usize,
    /// [`LaunchOptions::threads`].
    threads_cap: Option<usize>,
}

impl Launch {
    /// The loaded session.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The loaded session, for batch predictions (which the latency watch does not see).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The session, ending the launch.
    pub fn into_session(self) -> Session {
        self.session
    }

    /// The report so far.
    pub fn report(&self) -> &LaunchReport {
        &self.report
    }

    /// The bundle.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Classifies one image, timing it: the first call sets
    /// [`LaunchTimings::first_predict_ms`]; the first [`LaunchOptions::latency_window`] calls
    /// feed the latency watch, which may step down to the next smaller variant (persisted, and
    /// loaded at once for the following calls).
    ///
    /// # Errors
    /// A bad image (see [`Session::predict`]).
    pub fn predict(&mut self, image: ImageRef<'_>) -> Result<Prediction> {
        self.timed(|s| s.predict(image))
    }

    /// Softmax probabilities of every class for one image (the family's label order), timed
    /// and watched like [`Launch::predict`].
    ///
    /// # Errors
    /// A bad image (see [`Session::probabilities`]).
    pub fn probabilities(&mut self, image: ImageRef<'_>) -> Result<Vec<f32>> {
        self.timed(|s| s.probabilities(image))
    }

    /// Feeds a latency the app measured itself (ms, e.g. including its own pre- and
    /// post-processing) to the latency watch, as [`Launch::predict`] does with its own timing.
    /// Returns whether the launch stepped down to a smaller variant (persisted for the next
    /// launch, and loaded now). Ignored once the watch has decided, or when it is off.
    ///
    /// # Errors
    /// [`Error::BadInput`] for a negative or non-finite latency.
    pub fn report_latency(&mut self, latency_ms: f64) -> Result<bool> {
        if !latency_ms.is_finite() || latency_ms < 0.0 {
            return Err(Error::BadInput {
                reason: format!("latency {latency_ms} ms: must be a finite number ≥ 0"),
            });
        }
        let before = self.report.latency_step_downs.len();
        self.watch_latency(latency_ms);
        Ok(self.report.latency_step_downs.len() > before)
    }

    /// The predicted latency of the loaded variant on this device, ms (without the margin).
    pub fn predicted_latency_ms(&self) -> f64 {
        crate::select::predicted_latency_ms(
            self.bundle.manifest(),
            self.session.variant(),
            &self.device,
        )
    }

    fn timed<T>(&mut self, f: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        let t = Instant::now();
        let p = f(&mut self.session)?;
        let took = ms(t.elapsed());
        if self.report.timings.first_predict_ms.is_none() {
            self.report.timings.first_predict_ms = Some(took);
        }
        self.watch_latency(took);
        Ok(p)
    }

    fn watch_latency(&mut self, took: f64) {
        if let Some(watch) = &mut self.watch
            && watch.verdict() == LatencyVerdict::Collecting
        {
            let verdict = watch.record(took);
            if let LatencyVerdict::StepDown {
                median_ms,
                limit_ms,
            } = verdict
            {
                self.step_down(&verdict, median_ms, limit_ms);
            }
        }
    }

    fn step_down(&mut self, verdict: &LatencyVerdict, median_ms: f64, limit_ms: f64) {
        let from = self.session.variant().id.clone();
        match step_down_slow(
            &self.bundle,
            &self.device,
            &self.policy,
            &self.decisions,
            &from,
            verdict,
        ) {
            Ok(Some(to)) => {
                self.report.latency_step_downs.push(StepDown {
                    from: from.clone(),
                    to: to.clone(),
                    reason: StepDownReason::TooSlow {
                        median_ms,
                        limit_ms,
                    },
                });
                match Session::open(&self.bundle, &to) {
                    Ok(s) => {
                        let mut notes = Vec::new();
                        self.session = chosen_threads(s, &self.device, self.threads_cap, &mut notes);
                        self.report.notes.append(&mut notes);
                        self.report.threads = self.session.threads();
                        self.report.variant = to;
                        // Watch the smaller variant too: it may still be over budget.
                        self.watch = Some(AdaptiveLatency::for_decision(
                            &self.report.decision,
                            self.window,
                        ));
                    }
                    Err(e) => self.report.notes.push(format!(
                        "stepped down to `{to}` for the next launch, but cannot load it now: {e}"
                    )),
                }
            }
            Ok(None) => self.report.notes.push(format!(
                "`{from}` is over budget (median {median_ms:.2} ms > {limit_ms:.2} ms) but is the smallest variant"
            )),
            Err(e) => self
                .report
                .notes
                .push(format!("cannot record the step-down from `{from}`: {e}")),
        }
    }
}
