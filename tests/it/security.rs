//! Kafka security against real peers: TLS and mTLS through stunnel, SASL PLAIN and SCRAM through a relay whose server side is the scramp library.
