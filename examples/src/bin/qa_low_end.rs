//! QA on the low end: every very-low and low tier phone of the built-in catalog, emulated on
//! this host with the bundle's variants — the variant each one gets, its emulated latency and
//! peak memory against its budgets, and a verdict.
//!
//! ```text
//! cargo run --release -p tierforge-examples --bin qa_low_end -- --bundle B
//!     [--out DIR] [--images K] [--data D]
//! ```
//! Writes `qa.md`, `qa.json`, `qa.svg` and `qa.png` into `--out` (default `qa-low-end`), prints
//! the table, and exits with 3 when a phone fails. The measurements run in child processes of
//! this same program (`--qa-child`), each under the phone's resident-memory budget.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use device_profiles::{TierClass, catalog};
use tiers::qa::{self, ChildCommand, ChildRequest, QaOptions};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_FLAG: &str = "--qa-child";

/// The child's command line after [`CHILD_FLAG`]: the request's flags.
#[derive(clap::Parser)]
struct ChildCli {
    #[command(flatten)]
    request: ChildRequest,
}

fn run() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some(CHILD_FLAG) {
        use clap::Parser as _;
        let cli = ChildCli::try_parse_from(args)?;
        println!("{}", serde_json::to_string(&qa::measure(&cli.request)?)?);
        return Ok(ExitCode::SUCCESS);
    }
    let (mut bundle, mut out, mut images, mut data) = (
        None,
        PathBuf::from("qa-low-end"),
        qa::DEFAULT_IMAGES,
        PathBuf::from("data/fashion-mnist"),
    );
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--out" => out = PathBuf::from(value()?),
            "--images" => images = value()?.parse().context("--images takes a count")?,
            "--data" => data = PathBuf::from(value()?),
            _ => bail!("usage: qa_low_end --bundle B [--out DIR] [--images K] [--data D]"),
        }
    }
    let bundle = bundle.context("--bundle is required")?;
    let phones: Vec<_> = catalog::builtin()?
        .into_iter()
        .filter(|p| p.tier <= TierClass::Low)
        .collect();
    let child = ChildCommand {
        program: std::env::current_exe()?,
        args: vec![CHILD_FLAG.into()],
    };
    let mut options = QaOptions::new(bundle, phones, data, out.clone(), child);
    options.images = images;
    let report = qa::run_qa(&options, &mut |line| eprintln!("{line}"))?;
    println!("{}", qa::markdown(&report));
    eprintln!("report in {}", out.display());
    Ok(if report.all_pass() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
