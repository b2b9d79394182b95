//! From flags to a checked [`HostConfig`], by the reference's rules (Go `internal/options`,
//! `subcmd/remote`), without touching the system: gateway defaults, `m` for `/` in CIDRs,
//! `user:password` templating, the host name rule, the description line.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};
use st_format::{BondingMode, HostConfig, IpCidr, MacAddr};

use crate::Failure;
use crate::cli::{DEFAULT_HOSTNAME, DEFAULT_PASSWORD, DEFAULT_USER};

/// The bond stprov creates (the reference's fixed name).
pub const BOND_NAME: &str = "bond0";

/// `10.0.2.10m24` -> `10.0.2.10/24`: when there is no `/`, the last `m` stands for it (for
/// keyboards that scramble `/`). Anything with a `/` is returned as is.
pub fn decode_safe_cidr(s: &str) -> String {
    if s.contains('/') {
        return s.to_owned();
    }
    match s.rfind('m') {
        Some(i) => format!("{}/{}", &s[..i], &s[i + 1..]),
        None => s.to_owned(),
    }
}

fn usage(flag: &str, value: &str, why: impl std::fmt::Display) -> Failure {
    Failure::Usage(format!("{flag} {value:?}: {why}"))
}

fn network_of(cidr: IpCidr) -> (u128, u32, bool) {
    match cidr.addr() {
        IpAddr::V4(a) => {
            let bits = 32;
            let host = u32::from(a);
            let mask = u32::MAX
                .checked_shl(bits - u32::from(cidr.prefix()))
                .unwrap_or(0);
            (u128::from(host & mask), bits, true)
        }
        IpAddr::V6(a) => {
            let bits = 128;
            let host = u128::from(a);
            let mask = u128::MAX
                .checked_shl(bits - u32::from(cidr.prefix()))
                .unwrap_or(0);
            (host & mask, bits, false)
        }
    }
}

fn to_ip(v: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(v).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(v))
    }
}

fn contains(cidr: IpCidr, ip: IpAddr) -> bool {
    let (net, _, v4) = network_of(cidr);
    let Ok(c) = IpCidr::new(ip, cidr.prefix()).ok_or(()) else {
        return false;
    };
    ip.is_ipv4() == v4 && network_of(c).0 == net
}

/// The host address and the gateway, as the reference decides them: `-i` is required and must
/// carry a prefix; `-g` must lie in that network (unless `force`); without `-g`, the first
/// address after the network address, or with `-x` the last usable one (the broadcast address
/// minus one, except for an IPv4 /31; for a /32 the address itself). The gateway must differ
/// from the host (unless `force`).
pub fn host_and_gateway(
    ip: Option<&str>,
    gateway: Option<&str>,
    last: bool,
    force: bool,
) -> Result<(IpCidr, IpAddr), Failure> {
    let ip = ip.ok_or_else(|| {
        Failure::Usage("-i/--ip: the host address (CIDR, e.g. 10.0.2.10/24) is required".into())
    })?;
    let ip = decode_safe_cidr(ip);
    let cidr: IpCidr = ip
        .parse()
        .map_err(|e| usage("-i/--ip", &ip, format!("not an address with a prefix: {e}")))?;
    let gw = match gateway {
        Some(g) => {
            let g = decode_safe_cidr(g);
            let gw: IpAddr = g
                .parse()
                .map_err(|e| usage("-g/--gateway", &g, format!("not an IP address: {e}")))?;
            if !contains(cidr, gw) {
                let msg = format!("-g/--gateway {gw}: not within the host's network ({ip})");
                if !force {
                    return Err(Failure::Usage(msg));
                }
                log::warn!("force: ignoring: {msg}");
            }
            gw
        }
        None => {
            let (net, bits, v4) = network_of(cidr);
            let prefix = u32::from(cidr.prefix());
            let v = if last {
                if prefix == bits {
                    net
                } else {
                    let host_bits = bits - prefix;
                    let broadcast = net | (u128::MAX >> (128 - host_bits));
                    if v4 && prefix == 31 {
                        broadcast
                    } else {
                        broadcast.saturating_sub(1)
                    }
                }
            } else {
                net.saturating_add(1)
            };
            to_ip(v, v4)
        }
    };
    if gw == cidr.addr() {
        let msg = format!("{gw}: the host address must differ from the gateway");
        if !force {
            return Err(Failure::Usage(msg));
        }
        log::warn!("force: ignoring: {msg}");
    }
    Ok((cidr, gw))
}

/// `-H` as given, or `-h` + `.localhost.local`, or `localhost.local`. `-h` and `-H` exclude each
/// other.
pub fn host_name(short: Option<&str>, full: Option<&str>) -> Result<String, Failure> {
    let name = match (short, full) {
        (Some(_), Some(_)) => {
            return Err(Failure::Usage(
                "-h/--host and -H/--full-host exclude each other".into(),
            ));
        }
        (None, Some(f)) => f.to_owned(),
        (Some(h), None) => format!("{h}.{DEFAULT_HOSTNAME}"),
        (None, None) => DEFAULT_HOSTNAME.to_owned(),
    };
    if name.is_empty() || name.contains(['\0', '\n']) {
        return Err(Failure::Usage(format!(
            "host name {name:?}: must be non-empty, without NUL or newline"
        )));
    }
    Ok(name)
}

/// An OS package URL: the first `user:password` replaced by `user` and `pass`, and it must start
/// with `http://` or `https://`.
pub fn construct_url(template: &str, user: &str, pass: &str) -> Result<String, Failure> {
    let url = template.replacen("user:password", &format!("{user}:{pass}"), 1);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(usage(
            "-r/--url",
            template,
            "must start with http:// or https://",
        ));
    }
    if url.contains(&format!("{DEFAULT_USER}:{DEFAULT_PASSWORD}@")) {
        log::warn!("an OS package URL uses the default user name and password");
    }
    Ok(url)
}

/// `stprov version <v>; timestamp <RFC 3339 UTC>` (the reference's `description`).
pub fn description(now: st_verify::UnixTime) -> String {
    format!(
        "stprov version v{}; timestamp {now}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The DNS flag values parsed (the flag is named on error).
pub fn dns_servers(values: &[String]) -> Result<Vec<IpAddr>, Failure> {
    values
        .iter()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|e| usage("-d/--dns", v, format!("not an IP address: {e}")))
        })
        .collect()
}

/// An interface of the host config: name, MAC, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name.
    pub name: Option<String>,
    /// MAC address.
    pub mac: Option<MacAddr>,
}

/// Addressing for [`host_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `host_ip` and `gateway`.
    Static(IpCidr, IpAddr),
    /// DHCP.
    Dhcp,
}

/// Everything the host config is made of.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Static or DHCP.
    pub addressing: Addressing,
    /// DNS servers.
    pub dns: Vec<IpAddr>,
    /// The interface(s); several with a bond.
    pub interfaces: Vec<Interface>,
    /// Bonding mode, when bonding.
    pub bonding: Option<BondingMode>,
    /// Descriptor URLs, in order.
    pub urls: Vec<String>,
    /// The `description` line.
    pub description: String,
}

/// The host config, built as JSON and checked by the same parser stboot runs, so what is
/// written is what stboot accepts.
pub fn host_config(p: &Parts) -> Result<HostConfig, Failure> {
    let (mode, ip, gw) = match p.addressing {
        Addressing::Static(c, g) => ("static", json!(c.to_string()), json!(g.to_string())),
        Addressing::Dhcp => ("dhcp", Value::Null, Value::Null),
    };
    let ifaces: Vec<Value> = p
        .interfaces
        .iter()
        .map(|i| {
            json!({
                "interface_name": i.name,
                "mac_address": i.mac.map(|m| m.to_string()),
            })
        })
        .collect();
    let doc = json!({
        "network_mode": mode,
        "host_ip": ip,
        "gateway": gw,
        "dns": (!p.dns.is_empty()).then(|| p.dns.iter().map(ToString::to_string).collect::<Vec<_>>()),
        "network_interfaces": (!ifaces.is_empty()).then_some(ifaces),
        "ospkg_pointer": p.urls.join(","),
        "identity": null,
        "authentication": null,
        "bonding_mode": p.bonding.map(BondingMode::as_str),
        "bond_name": p.bonding.map(|_| BOND_NAME),
        "description": p.description,
    });
    let bytes = serde_json::to_vec(&doc).map_err(|e| Failure::Other(e.to_string()))?;
    HostConfig::from_json(&bytes).map_err(|e| Failure::Usage(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hg(ip: &str, gw: Option<&str>, last: bool) -> Result<(String, String), Failure> {
        host_and_gateway(Some(ip), gw, last, false).map(|(c, g)| (c.to_string(), g.to_string()))
    }

    #[test]
    fn gateway_defaults_like_the_reference() {
        assert_eq!(hg("10.0.2.10/24", None, false).unwrap().1, "10.0.2.1");
        assert_eq!(hg("10.0.2.10/24", None, true).unwrap().1, "10.0.2.254");
        assert_eq!(hg("10.0.2.10/26", None, true).unwrap().1, "10.0.2.62");
        assert_eq!(hg("10.0.2.10/31", None, true).unwrap().1, "10.0.2.11");
        assert_eq!(
            hg("10.0.2.10m24", None, false).unwrap(),
            ("10.0.2.10/24".into(), "10.0.2.1".into())
        );
        assert_eq!(hg("2001:db8::5/64", None, false).unwrap().1, "2001:db8::1");
        assert_eq!(
            hg("10.0.2.10/24", Some("10.0.2.2"), false).unwrap().1,
            "10.0.2.2"
        );
        // Errors name the flag.
        let e = hg("10.0.2.10/24", Some("10.0.3.1"), false).unwrap_err();
        assert!(
            e.to_string().contains("-g/--gateway 10.0.3.1: not within"),
            "{e}"
        );
        assert!(host_and_gateway(Some("10.0.2.10/24"), Some("10.0.3.1"), false, true).is_ok());
        let e = hg("10.0.2.1/24", None, false).unwrap_err();
        assert!(e.to_string().contains("must differ"), "{e}");
        let e = hg("10.0.2.10", None, false).unwrap_err();
        assert!(e.to_string().starts_with("-i/--ip \"10.0.2.10\""), "{e}");
        let e = host_and_gateway(None, None, false, false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("required"));
    }

    #[test]
    fn host_names_and_urls() {
        assert_eq!(host_name(None, None).unwrap(), "localhost.local");
        assert_eq!(
            host_name(Some("web1"), None).unwrap(),
            "web1.localhost.local"
        );
        assert_eq!(
            host_name(None, Some("a.example.org")).unwrap(),
            "a.example.org"
        );
        assert!(host_name(Some("a"), Some("b")).is_err());
        assert_eq!(
            construct_url("https://user:password@h/user:password", "alice", "s3cret").unwrap(),
            "https://alice:s3cret@h/user:password"
        );
        let e = construct_url("ftp://h/x", "u", "p").unwrap_err();
        assert!(e.to_string().contains("-r/--url \"ftp://h/x\""), "{e}");
        assert!(
            dns_servers(&["9.9.9.9".into(), "x".into()])
                .unwrap_err()
                .to_string()
                .contains("-d/--dns \"x\"")
        );
        let d = description(st_verify::UnixTime::from_secs(1_735_689_600));
        assert_eq!(
            d,
            format!(
                "stprov version v{}; timestamp 2025-01-01T00:00:00Z",
                env!("CARGO_PKG_VERSION")
            )
        );
    }

    #[test]
    fn host_config_is_checked_by_the_stboot_parser() {
        let (c, g) = host_and_gateway(Some("10.0.2.10/24"), None, false, false).unwrap();
        let mac: MacAddr = "aa:bb:cc:dd:ee:ff".parse().unwrap();
        let parts = Parts {
            addressing: Addressing::Static(c, g),
            dns: vec!["9.9.9.9".parse().unwrap()],
            interfaces: vec![Interface {
                name: Some("eth0".into()),
                mac: Some(mac),
            }],
            bonding: None,
            urls: vec![
                "https://a:b@h.example/os.json".into(),
                "http://h2/os.json".into(),
            ],
            description: "d".into(),
        };
        let hc = host_config(&parts).unwrap();
        let text = String::from_utf8(hc.to_json_compact()).unwrap();
        assert_eq!(
            text,
            "{\"network_mode\":\"static\",\"host_ip\":\"10.0.2.10/24\",\"gateway\":\"10.0.2.1\",\
             \"dns\":[\"9.9.9.9\"],\"network_interfaces\":[{\"interface_name\":\"eth0\",\
             \"mac_address\":\"aa:bb:cc:dd:ee:ff\"}],\"ospkg_pointer\":\
             \"https://a:b@h.example/os.json,http://h2/os.json\",\"identity\":null,\
             \"authentication\":null,\"bonding_mode\":null,\"bond_name\":null,\"description\":\"d\"}"
        );
        let bonded = Parts {
            addressing: Addressing::Dhcp,
            bonding: Some(BondingMode::from_name("802.3ad").unwrap()),
            interfaces: vec![
                Interface {
                    name: Some("eth0".into()),
                    mac: None,
                },
                Interface {
                    name: Some("eth1".into()),
                    mac: None,
                },
            ],
            ..parts.clone()
        };
        let hc = host_config(&bonded).unwrap();
        assert_eq!(hc.bonding().unwrap().name(), "bond0");
        // A pointer stboot would reject is refused here, with the field named.
        let bad = Parts {
            urls: vec![],
            ..parts
        };
        let e = host_config(&bad).unwrap_err();
        assert!(e.to_string().contains("ospkg_pointer"), "{e}");
    }
}
