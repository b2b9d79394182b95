//! Host config and URL template behaviour through the public API, plus round-trip properties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use st_format::host_config::{OsPkgPointerError, fuzz_host_config};
use st_format::url_template::fuzz_url_template;
use st_format::{
    AuthToken, BondingMode, HostConfig, HostConfigError, Identity, MacAddr, NetworkMode,
    UrlTemplate, UrlTemplateError,
};

fn parse(json: &str) -> Result<HostConfig, HostConfigError> {
    HostConfig::from_json(json.as_bytes())
}

#[test]
fn accessors_of_a_full_config() {
    let c = parse(
        r#"{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2",
            "dns":["9.9.9.9"],"network_interfaces":[{"interface_name":"eth0","mac_address":"aabb.ccdd.eeff"},"eth1"],
            "ospkg_pointer":"https://$ID.example.org/os.json,http://b.example.org/$AUTH/os.json",
            "identity":"node42","authentication":"t0ken","bonding_mode":"balance-alb","bond_name":"bond0",
            "description":"d"}"#,
    )
    .unwrap();
    assert_eq!(c.network_mode(), NetworkMode::Static);
    let (ip, gw) = c.static_addressing().unwrap();
    assert_eq!(ip.to_string(), "10.0.2.15/24");
    assert_eq!(gw.to_string(), "10.0.2.2");
    assert_eq!(c.dns().len(), 1);
    let ifs = c.network_interfaces();
    assert_eq!(ifs[0].name(), Some("eth0"));
    assert_eq!(
        ifs[0].mac(),
        Some(MacAddr::new([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]))
    );
    assert_eq!((ifs[1].name(), ifs[1].mac()), (Some("eth1"), None));
    let bond = c.bonding().unwrap();
    assert_eq!(
        (bond.mode(), bond.name()),
        (BondingMode::BalanceAlb, "bond0")
    );
    assert_eq!(c.identity().unwrap().as_str(), "node42");
    assert_eq!(c.authentication().unwrap().expose(), "t0ken");
    assert_eq!(c.description(), Some("d"));
    assert!(c.ospkg_pointer().is_url_list());
    let urls = c.descriptor_urls().unwrap();
    assert_eq!(urls[0].as_str(), "https://node42.example.org/os.json");
    assert_eq!(urls[1].as_str(), "http://b.example.org/t0ken/os.json");
    assert_eq!(c.initramfs_paths(), Err(OsPkgPointerError::NotFileName));
    assert!(!c.is_provisioning_fallback());
    // The secret never shows in Debug output.
    assert!(!format!("{c:?}").contains("t0ken"));
}

#[test]
fn dhcp_has_no_static_addressing() {
    let c = parse(r#"{"network_mode":"dhcp","host_ip":"10.0.2.15/24","ospkg_pointer":"x.zip"}"#)
        .unwrap();
    assert_eq!(c.static_addressing(), None);
    assert_eq!(c.host_ip().unwrap().prefix(), 24);
}

#[test]
fn pointer_rule_url_list_or_initramfs_name() {
    let c = parse(r#"{"network_mode":"dhcp","ospkg_pointer":"some_folder/my-ospkg.zip"}"#).unwrap();
    assert!(!c.ospkg_pointer().is_url_list());
    assert_eq!(
        c.initramfs_paths().unwrap(),
        (
            "ospkg/some_folder/my-ospkg.json".to_owned(),
            "ospkg/some_folder/my-ospkg.zip".to_owned()
        )
    );
    assert!(matches!(
        c.descriptor_urls(),
        Err(OsPkgPointerError::NotUrlList { .. })
    ));

    // $ID in an initramfs name is substituted too.
    let c = parse(r#"{"network_mode":"dhcp","ospkg_pointer":"hosts/$ID.zip","identity":"n1"}"#)
        .unwrap();
    assert_eq!(c.initramfs_paths().unwrap().0, "ospkg/hosts/n1.json");

    // A traversal attempt is only refused when the initramfs paths are asked for.
    let c = parse(r#"{"network_mode":"dhcp","ospkg_pointer":"../etc/x"}"#).unwrap();
    assert!(matches!(
        c.initramfs_paths(),
        Err(OsPkgPointerError::BadFileName { .. })
    ));
}

#[test]
fn provisioning_fallback_is_pointer_based() {
    let c = parse(r#"{"network_mode":"static","host_ip":"10.0.0.2/8","gateway":"10.0.0.1","ospkg_pointer":"provision.zip"}"#)
        .unwrap();
    assert!(c.is_provisioning_fallback());
    assert!(HostConfig::provisioning_fallback().is_provisioning_fallback());
}

#[test]
fn too_large() {
    let mut big = br#"{"network_mode":"dhcp","ospkg_pointer":"x.zip","description":""#.to_vec();
    big.resize(st_format::limits::MAX_HOST_CONFIG_BYTES + 1, b'a');
    assert!(matches!(
        HostConfig::from_json(&big),
        Err(HostConfigError::TooLarge { .. })
    ));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let s = format!(
        r#"{{"network_mode":"dhcp","ospkg_pointer":"x.zip","junk":{}{}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(matches!(parse(&s), Err(HostConfigError::Json(_))));
}

#[test]
fn url_template_public_api() {
    let t = UrlTemplate::parse("https://example.org/$ID?auth=$AUTH").unwrap();
    assert_eq!(t.to_string(), "https://example.org/$ID?auth=$AUTH");
    let id = Identity::new("123").unwrap();
    let auth = AuthToken::new("abc-9").unwrap();
    assert_eq!(
        t.render(Some(&id), Some(&auth)).unwrap().as_str(),
        "https://example.org/123?auth=abc-9"
    );
    assert_eq!(t.render(None, None), Err(UrlTemplateError::MissingIdentity));
    assert!(matches!(
        UrlTemplate::parse("gopher://example.org/"),
        Err(UrlTemplateError::Scheme { .. })
    ));
}

#[test]
fn fuzz_helpers_on_golden_inputs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/hostconfig");
    for kind in ["valid", "invalid"] {
        for e in std::fs::read_dir(root.join(kind)).unwrap() {
            let data = std::fs::read(e.unwrap().path()).unwrap();
            fuzz_host_config(&data);
            fuzz_url_template(&data);
        }
    }
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

fn ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
        "[0-9a-fA-F:./]{0,12}",
    ]
}

fn mac() -> impl Strategy<Value = String> {
    (any::<[u8; 6]>(), 0..4u8).prop_map(|(b, style)| match style {
        0 => b.map(|x| format!("{x:02x}")).join(":"),
        1 => b.map(|x| format!("{x:02X}")).join("-"),
        2 => format!(
            "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        ),
        _ => "zz".to_owned(),
    })
}

fn value_strategy() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::{Value, json};
    let mode = prop_oneof![
        Just(json!("static")),
        Just(json!("dhcp")),
        Just(Value::Null),
        Just(json!("x"))
    ];
    let host_ip = opt((ip(), 0..140u16).prop_map(|(a, p)| format!("{a}/{p}")));
    let dns = prop_oneof![
        Just(Value::Null),
        ip().prop_map(Value::from),
        prop::collection::vec(ip(), 0..3).prop_map(Value::from),
    ];
    let iface = prop_oneof![
        "[a-z0-9:/ ]{0,17}".prop_map(Value::from),
        (opt("[a-z0-9]{1,16}"), opt(mac()))
            .prop_map(|(n, m)| json!({"interface_name": n, "mac_address": m})),
    ];
    let ifaces = opt(prop::collection::vec(iface, 0..3));
    let url = prop_oneof![
        Just("https://a.example.org/os.json".to_owned()),
        Just("http://$ID.example.org/$AUTH".to_owned()),
        "(https?|ftp)://[a-z$ID]{1,8}(/[a-zA-Z<&>$]{0,8})?",
        "[a-z/.$ID]{1,12}",
    ];
    let pointer = opt(prop::collection::vec(url.clone(), 1..3).prop_map(|v| v.join(",")));
    let prov = opt(prop::collection::vec(url, 0..3));
    let cred = opt("[a-zA-Z0-9_.-]{0,5}");
    let bond_mode = opt(prop_oneof![
        Just("802.3ad".to_owned()),
        Just("balance-rr".to_owned()),
        Just(String::new()),
        Just("bad".to_owned())
    ]);
    let bond_name = opt("[a-z0-9]{0,6}");
    let desc = opt("\\PC{0,10}");
    (
        (mode, host_ip, opt(ip()), dns, ifaces, opt(mac())),
        (
            pointer,
            prov,
            cred.clone(),
            cred,
            bond_mode,
            bond_name,
            desc,
        ),
    )
        .prop_map(|((m, h, g, d, i, i1), (p, pu, id, au, bm, bn, de))| {
            json!({
                "network_mode": m, "host_ip": h, "gateway": g, "dns": d,
                "network_interfaces": i, "network_interface": i1,
                "ospkg_pointer": p, "provisioning_urls": pu, "identity": id,
                "authentication": au, "bonding_mode": bm, "bond_name": bn,
                "description": de, "version": 1
            })
        })
}

proptest! {
    #[test]
    fn structured_round_trip(v in value_strategy()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        // Panics on any round-trip mismatch.
        fuzz_host_config(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzz_host_config(&data);
        fuzz_url_template(&data);
    }

    #[test]
    fn url_template_round_trip(s in "(https?://)?[a-z.:@/$IDAUTH?=&%]{0,24}") {
        fuzz_url_template(s.as_bytes());
    }
}

#[test]
fn structured_generator_hits_valid_configs() {
    // Sanity check that the property test above exercises the success path at all.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strat = value_strategy();
    let ok = (0..2000)
        .filter(|_| {
            let v = strat.new_tree(&mut runner).unwrap().current();
            HostConfig::from_json(&serde_json::to_vec(&v).unwrap()).is_ok()
        })
        .count();
    assert!(ok > 20, "only {ok} of 2000 generated configs were valid");
}
