//! The sink's log of rejected connections: one line each while they are few, and past `PER_WINDOW` a second, one
//! line a second that counts the rest, so that a flood of strangers neither fills a disk nor stalls the event
//! loop on a slow stderr. Lines go to stderr; a stderr that cannot be written to loses them, silently.

use std::fmt::Arguments;
use std::io::Write;
use std::time::{Duration, Instant};

/// Lines a second, beyond which rejections are counted rather than written.
const PER_WINDOW: u32 = 20;
const WINDOW: Duration = Duration::from_secs(1);

/// Rejections counted rather than written, by cause.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    pub timed_out: u64,
    pub pushed_out: u64,
    pub refused: u64,
    pub closed: u64,
}

impl Dropped {
    fn total(&self) -> u64 {
        self.timed_out + self.pushed_out + self.refused + self.closed
    }
}

#[derive(Debug, Default)]
pub struct Log {
    window_start: Option<Instant>,
    lines: u32,
    held: Dropped,
}

/// One line on stderr, `xferbench sink: ` first; never a panic when stderr is gone.
pub fn say(what: Arguments) {
    let _ = writeln!(std::io::stderr().lock(), "xferbench sink: {what}");
}

impl Log {
    /// A connection refused: a line of its own, or a count (`count` says under which cause).
    pub fn rejected(&mut self, peer: &str, why: &str, count: impl FnOnce(&mut Dropped)) {
        if self.room(Instant::now()) {
            say(format_args!("{peer}: rejected: {why}"));
        } else {
            count(&mut self.held);
        }
    }

    /// Another line under the same limit (lost rather than counted past it).
    pub fn line(&mut self, what: Arguments) {
        if self.room(Instant::now()) {
            say(what);
        }
    }

    /// When the count of rejections held back is due, if any are.
    pub fn due(&self) -> Option<Instant> {
        (self.held.total() > 0).then_some(self.window_start? + WINDOW)
    }

    /// Writes the count of what was held back once its second is over.
    pub fn tick(&mut self, now: Instant) {
        self.roll(now);
    }

    fn room(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.lines += 1;
        self.lines <= PER_WINDOW
    }

    fn roll(&mut self, now: Instant) {
        if self.window_start.is_some_and(|s| now < s + WINDOW) {
            return;
        }
        let h = std::mem::take(&mut self.held);
        if h.total() > 0 {
            say(format_args!(
                "{} more connections rejected in the last second without a line each: {} timed out in the header \
                 phase, {} pushed out of it, {} refused, {} closed by their peer",
                h.total(),
                h.timed_out,
                h.pushed_out,
                h.refused,
                h.closed
            ));
        }
        self.window_start = Some(now);
        self.lines = 0;
    }
}
