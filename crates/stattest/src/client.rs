//! Talking to an agent: HTTPS to its self-signed certificate, which is accepted for the
//! connection and remembered, so the caller can check it against the attested binding (the
//! certificate is trusted through the quote, not through a CA). One request per connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Largest response body accepted (an attestation with two event logs is well under this).
pub const MAX_RESPONSE: usize = 8 << 20;
/// Longest status or header line, and most header lines, accepted from an agent.
const MAX_LINE: u64 = 8 << 10;
const MAX_HEADERS: usize = 64;

/// One response line, at most [`MAX_LINE`] bytes (an agent is not trusted to be well-behaved).
fn bounded_line<R: BufRead>(reader: &mut R) -> std::io::Result<String> {
    let mut buf = Vec::new();
    reader.take(MAX_LINE + 1).read_until(b'\n', &mut buf)?;
    if buf.len() as u64 > MAX_LINE {
        return Err(std::io::Error::other("response line over 8 KiB"));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Accepts the server's certificate (the TLS signature over the handshake is still checked, so
/// the peer holds the key) and keeps it.
#[derive(Debug)]
struct Remember {
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Remember {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(end_entity.to_vec());
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
}

/// An agent at `host:port`.
pub struct AgentClient {
    addr: String,
    verifier: Arc<Remember>,
    config: Arc<rustls::ClientConfig>,
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Vec<u8>,
}

impl AgentClient {
    /// A client for the agent at `addr` (`host:port`).
    pub fn new(addr: &str) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(Remember {
            seen: Mutex::new(None),
            provider: provider.clone(),
        });
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        Ok(Self {
            addr: addr.to_owned(),
            verifier,
            config: Arc::new(config),
        })
    }

    /// The DER certificate the agent presented on the last connection.
    pub fn server_certificate(&self) -> Option<Vec<u8>> {
        self.verifier.seen.lock().ok().and_then(|s| s.clone())
    }

    /// One request: `method path` with an optional JSON body.
    pub fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Reply, String> {
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", self.addr);
        let sock = self
            .addr
            .to_socket_addrs()
            .map_err(|e| err("address", &e))?
            .next()
            .ok_or_else(|| format!("{}: no address", self.addr))?;
        let tcp = TcpStream::connect_timeout(&sock, Duration::from_secs(10))
            .map_err(|e| err("connect", &e))?;
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
        let name = ServerName::try_from("st-agent").map_err(|e| err("server name", &e))?;
        let conn =
            rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| err("TLS", &e))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let body = body.unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: st-agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tls.write_all(head.as_bytes())
            .and_then(|()| tls.write_all(body))
            .and_then(|()| tls.flush())
            .map_err(|e| err("sending", &e))?;
        let mut reader = BufReader::new(tls);
        let status_line = bounded_line(&mut reader).map_err(|e| err("reading", &e))?;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{}: not an HTTP response: {status_line:?}", self.addr))?;
        let mut length = None;
        for n in 0.. {
            if n > MAX_HEADERS {
                return Err(format!(
                    "{}: more than {MAX_HEADERS} header lines",
                    self.addr
                ));
            }
            let h = bounded_line(&mut reader).map_err(|e| err("reading", &e))?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let length = length.ok_or_else(|| format!("{}: no Content-Length", self.addr))?;
        if length > MAX_RESPONSE {
            return Err(format!(
                "{}: response of {length} bytes is too large",
                self.addr
            ));
        }
        let mut body = vec![0u8; length];
        reader
            .read_exact(&mut body)
            .map_err(|e| err("reading the body", &e))?;
        Ok(Reply { status, body })
    }
}
