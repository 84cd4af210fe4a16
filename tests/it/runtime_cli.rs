//! `select`: which variant of a real (tiny) bundle a catalog phone gets, end to end.

use std::path::{Path, PathBuf};

use fixtures::tiny_bundle;

use crate::util::*;

fn catalog(id: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("device-profiles/catalog")
        .join(format!("{id}.json"))
}

/// `select --json` for `profile`: (exit code, chosen variant, its MACs, the JSON).
fn select(bundle: &Path, profile: &Path) -> (i32, String, u64, serde_json::Value) {
    let o = run(&[
        "select",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--json",
    ]);
    let code = o.status.code().unwrap_or(-1);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: stdout {} stderr {}", stdout(&o), stderr(&o)));
    let chosen = v["decision"]["chosen"].as_str().unwrap().to_string();
    let b = runtime::Bundle::open(bundle).unwrap();
    let macs = b.variant(&chosen).unwrap().macs;
    (code, chosen, macs, v)
}

#[test]
fn weak_phone_and_flagship_get_fitting_variants() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tiny_bundle(&bundle).unwrap();

    let (code, weak, weak_macs, v) = select(&bundle, &catalog("samsung-galaxy-a01-core"));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["device"]["id"], "samsung-galaxy-a01-core");
    assert_eq!(v["decision"]["fits"], true);
    // The A01 Core (score ~82) is too slow for `max` in 10 ms and gets the middle one.
    assert_eq!(weak, "mid", "{v}");
    let rejected = &v["decision"]["reasons"][0];
    assert_eq!(rejected["variant"], "max");
    assert_eq!(rejected["reason"]["kind"], "too_slow");

    let (code, flagship, flagship_macs, v) = select(&bundle, &catalog("xiaomi-14"));
    assert_eq!(code, 0, "{v}");
    assert!(flagship_macs >= weak_macs, "{flagship} vs {weak}");
    assert_eq!(flagship, "max", "{v}");

    // Human-readable output names the choice and the rejected variants.
    let o = run(&[
        "select",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        catalog("samsung-galaxy-a01-core").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("chose `mid`") && text.contains("too slow"),
        "{text}"
    );
}

#[test]
fn a_device_that_fits_nothing_gets_the_smallest_and_exit_code_4() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tiny_bundle(&bundle).unwrap();
    let facts = t.path().join("slow.json");
    std::fs::write(
        &facts,
        r#"{"id": "potato", "name": "A very slow device", "fingerprint": "potato-1",
            "score": 1.0, "ram_bytes": 268435456, "big_cores": 1}"#,
    )
    .unwrap();
    let (code, chosen, _, v) = select(&bundle, &facts);
    assert_eq!(code, 4, "{v}");
    assert_eq!(chosen, "min");
    assert_eq!(v["decision"]["fits"], false);
    assert!(
        !v["decision"]["shortfall"].as_array().unwrap().is_empty(),
        "{v}"
    );

    let o = run(&[
        "select",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        facts.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "nothing fits: exit 4");
    let text = stdout(&o);
    assert!(text.contains("chose `min`"), "{text}");
    assert!(
        text.contains("too slow") || text.contains("too big"),
        "{text}"
    );

    // A budget no catalog phone meets does the same.
    let o = run(&[
        "select",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        catalog("xiaomi-14").to_str().unwrap(),
        "--budget-ms",
        "0.001",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stdout(&o));
}

#[test]
fn a_newer_bundle_is_refused_with_an_error() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tiny_bundle(&bundle).unwrap();
    let path = bundle.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["format_version"] = 99.into();
    std::fs::write(&path, v.to_string()).unwrap();
    let o = run(&[
        "select",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        catalog("xiaomi-14").to_str().unwrap(),
    ]);
    // `select` documents exit code 1 for errors, but `main` exits 2 on every error, the code
    // `select` uses for "nothing fits"; the message and the empty stdout tell them apart.
    assert!(!o.status.success());
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("newer tierforge") && err.contains("upgrade"),
        "{err}"
    );
}
