//! `st_host::net::configure` against real kernel networking, in network namespaces.
//!
//! Each test makes a client namespace (where `examples/netcfg` runs `configure` for a host
//! config) and a peer namespace holding the other ends of veth pairs (and `dnsmasq` as a DHCP
//! server where needed), then checks the result with `ip -j`. Needs root, `ip` (iproute2) and
//! `dnsmasq` (Debian `dnsmasq-base`); the bonding test needs the `bonding` kernel driver and
//! fails when it is missing unless `ST_HOST_TEST_ALLOW_NO_BONDING=1` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The netcfg example, built once per test process.
fn netcfg() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "st-host",
                "--example",
                "netcfg",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running cargo build --example netcfg");
        assert!(out.status.success(), "cargo build --example netcfg failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "netcfg")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo did not report the netcfg executable")
    })
}

fn check_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the network namespace tests need root (ip netns add, veth pairs, dnsmasq)"
    );
    require_tool("ip", "iproute2");
}

/// Fails the test, naming the Debian package, when `program` is not on `PATH` (a spawn error,
/// or a child of `ip netns exec` that cannot start, says far less).
fn require_tool(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()));
    assert!(
        found,
        "this test needs `{program}` (Debian package {package}; `cargo xtask test` installs it)"
    );
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ip(args: &[&str]) -> Output {
    run(Command::new("ip").args(args))
}

/// A client and a peer namespace, a scratch directory and background processes, all removed on
/// drop (also when the test fails).
struct Lab {
    client: String,
    peer: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Lab {
    fn new(tag: &str) -> Self {
        check_root();
        let id = format!(
            "{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let lab = Self {
            client: format!("stc-{tag}-{id}"),
            peer: format!("stp-{tag}-{id}"),
            dir: std::env::temp_dir().join(format!("st-host-net-{tag}-{id}")),
            children: Vec::new(),
        };
        std::fs::create_dir_all(&lab.dir).unwrap();
        ip(&["netns", "add", &lab.client]);
        ip(&["netns", "add", &lab.peer]);
        ip(&["-n", &lab.peer, "link", "set", "lo", "up"]);
        lab
    }

    /// A veth pair: `name` (with `mac`) in the client, `peer_name` in the peer namespace,
    /// the peer end up if `peer_up`.
    fn veth(&self, name: &str, mac: &str, peer_name: &str, peer_up: bool) {
        ip(&[
            "-n",
            &self.client,
            "link",
            "add",
            name,
            "address",
            mac,
            "type",
            "veth",
            "peer",
            "name",
            peer_name,
            "netns",
            &self.peer,
        ]);
        if peer_up {
            ip(&["-n", &self.peer, "link", "set", peer_name, "up"]);
        }
    }

    fn peer_addr(&self, dev: &str, cidr: &str) {
        let mut args = vec!["-n", &self.peer, "addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        ip(&args);
    }

    fn write_config(&self, json: &str) -> PathBuf {
        let p = self.dir.join("host_config.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    fn resolv(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// Run netcfg in the client namespace.
    fn netcfg(&self, config: &Path, extra: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.client])
            .arg(netcfg())
            .arg(config)
            .arg("--resolv-conf")
            .arg(self.resolv())
            .args(extra)
            .output()
            .unwrap();
        eprintln!(
            "--- netcfg stdout\n{}--- netcfg stderr\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["-n", &self.client, "-j"];
        a.extend_from_slice(args);
        serde_json::from_slice(&ip(&a).stdout).unwrap()
    }

    /// The global addresses on `dev` as "addr/prefix".
    fn addrs(&self, dev: &str) -> Vec<String> {
        let v = self.json(&["addr", "show", "dev", dev]);
        let mut out = Vec::new();
        for link in v.as_array().unwrap() {
            for a in link["addr_info"].as_array().unwrap() {
                if a["scope"] == "global" {
                    out.push(format!(
                        "{}/{}",
                        a["local"].as_str().unwrap(),
                        a["prefixlen"]
                    ));
                }
            }
        }
        out
    }

    /// The default route as (gateway, dev).
    fn default_route(&self, family: &str) -> Option<(String, String)> {
        let v = self.json(&[family, "route", "show", "default"]);
        let r = v.as_array()?.first()?;
        Some((
            r["gateway"].as_str()?.to_owned(),
            r["dev"].as_str()?.to_owned(),
        ))
    }

    fn dnsmasq(&mut self, dev: &str, range: &str, router: &str, dns: &str) {
        require_tool("dnsmasq", "dnsmasq-base");
        let log = std::fs::File::create(self.dir.join("dnsmasq.log")).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.peer,
                "dnsmasq",
                "--keep-in-foreground",
            ])
            .args([
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--port=0",
            ])
            .args([
                "--user=root",
                "--group=root",
                "--log-facility=-",
                "--log-dhcp",
                "--no-ping",
            ])
            .arg(format!("--interface={dev}"))
            .arg("--bind-interfaces")
            .arg(format!("--dhcp-range={range}"))
            .arg(format!("--dhcp-option=option:router,{router}"))
            .arg(format!("--dhcp-option=option:dns-server,{dns}"))
            .arg(format!(
                "--dhcp-leasefile={}",
                self.dir.join("leases").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("dnsmasq.pid").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dnsmasq (Debian package dnsmasq-base)");
        self.children.push(child);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Ok(log) = std::fs::read_to_string(self.dir.join("dnsmasq.log")) {
            eprintln!("--- dnsmasq log\n{log}");
        }
        for ns in [&self.client, &self.peer] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn static_v4(ifaces: &str) -> String {
    format!(
        r#"{{"network_mode":"static","host_ip":"10.61.0.2/24","gateway":"10.61.0.1",
        "dns":["9.9.9.9","149.112.112.112"],"network_interfaces":{ifaces},
        "ospkg_pointer":"https://os.example.org/os.json","identity":null,"authentication":null,
        "bonding_mode":null,"bond_name":null}}"#
    )
}

/// Static IPv4: address, default route, resolv.conf from the config's `dns`, lo up.
#[test]
fn static_ipv4() {
    let lab = Lab::new("s4");
    lab.veth("eth0", "02:00:00:00:61:01", "p0", true);
    lab.peer_addr("p0", "10.61.0.1/24");
    let cfg = lab.write_config(&static_v4("null"));
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "5"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("interface eth0\nmode static\naddress 10.61.0.2/24\n"));
    assert_eq!(lab.addrs("eth0"), ["10.61.0.2/24"]);
    assert_eq!(
        lab.default_route("-4"),
        Some(("10.61.0.1".into(), "eth0".into()))
    );
    assert_eq!(
        std::fs::read_to_string(lab.resolv()).unwrap(),
        "nameserver 9.9.9.9\nnameserver 149.112.112.112\n"
    );
    let lo = lab.json(&["link", "show", "lo"]);
    assert!(lo[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
}

/// Static IPv6: address (usable at once, no DAD) and IPv6 default route; no `dns`, so
/// resolv.conf is left alone.
#[test]
fn static_ipv6() {
    let lab = Lab::new("s6");
    lab.veth("eth0", "02:00:00:00:62:01", "p0", true);
    lab.peer_addr("p0", "2001:db8:62::1/64");
    let cfg = lab.write_config(
        r#"{"network_mode":"static","host_ip":"2001:db8:62::2/64","gateway":"2001:db8:62::1",
        "dns":null,"network_interfaces":null,"ospkg_pointer":"https://os.example.org/os.json",
        "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
    );
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "5"]);
    assert!(out.status.success());
    assert_eq!(lab.addrs("eth0"), ["2001:db8:62::2/64"]);
    let v = lab.json(&["addr", "show", "dev", "eth0"]);
    let tentative = v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == "2001:db8:62::2" && a["tentative"] == true);
    assert!(!tentative, "address still tentative: {v}");
    assert_eq!(
        lab.default_route("-6"),
        Some(("2001:db8:62::1".into(), "eth0".into()))
    );
    assert!(!lab.resolv().exists());
}

/// DHCP against dnsmasq: lease address, prefix, router and DNS (resolv.conf from the lease).
#[test]
fn dhcp_from_dnsmasq() {
    let mut lab = Lab::new("dh");
    lab.veth("eth0", "02:00:00:00:63:01", "p0", true);
    lab.peer_addr("p0", "10.63.0.1/24");
    lab.dnsmasq(
        "p0",
        "10.63.0.50,10.63.0.60,255.255.255.0,1h",
        "10.63.0.1",
        "10.63.0.53",
    );
    let cfg = lab.write_config(
        r#"{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,
        "network_interfaces":null,"ospkg_pointer":"https://os.example.org/os.json",
        "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
    );
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "5", "--dhcp-timeout", "4"]);
    assert!(out.status.success());
    let addrs = lab.addrs("eth0");
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    let (a, prefix) = addrs[0].split_once('/').unwrap();
    assert_eq!(prefix, "24");
    let last: u8 = a.strip_prefix("10.63.0.").unwrap().parse().unwrap();
    assert!((50..=60).contains(&last), "{a} outside the range");
    assert_eq!(
        lab.default_route("-4"),
        Some(("10.63.0.1".into(), "eth0".into()))
    );
    assert_eq!(
        std::fs::read_to_string(lab.resolv()).unwrap(),
        "nameserver 10.63.0.53\n"
    );
    assert!(stdout(&out).contains("mode dhcp\n"));
}

/// DHCP with no server: fails after the configured tries with an error naming the interface.
#[test]
fn dhcp_without_server_fails_clearly() {
    let lab = Lab::new("dn");
    lab.veth("eth0", "02:00:00:00:64:01", "p0", true);
    let cfg = lab.write_config(
        r#"{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,
        "network_interfaces":null,"ospkg_pointer":"https://os.example.org/os.json",
        "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
    );
    let out = lab.netcfg(
        &cfg,
        &[
            "--carrier-timeout",
            "5",
            "--dhcp-tries",
            "2",
            "--dhcp-timeout",
            "1",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network setup failed on every interface: eth0: DHCP: no lease after 2 tries: no DHCPOFFER"),
        "{err}"
    );
    assert!(lab.addrs("eth0").is_empty());
}

/// Two links; the config lists two entries, the first matching eth1 by MAC, the second
/// matching nothing. eth1 is used and eth0 stays unconfigured (the reference only honoured
/// the last entry, st-reference §11.11).
#[test]
fn mac_selects_interface() {
    let lab = Lab::new("mac");
    lab.veth("eth0", "02:00:00:00:65:01", "p0", true);
    lab.veth("eth1", "02:00:00:00:65:02", "p1", true);
    lab.peer_addr("p1", "10.61.0.1/24");
    let cfg = lab.write_config(&static_v4(
        r#"[{"interface_name":"eth1","mac_address":"02-00-00-00-65-02"},
            {"interface_name":"eth7","mac_address":"02:00:00:00:65:77"}]"#,
    ));
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "5"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("interface eth1\n"));
    assert_eq!(lab.addrs("eth1"), ["10.61.0.2/24"]);
    assert!(lab.addrs("eth0").is_empty());
    assert_eq!(
        lab.default_route("-4"),
        Some(("10.61.0.1".into(), "eth1".into()))
    );
}

/// No interfaces configured: eth0 (its peer is down, so no carrier) is skipped with a reason
/// and eth1 is configured.
#[test]
fn no_carrier_skipped() {
    let lab = Lab::new("car");
    lab.veth("eth0", "02:00:00:00:66:01", "p0", false);
    lab.veth("eth1", "02:00:00:00:66:02", "p1", true);
    lab.peer_addr("p1", "10.61.0.1/24");
    let cfg = lab.write_config(&static_v4("null"));
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "1"]);
    assert!(out.status.success());
    let s = stdout(&out);
    assert!(s.starts_with("interface eth1\n"), "{s}");
    assert!(s.contains("failed eth0: no carrier within 1s\n"), "{s}");
    assert_eq!(lab.addrs("eth1"), ["10.61.0.2/24"]);
    assert!(lab.addrs("eth0").is_empty());
}

fn bonding_available() -> bool {
    let _ = Command::new("modprobe")
        .arg("bonding")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    Path::new("/sys/class/net/bonding_masters").exists()
        || Path::new("/sys/module/bonding").exists()
}

/// Bonding: eth0 and eth1 enslaved into bond0 (active-backup, miimon 100), static address on
/// the bond, default route via the bond. The peer ends are bridged in the peer namespace.
/// Needs a host kernel with the bonding driver, which the development and CI machines lack
/// (their kernel has `CONFIG_BONDING` unset); bonding is proven end to end in QEMU with the
/// Debian kernel by `cargo xtask e2e` (scenario `bonding`). Run here with `--ignored` on a
/// machine that has it.
#[test]
#[ignore = "needs a host kernel with the bonding driver; covered by the QEMU e2e scenario"]
fn bonding_active_backup() {
    let lab = Lab::new("bond");
    lab.veth("eth0", "02:00:00:00:67:01", "p0", false);
    lab.veth("eth1", "02:00:00:00:67:02", "p1", false);
    ip(&["-n", &lab.peer, "link", "add", "br0", "type", "bridge"]);
    for p in ["p0", "p1"] {
        ip(&["-n", &lab.peer, "link", "set", p, "master", "br0"]);
        ip(&["-n", &lab.peer, "link", "set", p, "up"]);
    }
    ip(&["-n", &lab.peer, "link", "set", "br0", "up"]);
    lab.peer_addr("br0", "10.61.0.1/24");
    let cfg = lab.write_config(
        r#"{"network_mode":"static","host_ip":"10.61.0.2/24","gateway":"10.61.0.1",
        "dns":null,"network_interfaces":[{"interface_name":"eth0"},{"interface_name":"eth1"}],
        "ospkg_pointer":"https://os.example.org/os.json","identity":null,"authentication":null,
        "bonding_mode":"active-backup","bond_name":"bond0"}"#,
    );
    if !bonding_available() {
        // At least the failure must be clear.
        let out = lab.netcfg(&cfg, &["--carrier-timeout", "10"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bond0: creating bond (mode active-backup): "),
            "{err}"
        );
        let msg = "the kernel has no bonding driver (`modprobe bonding` failed and \
                   /sys/class/net/bonding_masters is missing); build it in or install the \
                   module, or set ST_HOST_TEST_ALLOW_NO_BONDING=1 to skip this test";
        if std::env::var_os("ST_HOST_TEST_ALLOW_NO_BONDING").is_some_and(|v| v == "1") {
            eprintln!("SKIPPED bonding_active_backup: {msg}");
            return;
        }
        panic!("{msg}");
    }
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "10"]);
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("interface bond0\n"));
    assert_eq!(lab.addrs("bond0"), ["10.61.0.2/24"]);
    assert_eq!(
        lab.default_route("-4"),
        Some(("10.61.0.1".into(), "bond0".into()))
    );
    let v = lab.json(&["-d", "link", "show", "bond0"]);
    let data = &v[0]["linkinfo"]["info_data"];
    assert_eq!(data["mode"], "active-backup", "{v}");
    assert_eq!(data["miimon"], 100, "{v}");
    for s in ["eth0", "eth1"] {
        let l = lab.json(&["link", "show", s]);
        assert_eq!(l[0]["master"], "bond0", "{l}");
    }
}

/// A minimal DHCP server on `dev` in namespace `ns`, run in a thread that joined that
/// namespace. It offers 10.64.0.77/24 and answers the first REQUEST with two rogue NAKs (one
/// without a server identifier, one naming another server, both with a newline in their text),
/// then a NAK, and the second with an ACK. Returns the message types it received.
fn nak_once_server(
    ns: &str,
    dev: &str,
    ready: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let ns_file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    let dev = dev.to_owned();
    std::thread::spawn(move || {
        use std::os::fd::AsFd;
        // Moves only this thread into the peer namespace.
        rustix::thread::move_into_link_name_space(
            ns_file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        let sock = std::net::UdpSocket::bind("0.0.0.0:67").unwrap();
        sock.set_broadcast(true).unwrap();
        // SAFETY: `dev` is a valid buffer of the given length.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                dev.as_ptr().cast(),
                dev.len() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0, "SO_BINDTODEVICE: {}", std::io::Error::last_os_error());
        sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        ready.send(()).unwrap();
        let mut seen = Vec::new();
        let mut requests = 0;
        let mut buf = [0u8; 1500];
        while let Ok(n) = sock.recv(&mut buf) {
            let p = &buf[..n];
            if n < 243 || p[0] != 1 || p[240] != 53 {
                continue;
            }
            let kind = p[242];
            seen.push(kind);
            let reply_kind = match kind {
                1 => 2,
                3 => {
                    requests += 1;
                    if requests == 1 { 6 } else { 5 }
                }
                _ => continue,
            };
            let mut r = vec![0u8; 236];
            r[0] = 2;
            r[1] = 1;
            r[2] = 6;
            r[4..8].copy_from_slice(&p[4..8]); // xid
            r[10] = 0x80;
            if reply_kind != 6 {
                r[16..20].copy_from_slice(&[10, 64, 0, 77]);
            }
            r[28..34].copy_from_slice(&p[28..34]); // chaddr
            r.extend_from_slice(&[99, 130, 83, 99, 53, 1, reply_kind]);
            r.extend_from_slice(&[54, 4, 10, 64, 0, 1]);
            if reply_kind == 6 {
                r.extend_from_slice(&[56, 9]);
                r.extend_from_slice(b"try again");
            } else {
                r.extend_from_slice(&[1, 4, 255, 255, 255, 0, 3, 4, 10, 64, 0, 1]);
                r.extend_from_slice(&[6, 4, 10, 64, 0, 53, 51, 4, 0, 0, 2, 88]);
            }
            r.push(255);
            if reply_kind == 6 {
                // Rogue NAKs first: to be ignored, their text never shown.
                let rogue = |server_id: &[u8]| {
                    let mut n = r[..240].to_vec();
                    n.extend_from_slice(&[53, 1, 6]);
                    n.extend_from_slice(server_id);
                    n.extend_from_slice(&[56, 25]);
                    n.extend_from_slice(b"rogue\nstboot: [INFO] fake");
                    n.push(255);
                    n
                };
                for id in [&[][..], &[54, 4, 10, 64, 0, 99]] {
                    sock.send_to(&rogue(id), "255.255.255.255:68").unwrap();
                }
            }
            sock.send_to(&r, "255.255.255.255:68").unwrap();
            if reply_kind == 5 {
                break;
            }
        }
        seen
    })
}

/// NAK handling against a real socket exchange: the first REQUEST is refused, the client
/// starts over with a new DISCOVER and takes the second ACK.
#[test]
fn dhcp_nak_then_ack() {
    let lab = Lab::new("nak");
    lab.veth("eth0", "02:00:00:00:68:01", "p0", true);
    lab.peer_addr("p0", "10.64.0.1/24");
    let (tx, rx) = std::sync::mpsc::channel();
    let server = nak_once_server(&lab.peer, "p0", tx);
    rx.recv().unwrap();
    let cfg = lab.write_config(
        r#"{"network_mode":"dhcp","host_ip":null,"gateway":null,"dns":null,
        "network_interfaces":null,"ospkg_pointer":"https://os.example.org/os.json",
        "identity":null,"authentication":null,"bonding_mode":null,"bond_name":null}"#,
    );
    let out = lab.netcfg(&cfg, &["--carrier-timeout", "5", "--dhcp-timeout", "3"]);
    let mut seen = server.join().unwrap();
    assert!(out.status.success());
    // A retransmitted DISCOVER is fine: the peer end of a veth that just got its carrier can
    // drop the first reply (its qdisc is activated asynchronously), and the client resends.
    seen.dedup();
    assert_eq!(
        seen,
        [1, 3, 1, 3],
        "DISCOVER REQUEST (NAK) DISCOVER REQUEST (ACK)"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("eth0: DHCPNAK from 10.64.0.1: try again"),
        "{err}"
    );
    assert!(!err.contains("rogue") && !err.contains("fake"), "{err}");
    assert_eq!(lab.addrs("eth0"), ["10.64.0.77/24"]);
    assert_eq!(
        lab.default_route("-4"),
        Some(("10.64.0.1".into(), "eth0".into()))
    );
    assert_eq!(
        std::fs::read_to_string(lab.resolv()).unwrap(),
        "nameserver 10.64.0.53\n"
    );
}
