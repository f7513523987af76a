//! Prefixed, one-line-per-event messages on stderr; the app owns stdout.
//!
//! Three levels: `-q` keeps errors only, the default adds progress, `-v`
//! adds each attempt's detail. Nothing here formats secrets: callers pass
//! targets through their redacting `Display`.

use std::fmt::Arguments;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

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
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "kwait: {args}");
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
