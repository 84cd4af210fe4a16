//! Helpers: run the binary, make tiny datasets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use supernet::data::idx::{encode_images, encode_labels};

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

/// A learnable toy image: class k has a bright bar at row 2k (plus seeded noise).
pub fn toy_image(label: usize, size: usize, seed: usize) -> Vec<u8> {
    let mut v = vec![0u8; size * size];
    for (i, p) in v.iter_mut().enumerate() {
        *p = ((i * 37 + seed * 101) % 50) as u8;
    }
    let row = (2 * label + 1) % size;
    for x in 0..size {
        v[row * size + x] = 250;
    }
    v
}

/// Writes an IDX dataset of `n` train and `n/4` test images of `size`² with `classes` classes.
pub fn write_idx(dir: &Path, n: usize, size: usize, classes: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (split, count) in [("train", n), ("t10k", n / 4)] {
        let mut px = Vec::new();
        let mut lb = Vec::new();
        for i in 0..count {
            let l = i % classes;
            px.extend(toy_image(l, size, i));
            lb.push(l as u8);
        }
        std::fs::write(
            dir.join(format!("{split}-images-idx3-ubyte")),
            encode_images(count, size, size, &px),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{split}-labels-idx1-ubyte")),
            encode_labels(&lb),
        )
        .unwrap();
    }
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
