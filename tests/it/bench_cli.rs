//! `bench infer --bundle`: every variant of a real (tiny) bundle, one JSON line per engine ×
//! variant × batch, and the input/logits dump the peer script reads.

use std::collections::BTreeSet;
use std::path::Path;

use fixtures::{TINY_CLASSES, tiny_bundle};

use crate::util::*;

/// Shape of a `.npy` file written by `--dump-inputs` (format 1.0, `<f4`, C order), checking
/// that the data length matches.
fn npy_shape(path: &Path) -> Vec<usize> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00", "{}", path.display());
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0, "header not 64-byte aligned");
    let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert!(
        h.contains("'descr': '<f4'") && h.contains("'fortran_order': False"),
        "{h}"
    );
    let s = &h[h.find("'shape': (").unwrap() + 10..];
    let shape: Vec<usize> = s[..s.find(')').unwrap()]
        .split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| x.trim().parse().unwrap())
        .collect();
    assert_eq!(
        b.len() - 10 - hl,
        4 * shape.iter().product::<usize>(),
        "{h}"
    );
    shape
}

#[test]
fn bench_infer_bundle_times_every_variant_and_batch() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    let tb = tiny_bundle(&bundle).unwrap();
    let ids: Vec<String> = tb.nets.iter().map(|(id, _)| id.clone()).collect();
    let dump = t.path().join("inputs");
    let o = run(&[
        "bench",
        "infer",
        "--bundle",
        bundle.to_str().unwrap(),
        "--batch",
        "1,3",
        "--iters",
        "2",
        "--warmup",
        "1",
        "--dump-inputs",
        dump.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let engines = ["burn", "fast"];
    assert_eq!(lines.len(), engines.len() * ids.len() * 2, "{}", stdout(&o));
    let mut seen = BTreeSet::new();
    for l in &lines {
        assert_eq!(l["impl"], "tierforge", "{l}");
        let engine = l["engine"].as_str().unwrap().to_string();
        let variant = l["variant"].as_str().unwrap().to_string();
        let batch = l["batch"].as_u64().unwrap();
        assert!(engines.contains(&engine.as_str()), "{l}");
        assert!(ids.contains(&variant), "{l}");
        assert!(seen.insert((engine, variant, batch)), "duplicate line {l}");
        assert_eq!(l["threads"], 1, "{l}");
        assert_eq!(l["bundle_id"], "tiny-real");
        assert_eq!(l["input"], "fashion-mnist-t10k", "{l}");
        let med = l["median_ms"].as_f64().unwrap();
        assert!(med > 0.0 && med.is_finite(), "{l}");
        assert!(l["img_per_s"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["logits_head"].as_array().unwrap().len(), TINY_CLASSES);
        assert!(l["logits_checksum"].as_f64().unwrap().is_finite(), "{l}");
        assert!(l["max_abs_diff_vs_burn"].as_f64().unwrap() < 1e-4, "{l}");
        assert!(l["iters"].as_u64().unwrap() >= 1, "{l}");
    }
    let batches: BTreeSet<u64> = seen.iter().map(|s| s.2).collect();
    assert_eq!(batches, BTreeSet::from([1, 3]));

    // The dump: one input per resolution, reference logits per variant, and the index.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dump.join("inputs.json")).unwrap()).unwrap();
    assert_eq!(index["format"], "tierforge-bench-inputs-v1");
    assert_eq!(index["n"], 3);
    assert_eq!(index["batches"], serde_json::json!([1, 3]));
    let vs = index["variants"].as_array().unwrap();
    assert_eq!(vs.len(), ids.len());
    for v in vs {
        let r = v["resolution"].as_u64().unwrap() as usize;
        assert_eq!(
            npy_shape(&dump.join(v["input"].as_str().unwrap())),
            [3, 1, r, r]
        );
        assert_eq!(
            npy_shape(&dump.join(v["logits"].as_str().unwrap())),
            [3, TINY_CLASSES]
        );
        let file = Path::new(index["bundle"].as_str().unwrap()).join(v["file"].as_str().unwrap());
        assert!(file.is_file(), "{}", file.display());
    }
}

#[test]
fn bench_infer_bundle_dry_run_filters_and_errors() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tiny_bundle(&bundle).unwrap();
    let dump = t.path().join("inputs");
    // --dry-run writes the dump and times nothing; --variants and --synthetic are honoured.
    let o = run(&[
        "bench",
        "infer",
        "--bundle",
        bundle.to_str().unwrap(),
        "--variants",
        "min",
        "--batch",
        "2",
        "--synthetic",
        "--dump-inputs",
        dump.to_str().unwrap(),
        "--dry-run",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dump.join("inputs.json")).unwrap()).unwrap();
    assert_eq!(index["input"], "synthetic");
    assert_eq!(index["variants"].as_array().unwrap().len(), 1);
    assert_eq!(index["variants"][0]["id"], "min");

    // Only the burn engine, human-readable output.
    let o = run(&[
        "bench",
        "infer",
        "--bundle",
        bundle.to_str().unwrap(),
        "--variants",
        "max",
        "--engine",
        "burn",
        "--batch",
        "1",
        "--iters",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("tierforge/burn") && out.contains("max"),
        "{out}"
    );

    // A folder without a bundle: the error names it and says how to make one.
    let missing = t.path().join("nope");
    let o = run(&["bench", "infer", "--bundle", missing.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("nope") && e.contains("demo"), "{e}");

    // An unknown variant lists the ones there are.
    let o = run(&[
        "bench",
        "infer",
        "--bundle",
        bundle.to_str().unwrap(),
        "--variants",
        "huge",
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("huge") && e.contains("max"), "{e}");

    // Bundle-only flags need --bundle.
    let o = run(&["bench", "infer", "--batch", "1,64"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--bundle"), "{}", stderr(&o));
}
