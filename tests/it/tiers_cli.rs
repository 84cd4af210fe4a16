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

    let o = run(&[
        "select",
        "--bundle",
        &s(&bundle),
        "--profile",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/device-profiles/catalog/xiaomi-14.json"
        ),
        "--json",
    ]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "{}",
        stderr(&o)
    );
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(d["decision"]["chosen"].is_string(), "{d}");

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
