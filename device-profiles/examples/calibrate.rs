//! Calibration: estimates this host's clock and measures the GEMM and depthwise rates with a long budget, to derive
//! the efficiency factor used for catalog estimates (measured GEMM / theoretical 128-bit peak).
//!
//! `cargo run --release -p device-profiles --example calibrate`
use std::hint::black_box;
use std::time::Instant;

/// Cycles of one dependent FP64 add (Zen 4 / Zen 5: 3; most ARM big cores: 2–3).
const FADD_LATENCY_CYCLES: f64 = 3.0;
/// Peak FP32 FLOP per cycle of the 128-bit code the portable kernel compiles to on baseline x86-64 (SSE2, no FMA):
/// two 4-lane multiplies and two 4-lane adds per cycle on Zen 4 (FP0/FP1 multiply, FP2/FP3 add).
const HOST_FLOP_PER_CYCLE_128: f64 = 16.0;

fn main() {
    let n = 100_000_000u64;
    let mut best = f64::MAX;
    for _ in 0..5 {
        let y = black_box(1e-9f64);
        let t = Instant::now();
        let mut x = black_box(1.0f64);
        for _ in 0..n {
            x += y; // floating-point adds cannot be reassociated: one dependent chain
        }
        black_box(x);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let ghz = n as f64 * FADD_LATENCY_CYCLES / best / 1e9;
    println!("clock estimate: {ghz:.2} GHz ({FADD_LATENCY_CYCLES}-cycle dependent FP add chain)");
    let peak_1t = ghz * HOST_FLOP_PER_CYCLE_128;
    let mut g1 = 0.0f64;
    let mut dw = 0.0f64;
    let mut gmt = 0.0f64;
    for _ in 0..5 {
        let r = device_profiles::bench::run(400, 2);
        g1 = g1.max(r.gemm_gflops_1t);
        gmt = gmt.max(r.gemm_gflops_mt);
        dw = dw.max(r.dwconv_gflops);
        println!("{r:?}");
    }
    println!("peak (128-bit, {HOST_FLOP_PER_CYCLE_128} FLOP/cycle): {peak_1t:.1} GFLOP/s per core");
    println!(
        "best gemm 1t {g1:.1} GFLOP/s -> efficiency {:.3}",
        g1 / peak_1t
    );
    println!(
        "best gemm mt {gmt:.1} GFLOP/s -> efficiency {:.3} (2 cores)",
        gmt / (2.0 * peak_1t)
    );
    println!(
        "best dwconv mt {dw:.1} GFLOP/s -> efficiency {:.3} (2 cores)",
        dw / (2.0 * peak_1t)
    );
}
