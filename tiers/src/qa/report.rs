//! What a QA run found: one [`PhoneResult`] per phone, the [`Calibration`] of the latency model
//! on this host, and the [`QaReport`] that holds them, rendered as markdown ([`markdown`]) and
//! JSON.

use std::fmt::Write as _;
use std::path::PathBuf;

use device_profiles::TierClass;
use runtime::{Decision, Policy};
use serde::{Deserialize, Serialize};

use super::child::{ChildOutcome, MIB};
use crate::host::HostInfo;

/// Format version of `qa.json`.
pub const QA_FORMAT_VERSION: u32 = 1;

/// Goal for the median prediction error of the latency model on this host, percent.
pub const CALIBRATION_GOAL_PCT: f64 = 20.0;

/// One phone: what the selector chose and what the emulation measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneResult {
    /// Catalog id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Tier class.
    pub tier: TierClass,
    /// RAM as reported, bytes (`None`: unknown).
    pub ram_bytes: Option<u64>,
    /// All cores.
    pub cores: u32,
    /// Big cores.
    pub big_cores: u32,
    /// Threads on this host: min(big cores, host cores).
    pub threads: usize,
    /// The phone's capability score.
    pub score: f64,
    /// The selector's full decision (as `runtime::select` makes it on the phone).
    pub decision: Decision,
    /// Latency the selector predicts on the phone, ms.
    pub predicted_ms: f64,
    /// Median latency measured on this host at `threads` threads, ms.
    pub host_ms: Option<f64>,
    /// `host_ms` × host score / phone score, ms.
    pub emulated_ms: Option<f64>,
    /// (predicted − emulated) / emulated, percent.
    pub error_pct: Option<f64>,
    /// The latency budget in force, ms.
    pub latency_budget_ms: f64,
    /// The memory budget (RAM × memory fraction), bytes: the child's resident-memory limit.
    pub memory_budget_bytes: u64,
    /// What the selector says the variant needs (weights + activations + runtime overhead).
    pub memory_need_bytes: u64,
    /// Peak resident memory of the child (its `VmHWM`, or the highest the parent saw when it
    /// was killed), bytes.
    pub peak_rss_bytes: Option<u64>,
    /// Top-1 on the QA images.
    pub accuracy: Option<f64>,
    /// How the child run ended.
    pub outcome: ChildOutcome,
    /// The variant the phone's profile gets from the selector (`decision.chosen`).
    #[serde(default)]
    pub picked_by_profile: String,
    /// Under `cpu-quota` emulation: the variant the runtime picked by itself in the child's cold
    /// launch (its own probe measured the slowed host).
    #[serde(default)]
    pub picked_by_runtime: Option<String>,
    /// The score the runtime's own probe measured under the quota.
    #[serde(default)]
    pub runtime_score: Option<f64>,
    /// The latency the phone is judged by, ms: under `cpu-quota`, the mean measured under the
    /// quota (no scaling); under `scaled`, `emulated_ms`.
    #[serde(default)]
    pub measured_ms: Option<f64>,
    /// The CPU quota the child ran under (`None`: none).
    #[serde(default)]
    pub quota: Option<super::cgroup::CpuQuota>,
    /// Whether every check passed.
    pub pass: bool,
    /// Why not (empty on a pass).
    pub reasons: Vec<String>,
}

impl PhoneResult {
    /// The variant whose latency `measured_ms` is: the runtime's own pick under emulation, else
    /// the profile's.
    pub fn measured_variant(&self) -> &str {
        self.picked_by_runtime
            .as_deref()
            .unwrap_or(&self.decision.chosen)
    }
}

/// One variant's latency on this host: the model's prediction against measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    /// Variant id.
    pub variant: String,
    /// MACs.
    pub macs: u64,
    /// The manifest's latency on the reference device, ms.
    pub reference_ms: f64,
    /// Reference latency × reference score / host score, ms (one thread).
    pub predicted_ms: f64,
    /// The same at each thread count (`threads`, ms), from the manifest's
    /// `latency_by_threads` where it has them.
    #[serde(default)]
    pub predicted_by_threads: Vec<(usize, f64)>,
    /// Measured median per thread count (`threads`, ms); `None` where the run failed.
    pub measured_ms: Vec<(usize, Option<f64>)>,
    /// (predicted − measured) / measured per thread count, percent.
    pub error_pct: Vec<(usize, Option<f64>)>,
}

/// The latency model checked on this host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The manifest's reference device id.
    pub reference_profile: String,
    /// Its score.
    pub reference_score: f64,
    /// The host's score.
    pub host_score: f64,
    /// Thread counts measured.
    pub threads: Vec<usize>,
    /// One row per variant, largest first.
    pub rows: Vec<CalibrationRow>,
    /// Median |error| per thread count, percent.
    pub median_abs_error_pct: Vec<(usize, Option<f64>)>,
    /// Median |error| over all measurements, percent.
    pub overall_median_abs_error_pct: Option<f64>,
    /// The host score at which the model would match the measurements (median over variants
    /// and thread counts of reference latency × reference score / measured latency).
    pub implied_host_score: Option<f64>,
    /// The goal, percent.
    pub goal_pct: f64,
}

/// A whole QA run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QaReport {
    /// [`QA_FORMAT_VERSION`].
    pub format_version: u32,
    /// The bundle folder.
    pub bundle_dir: PathBuf,
    /// Bundle id.
    pub bundle_id: String,
    /// Bundle version.
    pub bundle_version: String,
    /// The manifest's reference device and score.
    pub reference: (String, f64),
    /// The host.
    pub host: HostInfo,
    /// The probe budget asked for (`--probe-ms`), ms, when the host was probed with another
    /// (`host.probe_budget_ms`): under emulation a shorter one is raised to
    /// [`super::EMULATION_MIN_PROBE_MS`]. `None`: the probes ran as asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_probe_budget_ms: Option<u32>,
    /// The selection policy (as on the phone, with any budget override).
    pub policy: Policy,
    /// The latency budget in force, ms.
    pub latency_budget_ms: f64,
    /// Images per run.
    pub images: usize,
    /// Untimed warm-up predictions per run.
    pub warmup: usize,
    /// Where the images came from.
    pub data: PathBuf,
    /// How memory is enforced (text).
    pub memory_enforcement: String,
    /// `cpu-quota` (each phone's launch ran under a CPU quota matching its speed) or `scaled`
    /// (host latency × host score / phone score).
    #[serde(default)]
    pub emulation: String,
    /// What the emulation is and cannot reproduce; why it fell back, when it did.
    #[serde(default)]
    pub emulation_note: String,
    /// Phones whose runtime pick under emulation equals their profile's pick, of those emulated.
    #[serde(default)]
    pub runtime_agrees: (usize, usize),
    /// One row per phone.
    pub phones: Vec<PhoneResult>,
    /// The latency model on this host (`None` when skipped).
    pub calibration: Option<Calibration>,
    /// Phones that passed.
    pub passed: usize,
    /// Phones that failed.
    pub failed: usize,
    /// Wall time of the whole run, s.
    pub wall_s: f64,
}

impl QaReport {
    /// Whether every phone passed.
    pub fn all_pass(&self) -> bool {
        self.failed == 0
    }
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / MIB)
}

fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.digits$}"))
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The report as markdown: summary, the phone table, failures, calibration, method.
pub fn markdown(r: &QaReport) -> String {
    let mut s = String::new();
    md_summary(&mut s, r);
    md_phone_table(&mut s, r);
    md_host(&mut s, &r.host, r.requested_probe_budget_ms);
    match &r.calibration {
        None => {
            let _ = writeln!(s, "Calibration skipped.");
        }
        Some(c) => md_calibration(&mut s, c),
    }
    md_method(&mut s, r);
    s
}

/// `scaled` for reports written before the field existed.
fn emulation_kind(r: &QaReport) -> &str {
    if r.emulation.is_empty() {
        "scaled"
    } else {
        &r.emulation
    }
}

/// The title, the verdict with the budgets, the emulation and the runtime's agreement.
fn md_summary(s: &mut String, r: &QaReport) {
    let _ = writeln!(
        s,
        "# QA: bundle `{}` version `{}` on {} emulated phones\n",
        r.bundle_id,
        r.bundle_version,
        r.phones.len()
    );
    let _ = writeln!(
        s,
        "**{}** — {} passed, {} failed. Latency budget {:.2} ms, memory budget = {:.0}% of RAM, \
         safety margin {:.0}%, {} images per phone ({} warm-up), {:.1} s in all.\n",
        if r.all_pass() { "PASS" } else { "FAIL" },
        r.passed,
        r.failed,
        r.latency_budget_ms,
        r.policy.memory_fraction * 100.0,
        r.policy.safety_margin * 100.0,
        r.images,
        r.warmup,
        r.wall_s
    );
    let _ = writeln!(
        s,
        "Emulation: **{}**. {}\n",
        emulation_kind(r),
        md_escape(&r.emulation_note)
    );
    if r.runtime_agrees.1 > 0 {
        let _ = writeln!(
            s,
            "The runtime's own pick under emulation equals the profile's pick on {} of {} phones.\n",
            r.runtime_agrees.0, r.runtime_agrees.1
        );
    }
}

/// One row per phone, then the median prediction error.
fn md_phone_table(s: &mut String, r: &QaReport) {
    let _ = writeln!(
        s,
        "| phone | tier | RAM GB | cores / threads | variant (profile) | runtime's pick | predicted ms | measured ms | error % | peak RSS MB | need MB | memory budget MB | accuracy | verdict |"
    );
    let _ = writeln!(
        s,
        "|---|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|"
    );
    for p in &r.phones {
        let verdict = if p.pass {
            "PASS".to_string()
        } else {
            format!("**FAIL**: {}", md_escape(&p.reasons.join("; ")))
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} ({} big) / {} | `{}`{} | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
            md_escape(&p.name),
            p.tier,
            p.ram_bytes
                .map_or_else(|| "?".into(), |b| format!("{:.1}", b as f64 / 1e9)),
            p.cores,
            p.big_cores,
            p.threads,
            p.decision.chosen,
            if p.decision.fits {
                ""
            } else {
                " (nothing fits)"
            },
            p.picked_by_runtime
                .as_deref()
                .map_or_else(|| "—".into(), |v| format!("`{v}`")),
            p.predicted_ms,
            opt(p.measured_ms.or(p.emulated_ms), 2),
            p.error_pct
                .map_or_else(|| "—".into(), |e| format!("{e:+.0}")),
            p.peak_rss_bytes.map_or_else(|| "—".into(), mb),
            mb(p.memory_need_bytes),
            mb(p.memory_budget_bytes),
            p.accuracy
                .map_or_else(|| "—".into(), |a| format!("{:.1}%", a * 100.0)),
            verdict
        );
    }
    let errs: Vec<f64> = r
        .phones
        .iter()
        .filter_map(|p| p.error_pct.map(f64::abs))
        .collect();
    if !errs.is_empty() {
        let _ = writeln!(
            s,
            "\nMedian |error| of the selector's latency prediction against the emulation: {:.1}% over {} phones.",
            super::child::median(&errs),
            errs.len()
        );
    }
}

/// The host and how its score was measured (`requested_probe_ms`: the budget asked for, when
/// the probes ran with another).
fn md_host(s: &mut String, h: &HostInfo, requested_probe_ms: Option<u32>) {
    let _ = writeln!(s, "\n## Host and calibration\n");
    let unknown = || "?".to_string();
    let _ = write!(
        s,
        "Host `{}` ({}), {} cores. Score **{:.1}**: the median of {} back-to-back \
         `device_profiles::probe` runs at the start ({} ms budget each; scores {}; each keeps its \
         phases' fastest repetitions).",
        h.id,
        md_escape(&h.name),
        h.cores.map_or_else(unknown, |c| c.to_string()),
        h.score,
        h.probe_scores.len(),
        h.probe_budget_ms.map_or_else(unknown, |b| b.to_string()),
        h.probe_scores
            .iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let (Some(asked), Some(used)) = (requested_probe_ms, h.probe_budget_ms) {
        let _ = write!(
            s,
            " The probe budget was raised from the {asked} ms asked for (`--probe-ms`) to {used} \
             ms: under emulation the host is measured as the children measure the slowed host, \
             by throughput over {} quota periods of 10 ms.",
            super::PERIODS
        );
    }
    if let Some(f) = &h.figures {
        let _ = write!(
            s,
            " That probe measured GEMM {:.1} GFLOP/s on one thread and {:.1} GFLOP/s on {} \
             threads, depthwise 3×3 {:.1} GFLOP/s (one thread), memory read {:.1} GB/s;",
            f.gemm_gflops_1t, f.gemm_gflops_mt, f.threads, f.dwconv_gflops, f.mem_bw_gbps
        );
    }
    let _ = writeln!(
        s,
        " score = 100 × speed / speed(Cortex-A53 @ 2.0 GHz), speed = (GEMM 1T / 26.7)^0.7 · \
         (dw / 9.35)^0.3 (`device_profiles::latency`).\n"
    );
}

/// The latency model on this host: one row per variant, the median errors.
fn md_calibration(s: &mut String, c: &Calibration) {
    let _ = writeln!(
        s,
        "Latency model on this host: predicted at T threads = the manifest's latency at \
         T threads (`latency_by_threads`, else `latency_ms`) × reference score \
         ({} = {:.1}) / host score ({:.1}); measured = the child's median per image at \
         each thread count; error = (predicted − measured) / measured.\n",
        c.reference_profile, c.reference_score, c.host_score
    );
    let mut head = "| variant | MMACs | reference ms |".to_string();
    let mut rule = "|---|--:|--:|".to_string();
    for t in &c.threads {
        let _ = write!(
            head,
            " predicted {t}T ms | measured {t}T ms | error {t}T % |"
        );
        rule.push_str("--:|--:|--:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for row in &c.rows {
        let _ = write!(
            s,
            "| `{}` | {:.2} | {:.3} |",
            row.variant,
            row.macs as f64 / 1e6,
            row.reference_ms,
        );
        for ((t, m), (_, e)) in row.measured_ms.iter().zip(&row.error_pct) {
            let p = row
                .predicted_by_threads
                .iter()
                .find(|(pt, _)| pt == t)
                .map_or(row.predicted_ms, |(_, p)| *p);
            let _ = write!(
                s,
                " {:.3} | {} | {} |",
                p,
                opt(*m, 3),
                e.map_or_else(|| "—".into(), |e| format!("{e:+.0}"))
            );
        }
        s.push('\n');
    }
    let per: Vec<String> = c
        .median_abs_error_pct
        .iter()
        .map(|(t, e)| format!("{t} thread(s): {}%", opt(*e, 1)))
        .collect();
    let overall = c.overall_median_abs_error_pct;
    let _ = writeln!(
        s,
        "\nMedian |prediction error|: {}; overall **{}%** (goal ≤ {:.0}%: {}). The \
         model would match the measurements at a host score of {} (probed: {:.1}).",
        per.join(", "),
        opt(overall, 1),
        c.goal_pct,
        match overall {
            Some(e) if e <= c.goal_pct => "met",
            Some(_) => "NOT met",
            None => "no measurement",
        },
        opt(c.implied_host_score, 1),
        c.host_score
    );
}

/// How phones were judged, emulated and limited.
fn md_method(s: &mut String, r: &QaReport) {
    let _ = writeln!(s, "\n## Method\n");
    let _ = writeln!(
        s,
        "- Profile's pick: `runtime::select` with the phone's catalog profile and the policy \
         above.\n\
         - Emulation ({}): {}\n\
         - Memory: {}\n\
         - A phone FAILS when nothing fits its budgets (the selector then takes the smallest \
         variant), when the run is killed or fails, when the measured latency is over the \
         budget, or when the peak resident memory is over the memory budget.",
        emulation_kind(r),
        r.emulation_note,
        r.memory_enforcement
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The markdown of [`crate::qa::tests::sample_report`], byte for byte as it was before
    /// `markdown` was split into sections (`testdata/sample_report.md`; `TIERS_BLESS=1`
    /// rewrites it after a deliberate change).
    #[test]
    fn the_markdown_of_the_sample_report_is_unchanged() {
        let r = crate::qa::tests::sample_report();
        // and a variant with the runtime's own picks and no calibration
        let mut picked = r.clone();
        picked.emulation = "cpu-quota".into();
        picked.phones[0].picked_by_runtime = Some("small".into());
        picked.phones[2].picked_by_runtime = Some("mid".into());
        picked.runtime_agrees = (1, 2);
        picked.calibration = None;
        let md = format!("{}\n----\n{}", markdown(&r), markdown(&picked));
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/qa/testdata/sample_report.md"
        );
        if std::env::var_os("TIERS_BLESS").is_some() {
            std::fs::write(path, &md).unwrap();
        }
        let want = std::fs::read_to_string(path).unwrap();
        assert!(md == want, "markdown changed:\n{md}");
    }

    #[test]
    fn helpers_format() {
        assert_eq!(mb(3 << 20), "3.0");
        assert_eq!(opt(None, 2), "—");
        assert_eq!(opt(Some(1.234), 1), "1.2");
        assert_eq!(md_escape("a|b"), "a\\|b");
    }
}
