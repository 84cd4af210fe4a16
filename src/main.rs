//! `tierforge`: train an image model family once, slice it into device tiers, ship it to every
//! phone. A thin binary: parse, dispatch, print errors with their chain.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Profile this machine (or list the phone catalog).
    Profile(commands::profile::ProfileArgs),
    /// Pick the bundle variant for a device and explain why.
    Select(commands::select::SelectArgs),
    /// QA: emulate every catalog phone on this host; a matrix, a chart and a verdict.
    Qa(commands::qa::QaArgs),
    /// One QA measurement (internal: run by `tierforge qa` in a child process).
    #[command(hide = true)]
    QaChild(commands::qa::QaChildArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(t) = cli.threads.or_else(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|s| s.parse().ok())
    }) {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global();
    }
    let result = match cli.command {
        Command::Demo(a) => commands::demo::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Search(a) => commands::search::run(a),
        Command::Bundle(a) => commands::bundle::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Profile(a) => commands::profile::run(a),
        Command::Select(a) => commands::select::run(a),
        Command::Qa(a) => commands::qa::run(a),
        Command::QaChild(a) => commands::qa::run_child(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}
