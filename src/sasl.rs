//! SASL client mechanisms for Kafka: PLAIN (RFC 4616) and SCRAM-SHA-256/512
//! (RFC 5802, RFC 7677), as Kafka's SaslAuthenticate carries them.
//!
//! SCRAM verifies the server's signature before kwait believes it is
//! authenticated, and bounds the iteration count a server may ask for (a
//! hostile one could otherwise keep PID 1 hashing). The password is
//! used, never logged. SASLprep is not applied: names and passwords outside
//! ASCII may be refused by the broker.

#![cfg_attr(not(feature = "tls"), allow(dead_code))]

use crate::security::{Mechanism, Sasl};

/// A SASL exchange, one message in, one message out.
pub enum Exchange {
    Plain {
        done: bool,
    },
    #[cfg(feature = "tls")]
    Scram(Box<scram::Client>),
}

/// What to do after a server message.
pub enum Step {
    /// Send this to the server.
    Send(Vec<u8>),
    /// Authenticated (the server proved it knows the password too, for SCRAM).
    Done,
}

impl Exchange {
    pub fn start(sasl: &Sasl) -> Result<(Exchange, Vec<u8>), String> {
        match sasl.mechanism {
            Mechanism::Plain => {
                let mut first = Vec::new();
                first.push(0);
                first.extend_from_slice(sasl.user.as_bytes());
                first.push(0);
                first.extend_from_slice(sasl.password.expose().as_bytes());
                Ok((Exchange::Plain { done: false }, first))
            }
            #[cfg(feature = "tls")]
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let (client, first) = scram::Client::start(sasl)?;
                Ok((Exchange::Scram(Box::new(client)), first))
            }
            #[cfg(not(feature = "tls"))]
            _ => Err("SCRAM needs kwait's tls feature, which this build lacks".into()),
        }
    }

    /// Handles the server's answer to what was last sent.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, String> {
        match self {
            Exchange::Plain { done } => {
                *done = true;
                let _ = server;
                Ok(Step::Done)
            }
            #[cfg(feature = "tls")]
            Exchange::Scram(client) => client.step(server),
        }
    }
}

/// Standard base64 (RFC 4648), for SCRAM's salt, proof and signatures.
pub mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.trim_end_matches('=');
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut acc: u32 = 0;
        let mut bits = 0;
        for c in text.bytes() {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        Some(out)
    }
}

#[cfg(feature = "tls")]
pub mod scram {
    use ring::rand::SecureRandom;
    use ring::{digest, hmac, pbkdf2};

    use super::{base64, Step};
    use crate::secret::Secret;
    use crate::security::{Mechanism, Sasl};

    /// Kafka accepts 4096 to 16384 iterations; a server asking for more
    /// than this is not a Kafka broker kwait should spend CPU on.
    const MAX_ITERATIONS: u32 = 1_000_000;

    pub struct Client {
        mechanism: Mechanism,
        password: Secret,
        client_first_bare: String,
        nonce: String,
        /// Set after the client-final message: the signature the server must send.
        expected_server_signature: Option<Vec<u8>>,
    }

    impl Client {
        pub fn start(sasl: &Sasl) -> Result<(Client, Vec<u8>), String> {
            let mut raw = [0u8; 24];
            ring::rand::SystemRandom::new()
                .fill(&mut raw)
                .map_err(|_| "no randomness for the SCRAM nonce".to_string())?;
            let nonce = base64::encode(&raw);
            let user = sasl.user.replace('=', "=3D").replace(',', "=2C");
            let client_first_bare = format!("n={user},r={nonce}");
            let first = format!("n,,{client_first_bare}").into_bytes();
            Ok((
                Client {
                    mechanism: sasl.mechanism,
                    password: sasl.password.clone(),
                    client_first_bare,
                    nonce,
                    expected_server_signature: None,
                },
                first,
            ))
        }

        fn algorithms(
            &self,
        ) -> (
            hmac::Algorithm,
            pbkdf2::Algorithm,
            &'static digest::Algorithm,
        ) {
            match self.mechanism {
                Mechanism::ScramSha512 => (
                    hmac::HMAC_SHA512,
                    pbkdf2::PBKDF2_HMAC_SHA512,
                    &digest::SHA512,
                ),
                _ => (
                    hmac::HMAC_SHA256,
                    pbkdf2::PBKDF2_HMAC_SHA256,
                    &digest::SHA256,
                ),
            }
        }

        pub fn step(&mut self, server: &[u8]) -> Result<Step, String> {
            let text = std::str::from_utf8(server)
                .map_err(|_| "server's SCRAM message is not UTF-8".to_string())?;
            if let Some(expected) = &self.expected_server_signature {
                // server-final-message: v=signature, or e=error.
                if let Some(err) = attr(text, 'e') {
                    return Err(format!("the broker rejected the SCRAM proof: {err}"));
                }
                let got = attr(text, 'v')
                    .and_then(base64::decode)
                    .ok_or("the broker's final SCRAM message has no signature")?;
                let same = got.len() == expected.len()
                    && got
                        .iter()
                        .zip(expected)
                        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                        == 0;
                if !same {
                    return Err("the broker's SCRAM signature is wrong: it does not know the password (an impostor?)".into());
                }
                return Ok(Step::Done);
            }
            // server-first-message: r=nonce,s=salt,i=iterations
            if let Some(err) = attr(text, 'e') {
                return Err(format!("the broker rejected the SCRAM exchange: {err}"));
            }
            let nonce = attr(text, 'r').ok_or("the broker's SCRAM message has no nonce")?;
            if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
                return Err("the broker's SCRAM nonce does not extend kwait's".into());
            }
            let salt = attr(text, 's')
                .and_then(base64::decode)
                .ok_or("the broker's SCRAM message has no salt")?;
            let iterations = attr(text, 'i')
                .and_then(|i| i.parse::<u32>().ok())
                .filter(|i| (1..=MAX_ITERATIONS).contains(i))
                .ok_or("the broker's SCRAM iteration count is missing or out of range")?;
            let (mac, kdf, hash) = self.algorithms();
            let mut salted = vec![0u8; hash.output_len()];
            let Some(rounds) = std::num::NonZeroU32::new(iterations) else {
                return Err("SCRAM iteration count is 0".into());
            };
            pbkdf2::derive(
                kdf,
                rounds,
                &salt,
                self.password.expose().as_bytes(),
                &mut salted,
            );
            let salted_key = hmac::Key::new(mac, &salted);
            let client_key = hmac::sign(&salted_key, b"Client Key");
            let stored_key = digest::digest(hash, client_key.as_ref());
            let without_proof = format!("c=biws,r={nonce}");
            let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
            let client_signature = hmac::sign(
                &hmac::Key::new(mac, stored_key.as_ref()),
                auth_message.as_bytes(),
            );
            let proof: Vec<u8> = client_key
                .as_ref()
                .iter()
                .zip(client_signature.as_ref())
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = hmac::sign(&salted_key, b"Server Key");
            let server_signature = hmac::sign(
                &hmac::Key::new(mac, server_key.as_ref()),
                auth_message.as_bytes(),
            );
            self.expected_server_signature = Some(server_signature.as_ref().to_vec());
            Ok(Step::Send(
                format!("{without_proof},p={}", base64::encode(&proof)).into_bytes(),
            ))
        }
    }

    /// The value of attribute `key` in a SCRAM message (`k=value,...`).
    fn attr(text: &str, key: char) -> Option<&str> {
        text.split(',').find_map(|part| {
            let mut chars = part.chars();
            (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &part[2..])
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// RFC 7677 §3's SCRAM-SHA-256 example, with its fixed nonce.
        #[test]
        fn rfc7677_example() {
            let sasl = Sasl {
                mechanism: Mechanism::ScramSha256,
                user: "user".into(),
                password: Secret::new("pencil"),
            };
            let (mut client, _) = Client::start(&sasl).unwrap();
            client.nonce = "rOprNGfwEbeRWgbNEkqO".into();
            client.client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO".into();
            let Step::Send(fin) = client
                .step(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
                .unwrap()
            else {
                panic!()
            };
            assert_eq!(
                String::from_utf8(fin).unwrap(),
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
            );
            assert!(matches!(
                client.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
                Ok(Step::Done)
            ));
        }

        #[test]
        fn wrong_server_signature_and_hostile_messages() {
            let sasl = Sasl {
                mechanism: Mechanism::ScramSha512,
                user: "a,b=c".into(),
                password: Secret::new("p"),
            };
            let (mut client, first) = Client::start(&sasl).unwrap();
            assert!(String::from_utf8(first)
                .unwrap()
                .starts_with("n,,n=a=2Cb=3Dc,r="));
            let nonce = client.nonce.clone();
            assert!(client.step(b"r=other,s=AAAA,i=4096").is_err());
            assert!(client
                .step(format!("r={nonce}x,s=AAAA,i=99999999999").as_bytes())
                .is_err());
            assert!(client.step(b"e=invalid-proof").is_err());
            assert!(client
                .step(format!("r={nonce}x,s=AAAA,i=4096").as_bytes())
                .is_ok());
            assert!(client.step(b"v=AAAA").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_round_trip() {
        for (raw, text) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64::encode(raw), text);
            assert_eq!(base64::decode(text).unwrap(), raw);
        }
        assert!(base64::decode("!!").is_none());
    }
}
