//! DHCPv4 client (RFC 2131): packet encoding and decoding (pure, unit tested) and the
//! DISCOVER → OFFER → REQUEST → ACK exchange over a UDP socket bound to the interface.
//!
//! The socket is bound to 0.0.0.0:68 with `SO_BINDTODEVICE`, and requests carry the BOOTP
//! broadcast flag, so the server broadcasts its replies and they arrive before the interface has
//! an address.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
    for flags in [0x0004, libc::GRND_NONBLOCK] {
        // SAFETY: `b` is a valid writable buffer of 4 bytes.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), flags) };
        if n == 4 {
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
    p.extend_from_slice(&[OPT_MAX_SIZE, 2, 0x05, 0xdc]); // 1500
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
    pub(crate) message: Option<String>,
}

fn ipv4_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    let o: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(o))
}

fn addr_list(data: &[u8]) -> Result<Vec<Ipv4Addr>, &'static str> {
    if data.is_empty() || !data.len().is_multiple_of(4) {
        return Err("address list option length is not a multiple of 4");
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
        .collect())
}

fn one_addr(data: &[u8]) -> Result<Ipv4Addr, &'static str> {
    <[u8; 4]>::try_from(data)
        .map(Ipv4Addr::from)
        .map_err(|_| "address option is not 4 bytes")
}

/// Decode a BOOTREPLY. Unknown options are skipped; malformed known ones are errors.
pub(crate) fn parse(buf: &[u8]) -> Result<Reply, &'static str> {
    if buf.len() < FIXED_LEN + 4 {
        return Err("packet shorter than a BOOTP header");
    }
    if buf[0] != BOOTREPLY {
        return Err("not a BOOTREPLY");
    }
    if buf[1] != HTYPE_ETHER || buf[2] != 6 {
        return Err("not an Ethernet reply");
    }
    if buf[FIXED_LEN..FIXED_LEN + 4] != MAGIC {
        return Err("no DHCP magic cookie");
    }
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&buf[28..34]);
    let mut r = Reply {
        kind: None,
        xid: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        chaddr,
        yiaddr: ipv4_at(buf, 16).unwrap_or(Ipv4Addr::UNSPECIFIED),
        subnet: None,
        routers: Vec::new(),
        dns: Vec::new(),
        lease_secs: None,
        server_id: None,
        message: None,
    };
    let mut opts = &buf[FIXED_LEN + 4..];
    // A missing END option is tolerated, as most clients do.
    while let Some((&code, rest)) = opts.split_first() {
        if code == OPT_END {
            break;
        }
        if code == OPT_PAD {
            opts = rest;
            continue;
        }
        let (&len, rest) = rest.split_first().ok_or("option without length")?;
        let data = rest
            .get(..usize::from(len))
            .ok_or("option runs past the end of the packet")?;
        opts = &rest[usize::from(len)..];
        match code {
            OPT_MSG_TYPE => {
                let [t] = data else {
                    return Err("message type option is not 1 byte");
                };
                r.kind = MsgType::from_u8(*t);
            }
            OPT_SUBNET => r.subnet = Some(one_addr(data)?),
            OPT_ROUTER => r.routers = addr_list(data)?,
            OPT_DNS => r.dns = addr_list(data)?,
            OPT_SERVER_ID => r.server_id = Some(one_addr(data)?),
            OPT_LEASE_TIME => {
                let b: [u8; 4] = data
                    .try_into()
                    .map_err(|_| "lease time option is not 4 bytes")?;
                r.lease_secs = Some(u32::from_be_bytes(b));
            }
            OPT_MESSAGE => r.message = Some(String::from_utf8_lossy(data).into_owned()),
            // Options in sname/file (overload) are not read; say so rather than misconfigure.
            OPT_OVERLOAD => {}
            _ => {}
        }
    }
    if r.kind.is_none() {
        return Err("no (known) DHCP message type");
    }
    Ok(r)
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

impl Reply {
    /// The lease an ACK grants.
    pub(crate) fn to_lease(&self, server: Ipv4Addr) -> Result<Lease, String> {
        let a = self.yiaddr;
        if a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback() {
            return Err(format!("server offered an unusable address {a}"));
        }
        let prefix = match self.subnet {
            Some(m) => mask_to_prefix(m).ok_or_else(|| format!("non-contiguous netmask {m}"))?,
            None => classful_prefix(a),
        };
        Ok(Lease {
            address: a,
            prefix,
            router: self.routers.iter().copied().find(|r| !r.is_unspecified()),
            dns: self.dns.clone(),
            lease_secs: self.lease_secs.unwrap_or(0),
            server: self.server_id.unwrap_or(server),
        })
    }
}

/// UDP socket on 0.0.0.0:68 bound to one device.
fn client_socket(iface: &str) -> io::Result<UdpSocket> {
    // SAFETY: plain socket(2) call with constant arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let one: libc::c_int = 1;
    for opt in [libc::SO_REUSEADDR, libc::SO_BROADCAST] {
        // SAFETY: `one` is a valid c_int that outlives the call and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let name = iface.as_bytes();
    // SAFETY: `name` is a valid buffer of the given length (the kernel copies at most IFNAMSIZ).
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let sock = UdpSocket::from(fd);
    // std's bind needs a fresh socket, so bind through libc to keep the options above.
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 68u16.to_be(),
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    };
    // SAFETY: `sa` is a valid sockaddr_in and its size is passed.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&raw const sa).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sock)
}

/// Retransmission interval: 1 s, doubling up to 4 s (a reply lost while the link settles
/// costs one second, not a whole try).
const FIRST_RESEND: Duration = Duration::from_secs(1);
const MAX_RESEND: Duration = Duration::from_secs(4);

/// Send `pkt` (resending after 1, 2, 4, 4 ... s) until a matching reply arrives or `deadline` passes.
fn exchange(
    sock: &UdpSocket,
    pkt: &[u8],
    xid: u32,
    mac: [u8; 6],
    deadline: Instant,
    accept: &dyn Fn(&Reply) -> bool,
) -> io::Result<Option<(Reply, Ipv4Addr)>> {
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, 67);
    let mut next_send = Instant::now();
    let mut interval = FIRST_RESEND;
    let mut buf = [0u8; 1500];
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
        let Ok(reply) = parse(&buf[..n]) else {
            log::debug!("dhcp: ignoring a malformed packet from {from}");
            continue;
        };
        if reply.xid != xid || reply.chaddr != mac || !accept(&reply) {
            continue;
        }
        let server = match from {
            std::net::SocketAddr::V4(a) => *a.ip(),
            std::net::SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        return Ok(Some((reply, server)));
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
        let is_offer = |r: &Reply| r.kind == Some(MsgType::Offer) && !r.yiaddr.is_unspecified();
        let offer = match exchange(&sock, &discover, xid, mac, deadline, &is_offer) {
            Ok(Some(o)) => o,
            Ok(None) => {
                last = format!("no DHCPOFFER within {:?}", cfg.per_try);
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
        let is_answer = |r: &Reply| {
            matches!(r.kind, Some(MsgType::Ack | MsgType::Nak))
                && r.server_id.is_none_or(|s| s == server)
        };
        match exchange(&sock, &request, xid, mac, deadline, &is_answer) {
            Ok(Some((r, from))) if r.kind == Some(MsgType::Ack) => match r.to_lease(from) {
                Ok(lease) => return Ok(lease),
                Err(e) => last = e,
            },
            Ok(Some((r, _))) => {
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
        assert!(parse(&reply(5, 1, &[&[1, 3, 255, 255, 255]])).is_err());
        assert!(parse(&reply(5, 1, &[&[3, 5, 1, 2, 3, 4, 5]])).is_err());
        assert!(parse(&reply(5, 1, &[&[51, 2, 0, 1]])).is_err());
        assert!(parse(&reply(5, 1, &[&[6, 0]])).is_err());
        assert!(parse(&reply(5, 1, &[&[6, 200, 1]])).is_err());
        assert!(parse(&reply(77, 1, &[])).is_err());
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
