//! `include/tierforge.h` is what cbindgen generates from `src/ffi.rs` today: the header an app
//! compiles against cannot drift from the library.

use std::path::Path;

#[test]
fn header_matches_the_abi() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi.rs"))
        .generate()
        .expect("cbindgen parses src/ffi.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/tierforge.h");
    if std::env::var_os("TIERFORGE_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with src/ffi.rs; regenerate it with\n  TIERFORGE_BLESS=1 cargo test --release -p runtime --test it header\nand commit it",
        path.display()
    );
    // the parts an app relies on are there
    for f in [
        "tf_bundle_open",
        "tf_launch",
        "tf_launch_decision",
        "tf_launch_variant_id",
        "tf_launch_report_json",
        "tf_predict_u8",
        "tf_report_latency",
        "tf_last_error",
        "tf_close",
    ] {
        assert!(
            generated.contains(&format!("{f}(")),
            "{f} missing from the header"
        );
    }
}
