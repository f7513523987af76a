//! The one retry loop: every target at once, under one deadline.
//!
//! Each target is retried on its own schedule: an attempt may start 50 ms
//! after the previous one started, times the number of connections that one
//! opened, so kwait notices readiness within tens of milliseconds yet never
//! opens more than 20 connections a second to a booting broker. Each attempt
//! has its own deadline (`--attempt-timeout`) inside the overall one.
//! A stop signal ends the wait at once; COMMAND then never starts.

use std::future::Future;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout_at, Instant};

use crate::log::since;
use crate::log::{debug, error, info};
use crate::net::{Attempt, Limit};
use crate::probe::Outcome;
use crate::signals::{Signals, Signo};
use crate::target::Target;

/// Time between attempt starts, per connection an attempt opened: at most 20
/// connection attempts per second per target (DESIGN.md, budgets).
pub(crate) const PACE: Duration = Duration::from_millis(50);
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
    /// The last reason, and the limit to raise (the one that cut the last
    /// attempt short, if one did).
    TimedOut(String, Limit),
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
            End::TimedOut(reason, limit) => {
                let waited = limits.timeout.map(since).unwrap_or_default();
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
    let mut last_limit = Limit::Timeout;
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
            return End::TimedOut(last_reason, last_limit);
        }
        let mut deadline = begun + limits.attempt_timeout;
        let mut limit = Limit::AttemptTimeout;
        if let Some(overall) = limits.deadline.filter(|d| *d < deadline) {
            deadline = overall;
            limit = Limit::Timeout;
        }
        let attempt = Attempt::new(deadline, limit, seq);
        let outcome = match timeout_at(deadline, target.check(&attempt)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::NotReady(format!(
                "no answer within {} ({})",
                attempt.expired(),
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
                if limit == Limit::Timeout
                    && Instant::now() >= deadline
                    && !last_reason.is_empty() =>
            {
                return End::TimedOut(last_reason, last_limit)
            }
            Outcome::NotReady(reason) => {
                if reason != last_reason {
                    debug!("{target}: {reason}");
                }
                last_reason = reason;
                // The advice names the limit that ran out last.
                last_limit = if attempt.ran_out() {
                    limit
                } else {
                    Limit::Timeout
                };
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
    End::TimedOut(last_reason, last_limit)
}

/// `kwait probe`: one attempt at each target, all at once, under one
/// deadline; each target's result logged, in the order given. True when
/// every one is ready.
pub async fn once(targets: &[Target], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut set = JoinSet::new();
    for (i, target) in targets.iter().enumerate() {
        let target = target.clone();
        set.spawn(async move {
            let attempt = Attempt::new(deadline, Limit::Probe, 0);
            let outcome = timeout_at(deadline, target.check(&attempt))
                .await
                .unwrap_or_else(|_| {
                    Outcome::NotReady(format!("no answer within {}", Limit::Probe))
                });
            (i, outcome)
        });
    }
    // In the order the targets were given (no sort: smaller).
    let mut outcomes: Vec<Option<Outcome>> = targets.iter().map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, outcome)) => outcomes[i] = Some(outcome),
            Err(_) => return false,
        }
    }
    let mut all_ready = true;
    for (target, outcome) in targets.iter().zip(outcomes) {
        let Some(outcome) = outcome else { continue };
        match outcome {
            Outcome::Ready(seen) => info!("{target} ready: {seen}"),
            Outcome::NotReady(reason) | Outcome::Fatal(reason) => {
                all_ready = false;
                error!("{target} not ready: {reason}");
            }
        }
    }
    all_ready
}
