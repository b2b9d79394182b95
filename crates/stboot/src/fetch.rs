//! Downloads from provisioning servers: HTTPS with pinned roots (or plain HTTP, logged), size
//! caps, retries with backoff for transient failures, and an overall deadline.

use std::fmt;
use std::io::{self, Read as _, Write};

use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// Why one GET failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// Could not connect (refused, unreachable, name not found). Worth retrying.
    Connect(String),
    /// The TLS handshake failed (unknown root, bad name, ...). Not retried.
    Tls(String),
    /// No response (or no more body bytes) in time. Not retried.
    Timeout(String),
    /// A status other than 200. 5xx and 429 are retried.
    Status(u16),
    /// The body is larger than allowed (declared or actual).
    TooLarge {
        /// Bytes declared or received.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The connection ended before `Content-Length` bytes arrived.
    Truncated {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// Any other transport problem.
    Other(String),
    /// The overall fetch deadline passed.
    Deadline,
}

impl FetchError {
    /// Transient failures are retried on the same URL; the rest move on to the next URL.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Status(s) => *s >= 500 || *s == 429,
            _ => false,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "cannot connect: {e}"),
            Self::Tls(e) => write!(f, "TLS failure: {e}"),
            Self::Timeout(e) => write!(f, "timed out: {e}"),
            Self::Status(s) => write!(f, "HTTP status {s}, expected 200"),
            Self::TooLarge { size, max } => {
                write!(f, "body of {size} bytes is over the {max}-byte limit")
            }
            Self::Truncated { got, expected } => {
                write!(f, "truncated body: {got} of {expected} bytes")
            }
            Self::Other(e) => write!(f, "{e}"),
            Self::Deadline => f.write_str("overall fetch deadline passed"),
        }
    }
}

/// Where a body goes: a writer that can be told the size first.
pub trait Sink: Write {
    /// The body will be `len` bytes (Content-Length), told before the first byte. An error when
    /// that much memory cannot be had.
    fn expect(&mut self, len: u64) -> Result<(), String>;

    /// Memory the next body bytes can be read into directly (saves a copy), or `None` to be
    /// given them through `write`.
    fn spare(&mut self) -> Option<io::Result<&mut [u8]>> {
        None
    }

    /// `n` bytes were read into the slice the last [`Sink::spare`] returned.
    fn commit(&mut self, n: usize) -> io::Result<()> {
        let _ = n;
        Ok(())
    }
}

fn no_memory(len: u64) -> String {
    format!("cannot allocate {len} bytes for the body")
}

impl Sink for Vec<u8> {
    fn expect(&mut self, len: u64) -> Result<(), String> {
        let n = usize::try_from(len).map_err(|_| no_memory(len))?;
        self.try_reserve_exact(n).map_err(|_| no_memory(len))
    }
}

impl Sink for st_verify::HashingBuffer {
    fn expect(&mut self, len: u64) -> Result<(), String> {
        let n = usize::try_from(len).map_err(|_| no_memory(len))?;
        self.try_reserve(n).map_err(|_| no_memory(len))
    }
    fn spare(&mut self) -> Option<io::Result<&mut [u8]>> {
        Some(Self::spare(self))
    }
    fn commit(&mut self, n: usize) -> io::Result<()> {
        Self::commit(self, n)
    }
}

/// Something that can GET a URL into a sink. The real one is [`HttpTransport`]; tests use fakes.
pub trait Transport {
    /// GET `url` into `sink`, at most `max` bytes, finishing before `deadline`. Returns the
    /// number of bytes written.
    fn get(
        &mut self,
        url: &Url,
        max: u64,
        deadline: Instant,
        sink: &mut dyn Sink,
    ) -> Result<u64, FetchError>;
}

/// HTTP(S) over ureq and rustls (ring), trusting only the given roots.
pub struct HttpTransport {
    agent: ureq::Agent,
    http_timeout: Duration,
}

impl HttpTransport {
    /// A transport that trusts exactly `tls_roots` (DER certificates) for HTTPS.
    pub fn new(tls_roots: &[Vec<u8>], http_timeout: Duration) -> Self {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let roots: Vec<Certificate<'static>> = tls_roots
            .iter()
            .map(|der| Certificate::from_der(der).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_connect(Some(http_timeout))
            .timeout_recv_response(Some(http_timeout))
            .user_agent(concat!("stboot-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            http_timeout,
        }
    }
}

fn classify(e: ureq::Error) -> FetchError {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => FetchError::Timeout(text),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => FetchError::Connect(text),
        ureq::Error::Rustls(_) | ureq::Error::Tls(_) => FetchError::Tls(text),
        ureq::Error::BodyStalled => FetchError::Timeout(text),
        ureq::Error::Io(io) => classify_io(&io, text),
        ureq::Error::BodyExceedsLimit(n) => FetchError::TooLarge { size: n, max: n },
        _ => FetchError::Other(text),
    }
}

fn classify_io(io: &io::Error, text: String) -> FetchError {
    use io::ErrorKind::*;
    match io.kind() {
        ConnectionRefused | ConnectionReset | ConnectionAborted | NotConnected
        | AddrNotAvailable | NetworkUnreachable | HostUnreachable => FetchError::Connect(text),
        TimedOut | WouldBlock => FetchError::Timeout(text),
        UnexpectedEof => FetchError::Other(format!("connection closed early: {text}")),
        _ if text.contains("certificate") || text.contains("TLS") || text.contains("tls") => {
            FetchError::Tls(text)
        }
        _ => FetchError::Other(text),
    }
}

impl Transport for HttpTransport {
    fn get(
        &mut self,
        url: &Url,
        max: u64,
        deadline: Instant,
        sink: &mut dyn Sink,
    ) -> Result<u64, FetchError> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or(FetchError::Deadline)?;
        let response = self
            .agent
            .get(url.as_str())
            .config()
            .timeout_global(Some(left))
            .timeout_recv_response(Some(self.http_timeout.min(left)))
            .build()
            .call()
            .map_err(classify)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let declared = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(len) = declared {
            if len > max {
                return Err(FetchError::TooLarge { size: len, max });
            }
            sink.expect(len).map_err(FetchError::Other)?;
        }
        let mut body = response.into_body();
        let mut reader = body.with_config().limit(max.saturating_add(1)).reader();
        // Only for sinks that cannot be read into directly.
        let mut buf = Vec::new();
        let mut got = 0u64;
        let storing = |e: io::Error| FetchError::Other(format!("storing body: {e}"));
        loop {
            let (read, direct) = match sink.spare() {
                Some(Ok(spare)) => (reader.read(spare), true),
                Some(Err(e)) => return Err(storing(e)),
                None => {
                    if buf.is_empty() {
                        buf.resize(256 << 10, 0);
                    }
                    (reader.read(&mut buf), false)
                }
            };
            let n = match read {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let text = e.to_string();
                    if let Some(expected) =
                        declared.filter(|_| e.kind() == io::ErrorKind::UnexpectedEof)
                    {
                        return Err(FetchError::Truncated { got, expected });
                    }
                    return Err(classify_io(&e, text));
                }
            };
            got += n as u64;
            if got > max {
                return Err(FetchError::TooLarge { size: got, max });
            }
            if direct {
                sink.commit(n).map_err(storing)?;
            } else {
                sink.write_all(buf.get(..n).unwrap_or_default())
                    .map_err(storing)?;
            }
        }
        if let Some(expected) = declared.filter(|&e| e != got) {
            return Err(FetchError::Truncated { got, expected });
        }
        if got == 0 {
            return Err(FetchError::Other("empty body".into()));
        }
        Ok(got)
    }
}

/// One failed attempt, for the failure summary.
#[derive(Debug)]
pub struct Attempt {
    /// The URL tried (credentials removed).
    pub url: String,
    /// What went wrong.
    pub error: FetchError,
}

/// Remove user:password from a URL before it is logged.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() || u.password().is_some() {
        let _ = u.set_username("REDACTED");
        let _ = u.set_password(None);
    }
    u.to_string()
}

/// Run `attempt` until it succeeds, fails for good, or `attempts` transient failures happened;
/// waits `backoff`, doubling, between attempts, never past `deadline`. Each retried failure is
/// logged once; the final error is returned for the caller to log.
pub fn with_retries<T>(
    what: &str,
    attempts: u32,
    backoff: Duration,
    deadline: Instant,
    mut attempt: impl FnMut() -> Result<T, FetchError>,
) -> Result<T, FetchError> {
    let mut wait = backoff;
    let mut n = 1;
    loop {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() && n < attempts => {
                if Instant::now() + wait >= deadline {
                    return Err(FetchError::Deadline);
                }
                log::warn!(
                    "{what}: attempt {n} of {attempts}: {e}; retrying in {} s",
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                wait = wait.saturating_mul(2);
                n += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
