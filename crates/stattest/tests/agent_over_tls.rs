//! The client against the real agent listener (TLS, HTTP framing) with a fake TPM.
#![allow(clippy::unwrap_used)]

use st_agent::agent::{Agent, AttestTpm, Evidence};
use st_agent::binding::Binding;
use st_agent::keys::ServiceKeys;
use stattest::client::AgentClient;

struct Fake;

impl AttestTpm for Fake {
    fn ek_public(&self) -> &[u8] {
        b"EK"
    }
    fn ek_certificate(&self) -> Option<&[u8]> {
        None
    }
    fn ak_public(&self) -> &[u8] {
        b"AK"
    }
    fn activate_credential(&mut self, _: &[u8], _: &[u8]) -> Result<Vec<u8>, String> {
        Err("no credential for this test".into())
    }
    fn quote(&mut self, _: &[u8], _: &[u32]) -> Result<(Vec<u8>, Vec<u8>), String> {
        Err("unused".into())
    }
    fn read_pcr(&mut self, _: u32) -> Result<Vec<u8>, String> {
        Ok(vec![0; 32])
    }
}

#[test]
fn the_client_sees_the_agents_certificate_and_its_answers() {
    let keys = ServiceKeys::generate().unwrap();
    let tls = st_agent::serve::tls_config(&keys).unwrap();
    let binding = Binding {
        ak_name: vec![0, 11],
        wireguard: keys.wireguard_public,
        tls_spki_sha256: keys.tls_spki_sha256,
    };
    let statement = binding.statement();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut agent = Agent::new(Fake, binding, Evidence::default());
        st_agent::serve::serve(&mut agent, &listener, &tls)
    });
    let client = AgentClient::new(&addr).unwrap();
    let reply = client.request("GET", "/st/attest/v1/keys", None).unwrap();
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(v["binding"], statement);
    // The certificate the client saw is the one whose key the binding names.
    let cert = client.server_certificate().unwrap();
    assert_eq!(cert, keys.tls_certificate);
    let reply = client
        .request("POST", "/st/attest/v1/quote", Some(br#"{"nonce":"AAAA"}"#))
        .unwrap();
    assert_eq!(reply.status, 400);
}

/// A hostile "agent" that answers with an endless header line, or endless headers: the client
/// stops at its bounds with an error instead of reading without end.
#[test]
fn unbounded_responses_are_cut_off() {
    use std::io::{Read, Write};
    for answer in [
        format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(64 << 10)),
        format!("HTTP/1.1 200 OK\r\n{}", "X: y\r\n".repeat(1000)),
    ] {
        let keys = ServiceKeys::generate().unwrap();
        let tls = st_agent::serve::tls_config(&keys).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(tls).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
            let _ = s.flush();
            std::thread::sleep(std::time::Duration::from_secs(2));
        });
        let client = AgentClient::new(&addr).unwrap();
        let e = client
            .request("GET", "/st/attest/v1/keys", None)
            .unwrap_err();
        assert!(
            e.contains("over 8 KiB") || e.contains("more than 64 header lines"),
            "{e}"
        );
    }
}
