//! kwait as PID 1 and as a subreaper: forwarding, reaping, draining, exit status.
