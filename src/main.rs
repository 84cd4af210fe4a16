//! `tierforge`: train an image model family once, slice it into device tiers, ship it to every
//! phone. A thin binary: parse, dispatch, print errors with their chain.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod exit;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_t` (`mimalloc.h`; libmimalloc-sys names
/// only the older options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc to keep the memory it gets back instead of returning it to the OS a second
/// later (`purge_delay = -1`). A training step frees and re-allocates the same few hundred MB
/// of tensors every step; once they were returned, each new buffer faults in fresh (huge) pages
/// that the kernel zeroes first (`clear_page_erms`, 10–20% of a step's cycles). The QA child,
/// which emulates a phone's memory budget, keeps mimalloc's default.
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` stores a process-wide option (an atomic in mimalloc), callable
    // from any thread at any time; 15 is `mi_option_purge_delay` in both the v2 and the v3
    // `mimalloc.h` of libmimalloc-sys 0.1.49, the version Cargo.toml pins (`=0.1.49`).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Train once, slice into tiers, pick on the phone.
#[derive(Parser, Debug)]
#[command(name = "tierforge", version, about, long_about = None)]
struct Cli {
    /// Worker threads for tensor ops (default: all cores; or RAYON_NUM_THREADS).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a small family on Fashion-MNIST end to end and print what it reached.
    Demo(commands::demo::DemoArgs),
    /// Train the supernet once (sandwich rule or progressive shrinking).
    Train(commands::train::TrainArgs),
    /// Recalibrate BN for one sub-net and print its test top-1.
    Eval(commands::eval::EvalArgs),
    /// Search the best sub-net per device tier (accuracy predictor + latency table + evolution).
    Search(commands::search::SearchArgs),
    /// Extract the searched tiers into a bundle, or verify a bundle.
    Bundle(commands::bundle::BundleArgs),
    /// Time training steps and inference (the numbers beside PyTorch in BENCHMARKS.md).
    Bench(commands::bench::BenchArgs),
    /// Profile this machine (or list the phone catalog, or estimate a phone's profile from its spec).
    Profile(commands::profile::ProfileArgs),
    /// Predicted latency of every variant of a bundle on one device (the selector's own prediction).
    Latency(commands::latency::LatencyArgs),
    /// Pick the bundle variant for a device and explain why.
    Select(commands::select::SelectArgs),
    /// QA: emulate every catalog phone on this host; a matrix, a chart and a verdict.
    Qa(commands::qa::QaArgs),
    /// One QA measurement (internal: run by `tierforge qa` in a child process).
    #[command(hide = true)]
    QaChild(commands::qa::QaChildArgs),
}

/// Most worker threads accepted per available core (and at most [`MAX_THREADS`] in all).
const THREADS_PER_CORE: usize = 8;
/// Most worker threads accepted.
const MAX_THREADS: usize = 256;

/// Validates `--threads` (or `RAYON_NUM_THREADS`) and builds the global pool.
fn init_threads(flag: Option<usize>) -> anyhow::Result<()> {
    let (t, source) = match flag {
        Some(t) => (t, "--threads"),
        None => match std::env::var("RAYON_NUM_THREADS") {
            Ok(s) if !s.trim().is_empty() => (
                s.trim().parse::<usize>().map_err(|_| {
                    anyhow::anyhow!(
                        "RAYON_NUM_THREADS={s:?} is not a whole number; set it to a thread count \
                         such as 4, or unset it"
                    )
                })?,
                "RAYON_NUM_THREADS",
            ),
            _ => return Ok(()),
        },
    };
    if t == 0 && source == "RAYON_NUM_THREADS" {
        return Ok(()); // rayon's meaning: the default
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = (THREADS_PER_CORE * cores).min(MAX_THREADS);
    if t == 0 || t > max {
        anyhow::bail!(
            "{source} {t}: must be in 1..={max} ({THREADS_PER_CORE} × the {cores} cores of this \
             machine, at most {MAX_THREADS}); pass e.g. {source} {cores}",
        );
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(t)
        .build_global()
        .map_err(|e| anyhow::anyhow!("{source} {t}: cannot start the worker threads: {e}"))
}

fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::QaChild(_)) {
        keep_freed_memory();
    }
    // `latency --threads N` is the phone's inference thread count (any number its cores
    // allow), not this host's pool: latency computes nothing in parallel
    let pool_threads = match &cli.command {
        Command::Latency(_) => None,
        _ => cli.threads,
    };
    if let Err(e) = init_threads(pool_threads) {
        print_error(&e);
        return ExitCode::from(exit::BAD_ARGUMENT);
    }
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Search(a) => commands::search::run(a),
        Command::Bundle(a) => commands::bundle::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Latency(a) => commands::latency::run(a),
        Command::Select(a) => commands::select::run(a),
        Command::Qa(a) => commands::qa::run(a),
        Command::QaChild(a) => commands::qa::run_child(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            ExitCode::from(exit::ERROR)
        }
    }
}
