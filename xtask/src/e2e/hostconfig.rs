//! Host configs (ST 1.x `host_configuration.json`) for the scenarios, built with typed calls
//! instead of escaped JSON strings:
//!
//! ```text
//! HostConfigJson::slirp().pointer(&url)                  // static 10.0.2.15/24, DNS 10.0.2.3
//! HostConfigJson::static_ip(SLIRP_IP, SLIRP_GATEWAY).dns(&["10.0.2.2"]).pointer(&url)
//! HostConfigJson::dhcp().pointer(&url).with_nulls()      // all ten keys, as stprov writes
//! ```
//!
//! Keys not set are left out (or written as `null` with [`HostConfigJson::with_nulls`]).

use serde_json::{Map, Value, json};

/// The guest's address on slirp's network.
pub(crate) const SLIRP_IP: &str = "10.0.2.15/24";
/// slirp's gateway (also the host, where nginx and the fake servers listen).
pub(crate) const SLIRP_GATEWAY: &str = "10.0.2.2";
/// slirp's DNS forwarder.
pub(crate) const SLIRP_DNS: &str = "10.0.2.3";

/// A host config being built; [`HostConfigJson::to_json`] renders it.
#[derive(Clone, Debug)]
pub(crate) struct HostConfigJson {
    network_mode: &'static str,
    host_ip: Option<String>,
    gateway: Option<String>,
    dns: Option<Vec<String>>,
    network_interfaces: Option<Vec<(String, String)>>,
    ospkg_pointer: Option<String>,
    identity: Option<String>,
    authentication: Option<String>,
    bonding_mode: Option<String>,
    bond_name: Option<String>,
    nulls: bool,
}

impl HostConfigJson {
    fn mode(network_mode: &'static str) -> Self {
        Self {
            network_mode,
            host_ip: None,
            gateway: None,
            dns: None,
            network_interfaces: None,
            ospkg_pointer: None,
            identity: None,
            authentication: None,
            bonding_mode: None,
            bond_name: None,
            nulls: false,
        }
    }

    /// `"network_mode": "dhcp"`.
    pub(crate) fn dhcp() -> Self {
        Self::mode("dhcp")
    }

    /// `"network_mode": "static"` with `host_ip` (CIDR) and `gateway`.
    pub(crate) fn static_ip(host_ip: &str, gateway: &str) -> Self {
        let mut hc = Self::mode("static");
        hc.host_ip = Some(host_ip.to_owned());
        hc.gateway = Some(gateway.to_owned());
        hc
    }

    /// The usual static config on slirp's network: [`SLIRP_IP`] via [`SLIRP_GATEWAY`], DNS
    /// [`SLIRP_DNS`] (add the pointer).
    pub(crate) fn slirp() -> Self {
        Self::static_ip(SLIRP_IP, SLIRP_GATEWAY).dns(&[SLIRP_DNS])
    }

    /// `"dns": [...]`.
    pub(crate) fn dns(mut self, servers: &[&str]) -> Self {
        self.dns = Some(servers.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// `"ospkg_pointer"`: one descriptor URL (or an already comma-separated list, or a name
    /// for the initramfs method).
    pub(crate) fn pointer(mut self, pointer: &str) -> Self {
        self.ospkg_pointer = Some(pointer.to_owned());
        self
    }

    /// `"ospkg_pointer"`: these descriptor URLs, tried in order (joined with commas).
    pub(crate) fn pointers<S: AsRef<str>>(self, urls: &[S]) -> Self {
        let joined: Vec<&str> = urls.iter().map(AsRef::as_ref).collect();
        self.pointer(&joined.join(","))
    }

    /// `"identity"` (`$ID` in the pointer).
    pub(crate) fn identity(mut self, id: &str) -> Self {
        self.identity = Some(id.to_owned());
        self
    }

    /// `"authentication"` (`$AUTH` in the pointer).
    pub(crate) fn authentication(mut self, token: &str) -> Self {
        self.authentication = Some(token.to_owned());
        self
    }

    /// A bond: `"bonding_mode"`, `"bond_name"` and its members as `"network_interfaces"`
    /// (`(interface_name, mac_address)` pairs).
    pub(crate) fn bonding(mut self, mode: &str, bond_name: &str, members: &[(&str, &str)]) -> Self {
        self.bonding_mode = Some(mode.to_owned());
        self.bond_name = Some(bond_name.to_owned());
        self.network_interfaces = Some(
            members
                .iter()
                .map(|(name, mac)| ((*name).to_owned(), (*mac).to_owned()))
                .collect(),
        );
        self
    }

    /// Write every one of the ten keys, the unset ones as `null` (as stprov does).
    pub(crate) fn with_nulls(mut self) -> Self {
        self.nulls = true;
        self
    }

    /// The JSON text (pretty, newline-terminated).
    pub(crate) fn to_json(&self) -> String {
        let opt = |v: &Option<String>| v.as_ref().map(|s| json!(s));
        let fields: [(&str, Option<Value>); 10] = [
            ("network_mode", Some(json!(self.network_mode))),
            ("host_ip", opt(&self.host_ip)),
            ("gateway", opt(&self.gateway)),
            ("dns", self.dns.as_ref().map(|d| json!(d))),
            (
                "network_interfaces",
                self.network_interfaces.as_ref().map(|ifs| {
                    ifs.iter()
                        .map(|(name, mac)| json!({"interface_name": name, "mac_address": mac}))
                        .collect()
                }),
            ),
            ("ospkg_pointer", opt(&self.ospkg_pointer)),
            ("identity", opt(&self.identity)),
            ("authentication", opt(&self.authentication)),
            ("bonding_mode", opt(&self.bonding_mode)),
            ("bond_name", opt(&self.bond_name)),
        ];
        let mut obj = Map::new();
        for (key, value) in fields {
            match value {
                Some(v) => {
                    obj.insert(key.to_owned(), v);
                }
                None if self.nulls => {
                    obj.insert(key.to_owned(), Value::Null);
                }
                None => {}
            }
        }
        let v = Value::Object(obj);
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use st_format::host_config::HostConfig;

    use super::*;

    /// What stboot makes of it (st-format's parser, the one stboot uses).
    fn parse(hc: &HostConfigJson) -> HostConfig {
        HostConfig::from_json(hc.to_json().as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {}", hc.to_json()))
    }

    fn value(hc: &HostConfigJson) -> Value {
        serde_json::from_str(&hc.to_json()).unwrap()
    }

    #[test]
    fn slirp_static_is_what_stboot_reads() {
        let hc = HostConfigJson::slirp().pointer("https://10.0.2.2:8443/os.json");
        let v = value(&hc);
        assert_eq!(v["network_mode"], "static");
        assert_eq!(v["host_ip"], "10.0.2.15/24");
        assert_eq!(v["gateway"], "10.0.2.2");
        assert_eq!(v["dns"], json!(["10.0.2.3"]));
        assert_eq!(v["ospkg_pointer"], "https://10.0.2.2:8443/os.json");
        assert_eq!(v.as_object().map(Map::len), Some(5), "{v}");
        let c = parse(&hc);
        assert_eq!(c.dns().len(), 1);
        assert_eq!(c.descriptor_urls().map(|u| u.len()).ok(), Some(1));
    }

    #[test]
    fn pointers_are_comma_joined() {
        let hc = HostConfigJson::slirp().pointers(&["https://a/os.json", "https://b/os.json"]);
        assert_eq!(
            value(&hc)["ospkg_pointer"],
            "https://a/os.json,https://b/os.json"
        );
        assert_eq!(parse(&hc).descriptor_urls().map(|u| u.len()).ok(), Some(2));
    }

    #[test]
    fn dhcp_with_nulls_has_all_ten_keys() {
        let hc = HostConfigJson::dhcp()
            .pointer("https://10.0.2.2:1/os.json")
            .with_nulls();
        let v = value(&hc);
        assert_eq!(v.as_object().map(Map::len), Some(10), "{v}");
        assert_eq!(v["host_ip"], Value::Null);
        assert_eq!(v["bond_name"], Value::Null);
        assert!(hc.to_json().ends_with("}\n"));
        parse(&hc);
        let bare = HostConfigJson::dhcp().pointer("os");
        assert_eq!(value(&bare).as_object().map(Map::len), Some(2));
    }

    #[test]
    fn identity_authentication_and_bonding() {
        let hc = HostConfigJson::static_ip(SLIRP_IP, SLIRP_GATEWAY)
            .pointer("https://10.0.2.2:1/$ID/$AUTH/os.json")
            .identity("node-7")
            .authentication("tok3n")
            .bonding(
                "active-backup",
                "bond0",
                &[("eth0", "52:54:00:e2:e0:01"), ("eth1", "52:54:00:e2:e0:02")],
            );
        let v = value(&hc);
        assert_eq!(v["identity"], "node-7");
        assert_eq!(v["authentication"], "tok3n");
        assert_eq!(v["bonding_mode"], "active-backup");
        assert_eq!(v["bond_name"], "bond0");
        assert_eq!(
            v["network_interfaces"][1],
            json!({"interface_name": "eth1", "mac_address": "52:54:00:e2:e0:02"})
        );
        assert!(v.get("dns").is_none());
        let c = parse(&hc);
        assert_eq!(c.network_interfaces().len(), 2);
        assert!(c.bonding().is_some());
        assert!(c.identity().is_some() && c.authentication().is_some());
    }
}
