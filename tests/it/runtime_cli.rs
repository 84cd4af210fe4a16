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
        r#"{"id": "potato", "name": "A very slow device", "fingerprint": "0000000000000b0b",
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

/// `latency --json` for a catalog phone, with optional extra flags: the rows by variant id.
fn latency(bundle: &Path, phone: &str, extra: &[&str]) -> Vec<(String, u64, f64)> {
    let profile = catalog(phone);
    let mut args = vec![
        "latency",
        "--bundle",
        bundle.to_str().unwrap(),
        "--profile",
        profile.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["variant"].as_str().unwrap().to_string(),
                r["threads"].as_u64().unwrap(),
                r["predicted_ms"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn latency_predicts_at_the_runtimes_thread_choice_or_the_asked_count() {
    let t = tempfile::tempdir().unwrap();
    let bundle = t.path().join("bundle");
    tiny_bundle(&bundle).unwrap();
    // `max` ran 1.6x faster on 2 threads of the reference host; the others did not gain
    let manifest_path = bundle.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let max = m["variants"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["id"] == "max")
        .unwrap();
    let one = max["latency_ms"].as_f64().unwrap();
    max["latency_by_threads"] = serde_json::json!([
        {"threads": 1, "ms": one},
        {"threads": 2, "ms": one / 1.6},
    ]);
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let b = runtime::Bundle::open(&bundle).unwrap();
    let phone = device_profiles::catalog::builtin_by_id("samsung-galaxy-a12")
        .unwrap()
        .unwrap();
    let facts = runtime::DeviceFacts::from(&phone);
    assert!(facts.big_cores >= 2, "{facts:?}");

    // default: the runtime's own choice, and the selector's own prediction at it
    let rows = latency(&bundle, "samsung-galaxy-a12", &[]);
    assert_eq!(rows.len(), b.manifest().variants().len());
    for (id, threads, ms) in &rows {
        let v = b.variant(id).unwrap();
        assert_eq!(
            *threads as usize,
            runtime::inference_threads(v, &facts),
            "{id}"
        );
        let want = runtime::predicted_latency_ms(b.manifest(), v, &facts);
        assert!((ms - want).abs() <= 1e-9 * want, "{id}: {ms} vs {want}");
    }
    let by_id =
        |rows: &[(String, u64, f64)], id: &str| rows.iter().find(|r| r.0 == id).cloned().unwrap();
    assert!(by_id(&rows, "max").1 >= 2, "{rows:?}");
    assert_eq!(by_id(&rows, "min").1, 1, "{rows:?}");

    // --threads 1 predicts every variant at one thread: `max` is slower there
    let single = latency(&bundle, "samsung-galaxy-a12", &["--threads", "1"]);
    assert!(single.iter().all(|r| r.1 == 1), "{single:?}");
    assert!(
        by_id(&single, "max").2 > by_id(&rows, "max").2 * 1.2,
        "{single:?} {rows:?}"
    );
    assert_eq!(by_id(&single, "min").2, by_id(&rows, "min").2);
    // --threads 2: `max` between the two; more threads than big cores count as the big cores
    let two = latency(&bundle, "samsung-galaxy-a12", &["--threads", "2"]);
    let m2 = by_id(&two, "max").2;
    assert!(m2 < by_id(&single, "max").2 && m2 >= by_id(&rows, "max").2 - 1e-12);
    let many = latency(&bundle, "samsung-galaxy-a12", &["--threads", "64"]);
    let cores = format!("{}", facts.big_cores);
    let at_cores = latency(&bundle, "samsung-galaxy-a12", &["--threads", &cores]);
    assert_eq!(by_id(&many, "max").2, by_id(&at_cores, "max").2);
}
