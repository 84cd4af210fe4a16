//! Runs the whole slicing pipeline over a checkpoint and prints the tier table:
//! `cargo run --release -p tiers --example slice -- RUN_DIR OUT_DIR [SAMPLES] [TEST_LIMIT]`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: slice RUN_DIR OUT_DIR [SAMPLES] [TEST_LIMIT]");
        std::process::exit(2);
    }
    let opts = tiers::PipelineOptions {
        samples: args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60),
        test_limit: args.get(3).and_then(|s| s.parse().ok()),
        ..tiers::PipelineOptions::default()
    };
    let summary = tiers::run_all(&PathBuf::from(&args[0]), &PathBuf::from(&args[1]), &opts)?;
    println!("{summary}");
    Ok(())
}
