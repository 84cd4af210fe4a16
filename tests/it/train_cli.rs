//! `train` / `eval`: formats, bad input, kill -9 and resume.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::prelude::*;
use supernet::train::Checkpoint;
use supernet::{ArchConfig, BnMode};

use crate::util::*;

#[test]
fn trains_on_idx_and_image_folder_with_the_same_command() {
    let t = tempfile::tempdir().unwrap();
    let idx = t.path().join("idx");
    write_idx(&idx, 160, 12, 4);
    let cfg = tiny_config(t.path(), 2, 4, 12);
    let o = run(&[
        "train",
        "--data",
        idx.to_str().unwrap(),
        "--out",
        t.path().join("r1").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["epochs"], 2);
    // a learnable toy task: the largest sub-net beats chance (25%) clearly
    assert!(s["max_acc"].as_f64().unwrap() > 0.5, "{s}");
    let metrics = std::fs::read_to_string(t.path().join("r1/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);

    let folder = t.path().join("folder");
    write_image_folder(&folder, 24, 12, &["a", "b", "c", "d"]);
    let o = run(&[
        "train",
        "--data",
        folder.to_str().unwrap(),
        "--out",
        t.path().join("r2").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("ImageFolder"), "{}", stderr(&o));

    // eval of max, min and an arch file (the smallest again): with the trainer's calibration
    // size, eval measures what the trainer reported
    let arch = supernet::ArchConfig::min(&supernet::SearchSpace::tiny(1, 4, 12));
    let af = t.path().join("arch.json");
    std::fs::write(&af, serde_json::to_string(&arch).unwrap()).unwrap();
    let top1: Vec<f64> = ["max", "min", af.to_str().unwrap()]
        .iter()
        .map(|a| {
            let o = run(&[
                "eval",
                "--checkpoint",
                t.path().join("r1").to_str().unwrap(),
                "--arch",
                a,
                "--json",
                "--calib",
                "64",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
            assert_eq!(v["test_images"], 40, "{v}");
            v["top1"].as_f64().unwrap()
        })
        .collect();
    assert_eq!(
        top1[0],
        s["max_acc"].as_f64().unwrap(),
        "max: eval {top1:?} vs train {s}"
    );
    assert_eq!(
        top1[1],
        s["min_acc"].as_f64().unwrap(),
        "min: eval {top1:?} vs train {s}"
    );
    assert_eq!(top1[2], top1[1], "the arch file is the smallest sub-net");
    assert!(
        top1[0] > 0.5,
        "the largest sub-net is at chance (25%): {top1:?}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_not_a_panic() {
    let t = tempfile::tempdir().unwrap();
    let cfg = tiny_config(t.path(), 1, 4, 12);
    let out = t.path().join("out");
    let train = |data: &Path| {
        run(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
        ])
    };

    // truncated IDX
    let d = t.path().join("trunc");
    write_idx(&d, 40, 12, 4);
    let f = d.join("train-images-idx3-ubyte");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() / 2]).unwrap();
    let o = train(&d);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("truncated") && !e.contains("panicked"),
        "{e}"
    );

    // wrong magic
    let d = t.path().join("magic");
    write_idx(&d, 40, 12, 4);
    let f = d.join("train-labels-idx1-ubyte");
    let mut b = std::fs::read(&f).unwrap();
    b[2] = 0x77;
    std::fs::write(&f, &b).unwrap();
    let e = stderr(&train(&d));
    assert!(
        e.contains("wrong magic number") && e.contains("train-labels-idx1-ubyte"),
        "{e}"
    );

    // empty ImageFolder class
    let d = t.path().join("folder");
    write_image_folder(&d, 4, 12, &["a", "b"]);
    std::fs::create_dir_all(d.join("train/empty")).unwrap();
    let e = stderr(&train(&d));
    assert!(
        e.contains("empty class folder") && e.contains("empty"),
        "{e}"
    );

    // malformed config
    let bad = t.path().join("bad.json");
    std::fs::write(&bad, r#"{"format_version": 1, "epochz": 3}"#).unwrap();
    let o = run(&[
        "train",
        "--data",
        d.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        bad.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert!(e.contains("bad.json") && e.contains("epochz"), "{e}");

    // invalid arch JSON for eval (needs a checkpoint)
    let good = t.path().join("good");
    write_idx(&good, 64, 12, 4);
    let o = train(&good);
    assert!(o.status.success(), "{}", stderr(&o));
    let af = t.path().join("arch.json");
    std::fs::write(&af, r#"{"resolution": 12, "depths": [2, 2], "kernel_sizes": [[3, 9], [3, 3]], "expand_ratios": [[2, 2], [2, 2]]}"#).unwrap();
    let o = run(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--arch",
        af.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        e.contains("arch.json") && e.contains("kernel_sizes[0][1] = 9"),
        "{e}"
    );
    std::fs::write(&af, r#"{"resolution": 12, "depths": [2, 2]"#).unwrap();
    let e = stderr(&run(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--arch",
        af.to_str().unwrap(),
    ]));
    assert!(
        e.contains("arch.json") && e.contains("malformed JSON"),
        "{e}"
    );
}

fn max_logits(run_dir: &Path) -> Vec<f32> {
    let ck = Checkpoint::open(run_dir).unwrap();
    let dev = Device::flex();
    let m = ck.load_model(&dev).unwrap();
    let arch = ArchConfig::max(&ck.state.space);
    let r = arch.resolution;
    let x: Vec<f32> = (0..4 * r * r).map(|i| ((i as f32) * 0.1).sin()).collect();
    let x = Tensor::<1>::from_data(TensorData::new(x, [4 * r * r]), &dev).reshape([4, 1, r, r]);
    m.forward(x, &arch, BnMode::Train)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn kill_9_then_resume_ends_with_the_same_weights() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("idx");
    write_idx(&data, 480, 12, 4);
    let epochs = 6;
    let cfg = tiny_config(t.path(), epochs, 4, 12);
    let a = t.path().join("a");
    let b = t.path().join("b");
    let args = |out: &Path| {
        vec![
            "train".to_string(),
            "--data".into(),
            data.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
            "--config".into(),
            cfg.to_str().unwrap().into(),
            "--quiet".into(),
        ]
    };
    let o = Command::new(bin())
        .args(args(&a))
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // interrupted run: kill -9 once the second checkpoint is in place
    let mut child = Command::new(bin())
        .args(args(&b))
        .env("RAYON_NUM_THREADS", "1")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let latest = b.join("checkpoints/latest");
    loop {
        if std::fs::read_to_string(&latest)
            .map(|s| s.trim() >= "epoch-0002")
            .unwrap_or(false)
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !b.join("summary.json").exists(),
        "the run finished before it was killed: make it longer"
    );
    // every checkpoint left behind opens and loads
    let ck = Checkpoint::open(&b).unwrap();
    assert!(ck.state.epochs_done >= 2 && ck.state.epochs_done < epochs);
    ck.load_model(&Device::flex()).unwrap();
    ck.load_optimizer(&Device::flex()).unwrap();

    let mut ra = args(&b);
    ra.push("--resume".into());
    let o = Command::new(bin())
        .args(&ra)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("resuming from"), "{}", stderr(&o));

    let (ca, cb) = (Checkpoint::open(&a).unwrap(), Checkpoint::open(&b).unwrap());
    assert_eq!(ca.state.epochs_done, epochs);
    assert_eq!(cb.state.epochs_done, epochs);
    assert_eq!(ca.state.global_step, cb.state.global_step);
    assert_eq!(
        max_logits(&a),
        max_logits(&b),
        "weights differ after resume"
    );
    assert_eq!(
        std::fs::read(ca.dir.join("optim.bin")).unwrap(),
        std::fs::read(cb.dir.join("optim.bin")).unwrap()
    );
    let ma = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let mb = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(ma.lines().count(), epochs);
    assert_eq!(mb.lines().count(), epochs);
}

#[test]
fn progressive_shrinking_runs_all_phases_and_resumes_exactly() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("idx");
    write_idx(&data, 160, 12, 4);
    let cfg_path = tiny_config(t.path(), 4, 4, 12);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["method"] = "progressive".into();
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let train = |out: &Path, resume: bool| {
        let mut a = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--config",
            cfg_path.to_str().unwrap(),
            "--quiet",
        ];
        if resume {
            a.push("--resume");
        }
        let o = run(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let a = t.path().join("a");
    train(&a, false);
    let phases: Vec<String> = std::fs::read_to_string(a.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["phase"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(phases, ["full", "kernel", "depth", "expand"]);
    let ck = Checkpoint::open(&a).unwrap();
    assert!(ck.state.channels_sorted);
    assert!(ck.load_teacher(&Device::flex()).unwrap().is_some());

    // Interrupt after epoch 3 (teacher taken, inside the depth phase), resume, compare.
    let b = t.path().join("b");
    train(&b, false);
    std::fs::remove_dir_all(b.join("checkpoints/epoch-0004")).unwrap();
    std::fs::write(b.join("checkpoints/latest"), "epoch-0003").unwrap();
    let o = train(&b, true);
    assert!(stderr(&o).contains("epoch 3 of 4"), "{}", stderr(&o));
    assert_eq!(max_logits(&a), max_logits(&b));
}

#[test]
fn standalone_baseline_trains_one_arch() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("idx");
    write_idx(&data, 160, 12, 4);
    let cfg = tiny_config(t.path(), 2, 4, 12);
    let arch = ArchConfig::min(&supernet::SearchSpace::tiny(1, 4, 12));
    let af = t.path().join("arch.json");
    std::fs::write(&af, serde_json::to_string(&arch).unwrap()).unwrap();
    let out = t.path().join("base");
    let o = run(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--arch",
        af.to_str().unwrap(),
        "--quiet",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["method"], "standalone");
    assert_eq!(s["max_acc"], s["min_acc"]);
    let ck = Checkpoint::open(&out).unwrap();
    assert_eq!(ck.state.config.standalone_arch, Some(arch));

    // Fine-tune from that run at a vanishing learning rate: the weights are the run's, so the
    // accuracy is the run's (same recalibration and test images), far from a fresh net's.
    let fine = |lr: &str, init: Option<&Path>, dir: &str| {
        let mut a = vec![
            "train".to_string(),
            "--data".into(),
            data.to_str().unwrap().into(),
            "--out".into(),
            t.path().join(dir).to_str().unwrap().into(),
            "--config".into(),
            cfg.to_str().unwrap().into(),
            "--arch".into(),
            af.to_str().unwrap().into(),
            "--epochs".into(),
            "1".into(),
            "--lr".into(),
            lr.into(),
            "--quiet".into(),
            "--json".into(),
        ];
        if let Some(p) = init {
            a.push("--init-from".into());
            a.push(p.to_str().unwrap().into());
        }
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(&a)
    };
    let o = fine("1e-9", Some(&out), "fine");
    assert!(o.status.success(), "{}", stderr(&o));
    let f: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (base_acc, fine_acc) = (
        s["max_acc"].as_f64().unwrap(),
        f["max_acc"].as_f64().unwrap(),
    );
    assert!(
        (base_acc - fine_acc).abs() <= 0.026,
        "base {base_acc} fine-tuned {fine_acc}"
    );
    let o = fine("1e-9", None, "fresh");
    assert!(o.status.success(), "{}", stderr(&o));
    let z: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let fresh_acc = z["max_acc"].as_f64().unwrap();
    assert!(
        fresh_acc < base_acc - 0.1,
        "fresh {fresh_acc} vs trained {base_acc}"
    );
    // a folder without a checkpoint: a clear error naming it
    let o = fine("0.01", Some(&t.path().join("nothing")), "bad");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("nothing") && stderr(&o).contains("no checkpoint"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_gpu_or_a_bad_replica_count_is_refused_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let idx = t.path().join("idx");
    write_idx(&idx, 64, 12, 4);
    let cfg = tiny_config(t.path(), 1, 4, 12);
    let out = t.path().join("run");
    let o = run(&[
        "train",
        "--data",
        idx.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--replicas",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--replicas 3"), "{}", stderr(&o));
    if !supernet::ComputeDevice::GPU_BUILT {
        let o = run(&[
            "train",
            "--data",
            idx.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--quiet",
            "--device",
            "gpu",
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("--features supernet/wgpu"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!out.exists(), "a refused run created {}", out.display());
    // two replicas on the CPU train (two threads, gradients averaged)
    let o = run(&[
        "train",
        "--data",
        idx.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--quiet",
        "--json",
        "--replicas",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(s["epochs"], 1, "{s}");
}
