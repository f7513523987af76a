//! Several addresses for one target (Kafka's bootstrap list, a ZooKeeper
//! connect string): any one ready is enough. They are tried side by side,
//! each started [`STAGGER`] after the one before or as soon as it failed, so
//! a member that accepts and never answers costs one stagger step, not the
//! whole deadline, and a refused one costs nothing.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{sleep, Instant};

use super::Outcome;
use crate::net::HostPort;

/// How long one address has alone before the next one starts beside it.
pub const STAGGER: Duration = Duration::from_millis(250);

/// One address's attempt, boxed: the race below is compiled once, not once
/// per kind (kwait's no-TLS build is held to 1 MiB).
pub type One<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The first `Ready` of `check` over `hosts`, or the first `Fatal`; when
/// every address is not ready, each one's reason, in order.
pub async fn first_ready<'a>(
    hosts: Vec<&'a HostPort>,
    check: &(dyn Fn(&'a HostPort) -> One<'a, Outcome> + Sync),
) -> Outcome {
    let mut running: Vec<(usize, One<'a, Outcome>)> = Vec::new();
    let mut reasons: Vec<(usize, String)> = Vec::new();
    let mut next = 0;
    let stagger = sleep(STAGGER);
    tokio::pin!(stagger);
    loop {
        if next < hosts.len() && (running.is_empty() || stagger.is_elapsed()) {
            running.push((next, check(hosts[next])));
            next += 1;
            stagger.as_mut().reset(Instant::now() + STAGGER);
        }
        if running.is_empty() {
            reasons.sort_unstable_by_key(|(i, _)| *i);
            let all: Vec<String> = reasons.into_iter().map(|(_, r)| r).collect();
            return Outcome::NotReady(if all.is_empty() {
                "no address to try".into()
            } else {
                all.join("; ")
            });
        }
        let more = next < hosts.len();
        let done = poll_fn(|cx| {
            for (slot, (_, fut)) in running.iter_mut().enumerate() {
                if let Poll::Ready(outcome) = fut.as_mut().poll(cx) {
                    return Poll::Ready(Some((slot, outcome)));
                }
            }
            if more && stagger.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await;
        if let Some((slot, outcome)) = done {
            let (i, _) = running.swap_remove(slot);
            match outcome {
                Outcome::NotReady(reason) => reasons.push((i, reason)),
                decided => return decided,
            }
        }
    }
}

/// [`first_ready`] for kinds whose one attempt at an address is a session
/// that either serves (what it saw) or not: each outcome is prefixed with
/// the address it is about.
pub async fn first_session<'a>(
    hosts: Vec<&'a HostPort>,
    session: &(dyn Fn(&'a HostPort) -> One<'a, Result<String, Outcome>> + Sync),
) -> Outcome {
    first_ready(hosts, &|addr| {
        let attempt = session(addr);
        Box::pin(async move {
            match attempt.await {
                Ok(ready) => Outcome::Ready(format!("{addr}: {ready}")),
                Err(Outcome::NotReady(r)) => Outcome::NotReady(named(addr, r)),
                Err(Outcome::Fatal(r)) => Outcome::Fatal(named(addr, r)),
                Err(ready) => ready,
            }
        })
    })
    .await
}

/// `reason` behind the address it is about, unless it names it already
/// (a refused connection says "connection refused at HOST:PORT").
fn named(addr: &HostPort, reason: String) -> String {
    let shown = addr.to_string();
    if reason.contains(&shown) {
        reason
    } else {
        format!("{shown}: {reason}")
    }
}
