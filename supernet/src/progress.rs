//! Progress reporting: a library says how far a long task is; the caller decides how to show
//! it. Libraries draw nothing themselves (the CLI draws bars with indicatif).
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use supernet::progress::{Progress, Reporter};
//!
//! #[derive(Default)]
//! struct Count(AtomicU64);
//! impl Progress for Count {
//!     fn advance(&self, n: u64) {
//!         self.0.fetch_add(n, Ordering::Relaxed);
//!     }
//! }
//! let count = std::sync::Arc::new(Count::default());
//! let reporter = Reporter::shared(count.clone());
//! {
//!     let phase = reporter.phase("work", 3);
//!     for _ in 0..3 {
//!         phase.advance(1);
//!     }
//! } // the phase finishes here
//! assert_eq!(count.0.load(Ordering::Relaxed), 3);
//! ```

use std::fmt;
use std::sync::Arc;

/// Receives a long task's progress. Every method has a no-op default, so an implementation
/// picks what it shows. One phase runs at a time: `start`, any number of `advance` and
/// `message`, then `finish`; `note` may come at any time.
pub trait Progress: Send + Sync {
    /// A phase of `total` units starts (e.g. `"epoch 3/10"`, 120 steps).
    fn start(&self, phase: &str, total: u64) {
        let _ = (phase, total);
    }
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64) {
        let _ = n;
    }
    /// A short status of the current phase (the running loss, the item at hand).
    fn message(&self, msg: &str) {
        let _ = msg;
    }
    /// The current phase is over.
    fn finish(&self) {}
    /// A line of news between phases (an epoch's result, the start of a stage).
    fn note(&self, line: &str) {
        let _ = line;
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// A shareable handle on a [`Progress`], for options structs: cheap to clone, [`Silent`] by
/// default. A reporter does not change what is computed, so any two compare equal (options
/// that hold one keep their `PartialEq`).
#[derive(Clone)]
pub struct Reporter(Arc<dyn Progress>);

impl Reporter {
    /// A reporter that forwards to `p`.
    pub fn new(p: impl Progress + 'static) -> Self {
        Reporter(Arc::new(p))
    }

    /// A reporter that forwards to a shared `p` (the caller keeps a handle to read it).
    pub fn shared(p: Arc<dyn Progress>) -> Self {
        Reporter(p)
    }

    /// A reporter that reports nothing.
    pub fn silent() -> Self {
        Reporter::new(Silent)
    }

    /// Starts a phase of `total` units; it finishes when the returned guard is dropped (also on
    /// an early return with `?`).
    pub fn phase(&self, name: &str, total: u64) -> Phase<'_> {
        self.0.start(name, total);
        Phase(self)
    }

    /// A line of news between phases.
    pub fn note(&self, line: &str) {
        self.0.note(line);
    }
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::silent()
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reporter")
    }
}

impl PartialEq for Reporter {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// A running phase of a [`Reporter`]; dropping it finishes the phase.
pub struct Phase<'a>(&'a Reporter);

impl Phase<'_> {
    /// `n` more units are done.
    pub fn advance(&self, n: u64) {
        self.0.0.advance(n);
    }

    /// A short status line for the phase.
    pub fn message(&self, msg: &str) {
        self.0.0.message(msg);
    }
}

impl Drop for Phase<'_> {
    fn drop(&mut self) {
        self.0.0.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Progress for Log {
        fn start(&self, phase: &str, total: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {phase} {total}"));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().push(format!("advance {n}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
        fn note(&self, line: &str) {
            self.0.lock().unwrap().push(format!("note {line}"));
        }
    }

    #[test]
    fn a_phase_finishes_when_dropped_even_on_an_early_return() {
        let log = Arc::new(Log::default());
        let r = Reporter::shared(log.clone());
        let work = |fail: bool| -> Result<(), ()> {
            let p = r.phase("p", 2);
            p.advance(1);
            if fail {
                return Err(());
            }
            p.advance(1);
            Ok(())
        };
        assert!(work(true).is_err());
        r.note("between");
        assert!(work(false).is_ok());
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "start p 2",
                "advance 1",
                "finish",
                "note between",
                "start p 2",
                "advance 1",
                "advance 1",
                "finish"
            ]
        );
    }
}
