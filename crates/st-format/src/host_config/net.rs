//! Small network value types used by the host config: [`IpCidr`], [`MacAddr`], interface names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An interface address with its prefix length, e.g. `10.0.2.15/24` or `2001:db8::5/64`.
///
/// Unlike a network (`10.0.2.0/24`) the host bits are kept: this is the host's own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    addr: IpAddr,
    prefix: u8,
}

/// Why an address with prefix was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpCidrError {
    /// No `/prefix` part.
    #[error("\"{input}\" has no prefix length; expected CIDR like 10.0.2.15/24")]
    MissingPrefix {
        /// The input.
        input: String,
    },
    /// The part before `/` is not an IP address.
    #[error("\"{input}\" is not an IP address with prefix length (bad address)")]
    BadAddress {
        /// The input.
        input: String,
    },
    /// The prefix is not a decimal number.
    #[error("\"{input}\" has a malformed prefix length")]
    BadPrefix {
        /// The input.
        input: String,
    },
    /// The prefix is larger than the address width.
    #[error("\"{input}\": prefix length {prefix} is longer than {max}")]
    PrefixTooLong {
        /// The input.
        input: String,
        /// The prefix found (saturated at 255).
        prefix: u8,
        /// 32 or 128.
        max: u8,
    },
}

impl IpCidr {
    /// An address and prefix; `None` if the prefix exceeds 32 (IPv4) or 128 (IPv6).
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        (prefix <= max_prefix(addr)).then_some(Self { addr, prefix })
    }
    /// The address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
}

fn max_prefix(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

impl FromStr for IpCidr {
    type Err = IpCidrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = || s.to_owned();
        let Some((a, p)) = s.split_once('/') else {
            return Err(if s.parse::<IpAddr>().is_ok() {
                IpCidrError::MissingPrefix { input: input() }
            } else {
                IpCidrError::BadAddress { input: input() }
            });
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| IpCidrError::BadAddress { input: input() })?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IpCidrError::BadPrefix { input: input() });
        }
        let n: u16 = p
            .parse()
            .map_err(|_| IpCidrError::BadPrefix { input: input() })?;
        let max = max_prefix(addr);
        if n > u16::from(max) {
            return Err(IpCidrError::PrefixTooLong {
                input: input(),
                prefix: u8::try_from(n).unwrap_or(u8::MAX),
                max,
            });
        }
        let prefix = u8::try_from(n).map_err(|_| IpCidrError::BadPrefix { input: input() })?;
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A 48-bit Ethernet MAC address.
///
/// Parses `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff` and Cisco `aabb.ccdd.eeff` (hex digits of
/// either case). Displays as lowercase colon form. 64-bit and InfiniBand addresses, which Go's
/// `net.ParseMAC` also accepts, are rejected: stboot matches Ethernet links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr([u8; 6]);

/// Why a MAC address was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{input}\" is not a MAC address; expected aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff"
)]
#[non_exhaustive]
pub struct MacAddrError {
    /// The input.
    pub input: String,
}

impl MacAddr {
    /// From raw octets.
    pub fn new(octets: [u8; 6]) -> Self {
        Self(octets)
    }
    /// The octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match s {
        [h, l] => u8::try_from(digit(*h)? * 16 + digit(*l)?).ok(),
        _ => None,
    }
}

impl FromStr for MacAddr {
    type Err = MacAddrError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacAddrError {
            input: s.to_owned(),
        };
        let b = s.as_bytes();
        let mut out = [0u8; 6];
        match b.len() {
            17 => {
                let sep = b[2];
                if sep != b':' && sep != b'-' {
                    return Err(err());
                }
                for (i, o) in out.iter_mut().enumerate() {
                    let at = i * 3;
                    *o = hex_byte(&b[at..at + 2]).ok_or_else(err)?;
                    if i < 5 && b[at + 2] != sep {
                        return Err(err());
                    }
                }
            }
            14 => {
                for g in 0..3 {
                    let at = g * 5;
                    if g < 2 && b[at + 4] != b'.' {
                        return Err(err());
                    }
                    out[2 * g] = hex_byte(&b[at..at + 2]).ok_or_else(err)?;
                    out[2 * g + 1] = hex_byte(&b[at + 2..at + 4]).ok_or_else(err)?;
                }
            }
            _ => return Err(err()),
        }
        Ok(Self(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// Longest Linux interface name (`IFNAMSIZ` - 1).
pub const MAX_INTERFACE_NAME_LEN: usize = 15;

/// Check a Linux interface name: 1 to 15 bytes, not `.` or `..`, no `/`, `:`, whitespace or
/// control characters (the kernel's `dev_valid_name`, plus control characters).
pub(crate) fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".to_owned());
    }
    if name.len() > MAX_INTERFACE_NAME_LEN {
        return Err(format!(
            "interface name {name:?} is {} bytes, longer than {MAX_INTERFACE_NAME_LEN}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("interface name {name:?} is not allowed"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name {name:?} contains '/', ':', whitespace or a control character"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mac_notations() {
        let want = MacAddr::new([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        for s in [
            "aa:bb:cc:dd:ee:ff",
            "AA:BB:CC:DD:EE:FF",
            "aa-bb-cc-dd-ee-ff",
            "aabb.ccdd.eeff",
            "AaBb.cCdD.EEff",
        ] {
            assert_eq!(s.parse::<MacAddr>().unwrap(), want, "{s}");
        }
        assert_eq!(want.to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(
            "00:01:0a:10:ff:7f".parse::<MacAddr>().unwrap().to_string(),
            "00:01:0a:10:ff:7f"
        );
    }

    #[test]
    fn mac_invalid() {
        for s in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:ff:00",
            "aa:bb-cc:dd:ee:ff",
            "aa.bb.cc.dd.ee.ff",
            "aabb:ccdd:eeff",
            "gg:bb:cc:dd:ee:ff",
            "aa:bb:cc:dd:ee:f ",
            "+a:bb:cc:dd:ee:ff",
            "aabbccddeeff",
            "aabb.ccdd.eef\u{e9}",
            "ä:bb:cc:dd:ee:ff",
        ] {
            let e = s.parse::<MacAddr>().unwrap_err();
            assert!(e.to_string().contains("is not a MAC address"), "{s}: {e}");
        }
    }

    #[test]
    fn cidr_v4_v6() {
        let c: IpCidr = "10.0.2.15/24".parse().unwrap();
        assert_eq!(c.addr(), "10.0.2.15".parse::<IpAddr>().unwrap());
        assert_eq!(c.prefix(), 24);
        assert_eq!(c.to_string(), "10.0.2.15/24");
        let c: IpCidr = "2001:DB8::5/64".parse().unwrap();
        assert_eq!(c.to_string(), "2001:db8::5/64");
        assert_eq!("::/0".parse::<IpCidr>().unwrap().prefix(), 0);
        assert_eq!("1.2.3.4/32".parse::<IpCidr>().unwrap().prefix(), 32);
        assert_eq!("::1/128".parse::<IpCidr>().unwrap().prefix(), 128);
    }

    #[test]
    fn cidr_errors() {
        let e = "10.0.2.15".parse::<IpCidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"10.0.2.15\" has no prefix length; expected CIDR like 10.0.2.15/24"
        );
        assert!(matches!(
            "2001:db8::1".parse::<IpCidr>(),
            Err(IpCidrError::MissingPrefix { .. })
        ));
        assert!(matches!(
            "10.0.2.15/33".parse::<IpCidr>(),
            Err(IpCidrError::PrefixTooLong {
                prefix: 33,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            "::1/129".parse::<IpCidr>(),
            Err(IpCidrError::PrefixTooLong { max: 128, .. })
        ));
        assert!(matches!(
            "::1/999".parse::<IpCidr>(),
            Err(IpCidrError::PrefixTooLong { .. })
        ));
        for s in [
            "10.0.2.15/",
            "10.0.2.15/+1",
            "10.0.2.15/1000",
            "10.0.2.15/a",
            "1.2.3.4/2/3",
        ] {
            assert!(
                matches!(s.parse::<IpCidr>(), Err(IpCidrError::BadPrefix { .. })),
                "{s}"
            );
        }
        for s in ["", "foo", "300.0.0.1/8", "/24", "10.0.2/24", "01.2.3.4/8"] {
            assert!(
                matches!(s.parse::<IpCidr>(), Err(IpCidrError::BadAddress { .. })),
                "{s}"
            );
        }
        assert!(IpCidr::new("1.2.3.4".parse().unwrap(), 33).is_none());
    }

    #[test]
    fn interface_names() {
        for ok in [
            "eth0",
            "enp0s31f6",
            "bond0",
            "a",
            "x-y_z.1",
            "123456789012345",
        ] {
            assert!(check_interface_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "1234567890123456",
            "a\u{0}",
        ] {
            assert!(check_interface_name(bad).is_err(), "{bad:?}");
        }
    }
}
