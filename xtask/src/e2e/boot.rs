//! stboot scenarios: a stboot image boots in QEMU, fetches the test OS package from nginx (or
//! a faulty server), verifies it and kexecs it, or refuses and recovers. Each asserts on the
//! serial console and on what the servers saw. Built from the blocks in `run.rs` and
//! `hostconfig.rs`; listed in `scenarios::ALL`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;

use super::dns::{DNS_NAME, FakeDns};
use super::hostconfig::{HostConfigJson, SLIRP_GATEWAY, SLIRP_IP};
use super::run::{
    BootMedia, Firmware, Outcome, Serve, Served, StbootImage, StbootRun, TrustPolicy, rewrite_url,
};
use super::swtpm::{Swtpm, SwtpmSpec};
use super::{Ctx, Fault, FaultyServer, OS_BOOTED, Vm, ovmf, test_mac};
use crate::util::{cmd, output, say};

/// The usual image for a served package: [`Served::trust`], the slirp static host config
/// with this pointer.
fn slirp_image(ctx: &Ctx<'_>, s: &Served, pointer: &[String]) -> Result<PathBuf> {
    StbootImage::new(ctx, s.trust())
        .host_config(&HostConfigJson::slirp().pointers(pointer))
        .build()
}

/// Static network, HTTPS with the pinned test CA, relative `os_pkg_url`.
pub(crate) fn happy_static(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let img = slirp_image(ctx, &s, &[s.nginx.https_url("/os.json")?])?;
    let vm = StbootRun::new(ctx, &img).expect(Outcome::Boots).run()?;
    vm.ensure_line("network: eth0 10.0.2.15/24 via 10.0.2.2 (static)")?;
    // No TPM and none required: boots unmeasured, and says so.
    vm.ensure_line("no TPM: booting without measurements")?;
    vm.ensure_line("E2E-NO-TPM")?;
    // sha256_ssse3 is in the image; on a CPU without SSSE3 (qemu64) it is skipped, not a fault.
    let warned: Vec<String> = vm
        .lines()
        .into_iter()
        .filter(|l| l.contains("[WARN] module"))
        .collect();
    ensure!(warned.is_empty(), "module warnings: {warned:?}");
    ensure!(
        s.nginx.served("/os.json") && s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// DHCP from slirp; the archive URL is absolute.
pub(crate) fn happy_dhcp(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx)
        .archive_url("https://10.0.2.2:0/placeholder.zip")
        .start()?;
    // The absolute URL needs nginx's port, known only now: rewrite the descriptor.
    rewrite_url(&s.www.join("os.json"), &s.nginx.https_url("/os.zip")?)?;
    let hc = HostConfigJson::dhcp()
        .pointer(&s.nginx.https_url("/os.json")?)
        .with_nulls();
    let img = StbootImage::new(ctx, s.trust()).host_config(&hc).build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("(dhcp)")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The trust policy pins an unrelated CA: the TLS handshake fails, nothing is requested,
/// nothing is booted.
pub(crate) fn wrong_tls_root(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let hc = HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?);
    let img = StbootImage::new(ctx, s.trust().tls_roots(&s.pki.other_ca_cert))
        .host_config(&hc)
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .expect(Outcome::NothingBooted)
        .run()?;
    vm.ensure_line("TLS failure")?;
    vm.ensure_line("round 1: all 1 URL(s) failed; next round in")?;
    vm.ensure_line("ST:FAILED stage=fetch")?;
    ensure!(
        s.nginx.access_log().is_empty(),
        "nginx served despite the wrong root: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The first server refuses connections; the second is used.
pub(crate) fn first_server_down(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let closed = super::nginx::free_port()?;
    let down = format!("https://10.0.2.2:{closed}/os.json");
    let img = slirp_image(ctx, &s, &[down.clone(), s.nginx.https_url("/os.json")?])?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line(&format!("{down}: descriptor: cannot connect"))?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The first server has a tampered archive (one bit flipped): rejected; the second is used.
pub(crate) fn tampered_first(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    s.descriptor_copy("bad", None)?;
    let mut zip = fs::read(s.www.join("os.zip"))?;
    let mid = zip.len() / 2;
    zip[mid] ^= 1;
    fs::write(s.www.join("bad").join("os.zip"), zip)?;
    let pointer = [
        s.nginx.https_url("/bad/os.json")?,
        s.nginx.https_url("/os.json")?,
    ];
    let img = slirp_image(ctx, &s, &pointer)?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("does not verify over SHA-256 of the archive")?;
    ensure!(
        s.nginx.served("/bad/os.zip") && s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// Threshold 2, one signature everywhere: nothing boots; the summary lists both URLs.
pub(crate) fn threshold_not_met(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let pointer = [
        s.nginx.https_url("/os.json")?,
        s.nginx.https_url("/os.json?again")?,
    ];
    let img = StbootImage::new(ctx, s.trust().threshold(2))
        .host_config(&HostConfigJson::slirp().pointers(&pointer))
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .expect(Outcome::NothingBooted)
        .run()?;
    vm.ensure_line("1 valid of 1 signatures, 2 required")?;
    vm.ensure_line("round 2: all 2 URL(s) failed; next round in")?;
    vm.ensure_line("ST:FAILED stage=fetch")?;
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
    let s = Serve::new(ctx).plain_http().start()?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let faulty = FaultyServer::start(Fault::Truncate { body: zip })?;
    // A descriptor on nginx (plain HTTP) whose archive lives on the truncating server.
    s.descriptor_copy("t", Some(&faulty.url("/os.zip")))?;
    let pointer = [
        s.nginx.http_url("/t/os.json")?,
        s.nginx.https_url("/os.json")?,
    ];
    let img = slirp_image(ctx, &s, &pointer)?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("truncated body")?;
    ensure!(
        !faulty.requests().is_empty(),
        "the truncating server saw no request"
    );
    Ok(())
}

/// The first server accepts and never answers: given up after the HTTP timeout (5 s); the
/// second is used.
pub(crate) fn stalled_server(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let faulty = FaultyServer::start(Fault::Stall)?;
    let pointer = [faulty.url("/os.json"), s.nginx.https_url("/os.json")?];
    let img = slirp_image(ctx, &s, &pointer)?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("timed out")?;
    ensure!(
        !faulty.requests().is_empty(),
        "the stalling server saw no request"
    );
    Ok(())
}

/// An image whose pointer names first a descriptor on nginx (plain HTTP, `www/<dir>/`) with
/// its archive at `archive_url`, then the good HTTPS copy.
fn bad_archive_first(ctx: &Ctx<'_>, s: &Served, dir: &str, archive_url: &str) -> Result<PathBuf> {
    s.descriptor_copy(dir, Some(archive_url))?;
    let pointer = [
        s.nginx.http_url(&format!("/{dir}/os.json"))?,
        s.nginx.https_url("/os.json")?,
    ];
    slirp_image(ctx, s, &pointer)
}

/// The faulty first mirror was asked, and the good second one served the archive.
fn second_mirror_served(s: &Served, faulty: &FaultyServer) -> Result<()> {
    ensure!(
        s.nginx.served("/os.zip") && !faulty.requests().is_empty(),
        "nginx: {:?}, faulty: {:?}",
        s.nginx.access_log(),
        faulty.requests()
    );
    Ok(())
}

/// The first mirror sends the headers and part of the archive, then nothing: left after the
/// HTTP timeout (5 s here) without a body byte, not at the overall deadline; the second boots.
pub(crate) fn stalled_body(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).plain_http().start()?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let sent = zip.len() / 3;
    let faulty = FaultyServer::start(Fault::StallBody { body: zip, sent })?;
    let img = bad_archive_first(ctx, &s, "stall", &faulty.url("/os.zip"))?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line(&format!("no body bytes for 5 s after {sent} bytes"))?;
    second_mirror_served(&s, &faulty)
}

/// The first mirror trickles one byte every 2 s (never silent for the HTTP timeout): left
/// after one rate window (6 s here) for being under the minimum rate; the second boots.
pub(crate) fn trickling_body(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).plain_http().start()?;
    let zip = fs::read(s.www.join("os.zip"))?;
    let faulty = FaultyServer::start(Fault::Trickle {
        body: zip,
        every: std::time::Duration::from_secs(2),
    })?;
    let img = bad_archive_first(ctx, &s, "trickle", &faulty.url("/os.zip"))?;
    let vm = StbootRun::new(ctx, &img)
        .append("stboot.rate_window=6")
        .run()?;
    vm.ensure_line("too slow:")?;
    vm.ensure_line("under the minimum of 65536 bytes/s")?;
    second_mirror_served(&s, &faulty)
}

/// `$ID` and `$AUTH` in the pointer are filled in from the host config; nginx sees them.
pub(crate) fn id_auth(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    s.descriptor_copy("node-7/tok3n", None)?;
    fs::copy(
        s.www.join("os.zip"),
        s.www.join("node-7").join("tok3n").join("os.zip"),
    )?;
    let hc = HostConfigJson::static_ip(SLIRP_IP, SLIRP_GATEWAY)
        .pointer(&s.nginx.https_url("/$ID/$AUTH/os.json")?)
        .identity("node-7")
        .authentication("tok3n");
    let img = StbootImage::new(ctx, s.trust()).host_config(&hc).build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("/node-7/REDACTED/os.zip")?;
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
        s.nginx.served("/node-7/tok3n/os.json") && s.nginx.served("/node-7/tok3n/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// The initramfs fetch method: the OS package is inside the stboot image; no NIC at all.
pub(crate) fn initramfs_method(ctx: &Ctx<'_>) -> Result<()> {
    let keys = ctx.signing_keys("keys")?;
    let pkg = ctx.test_ospkg("os", "", "", &[&keys])?;
    let img = StbootImage::new(ctx, TrustPolicy::initramfs(&keys.root_cert))
        .host_config(&HostConfigJson::dhcp().pointer("os"))
        .ospkg(&pkg.json)
        .build()?;
    let vm = StbootRun::new(ctx, &img).nics(0).run()?;
    vm.ensure_line("OS package from the initramfs: /ospkg/os.zip")?;
    ensure!(
        !vm.has_line("network:"),
        "the initramfs method must not touch the network"
    );
    Ok(())
}

/// Two NICs bonded (active-backup), static address on the bond.
pub(crate) fn bonding(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let hc = HostConfigJson::static_ip(SLIRP_IP, SLIRP_GATEWAY)
        .pointer(&s.nginx.https_url("/os.json")?)
        .bonding(
            "active-backup",
            "bond0",
            &[("eth0", &test_mac(1)), ("eth1", &test_mac(2))],
        );
    let img = StbootImage::new(ctx, s.trust())
        .host_config(&hc)
        .modules(&["bonding"])
        .build()?;
    let vm = StbootRun::new(ctx, &img).nics(2).run()?;
    vm.ensure_line("network: bond0 10.0.2.15/24")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// A host name in the URL: stboot writes /etc/resolv.conf from the host config's `dns` and
/// resolves the name through it (a one-name DNS server on the host, reached through slirp).
pub(crate) fn dns(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let dns = FakeDns::start(DNS_NAME, std::net::Ipv4Addr::new(10, 0, 2, 2))?;
    let port = s.nginx.https_port.context("https port")?;
    let hc = HostConfigJson::static_ip(SLIRP_IP, SLIRP_GATEWAY)
        .dns(&[SLIRP_GATEWAY])
        .pointer(&format!("https://{DNS_NAME}:{port}/os.json"));
    let img = StbootImage::new(ctx, s.trust()).host_config(&hc).build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("wrote 1 DNS server(s) to /etc/resolv.conf")?;
    ensure!(
        dns.queries()
            .iter()
            .any(|q| q == &format!("{DNS_NAME} type 1")),
        "DNS saw {:?}",
        dns.queries()
    );
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// UEFI (OVMF): no host config in the image; it comes from the EFI variable `STHostConfig`,
/// written into the firmware's variable store before the first boot, read through efivarfs.
pub(crate) fn efi_host_config(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let hc = HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?);
    let vars = ovmf::vars_with(
        &ctx.path("OVMF_VARS.fd"),
        "STHostConfig",
        hc.to_json().as_bytes(),
    )?;
    let img = StbootImage::new(ctx, s.trust())
        .modules(&["efivarfs"])
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .firmware(Firmware::Ovmf { vars })
        .run()?;
    vm.ensure_line("host config from EFI variable STHostConfig")?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// UEFI boots stboot as a UKI: OVMF finds `/EFI/BOOT/BOOTX64.EFI` on a FAT disk (the UKI of
/// `stmgr uki create`, its `.cmdline` the only command line), the systemd stub starts the
/// kernel with the stboot image, and stboot does a normal network boot.
pub(crate) fn uefi_uki(ctx: &Ctx<'_>) -> Result<()> {
    uefi_boot(ctx, BootMedia::Esp)
}

/// UEFI boots the ISO of `stmgr uki create --format iso` as a CD-ROM (El Torito EFI entry ->
/// FAT image -> `/EFI/BOOT/BOOTX64.EFI`), then as [`uefi_uki`].
pub(crate) fn uefi_iso(ctx: &Ctx<'_>) -> Result<()> {
    uefi_boot(ctx, BootMedia::Cdrom)
}

/// As [`uefi_uki`] with swtpm (sha256 bank): the systemd stub measures the UKI's sections
/// into PCR 11, and the value the booted OS reads equals the one `stmgr image inspect` predicts
/// from the UKI file (docs/uefi.md).
pub(crate) fn uefi_uki_tpm(ctx: &Ctx<'_>) -> Result<()> {
    let tpm = Swtpm::start(
        ctx,
        "swtpm",
        &SwtpmSpec {
            banks: &["sha256"],
            identity: None,
            firmware_starts: true,
        },
    )?;
    let vm = uefi_run(ctx, BootMedia::Esp, tpm.qemu_args())?;
    check_pcr11(ctx, &vm)?;
    boot_timings(&vm, BootMedia::Esp)
}

/// PCR 11 (sha256) the booted OS read (`E2E-PCR11`) == the value `stmgr image inspect`
/// predicts for the run's `stboot.uki` (systemd-stub 252 measured its sections); returns it.
pub(crate) fn check_pcr11(ctx: &Ctx<'_>, vm: &Vm) -> Result<String> {
    let inspect = output(
        cmd(ctx.stmgr()?)
            .args(["image", "inspect"])
            .arg(ctx.path("stboot.uki")),
    )?;
    let predicted = inspect
        .lines()
        .find_map(|l| l.strip_prefix("PCR 11 (sha256) after systemd-stub 252: "))
        .context("stmgr image inspect printed no PCR 11")?
        .trim()
        .to_owned();
    let read = vm
        .lines()
        .iter()
        .find_map(|l| l.split("E2E-PCR11 sha256 ").nth(1).map(str::trim))
        .map(str::to_ascii_lowercase)
        .context("the OS printed no sha256 PCR 11")?;
    ensure!(
        read == predicted,
        "PCR 11: the OS read {read}, stmgr image inspect predicted {predicted}"
    );
    say!("e2e: PCR 11 (sha256) read by the OS == predicted: {read}");
    Ok(read)
}

fn uefi_boot(ctx: &Ctx<'_>, media: BootMedia) -> Result<()> {
    let vm = uefi_run(ctx, media, Vec::new())?;
    boot_timings(&vm, media)
}

/// Serves the test OS, builds the stboot image as a UKI/ISO, boots it from `media` under OVMF
/// (with `extra_qemu`), and checks that the firmware, not QEMU, started it.
fn uefi_run(ctx: &Ctx<'_>, media: BootMedia, extra_qemu: Vec<String>) -> Result<Vm> {
    let s = Serve::new(ctx).start()?;
    let img = slirp_image(ctx, &s, &[s.nginx.https_url("/os.json")?])?;
    let vars = ctx.path("OVMF_VARS.fd");
    fs::copy(ovmf::VARS, &vars)
        .with_context(|| format!("{} (apt-get install ovmf)", ovmf::VARS))?;
    let vm = StbootRun::new(ctx, &img)
        .firmware(Firmware::Uefi { vars, media })
        .extra_qemu(extra_qemu)
        .run()?;
    check_uefi_started(&vm, media)?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(vm)
}

/// The firmware's boot manager, not QEMU, started stboot from `media` (no `-kernel`), and the
/// kernel got the UKI's `.cmdline` (QEMU's `-kernel` path would have added `initrd=initrd`;
/// load options from the firmware would have replaced it).
pub(crate) fn check_uefi_started(vm: &Vm, media: BootMedia) -> Result<()> {
    let device = match media {
        BootMedia::Esp => "HARDDISK",
        BootMedia::Cdrom => "DVD-ROM",
    };
    ensure!(
        vm.lines()
            .iter()
            .any(|l| l.contains("BdsDxe: starting Boot") && l.contains(device)),
        "OVMF did not start the {device}"
    );
    let cmdline = vm
        .lines()
        .into_iter()
        .find(|l| l.contains("Kernel command line:"))
        .context("no kernel command line on the console")?;
    ensure!(
        cmdline.contains("stboot.recovery=poweroff") && !cmdline.contains("initrd=initrd"),
        "not the UKI's command line: {cmdline}"
    );
    Ok(())
}

/// Prints (and checks the order of) when the kernel, stboot, the verification, the kexec and
/// the test OS showed up, in seconds since QEMU started.
pub(crate) fn boot_timings(vm: &Vm, media: BootMedia) -> Result<()> {
    let lines = vm.timed_lines();
    let at = |text: &str| {
        lines
            .iter()
            .find(|(_, l)| l.contains(text))
            .map(|(t, _)| t.as_secs_f64())
            .with_context(|| format!("no console line with {text:?}"))
    };
    let kernel = at("Linux version")?;
    let stboot = at("stboot-rs")?;
    let verified = at(super::run::VERIFIED)?;
    let os = at(OS_BOOTED)?;
    ensure!(
        kernel < stboot && stboot < verified && verified < os,
        "out of order"
    );
    say!(
        "e2e: UEFI {media:?} timings: kernel {kernel:.2} s, stboot {stboot:.2} s, verified \
         {verified:.2} s, test OS {os:.2} s (since QEMU start)"
    );
    Ok(())
}

/// ST 1.3: `ospkg_signing_root.pem` holds two roots, and the package is signed under the second:
/// it boots, and stboot counts both roots.
pub(crate) fn second_root(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let first = ctx.signing_keys("first-root")?;
    let trust = TrustPolicy::network(&first.root_cert)
        .also_signing_root(&s.keys.root_cert)
        .tls_roots(&s.pki.ca_cert);
    let img = StbootImage::new(ctx, trust)
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("2 signing root(s)")?;
    vm.ensure_line("1 of 1 signatures valid")?;
    Ok(())
}

/// Provisioning mode (ST 1.1): the only server is down, so normal boot fails at its deadline;
/// the provisioning package in the image (`ospkg/provision.*`, signed like any package) boots.
pub(crate) fn provisioning_mode(ctx: &Ctx<'_>) -> Result<()> {
    let keys = ctx.signing_keys("keys")?;
    let pkg = ctx.test_ospkg("provision", "", "e2e.test=provision", &[&keys])?;
    let closed = super::nginx::free_port()?;
    let down = format!("http://10.0.2.2:{closed}/os.json");
    let img = StbootImage::new(ctx, TrustPolicy::network(&keys.root_cert))
        .host_config(&HostConfigJson::slirp().pointer(&down))
        .ospkg(&pkg.json)
        .build()?;
    // No window: the test is the fallback after a failed normal boot.
    let vm = StbootRun::new(ctx, &img)
        .append("stboot.deadline=8 stboot.provision_window=0")
        .run()?;
    ensure!(
        !vm.has_line("ST:PROVISION-WINDOW"),
        "stboot.provision_window=0 still opened the Ctrl-C window"
    );
    vm.ensure_line("ST:PROVISIONING normal boot failed (stage=fetch)")?;
    vm.ensure_line("ST:VERIFIED OS package /ospkg/provision.zip")?;
    ensure!(
        vm.lines()
            .iter()
            .any(|l| l.contains(OS_BOOTED) && l.contains("e2e.test=provision")),
        "the provisioning package's OS did not report in"
    );
    Ok(())
}

/// Ctrl-C in the announced window boots the provisioning package although the normal package
/// would boot; the same image without a key press boots the normal one after the window.
pub(crate) fn provisioning_ctrl_c(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let provision = ctx.test_ospkg("provision", "", "e2e.test=provision", &[&s.keys])?;
    let img = StbootImage::new(ctx, s.trust())
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .ospkg(&provision.json)
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .append("stboot.provision_window=30")
        .type_on("ST:PROVISION-WINDOW", b"\x03")
        .run()?;
    vm.ensure_line("ST:PROVISION-WINDOW 30 s")?;
    vm.ensure_line("ST:PROVISIONING Ctrl-C on the console")?;
    vm.ensure_line("ST:VERIFIED OS package /ospkg/provision.zip")?;
    let booted = |label: &str| {
        vm.lines()
            .iter()
            .any(|l| l.contains(OS_BOOTED) && l.contains(label))
    };
    ensure!(
        booted("e2e.test=provision"),
        "Ctrl-C in the window did not boot the provisioning package"
    );
    drop(vm); // One guest at a time: the next run waits for this one's lock.
    // Without a key the window passes and the normal package boots.
    let vm = StbootRun::new(ctx, &img)
        .append("stboot.provision_window=1")
        .run()?;
    vm.ensure_line("ST:PROVISION-WINDOW 1 s")?;
    ensure!(
        !vm.has_line("ST:PROVISIONING"),
        "provisioning mode without a key press"
    );
    ensure!(
        !vm.lines()
            .iter()
            .any(|l| l.contains(OS_BOOTED) && l.contains("e2e.test=provision")),
        "the provisioning package booted after the window passed without a key"
    );
    vm.ensure_line("ST:VERIFIED OS package https://")?;
    Ok(())
}

/// Sigsum (ST 1.3): the package's only signature is a Sigsum proof (the signer's key signed
/// the leaf, the in-memory test log included it, witnesses 1 and 3 of a 2-of-3 quorum
/// cosigned; attached by `stmgr ospkg sigsum`), and the trust policy requires logging
/// (`ospkg_sigsum_required`), so only a proof that verifies (leaf, log, quorum, inclusion)
/// can count: it boots, and the console says the signature counted as logged.
pub(crate) fn sigsum_logged(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).sigsum_logged().start()?;
    // What is served carries the proof file verbatim as its one signature.
    let served: serde_json::Value = serde_json::from_slice(&fs::read(s.www.join("os.json"))?)?;
    let signatures = served["signatures"].as_array().context("signatures")?;
    let proof = fs::read(&s.sigsum.as_ref().context("not logged")?.proof)?;
    ensure!(
        signatures.len() == 1
            && base64::engine::general_purpose::STANDARD
                .decode(signatures[0].as_str().unwrap_or_default())
                .ok()
                == Some(proof),
        "the served descriptor's signatures are not exactly the proof: {signatures:?}"
    );
    let img = StbootImage::new(ctx, s.trust().sigsum_required())
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .build()?;
    let vm = StbootRun::new(ctx, &img).run()?;
    vm.ensure_line("1 of 1 signatures valid, 1 Sigsum-logged, threshold 1")?;
    vm.ensure_line(&format!(
        "Sigsum-logged in log {}, tree size 6, leaf 3, cosigned by witness-1, witness-3",
        super::sigsum::log_key_hash()?
    ))?;
    ensure!(
        s.nginx.served("/os.zip"),
        "nginx: {:?}",
        s.nginx.access_log()
    );
    Ok(())
}

/// Sigsum required (`"ospkg_sigsum_required": true`, with the test log's Sigsum policy), the
/// package has only a valid plain signature: it is downloaded and refused as not logged,
/// nothing boots.
pub(crate) fn sigsum_required_unlogged(ctx: &Ctx<'_>) -> Result<()> {
    let s = Serve::new(ctx).start()?;
    let trust = s
        .trust()
        .sigsum_policy(&super::sigsum::policy()?)
        .sigsum_required();
    let img = StbootImage::new(ctx, trust)
        .host_config(&HostConfigJson::slirp().pointer(&s.nginx.https_url("/os.json")?))
        .build()?;
    let vm = StbootRun::new(ctx, &img)
        .expect(Outcome::NothingBooted)
        .run()?;
    vm.ensure_line(
        "rejected: 0 valid of 1 signatures, 1 required; signature 0: a valid plain signature, \
         but the trust policy requires Sigsum-logged signatures (ospkg_sigsum_required) and \
         this one is not logged",
    )?;
    vm.ensure_line("ST:FAILED stage=fetch")?;
    ensure!(
        !vm.has_line("Sigsum-logged in log"),
        "a plain signature was reported as logged"
    );
    ensure!(
        s.nginx.served("/os.zip"),
        "the archive was not fetched (refused before verification?): {:?}",
        s.nginx.access_log()
    );
    Ok(())
}
