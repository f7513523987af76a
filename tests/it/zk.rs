//! zk:// readiness and --clean-stale-broker against a real ZooKeeper.
