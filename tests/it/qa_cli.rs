//! `qa`: catalog phones emulated on this host over a real (tiny) bundle, end to end.

use std::path::{Path, PathBuf};

use fixtures::{TINY_CLASSES, TINY_SIZE, tiny_bundle};

use crate::util::*;

fn catalog_file(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("device-profiles/catalog")
        .join(format!("{id}.json"))
}

/// A temp catalog folder holding copies of the given catalog phones.
fn catalog_dir(dir: &Path, ids: &[&str]) -> PathBuf {
    let c = dir.join("catalog");
    std::fs::create_dir_all(&c).unwrap();
    for id in ids {
        std::fs::copy(catalog_file(id), c.join(format!("{id}.json"))).unwrap();
    }
    c
}

/// Bundle + toy test images + a catalog folder in `t`.
fn setup(t: &Path, ids: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let bundle = t.join("bundle");
    tiny_bundle(&bundle).unwrap();
    let data = t.join("data");
    write_idx(&data, 64, TINY_SIZE, TINY_CLASSES);
    (bundle, data, catalog_dir(t, ids))
}

fn qa(
    bundle: &Path,
    catalog: &Path,
    data: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "qa",
        "--bundle",
        bundle.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--images",
        "6",
        "--warmup",
        "1",
        "--probe-runs",
        "3",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn qa_over_catalog_phones_writes_every_report_with_one_row_per_phone() {
    let t = tempfile::tempdir().unwrap();
    let ids = [
        "samsung-galaxy-a01-core",
        "xiaomi-redmi-note-11",
        "xiaomi-14",
    ];
    let (bundle, data, catalog) = setup(t.path(), &ids);
    let out = t.path().join("qa");
    // A generous budget: every phone fits, so the verdict depends only on the emulation.
    let o = qa(&bundle, &catalog, &data, &out, &["--budget-ms", "1000"]);
    let code = o.status.code();
    assert!(
        code == Some(0),
        "exit {code:?}\nstdout {}\nstderr {}",
        stdout(&o),
        stderr(&o)
    );

    for f in ["qa.md", "qa.json", "qa.svg", "qa.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(
        !out.join(".qa-images.pack").exists(),
        "image pack left behind"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("qa.json")).unwrap()).unwrap();
    let phones = v["phones"].as_array().unwrap();
    assert_eq!(phones.len(), ids.len(), "{v}");
    let mut got: Vec<&str> = phones.iter().map(|p| p["id"].as_str().unwrap()).collect();
    got.sort_unstable();
    let mut want = ids.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    for p in phones {
        assert_eq!(p["pass"], true, "{p}");
        assert_eq!(p["outcome"]["status"], "done", "{p}");
        assert!(p["emulated_ms"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["peak_rss_bytes"].as_u64().unwrap() > 0, "{p}");
        assert!(p["threads"].as_u64().unwrap() >= 1);
        let acc = p["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{p}");
        // The selector ran with the override, exactly as the runtime would.
        assert_eq!(p["decision"]["latency_budget_ms"], 1000.0);
        assert_eq!(p["decision"]["chosen"], "max", "{p}");
    }
    assert_eq!(v["failed"], 0);
    assert!(v["host"]["score"].as_f64().unwrap() > 0.0);
    // Emulation: the app's launch under a CPU quota where a cgroup is writable (root), else
    // host latency scaled, and the report says which.
    let emulation = v["emulation"].as_str().unwrap();
    assert!(["cpu-quota", "scaled"].contains(&emulation), "{v}");
    for p in phones {
        assert_eq!(p["picked_by_profile"], p["decision"]["chosen"], "{p}");
        assert!(p["measured_ms"].as_f64().unwrap() > 0.0, "{p}");
        if emulation == "cpu-quota" {
            // every variant fits 1000 ms: the runtime's own pick is the largest too
            assert_eq!(p["picked_by_runtime"], "max", "{p}");
            assert!(p["runtime_score"].as_f64().unwrap() > 0.0, "{p}");
        } else {
            assert!(p["picked_by_runtime"].is_null(), "{p}");
        }
    }
    if emulation == "cpu-quota" {
        // the slow phones ran under a quota; the A01 Core gets the smallest share
        let a01 = phones
            .iter()
            .find(|p| p["id"] == "samsung-galaxy-a01-core")
            .unwrap();
        let q = &a01["quota"];
        let fraction = q["quota_us"].as_f64().unwrap() / q["period_us"].as_f64().unwrap();
        assert!(fraction > 0.0 && fraction < 0.5, "{a01}");
        let leftovers: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/cpu")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("tierforge-qa-"))
                    .collect()
            })
            .unwrap_or_default();
        // other QA runs may be going on at the same time: a group whose QA process has exited
        // must be gone
        let orphans: Vec<&String> = leftovers
            .iter()
            .filter(|n: &&String| {
                let pid = n
                    .trim_start_matches("tierforge-qa-")
                    .split('-')
                    .next()
                    .unwrap_or("");
                !Path::new(&format!("/proc/{pid}")).exists()
            })
            .collect();
        assert!(orphans.is_empty(), "cgroups left behind: {orphans:?}");
        assert!(v["runtime_agrees"][1].as_u64().unwrap() >= 1, "{v}");
    } else {
        assert!(
            v["emulation_note"]
                .as_str()
                .unwrap()
                .contains("No CPU quota"),
            "{v}"
        );
    }
    // Calibration: every variant at 1 (and, on a multi-core host, 2) threads.
    let rows = v["calibration"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    assert!(rows[0]["measured_ms"][0][1].as_f64().unwrap() > 0.0, "{v}");

    let md = std::fs::read_to_string(out.join("qa.md")).unwrap();
    let table_rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("| PASS |"))
        .count();
    assert_eq!(table_rows, ids.len(), "{md}");
    assert!(
        md.contains("## Host and calibration") && md.contains("Median |prediction error|"),
        "{md}"
    );
    assert!(stdout(&o).contains("| phone | tier |"), "{}", stdout(&o));

    let svg = std::fs::read_to_string(out.join("qa.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("budget 1000 ms"),
        "{svg}"
    );
    for id in ids {
        assert!(svg.contains(id), "{id} not in the chart");
    }
    let png = image::open(out.join("qa.png")).unwrap().to_rgb8();
    assert!(png.width() > 200 && png.height() > 200);
    // real (anti-aliased) text: grey edge pixels, which a pixel font or bare shapes lack
    let edges = png
        .pixels()
        .filter(|p| p.0[0] == p.0[1] && p.0[1] == p.0[2] && (90..200).contains(&p.0[0]))
        .count();
    assert!(
        edges > 500,
        "{edges} anti-aliased grey pixels: no text drawn?"
    );
}

#[test]
fn a_phone_whose_memory_fits_nothing_fails_with_the_reason_and_exit_3() {
    let t = tempfile::tempdir().unwrap();
    let (bundle, data, catalog) = setup(t.path(), &["xiaomi-14"]);
    // The same phone with 64 MiB of RAM: a 16 MiB budget holds not even the runtime overhead.
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(catalog_file("xiaomi-14")).unwrap()).unwrap();
    p["id"] = "xiaomi-14-64mb".into();
    p["name"] = "Xiaomi 14 with 64 MiB".into();
    p["ram_bytes"] = (64u64 << 20).into();
    p["tier"] = "very-low".into();
    std::fs::write(
        catalog.join("tiny-ram.json"),
        serde_json::to_string_pretty(&p).unwrap(),
    )
    .unwrap();
    let out = t.path().join("qa");
    let o = qa(
        &bundle,
        &catalog,
        &data,
        &out,
        &["--budget-ms", "1000", "--no-calibration", "--json"],
    );
    assert_eq!(o.status.code(), Some(3), "stderr {}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{err}", stdout(&o)));
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let phones = v["phones"].as_array().unwrap();
    let small = phones.iter().find(|p| p["id"] == "xiaomi-14-64mb").unwrap();
    assert_eq!(small["pass"], false);
    assert_eq!(small["decision"]["fits"], false);
    assert_eq!(
        small["decision"]["shortfall"][0]["kind"], "too_big",
        "{small}"
    );
    let reasons = small["reasons"].to_string();
    assert!(
        reasons.contains("no variant fits") && reasons.contains("too big"),
        "{reasons}"
    );
    // The smallest variant still ran under the phone's 16 MiB resident limit: either within it
    // or killed for going over it (reported, not crashed).
    let status = small["outcome"]["status"].as_str().unwrap();
    assert!(status == "done" || status == "over_memory", "{small}");
    if status == "over_memory" {
        assert!(reasons.contains("over the limit"), "{reasons}");
    }
    let full = phones.iter().find(|p| p["id"] == "xiaomi-14").unwrap();
    assert_eq!(full["pass"], true, "{full}");

    let md = std::fs::read_to_string(out.join("qa.md")).unwrap();
    assert!(md.contains("**FAIL**: no variant fits"), "{md}");
    assert!(out.join("qa.png").is_file() && out.join("qa.svg").is_file());
}

#[test]
fn without_emulation_qa_scales_and_says_why() {
    let t = tempfile::tempdir().unwrap();
    let (bundle, data, catalog) = setup(t.path(), &["samsung-galaxy-a01-core"]);
    let out = t.path().join("qa");
    let o = qa(
        &bundle,
        &catalog,
        &data,
        &out,
        &[
            "--budget-ms",
            "1000",
            "--no-calibration",
            "--no-emulation",
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["emulation"], "scaled", "{v}");
    let note = v["emulation_note"].as_str().unwrap();
    assert!(
        note.contains("No CPU quota") && note.contains("--no-emulation"),
        "{note}"
    );
    let p = &v["phones"][0];
    assert!(
        p["picked_by_runtime"].is_null() && p["quota"].is_null(),
        "{p}"
    );
    // scaled: host latency × host score / phone score, which is what measured_ms reports
    let (host_ms, measured) = (
        p["host_ms"].as_f64().unwrap(),
        p["measured_ms"].as_f64().unwrap(),
    );
    let ratio = v["host"]["score"].as_f64().unwrap() / p["score"].as_f64().unwrap();
    assert!((measured / host_ms - ratio).abs() < 1e-6 * ratio, "{p}");
    assert_eq!(v["runtime_agrees"][1], 0, "{v}");
}
