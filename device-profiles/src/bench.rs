//! Micro-benchmarks: FP32 GEMM (one thread and all threads), depthwise 3×3 convolution and memory read bandwidth.
//!
//! Everything is plain Rust the compiler autovectorizes (NEON on ARM, SSE2 on baseline x86-64), with no dependencies.
//! Each phase gets a share of the time budget, warms up with one calibration repetition (outside the timed part),
//! then repeats short repetitions and reports the fastest repetition ([`Statistic::Fastest`], the default: the
//! least disturbed one) or the work of all timed repetitions over their time ([`Statistic::Throughput`]). The single-thread
//! GEMM and depthwise figures are what the capability score uses: the score is one core's speed (more threads are
//! modelled on top of it), and single-thread figures are the repeatable ones (a multi-thread figure halves when another process holds a core).
//!
//! Multi-thread phases split the work dynamically (threads take units from a shared counter), so a big.LITTLE phone
//! reports the sum of its cores' rates rather than the slowest core times the thread count.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// GEMM tile edge: C(64×64) += A(64×64) · B(64×64).
const TILE: usize = 64;
/// Rows of C kept in registers by the micro-kernel.
const MR: usize = 4;
/// Columns of C kept in registers (16 SSE registers on x86-64; 32 NEON registers on aarch64).
#[cfg(target_arch = "aarch64")]
const NR: usize = 16;
#[cfg(not(target_arch = "aarch64"))]
const NR: usize = 8;

/// FLOP of one tile GEMM.
const GEMM_FLOP: f64 = 2.0 * (TILE * TILE * TILE) as f64;

/// Depthwise conv shape: channels × height × width (stride 1, padding 1, 3×3).
const DW_C: usize = 16;
const DW_H: usize = 28;
const DW_W: usize = 28;
const DW_FLOP: f64 = 2.0 * 9.0 * (DW_C * DW_H * DW_W) as f64;

/// Bytes of the bandwidth buffer: larger than any phone's L2 and than this kind of host's per-core L2.
pub const BANDWIDTH_BUFFER_BYTES: usize = 8 << 20;
/// Bytes one bandwidth work unit reads.
const BW_BLOCK_BYTES: usize = 64 << 10;

/// Results of [`run`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchResult {
    /// FP32 GEMM rate on one thread, GFLOP/s.
    pub gemm_gflops_1t: f64,
    /// FP32 GEMM rate on `threads` threads, GFLOP/s.
    pub gemm_gflops_mt: f64,
    /// Depthwise 3×3 convolution rate on one thread, GFLOP/s.
    pub dwconv_gflops: f64,
    /// Memory read bandwidth on `threads` threads over a buffer larger than L2, GB/s (10⁹ bytes).
    pub mem_bw_gbps: f64,
    /// Wall time of all benchmarks, ms.
    pub bench_ms: f64,
    /// Threads used by the multi-thread phases.
    pub threads: usize,
}

/// Runs all micro-benchmarks within about `budget_ms` milliseconds on `threads` threads (at least 1).
///
/// A `budget_ms` of 0 still runs one short repetition of each phase.
pub fn run(budget_ms: u32, threads: usize) -> BenchResult {
    run_within(Duration::from_millis(u64::from(budget_ms)), threads)
}

/// [`run`] with the budget as a [`Duration`].
pub fn run_within(budget: Duration, threads: usize) -> BenchResult {
    run_with(budget, threads, Statistic::default())
}

/// Which figure a phase reports from its timed repetitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Statistic {
    /// The fastest repetition (the default): the rate of the least disturbed moment, which
    /// stays put when other processes compete for the cores. Under a CPU quota it measures the
    /// unthrottled CPU.
    #[default]
    Fastest,
    /// All timed repetitions together: work done / time taken. Under a CPU quota (cgroup
    /// `cpu.max`, CFS bandwidth) this is the quota's share of the CPU when the phase spans many
    /// quota periods, which is what QA's emulation needs; it also drops when other processes
    /// compete for the core.
    Throughput,
}

/// [`run_within`] with the statistic each phase reports.
pub fn run_with(budget: Duration, threads: usize, statistic: Statistic) -> BenchResult {
    let start = Instant::now();
    let threads = threads.max(1);
    // Shares of the budget (the bandwidth share includes writing the buffer once). Each phase gets its share of the
    // time that is actually left, so an overrun in one phase is absorbed by the next ones.
    let shares = if threads > 1 {
        [0.30, 0.20, 0.30, 0.20]
    } else {
        [0.45, 0.0, 0.35, 0.20]
    };
    let phase = |i: usize| {
        let left = budget.saturating_sub(start.elapsed());
        let rest: f64 = shares[i..].iter().sum();
        if rest > 0.0 {
            left.mul_f64(shares[i] / rest)
        } else {
            Duration::ZERO
        }
    };
    let gemm_1t = gemm_rate(1, phase(0), statistic);
    let gemm_mt = if threads > 1 {
        gemm_rate(threads, phase(1), statistic)
    } else {
        gemm_1t
    };
    let dwconv = dwconv_rate(1, phase(2), statistic);
    let bw = bandwidth(threads, phase(3), statistic);
    BenchResult {
        gemm_gflops_1t: gemm_1t,
        gemm_gflops_mt: gemm_mt,
        dwconv_gflops: dwconv,
        mem_bw_gbps: bw,
        bench_ms: start.elapsed().as_secs_f64() * 1000.0,
        threads,
    }
}

/// The median of a sample (the mean of the two middle values for an even count); `None` when
/// empty. The one median of the workspace: callers decide what an empty sample means.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Mean, population standard deviation and coefficient of variation (std / mean) of a sample; zeros when empty.
pub fn mean_std_cv(xs: &[f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    (mean, std, if mean != 0.0 { std / mean } else { 0.0 })
}

type Tile = [[f32; TILE]; TILE];

fn tile(seed: f32) -> Box<Tile> {
    let mut t = Box::new([[0.0f32; TILE]; TILE]);
    for (i, row) in t.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = seed + ((i * 7 + j * 3) % 13) as f32 * 0.01;
        }
    }
    t
}

#[inline(always)]
fn madd(acc: f32, a: f32, b: f32) -> f32 {
    // aarch64 always has FMA, and `mul_add` vectorizes to FMLA there; elsewhere it may be a slow library call.
    #[cfg(target_arch = "aarch64")]
    {
        b.mul_add(a, acc)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        acc + a * b
    }
}

/// C += A · B on 64×64 tiles, with an MR×NR register-blocked micro-kernel.
#[inline(never)]
fn gemm_tile(a: &Tile, b: &Tile, c: &mut Tile) {
    for i0 in (0..TILE).step_by(MR) {
        for j0 in (0..TILE).step_by(NR) {
            let mut acc = [[0.0f32; NR]; MR];
            for k in 0..TILE {
                let brow = &b[k][j0..j0 + NR];
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let av = a[i0 + r][k];
                    for (x, bv) in acc_r.iter_mut().zip(brow) {
                        *x = madd(*x, av, *bv);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (cv, x) in c[i0 + r][j0..j0 + NR].iter_mut().zip(acc_r) {
                    *cv += *x;
                }
            }
        }
    }
}

struct GemmState {
    a: Box<Tile>,
    b: Box<Tile>,
    c: Box<Tile>,
}

fn gemm_rate(threads: usize, phase: Duration, statistic: Statistic) -> f64 {
    let best = measure(
        threads,
        phase,
        statistic,
        |t| GemmState {
            a: tile(0.5 + t as f32),
            b: tile(0.25),
            c: tile(0.0),
        },
        |s, _unit| {
            gemm_tile(black_box(&s.a), black_box(&s.b), &mut s.c);
            black_box(&mut s.c);
        },
        |s| black_box(s.c[1][1]),
    );
    best.map_or(0.0, |(units, secs)| units as f64 * GEMM_FLOP / secs / 1e9)
}

struct DwState {
    input: Vec<f32>,
    weight: Vec<f32>,
    output: Vec<f32>,
}

/// Depthwise 3×3, stride 1, input pre-padded to (H+2)×(W+2); vectorized along the width.
#[inline(never)]
fn dwconv(input: &[f32], weight: &[f32], output: &mut [f32]) {
    const PW: usize = DW_W + 2;
    const PH: usize = DW_H + 2;
    for ((inp, w), out) in input
        .chunks_exact(PH * PW)
        .zip(weight.chunks_exact(9))
        .zip(output.chunks_exact_mut(DW_H * DW_W))
    {
        for (y, out_row) in out.chunks_exact_mut(DW_W).enumerate() {
            out_row.fill(0.0);
            for dy in 0..3 {
                let in_row = &inp[(y + dy) * PW..(y + dy + 1) * PW];
                for dx in 0..3 {
                    let wv = w[dy * 3 + dx];
                    for (o, i) in out_row.iter_mut().zip(&in_row[dx..dx + DW_W]) {
                        *o = madd(*o, wv, *i);
                    }
                }
            }
        }
    }
}

fn dwconv_rate(threads: usize, phase: Duration, statistic: Statistic) -> f64 {
    let best = measure(
        threads,
        phase,
        statistic,
        |t| DwState {
            input: (0..DW_C * (DW_H + 2) * (DW_W + 2))
                .map(|i| ((i + t) % 17) as f32 * 0.1)
                .collect(),
            weight: (0..DW_C * 9).map(|i| (i % 5) as f32 * 0.2 - 0.4).collect(),
            output: vec![0.0; DW_C * DW_H * DW_W],
        },
        |s, _unit| {
            dwconv(black_box(&s.input), black_box(&s.weight), &mut s.output);
            black_box(&mut s.output);
        },
        |s| black_box(s.output[7]),
    );
    best.map_or(0.0, |(units, secs)| units as f64 * DW_FLOP / secs / 1e9)
}

struct BwState {
    sum: u64,
}

fn bandwidth(threads: usize, phase: Duration, statistic: Statistic) -> f64 {
    let phase_start = Instant::now();
    let words = BANDWIDTH_BUFFER_BYTES / 8;
    // Writing every page once maps it (reading fresh zero pages would read one shared page from cache).
    let buffer: Vec<u64> = (0..words as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    let blocks: Vec<&[u64]> = buffer.chunks_exact(BW_BLOCK_BYTES / 8).collect();
    let n_blocks = blocks.len();
    let best = measure(
        threads,
        phase.saturating_sub(phase_start.elapsed()),
        statistic,
        |_| BwState { sum: 0 },
        |s, unit| {
            let block = blocks[unit % n_blocks];
            s.sum = s.sum.wrapping_add(
                black_box(block)
                    .iter()
                    .fold(0u64, |a, &x| a.wrapping_add(x)),
            );
        },
        |s| black_box(s.sum) as f32,
    );
    best.map_or(0.0, |(units, secs)| {
        (units * BW_BLOCK_BYTES) as f64 / secs / 1e9
    })
}

/// Runs `work` on `threads` threads (the caller's thread is one of them) in repetitions until `phase` has passed
/// (at least two timed repetitions after a warm-up), and returns the fastest repetition as (units done, seconds).
///
/// Within a repetition the threads take unit indices from a shared counter until `units` are done; a repetition
/// lasts from the first thread's start to the last thread's end. The first repetition is a warm-up that also sizes
/// the others: `units` is scaled so that a repetition takes about 1/24 of the phase (short enough to fit
/// between two time slices of a competing process). Many short repetitions
/// make it likely that some of them run undisturbed by other processes.
fn measure<S, I, W, F>(
    threads: usize,
    phase: Duration,
    statistic: Statistic,
    init: I,
    work: W,
    finish: F,
) -> Option<(usize, f64)>
where
    I: Fn(usize) -> S + Sync,
    W: Fn(&mut S, usize) + Sync,
    F: Fn(&S) -> f32 + Sync,
{
    let (best, total) = measure_both(threads, phase, init, work, finish);
    match statistic {
        Statistic::Fastest => best,
        Statistic::Throughput => total,
    }
}

/// [`measure`]'s two results: the fastest timed repetition, and all timed repetitions together
/// (units, seconds).
fn measure_both<S, I, W, F>(
    threads: usize,
    phase: Duration,
    init: I,
    work: W,
    finish: F,
) -> (Option<(usize, f64)>, Option<(usize, f64)>)
where
    I: Fn(usize) -> S + Sync,
    W: Fn(&mut S, usize) + Sync,
    F: Fn(&S) -> f32 + Sync,
{
    let phase_start = Instant::now();
    let target_rep = (phase / 24).max(Duration::from_micros(50));
    let counter = AtomicUsize::new(0);
    let units = AtomicUsize::new(threads);
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads);
    let spans: Vec<Mutex<Option<(Instant, Instant)>>> =
        (0..threads).map(|_| Mutex::new(None)).collect();
    let mut best: Option<(usize, f64)> = None;
    let mut total: Option<(usize, f64)> = None;

    type Leader<'a> = (&'a mut Option<(usize, f64)>, &'a mut Option<(usize, f64)>);
    let worker = |index: usize, mut leader: Option<Leader<'_>>| {
        let mut state = init(index);
        let mut reps = 0usize;
        loop {
            barrier.wait();
            let t0 = Instant::now();
            let n = units.load(Ordering::Acquire);
            loop {
                let u = counter.fetch_add(1, Ordering::Relaxed);
                if u >= n {
                    break;
                }
                work(&mut state, u);
            }
            let t1 = Instant::now();
            if let Ok(mut span) = spans[index].lock() {
                *span = Some((t0, t1));
            }
            barrier.wait();
            if let Some((best, total)) = leader.as_mut() {
                let (mut first, mut last) = (t0, t1);
                for span in &spans {
                    if let Ok(Some((a, b))) = span.lock().map(|s| *s) {
                        first = first.min(a);
                        last = last.max(b);
                    }
                }
                let secs = (last - first).as_secs_f64();
                reps += 1;
                if reps > 1 && secs > 0.0 {
                    let rate = n as f64 / secs;
                    if best.is_none_or(|(bu, bs)| rate > bu as f64 / bs) {
                        **best = Some((n, secs));
                    }
                    let (tu, ts) = total.unwrap_or((0, 0.0));
                    **total = Some((tu + n, ts + secs));
                }
                if secs > 0.0 {
                    let scale = (target_rep.as_secs_f64() / secs).min(1000.0);
                    let next = ((n as f64 * scale).round() as usize).clamp(threads, 1 << 24);
                    units.store(next, Ordering::Release);
                }
                counter.store(0, Ordering::Release);
                let elapsed = phase_start.elapsed();
                // At least one timed repetition after the warm-up; then stop when another would end past the phase.
                let done = reps >= 2
                    && elapsed + Duration::from_secs_f64(secs.min(target_rep.as_secs_f64()))
                        > phase;
                stop.store(done || reps >= 256, Ordering::Release);
            }
            barrier.wait();
            if stop.load(Ordering::Acquire) {
                break;
            }
        }
        black_box(finish(&state));
    };

    std::thread::scope(|scope| {
        for index in 1..threads {
            let worker = &worker;
            scope.spawn(move || worker(index, None));
        }
        worker(0, Some((&mut best, &mut total)));
    });
    (best, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_tile_matches_naive_product() {
        let a = tile(0.5);
        let b = tile(-0.25);
        let mut c = Box::new([[0.0f32; TILE]; TILE]);
        gemm_tile(&a, &b, &mut c);
        for i in [0, 5, 63] {
            for j in [0, 9, 62] {
                let want: f32 = (0..TILE).map(|k| a[i][k] * b[k][j]).sum();
                assert!(
                    (c[i][j] - want).abs() < 1e-3,
                    "c[{i}][{j}] = {} want {want}",
                    c[i][j]
                );
            }
        }
    }

    #[test]
    fn dwconv_matches_naive() {
        let pw = DW_W + 2;
        let ph = DW_H + 2;
        let input: Vec<f32> = (0..DW_C * ph * pw).map(|i| (i % 11) as f32 * 0.1).collect();
        let weight: Vec<f32> = (0..DW_C * 9).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
        let mut out = vec![0.0; DW_C * DW_H * DW_W];
        dwconv(&input, &weight, &mut out);
        for (c, y, x) in [(0, 0, 0), (3, 10, 27), (15, 27, 13)] {
            let mut want = 0.0f32;
            for dy in 0..3 {
                for dx in 0..3 {
                    want +=
                        weight[c * 9 + dy * 3 + dx] * input[c * ph * pw + (y + dy) * pw + x + dx];
                }
            }
            let got = out[c * DW_H * DW_W + y * DW_W + x];
            assert!((got - want).abs() < 1e-4, "({c},{y},{x}) {got} vs {want}");
        }
    }

    #[test]
    fn median_of_odd_even_and_empty_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn mean_std_cv_of_a_known_sample() {
        let (m, s, cv) = mean_std_cv(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((m - 5.0).abs() < 1e-12 && (s - 2.0).abs() < 1e-12 && (cv - 0.4).abs() < 1e-12);
        assert_eq!(mean_std_cv(&[]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn run_reports_positive_rates_within_budget() {
        let r = run(20, 2);
        assert!(r.gemm_gflops_1t > 0.1 && r.gemm_gflops_mt > 0.1, "{r:?}");
        assert!(r.dwconv_gflops > 0.01 && r.mem_bw_gbps > 0.1, "{r:?}");
        assert_eq!(r.threads, 2);
        // Generous: a debug build or a loaded machine may overrun the budget.
        assert!(r.bench_ms < 2000.0, "{r:?}");
    }
}
