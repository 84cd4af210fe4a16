//! Opening, reading, verifying and writing bundles.

use std::fs;

use runtime::{Bundle, Error, Problem};

use crate::common::{edit_manifest, weights, write_bundle, writer};

#[test]
fn round_trip_reads_verified_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    let b = Bundle::open(&dir).unwrap();
    assert_eq!(b.manifest().variants().len(), 3);
    assert_eq!(b.read_variant("medium").unwrap(), weights("medium"));
    let report = b.verify();
    assert!(report.is_ok(), "{report}");
    assert!(report.to_string().contains("all 3 variants verified"));
}

#[test]
fn path_like_file_names_in_manifest_are_rejected() {
    for bad in ["../x", "/etc/passwd", "sub/dir.bin", ".hidden", ""] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bundle");
        write_bundle(&dir, "1");
        edit_manifest(&dir, |v| v["variants"][1]["file"] = bad.into());
        let e = Bundle::open(&dir).unwrap_err();
        match &e {
            Error::BadFileName { variant, file, .. } => {
                assert_eq!((variant.as_str(), file.as_str()), ("medium", bad));
            }
            e => panic!("{bad:?}: {e:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains("manifest.json") && msg.contains("plain name"),
            "{msg}"
        );
    }
}

#[test]
fn wrong_sha256_is_a_clear_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    // Same length, different content.
    let path = dir.join("large.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes[3] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    let b = Bundle::open(&dir).unwrap();
    let e = b.read_variant("large").unwrap_err();
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("large.bin") && msg.contains("sha256") && msg.contains("re-copy"),
        "{msg}"
    );
    // The other variants still read.
    assert!(b.read_variant("small").is_ok());
    // And a manifest whose hash is wrong (file intact) fails the same way.
    let dir2 = tmp.path().join("bundle2");
    write_bundle(&dir2, "1");
    edit_manifest(&dir2, |v| {
        v["variants"][2]["sha256"] = "ab".repeat(32).into()
    });
    let e = Bundle::open(&dir2)
        .unwrap()
        .read_variant("small")
        .unwrap_err();
    assert!(matches!(e, Error::ChecksumMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains("small.bin"));
}

#[test]
fn truncated_file_is_a_hash_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    let path = dir.join("medium.bin");
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() / 2]).unwrap();
    let b = Bundle::open(&dir).unwrap();
    let e = b.read_variant("medium").unwrap_err();
    match &e {
        Error::Truncated {
            expected_bytes,
            found_bytes,
            ..
        } => {
            assert_eq!(
                (*expected_bytes, *found_bytes),
                (full.len() as u64, (full.len() / 2) as u64)
            );
        }
        e => panic!("{e:?}"),
    }
    assert!(e.is_damaged_file());
    let msg = e.to_string();
    assert!(
        msg.contains("medium.bin") && msg.contains("truncated") && msg.contains("sha256"),
        "{msg}"
    );
    let report = b.verify();
    assert!(!report.is_ok());
    let failed: Vec<_> = report
        .failures()
        .map(|c| (c.id.as_str(), c.problem))
        .collect();
    assert_eq!(failed, vec![("medium", Some(Problem::Truncated))]);
}

#[test]
fn newer_format_version_says_upgrade() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    edit_manifest(&dir, |v| {
        v["format_version"] = 2.into();
        v["new_field_from_the_future"] = "x".into();
    });
    let e = Bundle::open(&dir).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NewerFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("manifest.json")
            && msg.contains("newer tierforge")
            && msg.contains("upgrade the runtime"),
        "{msg}"
    );
}

#[test]
fn malformed_json_names_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    edit_manifest(&dir, |v| v["variants"][2]["macs"] = "many".into());
    let msg = Bundle::open(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("manifest.json: malformed JSON at `variants[2].macs`"),
        "{msg}"
    );

    edit_manifest(&dir, |v| {
        v["variants"][2]["macs"] = 5.into();
        v["variants"][2].as_object_mut().unwrap().remove("sha256");
    });
    let msg = Bundle::open(&dir).unwrap_err().to_string();
    assert!(
        msg.contains("sha256") && msg.contains("variants[2]"),
        "{msg}"
    );

    fs::write(dir.join("manifest.json"), "{ not json").unwrap();
    let e = Bundle::open(&dir).unwrap_err();
    assert!(matches!(e, Error::Json { .. }), "{e:?}");
}

#[test]
fn missing_manifest_and_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Bundle::open(tmp.path()).unwrap_err();
    assert!(matches!(e, Error::NoManifest { .. }), "{e:?}");
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    fs::remove_file(dir.join("small.bin")).unwrap();
    let b = Bundle::open(&dir).expect("open does not read weights");
    let e = b.read_variant("small").unwrap_err();
    assert!(matches!(e, Error::MissingFile { .. }), "{e:?}");
    assert!(e.to_string().contains("small.bin"));
}

#[test]
fn verify_with_reports_unloadable_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    fs::write(dir.join("notes.txt"), "hi").unwrap();
    let b = Bundle::open(&dir).unwrap();
    let mut seen = Vec::new();
    let report = b.verify_with(|v, bytes| {
        seen.push(v.id.clone());
        assert_eq!(bytes, weights(&v.id).as_slice());
        if v.id == "medium" {
            Err(runtime::Error::LoadFailed {
                path: v.file.clone().into(),
                source: netspec::Error::Data {
                    path: v.file.clone().into(),
                    reason: "shape mismatch in block 2".into(),
                },
            })
        } else {
            Ok(())
        }
    });
    assert_eq!(seen, ["large", "medium", "small"]);
    let failed: Vec<_> = report
        .failures()
        .map(|c| (c.id.as_str(), c.problem))
        .collect();
    assert_eq!(failed, vec![("medium", Some(Problem::LoadFailed))]);
    let text = report.to_string();
    assert!(
        text.contains("shape mismatch in block 2") && text.contains("1 of 3 variants FAILED"),
        "{text}"
    );
    assert_eq!(report.unlisted_files, vec!["notes.txt".to_string()]);
}

#[test]
fn failed_overwrite_keeps_the_existing_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    write_bundle(&dir, "1");
    let before: Vec<_> = {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };

    // A new version whose last variant's weights cannot be read: the write fails after the
    // other files were written to the temporary folder.
    let mut w = writer("2");
    let mut extra = crate::common::variant("tiny", 500_000, 0.7, 0.5);
    extra.file = "tiny.bin".into();
    w.add_variant_file(extra, tmp.path().join("does-not-exist.safetensors"));
    w.overwrite(true);
    let e = w.write(&dir).unwrap_err();
    assert!(e.to_string().contains("does-not-exist.safetensors"), "{e}");

    // The old bundle is intact and nothing is left beside it.
    let b = Bundle::open(&dir).unwrap();
    assert_eq!(b.manifest().bundle_version(), "1");
    assert!(b.verify().is_ok());
    let mut after: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    after.sort();
    assert_eq!(after, before);
    let siblings: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("bundle")]);

    // Without overwrite an existing target is refused outright.
    let e = writer("3").write(&dir).unwrap_err();
    assert!(matches!(e, Error::TargetExists { .. }), "{e:?}");

    // A successful overwrite replaces it.
    let src = tmp.path().join("tiny-src.bin");
    fs::write(&src, b"tiny weights").unwrap();
    let mut w = writer("2");
    w.add_variant_file(crate::common::variant("tiny", 500_000, 0.7, 0.5), &src);
    w.overwrite(true).write(&dir).unwrap();
    let b = Bundle::open(&dir).unwrap();
    assert_eq!(b.manifest().bundle_version(), "2");
    assert_eq!(b.read_variant("tiny").unwrap(), b"tiny weights");
}

#[test]
fn hostile_manifests_are_refused_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    fixtures::tiny_bundle(&dir).unwrap();
    let cases: Vec<(Box<dyn Fn(&mut serde_json::Value)>, &str)> = vec![
        (
            Box::new(|v| v["variants"][0]["id"] = "max\u{1b}[31m".into()),
            "variants[0].id",
        ),
        (
            Box::new(|v| v["variants"][0]["model_bytes"] = (1u64 << 40).into()),
            "variants[0].model_bytes",
        ),
        (
            Box::new(|v| v["family"]["search_space"]["depths"] = serde_json::json!([1, 1000])),
            "search_space",
        ),
    ];
    for (edit, field) in cases {
        let copy = tmp.path().join("copy");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir(&copy).unwrap();
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        crate::common::edit_manifest(&copy, edit);
        let e = Bundle::open(&copy).unwrap_err().to_string();
        assert!(
            e.contains(field) && e.contains("manifest.json"),
            "{field}: {e}"
        );
        assert!(!e.contains('\u{1b}'), "control character echoed: {e:?}");
    }
    // a manifest that is a symbolic link (to a valid manifest) is refused
    let link = tmp.path().join("linked");
    fs::create_dir(&link).unwrap();
    std::os::unix::fs::symlink(dir.join("manifest.json"), link.join("manifest.json")).unwrap();
    let e = Bundle::open(&link).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
}
