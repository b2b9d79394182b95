//! Tiny misbehaving HTTP servers on 127.0.0.1 for faults nginx cannot easily produce. Plain HTTP;
//! each runs in a thread and stops when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

use super::nginx::GUEST_HOST;

/// What the server does with each connection.
#[derive(Clone, Debug)]
pub(crate) enum Fault {
    /// Accept and never answer (the connection stays open until the server is dropped).
    Stall,
    /// Answer `200` with `Content-Length: body.len()`, send the first half of `body`, close.
    Truncate {
        /// The full body the headers announce.
        body: Vec<u8>,
    },
    /// Answer `200` with `Content-Length: body.len()`, send the first `sent` bytes, then hold
    /// the connection open without another byte.
    StallBody {
        /// The full body the headers announce.
        body: Vec<u8>,
        /// Bytes sent before the stall.
        sent: usize,
    },
    /// Answer `200` with `Content-Length: body.len()`, then one byte of it every `every`.
    Trickle {
        /// The full body the headers announce.
        body: Vec<u8>,
        /// The pause between bytes.
        every: Duration,
    },
}

/// A running faulty server.
pub(crate) struct FaultyServer {
    /// Port on 127.0.0.1.
    pub(crate) port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultyServer {
    /// Starts serving `fault` on a free port.
    pub(crate) fn start(fault: Fault) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || serve(&listener, &fault, &requests, &stop))
        };
        Ok(Self {
            port,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://10.0.2.2:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{GUEST_HOST}:{}{path}", self.port)
    }

    /// Request lines received so far (`GET /x HTTP/1.1`).
    pub(crate) fn requests(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

fn ok_headers(len: usize) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// Sends `body` one byte per `every` until it is sent, the peer goes away or `stop` is set.
fn trickle(mut stream: TcpStream, body: &[u8], every: Duration, stop: &AtomicBool) {
    if stream.write_all(ok_headers(body.len()).as_bytes()).is_err() {
        return;
    }
    for b in body {
        if stop.load(Ordering::SeqCst) || stream.write_all(&[*b]).is_err() {
            return;
        }
        let _ = stream.flush();
        std::thread::sleep(every);
    }
}

fn serve(
    listener: &TcpListener,
    fault: &Fault,
    requests: &Mutex<Vec<String>>,
    stop: &Arc<AtomicBool>,
) {
    // Stalled connections are kept here so they stay open.
    let mut held: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false).ok();
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let head = read_head(&mut stream);
                if let Some(line) = head.lines().next() {
                    requests
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line.to_owned());
                }
                match fault {
                    Fault::Stall => held.push(stream),
                    Fault::StallBody { body, sent } => {
                        let _ = stream.write_all(ok_headers(body.len()).as_bytes());
                        let _ = stream.write_all(body.get(..*sent).unwrap_or(body));
                        let _ = stream.flush();
                        held.push(stream);
                    }
                    Fault::Trickle { body, every } => {
                        let (body, every, stop) = (body.clone(), *every, stop.clone());
                        std::thread::spawn(move || trickle(stream, &body, every, &stop));
                    }
                    Fault::Truncate { body } => {
                        let _ = stream.write_all(ok_headers(body.len()).as_bytes());
                        let _ = stream.write_all(&body[..body.len() / 2]);
                        let _ = stream.flush();
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    }
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Reads up to the end of the request headers (or 64 KiB, or a read error).
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while head.len() < 65536 && !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}
