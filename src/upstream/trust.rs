//! Which upstream certificates are trusted: the webpki roots and every certificate in the
//! `--upstream-ca` files, used two ways. As a CA, it signs the server's chain (a test CA). As a
//! pin, a server presenting exactly that certificate is trusted: an ordinary self-signed test
//! server (`openssl req -x509`) marks its certificate as a CA, which webpki refuses as an end
//! entity (`CaUsedAsEndEntity`), and may name no host at all. The user named that exact
//! certificate, so an exact match is the whole check; the handshake signature is still verified.
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The upstream verifier: pinned certificates first, then ordinary webpki path validation.
#[derive(Debug)]
pub(crate) struct UpstreamVerifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl UpstreamVerifier {
    /// Trusts `roots` as CAs and each of `pinned` as itself.
    pub(crate) fn new(
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<UpstreamVerifier, String> {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|err| err.to_string())?;
        Ok(UpstreamVerifier {
            pinned,
            webpki,
            provider,
        })
    }
}

impl ServerCertVerifier for UpstreamVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|pin| pin.as_ref() == end_entity.as_ref())
        {
            return Ok(ServerCertVerified::assertion());
        }
        self.webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Whether a failed upstream handshake's reason is the server's certificate.
pub(crate) fn is_about_certificate(reason: &str) -> bool {
    ["certificate", "UnknownIssuer", "CaUsedAsEndEntity"]
        .iter()
        .any(|word| reason.contains(word))
}

/// What to do about an upstream certificate that was not trusted.
pub(crate) const CERTIFICATE_HINT: &str = "to trust a test upstream, pass its CA or its own \
     self-signed certificate with --upstream-ca FILE";
