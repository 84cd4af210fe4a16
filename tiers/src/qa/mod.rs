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
    let manifest = bundle.manifest();
    std::fs::create_dir_all(&o.out).map_err(|e| Error::io(&o.out, "create folder", e))?;

    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The host probes run before QA reads or writes anything (the image pack's writeback can
    // keep the other vCPU busy).
    // Under emulation the host is measured as the children measure the slowed host: throughput
    // over as long as their probes last (40 periods of 10 ms), so that a quota of phone score /
    // host score gives the child the phone's score. This VM runs short bursts ~35% faster than it
    // sustains; a 20 ms fastest-repetition probe would set every quota too tight.
    let sustained = o.emulate;
    let probe = ProbeOptions {
        budget_ms: if sustained {
            o.probe_budget_ms.max((PERIODS * 10.0) as u32)
        } else {
            o.probe_budget_ms
        },
        threads: None,
        statistic: if sustained {
            device_profiles::bench::Statistic::Throughput
        } else {
            device_profiles::bench::Statistic::Fastest
        },
    };
    // The median probe (a quota from a peak the host does not sustain would be too tight).
    let host = HostInfo::probe(&probe, o.probe_runs);
    progress(&format!(
        "host {} ({host_cores} cores): score {:.1} (GEMM {:.1} GFLOP/s on one thread)",
        host.id,
        host.score,
        host.figures.map_or(0.0, |f| f.gemm_gflops_1t)
    ));

    let images = child::load_test_images(&o.data, o.images.max(1))?;
    let pack = o.out.join(IMAGE_PACK);
    child::write_pack(&pack, &images)?;
    let k = images.len();

    let request = |variant: &str, threads: usize| ChildRequest {
        bundle: bundle.dir().to_path_buf(),
        variant: variant.to_string(),
        threads,
        images: k,
        data: pack.clone(),
        warmup: o.warmup,
        launch: None,
    };

    let limiter = if o.emulate {
        cgroup::CpuLimiter::detect()
    } else {
        Err("turned off (--no-emulation)".to_string())
    };
    let (emulation, emulation_note) = match &limiter {
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
    progress(&format!("emulation: {emulation}"));

    let mut phones = Vec::with_capacity(o.profiles.len());
    for p in &o.profiles {
        let facts = DeviceFacts::from(p);
        let decision = select(manifest, &facts, &o.policy)
            .map_err(|e| Error::runtime(format!("selecting a variant for `{}`", p.id), e))?;
        let threads = (p.big_core_count() as usize).clamp(1, host_cores);
        let mem_budget = o.policy.memory_budget_bytes(&facts);
        let run = match &limiter {
            Ok(l) => {
                let cpus = (p.core_count() as usize).clamp(1, host_cores);
                let phone = EmulatedPhone {
                    facts: &facts,
                    host_score: host.score,
                    mem_budget,
                    cpus,
                };
                launch_as_phone(o, l, &request(&decision.chosen, 1), &phone)?
            }
            Err(_) => PhoneRun {
                threads,
                outcome: child::spawn(
                    &o.child,
                    &request(&decision.chosen, threads),
                    Some(mem_budget),
                    o.child_timeout,
                )?,
                quota: None,
                scale_from_host: true,
            },
        };
        let row = phone_result(p, &facts, decision, mem_budget, run, host.score);
        progress(&format!(
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
        ));
        phones.push(row);
    }
    let emulated: Vec<&PhoneResult> = phones
        .iter()
        .filter(|p| p.picked_by_runtime.is_some())
        .collect();
    let runtime_agrees = (
        emulated
            .iter()
            .filter(|p| p.picked_by_runtime.as_deref() == Some(p.picked_by_profile.as_str()))
            .count(),
        emulated.len(),
    );

    let calibration = if o.calibration_threads.is_empty() {
        None
    } else {
        let mut threads: Vec<usize> = o
            .calibration_threads
            .iter()
            .map(|t| (*t).clamp(1, host_cores))
            .collect();
        threads.dedup();
        let reference = manifest.reference();
        let mut rows = Vec::new();
        for v in size_order(manifest) {
            let predicted_at =
                |t: usize| predict_ms(v.latency_ms_at(t), reference.score, host.score);
            let predicted = predicted_at(1);
            let mut measured_ms = Vec::new();
            let mut error_pct = Vec::new();
            for &t in &threads {
                let predicted = predicted_at(t);
                let out = child::spawn(&o.child, &request(&v.id, t), None, o.child_timeout)?;
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
            rows.push(CalibrationRow {
                variant: v.id.clone(),
                macs: v.macs,
                reference_ms: v.latency_ms,
                predicted_ms: predicted,
                predicted_by_threads: threads.iter().map(|&t| (t, predicted_at(t))).collect(),
                measured_ms,
                error_pct,
            });
        }
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
                    m.map(|m| host.score * host_ms / m)
                })
            })
            .collect();
        Some(Calibration {
            implied_host_score: (!implied.is_empty()).then(|| median(&implied)),
            reference_profile: reference.profile_id.clone(),
            reference_score: reference.score,
            host_score: host.score,
            median_abs_error_pct: threads.iter().map(|t| (*t, abs_errors(Some(*t)))).collect(),
            overall_median_abs_error_pct: abs_errors(None),
            threads,
            rows,
            goal_pct: CALIBRATION_GOAL_PCT,
        })
    };
    let _ = std::fs::remove_file(&pack);

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
        latency_budget_ms: o.policy.latency_budget_ms(manifest),
        policy: o.policy.clone(),
        images: k,
        warmup: o.warmup,
        data: o.data.clone(),
        memory_enforcement: MEMORY_ENFORCEMENT.to_string(),
        emulation: emulation.to_string(),
        emulation_note,
        runtime_agrees,
        passed: phones.len() - failed,
        failed,
        phones,
        calibration,
        wall_s: start.elapsed().as_secs_f64(),
    };
    write_report(&o.out, &report)?;
    Ok(report)
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

/// One phone's row from its decision and its child's outcome.
fn phone_result(
    p: &DeviceProfile,
    facts: &DeviceFacts,
    decision: runtime::Decision,
    mem_budget: u64,
    run: PhoneRun,
    host_score: f64,
) -> PhoneResult {
    let PhoneRun {
        threads,
        outcome,
        quota,
        scale_from_host,
    } = run;
    let mut reasons = Vec::new();
    if !decision.fits {
        let why: Vec<String> = decision.shortfall.iter().map(ToString::to_string).collect();
        reasons.push(format!(
            "no variant fits this phone (smallest `{}` taken): {}",
            decision.chosen,
            why.join("; ")
        ));
    }
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
    if let Some(r) = report
        && r.peak_rss_bytes > mem_budget
    {
        reasons.push(format!(
            "peak resident memory {:.1} MB over the memory budget of {:.1} MB",
            r.peak_rss_bytes as f64 / MIB,
            mem_budget as f64 / MIB
        ));
    }
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
