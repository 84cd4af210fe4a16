//! The probe benchmark: runs the probe N times (default 10) and prints each probe's wall time and score, then the
//! score's coefficient of variation.
//!
//! `cargo run --release -p device-profiles --example probe_bench [-- RUNS [BUDGET_MS]]`
use std::time::Instant;

use device_profiles::bench::mean_std_cv;
use device_profiles::{ProbeOptions, probe};

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10)
        .max(1);
    let budget_ms: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(device_profiles::probe::DEFAULT_BUDGET_MS);
    let options = ProbeOptions {
        budget_ms,
        threads: None,
        ..ProbeOptions::default()
    };
    println!("run  probe_ms  bench_ms  gemm_1t  gemm_mt  dwconv  mem_bw  score  tier");
    let mut scores = Vec::with_capacity(runs);
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for run in 1..=runs {
        let t = Instant::now();
        let p = probe(&options);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let m = &p.measured;
        println!(
            "{run:>3}  {ms:>8.2}  {:>8.2}  {:>7.1}  {:>7.1}  {:>6.1}  {:>6.1}  {:>5.1}  {}",
            m.bench_ms,
            m.gemm_gflops_1t,
            m.gemm_gflops_mt,
            m.dwconv_gflops,
            m.mem_bw_gbps,
            p.score,
            p.tier
        );
        scores.push(p.score);
        times.push(ms);
        last = Some(p);
    }
    let (mean, std, cv) = mean_std_cv(&scores);
    let (tmean, _, _) = mean_std_cv(&times);
    let tmax = times.iter().copied().fold(0.0, f64::max);
    println!("probe time: mean {tmean:.2} ms, max {tmax:.2} ms (budget {budget_ms} ms)");
    println!(
        "score: mean {mean:.1}, std {std:.1}, CV {:.1}% over {runs} runs",
        cv * 100.0
    );
    if let Some(p) = last {
        let clusters: Vec<String> = p
            .cpu
            .clusters
            .iter()
            .map(|c| format!("{}× {} @ {:?} MHz", c.count, c.core, c.max_mhz))
            .collect();
        println!(
            "device: {} | soc {} | {} | ram {:?} bytes | fingerprint {}",
            p.name,
            p.soc,
            clusters.join(", "),
            p.ram_bytes,
            p.fingerprint()
        );
    }
}
