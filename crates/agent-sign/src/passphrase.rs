//! Passphrases and the key-derivation parameters used to protect private keys.

use std::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Minimum passphrase length (in characters) for new keys, as Checkmk 2.5 requires.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// The production PBKDF2-HMAC-SHA256 iteration count for keys we write.
pub const DEFAULT_KDF_ITERATIONS: u32 = 600_000;

/// The highest iteration count we accept when *reading* a key. A key file is
/// input: without a cap a crafted file could make us spin for hours.
pub const MAX_KDF_ITERATIONS: u32 = 10_000_000;

/// A passphrase. Its memory is wiped when dropped, and it never appears in
/// `Debug` output or logs.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase (no rules are checked: existing keys may have short ones).
    pub fn new(passphrase: impl Into<String>) -> Self {
        Passphrase(Zeroizing::new(passphrase.into()))
    }

    /// Checks the rules for a *new* key's passphrase: at least
    /// [`MIN_PASSPHRASE_CHARS`] characters.
    pub fn check_new(&self) -> Result<()> {
        if self.0.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(Error::WeakPassphrase {
                min: MIN_PASSPHRASE_CHARS,
            });
        }
        Ok(())
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl PartialEq for Passphrase {
    /// Compares in constant time (for confirming a new passphrase).
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
impl Eq for Passphrase {}

impl From<&str> for Passphrase {
    fn from(s: &str) -> Self {
        Passphrase::new(s)
    }
}

/// PBKDF2-HMAC-SHA256 parameters for keys we write (always with AES-256-CBC and
/// a random 16-byte salt and IV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    iterations: u32,
}

impl Default for KdfParams {
    /// [`DEFAULT_KDF_ITERATIONS`] (600,000).
    fn default() -> Self {
        KdfParams {
            iterations: DEFAULT_KDF_ITERATIONS,
        }
    }
}

/// Refuses more than [`MAX_KDF_ITERATIONS`] PBKDF2 iterations (a key's own
/// count as much as one asked for): beyond it, unlocking costs seconds.
pub(crate) fn within_kdf_limit(iterations: u32) -> Result<()> {
    if iterations > MAX_KDF_ITERATIONS {
        return Err(Error::UnsupportedEncryption(format!(
            "{iterations} PBKDF2 iterations exceed the limit of {MAX_KDF_ITERATIONS}"
        )));
    }
    Ok(())
}

impl KdfParams {
    /// Parameters with `iterations`, which must be at least
    /// [`DEFAULT_KDF_ITERATIONS`] (and at most [`MAX_KDF_ITERATIONS`]).
    pub fn new(iterations: u32) -> Result<Self> {
        if iterations < DEFAULT_KDF_ITERATIONS {
            return Err(Error::WeakKdf {
                iterations,
                min: DEFAULT_KDF_ITERATIONS,
            });
        }
        within_kdf_limit(iterations)?;
        Ok(KdfParams { iterations })
    }

    /// **Insecure, for tests only.** Parameters with any iteration count
    /// (at least 1), bypassing the minimum so that test suites do not spend
    /// seconds per key. Never use this for keys that protect anything.
    pub fn insecure_for_tests(iterations: u32) -> Self {
        KdfParams {
            iterations: iterations.clamp(1, MAX_KDF_ITERATIONS),
        }
    }

    /// The PBKDF2 iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_compare_by_every_byte_and_never_show_themselves() {
        let p = |s: &str| Passphrase::new(s);
        assert_eq!(p("correct horse"), p("correct horse"));
        assert_ne!(p("correct horse"), p("correct horsf"), "last byte");
        assert_ne!(p("correct horse"), p("Correct horse"), "first byte");
        assert_ne!(p("correct horse"), p("correct hors"), "a prefix");
        assert_ne!(p("correct hors"), p("correct horse"));
        assert_ne!(p("ab"), p("ba"), "differences that cancel out under xor");
        assert_eq!(p(""), p(""));
        let shown = format!("{:?}", p("correct horse"));
        assert_eq!(shown, "Passphrase(<redacted>)");
    }

    #[test]
    fn the_kdf_limit_admits_its_own_count_and_refuses_one_more() {
        within_kdf_limit(MAX_KDF_ITERATIONS).unwrap();
        within_kdf_limit(DEFAULT_KDF_ITERATIONS).unwrap();
        let err = within_kdf_limit(MAX_KDF_ITERATIONS + 1).unwrap_err();
        assert!(matches!(err, Error::UnsupportedEncryption(_)), "{err:?}");
        assert!(KdfParams::new(MAX_KDF_ITERATIONS + 1).is_err());
    }
}
