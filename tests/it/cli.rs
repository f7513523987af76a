//! Command line, exit codes, signals while waiting, --exec, tcp/http targets and hostile peers.
