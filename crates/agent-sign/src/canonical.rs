//! Canonical JSON: the one byte string that is signed for a JSON value.
//!
//! The encoding is RFC 8785 (JCS) restricted to what our documents contain:
//! object members sorted by their names' UTF-16 code units, no insignificant
//! whitespace, strings with the minimal JSON escapes (`\"`, `\\`, `\b`, `\f`,
//! `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything else
//! literal UTF-8), and **integers only**, within ±(2^53 − 1) so that every JSON
//! implementation reads them exactly. Floats are refused rather than rounded.

use serde_json::Value;

use crate::error::{Error, Result};

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Encodes `value` canonically. Fails on non-integer numbers and on integers
/// outside ±(2^53 − 1).
pub fn to_canonical_json(value: &Value) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(Error::Metadata(format!(
                        "integer {u} is too large for canonical JSON"
                    )));
                }
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(Error::Metadata(format!(
                        "integer {i} is too small for canonical JSON"
                    )));
                }
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(Error::Metadata(format!(
                    "number {n} is not an integer; canonical JSON holds integers only"
                )));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_members_and_drops_whitespace() {
        let v = json!({"b": 1, "a": [true, null, "x"], "A": {"z": -3, "y": "é\n\"\u{1}"}});
        let got = String::from_utf8(to_canonical_json(&v).unwrap()).unwrap();
        assert_eq!(
            got,
            r#"{"A":{"y":"é\n\"\u0001","z":-3},"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn utf16_order_differs_from_utf8_order() {
        // U+FF61 sorts after U+1F600 in UTF-8 but before it in UTF-16 (surrogates are 0xD8xx).
        let v = json!({"\u{1F600}": 1, "\u{FF61}": 2});
        let got = String::from_utf8(to_canonical_json(&v).unwrap()).unwrap();
        assert_eq!(got, "{\"\u{1F600}\":1,\"\u{FF61}\":2}");
    }

    #[test]
    fn refuses_floats_and_huge_integers() {
        assert!(to_canonical_json(&json!({"a": 1.5})).is_err());
        assert!(to_canonical_json(&json!(9_007_199_254_740_992_u64)).is_err());
        assert!(to_canonical_json(&json!(9_007_199_254_740_991_u64)).is_ok());
    }

    #[test]
    fn negative_integers_stop_at_minus_two_to_the_53_plus_one() {
        let low = to_canonical_json(&json!(-9_007_199_254_740_991_i64)).unwrap();
        assert_eq!(low, b"-9007199254740991");
        assert!(to_canonical_json(&json!(-9_007_199_254_740_992_i64)).is_err());
        assert!(to_canonical_json(&json!(i64::MIN)).is_err());
    }

    #[test]
    fn only_control_characters_are_escaped_as_code_points() {
        let v = json!(" \u{1f}\u{7f}~");
        let got = String::from_utf8(to_canonical_json(&v).unwrap()).unwrap();
        assert_eq!(got, "\" \\u001f\u{7f}~\"");
    }

    proptest::proptest! {
        #[test]
        fn canonical_form_is_a_fixed_point(keys in proptest::collection::vec("[a-zA-Z\u{80}-\u{10FFFF}\"\\\\\n]{0,6}", 0..6), n in -1000i64..1000) {
            let mut map = serde_json::Map::new();
            for (i, k) in keys.iter().enumerate() {
                map.insert(k.clone(), json!([n, i, k]));
            }
            let once = to_canonical_json(&Value::Object(map)).unwrap();
            let reparsed: Value = serde_json::from_slice(&once).unwrap();
            let twice = to_canonical_json(&reparsed).unwrap();
            proptest::prop_assert_eq!(once, twice);
        }
    }
}
