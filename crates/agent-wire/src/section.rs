//! The `<<<cmk_update_agent_status:sep(0)>>>` section the updater writes: its header, its one
//! JSON line and the `trusted_certs` entries (signing spec section 3.4). [`Section`](crate::Section)
//! reads it back for the rating.

use serde::{Deserialize, Serialize};

/// Header of the monitoring section.
pub const SECTION_HEADER: &str = "<<<cmk_update_agent_status:sep(0)>>>";

/// The JSON line of the section, as the updater writes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SectionLine {
    /// Time of the last successful contact (Unix seconds).
    pub last_check: Option<f64>,
    /// Time of the last installation (Unix seconds).
    pub last_update: Option<f64>,
    /// Installed agent hash.
    pub aghash: Option<String>,
    /// Hash of a deferred install.
    pub pending_hash: Option<String>,
    /// Update URL handed out by the server.
    pub update_url: Option<String>,
    /// Trusted keys, written as `{"0": {...}, "1": {...}}` in the order of `signature_keys`.
    #[serde(serialize_with = "indexed")]
    pub trusted_certs: Vec<TrustedCertInfo>,
    /// Error of the last run.
    pub error: Option<String>,
    /// The updater's host name.
    pub host_name: Option<String>,
}

impl SectionLine {
    /// The whole section: the header and the JSON line, each ended by a newline.
    pub fn render(&self) -> String {
        format!(
            "{SECTION_HEADER}\n{}\n",
            serde_json::to_string(self).unwrap_or_default()
        )
    }
}

/// `{"0": {...}, "1": {...}}` in index order.
fn indexed<S: serde::Serializer>(certs: &[TrustedCertInfo], ser: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    let mut m = ser.serialize_map(Some(certs.len()))?;
    for (i, c) in certs.iter().enumerate() {
        m.serialize_entry(&i.to_string(), c)?;
    }
    m.end()
}

/// One entry of `trusted_certs` in the monitoring section (missing fields read as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrustedCertInfo {
    /// The certificate doesn't parse.
    pub corrupt: bool,
    /// Expiry: written as ISO 8601 with UTC offset (`2036-11-21T00:32:55+00:00`); older
    /// updaters write ASN.1 (`20430525111300Z`), see [`parse_not_after`](crate::parse_not_after).
    pub not_after: Option<String>,
    /// Hash name of the certificate's signature (`sha256`, `sha512`, …).
    pub signature_algorithm: Option<String>,
    /// Subject CN.
    pub common_name: Option<String>,
}

impl TrustedCertInfo {
    /// Parses a PEM certificate with `agent-sign`; `corrupt` if it doesn't parse (which
    /// includes key types `agent-sign` does not support, i.e. anything but RSA and Ed25519).
    pub fn from_pem(pem: &str) -> TrustedCertInfo {
        let Ok(cert) = agent_sign::Certificate::from_pem(pem) else {
            return TrustedCertInfo {
                corrupt: true,
                ..TrustedCertInfo::default()
            };
        };
        let not_after = crate::rating::format_not_after(cert.not_after());
        // `sha512WithRSAEncryption` -> `sha512`, as Checkmk reports the hash name.
        let signature_algorithm = cert
            .signature_algorithm()
            .strip_suffix("WithRSAEncryption")
            .map(str::to_owned);
        TrustedCertInfo {
            corrupt: false,
            not_after,
            signature_algorithm,
            common_name: cert.common_name().map(str::to_owned),
        }
    }
}
