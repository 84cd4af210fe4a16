//! Every C entry point with hostile arguments: NULLs, a bundle path that is a file, missing,
//! empty and damaged bundles, wrong buffer sizes, zero-sized images, calls after close. Each is
//! an error code with a message; the process goes on; nothing but the app-data caches is
//! written.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char};
use std::fs;
use std::path::Path;
use std::ptr::{null, null_mut};

use fixtures::{TINY_CLASSES, TINY_SIZE, ToySet, tiny_bundle};
use runtime::ffi::*;

fn c(p: &Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

fn last_error(h: u64) -> String {
    let mut buf = vec![0 as c_char; 4096];
    let n = unsafe { tf_last_error(h, buf.as_mut_ptr(), buf.len()) };
    assert!(n >= 1 && n <= buf.len());
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn open(dir: &Path) -> u64 {
    let mut b = 0;
    assert_eq!(
        unsafe { tf_bundle_open(c(dir).as_ptr(), &mut b) },
        TfStatus::Ok,
        "{}",
        last_error(0)
    );
    b
}

fn launch(b: u64, app: &Path) -> u64 {
    let mut l = 0;
    let st = unsafe { tf_launch(b, c(app).as_ptr(), null(), &mut l) };
    assert_eq!(st, TfStatus::Ok, "{}", last_error(b));
    l
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn open_rejects_null_files_missing_and_empty_bundles() {
    let tmp = tempfile::tempdir().unwrap();
    let mut b = 7;
    assert_eq!(
        unsafe { tf_bundle_open(null(), &mut b) },
        TfStatus::NullArgument
    );
    assert_eq!(b, 0);
    assert!(last_error(0).contains("bundle_dir"), "{}", last_error(0));
    let dir = c(tmp.path());
    assert_eq!(
        unsafe { tf_bundle_open(dir.as_ptr(), null_mut()) },
        TfStatus::NullArgument
    );
    assert!(last_error(0).contains("out_bundle"));
    let empty = CString::new("").unwrap();
    assert_eq!(
        unsafe { tf_bundle_open(empty.as_ptr(), &mut b) },
        TfStatus::InvalidArgument
    );
    let file = tmp.path().join("f");
    fs::write(&file, "x").unwrap();
    for (p, want) in [
        (file.clone(), "is a file"),
        (tmp.path().join("missing"), "manifest.json"),
        (tmp.path().to_path_buf(), "manifest.json"),
    ] {
        assert_eq!(
            unsafe { tf_bundle_open(c(&p).as_ptr(), &mut b) },
            TfStatus::BundleInvalid
        );
        let e = last_error(0);
        assert!(
            e.contains(want) && e.contains(&p.display().to_string()),
            "{e}"
        );
    }
    // a manifest that is a FIFO is refused at once, not waited on
    let fifo_dir = tmp.path().join("fifo");
    fs::create_dir(&fifo_dir).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(fifo_dir.join("manifest.json"))
        .status()
        .is_ok_and(|s| s.success());
    if made {
        assert_eq!(
            unsafe { tf_bundle_open(c(&fifo_dir).as_ptr(), &mut b) },
            TfStatus::BundleInvalid
        );
        assert!(last_error(0).contains("FIFO"), "{}", last_error(0));
    }
}

#[test]
fn a_whole_launch_and_every_misuse_of_its_handle() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let before = snapshot(&dir);
    let app = tmp.path().join("app");
    let b = open(&dir);

    // launch: NULL out, NULL app dir, bad options, a file as app dir, a bundle handle that is not one
    let mut l = 0;
    assert_eq!(
        unsafe { tf_launch(b, c(&app).as_ptr(), null(), null_mut()) },
        TfStatus::NullArgument
    );
    assert_eq!(
        unsafe { tf_launch(b, null(), null(), &mut l) },
        TfStatus::NullArgument
    );
    assert!(last_error(b).contains("app_data_dir"));
    let mut o = tf_launch_options_default();
    o.latency_budget_ms = f64::NAN;
    assert_eq!(
        unsafe { tf_launch(b, c(&app).as_ptr(), &o, &mut l) },
        TfStatus::InvalidArgument
    );
    assert!(
        last_error(b).contains("latency_budget_ms"),
        "{}",
        last_error(b)
    );
    o = tf_launch_options_default();
    o.abi_version = 99;
    assert_eq!(
        unsafe { tf_launch(b, c(&app).as_ptr(), &o, &mut l) },
        TfStatus::InvalidArgument
    );
    let file = tmp.path().join("not-a-dir");
    fs::write(&file, "x").unwrap();
    assert_eq!(
        unsafe { tf_launch(b, c(&file).as_ptr(), null(), &mut l) },
        TfStatus::Io
    );
    assert_eq!(
        unsafe { tf_launch(12345, c(&app).as_ptr(), null(), &mut l) },
        TfStatus::InvalidHandle
    );

    let l = launch(b, &app);
    assert_eq!(tf_close(b), TfStatus::Ok); // the launch keeps what it needs
    let mut d = TfDecision::default();
    assert_eq!(unsafe { tf_launch_decision(l, &mut d) }, TfStatus::Ok);
    assert_eq!(d.num_classes as usize, TINY_CLASSES);
    assert_eq!(d.cache_warm, 0);
    assert!(d.predicted_latency_ms > 0.0);
    assert_eq!(
        unsafe { tf_launch_decision(l, null_mut()) },
        TfStatus::NullArgument
    );
    // a bundle handle used as a launch
    assert_eq!(
        unsafe { tf_launch_decision(b, &mut d) },
        TfStatus::InvalidHandle
    );
    assert!(last_error(b).contains("closed"), "{}", last_error(b));

    // strings: size query, too small, exact
    let mut need = 0;
    assert_eq!(
        unsafe { tf_launch_variant_id(l, null_mut(), 0, &mut need) },
        TfStatus::Ok
    );
    let mut small = vec![0 as c_char; need - 1];
    assert_eq!(
        unsafe { tf_launch_variant_id(l, small.as_mut_ptr(), small.len(), null_mut()) },
        TfStatus::BufferTooSmall
    );
    let mut buf = vec![0 as c_char; need];
    assert_eq!(
        unsafe { tf_launch_variant_id(l, buf.as_mut_ptr(), buf.len(), null_mut()) },
        TfStatus::Ok
    );
    let id = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert!(["max", "mid", "min"].contains(&id.as_str()), "{id}");
    assert_eq!(
        unsafe { tf_launch_variant_id(l, null_mut(), 5, null_mut()) },
        TfStatus::NullArgument
    );
    let mut json = vec![0 as c_char; 1 << 16];
    assert_eq!(
        unsafe { tf_launch_report_json(l, json.as_mut_ptr(), json.len(), null_mut()) },
        TfStatus::Ok
    );
    let report: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(json.as_ptr()) }.to_str().unwrap()).unwrap();
    assert_eq!(report["variant"], id.as_str());
    assert_eq!(
        unsafe { tf_label(l, 99, buf.as_mut_ptr(), buf.len(), null_mut()) },
        TfStatus::InvalidArgument
    );

    // predict: a good image, then every bad buffer
    let set = ToySet::new(1, TINY_SIZE, TINY_CLASSES, 3);
    let px = set.image(0).pixels;
    let (w, h) = (TINY_SIZE as u32, TINY_SIZE as u32);
    let mut probs = vec![0f32; TINY_CLASSES];
    let mut top = 99;
    let ok = unsafe {
        tf_predict_u8(
            l,
            px.as_ptr(),
            px.len(),
            w,
            h,
            1,
            probs.as_mut_ptr(),
            probs.len(),
            &mut top,
        )
    };
    assert_eq!(ok, TfStatus::Ok, "{}", last_error(l));
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5 && (top as usize) < TINY_CLASSES);
    assert_eq!(
        probs[top as usize],
        probs.iter().copied().fold(0.0, f32::max)
    );
    for (len, w, h, ch, want) in [
        (px.len() - 1, w, h, 1, TfStatus::BadImage),
        (px.len(), w + 1, h, 1, TfStatus::BadImage),
        (0, 0, 0, 1, TfStatus::BadImage),
        (px.len(), w, h, 3, TfStatus::BadImage),
    ] {
        let st = unsafe {
            tf_predict_u8(
                l,
                px.as_ptr(),
                len,
                w,
                h,
                ch,
                probs.as_mut_ptr(),
                probs.len(),
                &mut top,
            )
        };
        assert_eq!(st, want, "{len} {w}×{h}×{ch}");
        assert!(last_error(l).contains("channel"), "{}", last_error(l));
    }
    let st = unsafe { tf_predict_u8(l, null(), 10, w, h, 1, null_mut(), 0, null_mut()) };
    assert_eq!(st, TfStatus::NullArgument);
    let st = unsafe {
        tf_predict_u8(
            l,
            px.as_ptr(),
            px.len(),
            w,
            h,
            1,
            probs.as_mut_ptr(),
            TINY_CLASSES - 1,
            &mut top,
        )
    };
    assert_eq!(st, TfStatus::BufferTooSmall);
    assert!(last_error(l).contains(&format!("{TINY_CLASSES} classes")));
    let st = unsafe { tf_predict_u8(l, px.as_ptr(), px.len(), w, h, 1, null_mut(), 3, &mut top) };
    assert_eq!(st, TfStatus::NullArgument);
    // the launch still works after all of that
    let st = unsafe { tf_predict_u8(l, px.as_ptr(), px.len(), w, h, 1, null_mut(), 0, &mut top) };
    assert_eq!(st, TfStatus::Ok);
    assert_eq!(last_error(l), "");

    // latency feedback
    let mut down = 5;
    assert_eq!(
        unsafe { tf_report_latency(l, -1.0, &mut down) },
        TfStatus::BadImage
    );
    assert_eq!(
        unsafe { tf_report_latency(l, f64::INFINITY, null_mut()) },
        TfStatus::BadImage
    );
    assert_eq!(
        unsafe { tf_report_latency(l, 0.01, &mut down) },
        TfStatus::Ok
    );
    assert_eq!(down, 0);

    // close, then every call is an error naming the closed handle
    assert_eq!(tf_close(l), TfStatus::Ok);
    assert_eq!(tf_close(l), TfStatus::InvalidHandle);
    let st = unsafe { tf_predict_u8(l, px.as_ptr(), px.len(), w, h, 1, null_mut(), 0, &mut top) };
    assert_eq!(st, TfStatus::InvalidHandle);
    assert!(last_error(l).contains("closed"), "{}", last_error(l));
    assert_eq!(
        unsafe { tf_launch_decision(l, &mut d) },
        TfStatus::InvalidHandle
    );
    assert_eq!(
        unsafe { tf_report_latency(l, 1.0, null_mut()) },
        TfStatus::InvalidHandle
    );
    assert_eq!(tf_close(0), TfStatus::InvalidHandle);

    // status names are static and distinct
    let n = |s| {
        unsafe { CStr::from_ptr(tf_status_name(s)) }
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(n(TfStatus::Ok), "TF_STATUS_OK");
    assert_eq!(n(TfStatus::BadImage), "TF_STATUS_BAD_IMAGE");
    assert_eq!(tf_abi_version(), TF_ABI_VERSION);

    // nothing in the bundle changed; the app data holds only the two caches
    assert_eq!(snapshot(&dir), before);
    assert_eq!(snapshot(&app).len(), 2);
}

#[test]
fn damaged_weights_step_down_and_all_damaged_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    let tiny = tiny_bundle(&dir).unwrap();
    let b = open(&dir);
    let first = launch(b, &tmp.path().join("app0"));
    let mut id = vec![0 as c_char; 64];
    unsafe { tf_launch_variant_id(first, id.as_mut_ptr(), id.len(), null_mut()) };
    let id = unsafe { CStr::from_ptr(id.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    tf_close(first);
    // truncate the chosen file: the next launch (same app data, so the same device facts and
    // the cached pick) steps down past it
    let chosen = tiny.bundle.variant(&id).unwrap().file.clone();
    let bytes = fs::read(dir.join(&chosen)).unwrap();
    fs::write(dir.join(&chosen), &bytes[..bytes.len() / 2]).unwrap();
    let l = launch(b, &tmp.path().join("app0"));
    let mut d = TfDecision::default();
    unsafe { tf_launch_decision(l, &mut d) };
    assert!(d.fallbacks >= 1, "{d:?}");
    tf_close(l);
    // every file damaged: an error listing them, no handle
    for v in tiny.bundle.manifest().variants() {
        fs::write(dir.join(&v.file), b"garbage").unwrap();
    }
    let mut l = 9;
    let st = unsafe { tf_launch(b, c(&tmp.path().join("app2")).as_ptr(), null(), &mut l) };
    assert_eq!(st, TfStatus::NoVariantLoads);
    assert_eq!(l, 0);
    let e = last_error(b);
    for v in tiny.bundle.manifest().variants() {
        assert!(e.contains(&v.file), "{e}");
    }
    tf_close(b);
}
