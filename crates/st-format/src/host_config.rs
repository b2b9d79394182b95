//! `host_configuration.json` / the `STHostConfig` EFI variable: how stboot brings up the network
//! and where it finds the OS package (st-reference §4).
//!
//! # Tolerance
//!
//! Deployed host configs carry abandoned and legacy keys (stmgr `tests/hostconfigs/compat-*`),
//! so this parser is **tolerant**, like docs-1.x: unknown keys (`version`, `timestamp`,
//! `bonding`, …) are ignored, and an omitted key means the same as `null`. It is strict about
//! everything it does read, and it rejects duplicate keys anywhere in the document (Go would
//! silently take the last one).
//!
//! # Legacy spellings accepted (st-reference §4.2; the precedence rules are ours, §11.15)
//!
//! * `"dns": "9.9.9.9"`: a single string means a one-entry list.
//! * `"provisioning_urls": ["https://…", …]`: used **only when `ospkg_pointer` is absent, `null`
//!   or `""`**; the entries are joined with `,`. When both are set, `ospkg_pointer` wins and
//!   `provisioning_urls` is ignored entirely (it is not even checked).
//! * `"network_interface": "aa:bb:cc:dd:ee:ff"` (singular, a MAC): used only when
//!   `network_interfaces` is absent or `null`, as one interface with that MAC and no name.
//! * `"network_interfaces": ["eth2", "eth3"]`: strings are interface names (no MAC); strings and
//!   objects may be mixed.
//! * `"bonding_mode": ""`, `"bond_name": ""`, `"identity": ""`, `"authentication": ""`: empty
//!   means unset.
//!
//! # Canonical output
//!
//! [`HostConfig::to_json_pretty`] writes all eleven st-1.x keys in a fixed order, unset ones as
//! `null`, with legacy inputs normalised; its output parses back to an equal value.
//!
//! # Divergences from the Go reference
//!
//! * `identity`/`authentication` are checked whenever set (Go: only when the pointer uses
//!   `$ID`/`$AUTH`), and digits are allowed (see [`Identity`]).
//! * An invalid URL anywhere in a URL-list pointer is an error naming its index (Go drops it and
//!   every URL after it, §11.10). See [`OsPkgPointer`] for the URL-list-or-file-name rule.
//! * Interface names must be valid Linux names; an interface entry needs a name or a MAC;
//!   bonding needs every interface to have a name (the bond enslaves links by name).
//! * `bond_name` without `bonding_mode` is ignored and printed as `null`.

mod net;
mod pointer;

pub use net::{IpCidr, IpCidrError, MAX_INTERFACE_NAME_LEN, MacAddr, MacAddrError};
pub use pointer::{OsPkgPointer, OsPkgPointerError, PROVISIONING_POINTER};

use crate::gojson;
use crate::limits::MAX_HOST_CONFIG_BYTES;
use crate::url_template::{AuthToken, CredentialError, Identity};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::net::IpAddr;

/// How the host gets its IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkMode {
    /// `host_ip` and `gateway` from the config.
    Static,
    /// DHCP (IPv4).
    Dhcp,
}

impl NetworkMode {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dhcp => "dhcp",
        }
    }
}

/// Linux bonding driver mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BondingMode {
    /// `balance-rr`
    BalanceRr,
    /// `active-backup`
    ActiveBackup,
    /// `balance-xor`
    BalanceXor,
    /// `broadcast`
    Broadcast,
    /// `802.3ad` (LACP)
    Ieee8023ad,
    /// `balance-tlb`
    BalanceTlb,
    /// `balance-alb`
    BalanceAlb,
}

impl BondingMode {
    const ALL: [Self; 7] = [
        Self::BalanceRr,
        Self::ActiveBackup,
        Self::BalanceXor,
        Self::Broadcast,
        Self::Ieee8023ad,
        Self::BalanceTlb,
        Self::BalanceAlb,
    ];

    /// The wire (and kernel) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BalanceRr => "balance-rr",
            Self::ActiveBackup => "active-backup",
            Self::BalanceXor => "balance-xor",
            Self::Broadcast => "broadcast",
            Self::Ieee8023ad => "802.3ad",
            Self::BalanceTlb => "balance-tlb",
            Self::BalanceAlb => "balance-alb",
        }
    }

    /// Parse the wire spelling.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for BondingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bond to build from the configured interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bonding {
    mode: BondingMode,
    name: String,
}

impl Bonding {
    /// The bonding mode.
    pub fn mode(&self) -> BondingMode {
        self.mode
    }
    /// The bond device name (e.g. `bond0`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One configured network interface: a name, a MAC, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    name: Option<String>,
    mac: Option<MacAddr>,
}

impl NetworkInterface {
    /// The Linux interface name, if given.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The MAC address, if given.
    pub fn mac(&self) -> Option<MacAddr> {
        self.mac
    }
}

/// A checked host configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    network_mode: NetworkMode,
    host_ip: Option<IpCidr>,
    gateway: Option<IpAddr>,
    dns: Vec<IpAddr>,
    network_interfaces: Vec<NetworkInterface>,
    ospkg_pointer: OsPkgPointer,
    identity: Option<Identity>,
    authentication: Option<AuthToken>,
    bonding: Option<Bonding>,
    description: Option<String>,
}

/// Why a host config was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostConfigError {
    /// Larger than [`MAX_HOST_CONFIG_BYTES`].
    #[error("host config is {size} bytes, over the {max}-byte limit")]
    TooLarge {
        /// Actual size.
        size: u64,
        /// The cap.
        max: usize,
    },
    /// Not a JSON object, or a duplicate key.
    #[error("host config: invalid JSON: {0}")]
    Json(String),
    /// A required field is absent or `null`.
    #[error("host config: field \"{field}\" is missing")]
    Missing {
        /// Field name.
        field: &'static str,
    },
    /// A field has a value outside its rule.
    #[error("host config: field \"{field}\": {reason}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The OS package pointer is unusable.
    #[error("host config: field \"ospkg_pointer\": {0}")]
    Pointer(OsPkgPointerError),
}

// Not a `#[from]`/`#[source]`: the inner message is already part of `Display`, and repeating it
// as a source would print it twice in error chains.
impl From<OsPkgPointerError> for HostConfigError {
    fn from(e: OsPkgPointerError) -> Self {
        Self::Pointer(e)
    }
}

const NETWORK_MODE: &str = "network_mode";
const HOST_IP: &str = "host_ip";
const GATEWAY: &str = "gateway";
const DNS: &str = "dns";
const INTERFACES: &str = "network_interfaces";
const INTERFACE_LEGACY: &str = "network_interface";
const POINTER: &str = "ospkg_pointer";
const PROVISIONING_URLS: &str = "provisioning_urls";
const IDENTITY: &str = "identity";
const AUTHENTICATION: &str = "authentication";
const BONDING_MODE: &str = "bonding_mode";
const BOND_NAME: &str = "bond_name";
const DESCRIPTION: &str = "description";

fn invalid(field: &'static str, reason: impl Into<String>) -> HostConfigError {
    HostConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// A short JSON rendering of a value for error messages.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        let cut = (0..=77).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// The value of `key`, with `null` folded into absent.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A string field; `null`/absent → `None`; `""` → `None` when `empty_is_unset`.
fn get_str<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    empty_is_unset: bool,
) -> Result<Option<&'a str>, HostConfigError> {
    match get(obj, field) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() && empty_is_unset => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid(field, format!("{} is not a string", show(v)))),
    }
}

fn parse_ip(field: &'static str, s: &str) -> Result<IpAddr, HostConfigError> {
    s.parse()
        .map_err(|_| invalid(field, format!("{s:?} is not an IP address")))
}

fn credential_error(field: &'static str, e: &CredentialError) -> HostConfigError {
    invalid(
        field,
        format!("{e}; expected 1 to 64 characters of A-Z a-z 0-9 _ -"),
    )
}

fn parse_interface(index: usize, v: &Value) -> Result<NetworkInterface, HostConfigError> {
    let at = |reason: String| invalid(INTERFACES, format!("entry at index {index}: {reason}"));
    let check_name = |n: &str| net::check_interface_name(n).map_err(at);
    match v {
        // Legacy: a bare interface name.
        Value::String(name) => {
            check_name(name)?;
            Ok(NetworkInterface {
                name: Some(name.clone()),
                mac: None,
            })
        }
        Value::Object(o) => {
            let name = match get(o, "interface_name") {
                None => None,
                Some(Value::String(n)) => {
                    check_name(n)?;
                    Some(n.clone())
                }
                Some(v) => return Err(at(format!("interface_name {} is not a string", show(v)))),
            };
            let mac = match get(o, "mac_address") {
                None => None,
                Some(Value::String(m)) => {
                    Some(m.parse::<MacAddr>().map_err(|e| at(e.to_string()))?)
                }
                Some(v) => return Err(at(format!("mac_address {} is not a string", show(v)))),
            };
            if name.is_none() && mac.is_none() {
                return Err(at(
                    "neither interface_name nor mac_address is set".to_owned()
                ));
            }
            Ok(NetworkInterface { name, mac })
        }
        v => Err(at(format!("{} is not an object or a string", show(v)))),
    }
}

impl HostConfig {
    /// Parse and check host config JSON bytes (at most [`MAX_HOST_CONFIG_BYTES`]).
    ///
    /// Rules are checked in the reference's order (st-reference §4.1): network mode, static
    /// addressing, DNS, interfaces, pointer, identity/authentication, bonding, description.
    pub fn from_json(bytes: &[u8]) -> Result<Self, HostConfigError> {
        if bytes.len() > MAX_HOST_CONFIG_BYTES {
            return Err(HostConfigError::TooLarge {
                size: bytes.len() as u64,
                max: MAX_HOST_CONFIG_BYTES,
            });
        }
        Self::from_json_unbounded(bytes)
    }

    fn from_json_unbounded(bytes: &[u8]) -> Result<Self, HostConfigError> {
        let StrictValue(value) =
            serde_json::from_slice(bytes).map_err(|e| HostConfigError::Json(e.to_string()))?;
        let Value::Object(obj) = value else {
            return Err(HostConfigError::Json(format!(
                "expected a JSON object, found {}",
                show(&value)
            )));
        };

        // 1. network_mode
        let network_mode = match get(&obj, NETWORK_MODE) {
            None => {
                return Err(HostConfigError::Missing {
                    field: NETWORK_MODE,
                });
            }
            Some(Value::String(s)) if s == "static" => NetworkMode::Static,
            Some(Value::String(s)) if s == "dhcp" => NetworkMode::Dhcp,
            Some(v) => {
                return Err(invalid(
                    NETWORK_MODE,
                    format!("{} is not \"static\" or \"dhcp\"", show(v)),
                ));
            }
        };

        // 2. host_ip, gateway (checked when present in any mode, required when static)
        let host_ip = match get_str(&obj, HOST_IP, false)? {
            None => None,
            Some(s) => Some(
                s.parse::<IpCidr>()
                    .map_err(|e| invalid(HOST_IP, e.to_string()))?,
            ),
        };
        let gateway = match get_str(&obj, GATEWAY, false)? {
            None => None,
            Some(s) => Some(parse_ip(GATEWAY, s)?),
        };
        if network_mode == NetworkMode::Static {
            if host_ip.is_none() {
                return Err(invalid(
                    HOST_IP,
                    "is required when network_mode is \"static\"",
                ));
            }
            if gateway.is_none() {
                return Err(invalid(
                    GATEWAY,
                    "is required when network_mode is \"static\"",
                ));
            }
        }

        // DNS: a list of IPs, or (legacy) a single string.
        let dns = match get(&obj, DNS) {
            None => Vec::new(),
            Some(Value::String(s)) => vec![parse_ip(DNS, s)?],
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => s.parse().map_err(|_| {
                        invalid(
                            DNS,
                            format!("entry at index {i}: {s:?} is not an IP address"),
                        )
                    }),
                    v => Err(invalid(
                        DNS,
                        format!("entry at index {i}: {} is not a string", show(v)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(invalid(
                    DNS,
                    format!("{} is not a list of IP addresses", show(v)),
                ));
            }
        };

        // 3. network_interfaces (or legacy singular network_interface)
        let network_interfaces = match get(&obj, INTERFACES) {
            Some(Value::Array(a)) if a.is_empty() => {
                return Err(invalid(INTERFACES, "is set but empty; use null or omit it"));
            }
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| parse_interface(i, v))
                .collect::<Result<_, _>>()?,
            Some(v) => return Err(invalid(INTERFACES, format!("{} is not a list", show(v)))),
            None => match get_str(&obj, INTERFACE_LEGACY, true)? {
                None => Vec::new(),
                Some(m) => vec![NetworkInterface {
                    name: None,
                    mac: Some(
                        m.parse::<MacAddr>()
                            .map_err(|e| invalid(INTERFACE_LEGACY, e.to_string()))?,
                    ),
                }],
            },
        };

        // 4. ospkg_pointer (or legacy provisioning_urls)
        let pointer_text = match get_str(&obj, POINTER, true)? {
            Some(p) => p.to_owned(),
            None => match get(&obj, PROVISIONING_URLS) {
                None => return Err(HostConfigError::Missing { field: POINTER }),
                Some(Value::Array(a)) if a.is_empty() => {
                    return Err(HostConfigError::Missing { field: POINTER });
                }
                Some(Value::Array(a)) => {
                    let mut urls = Vec::with_capacity(a.len());
                    for (i, v) in a.iter().enumerate() {
                        match v {
                            Value::String(s) if !s.is_empty() && !s.contains(',') => {
                                urls.push(s.as_str());
                            }
                            v => {
                                return Err(invalid(
                                    PROVISIONING_URLS,
                                    format!(
                                        "entry at index {i}: {} is not a non-empty URL without ','",
                                        show(v)
                                    ),
                                ));
                            }
                        }
                    }
                    urls.join(",")
                }
                Some(v) => {
                    return Err(invalid(
                        PROVISIONING_URLS,
                        format!("{} is not a list of URLs", show(v)),
                    ));
                }
            },
        };
        let ospkg_pointer = OsPkgPointer::parse(&pointer_text)?;

        // 5. identity / authentication
        let identity = get_str(&obj, IDENTITY, true)?
            .map(|s| Identity::new(s).map_err(|e| credential_error(IDENTITY, &e)))
            .transpose()?;
        let authentication = get_str(&obj, AUTHENTICATION, true)?
            .map(|s| AuthToken::new(s).map_err(|e| credential_error(AUTHENTICATION, &e)))
            .transpose()?;
        if ospkg_pointer.uses_id() && identity.is_none() {
            return Err(invalid(
                IDENTITY,
                "is required because ospkg_pointer uses $ID",
            ));
        }
        if ospkg_pointer.uses_auth() && authentication.is_none() {
            return Err(invalid(
                AUTHENTICATION,
                "is required because ospkg_pointer uses $AUTH",
            ));
        }

        // 6. bonding
        let bonding = match get_str(&obj, BONDING_MODE, true)? {
            None => None,
            Some(m) => {
                let mode = BondingMode::from_name(m).ok_or_else(|| {
                    invalid(
                        BONDING_MODE,
                        format!(
                            "{m:?} is not one of balance-rr, active-backup, balance-xor, \
                             broadcast, 802.3ad, balance-tlb, balance-alb"
                        ),
                    )
                })?;
                let name = get_str(&obj, BOND_NAME, true)?
                    .ok_or_else(|| invalid(BOND_NAME, "is required when bonding_mode is set"))?;
                net::check_interface_name(name).map_err(|e| invalid(BOND_NAME, e))?;
                if network_interfaces.is_empty() {
                    return Err(invalid(INTERFACES, "is required when bonding_mode is set"));
                }
                if let Some(i) = network_interfaces.iter().position(|n| n.name.is_none()) {
                    return Err(invalid(
                        INTERFACES,
                        format!(
                            "entry at index {i} has no interface_name, which bonding needs \
                             to enslave it"
                        ),
                    ));
                }
                Some(Bonding {
                    mode,
                    name: name.to_owned(),
                })
            }
        };

        // description (st-1.2+), free text
        let description = get_str(&obj, DESCRIPTION, false)?.map(str::to_owned);

        Ok(Self {
            network_mode,
            host_ip,
            gateway,
            dns,
            network_interfaces,
            ospkg_pointer,
            identity,
            authentication,
            bonding,
            description,
        })
    }

    /// The synthetic config stboot uses when no host config exists (st-reference §4.4):
    /// DHCP, pointer `provision.zip`, everything else unset.
    pub fn provisioning_fallback() -> Self {
        Self {
            network_mode: NetworkMode::Dhcp,
            host_ip: None,
            gateway: None,
            dns: Vec::new(),
            network_interfaces: Vec::new(),
            ospkg_pointer: OsPkgPointer::provisioning(),
            identity: None,
            authentication: None,
            bonding: None,
            description: None,
        }
    }

    /// Whether the pointer is exactly `provision.zip`, the reference's trigger for provisioning
    /// mode (which forces the initramfs fetch method, st-reference §3.1). This compares only
    /// the pointer, as the reference does, not the whole config.
    pub fn is_provisioning_fallback(&self) -> bool {
        self.ospkg_pointer.as_str() == PROVISIONING_POINTER
    }

    /// Canonical pretty JSON (what `stmgr hostconfig check` prints): all st-1.x keys in order
    /// `network_mode, host_ip, gateway, dns, network_interfaces, ospkg_pointer, identity,
    /// authentication, bonding_mode, bond_name, description`, unset ones as `null`. Note that
    /// `authentication` is printed in clear.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        gojson::to_pretty(&self.out())
    }

    /// The same keys as [`HostConfig::to_json_pretty`], compact (Go's `json.Marshal`): what
    /// stprov stores in the `STHostConfig` EFI variable.
    pub fn to_json_compact(&self) -> Vec<u8> {
        gojson::to_compact(&self.out())
    }

    fn out(&self) -> OutHostConfig<'_> {
        let ip = |a: &IpAddr| a.to_string();
        OutHostConfig {
            network_mode: self.network_mode.as_str(),
            host_ip: self.host_ip.map(|c| c.to_string()),
            gateway: self.gateway.as_ref().map(ip),
            dns: (!self.dns.is_empty()).then(|| self.dns.iter().map(ip).collect()),
            network_interfaces: (!self.network_interfaces.is_empty()).then(|| {
                self.network_interfaces
                    .iter()
                    .map(|n| OutInterface {
                        interface_name: n.name.as_deref(),
                        mac_address: n.mac.map(|m| m.to_string()),
                    })
                    .collect()
            }),
            ospkg_pointer: self.ospkg_pointer.as_str(),
            identity: self.identity.as_ref().map(Identity::as_str),
            authentication: self.authentication.as_ref().map(AuthToken::expose),
            bonding_mode: self.bonding.as_ref().map(|b| b.mode.as_str()),
            bond_name: self.bonding.as_ref().map(|b| b.name.as_str()),
            description: self.description.as_deref(),
        }
    }

    /// Static or DHCP.
    pub fn network_mode(&self) -> NetworkMode {
        self.network_mode
    }
    /// For static mode, the address and the default gateway (always `Some` when static).
    pub fn static_addressing(&self) -> Option<(IpCidr, IpAddr)> {
        match (self.network_mode, self.host_ip, self.gateway) {
            (NetworkMode::Static, Some(ip), Some(gw)) => Some((ip, gw)),
            _ => None,
        }
    }
    /// `host_ip` as written (also kept, unused, in DHCP mode).
    pub fn host_ip(&self) -> Option<IpCidr> {
        self.host_ip
    }
    /// `gateway` as written (also kept, unused, in DHCP mode).
    pub fn gateway(&self) -> Option<IpAddr> {
        self.gateway
    }
    /// DNS servers; empty means "leave resolv.conf alone".
    pub fn dns(&self) -> &[IpAddr] {
        &self.dns
    }
    /// Configured interfaces; empty means "try every interface".
    pub fn network_interfaces(&self) -> &[NetworkInterface] {
        &self.network_interfaces
    }
    /// Where the OS package is.
    pub fn ospkg_pointer(&self) -> &OsPkgPointer {
        &self.ospkg_pointer
    }
    /// The `$ID` value.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }
    /// The `$AUTH` value.
    pub fn authentication(&self) -> Option<&AuthToken> {
        self.authentication.as_ref()
    }
    /// The bond to build, if any.
    pub fn bonding(&self) -> Option<&Bonding> {
        self.bonding.as_ref()
    }
    /// Free-text description (st-1.2+).
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The descriptor URLs for a network fetch, placeholders filled in, in preference order.
    pub fn descriptor_urls(&self) -> Result<Vec<url::Url>, OsPkgPointerError> {
        self.ospkg_pointer
            .urls()?
            .iter()
            .enumerate()
            .map(|(index, t)| {
                t.render(self.identity.as_ref(), self.authentication.as_ref())
                    .map_err(|reason| OsPkgPointerError::Url { index, reason })
            })
            .collect()
    }

    /// The initramfs (`ospkg/X.json`, `ospkg/X.zip`) paths, `$ID`/`$AUTH` filled in first
    /// (st-reference §5.6). See [`OsPkgPointer::initramfs_paths`].
    pub fn initramfs_paths(&self) -> Result<(String, String), OsPkgPointerError> {
        self.ospkg_pointer
            .initramfs_paths_with(self.identity.as_ref(), self.authentication.as_ref())
    }
}

#[derive(Serialize)]
struct OutHostConfig<'a> {
    network_mode: &'static str,
    host_ip: Option<String>,
    gateway: Option<String>,
    dns: Option<Vec<String>>,
    network_interfaces: Option<Vec<OutInterface<'a>>>,
    ospkg_pointer: &'a str,
    identity: Option<&'a str>,
    authentication: Option<&'a str>,
    bonding_mode: Option<&'static str>,
    bond_name: Option<&'a str>,
    description: Option<&'a str>,
}

#[derive(Serialize)]
struct OutInterface<'a> {
    interface_name: Option<&'a str>,
    mac_address: Option<String>,
}

/// A `serde_json::Value` that rejects duplicate object keys at any depth.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Fuzz entry point: parse; on success re-serialise, re-parse and check equality.
///
/// The re-parse skips the size cap: Go-style escaping (`<` → `\u003c`) and the added `null`
/// keys can make the canonical form of a near-limit input larger than the input.
#[doc(hidden)]
#[allow(clippy::panic)]
pub fn fuzz_host_config(data: &[u8]) {
    if let Ok(hc) = HostConfig::from_json(data) {
        let out = hc.to_json_pretty();
        match HostConfig::from_json_unbounded(&out) {
            Ok(again) if again == hc => {}
            other => panic!(
                "host config round trip mismatch:\n{}\n{hc:?}\n{other:?}",
                String::from_utf8_lossy(&out)
            ),
        }
        let _ = hc.descriptor_urls();
        let _ = hc.initramfs_paths();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fallback() {
        let f = HostConfig::provisioning_fallback();
        assert!(f.is_provisioning_fallback());
        assert_eq!(f.network_mode(), NetworkMode::Dhcp);
        assert_eq!(
            f.initramfs_paths().unwrap(),
            ("ospkg/provision.json".into(), "ospkg/provision.zip".into())
        );
        let again = HostConfig::from_json(&f.to_json_pretty()).unwrap();
        assert_eq!(again, f);
        let g =
            HostConfig::from_json(br#"{"network_mode":"dhcp","ospkg_pointer":"provision.zip"}"#)
                .unwrap();
        assert_eq!(g, f);
    }

    #[test]
    fn bonding_modes_round_trip() {
        for m in BondingMode::ALL {
            assert_eq!(BondingMode::from_name(m.as_str()), Some(m));
        }
        assert_eq!(BondingMode::from_name("802.3AD"), None);
    }
}
