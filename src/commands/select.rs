//! `tierforge select`: which variant of a bundle a device gets, and why.
//!
//! ```text
//! tierforge select --bundle B [--profile P.json] [--budget-ms N] [--json]
//! ```
//! Prints the decision and one line per rejected variant (stdout); `--json` prints
//! `{ "device": …, "decision": … }` instead. Exit code 0 when a variant fits the budgets, 4 when
//! none does (the smallest is then reported), 1 on errors, 2 on a bad command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use runtime::{Bundle, DeviceFacts, Policy, select_excluding};

/// Exit code when no variant fits the device's budgets.
pub const EXIT_NOTHING_FITS: u8 = crate::exit::NOTHING_FITS;

/// Arguments of `tierforge select`.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// The bundle folder (the one holding manifest.json).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// A device profile (JSON); without it, the device this runs on is probed.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Latency budget per inference in milliseconds (default: the bundle's).
    #[arg(long, value_name = "MS", value_parser = super::parse_budget_ms)]
    pub budget_ms: Option<f64>,
    /// Print the decision as JSON (for machines).
    #[arg(long)]
    pub json: bool,
}

/// Runs `tierforge select` with the default profile loader and probe.
///
/// # Errors
/// An unreadable or invalid bundle or profile, or an invalid budget.
pub fn run(args: SelectArgs) -> Result<ExitCode> {
    run_with(args, load_facts_json, probe_this_device)
}

/// Runs `tierforge select` with the given profile loader (for `--profile`) and device probe
/// (without it).
///
/// # Errors
/// As [`run`], plus whatever `load_profile` or `probe` return.
pub fn run_with(
    args: SelectArgs,
    load_profile: fn(&Path) -> Result<DeviceFacts>,
    probe: fn() -> Result<DeviceFacts>,
) -> Result<ExitCode> {
    let bundle = Bundle::open(&args.bundle)
        .with_context(|| format!("cannot open bundle {}", args.bundle.display()))?;
    let device = match &args.profile {
        Some(p) => load_profile(p)
            .with_context(|| format!("cannot load device profile {}", p.display()))?,
        None => probe().context("cannot probe this device; pass --profile FILE instead")?,
    };
    let policy = Policy {
        latency_budget_ms: args.budget_ms,
        ..Policy::default()
    };
    // Only a variant whose file verifies (regular file inside the bundle, size, sha256) and
    // decodes into its arch is picked: a damaged one is skipped, as the runtime would.
    let mut skipped: Vec<(String, String)> = Vec::new();
    let decision = loop {
        let excluded: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
        let d = match select_excluding(bundle.manifest(), &device, &policy, &excluded) {
            Ok(d) => d,
            Err(runtime::Error::AllExcluded { .. }) => {
                let lines: Vec<String> = skipped
                    .iter()
                    .map(|(id, why)| format!("  {id}: {why}"))
                    .collect();
                anyhow::bail!(
                    "no variant of {} has a usable weights file; rebuild or re-copy the bundle:\n{}",
                    args.bundle.display(),
                    lines.join("\n")
                );
            }
            Err(e) => return Err(e).context("cannot select a variant"),
        };
        let check = bundle.variant(&d.chosen).and_then(|v| {
            let bytes = bundle.read_variant(&v.id)?;
            runtime::load_net(bundle.manifest().family(), v, &bytes).map(|_| ())
        });
        match check {
            Ok(()) => break d,
            Err(e) => skipped.push((d.chosen.clone(), e.to_string())),
        }
    };

    if args.json {
        #[derive(serde::Serialize)]
        struct Skipped<'a> {
            variant: &'a str,
            reason: &'a str,
        }
        #[derive(serde::Serialize)]
        struct Out<'a> {
            device: &'a DeviceFacts,
            decision: &'a runtime::Decision,
            /// Variants passed over because their file did not verify or load.
            skipped: Vec<Skipped<'a>>,
        }
        let out = Out {
            device: &device,
            decision: &decision,
            skipped: skipped
                .iter()
                .map(|(variant, reason)| Skipped { variant, reason })
                .collect(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "device: {} ({}), score {:.2}, RAM {}, {} big cores",
            device.id,
            device.name,
            device.score,
            device.ram_bytes.map_or_else(
                || "unknown (1 GiB assumed)".to_string(),
                |b| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
            ),
            device.big_cores
        );
        for (id, why) in &skipped {
            println!("skipped `{id}`: its file does not verify or load: {why}");
        }
        println!("{decision}");
    }
    Ok(if decision.fits {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NOTHING_FITS)
    })
}

/// Reads a [`DeviceFacts`] JSON file (`id`, `name`, `fingerprint`, `score`, `ram_bytes`,
/// `big_cores`).
///
/// # Errors
/// Unreadable file, malformed JSON, or invalid facts.
pub fn load_facts_json(path: &Path) -> Result<DeviceFacts> {
    let text = super::read_small_text(path, "--profile")?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--profile {}: not a JSON file", path.display()))?;
    // A device profile (`tierforge profile --json`, or a catalog phone) has a format_version;
    // its own errors (naming the field) are the ones to show.
    let is_profile = value
        .as_object()
        .is_some_and(|o| o.contains_key("format_version") || o.contains_key("cpu"));
    if is_profile {
        let p = device_profiles::DeviceProfile::from_json_str(&text, &path.display().to_string())
            .with_context(|| format!("--profile {}: invalid device profile", path.display()))?;
        return Ok(DeviceFacts::from(&p));
    }
    let facts: DeviceFacts = serde_json::from_str(&text).with_context(|| {
        format!(
            "--profile {}: neither a device profile (it has no format_version) nor a device \
             facts JSON file",
            path.display()
        )
    })?;
    facts
        .validate()
        .with_context(|| format!("--profile {}", path.display()))?;
    Ok(facts)
}

/// Profiles this machine with the device-profiles probe (≤ 20 ms).
///
/// # Errors
/// None in practice: the probe records what it cannot read as unknown.
pub fn probe_this_device() -> Result<DeviceFacts> {
    let p = device_profiles::probe(&device_profiles::ProbeOptions::default());
    Ok(DeviceFacts::from(&p))
}
