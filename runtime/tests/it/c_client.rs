//! The C client `examples/c/app_startup.c`, built with `cc` against the static library and
//! `include/tierforge.h`, run as an app runs at start-up: cold, then warm, then with its chosen
//! variant's file damaged. Its picks and top-1 labels equal the Rust `Launcher`'s.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{TINY_CLASSES, TINY_SIZE, ToySet, tiny_bundle};
use runtime::{ImageRef, LaunchOptions, Launcher};

/// `target/<profile>/`, where cargo put `libruntime.a` next to this test's `deps/`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether to skip the native-client tests: `scripts/test_aarch64.sh` sets this, since under
/// qemu-user a test cannot build and exec an arm64 client itself (the script builds and runs
/// the C client under qemu on its own).
pub(crate) fn skip_native_clients() -> bool {
    let skip = std::env::var_os("TIERFORGE_SKIP_NATIVE_CLIENTS").is_some();
    if skip {
        eprintln!("TIERFORGE_SKIP_NATIVE_CLIENTS is set: the C/JNI client is not built here");
    }
    skip
}

/// The freshly built static library `libruntime.a`.
pub(crate) fn static_lib() -> PathBuf {
    // `cargo test` builds the library only as an rlib for this test: (re)build the static
    // library of this very profile first, so the client never links a stale one. In a target
    // folder of its own: built alone, the runtime's dependencies get other features than in the
    // workspace build, and two copies of a crate side by side confuse rustdoc's doctests.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = lib_dir()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "release".into());
    let target = lib_dir()
        .parent()
        .map(|t| t.join("native-clients"))
        .unwrap_or_else(|| PathBuf::from("target/native-clients"));
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet", "-p", "runtime", "--lib"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo());
    if profile == "release" {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "`cargo build -p runtime --lib` failed");
    let out = if profile == "release" {
        "release"
    } else {
        "debug"
    };
    let lib = target.join(out).join("libruntime.a");
    assert!(
        lib.is_file(),
        "{} is missing after `cargo build -p runtime --lib`",
        lib.display()
    );
    lib
}

/// Builds the client, or fails with what to install.
pub(crate) fn build_client(out: &Path) -> PathBuf {
    let lib = static_lib();
    let exe = out.join("app_startup");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-std=c99"])
        .arg("-I")
        .arg(repo().join("runtime/include"))
        .arg(repo().join("examples/c/app_startup.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}; install one (`apt-get install gcc`) or set CC"));
    assert!(
        status.success(),
        "{cc} failed to build examples/c/app_startup.c"
    );
    exe
}

/// A binary PGM (P5) of `pixels` (`w × h`).
pub(crate) fn write_pgm(path: &Path, w: usize, h: usize, pixels: &[u8]) {
    let mut bytes = format!("P5\n# toy image\n{w} {h}\n255\n").into_bytes();
    bytes.extend_from_slice(pixels);
    fs::write(path, bytes).unwrap();
}

pub(crate) struct Run {
    pub variant: String,
    pub cache: String,
    pub step_down: bool,
    /// `(image, label, probability)`.
    pub predictions: Vec<(String, String, f32)>,
}

pub(crate) fn run(exe: &Path, bundle: &Path, app: &Path, images: &[PathBuf]) -> Run {
    let out = Command::new(exe)
        .arg(bundle)
        .arg(app)
        .args(images)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "client failed: {stdout}\n{stderr}");
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
            .trim()
            .to_string()
    };
    let predictions = images
        .iter()
        .map(|p| {
            let key = format!("{}: ", p.display());
            let rest = field(&key);
            let (label, prob) = rest.rsplit_once(' ').unwrap();
            (
                p.display().to_string(),
                label.to_string(),
                prob.parse().unwrap(),
            )
        })
        .collect();
    Run {
        variant: field("variant: "),
        cache: field("cache: "),
        step_down: stdout.lines().any(|l| l.starts_with("step-down: ")),
        predictions,
    }
}

#[test]
fn c_client_launches_cold_then_warm_and_agrees_with_the_rust_launcher() {
    if skip_native_clients() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_client(tmp.path());
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app-data");
    let set = ToySet::new(6, TINY_SIZE, TINY_CLASSES, 9);
    let mut images: Vec<PathBuf> = (0..set.len())
        .map(|i| {
            let p = tmp.path().join(format!("img{i}.pgm"));
            write_pgm(&p, TINY_SIZE, TINY_SIZE, set.image(i).pixels);
            p
        })
        .collect();
    // an image of another size: the runtime resizes it
    let big = ToySet::new(1, 31, TINY_CLASSES, 4);
    let p = tmp.path().join("big.pgm");
    write_pgm(&p, 31, 31, &big.pixels);
    images.push(p);

    let cold = run(&exe, &dir, &app, &images);
    assert_eq!(cold.cache, "cold");
    assert!(!cold.step_down);
    let warm = run(&exe, &dir, &app, &images);
    assert_eq!(warm.cache, "warm");
    assert_eq!(warm.variant, cold.variant);
    assert_eq!(warm.predictions, cold.predictions);

    // The Rust launcher on the same app data: the same pick, the same top-1 and probability.
    let mut launch = Launcher::new(&app)
        .with_options(LaunchOptions {
            latency_window: 0,
            ..LaunchOptions::default()
        })
        .launch(&dir)
        .unwrap();
    assert!(launch.report().is_warm(), "{}", launch.report());
    assert_eq!(launch.report().variant, cold.variant);
    let mut labels = std::collections::BTreeSet::new();
    for (i, (path, label, prob)) in cold.predictions.iter().enumerate() {
        let image = if i < set.len() {
            set.image(i)
        } else {
            ImageRef {
                pixels: &big.pixels,
                width: 31,
                height: 31,
                channels: 1,
            }
        };
        let p = launch.predict(image).unwrap();
        assert_eq!(&p.label, label, "{path}");
        assert!(
            (p.probability - prob).abs() < 1e-5,
            "{path}: {} vs {prob}",
            p.probability
        );
        labels.insert(label.clone());
    }
    assert!(
        labels.len() >= 2,
        "degenerate fixture: every image got {labels:?}"
    );

    // The chosen file damaged: the client steps down to another variant, not a crash.
    let chosen = launch.bundle().variant(&cold.variant).unwrap().file.clone();
    drop(launch);
    let f = dir.join(&chosen);
    let mut bytes = fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    bytes[n / 2 + 1] ^= 0x5a;
    fs::write(&f, bytes).unwrap();
    let after = run(&exe, &dir, &app, &images[..2]);
    assert!(after.step_down, "no step-down line after damaging {chosen}");
    assert_ne!(after.variant, cold.variant);
}

#[test]
fn c_client_reports_bad_input_without_crashing() {
    if skip_native_clients() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_client(tmp.path());
    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let app = tmp.path().join("app-data");
    // a bundle path that is a file, a missing bundle, an empty folder
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for (bundle, want) in [
        (&file, "TF_STATUS_BUNDLE_INVALID"),
        (&tmp.path().join("missing"), "TF_STATUS_BUNDLE_INVALID"),
        (&empty, "TF_STATUS_BUNDLE_INVALID"),
    ] {
        let out = Command::new(&exe).arg(bundle).arg(&app).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want) && err.contains("manifest.json"), "{err}");
    }
    // an RGB image for a grayscale model, and a truncated one: errors, the others still run
    let rgb = tmp.path().join("rgb.ppm");
    let mut bytes = b"P6\n4 4\n255\n".to_vec();
    bytes.extend(vec![7u8; 48]);
    fs::write(&rgb, bytes).unwrap();
    let cut = tmp.path().join("cut.pgm");
    fs::write(&cut, b"P5\n9 9\n255\nabc").unwrap();
    let good = tmp.path().join("good.pgm");
    write_pgm(
        &good,
        TINY_SIZE,
        TINY_SIZE,
        ToySet::new(1, TINY_SIZE, TINY_CLASSES, 2).image(0).pixels,
    );
    let out = Command::new(&exe)
        .arg(&dir)
        .arg(&app)
        .args([&rgb, &cut, &good])
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{so}\n{se}");
    assert!(
        se.contains("TF_STATUS_BAD_IMAGE") && se.contains("1-channel"),
        "{se}"
    );
    assert!(se.contains("truncated"), "{se}");
    assert!(so.contains(&format!("{}: class-", good.display())), "{so}");
    // nothing was written but the app-data caches
    let mut written: Vec<_> = fs::read_dir(&app)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
}
