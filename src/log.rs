//! Prefixed, one-line-per-event messages on stderr; the app owns stdout.
//!
//! Three levels: `-q` keeps errors only, the default adds progress, `-v`
//! adds each attempt's detail. Nothing here formats secrets: callers pass
//! targets through their redacting `Display`.

use std::fmt::Arguments;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Info = 1,
    Debug = 2,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level as u8
}

/// Writes `kwait: <message>` as one line. A failed write to stderr is
/// ignored: there is nowhere else to report it.
pub fn line(level: Level, args: Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    // One write per line: stderr is unbuffered, and a line written in
    // pieces costs a system call each and can interleave with the app's own
    // output on the same pipe.
    let mut text = String::with_capacity(128);
    let _ = writeln!(text, "kwait: {args}");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Text from a peer (a host name, a znode's bytes) as it may go into a log
/// line: control and other unprintable characters escaped as Rust's
/// `escape_debug` writes them, so the line stays one line and forges no
/// other, and at most `max` characters, then an ellipsis.
pub fn shown(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in raw.chars() {
        // Quotes and backslashes are printable: kept as they are.
        let plain = matches!(c, '\\' | '"' | '\'');
        let n = if plain { 1 } else { c.escape_debug().len() };
        if len + n > max {
            out.push('…');
            break;
        }
        len += n;
        if plain {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out
}

macro_rules! error {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Error, format_args!($($arg)*)) };
}
/// A warning says how to fix the problem; shown even with `-q`.
macro_rules! warning {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Error, format_args!("warning: {}", format_args!($($arg)*))) };
}
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Info, format_args!($($arg)*)) };
}
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::line($crate::log::Level::Debug, format_args!($($arg)*)) };
}
pub(crate) use {debug, error, info, warning};

/// A duration for humans: "850ms", "3.2s", "1m30s".
pub fn since(d: Duration) -> String {
    // u64 (584 million years of ms): formatting a u128 costs kwait ~1.5 KB.
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let mut out = String::new();
    if ms < 1000 {
        let _ = write!(out, "{ms}ms");
    } else if ms.is_multiple_of(1000) && ms < 60_000 {
        let _ = write!(out, "{}s", ms / 1000);
    } else if ms < 60_000 {
        // Integer arithmetic: float formatting costs kwait's binary ~9 KB.
        let _ = write!(out, "{}.{}s", ms / 1000, (ms % 1000) / 100);
    } else {
        // In the largest units, as a user writes them: "1h", "1h30m",
        // "2m5s" (not "60m0s").
        let s = d.as_secs();
        for (unit, secs) in [("h", s / 3600), ("m", s / 60 % 60), ("s", s % 60)] {
            if secs > 0 {
                let _ = write!(out, "{secs}{unit}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{shown, since};
    use std::time::Duration;

    #[test]
    fn peer_text_stays_on_one_bounded_line() {
        assert_eq!(shown("broker-1", 100), "broker-1");
        assert_eq!(shown("a\nb\u{1b}[31m\"c\"", 100), "a\\nb\\u{1b}[31m\"c\"");
        assert_eq!(shown("ab\n", 3), "ab…");
        assert_eq!(shown("ab\n", 4), "ab\\n");
        assert_eq!(shown("ééé", 2), "éé…");
    }

    #[test]
    fn human_durations() {
        assert_eq!(since(Duration::from_millis(850)), "850ms");
        assert_eq!(since(Duration::from_millis(3210)), "3.2s");
        assert_eq!(since(Duration::from_secs(90)), "1m30s");
        assert_eq!(since(Duration::from_secs(20)), "20s");
        assert_eq!(since(Duration::from_secs(3600)), "1h");
        assert_eq!(since(Duration::from_secs(5400)), "1h30m");
        assert_eq!(since(Duration::from_secs(120)), "2m");
        assert_eq!(since(Duration::from_secs(3725)), "1h2m5s");
    }
}
