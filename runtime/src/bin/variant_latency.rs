//! Batch-1 latency of every variant of a bundle through the runtime's own path
//! (`Session::predict`: a u8 image of the family's native size, resized, normalised, the
//! engine, softmax), on the calling thread. Built with the runtime alone, so it measures the
//! library an app ships in whatever profile it is built with:
//!
//! ```text
//! cargo run --profile mobile -p runtime --bin variant_latency -- runs/demo/bundle [ITERS]
//! ```
//!
//! Prints per variant the median and min ms of ITERS calls (after ITERS/10 warm-up calls;
//! default 2000) of the whole `predict` and of the engine alone (`forward` of a preprocessed
//! input, as `tierforge bench infer --engine fast` times it).

use std::process::ExitCode;
use std::time::Instant;

use runtime::{Bundle, ImageRef, Session};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: variant_latency BUNDLE_DIR [ITERS]");
        return ExitCode::from(2);
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
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[0]))
}
