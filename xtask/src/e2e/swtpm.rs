//! swtpm, the software TPM 2.0, as a VM's TPM (`-tpmdev emulator` over a unix socket), with a
//! fresh state per VM. Optionally the banks are chosen (`swtpm_setup --pcr-banks`) and the
//! identity NV index stboot reads (0x01420001) is defined and written before the VM starts,
//! through a short-lived swtpm with a TCP data channel and tpm2-tools.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::Ctx;
use crate::util::{cmd, run};

/// A running swtpm for one VM; killed on drop (it also exits by itself when QEMU disconnects).
pub(crate) struct Swtpm {
    child: Child,
    sock: PathBuf,
}

/// How the TPM starts.
pub(crate) struct SwtpmSpec<'a> {
    /// Active PCR banks (`swtpm_setup --pcr-banks`), e.g. `["sha1", "sha256"]`; empty: swtpm's
    /// own default.
    pub(crate) banks: &'a [&'a str],
    /// Contents of NV index 0x01420001 (stboot's identity), defined before boot.
    pub(crate) identity: Option<&'a [u8]>,
    /// The firmware sends TPM2_Startup (OVMF); otherwise swtpm starts itself (SeaBIOS).
    pub(crate) firmware_starts: bool,
}

/// The TPM vendor CA of a swtpm made by [`Swtpm::start_with_ek_certificate`]: swtpm_localca's
/// root and the intermediate that signed the EK certificate.
pub(crate) struct VendorCa {
    /// The root (self-signed), PEM.
    pub(crate) root: PathBuf,
    /// The issuing intermediate, PEM.
    pub(crate) intermediate: PathBuf,
}

impl Swtpm {
    /// Starts swtpm (sha256 bank, swtpm starts itself, for SeaBIOS) whose state swtpm_setup made
    /// with endorsement keys and their certificates (RSA EK certificate at NV 0x01c00002),
    /// signed by a swtpm_localca CA of this run (config and CA under `ctx.dir/<sub>-ca/`: nothing
    /// global is read or written). Returns the CA the certificate chains to.
    pub(crate) fn start_with_ek_certificate(ctx: &Ctx<'_>, sub: &str) -> Result<(Self, VendorCa)> {
        let dir = fresh(&ctx.path(sub))?;
        let conf = fresh(&ctx.path(&format!("{sub}-ca")))?;
        let ca = conf.join("ca");
        fs::create_dir_all(&ca)?;
        fs::write(
            conf.join("swtpm-localca.conf"),
            format!(
                "statedir = {ca}\nsigningkey = {ca}/signkey.pem\nissuercert = {ca}/issuercert.pem\n\
                 certserial = {ca}/certserial\n",
                ca = ca.display()
            ),
        )?;
        fs::write(
            conf.join("swtpm-localca.options"),
            "--platform-manufacturer stboot-rs-e2e\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        fs::write(
            conf.join("swtpm_setup.conf"),
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\n\
                 create_certs_tool_config = {c}/swtpm-localca.conf\n\
                 create_certs_tool_options = {c}/swtpm-localca.options\n\
                 active_pcr_banks = sha256\n",
                c = conf.display()
            ),
        )?;
        run(cmd("swtpm_setup")
            .args([
                "--tpm2",
                "--create-ek-cert",
                "--create-platform-cert",
                "--overwrite",
            ])
            .arg("--config")
            .arg(conf.join("swtpm_setup.conf"))
            .arg("--tpmstate")
            .arg(&dir))?;
        let vendor = VendorCa {
            root: ca.join("swtpm-localca-rootca-cert.pem"),
            intermediate: ca.join("issuercert.pem"),
        };
        ensure!(
            vendor.root.exists() && vendor.intermediate.exists(),
            "swtpm_localca made no CA in {}",
            ca.display()
        );
        Ok((Self::spawn(&dir, false)?, vendor))
    }

    /// Starts swtpm again on the state an earlier one left in `ctx.dir/<sub>/` (the same TPM
    /// after a power cycle: same seeds, EK and certificates; PCRs reset).
    pub(crate) fn resume(ctx: &Ctx<'_>, sub: &str) -> Result<Self> {
        let dir = ctx.path(sub);
        let _ = fs::remove_file(dir.join("sock"));
        Self::spawn(&dir, false)
    }

    /// Starts swtpm with a fresh state in `ctx.dir/<sub>/`.
    pub(crate) fn start(ctx: &Ctx<'_>, sub: &str, spec: &SwtpmSpec<'_>) -> Result<Self> {
        let dir = fresh(&ctx.path(sub))?;
        if !spec.banks.is_empty() {
            run(cmd("swtpm_setup")
                .args(["--tpm2", "--overwrite", "--tpmstate"])
                .arg(&dir)
                .arg("--pcr-banks")
                .arg(spec.banks.join(",")))?;
        }
        if let Some(identity) = spec.identity {
            define_identity(&dir, identity)?;
        }
        Self::spawn(&dir, spec.firmware_starts)
    }

    /// swtpm on the state in `dir`, its control channel a unix socket there.
    fn spawn(dir: &Path, firmware_starts: bool) -> Result<Self> {
        let sock = dir.join("sock");
        let mut c = Command::new("swtpm");
        c.args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--ctrl")
            .arg(format!("type=unixio,path={}", sock.display()))
            .arg("--log")
            .arg(format!("file={},level=1", dir.join("swtpm.log").display()));
        if !firmware_starts {
            c.args(["--flags", "startup-clear"]);
        }
        let child = c
            .stdin(Stdio::null())
            .spawn()
            .context("starting swtpm (Debian package swtpm; cargo xtask test installs it)")?;
        let mut tpm = Self { child, sock };
        wait_for(&tpm.sock, Duration::from_secs(10))?;
        if let Some(status) = tpm.child.try_wait()? {
            bail!("swtpm exited at once: {status}");
        }
        Ok(tpm)
    }

    /// QEMU arguments attaching this TPM (TIS interface).
    pub(crate) fn qemu_args(&self) -> Vec<String> {
        vec![
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", self.sock.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            "tpm-tis,tpmdev=tpm0".into(),
        ]
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `dir`, emptied (created when missing).
fn fresh(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    Ok(dir.to_owned())
}

fn wait_for(path: &Path, limit: Duration) -> Result<()> {
    let t = Instant::now();
    while !path.exists() {
        ensure!(t.elapsed() < limit, "{} did not appear", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Defines NV index 0x01420001 (readable with its own empty auth, as stboot reads it) in the state `dir` and writes `data` to it, through a swtpm on TCP ports.
fn define_identity(dir: &Path, data: &[u8]) -> Result<()> {
    // tpm2-tools' swtpm TCTI finds the control channel at the next port.
    let port = super::nginx::free_port()?;
    let ctrl = port + 1;
    let mut child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--tpmstate"])
        .arg(format!("dir={}", dir.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
        .args(["--flags", "not-need-init,startup-clear"])
        .stdin(Stdio::null())
        .spawn()
        .context("starting swtpm for the NV set-up")?;
    let result = (|| -> Result<()> {
        let tcti = format!("swtpm:host=127.0.0.1,port={port}");
        let data_file = dir.join("identity.bin");
        fs::write(&data_file, data)?;
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            ensure!(
                t.elapsed() < Duration::from_secs(10),
                "swtpm on port {port} did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        run(cmd("tpm2_nvdefine")
            .args(["0x01420001", "-C", "o", "-s"])
            .arg(data.len().to_string())
            .args(["-a", "ownerwrite|ownerread|authwrite|authread", "-T", &tcti]))?;
        run(cmd("tpm2_nvwrite")
            .args(["0x01420001", "-C", "o", "-i"])
            .arg(&data_file)
            .args(["-T", &tcti]))?;
        run(cmd("tpm2_shutdown").args(["-T", &tcti]))?;
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result.context("defining the identity NV index with tpm2-tools")
}
