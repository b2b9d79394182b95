//! The `remote run` ⇄ `local run` exchange, wire compatible with the reference (Go
//! `internal/api`): HTTPS with the certificate both sides derive from the one-time password
//! ([`crate::secrets`]), pinned by the client as its only trust anchor with server name
//! `stprov`; HTTP basic auth with the derived password; JSON bodies; endpoints under
//! `/stprov/v0.0.1/`:
//!
//! * `POST add-data` `{"entropy": base64(32 bytes), "timestamp": unix seconds}`;
//! * `POST add-secure-boot` `{"pk", "kek", "db", "dbx": base64 or null, "reboot_into_uefi_menu":
//!   bool}` (pk, kek, db required);
//! * `GET commit` -> `{"publickey", "fingerprint", "hostname", "authentication", "identity"}`;
//!   the server stops after answering it.
//!
//! The server checks each request as the reference does, in its order: known path (404), method
//! (405 with `Allow`, or 400 for a method that is neither GET nor POST), source address within an
//! allowed network (403), basic auth (403), then the body (400). It serves one connection at a
//! time and answers each request with `Connection: close`. HTTP is the small subset both
//! implementations use (HTTP/1.1, `Content-Length` bodies; the client also reads chunked
//! answers), every read bounded in size and time.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde::{Deserialize, Serialize};
use st_format::IpCidr;

use crate::Failure;
use crate::secrets::{self, BASIC_AUTH_USER, DeviceSecret, ENTROPY_BYTES, Otp};

/// Path prefix of every endpoint.
pub const PREFIX: &str = "/stprov/v0.0.1/";
/// `POST`: entropy from stprov local.
pub const ADD_DATA: &str = "add-data";
/// `POST`: Secure Boot keys.
pub const ADD_SECURE_BOOT: &str = "add-secure-boot";
/// `GET`: derive the secrets, answer, stop.
pub const COMMIT: &str = "commit";

/// Largest request or response head (request line / status line and headers).
const MAX_HEAD: usize = 16 << 10;
/// Largest body (Secure Boot blobs, base64: a dbx is tens of KiB).
const MAX_BODY: usize = 4 << 20;

/// Body of `add-data`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddData {
    /// 32 bytes, base64.
    #[serde(default)]
    pub entropy: Option<String>,
    /// Unix seconds (obsolete in the reference, still sent and checked: not negative).
    #[serde(default)]
    pub timestamp: i64,
}

/// Body of `add-secure-boot` (authenticated variable payloads, base64).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddSecureBoot {
    /// PK (self-signed).
    #[serde(default)]
    pub pk: Option<String>,
    /// KEK (signed by PK).
    #[serde(default)]
    pub kek: Option<String>,
    /// db (signed by KEK).
    #[serde(default)]
    pub db: Option<String>,
    /// dbx (signed by KEK), optional.
    #[serde(default)]
    pub dbx: Option<String>,
    /// Ask the firmware to boot into its menu next time.
    #[serde(default)]
    pub reboot_into_uefi_menu: bool,
}

/// Secure Boot payloads, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureBootKeys {
    /// PK.
    pub pk: Vec<u8>,
    /// KEK.
    pub kek: Vec<u8>,
    /// db.
    pub db: Vec<u8>,
    /// dbx (may be empty).
    pub dbx: Vec<u8>,
    /// Boot into the firmware menu next time.
    pub reboot_into_uefi_menu: bool,
}

/// Answer of `commit`, in the reference's key order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitResponse {
    /// `ssh-ed25519 AAAA...`.
    #[serde(default)]
    pub publickey: String,
    /// `SHA256:...`.
    #[serde(default)]
    pub fingerprint: String,
    /// The platform's host name (STHostName).
    #[serde(default)]
    pub hostname: String,
    /// Legacy, hex.
    #[serde(default)]
    pub authentication: String,
    /// Legacy, hex.
    #[serde(default)]
    pub identity: String,
}

/// An allowed source network of `remote run`: CIDR, or a bare address (/32 or /128); `m` may
/// stand for `/`.
pub fn parse_allowed(s: &str) -> Result<IpCidr, Failure> {
    let s = crate::config::decode_safe_cidr(s);
    let bad = |e: String| Failure::Usage(format!("-a/--allow {s:?}: {e}"));
    if s.contains('/') {
        let c: IpCidr = s.parse().map_err(|e| bad(format!("{e}")))?;
        // The network, as Go's net.ParseCIDR returns it.
        return Ok(c);
    }
    let ip: IpAddr = s.parse().map_err(|e| bad(format!("not an address: {e}")))?;
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    IpCidr::new(ip, prefix).ok_or_else(|| bad("bad prefix".into()))
}

fn in_network(net: &IpCidr, ip: IpAddr) -> bool {
    let p = u32::from(net.prefix());
    match (net.addr(), ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// A parsed HTTP request.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads up to the end of the head (`\r\n\r\n`); returns head and the body bytes read with it.
fn read_head(r: &mut impl Read) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(at + 4);
            buf.truncate(at);
            let head = String::from_utf8(buf)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "head is not UTF-8"))?;
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "head larger than 16 KiB",
            ));
        }
        let n = r.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the head",
            ));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

fn parse_headers<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn content_length(headers: &[(String, String)]) -> Result<Option<usize>, String> {
    match headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        None => Ok(None),
        Some((_, v)) => {
            let n: usize = v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
            if n > MAX_BODY {
                return Err(format!("body of {n} bytes over the {MAX_BODY}-byte limit"));
            }
            Ok(Some(n))
        }
    }
}

fn read_exact_body(r: &mut impl Read, mut have: Vec<u8>, len: usize) -> io::Result<Vec<u8>> {
    if have.len() < len {
        let missing = len - have.len();
        let mut more = vec![0u8; missing];
        r.read_exact(&mut more)?;
        have.extend_from_slice(&more);
    }
    have.truncate(len);
    Ok(have)
}

fn read_request(r: &mut impl Read) -> Result<Request, (u16, String)> {
    let bad = |e: String| (400, e);
    let (head, rest) = read_head(r).map_err(|e| bad(e.to_string()))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad(format!("unsupported version {version:?}")));
    }
    let headers = parse_headers(lines);
    if headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
    {
        return Err((411, "Length Required".into()));
    }
    let len = content_length(&headers).map_err(bad)?.unwrap_or(0);
    let body = read_exact_body(r, rest, len).map_err(|e| bad(e.to_string()))?;
    let path = target.split('?').next().unwrap_or_default().to_owned();
    Ok(Request {
        method: method.to_owned(),
        path,
        headers,
        body,
    })
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

fn respond(
    w: &mut impl Write,
    code: u16,
    content_type: &str,
    extra: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\
         Connection: close\r\n\r\n",
        reason(code),
        body.len()
    );
    let mut all = head.into_bytes();
    all.extend_from_slice(body);
    w.write_all(&all)?;
    w.flush()
}

/// An error answer as Go's `http.Error` writes it.
fn respond_error(w: &mut impl Write, code: u16, extra: &str, text: &str) -> io::Result<()> {
    respond(
        w,
        code,
        "text/plain; charset=utf-8",
        &format!("X-Content-Type-Options: nosniff\r\n{extra}"),
        format!("{text}\n").as_bytes(),
    )
}

/// `remote run`'s settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The one-time password.
    pub otp: String,
    /// Source networks allowed to connect.
    pub allowed: Vec<IpCidr>,
    /// The host name given back in `commit`.
    pub hostname: String,
    /// Each connection's read and write timeout (the reference: 15 s per request).
    pub request_timeout: Duration,
}

/// What `remote run` learnt once `commit` was answered.
pub struct Served {
    /// Entropy stprov local sent (zero if it never called add-data, as the reference).
    pub local_entropy: [u8; ENTROPY_BYTES],
    /// The device secret the platform's secrets come from.
    pub device_secret: DeviceSecret,
    /// The answer sent to `commit`.
    pub commit: CommitResponse,
}

/// What the server does with a Secure Boot request: `Err((status, message))` to refuse it.
pub type SecureBootHandler<'a> = dyn FnMut(&SecureBootKeys) -> Result<(), (u16, String)> + 'a;

struct State {
    local_entropy: [u8; ENTROPY_BYTES],
    committed: Option<(DeviceSecret, CommitResponse)>,
}

/// Serves `listener` until a `commit` was answered.
pub fn serve(
    listener: &TcpListener,
    cfg: &ServerConfig,
    secure_boot: &mut SecureBootHandler<'_>,
) -> Result<Served, Failure> {
    let otp = Otp::new(&cfg.otp);
    let (cert, key) = otp
        .server_identity()
        .map_err(|_| Failure::Protocol("deriving the TLS key failed".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| Failure::Protocol(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| Failure::Protocol(format!("TLS configuration: {e}")))?;
    let tls = Arc::new(tls);
    let password = otp.basic_auth_password();
    let mut state = State {
        local_entropy: [0; ENTROPY_BYTES],
        committed: None,
    };
    loop {
        let (tcp, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Protocol(format!("accepting a connection: {e}"))),
        };
        if let Err(e) = connection(tcp, peer, cfg, &tls, &password, &mut state, secure_boot) {
            log::warn!("{peer}: {e}");
        }
        if let Some((device_secret, commit)) = state.committed.take() {
            return Ok(Served {
                local_entropy: state.local_entropy,
                device_secret,
                commit,
            });
        }
    }
}

fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    cfg: &ServerConfig,
    tls: &Arc<rustls::ServerConfig>,
    password: &str,
    state: &mut State,
    secure_boot: &mut SecureBootHandler<'_>,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(cfg.request_timeout))?;
    tcp.set_write_timeout(Some(cfg.request_timeout))?;
    let conn = rustls::ServerConnection::new(tls.clone())
        .map_err(|e| io::Error::other(format!("TLS: {e}")))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let req = match read_request(&mut s) {
        Ok(r) => r,
        Err((code, e)) => {
            let _ = respond_error(&mut s, code, "", reason(code));
            return Err(io::Error::other(format!("bad request: {e}")));
        }
    };
    let (code, extra, body, json) = handle(&req, peer, cfg, password, state, secure_boot);
    if json {
        respond(&mut s, code, "application/json", "", &body)?;
    } else {
        respond_error(&mut s, code, &extra, &String::from_utf8_lossy(&body))?;
    }
    s.conn.send_close_notify();
    let _ = s.flush();
    Ok(())
}

type Answer = (u16, String, Vec<u8>, bool);

fn text(code: u16, t: &str) -> Answer {
    (code, String::new(), t.as_bytes().to_vec(), false)
}

fn decode_b64(field: &str, v: Option<&str>) -> Result<Vec<u8>, String> {
    match v {
        None => Ok(Vec::new()),
        Some(s) => STANDARD
            .decode(s.replace(['\r', '\n'], ""))
            .map_err(|e| format!("{field}: not base64: {e}")),
    }
}

fn handle(
    req: &Request,
    peer: SocketAddr,
    cfg: &ServerConfig,
    password: &str,
    state: &mut State,
    secure_boot: &mut SecureBootHandler<'_>,
) -> Answer {
    let Some(endpoint) = req.path.strip_prefix(PREFIX) else {
        return text(404, "404 page not found");
    };
    let want = match endpoint {
        ADD_DATA | ADD_SECURE_BOOT => "POST",
        COMMIT => "GET",
        _ => return text(404, "404 page not found"),
    };
    if req.method != want {
        log::warn!("{peer}: unexpected HTTP method {}", req.method);
        return if matches!(req.method.as_str(), "GET" | "POST") {
            (
                405,
                format!("Allow: {want}\r\n"),
                b"Method Not Allowed".to_vec(),
                false,
            )
        } else {
            text(400, "Bad Request")
        };
    }
    if !cfg.allowed.iter().any(|n| in_network(n, peer.ip())) {
        log::warn!("blocked a connection attempt from {peer}");
        return text(403, "Invalid IP address");
    }
    let Some(credentials) = req.header("authorization").and_then(basic_auth) else {
        log::warn!("{peer}: request without basic auth");
        return text(403, "BasicAuth header is required");
    };
    if credentials.0 != BASIC_AUTH_USER
        || !constant_time_eq(credentials.1.as_bytes(), password.as_bytes())
    {
        log::warn!("{peer}: wrong basic-auth credentials (wrong one-time password?)");
        return text(403, "BasicAuth credentials were insufficient");
    }
    match endpoint {
        ADD_DATA => {
            let data: AddData = match serde_json::from_slice(&req.body) {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("{peer}: invalid add-data request: {e}");
                    return text(400, "Bad Request");
                }
            };
            let entropy = match decode_b64("entropy", data.entropy.as_deref()) {
                Ok(e) => e,
                Err(e) => {
                    log::warn!("{peer}: invalid add-data request: {e}");
                    return text(400, "Bad Request");
                }
            };
            let Ok(entropy) = <[u8; ENTROPY_BYTES]>::try_from(entropy.as_slice()) else {
                log::warn!(
                    "{peer}: invalid add-data request: {} entropy bytes, expected {ENTROPY_BYTES}",
                    entropy.len()
                );
                return text(400, "Bad Request");
            };
            if data.timestamp < 0 {
                log::warn!("{peer}: invalid add-data request: negative timestamp");
                return text(400, "Bad Request");
            }
            state.local_entropy = entropy;
            log::info!("{peer}: received entropy");
            text(200, "")
        }
        ADD_SECURE_BOOT => {
            let req: AddSecureBoot = match serde_json::from_slice(&req.body) {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("{peer}: invalid add-secure-boot request: {e}");
                    return text(400, "Bad Request");
                }
            };
            let decoded = (|| -> Result<SecureBootKeys, String> {
                let keys = SecureBootKeys {
                    pk: decode_b64("pk", req.pk.as_deref())?,
                    kek: decode_b64("kek", req.kek.as_deref())?,
                    db: decode_b64("db", req.db.as_deref())?,
                    dbx: decode_b64("dbx", req.dbx.as_deref())?,
                    reboot_into_uefi_menu: req.reboot_into_uefi_menu,
                };
                for (name, v) in [("PK", &keys.pk), ("KEK", &keys.kek), ("db", &keys.db)] {
                    if v.is_empty() {
                        return Err(format!("invalid request: {name} is required"));
                    }
                }
                Ok(keys)
            })();
            let keys = match decoded {
                Ok(k) => k,
                Err(e) => {
                    log::warn!("{peer}: add-secure-boot: {e}");
                    return text(400, "Bad Request");
                }
            };
            match secure_boot(&keys) {
                Ok(()) => text(200, ""),
                Err((code, e)) => {
                    log::warn!("{peer}: add-secure-boot: {e}");
                    text(code, reason(code))
                }
            }
        }
        _ => {
            let rng = ring::rand::SystemRandom::new();
            let mut remote = [0u8; ENTROPY_BYTES];
            if ring::rand::SecureRandom::fill(&rng, &mut remote).is_err() {
                return text(500, "Internal Server Error");
            }
            let uds = DeviceSecret::new(&remote, &state.local_entropy);
            let hk = uds.host_key();
            let commit = CommitResponse {
                publickey: hk.public_key_line(),
                fingerprint: hk.fingerprint(),
                hostname: cfg.hostname.clone(),
                authentication: uds.authentication(),
                identity: uds.identity(),
            };
            let body = st_format::gojson::to_compact(&commit);
            state.committed = Some((uds, commit));
            (200, String::new(), body, true)
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `Basic base64(user:password)` -> (user, password).
fn basic_auth(v: &str) -> Option<(String, String)> {
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// `local run`'s side.
pub struct Client {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    authorization: String,
    timeout: Duration,
}

impl Client {
    /// A client for `remote run` at `addr`, trusting only the certificate derived from `otp`.
    pub fn new(otp: &str, addr: SocketAddr, timeout: Duration) -> Result<Self, Failure> {
        let otp = Otp::new(otp);
        let (cert, _) = otp
            .server_identity()
            .map_err(|_| Failure::Protocol("deriving the TLS certificate failed".into()))?;
        let tls = stboot::tls::client_config(&[cert])
            .map_err(|e| Failure::Protocol(format!("TLS configuration: {e}")))?;
        let authorization = format!(
            "Basic {}",
            STANDARD.encode(format!("{BASIC_AUTH_USER}:{}", otp.basic_auth_password()))
        );
        Ok(Self {
            addr,
            tls,
            authorization,
            timeout,
        })
    }

    fn request(
        &self,
        method: &str,
        endpoint: &str,
        body: Option<&[u8]>,
    ) -> Result<Vec<u8>, Failure> {
        let what = format!("{method} https://{}{PREFIX}{endpoint}", self.addr);
        let fail = |e: String| Failure::Protocol(format!("{what}: {e}"));
        let tcp = TcpStream::connect_timeout(&self.addr, self.timeout)
            .map_err(|e| fail(format!("cannot connect: {e} (is stprov remote run listening, and is this address allowed with -a?)")))?;
        tcp.set_read_timeout(Some(self.timeout))
            .map_err(|e| fail(e.to_string()))?;
        tcp.set_write_timeout(Some(self.timeout))
            .map_err(|e| fail(e.to_string()))?;
        let name = ServerName::try_from(secrets::SERVER_NAME)
            .map_err(|e| fail(e.to_string()))?
            .to_owned();
        let conn = rustls::ClientConnection::new(self.tls.clone(), name)
            .map_err(|e| fail(format!("TLS: {e}")))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let body = body.unwrap_or_default();
        let mut req = format!(
            "{method} {PREFIX}{endpoint} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stprov-rs/{}\r\n\
             Authorization: {}\r\nConnection: close\r\n",
            self.addr,
            env!("CARGO_PKG_VERSION"),
            self.authorization
        );
        if method == "POST" {
            req.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        let mut all = req.into_bytes();
        all.extend_from_slice(body);
        s.write_all(&all)
            .and_then(|()| s.flush())
            .map_err(|e| fail(tls_hint(&e)))?;
        let (head, rest) = read_head(&mut s).map_err(|e| fail(tls_hint(&e)))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let code: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| fail(format!("bad status line {status_line:?}")))?;
        let headers = parse_headers(lines);
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        let body = if chunked {
            read_chunked(&mut s, rest).map_err(|e| fail(e.to_string()))?
        } else {
            match content_length(&headers).map_err(&fail)? {
                Some(n) => read_exact_body(&mut s, rest, n).map_err(|e| fail(e.to_string()))?,
                None => read_to_close(&mut s, rest).map_err(|e| fail(e.to_string()))?,
            }
        };
        if code != 200 {
            let msg = String::from_utf8_lossy(&body).trim().to_owned();
            return Err(fail(format!("HTTP {code}: {msg}")));
        }
        Ok(body)
    }

    /// `POST add-data` with fresh entropy; returns what was sent.
    pub fn add_data(&self, now: i64) -> Result<[u8; ENTROPY_BYTES], Failure> {
        let rng = ring::rand::SystemRandom::new();
        let mut entropy = [0u8; ENTROPY_BYTES];
        ring::rand::SecureRandom::fill(&rng, &mut entropy)
            .map_err(|_| Failure::Other("no random numbers".into()))?;
        let req = AddData {
            entropy: Some(STANDARD.encode(entropy)),
            timestamp: now,
        };
        self.request("POST", ADD_DATA, Some(&st_format::gojson::to_compact(&req)))?;
        Ok(entropy)
    }

    /// `POST add-secure-boot`.
    pub fn add_secure_boot(&self, keys: &SecureBootKeys) -> Result<(), Failure> {
        let b64 = |v: &[u8]| (!v.is_empty()).then(|| STANDARD.encode(v));
        let req = AddSecureBoot {
            pk: b64(&keys.pk),
            kek: b64(&keys.kek),
            db: b64(&keys.db),
            dbx: b64(&keys.dbx),
            reboot_into_uefi_menu: keys.reboot_into_uefi_menu,
        };
        self.request(
            "POST",
            ADD_SECURE_BOOT,
            Some(&st_format::gojson::to_compact(&req)),
        )?;
        Ok(())
    }

    /// `GET commit`.
    pub fn commit(&self) -> Result<CommitResponse, Failure> {
        let body = self.request("GET", COMMIT, None)?;
        serde_json::from_slice(&body)
            .map_err(|e| Failure::Protocol(format!("commit: invalid answer: {e}")))
    }
}

fn tls_hint(e: &io::Error) -> String {
    let text = e.to_string();
    if text.contains("UnknownIssuer") || text.contains("certificate") {
        format!("{text} (the one-time password may be incorrect)")
    } else {
        text
    }
}

fn read_to_close(r: &mut impl Read, mut have: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(have),
            Ok(n) => have.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            // A peer that closes without close_notify after a complete body.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(have),
            Err(e) => return Err(e),
        }
        if have.len() > MAX_BODY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
    }
}

fn read_chunked(r: &mut impl Read, have: Vec<u8>) -> io::Result<Vec<u8>> {
    let raw = read_to_close(r, have)?;
    let mut out = Vec::new();
    let mut rest = raw.as_slice();
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunked encoding");
    loop {
        let at = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_line = std::str::from_utf8(rest.get(..at).ok_or_else(bad)?).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        rest = rest.get(at + 2..).ok_or_else(bad)?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(bad)?);
        rest = rest.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_networks() {
        let n = parse_allowed("10.0.0.0m8").unwrap();
        assert!(in_network(&n, "10.1.2.3".parse().unwrap()));
        assert!(!in_network(&n, "11.0.0.1".parse().unwrap()));
        let one = parse_allowed("127.0.0.1").unwrap();
        assert_eq!(one.prefix(), 32);
        assert!(in_network(&one, "::ffff:127.0.0.1".parse().unwrap()));
        assert!(!in_network(&one, "127.0.0.2".parse().unwrap()));
        assert!(
            parse_allowed("x")
                .unwrap_err()
                .to_string()
                .starts_with("-a/--allow")
        );
    }

    #[test]
    fn requests_are_parsed_bounded() {
        let raw =
            b"POST /stprov/v0.0.1/add-data?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
        let r = read_request(&mut &raw[..]).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.body.as_slice()),
            ("POST", "/stprov/v0.0.1/add-data", &b"{}"[..])
        );
        let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(read_request(&mut &chunked[..]).unwrap_err().0, 411);
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(read_request(&mut big.as_bytes()).unwrap_err().0, 400);
        let endless = vec![b'a'; MAX_HEAD + 10];
        assert_eq!(read_request(&mut endless.as_slice()).unwrap_err().0, 400);
        assert_eq!(
            basic_auth("Basic ZXhhbXBsZS11c2VyOnB3"),
            Some(("example-user".into(), "pw".into()))
        );
        assert_eq!(
            read_chunked(&mut &b""[..], b"3\r\nabc\r\n0\r\n\r\n".to_vec()).unwrap(),
            b"abc"
        );
    }

    #[test]
    fn json_bodies_match_the_reference() {
        let commit = CommitResponse {
            publickey: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:x".into(),
            hostname: "h".into(),
            authentication: "aa".into(),
            identity: "bb".into(),
        };
        assert_eq!(
            String::from_utf8(st_format::gojson::to_compact(&commit)).unwrap(),
            r#"{"publickey":"ssh-ed25519 AAAA","fingerprint":"SHA256:x","hostname":"h","authentication":"aa","identity":"bb"}"#
        );
        let sb = AddSecureBoot {
            pk: Some("AA==".into()),
            kek: None,
            db: None,
            dbx: None,
            reboot_into_uefi_menu: true,
        };
        assert_eq!(
            String::from_utf8(st_format::gojson::to_compact(&sb)).unwrap(),
            r#"{"pk":"AA==","kek":null,"db":null,"dbx":null,"reboot_into_uefi_menu":true}"#
        );
        let d: AddData =
            serde_json::from_str(r#"{"entropy":"AAAA","timestamp":5,"extra":1}"#).unwrap();
        assert_eq!(d.timestamp, 5);
    }
}
