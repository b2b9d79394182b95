//! A one-name DNS server on 127.0.0.1:53 (the guest reaches it as 10.0.2.2:53 through slirp),
//! so a scenario can prove that stboot writes /etc/resolv.conf and resolves host names in URLs.

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

/// The host name the DNS scenario resolves (also in the test server certificate).
pub(crate) const DNS_NAME: &str = "ospkg.e2e.test";

/// A running DNS server answering `name` with `addr` (A), no data for other types, NXDOMAIN for
/// other names.
pub(crate) struct FakeDns {
    queries: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The queried name of a DNS query, its type, and the end of the question section.
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*q.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + len)?).to_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    Some((labels.join("."), qtype, pos + 4))
}

fn answer(q: &[u8], name: &str, addr: Ipv4Addr) -> Option<(Vec<u8>, String)> {
    let (qname, qtype, end) = question(q)?;
    let mut r = q.get(..end)?.to_vec();
    let known = qname == name;
    let rcode = if known { 0 } else { 3 };
    let with_a = known && qtype == 1;
    r[2] = 0x81; // QR, RD
    r[3] = 0x80 | rcode; // RA
    r[6..12].copy_from_slice(&[0, u8::from(with_a), 0, 0, 0, 0]);
    if with_a {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&addr.octets());
    }
    Some((r, format!("{qname} type {qtype}")))
}

impl FakeDns {
    /// Bind 127.0.0.1:53 (needs root and a free port 53) and answer in a thread.
    pub(crate) fn start(name: &str, addr: Ipv4Addr) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:53")
            .context("binding 127.0.0.1:53 for the test DNS server (needs root and a free port)")?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let queries = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (queries, stop, name) = (queries.clone(), stop.clone(), name.to_lowercase());
            std::thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some((reply, seen)) = answer(&buf[..n], &name, addr) {
                        queries
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(seen);
                        let _ = socket.send_to(&reply, peer);
                    }
                }
            })
        };
        Ok(Self {
            queries,
            stop,
            thread: Some(thread),
        })
    }

    /// The questions answered so far (`name type N`).
    pub(crate) fn queries(&self) -> Vec<String> {
        self.queries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
