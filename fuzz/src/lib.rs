//! Helpers shared by the fuzz targets.

use std::path::PathBuf;

/// 2026-01-01T00:00:00Z, the `not_before` of agent-sign's fixtures.
pub const JAN_2026: i64 = 1_767_225_600;

/// "Now" for the signing targets: 2027-02-05, when every fixture certificate
/// of agent-sign is valid (as in its tests).
pub const NOW: i64 = JAN_2026 + 400 * 86_400;

/// The package the signing targets sign; nothing else is ever signed.
pub const PACKAGE: &[u8] = b"fuzz package";

/// PBKDF2 iterations above which the key import target skips an input:
/// agent-sign allows up to 10,000,000 by design, which takes seconds.
pub const MAX_FUZZ_ITERATIONS: u32 = 20_000;

/// When `FUZZ_WRITE_SEEDS` names a directory, a target whose seeds need
/// keys (signatures) writes them there at start-up; `scripts/fuzz` uses this.
pub fn write_seed(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("FUZZ_WRITE_SEEDS") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(name), bytes);
    }
}

/// The PBKDF2 iteration count of the first `PRIVATE KEY` block of `text`
/// as agent-sign finds it (same tolerant block search), if it is an
/// encrypted PKCS#8 block that parses.
pub fn pbkdf2_iterations(text: &str) -> Option<u32> {
    use base64::Engine as _;
    use pkcs8::der::Decode as _;
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after.find("-----")?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = body_start.find(&end_marker)?;
        if label.ends_with("PRIVATE KEY") {
            let body = &body_start[..body_end];
            let b64: String = body
                .lines()
                .filter(|l| !l.contains(':'))
                .flat_map(|l| l.chars().filter(|c| !c.is_ascii_whitespace()))
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .ok()?;
            let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der).ok()?;
            return match &info.encryption_algorithm {
                pkcs5::EncryptionScheme::Pbes2(params) => {
                    params.kdf.pbkdf2().map(|p| p.iteration_count)
                }
                _ => None,
            };
        }
        rest = &body_start[body_end + end_marker.len()..];
    }
    None
}
