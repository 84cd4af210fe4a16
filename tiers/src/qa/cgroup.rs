//! CPU-bandwidth limits for QA's emulated phones: a cgroup per phone whose CPU quota is the
//! phone's speed relative to this host (cgroup v1 `cpu.cfs_period_us` / `cpu.cfs_quota_us`, or
//! v2 `cpu.max`).
//!
//! Groups are named `tierforge-qa-<pid>-<n>` after the QA process, and removed when dropped; a
//! QA run first removes the groups of QA processes that no longer exist (killed with `kill -9`,
//! which no handler can catch). A quota slows every instruction alike: it cannot reproduce a
//! phone's smaller caches, slower memory or in-order pipeline, only its average speed; and it
//! acts per period, so only means over many periods are meaningful.

use std::path::{Path, PathBuf};

/// Shortest period we use, µs (the kernel refuses quotas under 1000 µs).
pub const MIN_PERIOD_US: u64 = 10_000;
/// Longest period the kernel accepts, µs.
pub const MAX_PERIOD_US: u64 = 1_000_000;
/// Smallest quota the kernel accepts, µs.
pub const MIN_QUOTA_US: u64 = 1_000;

const PREFIX: &str = "tierforge-qa-";

/// Which cgroup interface is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// v1 `cpu` controller (`cpu.cfs_period_us`, `cpu.cfs_quota_us`, `cgroup.procs`).
    V1,
    /// v2 unified hierarchy (`cpu.max`, `cgroup.procs`).
    V2,
}

/// Where QA can create CPU-limited groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuLimiter {
    root: PathBuf,
    version: CgroupVersion,
    next: std::cell::Cell<u32>,
}

/// A CPU quota: `quota_us` of CPU time per `period_us` for the whole group.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuQuota {
    /// The period, µs.
    pub period_us: u64,
    /// CPU time per period, µs.
    pub quota_us: u64,
}

impl CpuQuota {
    /// The quota that gives `fraction` (0..=1) of one CPU, with a period of at least
    /// [`MIN_PERIOD_US`] and a quota of at least [`MIN_QUOTA_US`]; `None` for a fraction that is
    /// not in (0, 1) (a phone as fast as this host or faster needs no quota) or one so small that
    /// even the longest period cannot give it.
    pub fn for_fraction(fraction: f64) -> Option<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return None;
        }
        let period = ((MIN_QUOTA_US as f64 / fraction).ceil() as u64).max(MIN_PERIOD_US);
        if period > MAX_PERIOD_US {
            return None;
        }
        let quota = ((period as f64 * fraction).round() as u64).max(MIN_QUOTA_US);
        Some(CpuQuota {
            period_us: period,
            quota_us: quota,
        })
    }

    /// quota / period.
    pub fn fraction(&self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

impl CpuLimiter {
    /// Finds a writable cgroup CPU controller (v1 at `/sys/fs/cgroup/cpu`, else v2 at
    /// `/sys/fs/cgroup` with the `cpu` controller) by creating and removing a test group.
    ///
    /// # Errors
    /// Why no limit can be set (not mounted, not root, controller not enabled), for the report.
    pub fn detect() -> Result<Self, String> {
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let v2 = Path::new("/sys/fs/cgroup");
        let candidate = if v1.join("cpu.cfs_quota_us").is_file() {
            CpuLimiter {
                root: v1.to_path_buf(),
                version: CgroupVersion::V1,
                next: std::cell::Cell::new(0),
            }
        } else if std::fs::read_to_string(v2.join("cgroup.subtree_control"))
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "cpu"))
        {
            CpuLimiter {
                root: v2.to_path_buf(),
                version: CgroupVersion::V2,
                next: std::cell::Cell::new(0),
            }
        } else {
            return Err(
                "no cgroup CPU controller is mounted (neither v1 /sys/fs/cgroup/cpu nor v2 \
                        with `cpu` in cgroup.subtree_control)"
                    .into(),
            );
        };
        let test = candidate.create(CpuQuota {
            period_us: 100_000,
            quota_us: 50_000,
        });
        match test {
            Ok(group) => {
                drop(group);
                Ok(candidate)
            }
            Err(e) => Err(format!(
                "cannot create a CPU-limited cgroup under {} ({e}); QA needs root or a delegated \
                 cgroup",
                candidate.root.display()
            )),
        }
    }

    /// The interface in use.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Removes groups left by QA processes that no longer run (a `kill -9`); returns how many.
    pub fn sweep_stale(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() && remove_group(&e.path()) {
                removed += 1;
            }
        }
        removed
    }

    /// Creates a group with `quota`.
    ///
    /// # Errors
    /// The I/O error of creating the folder or writing the limit.
    pub fn create(&self, quota: CpuQuota) -> std::io::Result<CpuGroup> {
        let n = self.next.get();
        self.next.set(n + 1);
        let dir = self
            .root
            .join(format!("{PREFIX}{}-{n}", std::process::id()));
        std::fs::create_dir(&dir)?;
        let group = CpuGroup { dir, quota };
        let written = match self.version {
            CgroupVersion::V1 => std::fs::write(
                group.dir.join("cpu.cfs_period_us"),
                quota.period_us.to_string(),
            )
            .and_then(|()| {
                std::fs::write(
                    group.dir.join("cpu.cfs_quota_us"),
                    quota.quota_us.to_string(),
                )
            }),
            CgroupVersion::V2 => std::fs::write(
                group.dir.join("cpu.max"),
                format!("{} {}", quota.quota_us, quota.period_us),
            ),
        };
        written.map(|()| group)
    }
}

/// One CPU-limited group; removed when dropped (its processes must have exited).
#[derive(Debug)]
pub struct CpuGroup {
    dir: PathBuf,
    quota: CpuQuota,
}

impl CpuGroup {
    /// The file a process writes its pid into to join the group.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The quota.
    pub fn quota(&self) -> CpuQuota {
        self.quota
    }

    /// The group's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        remove_group(&self.dir);
    }
}

/// Removes an empty group folder, retrying briefly while its last process is reaped.
fn remove_group(dir: &Path) -> bool {
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_respect_the_kernel_limits() {
        let q = CpuQuota::for_fraction(1.0 / 16.0).unwrap();
        assert_eq!((q.period_us, q.quota_us), (16_000, 1_000));
        assert!((q.fraction() - 1.0 / 16.0).abs() < 1e-9);
        let q = CpuQuota::for_fraction(0.4).unwrap();
        assert_eq!((q.period_us, q.quota_us), (10_000, 4_000));
        assert_eq!(CpuQuota::for_fraction(1.0), None);
        assert_eq!(CpuQuota::for_fraction(2.5), None);
        assert_eq!(CpuQuota::for_fraction(0.0), None);
        assert_eq!(CpuQuota::for_fraction(f64::NAN), None);
        assert_eq!(CpuQuota::for_fraction(1e-4), None, "needs a 10 s period");
        let q = CpuQuota::for_fraction(0.0015).unwrap();
        assert!(
            q.quota_us >= MIN_QUOTA_US && q.period_us <= MAX_PERIOD_US,
            "{q:?}"
        );
    }

    #[test]
    fn groups_are_removed_when_dropped_and_after_their_owner_died() {
        let Ok(limiter) = CpuLimiter::detect() else {
            eprintln!("no writable cgroup CPU controller here: nothing to check");
            return;
        };
        let q = CpuQuota::for_fraction(0.25).unwrap();
        let g = limiter.create(q).unwrap();
        let dir = g.dir().to_path_buf();
        let limit = match limiter.version() {
            CgroupVersion::V1 => std::fs::read_to_string(dir.join("cpu.cfs_quota_us")).unwrap(),
            CgroupVersion::V2 => std::fs::read_to_string(dir.join("cpu.max")).unwrap(),
        };
        assert!(limit.contains(&q.quota_us.to_string()), "{limit}");
        drop(g);
        assert!(!dir.exists(), "{} left behind", dir.display());
        // a group whose QA process is gone (as after kill -9) is swept
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let orphan = dir.parent().unwrap().join(format!("{PREFIX}{dead}-0"));
        std::fs::create_dir(&orphan).unwrap();
        assert!(limiter.sweep_stale() >= 1);
        assert!(!orphan.exists());
    }
}
