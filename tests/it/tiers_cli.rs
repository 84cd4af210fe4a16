//! `search` → `bundle` → `bundle verify` → `select` on a tiny trained family.

use crate::util::*;

#[test]
fn search_bundle_verify_and_select_end_to_end() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("idx");
    write_idx(&data, 200, 12, 4);
    let cfg = tiny_config(t.path(), 2, 4, 12);
    let run_dir = t.path().join("run");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let o = run(&[
        "train",
        "--data",
        &s(&data),
        "--out",
        &s(&run_dir),
        "--config",
        &s(&cfg),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let search = t.path().join("search");
    let o = run(&[
        "search",
        "--checkpoint",
        &s(&run_dir),
        "--out",
        &s(&search),
        "--samples",
        "12",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(search.join("search.json").is_file());

    let bundle = t.path().join("bundle");
    let o = run(&[
        "bundle",
        "--checkpoint",
        &s(&run_dir),
        "--search",
        &s(&search),
        "--out",
        &s(&bundle),
        "--int8",
        "--calib",
        "64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
            .unwrap();
    let variants = manifest["variants"].as_array().unwrap();
    assert!(variants.iter().any(|v| v["dtype"] == "int8"));
    // every variant is physically its own size: file bytes track params × bytes per param
    for v in variants {
        let bytes = std::fs::metadata(bundle.join(v["file"].as_str().unwrap()))
            .unwrap()
            .len();
        let per = if v["dtype"] == "int8" { 1.0 } else { 4.0 };
        let want = v["params"].as_f64().unwrap() * per;
        assert!(
            (bytes as f64) > want && (bytes as f64) < want * 1.6 + 4096.0,
            "{v}: {bytes} bytes"
        );
    }

    let o = run(&[
        "bundle",
        "verify",
        &s(&bundle),
        "--test",
        "--data",
        &s(&data),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // a flagship with a generous budget gets a variant that fits (exit 0); with a budget no
    // variant meets, the smallest, and exit 4
    let select = |budget_ms: &str| {
        let o = run(&[
            "select",
            "--bundle",
            &s(&bundle),
            "--profile",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/device-profiles/catalog/xiaomi-14.json"
            ),
            "--budget-ms",
            budget_ms,
            "--json",
        ]);
        let d: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (o.status.code(), d, stderr(&o))
    };
    let (code, d, err) = select("1000");
    assert_eq!(code, Some(0), "{d}\n{err}");
    assert_eq!(d["decision"]["fits"], true, "{d}");
    let (code, d, err) = select("0.00001");
    assert_eq!(code, Some(4), "{d}\n{err}");
    assert_eq!(d["decision"]["fits"], false, "{d}");
    // the smallest: fewest MACs, then fewest bytes (the int8 twin), ties by id
    let smallest = variants
        .iter()
        .min_by_key(|v| {
            (
                v["macs"].as_u64().unwrap(),
                v["model_bytes"].as_u64().unwrap(),
                std::cmp::Reverse(v["id"].as_str().unwrap().to_string()),
            )
        })
        .unwrap();
    assert_eq!(d["decision"]["chosen"], smallest["id"], "{d}");

    // the bundle stores each variant's latency measured through the runtime, per thread count
    for v in variants {
        let lt = v["latency_by_threads"]
            .as_array()
            .expect("latency_by_threads");
        assert_eq!(lt[0]["threads"], 1, "{v}");
        assert_eq!(lt[0]["ms"], v["latency_ms"], "{v}");
    }

    // a tier fine-tuned on its own (`train --arch --init-from`) replaces only that tier's weights
    let tier = manifest["tiers"][0].clone();
    let tier_name = tier["name"].as_str().unwrap();
    let tier_variant = variants
        .iter()
        .find(|v| v["id"] == tier["variant"])
        .unwrap()
        .clone();
    let arch_file = t.path().join("tier-arch.json");
    std::fs::write(&arch_file, tier_variant["arch"].to_string()).unwrap();
    let ft = t.path().join("ft");
    let o = run(&[
        "train",
        "--data",
        &s(&data),
        "--out",
        &s(&ft),
        "--config",
        &s(&cfg),
        "--arch",
        &s(&arch_file),
        "--init-from",
        &s(&run_dir),
        "--epochs",
        "1",
        "--lr",
        "0.05",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle2 = t.path().join("bundle2");
    let with_ft = |spec: &str| {
        run(&[
            "bundle",
            "--checkpoint",
            &s(&run_dir),
            "--search",
            &s(&search),
            "--out",
            &s(&bundle2),
            "--calib",
            "64",
            "--tier-checkpoint",
            spec,
        ])
    };
    let o = with_ft(&format!("{tier_name}={}", s(&ft)));
    assert!(o.status.success(), "{}", stderr(&o));
    let m2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle2.join("manifest.json")).unwrap())
            .unwrap();
    for v in m2["variants"].as_array().unwrap() {
        let old = variants.iter().find(|o| o["id"] == v["id"]).unwrap();
        if v["arch"] == tier_variant["arch"] {
            assert_ne!(v["sha256"], old["sha256"], "{} was not fine-tuned", v["id"]);
        } else {
            assert_eq!(v["sha256"], old["sha256"], "{} changed", v["id"]);
        }
    }
    let o = with_ft(&format!("no-such-tier={}", s(&ft)));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no-such-tier") && stderr(&o).contains(tier_name),
        "{}",
        stderr(&o)
    );
    let o = with_ft("missing-equals-sign");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TIER=RUN_DIR"), "{}", stderr(&o));

    // corrupt one file: verify fails and names it
    let f = bundle.join(variants[0]["file"].as_str().unwrap());
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n / 2] ^= 0xff;
    std::fs::write(&f, b).unwrap();
    let o = run(&["bundle", "verify", &s(&bundle)]);
    assert!(!o.status.success());
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(out.contains(variants[0]["file"].as_str().unwrap()), "{out}");
}
