//! The real HTTP(S) transport against local servers: pinned roots, status, size caps,
//! truncated bodies, stalled servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use stboot::fetch::{FetchError, HttpTransport, Transport};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

struct Pki {
    ca_der: Vec<u8>,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test provisioning CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_der: ca.der().to_vec(),
        server_chain: vec![cert.der().clone()],
        server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    }
}

#[derive(Clone, Copy)]
enum Behaviour {
    Ok(&'static [u8]),
    Status(u16),
    Truncate(&'static [u8]),
    Stall,
    /// Headers for 1000 bytes, 100 of them, then silence.
    StallInBody,
    /// Headers for 1000 bytes, then one byte every 200 ms.
    Trickle,
    /// `status` with `Location: location`.
    Redirect(u16, &'static str),
}

fn respond(stream: &mut dyn ReadWrite, b: Behaviour) {
    let mut reader = BufReader::new(&mut *stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    let out: Vec<u8> = match b {
        Behaviour::Ok(body) => [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
            body,
        ]
        .concat(),
        Behaviour::Status(s) => {
            format!("HTTP/1.1 {s} Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        }
        Behaviour::Truncate(body) => [
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() * 2
            )
            .as_bytes(),
            body,
        ]
        .concat(),
        Behaviour::Stall => {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        Behaviour::StallInBody | Behaviour::Trickle => {
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            if matches!(b, Behaviour::StallInBody) {
                let _ = stream.write_all(&[5u8; 100]);
                let _ = stream.flush();
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            for _ in 0..1000 {
                if stream.write_all(b"t").and_then(|()| stream.flush()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            return;
        }
        Behaviour::Redirect(status, location) => format!(
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    };
    let _ = stream.write_all(&out);
    let _ = stream.flush();
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Serve forever on a fresh port; TLS when `tls` is given.
fn serve(tls: Option<Arc<rustls::ServerConfig>>, b: Behaviour) -> u16 {
    listen(TcpListener::bind("127.0.0.1:0").unwrap(), tls, b)
}

/// Serve plain HTTP forever on `port`.
fn serve_on(port: u16, b: Behaviour) -> u16 {
    listen(TcpListener::bind(("127.0.0.1", port)).unwrap(), None, b)
}

fn listen(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>, b: Behaviour) -> u16 {
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(tcp) = conn else { continue };
            let tls = tls.clone();
            std::thread::spawn(move || handle(tcp, tls, b));
        }
    });
    port
}

fn handle(mut tcp: TcpStream, tls: Option<Arc<rustls::ServerConfig>>, b: Behaviour) {
    match tls {
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg).unwrap();
            let mut s = rustls::StreamOwned::new(conn, tcp);
            respond(&mut s, b);
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        None => respond(&mut tcp, b),
    }
}

fn server_config(p: &Pki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(p.server_chain.clone(), p.server_key.clone_key())
            .unwrap(),
    )
}

fn get(roots: &[Vec<u8>], url: &str, max: u64) -> Result<Vec<u8>, FetchError> {
    let mut t = HttpTransport::new(roots, Duration::from_secs(2));
    let mut body = Vec::new();
    t.get(
        &Url::parse(url).unwrap(),
        max,
        Instant::now() + Duration::from_secs(10),
        &mut body,
    )?;
    Ok(body)
}

#[test]
fn https_with_the_pinned_root_works_and_another_root_is_refused() {
    let p = pki();
    let port = serve(Some(server_config(&p)), Behaviour::Ok(b"descriptor bytes"));
    let url = format!("https://127.0.0.1:{port}/os.json");
    assert_eq!(
        get(std::slice::from_ref(&p.ca_der), &url, 1 << 20).unwrap(),
        b"descriptor bytes"
    );
    let other = pki();
    match get(&[other.ca_der], &url, 1 << 20) {
        Err(FetchError::Tls(e)) => assert!(!e.is_empty()),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn status_size_truncation_and_stall_are_told_apart() {
    let port = serve(None, Behaviour::Status(404));
    assert!(matches!(
        get(&[], &format!("http://127.0.0.1:{port}/x"), 100),
        Err(FetchError::Status(404))
    ));
    let port = serve(None, Behaviour::Ok(&[7u8; 1000]));
    assert!(matches!(
        get(&[], &format!("http://127.0.0.1:{port}/x"), 999),
        Err(FetchError::TooLarge { .. })
    ));
    assert_eq!(
        get(&[], &format!("http://127.0.0.1:{port}/x"), 1000)
            .unwrap()
            .len(),
        1000
    );
    let port = serve(None, Behaviour::Truncate(&[1u8; 500]));
    match get(&[], &format!("http://127.0.0.1:{port}/x"), 10_000) {
        Err(FetchError::Truncated {
            got: 500,
            expected: 1000,
        }) => {}
        other => panic!("expected a truncation error, got {other:?}"),
    }
    let port = serve(None, Behaviour::Stall);
    let t = Instant::now();
    match get(&[], &format!("http://127.0.0.1:{port}/x"), 100) {
        Err(e @ FetchError::Timeout(_)) => assert!(!e.is_transient()),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "the stall cost {:?}",
        t.elapsed()
    );
    // Nothing listens here.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match get(&[], &format!("http://127.0.0.1:{port}/x"), 100) {
        Err(e @ FetchError::Connect(_)) => assert!(e.is_transient()),
        other => panic!("expected a connection failure, got {other:?}"),
    }
}

/// The archive path: the body read straight into a `HashingBuffer` (hashed on a second thread
/// or on the same one), over HTTPS and plain HTTP, larger than its chunks.
#[test]
fn archive_bodies_are_read_into_the_hashing_buffer() {
    let body: &'static [u8] = Box::leak(
        (0..1_300_007u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into_boxed_slice(),
    );
    let p = pki();
    let https = serve(Some(server_config(&p)), Behaviour::Ok(body));
    let http = serve(None, Behaviour::Ok(body));
    for (url, roots) in [
        (
            format!("https://127.0.0.1:{https}/os.zip"),
            vec![p.ca_der.clone()],
        ),
        (format!("http://127.0.0.1:{http}/os.zip"), vec![]),
    ] {
        for threaded in [true, false] {
            let mut t = HttpTransport::new(&roots, Duration::from_secs(2));
            let mut sink = st_verify::HashingBuffer::default().threaded(threaded);
            let got = t
                .get(
                    &Url::parse(&url).unwrap(),
                    1 << 30,
                    Instant::now() + Duration::from_secs(20),
                    &mut sink,
                )
                .unwrap();
            assert_eq!(got.len, body.len() as u64);
            assert_eq!(got.url.as_str(), url);
            let archive = sink.finish().unwrap();
            assert_eq!(archive.bytes(), body, "{url} threaded={threaded}");
            assert_eq!(archive.digest(), st_verify::ArchiveDigest::of(body));
        }
    }
    // A truncated body is still told apart when read in place.
    let port = serve(None, Behaviour::Truncate(&[3u8; 500]));
    let mut t = HttpTransport::new(&[], Duration::from_secs(2));
    let mut sink = st_verify::HashingBuffer::default();
    match t.get(
        &Url::parse(&format!("http://127.0.0.1:{port}/x")).unwrap(),
        10_000,
        Instant::now() + Duration::from_secs(10),
        &mut sink,
    ) {
        Err(FetchError::Truncated {
            got: 500,
            expected: 1000,
        }) => {}
        other => panic!("expected a truncation error, got {other:?}"),
    }
}

/// The archive sink over a real transport: an age-encrypted body is decrypted as it arrives
/// (through `write`), a plaintext one read in place after the first bytes (through `spare`), and
/// a ciphertext encrypted to another identity ends the fetch with the decryption's reason.
#[test]
fn encrypted_and_plain_archives_through_the_archive_sink() {
    let plain: Vec<u8> = (0..1_000_003u32).map(|i| (i % 241) as u8).collect();
    let mut seed = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = 21);
    let id = st_age::Identity::generate(&mut seed);
    let ids = st_age::Identities::new(vec![id.clone()]).unwrap();
    let mut n = 0u8;
    let mut random = |b: &mut [u8]| {
        b.iter_mut().for_each(|x| {
            n = n.wrapping_add(3);
            *x = n;
        })
    };
    let cipher = st_age::encrypt(&[*id.recipient()], &plain[..], Vec::new(), &mut random).unwrap();
    let plain: &'static [u8] = Box::leak(plain.into_boxed_slice());
    let cipher: &'static [u8] = Box::leak(cipher.into_boxed_slice());
    for (body, encrypted) in [(cipher, true), (plain, false)] {
        let port = serve(None, Behaviour::Ok(body));
        let mut t = HttpTransport::new(&[], Duration::from_secs(2));
        let mut sink = stboot::decrypt::ArchiveSink::new(Some(&ids));
        let got = t
            .get(
                &Url::parse(&format!("http://127.0.0.1:{port}/os.zip")).unwrap(),
                1 << 30,
                Instant::now() + Duration::from_secs(20),
                &mut sink,
            )
            .unwrap();
        assert_eq!(got.len, body.len() as u64);
        let (archive, was) = sink.finish().unwrap();
        assert_eq!(was, encrypted);
        assert_eq!(archive.bytes(), plain);
        assert_eq!(archive.digest(), st_verify::ArchiveDigest::of(plain));
    }
    let mut other = |b: &mut [u8]| b.iter_mut().for_each(|x| *x = 22);
    let wrong = st_age::Identities::new(vec![st_age::Identity::generate(&mut other)]).unwrap();
    let port = serve(None, Behaviour::Ok(cipher));
    let mut t = HttpTransport::new(&[], Duration::from_secs(2));
    let mut sink = stboot::decrypt::ArchiveSink::new(Some(&wrong));
    match t.get(
        &Url::parse(&format!("http://127.0.0.1:{port}/os.zip")).unwrap(),
        1 << 30,
        Instant::now() + Duration::from_secs(20),
        &mut sink,
    ) {
        Err(FetchError::Other(why)) => {
            assert!(why.starts_with("decrypting: no identity matches"), "{why}");
        }
        other => panic!("expected the decryption's reason, got {other:?}"),
    }
}

fn fetch(t: &mut HttpTransport, url: &str) -> Result<stboot::fetch::Fetched, FetchError> {
    let mut body = Vec::new();
    t.get(
        &Url::parse(url).unwrap(),
        1 << 20,
        Instant::now() + Duration::from_secs(60),
        &mut body,
    )
}

/// A body that stops mid-way costs `http_timeout`, not the overall deadline.
#[test]
fn a_body_that_stalls_times_out_after_the_http_timeout() {
    let port = serve(None, Behaviour::StallInBody);
    let mut t = HttpTransport::new(&[], Duration::from_secs(2));
    let start = Instant::now();
    match fetch(&mut t, &format!("http://127.0.0.1:{port}/os.zip")) {
        Err(e @ FetchError::Timeout(_)) => {
            assert!(
                e.to_string()
                    .contains("no body bytes for 2 s after 100 bytes"),
                "{e}"
            );
        }
        other => panic!("expected a body timeout, got {other:?}"),
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

/// A body that trickles (5 bytes/s, never silent for long) is left after one rate window.
#[test]
fn a_trickling_body_is_left_after_one_rate_window() {
    let port = serve(None, Behaviour::Trickle);
    let mut t =
        HttpTransport::new(&[], Duration::from_secs(2)).with_min_rate(stboot::fetch::MinRate {
            min_rate: 1000,
            window: Duration::from_secs(2),
        });
    let start = Instant::now();
    match fetch(&mut t, &format!("http://127.0.0.1:{port}/os.zip")) {
        Err(e @ FetchError::TooSlow { .. }) => {
            assert!(e.to_string().contains("minimum of 1000 bytes/s"), "{e}");
        }
        other => panic!("expected too slow, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

/// Redirects are followed (and the URL the bytes came from is returned); HTTPS to plain HTTP
/// is refused; loops end.
#[test]
fn redirects_are_followed_checked_and_named() {
    let target = serve(None, Behaviour::Ok(b"moved body"));
    let to_target: &'static str =
        Box::leak(format!("http://127.0.0.1:{target}/real.json").into_boxed_str());
    let hop = serve(None, Behaviour::Redirect(302, to_target));
    let mut t = HttpTransport::new(&[], Duration::from_secs(2));
    let got = fetch(&mut t, &format!("http://127.0.0.1:{hop}/os.json")).unwrap();
    assert_eq!(got.url.as_str(), to_target);
    assert_eq!(got.len, 10);

    // HTTPS pointer redirected to plain HTTP: refused, nothing fetched from the HTTP side.
    let p = pki();
    let https = serve(Some(server_config(&p)), Behaviour::Redirect(301, to_target));
    let mut t = HttpTransport::new(std::slice::from_ref(&p.ca_der), Duration::from_secs(2));
    match fetch(&mut t, &format!("https://127.0.0.1:{https}/os.json")) {
        Err(e @ FetchError::Redirect(_)) => {
            assert!(e.to_string().contains("from HTTPS to plain HTTP"), "{e}");
        }
        other => panic!("expected a refused redirect, got {other:?}"),
    }

    // A redirect to itself: given up after MAX_REDIRECTS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let own: &'static str = Box::leak(format!("http://127.0.0.1:{port}/loop").into_boxed_str());
    let _ = serve_on(port, Behaviour::Redirect(307, own));
    match fetch(&mut t, own) {
        Err(e @ FetchError::Redirect(_)) => assert!(e.to_string().contains("more than 10"), "{e}"),
        other => panic!("expected too many redirects, got {other:?}"),
    }
    // No Location at all.
    let bare = serve(None, Behaviour::Status(302));
    assert!(matches!(
        fetch(&mut t, &format!("http://127.0.0.1:{bare}/x")),
        Err(FetchError::Redirect(_))
    ));
}

/// A server certificate signed by a CA (not self-signed), for `names`.
fn leaf_pki(names: &[&str]) -> Pki {
    let mut p = pki();
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    p.server_chain = vec![cert.der().clone()];
    p.server_key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    p
}

/// As the reference: the server's own certificate pinned alone in tls_roots.pem (its issuer
/// not there) is accepted when the server presents exactly it and it names the host.
#[test]
fn a_pinned_server_certificate_is_trusted_alone_when_it_names_the_host() {
    let p = leaf_pki(&["127.0.0.1"]);
    let leaf = p.server_chain[0].to_vec();
    let port = serve(Some(server_config(&p)), Behaviour::Ok(b"pinned"));
    let url = format!("https://127.0.0.1:{port}/os.json");
    assert_eq!(
        get(std::slice::from_ref(&leaf), &url, 100).unwrap(),
        b"pinned"
    );

    // Pinned, but for another name: refused.
    let other = leaf_pki(&["ospkg.example"]);
    let other_leaf = other.server_chain[0].to_vec();
    let port = serve(Some(server_config(&other)), Behaviour::Ok(b"x"));
    match get(
        &[other_leaf],
        &format!("https://127.0.0.1:{port}/os.json"),
        100,
    ) {
        Err(FetchError::Tls(e)) => {
            assert!(e.contains("NotValidForName") || e.contains("name"), "{e}")
        }
        other => panic!("expected a name mismatch, got {other:?}"),
    }
    // Another certificate pinned than the one presented: refused.
    match get(&[leaf], &format!("https://127.0.0.1:{port}/os.json"), 100) {
        Err(FetchError::Tls(_)) => {}
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}
