//! stboot scenarios: a stboot image boots in QEMU, fetches the test OS package from nginx (or
//! a faulty server), verifies it and kexecs it, or refuses and recovers. Each asserts on the
//! serial console and on what the servers saw.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

use super::scenarios::{KEXEC_DIGEST_MODULES, NET_MODULES};
use super::{
    Ctx, Fault, FaultyServer, Nginx, NginxConfig, OS_BOOTED, OsPkg, SigningKeys, StbootInitramfs,
    TestPki, Vm, VmConfig, marker_timeout, test_mac,
};

/// stboot options for tests: power off instead of rebooting, no recovery pause, short
/// timeouts so a stalled server costs seconds.
pub(crate) const STBOOT_APPEND: &str = "stboot.recovery=poweroff stboot.recovery_delay=0 \
     stboot.http_timeout=5 stboot.backoff=1 stboot.retries=2 stboot.carrier_timeout=10";

/// For scenarios where nothing may boot: stboot goes round the URL list until the deadline
/// (20 minutes by default), so these give it 20 s: several rounds, then the summary.
pub(crate) const FAIL_DEADLINE: &str = "stboot.deadline=20";

/// The host name the DNS scenario resolves (served by [`super::dns::FakeDns`]).
pub(crate) const DNS_NAME: &str = "ospkg.e2e.test";

/// Console lines stboot prints (see crates/stboot/src/platform.rs and flow.rs).
pub(crate) const VERIFIED: &str = "verified OS package";
pub(crate) const KEXEC: &str = "kexec: booting";
pub(crate) const NOTHING_BOOTED: &str = "no OS package could be booted";
pub(crate) const RECOVERY: &str = "recovery: powering off";

/// What every network scenario needs: keys, the signed test OS package served by nginx over
/// HTTPS from `www/`, and the TLS PKI.
pub(crate) struct Served {
    pub(crate) keys: SigningKeys,
    pub(crate) pkg: OsPkg,
    pub(crate) pki: TestPki,
    pub(crate) www: PathBuf,
    pub(crate) nginx: Nginx,
}

/// Sign the test OS package (archive URL `url`, relative or absolute), put `os.json` and
/// `os.zip` under `www/<dir>/`, start nginx (HTTPS, plus plain HTTP when asked).
pub(crate) fn serve(
    ctx: &Ctx<'_>,
    url: &str,
    plain_http: bool,
    server_extra: &str,
) -> Result<Served> {
    let keys = ctx.signing_keys("keys")?;
    let pkg = ctx.test_ospkg("os", url, "", &[&keys])?;
    let www = ctx.path("www");
    fs::create_dir_all(&www)?;
    fs::copy(&pkg.json, www.join("os.json"))?;
    fs::copy(&pkg.zip, www.join("os.zip"))?;
    let pki = ctx.tls()?;
    let mut cfg = NginxConfig::https(&www, pki.server_files());
    cfg.plain_http = plain_http;
    cfg.server_extra = server_extra.to_owned();
    let nginx = ctx.nginx(&cfg)?;
    Ok(Served {
        keys,
        pkg,
        pki,
        www,
        nginx,
    })
}

/// A static host config on slirp's network.
pub(crate) fn static_host_config(pointer: &str) -> String {
    format!(
        r#"{{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.3"],"ospkg_pointer":"{pointer}"}}"#
    )
}

/// A stboot image with this trust policy, host config and the virtio-net modules (+ extra).
pub(crate) fn image(
    ctx: &Ctx<'_>,
    policy: &Path,
    host_config: Option<&str>,
    extra_modules: &[&str],
    ospkg: Option<&Path>,
) -> Result<PathBuf> {
    let hc = match host_config {
        Some(json) => {
            let p = ctx.path("host_configuration.json");
            fs::write(&p, json)?;
            Some(p)
        }
        None => None,
    };
    let modules = ctx.modules(&[NET_MODULES, KEXEC_DIGEST_MODULES, extra_modules].concat())?;
    ctx.stboot_initramfs(
        "stboot.cpio.gz",
        &StbootInitramfs {
            stboot: PathBuf::new(),
            trust_policy: policy.to_owned(),
            host_config: hc,
            modules,
            ospkg: ospkg.map(Path::to_owned),
        },
    )
}

/// Boot the stboot image with `nics` virtio NICs; `booted` says whether the test OS must come up
/// (and then must report in) or must never come up (and stboot must print its failure summary
/// and power off).
pub(crate) fn boot(
    ctx: &Ctx<'_>,
    image: &Path,
    nics: u8,
    extra_append: &str,
    booted: bool,
) -> Result<Vm> {
    boot_with(ctx, image, nics, extra_append, booted, Vec::new())
}

/// [`boot`] with extra QEMU arguments (e.g. UEFI firmware).
pub(crate) fn boot_with(
    ctx: &Ctx<'_>,
    image: &Path,
    nics: u8,
    extra_append: &str,
    booted: bool,
    extra_args: Vec<String>,
) -> Result<Vm> {
    let mut cfg: VmConfig = ctx.vm_config(image, &format!("{STBOOT_APPEND} {extra_append}"));
    cfg.nics = (1..=nics).map(test_mac).collect();
    cfg.extra_args = extra_args;
    if !booted {
        cfg.fail_markers.push(OS_BOOTED.to_owned());
        cfg.fail_markers.push(KEXEC.to_owned());
    } else {
        cfg.fail_markers.push(NOTHING_BOOTED.to_owned());
        cfg.fail_markers.push("panic at".to_owned());
    }
    let t = marker_timeout(ctx.accel());
    let mut vm = ctx.start_vm(&cfg)?;
    if booted {
        vm.wait_for(VERIFIED, t)?;
        vm.wait_for(KEXEC, t)?;
        vm.wait_for(OS_BOOTED, t)?;
    } else {
        vm.wait_for(NOTHING_BOOTED, t)?;
        vm.wait_for(RECOVERY, t)?;
    }
    vm.wait_poweroff(t)?;
    Ok(vm)
}

fn served_ok(nginx: &Nginx, uri: &str) -> bool {
    nginx
        .access_log()
        .iter()
        .any(|e| e.status == 200 && e.method == "GET" && e.uri == uri)
}

fn console_has(vm: &Vm, text: &str) -> bool {
    vm.lines().iter().any(|l| l.contains(text))
}

fn ensure_console(vm: &Vm, text: &str) -> Result<()> {
    ensure!(
        console_has(vm, text),
        "serial console lacks {text:?} (see {})",
        vm.serial_log().display()
    );
    Ok(())
}

fn policy(ctx: &Ctx<'_>, s: &Served, threshold: u32, tls: Option<&Path>) -> Result<PathBuf> {
    ctx.trust_policy("trust", &[&s.keys.root_cert], threshold, "network", tls)
}

/// Static network, HTTPS with the pinned test CA, relative `os_pkg_url`.
pub(crate) fn happy_static(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let hc = static_host_config(&s.nginx.https_url("/os.json")?);
    let img = image(ctx, &p, Some(&hc), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "network: eth0 10.0.2.15/24 via 10.0.2.2 (static)")?;
    // sha256_ssse3 is in the image; on a CPU without SSSE3 (qemu64) it is skipped, not a fault.
    let warned: Vec<String> = vm
        .lines()
        .into_iter()
        .filter(|l| l.contains("[WARN] module"))
        .collect();
    ensure!(warned.is_empty(), "module warnings: {warned:?}");
    ensure!(
        served_ok(&s.nginx, "/os.json") && served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// DHCP from slirp; the archive URL is absolute.
pub(crate) fn happy_dhcp(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "https://10.0.2.2:0/placeholder.zip", false, "")?;
    // The absolute URL needs nginx's port, known only now: rewrite the descriptor.
    let zip_url = s.nginx.https_url("/os.zip")?;
    rewrite_url(&s.www.join("os.json"), &zip_url)?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let hc = super::dhcp_host_config(&s.nginx.https_url("/os.json")?);
    let img = image(ctx, &p, Some(&hc), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "(dhcp)")?;
    ensure!(
        served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The descriptor is unsigned: pointing it elsewhere keeps the signatures valid.
fn rewrite_url(descriptor: &Path, url: &str) -> Result<()> {
    let text = fs::read_to_string(descriptor)?;
    let start = text.find("\"os_pkg_url\": \"").context("os_pkg_url")? + 15;
    let end = start + text[start..].find('"').context("os_pkg_url end")?;
    fs::write(
        descriptor,
        format!("{}{url}{}", &text[..start], &text[end..]),
    )?;
    Ok(())
}

/// The trust policy pins an unrelated CA: the TLS handshake fails, nothing is requested,
/// nothing is booted.
pub(crate) fn wrong_tls_root(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 1, Some(&s.pki.other_ca_cert))?;
    let hc = static_host_config(&s.nginx.https_url("/os.json")?);
    let img = image(ctx, &p, Some(&hc), &[], None)?;
    let vm = boot(ctx, &img, 1, FAIL_DEADLINE, false)?;
    ensure_console(&vm, "TLS failure")?;
    ensure_console(&vm, "round 1: all 1 URL(s) failed; next round in")?;
    ensure!(
        s.nginx.access_log().is_empty(),
        "nginx served despite the wrong root: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The first server refuses connections; the second is used.
pub(crate) fn first_server_down(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let closed = super::nginx::free_port()?;
    let pointer = format!(
        "https://10.0.2.2:{closed}/os.json,{}",
        s.nginx.https_url("/os.json")?
    );
    let img = image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(
        &vm,
        &format!("https://10.0.2.2:{closed}/os.json: descriptor: cannot connect"),
    )?;
    ensure!(
        served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The first server has a tampered archive (one bit flipped): rejected; the second is used.
pub(crate) fn tampered_first(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let bad = s.www.join("bad");
    fs::create_dir_all(&bad)?;
    fs::copy(s.www.join("os.json"), bad.join("os.json"))?;
    let mut zip = fs::read(s.www.join("os.zip"))?;
    let mid = zip.len() / 2;
    zip[mid] ^= 1;
    fs::write(bad.join("os.zip"), zip)?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let pointer = format!(
        "{},{}",
        s.nginx.https_url("/bad/os.json")?,
        s.nginx.https_url("/os.json")?
    );
    let img = image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "does not verify over SHA-256 of the archive")?;
    ensure!(
        served_ok(&s.nginx, "/bad/os.zip") && served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// Threshold 2, one signature everywhere: nothing boots; the summary lists both URLs.
pub(crate) fn threshold_not_met(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 2, Some(&s.pki.ca_cert))?;
    let pointer = format!(
        "{},{}",
        s.nginx.https_url("/os.json")?,
        s.nginx.https_url("/os.json?again")?
    );
    let img = image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)?;
    let vm = boot(ctx, &img, 1, FAIL_DEADLINE, false)?;
    ensure_console(&vm, "1 valid of 1 signatures, 2 required")?;
    ensure_console(&vm, "round 2: all 2 URL(s) failed; next round in")?;
    let summary = vm
        .lines()
        .iter()
        .filter(|l| l.contains("[ERROR]   https://10.0.2.2"))
        .count();
    ensure!(
        summary == 2,
        "expected 2 summary lines, found {summary} (see {})",
        vm.serial_log().display()
    );
    Ok(())
}

/// The first server announces the archive's length but sends half: rejected; the second used.
pub(crate) fn truncated_download(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", true, "")?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let faulty = FaultyServer::start(Fault::Truncate { body: zip })?;
    // A descriptor on nginx (plain HTTP) whose archive lives on the truncating server.
    let t = s.www.join("t");
    fs::create_dir_all(&t)?;
    fs::copy(s.www.join("os.json"), t.join("os.json"))?;
    rewrite_url(&t.join("os.json"), &faulty.url("/os.zip"))?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let pointer = format!(
        "{},{}",
        s.nginx.http_url("/t/os.json")?,
        s.nginx.https_url("/os.json")?
    );
    let img = image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "truncated body")?;
    ensure!(
        !faulty.requests().is_empty(),
        "the truncating server saw no request"
    );
    Ok(())
}

/// The first server accepts and never answers: given up after the HTTP timeout (5 s); the
/// second is used.
pub(crate) fn stalled_server(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let faulty = FaultyServer::start(Fault::Stall)?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let pointer = format!(
        "{},{}",
        faulty.url("/os.json"),
        s.nginx.https_url("/os.json")?
    );
    let img = image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "timed out")?;
    ensure!(
        !faulty.requests().is_empty(),
        "the stalling server saw no request"
    );
    Ok(())
}

/// A descriptor on nginx (plain HTTP, under `www/<dir>/`) whose archive lives at `archive_url`,
/// and a pointer to it first and the good HTTPS copy second.
fn bad_archive_first(ctx: &Ctx<'_>, s: &Served, dir: &str, archive_url: &str) -> Result<PathBuf> {
    let d = s.www.join(dir);
    fs::create_dir_all(&d)?;
    fs::copy(s.www.join("os.json"), d.join("os.json"))?;
    rewrite_url(&d.join("os.json"), archive_url)?;
    let p = policy(ctx, s, 1, Some(&s.pki.ca_cert))?;
    let pointer = format!(
        "{},{}",
        s.nginx.http_url(&format!("/{dir}/os.json"))?,
        s.nginx.https_url("/os.json")?
    );
    image(ctx, &p, Some(&static_host_config(&pointer)), &[], None)
}

/// The first mirror sends the headers and part of the archive, then nothing: left after the
/// HTTP timeout (5 s here) without a body byte, not at the overall deadline; the second boots.
pub(crate) fn stalled_body(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", true, "")?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let sent = zip.len() / 3;
    let faulty = FaultyServer::start(Fault::StallBody { body: zip, sent })?;
    let img = bad_archive_first(ctx, &s, "stall", &faulty.url("/os.zip"))?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, &format!("no body bytes for 5 s after {sent} bytes"))?;
    ensure!(
        served_ok(&s.nginx, "/os.zip") && !faulty.requests().is_empty(),
        "nginx: {:?}, faulty: {:?}",
        s.nginx.access_log(),
        faulty.requests()
    );
    Ok(())
}

/// The first mirror trickles one byte every 2 s (never silent for the HTTP timeout): left
/// after one rate window (6 s here) for being under the minimum rate; the second boots.
pub(crate) fn trickling_body(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", true, "")?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let faulty = FaultyServer::start(Fault::Trickle {
        body: zip,
        every: std::time::Duration::from_secs(2),
    })?;
    let img = bad_archive_first(ctx, &s, "trickle", &faulty.url("/os.zip"))?;
    let vm = boot(ctx, &img, 1, "stboot.rate_window=6", true)?;
    ensure_console(&vm, "too slow:")?;
    ensure_console(&vm, "under the minimum of 65536 bytes/s")?;
    ensure!(
        served_ok(&s.nginx, "/os.zip") && !faulty.requests().is_empty(),
        "nginx: {:?}, faulty: {:?}",
        s.nginx.access_log(),
        faulty.requests()
    );
    Ok(())
}

/// `$ID` and `$AUTH` in the pointer are filled in from the host config; nginx sees them.
pub(crate) fn id_auth(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let dir = s.www.join("node-7").join("tok3n");
    fs::create_dir_all(&dir)?;
    fs::copy(s.www.join("os.json"), dir.join("os.json"))?;
    fs::copy(s.www.join("os.zip"), dir.join("os.zip"))?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let pointer = s.nginx.https_url("/$ID/$AUTH/os.json")?;
    let hc = format!(
        r#"{{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","ospkg_pointer":"{pointer}","identity":"node-7","authentication":"tok3n"}}"#
    );
    let img = image(ctx, &p, Some(&hc), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "/node-7/REDACTED/os.zip")?;
    let leaked: Vec<String> = vm
        .lines()
        .into_iter()
        .filter(|l| l.contains("tok3n"))
        .collect();
    ensure!(
        leaked.is_empty(),
        "the $AUTH token reached the console: {leaked:?}"
    );
    ensure!(
        served_ok(&s.nginx, "/node-7/tok3n/os.json") && served_ok(&s.nginx, "/node-7/tok3n/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The initramfs fetch method: the OS package is inside the stboot image; no NIC at all.
pub(crate) fn initramfs_method(ctx: &Ctx<'_>) -> Result<()> {
    let keys = ctx.signing_keys("keys")?;
    let pkg = ctx.test_ospkg("os", "", "", &[&keys])?;
    let p = ctx.trust_policy("trust", &[&keys.root_cert], 1, "initramfs", None)?;
    let hc = r#"{"network_mode":"dhcp","ospkg_pointer":"os"}"#;
    let img = image(ctx, &p, Some(hc), &[], Some(&pkg.json))?;
    let vm = boot(ctx, &img, 0, "", true)?;
    ensure_console(&vm, "OS package from the initramfs: /ospkg/os.zip")?;
    ensure!(
        !console_has(&vm, "network:"),
        "the initramfs method must not touch the network"
    );
    Ok(())
}

/// Two NICs bonded (active-backup), static address on the bond.
pub(crate) fn bonding(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let hc = format!(
        r#"{{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","ospkg_pointer":"{}","bonding_mode":"active-backup","bond_name":"bond0","network_interfaces":[{{"interface_name":"eth0","mac_address":"{}"}},{{"interface_name":"eth1","mac_address":"{}"}}]}}"#,
        s.nginx.https_url("/os.json")?,
        test_mac(1),
        test_mac(2)
    );
    let img = image(ctx, &p, Some(&hc), &["bonding"], None)?;
    let vm = boot(ctx, &img, 2, "", true)?;
    ensure_console(&vm, "network: bond0 10.0.2.15/24")?;
    ensure!(
        served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// A host name in the URL: stboot writes /etc/resolv.conf from the host config's `dns` and
/// resolves the name through it (a one-name DNS server on the host, reached through slirp).
pub(crate) fn dns(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let dns = super::dns::FakeDns::start(DNS_NAME, std::net::Ipv4Addr::new(10, 0, 2, 2))?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let port = s.nginx.https_port.context("https port")?;
    let hc = format!(
        r#"{{"network_mode":"static","host_ip":"10.0.2.15/24","gateway":"10.0.2.2","dns":["10.0.2.2"],"ospkg_pointer":"https://{DNS_NAME}:{port}/os.json"}}"#
    );
    let img = image(ctx, &p, Some(&hc), &[], None)?;
    let vm = boot(ctx, &img, 1, "", true)?;
    ensure_console(&vm, "wrote 1 DNS server(s) to /etc/resolv.conf")?;
    ensure!(
        dns.queries()
            .iter()
            .any(|q| q == &format!("{DNS_NAME} type 1")),
        "DNS saw {:?}",
        dns.queries()
    );
    ensure!(
        served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// UEFI (OVMF): no host config in the image; it comes from the EFI variable `STHostConfig`,
/// written into the firmware's variable store before the first boot, read through efivarfs.
pub(crate) fn efi_host_config(ctx: &Ctx<'_>) -> Result<()> {
    let s = serve(ctx, "os.zip", false, "")?;
    let p = policy(ctx, &s, 1, Some(&s.pki.ca_cert))?;
    let hc = static_host_config(&s.nginx.https_url("/os.json")?);
    let vars = super::ovmf::vars_with(&ctx.path("OVMF_VARS.fd"), "STHostConfig", hc.as_bytes())?;
    let img = image(ctx, &p, None, &["efivarfs"], None)?;
    let vm = boot_with(ctx, &img, 1, "", true, super::ovmf::qemu_args(&vars))?;
    ensure_console(&vm, "host config from EFI variable STHostConfig")?;
    ensure!(
        served_ok(&s.nginx, "/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}
