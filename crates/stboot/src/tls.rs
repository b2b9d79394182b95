//! TLS for the provisioning servers: rustls (ring) trusting exactly the certificates of
//! `tls_roots.pem`, with the reference's two rules for what such a certificate means:
//!
//! - a CA certificate is a trust anchor, used only inside its validity window (Go's verifier
//!   checks every certificate of the chain, the root included; webpki alone would trust an
//!   expired root): the flow drops expired and not-yet-valid ones before they get here;
//! - a server's own certificate pinned alone is accepted when the server presents exactly
//!   that certificate (byte for byte) and it names the host (Go accepts a leaf that is in the
//!   root pool; webpki alone reports UnknownIssuer).
//!
//! ureq does the HTTP (built without its own TLS); this module is the connector it runs TLS
//! through.

use std::fmt;
use std::io::{Read, Write};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

/// Why TLS failed, carried through ureq (as [`ureq::Error::Other`]) so that the transport can
/// tell a TLS failure (not retried) from a network one.
#[derive(Debug)]
pub enum TlsFailure {
    /// rustls refused: a certificate, the handshake, the configuration.
    Rustls(rustls::Error),
    /// The connection could not be set up for TLS (no host name, ...).
    Setup(&'static str),
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rustls(e) => write!(f, "{e}"),
            Self::Setup(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for TlsFailure {}

fn failure(f: TlsFailure) -> ureq::Error {
    ureq::Error::Other(Box::new(f))
}

/// Server certificate checks: a pinned certificate presented as is, else a chain to an anchor.
struct PinnedVerifier {
    pinned: Vec<CertificateDer<'static>>,
    chains: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl fmt::Debug for PinnedVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PinnedVerifier({} certificates)", self.pinned.len())
    }
}

impl ServerCertVerifier for PinnedVerifier {
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
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            // Pinned as is: its validity was checked when tls_roots.pem was read; the name
            // must still match.
            let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_name(&cert, server_name)?;
            return Ok(ServerCertVerified::assertion());
        }
        match &self.chains {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        }
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

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The certificates of a TLS roots file (`file`, for messages) that can be trusted at `now`: as
/// the reference's Go verifier, an expired or not yet valid certificate is not used; each one
/// dropped is logged. Used by stboot and stprov alike.
pub fn usable_roots(file: &str, ders: Vec<Vec<u8>>, now: st_verify::UnixTime) -> Vec<Vec<u8>> {
    ders.into_iter()
        .enumerate()
        .filter_map(
            |(i, der)| match st_verify::certificate_valid_at(&der, now) {
                Ok(_) => Some(der),
                Err(e) => {
                    log::warn!("{file}: certificate {i}: {e}; not trusted");
                    None
                }
            },
        )
        .collect()
}

/// The rustls client configuration trusting exactly `tls_roots` (DER), by the rules above.
pub fn client_config(tls_roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned: Vec<CertificateDer<'static>> = tls_roots
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let mut anchors = RootCertStore::empty();
    let (added, ignored) = anchors.add_parsable_certificates(pinned.iter().cloned());
    if ignored > 0 {
        log::debug!("tls_roots.pem: {ignored} certificate(s) not usable as trust anchors");
    }
    let chains = if added > 0 {
        WebPkiServerVerifier::builder_with_provider(Arc::new(anchors), provider.clone())
            .build()
            .ok()
    } else {
        None
    };
    let verifier = PinnedVerifier {
        pinned,
        chains,
        provider: provider.clone(),
    };
    // TLS 1.2 and 1.3, as the reference's Go client.
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The ureq connector that wraps HTTPS connections in TLS with [`client_config`].
pub struct PinnedTls {
    /// `Err` when rustls could not be configured: then every HTTPS connection fails (closed).
    config: Result<Arc<ClientConfig>, rustls::Error>,
}

impl PinnedTls {
    /// A connector trusting exactly `tls_roots` (DER).
    pub fn new(tls_roots: &[Vec<u8>]) -> Self {
        let config = client_config(tls_roots);
        if let Err(e) = &config {
            log::error!("TLS configuration: {e}; HTTPS is unavailable");
        }
        Self { config }
    }
}

impl fmt::Debug for PinnedTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinnedTls")
    }
}

impl<In: Transport> Connector<In> for PinnedTls {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Err(failure(TlsFailure::Setup("no connection to run TLS over")));
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .ok_or_else(|| failure(TlsFailure::Setup("no host name for TLS")))?;
        // IPv6 literals come bracketed in the URI.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| failure(TlsFailure::Setup("host is not a valid TLS server name")))?
            .to_owned();
        let config = self
            .config
            .as_ref()
            .map_err(|e| failure(TlsFailure::Rustls(e.clone())))?;
        let mut conn = ClientConnection::new(config.clone(), name)
            .map_err(|e| failure(TlsFailure::Rustls(e)))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock).map_err(handshake_error)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A handshake failure: the rustls error itself when there is one (so it is reported as a TLS
/// failure, not retried), else the I/O error.
fn handshake_error(e: std::io::Error) -> ureq::Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(tls) => failure(TlsFailure::Rustls(tls.clone())),
        None => ureq::Error::Io(e),
    }
}

/// An established TLS connection, as ureq's transport.
pub struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or_else(|| failure(TlsFailure::Setup("output larger than its buffer")))?;
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let n = self.stream.read(input)?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}
