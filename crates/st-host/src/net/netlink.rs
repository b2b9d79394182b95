//! A small hand-written rtnetlink client: just the messages stboot needs (link dump, link up/down,
//! addresses, default routes, bond creation and enslaving).
//!
//! Messages are built into a byte vector with [`Msg`] and replies are parsed with
//! [`parse_messages`] / [`Attrs`]; both are pure and unit tested. [`Socket`] does the I/O.

use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

// Netlink header and message types (linux/netlink.h, linux/rtnetlink.h).
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const RTM_NEWLINK: u16 = 16;
pub(crate) const RTM_DELLINK: u16 = 17;
pub(crate) const RTM_GETLINK: u16 = 18;
pub(crate) const RTM_NEWADDR: u16 = 20;
pub(crate) const RTM_DELADDR: u16 = 21;
pub(crate) const RTM_NEWROUTE: u16 = 24;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_REPLACE: u16 = 0x100;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
// In NLMSG_ERROR replies.
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;

const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

// Link attributes.
pub(crate) const IFLA_ADDRESS: u16 = 1;
pub(crate) const IFLA_IFNAME: u16 = 3;
pub(crate) const IFLA_MASTER: u16 = 10;
pub(crate) const IFLA_LINKINFO: u16 = 18;
pub(crate) const IFLA_INFO_KIND: u16 = 1;
pub(crate) const IFLA_INFO_DATA: u16 = 2;
pub(crate) const IFLA_BOND_MODE: u16 = 1;
pub(crate) const IFLA_BOND_MIIMON: u16 = 3;
pub(crate) const IFLA_BOND_AD_LACP_RATE: u16 = 21;

// Address attributes and flags.
pub(crate) const IFA_ADDRESS: u16 = 1;
pub(crate) const IFA_LOCAL: u16 = 2;
pub(crate) const IFA_F_NODAD: u8 = 0x02;

// Route attributes and values.
pub(crate) const RTA_OIF: u16 = 4;
pub(crate) const RTA_GATEWAY: u16 = 5;
pub(crate) const RT_TABLE_MAIN: u8 = 254;
pub(crate) const RTPROT_BOOT: u8 = 3;
pub(crate) const RT_SCOPE_UNIVERSE: u8 = 0;
pub(crate) const RTN_UNICAST: u8 = 1;

pub(crate) const IFF_UP: u32 = 0x1;
pub(crate) const IFF_LOOPBACK: u32 = 0x8;

const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}

fn addr_bytes(addr: &IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A netlink request under construction: header, fixed family header, attributes.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    /// A message of type `ty` with `flags` (NLM_F_REQUEST is always added).
    pub(crate) fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set by finish
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: 0, the kernel fills it
        Self { buf }
    }

    /// Append raw bytes (a fixed family header), padded to 4 bytes.
    pub(crate) fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Append an attribute.
    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// Append a NUL-terminated string attribute.
    pub(crate) fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v)
    }

    /// Start a nested attribute; close it with [`Msg::nest_end`].
    pub(crate) fn nest_begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Close the nested attribute started at `at`.
    pub(crate) fn nest_end(&mut self, at: usize) -> &mut Self {
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        if let Some(slot) = self.buf.get_mut(at..at + 2) {
            slot.copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The finished bytes with length and sequence number filled in.
    pub(crate) fn finish(&self, seq: u32) -> Vec<u8> {
        let mut out = self.buf.clone();
        let len = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out[0..4].copy_from_slice(&len.to_ne_bytes());
        out[8..12].copy_from_slice(&seq.to_ne_bytes());
        out
    }
}

/// `struct ifinfomsg`.
pub(crate) fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0] = AF_UNSPEC;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// RTM_GETLINK dump request.
pub(crate) fn get_links() -> Msg {
    let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
    m.put(&ifinfomsg(0, 0, 0));
    m
}

/// Set IFF_UP on or off.
pub(crate) fn set_link_flags(index: u32, up: bool) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
    m.put(&ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP));
    m
}

/// Add (or with `delete`, remove) an address.
pub(crate) fn addr_msg(index: u32, addr: IpAddr, prefix: u8, delete: bool) -> Msg {
    let (ty, flags) = if delete {
        (RTM_DELADDR, NLM_F_ACK)
    } else {
        (RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
    };
    let mut m = Msg::new(ty, flags);
    let mut ifa = [0u8; 8];
    ifa[0] = family(addr);
    ifa[1] = prefix;
    // IPv6: skip duplicate address detection so the address is usable at once (stboot fetches
    // right after configuring; a tentative address cannot be a source address).
    ifa[2] = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
    ifa[3] = RT_SCOPE_UNIVERSE;
    ifa[4..8].copy_from_slice(&index.to_ne_bytes());
    m.put(&ifa);
    let bytes = addr_bytes(&addr);
    m.attr(IFA_LOCAL, &bytes);
    m.attr(IFA_ADDRESS, &bytes);
    m
}

/// Default route via `gateway` out of interface `index` (replaces an existing default route).
pub(crate) fn default_route(index: u32, gateway: IpAddr) -> Msg {
    let mut m = Msg::new(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
    let rtm = [
        family(gateway),
        0, // dst_len: default route
        0, // src_len
        0, // tos
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
        0,
        0,
        0, // rtm_flags (u32)
    ];
    m.put(&rtm);
    m.attr(RTA_GATEWAY, &addr_bytes(&gateway));
    m.attr(RTA_OIF, &index.to_ne_bytes());
    m
}

/// Delete the link called `name`.
pub(crate) fn del_link(name: &str) -> Msg {
    let mut m = Msg::new(RTM_DELLINK, NLM_F_ACK);
    m.put(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    m
}

/// Create a bond `name` in kernel mode number `mode`, miimon 100, LACP rate fast if asked.
pub(crate) fn new_bond(name: &str, mode: u8, lacp_fast: bool) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
    m.put(&ifinfomsg(0, 0, 0));
    m.attr_str(IFLA_IFNAME, name);
    let info = m.nest_begin(IFLA_LINKINFO);
    m.attr(IFLA_INFO_KIND, b"bond");
    let data = m.nest_begin(IFLA_INFO_DATA);
    m.attr(IFLA_BOND_MODE, &[mode]);
    m.attr(IFLA_BOND_MIIMON, &100u32.to_ne_bytes());
    if lacp_fast {
        m.attr(IFLA_BOND_AD_LACP_RATE, &[1]);
    }
    m.nest_end(data);
    m.nest_end(info);
    m
}

/// Make link `index` a slave of `master`.
pub(crate) fn set_master(index: u32, master: u32) -> Msg {
    let mut m = Msg::new(RTM_NEWLINK, NLM_F_ACK);
    m.put(&ifinfomsg(index, 0, 0));
    m.attr(IFLA_MASTER, &master.to_ne_bytes());
    m
}

/// A malformed kernel reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed(pub(crate) &'static str);

/// One message of a reply: type, flags, sequence number and payload (after the header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Split a datagram into netlink messages.
pub(crate) fn parse_messages(buf: &[u8]) -> Result<Vec<Reply<'_>>, Malformed> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let len = u32_at(rest, 0).ok_or(Malformed("truncated netlink header"))? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return Err(Malformed("bad netlink message length"));
        }
        let ty = u16_at(rest, 4).ok_or(Malformed("truncated netlink header"))?;
        let flags = u16_at(rest, 6).ok_or(Malformed("truncated netlink header"))?;
        let seq = u32_at(rest, 8).ok_or(Malformed("truncated netlink header"))?;
        out.push(Reply {
            ty,
            flags,
            seq,
            payload: &rest[NLMSG_HDRLEN..len],
        });
        rest = rest.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// Iterator over the attributes in a buffer; yields an error once and stops on malformed input.
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), Malformed>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            // Trailing bytes shorter than an attribute header are padding at most.
            return None;
        }
        let len = usize::from(u16_at(self.rest, 0)?);
        let ty = u16_at(self.rest, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(Malformed("bad attribute length")));
        }
        let data = &self.rest[4..len];
        self.rest = self.rest.get(align4(len)..).unwrap_or(&[]);
        Some(Ok((ty, data)))
    }
}

/// A link from a RTM_NEWLINK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkMsg {
    pub(crate) index: u32,
    pub(crate) flags: u32,
    pub(crate) name: String,
    pub(crate) mac: Option<[u8; 6]>,
}

/// Parse the payload of a RTM_NEWLINK message.
pub(crate) fn parse_link(payload: &[u8]) -> Result<LinkMsg, Malformed> {
    let index = u32_at(payload, 4).ok_or(Malformed("truncated ifinfomsg"))?;
    let flags = u32_at(payload, 8).ok_or(Malformed("truncated ifinfomsg"))?;
    let mut name = None;
    let mut mac = None;
    for a in Attrs::new(payload.get(16..).unwrap_or(&[])) {
        let (ty, data) = a?;
        match ty {
            IFLA_IFNAME => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            IFLA_ADDRESS => mac = <[u8; 6]>::try_from(data).ok(),
            _ => {}
        }
    }
    let name = name.ok_or(Malformed("link without a name"))?;
    Ok(LinkMsg {
        index,
        flags,
        name,
        mac,
    })
}

/// The error carried by a NLMSG_ERROR reply: errno (0 = acknowledgement) and the kernel's
/// extended message, if any.
pub(crate) fn parse_error(flags: u16, payload: &[u8]) -> Result<(i32, Option<String>), Malformed> {
    let code = u32_at(payload, 0).ok_or(Malformed("truncated error message"))? as i32;
    let errno = code.checked_neg().unwrap_or(i32::MAX);
    if flags & NLM_F_ACK_TLVS == 0 {
        return Ok((errno, None));
    }
    // The original request's header (all of it when not capped) follows the error code.
    let orig_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32_at(payload, 4).ok_or(Malformed("truncated error message"))? as usize
    };
    let tlvs = payload.get(4 + align4(orig_len)..).unwrap_or(&[]);
    let mut msg = None;
    for a in Attrs::new(tlvs) {
        let Ok((ty, data)) = a else { break };
        if ty == NLMSGERR_ATTR_MSG {
            let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            let s = String::from_utf8_lossy(&data[..end]).into_owned();
            if !s.is_empty() {
                msg = Some(s);
            }
        }
    }
    Ok((errno, msg))
}

/// A failed request: the OS error and the kernel's explanation, if it gave one.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: io::Error,
    pub(crate) detail: Option<String>,
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Self {
            error,
            detail: None,
        }
    }
}

impl From<Malformed> for Failure {
    fn from(m: Malformed) -> Self {
        Self {
            error: io::Error::new(io::ErrorKind::InvalidData, m.0),
            detail: None,
        }
    }
}

/// A NETLINK_ROUTE socket.
pub(crate) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
const RECV_BUF: usize = 64 * 1024;

impl Socket {
    /// Open and bind a rtnetlink socket with a receive timeout.
    pub(crate) fn open() -> io::Result<Self> {
        // Protocol `None` is NETLINK_ROUTE (0).
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        // Best effort: older kernels lack these; errors are then reported without detail.
        let one = 1 as libc::c_int;
        let _ = super::setsockopt(&fd, SOL_NETLINK, NETLINK_EXT_ACK, &one.to_ne_bytes());
        let _ = super::setsockopt(&fd, SOL_NETLINK, NETLINK_CAP_ACK, &one.to_ne_bytes());
        sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(Duration::from_secs(10)))?;
        // Port id 0: the kernel assigns one.
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        let seq = crate::net::dhcp::random_u32();
        Ok(Self { fd, seq })
    }

    fn send(&mut self, msg: &Msg) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = msg.finish(self.seq);
        rustix::net::send(&self.fd, &bytes, SendFlags::empty())?;
        Ok(self.seq)
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // With MSG_TRUNC the second number is the datagram's full length.
            let (n, full) = match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok(r) => r,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no reply from the kernel (netlink)",
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            if full > n {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink reply truncated",
                ));
            }
            return Ok(n);
        }
    }

    /// Send a request and wait for its acknowledgement.
    pub(crate) fn request(&mut self, msg: &Msg) -> Result<(), Failure> {
        let seq = self.send(msg)?;
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = self.recv(&mut buf)?;
            for m in parse_messages(&buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                if m.ty == NLMSG_ERROR {
                    let (errno, detail) = parse_error(m.flags, m.payload)?;
                    if errno == 0 {
                        return Ok(());
                    }
                    return Err(Failure {
                        error: io::Error::from_raw_os_error(errno),
                        detail,
                    });
                }
            }
        }
    }

    /// Send a dump request and collect the payloads of messages of type `want`.
    pub(crate) fn dump(&mut self, msg: &Msg, want: u16) -> Result<Vec<Vec<u8>>, Failure> {
        let seq = self.send(msg)?;
        let mut buf = vec![0u8; RECV_BUF];
        let mut out = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            for m in parse_messages(&buf[..n])? {
                if m.seq != seq {
                    continue;
                }
                match m.ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let (errno, detail) = parse_error(m.flags, m.payload)?;
                        if errno == 0 {
                            return Ok(out);
                        }
                        return Err(Failure {
                            error: io::Error::from_raw_os_error(errno),
                            detail,
                        });
                    }
                    t if t == want => out.push(m.payload.to_vec()),
                    _ => {}
                }
                if m.flags & NLM_F_MULTI == 0 {
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hdr(len: u32, ty: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v
    }

    #[test]
    fn add_ipv4_address_bytes() {
        let m = addr_msg(3, "10.0.2.15".parse().unwrap(), 24, false).finish(7);
        let mut want = hdr(40, RTM_NEWADDR, 0x605, 7);
        want.extend_from_slice(&[2, 24, 0, 0]);
        want.extend_from_slice(&3u32.to_ne_bytes());
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&IFA_LOCAL.to_ne_bytes());
        want.extend_from_slice(&[10, 0, 2, 15]);
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&IFA_ADDRESS.to_ne_bytes());
        want.extend_from_slice(&[10, 0, 2, 15]);
        assert_eq!(m, want);
    }

    #[test]
    fn add_ipv6_address_has_nodad() {
        let m = addr_msg(2, "2001:db8::5".parse().unwrap(), 64, false).finish(1);
        assert_eq!(m.len(), 16 + 8 + 20 + 20);
        assert_eq!(&m[16..20], &[10, 64, IFA_F_NODAD, 0]);
        let del = addr_msg(2, "2001:db8::5".parse().unwrap(), 64, true).finish(1);
        assert_eq!(u16_at(&del, 4), Some(RTM_DELADDR));
        assert_eq!(u16_at(&del, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
    }

    #[test]
    fn default_route_bytes() {
        let m = default_route(4, "10.0.2.2".parse().unwrap()).finish(9);
        assert_eq!(m.len(), 16 + 12 + 8 + 8);
        assert_eq!(u16_at(&m, 6), Some(0x505));
        assert_eq!(&m[16..24], &[2, 0, 0, 0, 254, 3, 0, 1]);
        let attrs: Vec<_> = Attrs::new(&m[28..]).map(|a| a.unwrap()).collect();
        assert_eq!(attrs[0], (RTA_GATEWAY, &[10u8, 0, 2, 2][..]));
        assert_eq!(attrs[1], (RTA_OIF, &4u32.to_ne_bytes()[..]));
        let m6 = default_route(4, "fe80::1".parse().unwrap()).finish(9);
        assert_eq!(m6[16], AF_INET6);
        assert_eq!(m6.len(), 16 + 12 + 20 + 8);
    }

    #[test]
    fn bond_message_nesting() {
        let m = new_bond("bond0", 4, true).finish(1);
        let attrs: Vec<_> = Attrs::new(&m[32..]).map(|a| a.unwrap()).collect();
        assert_eq!(attrs[0], (IFLA_IFNAME, &b"bond0\0"[..]));
        assert_eq!(attrs[1].0, IFLA_LINKINFO);
        let info: Vec<_> = Attrs::new(attrs[1].1).map(|a| a.unwrap()).collect();
        assert_eq!(info[0], (IFLA_INFO_KIND, &b"bond"[..]));
        assert_eq!(info[1].0, IFLA_INFO_DATA);
        let data: Vec<_> = Attrs::new(info[1].1).map(|a| a.unwrap()).collect();
        assert_eq!(
            data,
            vec![
                (IFLA_BOND_MODE, &[4u8][..]),
                (IFLA_BOND_MIIMON, &100u32.to_ne_bytes()[..]),
                (IFLA_BOND_AD_LACP_RATE, &[1u8][..]),
            ]
        );
        let m = new_bond("bond0", 1, false).finish(1);
        let n = Attrs::new(&m[32..]).count();
        assert_eq!(n, 2);
        assert_eq!(m.len() % 4, 0);
    }

    /// Byte for byte what iproute2 sends for
    /// `ip link add bond0 type bond mode 802.3ad miimon 100 lacp_rate fast` (captured with
    /// strace on x86_64), except that we mark nested attributes with NLA_F_NESTED.
    #[test]
    #[cfg(target_endian = "little")]
    fn bond_message_matches_iproute2() {
        let iproute2: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg
            0x0a, 0, 0x03, 0, b'b', b'o', b'n', b'd', b'0', 0, 0, 0, // IFLA_IFNAME
            0x28, 0, 0x12, 0, // IFLA_LINKINFO
            0x08, 0, 0x01, 0, b'b', b'o', b'n', b'd', // IFLA_INFO_KIND
            0x1c, 0, 0x02, 0, // IFLA_INFO_DATA
            0x05, 0, 0x01, 0, 0x04, 0, 0, 0, // IFLA_BOND_MODE 802.3ad
            0x08, 0, 0x03, 0, 0x64, 0, 0, 0, // IFLA_BOND_MIIMON 100
            0x05, 0, 0x15, 0, 0x01, 0, 0, 0, // IFLA_BOND_AD_LACP_RATE fast
        ];
        let mut ours = new_bond("bond0", 4, true).finish(1);
        assert_eq!(u16_at(&ours, 4), Some(RTM_NEWLINK));
        assert_eq!(u16_at(&ours, 6), Some(0x605));
        assert_eq!(ours.len(), 84);
        // Clear NLA_F_NESTED on IFLA_LINKINFO and IFLA_INFO_DATA.
        ours[16 + 28 + 3] &= 0x7f;
        ours[16 + 40 + 3] &= 0x7f;
        assert_eq!(&ours[16..], iproute2);
    }

    #[test]
    fn link_up_down() {
        let up = set_link_flags(5, true).finish(1);
        assert_eq!(up[16..], ifinfomsg(5, IFF_UP, IFF_UP));
        let down = set_link_flags(5, false).finish(1);
        assert_eq!(down[16..], ifinfomsg(5, 0, IFF_UP));
        let sm = set_master(5, 9).finish(1);
        assert_eq!(&sm[36..40], &9u32.to_ne_bytes());
    }

    #[test]
    fn parse_link_message() {
        let mut p = ifinfomsg(2, 0x1003, 0).to_vec();
        let mut m = Msg { buf: Vec::new() };
        m.attr_str(IFLA_IFNAME, "eth0");
        m.attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        m.attr(99, &[1, 2, 3]);
        p.extend_from_slice(&m.buf);
        let l = parse_link(&p).unwrap();
        assert_eq!(l.index, 2);
        assert_eq!(l.name, "eth0");
        assert_eq!(l.mac, Some([2, 0, 0, 0, 0, 1]));
        assert!(parse_link(&p[..10]).is_err());
        assert!(parse_link(&ifinfomsg(1, 0, 0)).is_err()); // no name
    }

    #[test]
    fn parse_errors_with_ext_ack() {
        // errno -17 (EEXIST), capped original header, one MSG attribute.
        let mut p = (-17i32).to_ne_bytes().to_vec();
        p.extend_from_slice(&hdr(40, RTM_NEWADDR, 0, 1));
        let mut m = Msg { buf: Vec::new() };
        m.attr_str(NLMSGERR_ATTR_MSG, "File exists detail");
        p.extend_from_slice(&m.buf);
        let (e, msg) = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).unwrap();
        assert_eq!(e, 17);
        assert_eq!(msg.as_deref(), Some("File exists detail"));
        let (e, msg) = parse_error(0, &0i32.to_ne_bytes()).unwrap();
        assert_eq!((e, msg), (0, None));
        assert!(parse_error(0, &[1, 2]).is_err());
        // i32::MIN must not overflow.
        assert!(parse_error(0, &i32::MIN.to_ne_bytes()).is_ok());
    }

    #[test]
    fn parse_messages_rejects_bad_lengths() {
        let mut two = hdr(20, 16, 2, 1);
        two.extend_from_slice(&[1, 2, 3, 4]);
        two.extend_from_slice(&hdr(16, NLMSG_DONE, 2, 1));
        let ms = parse_messages(&two).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].payload, &[1, 2, 3, 4]);
        assert_eq!(ms[1].ty, NLMSG_DONE);
        assert!(parse_messages(&hdr(15, 3, 0, 0)).is_err());
        assert!(parse_messages(&hdr(17, 3, 0, 0)).is_err());
        assert!(parse_messages(&[1, 0, 0]).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..2000usize {
            let buf: Vec<u8> = (0..len % 200)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = parse_messages(&buf);
            let _ = parse_link(&buf);
            let _ = parse_error(0x300, &buf);
            let _ = Attrs::new(&buf).count();
        }
    }
}
