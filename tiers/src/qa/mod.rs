//! QA across emulated phones: for every phone profile, run the app's own launch path on this
//! host as that phone (its speed, its core count, its memory budget) and report a matrix, a chart
//! and a verdict.
//!
//! - [`cgroup`]: CPU-quota groups (cgroup v1 `cpu` or v2 `cpu.max`), named after this process and
//!   swept when it is gone;
//! - [`child`]: the measurement child process (a cold [`runtime::Launcher`] launch, or one given
//!   variant at T threads; K images; peak RSS) and the parent side that starts it, optionally
//!   inside a cgroup and pinned, under a resident-memory limit;
//! - [`report`]: per-phone results, the latency-model calibration on this host, markdown;
//! - [`chart`]: `qa.svg` / `qa.png`;
//! - [`run_qa`]: all of it, writing `qa.md`, `qa.json`, `qa.svg` and `qa.png`.
//!
//! Emulation of a phone on this host (`"emulation": "cpu-quota"`, where a cgroup is writable):
//! - speed: the child runs inside a cgroup whose CPU quota is phone score / host score of one CPU
//!   (the host score measured once at the start: the median of a few probes); phones as fast as this
//!   host or faster run unthrottled and are scaled;
//! - the child does a cold launch in a fresh app-data folder: its own probe (asked for throughput
//!   over 40 quota periods) measures the slowed host and the runtime picks by itself; QA reports
//!   that pick beside the profile's (`runtime::select` on the catalog profile) and the mean
//!   latency over 40 quota periods;
//! - cores: the child is pinned to min(the phone's cores, this host's) CPUs;
//! - memory: the child's resident memory is capped at the phone's memory budget (RAM ×
//!   [`Policy::memory_fraction`]), see [`child`].
//!
//! Without a writable cgroup (or with `emulate: false`), `"emulation": "scaled"`: the profile's
//! pick runs at min(big cores, host cores) threads and its latency is scaled by host score / phone
//! score, which cannot disagree with the selector.
//!
//! A phone fails when nothing fits its budgets, when its run is killed or fails, when the
//! measured latency is over the latency budget, or when the peak resident memory is over the
//! memory budget.

pub mod cgroup;
pub mod chart;
pub mod child;
pub mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use device_profiles::latency::predict_ms;
use device_profiles::{DeviceProfile, ProbeOptions};
use runtime::{Bundle, DeviceFacts, Policy, select, size_order};

pub use chart::write_charts;
pub use child::{ChildCommand, ChildOutcome, ChildReport, ChildRequest, measure, spawn};
pub use report::{Calibration, CalibrationRow, PhoneResult, QaReport, markdown};

use crate::error::{Error, Result, write_atomic};
use crate::host::HostInfo;
use child::{MIB, median};
use report::{CALIBRATION_GOAL_PCT, QA_FORMAT_VERSION};

/// How the memory limit is enforced (stated in every report).
pub const MEMORY_ENFORCEMENT: &str = "the child's resident memory (VmRSS) is polled every 3 ms \
     and the child is killed above the phone's memory budget (RAM × memory fraction, the \
     selector's budget); its peak (VmHWM) is then compared with the budget. RLIMIT_AS is not \
     used: a Rust + burn process reserves several hundred MB of address space it never touches \
     (allocator arenas, thread stacks; see VmPeak in qa.json), so an address-space cap would \
     fail for a reason a phone does not have — Android's low-memory killer acts on resident \
     memory.";

/// What to check, where, and how.
#[derive(Debug, Clone)]
pub struct QaOptions {
    /// The bundle folder.
    pub bundle: PathBuf,
    /// The phones (e.g. [`device_profiles::catalog::builtin`]).
    pub profiles: Vec<DeviceProfile>,
    /// The selection policy (the runtime's default, with any budget override).
    pub policy: Policy,
    /// Images per run.
    pub images: usize,
    /// Untimed predictions per run before timing.
    pub warmup: usize,
    /// The dataset folder whose test split is used.
    pub data: PathBuf,
    /// Where the report goes (created).
    pub out: PathBuf,
    /// How to start a measurement child.
    pub child: ChildCommand,
    /// Budget of one host probe, ms (the runtime's default: 20).
    pub probe_budget_ms: u32,
    /// Host probes at the start; the median score is the host score.
    pub probe_runs: usize,
    /// Run each phone's app launch under a CPU quota when a cgroup is writable
    /// (`cpu-quota` emulation); `false`, or no writable cgroup: `scaled`.
    pub emulate: bool,
    /// Thread counts of the calibration runs (empty: no calibration).
    pub calibration_threads: Vec<usize>,
    /// Longest a child may run.
    pub child_timeout: Duration,
}

impl QaOptions {
    /// Defaults for everything but the bundle, phones, data, output and child command:
    /// default policy, 200 images, 10 warm-up, the median of 5 probes of 20 ms, calibration at
    /// 1 and 2 threads, 120 s per child.
    pub fn new(
        bundle: PathBuf,
        profiles: Vec<DeviceProfile>,
        data: PathBuf,
        out: PathBuf,
        child: ChildCommand,
    ) -> Self {
        QaOptions {
            bundle,
            profiles,
            policy: Policy::default(),
            images: DEFAULT_IMAGES,
            warmup: child::DEFAULT_WARMUP,
            data,
            out,
            child,
            probe_budget_ms: device_profiles::probe::DEFAULT_BUDGET_MS,
            probe_runs: DEFAULT_PROBE_RUNS,
            emulate: true,
            calibration_threads: vec![1, 2],
            child_timeout: Duration::from_secs(120),
        }
    }
}

/// Default images per run.
pub const DEFAULT_IMAGES: usize = 200;

/// Default host probes (the median score is used).
pub const DEFAULT_PROBE_RUNS: usize = 5;

/// Name of the image pack written into the output folder for the children (removed at the end).
pub const IMAGE_PACK: &str = ".qa-images.pack";

/// Runs QA and writes `qa.md`, `qa.json`, `qa.svg` and `qa.png` into `options.out`.
/// `progress` receives one line per step (for stderr).
///
/// # Errors
/// An unreadable bundle or dataset, an invalid policy, a child program that cannot be started,
/// or a report that cannot be written. A phone that fails is not an error: it is a row with
/// `pass: false`.
pub fn run_qa(options: &QaOptions, progress: &mut dyn FnMut(&str)) -> Result<QaReport> {
    let start = Instant::now();
    let o = options;
    o.policy
        .validate()
        .map_err(|e| Error::runtime("invalid selection policy", e))?;
    let bundle = Bundle::open(&o.bundle)
        .map_err(|e| Error::runtime(format!("opening bundle {}", o.bundle.display()), e))?;
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, "create folder", e))?;

    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The host probes run before QA reads or writes anything (the image pack's writeback can
    // keep the other vCPU busy).
    let host = probe_host(o);
    let requested_probe_budget_ms =
        (host.probe_budget_ms != Some(o.probe_budget_ms)).then_some(o.probe_budget_ms);
    if let (Some(asked), Some(used)) = (requested_probe_budget_ms, host.probe_budget_ms) {
        progress(&format!(
            "host probes ran for {used} ms each, not the {asked} ms asked for: under emulation \
             the host is measured over {PERIODS} quota periods, as the children measure"
        ));
    }
    progress(&format!(
        "host {} ({host_cores} cores): score {:.1} (GEMM {:.1} GFLOP/s on one thread)",
        host.id,
        host.score,
        host.figures.map_or(0.0, |f| f.gemm_gflops_1t)
    ));

    let images = child::load_test_images(&o.data, o.images.max(1))?;
    let pack = o.out.join(IMAGE_PACK);
    child::write_pack(&pack, &images)?;
    let emulation = Emulation::detect(o.emulate, progress);
    let run = QaRun {
        o,
        bundle: &bundle,
        host_score: host.score,
        host_cores,
        pack,
        images: images.len(),
    };
    let phones = run.phones(&emulation, progress)?;
    let calibration = run.calibrate(progress)?;
    let _ = std::fs::remove_file(&run.pack);

    let manifest = bundle.manifest();
    let failed = phones.iter().filter(|p| !p.pass).count();
    let report = QaReport {
        format_version: QA_FORMAT_VERSION,
        bundle_dir: bundle.dir().to_path_buf(),
        bundle_id: manifest.bundle_id().to_string(),
        bundle_version: manifest.bundle_version().to_string(),
        reference: (
            manifest.reference().profile_id.clone(),
            manifest.reference().score,
        ),
        host,
        requested_probe_budget_ms,
        latency_budget_ms: o.policy.latency_budget_ms(manifest),
        policy: o.policy.clone(),
        images: run.images,
        warmup: o.warmup,
        data: o.data.clone(),
        memory_enforcement: MEMORY_ENFORCEMENT.to_string(),
        emulation: emulation.kind.to_string(),
        emulation_note: emulation.note,
        runtime_agrees: runtime_agreement(&phones),
        passed: phones.len() - failed,
        failed,
        phones,
        calibration,
        wall_s: start.elapsed().as_secs_f64(),
    };
    write_report(&o.out, &report)?;
    Ok(report)
}

/// The host score QA scales and sizes quotas by: the median of `o.probe_runs` probes
/// ([`probe_options`]).
fn probe_host(o: &QaOptions) -> HostInfo {
    HostInfo::probe(&probe_options(o), o.probe_runs)
}

/// The shortest host probe under emulation, ms: [`PERIODS`] quota periods of 10 ms.
pub const EMULATION_MIN_PROBE_MS: u32 = (PERIODS * 10.0) as u32;

/// How QA probes the host. Under emulation the host is measured as the children measure the
/// slowed host: throughput over as long as their probes last (40 periods of 10 ms,
/// [`EMULATION_MIN_PROBE_MS`]), so that a quota of phone score / host score gives the child the
/// phone's score. This VM runs short bursts ~35% faster than it sustains; a 20 ms
/// fastest-repetition probe would set every quota too tight. So a shorter
/// [`QaOptions::probe_budget_ms`] (the CLI's default `--probe-ms` is the runtime's 20 ms) is
/// raised to that, and the report says so ([`QaReport::requested_probe_budget_ms`]).
fn probe_options(o: &QaOptions) -> ProbeOptions {
    if o.emulate {
        ProbeOptions {
            budget_ms: o.probe_budget_ms.max(EMULATION_MIN_PROBE_MS),
            threads: None,
            statistic: device_profiles::bench::Statistic::Throughput,
        }
    } else {
        ProbeOptions {
            budget_ms: o.probe_budget_ms,
            threads: None,
            statistic: device_profiles::bench::Statistic::Fastest,
        }
    }
}

/// How phones are emulated on this host: under a CPU quota where a cgroup is writable (and
/// emulation is on), else by scaling host latency.
struct Emulation {
    /// The cgroup limiter, or why there is none.
    limiter: std::result::Result<cgroup::CpuLimiter, String>,
    /// `cpu-quota` or `scaled`.
    kind: &'static str,
    /// What the emulation does and cannot do (for the report).
    note: String,
}

impl Emulation {
    /// Finds a writable cgroup when `emulate`, sweeping groups left by killed QA runs.
    fn detect(emulate: bool, progress: &mut dyn FnMut(&str)) -> Self {
        let limiter = if emulate {
            cgroup::CpuLimiter::detect()
        } else {
            Err("turned off (--no-emulation)".to_string())
        };
        let (kind, note) = match &limiter {
            Ok(l) => {
                let stale = l.sweep_stale();
                if stale > 0 {
                    progress(&format!("removed {stale} cgroup(s) left by killed QA runs"));
                }
                (
                    "cpu-quota",
                    format!("{EMULATION_CPU_QUOTA} ({:?} cgroup)", l.version()),
                )
            }
            Err(why) => ("scaled", format!("{EMULATION_SCALED} No CPU quota: {why}.")),
        };
        progress(&format!("emulation: {kind}"));
        Emulation {
            limiter,
            kind,
            note,
        }
    }
}

/// What every child of one QA run shares.
struct QaRun<'a> {
    o: &'a QaOptions,
    bundle: &'a Bundle,
    host_score: f64,
    host_cores: usize,
    /// The image pack the children read.
    pack: PathBuf,
    /// Images in the pack.
    images: usize,
}

impl QaRun<'_> {
    /// A child's request: `variant` at `threads` threads over the pack.
    fn request(&self, variant: &str, threads: usize) -> ChildRequest {
        ChildRequest {
            bundle: self.bundle.dir().to_path_buf(),
            variant: variant.to_string(),
            threads,
            images: self.images,
            data: self.pack.clone(),
            warmup: self.o.warmup,
            launch: None,
        }
    }

    /// One row per phone: the selector's pick on its profile, then its child's run (its own
    /// cold launch under a quota, or the pick at its thread count, scaled).
    fn phones(
        &self,
        emulation: &Emulation,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Vec<PhoneResult>> {
        let o = self.o;
        let manifest = self.bundle.manifest();
        let mut phones = Vec::with_capacity(o.profiles.len());
        for p in &o.profiles {
            let facts = DeviceFacts::from(p);
            let decision = select(manifest, &facts, &o.policy)
                .map_err(|e| Error::runtime(format!("selecting a variant for `{}`", p.id), e))?;
            let threads = (p.big_core_count() as usize).clamp(1, self.host_cores);
            let mem_budget = o.policy.memory_budget_bytes(&facts);
            let run = match &emulation.limiter {
                Ok(l) => {
                    let cpus = (p.core_count() as usize).clamp(1, self.host_cores);
                    let phone = EmulatedPhone {
                        facts: &facts,
                        host_score: self.host_score,
                        mem_budget,
                        cpus,
                    };
                    launch_as_phone(o, l, &self.request(&decision.chosen, 1), &phone)?
                }
                Err(_) => PhoneRun {
                    threads,
                    outcome: child::spawn(
                        &o.child,
                        &self.request(&decision.chosen, threads),
                        Some(mem_budget),
                        o.child_timeout,
                    )?,
                    quota: None,
                    scale_from_host: true,
                },
            };
            let case = PhoneCase {
                profile: p,
                facts: &facts,
                decision,
                mem_budget,
            };
            let row = phone_result(case, run, self.host_score);
            progress(&phone_line(&row));
            phones.push(row);
        }
        Ok(phones)
    }

    /// The latency model on this host: each variant (smallest first) at each of
    /// `o.calibration_threads` (at most this host's cores), unthrottled; `None` when no thread
    /// count is asked for.
    fn calibrate(&self, progress: &mut dyn FnMut(&str)) -> Result<Option<Calibration>> {
        if self.o.calibration_threads.is_empty() {
            return Ok(None);
        }
        let mut threads: Vec<usize> = self
            .o
            .calibration_threads
            .iter()
            .map(|t| (*t).clamp(1, self.host_cores))
            .collect();
        threads.dedup();
        let manifest = self.bundle.manifest();
        let mut rows = Vec::new();
        for v in size_order(manifest) {
            rows.push(self.calibration_row(v, &threads, progress)?);
        }
        let reference = manifest.reference();
        Ok(Some(summarise_calibration(
            rows,
            threads,
            self.host_score,
            (&reference.profile_id, reference.score),
        )))
    }

    /// Variant `v` measured at each of `threads` and predicted from the manifest.
    fn calibration_row(
        &self,
        v: &runtime::Variant,
        threads: &[usize],
        progress: &mut dyn FnMut(&str),
    ) -> Result<CalibrationRow> {
        let reference = self.bundle.manifest().reference();
        let predicted_at =
            |t: usize| predict_ms(v.latency_ms_at(t), reference.score, self.host_score);
        let predicted = predicted_at(1);
        let mut measured_ms = Vec::new();
        let mut error_pct = Vec::new();
        for &t in threads {
            let predicted = predicted_at(t);
            let out = child::spawn(
                &self.o.child,
                &self.request(&v.id, t),
                None,
                self.o.child_timeout,
            )?;
            let m = out.report().map(|r| r.median_ms).filter(|m| *m > 0.0);
            if let Some(f) = out.failure() {
                progress(&format!("calibration `{}` at {t} thread(s): {f}", v.id));
            }
            measured_ms.push((t, m));
            error_pct.push((t, m.map(|m| (predicted - m) / m * 100.0)));
        }
        progress(&format!(
            "calibration `{}`: predicted {:.3} ms, measured {}",
            v.id,
            predicted,
            measured_ms
                .iter()
                .map(|(t, m)| format!(
                    "{t}T {}",
                    m.map_or_else(|| "—".into(), |m| format!("{m:.3} ms"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Ok(CalibrationRow {
            variant: v.id.clone(),
            macs: v.macs,
            reference_ms: v.latency_ms,
            predicted_ms: predicted,
            predicted_by_threads: threads.iter().map(|&t| (t, predicted_at(t))).collect(),
            measured_ms,
            error_pct,
        })
    }
}

/// One progress line for a phone's row.
fn phone_line(row: &PhoneResult) -> String {
    format!(
        "{:<26} profile {:<14} runtime {:<14} predicted {:>7.2} ms  measured {:>7}  {}",
        row.id,
        row.picked_by_profile,
        row.picked_by_runtime.as_deref().unwrap_or("—"),
        row.predicted_ms,
        row.measured_ms
            .map_or_else(|| "—".into(), |e| format!("{e:.2} ms")),
        if row.pass {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", row.reasons.join("; "))
        }
    )
}

/// (phones whose runtime picked what the profile predicts, phones where the runtime picked).
fn runtime_agreement(phones: &[PhoneResult]) -> (usize, usize) {
    let emulated: Vec<&PhoneResult> = phones
        .iter()
        .filter(|p| p.picked_by_runtime.is_some())
        .collect();
    (
        emulated
            .iter()
            .filter(|p| p.picked_by_runtime.as_deref() == Some(p.picked_by_profile.as_str()))
            .count(),
        emulated.len(),
    )
}

/// The calibration from its rows: median |error| per thread count and overall, and the host
/// score under which the predictions would equal the measurements (the median over rows).
fn summarise_calibration(
    rows: Vec<CalibrationRow>,
    threads: Vec<usize>,
    host_score: f64,
    (reference_profile, reference_score): (&str, f64),
) -> Calibration {
    let abs_errors = |t: Option<usize>| -> Option<f64> {
        let e: Vec<f64> = rows
            .iter()
            .flat_map(|r| r.error_pct.iter())
            .filter(|(tt, _)| t.is_none_or(|t| *tt == t))
            .filter_map(|(_, e)| e.map(f64::abs))
            .collect();
        (!e.is_empty()).then(|| median(&e))
    };
    let implied: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            r.measured_ms.iter().filter_map(|(t, m)| {
                let host_ms = r
                    .predicted_by_threads
                    .iter()
                    .find(|(pt, _)| pt == t)
                    .map_or(r.predicted_ms, |(_, p)| *p);
                // the host score under which the prediction would equal the measurement
                m.map(|m| host_score * host_ms / m)
            })
        })
        .collect();
    Calibration {
        implied_host_score: (!implied.is_empty()).then(|| median(&implied)),
        reference_profile: reference_profile.to_string(),
        reference_score,
        host_score,
        median_abs_error_pct: threads.iter().map(|t| (*t, abs_errors(Some(*t)))).collect(),
        overall_median_abs_error_pct: abs_errors(None),
        threads,
        rows,
        goal_pct: CALIBRATION_GOAL_PCT,
    }
}

/// Writes `qa.md`, `qa.json`, `qa.svg` and `qa.png` for `report` into `dir`.
///
/// # Errors
/// I/O or encoding errors, naming the file.
pub fn write_report(dir: &Path, report: &QaReport) -> Result<()> {
    write_atomic(&dir.join("qa.md"), markdown(report).as_bytes())?;
    let json = serde_json::to_string_pretty(report).map_err(|source| Error::Json {
        path: dir.join("qa.json"),
        what: "QA report".into(),
        source,
    })?;
    write_atomic(&dir.join("qa.json"), json.as_bytes())?;
    write_charts(dir, report)
}

/// How one phone's child ran.
struct PhoneRun {
    /// Inference threads of the child.
    threads: usize,
    /// How it ended.
    outcome: ChildOutcome,
    /// The CPU quota it ran under.
    quota: Option<cgroup::CpuQuota>,
    /// Whether its latency is host latency to be scaled to the phone (`scaled` emulation, or a
    /// phone faster than this host), rather than the phone's latency itself.
    scale_from_host: bool,
}

/// The phone a child plays.
#[derive(Debug, Clone, Copy)]
struct EmulatedPhone<'a> {
    /// Its facts (score, RAM).
    facts: &'a DeviceFacts,
    /// This host's score.
    host_score: f64,
    /// Its memory budget, bytes.
    mem_budget: u64,
    /// CPUs the child may use.
    cpus: usize,
}

/// Runs the app's cold launch as phone `facts` in a child: in a cgroup whose CPU quota is the
/// phone's speed over this host's, pinned to the phone's core count (at most this host's), in a
/// fresh app-data folder, under the phone's memory budget. A phone as fast as this host or faster
/// runs without a quota and its latency is scaled.
fn launch_as_phone(
    o: &QaOptions,
    limiter: &cgroup::CpuLimiter,
    base: &ChildRequest,
    phone: &EmulatedPhone<'_>,
) -> Result<PhoneRun> {
    let EmulatedPhone {
        facts,
        host_score,
        mem_budget,
        cpus,
    } = *phone;
    let fraction = facts.score / host_score;
    let quota = cgroup::CpuQuota::for_fraction(fraction);
    let period_ms = quota.map_or(10.0, |q| q.period_us as f64 / 1e3);
    let app_dir = o.out.join(format!(".qa-app-{}", facts.id));
    let _ = std::fs::remove_dir_all(&app_dir);
    std::fs::create_dir_all(&app_dir).map_err(|e| Error::io(&app_dir, "create folder", e))?;
    let mut req = base.clone();
    req.launch = Some(child::LaunchRequest {
        app_dir: app_dir.clone(),
        // the probe and the timed part each span PERIODS quota periods
        pick_budget_ms: ((PERIODS * period_ms).ceil() as u32)
            .max(device_profiles::probe::DEFAULT_BUDGET_MS),
        latency_budget_ms: o.policy.latency_budget_ms,
        min_timed_ms: PERIODS * period_ms,
    });
    let group = match quota {
        Some(q) => Some(limiter.create(q).map_err(|e| {
            Error::io(
                Path::new("/sys/fs/cgroup"),
                "create a CPU-limited cgroup",
                e,
            )
        })?),
        None => None,
    };
    let wrap = group.as_ref().map(|g| child::Wrap {
        procs_file: g.procs_file(),
        cpus,
    });
    let outcome = child::spawn_wrapped(
        &o.child,
        &req,
        Some(mem_budget),
        o.child_timeout,
        wrap.as_ref(),
    );
    drop(group);
    let _ = std::fs::remove_dir_all(&app_dir);
    Ok(PhoneRun {
        threads: 1,
        outcome: outcome?,
        quota,
        scale_from_host: quota.is_none(),
    })
}

/// Quota periods the probe and the timed predictions each span under `cpu-quota` emulation.
pub const PERIODS: f64 = 40.0;

/// The `emulation_note` of `cpu-quota` runs.
pub const EMULATION_CPU_QUOTA: &str = "Each phone's app launch (fingerprint, probe, select, load, \
     predict; caches in a fresh folder) ran in a child inside a cgroup whose CPU quota is the \
     phone's speed over this host's (phone score / host score, one core), pinned to the phone's \
     core count (at most this host's), under the phone's memory budget; the runtime's own probe \
     measured the slowed host and picked by itself, and the latency is the mean over 40 quota \
     periods. A quota slows every instruction alike: it cannot reproduce a phone's smaller \
     caches, slower memory or in-order pipeline (the speed model accounts for those only on \
     average), thermal throttling, or big.LITTLE scheduling; the runtime sees this host's RAM \
     (the phone's budget is enforced by killing the child above it). Phones as fast as this host \
     or faster run unthrottled and are scaled.";

/// The `emulation_note` of `scaled` runs.
pub const EMULATION_SCALED: &str = "Latency measured on this host at the phone's thread count, \
     times host score / phone score; the selector was called with the phone's profile, not the \
     app's launch path, so this cannot disagree with the selector's prediction.";

/// Why a phone fails, one line each (empty: it passes): nothing fits its budgets, its child
/// failed or was killed, the latency it measured (`emulated_ms`) is over the budget, or its
/// peak resident memory is over `mem_budget`.
fn failures(
    decision: &runtime::Decision,
    outcome: &ChildOutcome,
    emulated_ms: Option<f64>,
    mem_budget: u64,
) -> Vec<String> {
    let mut reasons = Vec::new();
    if !decision.fits {
        let why: Vec<String> = decision.shortfall.iter().map(ToString::to_string).collect();
        reasons.push(format!(
            "no variant fits this phone (smallest `{}` taken): {}",
            decision.chosen,
            why.join("; ")
        ));
    }
    if let Some(f) = outcome.failure() {
        reasons.push(f);
    }
    if let Some(e) = emulated_ms
        && e > decision.latency_budget_ms
    {
        reasons.push(format!(
            "measured latency {e:.2} ms over the budget of {:.2} ms",
            decision.latency_budget_ms
        ));
    }
    if let Some(r) = outcome.report()
        && r.peak_rss_bytes > mem_budget
    {
        reasons.push(format!(
            "peak resident memory {:.1} MB over the memory budget of {:.1} MB",
            r.peak_rss_bytes as f64 / MIB,
            mem_budget as f64 / MIB
        ));
    }
    reasons
}

/// One phone as the selector sees it, before its child runs.
struct PhoneCase<'a> {
    /// Its catalog profile.
    profile: &'a DeviceProfile,
    /// The runtime's view of it.
    facts: &'a DeviceFacts,
    /// The selector's decision on its profile.
    decision: runtime::Decision,
    /// Its memory budget (the child's resident-memory limit), bytes.
    mem_budget: u64,
}

/// One phone's row and verdict from its decision and its child's outcome: it fails when nothing
/// fits, when the child failed (or was killed), when the measured latency is over the budget,
/// or when the peak resident memory is over the memory budget.
fn phone_result(case: PhoneCase<'_>, run: PhoneRun, host_score: f64) -> PhoneResult {
    let PhoneCase {
        profile: p,
        facts,
        decision,
        mem_budget,
    } = case;
    let PhoneRun {
        threads,
        outcome,
        quota,
        scale_from_host,
    } = run;
    let report = outcome.report();
    let (host_ms, emulated_ms) = if scale_from_host {
        let host_ms = report.map(|r| {
            if r.mean_ms > 0.0 && r.picked_by_runtime.is_some() {
                r.mean_ms
            } else {
                r.median_ms
            }
        });
        (
            host_ms,
            host_ms.map(|m| predict_ms(m, host_score, facts.score)),
        )
    } else {
        (None, report.map(|r| r.mean_ms))
    };
    let error_pct = emulated_ms
        .filter(|e| *e > 0.0)
        .map(|e| (decision.predicted_latency_ms - e) / e * 100.0);
    let peak_rss_bytes = match &outcome {
        ChildOutcome::Done { report } => Some(report.peak_rss_bytes),
        ChildOutcome::OverMemory { rss_bytes, .. } => Some(*rss_bytes),
        ChildOutcome::Failed { rss_bytes, .. } => Some(*rss_bytes).filter(|b| *b > 0),
        ChildOutcome::TimedOut { .. } => None,
    };
    let reasons = failures(&decision, &outcome, emulated_ms, mem_budget);
    let decision_chosen = decision.chosen.clone();
    PhoneResult {
        id: p.id.clone(),
        name: p.name.clone(),
        tier: p.tier,
        ram_bytes: p.ram_bytes,
        cores: p.core_count(),
        big_cores: p.big_core_count(),
        threads,
        score: p.score,
        predicted_ms: decision.predicted_latency_ms,
        latency_budget_ms: decision.latency_budget_ms,
        memory_budget_bytes: mem_budget,
        memory_need_bytes: decision.memory_bytes,
        decision,
        host_ms,
        emulated_ms,
        error_pct,
        peak_rss_bytes,
        accuracy: report.map(|r| r.accuracy),
        picked_by_profile: decision_chosen,
        picked_by_runtime: report.and_then(|r| r.picked_by_runtime.clone()),
        runtime_score: report.and_then(|r| r.runtime_score),
        measured_ms: emulated_ms,
        quota,
        pass: reasons.is_empty(),
        reasons,
        outcome,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A QA report of three catalog phones without running anything: `small` passes on the
    /// low-end phone, `mid` is killed over memory, `large` is over the latency budget on the
    /// flagship; a calibration of two variants at 1 and 2 threads.
    pub(crate) fn sample_report() -> QaReport {
        let catalog = device_profiles::catalog::builtin().unwrap();
        let profile = |id: &str| catalog.iter().find(|p| p.id == id).unwrap().clone();
        let host_score = 200.0;
        let mut phones = Vec::new();
        for (id, variant, outcome) in [
            ("samsung-galaxy-a01-core", "small", done(30)),
            (
                "xiaomi-redmi-note-11",
                "mid",
                ChildOutcome::OverMemory {
                    rss_bytes: 45 << 20,
                    limit_bytes: 40 << 20,
                },
            ),
            ("xiaomi-14", "large", done(20)),
        ] {
            let p = profile(id);
            let facts = DeviceFacts::from(&p);
            let mut d = decision(true);
            d.chosen = variant.into();
            d.device_id = id.into();
            if variant == "large" {
                d.predicted_latency_ms = 9.0;
            }
            let outcome = match outcome {
                ChildOutcome::Done { mut report } if variant == "large" => {
                    // 100 ms on the host: over the 10 ms budget on the flagship too
                    report.median_ms = 100.0;
                    report.variant = variant.into();
                    ChildOutcome::Done { report }
                }
                o => o,
            };
            let case = PhoneCase {
                profile: &p,
                facts: &facts,
                decision: d,
                mem_budget: 40 << 20,
            };
            let run = PhoneRun {
                threads: 1,
                outcome,
                quota: None,
                scale_from_host: true,
            };
            phones.push(phone_result(case, run, host_score));
        }
        let row = |id: &str, predicted: f64, measured: f64| CalibrationRow {
            variant: id.into(),
            macs: 1_500_000,
            reference_ms: predicted * 2.0,
            predicted_ms: predicted,
            predicted_by_threads: vec![(1, predicted), (2, predicted / 1.8)],
            measured_ms: vec![(1, Some(measured)), (2, None)],
            error_pct: vec![
                (1, Some((predicted - measured) / measured * 100.0)),
                (2, None),
            ],
        };
        let calibration = summarise_calibration(
            vec![row("small", 0.5, 0.45), row("large", 2.0, 2.5)],
            vec![1, 2],
            host_score,
            ("ref-phone", 100.0),
        );
        let mut host = HostInfo::named("Test CPU | 2 cores", host_score);
        host.id = "host-0123".into();
        host.cores = Some(2);
        host.probe_budget_ms = Some(400);
        host.probe_scores = vec![190.0, 200.0, 210.0];
        let failed = phones.iter().filter(|p| !p.pass).count();
        QaReport {
            format_version: QA_FORMAT_VERSION,
            bundle_dir: "bundle".into(),
            bundle_id: "tiny".into(),
            bundle_version: "00ff".into(),
            reference: ("ref-phone".into(), 100.0),
            host,
            requested_probe_budget_ms: None,
            policy: Policy::default(),
            latency_budget_ms: 10.0,
            images: 16,
            warmup: 2,
            data: "data".into(),
            memory_enforcement: MEMORY_ENFORCEMENT.into(),
            emulation: "scaled".into(),
            emulation_note: format!("{EMULATION_SCALED} No CPU quota: turned off."),
            runtime_agrees: runtime_agreement(&phones),
            passed: phones.len() - failed,
            failed,
            phones,
            calibration: Some(calibration),
            wall_s: 12.5,
        }
    }

    #[test]
    fn a_short_probe_budget_is_raised_under_emulation_only_and_the_report_says_so() {
        let mut o = QaOptions::new(
            "b".into(),
            vec![],
            "d".into(),
            "o".into(),
            ChildCommand {
                program: "x".into(),
                args: vec![],
            },
        );
        assert_eq!(o.probe_budget_ms, device_profiles::probe::DEFAULT_BUDGET_MS);
        assert!(o.probe_budget_ms < EMULATION_MIN_PROBE_MS);
        assert_eq!(probe_options(&o).budget_ms, EMULATION_MIN_PROBE_MS);
        o.probe_budget_ms = 900;
        assert_eq!(probe_options(&o).budget_ms, 900);
        o.emulate = false;
        o.probe_budget_ms = 20;
        assert_eq!(probe_options(&o).budget_ms, 20);

        let mut r = sample_report();
        assert!(!markdown(&r).contains("raised"));
        r.requested_probe_budget_ms = Some(20);
        let md = markdown(&r);
        assert!(
            md.contains(
                "The probe budget was raised from the 20 ms asked for (`--probe-ms`) to 400 ms"
            ),
            "{md}"
        );
    }

    #[test]
    fn the_sample_report_has_a_pass_and_two_kinds_of_failure() {
        let r = sample_report();
        let pass: Vec<bool> = r.phones.iter().map(|p| p.pass).collect();
        assert_eq!(pass, [true, false, false], "{:#?}", r.phones);
        assert!(
            r.phones[1].reasons[0].contains("killed"),
            "{:?}",
            r.phones[1]
        );
        assert!(
            r.phones[2].reasons[0].contains("over the budget"),
            "{:?}",
            r.phones[2]
        );
    }

    fn decision(fits: bool) -> runtime::Decision {
        runtime::Decision {
            bundle_id: "b".into(),
            bundle_version: "1".into(),
            device_id: "phone".into(),
            chosen: "small".into(),
            threads: 1,
            fits,
            predicted_latency_ms: 4.0,
            memory_bytes: 30 << 20,
            latency_budget_ms: 10.0,
            safety_margin: 0.1,
            memory_budget_bytes: 50 << 20,
            accuracy_source: runtime::AccuracySource::Test,
            accuracy: Some(0.8),
            shortfall: if fits {
                vec![]
            } else {
                vec![runtime::RejectReason::TooBig {
                    need_bytes: 30 << 20,
                    budget_bytes: 20 << 20,
                }]
            },
            reasons: vec![],
            fallback_order: vec!["small".into()],
        }
    }

    fn done(peak_rss_mib: u64) -> ChildOutcome {
        ChildOutcome::Done {
            report: ChildReport {
                variant: "small".into(),
                threads_requested: 1,
                threads: 1,
                images: 10,
                median_ms: 2.0,
                p10_ms: 1.9,
                p90_ms: 2.2,
                accuracy: 0.8,
                correct: 8,
                load_ms: 1.0,
                peak_rss_bytes: peak_rss_mib << 20,
                peak_vm_bytes: 1 << 30,
                mean_ms: 2.0,
                picked_by_runtime: None,
                runtime_score: None,
                launch_report: None,
            },
        }
    }

    #[test]
    fn a_phone_passes_only_within_every_budget_and_says_each_failure() {
        let budget = 40 << 20;
        assert!(failures(&decision(true), &done(30), Some(9.9), budget).is_empty());

        let slow = failures(&decision(true), &done(30), Some(10.5), budget);
        assert_eq!(slow.len(), 1, "{slow:?}");
        assert!(
            slow[0].contains("10.50 ms over the budget of 10.00 ms"),
            "{slow:?}"
        );

        let fat = failures(&decision(true), &done(41), Some(5.0), budget);
        assert_eq!(fat.len(), 1, "{fat:?}");
        assert!(
            fat[0].contains("41.0 MB over the memory budget of 40.0 MB"),
            "{fat:?}"
        );

        let nothing_fits = failures(&decision(false), &done(30), Some(5.0), budget);
        assert_eq!(nothing_fits.len(), 1, "{nothing_fits:?}");
        assert!(
            nothing_fits[0].contains("no variant fits") && nothing_fits[0].contains("`small`"),
            "{nothing_fits:?}"
        );

        let killed = ChildOutcome::OverMemory {
            rss_bytes: 45 << 20,
            limit_bytes: budget,
        };
        let k = failures(&decision(true), &killed, None, budget);
        assert_eq!(k.len(), 1, "{k:?}");
        assert!(k[0].contains("killed") && k[0].contains("45.0 MB"), "{k:?}");

        let all = failures(&decision(false), &done(41), Some(11.0), budget);
        assert_eq!(all.len(), 3, "{all:?}");
    }

    #[test]
    fn calibration_errors_and_implied_score_are_medians_over_rows() {
        let row = |id: &str, predicted: f64, measured: [f64; 2]| CalibrationRow {
            variant: id.into(),
            macs: 1,
            reference_ms: 1.0,
            predicted_ms: predicted,
            predicted_by_threads: vec![(1, predicted), (2, predicted / 2.0)],
            measured_ms: vec![(1, Some(measured[0])), (2, Some(measured[1]))],
            error_pct: vec![
                (1, Some((predicted - measured[0]) / measured[0] * 100.0)),
                (
                    2,
                    Some((predicted / 2.0 - measured[1]) / measured[1] * 100.0),
                ),
            ],
        };
        // errors at 1 thread: +10%, -20%, +50%; at 2 threads: 0%, 0%, 0%
        let rows = vec![
            row("a", 1.1, [1.0, 0.55]),
            row("b", 0.8, [1.0, 0.4]),
            row("c", 3.0, [2.0, 1.5]),
        ];
        let c = summarise_calibration(rows, vec![1, 2], 100.0, ("ref", 50.0));
        let at = |t: usize| {
            c.median_abs_error_pct
                .iter()
                .find(|(tt, _)| *tt == t)
                .and_then(|(_, e)| *e)
                .unwrap()
        };
        assert!((at(1) - 20.0).abs() < 1e-9, "{c:?}");
        assert!(at(2).abs() < 1e-9, "{c:?}");
        // |errors| overall: 10, 20, 50, 0, 0, 0 → median 5
        assert!((c.overall_median_abs_error_pct.unwrap() - 5.0).abs() < 1e-9);
        // implied scores 100 · predicted / measured: 110, 80, 150, 100, 100, 100 → median 100
        assert!((c.implied_host_score.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(
            (c.reference_profile.as_str(), c.reference_score),
            ("ref", 50.0)
        );
    }
}
