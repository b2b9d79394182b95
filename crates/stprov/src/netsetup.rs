//! Which interface(s) the host config names, and bringing the network up with them through
//! `st_host::net::configure`, the same code stboot runs at boot (so a config that works here
//! works there).
//!
//! Selection, as the reference: `-b` names bond members; `-m` a MAC; `-I` a name; otherwise
//! the first interface (index order, no bond devices) that gets a carrier within `-w` after
//! being set up. `-A` picks the same way (stprov-rs does not ping the gateway; see
//! docs/stprov.md) and `-B` bonds every interface that got a carrier.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use st_format::{HostConfig, MacAddr};
use st_host::net::{Link, NetOptions};

use crate::Failure;
use crate::config::Interface;

/// How the interface is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `-m`.
    Mac(MacAddr),
    /// `-I`.
    Name(String),
    /// `-b`: these bond members.
    Bond(Vec<String>),
    /// Default and `-A`: the first interface with a carrier.
    FirstWithCarrier,
    /// `-B`: bond every interface with a carrier.
    BondAllWithCarrier,
}

/// The selection from the flags; `-A`, `-m`, `-I`, `-B`, `-b` exclude each other.
pub fn selection(
    mac: Option<&str>,
    name: Option<&str>,
    autodetect: bool,
    bond_auto: bool,
    bond: &[String],
) -> Result<Selection, Failure> {
    let given = [
        autodetect,
        mac.is_some(),
        name.is_some(),
        bond_auto,
        !bond.is_empty(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(Failure::Usage(
            "-A, -m, -I, -B and -b exclude each other".into(),
        ));
    }
    if let Some(m) = mac {
        let mac = m
            .parse()
            .map_err(|e| Failure::Usage(format!("-m/--mac {m:?}: {e}")))?;
        return Ok(Selection::Mac(mac));
    }
    if let Some(n) = name {
        return Ok(Selection::Name(n.to_owned()));
    }
    if !bond.is_empty() {
        return Ok(Selection::Bond(bond.to_vec()));
    }
    Ok(if bond_auto {
        Selection::BondAllWithCarrier
    } else {
        Selection::FirstWithCarrier
    })
}

fn mac_of(link: &Link) -> Option<MacAddr> {
    link.mac.map(MacAddr::new)
}

fn physical(links: &[Link]) -> impl Iterator<Item = &Link> {
    links
        .iter()
        .filter(|l| !l.name.starts_with("bond") && l.mac.is_some_and(|m| m != [0; 6]))
}

/// The interfaces for the host config, and whether they form a bond. `carrier(names)` brings
/// those links up and returns the ones that got a carrier (in order); it is only called for
/// the carrier-based selections.
pub fn resolve(
    sel: &Selection,
    links: &[Link],
    carrier: impl FnOnce(&[String]) -> Vec<String>,
) -> Result<(Vec<Interface>, bool), Failure> {
    let iface = |l: &Link| Interface {
        name: Some(l.name.clone()),
        mac: mac_of(l),
    };
    let names = || -> Vec<String> { links.iter().map(|l| l.name.clone()).collect::<Vec<_>>() };
    match sel {
        Selection::Mac(m) => {
            let l = links
                .iter()
                .find(|l| l.mac == Some(m.octets()))
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "-m/--mac {m}: no interface has this MAC (interfaces: {})",
                        names().join(", ")
                    ))
                })?;
            Ok((vec![iface(l)], false))
        }
        Selection::Name(n) => {
            let l = links.iter().find(|l| &l.name == n).ok_or_else(|| {
                Failure::Usage(format!(
                    "-I/--interface {n:?}: no such interface (interfaces: {})",
                    names().join(", ")
                ))
            })?;
            Ok((vec![iface(l)], false))
        }
        Selection::Bond(members) => {
            let out = members
                .iter()
                .map(|n| {
                    links
                        .iter()
                        .find(|l| &l.name == n)
                        .map(iface)
                        .ok_or_else(|| {
                            Failure::Usage(format!("-b/--bonding {n:?}: no such interface"))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((out, true))
        }
        Selection::FirstWithCarrier | Selection::BondAllWithCarrier => {
            let candidates: Vec<String> = physical(links).map(|l| l.name.clone()).collect();
            if candidates.is_empty() {
                return Err(Failure::Network(format!(
                    "no Ethernet interface found (interfaces: {})",
                    names().join(", ")
                )));
            }
            let up = carrier(&candidates);
            let chosen: Vec<Interface> = up
                .iter()
                .filter_map(|n| links.iter().find(|l| &l.name == n).map(iface))
                .collect();
            if chosen.is_empty() {
                return Err(Failure::Network(format!(
                    "no interface got a link (carrier) in time: tried {} (check the cable, \
                     give a longer -w, or pick one with -m / -I)",
                    candidates.join(", ")
                )));
            }
            if *sel == Selection::BondAllWithCarrier {
                Ok((chosen, true))
            } else {
                Ok((chosen.into_iter().take(1).collect(), false))
            }
        }
    }
}

/// Brings `names` up and waits (at most `wait` in all) for their carriers; returns those with
/// one, in order.
pub fn links_with_carrier(names: &[String], wait: Duration) -> Vec<String> {
    for n in names {
        if let Err(e) = st_host::net::set_link_up(n) {
            log::warn!("{e}");
        }
    }
    let deadline = std::time::Instant::now() + wait;
    let mut up = Vec::new();
    for n in names {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if st_host::net::wait_for_carrier(n, left) {
            log::info!("{n}: link up");
            up.push(n.clone());
        } else {
            log::info!("{n}: no carrier");
        }
    }
    up
}

/// The machine's links (loopback excluded).
pub fn links() -> Result<Vec<Link>, Failure> {
    st_host::net::links().map_err(|e| Failure::Network(e.to_string()))
}

/// Configures the network for `hc` as stboot will (DNS servers into `resolv_conf`). Returns
/// the address in use.
pub fn bring_up(hc: &HostConfig, wait: Duration, resolv_conf: &Path) -> Result<IpAddr, Failure> {
    let opts = NetOptions {
        carrier_timeout: wait.max(Duration::from_secs(1)),
        resolv_conf: resolv_conf.to_path_buf(),
        ..NetOptions::default()
    };
    let summary = st_host::net::configure(hc, &opts).map_err(|e| {
        let hint = match &e {
            st_host::net::NetError::Op { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                " (configuring the network needs root)"
            }
            _ => "",
        };
        Failure::Network(format!("{e}{hint}"))
    })?;
    log::info!(
        "network: {} {}/{} via {}",
        summary.interface,
        summary.address,
        summary.prefix,
        summary
            .gateway
            .map_or_else(|| "no gateway".to_owned(), |g| g.to_string())
    );
    Ok(summary.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, index: u32, last: u8) -> Link {
        Link {
            name: name.into(),
            index,
            mac: Some([2, 0, 0, 0, 0, last]),
        }
    }

    #[test]
    fn selections() {
        let links = [link("eth0", 2, 1), link("eth1", 3, 2), link("bond0", 4, 1)];
        let none = |_: &[String]| -> Vec<String> { unreachable!("no carrier check") };
        let sel = selection(Some("02:00:00:00:00:02"), None, false, false, &[]).unwrap();
        let (i, bond) = resolve(&sel, &links, none).unwrap();
        assert_eq!(i[0].name.as_deref(), Some("eth1"));
        assert!(!bond);
        let sel = selection(None, Some("eth0"), false, false, &[]).unwrap();
        assert_eq!(
            resolve(&sel, &links, none).unwrap().0[0]
                .mac
                .unwrap()
                .to_string(),
            "02:00:00:00:00:01"
        );
        let e = resolve(&Selection::Name("eth9".into()), &links, none).unwrap_err();
        assert!(
            e.to_string().contains("eth9") && e.to_string().contains("eth0, eth1"),
            "{e}"
        );
        let sel = selection(None, None, false, false, &["eth0".into(), "eth1".into()]).unwrap();
        let (i, bond) = resolve(&sel, &links, none).unwrap();
        assert!(bond && i.len() == 2);
        // First with carrier: bond devices are not candidates.
        let (i, _) = resolve(&Selection::FirstWithCarrier, &links, |c| {
            assert_eq!(c, ["eth0", "eth1"]);
            vec!["eth1".into()]
        })
        .unwrap();
        assert_eq!(i[0].name.as_deref(), Some("eth1"));
        let (i, bond) = resolve(&Selection::BondAllWithCarrier, &links, |c| c.to_vec()).unwrap();
        assert!(bond && i.len() == 2);
        let e = resolve(&Selection::FirstWithCarrier, &links, |_| vec![]).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(selection(Some("x"), None, false, false, &[]).is_err());
        assert!(selection(None, Some("eth0"), true, false, &[]).is_err());
    }
}
