//! Progress bars for long imports and unpacks: shown on stderr only when stdout is a
//! terminal, and only once an operation has taken more than a moment.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::time::{Duration, Instant};

/// How long an operation runs before its bar appears.
const SHOW_AFTER: Duration = Duration::from_millis(400);

/// A byte-counting progress bar that stays invisible for short operations.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    enabled: bool,
}

impl Progress {
    /// A bar for `total` bytes (0: unknown, a counter without a bar) labelled `message`;
    /// `enabled` false makes it a no-op.
    pub fn new(enabled: bool, total: u64, message: impl Into<String>) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let template = if total == 0 {
            "{msg:24!} {bytes} {bytes_per_sec}"
        } else {
            "{msg:24!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}"
        };
        let style = ProgressStyle::with_template(template)
            .expect("the templates are valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.into());
        Progress {
            bar,
            started: Instant::now(),
            enabled,
        }
    }

    /// A bar that never shows.
    pub fn hidden() -> Progress {
        Progress::new(false, 0, "")
    }

    /// True if bars should be shown for this process (stdout is a terminal).
    pub fn wanted() -> bool {
        std::io::stdout().is_terminal()
    }

    /// Advances the bar by `bytes`.
    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
        if self.enabled && self.bar.is_hidden() && self.started.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Wraps a reader so that bytes read advance the bar.
    pub fn wrap_read<R: Read>(&self, inner: R) -> ProgressReader<'_, R> {
        ProgressReader {
            inner,
            progress: self,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// A reader that reports the bytes read through it to a [`Progress`].
pub struct ProgressReader<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
