//! The kafka:// target against real brokers: tansu and the librdkafka mock cluster.
