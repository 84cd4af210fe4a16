//! The measurement child: one variant, one thread count, K images, in a process of its own so
//! that its memory can be watched and capped like an app's on a phone.
//!
//! The parent ([`spawn`]) starts `program args… --bundle B --variant ID --threads T --images K
//! --data D`, where `program args…` is a [`ChildCommand`] (for the CLI: the `tierforge` binary
//! and its hidden `qa-child` subcommand). The child ([`measure`]) opens the variant with
//! [`runtime::Session::open`], predicts the images one at a time (batch 1, as an app does),
//! and prints a [`ChildReport`] as JSON on stdout: median latency per image, accuracy on those
//! images, and its peak resident memory (`VmHWM` of `/proc/self/status`).
//!
//! # Memory limit
//! A Rust + burn process reserves far more address space than it touches (mimalloc arenas,
//! glibc arenas, thread stacks: `VmPeak` is several hundred MB for a process whose resident peak
//! is tens of MB), so `RLIMIT_AS` at a phone's memory budget would make the emulation fail for a
//! reason a phone does not have. The limit is enforced on **resident** memory instead, which is
//! also what Android's low-memory killer acts on: the parent polls the child's `VmRSS` every few
//! milliseconds and kills it when it exceeds the limit, and the child's own `VmHWM` (its true
//! peak, including spikes between polls) is compared with the limit afterwards.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runtime::{Bundle, ImageRef, Session};
use serde::{Deserialize, Serialize};
use supernet::data::Dataset;

use crate::error::{Error, Result};

/// Magic bytes of an image pack ([`write_pack`]).
const PACK_MAGIC: &[u8; 8] = b"TFQAIMG1";

/// Default warm-up predictions before timing starts.
pub const DEFAULT_WARMUP: usize = 10;

/// How often the parent reads the child's resident memory.
pub const RSS_POLL: Duration = Duration::from_millis(3);

/// How long the parent waits for a finished child's output pipes to close.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// What one child run measures. The child reads it from its command line: `clap` parses the
/// flags [`ChildRequest::to_args`] writes (the CLI flattens this type into its hidden
/// `qa-child` subcommand).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct ChildRequest {
    /// The bundle folder.
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// The variant id.
    #[arg(long, value_name = "ID")]
    pub variant: String,
    /// Inference threads (rayon's global pool).
    #[arg(long, value_name = "N")]
    pub threads: usize,
    /// Images to predict (timed one at a time).
    #[arg(long, value_name = "K")]
    pub images: usize,
    /// A dataset folder (its test split is used) or an image pack written by [`write_pack`].
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Untimed predictions first.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WARMUP)]
    pub warmup: usize,
    /// When set, the child does what the app does on first launch instead of loading
    /// `variant`: a cold [`runtime::Launcher`] launch with its caches in this (fresh) folder
    /// (fingerprint → probe → select → load), then the predictions. On the command line: present
    /// when `--app-dir` is given.
    #[serde(default)]
    #[command(flatten)]
    pub launch: Option<LaunchRequest>,
}

/// The app-launch part of a [`ChildRequest`]. On the command line its flags need `--app-dir`
/// (which is what makes a request a launch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
pub struct LaunchRequest {
    /// The app-data folder (caches).
    #[arg(long = "app-dir", value_name = "DIR", required = false)]
    pub app_dir: PathBuf,
    /// [`runtime::LaunchOptions::pick_budget_ms`]: under a CPU quota the probe must span many
    /// quota periods to measure the quota's share.
    #[arg(
        long,
        value_name = "MS",
        requires = "app_dir",
        allow_negative_numbers = true,
        default_value_t = device_profiles::probe::DEFAULT_BUDGET_MS,
    )]
    pub pick_budget_ms: u32,
    /// The policy's latency budget (`None`: the bundle's).
    #[arg(
        long,
        value_name = "MS",
        requires = "app_dir",
        allow_negative_numbers = true,
        value_parser = positive_ms,
    )]
    pub latency_budget_ms: Option<f64>,
    /// Keep predicting (cycling through the images) until this much time has passed, ms, so
    /// that the mean spans many quota periods.
    #[arg(
        long,
        value_name = "MS",
        requires = "app_dir",
        allow_negative_numbers = true,
        default_value_t = 0.0,
        value_parser = non_negative_ms,
    )]
    pub min_timed_ms: f64,
}

/// A finite number of milliseconds `> 0` (`--latency-budget-ms`).
fn positive_ms(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .ok_or_else(|| format!("`{s}` is not a number of ms > 0"))
}

/// A finite number of milliseconds `>= 0` (`--min-timed-ms`).
fn non_negative_ms(s: &str) -> std::result::Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{s}` is not a number of ms >= 0"))
}

impl ChildRequest {
    /// The command-line flags of this request, as the child's `clap` parser reads them (this
    /// type's [`clap::Args`]; the CLI's `qa-child` subcommand flattens it).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--variant".into(),
            self.variant.clone(),
            "--threads".into(),
            self.threads.to_string(),
            "--images".into(),
            self.images.to_string(),
            "--data".into(),
            self.data.display().to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
        ];
        if let Some(l) = &self.launch {
            args.extend([
                "--app-dir".into(),
                l.app_dir.display().to_string(),
                "--pick-budget-ms".into(),
                l.pick_budget_ms.to_string(),
                "--min-timed-ms".into(),
                l.min_timed_ms.to_string(),
            ]);
            if let Some(b) = l.latency_budget_ms {
                args.extend(["--latency-budget-ms".into(), b.to_string()]);
            }
        }
        args
    }
}

/// What a child reports (JSON on stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildReport {
    /// The variant measured.
    pub variant: String,
    /// Threads asked for.
    pub threads_requested: usize,
    /// Threads of the inference pool actually in force.
    pub threads: usize,
    /// Images predicted (timed).
    pub images: usize,
    /// Median latency of one prediction (preprocess + forward, batch 1), ms.
    pub median_ms: f64,
    /// 10th percentile latency, ms.
    pub p10_ms: f64,
    /// 90th percentile latency, ms.
    pub p90_ms: f64,
    /// Top-1 accuracy on those images (0..=1).
    pub accuracy: f64,
    /// Correct predictions.
    pub correct: usize,
    /// Verify + load of the variant, ms.
    pub load_ms: f64,
    /// Peak resident memory (`VmHWM`), bytes; 0 when `/proc` is unreadable.
    pub peak_rss_bytes: u64,
    /// Peak address space (`VmPeak`), bytes; 0 when `/proc` is unreadable.
    pub peak_vm_bytes: u64,
    /// Mean latency of the timed predictions (total time / predictions), ms: under a CPU quota,
    /// the meaningful figure.
    #[serde(default)]
    pub mean_ms: f64,
    /// Launch mode: the variant the runtime picked by itself (before any latency step-down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picked_by_runtime: Option<String>,
    /// Launch mode: the score the runtime's own probe measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_score: Option<f64>,
    /// Launch mode: the runtime's launch report (`LaunchReport`'s text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_report: Option<String>,
}

/// A field of `/proc/<pid>/status` in bytes (`VmHWM`, `VmRSS`, `VmPeak`, …).
pub fn status_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

fn self_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| status_bytes(&s, field))
        .unwrap_or(0)
}

/// The `q`-quantile (0..=1) of `xs` (nearest rank on sorted values); 0 when empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    v[i]
}

/// The median of `xs` (mean of the two middle values for an even count); 0 when empty
/// ([`device_profiles::bench::median`]).
pub fn median(xs: &[f64]) -> f64 {
    device_profiles::bench::median(xs).unwrap_or(0.0)
}

/// The first `k` test images of a dataset folder: for IDX folders only the test pair is read
/// (`t10k-*` or `test-*`), otherwise the test split of [`supernet::data::load_dir`].
///
/// # Errors
/// Unreadable or malformed data; a folder without test images.
pub fn load_test_images(dir: &Path, k: usize) -> Result<Dataset> {
    let ctx = || format!("loading test images from {}", dir.display());
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "list", e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let find = |kind: &str| {
        names
            .iter()
            .filter(|n| n.contains(kind) && (n.starts_with("t10k") || n.starts_with("test")))
            .min()
            .map(|n| dir.join(n))
    };
    let test = match (find("idx3-ubyte"), find("idx1-ubyte")) {
        (Some(images), Some(labels)) => supernet::data::idx::load_pair(&images, &labels, None)
            .map_err(|e| Error::supernet(ctx(), e))?,
        _ => {
            supernet::data::load_dir(dir, 0)
                .map_err(|e| Error::supernet(ctx(), e))?
                .test
        }
    };
    Ok(test.take(k.min(test.len())))
}

/// Writes `set` as an image pack (`TFQAIMG1`, then u32 n, c, h, w little-endian, then per image
/// a u16 label and `c·h·w` CHW pixels): what the parent hands every child, so a child reads K
/// images, not a whole test set, and its peak memory is the model's.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_pack(path: &Path, set: &Dataset) -> Result<()> {
    let mut b = Vec::with_capacity(24 + set.len() * (2 + set.image_len()));
    b.extend_from_slice(PACK_MAGIC);
    for x in [set.len(), set.channels, set.height, set.width] {
        b.extend_from_slice(&u32::try_from(x).unwrap_or(u32::MAX).to_le_bytes());
    }
    for i in 0..set.len() {
        b.extend_from_slice(&set.labels[i].to_le_bytes());
        b.extend_from_slice(set.image(i));
    }
    crate::error::write_atomic(path, &b)
}

/// Reads an image pack written by [`write_pack`].
///
/// # Errors
/// [`Error::Io`], or [`Error::Mismatch`] for a file that is not a pack.
pub fn read_pack(path: &Path) -> Result<Dataset> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let bad = |reason: &str| Error::Mismatch {
        path: path.to_path_buf(),
        reason: format!("not a QA image pack: {reason}"),
    };
    if b.len() < 24 || &b[..8] != PACK_MAGIC {
        return Err(bad("missing TFQAIMG1 header"));
    }
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
    let (n, c, h, w) = (u(8), u(12), u(16), u(20));
    let per = 2 + c * h * w;
    if b.len() != 24 + n * per {
        return Err(bad("length does not match the header"));
    }
    let mut images = Vec::with_capacity(n * c * h * w);
    let mut labels = Vec::with_capacity(n);
    for rec in b[24..].chunks_exact(per) {
        labels.push(u16::from_le_bytes([rec[0], rec[1]]));
        images.extend_from_slice(&rec[2..]);
    }
    let classes = labels
        .iter()
        .copied()
        .max()
        .map_or(1, |m| usize::from(m) + 1);
    Ok(Dataset {
        images,
        labels,
        channels: c,
        height: h,
        width: w,
        class_names: (0..classes).map(|i| i.to_string()).collect(),
    })
}

/// Runs a request in this process and returns its report: sets the thread count (first, before
/// anything runs in parallel), opens the variant, predicts `warmup` images untimed and then
/// `images` images timed one by one.
///
/// # Errors
/// An unreadable bundle or variant, unreadable images, or images that do not fit the model.
pub fn measure(req: &ChildRequest) -> Result<ChildReport> {
    // The pool may already exist (e.g. `RAYON_NUM_THREADS` read by the binary): then the count
    // in force is reported as it is.
    let _ = runtime::set_threads(req.threads.max(1));
    let threads = runtime::threads_in_force();
    let set = if req.data.is_file() {
        let mut s = read_pack(&req.data)?;
        s = s.take(req.images.min(s.len()));
        s
    } else {
        load_test_images(&req.data, req.images)?
    };
    if set.is_empty() {
        return Err(Error::Mismatch {
            path: req.data.clone(),
            reason: "no images to predict".into(),
        });
    }
    let t0 = Instant::now();
    let bundle = Bundle::open(&req.bundle)
        .map_err(|e| Error::runtime(format!("opening {}", req.bundle.display()), e))?;
    let mut target = match &req.launch {
        None => Target::Session(
            Session::open(&bundle, &req.variant)
                .map_err(|e| Error::runtime(format!("loading variant `{}`", req.variant), e))?,
        ),
        Some(l) => {
            let options = runtime::LaunchOptions {
                policy: runtime::Policy {
                    latency_budget_ms: l.latency_budget_ms,
                    ..runtime::Policy::default()
                },
                pick_budget_ms: l.pick_budget_ms,
                ..runtime::LaunchOptions::default()
            };
            // The app's own probe, asked for throughput: under a CPU quota the fastest
            // repetition would measure the unthrottled host.
            let launch = runtime::Launcher::new(&l.app_dir)
                .with_options(options)
                .with_probe(|o, r| {
                    device_profiles::probe_with(
                        &device_profiles::ProbeOptions {
                            statistic: device_profiles::bench::Statistic::Throughput,
                            ..o.clone()
                        },
                        r,
                    )
                })
                .launch_bundle(bundle)
                .map_err(|e| Error::runtime("the app's launch", e))?;
            Target::Launch(Box::new(launch))
        }
    };
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (c, h, w) = (set.channels, set.height, set.width);
    let hwc: Vec<Vec<u8>> = (0..set.len())
        .map(|i| supernet::preprocess::chw_to_hwc(set.image(i), c, h, w))
        .collect();
    let image = |i: usize| ImageRef {
        pixels: &hwc[i],
        width: w,
        height: h,
        channels: c,
    };
    let variant = target.variant();
    let predict_err = |e| Error::runtime(format!("predicting with `{variant}`"), e);
    for i in 0..req.warmup {
        target.predict(image(i % hwc.len())).map_err(predict_err)?;
    }
    let min_ms = req.launch.as_ref().map_or(0.0, |l| l.min_timed_ms);
    let mut times = Vec::with_capacity(hwc.len());
    let mut correct = 0usize;
    let mut scored = 0usize;
    let timed = Instant::now();
    let mut i = 0usize;
    while i < hwc.len() || timed.elapsed().as_secs_f64() * 1e3 < min_ms {
        let k = i % hwc.len();
        let t = Instant::now();
        let p = target.predict(image(k)).map_err(predict_err)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if i < hwc.len() {
            correct += usize::from(p.class == usize::from(set.labels[k]));
            scored += 1;
        }
        i += 1;
    }
    let total_ms = timed.elapsed().as_secs_f64() * 1e3;
    let (picked_by_runtime, runtime_score, launch_report) = match &target {
        Target::Session(_) => (None, None, None),
        Target::Launch(l) => (
            Some(l.report().start_variant.clone()),
            Some(l.report().device.score),
            Some(l.report().to_string()),
        ),
    };
    Ok(ChildReport {
        variant: target.variant(),
        threads_requested: req.threads,
        threads,
        images: times.len(),
        median_ms: median(&times),
        p10_ms: quantile(&times, 0.1),
        p90_ms: quantile(&times, 0.9),
        accuracy: correct as f64 / scored.max(1) as f64,
        correct,
        load_ms,
        peak_rss_bytes: self_status("VmHWM"),
        peak_vm_bytes: self_status("VmPeak"),
        mean_ms: total_ms / times.len().max(1) as f64,
        picked_by_runtime,
        runtime_score,
        launch_report,
    })
}

/// What a child predicts with: a variant it loaded, or the app's launch.
enum Target {
    Session(Session),
    Launch(Box<runtime::Launch>),
}

impl Target {
    fn variant(&self) -> String {
        match self {
            Target::Session(s) => s.variant().id.clone(),
            Target::Launch(l) => l.session().variant().id.clone(),
        }
    }

    fn predict(&mut self, image: ImageRef<'_>) -> runtime::Result<runtime::Prediction> {
        match self {
            Target::Session(s) => s.predict(image),
            Target::Launch(l) => l.predict(image),
        }
    }
}

/// How to start a child: a program and the arguments before the request's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    /// The executable (usually `std::env::current_exe()`).
    pub program: PathBuf,
    /// Arguments before the request's flags (e.g. `["qa-child"]`).
    pub args: Vec<String>,
}

/// How a child run ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ChildOutcome {
    /// It ran and reported.
    Done {
        /// Its report.
        report: ChildReport,
    },
    /// It was killed because its resident memory went over the limit.
    OverMemory {
        /// The resident memory seen last, bytes.
        rss_bytes: u64,
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// It ran longer than allowed and was killed.
    TimedOut {
        /// The time limit, s.
        limit_s: f64,
    },
    /// It exited with an error, was killed by a signal, or printed no report.
    Failed {
        /// Exit status and the end of its stderr.
        reason: String,
        /// The highest resident memory the parent saw, bytes.
        rss_bytes: u64,
    },
}

impl ChildOutcome {
    /// The report, when the child finished.
    pub fn report(&self) -> Option<&ChildReport> {
        match self {
            ChildOutcome::Done { report } => Some(report),
            _ => None,
        }
    }

    /// Why the run did not finish (`None` when it did).
    pub fn failure(&self) -> Option<String> {
        let mb = |b: u64| b as f64 / MIB;
        match self {
            ChildOutcome::Done { .. } => None,
            ChildOutcome::OverMemory {
                rss_bytes,
                limit_bytes,
            } => Some(format!(
                "killed: resident memory {:.1} MB over the limit of {:.1} MB",
                mb(*rss_bytes),
                mb(*limit_bytes)
            )),
            ChildOutcome::TimedOut { limit_s } => {
                Some(format!("killed: still running after {limit_s:.0} s"))
            }
            ChildOutcome::Failed { reason, .. } => Some(format!("run failed: {reason}")),
        }
    }
}

/// Bytes per MiB (the report's "MB").
pub const MIB: f64 = 1_048_576.0;

fn proc_rss(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| status_bytes(&s, "VmRSS"))
}

/// Starts a child for `req`, watches its resident memory (killing it above `rss_limit_bytes`,
/// when given) and its run time (killing it after `timeout`), and parses its report.
///
/// The child's environment sets `RAYON_NUM_THREADS` to the request's thread count, so a binary
/// that sizes its pool from it at start-up gets the right count.
///
/// # Errors
/// [`Error::Io`] when the program cannot be started at all; everything that goes wrong inside
/// the child is a [`ChildOutcome`].
pub fn spawn(
    cmd: &ChildCommand,
    req: &ChildRequest,
    rss_limit_bytes: Option<u64>,
    timeout: Duration,
) -> Result<ChildOutcome> {
    spawn_wrapped(cmd, req, rss_limit_bytes, timeout, None)
}

/// Where a child must run: a cgroup to join before it starts, and the CPUs it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    /// The group's `cgroup.procs`.
    pub procs_file: PathBuf,
    /// The child may use CPUs `0..cpus` (with `taskset`, when installed).
    pub cpus: usize,
}

/// Shell that joins the cgroup named by `$1` and then becomes the child (same pid, so the parent
/// still watches its memory), pinned to CPUs `$2` when `taskset` exists.
const WRAP_SCRIPT: &str = r#"echo $$ > "$1" || exit 97
cpus=$2
shift 2
if command -v taskset >/dev/null 2>&1; then exec taskset -c "$cpus" "$@"; fi
exec "$@""#;

/// Exit code of the wrapper when it cannot join the cgroup.
const WRAP_JOIN_FAILED: i32 = 97;

/// [`spawn`], optionally inside a cgroup and pinned to some CPUs ([`Wrap`]): the child joins
/// the group before its program starts, so no instruction of it runs unthrottled.
///
/// # Errors
/// As [`spawn`].
pub fn spawn_wrapped(
    cmd: &ChildCommand,
    req: &ChildRequest,
    rss_limit_bytes: Option<u64>,
    timeout: Duration,
    wrap: Option<&Wrap>,
) -> Result<ChildOutcome> {
    let mut command = match wrap {
        None => Command::new(&cmd.program),
        Some(w) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(WRAP_SCRIPT)
                .arg("sh")
                .arg(&w.procs_file)
                .arg(format!("0-{}", w.cpus.max(1) - 1))
                .arg(&cmd.program);
            c
        }
    };
    let mut child = command
        .args(&cmd.args)
        .args(req.to_args())
        .env("RAYON_NUM_THREADS", req.threads.max(1).to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(&cmd.program, "start the QA child", e))?;
    let pid = child.id();
    // Drain both pipes on threads so a chatty child never blocks on a full pipe; the text comes
    // back through a channel, so a grandchild that keeps a pipe open cannot hang the parent.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            let _ = tx.send(s);
        });
        rx
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    );
    let start = Instant::now();
    let mut max_rss = 0u64;
    let mut killed: Option<ChildOutcome> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if let Some(rss) = proc_rss(pid) {
            max_rss = max_rss.max(rss);
            if let Some(limit) = rss_limit_bytes
                && rss > limit
                && killed.is_none()
            {
                let _ = child.kill();
                killed = Some(ChildOutcome::OverMemory {
                    rss_bytes: rss,
                    limit_bytes: limit,
                });
            }
        }
        if killed.is_none() && start.elapsed() > timeout {
            let _ = child.kill();
            killed = Some(ChildOutcome::TimedOut {
                limit_s: timeout.as_secs_f64(),
            });
        }
        std::thread::sleep(RSS_POLL);
    };
    let stdout = out.recv_timeout(PIPE_GRACE).unwrap_or_default();
    let stderr = err.recv_timeout(PIPE_GRACE).unwrap_or_default();
    if let Some(k) = killed {
        return Ok(k);
    }
    let tail = |s: &str| {
        let s = s.trim();
        let start = s.char_indices().rev().nth(400).map_or(0, |(i, _)| i);
        s[start..].replace('\n', " | ")
    };
    match status {
        Some(st) if st.success() => match serde_json::from_str::<ChildReport>(stdout.trim()) {
            Ok(report) => Ok(ChildOutcome::Done { report }),
            Err(e) => Ok(ChildOutcome::Failed {
                reason: format!("unreadable report ({e}): {}", tail(&stdout)),
                rss_bytes: max_rss,
            }),
        },
        Some(st) if wrap.is_some() && st.code() == Some(WRAP_JOIN_FAILED) => {
            Ok(ChildOutcome::Failed {
                reason: format!("could not join the CPU-limited cgroup: {}", tail(&stderr)),
                rss_bytes: max_rss,
            })
        }
        Some(st) => Ok(ChildOutcome::Failed {
            reason: format!("{st}: {}", tail(&stderr)),
            rss_bytes: max_rss,
        }),
        None => Ok(ChildOutcome::Failed {
            reason: "lost track of the child process".into(),
            rss_bytes: max_rss,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tx\nVmPeak:\t  123456 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(status_bytes(s, "VmHWM"), Some(2048 * 1024));
        assert_eq!(status_bytes(s, "VmPeak"), Some(123_456 * 1024));
        assert_eq!(status_bytes(s, "VmSwap"), None);
        assert!(self_status("VmHWM") > 0);
    }

    #[test]
    fn median_and_quantiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.9), 5.0);
        assert_eq!(quantile(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.0), 1.0);
    }

    fn sh(script: &str) -> ChildCommand {
        ChildCommand {
            program: "sh".into(),
            args: vec!["-c".into(), script.into(), "sh".into()],
        }
    }

    fn req() -> ChildRequest {
        ChildRequest {
            bundle: "b".into(),
            variant: "v".into(),
            threads: 1,
            images: 1,
            data: "d".into(),
            warmup: 0,
            launch: None,
        }
    }

    #[test]
    fn spawn_kills_over_memory_and_over_time_and_reports_failures() {
        let long = Duration::from_secs(60);
        // A shell that holds ~64 MB in a variable, against a 16 MiB limit.
        let hog = sh("x=$(head -c 64000000 /dev/zero | tr '\\0' a); exec sleep 30");
        match spawn(&hog, &req(), Some(16 << 20), long).unwrap() {
            ChildOutcome::OverMemory {
                rss_bytes,
                limit_bytes,
            } => assert!(rss_bytes > limit_bytes),
            o => panic!("{o:?}"),
        }
        let o = spawn(
            &sh("exec sleep 30"),
            &req(),
            None,
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(matches!(o, ChildOutcome::TimedOut { .. }), "{o:?}");
        let o = spawn(&sh("echo broken >&2; exit 4"), &req(), None, long).unwrap();
        let why = o.failure().unwrap();
        assert!(why.contains("broken") && why.contains('4'), "{why}");
        let o = spawn(&sh("echo not-json"), &req(), None, long).unwrap();
        assert!(o.failure().unwrap().contains("unreadable report"), "{o:?}");
        let missing = ChildCommand {
            program: "/nonexistent/qa-child".into(),
            args: vec![],
        };
        assert!(spawn(&missing, &req(), None, long).is_err());
        // A wrapped child that cannot join its cgroup says so.
        let wrap = Wrap {
            procs_file: "/nonexistent/cgroup.procs".into(),
            cpus: 1,
        };
        let o = spawn_wrapped(&sh("echo {}"), &req(), None, long, Some(&wrap)).unwrap();
        assert!(o.failure().unwrap().contains("cgroup"), "{o:?}");
    }

    /// The child's command line as a program that flattens [`ChildRequest`] parses it.
    #[derive(Debug, clap::Parser)]
    struct ChildCli {
        #[command(flatten)]
        request: ChildRequest,
    }

    fn parse(args: Vec<String>) -> std::result::Result<ChildRequest, clap::Error> {
        use clap::Parser as _;
        ChildCli::try_parse_from(std::iter::once("qa-child".to_string()).chain(args))
            .map(|c| c.request)
    }

    #[test]
    fn request_round_trips_through_flags_and_pack_through_file() {
        let r = ChildRequest {
            bundle: "b".into(),
            variant: "mid".into(),
            threads: 2,
            images: 7,
            data: "d.bin".into(),
            warmup: 1,
            launch: None,
        };
        assert_eq!(parse(r.to_args()).unwrap(), r);
        let launch = ChildRequest {
            launch: Some(LaunchRequest {
                app_dir: "app dir".into(),
                pick_budget_ms: 640,
                latency_budget_ms: Some(1.5),
                min_timed_ms: 320.5,
            }),
            ..r.clone()
        };
        assert_eq!(parse(launch.to_args()).unwrap(), launch);
        let no_budget = ChildRequest {
            launch: Some(LaunchRequest {
                latency_budget_ms: None,
                min_timed_ms: 0.1 + 0.2,
                ..launch.launch.clone().unwrap()
            }),
            ..r.clone()
        };
        assert_eq!(parse(no_budget.to_args()).unwrap(), no_budget);
        // defaults: --warmup, and the launch part's budgets
        let args = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let d = parse(args(
            "--bundle b --variant v --threads 1 --images 3 --data d --app-dir a",
        ))
        .unwrap();
        assert_eq!(d.warmup, DEFAULT_WARMUP);
        let l = d.launch.unwrap();
        assert_eq!(
            (l.pick_budget_ms, l.latency_budget_ms, l.min_timed_ms),
            (device_profiles::probe::DEFAULT_BUDGET_MS, None, 0.0)
        );
        let e = parse(args("--bundle b")).unwrap_err().to_string();
        assert!(e.contains("--variant"), "{e}");
        let e = parse(args(
            "--bundle b --variant v --threads x --images 3 --data d",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("invalid value 'x'") && e.contains("--threads"),
            "{e}"
        );
        let base = "--bundle b --variant v --threads 1 --images 3 --data d";
        for (bad, flag) in [
            ("--app-dir a --min-timed-ms -1", "--min-timed-ms"),
            ("--app-dir a --latency-budget-ms 0", "--latency-budget-ms"),
            ("--app-dir a --latency-budget-ms inf", "--latency-budget-ms"),
            ("--app-dir a --pick-budget-ms -5", "--pick-budget-ms"),
            // a launch flag without the launch's folder is refused, not ignored
            ("--pick-budget-ms 400", "--app-dir"),
            ("--colour red", "--colour"),
        ] {
            let e = parse(args(&format!("{base} {bad}")))
                .unwrap_err()
                .to_string();
            assert!(e.contains(flag), "{bad}: {e}");
        }

        let t = tempfile::tempdir().unwrap();
        let set = Dataset {
            images: (0..2 * 3 * 2 * 2).map(|i| i as u8).collect(),
            labels: vec![1, 300],
            channels: 3,
            height: 2,
            width: 2,
            class_names: vec![],
        };
        let p = t.path().join("x.pack");
        write_pack(&p, &set).unwrap();
        let back = read_pack(&p).unwrap();
        assert_eq!(
            (back.images, back.labels, back.channels),
            (set.images, set.labels, 3)
        );
        std::fs::write(&p, b"nope").unwrap();
        assert!(read_pack(&p).is_err());
    }
}
