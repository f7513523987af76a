//! Just enough JSON to read a broker registration znode: objects, arrays,
//! strings (with escapes), numbers kept as text, booleans and null.
//!
//! Why not serde_json: measured in kwait's static no-TLS build it adds
//! 16.4 KB, which put that build over its 1 MiB budget at the time, to read
//! a few fields. Input is untrusted (a znode's bytes):
//! its size, nesting and number of values are limited, every index is
//! checked, and nothing panics.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A number, as written.
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in document order (a Vec is smaller code than a map, and a
    /// registration has a dozen members).
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number, or a string holding one (Kafka writes `"timestamp"` as a
    /// string and `"port"` as a number).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) | Value::String(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// Deepest nesting accepted; a registration is two levels deep.
const MAX_DEPTH: usize = 32;
/// Longest text accepted: ZooKeeper's default jute.maxbuffer, the most a
/// znode holds. A registration is a few hundred bytes.
const MAX_TEXT: usize = 1 << 20;
/// Most values (every array item, member and scalar) in one document. A
/// registration has a few dozen; without a bound a megabyte of `[0,0,...`
/// would cost tens of megabytes of `Value`s in PID 1.
const MAX_VALUES: usize = 4096;

pub fn parse(text: &str) -> Result<Value, String> {
    if text.len() > MAX_TEXT {
        return Err(format!(
            "{} bytes of JSON, more than the {MAX_TEXT} kwait reads",
            text.len()
        ));
    }
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        values: 0,
    };
    let value = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected text after the JSON value at byte {}",
            p.i
        ));
    }
    Ok(value)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Values started so far, against [`MAX_VALUES`].
    values: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace, then consumes `c` or returns an error naming the
    /// byte offset: never panics (not `Option::expect`).
    fn require(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", c as char, self.i))
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, String> {
        if self.s.get(self.i..self.i + word.len()) == Some(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            Err(format!("unexpected text at byte {}", self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(format!("more than {MAX_VALUES} values"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(format!("unexpected character at byte {}", self.i)),
            None => Err("unexpected end of JSON".into()),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut map = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(format!("expected a key at byte {}", self.i));
            }
            let key = self.string()?;
            self.require(b':')?;
            let value = self.value(depth + 1)?;
            map.push((key, value));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| "bad number")?;
        Ok(Value::Number(text.to_string()))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("unterminated escape".into());
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            // Four hex digits: from_str_radix alone would
                            // also take a sign ("\\u+041").
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            self.i += 4;
                            let ch = char::from_u32(hex).unwrap_or(char::REPLACEMENT_CHARACTER);
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i)),
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| "string is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_registration() {
        let text = r#"{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},
            "endpoints":["PLAINTEXT://kafka:29092","PLAINTEXT_HOST://localhost:9092"],
            "jmx_port":-1,"host":"kafka","port":29092,"timestamp":"1700000000000","version":5}"#;
        let v = parse(text).unwrap();
        assert_eq!(v.get("port").and_then(Value::as_i64), Some(29092));
        assert_eq!(
            v.get("timestamp").and_then(Value::as_i64),
            Some(1_700_000_000_000)
        );
        let Some(Value::Array(eps)) = v.get("endpoints") else {
            panic!()
        };
        assert_eq!(eps[1].as_str(), Some("PLAINTEXT_HOST://localhost:9092"));
        assert_eq!(
            parse(r#"{"a":"\u00e9\n\"x\""}"#)
                .unwrap()
                .get("a")
                .and_then(Value::as_str),
            Some("é\n\"x\"")
        );
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for bad in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":}",
            "[1,",
            "\"abc",
            "{\"a\":1}x",
            "nul",
            "\"\\u12\"",
            "{1:2}",
            "\"\\u+041\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(&deep).is_err());
        // Many small values, or a huge text: refused before they cost memory.
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(parse(&many).unwrap_err().contains("values"));
        let enough = format!("[{}0]", "0,".repeat(MAX_VALUES - 2));
        assert!(parse(&enough).is_ok());
        let huge = format!("\"{}\"", "x".repeat(MAX_TEXT));
        assert!(parse(&huge).unwrap_err().contains("bytes"));
        for cut in 0..40 {
            let text = r#"{"endpoints":["PLAINTEXT://k:1"],"timestamp":"17"}"#;
            let _ = parse(&text[..cut.min(text.len())]);
        }
    }
}
