//! Downloads from provisioning servers: HTTPS with pinned roots (or plain HTTP, logged), size
//! caps, retries with backoff for transient failures, and an overall deadline.

use std::fmt;
use std::io::{self, Read as _, Write};

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
    /// The body arrived slower than the minimum average rate over a window.
    TooSlow {
        /// Bytes received in the window.
        bytes: u64,
        /// The window.
        window: Duration,
        /// The minimum rate, bytes per second.
        min_rate: u64,
    },
    /// A redirect that is not followed: HTTPS to plain HTTP, no or a bad `Location`, too many.
    Redirect(String),
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
            Self::TooSlow {
                bytes,
                window,
                min_rate,
            } => write!(
                f,
                "too slow: {bytes} bytes in {} s, under the minimum of {min_rate} bytes/s \
                 (stboot.min_rate, stboot.rate_window)",
                window.as_secs()
            ),
            Self::Redirect(e) => write!(f, "redirect not followed: {e}"),
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

/// A body that arrived: how many bytes, and the URL they came from (after redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Bytes written to the sink.
    pub len: u64,
    /// Where the bytes came from: the URL asked for, or the last redirect's target.
    pub url: Url,
}

/// Something that can GET a URL into a sink. The real one is [`HttpTransport`]; tests use fakes.
pub trait Transport {
    /// GET `url` into `sink`, at most `max` bytes, finishing before `deadline`.
    fn get(
        &mut self,
        url: &Url,
        max: u64,
        deadline: Instant,
        sink: &mut dyn Sink,
    ) -> Result<Fetched, FetchError>;
}

/// The slowest body accepted: at least `min_rate` bytes per second on average over every
/// `window`. A server that trickles is given up after one window, not at the overall deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second; 0 turns the check off.
    pub min_rate: u64,
    /// The window the average is taken over.
    pub window: Duration,
}

/// What a successful [`HttpTransport::head`] learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headed {
    /// `Content-Length`, if the server sent a number.
    pub content_length: Option<u64>,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// The URL that answered 200 (after redirects).
    pub url: Url,
}

/// Redirects followed per GET before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// HTTP(S) over ureq and rustls (ring), trusting only the given roots.
pub struct HttpTransport {
    agent: ureq::Agent,
    http_timeout: Duration,
    rate: Option<MinRate>,
    redactor: Redactor,
}

impl HttpTransport {
    /// A transport that trusts exactly `tls_roots` (DER certificates) for HTTPS. Connecting,
    /// the response headers, and every read of the body each get `http_timeout`.
    pub fn new(tls_roots: &[Vec<u8>], http_timeout: Duration) -> Self {
        use ureq::unversioned::resolver::DefaultResolver;
        use ureq::unversioned::transport::{Connector as _, TcpConnector};
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Redirects are followed here, in `get`, so that each is checked and logged.
            .max_redirects(0)
            .timeout_connect(Some(http_timeout))
            .timeout_recv_response(Some(http_timeout))
            .timeout_per_read(Some(http_timeout))
            .user_agent(concat!("stboot-rs/", env!("CARGO_PKG_VERSION")))
            .build();
        let connector = TcpConnector::default().chain(crate::tls::PinnedTls::new(tls_roots));
        let agent = ureq::Agent::with_parts(config, connector, DefaultResolver::default());
        Self {
            agent,
            http_timeout,
            rate: None,
            redactor: Redactor::default(),
        }
    }

    /// Also give up on bodies slower than `rate` on average.
    #[must_use]
    pub fn with_min_rate(mut self, rate: MinRate) -> Self {
        self.rate = (rate.min_rate > 0 && !rate.window.is_zero()).then_some(rate);
        self
    }

    /// Hide these secrets in the redirect lines this transport logs.
    #[must_use]
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// `HEAD url`, following redirects as a GET does (each logged; HTTPS to HTTP refused):
    /// what the server says about the resource, without its body. Any status but 200 is
    /// [`FetchError::Status`]. (stprov checks OS package URLs with it.)
    pub fn head(&self, url: &Url, deadline: Instant) -> Result<Headed, FetchError> {
        let (response, from) = self.request(url, deadline, true)?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Headed {
            content_length: header("content-length").and_then(|v| v.trim().parse().ok()),
            content_type: header("content-type"),
            url: from,
        })
    }

    /// The response to `url`, following redirects (each logged; HTTPS to HTTP refused).
    fn response(
        &self,
        url: &Url,
        deadline: Instant,
    ) -> Result<(ureq::http::Response<ureq::Body>, Url), FetchError> {
        self.request(url, deadline, false)
    }

    /// GET (or, with `head`, HEAD) `url`, following redirects.
    fn request(
        &self,
        url: &Url,
        deadline: Instant,
        head: bool,
    ) -> Result<(ureq::http::Response<ureq::Body>, Url), FetchError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or(FetchError::Deadline)?;
            let builder = if head {
                self.agent.head(current.as_str())
            } else {
                self.agent.get(current.as_str())
            };
            let response = builder
                .config()
                .timeout_global(Some(left))
                .timeout_recv_response(Some(self.http_timeout.min(left)))
                .build()
                .call()
                .map_err(classify)?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((response, current));
            }
            let next = redirect_target(&current, &response, &self.redactor)?;
            log::info!(
                "{}: redirected ({status}) to {}",
                self.redactor.url(&current),
                self.redactor.url(&next)
            );
            current = next;
        }
        Err(FetchError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// Where a redirect response points, checked: an http(s) URL, never from HTTPS to plain HTTP
/// (the pinned TLS roots would no longer protect the transfer).
fn redirect_target(
    current: &Url,
    response: &ureq::http::Response<ureq::Body>,
    redactor: &Redactor,
) -> Result<Url, FetchError> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| FetchError::Redirect("no usable Location header".into()))?;
    let next = current.join(location).map_err(|e| {
        FetchError::Redirect(format!(
            "bad Location {:?}: {e}",
            redactor.text(&st_host::log::escape_cut(location, 200))
        ))
    })?;
    match (current.scheme(), next.scheme()) {
        ("https", "http") => Err(FetchError::Redirect(format!(
            "from HTTPS to plain HTTP ({})",
            redactor.url(&next)
        ))),
        (_, "http" | "https") => Ok(next),
        (_, other) => Err(FetchError::Redirect(format!(
            "to scheme {other:?} ({})",
            redactor.url(&next)
        ))),
    }
}

fn classify(e: ureq::Error) -> FetchError {
    let text = e.to_string();
    match e {
        ureq::Error::Timeout(_) => FetchError::Timeout(text),
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => FetchError::Connect(text),
        ureq::Error::Other(inner) if inner.is::<crate::tls::TlsFailure>() => FetchError::Tls(text),
        ureq::Error::BodyStalled => FetchError::Timeout(text),
        ureq::Error::Io(io) => classify_io(&io, text),
        ureq::Error::BodyExceedsLimit(n) => FetchError::TooLarge { size: n, max: n },
        _ => FetchError::Other(text),
    }
}

fn classify_io(io: &io::Error, text: String) -> FetchError {
    use io::ErrorKind::*;
    // ureq's own errors travel inside io::Error when they happen while reading the body.
    let inner = io.get_ref();
    if inner.is_some_and(|e| e.is::<crate::tls::TlsFailure>() || e.is::<rustls::Error>()) {
        return FetchError::Tls(text);
    }
    if let Some(ureq::Error::Timeout(t)) = inner.and_then(|e| e.downcast_ref()) {
        return match t {
            ureq::Timeout::Global => FetchError::Deadline,
            _ => FetchError::Timeout(text),
        };
    }
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
    ) -> Result<Fetched, FetchError> {
        let (response, from) = self.response(url, deadline)?;
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
        let mut window = RateWindow::new(self.rate);
        // A refused encrypted body says why itself; other sink errors are about storing.
        let storing = |e: io::Error| match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::decrypt::DecryptError>())
        {
            Some(refused) => FetchError::Other(refused.to_string()),
            None => FetchError::Other(format!("storing body: {e}")),
        };
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
                    if let Some(expected) =
                        declared.filter(|_| e.kind() == io::ErrorKind::UnexpectedEof)
                    {
                        return Err(FetchError::Truncated { got, expected });
                    }
                    return Err(match classify_io(&e, e.to_string()) {
                        FetchError::Timeout(_) => FetchError::Timeout(format!(
                            "no body bytes for {} s after {got} bytes (stboot.http_timeout)",
                            self.http_timeout.as_secs()
                        )),
                        other => other,
                    });
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
            window.arrived(n as u64, Instant::now())?;
        }
        if let Some(expected) = declared.filter(|&e| e != got) {
            return Err(FetchError::Truncated { got, expected });
        }
        if got == 0 {
            return Err(FetchError::Other("empty body".into()));
        }
        Ok(Fetched {
            len: got,
            url: from,
        })
    }
}

/// The minimum-rate check over consecutive windows of a body.
#[derive(Debug)]
pub struct RateWindow {
    rate: Option<MinRate>,
    start: Instant,
    bytes: u64,
}

impl RateWindow {
    /// A window starting now (`None`: no check).
    pub fn new(rate: Option<MinRate>) -> Self {
        Self::starting(rate, Instant::now())
    }

    /// A window starting at `start`.
    pub fn starting(rate: Option<MinRate>, start: Instant) -> Self {
        Self {
            rate,
            start,
            bytes: 0,
        }
    }

    /// `n` more bytes arrived at `now`. When a whole window has passed, its average must reach
    /// the minimum; then the next window starts.
    pub fn arrived(&mut self, n: u64, now: Instant) -> Result<(), FetchError> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        self.bytes = self.bytes.saturating_add(n);
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < rate.window {
            return Ok(());
        }
        let needed = u128::from(rate.min_rate) * elapsed.as_millis() / 1000;
        if u128::from(self.bytes) < needed {
            return Err(FetchError::TooSlow {
                bytes: self.bytes,
                window: elapsed,
                min_rate: rate.min_rate,
            });
        }
        self.start = now;
        self.bytes = 0;
        Ok(())
    }
}

/// Hides secrets from the host config (the `$AUTH` token, URL passwords) in what is logged.
///
/// URLs lose their `user:password@` part, and every occurrence of a secret (ASCII case
/// ignored: host names are lower-cased by URL parsing) becomes `REDACTED`, wherever it sits:
/// path, query, host, or an error message that quotes the URL.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Hide these strings (empty ones are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// The secrets of a host config: the authentication token and any password in the
    /// (filled-in) descriptor URLs.
    pub fn for_host_config(hc: &st_format::HostConfig, urls: &[Url]) -> Self {
        let auth = hc.authentication().map(|a| a.expose().to_owned());
        let passwords = urls.iter().filter_map(|u| u.password().map(str::to_owned));
        Self::new(auth.into_iter().chain(passwords))
    }

    /// `url` for a log line: without user information, secrets hidden.
    pub fn url(&self, url: &Url) -> String {
        let mut u = url.clone();
        if !u.username().is_empty() || u.password().is_some() {
            let _ = u.set_username("REDACTED");
            let _ = u.set_password(None);
        }
        self.text(u.as_str())
    }

    /// `text` with every secret replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            out = replace_ascii_ci(&out, secret, "REDACTED");
        }
        out
    }
}

/// `haystack` with each ASCII-case-insensitive occurrence of `needle` replaced.
fn replace_ascii_ci(haystack: &str, needle: &str, with: &str) -> String {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    let mut out = String::with_capacity(haystack.len());
    let mut i = 0;
    let mut copied = 0;
    while i + n.len() <= h.len() {
        if h.get(i..i + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(n))
        {
            out.push_str(haystack.get(copied..i).unwrap_or_default());
            out.push_str(with);
            i += n.len();
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(haystack.get(copied..).unwrap_or_default());
    out
}

/// Run `attempt` until it succeeds, fails for good, or `attempts` transient failures happened;
/// waits `backoff`, doubling, between attempts, never past `deadline`. Each retried failure is
/// logged once; the final error is returned for the caller to log. When the next wait would
/// pass the deadline, the last real error is returned (and a line says there was no time left).
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
                    log::warn!(
                        "{what}: attempt {n} of {attempts}: {e}; no time for another before the deadline"
                    );
                    return Err(e);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_hides_secrets_anywhere_and_userinfo() {
        let r = Redactor::new(["tok3n".to_string(), String::new(), "pw".to_string()]);
        let u = Url::parse("https://user:pw@Tok3n.example/a/tok3n/b?auth=TOK3N").unwrap();
        assert_eq!(
            r.url(&u),
            "https://REDACTED@REDACTED.example/a/REDACTED/b?auth=REDACTED"
        );
        assert_eq!(r.text("x tok3ntok3n y"), "x REDACTEDREDACTED y");
        // No secrets: URLs only lose their user information.
        let none = Redactor::default();
        assert_eq!(
            none.url(&Url::parse("http://a:b@h/p").unwrap()),
            "http://REDACTED@h/p"
        );
        assert_eq!(none.text("plain"), "plain");
    }

    #[test]
    fn rate_window_passes_fast_bodies_and_stops_slow_ones() {
        let t0 = Instant::now();
        let rate = Some(MinRate {
            min_rate: 1000,
            window: Duration::from_secs(10),
        });
        let mut w = RateWindow::starting(rate, t0);
        // 10 000 bytes in the first 10 s: exactly the minimum.
        w.arrived(5000, t0 + Duration::from_secs(5)).unwrap();
        w.arrived(5000, t0 + Duration::from_secs(10)).unwrap();
        // The next window starts afresh: 9 999 bytes in it is too few.
        w.arrived(9999, t0 + Duration::from_secs(20)).unwrap_err();
        // Off: nothing is ever too slow.
        let mut off = RateWindow::starting(None, t0);
        off.arrived(1, t0 + Duration::from_secs(3600)).unwrap();
    }
}
