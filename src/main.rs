//! kwait: wait until Kafka, ZooKeeper, TCP and HTTP dependencies are really
//! ready, clean a stale broker registration, then run the app as PID 1; or
//! check them once, as a container health probe.
//!
//! The data flows one way: `cli` turns argv and the environment into a plan;
//! `wait` runs every target's `probe` until all are ready; `topics` creates
//! the missing topics if asked; `clean` removes a stale ZooKeeper
//! registration if asked; then `supervise` runs COMMAND (or
//! `exec` replaces kwait with it). `exit` maps each ending to its code.

mod clean;
mod cli;

mod exec;
mod exit;
mod file;
mod heap;
mod json;
mod kafka;
mod log;
mod net;
mod probe;
mod properties;
mod reader;
mod sasl;
mod secret;
mod security;
mod signals;
mod supervise;
mod target;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
#[path = "tls_off.rs"]
mod tls;
mod topics;
mod wait;
mod zk;

use std::io::Write;
use std::process::ExitCode;

use tokio::time::Instant;

use crate::cli::{Plan, Stop};
use crate::exit::Exit;
use crate::log::{error, info, warning};
use crate::signals::Signals;

#[global_allocator]
static HEAP: heap::Heap = heap::Heap::new();

fn main() -> ExitCode {
    // Before anything else: a signal that arrives before kwait reads it must
    // stay pending, not be dropped (PID 1) or kill kwait half-way.
    let signals = match Signals::block() {
        Ok(signals) => signals,
        Err(err) => {
            error!("cannot set up signal handling: {err}");
            return Exit::Failed.into();
        }
    };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some((command, opts)) = supervise::from_reexec(&args) {
        // kwait's own re-exec after the wait: supervise, nothing else.
        return supervise::run(&command, &opts, &signals).into();
    }
    let kwait_vars =
        std::env::vars_os().any(|(name, _)| name.as_encoded_bytes().starts_with(b"KWAIT_"));
    let env = |name: &str| std::env::var_os(name);
    let plan = match cli::quick(&args, kwait_vars, env) {
        Some(plan) => plan,
        None => cli::parse(args, env),
    };
    let exit = match plan {
        Ok(Plan::Wait(plan)) => wait_then_run(plan, &signals),
        Ok(Plan::Probe(plan)) => {
            // A probe is a short-lived child of Docker or the kubelet: the
            // default signal behaviour is what it should have.
            let _ = signals.restore_mask();
            for warning in &plan.warnings {
                warning!("{warning}");
            }
            probe_once(plan)
        }
        Err(Stop::Print(text)) => {
            // Not print!, which panics on a closed stdout (`kwait --help |
            // head -1`).
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            Exit::Ready
        }
        Err(Stop::Usage(message)) => {
            error!("{message}");
            Exit::Usage
        }
        Err(Stop::ProbeUsage(message)) => {
            // Docker reserves a health check's exit 2: a broken probe is
            // reported as not ready.
            error!("{message}");
            Exit::Failed
        }
    };
    exit.into()
}

/// The single-threaded runtime for the waiting phase: probes are I/O-bound
/// and few, and one thread keeps kwait small. It is shut down before COMMAND
/// starts, so nothing of it outlives the wait.
fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            error!("cannot start: {err}");
            Exit::Failed
        })
}

fn wait_then_run(plan: cli::Wait, signals: &Signals) -> Exit {
    for warning in &plan.warnings {
        warning!("{warning}");
    }
    if !plan.targets.is_empty() {
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(exit) => return exit,
        };
        let limits = wait::Limits {
            deadline: plan.timeout.map(|t| Instant::now() + t),
            attempt_timeout: plan.attempt_timeout,
            timeout: plan.timeout,
        };
        let result = rt.block_on(wait::interruptible(signals, async {
            wait::all(&plan.targets, limits).await?;
            // Topics before cleaning: the step that deletes runs last, just
            // before COMMAND, so that what it saw stays as fresh as it can,
            // and a topics failure leaves ZooKeeper untouched.
            if let Some((kafka, request)) = &plan.topics {
                topics::create(kafka, request, limits).await?;
            }
            if let Some((zk, request)) = &plan.clean {
                clean::stale_broker(zk, request, plan.attempt_timeout)
                    .await
                    .map_err(|reason| {
                        error!("--clean-stale-broker {}: {reason}", request.id);
                        wait::Unready::Failed
                    })?;
            }
            Ok(())
        }));
        // A DNS lookup stuck in the resolver must not hold COMMAND back.
        rt.shutdown_background();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(wait::Unready::TimedOut)) => return Exit::TimedOut,
            Ok(Err(wait::Unready::Failed)) => return Exit::Failed,
            Err(signo) => {
                error!("stopped by {signo} while waiting; COMMAND not started");
                return Exit::Signaled(signo);
            }
        }
    }
    if plan.command.is_empty() {
        return Exit::Ready;
    }
    if plan.exec {
        info!("exec {}", plan.command[0].to_string_lossy());
        if let Err(err) = signals.restore_mask() {
            error!("cannot restore the signal mask for COMMAND: {err}");
            return Exit::Failed;
        }
        return exec::replace(&plan.command);
    }
    if !plan.targets.is_empty() {
        // After a wait only: a start with nothing to wait for keeps its one
        // exec (`kwait -- true` against tini's start-up budget).
        supervise::reexec(&plan.command, &plan.supervise);
    }
    supervise::run(&plan.command, &plan.supervise, signals)
}

fn probe_once(plan: cli::Probe) -> Exit {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(exit) => return exit,
    };
    let all_ready = rt.block_on(wait::once(&plan.targets, plan.timeout));
    rt.shutdown_background();
    if all_ready {
        Exit::Ready
    } else {
        // Never 2 here: Docker reserves it.
        Exit::Failed
    }
}
