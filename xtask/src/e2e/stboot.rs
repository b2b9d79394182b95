//! Building stboot (static, musl) and its initramfs (`stmgr image initramfs`), for the stboot
//! scenarios.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::util::{cargo, cmd, output, run, target_dir};

const MUSL: &str = "x86_64-unknown-linux-musl";

/// `cargo build --profile stboot --target x86_64-unknown-linux-musl -p stboot` (size-optimised,
/// hashing at full speed); returns the binary.
pub(crate) fn build_stboot() -> Result<PathBuf> {
    build_musl("stboot", &[], &["stboot"])
}

/// The static stprov a provisioning OS carries (it also runs on the host), built like stboot;
/// returns the binary.
pub(crate) fn build_stprov() -> Result<PathBuf> {
    build_musl("stprov", &[], &["stprov"])
}

/// The attestation agent (`crates/st-agent`), static, for the test OS's `/bin/st-agent`.
pub(crate) fn build_agent() -> Result<PathBuf> {
    build_musl("st-agent", &[], &["st-agent"])
}

/// The attestation checker `stattest` for the host (debug build).
pub(crate) fn build_stattest() -> Result<PathBuf> {
    run(cargo().args(["build", "--locked", "-p", "stattest"]))?;
    let bin = target_dir().join("debug").join("stattest");
    if !bin.is_file() {
        bail!("no {} after the build", bin.display());
    }
    Ok(bin)
}

/// The boot benchmark's in-guest probe (`crates/stboot/examples/guest_probe.rs`), built like
/// stboot; returns the binary.
pub(crate) fn build_guest_probe() -> Result<PathBuf> {
    build_musl(
        "stboot",
        &["--example", "guest_probe"],
        &["examples", "guest_probe"],
    )
}

/// `cargo build --profile stboot --target MUSL -p PACKAGE EXTRA...` (adding the musl target
/// first if rustup lacks it); returns `target/MUSL/stboot/<bin...>`.
fn build_musl(package: &str, extra: &[&str], bin: &[&str]) -> Result<PathBuf> {
    let installed =
        output(cmd("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == MUSL) {
        run(cmd("rustup").args(["target", "add", MUSL]))?;
    }
    run(cargo()
        .args([
            "build",
            "--profile",
            "stboot",
            "--locked",
            "--target",
            MUSL,
            "-p",
            package,
        ])
        .args(extra))?;
    let path = bin
        .iter()
        .fold(target_dir().join(MUSL).join("stboot"), |p, c| p.join(c));
    if !path.is_file() {
        bail!("no {} after the build", path.display());
    }
    Ok(path)
}

/// `cargo build -p stmgr` (debug); returns the binary.
pub(crate) fn build_stmgr() -> Result<PathBuf> {
    run(cargo().args(["build", "--locked", "-p", "stmgr"]))?;
    let bin = target_dir().join("debug").join("stmgr");
    if !bin.is_file() {
        bail!("no {} after the build", bin.display());
    }
    Ok(bin)
}

/// Inputs of `stmgr image initramfs`.
#[derive(Clone, Debug, Default)]
pub(crate) struct StbootInitramfs {
    /// The static stboot binary (becomes `/init`).
    pub(crate) stboot: PathBuf,
    /// Trust policy directory (see [`super::ospkg::trust_policy_dir`]).
    pub(crate) trust_policy: PathBuf,
    /// Host config file (`host_configuration.json`), if any.
    pub(crate) host_config: Option<PathBuf>,
    /// Kernel modules, in load order (e.g. from `Kernel::module_closure`).
    pub(crate) modules: Vec<PathBuf>,
    /// OS package to embed (initramfs fetch method): the NAME given to `--ospkg`.
    pub(crate) ospkg: Option<PathBuf>,
}

/// Runs `stmgr image initramfs --stboot F --trust-policy DIR [--host-config F] [--module KO]...
/// [--ospkg NAME] --out OUT`.
pub(crate) fn stboot_initramfs(stmgr: &Path, spec: &StbootInitramfs, out: &Path) -> Result<()> {
    let mut c = cmd(stmgr);
    c.args(["image", "initramfs", "--stboot"])
        .arg(&spec.stboot)
        .arg("--trust-policy")
        .arg(&spec.trust_policy);
    if let Some(hc) = &spec.host_config {
        c.arg("--host-config").arg(hc);
    }
    for m in &spec.modules {
        c.arg("--module").arg(m);
    }
    if let Some(p) = &spec.ospkg {
        c.arg("--ospkg").arg(p);
    }
    c.arg("--out").arg(out);
    run(&mut c)
}
