//! The network plan: what [`super::apply`] will do for a host config on this machine's links,
//! decided without touching the system (so `stboot --dry-run` can show it and tests need no
//! root).

use std::fmt;
use std::net::IpAddr;

use st_format::host_config::{BondingMode, HostConfig, NetworkInterface, NetworkMode};

use super::{Link, NetError, dhcp};

/// The most name servers written to resolv.conf: the resolver reads no more (`MAXNS` in glibc
/// and musl).
pub const MAX_DNS_SERVERS: usize = 3;

/// How the interfaces get their address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `host_ip` and `gateway` from the host config.
    Static {
        /// The address.
        address: IpAddr,
        /// Its prefix length.
        prefix: u8,
        /// The default gateway.
        gateway: IpAddr,
    },
    /// A DHCPv4 lease.
    Dhcp,
}

impl Addressing {
    /// `"static"` or `"dhcp"`, as the host config spells it.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Static { .. } => NetworkMode::Static.as_str(),
            Self::Dhcp => NetworkMode::Dhcp.as_str(),
        }
    }
}

/// A bond to build before configuring it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondPlan {
    /// The bond device, e.g. `bond0`.
    pub name: String,
    /// The bonding mode.
    pub mode: BondingMode,
    /// The member interfaces, in host config order.
    pub members: Vec<String>,
}

/// Name servers after filtering: unusable addresses and repeats dropped, at most
/// [`MAX_DNS_SERVERS`] kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsServers {
    /// The servers for resolv.conf, in the order given.
    pub kept: Vec<IpAddr>,
    /// Dropped as unusable, with why (`loopback`, `multicast`, ...).
    pub unusable: Vec<(IpAddr, &'static str)>,
    /// Usable servers after the first [`MAX_DNS_SERVERS`], not written.
    pub over_limit: usize,
}

/// Where the name servers for resolv.conf come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsPlan {
    /// The host config's `dns`, filtered; resolv.conf is left alone if none is usable.
    Configured(DnsServers),
    /// The DHCP lease's DNS servers, filtered the same way when the lease arrives.
    FromLease,
    /// No `dns` and no lease (static addressing): resolv.conf is left alone.
    Untouched,
}

/// What the network setup will do, in order: build the bond (if any), try each interface in
/// turn with the addressing until one works, write the name servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// Static or DHCP, on every interface tried.
    pub addressing: Addressing,
    /// The bond to build first; then it is the only interface.
    pub bond: Option<BondPlan>,
    /// The interfaces to try, in order (never empty).
    pub interfaces: Vec<String>,
    /// `network_interfaces` matched no link, so every link is tried (as the reference does).
    pub all_links_fallback: bool,
    /// The name servers.
    pub dns: DnsPlan,
}

/// Decides the [`NetPlan`] for `hc` on `links` (from [`super::links`]). Errors: a bond member
/// given by a MAC no link has, a bond without members, no interface to try at all.
pub fn plan(hc: &HostConfig, links: &[Link]) -> Result<NetPlan, NetError> {
    let addressing = match (hc.network_mode(), hc.static_addressing()) {
        (NetworkMode::Static, Some((cidr, gateway))) => Addressing::Static {
            address: cidr.addr(),
            prefix: cidr.prefix(),
            gateway,
        },
        (NetworkMode::Static, None) => {
            return Err(NetError::Config(
                "static network mode without host_ip and gateway".to_owned(),
            ));
        }
        (NetworkMode::Dhcp, _) => Addressing::Dhcp,
    };
    let (bond, interfaces, all_links_fallback) = match hc.bonding() {
        Some(b) => {
            let members = bond_members(links, hc.network_interfaces())?;
            if members.is_empty() {
                return Err(NetError::Config(format!(
                    "{}: bond without interfaces",
                    b.name()
                )));
            }
            let bond = BondPlan {
                name: b.name().to_owned(),
                mode: b.mode(),
                members,
            };
            (Some(bond), vec![b.name().to_owned()], false)
        }
        None => {
            let (candidates, fallback) = select_candidates(links, hc.network_interfaces());
            (None, candidates, fallback)
        }
    };
    if interfaces.is_empty() {
        return Err(NetError::NoInterfaces);
    }
    let dns = if !hc.dns().is_empty() {
        DnsPlan::Configured(filter_dns(hc.dns()))
    } else if addressing == Addressing::Dhcp {
        DnsPlan::FromLease
    } else {
        DnsPlan::Untouched
    };
    Ok(NetPlan {
        addressing,
        bond,
        interfaces,
        all_links_fallback,
        dns,
    })
}

fn fmt_mac(m: [u8; 6]) -> String {
    let [a, b, c, d, e, g] = m;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
}

/// The interfaces to try, in index order: links matching any configured entry (by MAC, or by
/// name for entries without a MAC), or every link with a MAC when none is configured. As in
/// the reference, when configured entries match no link at all, every link is tried (the
/// `bool` says so).
pub(crate) fn select_candidates(
    links: &[Link],
    configured: &[NetworkInterface],
) -> (Vec<String>, bool) {
    let all = || {
        links
            .iter()
            .filter(|l| l.mac.is_some())
            .map(|l| l.name.clone())
            .collect::<Vec<_>>()
    };
    if configured.is_empty() {
        return (all(), false);
    }
    let matches = |l: &Link| {
        configured.iter().any(|c| match (c.mac(), c.name()) {
            (Some(m), _) => l.mac == Some(m.octets()),
            (None, Some(n)) => l.name == n,
            (None, None) => false,
        })
    };
    let picked: Vec<String> = links
        .iter()
        .filter(|l| matches(l))
        .map(|l| l.name.clone())
        .collect();
    if picked.is_empty() {
        return (all(), true);
    }
    (picked, false)
}

/// Bond members: configured names, or the link with the configured MAC for MAC-only entries.
fn bond_members(links: &[Link], configured: &[NetworkInterface]) -> Result<Vec<String>, NetError> {
    configured
        .iter()
        .map(|c| match (c.name(), c.mac()) {
            (Some(n), _) => Ok(n.to_owned()),
            (None, Some(m)) => links
                .iter()
                .find(|l| l.mac == Some(m.octets()))
                .map(|l| l.name.clone())
                .ok_or_else(|| {
                    NetError::Config(format!(
                        "bond member {}: no interface has this MAC address",
                        fmt_mac(m.octets())
                    ))
                }),
            (None, None) => Err(NetError::Config("bond member without name or MAC".into())),
        })
        .collect()
}

/// Why `a` cannot be a name server, or `None`: IPv4 in 0/8, 127/8 (nothing listens on loopback
/// in stboot), 224/4, 240/4 or the broadcast address; IPv6 unspecified, loopback, multicast,
/// or an IPv4-mapped address of the above.
fn unusable_dns(a: IpAddr) -> Option<&'static str> {
    match a {
        IpAddr::V4(v4) => dhcp::reserved_v4(v4),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast"),
        IpAddr::V6(v6) => v6.to_ipv4_mapped().and_then(dhcp::reserved_v4),
    }
}

/// The name servers of `list` for resolv.conf: unusable addresses ([`unusable_dns`]) and
/// repeats dropped, the first [`MAX_DNS_SERVERS`] usable ones kept.
pub(crate) fn filter_dns(list: &[IpAddr]) -> DnsServers {
    let mut out = DnsServers::default();
    for &a in list {
        match unusable_dns(a) {
            Some(why) => out.unusable.push((a, why)),
            None if !out.kept.contains(&a) => out.kept.push(a),
            None => {}
        }
    }
    out.over_limit = out.kept.len().saturating_sub(MAX_DNS_SERVERS);
    out.kept.truncate(MAX_DNS_SERVERS);
    out
}

/// How many unusable servers a message names before "and N more".
const UNUSABLE_SHOWN: usize = 4;

fn fmt_unusable(unusable: &[(IpAddr, &'static str)]) -> String {
    let shown: Vec<String> = unusable
        .iter()
        .take(UNUSABLE_SHOWN)
        .map(|(a, why)| format!("{a} ({why})"))
        .collect();
    let more = unusable.len().saturating_sub(UNUSABLE_SHOWN);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

impl DnsServers {
    /// Logs what was dropped from `source` (e.g. `the host config`): one warning for the
    /// unusable servers, one info line for those over the limit.
    pub(crate) fn log(&self, source: &str) {
        if !self.unusable.is_empty() {
            log::warn!(
                "ignoring {} unusable DNS server(s) from {source}: {}",
                self.unusable.len(),
                fmt_unusable(&self.unusable)
            );
        }
        if self.over_limit > 0 {
            log::info!(
                "using the first {MAX_DNS_SERVERS} of {} DNS servers from {source} (resolvers \
                 read no more)",
                self.kept.len() + self.over_limit
            );
        }
    }
}

fn join<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(sep)
}

impl fmt::Display for DnsServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kept.is_empty() {
            f.write_str("none usable, resolv.conf untouched")?;
        } else {
            f.write_str(&join(&self.kept, ", "))?;
        }
        if self.over_limit > 0 {
            write!(f, " ({} more not written)", self.over_limit)?;
        }
        if !self.unusable.is_empty() {
            write!(f, " (ignoring {})", fmt_unusable(&self.unusable))?;
        }
        Ok(())
    }
}

/// One line, e.g. `static 10.0.2.15/24 via 10.0.2.2 on bond0 (bond active-backup over eth0,
/// eth1); dns 9.9.9.9` or `dhcp on eth0, then eth1; dns from the DHCP lease`.
impl fmt::Display for NetPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addressing {
            Addressing::Static {
                address,
                prefix,
                gateway,
            } => write!(f, "static {address}/{prefix} via {gateway}")?,
            Addressing::Dhcp => f.write_str("dhcp")?,
        }
        write!(f, " on {}", self.interfaces.join(", then "))?;
        if let Some(b) = &self.bond {
            write!(f, " (bond {} over {})", b.mode, b.members.join(", "))?;
        }
        if self.all_links_fallback {
            f.write_str(" (no interface matches network_interfaces: trying all)")?;
        }
        match &self.dns {
            DnsPlan::Configured(d) => write!(f, "; dns {d}"),
            DnsPlan::FromLease => f.write_str("; dns from the DHCP lease"),
            DnsPlan::Untouched => f.write_str("; no dns, resolv.conf untouched"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn link(name: &str, index: u32, last: u8) -> Link {
        Link {
            name: name.to_owned(),
            index,
            mac: Some([2, 0, 0, 0, 0, last]),
        }
    }

    /// A host config with `fields` (JSON members) over DHCP defaults.
    fn host_config(fields: &str) -> HostConfig {
        let mut doc: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,
            "network_interfaces":null,"ospkg_pointer":"https://x.example/o.json",
            "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
        )
        .unwrap();
        let extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&format!("{{{fields}}}")).unwrap();
        doc.extend(extra);
        HostConfig::from_json(serde_json::to_string(&doc).unwrap().as_bytes()).unwrap()
    }

    fn ifaces(json: &str) -> Vec<NetworkInterface> {
        host_config(&format!(r#""network_interfaces":{json}"#))
            .network_interfaces()
            .to_vec()
    }

    fn ips(s: &[&str]) -> Vec<IpAddr> {
        s.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn candidates_all_entries_count() {
        let ls = [link("eth0", 2, 1), link("eth1", 3, 2), link("eth2", 4, 3)];
        let c = ifaces(
            r#"[{"interface_name":"x","mac_address":"02:00:00:00:00:03"},
                {"interface_name":"y","mac_address":"02:00:00:00:00:01"}]"#,
        );
        assert_eq!(
            select_candidates(&ls, &c),
            (vec!["eth0".into(), "eth2".into()], false)
        );
        let by_name = ifaces(r#"["eth1"]"#);
        assert_eq!(
            select_candidates(&ls, &by_name),
            (vec!["eth1".into()], false)
        );
    }

    #[test]
    fn candidates_default_and_fallback() {
        let mut ls = vec![link("eth0", 2, 1), link("eth1", 3, 2)];
        ls.push(Link {
            name: "sit0".into(),
            index: 4,
            mac: None,
        });
        let both = vec!["eth0".to_owned(), "eth1".to_owned()];
        assert_eq!(select_candidates(&ls, &[]), (both.clone(), false));
        let none = ifaces(r#"[{"interface_name":"eth9","mac_address":"02:00:00:00:00:09"}]"#);
        assert_eq!(select_candidates(&ls, &none), (both, true));
    }

    #[test]
    fn bond_members_by_name_or_mac() {
        let ls = [link("eth0", 2, 1), link("eth1", 3, 2)];
        let c = ifaces(r#"[{"interface_name":"eth0"},{"mac_address":"02:00:00:00:00:02"}]"#);
        assert_eq!(bond_members(&ls, &c).unwrap(), ["eth0", "eth1"]);
        let bad = ifaces(r#"[{"mac_address":"02:00:00:00:00:07"}]"#);
        let e = bond_members(&ls, &bad).unwrap_err().to_string();
        assert!(e.contains("02:00:00:00:00:07"), "{e}");
    }

    /// Unusable DNS servers (0.0.0.0, loopback, broadcast, multicast, 240/4, ::, ::1, ff00::/8)
    /// are dropped, and at most 3 (the resolver's MAXNS) are written, the first valid ones.
    #[test]
    fn dns_servers_filtered_and_capped() {
        let lease = ips(&[
            "0.0.0.0",
            "127.0.0.53",
            "10.0.2.3",
            "255.255.255.255",
            "224.0.0.251",
            "240.1.2.3",
            "0.1.2.3",
            "9.9.9.9",
            "10.0.2.3",
            "1.1.1.1",
            "8.8.8.8",
        ]);
        let d = filter_dns(&lease);
        assert_eq!(d.kept, ips(&["10.0.2.3", "9.9.9.9", "1.1.1.1"]));
        assert_eq!(d.unusable.len(), 6);
        assert_eq!(d.over_limit, 1);
        assert_eq!(
            d.to_string(),
            "10.0.2.3, 9.9.9.9, 1.1.1.1 (1 more not written) (ignoring 0.0.0.0 (in 0.0.0.0/8 \
             (\"this network\")), 127.0.0.53 (in 127.0.0.0/8 (loopback)), 255.255.255.255 (the \
             limited broadcast address), 224.0.0.251 (in 224.0.0.0/4 (multicast)) and 2 more)"
        );
        let configured = filter_dns(&ips(&["::", "::1", "ff02::fb", "2620:fe::fe", "9.9.9.9"]));
        assert_eq!(configured.kept, ips(&["2620:fe::fe", "9.9.9.9"]));
        assert_eq!(filter_dns(&ips(&["0.0.0.0"])).kept, ips(&[]));
    }

    #[test]
    fn static_plan_on_a_bond() {
        let hc = host_config(
            r#""network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2",
            "dns":["127.0.0.1","9.9.9.9"],"bonding_mode":"active-backup","bond_name":"bond0",
            "network_interfaces":[{"interface_name":"eth0"},
                {"interface_name":"eth1","mac_address":"02:00:00:00:00:09"}]"#,
        );
        let p = plan(&hc, &[link("eth0", 2, 1), link("eth1", 3, 2)]).unwrap();
        assert_eq!(
            p.addressing,
            Addressing::Static {
                address: "10.0.2.15".parse().unwrap(),
                prefix: 24,
                gateway: "10.0.2.2".parse().unwrap(),
            }
        );
        assert_eq!(p.interfaces, ["bond0"]);
        let bond = p.bond.as_ref().unwrap();
        assert_eq!(
            (bond.name.as_str(), bond.mode.as_str()),
            ("bond0", "active-backup")
        );
        assert_eq!(bond.members, ["eth0", "eth1"]);
        assert_eq!(
            p.to_string(),
            "static 10.0.2.15/24 via 10.0.2.2 on bond0 (bond active-backup over eth0, eth1); \
             dns 9.9.9.9 (ignoring 127.0.0.1 (in 127.0.0.0/8 (loopback)))"
        );
    }

    #[test]
    fn dhcp_plan_tries_links_in_order() {
        let ls = [link("eth0", 2, 1), link("eth1", 3, 2), link("eth2", 4, 3)];
        let hc = host_config(
            r#""network_interfaces":[{"mac_address":"02:00:00:00:00:03"},{"interface_name":"eth1"}]"#,
        );
        let p = plan(&hc, &ls).unwrap();
        assert_eq!(p.interfaces, ["eth1", "eth2"]);
        assert_eq!((p.bond, p.all_links_fallback), (None, false));
        assert_eq!(p.dns, DnsPlan::FromLease);
        assert_eq!(
            plan(&hc, &ls).unwrap().to_string(),
            "dhcp on eth1, then eth2; dns from the DHCP lease"
        );
        let nomatch = host_config(r#""network_interfaces":["eth9"]"#);
        assert_eq!(
            plan(&nomatch, &ls).unwrap().to_string(),
            "dhcp on eth0, then eth1, then eth2 (no interface matches network_interfaces: \
             trying all); dns from the DHCP lease"
        );
        let static_no_dns = host_config(
            r#""network_mode":"static","host_ip":"2001:db8::5/64","gateway":"2001:db8::1""#,
        );
        assert_eq!(
            plan(&static_no_dns, &ls).unwrap().to_string(),
            "static 2001:db8::5/64 via 2001:db8::1 on eth0, then eth1, then eth2; no dns, \
             resolv.conf untouched"
        );
        let only_bad_dns = host_config(r#""dns":["0.0.0.0"]"#);
        assert_eq!(
            plan(&only_bad_dns, &ls).unwrap().to_string(),
            "dhcp on eth0, then eth1, then eth2; dns none usable, resolv.conf untouched \
             (ignoring 0.0.0.0 (in 0.0.0.0/8 (\"this network\")))"
        );
    }

    #[test]
    fn plan_without_usable_links() {
        let hc = host_config("");
        assert!(matches!(plan(&hc, &[]), Err(NetError::NoInterfaces)));
        let no_mac = [Link {
            name: "sit0".into(),
            index: 2,
            mac: None,
        }];
        assert!(matches!(plan(&hc, &no_mac), Err(NetError::NoInterfaces)));
        // A bond needs no link to plan: its members are named (checked when it is built).
        let bond = host_config(
            r#""bonding_mode":"802.3ad","bond_name":"bond0",
            "network_interfaces":[{"interface_name":"eth7"}]"#,
        );
        assert_eq!(
            plan(&bond, &[]).unwrap().to_string(),
            "dhcp on bond0 (bond 802.3ad over eth7); dns from the DHCP lease"
        );
    }
}
