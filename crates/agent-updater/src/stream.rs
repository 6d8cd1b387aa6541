//! Streaming read of a JSON document that carries a package as a base64 string (the
//! `deploy_agent.py` answer's `result.agent`, the install candidate's `agent_data`): the package
//! is decoded on the fly into a writer and hashed on the way, everything else is copied into a
//! small document that serde_json then reads as before. Memory stays bounded whatever the
//! package size.

use std::io::{self, BufRead, Read, Write};

use agent_sign::PackageDigest;

/// Most bytes the document may have apart from the package's base64 string.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    /// Reading the document failed (connection or file).
    #[error("{0}")]
    Read(io::Error),
    /// Writing the package failed.
    #[error("{0}")]
    Write(io::Error),
    /// The document without the package is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the answer apart from the package is larger than {MAX_DOCUMENT_BYTES} bytes")]
    DocumentTooLarge,
    /// The package string is not valid JSON or uses an escape base64 never needs.
    #[error("{0}")]
    Syntax(String),
    /// The package string is not base64.
    #[error("agent is not base64: {0}")]
    Base64(String),
    /// The package field appears twice.
    #[error("duplicate field `{0}`")]
    Duplicate(String),
}

/// The result of [`extract`]: the document with the package string replaced by `""`, and the
/// digest of the decoded package when the field was found.
#[derive(Debug)]
pub(crate) struct Extracted {
    /// The document's bytes without the package (valid JSON if the input was).
    pub(crate) rest: Vec<u8>,
    /// The decoded package's digest, `None` if the field was absent.
    pub(crate) digest: Option<PackageDigest>,
}

enum Frame {
    Object { key: Option<String>, in_value: bool },
    Array,
}

/// Reads the JSON document in `input`. The string at `path` (object keys from the top) is
/// base64-decoded into `out` while its SHA-256 is computed; every other byte is copied into
/// [`Extracted::rest`] (at most [`MAX_DOCUMENT_BYTES`]). The document's validity is left to the
/// caller's serde_json read of `rest`. Inside the package string, `\/` stands for `/`, `\n` and
/// `\r` (line breaks) and spaces are skipped; any other escape is refused.
pub(crate) fn extract(
    input: &mut impl BufRead,
    path: &[&str],
    out: &mut impl Write,
) -> Result<Extracted, StreamError> {
    let mut rest = Vec::new();
    let mut digest = None;
    let mut stack: Vec<Frame> = Vec::new();
    while let Some(b) = next_byte(input)? {
        match b {
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Object { key, in_value }) = stack.last_mut() {
                    *key = None;
                    *in_value = false;
                }
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b'"' => {
                let is_key = matches!(
                    stack.last(),
                    Some(Frame::Object {
                        in_value: false,
                        ..
                    })
                );
                if !is_key && at_path(&stack, path) {
                    if digest.is_some() {
                        return Err(StreamError::Duplicate(path.join(".")));
                    }
                    digest = Some(decode_string(input, out)?);
                    push(&mut rest, b"\"\"")?;
                    continue;
                }
                let start = rest.len();
                rest.push(b'"');
                copy_string(input, &mut rest)?;
                if is_key && let Some(Frame::Object { key, .. }) = stack.last_mut() {
                    *key = serde_json::from_slice::<String>(&rest[start..]).ok();
                }
                continue;
            }
            _ => {}
        }
        push(&mut rest, &[b])?;
    }
    Ok(Extracted { rest, digest })
}

/// Whether the value about to start sits at `path`.
fn at_path(stack: &[Frame], path: &[&str]) -> bool {
    stack.len() == path.len()
        && stack.iter().zip(path).all(|(frame, want)| {
            matches!(frame, Frame::Object { key: Some(k), in_value: true } if k == want)
        })
}

fn push(rest: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StreamError> {
    if rest.len() + bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(StreamError::DocumentTooLarge);
    }
    rest.extend_from_slice(bytes);
    Ok(())
}

fn next_byte(input: &mut impl BufRead) -> Result<Option<u8>, StreamError> {
    loop {
        match input.fill_buf() {
            Ok(buf) => {
                let b = buf.first().copied();
                if b.is_some() {
                    input.consume(1);
                }
                return Ok(b);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StreamError::Read(e)),
        }
    }
}

/// Copies the rest of a string (after its opening quote) up to and including the closing
/// quote. An unterminated string ends with the input; serde_json reports it.
fn copy_string(input: &mut impl BufRead, rest: &mut Vec<u8>) -> Result<(), StreamError> {
    let mut escaped = false;
    while let Some(b) = next_byte(input)? {
        push(rest, &[b])?;
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Ok(()),
            _ => {}
        }
    }
    Ok(())
}

/// Decodes the package string (after its opening quote) into `out`, hashing on the way.
fn decode_string(
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<PackageDigest, StreamError> {
    let mut text = Base64Text {
        input,
        escaped: false,
        done: false,
        failure: None,
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let copied = PackageDigest::copy(
        &mut base64::read::DecoderReader::new(&mut text, &engine),
        out,
    );
    match copied {
        Ok(digest) => Ok(digest),
        Err(e) => Err(match text.failure.take() {
            Some(failure) => failure,
            None => match e
                .get_ref()
                .and_then(|i| i.downcast_ref::<base64::DecodeError>())
            {
                Some(d) => StreamError::Base64(d.to_string()),
                None => StreamError::Write(e),
            },
        }),
    }
}

/// The characters of a JSON string that carries base64, up to its closing quote, without
/// line breaks and spaces. Failures are kept in `failure` so that they are told apart from
/// the decoder's and the writer's.
struct Base64Text<'a, R> {
    input: &'a mut R,
    escaped: bool,
    done: bool,
    failure: Option<StreamError>,
}

impl<R: BufRead> Base64Text<'_, R> {
    fn fail(&mut self, failure: StreamError) -> io::Error {
        let e = io::Error::other(failure.to_string());
        self.failure = Some(failure);
        e
    }
}

impl<R: BufRead> Read for Base64Text<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n == 0 && !self.done && !out.is_empty() {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    let text = e.to_string();
                    self.failure = Some(StreamError::Read(e));
                    return Err(io::Error::new(kind, text));
                }
            };
            if buf.is_empty() {
                return Err(self.fail(StreamError::Syntax(
                    "the answer ends inside the package's base64 string".into(),
                )));
            }
            let mut used = 0;
            let mut bad = None;
            for &b in buf {
                if n == out.len() {
                    break;
                }
                used += 1;
                if self.escaped {
                    self.escaped = false;
                    match b {
                        b'/' => {
                            out[n] = b'/';
                            n += 1;
                        }
                        b'n' | b'r' => {}
                        _ => {
                            let shown = if b.is_ascii_graphic() {
                                char::from(b).to_string()
                            } else {
                                format!("<0x{b:02x}>")
                            };
                            bad = Some(format!(
                                "escape \\{shown} in the package's base64 string is not \
                                 supported (only \\/, \\n and \\r)"
                            ));
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => {
                        self.done = true;
                        break;
                    }
                    b'\\' => self.escaped = true,
                    b' ' => {}
                    0..0x20 => {
                        bad = Some(format!(
                            "control character 0x{b:02x} in the package's base64 string"
                        ));
                        break;
                    }
                    _ => {
                        out[n] = b;
                        n += 1;
                    }
                }
            }
            self.input.consume(used);
            if let Some(reason) = bad {
                return Err(self.fail(StreamError::Syntax(reason)));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn run(text: &[u8], path: &[&str]) -> (Result<Extracted, StreamError>, Vec<u8>) {
        let mut out = Vec::new();
        // A tiny buffer so that escapes and tokens straddle buffer boundaries.
        let mut input = io::BufReader::with_capacity(7, text);
        let r = extract(&mut input, path, &mut out);
        (r, out)
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z\"\\\\/\n\u{e9}\u{1F600} ]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("(agent_data|agent|result|[a-z/\"]{1,6})", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// The package's base64 as a JSON string body: `/` as `\/` or not, line breaks as `\n` (or
    /// `\r\n`) every 76 characters or not.
    fn encode(package: &[u8], slash: bool, wrap: Option<bool>) -> String {
        let b64 = B64.encode(package);
        let mut text = String::new();
        for (i, c) in b64.chars().enumerate() {
            if let Some(crlf) = wrap
                && i > 0
                && i % 76 == 0
            {
                text.push_str(if crlf { "\\r\\n" } else { "\\n" });
            }
            if c == '/' && slash {
                text.push_str("\\/");
            } else {
                text.push(c);
            }
        }
        text
    }

    /// A document with the fields of `fields` in order, the package's field at `at` (none when
    /// `at` is past the end), written with the given whitespace; nested under
    /// `{"result_code": 0, "result": …}` when `nested`.
    #[allow(clippy::too_many_arguments)]
    fn document(
        fields: &[(String, Value)],
        key: &str,
        b64: &str,
        at: usize,
        ws: &str,
        escape_key: bool,
        nested: bool,
    ) -> String {
        let mut parts: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k != key)
            .map(|(k, v)| format!("{}{ws}:{ws}{}", json!(k), v))
            .collect();
        if at <= parts.len() {
            let name = if escape_key {
                key.replace('_', "\\u005f").replace('a', "\\u0061")
            } else {
                key.to_owned()
            };
            parts.insert(at, format!("\"{name}\"{ws}:{ws}\"{b64}\""));
        }
        let body = format!("{{{ws}{}{ws}}}", parts.join(&format!("{ws},{ws}")));
        if nested {
            format!("{ws}{{\"result_code\":{ws}0,{ws}\"result\":{ws}{body}}}{ws}")
        } else {
            format!("{ws}{body}{ws}")
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn matches_serde_json(
            fields in prop::collection::vec(("[a-z_\"/]{1,10}", value()), 0..5),
            package in prop::collection::vec(any::<u8>(), 0..600),
            at in 0usize..7,
            ws in "[ \t\n\r]{0,3}",
            slash in any::<bool>(),
            wrap in prop::option::of(any::<bool>()),
            escape_key in any::<bool>(),
            nested in any::<bool>(),
        ) {
            let (key, path): (&str, &[&str]) =
                if nested { ("agent", &["result", "agent"]) } else { ("agent_data", &["agent_data"]) };
            let b64 = encode(&package, slash, wrap);
            let text = document(&fields, key, &b64, at, &ws, escape_key, nested);
            let mut want: Value = serde_json::from_str(&text).unwrap();
            let inner = if nested { &mut want["result"] } else { &mut want };
            let present = inner.get(key).is_some();
            if present {
                inner[key] = json!("");
            }
            let (r, out) = run(text.as_bytes(), path);
            let r = r.unwrap();
            let rest: Value = serde_json::from_slice(&r.rest).unwrap();
            prop_assert_eq!(rest, want);
            if present {
                prop_assert_eq!(&out, &package);
                prop_assert_eq!(r.digest, Some(PackageDigest::of(&package)));
            } else {
                prop_assert!(out.is_empty());
                prop_assert_eq!(r.digest, None);
            }
        }

        #[test]
        fn truncated_documents_never_read_as_whole(
            package in prop::collection::vec(any::<u8>(), 0..300),
            cut in any::<prop::sample::Index>(),
        ) {
            let text = format!(
                "{{\"a\": [1, {{\"agent_data\": \"x\"}}], \"agent_data\": \"{}\", \"b\": \"c\"}}",
                B64.encode(&package)
            );
            let cut = cut.index(text.len());
            let (r, _) = run(&text.as_bytes()[..cut], &["agent_data"]);
            match r {
                Ok(e) => prop_assert!(serde_json::from_slice::<Value>(&e.rest).is_err()),
                Err(e) => prop_assert!(matches!(e, StreamError::Syntax(_)), "{e}"),
            }
        }

        #[test]
        fn invalid_base64_is_refused(
            package in prop::collection::vec(any::<u8>(), 1..300),
            bad in "[-_!*.%]",
            at in any::<prop::sample::Index>(),
        ) {
            let mut b64 = B64.encode(&package);
            b64.insert_str(at.index(b64.len()), &bad);
            let text = format!("{{\"agent_data\": \"{b64}\"}}");
            let (r, _) = run(text.as_bytes(), &["agent_data"]);
            let e = r.unwrap_err();
            prop_assert!(matches!(e, StreamError::Base64(_)), "{e}");
            prop_assert!(e.to_string().starts_with("agent is not base64: "));
        }
    }

    #[test]
    fn other_escapes_and_control_characters_are_refused() {
        for (body, why) in [
            ("QUJD\\u0044", "escape \\u"),
            ("QU\\tJD", "escape \\t"),
            ("QU\\\"JD", "escape \\\""),
            ("QU\u{1}JD", "control character 0x01"),
        ] {
            let text = format!("{{\"agent_data\": \"{body}\"}}");
            let (r, _) = run(text.as_bytes(), &["agent_data"]);
            let e = r.unwrap_err();
            assert!(matches!(e, StreamError::Syntax(_)), "{e}");
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn duplicate_field_and_large_rest_are_refused() {
        let (r, _) = run(
            br#"{"agent_data": "QQ==", "agent_data": "Qg=="}"#,
            &["agent_data"],
        );
        assert!(matches!(r, Err(StreamError::Duplicate(_))));
        let big = format!(
            "{{\"x\": \"{}\", \"agent_data\": \"QQ==\"}}",
            "a".repeat(MAX_DOCUMENT_BYTES)
        );
        let (r, _) = run(big.as_bytes(), &["agent_data"]);
        assert!(matches!(r, Err(StreamError::DocumentTooLarge)));
        // The package itself is not counted.
        let package = vec![7u8; 2 * MAX_DOCUMENT_BYTES];
        let text = format!("{{\"agent_data\": \"{}\"}}", B64.encode(&package));
        let (r, out) = run(text.as_bytes(), &["agent_data"]);
        assert_eq!(r.unwrap().rest, br#"{"agent_data": ""}"#);
        assert_eq!(out, package);
    }
}
