//! How the CLI shows the libraries' progress (not a subcommand): an indicatif bar per phase on a
//! terminal, a plain line every 10% of a phase elsewhere (CI, logs), and every note as a line
//! on stderr.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use supernet::progress::{Progress, Reporter};

/// A reporter for a command: bars (or 10% lines) unless `quiet`; notes always.
pub fn reporter(quiet: bool) -> Reporter {
    Reporter::new(Bars {
        show: !quiet,
        tty: std::io::stderr().is_terminal(),
        phase: Mutex::new(None),
    })
}

/// Draws phases on stderr.
struct Bars {
    /// Draw phases at all.
    show: bool,
    /// stderr is a terminal: an animated bar; otherwise plain lines.
    tty: bool,
    phase: Mutex<Option<Phase>>,
}

/// The phase being drawn.
struct Phase {
    name: String,
    total: u64,
    done: u64,
    message: String,
    started: Instant,
    /// The next tenth (1..=10) at which a plain line is due.
    next_tenth: u64,
    bar: Option<ProgressBar>,
}

impl Bars {
    fn with_phase(&self, f: impl FnOnce(&mut Phase)) {
        if let Some(p) = self
            .phase
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            f(p);
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
        if !self.show {
            return;
        }
        let bar = self.tty.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len}  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(phase.to_string());
            bar
        });
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = Some(Phase {
            name: phase.to_string(),
            total,
            done: 0,
            message: String::new(),
            started: Instant::now(),
            next_tenth: 1,
            bar,
        });
    }

    fn advance(&self, n: u64) {
        self.with_phase(|p| {
            p.done += n;
            if let Some(bar) = &p.bar {
                bar.inc(n);
                return;
            }
            // no terminal: a plain line each time another tenth of a long enough phase is done
            if p.total < 10 || p.next_tenth > 10 || p.done * 10 < p.next_tenth * p.total {
                return;
            }
            p.next_tenth = p.done * 10 / p.total + 1;
            let el = p.started.elapsed().as_secs_f64();
            let eta = el / p.done as f64 * p.total.saturating_sub(p.done) as f64;
            eprintln!(
                "{}: {:>3}% {} ETA {eta:.0} s",
                p.name,
                100 * p.done / p.total,
                p.message
            );
        });
    }

    fn message(&self, msg: &str) {
        self.with_phase(|p| {
            p.message.clear();
            p.message.push_str(msg);
            if let Some(bar) = &p.bar {
                bar.set_message(msg.to_string());
            }
        });
    }

    fn finish(&self) {
        if let Some(p) = self.phase.lock().unwrap_or_else(|e| e.into_inner()).take()
            && let Some(bar) = p.bar
        {
            bar.finish_and_clear();
        }
    }

    fn note(&self, line: &str) {
        let guard = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref().and_then(|p| p.bar.as_ref()) {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}
