//! A tolerant PEM reader and a strict PEM writer.
//!
//! Reading accepts CRLF line ends, any line width and surrounding text, so that
//! a re-wrapped copy of a certificate is still the same certificate. Writing
//! always produces 64-column lines with LF, like OpenSSL and pyca.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// One PEM block: its label and the decoded bytes (wiped on drop, since a
/// block may hold key material).
pub(crate) struct Block {
    pub(crate) label: String,
    pub(crate) headers: bool,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// All PEM blocks in `text`, in order.
pub(crate) fn blocks(text: &str) -> Result<Vec<Block>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            return Err(Error::MalformedPem("unterminated BEGIN line".into()));
        };
        let label = after[..label_end].to_string();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_start.find(&end_marker) else {
            return Err(Error::MalformedPem(format!("no END line for {label}")));
        };
        let body = &body_start[..body_end];
        let headers = body.contains(':');
        let mut b64 = Zeroizing::new(String::with_capacity(body.len()));
        for line in body.lines() {
            if line.contains(':') {
                continue; // RFC 1421 headers (Proc-Type, DEK-Info)
            }
            b64.extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
        }
        let der = STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| Error::MalformedPem(format!("bad base64 in {label} block: {e}")))?;
        out.push(Block {
            label,
            headers,
            der: Zeroizing::new(der),
        });
        rest = &body_start[body_end + end_marker.len()..];
    }
    Ok(out)
}

/// Encodes `der` as one PEM block with 64-column lines and LF line ends.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
