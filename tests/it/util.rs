//! Helpers: run the binary, make tiny datasets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tierforge"))
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("spawn tierforge")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub use fixtures::toy_image;

/// Writes an IDX dataset of `n` train and `n/4` test images of `size`² with `classes` classes.
pub fn write_idx(dir: &Path, n: usize, size: usize, classes: usize) {
    fixtures::write_toy_idx(dir, n, size, classes).unwrap();
}

/// Writes an ImageFolder tree (train/ and test/) of PNGs.
pub fn write_image_folder(dir: &Path, per_class: usize, size: usize, classes: &[&str]) {
    for (split, count) in [("train", per_class), ("test", per_class / 4 + 1)] {
        for (l, c) in classes.iter().enumerate() {
            let d = dir.join(split).join(c);
            std::fs::create_dir_all(&d).unwrap();
            for i in 0..count {
                let px = toy_image(l, size, i);
                image::GrayImage::from_raw(size as u32, size as u32, px)
                    .unwrap()
                    .save(d.join(format!("{i}.png")))
                    .unwrap();
            }
        }
    }
}

/// A tiny training config for `classes` classes of `size`² grayscale images.
pub fn tiny_config(dir: &Path, epochs: usize, classes: usize, size: usize) -> PathBuf {
    let space = supernet::SearchSpace::tiny(1, classes, size);
    let cfg = serde_json::json!({
        "format_version": 1,
        "seed": 7,
        "epochs": epochs,
        "batch_size": 16,
        "calib_images": 64,
        "warmup_epochs": 0.0,
        "augment": {"pad": 0, "hflip": false},
        "optimizer": {"kind": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": true, "weight_decay": 0.0001},
        "space": space,
    });
    let p = dir.join("tiny.json");
    std::fs::write(&p, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    p
}
