//! Network setup: links, addresses and routes over rtnetlink, DHCPv4, bonding, resolv.conf, and
//! [`configure`], which runs the whole setup for a host config as stboot does (st-reference §5.3).
//!
//! Everything is hand-written on top of `rustix`'s socket calls (no netlink or DHCP crates) to
//! keep the static stboot binary small.

mod dhcp;
mod netlink;
mod plan;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use st_format::host_config::{BondingMode, HostConfig};

use netlink::{Failure, Socket};
pub use plan::{Addressing, BondPlan, DnsPlan, DnsServers, MAX_DNS_SERVERS, NetPlan, plan};

/// A network failure. Messages name the interface and the operation, e.g.
/// `eth0: adding 10.0.2.15/24: Operation not permitted`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A kernel operation on an interface failed.
    #[error("{iface}: {op}: {}{}", describe(.source), detail_suffix(.detail))]
    Op {
        /// The interface (or bond) name.
        iface: String,
        /// What was being done, e.g. `adding 10.0.2.15/24`.
        op: String,
        /// The OS error.
        source: io::Error,
        /// The kernel's extended error message, if it sent one.
        detail: Option<String>,
    },
    /// No link has that name.
    #[error("{0}: no such network interface")]
    NoSuchInterface(String),
    /// The DHCP exchange failed.
    #[error("{iface}: DHCP: {reason}")]
    Dhcp {
        /// The interface.
        iface: String,
        /// Why, e.g. `no lease after 4 tries: no DHCPOFFER within 6s`.
        reason: String,
    },
    /// Writing resolv.conf failed.
    #[error("writing {}: {}", .path.display(), describe(.source))]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The host config cannot be applied as written (e.g. a bond member that does not exist).
    #[error("{0}")]
    Config(String),
    /// There was no interface to try.
    #[error("no network interface to configure")]
    NoInterfaces,
    /// Every candidate interface failed; one line per interface with the reason.
    #[error("network setup failed on every interface: {}", .attempts.join("; "))]
    AllFailed {
        /// One line per interface tried.
        attempts: Vec<String>,
    },
}

/// An OS error without std's ` (os error N)` suffix.
fn describe(e: &io::Error) -> String {
    let s = e.to_string();
    match (e.raw_os_error(), s.rfind(" (os error ")) {
        (Some(_), Some(at)) => s[..at].to_owned(),
        _ => s,
    }
}

fn detail_suffix(d: &Option<String>) -> String {
    d.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
}

fn op_err(iface: &str, op: impl Into<String>, f: Failure) -> NetError {
    NetError::Op {
        iface: iface.to_owned(),
        op: op.into(),
        source: f.error,
        detail: f.detail,
    }
}

fn socket(iface: &str) -> Result<Socket, NetError> {
    Socket::open().map_err(|e| op_err(iface, "opening a netlink socket", e.into()))
}

/// A network link (interface).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Ethernet MAC address, if the link has a 6-byte hardware address.
    pub mac: Option<[u8; 6]>,
}

/// All links except loopback, sorted by index.
pub fn links() -> Result<Vec<Link>, NetError> {
    let mut sock = socket("links")?;
    let payloads = sock
        .dump(&netlink::get_links(), netlink::RTM_NEWLINK)
        .map_err(|f| op_err("links", "listing interfaces", f))?;
    let mut out = Vec::new();
    for p in payloads {
        match netlink::parse_link(&p) {
            Ok(l) if l.flags & netlink::IFF_LOOPBACK == 0 => out.push(Link {
                name: l.name,
                index: l.index,
                mac: l.mac,
            }),
            Ok(_) => {}
            Err(m) => log::warn!("ignoring a malformed link message: {}", m.0),
        }
    }
    out.sort_by_key(|l| l.index);
    Ok(out)
}

/// The index of interface `name` (`SIOCGIFINDEX` on a throwaway socket, as `if_nametoindex`
/// does).
fn index_of(name: &str) -> Result<u32, NetError> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let no_such = || NetError::NoSuchInterface(name.to_owned());
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::DGRAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| NetError::Op {
        iface: name.to_owned(),
        op: "opening a socket".to_owned(),
        source: e.into(),
        detail: None,
    })?;
    match rustix::net::netdevice::name_to_index(&sock, name) {
        Ok(0) | Err(_) => Err(no_such()),
        Ok(idx) => Ok(idx),
    }
}

/// `setsockopt(2)` with a value given as its bytes, for the options rustix has no typed
/// function for (`SO_BINDTODEVICE`, `NETLINK_EXT_ACK`, `NETLINK_CAP_ACK`).
pub(crate) fn setsockopt(
    fd: &std::os::fd::OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: &[u8],
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::socklen_t::try_from(value.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `value` is a readable buffer of `len` bytes that outlives the call; the kernel
    // copies at most `len` bytes and keeps no pointer. The fd is open (borrowed from `fd`).
    let r = unsafe { libc::setsockopt(fd.as_raw_fd(), level, opt, value.as_ptr().cast(), len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Set the link administratively up.
pub fn set_link_up(name: &str) -> Result<(), NetError> {
    let idx = index_of(name)?;
    socket(name)?
        .request(&netlink::set_link_flags(idx, true))
        .map_err(|f| op_err(name, "setting link up", f))
}

fn carrier(name: &str) -> bool {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return false;
    }
    // Reading fails with EINVAL while the link is down: no carrier.
    std::fs::read_to_string(Path::new("/sys/class/net").join(name).join("carrier"))
        .is_ok_and(|s| s.trim() == "1")
}

/// Wait until `/sys/class/net/<name>/carrier` reads 1; false after `timeout`.
pub fn wait_for_carrier(name: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if carrier(name) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_prefix(name: &str, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(NetError::Op {
            iface: name.to_owned(),
            op: format!("adding {addr}/{prefix}"),
            source: io::Error::new(io::ErrorKind::InvalidInput, "prefix length too long"),
            detail: None,
        });
    }
    Ok(())
}

/// Add `addr/prefix` to the link (IPv4 or IPv6; IPv6 without duplicate address detection).
/// An address that is already there counts as success.
pub fn add_address(name: &str, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
    check_prefix(name, addr, prefix)?;
    let idx = index_of(name)?;
    match socket(name)?.request(&netlink::addr_msg(idx, addr, prefix, false)) {
        Ok(()) => Ok(()),
        Err(f) if f.error.raw_os_error() == Some(libc::EEXIST) => {
            log::info!("{name}: {addr}/{prefix} is already configured");
            Ok(())
        }
        Err(f) => Err(op_err(name, format!("adding {addr}/{prefix}"), f)),
    }
}

/// Remove `addr/prefix` from the link.
pub fn del_address(name: &str, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
    check_prefix(name, addr, prefix)?;
    let idx = index_of(name)?;
    socket(name)?
        .request(&netlink::addr_msg(idx, addr, prefix, true))
        .map_err(|f| op_err(name, format!("removing {addr}/{prefix}"), f))
}

/// Add (or replace) the default route via `gateway` out of `dev`.
pub fn add_default_route(gateway: IpAddr, dev: &str) -> Result<(), NetError> {
    let idx = index_of(dev)?;
    socket(dev)?
        .request(&netlink::default_route(idx, gateway))
        .map_err(|f| op_err(dev, format!("adding default route via {gateway}"), f))
}

fn bond_mode_number(mode: BondingMode) -> Option<u8> {
    Some(match mode.as_str() {
        "balance-rr" => 0,
        "active-backup" => 1,
        "balance-xor" => 2,
        "broadcast" => 3,
        "802.3ad" => 4,
        "balance-tlb" => 5,
        "balance-alb" => 6,
        _ => return None,
    })
}

/// Create bond `name` over `slaves`: delete an existing link of that name, create the bond
/// (miimon 100; LACP rate fast for 802.3ad), set each slave down and enslave it, set the bond
/// up. The `bonding` kernel module must be loaded (or built in).
pub fn create_bond(name: &str, mode: BondingMode, slaves: &[String]) -> Result<(), NetError> {
    let mode_no = bond_mode_number(mode)
        .ok_or_else(|| NetError::Config(format!("{name}: unsupported bonding mode {mode}")))?;
    if slaves.is_empty() {
        return Err(NetError::Config(format!("{name}: bond without interfaces")));
    }
    let slave_idx = slaves
        .iter()
        .map(|s| index_of(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sock = socket(name)?;
    match sock.request(&netlink::del_link(name)) {
        Ok(()) => log::info!("{name}: deleted the existing link"),
        Err(f) if f.error.raw_os_error() == Some(libc::ENODEV) => {}
        Err(f) => return Err(op_err(name, "deleting the existing link", f)),
    }
    let lacp_fast = mode_no == 4;
    sock.request(&netlink::new_bond(name, mode_no, lacp_fast))
        .map_err(|f| {
            let mut e = op_err(name, format!("creating bond (mode {mode})"), f);
            if let NetError::Op { detail, source, .. } = &mut e
                && source.raw_os_error() == Some(libc::EOPNOTSUPP)
            {
                let hint = "is the bonding kernel module loaded?";
                *detail = Some(match detail.take() {
                    Some(d) => format!("{d}; {hint}"),
                    None => hint.to_owned(),
                });
            }
            e
        })?;
    let bond_idx = index_of(name)?;
    for (slave, idx) in slaves.iter().zip(slave_idx) {
        sock.request(&netlink::set_link_flags(idx, false))
            .map_err(|f| op_err(slave, "setting link down", f))?;
        sock.request(&netlink::set_master(idx, bond_idx))
            .map_err(|f| op_err(slave, format!("enslaving to {name}"), f))?;
        log::info!("{name}: enslaved {slave}");
    }
    sock.request(&netlink::set_link_flags(bond_idx, true))
        .map_err(|f| op_err(name, "setting link up", f))
}

/// DHCP retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpConfig {
    /// Number of DISCOVER rounds (reference: 4).
    pub tries: u32,
    /// How long each round waits for the OFFER and for the ACK (reference: 6 s).
    pub per_try: Duration,
}

impl Default for DhcpConfig {
    fn default() -> Self {
        Self {
            tries: 4,
            per_try: Duration::from_secs(6),
        }
    }
}

/// A DHCPv4 lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address.
    pub address: Ipv4Addr,
    /// Its prefix length (from option 1, or the classful default without it, with a warning).
    pub prefix: u8,
    /// The first usable router (option 3).
    pub router: Option<Ipv4Addr>,
    /// DNS servers (option 6, all instances concatenated) as the server sent them;
    /// [`configure`] drops unusable ones and writes at most [`MAX_DNS_SERVERS`].
    pub dns: Vec<Ipv4Addr>,
    /// Lease time in seconds (option 51; 0 if absent).
    pub lease_secs: u32,
    /// The server (option 54, else the reply's source address).
    pub server: Ipv4Addr,
}

/// Get a DHCPv4 lease on `iface` (which must be up; it needs no address).
pub fn dhcp(iface: &str, cfg: &DhcpConfig) -> Result<Lease, NetError> {
    let link = links()?
        .into_iter()
        .find(|l| l.name == iface)
        .ok_or_else(|| NetError::NoSuchInterface(iface.to_owned()))?;
    let mac = link.mac.ok_or_else(|| NetError::Dhcp {
        iface: iface.to_owned(),
        reason: "the link has no Ethernet address".to_owned(),
    })?;
    dhcp::run(iface, mac, cfg).map_err(|reason| NetError::Dhcp {
        iface: iface.to_owned(),
        reason,
    })
}

/// Configure the lease's address and, if it names a router, the default route.
pub fn apply_lease(iface: &str, lease: &Lease) -> Result<(), NetError> {
    add_address(iface, IpAddr::V4(lease.address), lease.prefix)?;
    if let Some(r) = lease.router {
        add_default_route(IpAddr::V4(r), iface)?;
    }
    Ok(())
}

/// Write a resolv.conf with one `nameserver` line per entry (mode 0644).
pub fn write_resolv_conf(path: &Path, dns: &[IpAddr]) -> Result<(), NetError> {
    use std::os::unix::fs::PermissionsExt;
    let text: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    let err = |source| NetError::ResolvConf {
        path: path.to_owned(),
        source,
    };
    std::fs::write(path, text).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).map_err(err)
}

/// Settings for [`configure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetOptions {
    /// How long to wait for a carrier on each candidate (reference: 30 s).
    pub carrier_timeout: Duration,
    /// DHCP retries.
    pub dhcp: DhcpConfig,
    /// Where to write the DNS servers.
    pub resolv_conf: PathBuf,
}

impl Default for NetOptions {
    fn default() -> Self {
        Self {
            carrier_timeout: Duration::from_secs(30),
            dhcp: DhcpConfig::default(),
            resolv_conf: PathBuf::from("/etc/resolv.conf"),
        }
    }
}

/// What [`configure`] set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSummary {
    /// The interface that works.
    pub interface: String,
    /// Its address.
    pub address: IpAddr,
    /// The address's prefix length.
    pub prefix: u8,
    /// The default gateway, if any.
    pub gateway: Option<IpAddr>,
    /// DNS servers written to resolv.conf (empty: resolv.conf untouched).
    pub dns: Vec<IpAddr>,
    /// `"static"` or `"dhcp"`.
    pub mode: &'static str,
    /// One line per interface tried before this one, with why it failed.
    pub attempts: Vec<String>,
}

impl fmt::Display for NetSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "interface {}", self.interface)?;
        writeln!(f, "mode {}", self.mode)?;
        writeln!(f, "address {}/{}", self.address, self.prefix)?;
        match self.gateway {
            Some(g) => writeln!(f, "gateway {g}")?,
            None => writeln!(f, "gateway none")?,
        }
        for d in &self.dns {
            writeln!(f, "dns {d}")?;
        }
        for a in &self.attempts {
            writeln!(f, "failed {a}")?;
        }
        Ok(())
    }
}

struct Configured {
    address: IpAddr,
    prefix: u8,
    gateway: Option<IpAddr>,
    lease_dns: Vec<IpAddr>,
}

fn try_static(name: &str, addr: IpAddr, prefix: u8, gw: IpAddr) -> Result<Configured, NetError> {
    add_address(name, addr, prefix)?;
    if let Err(e) = add_default_route(gw, name) {
        let _ = del_address(name, addr, prefix);
        return Err(e);
    }
    Ok(Configured {
        address: addr,
        prefix,
        gateway: Some(gw),
        lease_dns: Vec::new(),
    })
}

fn try_dhcp(name: &str, cfg: &DhcpConfig) -> Result<Configured, NetError> {
    let lease = dhcp(name, cfg)?;
    log::info!(
        "{name}: DHCPACK: {}/{} router {} lease {}s from {}",
        lease.address,
        lease.prefix,
        lease
            .router
            .map_or_else(|| "none".to_owned(), |r| r.to_string()),
        lease.lease_secs,
        lease.server
    );
    if let Err(e) = apply_lease(name, &lease) {
        let _ = del_address(name, IpAddr::V4(lease.address), lease.prefix);
        return Err(e);
    }
    Ok(Configured {
        address: IpAddr::V4(lease.address),
        prefix: lease.prefix,
        gateway: lease.router.map(IpAddr::V4),
        lease_dns: lease.dns.iter().copied().map(IpAddr::V4).collect(),
    })
}

fn try_candidate(
    name: &str,
    addressing: &Addressing,
    opts: &NetOptions,
) -> Result<Configured, String> {
    set_link_up(name).map_err(|e| e.to_string())?;
    if !wait_for_carrier(name, opts.carrier_timeout) {
        return Err(format!(
            "{name}: no carrier within {}s",
            opts.carrier_timeout.as_secs_f32()
        ));
    }
    let r = match *addressing {
        Addressing::Static {
            address,
            prefix,
            gateway,
        } => try_static(name, address, prefix, gateway),
        Addressing::Dhcp => try_dhcp(name, &opts.dhcp),
    };
    r.map_err(|e| e.to_string())
}

/// Run the network setup for a host config, as stboot does: list the links, decide the
/// [`NetPlan`] ([`plan()`]: the bond if one is configured and only it, else the selected
/// interfaces in index order), log it as `network plan: ...`, and [`apply`] it.
pub fn configure(hc: &HostConfig, opts: &NetOptions) -> Result<NetSummary, NetError> {
    let plan = plan(hc, &links()?)?;
    log::info!("network plan: {plan}");
    apply(&plan, opts)
}

/// Carry out a [`NetPlan`]: bring up `lo`; build the bond, if any; try the interfaces in order,
/// the first that gets an address and a route wins; then write resolv.conf from the config's
/// `dns`, or from the lease's DNS servers (unusable ones dropped, at most [`MAX_DNS_SERVERS`]).
pub fn apply(plan: &NetPlan, opts: &NetOptions) -> Result<NetSummary, NetError> {
    if let Err(e) = set_link_up("lo") {
        log::warn!("{e}");
    }
    if plan.all_links_fallback {
        log::warn!("no interface matches network_interfaces; trying all interfaces");
    }
    if let Some(b) = &plan.bond {
        log::info!(
            "{}: creating bond, mode {}, members {}",
            b.name,
            b.mode,
            b.members.join(", ")
        );
        create_bond(&b.name, b.mode, &b.members)?;
    }
    if plan.interfaces.is_empty() {
        return Err(NetError::NoInterfaces);
    }
    let mode = plan.addressing.mode();
    let mut attempts = Vec::new();
    for name in &plan.interfaces {
        log::info!("{name}: trying {mode} configuration");
        let c = match try_candidate(name, &plan.addressing, opts) {
            Ok(c) => c,
            Err(reason) => {
                log::warn!("{reason}");
                attempts.push(reason);
                continue;
            }
        };
        log::info!(
            "{name}: configured {}/{}{}",
            c.address,
            c.prefix,
            c.gateway
                .map(|g| format!(", default route via {g}"))
                .unwrap_or_default()
        );
        let dns = match &plan.dns {
            DnsPlan::Configured(d) => {
                d.log("the host config");
                d.kept.clone()
            }
            DnsPlan::FromLease => {
                let d = plan::filter_dns(&c.lease_dns);
                d.log("the DHCP lease");
                d.kept
            }
            DnsPlan::Untouched => Vec::new(),
        };
        if !dns.is_empty() {
            write_resolv_conf(&opts.resolv_conf, &dns)?;
            log::info!(
                "wrote {} DNS server(s) to {}",
                dns.len(),
                opts.resolv_conf.display()
            );
        }
        return Ok(NetSummary {
            interface: name.clone(),
            address: c.address,
            prefix: c.prefix,
            gateway: c.gateway,
            dns,
            mode,
            attempts,
        });
    }
    Err(NetError::AllFailed { attempts })
}

/// Fuzz entry: a DHCP reply from the network (untrusted), parsed, judged as an answer to a
/// REQUEST, turned into a lease, and its DNS servers filtered for resolv.conf.
#[doc(hidden)]
pub fn fuzz_dhcp_reply(data: &[u8]) {
    let server = Ipv4Addr::new(10, 0, 2, 2);
    if let Ok(reply) = dhcp::parse(data) {
        let _ = dhcp::is_answer(&reply, server);
        let _ = reply.classful_note();
        if let Ok(lease) = reply.to_lease(server) {
            let dns: Vec<IpAddr> = lease.dns.iter().copied().map(IpAddr::V4).collect();
            let _ = plan::filter_dns(&dns).to_string();
        }
    }
}

/// Fuzz entry: kernel netlink replies, parsed as messages, links and errors.
#[doc(hidden)]
pub fn fuzz_netlink(data: &[u8]) {
    if let Ok(replies) = netlink::parse_messages(data) {
        for r in replies {
            let _ = netlink::parse_link(r.payload);
            let _ = netlink::parse_error(r.flags, r.payload);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_name_interface_and_operation() {
        let e = NetError::Op {
            iface: "eth0".into(),
            op: "adding 10.0.2.15/24".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
            detail: None,
        };
        assert_eq!(
            e.to_string(),
            "eth0: adding 10.0.2.15/24: Operation not permitted"
        );
        let e = NetError::Op {
            iface: "bond0".into(),
            op: "creating bond".into(),
            source: io::Error::from_raw_os_error(libc::EOPNOTSUPP),
            detail: Some("Unknown device type".into()),
        };
        assert_eq!(
            e.to_string(),
            "bond0: creating bond: Operation not supported (Unknown device type)"
        );
        assert!(matches!(
            add_address("nonexistent-if0", "10.0.0.1".parse().unwrap(), 33),
            Err(NetError::Op { .. })
        ));
    }

    #[test]
    fn bond_modes_map_to_kernel_numbers() {
        for (s, n) in [
            ("balance-rr", 0),
            ("active-backup", 1),
            ("802.3ad", 4),
            ("balance-alb", 6),
        ] {
            assert_eq!(
                bond_mode_number(BondingMode::from_name(s).unwrap()),
                Some(n)
            );
        }
    }

    #[test]
    fn resolv_conf_lines() {
        let dir = std::env::temp_dir().join(format!("st-host-resolv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("resolv.conf");
        write_resolv_conf(
            &p,
            &["9.9.9.9".parse().unwrap(), "2620:fe::fe".parse().unwrap()],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "nameserver 9.9.9.9\nnameserver 2620:fe::fe\n"
        );
        let e = write_resolv_conf(&dir.join("no/such/dir"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("writing "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_interface_errors() {
        assert!(!wait_for_carrier("../../etc", Duration::ZERO));
        assert!(matches!(
            set_link_up("no-such-if9"),
            Err(NetError::NoSuchInterface(_))
        ));
    }
}
