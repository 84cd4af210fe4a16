//! Batch-1 latency of every variant of a bundle through the runtime's own path
//! (`Session::predict`: a u8 image of the family's native size, resized, normalised, the
//! engine, softmax), on the calling thread. Built with the runtime alone, so it measures the
//! library an app ships in whatever profile it is built with:
//!
//! ```text
//! cargo run --profile mobile -p runtime --bin variant_latency -- runs/demo/bundle [ITERS]
//! cargo run --release -p runtime --bin variant_latency -- runs/demo/bundle 2000 --threads 1,2
//! ```
//!
//! Prints per variant the median and min ms of ITERS calls (after ITERS/10 warm-up calls;
//! default 2000) of the whole `predict` and of the engine alone (`forward` of a preprocessed
//! input, as `tierforge bench infer --engine fast` times it).
//!
//! With `--threads A,B,..`: the engine's `forward` at each intra-op thread count instead
//! (`FastNet::set_threads`), in 5 interleaved rounds of ITERS/5 calls (the best round's median
//! per count, so a noisy moment hits every count alike), beside the manifest's own figures
//! (`latency_by_threads`, measured by the bundle writer) and the thread count the runtime would
//! choose on this host.

use std::process::ExitCode;
use std::time::Instant;

use runtime::{Bundle, ImageRef, Session};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: variant_latency BUNDLE_DIR [ITERS]");
        return ExitCode::from(2);
    };
    let (args, threads) = match split_threads(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let iters: usize = match args.get(1).map(|s| s.parse()) {
        None => 2000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("error: ITERS must be a whole number ≥ 1");
            return ExitCode::from(2);
        }
    };
    let bundle = match Bundle::open(dir) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(threads) = threads {
        return by_threads(&bundle, iters, &threads);
    }
    let fam = bundle.manifest().family().clone();
    let (c, n) = (fam.in_channels, fam.image_size);
    let pixels: Vec<u8> = (0..c * n * n).map(|i| (i * 37 % 251) as u8).collect();
    let image = ImageRef {
        pixels: &pixels,
        width: n,
        height: n,
        channels: c,
    };
    println!(
        "{:<24} {:>7} {:>12} {:>12} {:>12} {:>12}  kernels",
        "variant", "MMAC", "predict_med", "predict_min", "forward_med", "forward_min"
    );
    for v in bundle.manifest().variants() {
        let mut s = match Session::open(&bundle, &v.id) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let predict = time(iters, || s.predict(image).map(|_| ()));
        let x = vec![0.1f32; s.engine().input_len(1)];
        let forward = time(iters, || s.engine().forward(&x, 1).map(|_| ()));
        let (predict, forward) = match (predict, forward) {
            (Ok(p), Ok(f)) => (p, f),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        println!(
            "{:<24} {:>7.2} {:>12.4} {:>12.4} {:>12.4} {:>12.4}  {}",
            v.id,
            v.macs as f64 / 1e6,
            predict.0,
            predict.1,
            forward.0,
            forward.1,
            s.engine().kernels()
        );
    }
    ExitCode::SUCCESS
}

/// `(median, min)` ms of `iters` calls after `iters / 10` warm-up calls.
fn time(iters: usize, mut f: impl FnMut() -> runtime::Result<()>) -> runtime::Result<(f64, f64)> {
    let mut times = Vec::with_capacity(iters);
    for i in 0..iters + iters / 10 {
        let t = Instant::now();
        f()?;
        if i >= iters / 10 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((
        device_profiles::bench::median(&times).unwrap_or(f64::NAN),
        min,
    ))
}

/// The arguments without `--threads A,B,..`, and the counts it gave.
fn split_threads(args: &[String]) -> Result<(Vec<String>, Option<Vec<usize>>), String> {
    let Some(i) = args.iter().position(|a| a == "--threads") else {
        return Ok((args.to_vec(), None));
    };
    let list = args
        .get(i + 1)
        .ok_or("--threads needs a list, e.g. --threads 1,2")?;
    let counts = list
        .split(',')
        .map(|t| match t.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(format!(
                "--threads {list}: each count must be in 1..=64, e.g. 1,2"
            )),
        })
        .collect::<Result<Vec<usize>, String>>()?;
    let mut rest = args.to_vec();
    rest.drain(i..i + 2);
    Ok((rest, Some(counts)))
}

/// The engine's batch-1 `forward` of every variant at each thread count (see the module docs).
fn by_threads(bundle: &Bundle, iters: usize, threads: &[usize]) -> ExitCode {
    const ROUNDS: usize = 5;
    // the thread choice reads the variant's parallel fraction and the big cores only
    let host = runtime::DeviceFacts {
        id: "host".into(),
        name: "this host".into(),
        fingerprint: device_profiles::Fingerprint::from_u64(0),
        score: 100.0,
        ram_bytes: None,
        big_cores: std::thread::available_parallelism().map_or(1, usize::from),
    };
    print!("{:<24} {:>7}", "variant", "MMAC");
    for t in threads {
        print!(" {:>9}", format!("{t}t ms"));
    }
    println!(" {:>7} {:>14} {:>8}", "gain", "manifest gain", "runtime");
    for v in bundle.manifest().variants() {
        let mut s = match Session::open(bundle, &v.id) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let x = vec![0.1f32; s.engine().input_len(1)];
        let mut best = vec![f64::INFINITY; threads.len()];
        for _ in 0..ROUNDS {
            for (k, &t) in threads.iter().enumerate() {
                let run = s.set_threads(t).and_then(|()| {
                    time((iters / ROUNDS).max(1), || {
                        s.engine().forward(&x, 1).map(|_| ())
                    })
                });
                match run {
                    Ok((med, _)) => best[k] = best[k].min(med),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
        }
        print!("{:<24} {:>7.2}", v.id, v.macs as f64 / 1e6);
        for ms in &best {
            print!(" {ms:>9.4}");
        }
        let last = best.len() - 1;
        let manifest_gain = match (v.latency_by_threads.first(), v.latency_by_threads.last()) {
            (Some(a), Some(b)) if b.threads > a.threads => {
                format!("{:.2} ({}t)", a.ms / b.ms, b.threads)
            }
            _ => "-".into(),
        };
        println!(
            " {:>7.2} {:>14} {:>8}",
            best[0] / best[last],
            manifest_gain,
            runtime::inference_threads(v, &host)
        );
    }
    ExitCode::SUCCESS
}
