//! Fits the latency model's core speeds on public measurements and validates it on devices left
//! out of the fit; prints Markdown for BENCHMARKS.md and the `CORE_MODELS` figures.
//!
//! `cargo run --release -p device-profiles --example fit_latency_model [-- --rows]`
//!
//! Data: `device-profiles/data/public_latency/` (ncnn's benchmark table on ARM devices, ncnn on
//! the calibration host, Paddle-Lite's table; SOURCES.md there says where each comes from).

#[path = "../tests/it/public_fit.rs"]
mod public_fit;

use public_fit::{
    Check, Placement, fit, host_ms, leave_one_device_out, measured_speedups, ncnn_rows,
    ncnn_uses_fp16, paddle_check, paddle_rows, paddle_threads_check, placement_check, summary,
    without_device_factor,
};

fn main() {
    let rows_wanted = std::env::args().any(|a| a == "--rows");
    let host = host_ms();
    let rows = ncnn_rows();
    let paddle = paddle_rows();
    let all = fit(&rows, &paddle, &host, None);
    println!("## Fit on all devices\n");
    println!("| core | fp32 speed per GHz (1.0 = one calibration-host core) | devices | from |");
    println!("|---|---:|---:|---|");
    for (core, (k, n, basis)) in &all.speed_per_ghz {
        println!("| {core} | {k:.4} | {n} | {basis:?} |");
    }
    println!(
        "\nfp16 gain of ncnn on ARMv8.2 cores: {:.3}; parallel bridge (ARM parallel fraction / host's): {:.3} \
         (by class: {:?})\n",
        all.fp16_gain, all.parallel_bridge, all.parallel_bridge_by_class
    );
    println!(
        "host parallel fraction (ncnn, fastest 1- and 2-thread runs): {:?}\n",
        all.host_parallel
    );
    println!("host (ncnn, 1 thread, ms): {host:?}\n");

    let loo = leave_one_device_out(&rows, &paddle, &host);
    let paddle = paddle_check(&rows, &paddle, &host);
    println!("## Validation (each device predicted by a fit without it)\n");
    println!("| set | measurements | within ±25% | median error |");
    println!("|---|---:|---:|---:|");
    let print = |name: &str, checks: Vec<&Check>| {
        let (share, med, n) = summary(&checks);
        println!(
            "| {name} | {n} | {:.0}% | {:.1}% |",
            share * 100.0,
            med * 100.0
        );
    };
    let fp32 = |c: &&Check| !ncnn_uses_fp16(c.row.core);
    print(
        "ncnn fp32 (ARMv8.0 cores), 1 thread",
        loo.iter()
            .filter(fp32)
            .filter(|c| c.row.threads == 1)
            .collect(),
    );
    print(
        "ncnn fp32 (ARMv8.0 cores), 2-4 threads",
        loo.iter()
            .filter(fp32)
            .filter(|c| (2..=4).contains(&c.row.threads))
            .collect(),
    );
    print(
        "ncnn fp32, Cortex-A53, 1 thread",
        loo.iter()
            .filter(|c| c.row.threads == 1 && c.row.core == "cortex-a53")
            .collect(),
    );
    print(
        "ncnn fp16 (ARMv8.2 cores, × fp16 gain), 1 thread",
        loo.iter()
            .filter(|c| !fp32(c) && c.row.threads == 1)
            .collect(),
    );
    print(
        "ncnn fp16 (ARMv8.2 cores, × fp16 gain), 2-4 threads",
        loo.iter()
            .filter(|c| !fp32(c) && (2..=4).contains(&c.row.threads))
            .collect(),
    );
    print("Paddle-Lite fp32, 1 thread", paddle.iter().collect());
    let one_fp32: Vec<&Check> = loo
        .iter()
        .filter(fp32)
        .filter(|c| c.row.threads == 1)
        .chain(paddle.iter())
        .collect();
    print("all fp32, 1 thread (ncnn ARMv8.0 + Paddle-Lite)", one_fp32);
    let paddle_threads = paddle_threads_check(&rows, &paddle_rows(), &host);
    print(
        "Paddle-Lite fp32, 2 and 4 threads (not bound; phones with 4 big cores)",
        paddle_threads.iter().collect(),
    );
    let multi_fp32: Vec<&Check> = loo
        .iter()
        .filter(fp32)
        .filter(|c| (2..=4).contains(&c.row.threads))
        .collect();
    print(
        "ncnn fp32 2-4 threads, each device's own median error taken out (not a prediction)",
        without_device_factor(&multi_fp32).iter().collect(),
    );
    for (name, placement) in [
        ("equal parts (equal_split_cores)", Placement::EqualSplit),
        ("sum of core speeds (effective_cores)", Placement::Sum),
    ] {
        let checks = placement_check(&rows, &paddle_rows(), &host, placement);
        print(
            &format!("ncnn all cores of a big.LITTLE SoC from its big-cluster run, {name}"),
            checks.iter().collect(),
        );
    }

    println!(
        "\n## Measured speed-up on one cluster (median over nets of ms at 1 thread / ms at n)\n"
    );
    println!("| device | core | threads | measured speed-up | model's (median over nets) |");
    println!("|---|---|---:|---:|---:|");
    for ((device, core, t), sp) in measured_speedups(&rows) {
        if ncnn_uses_fp16(core) {
            continue;
        }
        let model: Vec<f64> = rows
            .iter()
            .filter(|r| r.device == device && r.core == core && r.threads == t)
            .filter_map(|r| all.thread_speedup(r))
            .collect();
        println!(
            "| {device} | {core} | {t} | {sp:.2} | {:.2} |",
            public_fit::median(model)
        );
    }

    // Per device: median over nets.
    println!("\n## Per device (median over nets of the error)\n");
    println!(
        "| device | source | core | GHz | threads | nets | measured ms (median) | predicted ms (median) | median error |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    let mut keys: Vec<(String, &str, u32)> = loo
        .iter()
        .chain(paddle.iter())
        .map(|c| (c.row.device.clone(), c.row.source, c.row.threads))
        .collect();
    keys.sort();
    keys.dedup();
    for (d, src, t) in keys {
        let cs: Vec<&Check> = loo
            .iter()
            .chain(paddle.iter())
            .filter(|c| c.row.device == d && c.row.source == src && c.row.threads == t)
            .collect();
        let r = &cs[0].row;
        println!(
            "| {d} | {src} | {} | {:.2} | {t} | {} | {:.1} | {:.1} | {:+.0}% |",
            r.core,
            r.ghz,
            cs.len(),
            public_fit::median(cs.iter().map(|c| c.row.ms).collect()),
            public_fit::median(cs.iter().map(|c| c.predicted_ms).collect()),
            public_fit::median(cs.iter().map(|c| c.error()).collect()) * 100.0
        );
    }
    if rows_wanted {
        println!("\n## Every measurement\n");
        for c in loo.iter().chain(paddle.iter()) {
            println!(
                "{} | {} | {} | {}t | {} | measured {:.2} | predicted {:.2} | {:+.0}%",
                c.row.source,
                c.row.device,
                c.row.core,
                c.row.threads,
                c.row.model,
                c.row.ms,
                c.predicted_ms,
                c.error() * 100.0
            );
        }
    }
}
