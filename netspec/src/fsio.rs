//! Durable file writes shared by the trainer, the tools and the phone: one atomic write.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A unique hidden name beside a target: `<parent>/.<name>.<tag>-<pid>-<n>-<nanos>`.
pub fn sibling_name(parent: &Path, name: &str, tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    parent.join(format!(".{name}.{tag}-{}-{n}-{nanos}", std::process::id()))
}

/// Creates `path` with `bytes` and fsyncs it.
///
/// # Errors
/// The I/O error of creating, writing or syncing.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Fsyncs a file another writer (e.g. a library's `save_file`) has written and closed, before
/// it is renamed into place.
///
/// # Errors
/// The I/O error of opening or syncing it.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Fsyncs a folder so a rename inside it is durable (Unix; elsewhere a no-op).
///
/// # Errors
/// The I/O error of opening or syncing it.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically and durably: the parent folder is created if needed, a
/// temp file beside `path` is written and fsynced, renamed over `path`, and the folder is
/// fsynced. Readers see the old file or the new one, never half of one; on failure the temp file
/// is removed and whatever was at `path` is still there.
///
/// # Errors
/// The first I/O error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = sibling_name(&parent, &name, "tmp");
    let result = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(&parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_atomically_and_leave_no_temp_files() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("sub/state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        // a target that is a folder fails and keeps the folder
        let dir = t.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("x"), b"keep").unwrap();
        assert!(write_atomic(&dir, b"oops").is_err());
        assert_eq!(std::fs::read(dir.join("x")).unwrap(), b"keep");
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }
}
