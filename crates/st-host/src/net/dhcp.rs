//! DHCPv4 client (RFC 2131): packet encoding and decoding (pure, unit tested) and the
//! DISCOVER → OFFER → REQUEST → ACK exchange over a UDP socket bound to the interface.
//!
//! The socket is bound to 0.0.0.0:68 with `SO_BINDTODEVICE`, and requests carry the BOOTP
//! broadcast flag, so the server broadcasts its replies and they arrive before the interface has
//! an address.
//!
//! Everything a server sends is untrusted: datagrams longer than the 1500 bytes we announce are
//! dropped (not parsed from their first bytes), repeated options are concatenated (RFC 3396),
//! options continued in `file`/`sname` (overload, option 52) are read, a lease that cannot
//! work is refused with a [`LeaseError`] ([`Reply::to_lease`]), a NAK counts only from the
//! server being talked to, and server text (option 56) is escaped before it is shown.

use std::cell::RefCell;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use super::{DhcpConfig, Lease};

const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
const HTYPE_ETHER: u8 = 1;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
const FLAG_BROADCAST: u16 = 0x8000;
/// Fixed BOOTP part: op .. file, then the magic cookie.
const FIXED_LEN: usize = 236;
const MIN_PACKET: usize = 300;

const OPT_PAD: u8 = 0;
const OPT_SUBNET: u8 = 1;
const OPT_ROUTER: u8 = 3;
const OPT_DNS: u8 = 6;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_LEASE_TIME: u8 = 51;
const OPT_OVERLOAD: u8 = 52;
const OPT_MSG_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_PARAMS: u8 = 55;
const OPT_MESSAGE: u8 = 56;
const OPT_MAX_SIZE: u8 = 57;
const OPT_CLIENT_ID: u8 = 61;
const OPT_END: u8 = 255;

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MsgType {
    Discover = 1,
    Offer = 2,
    Request = 3,
    Ack = 5,
    Nak = 6,
}

impl MsgType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Discover,
            2 => Self::Offer,
            3 => Self::Request,
            5 => Self::Ack,
            6 => Self::Nak,
            _ => return None,
        })
    }
}

/// A random 32-bit number for transaction ids and netlink sequence numbers. Not for secrets:
/// it never blocks, falling back to the clock when the kernel has no randomness yet.
pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // GRND_INSECURE (Linux 5.6+) never blocks; GRND_NONBLOCK is the fallback for older kernels.
    use rustix::rand::GetRandomFlags;
    for flags in [GetRandomFlags::INSECURE, GetRandomFlags::NONBLOCK] {
        if rustix::rand::getrandom(&mut b, flags) == Ok(4) {
            return u32::from_ne_bytes(b);
        }
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

/// Build a client message (DISCOVER or REQUEST).
pub(crate) fn build(
    kind: MsgType,
    xid: u32,
    mac: [u8; 6],
    secs: u16,
    request: Option<(Ipv4Addr, Ipv4Addr)>,
) -> Vec<u8> {
    let mut p = vec![0u8; FIXED_LEN];
    p[0] = BOOTREQUEST;
    p[1] = HTYPE_ETHER;
    p[2] = 6;
    p[4..8].copy_from_slice(&xid.to_be_bytes());
    p[8..10].copy_from_slice(&secs.to_be_bytes());
    p[10..12].copy_from_slice(&FLAG_BROADCAST.to_be_bytes());
    p[28..34].copy_from_slice(&mac);
    p.extend_from_slice(&MAGIC);
    p.extend_from_slice(&[OPT_MSG_TYPE, 1, kind as u8]);
    p.extend_from_slice(&[OPT_CLIENT_ID, 7, HTYPE_ETHER]);
    p.extend_from_slice(&mac);
    p.extend_from_slice(&[OPT_MAX_SIZE, 2]);
    p.extend_from_slice(&(MAX_DATAGRAM as u16).to_be_bytes());
    if let Some((addr, server)) = request {
        p.extend_from_slice(&[OPT_REQUESTED_IP, 4]);
        p.extend_from_slice(&addr.octets());
        p.extend_from_slice(&[OPT_SERVER_ID, 4]);
        p.extend_from_slice(&server.octets());
    }
    p.extend_from_slice(&[
        OPT_PARAMS,
        4,
        OPT_SUBNET,
        OPT_ROUTER,
        OPT_DNS,
        OPT_LEASE_TIME,
    ]);
    p.push(OPT_END);
    if p.len() < MIN_PACKET {
        p.resize(MIN_PACKET, OPT_PAD);
    }
    p
}

/// A decoded server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) kind: Option<MsgType>,
    pub(crate) xid: u32,
    pub(crate) chaddr: [u8; 6],
    pub(crate) yiaddr: Ipv4Addr,
    pub(crate) subnet: Option<Ipv4Addr>,
    pub(crate) routers: Vec<Ipv4Addr>,
    pub(crate) dns: Vec<Ipv4Addr>,
    pub(crate) lease_secs: Option<u32>,
    pub(crate) server_id: Option<Ipv4Addr>,
    /// Option 56, escaped ([`crate::log::escape`]: one line, no control characters) and cut
    /// to [`MAX_MESSAGE_CHARS`], so it is safe in any log line or error message.
    pub(crate) message: Option<String>,
    /// The first malformed lease option (mask, routers, DNS servers, lease time), if any: the
    /// packet is a reply, but its lease is refused ([`LeaseError::BadOption`]).
    pub(crate) bad_option: Option<&'static str>,
}

/// The longest server message (option 56) kept, in characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// The `sname` and `file` fields, which carry options when option 52 says so.
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn addr_list(data: &[u8], what: &'static str) -> Result<Vec<Ipv4Addr>, &'static str> {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return Err(what);
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

fn one_addr(data: &[u8], what: &'static str) -> Result<Ipv4Addr, &'static str> {
    <[u8; 4]>::try_from(data)
        .map(Ipv4Addr::from)
        .map_err(|_| what)
}

/// The options of one reply, each code's data concatenated over all its instances in the
/// order they appear (RFC 3396): the options field, then `file`, then `sname` when option 52
/// overloads them. At most one 1500-byte datagram's worth of data.
#[derive(Debug, Default)]
struct Options(Vec<(u8, Vec<u8>)>);

impl Options {
    fn get(&self, code: u8) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| d.as_slice())
    }

    /// Reads the options in one field up to END (a missing END is tolerated, as most clients
    /// do). Option 52 counts only in the options field (RFC 2131 §4.1).
    fn scan(&mut self, mut field: &[u8], options_field: bool) -> Result<(), &'static str> {
        while let Some((&code, rest)) = field.split_first() {
            if code == OPT_END {
                break;
            }
            if code == OPT_PAD {
                field = rest;
                continue;
            }
            let (&len, rest) = rest.split_first().ok_or("option without length")?;
            let (data, rest) = rest
                .split_at_checked(usize::from(len))
                .ok_or("option runs past the end of its field")?;
            field = rest;
            if code == OPT_OVERLOAD && !options_field {
                continue;
            }
            match self.0.iter_mut().find(|(c, _)| *c == code) {
                Some((_, d)) => d.extend_from_slice(data),
                None => self.0.push((code, data.to_vec())),
            }
        }
        Ok(())
    }
}

/// Server text (option 56) made safe to show: lossy UTF-8, escaped, cut.
fn message_text(data: &[u8]) -> String {
    crate::log::escape_cut(&String::from_utf8_lossy(data), MAX_MESSAGE_CHARS)
}

/// The option's value, or `None` after recording its fault in `bad` (the first fault wins).
fn keep<T>(bad: &mut Option<&'static str>, v: Option<Result<T, &'static str>>) -> Option<T> {
    match v? {
        Ok(t) => Some(t),
        Err(e) => {
            bad.get_or_insert(e);
            None
        }
    }
}

/// Decode a BOOTREPLY. Repeated options are concatenated (RFC 3396) and options continued in
/// `file`/`sname` (option overload, RFC 2132 §9.3) are read. Structural faults (header, option
/// framing, message type, server identifier, overload) are errors: the packet is ignored. A
/// malformed lease option is recorded in [`Reply::bad_option`] so the lease is refused with a
/// clear reason. Unknown options are skipped.
pub(crate) fn parse(buf: &[u8]) -> Result<Reply, &'static str> {
    let (Some(header), Some(options)) = (buf.get(..FIXED_LEN + 4), buf.get(FIXED_LEN + 4..)) else {
        return Err("packet shorter than a BOOTP header");
    };
    if header[0] != BOOTREPLY {
        return Err("not a BOOTREPLY");
    }
    if header[1] != HTYPE_ETHER || header[2] != 6 {
        return Err("not an Ethernet reply");
    }
    if header[FIXED_LEN..] != MAGIC {
        return Err("no DHCP magic cookie");
    }
    let mut opts = Options::default();
    opts.scan(options, true)?;
    let overload = match opts.get(OPT_OVERLOAD) {
        None => 0,
        Some(&[v @ 1..=3]) => v,
        Some(_) => return Err("option overload (52) is not one byte of 1, 2 or 3"),
    };
    if overload & 1 != 0 {
        opts.scan(&header[FILE], false)?;
    }
    if overload & 2 != 0 {
        opts.scan(&header[SNAME], false)?;
    }
    let kind = match opts.get(OPT_MSG_TYPE) {
        Some(&[t]) => MsgType::from_u8(t).ok_or("no (known) DHCP message type")?,
        Some(_) => return Err("message type option is not 1 byte"),
        None => return Err("no (known) DHCP message type"),
    };
    let server_id = opts
        .get(OPT_SERVER_ID)
        .map(|d| one_addr(d, "server identifier option is not 4 bytes"))
        .transpose()?;
    let mut bad_option = None;
    let bad = &mut bad_option;
    let subnet = keep(
        bad,
        opts.get(OPT_SUBNET)
            .map(|d| one_addr(d, "subnet mask option is not 4 bytes")),
    );
    let routers = keep(
        bad,
        opts.get(OPT_ROUTER)
            .map(|d| addr_list(d, "router option length is not a multiple of 4")),
    );
    let dns = keep(
        bad,
        opts.get(OPT_DNS)
            .map(|d| addr_list(d, "DNS server option length is not a multiple of 4")),
    );
    let lease_secs = keep(
        bad,
        opts.get(OPT_LEASE_TIME).map(|d| {
            <[u8; 4]>::try_from(d)
                .map(u32::from_be_bytes)
                .map_err(|_| "lease time option is not 4 bytes")
        }),
    );
    Ok(Reply {
        kind: Some(kind),
        xid: u32::from_be_bytes([header[4], header[5], header[6], header[7]]),
        chaddr: [
            header[28], header[29], header[30], header[31], header[32], header[33],
        ],
        yiaddr: ipv4_at(header, 16).unwrap_or(Ipv4Addr::UNSPECIFIED),
        subnet,
        routers: routers.unwrap_or_default(),
        dns: dns.unwrap_or_default(),
        lease_secs,
        server_id,
        message: opts.get(OPT_MESSAGE).map(message_text),
        bad_option,
    })
}

/// Prefix length of a contiguous netmask.
pub(crate) fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// Classful default prefix for a reply without a subnet option (as Go's `DefaultMask`).
fn classful_prefix(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// Why an IPv4 address can be no host's address (nor a router's or a name server's): the
/// ranges RFC 6890 reserves for other uses, or `None`.
pub(crate) fn reserved_v4(a: Ipv4Addr) -> Option<&'static str> {
    let first = a.octets()[0];
    Some(if a.is_broadcast() {
        "the limited broadcast address"
    } else if first == 0 {
        "in 0.0.0.0/8 (\"this network\")"
    } else if a.is_loopback() {
        "in 127.0.0.0/8 (loopback)"
    } else if a.is_multicast() {
        "in 224.0.0.0/4 (multicast)"
    } else if first >= 240 {
        "in 240.0.0.0/4 (reserved)"
    } else {
        return None;
    })
}

/// What is wrong with an address in a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// In a range no host can use ([`reserved_v4`]'s reason).
    Reserved(&'static str),
    /// The address is the DHCP server's identifier.
    ServerId,
    /// The router is the offered address itself.
    OwnAddress,
    /// The network address of the subnet (prefixes up to /30).
    Network(Ipv4Addr, u8),
    /// The broadcast address of the subnet (prefixes up to /30).
    Broadcast(Ipv4Addr, u8),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Reserved(why) => f.write_str(why),
            Self::ServerId => f.write_str("the server identifier"),
            Self::OwnAddress => f.write_str("the offered address itself"),
            Self::Network(net, p) => write!(f, "the network address of {net}/{p}"),
            Self::Broadcast(net, p) => write!(f, "the broadcast address of {net}/{p}"),
        }
    }
}

/// Why a lease cannot work; the client refuses it and tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LeaseError {
    /// A lease option is malformed (after concatenating repeated instances).
    #[error("malformed option: {0}")]
    BadOption(&'static str),
    /// The offered address (yiaddr) cannot be ours.
    #[error("address {addr} is {why}")]
    Address {
        /// The offered address.
        addr: Ipv4Addr,
        /// What is wrong with it.
        why: Unusable,
    },
    /// No router in the list can be used; the first one and why.
    #[error("router {router} is {why}")]
    Router {
        /// The first non-zero router.
        router: Ipv4Addr,
        /// What is wrong with it.
        why: Unusable,
    },
    /// The subnet mask has a hole.
    #[error("non-contiguous subnet mask {0}")]
    NonContiguousMask(Ipv4Addr),
    /// Mask 0.0.0.0 puts every address on the link, and there is no router.
    #[error("subnet mask 0.0.0.0 without a router")]
    ZeroMaskWithoutRouter,
}

/// The network and broadcast addresses of `a/prefix` when the subnet has them (up to /30;
/// /31 and /32 have neither, RFC 3021).
fn subnet_ends(a: Ipv4Addr, prefix: u8) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if prefix > 30 {
        return None;
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let net = u32::from(a) & mask;
    Some((Ipv4Addr::from(net), Ipv4Addr::from(net | !mask)))
}

/// What is wrong with `router` as the gateway for `addr/prefix`, if anything.
fn router_problem(router: Ipv4Addr, addr: Ipv4Addr, prefix: u8) -> Option<Unusable> {
    if let Some(why) = reserved_v4(router) {
        return Some(Unusable::Reserved(why));
    }
    if router == addr {
        return Some(Unusable::OwnAddress);
    }
    let (net, bcast) = subnet_ends(addr, prefix)?;
    if router == net {
        Some(Unusable::Network(net, prefix))
    } else if router == bcast {
        Some(Unusable::Broadcast(net, prefix))
    } else {
        None
    }
}

impl Reply {
    /// The lease this reply grants, if it can work: the one place deciding that. `from` is the
    /// reply's source address, the server when there is no server identifier (option 54).
    ///
    /// Refused: a malformed lease option; an address (yiaddr) in 0/8, 127/8, 224/4 or 240/4,
    /// equal to the server identifier or the router, or the network or broadcast address of its
    /// subnet; a non-contiguous mask; mask 0.0.0.0 without a router; a router list where no
    /// router is usable (reserved range, our own address, the subnet's network or broadcast
    /// address; 0.0.0.0 entries are skipped). The first usable router is taken. Without a
    /// mask the classful default is used (see [`Reply::classful_note`]).
    pub(crate) fn to_lease(&self, from: Ipv4Addr) -> Result<Lease, LeaseError> {
        if let Some(e) = self.bad_option {
            return Err(LeaseError::BadOption(e));
        }
        let addr = self.yiaddr;
        let unusable = |why| LeaseError::Address { addr, why };
        if let Some(why) = reserved_v4(addr) {
            return Err(unusable(Unusable::Reserved(why)));
        }
        let prefix = match self.subnet {
            Some(m) => mask_to_prefix(m).ok_or(LeaseError::NonContiguousMask(m))?,
            None => classful_prefix(addr),
        };
        let mut first_bad = None;
        let mut router = None;
        for &r in self.routers.iter().filter(|r| !r.is_unspecified()) {
            match router_problem(r, addr, prefix) {
                None => {
                    router = Some(r);
                    break;
                }
                Some(why) => {
                    first_bad.get_or_insert(LeaseError::Router { router: r, why });
                }
            }
        }
        if router.is_none()
            && let Some(e) = first_bad
        {
            return Err(e);
        }
        if prefix == 0 && router.is_none() {
            return Err(LeaseError::ZeroMaskWithoutRouter);
        }
        let server = self.server_id.unwrap_or(from);
        if addr == server {
            return Err(unusable(Unusable::ServerId));
        }
        if let Some((net, bcast)) = subnet_ends(addr, prefix) {
            if addr == net {
                return Err(unusable(Unusable::Network(net, prefix)));
            }
            if addr == bcast {
                return Err(unusable(Unusable::Broadcast(net, prefix)));
            }
        }
        Ok(Lease {
            address: addr,
            prefix,
            router,
            dns: self.dns.clone(),
            lease_secs: self.lease_secs.unwrap_or(0),
            server,
        })
    }

    /// The warning to log when the lease's prefix is a classful guess (no option 1).
    pub(crate) fn classful_note(&self) -> Option<String> {
        self.subnet.is_none().then(|| {
            format!(
                "no subnet mask in the reply; using the classful /{} for {}",
                classful_prefix(self.yiaddr),
                self.yiaddr
            )
        })
    }
}

/// Whether a reply to our REQUEST to `server` ends the wait: an ACK naming `server` (or no
/// server: RFC 2131 requires option 54, but we take an ACK without it as before), or a NAK
/// whose server identifier is `server`. A NAK from any other host, or without option 54,
/// cannot be blamed on the chosen server and is ignored.
pub(crate) fn is_answer(r: &Reply, server: Ipv4Addr) -> bool {
    match r.kind {
        Some(MsgType::Ack) => r.server_id.is_none_or(|s| s == server),
        Some(MsgType::Nak) => r.server_id == Some(server),
        _ => false,
    }
}

/// The largest datagram accepted: the size we announce in option 57.
const MAX_DATAGRAM: usize = 1500;
/// The receive buffer: one byte more than [`MAX_DATAGRAM`], so a datagram that fills it was
/// longer (recv(2) drops the rest of a datagram without a word).
const RECV_BUF: usize = MAX_DATAGRAM + 1;

/// The datagram `recv` put into `buf` (`n` bytes), or `None` when it did not fit: parsing the
/// first bytes of a longer one as if complete would read cut-off options.
fn complete_datagram(buf: &[u8], n: usize) -> Option<&[u8]> {
    if n > MAX_DATAGRAM { None } else { buf.get(..n) }
}

/// UDP socket on 0.0.0.0:68 bound to one device.
fn client_socket(iface: &str) -> io::Result<UdpSocket> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    sockopt::set_socket_broadcast(&fd, true)?;
    // The kernel copies at most IFNAMSIZ bytes of the name.
    super::setsockopt(
        &fd,
        libc::SOL_SOCKET,
        libc::SO_BINDTODEVICE,
        iface.as_bytes(),
    )?;
    // std's bind needs a fresh socket, so bind here to keep the options above.
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 68))?;
    Ok(UdpSocket::from(fd))
}

/// Retransmission interval: 1 s, doubling up to 4 s (a reply lost while the link settles
/// costs one second, not a whole try).
const FIRST_RESEND: Duration = Duration::from_secs(1);
const MAX_RESEND: Duration = Duration::from_secs(4);

/// Send `pkt` (resending after 1, 2, 4, 4 ... s) until a matching reply arrives or `deadline`
/// passes. `accept` gets the reply and its source address. Truncated datagrams and malformed
/// packets are dropped with a debug line.
fn exchange(
    sock: &UdpSocket,
    pkt: &[u8],
    xid: u32,
    mac: [u8; 6],
    deadline: Instant,
    accept: &dyn Fn(&Reply, Ipv4Addr) -> bool,
) -> io::Result<Option<(Reply, Ipv4Addr)>> {
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut next_send = Instant::now();
    let mut interval = FIRST_RESEND;
    let mut buf = [0u8; RECV_BUF];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        if now >= next_send {
            sock.send_to(pkt, dest)?;
            next_send = now + interval;
            interval = (interval * 2).min(MAX_RESEND);
        }
        let wait = deadline.min(next_send).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(data) = complete_datagram(&buf, n) else {
            log::debug!("dhcp: dropping a datagram from {from} longer than {MAX_DATAGRAM} bytes");
            continue;
        };
        let reply = match parse(data) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("dhcp: ignoring a malformed packet from {from}: {e}");
                continue;
            }
        };
        let from = match from {
            std::net::SocketAddr::V4(a) => *a.ip(),
            std::net::SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        if reply.xid != xid || reply.chaddr != mac || !accept(&reply, from) {
            continue;
        }
        return Ok(Some((reply, from)));
    }
}

/// Run the DHCP exchange on `iface` (whose MAC is `mac`). Errors are plain reasons; the caller
/// adds the interface name.
pub(crate) fn run(iface: &str, mac: [u8; 6], cfg: &DhcpConfig) -> Result<Lease, String> {
    let sock = client_socket(iface).map_err(|e| format!("opening DHCP socket: {e}"))?;
    let start = Instant::now();
    let tries = cfg.tries.max(1);
    let mut last = String::from("no attempt made");
    for attempt in 1..=tries {
        let xid = random_u32();
        let secs = || u16::try_from(start.elapsed().as_secs()).unwrap_or(u16::MAX);
        let deadline = Instant::now() + cfg.per_try;
        log::info!("{iface}: DHCPDISCOVER (try {attempt}/{tries}, xid {xid:#010x})");
        let discover = build(MsgType::Discover, xid, mac, secs(), None);
        // An offer whose lease cannot work is refused (logged once per reason) and the wait
        // goes on: another server may offer a usable one.
        let refused: RefCell<Option<String>> = RefCell::new(None);
        let is_offer = |r: &Reply, from: Ipv4Addr| {
            if r.kind != Some(MsgType::Offer) {
                return false;
            }
            let Err(e) = r.to_lease(from) else {
                return true;
            };
            let why = format!(
                "refusing the DHCPOFFER of {} from {}: {e}",
                r.yiaddr,
                r.server_id.unwrap_or(from)
            );
            if refused.borrow().as_deref() != Some(why.as_str()) {
                log::warn!("{iface}: {why}");
                *refused.borrow_mut() = Some(why);
            }
            false
        };
        let offer = match exchange(&sock, &discover, xid, mac, deadline, &is_offer) {
            Ok(Some(o)) => o,
            Ok(None) => {
                last = match refused.take() {
                    Some(why) => format!("no usable DHCPOFFER within {:?} ({why})", cfg.per_try),
                    None => format!("no DHCPOFFER within {:?}", cfg.per_try),
                };
                log::warn!("{iface}: {last}");
                continue;
            }
            Err(e) => {
                last = format!("sending DHCPDISCOVER: {e}");
                log::warn!("{iface}: {last}");
                continue;
            }
        };
        let (offer, from) = offer;
        let server = offer.server_id.unwrap_or(from);
        log::info!(
            "{iface}: DHCPOFFER of {} from {server}; DHCPREQUEST",
            offer.yiaddr
        );
        let request = build(
            MsgType::Request,
            xid,
            mac,
            secs(),
            Some((offer.yiaddr, server)),
        );
        let deadline = Instant::now() + cfg.per_try;
        let is_answer = |r: &Reply, from: Ipv4Addr| {
            let yes = is_answer(r, server);
            if !yes && r.kind == Some(MsgType::Nak) {
                log::debug!(
                    "{iface}: ignoring a DHCPNAK from {from}: server identifier {}, not {server}",
                    r.server_id
                        .map_or_else(|| "missing".to_owned(), |s| s.to_string())
                );
            }
            yes
        };
        match exchange(&sock, &request, xid, mac, deadline, &is_answer) {
            Ok(Some((r, from))) if r.kind == Some(MsgType::Ack) => match r.to_lease(from) {
                Ok(lease) => {
                    if let Some(note) = r.classful_note() {
                        log::warn!("{iface}: {note}");
                    }
                    return Ok(lease);
                }
                Err(e) => {
                    last = format!(
                        "refusing the DHCPACK of {} from {}: {e}",
                        r.yiaddr,
                        r.server_id.unwrap_or(from)
                    );
                }
            },
            Ok(Some((r, _))) => {
                // The message is already escaped (Reply::message); the logger escapes anyway.
                last = format!(
                    "DHCPNAK from {server}{}",
                    r.message.map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
            Ok(None) => last = format!("no DHCPACK within {:?}", cfg.per_try),
            Err(e) => last = format!("sending DHCPREQUEST: {e}"),
        }
        log::warn!("{iface}: {last}");
    }
    Err(format!("no lease after {tries} tries: {last}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x42];

    /// A reply as a server would send it.
    fn reply(kind: u8, xid: u32, opts: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0u8; FIXED_LEN];
        p[0] = BOOTREPLY;
        p[1] = 1;
        p[2] = 6;
        p[4..8].copy_from_slice(&xid.to_be_bytes());
        p[16..20].copy_from_slice(&[10, 0, 2, 15]);
        p[20..24].copy_from_slice(&[10, 0, 2, 2]);
        p[28..34].copy_from_slice(&MAC);
        p.extend_from_slice(&MAGIC);
        p.extend_from_slice(&[53, 1, kind]);
        for o in opts {
            p.extend_from_slice(o);
        }
        p.push(255);
        p
    }

    fn full_ack() -> Vec<u8> {
        reply(
            5,
            0xdead_beef,
            &[
                &[1, 4, 255, 255, 255, 0],
                &[3, 8, 10, 0, 2, 2, 10, 0, 2, 1],
                &[6, 8, 10, 0, 2, 3, 9, 9, 9, 9],
                &[51, 4, 0, 0, 0x0e, 0x10],
                &[54, 4, 10, 0, 2, 2],
                &[0, 0, 0],
                &[200, 3, 1, 2, 3],
            ],
        )
    }

    #[test]
    fn discover_layout() {
        let p = build(MsgType::Discover, 0x0102_0304, MAC, 3, None);
        assert_eq!(p.len(), 300);
        assert_eq!(&p[0..4], &[1, 1, 6, 0]);
        assert_eq!(&p[4..8], &[1, 2, 3, 4]);
        assert_eq!(&p[8..10], &[0, 3]);
        assert_eq!(&p[10..12], &[0x80, 0]);
        assert_eq!(&p[12..28], &[0; 16]); // ciaddr yiaddr siaddr giaddr
        assert_eq!(&p[28..34], &MAC);
        assert_eq!(&p[236..240], &MAGIC);
        assert_eq!(&p[240..243], &[53, 1, 1]);
        assert_eq!(&p[243..252], &[61, 7, 1, 2, 0, 0, 0, 0, 0x42]);
        let params = [55, 4, 1, 3, 6, 51, 255];
        assert!(p.windows(params.len()).any(|w| w == params));
        assert!(!p.windows(2).any(|w| w == [50, 4]));
    }

    #[test]
    fn request_carries_address_and_server() {
        let p = build(
            MsgType::Request,
            7,
            MAC,
            0,
            Some(("10.0.2.15".parse().unwrap(), "10.0.2.2".parse().unwrap())),
        );
        assert_eq!(&p[240..243], &[53, 1, 3]);
        assert!(p.windows(6).any(|w| w == [50, 4, 10, 0, 2, 15]));
        assert!(p.windows(6).any(|w| w == [54, 4, 10, 0, 2, 2]));
    }

    #[test]
    fn parse_ack_to_lease() {
        let r = parse(&full_ack()).unwrap();
        assert_eq!(r.kind, Some(MsgType::Ack));
        assert_eq!(r.xid, 0xdead_beef);
        assert_eq!(r.chaddr, MAC);
        let l = r.to_lease(Ipv4Addr::UNSPECIFIED).unwrap();
        assert_eq!(l.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(l.prefix, 24);
        assert_eq!(l.router, Some(Ipv4Addr::new(10, 0, 2, 2)));
        assert_eq!(
            l.dns,
            vec![Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(9, 9, 9, 9)]
        );
        assert_eq!(l.lease_secs, 3600);
        assert_eq!(l.server, Ipv4Addr::new(10, 0, 2, 2));
    }

    #[test]
    fn parse_offer_minimal_and_nak() {
        let r = parse(&reply(2, 1, &[])).unwrap();
        assert_eq!(r.kind, Some(MsgType::Offer));
        let l = r.to_lease(Ipv4Addr::new(10, 0, 2, 2)).unwrap();
        assert_eq!(l.prefix, 8); // classful default for 10/8
        assert_eq!(l.router, None);
        assert_eq!(l.server, Ipv4Addr::new(10, 0, 2, 2));
        let nak = parse(&reply(6, 1, &[b"\x38\x05nope!"])).unwrap();
        assert_eq!(nak.kind, Some(MsgType::Nak));
        assert_eq!(nak.message.as_deref(), Some("nope!"));
    }

    /// A reply captured from QEMU's slirp DHCP server (DHCPOFFER for 10.0.2.15).
    #[test]
    fn parse_slirp_style_offer() {
        let mut p = reply(
            2,
            0x3903_f326,
            &[
                &[54, 4, 10, 0, 2, 2],
                &[51, 4, 0, 1, 0x51, 0x80],
                &[1, 4, 255, 255, 255, 0],
                &[3, 4, 10, 0, 2, 2],
                &[6, 4, 10, 0, 2, 3],
            ],
        );
        p.resize(590, 0);
        let l = parse(&p).unwrap().to_lease(Ipv4Addr::UNSPECIFIED).unwrap();
        assert_eq!(l.address, Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(l.prefix, 24);
        assert_eq!(l.lease_secs, 86400);
        assert_eq!(l.dns, vec![Ipv4Addr::new(10, 0, 2, 3)]);
    }

    #[test]
    fn malformed_replies_are_errors() {
        let ack = full_ack();
        for n in 0..240 {
            assert!(parse(&ack[..n]).is_err(), "truncated to {n}");
        }
        // Truncated in the middle of options: either an error or a reply, never a panic.
        for n in 240..ack.len() {
            let _ = parse(&ack[..n]);
        }
        let mut bad = ack.clone();
        bad[0] = 1;
        assert_eq!(parse(&bad), Err("not a BOOTREPLY"));
        let mut bad = ack.clone();
        bad[236] = 0;
        assert_eq!(parse(&bad), Err("no DHCP magic cookie"));
        // Malformed lease options: the reply parses, its lease is refused with the reason.
        for (opt, why) in [
            (
                &[1, 3, 255, 255, 255][..],
                "subnet mask option is not 4 bytes",
            ),
            (
                &[3, 5, 1, 2, 3, 4, 5],
                "router option length is not a multiple of 4",
            ),
            (&[51, 2, 0, 1], "lease time option is not 4 bytes"),
            (&[6, 0], "DNS server option length is not a multiple of 4"),
        ] {
            let r = parse(&reply(5, 1, &[opt])).unwrap();
            assert_eq!(
                r.to_lease(Ipv4Addr::UNSPECIFIED),
                Err(LeaseError::BadOption(why))
            );
        }
        assert!(parse(&reply(5, 1, &[&[6, 200, 1]])).is_err());
        assert!(parse(&reply(77, 1, &[])).is_err());
        assert!(parse(&reply(5, 1, &[&[53, 1, 5]])).is_err()); // two types: 2 bytes
        assert!(parse(&reply(5, 1, &[&[54, 3, 1, 2, 3]])).is_err());
        assert!(parse(&reply(5, 1, &[&[52, 1, 4]])).is_err());
        assert!(parse(&reply(5, 1, &[&[52, 2, 1, 1]])).is_err());
        let no_type = {
            let mut p = reply(5, 1, &[]);
            p[240] = 0; // pad over the type option
            p[241] = 0;
            p[242] = 0;
            p
        };
        assert!(parse(&no_type).is_err());
        let mut r = parse(&ack).unwrap();
        r.subnet = Some(Ipv4Addr::new(255, 0, 255, 0));
        assert!(r.to_lease(Ipv4Addr::UNSPECIFIED).is_err());
        r.subnet = None;
        r.yiaddr = Ipv4Addr::UNSPECIFIED;
        assert!(r.to_lease(Ipv4Addr::UNSPECIFIED).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for i in 0..5000usize {
            // Half of the inputs get a valid header so the option parser is exercised.
            let mut buf: Vec<u8> = (0..(i % 600)).map(|_| next()).collect();
            if i % 2 == 0 && buf.len() >= 240 {
                buf[0] = 2;
                buf[1] = 1;
                buf[2] = 6;
                buf[236..240].copy_from_slice(&MAGIC);
            }
            if let Ok(r) = parse(&buf) {
                let _ = r.to_lease(Ipv4Addr::UNSPECIFIED);
            }
        }
    }

    /// An ACK for `yiaddr` with the given options (after the message type).
    fn ack_for(yiaddr: [u8; 4], opts: &[&[u8]]) -> Vec<u8> {
        let mut p = reply(5, 1, opts);
        p[16..20].copy_from_slice(&yiaddr);
        p
    }

    fn lease_of(p: &[u8]) -> Option<Lease> {
        parse(p).ok()?.to_lease(Ipv4Addr::new(10, 0, 2, 2)).ok()
    }

    /// RFC 3396: 255 DNS servers sent as five option-6 entries (63 + 63 + 63 + 63 + 3) are
    /// one list of 255, in order; two router options are one list (first router wins).
    #[test]
    fn repeated_options_are_concatenated() {
        let servers: Vec<[u8; 4]> = (0..255u8).map(|i| [10, 1, i / 100, i]).collect();
        let mut opts: Vec<Vec<u8>> = servers
            .chunks(63)
            .map(|c| {
                let mut o = vec![6, (c.len() * 4) as u8];
                o.extend(c.iter().flatten());
                o
            })
            .collect();
        opts.push(vec![3, 4, 10, 0, 2, 1]);
        opts.push(vec![3, 4, 10, 0, 2, 9]);
        opts.push(vec![1, 4, 255, 255, 255, 0]);
        opts.push(b"\x38\x04try ".to_vec());
        opts.push(b"\x38\x05again".to_vec());
        let refs: Vec<&[u8]> = opts.iter().map(Vec::as_slice).collect();
        let p = ack_for([10, 0, 2, 15], &refs);
        assert!(p.len() < 1500, "{}", p.len());
        let r = parse(&p).unwrap();
        assert_eq!(r.dns.len(), 255);
        assert_eq!(r.dns[0], Ipv4Addr::new(10, 1, 0, 0));
        assert_eq!(r.dns[254], Ipv4Addr::new(10, 1, 2, 254));
        assert_eq!(r.message.as_deref(), Some("try again"));
        let l = lease_of(&p).unwrap();
        assert_eq!(l.router, Some(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(l.dns.len(), 255);
    }

    /// A repeated subnet mask becomes 8 bytes: not a mask, the lease is refused.
    #[test]
    fn repeated_subnet_mask_refuses_the_lease() {
        let p = ack_for(
            [10, 0, 2, 15],
            &[
                &[1, 4, 255, 255, 255, 0],
                &[1, 4, 255, 0, 0, 0],
                &[3, 4, 10, 0, 2, 1],
            ],
        );
        assert_eq!(lease_of(&p), None);
        // A router list that is not a multiple of 4 once concatenated is refused too.
        let p = ack_for(
            [10, 0, 2, 15],
            &[
                &[1, 4, 255, 255, 255, 0],
                &[3, 4, 10, 0, 2, 1],
                &[3, 2, 10, 0],
            ],
        );
        assert_eq!(lease_of(&p), None);
    }

    /// An offered address, the reply's options, and what to expect.
    type Case<'a, T> = ([u8; 4], &'a [&'a [u8]], T);

    /// Leases that cannot work are refused, case by case, each with its reason.
    #[test]
    fn unusable_leases_are_refused() {
        use LeaseError::{Address, NonContiguousMask, Router, ZeroMaskWithoutRouter};
        const M24: &[u8] = &[1, 4, 255, 255, 255, 0];
        let ip = Ipv4Addr::new;
        let net24 = ip(10, 0, 2, 0);
        let addr = |a: Ipv4Addr, why| Address { addr: a, why };
        let router = |r: Ipv4Addr, why| Router { router: r, why };
        let refused: &[Case<LeaseError>] = &[
            // router is our own address, the network or the broadcast address, reserved
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 10, 0, 2, 15]],
                router(ip(10, 0, 2, 15), Unusable::OwnAddress),
            ),
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 10, 0, 2, 0]],
                router(net24, Unusable::Network(net24, 24)),
            ),
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 10, 0, 2, 255]],
                router(ip(10, 0, 2, 255), Unusable::Broadcast(net24, 24)),
            ),
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 255, 255, 255, 255]],
                router(
                    Ipv4Addr::BROADCAST,
                    Unusable::Reserved("the limited broadcast address"),
                ),
            ),
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 127, 0, 0, 1]],
                router(
                    Ipv4Addr::LOCALHOST,
                    Unusable::Reserved("in 127.0.0.0/8 (loopback)"),
                ),
            ),
            // address is the server's, the network or the broadcast address
            (
                [10, 0, 2, 2],
                &[M24, &[3, 4, 10, 0, 2, 1], &[54, 4, 10, 0, 2, 2]],
                addr(ip(10, 0, 2, 2), Unusable::ServerId),
            ),
            (
                [10, 0, 2, 0],
                &[M24, &[3, 4, 10, 0, 2, 1]],
                addr(net24, Unusable::Network(net24, 24)),
            ),
            (
                [10, 0, 2, 255],
                &[M24, &[3, 4, 10, 0, 2, 1]],
                addr(ip(10, 0, 2, 255), Unusable::Broadcast(net24, 24)),
            ),
            // reserved ranges
            (
                [0, 1, 2, 3],
                &[M24],
                addr(
                    ip(0, 1, 2, 3),
                    Unusable::Reserved("in 0.0.0.0/8 (\"this network\")"),
                ),
            ),
            (
                [240, 0, 0, 1],
                &[M24],
                addr(
                    ip(240, 0, 0, 1),
                    Unusable::Reserved("in 240.0.0.0/4 (reserved)"),
                ),
            ),
            (
                [255, 255, 255, 255],
                &[M24],
                addr(
                    Ipv4Addr::BROADCAST,
                    Unusable::Reserved("the limited broadcast address"),
                ),
            ),
            (
                [127, 0, 0, 2],
                &[M24],
                addr(
                    ip(127, 0, 0, 2),
                    Unusable::Reserved("in 127.0.0.0/8 (loopback)"),
                ),
            ),
            (
                [224, 0, 0, 5],
                &[M24],
                addr(
                    ip(224, 0, 0, 5),
                    Unusable::Reserved("in 224.0.0.0/4 (multicast)"),
                ),
            ),
            // mask 0.0.0.0 without a router (0.0.0.0 routers do not count); holes in the mask
            (
                [10, 0, 2, 15],
                &[&[1, 4, 0, 0, 0, 0]],
                ZeroMaskWithoutRouter,
            ),
            (
                [10, 0, 2, 15],
                &[&[1, 4, 0, 0, 0, 0], &[3, 4, 0, 0, 0, 0]],
                ZeroMaskWithoutRouter,
            ),
            (
                [10, 0, 2, 15],
                &[&[1, 4, 255, 0, 255, 0], &[3, 4, 10, 0, 2, 1]],
                NonContiguousMask(ip(255, 0, 255, 0)),
            ),
        ];
        for (i, (a, opts, want)) in refused.iter().enumerate() {
            let r = parse(&ack_for(*a, opts)).unwrap();
            assert_eq!(r.to_lease(ip(10, 0, 2, 2)).as_ref(), Err(want), "case {i}");
        }
        assert_eq!(
            router(ip(10, 0, 2, 15), Unusable::OwnAddress).to_string(),
            "router 10.0.2.15 is the offered address itself"
        );
        assert_eq!(
            addr(net24, Unusable::Network(net24, 24)).to_string(),
            "address 10.0.2.0 is the network address of 10.0.2.0/24"
        );
        // Accepted, with the router taken.
        let accepted: &[Case<Option<[u8; 4]>>] = &[
            (
                [10, 0, 2, 15],
                &[M24, &[3, 4, 10, 0, 2, 1]],
                Some([10, 0, 2, 1]),
            ),
            // 0.0.0.0 entries are skipped; the first usable router is taken
            (
                [10, 0, 2, 15],
                &[M24, &[3, 12, 0, 0, 0, 0, 10, 0, 2, 15, 10, 0, 2, 1]],
                Some([10, 0, 2, 1]),
            ),
            // mask 0.0.0.0 with a router
            (
                [10, 0, 2, 15],
                &[&[1, 4, 0, 0, 0, 0], &[3, 4, 10, 0, 2, 1]],
                Some([10, 0, 2, 1]),
            ),
            // /31 (RFC 3021): no network or broadcast address
            (
                [10, 0, 2, 0],
                &[&[1, 4, 255, 255, 255, 254], &[3, 4, 10, 0, 2, 1]],
                Some([10, 0, 2, 1]),
            ),
            // /32 with an off-subnet router
            (
                [10, 0, 2, 15],
                &[&[1, 4, 255, 255, 255, 255], &[3, 4, 10, 9, 9, 1]],
                Some([10, 9, 9, 1]),
            ),
            // no router at all
            ([10, 0, 2, 15], &[M24], None),
        ];
        for (i, (a, opts, want)) in accepted.iter().enumerate() {
            let l = lease_of(&ack_for(*a, opts)).unwrap_or_else(|| panic!("case {i}"));
            assert_eq!(l.router, want.map(Ipv4Addr::from), "case {i}");
        }
    }

    /// A reply without option 1 gets the classful prefix, and a warning to log says so.
    #[test]
    fn missing_mask_is_reported() {
        let r = parse(&ack_for([172, 16, 0, 9], &[&[3, 4, 172, 16, 0, 1]])).unwrap();
        assert_eq!(r.to_lease(Ipv4Addr::new(172, 16, 0, 1)).unwrap().prefix, 16);
        assert_eq!(
            r.classful_note().as_deref(),
            Some("no subnet mask in the reply; using the classful /16 for 172.16.0.9")
        );
        let r = parse(&ack_for([172, 16, 0, 9], &[&[1, 4, 255, 255, 255, 0]])).unwrap();
        assert_eq!(r.classful_note(), None);
    }

    /// The NAK text is escaped and cut when parsed, so it is one safe line wherever it goes.
    #[test]
    fn server_message_is_escaped_and_cut() {
        let mut opt = vec![56, 0];
        opt.extend_from_slice(b"no\nstboot: [INFO] forged\x1b[2J");
        opt[1] = (opt.len() - 2) as u8;
        let r = parse(&reply(6, 1, &[&opt])).unwrap();
        assert_eq!(
            r.message.as_deref(),
            Some("no\\nstboot: [INFO] forged\\x1b[2J")
        );
        let long: Vec<Vec<u8>> = (0..3)
            .map(|_| {
                let mut o = vec![56, 200];
                o.extend([b'a'; 200]);
                o
            })
            .collect();
        let refs: Vec<&[u8]> = long.iter().map(Vec::as_slice).collect();
        let m = parse(&reply(6, 1, &refs)).unwrap().message.unwrap();
        assert_eq!(m, format!("{}...", "a".repeat(MAX_MESSAGE_CHARS)));
    }

    /// Option overload (52): options continued in `file` (and `sname`) are read, `file` first.
    #[test]
    fn option_overload_is_read() {
        let mut p = ack_for([10, 0, 2, 15], &[&[52, 1, 3], &[6, 4, 9, 9, 9, 9]]);
        let file = [
            1, 4, 255, 255, 255, 0, 3, 4, 10, 0, 2, 1, 6, 4, 1, 1, 1, 1, 255,
        ];
        p[108..108 + file.len()].copy_from_slice(&file);
        let sname = [0, 6, 4, 8, 8, 8, 8, 255];
        p[44..44 + sname.len()].copy_from_slice(&sname);
        let l = lease_of(&p).unwrap();
        assert_eq!(l.prefix, 24);
        assert_eq!(l.router, Some(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!(
            l.dns,
            [[9, 9, 9, 9], [1, 1, 1, 1], [8, 8, 8, 8]].map(Ipv4Addr::from)
        );
        // 52 = 1: only `file`; the `sname` bytes are a server name, not options.
        p[243 + 2] = 1;
        let l = lease_of(&p).unwrap();
        assert_eq!(l.dns, [[9, 9, 9, 9], [1, 1, 1, 1]].map(Ipv4Addr::from));
        // 52 = 2: only `sname`; no mask then (classful /8), no router.
        p[243 + 2] = 2;
        let l = lease_of(&p).unwrap();
        assert_eq!((l.prefix, l.router), (8, None));
        assert_eq!(l.dns, [[9, 9, 9, 9], [8, 8, 8, 8]].map(Ipv4Addr::from));
        // The message type itself may be in `file`; an option 52 there does not count.
        let mut p = reply(5, 1, &[]);
        p[240..243].copy_from_slice(&[52, 1, 1]);
        p[108..118].copy_from_slice(&[52, 1, 2, 53, 1, 6, 54, 4, 10, 0]);
        p[118..121].copy_from_slice(&[2, 2, 255]);
        let r = parse(&p).unwrap();
        assert_eq!(r.kind, Some(MsgType::Nak));
        assert_eq!(r.server_id, Some(Ipv4Addr::new(10, 0, 2, 2)));
        // An option running past the end of `file` is malformed, never read from `sname`.
        let mut p = reply(5, 1, &[&[52, 1, 3]]);
        p[234..236].copy_from_slice(&[6, 8]);
        assert_eq!(parse(&p), Err("option runs past the end of its field"));
    }

    /// During REQUEST a NAK counts only when it names the server being talked to.
    #[test]
    fn nak_only_from_the_chosen_server() {
        let server = Ipv4Addr::new(10, 0, 2, 2);
        let nak = |opts: &[&[u8]]| parse(&reply(6, 1, opts)).unwrap();
        assert!(!is_answer(&nak(&[]), server));
        assert!(!is_answer(&nak(&[&[54, 4, 10, 0, 2, 9]]), server));
        assert!(is_answer(&nak(&[&[54, 4, 10, 0, 2, 2]]), server));
        let ack = |opts: &[&[u8]]| parse(&reply(5, 1, opts)).unwrap();
        assert!(is_answer(&ack(&[&[54, 4, 10, 0, 2, 2]]), server));
        assert!(!is_answer(&ack(&[&[54, 4, 10, 0, 2, 9]]), server));
        assert!(!is_answer(&parse(&reply(2, 1, &[])).unwrap(), server));
    }

    /// A datagram longer than the largest accepted one is dropped, not parsed from its first
    /// bytes; one of exactly the maximum size is kept.
    #[test]
    fn truncated_datagrams_are_dropped() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; RECV_BUF];
        let mut big = full_ack();
        big.resize(1600, 0);
        tx.send_to(&big, rx.local_addr().unwrap()).unwrap();
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(complete_datagram(&buf, n), None, "1600 bytes read as {n}");
        big.truncate(1500);
        tx.send_to(&big, rx.local_addr().unwrap()).unwrap();
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(complete_datagram(&buf, n).map(<[u8]>::len), Some(1500));
    }

    #[test]
    fn netmask_prefixes() {
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 255, 254, 0)), Some(23));
        assert_eq!(mask_to_prefix(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(mask_to_prefix(Ipv4Addr::new(0, 0, 0, 1)), None);
    }
}
