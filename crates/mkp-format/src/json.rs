//! JSON string escaping, shared by every JSON writer of the crate (`info.json`,
//! `inspect --json`, `list --json`, `find --json`).

use std::fmt::Write as _;

/// Appends `s` to `out` as a JSON string literal.
///
/// With `ascii`, every character outside printable ASCII is escaped as `\uXXXX` (UTF-16
/// units), like Python's `json.dumps`; without, non-ASCII text is kept as UTF-8, like
/// pydantic's `model_dump_json` (and serde_json). Both use the short escapes `\" \\ \n \r
/// \t \b \f` and `\u00xx` for the other control characters.
pub(crate) fn push_str(s: &str, ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ascii && (c as u32) > 0x7e) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_str;

    fn both(s: &str) -> (String, String) {
        let (mut utf8, mut ascii) = (String::new(), String::new());
        push_str(s, false, &mut utf8);
        push_str(s, true, &mut ascii);
        (utf8, ascii)
    }

    #[test]
    fn utf8_form_equals_serde_json() {
        for s in ["a\"b\\c\nü\u{1}", "\u{8}\u{c}\r\t\u{7f}", "𝄞 snow ☃", ""] {
            assert_eq!(both(s).0, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn ascii_form_is_pythons_json_dumps() {
        assert_eq!(
            both("a\"b\\c\nü\u{1}").1,
            "\"a\\\"b\\\\c\\n\\u00fc\\u0001\""
        );
        // json.dumps("\x7f𝄞") == '"\\u007f\\ud834\\udd1e"'
        assert_eq!(both("\u{7f}𝄞").1, "\"\\u007f\\ud834\\udd1e\"");
    }
}
