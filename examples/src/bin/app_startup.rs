//! What an app does on start-up, timed: a cold launch (caches cleared: probe + select + load +
//! first predict) and a warm launch (device facts and decision cached: no probe).
//!
//! ```text
//! cargo run --release -p tierforge-examples --bin app_startup -- --bundle B [--app-dir D]
//!     [--phase cold|warm|both] [--repeat N] [--threads N] [--per-variant] [--json]
//! ```
//! - `--app-dir D`: the app data folder holding the caches (default: a fresh temporary folder,
//!   removed at the end). Give one to run `--phase cold` and `--phase warm` as separate
//!   processes, as a real app restart is.
//! - `--repeat N`: launch N times per phase and print the median of each step.
//! - `--per-variant`: also time batch-1 predictions of every variant (median of 50).
//! - `--threads N`: inference (rayon) threads for the whole process.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use runtime::{Bundle, ImageRef, LaunchOptions, LaunchReport, Launcher, Session};
use serde_json::json;

#[derive(Debug)]
struct Args {
    bundle: PathBuf,
    app_dir: Option<PathBuf>,
    phase: String,
    repeat: usize,
    threads: Option<usize>,
    per_variant: bool,
    json: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        bundle: PathBuf::new(),
        app_dir: None,
        phase: "both".into(),
        repeat: 1,
        threads: None,
        per_variant: false,
        json: false,
    };
    let mut bundle = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--app-dir" => a.app_dir = Some(PathBuf::from(value()?)),
            "--phase" => a.phase = value()?,
            "--repeat" => a.repeat = value()?.parse().context("--repeat takes a count")?,
            "--threads" => a.threads = Some(value()?.parse().context("--threads takes a count")?),
            "--per-variant" => a.per_variant = true,
            "--json" => a.json = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: app_startup --bundle B [--app-dir D] [--phase cold|warm|both] [--repeat N] [--threads N] [--per-variant] [--json]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    a.bundle = bundle.context("--bundle B is required (a folder holding manifest.json)")?;
    if !["cold", "warm", "both"].contains(&a.phase.as_str()) {
        bail!("--phase must be cold, warm or both, not {:?}", a.phase);
    }
    a.repeat = a.repeat.max(1);
    Ok(a)
}

/// A deterministic test image of the family's size: a diagonal gradient.
fn test_image(size: usize, channels: usize) -> Vec<u8> {
    (0..size * size * channels)
        .map(|i| {
            let p = i / channels;
            (((p / size + p % size) * 255) / (2 * size)) as u8
        })
        .collect()
}

fn median(v: Vec<f64>) -> f64 {
    device_profiles::bench::median(&v).unwrap_or(f64::NAN)
}

/// One launch + first prediction.
fn launch_once(launcher: &Launcher, args: &Args, pixels: &[u8]) -> Result<(LaunchReport, String)> {
    let mut launch = launcher
        .launch(&args.bundle)
        .with_context(|| format!("cannot launch bundle {}", args.bundle.display()))?;
    let fam = launch.bundle().manifest().family().clone();
    let image = ImageRef {
        pixels,
        width: fam.image_size,
        height: fam.image_size,
        channels: fam.in_channels,
    };
    let p = launch.predict(image).context("first prediction failed")?;
    let said = format!("{} ({:.1}%)", p.label, p.probability * 100.0);
    Ok((launch.report().clone(), said))
}

fn summary(phase: &str, reports: &[LaunchReport]) -> serde_json::Value {
    let col =
        |f: &dyn Fn(&LaunchReport) -> Option<f64>| median(reports.iter().filter_map(f).collect());
    json!({
        "phase": phase,
        "launches": reports.len(),
        "median_ms": {
            "open": col(&|r| Some(r.timings.open_ms)),
            "fingerprint": col(&|r| Some(r.timings.fingerprint_ms)),
            "device_cache": col(&|r| Some(r.timings.device_cache_ms)),
            "probe": col(&|r| r.timings.probe_ms),
            "select": col(&|r| Some(r.timings.select_ms)),
            "pick": col(&|r| Some(r.timings.pick_ms)),
            "load": col(&|r| Some(r.timings.load_ms)),
            "persist": col(&|r| Some(r.timings.persist_ms)),
            "first_predict": col(&|r| r.timings.first_predict_ms),
            "total": col(&|r| Some(r.timings.total_ms)),
        },
        "first": reports.first(),
    })
}

fn per_variant(bundle: &Bundle, pixels: &[u8]) -> Result<serde_json::Value> {
    let fam = bundle.manifest().family().clone();
    let image = ImageRef {
        pixels,
        width: fam.image_size,
        height: fam.image_size,
        channels: fam.in_channels,
    };
    let mut out = Vec::new();
    for v in runtime::size_order(bundle.manifest()) {
        let t = Instant::now();
        let mut s = Session::open(bundle, &v.id)?;
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        for _ in 0..5 {
            s.predict(image)?;
        }
        let mut times = Vec::new();
        for _ in 0..50 {
            let t = Instant::now();
            s.predict(image)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        out.push(json!({
            "variant": v.id,
            "resolution": v.resolution,
            "macs": v.macs,
            "model_bytes": v.model_bytes,
            "test_accuracy": v.test_accuracy,
            "load_ms": load_ms,
            "predict_ms_median": times[times.len() / 2],
            "predict_ms_p90": times[times.len() * 9 / 10],
        }));
    }
    Ok(serde_json::Value::Array(out))
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let (app_dir, temporary) = match &args.app_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("tierforge-app-startup-{}", std::process::id())),
            true,
        ),
    };
    let launcher = Launcher::new(&app_dir).with_options(LaunchOptions {
        threads: args.threads,
        // Measure launches, not the adaptive step-down.
        latency_window: 0,
        ..LaunchOptions::default()
    });
    let bundle = Bundle::open(&args.bundle)
        .with_context(|| format!("cannot open bundle {}", args.bundle.display()))?;
    let fam = bundle.manifest().family();
    let pixels = test_image(fam.image_size, fam.in_channels);
    if !args.json {
        println!(
            "bundle {} v{} ({} variants) at {}; app data in {}",
            bundle.manifest().bundle_id(),
            bundle.manifest().bundle_version(),
            bundle.manifest().variants().len(),
            args.bundle.display(),
            app_dir.display()
        );
    }

    let mut phases = Vec::new();
    if args.phase != "warm" {
        let mut reports = Vec::new();
        let mut said = String::new();
        for _ in 0..args.repeat {
            launcher.clear_caches()?;
            let (r, s) = launch_once(&launcher, &args, &pixels)?;
            reports.push(r);
            said = s;
        }
        phases.push(("cold", reports, said));
    }
    if args.phase != "cold" {
        if args.phase == "warm" && !launcher.device_cache().path().is_file() {
            eprintln!(
                "note: no cached device facts in {}: this first launch is cold",
                app_dir.display()
            );
        }
        let mut reports = Vec::new();
        let mut said = String::new();
        for _ in 0..args.repeat {
            let (r, s) = launch_once(&launcher, &args, &pixels)?;
            reports.push(r);
            said = s;
        }
        phases.push(("warm", reports, said));
    }
    let variants = if args.per_variant {
        Some(per_variant(&bundle, &pixels)?)
    } else {
        None
    };

    if args.json {
        let out = json!({
            "bundle": args.bundle,
            "app_dir": app_dir,
            "threads": runtime::threads_in_force(),
            "phases": phases.iter().map(|(p, r, _)| summary(p, r)).collect::<Vec<_>>(),
            "variants": variants,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (phase, reports, said) in &phases {
            println!("\n{phase} launch:");
            if let Some(r) = reports.first() {
                println!("{r}");
            }
            println!("  first prediction on a test image: {said}");
            if reports.len() > 1 {
                let s = summary(phase, reports);
                println!(
                    "  median of {} launches (ms): {}",
                    reports.len(),
                    s["median_ms"]
                );
            }
        }
        if let Some(serde_json::Value::Array(vs)) = &variants {
            println!("\nbatch-1 predict per variant (median of 50 after 5 warm-up):");
            for v in vs {
                println!(
                    "  {:<12} r={:<3} {:>9} MACs {:>8} B  load {:.2} ms  predict {:.3} ms (p90 {:.3})",
                    v["variant"].as_str().unwrap_or("?"),
                    v["resolution"],
                    v["macs"],
                    v["model_bytes"],
                    v["load_ms"].as_f64().unwrap_or(f64::NAN),
                    v["predict_ms_median"].as_f64().unwrap_or(f64::NAN),
                    v["predict_ms_p90"].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&app_dir);
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
