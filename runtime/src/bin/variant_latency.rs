//! Batch-1 latency of every variant of a bundle through the runtime's own path
//! (`Session::predict`: a u8 image of the family's native size, resized, normalised, the
//! engine, softmax), on the calling thread. Built with the runtime alone, so it measures the
//! library an app ships in whatever profile it is built with:
//!
//! ```text
//! cargo run --profile mobile -p runtime --bin variant_latency -- runs/demo/bundle [ITERS]
//! ```
//!
//! Prints `variant  MMAC  median_ms  min_ms  kernels` per variant (median of ITERS calls after
//! ITERS/10 warm-up calls; default 2000).

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
        "{:<24} {:>7} {:>10} {:>10}  kernels",
        "variant", "MMAC", "median_ms", "min_ms"
    );
    for v in bundle.manifest().variants() {
        let mut s = match Session::open(&bundle, &v.id) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        };
        let mut times = Vec::with_capacity(iters);
        for i in 0..iters + iters / 10 {
            let t = Instant::now();
            if let Err(e) = s.predict(image) {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            if i >= iters / 10 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<24} {:>7.2} {:>10.4} {:>10.4}  {}",
            v.id,
            v.macs as f64 / 1e6,
            times[times.len() / 2],
            times[0],
            s.engine().kernels()
        );
    }
    ExitCode::SUCCESS
}
