//! Java properties files (`client.properties`, `server.properties`), read
//! as `java.util.Properties.load` reads them: the one parser for both.

/// `(key, value)` pairs in file order, values as written (untrimmed):
/// lines end in `\n`, `\r\n` or a lone `\r`; lines whose first non-blank
/// character is `#` or `!` are comments; a line ending in an odd number of
/// backslashes goes on in the next one (its leading blanks dropped, and at
/// the end of the file it simply ends); a key ends at the first unescaped
/// `=`, `:` or whitespace, and one `=` or `:` may follow the whitespace
/// (`key=value`, `key: value`, `key value`); `\` escapes (`\t`, `\uXXXX`,
/// `\=`) in keys and values.
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    // A logical line being continued from the previous natural line.
    let mut pending: Option<String> = None;
    let natural = text.split("\r\n").flat_map(|l| l.split(['\n', '\r']));
    for line in natural.map(Some).chain([None]) {
        let logical = match line {
            // End of the file: a continued line ends there.
            None => pending.take(),
            Some(line) => {
                let line = line.trim_start_matches(BLANK);
                let continued = pending.take();
                if continued.is_none()
                    && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
                {
                    continue;
                }
                let mut logical = continued.unwrap_or_default();
                let backslashes = line.chars().rev().take_while(|&c| c == '\\').count();
                if backslashes % 2 == 1 {
                    logical.push_str(line.strip_suffix('\\').unwrap_or(line));
                    pending = Some(logical);
                    continue;
                }
                logical.push_str(line);
                Some(logical)
            }
        };
        entries.extend(logical.as_deref().map(property));
    }
    entries
}

/// Whitespace in Java properties.
const BLANK: [char; 3] = [' ', '\t', '\x0c'];

/// A logical properties line's key and value (Java's `Properties.load0`).
fn property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let (mut key_end, mut value_start) = (chars.len(), chars.len());
    let mut separator = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':' || BLANK.contains(&c)) {
            separator = c == '=' || c == ':';
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    let mut rest = chars.get(value_start..).unwrap_or_default();
    while let Some((&c, after)) = rest.split_first() {
        if BLANK.contains(&c) || (!separator && (c == '=' || c == ':')) {
            separator |= c == '=' || c == ':';
            rest = after;
        } else {
            break;
        }
    }
    let key = chars.get(..key_end).unwrap_or_default();
    (unescape(key), unescape(rest))
}

/// Java properties escapes: `\t \n \r \f`, `\uXXXX`, and `\x` for any
/// other `x`.
fn unescape(chars: &[char]) -> String {
    let mut out = String::new();
    let mut rest = chars.iter();
    while let Some(&c) = rest.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match rest.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = rest.clone().take(4).collect();
                let code = (hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten();
                match code {
                    Some(code) => {
                        out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                        rest.nth(3);
                    }
                    // Java refuses the file ("Malformed \uxxxx encoding");
                    // here the key or value just cannot match a real one.
                    None => out.push(char::REPLACEMENT_CHARACTER),
                }
            }
            Some(&other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// java.util.Properties' separators, continuations and escapes.
    #[test]
    fn properties_as_java_reads_them() {
        let text = "# comment\n! comment\n\
                    a=1\n  b : 2\nc 3\nd\t=\t4\ne:5\nf\n\
                    g = x=y:z w \n\
                    h = one \\\n    two\n\
                    key\\ with\\=odd\\:chars = v\n\
                    i = ends in a slash \\\\\n\
                    j=\\u0041\\tB\\n\r\n\
                    # a comment does not go on \\\n\
                    k=last";
        let got = super::parse(text);
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(k, v)| (k, v.trim().to_string()))
            .collect();
        let want = [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("e", "5"),
            ("f", ""),
            ("g", "x=y:z w"),
            ("h", "one two"),
            ("key with=odd:chars", "v"),
            ("i", "ends in a slash \\"),
            ("j", "A\tB"),
            ("k", "last"),
        ];
        let got: Vec<(&str, &str)> = got.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, want);
    }
}
