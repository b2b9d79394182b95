//! The scenarios, in run order ([`ALL`]), and the harness self-tests (no stboot).
//!
//! Add one: write `fn name(ctx: &Ctx<'_>) -> Result<()>` (a stboot scenario goes in `boot.rs`)
//! and list it in [`ALL`] with its command-line name and a one-line `about`. Everything it
//! writes goes under `ctx.dir` (`target/e2e/<name>/`, empty at the start). A stboot scenario
//! is the builders of `run.rs` and `hostconfig.rs`, then assertions:
//!
//! ```text
//! let s = Serve::new(ctx).start()?;          // keys, signed test OS (os.json/os.zip), nginx
//! let hc = HostConfigJson::slirp()           // static 10.0.2.15/24; or ::dhcp(), ::static_ip()
//!     .pointers(&[s.nginx.https_url("/os.json")?]);  // .dns() .identity() .bonding() ...
//! let img = StbootImage::new(ctx, s.trust()) // or TrustPolicy::network(root).threshold(2)...
//!     .host_config(&hc)                      // none: no host config in the image
//!     .modules(&["bonding"])                 // beyond the NIC and kexec-digest modules
//!     .build()?;                             // .ospkg(&descriptor): package in the image
//! let vm = StbootRun::new(ctx, &img)         // 1 NIC, STBOOT_APPEND, -kernel/-initrd
//!     .nics(2)
//!     .append("stboot.rate_window=6")
//!     .expect(Outcome::Boots)                // or Outcome::NothingBooted (20 s deadline)
//!     .firmware(Firmware::Ovmf { vars })     // .extra_qemu([..]) for more devices
//!     .run()?;                               // waited for the outcome and the power-off
//! vm.ensure_line("network: bond0 10.0.2.15/24")?;
//! ensure!(s.nginx.served("/os.zip"), "nginx: {:?}", s.nginx.access_log());
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

use super::run::NET_MODULES;
use super::{
    Ctx, Fault, FaultyServer, NetTopology, NginxConfig, OS_BOOTED, Scenario, boot, marker_timeout,
    measured, test_mac,
};
use crate::util::{cmd, say, succeeds};

/// Every scenario, in run order.
pub(crate) const ALL: &[Scenario] = &[
    Scenario {
        name: "harness-timeout",
        about: "self-test: a VM past its hard timeout is killed and the wait fails",
        run: harness_timeout,
    },
    Scenario {
        name: "modules",
        about: "module closures (virtio_net, bonding, efivarfs) resolve from .modinfo",
        run: modules,
    },
    Scenario {
        name: "host-servers",
        about: "nginx TLS with the test PKI (right and wrong root), faulty servers",
        run: host_servers,
    },
    Scenario {
        name: "smoke",
        about: "kernel + busybox test OS in QEMU, virtio-net over slirp, GET from nginx",
        run: smoke,
    },
    Scenario {
        name: "two-nics",
        about: "two virtio NICs (slirp per NIC, then shared hub) + bonding module; GET via eth1",
        run: two_nics,
    },
    Scenario {
        name: "test-ospkg",
        about: "the test OS package: stmgr keygen/create/sign/verify; its OS boots in QEMU",
        run: test_ospkg,
    },
    Scenario {
        name: "stboot-static",
        about: "stboot: static network, HTTPS, relative os_pkg_url -> boots",
        run: boot::happy_static,
    },
    Scenario {
        name: "stboot-dhcp",
        about: "stboot: DHCP from slirp, absolute os_pkg_url -> boots",
        run: boot::happy_dhcp,
    },
    Scenario {
        name: "stboot-wrong-tls-root",
        about: "stboot: unrelated TLS root -> nothing requested, nothing booted",
        run: boot::wrong_tls_root,
    },
    Scenario {
        name: "stboot-first-down",
        about: "stboot: first server refuses connections -> second used",
        run: boot::first_server_down,
    },
    Scenario {
        name: "stboot-tampered-first",
        about: "stboot: tampered archive on the first server -> second used",
        run: boot::tampered_first,
    },
    Scenario {
        name: "stboot-threshold",
        about: "stboot: threshold not met anywhere -> summary, nothing booted",
        run: boot::threshold_not_met,
    },
    Scenario {
        name: "stboot-truncated",
        about: "stboot: truncated archive download -> next URL",
        run: boot::truncated_download,
    },
    Scenario {
        name: "stboot-stalled",
        about: "stboot: stalled server -> timeout -> next URL",
        run: boot::stalled_server,
    },
    Scenario {
        name: "stboot-stalled-body",
        about: "stboot: archive stops mid-body -> left after the HTTP timeout, second mirror boots",
        run: boot::stalled_body,
    },
    Scenario {
        name: "stboot-trickle",
        about: "stboot: archive trickles a byte every 2 s -> under the minimum rate, second mirror boots",
        run: boot::trickling_body,
    },
    Scenario {
        name: "stboot-id-auth",
        about: "stboot: $ID/$AUTH filled in, seen in nginx's access log, $AUTH never on the console",
        run: boot::id_auth,
    },
    Scenario {
        name: "stboot-initramfs",
        about: "stboot: initramfs fetch method, no NIC",
        run: boot::initramfs_method,
    },
    Scenario {
        name: "stboot-dns",
        about: "stboot: host name in the URL, resolved through the host config's DNS",
        run: boot::dns,
    },
    Scenario {
        name: "stboot-efi",
        about: "stboot: UEFI (OVMF), host config from the EFI variable STHostConfig",
        run: boot::efi_host_config,
    },
    Scenario {
        name: "stprov-offline",
        about: "stprov offline write provisions a copy of OVMF_VARS; stboot under OVMF reads STHostConfig from NVRAM and boots",
        run: super::provision::stprov_offline,
    },
    Scenario {
        name: "stprov-first-boot",
        about: "UEFI: a provisioning guest runs stprov remote static (efivarfs, network, HEAD over HTTPS); the next boot of the same NVRAM is stboot's, which reads STHostConfig and boots",
        run: super::provision::stprov_first_boot,
    },
    Scenario {
        name: "stboot-second-root",
        about: "stboot: two signing roots, the package signed under the second -> boots",
        run: boot::second_root,
    },
    Scenario {
        name: "stboot-sigsum-logged",
        about: "stboot: Sigsum required, the package's only signature a proof from the in-memory test log (stmgr ospkg sigsum) -> boots, counted as logged",
        run: boot::sigsum_logged,
    },
    Scenario {
        name: "stboot-sigsum-required-unlogged",
        about: "stboot: Sigsum required, the package has only a plain signature -> refused as not logged, nothing booted",
        run: boot::sigsum_required_unlogged,
    },
    Scenario {
        name: "stboot-provisioning",
        about: "stboot: the only server down -> normal boot fails -> the image's provisioning package boots",
        run: boot::provisioning_mode,
    },
    Scenario {
        name: "attestation",
        about: "issue 10: Sigsum-logged package with the agent, swtpm with an EK certificate -> stattest check accepts (another trust policy refused) -> go-ahead with 1 of 2 signatures and one for another boot refused -> 2 staff sign (stmgr deploy authorize) -> serving -> power cycle: new AK, waiting, the old go-ahead refused",
        run: super::attest::attestation,
    },
    Scenario {
        name: "stboot-encrypted",
        about: "stboot: descriptor and archive age-encrypted (stmgr keygen age, stmgr ospkg encrypt), the identity in the image -> decrypted on arrival, boots",
        run: super::encrypted::encrypted_package,
    },
    Scenario {
        name: "stboot-encrypted-256m",
        about: "stboot: a 256 MiB encrypted package over plain HTTP boots in a 1024 MiB guest (decrypted chunk by chunk into the one archive buffer)",
        run: super::encrypted::encrypted_256m,
    },
    Scenario {
        name: "stboot-provisioning-ctrl-c",
        about: "stboot: Ctrl-C in the announced window -> the provisioning package boots; no key -> the normal one after the window",
        run: boot::provisioning_ctrl_c,
    },
    Scenario {
        name: "measured-boot",
        about: "swtpm (4 banks, identity): TPM == stmgr measure predict == replayed log, 3 boots: another package moves PCR 12 only, another policy PCR 13 only",
        run: measured::measured_boot,
    },
    Scenario {
        name: "tpm-required-absent",
        about: "stboot.tpm=required without a TPM -> ST:FAILED stage=measure, nothing booted",
        run: measured::tpm_required_absent,
    },
    Scenario {
        name: "uefi-uki",
        about: "UEFI (OVMF) boots stboot as a UKI from /EFI/BOOT/BOOTX64.EFI on a FAT disk -> boots",
        run: boot::uefi_uki,
    },
    Scenario {
        name: "uefi-uki-tpm",
        about: "uefi-uki with swtpm: PCR 11 (systemd stub) read by the OS == stmgr image inspect",
        run: boot::uefi_uki_tpm,
    },
    Scenario {
        name: "uefi-iso",
        about: "UEFI (OVMF) boots the stboot ISO (El Torito EFI) as a CD-ROM -> boots",
        run: boot::uefi_iso,
    },
    Scenario {
        name: "uefi-measured-iso",
        about: "UEFI + swtpm: stprov offline write into OVMF_VARS, OVMF boots the ISO (CD-ROM), stboot reads STHostConfig and measures: PCRs 12-14 == predict == replay, none before stboot",
        run: super::provision::uefi_measured_iso,
    },
    Scenario {
        name: "uefi-measured-uki",
        about: "UEFI + swtpm: a provisioning guest runs stprov remote static + remote run, the host stprov local run (hostfwd); the UKI boots from that NVRAM, measured as uefi-measured-iso",
        run: super::provision::uefi_measured_uki,
    },
    Scenario {
        name: "stboot-bonding",
        about: "stboot: two NICs bonded (active-backup), static address",
        run: boot::bonding,
    },
];

fn names(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect()
}

/// The module closures the scenarios need resolve, dependencies first.
fn modules(ctx: &Ctx<'_>) -> Result<()> {
    for (module, expect_first) in [
        ("virtio_net", "virtio_ring.ko"),
        ("virtio_pci", ""),
        ("bonding", ""),
        ("efivarfs", "efivarfs.ko"),
    ] {
        let closure = names(&ctx.modules(&[module])?);
        say!("e2e: closure of {module}: {}", closure.join(" "));
        ensure!(
            closure.last().map(String::as_str) == Some(&format!("{module}.ko")),
            "closure of {module} does not end with {module}.ko: {closure:?}"
        );
        if !expect_first.is_empty() {
            ensure!(
                closure.first().map(String::as_str) == Some(expect_first),
                "closure of {module} does not start with {expect_first}: {closure:?}"
            );
        }
    }
    let net = names(&ctx.modules(NET_MODULES)?);
    say!("e2e: closure of {NET_MODULES:?}: {}", net.join(" "));
    ensure!(
        net.len() == 8,
        "expected the 8 modules of the recipe: {net:?}"
    );
    let both = names(&ctx.modules(&[NET_MODULES, &["bonding"]].concat())?);
    let mut dedup = both.clone();
    dedup.sort();
    dedup.dedup();
    ensure!(dedup.len() == both.len(), "duplicates in {both:?}");
    Ok(())
}

/// nginx serves HTTPS with the test server certificate: curl accepts it with the test CA and
/// rejects it with the unrelated CA. The faulty servers stall and truncate as promised.
fn host_servers(ctx: &Ctx<'_>) -> Result<()> {
    let www = ctx.path("www");
    fs::create_dir_all(&www)?;
    fs::write(www.join("hello.txt"), "hello over TLS\n")?;
    let pki = ctx.tls()?;
    let mut cfg = NginxConfig::https(&www, pki.server_files());
    cfg.plain_http = true;
    let nginx = ctx.nginx(&cfg)?;
    let port = nginx.https_port.context("https port")?;
    for host in ["127.0.0.1", "localhost"] {
        let url = format!("https://{host}:{port}/hello.txt");
        let good = crate::util::output(
            cmd("curl")
                .args(["-sS", "--fail", "--cacert"])
                .arg(&pki.ca_cert)
                .arg(&url),
        )?;
        ensure!(
            good == "hello over TLS\n",
            "curl {url} with the test CA got {good:?}"
        );
        ensure!(
            !succeeds(
                cmd("curl")
                    .args(["-sS", "--fail", "--cacert"])
                    .arg(&pki.other_ca_cert)
                    .arg(&url)
            ),
            "curl {url} with the unrelated CA succeeded"
        );
    }
    let log = nginx.access_log();
    ensure!(
        log.iter()
            .filter(|e| e.uri == "/hello.txt" && e.status == 200 && e.scheme == "https")
            .count()
            == 2,
        "access log: {log:?}"
    );

    // Truncating server: announces 1000 bytes, sends 500.
    let trunc = FaultyServer::start(Fault::Truncate {
        body: vec![b'x'; 1000],
    })?;
    let mut s = TcpStream::connect(("127.0.0.1", trunc.port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET /os.zip HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut got = Vec::new();
    s.read_to_end(&mut got)?;
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    ensure!(
        head.contains("Content-Length: 1000") && body.len() == 500,
        "truncate: {head:?} + {} body bytes",
        body.len()
    );
    ensure!(
        trunc.requests() == ["GET /os.zip HTTP/1.1"],
        "{:?}",
        trunc.requests()
    );

    // Stalling server: no byte within 2 s.
    let stall = FaultyServer::start(Fault::Stall)?;
    let mut s = TcpStream::connect(("127.0.0.1", stall.port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut buf = [0u8; 1];
    match s.read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => bail!("stall server answered: {other:?}"),
    }
    Ok(())
}

/// The whole chain without stboot: the Debian kernel boots the busybox test OS in QEMU, loads
/// the virtio-net modules, configures eth0 for slirp and fetches a file from nginx on the host.
fn smoke(ctx: &Ctx<'_>) -> Result<()> {
    let www = ctx.path("www");
    fs::create_dir_all(&www)?;
    fs::write(www.join("hello.txt"), "hello-from-nginx\n")?;
    let nginx = ctx.nginx(&NginxConfig::http(&www))?;
    let initrd = ctx.test_os_initramfs("smoke.cpio.gz", NET_MODULES)?;
    let url = nginx.http_url("/hello.txt")?;
    let mut cfg = ctx.vm_config(&initrd, &format!("e2e.fetch={url}"));
    cfg.nics = vec![test_mac(1)];
    cfg.fail_markers.push("E2E-FETCH-FAILED".to_owned());
    cfg.fail_markers.push("E2E-INSMOD-FAILED".to_owned());
    let t = marker_timeout(ctx.accel());
    let mut vm = ctx.start_vm(&cfg)?;
    vm.wait_for("E2E-FETCH-OK hello-from-nginx", t)?;
    let (line, at) = vm.wait_for(OS_BOOTED, t)?;
    ensure!(
        line.contains(&format!("e2e.fetch={url}")),
        "cmdline: {line}"
    );
    vm.wait_poweroff(t)?;
    say!(
        "e2e: smoke: QEMU start -> {OS_BOOTED} {:.2}s, -> exit {:.2}s",
        at.as_secs_f64(),
        vm.elapsed().as_secs_f64()
    );
    let log = nginx.access_log();
    ensure!(
        log.iter()
            .any(|e| e.status == 200 && e.method == "GET" && e.uri == "/hello.txt"),
        "nginx access log has no `200 GET /hello.txt`: {log:?}"
    );
    Ok(())
}

/// Both NIC topologies of the harness work: the guest sees eth0 and eth1 with the given MACs and
/// reaches nginx through the second NIC alone. Also loads the bonding module (bond0 appears).
fn two_nics(ctx: &Ctx<'_>) -> Result<()> {
    let www = ctx.path("www");
    fs::create_dir_all(&www)?;
    fs::write(www.join("hello.txt"), "hello-eth1\n")?;
    let nginx = ctx.nginx(&NginxConfig::http(&www))?;
    let initrd =
        ctx.test_os_initramfs("two-nics.cpio.gz", &[NET_MODULES, &["bonding"]].concat())?;
    let t = marker_timeout(ctx.accel());
    for (topology, sub) in [
        (NetTopology::SlirpPerNic, "slirp-per-nic"),
        (NetTopology::SharedHub, "shared-hub"),
    ] {
        let url = nginx.http_url(&format!("/hello.txt?{sub}"))?;
        let mut cfg = ctx.vm_config(&initrd, &format!("e2e.fetch={url} e2e.iface=eth1"));
        cfg.nics = vec![test_mac(1), test_mac(2)];
        cfg.topology = topology;
        cfg.fail_markers.push("E2E-FETCH-FAILED".to_owned());
        cfg.fail_markers.push("E2E-INSMOD-FAILED".to_owned());
        let mut vm = ctx.start_vm_in(&cfg, sub)?;
        vm.wait_for("E2E-NIC bond0", t)?;
        vm.wait_for(&format!("E2E-NIC eth0 {}", test_mac(1)), t)?;
        vm.wait_for(&format!("E2E-NIC eth1 {}", test_mac(2)), t)?;
        vm.wait_for("E2E-FETCH-OK hello-eth1", t)?;
        vm.wait_for(OS_BOOTED, t)?;
        vm.wait_poweroff(t)?;
        let uri = format!("/hello.txt?{sub}");
        ensure!(
            nginx
                .access_log()
                .iter()
                .any(|e| e.status == 200 && e.uri == uri),
            "nginx access log has no `200 GET {uri}`"
        );
    }
    Ok(())
}

/// The OS package the stboot scenarios boot: made and signed by the real stmgr, verified against
/// a trust policy by `stmgr ospkg verify`, and its kernel + initramfs + cmdline boot to the
/// test OS marker.
fn test_ospkg(ctx: &Ctx<'_>) -> Result<()> {
    let keys = ctx.signing_keys("keys")?;
    let pkg = ctx.test_ospkg("os", "os.zip", "e2e.test=ospkg", &[&keys])?;
    let policy = ctx.trust_policy("trust", &[&keys.root_cert], 1, "network", None)?;
    crate::util::run(
        cmd(ctx.stmgr()?)
            .args(["ospkg", "verify", "--ospkg"])
            .arg(&pkg.json)
            .arg("--trust-policy")
            .arg(&policy),
    )?;
    let cfg = {
        let mut c = ctx.vm_config(&pkg.spec.initramfs, "");
        // VmConfig prepends console=ttyS0 panic=-1, which the package cmdline already has.
        c.append = pkg
            .spec
            .cmdline
            .trim_start_matches("console=ttyS0 panic=-1")
            .trim()
            .to_owned();
        c
    };
    let t = marker_timeout(ctx.accel());
    let mut vm = ctx.start_vm(&cfg)?;
    let (line, _) = vm.wait_for(OS_BOOTED, t)?;
    ensure!(line.contains("e2e.test=ospkg"), "cmdline: {line}");
    vm.wait_poweroff(t)?;
    Ok(())
}

/// The hard timeout works: a guest given 2 s (it needs about 5 s to reach /init on TCG) is
/// killed, and waiting for its marker fails naming the timeout rather than hanging.
fn harness_timeout(ctx: &Ctx<'_>) -> Result<()> {
    let initrd = ctx.test_os_initramfs("os.cpio.gz", &[])?;
    let mut cfg = ctx.vm_config(&initrd, "");
    cfg.timeout = Some(Duration::from_secs(2));
    let mut vm = ctx.start_vm(&cfg)?;
    match vm.wait_for(OS_BOOTED, Duration::from_secs(60)) {
        Ok(_) => bail!("the guest booted within the 2 s hard timeout; the self-test is moot"),
        Err(e) => {
            let e = format!("{e:#}");
            ensure!(e.contains("hard timeout"), "unexpected error: {e}");
        }
    }
    ensure!(
        vm.elapsed() < Duration::from_secs(10),
        "took {:?}",
        vm.elapsed()
    );
    ensure!(
        vm.wait_exit(Duration::from_secs(1)).is_err(),
        "wait_exit after a hard timeout must fail"
    );
    Ok(())
}
