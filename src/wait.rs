//! The one retry loop: every target at once, under one deadline.
//!
//! Each target is retried on its own schedule: an attempt may start 50 ms
//! after the previous one started, times the number of connections that one
//! opened, so kwait notices readiness within tens of milliseconds yet never
//! opens more than 20 connections a second to a booting broker. Each attempt
//! has its own deadline (`--attempt-timeout`) inside the overall one.
//! A stop signal ends the wait at once; COMMAND then never starts.

use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::log::{debug, error, info};
use crate::probe::{self, Attempt, Outcome};
use crate::signals::{Signals, Signo};
use crate::target::Target;

/// Time between attempt starts, per connection an attempt opened: at most 20
/// connection attempts per second per target (DESIGN.md, budgets).
const PACE: Duration = Duration::from_millis(50);
/// At most one "still waiting" line per target this often.
const REPORT_EVERY: Duration = Duration::from_secs(5);

/// How waiting ended, when not with every target ready.
#[derive(Debug, PartialEq, Eq)]
pub enum Unready {
    TimedOut,
    Failed,
}

/// Limits that apply to every target.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Option<Instant>,
    pub attempt_timeout: Duration,
    pub timeout: Option<Duration>,
}

enum End {
    Ready,
    TimedOut(String),
    Fatal(String),
}

/// Runs `work` (waiting, cleaning) until it finishes, or until a stop
/// signal arrives: then `Err` with the signal, and `work` is dropped.
/// Other signals are read and ignored: there is no app yet to forward to.
pub async fn interruptible<T>(
    signals: &Signals,
    work: impl Future<Output = T>,
) -> Result<T, Signo> {
    // SAFETY: `register` needs the fd to stay open while the AsyncFd lives;
    // the AsyncFd holds a borrow of `signals`, which owns the fd, so it
    // cannot outlive it.
    let watched = match unsafe { AsyncFd::register_with_interest(signals, Interest::READABLE) } {
        Ok(watched) => watched,
        Err(err) => {
            error!("cannot watch for signals ({err}); SIGTERM will not stop the wait");
            return Ok(work.await);
        }
    };
    tokio::pin!(work);
    loop {
        tokio::select! {
            biased;
            guard = watched.readable() => {
                let Ok(mut guard) = guard else { continue };
                match guard.get_inner().pending() {
                    Some(signo) if signo.stops_waiting() => return Err(signo),
                    Some(signo) => debug!("ignoring {signo}: COMMAND has not started"),
                    None => guard.clear_ready(),
                }
            }
            out = &mut work => return Ok(out),
        }
    }
}

/// Waits for every target; returns when all are ready, the deadline passes,
/// or one fails for good.
pub async fn all(targets: &[Target], limits: Limits) -> Result<(), Unready> {
    let started = Instant::now();
    let mut set = JoinSet::new();
    for target in targets {
        let target = target.clone();
        set.spawn(async move {
            let end = until_ready(&target, limits).await;
            (target, end)
        });
    }
    let mut failed = None;
    while let Some(joined) = set.join_next().await {
        let Ok((target, end)) = joined else {
            failed = Some(Unready::Failed);
            continue;
        };
        match end {
            End::Ready => {}
            End::TimedOut(reason) => {
                let waited = limits.timeout.map(since).unwrap_or_default();
                // The advice names the limit that ran out last.
                let limit = if reason.contains("--attempt-timeout") {
                    "--attempt-timeout"
                } else {
                    "--timeout"
                };
                error!(
                    "timed out after {waited} waiting for {target}: {reason} \
                     (raise {limit}, or fix the target)"
                );
                failed.get_or_insert(Unready::TimedOut);
            }
            End::Fatal(reason) => {
                error!("{target} cannot become ready: {reason}");
                set.abort_all();
                return Err(Unready::Failed);
            }
        }
    }
    match failed {
        Some(unready) => Err(unready),
        None => {
            if targets.len() > 1 {
                info!(
                    "all {} targets ready after {}",
                    targets.len(),
                    since(started.elapsed())
                );
            }
            Ok(())
        }
    }
}

async fn until_ready(target: &Target, limits: Limits) -> End {
    let started = Instant::now();
    let mut last_report = started;
    let mut last_reason = String::new();
    info!(
        "waiting for {target}{}",
        match limits.timeout {
            Some(t) => format!(" (timeout {})", since(t)),
            None => " (no timeout)".into(),
        }
    );
    for seq in 0.. {
        let begun = Instant::now();
        if seq > 0 && limits.deadline.is_some_and(|d| begun >= d) {
            return End::TimedOut(last_reason);
        }
        let mut deadline = begun + limits.attempt_timeout;
        let mut limit = "--attempt-timeout";
        if let Some(overall) = limits.deadline.filter(|d| *d < deadline) {
            deadline = overall;
            limit = "--timeout";
        }
        let attempt = Attempt::new(deadline, limit, seq);
        let outcome = match timeout_at(deadline, probe::check(target, &attempt)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::NotReady(format!(
                "no answer within {limit} ({})",
                since(deadline - begun)
            )),
        };
        match outcome {
            Outcome::Ready(seen) => {
                info!("{target} ready after {}: {seen}", since(started.elapsed()));
                return End::Ready;
            }
            Outcome::Fatal(reason) => return End::Fatal(reason),
            // An attempt cut short by the overall deadline says less than
            // the last complete one did.
            Outcome::NotReady(_)
                if limit == "--timeout"
                    && Instant::now() >= deadline
                    && !last_reason.is_empty() =>
            {
                return End::TimedOut(last_reason)
            }
            Outcome::NotReady(reason) => {
                if reason != last_reason {
                    debug!("{target}: {reason}");
                }
                last_reason = reason;
            }
        }
        let now = Instant::now();
        if now - last_report >= REPORT_EVERY {
            info!(
                "still waiting for {target} after {}: {last_reason}",
                since(started.elapsed())
            );
            last_report = now;
        }
        let mut next = begun + PACE * attempt.connections().max(1);
        if let Some(overall) = limits.deadline {
            next = next.min(overall);
        }
        sleep_until(next).await;
    }
    End::TimedOut(last_reason)
}

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
    use super::since;
    use std::time::Duration;

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
