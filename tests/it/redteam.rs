//! Red team: hostile inputs a user can give the CLI. Each case asserts a non-zero exit that is
//! not a panic (no "panicked", not 101), a message naming the file or flag, a bounded run time,
//! and that files which were there before are byte-for-byte and mtime untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use fixtures::{TINY_CLASSES, TINY_SIZE, tiny_bundle};
use supernet::data::idx::{encode_images, encode_labels};

use crate::util::*;

/// Longest a rejected input may take.
const DEADLINE: Duration = Duration::from_secs(20);

struct Run {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
}

/// Runs the binary with a deadline (killed past it), output into files (no pipe can fill up).
fn run_bounded(args: &[&str], env: &[(&str, &str)]) -> Run {
    let d = tempfile::tempdir().unwrap();
    let (out, err) = (d.path().join("out"), d.path().join("err"));
    let mut c = Command::new(bin());
    c.args(args)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    for (k, v) in env {
        c.env(k, v);
    }
    let t0 = Instant::now();
    let mut child = c.spawn().unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{args:?}: still running after {DEADLINE:?} (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stderr: std::fs::read_to_string(&err).unwrap() + &std::fs::read_to_string(&out).unwrap(),
        elapsed: t0.elapsed(),
    }
}

/// Every file under `dir` with its bytes and mtime.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut m = BTreeMap::new();
    if dir.is_file() {
        let meta = std::fs::metadata(dir).unwrap();
        m.insert(
            dir.to_path_buf(),
            (std::fs::read(dir).unwrap(), meta.modified().unwrap()),
        );
        return m;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let meta = e.metadata().unwrap();
                m.insert(
                    p.clone(),
                    (std::fs::read(&p).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    m
}

/// Runs `args`, asserting a clean refusal whose message holds every one of `needles`, and that
/// nothing under `keep` changed.
fn refuse(args: &[&str], env: &[(&str, &str)], needles: &[&str], keep: &Path) -> String {
    let before = snapshot(keep);
    let r = run_bounded(args, env);
    let e = &r.stderr;
    assert!(
        r.code.is_some() && r.code != Some(0) && r.code != Some(101),
        "{args:?}: exit {:?}\n{e}",
        r.code
    );
    assert!(!e.contains("panicked"), "{args:?}: panicked\n{e}");
    for n in needles {
        assert!(e.contains(n), "{args:?}: message lacks {n:?}:\n{e}");
    }
    assert!(r.elapsed < DEADLINE, "{args:?}: took {:?}", r.elapsed);
    assert_eq!(
        before,
        snapshot(keep),
        "{args:?}: changed files under {keep:?}"
    );
    e.clone()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn train_args<'a>(data: &'a Path, out: &'a Path, cfg: &'a Path) -> Vec<&'a str> {
    vec![
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--config",
        s(cfg),
        "--quiet",
    ]
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo").arg(p).status().unwrap();
    assert!(st.success(), "mkfifo {p:?}");
}

#[test]
fn hostile_idx_files() {
    let t = tempfile::tempdir().unwrap();
    let cfg = tiny_config(t.path(), 1, 4, 12);
    let out = t.path().join("run");
    let d = t.path().join("idx");
    let write_train = |n: usize, r: usize, c: usize, px: &[u8], labels: &[u8]| {
        write_idx(&d, 32, 12, 4);
        std::fs::write(
            d.join("train-images-idx3-ubyte"),
            encode_images(n, r, c, px),
        )
        .unwrap();
        std::fs::write(d.join("train-labels-idx1-ubyte"), encode_labels(labels)).unwrap();
    };
    // 0×0 images (was: index out of bounds in preprocess)
    write_train(4, 0, 0, &[], &[0, 1, 2, 3]);
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "0×0"],
        t.path(),
    );
    // 1×1 images
    write_train(4, 1, 1, &[1, 2, 3, 4], &[0, 1, 2, 3]);
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "1×1"],
        t.path(),
    );
    // 0 training images: the training file is blamed, not the test labels
    write_train(0, 12, 12, &[], &[]);
    let e = refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "0 images"],
        t.path(),
    );
    assert!(!e.contains("t10k-labels"), "{e}");
    // a header declaring 4 G images of 4096×4096: refused before any allocation
    write_train(u32::MAX as usize, 4096, 4096, &[], &[]);
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "more than the"],
        t.path(),
    );
    // a header declaring more labels than the file holds
    write_idx(&d, 32, 12, 4);
    let mut lb = encode_labels(&[0; 32]);
    lb[4..8].copy_from_slice(&(1u32 << 30).to_be_bytes());
    std::fs::write(d.join("train-labels-idx1-ubyte"), lb).unwrap();
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-labels-idx1-ubyte", "truncated"],
        t.path(),
    );
    // trailing garbage after the declared images
    write_idx(&d, 32, 12, 4);
    let mut im = std::fs::read(d.join("train-images-idx3-ubyte")).unwrap();
    im.extend_from_slice(&[0; 100]);
    std::fs::write(d.join("train-images-idx3-ubyte"), im).unwrap();
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "more data than its header"],
        t.path(),
    );
    // labels out of range for classes.txt
    write_idx(&d, 32, 12, 4);
    std::fs::write(d.join("classes.txt"), "a\nb\n").unwrap();
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["labels-idx1-ubyte", "label"],
        t.path(),
    );
    // the images file is a folder
    write_idx(&d, 32, 12, 4);
    std::fs::remove_file(d.join("train-images-idx3-ubyte")).unwrap();
    std::fs::create_dir(d.join("train-images-idx3-ubyte")).unwrap();
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-images-idx3-ubyte", "not a regular file"],
        t.path(),
    );
}

#[test]
fn gzip_bomb_is_not_read_whole() {
    let t = tempfile::tempdir().unwrap();
    let cfg = tiny_config(t.path(), 1, 4, 12);
    let d = t.path().join("bomb");
    write_idx(&d, 32, 12, 4);
    let raw = d.join("train-images-idx3-ubyte");
    let mut bytes = std::fs::read(&raw).unwrap();
    bytes.resize(bytes.len() + (256 << 20), 0); // 256 MiB beyond what the header declares
    std::fs::write(&raw, bytes).unwrap();
    let st = Command::new("gzip")
        .args(["-1", "-f"])
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let z = d.join("train-images-idx3-ubyte.gz");
    assert!(std::fs::metadata(&z).unwrap().len() < 4 << 20);
    refuse(
        &train_args(&d, &t.path().join("run"), &cfg),
        &[],
        &["train-images-idx3-ubyte.gz", "more data than its header"],
        t.path(),
    );
}

#[test]
fn fifos_do_not_hang() {
    let t = tempfile::tempdir().unwrap();
    let cfg = tiny_config(t.path(), 1, 4, 12);
    let out = t.path().join("run");
    let d = t.path().join("idx");
    write_idx(&d, 32, 12, 4);
    std::fs::remove_file(d.join("train-labels-idx1-ubyte")).unwrap();
    mkfifo(&d.join("train-labels-idx1-ubyte"));
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["train-labels-idx1-ubyte", "not a regular file"],
        &cfg,
    );
    let d2 = t.path().join("idx2");
    write_idx(&d2, 32, 12, 4);
    mkfifo(&d2.join("classes.txt"));
    refuse(
        &train_args(&d2, &out, &cfg),
        &[],
        &["classes.txt", "not a regular file"],
        &cfg,
    );
    let fifo_cfg = t.path().join("cfg.fifo");
    mkfifo(&fifo_cfg);
    refuse(
        &train_args(&d2, &out, &fifo_cfg),
        &[],
        &["cfg.fifo", "not a regular file"],
        &cfg,
    );
    let arch = t.path().join("arch.fifo");
    mkfifo(&arch);
    let mut a = train_args(&d2, &out, &cfg);
    a.extend(["--arch", s(&arch)]);
    refuse(
        &a,
        &[],
        &["--arch", "arch.fifo", "not a regular file"],
        &cfg,
    );
    let b = t.path().join("bundle");
    tiny_bundle(&b).unwrap();
    let prof = t.path().join("profile.fifo");
    mkfifo(&prof);
    refuse(
        &["select", "--bundle", s(&b), "--profile", s(&prof)],
        &[],
        &["--profile", "profile.fifo", "not a regular file"],
        &b,
    );
}

#[test]
fn tiny_image_folder_images_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let cfg = tiny_config(t.path(), 1, 2, 12);
    let d = t.path().join("folder");
    write_image_folder(&d, 4, 12, &["a", "b"]);
    let tiny = d.join("train/a/000-first.png");
    image::GrayImage::from_pixel(1, 1, image::Luma([9]))
        .save(&tiny)
        .unwrap();
    refuse(
        &train_args(&d, &t.path().join("run"), &cfg),
        &[],
        &["000-first.png", "1×1", "at least 8×8"],
        &d,
    );
    std::fs::write(&tiny, b"\x89PNG\r\n\x1a\n garbage").unwrap();
    refuse(
        &train_args(&d, &t.path().join("run"), &cfg),
        &[],
        &["000-first.png", "cannot decode"],
        &d,
    );
}

#[test]
fn absurd_flags_are_refused_naming_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let k = t.path();
    for (args, flag) in [
        (
            vec!["--threads", "4096", "select", "--bundle", "nowhere"],
            "--threads",
        ),
        (
            vec!["--threads", "0", "select", "--bundle", "nowhere"],
            "--threads",
        ),
        (vec!["bench", "train-step", "--batch", "100000"], "--batch"),
        (vec!["bench", "train-step", "--batch", "0"], "--batch"),
        (vec!["bench", "train-step", "--steps", "0"], "--steps"),
        (vec!["bench", "infer", "--iters", "0"], "--iters"),
        (
            vec!["eval", "--checkpoint", "nowhere", "--calib", "0"],
            "--calib",
        ),
        (
            vec!["eval", "--checkpoint", "nowhere", "--calib", "1"],
            "--calib",
        ),
        (
            vec!["eval", "--checkpoint", "nowhere", "--limit", "0"],
            "--limit",
        ),
        (
            vec![
                "bundle",
                "--checkpoint",
                "c",
                "--search",
                "s",
                "--out",
                "o",
                "--calib",
                "0",
            ],
            "--calib",
        ),
        (
            vec!["bundle", "verify", "b", "--tolerance-pt=-1"],
            "--tolerance-pt",
        ),
        (
            vec!["bundle", "verify", "b", "--tolerance-pt", "NaN"],
            "--tolerance-pt",
        ),
        (
            vec!["bundle", "verify", "b", "--tolerance-pt", "inf"],
            "--tolerance-pt",
        ),
        (vec!["bench", "train-step", "--batch", "1"], "--batch"),
        (
            vec!["select", "--bundle", "b", "--budget-ms", "0"],
            "--budget-ms",
        ),
        (
            vec!["select", "--bundle", "b", "--budget-ms", "NaN"],
            "--budget-ms",
        ),
        (vec!["qa", "--bundle", "b", "--budget-ms=-5"], "--budget-ms"),
        // a build needs all three of its folders; they do not go with `verify`
        (vec!["bundle", "--checkpoint", "c"], "--search"),
        (vec!["bundle"], "--checkpoint"),
        (
            vec!["bundle", "--checkpoint", "c", "verify", "b"],
            "--checkpoint",
        ),
    ] {
        refuse(&args, &[], &[flag], k);
    }
    let sel = ["select", "--bundle", "nowhere"];
    refuse(
        &sel,
        &[("RAYON_NUM_THREADS", "lots")],
        &["RAYON_NUM_THREADS"],
        k,
    );
    refuse(
        &sel,
        &[("RAYON_NUM_THREADS", "100000")],
        &["RAYON_NUM_THREADS"],
        k,
    );
}

#[test]
fn nonsense_training_configs_name_the_file_and_the_field() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("idx");
    write_idx(&d, 32, 12, 4);
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tiny_config(t.path(), 1, 4, 12)).unwrap())
            .unwrap();
    let cfg = t.path().join("hostile.json");
    let out = t.path().join("run");
    for (path, value, needle) in [
        (
            &["optimizer", "momentum"][..],
            serde_json::json!(5.0),
            "optimizer.momentum = 5",
        ),
        (
            &["optimizer", "lr"][..],
            serde_json::json!(-1.0),
            "optimizer.lr = -1",
        ),
        (
            &["optimizer", "lr"][..],
            serde_json::json!(0.0),
            "optimizer.lr = 0",
        ),
        (
            &["warmup_epochs"][..],
            serde_json::json!(-1.0),
            "warmup_epochs = -1",
        ),
        (&["epochs"][..], serde_json::json!(0), "epochs = 0"),
        (
            &["epochs"][..],
            serde_json::json!(1_000_000_000u64),
            "epochs = 1000000000",
        ),
        (
            &["batch_size"][..],
            serde_json::json!(100_000),
            "batch_size = 100000",
        ),
        (
            &["calib_images"][..],
            serde_json::json!(0),
            "calib_images = 0",
        ),
        (
            &["label_smoothing"][..],
            serde_json::json!(1.5),
            "label_smoothing = 1.5",
        ),
    ] {
        let mut v = base.clone();
        let mut slot = &mut v;
        for p in path {
            slot = &mut slot[*p];
        }
        *slot = value;
        std::fs::write(&cfg, v.to_string()).unwrap();
        refuse(
            &train_args(&d, &out, &cfg),
            &[],
            &["hostile.json", needle],
            t.path(),
        );
    }
    // a flag that makes a valid file invalid names the flag side
    std::fs::write(&cfg, base.to_string()).unwrap();
    let mut a = train_args(&d, &out, &cfg);
    a.extend(["--epochs", "0"]);
    refuse(&a, &[], &["epochs = 0", "--epochs"], t.path());
    let mut a = train_args(&d, &out, &cfg);
    a.extend(["--lr", "NaN"]);
    refuse(&a, &[], &["optimizer.lr = NaN"], t.path());
}

#[test]
fn bundle_out_never_replaces_a_users_folder() {
    let t = tempfile::tempdir().unwrap();
    let notes = t.path().join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("thesis.txt"), "three years of work").unwrap();
    let args = [
        "bundle",
        "--checkpoint",
        "nowhere",
        "--search",
        "nowhere",
        "--out",
        s(&notes),
    ];
    refuse(
        &args,
        &[],
        &["notes", "not a tierforge bundle", "--force"],
        t.path(),
    );
    let file = t.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let args = [
        "bundle",
        "--checkpoint",
        "nowhere",
        "--search",
        "nowhere",
        "--out",
        s(&file),
    ];
    refuse(&args, &[], &["plain-file", "--force"], t.path());
}

/// A real 1-epoch run (2 steps on 32 images) in `t/run`.
fn tiny_run(t: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let d = t.join("idx");
    write_idx(&d, 32, 12, 4);
    let cfg = tiny_config(t, 1, 4, 12);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["calib_images"] = 16.into();
    v["eval_limit"] = 8.into();
    std::fs::write(&cfg, v.to_string()).unwrap();
    let out = t.join("run");
    let r = run_bounded(&train_args(&d, &out, &cfg), &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    (d, out, cfg)
}

#[test]
fn training_runs_are_never_overwritten() {
    let t = tempfile::tempdir().unwrap();
    let (d, out, cfg) = tiny_run(t.path());
    let ck = out.join("checkpoints");
    // a second `train --out` over the run, without --resume
    refuse(
        &train_args(&d, &out, &cfg),
        &[],
        &["holds a training run", "--resume", "--force"],
        &out,
    );
    let mut resume = train_args(&d, &out, &cfg);
    resume.push("--resume");
    // corrupt state.json
    let state = ck.join("epoch-0001/state.json");
    let good_state = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"{\"format_version\": 1, \"conf").unwrap();
    refuse(&resume, &[], &["state.json"], &out);
    std::fs::write(&state, &good_state).unwrap();
    // `latest` naming a missing epoch
    std::fs::write(ck.join("latest"), "epoch-0007").unwrap();
    refuse(
        &resume,
        &[],
        &["epoch-0007", "missing", "--resume-previous"],
        &out,
    );
    // `latest` pointing out of the run folder
    std::fs::write(ck.join("latest"), "../../../../etc").unwrap();
    refuse(&resume, &[], &["latest", "../../../../etc"], &out);
    let e = refuse(
        &["eval", "--checkpoint", s(&out), "--calib", "16"],
        &[],
        &["latest"],
        &out,
    );
    assert!(!e.contains("/etc/state.json"), "{e}");
    std::fs::write(ck.join("latest"), "epoch-0001").unwrap();
    // two flipped bytes in model.bpk
    let model = ck.join("epoch-0001/model.bpk");
    let mut m = std::fs::read(&model).unwrap();
    let n = m.len();
    m[n / 2] ^= 0x40;
    m[n / 2 + 7] ^= 0x01;
    std::fs::write(&model, &m).unwrap();
    refuse(&resume, &[], &["model.bpk", "damaged", "sha256"], &out);
    refuse(
        &["eval", "--checkpoint", s(&out), "--calib", "16"],
        &[],
        &["model.bpk", "damaged"],
        &out,
    );
    // truncated optimizer state
    m[n / 2] ^= 0x40;
    m[n / 2 + 7] ^= 0x01;
    std::fs::write(&model, &m).unwrap();
    let optim = ck.join("epoch-0001/optim.bin");
    let o = std::fs::read(&optim).unwrap();
    std::fs::write(&optim, &o[..o.len() / 2]).unwrap();
    refuse(&resume, &[], &["optim.bin"], &out);
    std::fs::write(&optim, &o).unwrap();
    // --out is a file
    let f = t.path().join("a-file");
    std::fs::write(&f, "mine").unwrap();
    refuse(
        &train_args(&d, &f, &cfg),
        &[],
        &["--out", "a-file", "not a folder"],
        t.path(),
    );
}

#[test]
fn resume_previous_falls_back_to_an_intact_checkpoint() {
    let t = tempfile::tempdir().unwrap();
    let (d, out, cfg) = tiny_run(t.path());
    let ck = out.join("checkpoints");
    // pretend a newer epoch was written and then damaged
    let e1 = ck.join("epoch-0001");
    let e2 = ck.join("epoch-0002");
    std::fs::create_dir(&e2).unwrap();
    for f in ["model.bpk", "optim.bin", "state.json"] {
        std::fs::copy(e1.join(f), e2.join(f)).unwrap();
    }
    std::fs::write(e2.join("model.bpk"), b"damaged").unwrap();
    std::fs::write(ck.join("latest"), "epoch-0002").unwrap();
    let mut resume = train_args(&d, &out, &cfg);
    resume.push("--resume");
    refuse(
        &resume,
        &[],
        &["epoch-0002", "model.bpk", "--resume-previous"],
        &out,
    );
    resume.push("--resume-previous");
    let r = run_bounded(&resume, &[]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("falling back to") && r.stderr.contains("epoch-0001"),
        "{}",
        r.stderr
    );
}

#[test]
fn select_shows_the_real_profile_error() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("bundle");
    tiny_bundle(&b).unwrap();
    let o = run(&["profile", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut p: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let prof = t.path().join("phone.json");
    // an unknown core type: an error listing the known ones, not "unknown field format_version"
    p["cpu"]["clusters"][0]["core"] = "cortex-a99".into();
    std::fs::write(&prof, p.to_string()).unwrap();
    let e = refuse(
        &["select", "--bundle", s(&b), "--profile", s(&prof)],
        &[],
        &["phone.json", "cortex-a99", "cortex-a55"],
        t.path(),
    );
    assert!(!e.contains("unknown field `format_version`"), "{e}");
    // a field of the wrong type
    p["cpu"]["clusters"][0]["core"] = "cortex-a55".into();
    p["ram_bytes"] = "lots".into();
    std::fs::write(&prof, p.to_string()).unwrap();
    let e = refuse(
        &["select", "--bundle", s(&b), "--profile", s(&prof)],
        &[],
        &["phone.json"],
        t.path(),
    );
    assert!(!e.contains("unknown field `format_version`"), "{e}");
    // not JSON at all
    std::fs::write(&prof, "\u{0}\u{1}binary").unwrap();
    refuse(
        &["select", "--bundle", s(&b), "--profile", s(&prof)],
        &[],
        &["phone.json", "not a JSON"],
        t.path(),
    );
}

#[test]
fn verify_test_prints_a_fail_line() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("bundle");
    tiny_bundle(&b).unwrap();
    let data = t.path().join("data");
    write_idx(&data, 64, TINY_SIZE, TINY_CLASSES);
    // the tiny bundle's manifest records no accuracy: re-measuring cannot confirm it
    let e = refuse(
        &["bundle", "verify", s(&b), "--test", "--data", s(&data)],
        &[],
        &["FAIL", "max", "measured"],
        t.path(),
    );
    assert!(e.contains("manifest"), "{e}");
    // a damaged bundle has its own exit code, not the one of an error
    let o = run(&["bundle", "verify", s(&b), "--test", "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}

#[test]
fn raw_debug_text_is_not_shown() {
    let t = tempfile::tempdir().unwrap();
    let (_, out, _) = tiny_run(t.path());
    let model = out.join("checkpoints/epoch-0001/model.bpk");
    let m = std::fs::read(&model).unwrap();
    std::fs::write(&model, &m[..m.len() / 3]).unwrap();
    // drop the checksum so the loader itself meets the truncated file
    let sp = out.join("checkpoints/epoch-0001/state.json");
    let mut st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sp).unwrap()).unwrap();
    st.as_object_mut().unwrap().remove("files_sha256");
    std::fs::write(&sp, st.to_string()).unwrap();
    let e = refuse(
        &["eval", "--checkpoint", s(&out), "--calib", "16"],
        &[],
        &["model.bpk"],
        &out,
    );
    assert!(!e.contains("Io(") && !e.contains("Error {"), "{e}");
}

#[test]
fn select_skips_variants_whose_file_is_not_a_verified_regular_file() {
    let t = tempfile::tempdir().unwrap();
    let b = t.path().join("bundle");
    let tiny = tiny_bundle(&b).unwrap();
    // a fixed, fast device, so the pick does not depend on this machine's load
    let dev = t.path().join("fast.json");
    std::fs::write(
        &dev,
        r#"{"id":"fast","name":"Fast","fingerprint":"f","score":1000.0,"ram_bytes":8589934592,"big_cores":4}"#,
    )
    .unwrap();
    let pick = |b: &Path| {
        let o = run(&["select", "--bundle", s(b), "--profile", s(&dev), "--json"]);
        assert!(matches!(o.status.code(), Some(0 | 2)), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        (v["decision"]["chosen"].as_str().unwrap().to_string(), v)
    };
    let (first, _) = pick(&b);
    assert_eq!(first, "max");
    let file_of = |id: &str| b.join(&tiny.bundle.variant(id).unwrap().file);
    // the chosen file becomes a link to a system file, then a folder, then goes missing
    let target = file_of(&first);
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &target).unwrap();
    let (second, v) = pick(&b);
    assert_ne!(second, first, "{v}");
    assert_eq!(v["skipped"][0]["variant"], first.as_str(), "{v}");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{v}"
    );
    std::fs::remove_file(&target).unwrap();
    std::fs::create_dir(&target).unwrap();
    let (third, v) = pick(&b);
    assert_eq!(third, second, "{v}");
    assert!(
        v["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("folder"),
        "{v}"
    );
    // every file unusable: a clean error naming each
    for var in tiny.bundle.manifest().variants() {
        let p = b.join(&var.file);
        if p.is_file() {
            std::fs::write(&p, b"not weights").unwrap();
        }
    }
    let e = refuse(
        &["select", "--bundle", s(&b), "--profile", s(&dev)],
        &[],
        &["no variant", "re-copy"],
        t.path(),
    );
    for var in tiny.bundle.manifest().variants() {
        assert!(e.contains(&var.id), "{e}");
    }
}

#[test]
fn nan_weights_fail_verify_and_are_never_loaded() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let tiny = tiny_bundle(&src).unwrap();
    // the same bundle, with NaN in one weight of `max` (its sha256 and size are right)
    let b = t.path().join("bundle");
    let mut writer = runtime::BundleWriter::new(fixtures::tiny_header("1"));
    for (id, net) in &tiny.nets {
        let mut folded = net.to_folded().unwrap();
        if id == "max" {
            folded.blocks[0].dw.weight[3] = f32::NAN;
        }
        let mut v = tiny.bundle.variant(id).unwrap().clone();
        v.sha256.clear();
        v.model_bytes = 0;
        writer.add_variant(v, folded.to_safetensors(false));
    }
    writer.write(&b).unwrap();
    let e = refuse(&["bundle", "verify", s(&b)], &[], &["max", "NaN"], t.path());
    assert!(e.contains("blocks.0.dw"), "{e}");
    // select passes over it instead of picking it
    let dev = t.path().join("fast.json");
    std::fs::write(
        &dev,
        r#"{"id":"fast","name":"Fast","fingerprint":"f","score":1000.0,"ram_bytes":8589934592,"big_cores":4}"#,
    )
    .unwrap();
    let o = run(&["select", "--bundle", s(&b), "--profile", s(&dev), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["decision"]["chosen"], "mid", "{v}");
    assert_eq!(v["skipped"][0]["variant"], "max", "{v}");
}
