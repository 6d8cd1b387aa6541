//! TLS towards the deployment server when certificates are configured or were received.
//!
//! Checkmk's updater (Python requests on OpenSSL) and curl accept a server whose own
//! certificate is one of the trusted certificates, even when it says `CA:TRUE` (the default of
//! `openssl req -x509`). webpki refuses such a certificate as an end entity
//! (`CaUsedAsEndEntity`), so the updater wraps webpki's verifier and accepts exactly that case,
//! still checking the host name, the validity period and the handshake signature. ureq does not
//! take a custom certificate verifier, so the TLS step of its connector chain is our own.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// webpki's verifier plus: an end-entity certificate that is byte-equal to a trusted
/// certificate is accepted when it names the server and is within its validity period.
#[derive(Debug)]
pub(crate) struct TrustedCertVerifier {
    /// `None` when no trusted certificate is usable as a trust anchor.
    inner: Option<Arc<WebPkiServerVerifier>>,
    trusted: Vec<CertificateDer<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl TrustedCertVerifier {
    /// A verifier trusting exactly `trusted` (DER).
    pub(crate) fn new(
        trusted: Vec<CertificateDer<'static>>,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> TrustedCertVerifier {
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(trusted.iter().cloned());
        tracing::debug!("trusting {added} certificate(s), {ignored} unusable as trust anchor");
        // webpki refuses an empty anchor list; then only the byte-equal case can succeed.
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .ok();
        TrustedCertVerifier {
            inner,
            trusted,
            provider,
        }
    }

    /// Whether `end_entity` is one of the trusted certificates itself.
    fn is_pinned(&self, end_entity: &CertificateDer<'_>) -> bool {
        self.trusted
            .iter()
            .any(|t| t.as_ref() == end_entity.as_ref())
    }
}

/// Whether `der` is valid at `now` (from rustls, so tests with a fixed certificate need no
/// ticking clock beyond what the handshake itself uses).
fn valid_at(der: &[u8], now: UnixTime) -> bool {
    let Ok(now) = i64::try_from(now.as_secs()) else {
        return false;
    };
    let Ok(now) = x509_parser::time::ASN1Time::from_timestamp(now) else {
        return false;
    };
    x509_parser::parse_x509_certificate(der).is_ok_and(|(_, c)| c.validity().is_valid_at(now))
}

impl ServerCertVerifier for TrustedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.is_pinned(end_entity) {
            return match &self.inner {
                Some(inner) => inner.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                None => Err(rustls::CertificateError::UnknownIssuer.into()),
            };
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        if !valid_at(end_entity.as_ref(), now) {
            return Err(rustls::CertificateError::Expired.into());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.as_ref().and_then(|v| v.root_hint_subjects())
    }
}

/// The TLS step of the updater's ureq connector chain, with its own rustls configuration.
pub(crate) struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

impl TlsConnector {
    /// TLS that trusts exactly `trusted` (see [`TrustedCertVerifier`]).
    pub(crate) fn trusting(
        trusted: Vec<CertificateDer<'static>>,
    ) -> Result<TlsConnector, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = TrustedCertVerifier::new(trusted, Arc::clone(&provider));
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or(ureq::Error::Tls("no host name for TLS"))?;
        // An IPv6 literal comes in brackets; the certificate names it without.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let name = ServerName::try_from(host).map_err(|_| ureq::Error::Tls("invalid DNS name"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.config), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: rustls::StreamOwned::new(conn, sock),
        })))
    }
}

/// An established TLS connection of [`TlsConnector`].
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: rustls::StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").finish_non_exhaustive()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
