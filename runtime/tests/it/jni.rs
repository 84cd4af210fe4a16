//! The JNI glue (`examples/android/jni/tierforge_jni.c`) and the Java wrapper
//! (`examples/android/java/com/tierforge/`) on the desktop JDK: the wrapper launches the same
//! variant and gives the same top-1 as the C client, and misuse throws instead of crashing.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{TINY_CLASSES, TINY_SIZE, ToySet, tiny_bundle};

use crate::c_client::{build_client, repo, run, static_lib, write_pgm};

/// The JDK's home (for `include/jni.h`), from `JAVA_HOME` or the `javac` on the PATH.
fn java_home() -> PathBuf {
    if let Some(h) = std::env::var_os("JAVA_HOME").map(PathBuf::from)
        && h.join("include/jni.h").is_file()
    {
        return h;
    }
    let out = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v javac)\""])
        .output()
        .expect("sh");
    let javac = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let home = javac.parent().and_then(Path::parent).map(Path::to_path_buf);
    match home {
        Some(h) if h.join("include/jni.h").is_file() => h,
        _ => panic!(
            "no JDK found (javac with include/jni.h): install one (`apt-get install default-jdk-headless`) or set JAVA_HOME"
        ),
    }
}

#[test]
fn java_wrapper_matches_the_c_client() {
    if crate::c_client::skip_native_clients() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = java_home();
    let lib = static_lib();
    let android = repo().join("examples/android");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let so = tmp.path().join("libtierforge_jni.so");
    let ok = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror"])
        .arg(format!("-I{}", home.join("include").display()))
        .arg(format!("-I{}", home.join("include/linux").display()))
        .arg(format!("-I{}", repo().join("runtime/include").display()))
        .arg(android.join("jni/tierforge_jni.c"))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&so)
        .status()
        .expect("cc");
    assert!(ok.success(), "building the JNI glue failed");
    let classes = tmp.path().join("classes");
    let sources: Vec<PathBuf> = std::fs::read_dir(android.join("java/com/tierforge"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let ok = Command::new(home.join("bin/javac"))
        .arg("-d")
        .arg(&classes)
        .args(&sources)
        .status()
        .expect("javac");
    assert!(ok.success(), "javac failed");

    let dir = tmp.path().join("bundle");
    tiny_bundle(&dir).unwrap();
    let set = ToySet::new(4, TINY_SIZE, TINY_CLASSES, 21);
    let images: Vec<PathBuf> = (0..set.len())
        .map(|i| {
            let p = tmp.path().join(format!("j{i}.pgm"));
            write_pgm(&p, TINY_SIZE, TINY_SIZE, set.image(i).pixels);
            p
        })
        .collect();
    let app = tmp.path().join("app");
    let java = |app: &Path| {
        let out = Command::new(home.join("bin/java"))
            .arg(format!("-Djava.library.path={}", tmp.path().display()))
            .arg("-cp")
            .arg(&classes)
            .arg("com.tierforge.SmokeTest")
            .arg(&dir)
            .arg(app)
            .args(&images)
            .output()
            .expect("java");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let cold = java(&app);
    assert!(cold.contains("cache: cold"), "{cold}");
    assert!(cold.contains("misuse: TF_STATUS_BAD_IMAGE"), "{cold}");
    assert!(
        cold.contains("missing bundle: TF_STATUS_BUNDLE_INVALID"),
        "{cold}"
    );
    // the C client on the same app data: warm, and the same lines
    let c = run(&build_client(tmp.path()), &dir, &app, &images);
    assert_eq!(c.cache, "warm");
    assert!(cold.contains(&format!("variant: {}", c.variant)), "{cold}");
    for (path, label, prob) in &c.predictions {
        let line = format!("{path}: {label} {prob:.6}");
        assert!(cold.contains(&line), "missing `{line}` in:\n{cold}");
    }
}
