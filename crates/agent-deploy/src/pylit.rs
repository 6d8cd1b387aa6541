//! A small reader and writer for the Python literals of the updater's files (section 3.2):
//! `repr` of a dict (read by `ast.literal_eval`), or `name = literal` assignments.

use serde_json::{Map, Number, Value};

/// Parses either one dict literal or a sequence of `name = literal` lines into a JSON object.
pub(crate) fn parse_document(text: &str) -> Result<Map<String, Value>, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        line: 1,
    };
    p.skip_ws();
    if p.peek() == Some(b'{') {
        let v = p.value()?;
        p.skip_ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing text after the dict"));
        }
        return match v {
            Value::Object(m) => Ok(m),
            _ => Err(p.err("expected a dict")),
        };
    }
    let mut map = Map::new();
    loop {
        p.skip_ws();
        if p.i >= p.s.len() {
            return Ok(map);
        }
        let name = p.ident().ok_or_else(|| p.err("expected `name = value`"))?;
        p.skip_ws();
        if p.peek() != Some(b'=') {
            return Err(p.err("expected `=`"));
        }
        p.i += 1;
        let v = p.value()?;
        map.insert(name, v);
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("line {}: {what}", self.line)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                }
                b' ' | b'\t' | b'\r' | b';' => self.i += 1,
                b'#' => {
                    while let Some(c) = self.peek() {
                        if c == b'\n' {
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn ident(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.i += 1;
                        return Ok(Value::Object(m));
                    }
                    let k = match self.value()? {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        _ => return Err(self.err("dict keys must be strings or numbers")),
                    };
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected `:`"));
                    }
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(k, v);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err(self.err("expected `,` or `}`")),
                    }
                }
            }
            Some(open @ (b'[' | b'(')) => {
                let close = if open == b'[' { b']' } else { b')' };
                self.i += 1;
                let mut v = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() == Some(close) {
                        self.i += 1;
                        return Ok(Value::Array(v));
                    }
                    v.push(self.value()?);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(c) if c == close => {}
                        _ => return Err(self.err("expected `,` or a closing bracket")),
                    }
                }
            }
            Some(b'\'' | b'"') => self.string(false).map(Value::String),
            Some(b'u' | b'U') if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) => {
                self.i += 1;
                self.string(false).map(Value::String)
            }
            Some(b'r' | b'R') if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) => {
                self.i += 1;
                self.string(true).map(Value::String)
            }
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_digit() => self.number(),
            Some(_) => match self.ident().as_deref() {
                Some("True") | Some("true") => Ok(Value::Bool(true)),
                Some("False") | Some("false") => Ok(Value::Bool(false)),
                Some("None") | Some("null") => Ok(Value::Null),
                _ => Err(self.err("unsupported value")),
            },
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.' | b'_') {
                self.i += 1;
            } else {
                break;
            }
        }
        let text: String = String::from_utf8_lossy(&self.s[start..self.i]).replace('_', "");
        let text = text.trim_end_matches(['L', 'l']);
        if let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Number(n.into()));
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| self.err("bad number"))
    }

    fn string(&mut self, raw: bool) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'\n' => return Err(self.err("newline in string")),
                c if c == quote => break,
                b'\\' if raw => {
                    out.push(b'\\');
                    if let Some(n) = self.peek() {
                        out.push(n);
                        self.i += 1;
                    }
                }
                b'\\' => {
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'\\' | b'\'' | b'"' => out.push(e),
                        b'\n' => self.line += 1,
                        b'x' | b'u' | b'U' => {
                            let n = match e {
                                b'x' => 2,
                                b'u' => 4,
                                _ => 8,
                            };
                            let hex = self
                                .s
                                .get(self.i..self.i + n)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.err("bad escape"))?;
                            self.i += n;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(hex.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            out.push(b'\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }
}

/// Writes a JSON object as a Python dict literal that `ast.literal_eval` reads.
pub(crate) fn format_dict(map: &Map<String, Value>) -> String {
    let mut out = String::from("{");
    for (n, (k, v)) in map.iter().enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        write_str(&mut out, k);
        out.push_str(": ");
        write_value(&mut out, v);
    }
    out.push_str("}\n");
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => {
            out.push('[');
            for (n, x) in a.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_value(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (n, (k, x)) in m.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_str(out, k);
                out.push_str(": ");
                write_value(out, x);
            }
            out.push('}');
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_repr_dict() {
        let text = "{'host_name': 'web01', 'last_check': 1660750511.8, 'pending_hash': None, \
                    'ignore_update_url': True, 'certificates': ['-----BEGIN\\nX'], 'n': 3}";
        let m = parse_document(text).unwrap();
        assert_eq!(m["host_name"], "web01");
        assert_eq!(m["pending_hash"], Value::Null);
        assert_eq!(m["ignore_update_url"], true);
        assert_eq!(m["certificates"][0], "-----BEGIN\nX");
        assert_eq!(m["n"], 3);
        let again = parse_document(&format_dict(&m)).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn assignments_and_comments() {
        let text = "# Created by the bakery\nserver = \"cmk.example\"\nsite = 'mysite' # comment\ninterval = 600\nproxy = {'server': 'p', 'port': 3128, 'proxy_protocol': 'http'}\n";
        let m = parse_document(text).unwrap();
        assert_eq!(m["server"], "cmk.example");
        assert_eq!(m["interval"], 600);
        assert_eq!(m["proxy"]["port"], 3128);
    }

    #[test]
    fn rejects_code() {
        assert!(parse_document("server = __import__('os')").is_err());
        assert!(parse_document("{'a': 1").is_err());
    }
}
