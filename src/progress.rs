//! Progress of long transfers (pushes, copies) on stderr, for a person watching a terminal.
//!
//! Invariants: nothing is written unless stderr is a terminal, and nothing before the
//! transfer has taken [`QUIET_FOR`] (a fast push stays silent); the line is redrawn in place
//! (`\r`) and cleared when the transfer ends, so the terminal is left as it was. stdout is
//! never touched: it carries only the command's report.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How long a transfer runs before its progress is shown.
pub const QUIET_FOR: Duration = Duration::from_secs(1);

/// The progress of one transfer of `total` bytes.
pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    terminal: bool,
    shown: bool,
}

impl Progress {
    /// Starts counting the transfer of `total` bytes, described as `what` (`pushing
    /// oci:/srv/…`).
    #[must_use]
    pub fn start(what: impl Into<String>, total: u64) -> Self {
        Self {
            what: what.into(),
            total,
            done: 0,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Counts `bytes` more as transferred, and redraws the line when it is shown.
    pub fn advance(&mut self, bytes: u64) {
        self.done = self.done.saturating_add(bytes).min(self.total);
        if !self.terminal || self.started.elapsed() < QUIET_FOR {
            return;
        }
        self.shown = true;
        let line = format!(
            "\r{}: {} of {} ({}%)",
            crate::text::printable(&self.what, 120),
            human(self.done),
            human(self.total),
            self.done
                .saturating_mul(100)
                .checked_div(self.total)
                .unwrap_or(100)
        );
        let mut err = std::io::stderr().lock();
        // Progress is a courtesy: a failed write to the terminal is not the command's failure.
        let _ = err.write_all(line.as_bytes()).and_then(|()| err.flush());
    }
}

impl Drop for Progress {
    /// Clears the line, if one was drawn.
    fn drop(&mut self) {
        if self.shown {
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
        }
    }
}

/// `512 B`, `1.5 KiB`, `20.0 MiB`.
#[must_use]
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let bytes = u128::from(bytes);
    let (mut unit, mut divisor) = (0, 1024_u128);
    while unit < UNITS.len() - 1 && bytes >= divisor * 1024 {
        divisor *= 1024;
        unit += 1;
    }
    let tenths = bytes * 10 / divisor;
    format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_binary_units_with_one_decimal() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(20 * 1024 * 1024), "20.0 MiB");
    }

    fn started(terminal: bool, ago: Duration) -> Progress {
        let mut p = Progress::start("copying x", 100);
        p.started = Instant::now()
            .checked_sub(ago)
            .expect("an instant in the past");
        p.terminal = terminal;
        p
    }

    #[test]
    fn nothing_is_drawn_when_stderr_is_not_a_terminal_or_the_transfer_is_young() {
        let mut piped = started(false, Duration::from_secs(5));
        piped.advance(50);
        assert!(!piped.shown);
        let mut young = started(true, Duration::ZERO);
        young.advance(50);
        assert!(!young.shown);
        let mut slow = started(true, Duration::from_secs(2));
        slow.advance(50);
        assert!(slow.shown);
    }

    #[test]
    fn a_transfer_never_counts_past_its_total() {
        let mut p = Progress::start("pushing x", 10);
        p.advance(7);
        p.advance(7);
        assert_eq!(p.done, 10);
    }
}
