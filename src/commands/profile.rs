//! `tierforge profile`: probe this device (CPU, RAM, micro-benchmarks), print its profile, list the phone catalog,
//! or measure the probe's own cost and repeatability.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use device_profiles::bench::mean_std_cv;
use device_profiles::{DeviceProfile, ProbeOptions, catalog, probe, table};

/// Arguments of `tierforge profile`.
#[derive(clap::Args, Debug)]
pub struct ProfileArgs {
    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Time budget of the probe (micro-benchmarks included), ms.
    #[arg(long, default_value_t = device_profiles::probe::DEFAULT_BUDGET_MS, value_parser = clap::value_parser!(u32).range(1..=60_000))]
    pub budget_ms: u32,
    /// Threads of the multi-thread benchmarks, reported for information (default: 1; the score uses the
    /// single-thread figures).
    #[arg(long = "probe-threads", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// List every catalog phone and this host as a table sorted by score.
    #[arg(long)]
    pub catalog: bool,
    /// Run the probe N times and report the probe's wall time per run and the score's coefficient of variation.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeat: Option<u32>,
    /// What to do instead of probing this machine.
    #[command(subcommand)]
    pub command: Option<ProfileCommand>,
}

/// Subcommands of `tierforge profile`.
#[derive(clap::Subcommand, Debug)]
pub enum ProfileCommand {
    /// Estimate a full catalog profile from a phone's spec (a catalog profile without `measured`, `score` and
    /// `tier`): how a user adds a phone. Prints the profile; with `--json`, the catalog file's JSON.
    Estimate(EstimateArgs),
}

/// Arguments of `tierforge profile estimate`.
#[derive(clap::Args, Debug)]
pub struct EstimateArgs {
    /// The spec file (JSON).
    #[arg(value_name = "SPEC.json")]
    pub spec: std::path::PathBuf,
    /// Print the profile as catalog JSON on stdout (write it to a new file, not over SPEC).
    #[arg(long)]
    pub json: bool,
}

fn run_estimate(args: EstimateArgs) -> anyhow::Result<ExitCode> {
    let p = device_profiles::estimate::estimate_file(&args.spec)
        .with_context(|| format!("cannot estimate a profile from `{}`", args.spec.display()))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", p.to_json_pretty()?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let speed = device_profiles::latency::device_speed(&p.cpu, &p.measured);
    writeln!(out, "id           {}", p.id)?;
    writeln!(out, "name         {}", p.name)?;
    writeln!(
        out,
        "cpu          {} ({} cores)",
        table::cpu_summary(&p),
        p.core_count()
    )?;
    writeln!(
        out,
        "speed        {:.3} of one calibration-host core ({}), from the {}",
        speed.value,
        device_profiles::latency::CALIBRATION.cpu,
        speed.basis.as_str()
    )?;
    writeln!(out, "score        {:.0} ({})", p.score, p.tier)?;
    for a in &p.assumptions {
        writeln!(out, "assumes      {a}")?;
    }
    writeln!(out, "(--json prints the catalog file)")?;
    Ok(ExitCode::SUCCESS)
}

/// One probe run of `--repeat`.
#[derive(Debug, serde::Serialize)]
struct Run {
    run: u32,
    probe_ms: f64,
    bench_ms: f64,
    gemm_gflops_1t: f64,
    gemm_gflops_mt: f64,
    dwconv_gflops: f64,
    mem_bw_gbps: f64,
    score: f64,
}

/// Runs `tierforge profile`.
///
/// # Errors
/// When the built-in catalog fails to parse (a build defect) or stdout cannot be written.
pub fn run(args: ProfileArgs) -> anyhow::Result<ExitCode> {
    if let Some(ProfileCommand::Estimate(a)) = args.command {
        return run_estimate(a);
    }
    let options = ProbeOptions {
        budget_ms: args.budget_ms,
        threads: args.threads.map(|t| t as usize),
        ..ProbeOptions::default()
    };
    let mut out = std::io::stdout().lock();

    let runs = args.repeat.unwrap_or(1);
    eprintln!(
        "probing this device ({runs} run(s), budget {} ms each)…",
        options.budget_ms
    );
    let mut results = Vec::with_capacity(runs as usize);
    let mut host: Option<DeviceProfile> = None;
    for run in 1..=runs {
        let t = Instant::now();
        let p = probe(&options);
        let m = &p.measured;
        results.push(Run {
            run,
            probe_ms: t.elapsed().as_secs_f64() * 1000.0,
            bench_ms: m.bench_ms,
            gemm_gflops_1t: m.gemm_gflops_1t,
            gemm_gflops_mt: m.gemm_gflops_mt,
            dwconv_gflops: m.dwconv_gflops,
            mem_bw_gbps: m.mem_bw_gbps,
            score: p.score,
        });
        host = Some(p);
    }
    let host = host.context("the probe ran zero times")?;
    if args.catalog {
        print_catalog(&mut out, &host, args.json)?;
    } else if args.repeat.is_some() {
        print_repeats(&mut out, &results, &host, options.budget_ms, args.json)?;
    } else if args.json {
        writeln!(out, "{}", host.to_json_pretty()?)?;
    } else {
        print_host(&mut out, &host)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--catalog`: the built-in phones and this host, by score.
fn print_catalog(out: &mut impl Write, host: &DeviceProfile, json: bool) -> anyhow::Result<()> {
    let phones = catalog::builtin().context("the built-in phone catalog is invalid")?;
    let mut all: Vec<&DeviceProfile> = phones.iter().chain(std::iter::once(host)).collect();
    if json {
        all.sort_by(|a, b| a.score.total_cmp(&b.score));
        writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
    } else {
        write!(out, "{}", table::render(&all, false))?;
        writeln!(
            out,
            "(`{}` is this host, measured; the phones are estimates from public specifications)",
            host.id
        )?;
    }
    Ok(())
}

/// `--repeat N`: every run's figures and the score's spread.
fn print_repeats(
    out: &mut impl Write,
    results: &[Run],
    host: &DeviceProfile,
    budget_ms: u32,
    json: bool,
) -> anyhow::Result<()> {
    let runs = results.len();
    let scores: Vec<f64> = results.iter().map(|r| r.score).collect();
    let times: Vec<f64> = results.iter().map(|r| r.probe_ms).collect();
    let (mean, std, cv) = mean_std_cv(&scores);
    let (t_mean, _, _) = mean_std_cv(&times);
    let t_max = times.iter().copied().fold(0.0, f64::max);
    if json {
        let report = serde_json::json!({
            "runs": results,
            "probe_ms_mean": t_mean,
            "probe_ms_max": t_max,
            "budget_ms": budget_ms,
            "score_mean": mean,
            "score_std": std,
            "score_cv": cv,
            "fingerprint": host.fingerprint(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "run  probe_ms  bench_ms  gemm_1t  gemm_mt  dwconv  mem_bw  score"
    )?;
    for r in results {
        writeln!(
            out,
            "{:>3}  {:>8.2}  {:>8.2}  {:>7.1}  {:>7.1}  {:>6.1}  {:>6.1}  {:>5.1}",
            r.run,
            r.probe_ms,
            r.bench_ms,
            r.gemm_gflops_1t,
            r.gemm_gflops_mt,
            r.dwconv_gflops,
            r.mem_bw_gbps,
            r.score
        )?;
    }
    writeln!(
        out,
        "probe time: mean {t_mean:.2} ms, max {t_max:.2} ms (budget {budget_ms} ms)"
    )?;
    writeln!(
        out,
        "score: mean {mean:.1}, std {std:.1}, CV {:.1}% over {runs} runs",
        cv * 100.0
    )?;
    Ok(())
}

/// This host's profile, one field a line.
fn print_host(out: &mut impl Write, host: &DeviceProfile) -> anyhow::Result<()> {
    let m = &host.measured;
    let ram = host.ram_bytes.map_or_else(
        || "unknown".to_string(),
        |r| format!("{:.2} GiB", r as f64 / (1u64 << 30) as f64),
    );
    writeln!(out, "id           {}", host.id)?;
    writeln!(out, "name         {}", host.name)?;
    writeln!(out, "soc          {}", host.soc)?;
    writeln!(out, "os / abi     {} / {}", host.os, host.abi)?;
    writeln!(
        out,
        "cpu          {} ({} cores, {} big)",
        table::cpu_summary(host),
        host.core_count(),
        host.big_core_count()
    )?;
    let isa: Vec<&str> = host.cpu.isa.iter().map(|f| f.as_str()).collect();
    writeln!(out, "isa          {}", isa.join(" "))?;
    writeln!(out, "ram          {ram}")?;
    writeln!(
        out,
        "gemm         {:.1} GFLOP/s (1 thread), {:.1} GFLOP/s ({} thread(s))",
        m.gemm_gflops_1t, m.gemm_gflops_mt, m.threads
    )?;
    writeln!(out, "dwconv 3x3   {:.1} GFLOP/s", m.dwconv_gflops)?;
    writeln!(out, "memory read  {:.1} GB/s", m.mem_bw_gbps)?;
    writeln!(out, "bench        {:.1} ms", m.bench_ms)?;
    let speed = device_profiles::latency::device_speed(&host.cpu, &host.measured);
    writeln!(
        out,
        "score        {:.0} ({}): one core at {:.3} of the calibration host's, from the {}",
        host.score,
        host.tier,
        speed.value,
        match speed.basis {
            device_profiles::latency::SpeedBasis::Spec => "core types and clocks (latency model)",
            device_profiles::latency::SpeedBasis::Measured => "probe's single-thread figures",
        }
    )?;
    writeln!(out, "fingerprint  {}", host.fingerprint())?;
    Ok(())
}
