//! The HTTPS listener: one connection at a time (the agent answers a handful of requests per
//! boot), each with read and write timeouts, over the agent's own TLS key.

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::{Agent, AttestTpm, State};
use crate::http::{HttpError, Response, read_request, write_response};
use crate::keys::ServiceKeys;

/// Largest request body (a quote request is well under 2 KiB; a go-ahead with a few
/// certificates under 64 KiB).
pub const MAX_BODY: usize = 64 << 10;

/// The TLS server configuration for the agent's key (TLS 1.3 and 1.2, ring).
pub fn tls_config(keys: &ServiceKeys) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = rustls::pki_types::CertificateDer::from(keys.tls_certificate.clone());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        keys.tls_key_pkcs8.clone(),
    ));
    Ok(Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)?,
    ))
}

/// Serve requests until the listener fails.
pub fn serve<T: AttestTpm>(
    agent: &mut Agent<T>,
    listener: &TcpListener,
    tls: &Arc<rustls::ServerConfig>,
) -> std::io::Error {
    loop {
        let (tcp, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        };
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(10)));
        let conn = match rustls::ServerConnection::new(tls.clone()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("st-agent: {peer}: TLS: {e}");
                continue;
            }
        };
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let resp = {
            let mut reader = BufReader::new(&mut stream);
            match read_request(&mut reader, MAX_BODY) {
                Ok(req) => {
                    let was_waiting = *agent.state() == State::Waiting;
                    let resp = agent.handle(&req);
                    eprintln!(
                        "st-agent: {peer}: {} {} -> {}",
                        req.method, req.path, resp.status
                    );
                    if resp.status >= 400 {
                        eprintln!(
                            "st-agent:   {}",
                            String::from_utf8_lossy(&resp.body).trim_end()
                        );
                    }
                    if let (true, State::Serving { authorised_by }) = (was_waiting, agent.state()) {
                        eprintln!(
                            "ST-AGENT: serving: go-ahead by {}",
                            authorised_by.join(", ")
                        );
                    }
                    resp
                }
                Err(HttpError::TooLarge(n)) => {
                    Response::error(413, format!("request body of {n} bytes"))
                }
                Err(e) => {
                    eprintln!("st-agent: {peer}: {e}");
                    Response::error(400, e)
                }
            }
        };
        if let Err(e) = write_response(&mut stream, &resp) {
            eprintln!("st-agent: {peer}: writing the response: {e}");
        }
        stream.conn.send_close_notify();
        let _ = stream.flush();
    }
}
