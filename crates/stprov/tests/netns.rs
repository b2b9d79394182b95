//! `stprov remote static` with real kernel networking, in network namespaces: stprov runs in a
//! client namespace whose `eth0` is one end of a veth pair; the other end, in a peer namespace,
//! has 10.0.2.2 and an HTTPS server (a thread of this test that entered the peer namespace).
//! Needs root and `ip` (Debian `iproute2`), as st-host's network tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_stprov");
const GUID: &str = "f401f2c1-b005-4be0-8cee-f2e5945bcbe7";
const MAC: &str = "52:54:00:aa:bb:01";
const PORT: u16 = 8443;

fn ip(args: &[&str]) -> Output {
    let o = Command::new("ip")
        .args(args)
        .output()
        .expect("running ip (iproute2)");
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

struct Lab {
    client: String,
    peer: String,
}

impl Lab {
    fn new(tag: &str, peer_up: bool) -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the network namespace tests need root (ip netns add, veth pairs)"
        );
        let id = std::process::id();
        let lab = Self {
            client: format!("stprov-c-{tag}-{id}"),
            peer: format!("stprov-p-{tag}-{id}"),
        };
        ip(&["netns", "add", &lab.client]);
        ip(&["netns", "add", &lab.peer]);
        ip(&["-n", &lab.peer, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &lab.client,
            "link",
            "add",
            "eth0",
            "address",
            MAC,
            "type",
            "veth",
            "peer",
            "name",
            "p0",
            "netns",
            &lab.peer,
        ]);
        ip(&["-n", &lab.peer, "addr", "add", "10.0.2.2/24", "dev", "p0"]);
        if peer_up {
            ip(&["-n", &lab.peer, "link", "set", "p0", "up"]);
        }
        lab
    }

    /// An HTTPS server on 10.0.2.2:PORT in the peer namespace, listening only after `delay`
    /// (a network that does not forward yet); returns the certificate PEM.
    fn https_server(&self, delay: Duration) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["10.0.2.2".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pem = cert.pem();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let config = Arc::new(config);
        let ns = std::fs::File::open(format!("/run/netns/{}", self.peer)).unwrap();
        std::thread::spawn(move || {
            // setns(2) moves only this thread into the peer namespace.
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap();
            std::thread::sleep(delay);
            let listener = TcpListener::bind(("10.0.2.2", PORT)).unwrap();
            for tcp in listener.incoming().flatten() {
                serve_one(config.clone(), tcp);
            }
        });
        pem
    }

    fn stprov(&self, args: &[&str]) -> Output {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.client, BIN])
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "--- stprov {args:?}: {:?}\n{}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.client, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn serve_one(config: Arc<rustls::ServerConfig>, tcp: TcpStream) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let reply = if head.starts_with(b"HEAD /os.json ") {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
    } else {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    };
    let _ = s.write_all(reply.as_bytes());
    s.conn.send_close_notify();
    let _ = s.flush();
}

fn args<'a>(dir: &'a Path, url: &'a str, wait: &'a str) -> Vec<String> {
    [
        "remote",
        "static",
        "-i",
        "10.0.2.15/24",
        "-g",
        "10.0.2.2",
        "-I",
        "eth0",
        "-d",
        "10.0.2.2",
        "-r",
        url,
        "-H",
        "netns.example",
        "-w",
        wait,
        "--check-deadline",
        "30s",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--tls-roots".into(),
        dir.join("roots.pem").display().to_string(),
        "--resolv-conf".into(),
        dir.join("resolv.conf").display().to_string(),
        "--efivarfs".into(),
        dir.join("efivars").display().to_string(),
    ])
    .collect()
}

#[test]
fn static_setup_waits_for_the_server_then_writes_the_interface_it_used() {
    let lab = Lab::new("ok", true);
    let pem = lab.https_server(Duration::from_millis(2500));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roots.pem"), pem).unwrap();
    std::fs::create_dir(dir.path().join("efivars")).unwrap();
    let url = format!("https://10.0.2.2:{PORT}/os.json");
    let a = args(dir.path(), &url, "5s");
    let t0 = Instant::now();
    let o = lab.stprov(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success());
    let log = String::from_utf8_lossy(&o.stderr);
    // The server was not there yet: refused, retried with backoff, then 200.
    assert!(log.contains("retrying in"), "{log}");
    assert!(log.contains("HEAD 200"), "{log}");
    assert!(t0.elapsed() >= Duration::from_millis(2500));

    let addrs =
        String::from_utf8_lossy(&ip(&["-n", &lab.client, "addr", "show", "dev", "eth0"]).stdout)
            .into_owned();
    assert!(addrs.contains("inet 10.0.2.15/24"), "{addrs}");
    let resolv = std::fs::read_to_string(dir.path().join("resolv.conf")).unwrap();
    assert!(resolv.contains("nameserver 10.0.2.2"), "{resolv}");
    let hc = std::fs::read(dir.path().join(format!("efivars/STHostConfig-{GUID}"))).unwrap();
    let hc = st_format::HostConfig::from_json(&hc[4..]).unwrap();
    let iface = &hc.network_interfaces()[0];
    assert_eq!(iface.name(), Some("eth0"));
    assert_eq!(iface.mac().unwrap().to_string(), MAC);
    assert_eq!(hc.gateway().unwrap().to_string(), "10.0.2.2");
}

#[test]
fn no_carrier_is_a_network_failure_and_nothing_is_written() {
    let lab = Lab::new("down", false);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("efivars")).unwrap();
    let a = args(dir.path(), "https://10.0.2.2:8443/os.json", "1s");
    let o = lab.stprov(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(3));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.contains("eth0: no carrier"), "{log}");
    assert!(
        std::fs::read_dir(dir.path().join("efivars"))
            .unwrap()
            .next()
            .is_none()
    );
}
